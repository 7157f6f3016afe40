"""Upgrades (U1–U9): the targets offered, the checks, full / partial / into an existing subscription,
the confirmation step, scheduled changes removed, two into one, and the "Check upgrades" page.

Today is 2026-11-25 12:00 UTC. Unless said otherwise the source is Office 365 E3, a 1-year term billed
monthly at 10.00 USD a license, 10 licenses, started 2026-10-16 12:00 UTC (outside its cancellation
window): its current billing period is 2026-11-16..2026-12-15 (30 days), of which 2026-11-25..2026-12-15
(21 days) are still to come. The target, Microsoft 365 E5, costs 20.00 a license a month (P1Y).
"""

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import partial
from html import unescape

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from catalog.models import UpgradePath
from portal.demo import build_catalog
from portal.errors import RuleViolation
from subscriptions import checks, services
from subscriptions.models import AuditEntry, BillingLine, ScheduledChange, Subscription
from subscriptions.services import upgrades
from subscriptions.states import Status
from tests import factories
from tests.helpers import database_state, drawn

UTC = UTC
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
STARTED = datetime(2026, 10, 16, 12, 0, tzinfo=UTC)
PRICES = [
    ("P1Y", "monthly", "20.00"),
    ("P1Y", "annual", "240.00"),
    ("P3Y", "monthly", "18.00"),
    ("P1M", "monthly", "24.00"),
    ("P1M", "annual", "288.00"),
]


def offer(name, prices=None, **extra):
    product = factories.ProductFactory(name=name)
    return factories.SkuFactory(product=product, name=name, availabilities=prices or PRICES, **extra)


@pytest.fixture
def o365_e3(db):
    return offer("Office 365 E3", [("P1Y", "monthly", "10.00"), ("P1M", "monthly", "12.00")])


@pytest.fixture
def m365_e5(o365_e3):
    target = offer("Microsoft 365 E5")
    UpgradePath.objects.create(source=o365_e3, target=target)
    return target


subscribe = partial(factories.subscribe, started=STARTED)


@pytest.fixture
def source(customer, o365_e3, now):
    return subscribe(customer, o365_e3)


def upgrade(source, actor, target, *, quantity=10, term="P1Y", billing_frequency="monthly", into=None, confirmed=True):
    return upgrades.upgrade_subscription(
        subscription_id=source.pk,
        actor=actor,
        target_sku_id=target.pk,
        quantity=quantity,
        term=term,
        billing_frequency=billing_frequency,
        into_subscription_id=into.pk if into else None,
        confirmed=confirmed,
        now=NOW,
    )


# --- targets (U1–U3) ------------------------------------------------------------------------------


@pytest.mark.rule("U2")
def test_u2_targets_never_include_an_unsupported_path_of_the_demo_matrix(customer, now):
    # given the demo catalog's upgrade matrix, with its unsupported paths
    build_catalog()
    unsupported = list(UpgradePath.objects.filter(supported=False).select_related("source", "target"))
    assert len(unsupported) >= 10
    for path in unsupported:
        subscription = factories.SubscriptionFactory(customer=customer, sku=path.source, quantity=5)
        # when its targets are listed
        offered = {t.sku.pk for t in upgrades.upgrade_targets(subscription, now=NOW)}
        # then the unsupported target is not among them, and every one offered is supported
        assert path.target_id not in offered, str(path)
        assert offered == set(
            UpgradePath.objects.filter(source=path.source, supported=True, target__is_trial=False).values_list(
                "target", flat=True
            )
        )


@pytest.mark.rule("U2")
def test_u2_an_unsupported_path_is_refused_and_nothing_changes(customer, sales, o365_e3, source):
    # given an unsupported path from Office 365 E3
    target = offer("Office 365 E5")
    UpgradePath.objects.create(source=o365_e3, target=target, supported=False, note="U2")
    assert upgrades.upgrade_targets(source, now=NOW) == []
    before = database_state()
    # when it is asked for anyway
    with pytest.raises(RuleViolation) as refused:
        upgrade(source, sales, target)
    # then it is refused and nothing changed
    assert refused.value.rule == "U2"
    assert database_state() == before


@pytest.mark.rule("U1")
def test_u1_targets_are_paid_skus_of_the_matrix_for_an_active_paid_subscription(customer, o365_e3, m365_e5, source):
    # given a trial target and an unrelated SKU besides Microsoft 365 E5
    trial = offer("Microsoft 365 E5 Trial", is_trial=True)
    UpgradePath.objects.create(source=o365_e3, target=trial)
    offer("Visio Plan 2")
    # when the targets are listed
    targets = upgrades.upgrade_targets(source, now=NOW)
    # then only the paid SKU of the matrix is offered
    assert [t.sku.name for t in targets] == ["Microsoft 365 E5"]


@pytest.mark.rule("U1")
@pytest.mark.parametrize("state", ["suspended", "trial", "deleted"])
def test_u1_only_an_active_paid_subscription_can_be_upgraded(customer, sales, o365_e3, m365_e5, now, state):
    # given a suspended, trial or cancelled subscription
    subscription = subscribe(customer, o365_e3, **{state: True})
    before = database_state()
    # when its targets are listed and an upgrade is asked for
    assert upgrades.upgrade_targets(subscription, now=NOW) == []
    with pytest.raises(RuleViolation) as refused:
        upgrade(subscription, sales, m365_e5, quantity=subscription.quantity)
    # then nothing is offered or changed
    assert refused.value.rule == "U1"
    assert database_state() == before


@pytest.mark.rule("U3")
def test_u3_existing_target_subscriptions_that_cant_be_chosen_show_why(customer, m365_e5, source):
    # given four existing Microsoft 365 E5 subscriptions of the customer
    usable = subscribe(customer, m365_e5, started=STARTED)
    in_window = subscribe(customer, m365_e5, started=NOW - timedelta(days=2))
    monthly = subscribe(customer, m365_e5, started=NOW - timedelta(days=20), term="P1M")
    earlier = subscribe(customer, m365_e5, started=STARTED - timedelta(days=1))
    # when the targets are listed
    [target] = upgrades.upgrade_targets(source, now=NOW)
    reasons = {e.subscription.pk: e.reason for e in target.existing}
    # then each one that can't be chosen says why
    assert reasons[usable.pk] == ""
    assert reasons[in_window.pk] == "inside its cancellation window (until 2026-11-30 12:00 UTC)."
    assert reasons[monthly.pk] == "its term (1 month) differs from this subscription's (1 year)."
    assert reasons[earlier.pk] == "it ends on 2027-10-14, before this subscription (2027-10-15)."
    assert len(reasons) == 4


@pytest.mark.rule("U3")
def test_u3_an_existing_subscription_that_cant_be_chosen_is_refused(customer, sales, m365_e5, source):
    # given an existing Microsoft 365 E5 inside its cancellation window
    in_window = subscribe(customer, m365_e5, started=NOW - timedelta(days=2))
    before = database_state()
    # when the licenses are upgraded into it
    with pytest.raises(RuleViolation) as refused:
        upgrade(source, sales, m365_e5, quantity=4, into=in_window)
    # then it is refused with the reason, and nothing changed
    assert refused.value.rule == "U3"
    assert "inside its cancellation window" in refused.value.message
    assert database_state() == before


# --- U4 ---------------------------------------------------------------------------------------------


@pytest.mark.rule("U4")
@pytest.mark.parametrize(
    "quantity, term, frequency, message",
    [
        (10, "P1M", "monthly", "The target term (1 month) can't be shorter than this subscription's (1 year)."),
        (0, "P1Y", "monthly", "Upgrade from 1 to 10 licenses (the subscription has 10)."),
        (11, "P1Y", "monthly", "Upgrade from 1 to 10 licenses (the subscription has 10)."),
        (10, "P3Y", "annual", "Microsoft 365 E5 is not sold for a 3 years term billed annually."),
    ],
)
def test_u4_term_frequency_and_quantity_limits(customer, sales, m365_e5, source, quantity, term, frequency, message):
    before = database_state()
    with pytest.raises(RuleViolation) as refused:
        upgrade(source, sales, m365_e5, quantity=quantity, term=term, billing_frequency=frequency)
    assert (refused.value.rule, refused.value.message) == ("U4", message)
    assert database_state() == before


@pytest.mark.rule("U4")
def test_u4_billing_frequency_cant_be_longer_than_the_term(customer, sales, o365_e3, m365_e5, now):
    # given a 1-month source
    monthly = subscribe(customer, o365_e3, started=NOW - timedelta(days=20), term="P1M")
    before = database_state()
    # when it is upgraded to a 1-month term billed annually
    with pytest.raises(RuleViolation) as refused:
        upgrade(monthly, sales, m365_e5, term="P1M", billing_frequency="annual")
    # then it is refused
    assert refused.value.message == (
        "A 1 month term can't be billed annually: the billing frequency can't be longer than the term."
    )
    assert database_state() == before


# --- U5, U6 -------------------------------------------------------------------------------------------


@pytest.mark.rule("U5")
def test_u5_full_upgrade_is_in_place_and_keeps_the_id(customer, sales, m365_e5, source):
    # when all 10 licenses are upgraded to a new subscription
    result = upgrade(source, sales, m365_e5, quantity=10)
    # then it is the same subscription, now Microsoft 365 E5 at 20.00, same term end
    source.refresh_from_db()
    assert result.pk == source.pk
    assert (source.sku_id, source.quantity, source.unit_price, source.term, source.term_end, source.status) == (
        m365_e5.pk,
        10,
        Decimal("20.00"),
        "P1Y",
        date(2027, 10, 15),
        Status.ACTIVE,
    )
    assert source.availability == factories.availability(m365_e5, "P1Y", "monthly")
    assert Subscription.objects.count() == 1
    # the unused days of the old price are credited, 10 × 10 × 21/30, and the licenses are charged at the new
    # price for the rest of the period: 20 × 10 × 21/30
    credit, line = BillingLine.objects.filter(subscription=source).order_by("pk")
    assert (credit.kind, credit.amount, credit.unit_price, credit.period_start, credit.period_end) == (
        "upgrade_credit",
        Decimal("-70.00"),
        Decimal("10.00"),
        date(2026, 11, 25),
        date(2026, 12, 15),
    )
    assert (line.kind, line.amount, line.period_start, line.period_end) == (
        "purchase",
        Decimal("140.00"),
        date(2026, 11, 25),
        date(2026, 12, 15),
    )
    entry = AuditEntry.objects.get(subscription=source, action="subscription.upgraded")
    assert (entry.before["unit_price"], entry.after["sku"], entry.after["unit_price"]) == (
        "10.00",
        m365_e5.sku_id,
        "20.00",
    )


@pytest.mark.rule("U5")
def test_u5_full_upgrade_into_an_existing_subscription_adds_the_licenses_and_ends_the_source(
    customer, sales, m365_e5, source
):
    # given an existing Microsoft 365 E5 subscription of 5 licenses billed annually
    existing = subscribe(customer, m365_e5, started=STARTED, quantity=5)
    Subscription.objects.filter(pk=existing.pk).update(billing_frequency="annual")
    # when all 10 licenses are upgraded into it
    result = upgrade(source, sales, m365_e5, quantity=10, term="P3Y", into=existing)
    # then it holds 15 and keeps its term and billing frequency; the source ended, its unused days credited
    existing.refresh_from_db()
    source.refresh_from_db()
    assert result.pk == existing.pk
    assert (existing.quantity, existing.term, existing.billing_frequency) == (15, "P1Y", "annual")
    assert (source.status, source.auto_renew) == (Status.DELETED, False)
    [credit] = BillingLine.objects.filter(subscription=source)
    assert (credit.kind, credit.amount, credit.quantity) == ("upgrade_credit", Decimal("-70.00"), 10)
    assert AuditEntry.objects.filter(subscription=existing, action="subscription.upgrade_received").count() == 1


@pytest.mark.rule("U6")
def test_u6_partial_upgrade_creates_a_coterminous_subscription_and_reduces_the_source(customer, sales, m365_e5, source):
    # when 4 of the 10 licenses are upgraded into a new subscription
    created = upgrade(source, sales, m365_e5, quantity=4)
    # then a new Microsoft 365 E5 subscription of 4 ends with the source; the source keeps 6, and the 4 moved
    # licenses' unused days are credited on it: 10 × 4 × 21/30
    source.refresh_from_db()
    assert created.pk != source.pk
    assert (created.sku_id, created.quantity, created.term_end, created.status, created.unit_price) == (
        m365_e5.pk,
        4,
        source.term_end,
        Status.ACTIVE,
        Decimal("20.00"),
    )
    assert source.quantity == 6
    [credit] = BillingLine.objects.filter(subscription=source)
    assert (credit.kind, credit.amount, credit.quantity, credit.explanation) == (
        "upgrade_credit",
        Decimal("-28.00"),
        4,
        "Credit for 4 upgraded license(s): 10.00 × 4 × 21/30 days",
    )
    # its first charge is prorated over the source's current period: 20 × 4 × 21/30
    [line] = BillingLine.objects.filter(subscription=created)
    assert (line.amount, line.period_start, line.period_end) == (
        Decimal("56.00"),
        date(2026, 11, 25),
        date(2026, 12, 15),
    )
    assert "Reassign these licenses by hand" in AuditEntry.objects.get(subscription=created).summary


# --- U7, U8, U9, N6, T2 -----------------------------------------------------------------------------


@pytest.mark.rule("U7")
def test_u7_without_the_confirmation_nothing_changes(customer, sales, m365_e5, source):
    before = database_state()
    with pytest.raises(RuleViolation) as refused:
        upgrade(source, sales, m365_e5, quantity=4, confirmed=False)
    assert refused.value.rule == "U7"
    assert database_state() == before


@pytest.mark.rule("U7")
def test_u7_a_full_upgrade_in_its_first_7_days_closes_the_cancellation_window(customer, sales, m365_e5):
    # given E3 bought two days ago (2026-11-23 12:00 UTC): it could be cancelled until 2026-11-30 12:00 UTC
    source = subscribe(customer, m365_e5.upgrade_sources.get().source, started=NOW - timedelta(days=2))
    factories.SeatLotFactory(
        subscription=source,
        quantity=10,
        added_at=source.term_start,
        window_ends_at=source.term_start + timedelta(hours=168),
    )
    plan = upgrades.plan_upgrade(
        source, user=sales, target_sku_id=m365_e5.pk, quantity=10, term="P1Y", billing_frequency="monthly", now=NOW
    )
    # the preview warns that the upgrade closes the window
    assert (
        "An upgrade can't be undone: this subscription can no longer be cancelled or have licenses removed once "
        "it is upgraded (otherwise possible until 2026-11-30 12:00 UTC)."
    ) in plan.warnings
    # when every license is upgraded in place
    upgrade(source, sales, m365_e5)
    source.refresh_from_db()
    assert (source.sku, source.upgraded_at) == (m365_e5, NOW)
    # then the upgrade can't be undone by cancelling, nor by removing licenses, even an hour later
    later = NOW + timedelta(hours=1)
    cancel = checks.allowed_actions(source, sales, later)["cancel"]
    assert (cancel.allowed, cancel.rule, cancel.reason) == (
        False,
        "U7",
        "This subscription was upgraded on 2026-11-25 12:00 UTC: an upgrade can't be undone and has no "
        "cancellation window. Turn auto-renew off so it ends with its term.",
    )
    assert not checks.allowed_actions(source, sales, later)["remove_licenses"].allowed
    before = database_state()
    with pytest.raises(RuleViolation) as refused:
        services.cancel_subscription(subscription_id=source.pk, actor=sales, now=later)
    assert refused.value.rule == "U7"
    assert database_state() == before


@pytest.mark.rule("U7")
def test_u7_a_partial_upgrade_creates_a_subscription_without_a_cancellation_window(customer, sales, m365_e5):
    # given E3 bought two days ago, still in its cancellation window
    source = subscribe(customer, m365_e5.upgrade_sources.get().source, started=NOW - timedelta(days=2))
    # when 4 of its licenses are upgraded into a new coterminous subscription
    created = upgrade(source, sales, m365_e5, quantity=4)
    # then the new subscription can't be cancelled, while the source keeps its own window
    assert checks.allowed_actions(created, sales, NOW)["cancel"].rule == "U7"
    assert checks.allowed_actions(Subscription.objects.get(pk=source.pk), sales, NOW)["cancel"].allowed


@pytest.mark.rule("U7")
@pytest.mark.rule("N3")
def test_u7_the_renewal_after_an_upgrade_opens_a_new_window(customer, sales, m365_e5):
    # given a subscription upgraded in place last year, renewed today
    source = subscribe(customer, m365_e5, started=NOW - timedelta(hours=1), upgraded_at=NOW - timedelta(days=300))
    # then the renewed term has its cancellation window again
    assert checks.allowed_actions(source, sales, NOW)["cancel"].allowed


@pytest.mark.rule("U8")
def test_u8_an_upgrade_mid_term_deletes_the_scheduled_upgrade_and_changes(customer, sales, m365_e5, source):
    # given an upgrade and a quantity change scheduled for the renewal
    factories.ScheduledChangeFactory(
        subscription=source, kind=ScheduledChange.Kind.UPGRADE, target_sku=m365_e5, quantity=None
    )
    factories.ScheduledChangeFactory(subscription=source, kind=ScheduledChange.Kind.QUANTITY, quantity=20)
    # when part of it is upgraded now
    upgrade(source, sales, m365_e5, quantity=4)
    # then nothing is scheduled any more
    assert not ScheduledChange.objects.filter(subscription=source).exists()
    assert (
        "2 scheduled change(s) deleted"
        in AuditEntry.objects.get(subscription=source, action="subscription.upgraded").summary
    )


@pytest.mark.rule("U9")
def test_u9_two_into_one(customer, sales, o365_e3, m365_e5, source):
    # given a second SKU, Microsoft 365 E3, that also upgrades to Microsoft 365 E5
    m365_e3 = offer("Microsoft 365 E3")
    UpgradePath.objects.create(source=m365_e3, target=m365_e5)
    second = subscribe(customer, m365_e3, quantity=3)
    # when Office 365 E3 is partly upgraded into a new subscription
    created = upgrade(source, sales, m365_e5, quantity=4)
    # then that new subscription can be chosen for the second SKU, and receives all its licenses
    [target] = upgrades.upgrade_targets(second, now=NOW)
    assert [(e.subscription.pk, e.reason) for e in target.existing] == [(created.pk, "")]
    result = upgrade(second, sales, m365_e5, quantity=3, into=created)
    created.refresh_from_db()
    second.refresh_from_db()
    assert result.pk == created.pk
    assert created.quantity == 7
    assert second.status == Status.DELETED


@pytest.mark.rule("N6")
def test_n6_upgrade_refused_with_a_conflict_while_renewal_pending(customer, sales, m365_e5, source):
    Subscription.objects.filter(pk=source.pk).update(renewal_pending=True)
    before = database_state()
    with pytest.raises(RuleViolation) as refused:
        upgrade(source, sales, m365_e5, quantity=4)
    assert (refused.value.rule, refused.value.status) == ("N6", 409)
    assert database_state() == before


@pytest.mark.rule("T2")
def test_t2_a_support_agent_cant_upgrade(customer, direct_partner, m365_e5, source):
    support = factories.staff(direct_partner, "support_agent")
    before = database_state()
    with pytest.raises(PermissionDenied):
        upgrade(source, support, m365_e5, quantity=4)
    assert database_state() == before


# --- the "Check upgrades" page ----------------------------------------------------------------------


def url(subscription):
    return reverse("subscriptions:subscription-upgrade", args=[subscription.customer_id, subscription.pk])


@pytest.mark.rule("U2")
def test_page_lists_targets_and_existing_subscriptions_with_reasons(signed_in, customer, m365_e5, source):
    subscribe(customer, m365_e5, started=NOW - timedelta(days=2))
    detail = signed_in.get(reverse("subscriptions:subscription-detail", args=[customer.pk, source.pk]))
    assert url(source) in detail.content.decode()
    response = signed_in.get(url(source))
    page = unescape(response.content.decode())
    assert response.status_code == 200
    assert "Microsoft 365 E5" in page
    assert "Can't be chosen: inside its cancellation window (until 2026-11-30 12:00 UTC)." in page


@pytest.mark.rule("U6")
def test_page_previews_a_partial_upgrade_then_upgrades_after_yes(signed_in, customer, m365_e5, source):
    # when 4 licenses are previewed
    response = signed_in.get(
        url(source), {"target": m365_e5.pk, "quantity": "4", "term": "P1Y", "billing_frequency": "monthly", "into": ""}
    )
    page = response.content.decode()
    # then the preview says what will happen, before the "Yes, upgrade" step
    assert response.status_code == 200
    assert "Partial upgrade:" in page and "(coterminous)" in page
    assert "Reassign these licenses by hand" in page
    assert "Yes, upgrade" in page
    assert Subscription.objects.count() == 1
    # when it is confirmed
    response = signed_in.post(
        url(source),
        drawn(
            source,
            {
                "target": m365_e5.pk,
                "quantity": "4",
                "term": "P1Y",
                "billing_frequency": "monthly",
                "into": "",
                "confirm": "yes",
            },
        ),
    )
    created = Subscription.objects.exclude(pk=source.pk).get()
    assert response.status_code == 302
    assert response["Location"] == reverse("subscriptions:subscription-detail", args=[customer.pk, created.pk])
    assert "Reassign these licenses by hand" in signed_in.get(response["Location"]).content.decode()


@pytest.mark.rule("U5")
def test_page_previews_a_full_upgrade_in_place(signed_in, m365_e5, source):
    response = signed_in.get(
        url(source), {"target": m365_e5.pk, "quantity": "10", "term": "P1Y", "billing_frequency": "monthly"}
    )
    assert response.status_code == 200
    assert "this subscription keeps its id" in response.content.decode()


@pytest.mark.rule("U7")
def test_page_post_without_confirmation_answers_422_and_changes_nothing(signed_in, m365_e5, source):
    before = database_state()
    response = signed_in.post(
        url(source),
        drawn(source, {"target": m365_e5.pk, "quantity": "4", "term": "P1Y", "billing_frequency": "monthly"}),
    )
    assert response.status_code == 422
    assert "Yes, upgrade" in response.content.decode()
    assert database_state() == before


@pytest.mark.rule("U2")
def test_page_preview_of_an_unoffered_target_answers_422(signed_in, source):
    other = offer("Visio Plan 2")
    response = signed_in.get(
        url(source), {"target": other.pk, "quantity": "4", "term": "P1Y", "billing_frequency": "monthly"}
    )
    assert response.status_code == 422
    assert "That upgrade is not offered" in response.content.decode()


@pytest.mark.rule("N6")
def test_page_post_while_renewal_pending_answers_409(signed_in, m365_e5, source):
    Subscription.objects.filter(pk=source.pk).update(renewal_pending=True)
    before = database_state()
    response = signed_in.post(
        url(source),
        drawn(
            source,
            {"target": m365_e5.pk, "quantity": "4", "term": "P1Y", "billing_frequency": "monthly", "confirm": "yes"},
        ),
    )
    assert response.status_code == 409
    assert database_state() == before


@pytest.mark.rule("T2")
def test_page_support_agent_sees_why_and_post_answers_403(client, direct_partner, m365_e5, source, now):
    client.force_login(factories.staff(direct_partner, "support_agent"))
    response = client.get(url(source))
    assert response.status_code == 200
    assert "Your role can't buy or change subscriptions" in unescape(response.content.decode())
    before = database_state()
    response = client.post(
        url(source),
        drawn(
            source,
            {"target": m365_e5.pk, "quantity": "4", "term": "P1Y", "billing_frequency": "monthly", "confirm": "yes"},
        ),
    )
    assert response.status_code == 403
    assert database_state() == before


@pytest.mark.rule("T3")
def test_page_another_partners_subscription_answers_404(signed_in, m365_e5, o365_e3, now):
    theirs = subscribe(factories.CustomerFactory(), o365_e3)
    assert signed_in.get(url(theirs)).status_code == 404
    assert (
        signed_in.post(
            url(theirs), drawn(theirs, {"target": m365_e5.pk, "quantity": "4", "confirm": "yes"})
        ).status_code
        == 404
    )


@pytest.mark.rule("U4")
def test_page_offers_only_the_targets_terms_no_shorter_than_the_source(signed_in, m365_e5, source):
    # given E5 sold for 1 month, 1 year and 3 years, and a 1-year source
    html = signed_in.get(url(source)).content.decode()
    form = html[html.index('aria-label="Upgrade to Microsoft 365 E5"') :]
    term_select = form[form.index('<select name="term">') : form.index("</select>")]
    # then the form offers 1 year and 3 years, not the 1-month term the server would refuse (U4)
    assert re.findall(r'<option value="(\w+)"', term_select) == ["P1Y", "P3Y"]
