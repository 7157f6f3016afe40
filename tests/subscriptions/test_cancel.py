"""Cancelling (X1–X3, R6). Today is 2026-11-25 12:00 UTC; the Microsoft subscriptions are P1Y, billed
monthly at 10.00 a license, 10 licenses."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection

from portal.errors import RuleViolation
from subscriptions.lifecycle import run_lifecycle
from subscriptions.models import AuditEntry, BillingLine, ScheduledChange, SeatLot, Subscription
from subscriptions.pricing import Charge
from subscriptions.services import (
    cancel_subscription,
    change_quantity,
    confirm_publisher_setup,
    fulfill_order,
    reactivate_subscription,
    rename_subscription,
    set_auto_renew,
    suspend_subscription,
)
from subscriptions.states import Status
from tests import factories
from tests.helpers import at_once, billing_of, database_state

UTC = UTC


@pytest.fixture
def e3(db):
    return factories.SkuFactory(name="Microsoft 365 E3", availabilities=[("P1Y", "monthly", "10.00")])


subscribe = factories.subscribe


# X1 Within 168 hours of the term start, with a prorated refund --------------------------------------


@pytest.mark.rule("X1")
@pytest.mark.rule("X2")
def test_x1_cancelled_inside_the_window_with_a_prorated_refund(customer, sales, e3, now):
    # given 10 licenses bought 2026-11-23 12:00 UTC
    sub = subscribe(customer, e3, started=now - timedelta(days=2))
    # when it is cancelled on 2026-11-25
    refund = cancel_subscription(subscription_id=sub.pk, actor=sales, now=now)
    # then it is deleted at once, auto-renew off
    sub.refresh_from_db()
    assert (sub.status, sub.auto_renew, sub.cancelled_at, sub.quantity) == (Status.DELETED, False, now, 10)
    # and refunded for the 28 days left of the 30-day billing period 2026-11-23..2026-12-22:
    # 10.00 × 10 × 28/30 = 93.333… = 93.33
    assert refund == Charge(Decimal("93.33"), date(2026, 11, 25), date(2026, 12, 22), "10.00 × 10 × 28/30 days")
    assert billing_of(sub) == [
        (
            "cancellation_refund",
            Decimal("-93.33"),
            "USD",
            -10,
            Decimal("10.00"),
            date(2026, 11, 25),
            date(2026, 12, 22),
            "10.00 × 10 × 28/30 days",
        )
    ]


@pytest.mark.rule("X1")
def test_x1_cancelled_one_second_before_the_window_closes(customer, sales, e3, now):
    # given 10 licenses bought 2026-11-23 12:00 UTC: the window closes 2026-11-30 12:00 UTC
    sub = subscribe(customer, e3, started=now - timedelta(days=2))
    # when it is cancelled at 2026-11-30 11:59:59 UTC
    refund = cancel_subscription(
        subscription_id=sub.pk, actor=sales, now=datetime(2026, 11, 30, 11, 59, 59, tzinfo=UTC)
    )
    # then it is, refunded for 2026-11-30..2026-12-22: 10.00 × 10 × 23/30 = 76.666… = 76.67
    assert Subscription.objects.get(pk=sub.pk).status == Status.DELETED
    assert refund == Charge(Decimal("76.67"), date(2026, 11, 30), date(2026, 12, 22), "10.00 × 10 × 23/30 days")


@pytest.mark.rule("X1")
@pytest.mark.parametrize("at", [datetime(2026, 11, 30, 12, 0, tzinfo=UTC), datetime(2026, 12, 20, 8, 0, tzinfo=UTC)])
def test_x1_cancelling_after_the_window_is_refused_with_its_utc_close_time(customer, sales, e3, now, at):
    # given 10 licenses bought 2026-11-23 12:00 UTC, charged for the first month
    sub = subscribe(customer, e3, started=now - timedelta(days=2))
    factories.BillingLineFactory(subscription=sub)
    before = database_state()
    # when it is cancelled at or after 2026-11-30 12:00 UTC
    with pytest.raises(RuleViolation) as refused:
        cancel_subscription(subscription_id=sub.pk, actor=sales, now=at)
    # then it is refused, saying exactly when the window closed and what to do instead
    assert (refused.value.rule, refused.value.status) == ("X1", 422)
    assert refused.value.message == (
        "The cancellation window closed on 2026-11-30 12:00 UTC: the term is paid in "
        "full. Turn auto-renew off so it ends with its term."
    )
    # and nothing changed
    assert database_state() == before


@pytest.mark.rule("X1")
def test_x1_after_the_window_with_auto_renew_off_it_says_when_the_subscription_ends(customer, sales, e3, now):
    # given 10 licenses bought 2026-11-23 12:00 UTC whose auto-renew is already off
    sub = subscribe(customer, e3, started=now - timedelta(days=2))
    Subscription.objects.filter(pk=sub.pk).update(auto_renew=False)
    sub.refresh_from_db()
    before = database_state()
    # when it is cancelled after the window
    with pytest.raises(RuleViolation) as refused:
        cancel_subscription(subscription_id=sub.pk, actor=sales, now=datetime(2026, 12, 1, tzinfo=UTC))
    # then the reason does not ask for what is already done: it says when the subscription ends
    assert refused.value.message == (
        "The cancellation window closed on 2026-11-30 12:00 UTC: the term is paid in "
        f"full. Auto-renew is off: it ends with its term on {sub.term_end:%Y-%m-%d} (UTC)."
    )
    assert database_state() == before


@pytest.mark.rule("X1")
def test_x1_a_renewed_term_opens_a_new_cancellation_window(customer, sales, e3, now):
    # given a subscription bought a year ago whose renewed term started 2026-11-24 12:00 UTC
    sub = subscribe(customer, e3, started=now - timedelta(days=1), created_at=datetime(2025, 11, 24, 12, 0, tzinfo=UTC))
    # when it is cancelled on 2026-11-25
    refund = cancel_subscription(subscription_id=sub.pk, actor=sales, now=now)
    # then it is, refunded 29 of the 30 days of 2026-11-24..2026-12-23: 10.00 × 10 × 29/30 = 96.67
    assert Subscription.objects.get(pk=sub.pk).status == Status.DELETED
    assert refund == Charge(Decimal("96.67"), date(2026, 11, 25), date(2026, 12, 23), "10.00 × 10 × 29/30 days")


# X2 Cancelled is final -------------------------------------------------------------------------------


def _cancel(sub, actor, now):
    cancel_subscription(subscription_id=sub.pk, actor=actor, now=now)


def _reactivate(sub, actor, now):
    reactivate_subscription(subscription_id=sub.pk, actor=actor, now=now)


def _add(sub, actor, now):
    change_quantity(subscription_id=sub.pk, actor=actor, quantity=11, now=now)


def _remove(sub, actor, now):
    change_quantity(subscription_id=sub.pk, actor=actor, quantity=9, now=now)


def _suspend(sub, actor, now):
    suspend_subscription(subscription_id=sub.pk, actor=actor, now=now)


def _auto_renew_on(sub, actor, now):
    set_auto_renew(subscription_id=sub.pk, actor=actor, on=True, now=now)


def _rename(sub, actor, now):
    rename_subscription(subscription_id=sub.pk, actor=actor, friendly_name="Head office", now=now)


@pytest.mark.rule("X2")
@pytest.mark.parametrize(
    "act, rule, message",
    [
        (_cancel, "X2", "This subscription is deleted: it can't be cancelled, resumed or restored."),
        (_reactivate, "P2", "Only a suspended subscription can be reactivated."),
        (_add, "Q6", "Licenses can only be changed on an active subscription (this one is deleted)."),
        (_remove, "Q6", "Licenses can only be changed on an active subscription (this one is deleted)."),
        (_suspend, "P1", "Only an active subscription can be suspended (this one is deleted)."),
        (_auto_renew_on, "P4", "Auto-renew can only be changed on an active subscription (this one is deleted)."),
        (_rename, "X2", "A cancelled subscription can't be renamed."),
    ],
    ids=["cancel", "reactivate", "add", "remove", "suspend", "auto-renew", "rename"],
)
def test_x2_a_deleted_subscription_cannot_be_cancelled_reactivated_or_changed(
    customer, sales, e3, now, act, rule, message
):
    # given a subscription cancelled an hour ago, still inside what was its window
    sub = subscribe(customer, e3, started=now - timedelta(days=2))
    cancel_subscription(subscription_id=sub.pk, actor=sales, now=now - timedelta(hours=1))
    before = database_state()
    # when anything is done to it
    with pytest.raises(RuleViolation) as refused:
        act(sub, sales, now)
    # then it is refused and nothing changed
    assert (refused.value.rule, refused.value.message) == (rule, message)
    assert database_state() == before


# X3 ISV SaaS: full refund within 72 hours of purchase ------------------------------------------------


@pytest.mark.rule("X3")
def test_x3_isv_subscription_cancelled_within_72_hours_is_refunded_in_full(customer, sales, saas, now):
    # given an ISV subscription bought 2026-11-23 12:00 UTC (48 hours ago) and charged 8.00 × 10 = 80.00
    sub = subscribe(customer, saas, started=now - timedelta(hours=48), setup_confirmed_at=now - timedelta(hours=47))
    factories.BillingLineFactory(subscription=sub)
    # when it is cancelled
    refund = cancel_subscription(subscription_id=sub.pk, actor=sales, now=now)
    # then it is deleted and refunded the whole 80.00, not 28/30 of it (74.67)
    sub.refresh_from_db()
    assert (sub.status, sub.cancelled_at) == (Status.DELETED, now)
    assert refund.amount == Decimal("80.00")
    assert [line[:5] + line[7:] for line in billing_of(sub)] == [
        ("purchase", Decimal("80.00"), "USD", 10, Decimal("8.00"), "8.00 × 10"),
        ("cancellation_refund", Decimal("-80.00"), "USD", -10, Decimal("8.00"), "full refund within 72 hours"),
    ]


@pytest.mark.rule("X3")
def test_x3_isv_subscription_cancelled_one_second_before_72_hours(customer, sales, saas, now):
    # given an ISV subscription bought 71 h 59 min 59 s ago and charged 80.00
    sub = subscribe(customer, saas, started=now - timedelta(hours=72) + timedelta(seconds=1))
    factories.BillingLineFactory(subscription=sub)
    # when it is cancelled
    refund = cancel_subscription(subscription_id=sub.pk, actor=sales, now=now)
    # then it is refunded in full
    assert refund.amount == Decimal("80.00")
    assert Subscription.objects.get(pk=sub.pk).status == Status.DELETED


@pytest.mark.rule("X3")
@pytest.mark.parametrize(
    "bought, closed",
    [
        (timedelta(hours=72), "2026-11-25 12:00"),
        # still inside the 168 hours a Microsoft subscription would have, but not the ISV's 72
        (timedelta(days=4), "2026-11-24 12:00"),
    ],
)
def test_x3_isv_subscription_after_72_hours_is_refused_advising_auto_renew_off(
    customer, sales, saas, now, bought, closed
):
    # given an ISV subscription bought 72 hours or more ago, charged 80.00
    sub = subscribe(customer, saas, started=now - bought)
    factories.BillingLineFactory(subscription=sub)
    before = database_state()
    # when it is cancelled
    with pytest.raises(RuleViolation) as refused:
        cancel_subscription(subscription_id=sub.pk, actor=sales, now=now)
    # then it is refused, with the close time and the advice to turn auto-renew off
    assert (refused.value.rule, refused.value.message) == (
        "X3",
        f"The 72-hour cancellation period closed on {closed} UTC. Turn auto-renew off instead: the "
        "subscription then ends with its term.",
    )
    # and nothing changed
    assert database_state() == before
    # and the advice can be followed
    set_auto_renew(subscription_id=sub.pk, actor=sales, on=False, now=now)
    assert Subscription.objects.get(pk=sub.pk).auto_renew is False


@pytest.mark.rule("X3")
@pytest.mark.rule("S3")
def test_x3_isv_subscription_awaiting_set_up_is_cancelled_with_nothing_to_refund(customer, sales, saas, now):
    # given an ISV subscription bought an hour ago, pending its publisher set-up and not billed
    sub = subscribe(customer, saas, started=now - timedelta(hours=1), status=Status.PENDING)
    # when it is cancelled
    refund = cancel_subscription(subscription_id=sub.pk, actor=sales, now=now)
    # then it is deleted with no refund line
    assert Subscription.objects.get(pk=sub.pk).status == Status.DELETED
    assert refund.amount == Decimal("0.00")
    assert not BillingLine.objects.exists()


def bought_isv(customer, sales, sku, *, at):
    """An ISV SaaS subscription as fulfilment makes it: pending its publisher's set-up, unbilled (S3)."""
    order = factories.OrderFactory(customer=customer, placed_by=sales)
    factories.OrderLineFactory(order=order, availability=factories.availability(sku), quantity=10)
    fulfill_order(order_id=order.pk, now=at)
    return Subscription.objects.get(sku=sku)


@pytest.mark.rule("X3")
@pytest.mark.rule("S3")
@pytest.mark.rule("S0")
def test_x3_isv_subscription_pending_its_set_up_for_five_days_is_cancelled_at_once(customer, sales, saas, now):
    # given an ISV subscription bought five days ago (2026-11-20 12:00 UTC) whose set-up is still pending: unbilled
    sub = bought_isv(customer, sales, saas, at=now - timedelta(days=5))
    assert (sub.status, BillingLine.objects.count()) == (Status.PENDING, 0)
    # when it is cancelled, long after the 72 hours from purchase
    refund = cancel_subscription(subscription_id=sub.pk, actor=sales, now=now)
    # then it ends at once (deleted, S0), with nothing refunded and no billing line, since nothing was billed
    sub.refresh_from_db()
    assert (sub.status, sub.auto_renew, sub.cancelled_at) == (Status.DELETED, False, now)
    assert refund == Charge(Decimal("0.00"), date(2026, 11, 25), date(2026, 11, 25), "nothing was charged")
    assert not BillingLine.objects.exists()
    # and the audit trail says so
    entry = AuditEntry.objects.get(subscription=sub, action="subscription.cancelled")
    assert (entry.actor, entry.at, entry.summary, entry.before, entry.after) == (
        sales,
        now,
        "Cancelled while awaiting the publisher's set-up: nothing was billed, nothing refunded",
        {"status": "pending"},
        {"status": "deleted", "refund": "0.00"},
    )


@pytest.mark.rule("X3")
@pytest.mark.rule("T2")
def test_x3_a_support_agent_cannot_cancel_a_pending_isv_subscription(customer, direct_partner, sales, saas, now):
    # given an ISV subscription pending its set-up, and a support agent
    sub = bought_isv(customer, sales, saas, at=now - timedelta(days=5))
    support = factories.staff(direct_partner, "support_agent")
    before = database_state()
    # when the support agent cancels it
    with pytest.raises(PermissionDenied):
        cancel_subscription(subscription_id=sub.pk, actor=support, now=now)
    # then nothing changed
    assert database_state() == before


@pytest.mark.rule("X3")
@pytest.mark.rule("S3")
def test_x3_the_72_hours_count_from_the_set_up_confirmation_not_the_purchase(customer, sales, saas, now):
    # given an ISV subscription bought five days ago whose publisher confirmed the set-up 48 hours ago (2026-11-23
    # 12:00 UTC), when its billing started: 8.00 × 10 = 80.00
    sub = bought_isv(customer, sales, saas, at=now - timedelta(days=5))
    confirm_publisher_setup(subscription_id=sub.pk, actor=sales, now=now - timedelta(hours=48))
    # when it is cancelled
    refund = cancel_subscription(subscription_id=sub.pk, actor=sales, now=now)
    # then it is refunded in full: 72 hours have not passed since its billing started
    assert Subscription.objects.get(pk=sub.pk).status == Status.DELETED
    assert refund.amount == Decimal("80.00")
    assert [line[:2] + line[5:] for line in billing_of(sub)] == [
        ("purchase", Decimal("80.00"), date(2026, 11, 23), date(2026, 12, 22), "8.00 × 10"),
        (
            "cancellation_refund",
            Decimal("-80.00"),
            date(2026, 11, 23),
            date(2026, 12, 22),
            "full refund within 72 hours",
        ),
    ]


@pytest.mark.rule("X3")
@pytest.mark.parametrize(
    "confirmed, closed", [(timedelta(hours=72), "2026-11-25 12:00"), (timedelta(hours=73), "2026-11-25 11:00")]
)
def test_x3_72_hours_after_the_set_up_confirmation_it_is_refused(customer, sales, saas, now, confirmed, closed):
    # given an ISV subscription bought five days ago and set up 72 hours ago or more
    sub = bought_isv(customer, sales, saas, at=now - timedelta(days=5))
    confirm_publisher_setup(subscription_id=sub.pk, actor=sales, now=now - confirmed)
    before = database_state()
    # when it is cancelled
    with pytest.raises(RuleViolation) as refused:
        cancel_subscription(subscription_id=sub.pk, actor=sales, now=now)
    # then it is refused, the period having closed 72 hours after the confirmation, and nothing changed
    assert (refused.value.rule, refused.value.message) == (
        "X3",
        f"The 72-hour cancellation period closed on {closed} UTC. Turn auto-renew off instead: the "
        "subscription then ends with its term.",
    )
    assert database_state() == before


@pytest.fixture
def saas_with_trial(db):
    return factories.SkuFactory(
        isv=True, name="SignFlow", free_trial_days=30, availabilities=[("P1Y", "monthly", "8.00")]
    )


@pytest.mark.rule("X3")
@pytest.mark.rule("S4")
def test_x3_a_free_trial_can_be_cancelled_at_any_time_during_it_with_nothing_to_refund(
    customer, sales, saas_with_trial, now
):
    # given an ISV subscription bought 20 days ago in its 30-day free trial, set up the day after
    sub = bought_isv(customer, sales, saas_with_trial, at=now - timedelta(days=20))
    confirm_publisher_setup(subscription_id=sub.pk, actor=sales, now=now - timedelta(days=19))
    # when it is cancelled
    refund = cancel_subscription(subscription_id=sub.pk, actor=sales, now=now)
    # then it is deleted, nothing billed, nothing refunded
    assert Subscription.objects.get(pk=sub.pk).status == Status.DELETED
    assert refund.amount == Decimal("0.00")
    assert not BillingLine.objects.exists()


@pytest.mark.rule("X3")
@pytest.mark.rule("S4")
def test_x3_after_a_free_trial_the_72_hours_count_from_its_end(customer, sales, saas_with_trial, now):
    # given an ISV subscription bought now (2026-11-25 12:00 UTC) in a 30-day free trial, set up at once; the engine
    # bills it when the trial ends on 2026-12-25 12:00 UTC
    bought = now
    sub = bought_isv(customer, sales, saas_with_trial, at=bought)
    confirm_publisher_setup(subscription_id=sub.pk, actor=sales, now=bought + timedelta(minutes=5))
    trial_end = bought + timedelta(days=30)
    run_lifecycle(trial_end)
    assert list(BillingLine.objects.values_list("kind", "amount")) == [("purchase", Decimal("80.00"))]
    # when it is cancelled 72 hours after the trial ended, it is refused and nothing changes
    before = database_state()
    with pytest.raises(RuleViolation) as refused:
        cancel_subscription(subscription_id=sub.pk, actor=sales, now=trial_end + timedelta(hours=72))
    assert refused.value.message.startswith("The 72-hour cancellation period closed on 2026-12-28 12:00 UTC.")
    assert database_state() == before
    # and a second earlier it is refunded in full
    refund = cancel_subscription(
        subscription_id=sub.pk, actor=sales, now=trial_end + timedelta(hours=72) - timedelta(seconds=1)
    )
    assert refund.amount == Decimal("80.00")


# R6 Cancelling deletes the scheduled renewal changes ------------------------------------------------


@pytest.mark.rule("R6")
def test_r6_cancelling_deletes_scheduled_changes(customer, sales, e3, now):
    # given a subscription with a quantity and a billing-frequency change scheduled, and another subscription's
    sub = subscribe(customer, e3, started=now - timedelta(days=2))
    factories.ScheduledChangeFactory(subscription=sub, kind="quantity", quantity=20)
    factories.ScheduledChangeFactory(
        subscription=sub, kind="billing_frequency", billing_frequency="annual", quantity=None
    )
    other = factories.ScheduledChangeFactory(subscription=subscribe(customer, e3, started=now - timedelta(days=2)))
    # when it is cancelled
    cancel_subscription(subscription_id=sub.pk, actor=sales, now=now)
    # then both of its changes are deleted, the other subscription's stays
    assert list(ScheduledChange.objects.values_list("pk", flat=True)) == [other.pk]
    assert (
        AuditEntry.objects.get(subscription=sub).summary == "Cancelled; refund 93.33 USD; 2 scheduled change(s) deleted"
    )


# Races (PostgreSQL row locks) ----------------------------------------------------------------------


def run_at_once(*calls):
    """The calls in threads released together; returns (results, rule refusals)."""
    return at_once(*calls, refusals=RuleViolation)


@pytest.mark.rule("X1")
@pytest.mark.rule("Q2")
@pytest.mark.django_db(transaction=True)
def test_x1_a_removal_racing_a_cancellation_never_refunds_a_license_twice(customer, sales, e3, now):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL row locks; SQLite serialises whole-database writes instead")
    # given 10 licenses bought 2026-11-23 12:00 UTC, all removable
    sub = subscribe(customer, e3, started=now - timedelta(days=2))
    # when 6 are removed while the subscription is cancelled
    results, refused = run_at_once(
        lambda: change_quantity(subscription_id=sub.pk, actor=sales, quantity=4, now=now),
        lambda: cancel_subscription(subscription_id=sub.pk, actor=sales, now=now),
    )
    # then it ends cancelled with exactly one cancellation refund
    sub.refresh_from_db()
    assert sub.status == Status.DELETED
    refunds = list(BillingLine.objects.filter(subscription=sub).values_list("kind", "quantity", "amount"))
    assert [kind for kind, _, _ in refunds].count("cancellation_refund") == 1
    # and each of the 10 licenses was refunded once, whichever came first:
    # removal first: 10.00 × 6 × 28/30 = 56.00, then the cancellation 10.00 × 4 × 28/30 = 37.33;
    # cancellation first: 10.00 × 10 × 28/30 = 93.33, and the removal is refused
    assert sum(quantity for _, quantity, _ in refunds) == -10
    assert sum(amount for _, _, amount in refunds) == Decimal("-93.33")
    if refused:
        assert len(results) == 1
        assert (refused[0].rule, refused[0].message) == (
            "Q6",
            "Licenses can only be changed on an active subscription (this one is deleted).",
        )
        assert refunds == [("cancellation_refund", -10, Decimal("-93.33"))]
        assert SeatLot.objects.get(subscription=sub).removed == 0
    else:
        assert len(results) == 2
        assert refunds == [("reduction_refund", -6, Decimal("-56.00")), ("cancellation_refund", -4, Decimal("-37.33"))]
        assert SeatLot.objects.get(subscription=sub).removed == 6


@pytest.mark.rule("X1")
@pytest.mark.django_db(transaction=True)
def test_x1_two_cancellations_at_once_refund_once(customer, sales, e3, now):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL row locks; SQLite serialises whole-database writes instead")
    # given 10 licenses bought 2026-11-23 12:00 UTC
    sub = subscribe(customer, e3, started=now - timedelta(days=2))
    # when it is cancelled twice at the same time (double click)
    results, refused = run_at_once(*[lambda: cancel_subscription(subscription_id=sub.pk, actor=sales, now=now)] * 2)
    # then one cancellation refunded 93.33 and the other found it already deleted
    assert [r.amount for r in results] == [Decimal("93.33")]
    assert [(r.rule, r.message) for r in refused] == [
        ("X2", "This subscription is deleted: it can't be cancelled, resumed or restored.")
    ]
    assert list(BillingLine.objects.values_list("kind", "amount")) == [("cancellation_refund", Decimal("-93.33"))]
    assert AuditEntry.objects.filter(subscription=sub).count() == 1
