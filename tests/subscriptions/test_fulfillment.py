"""Fulfillment of a placed order (O2): one subscription per line, with its first license lot and
charge; trials (TR1), ISV free trials (S4), the reseller of record (K4) and aligned end dates (K11).
Today is 2026-11-25 12:00 UTC."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from catalog import cart as cart_services
from catalog.checkout import purchase
from catalog.models import Order, OrderLine
from portal import access
from subscriptions.models import AuditEntry, BillingLine, SeatLot, Subscription
from subscriptions.services import confirm_publisher_setup, fulfill_order, provision_subscription
from subscriptions.states import Status
from tests import factories
from tests.helpers import billing_of

UTC = UTC


def buy(customer, actor, now, *lines, reseller=None):
    """Puts (availability, quantity[, aligned_end_date]) lines in the cart and purchases it."""
    for availability, quantity, *aligned in lines:
        cart_services.add_to_cart(
            customer=customer,
            actor=actor,
            availability_id=availability.pk,
            quantity=quantity,
            aligned_end_date=aligned[0] if aligned else None,
            now=now,
        )
    cart = cart_services.current_cart(customer, actor, now)
    if reseller is not None:
        cart = cart_services.set_reseller(cart=cart, actor=actor, reseller_id=reseller.pk, now=now)
    order, created = purchase(cart=cart, actor=actor, attested=True, now=now)
    assert created
    return order


def charge_of(subscription):
    """The subscription's one billing line."""
    (line,) = billing_of(subscription)
    return line


@pytest.fixture
def e3(db):
    return factories.SkuFactory(
        name="Microsoft 365 E3",
        availabilities=[("P1M", "monthly", "43.20"), ("P1Y", "monthly", "36.00"), ("P1Y", "annual", "432.00")],
    )


@pytest.fixture
def teams(db):
    return factories.SkuFactory(name="Microsoft Teams Essentials", availabilities=[("P1Y", "annual", "48.00")])


# O2 Order fulfillment ----------------------------------------------------------------------------


@pytest.mark.rule("O2")
def test_o2_order_is_pending_with_no_subscription_until_fulfilled(customer, sales, now, e3):
    # given / when a cart is purchased
    order = buy(customer, sales, now, (factories.availability(e3, "P1Y", "monthly"), 10))
    # then the order and its line are pending and nothing is provisioned or billed yet
    order.refresh_from_db()
    assert order.status == Order.Status.PENDING
    assert list(order.lines.values_list("status", "fulfilled_at")) == [(OrderLine.Status.PENDING, None)]
    assert not Subscription.objects.exists() and not BillingLine.objects.exists()


@pytest.mark.rule("O2")
def test_o2_fulfillment_creates_one_subscription_per_line(customer, sales, now, e3, teams):
    # given an order for 10 × E3 (P1Y, monthly) and 3 × Teams Essentials (P1Y, annual)
    order = buy(
        customer,
        sales,
        now,
        (factories.availability(e3, "P1Y", "monthly"), 10),
        (factories.availability(teams, "P1Y", "annual"), 3),
    )
    # when it is fulfilled, a minute later
    later = now + timedelta(minutes=1)
    fulfill_order(order_id=order.pk, now=later)
    # then each line is fulfilled into its own subscription, being provisioned, linked from the line
    order.refresh_from_db()
    assert order.status == Order.Status.COMPLETED
    e3_line, teams_line = order.lines.order_by("pk")
    assert [(line.status, line.fulfilled_at) for line in (e3_line, teams_line)] == [
        (OrderLine.Status.FULFILLED, later)
    ] * 2
    e3_sub, teams_sub = e3_line.subscription, teams_line.subscription
    assert (
        e3_sub.customer,
        e3_sub.sku,
        e3_sub.status,
        e3_sub.quantity,
        e3_sub.term,
        e3_sub.billing_frequency,
        e3_sub.unit_price,
        e3_sub.currency,
        e3_sub.auto_renew,
        e3_sub.term_start,
        e3_sub.term_end,
        e3_sub.is_trial,
        e3_sub.reseller,
    ) == (
        customer,
        e3,
        Status.PENDING,
        10,
        "P1Y",
        "monthly",
        Decimal("36.00"),
        "USD",
        True,
        later,
        date(2027, 11, 24),
        False,
        None,
    )
    assert (teams_sub.quantity, teams_sub.billing_frequency, teams_sub.term_end) == (3, "annual", date(2027, 11, 24))
    # and each has its first license lot, removable for 7 days
    assert list(
        SeatLot.objects.filter(subscription=e3_sub).values_list("source", "quantity", "added_at", "window_ends_at")
    ) == [(SeatLot.Source.PURCHASE, 10, later, datetime(2026, 12, 2, 12, 1, tzinfo=UTC))]
    # and its first charge: one month for the monthly one, the whole year for the annual one
    assert charge_of(e3_sub) == (
        "purchase",
        Decimal("360.00"),
        "USD",
        10,
        Decimal("36.00"),
        date(2026, 11, 25),
        date(2026, 12, 24),
        "36.00 × 10",
    )
    assert charge_of(teams_sub) == (
        "purchase",
        Decimal("144.00"),
        "USD",
        3,
        Decimal("48.00"),
        date(2026, 11, 25),
        date(2027, 11, 24),
        "48.00 × 3",
    )
    # and the audit trail says so
    assert AuditEntry.objects.filter(action="subscription.created").count() == 2
    assert AuditEntry.objects.get(action="order.completed").summary == f"{order.number} fulfilled"


@pytest.mark.rule("O2")
def test_o2_fulfilling_again_creates_nothing_more(customer, sales, now, e3):
    # given a fulfilled order
    order = buy(customer, sales, now, (factories.availability(e3, "P1Y", "monthly"), 10))
    fulfill_order(order_id=order.pk, now=now)
    subscription = Subscription.objects.get()
    # when the task runs again (a retry)
    fulfill_order(order_id=order.pk, now=now + timedelta(minutes=5))
    # then nothing more is created or billed
    assert list(Subscription.objects.values_list("pk", flat=True)) == [subscription.pk]
    assert SeatLot.objects.count() == 1 and BillingLine.objects.count() == 1
    assert AuditEntry.objects.filter(action="order.completed").count() == 1
    assert order.lines.get().fulfilled_at == now


@pytest.mark.rule("O2")
def test_o2_provisioned_microsoft_subscription_becomes_active(customer, sales, now, e3):
    # given a fulfilled order whose subscription is being provisioned
    order = buy(customer, sales, now, (factories.availability(e3, "P1Y", "monthly"), 10))
    fulfill_order(order_id=order.pk, now=now)
    subscription = Subscription.objects.get()
    # when provisioning completes (twice: the task is idempotent)
    provision_subscription(subscription_id=subscription.pk, now=now + timedelta(minutes=1))
    provision_subscription(subscription_id=subscription.pk, now=now + timedelta(minutes=2))
    # then it is active, audited once
    subscription.refresh_from_db()
    assert subscription.status == Status.ACTIVE
    assert list(AuditEntry.objects.filter(action="subscription.provisioned").values_list("at", "before", "after")) == [
        (now + timedelta(minutes=1), {"status": "pending"}, {"status": "active"})
    ]


@pytest.mark.rule("O2")
@pytest.mark.django_db(transaction=True)
def test_o2_background_worker_fulfills_the_order_and_provisions_microsoft_subscriptions(
    customer, sales, now, e3, worker
):
    # given an order for a Microsoft offer and an ISV SaaS offer
    isv = factories.SkuFactory(isv=True, name="Fabrikam Backup", availabilities=[("P1Y", "monthly", "8.00")])
    order = buy(
        customer, sales, now, (factories.availability(e3, "P1Y", "monthly"), 10), (factories.availability(isv), 4)
    )
    # when the background worker runs
    worker()
    # then the order is completed; the Microsoft subscription is active, the ISV one awaits publisher set-up
    order.refresh_from_db()
    assert order.status == Order.Status.COMPLETED
    assert sorted(order.lines.values_list("sku__name", "status", "subscription__status")) == [
        ("Fabrikam Backup", "fulfilled", "pending"),
        ("Microsoft 365 E3", "fulfilled", "active"),
    ]


# K4 Reseller of record ---------------------------------------------------------------------------


@pytest.fixture
def indirect_purchase(provider, now, e3, teams):
    reseller = factories.ResellerLinkFactory(provider=provider, reseller__name="Adatum Reseller").reseller
    seller = factories.staff(provider, "sales_agent")
    customer = factories.CustomerFactory(partner=provider)
    order = buy(
        customer,
        seller,
        now,
        (factories.availability(e3, "P1Y", "monthly"), 10),
        (factories.availability(teams, "P1Y", "annual"), 3),
        reseller=reseller,
    )
    fulfill_order(order_id=order.pk, now=now)
    return order, reseller


@pytest.mark.rule("K4")
def test_k4_chosen_reseller_becomes_the_subscriptions_reseller_of_record(indirect_purchase):
    # given an indirect provider's purchase with a reseller chosen
    order, reseller = indirect_purchase
    # when it has been fulfilled
    # then every subscription has that reseller of record
    assert order.reseller == reseller
    assert list(Subscription.objects.values_list("reseller", flat=True)) == [reseller.pk, reseller.pk]


@pytest.mark.rule("K4")
@pytest.mark.rule("T1")
def test_k4_reseller_of_record_sees_the_subscriptions(indirect_purchase):
    # given subscriptions bought with a reseller of record, for a customer the provider serves itself
    order, reseller = indirect_purchase
    reseller_admin = factories.staff(reseller, "admin_agent")
    # when the reseller's staff list customers and subscriptions
    customers = set(access.customers_for(reseller_admin))
    subscriptions = set(access.subscriptions_for(reseller_admin))
    # then they see the ones they are reseller of record for
    assert customers == {order.customer}
    assert subscriptions == set(Subscription.objects.all())


# TR1 Trials --------------------------------------------------------------------------------------


@pytest.mark.rule("TR1")
def test_tr1_trial_is_fulfilled_with_25_licenses_for_one_month_with_auto_renew_on(customer, sales, now, e3):
    # given a new-commerce trial of E3, added to the cart with another quantity
    trial = factories.SkuFactory(
        trial=True, name="Microsoft 365 E3 (trial)", trial_of=e3, availabilities=[("P1M", "monthly", "0.00")]
    )
    order = buy(customer, sales, now, (factories.availability(trial, "P1M"), 3))
    assert order.lines.get().quantity == 25
    # when it is fulfilled
    fulfill_order(order_id=order.pk, now=now)
    # then the subscription is a one-month trial of 25 licenses with auto-renew on, converting the day after it ends
    sub = Subscription.objects.get()
    assert (sub.is_trial, sub.quantity, sub.term, sub.billing_frequency, sub.auto_renew, sub.status) == (
        True,
        25,
        "P1M",
        "monthly",
        True,
        Status.PENDING,
    )
    assert (sub.term_start, sub.term_end, sub.trial_ends_at) == (
        now,
        date(2026, 12, 24),
        datetime(2026, 12, 25, tzinfo=UTC),
    )
    # TR4: a trial's quantity can't change, so its licenses open no removal window
    assert not SeatLot.objects.filter(subscription=sub).exists()
    # and it costs nothing
    assert sum(BillingLine.objects.filter(subscription=sub).values_list("amount", flat=True)) == Decimal("0.00")


@pytest.mark.rule("TR1")
def test_tr1_trial_line_always_holds_25_licenses(customer, sales, now):
    # given a trial line in the cart
    trial = factories.SkuFactory(trial=True, availabilities=[("P1M", "monthly", "0.00")])
    line = cart_services.add_to_cart(
        customer=customer,
        actor=sales,
        availability_id=factories.availability(trial, "P1M").pk,
        quantity=1,
        aligned_end_date=None,
        now=now,
    )
    # when its quantity is changed to 40
    cart_services.update_line(cart=line.cart, actor=sales, line_id=line.pk, quantity=40, aligned_end_date=None, now=now)
    # then it stays 25
    line.refresh_from_db()
    assert line.quantity == 25


# S4 ISV free trial -------------------------------------------------------------------------------


@pytest.mark.rule("S4")
def test_s4_isv_free_trial_is_applied_at_fulfillment_pending_and_unbilled(customer, sales, now):
    # given an ISV SaaS offer with a 30-day free trial
    saas = factories.SkuFactory(
        isv=True,
        name="Fabrikam Backup",
        free_trial_days=30,
        publisher_setup_url="https://fabrikam.example/setup",
        availabilities=[("P1Y", "monthly", "8.00")],
    )
    order = buy(customer, sales, now, (factories.availability(saas), 10))
    # when it is fulfilled
    fulfill_order(order_id=order.pk, now=now)
    # then the subscription is in its 30-day free trial, awaiting the publisher, and its paid year starts after it
    sub = Subscription.objects.get()
    trial_end = datetime(2026, 12, 25, 12, 0, tzinfo=UTC)
    assert (sub.status, sub.is_trial, sub.trial_ends_at, sub.quantity) == (Status.PENDING, True, trial_end, 10)
    assert (sub.term, sub.term_start, sub.term_end, sub.auto_renew) == ("P1Y", trial_end, date(2027, 12, 24), True)
    # and nothing is billed
    assert not BillingLine.objects.exists()
    # and provisioning does not activate it: the publisher confirms the set-up
    provision_subscription(subscription_id=sub.pk, now=now + timedelta(minutes=1))
    sub.refresh_from_db()
    assert sub.status == Status.PENDING


@pytest.mark.rule("S3")
@pytest.mark.rule("Q2")
def test_s3_an_isv_subscriptions_licenses_are_removable_for_7_days_from_when_its_billing_starts(customer, sales, now):
    # given an ISV SaaS offer bought five days ago (2026-11-20 12:00 UTC), pending its publisher set-up
    saas = factories.SkuFactory(isv=True, name="Fabrikam Backup", availabilities=[("P1Y", "monthly", "8.00")])
    bought = now - timedelta(days=5)
    fulfill_order(order_id=buy(customer, sales, bought, (factories.availability(saas), 10)).pk, now=bought)
    sub = Subscription.objects.get()
    # then, unbilled, its licenses have opened no 7-day window yet
    assert not SeatLot.objects.exists()
    # when the publisher confirms the set-up now, starting its billing
    confirm_publisher_setup(subscription_id=sub.pk, actor=sales, now=now)
    # then its 10 licenses can be removed for 7 days from now, not from the purchase
    assert list(SeatLot.objects.values_list("source", "quantity", "added_at", "window_ends_at")) == [
        (SeatLot.Source.PURCHASE, 10, now, datetime(2026, 12, 2, 12, 0, tzinfo=UTC))
    ]


# K11 Aligned end date at fulfillment -------------------------------------------------------------


@pytest.mark.rule("K11")
def test_k11_aligned_annual_line_ends_on_its_date_with_its_first_charge_prorated_by_the_day(customer, sales, now, e3):
    # given a P1Y line billed annually (432.00) for 10 licenses, aligned to the end of June 2027
    order = buy(customer, sales, now, (factories.availability(e3, "P1Y", "annual"), 10, date(2027, 6, 30)))
    # when it is fulfilled
    fulfill_order(order_id=order.pk, now=now)
    # then its term ends on that date, and it is charged 218 of the year's 365 days
    sub = Subscription.objects.get()
    assert sub.term_end == date(2027, 6, 30)
    order.refresh_from_db()
    assert (order.lines.get().first_charge, order.total) == (Decimal("2580.16"), Decimal("2580.16"))
    assert charge_of(sub) == (
        "purchase",
        Decimal("2580.16"),
        "USD",
        10,
        Decimal("432.00"),
        date(2026, 11, 25),
        date(2027, 6, 30),
        "432.00 × 10 × 218/365 days",
    )


@pytest.mark.rule("K11")
def test_k11_line_aligned_to_this_month_end_is_charged_for_its_days(customer, sales, now, e3):
    # given a P1Y line billed monthly (36.00) for 10 licenses, aligned to 2026-11-30
    order = buy(customer, sales, now, (factories.availability(e3, "P1Y", "monthly"), 10, date(2026, 11, 30)))
    # when it is fulfilled
    fulfill_order(order_id=order.pk, now=now)
    # then it ends on 2026-11-30 and is charged 6 of the month's 30 days
    sub = Subscription.objects.get()
    assert sub.term_end == date(2026, 11, 30)
    assert charge_of(sub) == (
        "purchase",
        Decimal("72.00"),
        "USD",
        10,
        Decimal("36.00"),
        date(2026, 11, 25),
        date(2026, 11, 30),
        "36.00 × 10 × 6/30 days",
    )


@pytest.mark.rule("K11")
def test_k11_monthly_line_aligned_to_another_subscription_ends_with_it(customer, sales, now, e3):
    # given a monthly subscription ending 2026-12-15, and a P1M line (43.20) for 10 licenses aligned to it
    project = factories.SkuFactory(name="Project Plan 3")
    factories.SubscriptionFactory(
        customer=customer, sku=project, availability=factories.availability(project, "P1M"), term_end=date(2026, 12, 15)
    )
    order = buy(customer, sales, now, (factories.availability(e3, "P1M"), 10, date(2026, 12, 15)))
    # when it is fulfilled
    fulfill_order(order_id=order.pk, now=now)
    # then the new subscription ends with it, charged 21 of the month's 30 days
    sub = order.lines.get().subscription
    assert sub.term_end == date(2026, 12, 15)
    assert charge_of(sub) == (
        "purchase",
        Decimal("302.40"),
        "USD",
        10,
        Decimal("43.20"),
        date(2026, 11, 25),
        date(2026, 12, 15),
        "43.20 × 10 × 21/30 days",
    )
