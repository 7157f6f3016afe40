"""Suspending and reactivating (P1–P4, TR4). Today is 2026-11-25 12:00 UTC; the subscriptions are
P1Y, billed monthly at 10.00, started 2026-11-23 12:00 UTC and ending 2027-11-22 (inclusive)."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import partial

import pytest

from portal.errors import RuleViolation
from subscriptions.models import AuditEntry, BillingLine, ScheduledChange, SeatLot, Subscription
from subscriptions.services import cancel_subscription, reactivate_subscription, suspend_subscription
from subscriptions.states import Status
from tests import factories
from tests.helpers import database_state

UTC = UTC


@pytest.fixture
def e3(db):
    return factories.SkuFactory(name="Microsoft 365 E3", availabilities=[("P1Y", "monthly", "10.00")])


subscribe = partial(factories.subscribe, unit_price="10.00")


# P1 Suspend --------------------------------------------------------------------------------------


@pytest.mark.rule("P1")
def test_p1_suspending_makes_the_subscription_suspended_at_once(customer, sales, e3, now):
    # given an active subscription
    sub = subscribe(customer, e3, started=now - timedelta(days=2))
    # when it is suspended (the page asked for confirmation first)
    returned = suspend_subscription(subscription_id=sub.pk, actor=sales, now=now)
    # then it is suspended now, with its licenses kept
    sub.refresh_from_db()
    assert (returned.pk, sub.status, sub.quantity) == (sub.pk, Status.SUSPENDED, 10)
    entry = AuditEntry.objects.get(subscription=sub)
    assert (entry.action, entry.actor, entry.at) == ("subscription.suspended", sales, now)


@pytest.mark.rule("P1")
@pytest.mark.parametrize(
    "status, label",
    [
        (Status.SUSPENDED, "suspended"),
        (Status.PENDING, "pending"),
        (Status.DELETED, "deleted"),
        (Status.EXPIRED, "expired"),
        (Status.DISABLED, "disabled"),
    ],
)
def test_p1_only_an_active_subscription_is_suspended(customer, sales, e3, now, status, label):
    # given a subscription that is not active
    sub = subscribe(customer, e3, started=now - timedelta(days=2), status=status, auto_renew=False)
    before = database_state()
    # when it is suspended
    with pytest.raises(RuleViolation) as refused:
        suspend_subscription(subscription_id=sub.pk, actor=sales, now=now)
    # then it is refused naming its status, and nothing changed
    assert (refused.value.rule, refused.value.message) == (
        "P1",
        f"Only an active subscription can be suspended (this one is {label}).",
    )
    assert database_state() == before


@pytest.mark.rule("TR4")
def test_tr4_a_trial_is_not_suspended(customer, sales, now):
    # given an active trial
    sub = factories.start_trial(customer, started=now - timedelta(days=1))  # ends (inclusive) on 2026-12-23
    before = database_state()
    # when it is suspended
    with pytest.raises(RuleViolation) as refused:
        suspend_subscription(subscription_id=sub.pk, actor=sales, now=now)
    # then it is refused and nothing changed
    assert (refused.value.rule, refused.value.message) == (
        "TR4",
        "A trial's status can't change: convert the trial first.",
    )
    assert database_state() == before


# P2 Reactivate before the term ends; cancel inside the window --------------------------------------


@pytest.mark.rule("P2")
@pytest.mark.rule("P4")
def test_p2_suspended_subscription_is_reactivated_before_its_term_ends(customer, sales, e3, now):
    # given a subscription suspended (auto-renew turned off with it)
    sub = subscribe(customer, e3, started=now - timedelta(days=2))
    suspend_subscription(subscription_id=sub.pk, actor=sales, now=now)
    # when it is reactivated an hour later
    reactivate_subscription(subscription_id=sub.pk, actor=sales, now=now + timedelta(hours=1))
    # then it is active again, auto-renew still off (the page reminds the partner to turn it back on)
    sub.refresh_from_db()
    assert (sub.status, sub.auto_renew, sub.quantity) == (Status.ACTIVE, False, 10)
    entry = AuditEntry.objects.filter(subscription=sub).first()
    assert (entry.action, entry.summary, entry.before, entry.after) == (
        "subscription.reactivated",
        "Reactivated; auto-renew is still off",
        {"status": "suspended"},
        {"status": "active"},
    )


@pytest.mark.rule("P2")
def test_p2_reactivation_on_the_last_second_of_the_term_end_date_is_allowed(customer, sales, e3, now):
    # given a subscription suspended whose term ends on 2027-11-22 (inclusive)
    sub = subscribe(customer, e3, started=now - timedelta(days=2), suspended=True)
    # when it is reactivated at 2027-11-22 23:59:59 UTC
    reactivate_subscription(subscription_id=sub.pk, actor=sales, now=datetime(2027, 11, 22, 23, 59, 59, tzinfo=UTC))
    # then it is active
    assert Subscription.objects.get(pk=sub.pk).status == Status.ACTIVE


@pytest.mark.rule("P2")
@pytest.mark.parametrize("at", [datetime(2027, 11, 23, 0, 0, tzinfo=UTC), datetime(2028, 1, 5, 9, 30, tzinfo=UTC)])
def test_p2_reactivation_after_the_term_end_date_is_refused(customer, sales, e3, now, at):
    # given a subscription suspended whose term ended on 2027-11-22 (inclusive)
    sub = subscribe(customer, e3, started=now - timedelta(days=2), suspended=True)
    before = database_state()
    # when it is reactivated once that date is over
    with pytest.raises(RuleViolation) as refused:
        reactivate_subscription(subscription_id=sub.pk, actor=sales, now=at)
    # then it is refused: it is disabled for good
    assert (refused.value.rule, refused.value.message) == (
        "P2",
        "The term ended on 2027-11-22 (UTC) while suspended: the subscription is disabled and can't be reactivated.",
    )
    # and nothing changed
    assert database_state() == before


@pytest.mark.rule("P2")
@pytest.mark.parametrize("status", [Status.ACTIVE, Status.PENDING, Status.DELETED, Status.DISABLED, Status.EXPIRED])
def test_p2_only_a_suspended_subscription_is_reactivated(customer, sales, e3, now, status):
    # given a subscription that is not suspended
    sub = subscribe(customer, e3, started=now - timedelta(days=2), status=status)
    before = database_state()
    # when it is reactivated
    with pytest.raises(RuleViolation) as refused:
        reactivate_subscription(subscription_id=sub.pk, actor=sales, now=now)
    # then it is refused and nothing changed
    assert (refused.value.rule, refused.value.message) == ("P2", "Only a suspended subscription can be reactivated.")
    assert database_state() == before


@pytest.mark.rule("P2")
@pytest.mark.rule("X1")
def test_p2_a_suspended_subscription_can_still_be_cancelled_inside_its_window(customer, sales, e3, now):
    # given a subscription bought 2026-11-23 12:00 UTC and suspended since
    sub = subscribe(customer, e3, started=now - timedelta(days=2), suspended=True)
    # when it is cancelled on 2026-11-25
    refund = cancel_subscription(subscription_id=sub.pk, actor=sales, now=now)
    # then it is deleted, refunded 10.00 × 10 × 28/30 = 93.33
    sub.refresh_from_db()
    assert (sub.status, sub.cancelled_at) == (Status.DELETED, now)
    assert refund.amount == Decimal("93.33")
    assert list(BillingLine.objects.filter(subscription=sub).values_list("kind", "amount")) == [
        ("cancellation_refund", Decimal("-93.33"))
    ]


@pytest.mark.rule("P2")
@pytest.mark.rule("X1")
def test_p2_a_suspended_subscription_is_not_cancelled_after_its_window(customer, sales, e3, now):
    # given a subscription bought 2026-11-15 12:00 UTC and suspended
    sub = subscribe(customer, e3, started=now - timedelta(days=10), suspended=True)
    before = database_state()
    # when it is cancelled
    with pytest.raises(RuleViolation) as refused:
        cancel_subscription(subscription_id=sub.pk, actor=sales, now=now)
    # then it is refused and nothing changed
    # (suspending turned auto-renew off: the reason says when it ends rather than to turn it off)
    assert (refused.value.rule, refused.value.message) == (
        "X1",
        "The cancellation window closed on 2026-11-22 12:00 UTC: the term is paid in full. Auto-renew is off: "
        f"it ends with its term on {sub.term_end:%Y-%m-%d} (UTC).",
    )
    assert database_state() == before


# P3 Still billed: no refund on suspension ----------------------------------------------------------


@pytest.mark.rule("P3")
def test_p3_suspending_refunds_nothing(customer, sales, e3, now):
    # given a subscription charged 100.00 for its first month, still inside its cancellation window
    sub = subscribe(customer, e3, started=now - timedelta(days=2))
    charge = factories.BillingLineFactory(subscription=sub)
    # when it is suspended, then reactivated
    suspend_subscription(subscription_id=sub.pk, actor=sales, now=now)
    suspended_lines = list(BillingLine.objects.values_list("pk", "kind", "amount"))
    reactivate_subscription(subscription_id=sub.pk, actor=sales, now=now + timedelta(days=1))
    # then the billing lines are unchanged: no refund, no new charge
    assert suspended_lines == [(charge.pk, "purchase", Decimal("100.00"))]
    assert list(BillingLine.objects.values_list("pk", "kind", "amount")) == suspended_lines
    # and the licenses stay
    assert list(SeatLot.objects.values_list("quantity", "removed")) == [(10, 0)]


# P4 Auto-renew off and scheduled changes removed, but a billing-frequency one ------------------------


@pytest.mark.rule("P4")
def test_p4_suspending_turns_auto_renew_off_and_removes_scheduled_changes_but_billing_frequency(
    customer, sales, e3, now
):
    # given an active subscription with auto-renew on and five kinds of change scheduled for its renewal
    sub = subscribe(customer, e3, started=now - timedelta(days=2))
    target = factories.SkuFactory(name="Microsoft 365 E5")
    factories.ScheduledChangeFactory(subscription=sub, kind="upgrade", target_sku=target, quantity=None)
    factories.ScheduledChangeFactory(subscription=sub, kind="quantity", quantity=20)
    factories.ScheduledChangeFactory(subscription=sub, kind="term", term="P1M", quantity=None)
    frequency = factories.ScheduledChangeFactory(
        subscription=sub, kind="billing_frequency", billing_frequency="annual", quantity=None
    )
    factories.ScheduledChangeFactory(
        subscription=sub, kind="alignment", aligned_end_date=date(2027, 12, 31), quantity=None
    )
    # when it is suspended
    suspend_subscription(subscription_id=sub.pk, actor=sales, now=now)
    # then auto-renew is off and only the billing-frequency instruction stays
    sub.refresh_from_db()
    assert (sub.status, sub.auto_renew) == (Status.SUSPENDED, False)
    assert list(ScheduledChange.objects.values_list("pk", "kind")) == [(frequency.pk, "billing_frequency")]
    entry = AuditEntry.objects.get(subscription=sub)
    assert (entry.summary, entry.before, entry.after) == (
        "Suspended; auto-renew turned off; 4 scheduled change(s) removed",
        {"status": "active", "auto_renew": True},
        {"status": "suspended", "auto_renew": False},
    )
