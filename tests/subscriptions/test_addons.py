"""Traditional add-ons bought on a base subscription (A1–A5). Today is 2026-11-25 12:00 UTC; the base is
P1Y billed monthly, started 2026-11-23 12:00 UTC, ending 2027-11-22: its billing period is
2026-11-23..2026-12-22 (30 days), 28 of them still to come."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied

from portal.access import RESELLER_NOTICE
from portal.errors import RuleViolation
from subscriptions.dates import term_end_for
from subscriptions.models import AuditEntry, BillingLine, Subscription
from subscriptions.services import buy_addons, eligible_addons, reactivate_subscription, suspend_subscription
from subscriptions.states import Status
from tests import factories
from tests.helpers import billing_of, database_state


@pytest.fixture
def e3(db):
    return factories.SkuFactory(
        name="Office 365 E3", commerce="traditional", availabilities=[("P1Y", "monthly", "10.00")]
    )


@pytest.fixture
def audio(e3):
    return factories.addon_offer(e3, name="Audio Conferencing")


@pytest.fixture
def base(customer, e3, now):
    started = now - timedelta(days=2)
    return factories.SubscriptionFactory(
        customer=customer,
        sku=e3,
        availability=factories.availability(e3),
        quantity=10,
        term="P1Y",
        billing_frequency="monthly",
        unit_price=Decimal("10.00"),
        term_start=started,
        term_end=term_end_for(started.date(), 12),
        created_at=started,
    )


# A1 An active base; A5 coterminous, prorated ---------------------------------------------------------


@pytest.mark.rule("A1")
@pytest.mark.rule("A5")
def test_a5_addon_ends_with_its_base_and_is_charged_to_the_end_of_its_billing_period(customer, sales, base, audio, now):
    # given an active base subscription ending 2027-11-22 and an eligible add-on at 4.00 a license a month
    # when 5 add-on licenses are bought on the base's page
    [addon] = buy_addons(subscription_id=base.pk, actor=sales, quantities={audio.pk: 5}, now=now)
    # then the add-on is an active subscription of the base, starting now and ending with it
    addon.refresh_from_db()
    assert (addon.sku, addon.base_subscription, addon.customer, addon.status, addon.quantity) == (
        audio,
        base,
        customer,
        Status.ACTIVE,
        5,
    )
    assert (
        addon.term,
        addon.billing_frequency,
        addon.unit_price,
        addon.term_start,
        addon.term_end,
        addon.auto_renew,
    ) == ("P1Y", "monthly", Decimal("4.00"), now, date(2027, 11, 22), True)
    assert addon.availability == factories.availability(audio)
    # and its first charge runs to the end of the base's billing period: 4.00 × 5 × 28/30 = 18.666… = 18.67
    assert billing_of(addon) == [
        (
            "purchase",
            Decimal("18.67"),
            "USD",
            5,
            Decimal("4.00"),
            date(2026, 11, 25),
            date(2026, 12, 22),
            "4.00 × 5 × 28/30 days",
        )
    ]
    # and the base is untouched
    base.refresh_from_db()
    assert (base.status, base.quantity, base.billing_lines.count()) == (Status.ACTIVE, 10, 0)


@pytest.mark.rule("Q2")
@pytest.mark.rule("L1")
def test_q2_bought_addon_licenses_can_be_removed_for_7_days_and_both_trails_say_so(customer, sales, base, audio, now):
    # when 5 add-on licenses are bought on the base's page
    [addon] = buy_addons(subscription_id=base.pk, actor=sales, quantities={audio.pk: 5}, now=now)
    # then they are one batch, removable until 168 hours from now, like any licenses bought
    assert list(addon.seat_lots.values_list("source", "quantity", "removed", "added_at", "window_ends_at")) == [
        ("purchase", 5, 0, now, now + timedelta(hours=168))
    ]
    # and the purchase is on the add-on's audit trail and on the base's, by who bought it
    assert list(AuditEntry.objects.filter(subscription=addon).values_list("action", "actor")) == [
        ("subscription.addon_bought", sales.pk)
    ]
    assert list(AuditEntry.objects.filter(subscription=base).values_list("action", "summary", "actor")) == [
        ("subscription.addon_added", "Add-on bought: 5 × Audio Conferencing", sales.pk)
    ]


@pytest.mark.rule("A5")
def test_a5_addons_bought_together_each_get_their_own_subscription_and_charge(customer, sales, base, audio, e3, now):
    # given two eligible add-ons
    voice = factories.addon_offer(e3, name="Phone System", price="8.00")
    # when both are bought at once
    created = buy_addons(subscription_id=base.pk, actor=sales, quantities={audio.pk: 5, voice.pk: 3}, now=now)
    # then there is one add-on subscription for each, each charged 28/30 of its month
    assert [(a.sku.name, a.quantity, a.term_end) for a in created] == [
        ("Audio Conferencing", 5, date(2027, 11, 22)),
        ("Phone System", 3, date(2027, 11, 22)),
    ]
    assert list(BillingLine.objects.order_by("pk").values_list("subscription__sku__name", "amount", "explanation")) == [
        ("Audio Conferencing", Decimal("18.67"), "4.00 × 5 × 28/30 days"),
        ("Phone System", Decimal("22.40"), "8.00 × 3 × 28/30 days"),
    ]


@pytest.mark.rule("A1")
@pytest.mark.parametrize("status", [Status.SUSPENDED, Status.PENDING, Status.DELETED, Status.EXPIRED])
def test_a1_addons_need_an_active_base(customer, sales, base, audio, now, status):
    # given a base subscription that is not active
    Subscription.objects.filter(pk=base.pk).update(status=status)
    before = database_state()
    # when an add-on is bought on it
    with pytest.raises(RuleViolation) as refused:
        buy_addons(subscription_id=base.pk, actor=sales, quantities={audio.pk: 5}, now=now)
    # then it is refused and nothing was bought
    assert (refused.value.rule, refused.value.message) == ("A1", "Add-ons need an active base subscription.")
    assert database_state() == before


@pytest.mark.rule("A1")
def test_a1_at_least_one_quantity_is_needed(customer, sales, base, audio, now):
    # given an active base
    before = database_state()
    # when the form is submitted with no quantity
    with pytest.raises(RuleViolation) as refused:
        buy_addons(subscription_id=base.pk, actor=sales, quantities={audio.pk: 0}, now=now)
    # then it is refused on the quantity field and nothing was bought
    assert (refused.value.rule, refused.value.field, refused.value.message) == (
        "A1",
        "quantity",
        "Enter a quantity for at least one add-on.",
    )
    assert database_state() == before


# A2 Only direct-bill partners and indirect providers, with a role that buys --------------------------


@pytest.mark.rule("A2")
@pytest.mark.rule("T2")
def test_a2_support_agent_cannot_buy_addons(customer, direct_partner, base, audio, now):
    # given a support agent of the customer's partner
    support = factories.staff(direct_partner, "support_agent")
    before = database_state()
    # when they buy an add-on
    with pytest.raises(PermissionDenied) as denied:
        buy_addons(subscription_id=base.pk, actor=support, quantities={audio.pk: 5}, now=now)
    # then it is forbidden and nothing was bought
    assert str(denied.value) == "Your role can't buy or change subscriptions: ask an admin agent or sales agent."
    assert database_state() == before


@pytest.mark.rule("A2")
@pytest.mark.rule("T1")
def test_a2_indirect_reseller_cannot_buy_addons(provider, audio, e3, now):
    # given a customer of an indirect provider whose base subscription is resold by an indirect reseller
    link = factories.ResellerLinkFactory(provider=provider)
    customer = factories.CustomerFactory(partner=provider, reseller=link.reseller)
    base = factories.SubscriptionFactory(
        customer=customer,
        sku=e3,
        reseller=link.reseller,
        term_start=now - timedelta(days=2),
        term_end=date(2027, 11, 22),
    )
    reseller_agent = factories.staff(link.reseller, "admin_agent")
    before = database_state()
    # when the reseller's admin agent buys an add-on on it
    with pytest.raises(PermissionDenied) as denied:
        buy_addons(subscription_id=base.pk, actor=reseller_agent, quantities={audio.pk: 5}, now=now)
    # then it is forbidden, pointing to the indirect provider, and nothing was bought
    assert str(denied.value) == RESELLER_NOTICE
    assert database_state() == before


@pytest.mark.rule("A2")
def test_a2_indirect_provider_buys_addons(provider, audio, e3, now):
    # given a sales agent of an indirect provider and its customer's base subscription
    agent = factories.staff(provider, "sales_agent")
    customer = factories.CustomerFactory(partner=provider)
    base = factories.SubscriptionFactory(
        customer=customer, sku=e3, term_start=now - timedelta(days=2), term_end=date(2027, 11, 22)
    )
    # when the agent buys an add-on
    created = buy_addons(subscription_id=base.pk, actor=agent, quantities={audio.pk: 2}, now=now)
    # then it is bought
    assert [(a.sku, a.quantity, a.base_subscription_id) for a in created] == [(audio, 2, base.pk)]


# A3 Only eligible add-ons ----------------------------------------------------------------------------


@pytest.mark.rule("A3")
def test_a3_only_traditional_addons_of_the_base_offer_sold_in_the_region_and_segment_are_listed(
    customer, base, e3, audio, now
):
    # given add-ons of the base's offer in and out of the customer's region (US) and segment (commercial),
    # a new-commerce add-on, another offer's add-on and an offer that is no add-on
    other_base = factories.SkuFactory(name="Exchange Online")
    factories.addon_offer(e3, name="Advanced Threat Protection", available_countries="us, ca")
    factories.addon_offer(e3, name="Multi-Geo", available_countries="DE,FR")
    factories.addon_offer(e3, name="Education Insights", segments="education")
    factories.addon_offer(e3, name="Copilot", commerce="new")
    factories.addon_offer(other_base, name="Exchange Archiving")
    factories.addon_offer(e3, other_base, name="Kaizala Pro", segments="commercial,nonprofit")
    factories.SkuFactory(name="Microsoft Teams Essentials")
    # when the eligible add-ons of the base are listed
    eligible = eligible_addons(base)
    # then only the traditional ones of its offer sold to this customer, by name
    assert [sku.name for sku in eligible] == ["Advanced Threat Protection", "Audio Conferencing", "Kaizala Pro"]


@pytest.mark.rule("A3")
def test_a3_an_addon_that_is_not_eligible_is_refused(customer, sales, base, e3, audio, now):
    # given an add-on of the base's offer not sold in the customer's country
    multi_geo = factories.addon_offer(e3, name="Multi-Geo", available_countries="DE,FR")
    before = database_state()
    # when it is bought together with an eligible one
    with pytest.raises(RuleViolation) as refused:
        buy_addons(subscription_id=base.pk, actor=sales, quantities={audio.pk: 5, multi_geo.pk: 5}, now=now)
    # then the whole purchase is refused and nothing was bought
    assert (refused.value.rule, refused.value.message) == ("A3", "That add-on is not available for this subscription.")
    assert database_state() == before


@pytest.mark.rule("A3")
def test_a3_an_addon_not_sold_for_the_base_term_and_frequency_is_refused(customer, sales, base, e3, now):
    # given an eligible add-on sold only for a one-month term
    monthly_only = factories.SkuFactory(
        name="Domestic Calling", is_addon=True, commerce="traditional", availabilities=[("P1M", "monthly", "12.00")]
    )
    monthly_only.base_skus.set([e3])
    before = database_state()
    # when it is bought on the 1-year base
    with pytest.raises(RuleViolation) as refused:
        buy_addons(subscription_id=base.pk, actor=sales, quantities={monthly_only.pk: 5}, now=now)
    # then it is not offered for this base (A3), and nothing was bought
    assert (refused.value.rule, refused.value.message) == ("A3", "That add-on is not available for this subscription.")
    assert monthly_only not in eligible_addons(base)
    assert database_state() == before


# A4 The base's add-ons follow its suspension -------------------------------------------------------------


@pytest.fixture
def addons(sales, base, audio, e3, now):
    """Two active add-ons on the base, and a third already cancelled."""
    voice = factories.addon_offer(e3, name="Phone System", price="8.00")
    fax = factories.addon_offer(e3, name="Fax")
    bought = buy_addons(
        subscription_id=base.pk,
        actor=sales,
        quantities={audio.pk: 5, voice.pk: 3, fax.pk: 1},
        now=now - timedelta(hours=1),
    )
    Subscription.objects.filter(pk=bought[2].pk).update(status=Status.DELETED, auto_renew=False)
    return bought


@pytest.mark.rule("A4")
def test_a4_suspending_a_base_suspends_its_active_addons(sales, base, addons, now):
    # given a base with two active add-ons and a cancelled one
    # when the base is suspended
    suspend_subscription(subscription_id=base.pk, actor=sales, now=now)
    # then its active add-ons are suspended with it (auto-renew off); the cancelled one stays cancelled
    assert list(
        Subscription.objects.filter(base_subscription=base)
        .order_by("sku__name")
        .values_list("sku__name", "status", "auto_renew")
    ) == [("Audio Conferencing", "suspended", False), ("Fax", "deleted", False), ("Phone System", "suspended", False)]
    assert sorted(
        AuditEntry.objects.filter(action="subscription.suspended", subscription__base_subscription=base).values_list(
            "subscription__sku__name", "summary", "actor", "at"
        )
    ) == [
        ("Audio Conferencing", "Suspended with its base Office 365 E3", sales.pk, now),
        ("Phone System", "Suspended with its base Office 365 E3", sales.pk, now),
    ]


@pytest.mark.rule("A4")
def test_a4_reactivating_a_base_reactivates_its_addons(sales, base, addons, now):
    # given a suspended base whose add-ons were suspended with it
    suspend_subscription(subscription_id=base.pk, actor=sales, now=now)
    # when the base is reactivated
    reactivate_subscription(subscription_id=base.pk, actor=sales, now=now + timedelta(hours=2))
    # then its add-ons are active again; the cancelled one stays cancelled
    assert list(
        Subscription.objects.filter(base_subscription=base).order_by("sku__name").values_list("sku__name", "status")
    ) == [("Audio Conferencing", "active"), ("Fax", "deleted"), ("Phone System", "active")]
    assert (
        AuditEntry.objects.filter(action="subscription.reactivated", subscription__base_subscription=base).count() == 2
    )
