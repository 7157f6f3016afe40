"""Changing the number of licenses now (Q1–Q6, TR4, R6), through the services with the real rules.
Today is 2026-11-25 12:00 UTC; a P1Y subscription billed monthly at 10.00 a license a month that
started on 2026-11-23 12:00 UTC is in its first billing period, 2026-11-23..2026-12-22 (30 days),
of which 2026-11-25..2026-12-22 (28 days) are still to come."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import partial

import pytest
from django.db import connection

from portal.errors import RuleViolation
from subscriptions import checks, selectors
from subscriptions.models import AuditEntry, BillingLine, ScheduledChange, SeatLot, Subscription
from subscriptions.services import change_quantity, plan_quantity_change
from subscriptions.states import Status
from tests import factories
from tests.helpers import at_once, billing_of, database_state

UTC = UTC


@pytest.fixture
def e3(db):
    return factories.SkuFactory(name="Microsoft 365 E3", availabilities=[("P1Y", "monthly", "10.00")])


subscribe = partial(factories.subscribe, unit_price="10.00")


def lots_of(subscription):
    return list(
        SeatLot.objects.filter(subscription=subscription).values_list(
            "source", "quantity", "removed", "added_at", "window_ends_at"
        )
    )


# Q1 Adding licenses ------------------------------------------------------------------------------


@pytest.mark.rule("Q1")
@pytest.mark.rule("Q2")
def test_q1_added_licenses_open_their_own_lot_and_are_charged_to_the_end_of_the_billing_period(
    customer, sales, e3, now
):
    # given 10 licenses bought on 2026-11-23 12:00 UTC
    sub = subscribe(customer, e3, started=now - timedelta(days=2))
    # when 5 more are added
    plan = change_quantity(subscription_id=sub.pk, actor=sales, quantity=15, now=now)
    # then the subscription holds 15, one quantity update counted
    sub.refresh_from_db()
    assert (sub.status, sub.quantity, sub.quantity_updates) == (Status.ACTIVE, 15, 1)
    # and the 5 form their own lot, removable for 168 hours from now, newest first
    assert lots_of(sub) == [
        ("increase", 5, 0, now, datetime(2026, 12, 2, 12, 0, tzinfo=UTC)),
        ("purchase", 10, 0, now - timedelta(days=2), datetime(2026, 11, 30, 12, 0, tzinfo=UTC)),
    ]
    # and they are charged 10.00 × 5 × 28/30 = 46.666… = 46.67 for 2026-11-25..2026-12-22
    assert (plan.old, plan.new, plan.delta, plan.amount) == (10, 15, 5, Decimal("46.67"))
    assert billing_of(sub) == [
        (
            "increase",
            Decimal("46.67"),
            "USD",
            5,
            Decimal("10.00"),
            date(2026, 11, 25),
            date(2026, 12, 22),
            "10.00 × 5 × 28/30 days",
        )
    ]


@pytest.mark.rule("Q1")
def test_q1_licenses_can_be_added_after_every_window_closed(customer, sales, e3, now):
    # given 10 licenses bought on 2026-10-26 12:00 UTC: the billing period 2026-10-26..2026-11-25 (31 days)
    # ends today and no license can be removed any more
    sub = subscribe(customer, e3, started=now - timedelta(days=30))
    assert checks.removable_quantity(sub, now) == 0
    # when 5 are added on its last day
    change_quantity(subscription_id=sub.pk, actor=sales, quantity=15, now=now)
    # then they are charged for that one day: 10.00 × 5 × 1/31 = 1.6129… = 1.61
    assert billing_of(sub) == [
        (
            "increase",
            Decimal("1.61"),
            "USD",
            5,
            Decimal("10.00"),
            date(2026, 11, 25),
            date(2026, 11, 25),
            "10.00 × 5 × 1/31 days",
        )
    ]
    assert Subscription.objects.get(pk=sub.pk).quantity == 15


@pytest.mark.rule("Q1")
def test_q1_stale_page_is_refused_with_a_conflict(customer, sales, e3, now):
    # given a page opened when the subscription had 10 licenses; someone then changed it to 12
    sub = subscribe(customer, e3, started=now - timedelta(days=2))
    page = str(sub.version)
    change_quantity(subscription_id=sub.pk, actor=sales, version=page, quantity=12, now=now)
    before = database_state()
    # when that page submits 15
    with pytest.raises(RuleViolation) as refused:
        change_quantity(subscription_id=sub.pk, actor=sales, version=page, quantity=15, now=now)
    # then it is refused as a conflict (HTTP 409) by the page's version, saying what changed it
    assert (refused.value.rule, refused.value.conflict, refused.value.status) == ("version", True, 409)
    assert refused.value.message.startswith("This subscription changed since you opened the page: Quantity 10 → 12 ")
    # and nothing changed
    assert database_state() == before


@pytest.mark.rule("Q1")
def test_q1_same_quantity_is_refused(customer, sales, e3, now):
    # given 10 licenses
    sub = subscribe(customer, e3, started=now - timedelta(days=2))
    before = database_state()
    # when 10 is submitted
    with pytest.raises(RuleViolation) as refused:
        change_quantity(subscription_id=sub.pk, actor=sales, quantity=10, now=now)
    # then it is refused and nothing changed
    assert (refused.value.rule, refused.value.message) == ("Q1", "The subscription already has 10 licenses.")
    assert database_state() == before


# Q2 Removing licenses within 168 hours of adding them --------------------------------------------


@pytest.mark.rule("Q2")
@pytest.mark.rule("Q3")
def test_q2_removal_takes_from_the_newest_lot_first(customer, sales, e3, now):
    # given 10 licenses bought 2026-11-23 12:00 and 5 added 2026-11-24 12:00, both removable
    sub = subscribe(customer, e3, started=now - timedelta(days=2))
    factories.add_lot(sub, quantity=5, added_at=now - timedelta(days=1))
    # when 7 are removed (15 → 8)
    plan = change_quantity(subscription_id=sub.pk, actor=sales, quantity=8, now=now)
    # then the 5 newest go first, then 2 of the purchase
    sub.refresh_from_db()
    assert (sub.quantity, sub.quantity_updates) == (8, 1)
    assert lots_of(sub) == [
        ("increase", 5, 5, now - timedelta(days=1), datetime(2026, 12, 1, 12, 0, tzinfo=UTC)),
        ("purchase", 10, 2, now - timedelta(days=2), datetime(2026, 11, 30, 12, 0, tzinfo=UTC)),
    ]
    # and each lot's licenses are refunded for the 28 of 30 days not used: 46.666… = 46.67, 18.666… = 18.67
    assert plan.amount == Decimal("-65.34")
    assert billing_of(sub) == [
        (
            "reduction_refund",
            Decimal("-46.67"),
            "USD",
            -5,
            Decimal("10.00"),
            date(2026, 11, 25),
            date(2026, 12, 22),
            "10.00 × 5 × 28/30 days",
        ),
        (
            "reduction_refund",
            Decimal("-18.67"),
            "USD",
            -2,
            Decimal("10.00"),
            date(2026, 11, 25),
            date(2026, 12, 22),
            "10.00 × 2 × 28/30 days",
        ),
    ]


@pytest.mark.rule("Q2")
def test_q2_removing_more_than_is_removable_is_refused_with_the_removable_number(customer, sales, e3, now):
    # given 10 licenses bought 10 days ago (window closed) and 3 added yesterday
    sub = subscribe(customer, e3, started=now - timedelta(days=10))
    factories.add_lot(sub, quantity=3, added_at=now - timedelta(days=1))
    before = database_state()
    # when 5 are removed (13 → 8)
    with pytest.raises(RuleViolation) as refused:
        change_quantity(subscription_id=sub.pk, actor=sales, quantity=8, now=now)
    # then it is refused, naming the 3 that can be removed, on the quantity field (HTTP 422)
    assert (refused.value.rule, refused.value.field, refused.value.status) == ("Q2", "quantity", 422)
    assert refused.value.message == (
        "Only 3 licenses can be removed now (added within the last 7 days); you asked to remove 5."
    )
    # and nothing changed
    assert database_state() == before


@pytest.mark.rule("Q2")
def test_q2_the_removable_licenses_can_all_be_removed(customer, sales, e3, now):
    # given 10 licenses bought 10 days ago (window closed) and 3 added yesterday
    sub = subscribe(customer, e3, started=now - timedelta(days=10))
    factories.add_lot(sub, quantity=3, added_at=now - timedelta(days=1))
    # when exactly those 3 are removed
    change_quantity(subscription_id=sub.pk, actor=sales, quantity=10, now=now)
    # then the lot is emptied; the billing period is 2026-11-15..2026-12-14: 10.00 × 3 × 20/30 = 20.00 back
    assert Subscription.objects.get(pk=sub.pk).quantity == 10
    assert [lot[:3] for lot in lots_of(sub)] == [("increase", 3, 3), ("purchase", 10, 0)]
    assert [line[:4] for line in billing_of(sub)] == [("reduction_refund", Decimal("-20.00"), "USD", -3)]


@pytest.mark.rule("Q2")
def test_q2_a_lot_added_exactly_168_hours_ago_is_not_removable(customer, sales, e3, now):
    # given 10 licenses bought exactly 168 hours ago, 2026-11-18 12:00 UTC
    sub = subscribe(customer, e3, started=now - timedelta(hours=168))
    before = database_state()
    # when one is removed now
    with pytest.raises(RuleViolation) as refused:
        change_quantity(subscription_id=sub.pk, actor=sales, quantity=9, now=now)
    # then it is refused: the window closed at this very instant
    assert refused.value.rule == "Q2"
    assert refused.value.message == (
        "No license can be removed now: the last 7-day window closed on 2026-11-25 "
        "12:00 UTC. Schedule fewer licenses for the renewal instead."
    )
    # and nothing changed
    assert database_state() == before


@pytest.mark.rule("Q2")
@pytest.mark.rule("Q3")
def test_q2_a_lot_added_one_second_less_than_168_hours_ago_is_removable(customer, sales, e3, now):
    # given 10 licenses bought 167 h 59 min 59 s ago, 2026-11-18 12:00:01 UTC
    sub = subscribe(customer, e3, started=now - timedelta(hours=168) + timedelta(seconds=1))
    # when one is removed now
    change_quantity(subscription_id=sub.pk, actor=sales, quantity=9, now=now)
    # then it is removed and refunded for 2026-11-25..2026-12-17, 23 of the period's 30 days: 7.666… = 7.67
    assert Subscription.objects.get(pk=sub.pk).quantity == 9
    assert billing_of(sub) == [
        (
            "reduction_refund",
            Decimal("-7.67"),
            "USD",
            -1,
            Decimal("10.00"),
            date(2026, 11, 25),
            date(2026, 12, 17),
            "10.00 × 1 × 23/30 days",
        )
    ]


@pytest.mark.rule("Q2")
@pytest.mark.rule("Q3")
def test_q2_licenses_added_mid_term_have_their_own_168_hour_window(customer, sales, e3, now):
    # given 10 licenses bought on 2026-11-15 12:00 (window closed) and 5 added now, 2026-11-25 12:00
    sub = subscribe(customer, e3, started=now - timedelta(days=10))
    change_quantity(subscription_id=sub.pk, actor=sales, quantity=15, now=now)
    # when, 168 hours later, one more is removed
    with pytest.raises(RuleViolation) as refused:
        change_quantity(subscription_id=sub.pk, actor=sales, quantity=14, now=now + timedelta(hours=168))
    # then that is refused: their window closed on 2026-12-02 12:00 UTC
    assert refused.value.message == (
        "No license can be removed now: the last 7-day window closed on 2026-12-02 "
        "12:00 UTC. Schedule fewer licenses for the renewal instead."
    )
    # when, one hour earlier, all 5 are removed
    change_quantity(subscription_id=sub.pk, actor=sales, quantity=10, now=now + timedelta(hours=167))
    # then the billing period 2026-11-15..2026-12-14 had 20 days left when they were added and 13 on 2026-12-02
    sub.refresh_from_db()
    assert (sub.quantity, sub.quantity_updates) == (10, 2)
    assert [line[:2] + line[5:] for line in billing_of(sub)] == [
        ("increase", Decimal("33.33"), date(2026, 11, 25), date(2026, 12, 14), "10.00 × 5 × 20/30 days"),
        ("reduction_refund", Decimal("-21.67"), date(2026, 12, 2), date(2026, 12, 14), "10.00 × 5 × 13/30 days"),
    ]


# Q3 Refund: in full less the days already used -----------------------------------------------------


@pytest.mark.rule("Q3")
def test_q3_worked_example_monthly_refund_by_the_day(customer, sales, e3, now):
    # given 10 licenses at 36.00 a month bought on 2026-11-23 12:00 UTC
    sub = subscribe(customer, e3, started=now - timedelta(days=2), unit_price="36.00")
    # when 3 are removed on 2026-11-25
    plan = change_quantity(subscription_id=sub.pk, actor=sales, quantity=7, now=now)
    # then, by hand: the first billing period is 2026-11-23..2026-12-22 = 30 days, billed 36.00 × 3 = 108.00
    # for these 3 licenses. Days used: 2026-11-23 and 2026-11-24 = 2 days = 108.00 × 2/30 = 7.20.
    # Refund = 108.00 − 7.20 = 100.80 (the same as 36.00 × 3 × 28/30).
    assert plan.amount == Decimal("-100.80")
    assert billing_of(sub) == [
        (
            "reduction_refund",
            Decimal("-100.80"),
            "USD",
            -3,
            Decimal("36.00"),
            date(2026, 11, 25),
            date(2026, 12, 22),
            "36.00 × 3 × 28/30 days",
        )
    ]


@pytest.mark.rule("Q3")
def test_q3_worked_example_annual_refund_by_the_day(customer, sales, now):
    # given 10 licenses at 432.00 a year, billed annually, bought on 2026-11-20 12:00 UTC
    sku = factories.SkuFactory(name="Microsoft 365 E3", availabilities=[("P1Y", "annual", "432.00")])
    sub = subscribe(customer, sku, started=now - timedelta(days=5), unit_price="432.00", frequency="annual")
    # when 2 are removed on 2026-11-25
    change_quantity(subscription_id=sub.pk, actor=sales, quantity=8, now=now)
    # then, by hand: the billing period is the year 2026-11-20..2027-11-19 = 365 days, billed 432.00 × 2 = 864.00.
    # Days used: 2026-11-20..2026-11-24 = 5 days, 864.00 × 5/365 = 11.8356…
    # Refund = 864.00 × 360/365 = 852.1643… = 852.16
    assert billing_of(sub) == [
        (
            "reduction_refund",
            Decimal("-852.16"),
            "USD",
            -2,
            Decimal("432.00"),
            date(2026, 11, 25),
            date(2027, 11, 19),
            "432.00 × 2 × 360/365 days",
        )
    ]


# Q4 Licenses available for reduction --------------------------------------------------------------


@pytest.mark.rule("Q4")
def test_q4_removable_lots_are_those_still_in_their_window_newest_first(customer, sales, e3, now):
    # given a purchase 10 days ago (closed), 4 added 6 days ago with 1 already removed, 3 added 2 days ago and
    # all removed, and 2 added an hour ago
    sub = subscribe(customer, e3, started=now - timedelta(days=10))
    six_days = factories.add_lot(sub, quantity=4, removed=1, added_at=now - timedelta(days=6))
    factories.add_lot(sub, quantity=3, removed=3, added_at=now - timedelta(days=2))
    an_hour = factories.add_lot(sub, quantity=2, added_at=now - timedelta(hours=1))
    # when the removable licenses are listed
    lots = checks.removable_lots(sub, now)
    # then the two lots still holding licenses in their window, newest first, each with its closing time
    assert [(lot.pk, lot.quantity - lot.removed, lot.window_ends_at) for lot in lots] == [
        (an_hour.pk, 2, datetime(2026, 12, 2, 11, 0, tzinfo=UTC)),
        (six_days.pk, 3, datetime(2026, 11, 26, 12, 0, tzinfo=UTC)),
    ]
    assert checks.removable_quantity(sub, now) == 5
    # and the plan for a removal says so too
    plan = plan_quantity_change(sub, user=sales, quantity=sub.quantity - 4, now=now)
    assert plan.removable == 5
    assert [(lot.pk, licenses) for lot, licenses, _ in plan.lines] == [(an_hour.pk, 2), (six_days.pk, 2)]


@pytest.mark.rule("Q4")
def test_q4_no_lot_is_removable_once_every_window_closed(customer, sales, e3, now):
    # given a purchase 10 days ago, closed on 2026-11-22 12:00 UTC
    sub = subscribe(customer, e3, started=now - timedelta(days=10))
    # when the removable licenses are listed
    # then there are none, and a removal says that none can be removed since when
    assert checks.removable_lots(sub, now) == []
    assert checks.removable_quantity(sub, now) == 0
    with pytest.raises(RuleViolation) as refused:
        checks.check_decrease(sub, sales, now)
    assert refused.value.message == (
        "No license can be removed now: the last 7-day window closed on 2026-11-22 "
        "12:00 UTC. Schedule fewer licenses for the renewal instead."
    )


@pytest.mark.rule("Q4")
def test_q4_none_removable_message_names_a_window_that_really_closed(customer, sales, e3, now):
    # given a purchase 10 days ago (closed 2026-11-22 12:00) and 3 licenses added yesterday, already removed
    sub = subscribe(customer, e3, started=now - timedelta(days=10))
    factories.add_lot(sub, quantity=3, removed=3, added_at=now - timedelta(days=1))
    # when a removal is checked
    with pytest.raises(RuleViolation) as refused:
        checks.check_decrease(sub, sales, now)
    # then it names the last window that closed on licenses still held, not one still open (2026-12-01 12:00)
    assert refused.value.message == (
        "No license can be removed now: the last 7-day window closed on 2026-11-22 "
        "12:00 UTC. Schedule fewer licenses for the renewal instead."
    )


# Q5 At most 1,200 quantity updates ----------------------------------------------------------------


@pytest.mark.rule("Q5")
def test_q5_the_1200th_update_is_allowed(customer, sales, e3, now):
    # given a subscription updated 1,199 times
    sub = subscribe(customer, e3, started=now - timedelta(days=2), quantity_updates=1199)
    # when its quantity is changed once more
    change_quantity(subscription_id=sub.pk, actor=sales, quantity=11, now=now)
    # then it is, and the count reaches 1,200
    sub.refresh_from_db()
    assert (sub.quantity, sub.quantity_updates) == (11, 1200)


@pytest.mark.rule("Q5")
@pytest.mark.parametrize("quantity", [11, 9])
def test_q5_after_1200_updates_quantity_changes_are_refused_with_the_advice(customer, sales, e3, now, quantity):
    # given a subscription updated 1,200 times
    sub = subscribe(customer, e3, started=now - timedelta(days=2), quantity_updates=1200)
    before = database_state()
    # when licenses are added or removed
    with pytest.raises(RuleViolation) as refused:
        change_quantity(subscription_id=sub.pk, actor=sales, quantity=quantity, now=now)
    # then it is refused advising a second subscription
    assert refused.value.rule == "Q5"
    assert refused.value.message == (
        "This subscription's quantity has been updated 1,200 times, the most allowed: "
        "buy a second subscription of the same offer (it can be aligned to end on the "
        "same date)."
    )
    # and nothing changed
    assert database_state() == before


# Q6 Only an active, non-trial subscription; TR4 ---------------------------------------------------


@pytest.mark.rule("Q6")
@pytest.mark.parametrize(
    "status, quantity, label",
    [
        (Status.SUSPENDED, 11, "suspended"),
        (Status.SUSPENDED, 9, "suspended"),
        (Status.PENDING, 11, "pending"),
        (Status.PENDING, 9, "pending"),
        (Status.DELETED, 11, "deleted"),
        (Status.DELETED, 9, "deleted"),
        (Status.EXPIRED, 11, "expired"),
        (Status.DISABLED, 11, "disabled"),
    ],
)
def test_q6_quantity_is_not_changed_unless_active(customer, sales, e3, now, status, quantity, label):
    # given a subscription in its first days that is not active
    sub = subscribe(customer, e3, started=now - timedelta(days=2), status=status, auto_renew=False)
    before = database_state()
    # when licenses are added or removed
    with pytest.raises(RuleViolation) as refused:
        change_quantity(subscription_id=sub.pk, actor=sales, quantity=quantity, now=now)
    # then it is refused, naming the status
    assert refused.value.rule == "Q6"
    assert refused.value.message == f"Licenses can only be changed on an active subscription (this one is {label})."
    # and nothing changed
    assert database_state() == before


@pytest.mark.rule("Q6")
@pytest.mark.rule("TR4")
@pytest.mark.parametrize("quantity", [26, 24])
def test_tr4_trial_quantity_is_not_changed(customer, sales, now, quantity):
    # given an active trial with 25 licenses started yesterday
    sub = factories.start_trial(customer, started=now - timedelta(days=1))  # ends (inclusive) on 2026-12-23
    before = database_state()
    # when licenses are added or removed
    with pytest.raises(RuleViolation) as refused:
        change_quantity(subscription_id=sub.pk, actor=sales, quantity=quantity, now=now)
    # then it is refused: convert the trial first
    assert (refused.value.rule, refused.value.message) == (
        "TR4",
        "A trial's quantity can't change: convert the trial first.",
    )
    # and nothing changed
    assert database_state() == before


@pytest.mark.rule("Q6")
def test_q6_usage_based_subscription_has_no_quantity_to_change(customer, sales, now):
    # given a usage-based subscription
    azure = factories.SkuFactory(usage=True, name="Azure plan", availabilities=[("P1M", "monthly", "0.00")])
    sub = factories.SubscriptionFactory(
        customer=customer,
        sku=azure,
        quantity=1,
        term="P1M",
        term_start=now - timedelta(days=2),
        term_end=date(2026, 12, 22),
    )
    before = database_state()
    # when its quantity is changed
    with pytest.raises(RuleViolation) as refused:
        change_quantity(subscription_id=sub.pk, actor=sales, quantity=2, now=now)
    # then it is refused and nothing changed
    assert (refused.value.rule, refused.value.message) == ("Q6", "A usage-based subscription has no license quantity.")
    assert database_state() == before


@pytest.mark.rule("Q4")
@pytest.mark.rule("Q5")
@pytest.mark.rule("Q6")
@pytest.mark.rule("TR4")
@pytest.mark.parametrize("updates", [0, checks.MAX_QUANTITY_UPDATES])
@pytest.mark.parametrize("is_trial", [False, True])
@pytest.mark.parametrize("status", list(Status))
def test_q6_tr4_the_licenses_removable_now_are_the_same_loaded_and_queried(
    customer, sales, e3, now, status, is_trial, updates
):
    # given a subscription in this status, a trial or not, under or at Q5's limit of updates, whose purchase lot (10,
    # until 2026-11-30 12:00 UTC) and a lot added yesterday (3, of which 1 removed since) are in their windows
    sub = subscribe(
        customer, e3, started=now - timedelta(days=2), status=status, is_trial=is_trial, quantity_updates=updates
    )
    added = factories.add_lot(sub, quantity=3, removed=1, added_at=now - timedelta(days=1))
    purchase = SeatLot.objects.get(subscription=sub, source=SeatLot.Source.PURCHASE)
    # Q6: only an active subscription; TR4: not a trial; Q5: with an update left
    changeable = status == Status.ACTIVE and not is_trial and updates < checks.MAX_QUANTITY_UPDATES
    # when the removable licenses are read from the loaded subscription and by the lists' queries
    loaded = Subscription.objects.get(pk=sub.pk)
    # then the check and its queryset twin agree, and so do the lots each reads as removable now
    assert checks.licenses_changeable(loaded, now) is changeable
    assert list(Subscription.objects.filter(checks.licenses_changeable_filter())) == ([sub] if changeable else [])
    assert [lot.pk for lot in checks.removable_lots(loaded, now)] == ([added.pk, purchase.pk] if changeable else [])
    assert sorted(selectors.removable_lots(now=now).values_list("pk", flat=True)) == sorted(
        [added.pk, purchase.pk] if changeable else []
    )
    assert checks.removable_quantity(loaded, now) == (12 if changeable else 0)
    if changeable:
        return
    # and a removal is refused with the rule quantity_refusal names, nothing changed
    before = database_state()
    with pytest.raises(RuleViolation) as refused:
        change_quantity(subscription_id=sub.pk, actor=sales, quantity=loaded.quantity - 1, now=now)
    expected = "TR4" if is_trial else "Q6" if status != Status.ACTIVE else "Q5"
    assert refused.value.rule == checks.quantity_refusal(loaded, now).rule == expected
    assert database_state() == before


# R6 A mid-term quantity change deletes the scheduled renewal changes -----------------------------


@pytest.mark.rule("R6")
@pytest.mark.parametrize("quantity", [12, 8])
def test_r6_quantity_change_deletes_scheduled_changes(customer, sales, e3, now, quantity):
    # given a subscription with changes scheduled for its renewal, and another subscription with one
    sub = subscribe(customer, e3, started=now - timedelta(days=2))
    for kind, values in [
        ("quantity", {"quantity": 20}),
        ("term", {"term": "P1M", "quantity": None}),
        ("billing_frequency", {"billing_frequency": "annual", "quantity": None}),
    ]:
        factories.ScheduledChangeFactory(subscription=sub, kind=kind, **values)
    other = factories.ScheduledChangeFactory(subscription=subscribe(customer, e3, started=now - timedelta(days=2)))
    # when its quantity changes now
    plan = plan_quantity_change(Subscription.objects.get(pk=sub.pk), user=sales, quantity=quantity, now=now)
    change_quantity(subscription_id=sub.pk, actor=sales, quantity=quantity, now=now)
    # then the plan warned of the 3 scheduled changes, and they are all deleted; the other subscription's stays
    assert plan.deletes_scheduled == 3
    assert list(ScheduledChange.objects.values_list("pk", flat=True)) == [other.pk]
    entry = AuditEntry.objects.get(subscription=sub)
    assert entry.summary.endswith("; 3 scheduled renewal change(s) deleted")


# Two removals at once (PostgreSQL row locks) -------------------------------------------------------


@pytest.mark.rule("Q2")
@pytest.mark.django_db(transaction=True)
def test_q2_two_removals_from_the_same_page_at_once_remove_once(customer, sales, e3, now):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL row locks; SQLite serialises whole-database writes instead")
    # given 10 licenses whose window closed and 6 added yesterday: 6 removable
    sub = subscribe(customer, e3, started=now - timedelta(days=10))
    factories.add_lot(sub, quantity=6, added_at=now - timedelta(days=1))
    page = str(sub.version)  # the version both tabs were drawn with

    def remove(quantity):
        return lambda: change_quantity(subscription_id=sub.pk, actor=sales, version=page, quantity=quantity, now=now)

    # when two tabs opened at 16 licenses submit 10 and 12 at the same time
    done, refused = at_once(remove(10), remove(12), refusals=RuleViolation)
    # then exactly one removal happened and the other was told the page is stale (its version, portal/versions.py)
    assert len(done) == 1 and len(refused) == 1
    assert (refused[0].rule, refused[0].conflict) == ("version", True)
    sub.refresh_from_db()
    assert (sub.quantity, sub.quantity_updates) == (done[0].new, 1)
    removed = 16 - sub.quantity
    # and never more removed than was removable, refunded once
    increase = SeatLot.objects.get(subscription=sub, source="increase")
    assert (increase.removed, SeatLot.objects.get(subscription=sub, source="purchase").removed) == (removed, 0)
    assert list(BillingLine.objects.filter(subscription=sub).values_list("kind", "quantity")) == [
        ("reduction_refund", -removed)
    ]
    assert AuditEntry.objects.filter(subscription=sub).count() == 1


@pytest.mark.rule("Q2")
@pytest.mark.django_db(transaction=True)
def test_q2_two_removals_at_once_never_remove_more_than_removable(customer, sales, e3, now):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL row locks; SQLite serialises whole-database writes instead")
    # given 10 licenses whose window closed and 6 added yesterday: 6 removable
    sub = subscribe(customer, e3, started=now - timedelta(days=10))
    factories.add_lot(sub, quantity=6, added_at=now - timedelta(days=1))

    def remove():
        return change_quantity(subscription_id=sub.pk, actor=sales, quantity=10, now=now)

    # when two requests without a page check each ask to go down to 10 (remove all 6) at the same time
    done, refused = at_once(remove, remove, refusals=RuleViolation)
    # then one removed the 6, the other found 10 already there
    assert len(done) == 1 and len(refused) == 1
    assert refused[0].message == "The subscription already has 10 licenses."
    sub.refresh_from_db()
    assert (sub.quantity, sub.quantity_updates) == (10, 1)
    assert list(SeatLot.objects.filter(subscription=sub).values_list("source", "quantity", "removed")) == [
        ("increase", 6, 6),
        ("purchase", 10, 0),
    ]
    # and the 6 were refunded once: 2026-11-25..2026-12-14 is 20 of the period's 30 days, 10.00 × 6 × 20/30
    assert list(BillingLine.objects.filter(subscription=sub).values_list("kind", "quantity", "amount")) == [
        ("reduction_refund", -6, Decimal("-40.00"))
    ]
