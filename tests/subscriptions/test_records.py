"""The audit trail (L1) and the billing lines (L2) every service leaves behind. Today is 2026-11-25
12:00 UTC; the Microsoft subscription is P1Y billed monthly at 10.00 a license, 10 licenses, started
2026-11-23 12:00 UTC: its billing period 2026-11-23..2026-12-22 has 30 days, 28 still to come."""

from datetime import date, timedelta
from decimal import Decimal

import pytest

from subscriptions import audit, services
from subscriptions.models import AuditEntry, BillingLine, Subscription
from subscriptions.states import Status
from tests import factories


@pytest.fixture
def e3(db):
    return factories.SkuFactory(name="Office 365 E3", availabilities=[("P1Y", "monthly", "10.00")])


@pytest.fixture
def audio(e3):
    return factories.addon_offer(e3, name="Audio Conferencing")


subscribe = factories.subscribe


# L1 Every change is audited: who, when (UTC), what, before and after ---------------------------------------

# (set-up, the call, its action, summary, before, after)
AUDITED = {
    "add licenses": (
        {},
        lambda s, u, n, a: services.change_quantity(subscription_id=s.pk, actor=u, quantity=15, now=n),
        "subscription.quantity_changed",
        "Quantity 10 → 15 (charge 46.67 USD)",
        {"quantity": 10},
        {"quantity": 15, "amount": "46.67"},
    ),
    "remove licenses": (
        {},
        lambda s, u, n, a: services.change_quantity(subscription_id=s.pk, actor=u, quantity=7, now=n),
        "subscription.quantity_changed",
        "Quantity 10 → 7 (refund 28.00 USD)",
        {"quantity": 10},
        {"quantity": 7, "amount": "-28.00"},
    ),
    "suspend": (
        {},
        lambda s, u, n, a: services.suspend_subscription(subscription_id=s.pk, actor=u, now=n),
        "subscription.suspended",
        "Suspended; auto-renew turned off",
        {"status": "active", "auto_renew": True},
        {"status": "suspended", "auto_renew": False},
    ),
    "reactivate": (
        {"suspended": True},
        lambda s, u, n, a: services.reactivate_subscription(subscription_id=s.pk, actor=u, now=n),
        "subscription.reactivated",
        "Reactivated; auto-renew is still off",
        {"status": "suspended"},
        {"status": "active"},
    ),
    "cancel": (
        {},
        lambda s, u, n, a: services.cancel_subscription(subscription_id=s.pk, actor=u, now=n),
        "subscription.cancelled",
        "Cancelled; refund 93.33 USD",
        {"status": "active"},
        {"status": "deleted", "refund": "93.33"},
    ),
    "auto-renew off": (
        {},
        lambda s, u, n, a: services.set_auto_renew(subscription_id=s.pk, actor=u, on=False, now=n),
        "subscription.auto_renew_changed",
        "Auto-renew turned off",
        {"auto_renew": True},
        {"auto_renew": False},
    ),
    "auto-renew on": (
        {"auto_renew": False},
        lambda s, u, n, a: services.set_auto_renew(subscription_id=s.pk, actor=u, on=True, now=n),
        "subscription.auto_renew_changed",
        "Auto-renew turned on",
        {"auto_renew": False},
        {"auto_renew": True},
    ),
    "rename": (
        {},
        lambda s, u, n, a: services.rename_subscription(
            subscription_id=s.pk, actor=u, friendly_name=" Head office ", now=n
        ),
        "subscription.renamed",
        "Renamed to Head office",
        {"friendly_name": ""},
        {"friendly_name": "Head office"},
    ),
}


@pytest.mark.rule("L1")
@pytest.mark.parametrize("name", list(AUDITED))
def test_l1_every_service_records_who_when_and_before_after(customer, sales, e3, audio, now, name):
    setup, call, action, summary, before, after = AUDITED[name]
    # given a subscription bought 2026-11-23 12:00 UTC
    sub = subscribe(customer, e3, started=now - timedelta(days=2), **setup)
    # when the service runs
    call(sub, sales, now, audio)
    # then exactly one audit entry records the actor, the UTC instant, what changed, before and after
    entry = AuditEntry.objects.get()
    assert (entry.actor, entry.at, entry.at.utcoffset()) == (sales, now, timedelta(0))
    assert (entry.partner, entry.customer, entry.subscription_id, entry.order) == (
        customer.partner,
        customer,
        sub.pk,
        None,
    )
    assert (entry.action, entry.summary, entry.before, entry.after) == (action, summary, before, after)


@pytest.mark.rule("L1")
@pytest.mark.rule("S3")
def test_l1_publisher_set_up_confirmation_is_audited(customer, sales, saas, now):
    # given an ISV subscription pending its set-up
    sub = subscribe(customer, saas, started=now - timedelta(hours=1), status=Status.PENDING)
    # when the set-up is confirmed
    services.confirm_publisher_setup(subscription_id=sub.pk, actor=sales, now=now)
    # then it is audited
    entry = AuditEntry.objects.get()
    assert (entry.actor, entry.at, entry.at.utcoffset(), entry.customer, entry.subscription_id) == (
        sales,
        now,
        timedelta(0),
        customer,
        sub.pk,
    )
    assert (entry.action, entry.before, entry.after) == (
        "subscription.setup_confirmed",
        {"status": "pending"},
        {"status": "active"},
    )


@pytest.mark.rule("L1")
@pytest.mark.rule("A5")
def test_l1_an_addon_purchase_is_audited_on_the_addon(customer, sales, e3, audio, now):
    # given an active base
    base = subscribe(customer, e3, started=now - timedelta(days=2))
    # when 5 add-on licenses are bought
    [addon] = services.buy_addons(subscription_id=base.pk, actor=sales, quantities={audio.pk: 5}, now=now)
    # then the new add-on's audit entry records what was bought, ending with its base, and its charge
    entry = AuditEntry.objects.get(subscription=addon)
    assert (entry.actor, entry.at, entry.customer, entry.subscription_id, entry.action) == (
        sales,
        now,
        customer,
        addon.pk,
        "subscription.addon_bought",
    )
    assert (entry.summary, entry.before, entry.after) == (
        "Bought 5 × Audio Conferencing on Office 365 E3, ending 2027-11-22",
        {},
        {"quantity": 5, "term_end": "2027-11-22", "charge": "18.67"},
    )
    # and the base's trail says an add-on was bought on it
    on_base = AuditEntry.objects.get(subscription=base)
    assert (on_base.actor, on_base.action, on_base.summary, on_base.after) == (
        sales,
        "subscription.addon_added",
        "Add-on bought: 5 × Audio Conferencing",
        {"addon": str(addon.pk), "quantity": 5, "charge": "18.67"},
    )


@pytest.mark.rule("L1")
@pytest.mark.rule("X2")
def test_l1_an_addon_cancelled_with_its_base_records_its_status_before(customer, sales, e3, audio, now):
    # given a base with an active add-on
    base = subscribe(customer, e3, started=now - timedelta(days=2))
    [addon] = services.buy_addons(
        subscription_id=base.pk, actor=sales, quantities={audio.pk: 5}, now=now - timedelta(hours=1)
    )
    # when the base is cancelled
    services.cancel_subscription(subscription_id=base.pk, actor=sales, now=now)
    # then the add-on is cancelled too, and its audit entry says it went from active to deleted
    assert Subscription.objects.get(pk=addon.pk).status == Status.DELETED
    entry = AuditEntry.objects.get(subscription=addon, action="subscription.cancelled")
    assert entry.summary.startswith("Cancelled with its base Office 365 E3; refund ")
    assert (entry.before, entry.after["status"]) == ({"status": "active"}, "deleted")


# L2 Every charge and refund is a billing line ------------------------------------------------------------------

COLUMNS = (
    "kind",
    "amount",
    "currency",
    "quantity",
    "unit_price",
    "period_start",
    "period_end",
    "explanation",
    "created_at",
)


@pytest.mark.rule("L2")
@pytest.mark.rule("Q1")
@pytest.mark.rule("Q3")
@pytest.mark.rule("X1")
@pytest.mark.parametrize(
    "quantity, line",
    [
        (
            15,
            (
                "increase",
                Decimal("46.67"),
                "USD",
                5,
                Decimal("10.00"),
                date(2026, 11, 25),
                date(2026, 12, 22),
                "10.00 × 5 × 28/30 days",
            ),
        ),
        (
            7,
            (
                "reduction_refund",
                Decimal("-28.00"),
                "USD",
                -3,
                Decimal("10.00"),
                date(2026, 11, 25),
                date(2026, 12, 22),
                "10.00 × 3 × 28/30 days",
            ),
        ),
        (
            None,
            (
                "cancellation_refund",
                Decimal("-93.33"),
                "USD",
                -10,
                Decimal("10.00"),
                date(2026, 11, 25),
                date(2026, 12, 22),
                "10.00 × 10 × 28/30 days",
            ),
        ),
    ],
    ids=["added licenses", "removal refund", "cancellation refund"],
)
def test_l2_each_charge_and_refund_is_a_billing_line_with_its_period_and_arithmetic(
    customer, sales, e3, now, quantity, line
):
    # given a subscription bought 2026-11-23 12:00 UTC
    sub = subscribe(customer, e3, started=now - timedelta(days=2))
    # when licenses are added or removed, or it is cancelled
    if quantity is None:
        services.cancel_subscription(subscription_id=sub.pk, actor=sales, now=now)
    else:
        services.change_quantity(subscription_id=sub.pk, actor=sales, quantity=quantity, now=now)
    # then one billing line holds the Decimal amount, currency, period and the arithmetic to check it by hand
    assert list(BillingLine.objects.values_list("subscription", *COLUMNS)) == [(sub.pk, *line, now)]
    assert BillingLine.objects.get().amount.as_tuple().exponent == -2


@pytest.mark.rule("L2")
@pytest.mark.rule("A5")
@pytest.mark.rule("S3")
def test_l2_addon_and_isv_first_charges_are_billing_lines(customer, sales, e3, audio, saas, now):
    # given an active base and an ISV subscription pending its set-up
    base = subscribe(customer, e3, started=now - timedelta(days=2))
    isv = subscribe(customer, saas, started=now - timedelta(hours=1), status=Status.PENDING)
    # when an add-on is bought and the ISV set-up is confirmed
    [addon] = services.buy_addons(subscription_id=base.pk, actor=sales, quantities={audio.pk: 5}, now=now)
    services.confirm_publisher_setup(subscription_id=isv.pk, actor=sales, now=now)
    # then each first charge is a billing line
    assert list(BillingLine.objects.order_by("pk").values_list("subscription", *COLUMNS)) == [
        (
            addon.pk,
            "purchase",
            Decimal("18.67"),
            "USD",
            5,
            Decimal("4.00"),
            date(2026, 11, 25),
            date(2026, 12, 22),
            "4.00 × 5 × 28/30 days",
            now,
        ),
        (
            isv.pk,
            "purchase",
            Decimal("80.00"),
            "USD",
            10,
            Decimal("8.00"),
            date(2026, 11, 25),
            date(2026, 12, 24),
            "8.00 × 10",
            now,
        ),
    ]


@pytest.mark.rule("L2")
@pytest.mark.rule("X3")
def test_l2_isv_full_refund_covers_the_period_that_was_billed(customer, sales, saas, now):
    # given an ISV subscription bought 2026-11-23 12:00 UTC, billed 80.00 for 2026-11-23..2026-12-22
    sub = subscribe(customer, saas, started=now - timedelta(hours=48))
    factories.BillingLineFactory(subscription=sub)
    # when it is cancelled within 72 hours
    services.cancel_subscription(subscription_id=sub.pk, actor=sales, now=now)
    # then the refund line covers the same period as the charge it gives back
    refund = BillingLine.objects.get(kind="cancellation_refund")
    assert (refund.amount, refund.period_start, refund.period_end) == (
        Decimal("-80.00"),
        date(2026, 11, 23),
        date(2026, 12, 22),
    )


@pytest.mark.rule("L2")
@pytest.mark.rule("X1")
def test_l2_addons_cancelled_with_their_base_are_refunded_pro_rata(customer, sales, e3, audio, now):
    # given a base bought 2026-11-23 12:00 UTC and an add-on bought an hour ago, charged 4.00 × 5 × 28/30 = 18.67
    base = subscribe(customer, e3, started=now - timedelta(days=2))
    [addon] = services.buy_addons(
        subscription_id=base.pk, actor=sales, quantities={audio.pk: 5}, now=now - timedelta(hours=1)
    )
    # when the base is cancelled inside its window
    services.cancel_subscription(subscription_id=base.pk, actor=sales, now=now)
    # then the add-on, whose access ended with it, is refunded for the same 28 days: 18.67
    assert list(BillingLine.objects.filter(subscription=addon).values_list("kind", "amount")) == [
        ("purchase", Decimal("18.67")),
        ("cancellation_refund", Decimal("-18.67")),
    ]


@pytest.mark.rule("L1")
def test_l1_a_summary_longer_than_its_column_is_cut_once_by_the_audit_trail(customer, sales, now):
    # given a summary longer than the column holds (a long friendly name quoted in it, say)
    long_summary = "Renamed to " + "x" * 400
    # when a service records it
    entry = audit.record(actor=sales, at=now, customer=customer, action="subscription.renamed", summary=long_summary)
    # then the row is saved with the summary's start, exactly as long as the column
    limit = AuditEntry._meta.get_field("summary").max_length
    saved = AuditEntry.objects.get(pk=entry.pk)
    assert saved.summary == long_summary[:limit]
    assert len(saved.summary) == limit == 300
