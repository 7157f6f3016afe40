"""Manage renewal: a SKU upgrade (R1, R5) and an aligned end date (K11 at renewal) scheduled for the renewal, and
the renewal engine applying them (N4).

Today is 2026-11-25 12:00 UTC. The subscription is Microsoft 365 E3, 10 licenses, a 1-year term billed monthly at
10.00, bought 2026-11-23 12:00 UTC and ending 2027-11-22 (inclusive), auto-renew on: it renews from 2027-11-23,
and the renewed 1-year term ends 2028-11-22 (366 days: 2028 is a leap year). E3 is sold P1Y monthly (10.00) or
annual (114.00) and P1M monthly (12.00); the upgrade matrix supports E3 → E5 and E3 → E5 (no Teams). E5 is sold
P1Y monthly (20.00) or annual (228.00) only, 1 to 300 licenses.
"""

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import partial
from html import unescape

import pytest
from django.urls import reverse
from django.utils import translation

from catalog.alignment import renewal_alignment_options
from catalog.models import UpgradePath
from portal.errors import RuleViolation
from subscriptions import renewals
from subscriptions.lifecycle import run_lifecycle
from subscriptions.models import AuditEntry, BillingLine, ScheduledChange, SeatLot, Subscription
from subscriptions.services import (
    NATURAL_END,
    remove_scheduled_change,
    renewal_upgrade_reassignment,
    schedule_renewal_change,
)
from subscriptions.services.upgrades import upgrade_subscription
from subscriptions.states import Status
from tests import factories
from tests.helpers import card_text, database_state, drawn, subscription_url

UTC = UTC
RENEWAL = datetime(2027, 11, 23, 0, 5, tzinfo=UTC)  # the engine's run after the term end
RENEWED_TERM_START = datetime(2027, 11, 23, tzinfo=UTC)  # N2: 00:00 UTC on the renewal day
AUTOMATIC = "The quantity is unchanged, so licenses are reassigned to users automatically at the renewal."


def by_hand(old: int, new: int) -> str:
    return (
        f"The quantity changes from {old} to {new}, so licenses must be reassigned to users by hand after the renewal."
    )


@pytest.fixture
def e3(db):
    return factories.SkuFactory(
        name="Microsoft 365 E3",
        min_quantity=1,
        max_quantity=300,
        availabilities=[("P1Y", "monthly", "10.00"), ("P1Y", "annual", "114.00"), ("P1M", "monthly", "12.00")],
    )


@pytest.fixture
def e5(e3):
    sku = factories.SkuFactory(
        name="Microsoft 365 E5",
        min_quantity=1,
        max_quantity=300,
        availabilities=[("P1Y", "monthly", "20.00"), ("P1Y", "annual", "228.00")],
    )
    UpgradePath.objects.create(source=e3, target=sku)
    return sku


@pytest.fixture
def e5_no_teams(e3):
    sku = factories.SkuFactory(name="Microsoft 365 E5 (no Teams)", availabilities=[("P1Y", "monthly", "18.00")])
    UpgradePath.objects.create(source=e3, target=sku)
    return sku


subscribe = partial(factories.subscribe, started=datetime(2026, 11, 23, 12, 0, tzinfo=UTC))


def schedule(sub, actor, *, now, quantity=None, term=None, billing_frequency=None, target=None, end=None):
    return schedule_renewal_change(
        subscription_id=sub.pk,
        actor=actor,
        quantity=quantity,
        term=term,
        billing_frequency=billing_frequency,
        target_sku_id=target,
        aligned_end_date=end,
        now=now,
    )


def scheduled(sub) -> list[tuple]:
    return list(
        ScheduledChange.objects.filter(subscription=sub)
        .order_by("pk")
        .values_list("kind", "target_sku_id", "quantity", "term", "billing_frequency", "aligned_end_date")
    )


def renewal_lines(sub) -> list[tuple]:
    return list(
        BillingLine.objects.filter(subscription=sub, kind=BillingLine.Kind.RENEWAL).values_list(
            "amount", "quantity", "unit_price", "period_start", "period_end", "explanation"
        )
    )


def renewed_summary(sub) -> str:
    return AuditEntry.objects.get(subscription=sub, action="subscription.renewed").summary


def renewed_summary_in(sub, language: str) -> str:
    """The renewal's entry as a page in `language` says it."""
    entry = AuditEntry.objects.get(subscription=sub, action="subscription.renewed")
    with translation.override(language):
        return entry.summary_text


# --- R1: a SKU upgrade scheduled for the renewal -----------------------------------------------------------------


@pytest.mark.rule("R1")
@pytest.mark.rule("R5")
def test_r1_an_upgrade_is_scheduled_for_the_renewal_and_audited(customer, sales, e3, e5, now):
    # given an active E3 subscription with auto-renew on
    sub = subscribe(customer, e3)
    # when an upgrade to E5 is scheduled for the renewal
    changes = schedule(sub, sales, target=e5.pk, now=now)
    # then it is scheduled, nothing changes now, and the audit says what happens to the licenses (R5)
    assert [(c.kind, c.target_sku, c.summary) for c in changes] == [("upgrade", e5, "Upgrade to Microsoft 365 E5")]
    assert scheduled(sub) == [("upgrade", e5.pk, None, "", "", None)]
    sub.refresh_from_db()
    assert (sub.sku, sub.quantity, sub.unit_price) == (e3, 10, Decimal("10.00"))
    entry = AuditEntry.objects.get(subscription=sub)
    assert (entry.action, entry.actor, entry.at, entry.summary, entry.before, entry.after) == (
        "subscription.renewal_change_scheduled",
        sales,
        now,
        f"Scheduled for the renewal: Upgrade to Microsoft 365 E5. {AUTOMATIC}",
        {"quantity": 10, "term": "P1Y", "billing_frequency": "monthly"},
        {"quantity": 10, "term": "P1Y", "billing_frequency": "monthly", "sku": "Microsoft 365 E5"},
    )


@pytest.mark.rule("U2")
@pytest.mark.rule("R1")
def test_u2_an_unsupported_or_unknown_target_is_refused_and_nothing_is_scheduled(customer, sales, e5, now):
    # given Windows 11 Enterprise E3, whose path to Microsoft 365 E5 is unsupported (U2), and an SKU off the matrix
    windows = factories.SkuFactory(name="Windows 11 Enterprise E3")
    UpgradePath.objects.create(source=windows, target=e5, supported=False, note="U2")
    sub = subscribe(customer, windows)
    stray = factories.SkuFactory(name="Visio Plan 2")
    before = database_state()
    for target in (e5.pk, stray.pk, 987654):
        with pytest.raises(RuleViolation) as refused:
            schedule(sub, sales, target=target, now=now)
        assert (refused.value.rule, refused.value.status, refused.value.message) == (
            "U2",
            422,
            "That upgrade is not offered for this subscription: choose one of the listed targets.",
        )
    # then nothing was scheduled, changed or audited
    assert database_state() == before
    assert not ScheduledChange.objects.exists()


@pytest.mark.rule("R1")
def test_r1_the_target_must_be_sold_with_the_renewed_term_and_billing_frequency(customer, sales, e3, e5, now):
    sub = subscribe(customer, e3)
    factories.ScheduledChangeFactory(subscription=sub, kind="term", quantity=None, term="P1M")
    before = database_state()
    # when E5 (not sold for 1 month) is scheduled with the 1-month term already scheduled
    with pytest.raises(RuleViolation) as refused:
        schedule(sub, sales, target=e5.pk, now=now)
    # then it is refused and nothing changed
    assert (refused.value.rule, refused.value.status, refused.value.message) == (
        "R1",
        422,
        (
            "Microsoft 365 E5 is not sold for a 1 month term billed monthly: choose a term and billing "
            "frequency it is sold for."
        ),
    )
    assert database_state() == before
    # and with the term set back to 1 year in the same request it is accepted
    changes = schedule(sub, sales, term="P1Y", target=e5.pk, now=now)
    assert [c.summary for c in changes] == ["Upgrade to Microsoft 365 E5"]


@pytest.mark.rule("K8")
def test_k8_the_renewed_quantity_must_fit_the_target(customer, sales, e3, e5, now):
    e5.max_quantity = 50
    e5.save()
    sub = subscribe(customer, e3)
    before = database_state()
    with pytest.raises(RuleViolation) as refused:
        schedule(sub, sales, quantity=60, target=e5.pk, now=now)
    assert (refused.value.rule, refused.value.message) == ("K8", "Microsoft 365 E5 is sold in quantities from 1 to 50.")
    assert database_state() == before


@pytest.mark.rule("R3")
def test_r3_the_upgrade_is_changed_kept_and_removed(customer, sales, e3, e5, e5_no_teams, now):
    sub = subscribe(customer, e3)
    schedule(sub, sales, target=e5.pk, now=now)
    # another target replaces it
    schedule(sub, sales, target=e5_no_teams.pk, now=now)
    assert scheduled(sub) == [("upgrade", e5_no_teams.pk, None, "", "", None)]
    # the quantity scheduled next to it keeps it (a field not posted keeps what is scheduled)
    schedule(sub, sales, quantity=12, now=now)
    assert sorted(scheduled(sub)) == [
        ("quantity", None, 12, "", "", None),
        ("upgrade", e5_no_teams.pk, None, "", "", None),
    ]
    # removing it (R3) leaves the quantity, audited
    upgrade = ScheduledChange.objects.get(subscription=sub, kind="upgrade")
    remove_scheduled_change(subscription_id=sub.pk, actor=sales, change_id=upgrade.pk, now=now)
    assert scheduled(sub) == [("quantity", None, 12, "", "", None)]
    entry = AuditEntry.objects.filter(subscription=sub).first()
    assert (entry.summary, entry.before["sku"], "sku" in entry.after) == (
        "Removed from the renewal: Upgrade to Microsoft 365 E5 (no Teams)",
        "Microsoft 365 E5 (no Teams)",
        False,
    )
    # and choosing the current SKU again removes a scheduled upgrade too
    schedule(sub, sales, target=e5.pk, now=now)
    schedule(sub, sales, target=e3.pk, now=now)
    assert scheduled(sub) == [("quantity", None, 12, "", "", None)]


@pytest.mark.rule("N6")
@pytest.mark.rule("R2")
@pytest.mark.parametrize(
    "state, rule, status",
    [
        ({"renewal_pending": True}, "N6", 409),
        ({"auto_renew": False}, "R2", 422),
        ({"suspended": True}, "R2", 422),
    ],
    ids=["renewal-pending", "auto-renew-off", "suspended"],
)
def test_r2_n6_no_upgrade_or_end_date_is_scheduled_while_not_allowed(customer, sales, e3, e5, now, state, rule, status):
    sub = subscribe(customer, e3, **state)
    before = database_state()
    for attempt in ({"target": e5.pk}, {"end": date(2027, 11, 30)}):
        with pytest.raises(RuleViolation) as refused:
            schedule(sub, sales, now=now, **attempt)
        assert (refused.value.rule, refused.value.status) == (rule, status)
    assert database_state() == before


@pytest.mark.rule("U8")
@pytest.mark.rule("R6")
def test_u8_upgrading_mid_term_removes_the_upgrade_scheduled_for_the_renewal(customer, sales, e3, e5, now):
    sub = subscribe(customer, e3)
    schedule(sub, sales, target=e5.pk, now=now)
    upgrade_subscription(
        subscription_id=sub.pk,
        actor=sales,
        target_sku_id=e5.pk,
        quantity=10,
        term="P1Y",
        billing_frequency="monthly",
        confirmed=True,
        now=now,
    )
    assert scheduled(sub) == []
    assert Subscription.objects.get(pk=sub.pk).sku == e5


# --- R5: what happens to the licenses -----------------------------------------------------------------------------


@pytest.mark.rule("R5")
def test_r5_licenses_are_reassigned_automatically_only_with_the_quantity_unchanged(customer, e3, e5):
    sub = subscribe(customer, e3)
    upgrade = ScheduledChange(subscription=sub, kind="upgrade", target_sku=e5)
    same = ScheduledChange(subscription=sub, kind="quantity", quantity=10)
    more = ScheduledChange(subscription=sub, kind="quantity", quantity=14)
    assert renewal_upgrade_reassignment(sub, [upgrade]) == AUTOMATIC
    assert renewal_upgrade_reassignment(sub, [upgrade, same]) == AUTOMATIC
    assert renewal_upgrade_reassignment(sub, [more, upgrade]) == by_hand(10, 14)
    assert renewal_upgrade_reassignment(sub, [more]) == ""  # no upgrade: nothing to say
    assert renewal_upgrade_reassignment(sub, []) == ""


# --- K11 at renewal: an aligned end date ---------------------------------------------------------------------


@pytest.mark.rule("K11")
def test_k11_renewal_options_follow_the_purchase_rule_from_the_renewal_start(customer, e3):
    # given the subscription (renews 2027-11-23) and others of the customer
    sub = subscribe(customer, e3)
    visio = factories.SkuFactory(name="Visio Plan 2")
    subscribe(customer, visio, started=datetime(2027, 3, 15, tzinfo=UTC))  # ends 2028-03-14
    subscribe(
        customer, factories.SkuFactory(name="Teams Rooms"), term="P1M", started=datetime(2026, 11, 16, tzinfo=UTC)
    )  # monthly, ends 2026-12-15: over before the renewal
    subscribe(
        customer, factories.SkuFactory(name="Project Plan 3"), started=datetime(2026, 11, 29, tzinfo=UTC), term="P1M"
    )  # monthly, ends 2026-12-28
    subscribe(
        customer, factories.SkuFactory(name="Planner"), started=datetime(2027, 2, 10, tzinfo=UTC), status=Status.DELETED
    )  # cancelled: not alignable
    subscribe(customer, visio, started=datetime(2026, 12, 29, tzinfo=UTC), trial=True)  # a trial: not alignable
    # when the options of a 1-year renewed term are listed
    options = renewal_alignment_options(sub, sku=e3, term="P1Y", starts_on=date(2027, 11, 23))
    # then: every month end within the term, and Visio's end (never the subscription itself)
    month_ends = [date(2027, 11, 30), date(2027, 12, 31)] + [
        date(2028, m, d)
        for m, d in ((1, 31), (2, 29), (3, 31), (4, 30), (5, 31), (6, 30), (7, 31), (8, 31), (9, 30), (10, 31))
    ]
    assert [o.end_date for o in options] == sorted(month_ends + [date(2028, 3, 14)])
    assert next(o.label for o in options if o.end_date == date(2028, 3, 14)) == "With Visio Plan 2 (2028-03-14)"
    assert options[0].label == "End of calendar month (2027-11-30)"


@pytest.mark.rule("K11")
def test_k11_monthly_and_annual_rules_apply_at_renewal(customer, e3):
    sub = subscribe(customer, e3, term="P1M", started=datetime(2027, 10, 23, tzinfo=UTC))  # renews 2027-11-23
    on_28th = subscribe(customer, factories.SkuFactory(), started=datetime(2026, 11, 29, tzinfo=UTC))  # 2027-11-28
    monthly = subscribe(customer, factories.SkuFactory(), term="P1M", started=datetime(2027, 11, 16, tzinfo=UTC))
    assert (on_28th.term_end, monthly.term_end) == (date(2027, 11, 28), date(2027, 12, 15))
    starts = date(2027, 11, 23)
    # a monthly term can't end on the 28th (not the month's last day); it can with a monthly subscription
    assert [o.end_date for o in renewal_alignment_options(sub, sku=e3, term="P1M", starts_on=starts)] == [
        date(2027, 11, 30),
        date(2027, 12, 15),
    ]
    # an annual term can end on the 28th but can't align to a monthly subscription
    annual = [o.end_date for o in renewal_alignment_options(sub, sku=e3, term="P1Y", starts_on=starts)]
    assert date(2027, 11, 28) in annual
    assert date(2027, 12, 15) not in annual
    # an ISV offer is never aligned
    isv = factories.SkuFactory(isv=True)
    assert renewal_alignment_options(sub, sku=isv, term="P1Y", starts_on=starts) == []


@pytest.mark.rule("K11")
@pytest.mark.rule("R1")
def test_k11_an_aligned_end_date_is_scheduled_changed_and_removed(customer, sales, e3, now):
    sub = subscribe(customer, e3)
    changes = schedule(sub, sales, end=date(2028, 5, 31), now=now)
    assert [(c.kind, c.summary) for c in changes] == [("alignment", "End on 2028-05-31")]
    assert scheduled(sub) == [("alignment", None, None, "", "", date(2028, 5, 31))]
    entry = AuditEntry.objects.get(subscription=sub)
    assert (entry.summary, entry.after["aligned_end_date"], "aligned_end_date" in entry.before) == (
        "Scheduled for the renewal: End on 2028-05-31",
        "2028-05-31",
        False,
    )
    schedule(sub, sales, end=date(2027, 12, 31), now=now)
    assert scheduled(sub) == [("alignment", None, None, "", "", date(2027, 12, 31))]
    # the natural end again removes it
    assert schedule(sub, sales, end=NATURAL_END, now=now) == []
    assert scheduled(sub) == []


@pytest.mark.rule("K11")
@pytest.mark.parametrize(
    "end, term",
    [
        (date(2028, 11, 22), None),  # the natural end itself is not "within" the term
        (date(2028, 12, 31), None),  # after the renewed term
        (date(2027, 11, 22), None),  # before the renewal starts
        (date(2028, 2, 15), None),  # neither a month end nor another subscription's end
        (date(2028, 5, 31), "P1M"),  # outside the 1-month term scheduled with it
    ],
    ids=["natural-end", "after-term", "before-start", "any-date", "outside-new-term"],
)
def test_k11_a_date_that_is_not_an_option_is_refused(customer, sales, e3, now, end, term):
    sub = subscribe(customer, e3)
    before = database_state()
    with pytest.raises(RuleViolation) as refused:
        schedule(sub, sales, end=end, term=term, now=now)
    renewed = "1 month" if term else "1 year"
    assert (refused.value.rule, refused.value.status, refused.value.message) == (
        "K11",
        422,
        (
            f"The renewed term can't end on {end:%Y-%m-%d}: choose the end of a calendar month or the end "
            f"date of another active subscription of the customer, within the renewed {renewed} term from "
            "2027-11-23."
        ),
    )
    assert database_state() == before


@pytest.mark.rule("K11")
def test_k11_a_scheduled_end_date_makes_a_later_term_change_answer_why(customer, sales, e3, now):
    sub = subscribe(customer, e3)
    schedule(sub, sales, end=date(2028, 5, 31), now=now)
    before = database_state()
    with pytest.raises(RuleViolation) as refused:
        schedule(sub, sales, term="P1M", now=now)
    assert refused.value.rule == "K11"
    assert database_state() == before


# --- N4: the renewal engine applies them ---------------------------------------------------------------------


@pytest.mark.rule("N4")
@pytest.mark.rule("R1")
@pytest.mark.rule("R5")
def test_n4_the_renewal_continues_on_the_target_sku_at_its_price(customer, sales, e3, e5, now):
    # given an upgrade to E5 scheduled for the renewal
    sub = subscribe(customer, e3)
    schedule(sub, sales, target=e5.pk, now=now)
    # when the engine runs after the term end
    report = run_lifecycle(RENEWAL)
    # then the same subscription renewed on E5 at E5's P1Y monthly price, and nothing is scheduled any more
    assert report.renewed == 1
    renewed = Subscription.objects.get(pk=sub.pk)
    assert (
        renewed.sku,
        renewed.availability,
        renewed.unit_price,
        renewed.quantity,
        renewed.term,
        renewed.billing_frequency,
        renewed.term_start,
        renewed.term_end,
        renewed.status,
    ) == (
        e5,
        factories.availability(e5, "P1Y", "monthly"),
        Decimal("20.00"),
        10,
        "P1Y",
        "monthly",
        RENEWED_TERM_START,
        date(2028, 11, 22),
        Status.ACTIVE,
    )
    assert Subscription.objects.count() == 1
    assert renewal_lines(sub) == [
        (Decimal("200.00"), 10, Decimal("20.00"), date(2027, 11, 23), date(2027, 12, 22), "20.00 × 10")
    ]
    assert scheduled(sub) == []
    # and the audit says licenses are reassigned automatically (R5)
    summary = renewed_summary(sub)
    assert summary == (
        f"Renewed from 2027-11-23 to 2028-11-22; applied: Upgrade to Microsoft 365 E5 ({AUTOMATIC}); charged 200.00 USD"
    )
    entry = AuditEntry.objects.get(subscription=sub, action="subscription.renewed")
    assert (entry.before["sku"], entry.after["sku"], entry.after["unit_price"]) == (e3.sku_id, e5.sku_id, "20.00")


@pytest.mark.rule("N4")
@pytest.mark.rule("R5")
def test_n4_an_upgrade_with_more_licenses_and_annual_billing(customer, sales, e3, e5, now):
    sub = subscribe(customer, e3)
    schedule(sub, sales, quantity=15, billing_frequency="annual", target=e5.pk, now=now)
    run_lifecycle(RENEWAL)
    renewed = Subscription.objects.get(pk=sub.pk)
    assert (renewed.sku, renewed.quantity, renewed.billing_frequency, renewed.unit_price) == (
        e5,
        15,
        "annual",
        Decimal("228.00"),
    )
    assert renewal_lines(sub) == [
        (Decimal("3420.00"), 15, Decimal("228.00"), date(2027, 11, 23), date(2028, 11, 22), "228.00 × 15")
    ]
    assert list(SeatLot.objects.filter(subscription=sub, source="renewal").values_list("quantity", "added_at")) == [
        (15, RENEWAL)
    ]
    assert by_hand(10, 15) in renewed_summary(sub)


@pytest.mark.rule("N4")
@pytest.mark.rule("K11")
def test_n4_an_aligned_end_date_ends_the_renewed_term_and_prorates_its_charge(customer, sales, e3, now):
    # given 2027-11-30 (the end of the renewal's first calendar month) scheduled for a monthly-billed term
    sub = subscribe(customer, e3)
    schedule(sub, sales, end=date(2027, 11, 30), now=now)
    run_lifecycle(RENEWAL)
    renewed = Subscription.objects.get(pk=sub.pk)
    # then the renewed term ends on it and its first month is charged 8 of 30 days
    assert (renewed.term_start, renewed.term_end, renewed.sku) == (RENEWED_TERM_START, date(2027, 11, 30), e3)
    assert renewal_lines(sub) == [
        (Decimal("26.67"), 10, Decimal("10.00"), date(2027, 11, 23), date(2027, 11, 30), "10.00 × 10 × 8/30 days")
    ]
    assert scheduled(sub) == []
    assert renewed_summary(sub) == (
        "Renewed from 2027-11-23 to 2027-11-30; applied: aligned to end on 2027-11-30, "
        "first term prorated; charged 26.67 USD"
    )


@pytest.mark.rule("N4")
@pytest.mark.rule("K11")
@pytest.mark.rule("R1")
def test_n4_upgrade_annual_billing_and_alignment_to_another_subscription_together(customer, sales, e3, e5, now):
    # given Visio ending 2028-03-14, and an upgrade, annual billing and that end date scheduled
    visio = subscribe(customer, factories.SkuFactory(name="Visio Plan 2"), started=datetime(2027, 3, 15, tzinfo=UTC))
    sub = subscribe(customer, e3)
    schedule(sub, sales, billing_frequency="annual", target=e5.pk, end=visio.term_end, now=now)
    # when it renews
    run_lifecycle(RENEWAL)
    # then on E5, billed annually, ending with Visio: 228.00 × 10 × 113/366 days
    renewed = Subscription.objects.get(pk=sub.pk)
    assert (renewed.sku, renewed.billing_frequency, renewed.unit_price, renewed.term_end) == (
        e5,
        "annual",
        Decimal("228.00"),
        date(2028, 3, 14),
    )
    assert renewal_lines(sub) == [
        (Decimal("703.93"), 10, Decimal("228.00"), date(2027, 11, 23), date(2028, 3, 14), "228.00 × 10 × 113/366 days")
    ]


@pytest.mark.rule("N4")
@pytest.mark.rule("K11")
def test_n4_an_end_date_no_longer_valid_at_renewal_keeps_the_natural_end_and_says_why(customer, sales, e3, now):
    # given an annual-billed renewal aligned to Visio's end, 2028-03-14
    visio = subscribe(customer, factories.SkuFactory(name="Visio Plan 2"), started=datetime(2027, 3, 15, tzinfo=UTC))
    sub = subscribe(customer, e3)
    schedule(sub, sales, billing_frequency="annual", end=date(2028, 3, 14), now=now)
    # when Visio is cancelled before the renewal
    Subscription.objects.filter(pk=visio.pk).update(status=Status.DELETED)
    run_lifecycle(RENEWAL)
    # then the renewal keeps its natural end, charges the whole year, and the audit says why
    renewed = Subscription.objects.get(pk=sub.pk)
    assert (renewed.term_end, renewed.billing_frequency) == (date(2028, 11, 22), "annual")
    assert renewal_lines(sub) == [
        (Decimal("1140.00"), 10, Decimal("114.00"), date(2027, 11, 23), date(2028, 11, 22), "114.00 × 10")
    ]
    assert scheduled(sub) == []
    assert (
        "aligned end date 2028-03-14 not applied, natural end kept: The renewed term can't end on 2028-03-14"
        in renewed_summary(sub)
    )
    assert "續約後的期限無法於 2028-03-14 終止" in renewed_summary_in(sub, "zh-hant")
    assert "can't end" not in renewed_summary_in(sub, "zh-hant")


@pytest.mark.rule("N4")
@pytest.mark.rule("R1")
def test_n4_an_upgrade_no_longer_offered_at_renewal_renews_on_the_current_sku(customer, sales, e3, e5, now):
    sub = subscribe(customer, e3)
    schedule(sub, sales, target=e5.pk, now=now)
    UpgradePath.objects.filter(source=e3, target=e5).update(supported=False)  # the matrix changed since
    run_lifecycle(RENEWAL)
    renewed = Subscription.objects.get(pk=sub.pk)
    assert (renewed.sku, renewed.unit_price, renewed.term_end) == (e3, Decimal("10.00"), date(2028, 11, 22))
    assert scheduled(sub) == []
    assert "Upgrade to Microsoft 365 E5 not applied (That upgrade is not offered" in renewed_summary(sub)
    # and read in Traditional Chinese, the refusal inside the sentence is Chinese too (issue 12)
    assert "此訂用帳戶不提供該升級" in renewed_summary_in(sub, "zh-hant")
    assert "That upgrade" not in renewed_summary_in(sub, "zh-hant")


@pytest.mark.rule("N4")
def test_n4_running_the_engine_twice_applies_the_upgrade_and_end_date_once(customer, sales, e3, e5, now):
    sub = subscribe(customer, e3)
    schedule(sub, sales, target=e5.pk, end=date(2027, 12, 31), now=now)
    first = run_lifecycle(RENEWAL)
    again = run_lifecycle(RENEWAL + timedelta(minutes=5))
    assert (first.renewed, again.renewed) == (1, 0)
    renewed = Subscription.objects.get(pk=sub.pk)
    assert (renewed.sku, renewed.term_end) == (e5, date(2027, 12, 31))
    assert len(renewal_lines(sub)) == 1
    assert AuditEntry.objects.filter(subscription=sub, action="subscription.renewed").count() == 1


# --- The Renewals page: what will change and what it will cost ---------------------------------------------------


@pytest.mark.rule("N4")
@pytest.mark.rule("R5")
def test_renewals_page_prices_the_upgrade_and_the_aligned_term(client, customer, sales, e3, e5, now):
    sub = subscribe(customer, e3, started=datetime(2025, 12, 10, tzinfo=UTC))  # ends 2026-12-09
    schedule(sub, sales, quantity=12, billing_frequency="annual", target=e5.pk, end=date(2027, 5, 31), now=now)
    quote = renewals.renewal_quote(
        Subscription.objects.prefetch_related("scheduled_changes__target_sku", "sku__availabilities").get(pk=sub.pk)
    )
    # 228.00 × 12 × 173/365 days (2026-12-10 – 2027-05-31 of 2026-12-10 – 2027-12-09)
    assert (quote.sku_name, quote.quantity, quote.term_end, quote.charge.amount, quote.charge.explanation) == (
        "Microsoft 365 E5",
        12,
        date(2027, 5, 31),
        Decimal("1296.79"),
        "228.00 × 12 × 173/365 days",
    )
    client.force_login(sales)
    page = client.get(reverse("subscriptions:renewals")).content.decode()
    row = " ".join(
        unescape(
            re.sub(r"<[^>]+>", " ", re.search(r'<section id="renewing".*?</section>', page, re.S).group(0))
        ).split()
    )
    assert f"Upgrade to Microsoft 365 E5 ({by_hand(10, 12)})" in row
    assert "End on 2027-05-31" in row
    assert "1,296.79 USD (first annual charge)" in row


# --- The panel through the test client -----------------------------------------------------------------------

url = subscription_url
detail = partial(subscription_url, "detail")
panel_text = partial(card_text, card_id="manage-renewal")


FORM = {"quantity": "10", "term": "P1Y", "billing_frequency": "monthly", "target_sku": "", "aligned_end_date": ""}


@pytest.mark.rule("R1")
@pytest.mark.rule("K11")
def test_r1_the_panel_offers_the_matrix_targets_and_the_end_dates(signed_in, customer, e3, e5, now):
    windows_path_target = factories.SkuFactory(name="EMS E5")
    UpgradePath.objects.create(source=e3, target=windows_path_target, supported=False)
    sub = subscribe(customer, e3)
    html = signed_in.get(detail(sub)).content.decode()
    targets = re.search(r'<select name="target_sku">(.*?)</select>', html, re.S).group(1)
    assert re.findall(r">([^<]+)</option>", targets) == ["Keep Microsoft 365 E3", "Upgrade to Microsoft 365 E5"]
    ends = re.search(r'<select name="aligned_end_date">(.*?)</select>', html, re.S).group(1)
    labels = re.findall(r">([^<]+)</option>", ends)
    assert labels[:3] == [
        "Natural end (2028-11-22)",
        "End of calendar month (2027-11-30)",
        "End of calendar month (2027-12-31)",
    ]
    assert '<option value="2028-05-31" >End of calendar month (2028-05-31)</option>' in ends


@pytest.mark.rule("R1")
@pytest.mark.rule("R5")
@pytest.mark.rule("R3")
def test_r5_posting_an_upgrade_shows_it_with_the_reassignment_sentence(signed_in, customer, e3, e5, now):
    sub = subscribe(customer, e3)
    response = signed_in.post(url("schedule", sub), drawn(sub, {**FORM, "target_sku": str(e5.pk)}))
    assert (response.status_code, response["Location"]) == (302, detail(sub) + "#manage-renewal")
    assert scheduled(sub) == [("upgrade", e5.pk, None, "", "", None)]
    page = signed_in.get(detail(sub))
    assert f"Scheduled for the renewal: Upgrade to Microsoft 365 E5. {AUTOMATIC}" in unescape(page.content.decode())
    text = panel_text(page)
    assert f"Upgrade to Microsoft 365 E5: {AUTOMATIC}" in text
    assert re.search(rf'<option value="{e5.pk}" selected>Upgrade to Microsoft 365 E5</option>', page.content.decode())
    # with 14 licenses scheduled as well, the page says they must be reassigned by hand
    signed_in.post(url("schedule", sub), drawn(sub, {**FORM, "quantity": "14", "target_sku": str(e5.pk)}))
    assert f"Upgrade to Microsoft 365 E5: {by_hand(10, 14)}" in panel_text(signed_in.get(detail(sub)))


@pytest.mark.rule("K11")
def test_k11_posting_an_end_date_schedules_it(signed_in, customer, e3, now):
    sub = subscribe(customer, e3)
    response = signed_in.post(url("schedule", sub), drawn(sub, {**FORM, "aligned_end_date": "2028-05-31"}))
    assert response.status_code == 302
    assert scheduled(sub) == [("alignment", None, None, "", "", date(2028, 5, 31))]
    text = panel_text(signed_in.get(detail(sub)))
    assert "End on 2028-05-31 (UTC; the first renewed term is prorated)" in text


@pytest.mark.rule("R1")
@pytest.mark.rule("K11")
@pytest.mark.parametrize(
    "field, value, rule, message",
    [
        ("target_sku", "abc", "U2", "Choose one of the listed upgrade targets."),
        (
            "target_sku",
            "99999999",
            "U2",
            ("That upgrade is not offered for this subscription: choose one of the listed targets."),
        ),
        ("aligned_end_date", "2027-13-45", "K11", "'2027-13-45' is not a date (YYYY-MM-DD)."),
        ("aligned_end_date", "2028-02-15", "K11", "The renewed term can't end on 2028-02-15"),
    ],
    ids=["target-not-a-number", "target-unknown", "date-malformed", "date-not-an-option"],
)
def test_a_tampered_form_answers_422_and_changes_nothing(signed_in, customer, e3, e5, now, field, value, rule, message):
    sub = subscribe(customer, e3)
    before = database_state()
    response = signed_in.post(url("schedule", sub), drawn(sub, {**FORM, field: value}))
    assert response.status_code == 422
    assert message in panel_text(response)
    assert database_state() == before


@pytest.mark.rule("N6")
def test_n6_posting_an_upgrade_while_the_renewal_is_pending_answers_409(signed_in, customer, e3, e5, now):
    sub = subscribe(customer, e3, renewal_pending=True)
    before = database_state()
    response = signed_in.post(url("schedule", sub), drawn(sub, {**FORM, "target_sku": str(e5.pk)}))
    assert response.status_code == 409
    assert "The renewal is being processed: try again in two minutes." in panel_text(response)
    assert database_state() == before


@pytest.mark.rule("T2")
def test_t2_a_support_agent_gets_403(client, direct_partner, customer, e3, e5, now):
    sub = subscribe(customer, e3)
    client.force_login(factories.staff(direct_partner, "support_agent"))
    before = database_state()
    assert client.post(url("schedule", sub), drawn(sub, {**FORM, "target_sku": str(e5.pk)})).status_code == 403
    assert client.post(url("schedule", sub), drawn(sub, {**FORM, "aligned_end_date": "2028-05-31"})).status_code == 403
    assert database_state() == before


@pytest.mark.rule("T3")
def test_t3_another_partners_subscription_answers_404(signed_in, e3, e5, now):
    other = subscribe(factories.CustomerFactory(), e3)
    before = database_state()
    assert signed_in.post(url("schedule", other), drawn(other, {**FORM, "target_sku": str(e5.pk)})).status_code == 404
    assert (
        signed_in.post(url("schedule", other), drawn(other, {**FORM, "aligned_end_date": "2028-05-31"})).status_code
        == 404
    )
    assert database_state() == before


@pytest.mark.rule("R1")
@pytest.mark.rule("K11")
def test_picking_a_term_in_the_form_recomputes_the_end_dates_offered_without_saving(signed_in, customer, e3, e5):
    # given the 1-year E3 subscription, renewing on 2027-11-23 for a year (natural end 2028-11-22)
    sub = subscribe(customer, e3)
    page = signed_in.get(detail(sub)).content.decode()
    assert "Natural end (2028-11-22)" in page
    # when the partner picks a 1-month term in the Manage renewal form (htmx sends the form, nothing is saved)
    response = signed_in.get(
        detail(sub),
        {
            "renewal_draft": "1",
            "term": "P1M",
            "billing_frequency": "monthly",
            "quantity": "12",
            "target_sku": "",
            "aligned_end_date": "",
        },
        HTTP_HX_REQUEST="true",
    )
    # then the panel alone comes back, for a 1-month renewed term, keeping what was typed
    html = response.content.decode()
    assert response.status_code == 200 and html.lstrip().startswith('<section class="card" id="manage-renewal"')
    assert "Natural end (2027-12-22)" in html
    assert 'name="quantity" min="1" max="300" value="12"' in html
    assert scheduled(sub) == []
    # and picking E5 keeps it chosen in the form; tampered values are ignored, never a 500
    html = signed_in.get(
        detail(sub), {"renewal_draft": "1", "term": "P1Y", "target_sku": str(e5.pk)}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert re.search(rf'<option value="{e5.pk}" selected>Upgrade to Microsoft 365 E5</option>', html)
    for tampered in ({"term": "P9Y"}, {"target_sku": "x"}, {"aligned_end_date": "bogus"}, {"quantity": "-3"}):
        assert signed_in.get(detail(sub), {"renewal_draft": "1", **tampered}, HTTP_HX_REQUEST="true").status_code == 200
    assert scheduled(sub) == []
