"""The lifecycle engine: renewal pending (N6), renewals (N1–N4), expiry and disabling (N5, P2), trial ends
(TR1, S4), run twice or twice at once. Every instant is passed to the engine explicitly."""

import re
import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import partial
from html import unescape

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection
from django.urls import reverse

from portal.errors import RuleViolation
from subscriptions import checks, lifecycle, services
from subscriptions.lifecycle import mark_renewals_pending, renew_due_subscriptions, run_lifecycle
from subscriptions.models import AuditEntry, BillingLine, ScheduledChange, SeatLot, Subscription
from subscriptions.states import Status
from tests import factories

UTC = UTC


@pytest.fixture
def e3(db):
    """P1Y billed monthly at 10.00, P1M billed monthly at 12.00."""
    return factories.SkuFactory(name="Microsoft 365 E3")


# An active P1Y subscription billed monthly at 10.00 whose term started at `started`, of a new customer.
annual = partial(factories.subscribe, None)


def renewal_lines(subscription):
    return list(
        BillingLine.objects.filter(subscription=subscription, kind=BillingLine.Kind.RENEWAL).values_list(
            "amount", "quantity", "unit_price", "period_start", "period_end"
        )
    )


def renewal_lots(subscription):
    return list(
        SeatLot.objects.filter(subscription=subscription, source=SeatLot.Source.RENEWAL).values_list(
            "quantity", "added_at", "window_ends_at"
        )
    )


# --- Renewal ---------------------------------------------------------------------------------------------------


@pytest.mark.rule("N2")
def test_n2_a_term_ending_2023_03_01_renews_from_2023_03_02(e3):
    # given a P1Y term that started on 2022-03-02 and ends (inclusive) on 2023-03-01
    sub = annual(e3, started=datetime(2022, 3, 2, tzinfo=UTC))
    assert sub.term_end == date(2023, 3, 1)

    # when the engine runs on the last day of the term, then at 00:00 UTC the next day
    last_moment = renew_due_subscriptions(datetime(2023, 3, 1, 23, 59, 59, tzinfo=UTC))
    renewal = datetime(2023, 3, 2, 0, 0, tzinfo=UTC)
    report = renew_due_subscriptions(renewal)

    # then nothing happens on the inclusive end date; the renewal is from 2023-03-02T00:00:00Z
    assert last_moment.renewed == 0
    assert report.renewed == 1
    sub.refresh_from_db()
    assert (sub.status, sub.term_start, sub.term_end) == (Status.ACTIVE, renewal, date(2024, 3, 1))
    assert renewal_lines(sub) == [(Decimal("100.00"), 10, Decimal("10.00"), date(2023, 3, 2), date(2023, 4, 1))]


@pytest.mark.rule("N1")
def test_n1_a_subscription_renews_automatically_at_its_term_end(e3):
    # given an active subscription with auto-renew on whose term ended yesterday (2026-12-01)
    sub = annual(e3, started=datetime(2025, 12, 2, 9, 30, tzinfo=UTC))
    now = datetime(2026, 12, 2, 0, 5, tzinfo=UTC)

    # when the engine runs
    report = run_lifecycle(now)

    # then it renews for another year from 00:00 UTC (N2), with a renewal charge, a renewal lot and an audit row
    sub.refresh_from_db()
    assert (report.pending, report.renewed) == (1, 1)
    assert (sub.status, sub.term_start, sub.renewal_completed_at, sub.term_end, sub.renewal_pending) == (
        Status.ACTIVE,
        datetime(2026, 12, 2, tzinfo=UTC),
        now,
        date(2027, 12, 1),
        False,
    )
    assert renewal_lines(sub) == [(Decimal("100.00"), 10, Decimal("10.00"), date(2026, 12, 2), date(2027, 1, 1))]
    assert renewal_lots(sub) == [(10, now, now + timedelta(hours=168))]
    entry = AuditEntry.objects.get(subscription=sub, action="subscription.renewed")
    assert entry.actor is None and entry.at == now
    assert entry.summary == "Renewed from 2026-12-02 to 2027-12-01; charged 100.00 USD"


@pytest.mark.rule("N3")
def test_n3_cancel_and_removal_windows_restart_when_the_renewal_completes(e3):
    # given a subscription whose term ended on 2026-12-01 and whose purchase windows closed long ago
    sub = annual(e3, started=datetime(2025, 12, 2, tzinfo=UTC))
    user = factories.staff(sub.customer.partner)
    completed = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)

    # when the renewal completes at 06:00 UTC on the renewal day
    renew_due_subscriptions(completed)

    # then 168 hours count from that moment for cancelling and for removing the renewed licenses
    sub = Subscription.objects.select_related("sku__product__publisher").get(pk=sub.pk)
    closes = datetime(2026, 12, 9, 6, 0, tzinfo=UTC)
    assert checks.cancellation_window_ends(sub) == closes
    assert checks.removable_quantity(sub, closes - timedelta(seconds=1)) == 10
    assert checks.removable_quantity(sub, closes) == 0
    checks.check_cancel(sub, user, closes - timedelta(seconds=1))
    with pytest.raises(RuleViolation) as refused:
        checks.check_cancel(sub, user, closes)
    assert refused.value.rule == "X1"


@pytest.mark.rule("N2")
@pytest.mark.rule("N3")
def test_n2_a_renewal_processed_at_18_31_starts_its_term_at_00_00_utc(client, e3):
    # given a P1Y term ending (inclusive) on 2026-12-01, 10 licenses at 10.00 billed monthly
    sub = annual(e3, started=datetime(2025, 12, 2, tzinfo=UTC))
    user = factories.staff(sub.customer.partner)
    completed = datetime(2026, 12, 2, 18, 31, tzinfo=UTC)

    # when the renewal's processing completes at 18:31 UTC on the renewal day
    renew_due_subscriptions(completed)

    # then the new term still starts at 00:00 UTC that day (N2), charged its whole first month
    sub = Subscription.objects.select_related("sku__product__publisher").get(pk=sub.pk)
    assert (sub.term_start, sub.renewal_completed_at, sub.term_end) == (
        datetime(2026, 12, 2, tzinfo=UTC),
        completed,
        date(2027, 12, 1),
    )
    assert renewal_lines(sub) == [(Decimal("100.00"), 10, Decimal("10.00"), date(2026, 12, 2), date(2027, 1, 1))]
    # and only the 7-day windows count from the completion (N3)
    closes = datetime(2026, 12, 9, 18, 31, tzinfo=UTC)
    assert checks.cancellation_window_ends(sub) == closes
    assert renewal_lots(sub) == [(10, completed, closes)]
    entry = AuditEntry.objects.get(subscription=sub, action="subscription.renewed")
    assert entry.after["term_start"] == "2026-12-02T00:00:00+00:00"
    # and the page shows the term starting at 00:00 UTC, cancellable until 168 hours after the completion
    client.force_login(user)
    with time_machine.travel(completed + timedelta(hours=1), tick=False):
        page = client.get(reverse("subscriptions:subscription-detail", args=[sub.customer_id, sub.pk]))
    text = " ".join(unescape(re.sub(r"<[^>]+>", " ", page.content.decode())).split())
    assert "Term start 2026-12-02 00:00 UTC" in text
    assert "Cancel, or remove the licenses this term started with, until 2026-12-09 18:31 UTC · 6 d 23 h left." in text


@pytest.mark.rule("N2")
@pytest.mark.rule("N3")
@pytest.mark.rule("X1")
def test_n2_a_renewal_completed_a_day_late_still_bills_and_refunds_from_the_renewal_day(e3):
    # given a term ending (inclusive) on 2026-12-01 whose renewal, the engine having been down, completes at
    # 05:00 UTC on 2026-12-03, the day after the renewal day
    sub = annual(e3, started=datetime(2025, 12, 2, tzinfo=UTC))
    user = factories.staff(sub.customer.partner)
    completed = datetime(2026, 12, 3, 5, 0, tzinfo=UTC)
    renew_due_subscriptions(completed)
    sub = Subscription.objects.select_related("customer__partner", "sku__product__publisher").get(pk=sub.pk)

    # then the term starts on 2026-12-02 00:00 UTC all the same, its first period 2026-12-02..2027-01-01 charged whole
    assert sub.term_start == datetime(2026, 12, 2, tzinfo=UTC)
    assert renewal_lines(sub) == [(Decimal("100.00"), 10, Decimal("10.00"), date(2026, 12, 2), date(2027, 1, 1))]
    assert checks.next_charge_date(sub, date(2026, 12, 4)) == date(2027, 1, 2)
    # and cancelling on 2026-12-04 (inside the 7 days from the completion) refunds the 29 of the period's 31 days
    # left: 10.00 × 10 × 29/31 = 93.548… = 93.55
    refund = services.cancel_subscription(
        subscription_id=sub.pk, actor=user, now=datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
    )
    assert (refund.amount, refund.period_start, refund.period_end, refund.explanation) == (
        Decimal("93.55"),
        date(2026, 12, 4),
        date(2027, 1, 1),
        "10.00 × 10 × 29/31 days",
    )


@pytest.mark.rule("N4")
def test_n4_scheduled_quantity_and_term_are_applied_at_renewal(e3):
    # given 20 licenses and a P1M term scheduled for the renewal, and a SKU upgrade scheduled too
    sub = annual(e3, started=datetime(2025, 12, 2, tzinfo=UTC))
    factories.ScheduledChangeFactory(subscription=sub, kind=ScheduledChange.Kind.QUANTITY, quantity=20)
    factories.ScheduledChangeFactory(subscription=sub, kind=ScheduledChange.Kind.TERM, term="P1M", quantity=None)
    e5 = factories.SkuFactory(name="Microsoft 365 E5")
    upgrade = factories.ScheduledChangeFactory(
        subscription=sub, kind=ScheduledChange.Kind.UPGRADE, target_sku=e5, quantity=None
    )
    now = datetime(2026, 12, 2, 0, 0, tzinfo=UTC)

    # when it renews
    renew_due_subscriptions(now)

    # then the new term is one month of 20 licenses at the P1M price; the upgrade, not a path of the upgrade
    # matrix, is not applied (U2) and the audit says why (test_renewal_upgrade_alignment.py applies one)
    sub.refresh_from_db()
    assert (sub.quantity, sub.term, sub.billing_frequency, sub.unit_price, sub.term_end) == (
        20,
        "P1M",
        "monthly",
        Decimal("12.00"),
        date(2027, 1, 1),
    )
    assert sub.availability == factories.availability(e3, "P1M", "monthly")
    assert renewal_lines(sub) == [(Decimal("240.00"), 20, Decimal("12.00"), date(2026, 12, 2), date(2027, 1, 1))]
    assert renewal_lots(sub) == [(20, now, now + timedelta(hours=168))]
    assert list(sub.scheduled_changes.values_list("pk", flat=True)) == []
    assert sub.sku == e3
    assert (
        f"{upgrade.summary} not applied (That upgrade is not offered"
        in AuditEntry.objects.get(subscription=sub, action="subscription.renewed").summary
    )


@pytest.mark.rule("N5")
def test_n5_auto_renew_off_expires_after_the_term_end(e3):
    # given a subscription with auto-renew off whose term ended on 2026-12-01
    sub = annual(e3, started=datetime(2025, 12, 2, tzinfo=UTC), auto_renew=False)

    # when the engine runs on the last day, then the next day
    assert run_lifecycle(datetime(2026, 12, 1, 23, 59, tzinfo=UTC)).expired == 0
    report = run_lifecycle(datetime(2026, 12, 2, 0, 0, tzinfo=UTC))

    # then it is expired, not renewed, not billed, never marked pending
    sub.refresh_from_db()
    assert (report.pending, report.expired, report.renewed) == (0, 1, 0)
    assert (sub.status, sub.term_end, sub.renewal_pending) == (Status.EXPIRED, date(2026, 12, 1), False)
    assert not BillingLine.objects.filter(subscription=sub).exists()
    assert AuditEntry.objects.filter(subscription=sub, action="subscription.expired").count() == 1


@pytest.mark.rule("N5")
@pytest.mark.rule("P2")
def test_p2_suspended_at_term_end_becomes_disabled(e3):
    # given a subscription suspended (auto-renew off) whose term ended on 2026-12-01
    sub = annual(e3, started=datetime(2025, 12, 2, tzinfo=UTC), suspended=True)
    user = factories.staff(sub.customer.partner, "billing_admin")
    now = datetime(2026, 12, 2, 0, 0, tzinfo=UTC)

    # when the engine runs
    report = run_lifecycle(now)

    # then it is disabled and can never be reactivated
    sub.refresh_from_db()
    assert (report.disabled, sub.status) == (1, Status.DISABLED)
    assert not BillingLine.objects.filter(subscription=sub).exists()
    with pytest.raises(RuleViolation):
        checks.check_reactivate(sub, user, now)


# --- Renewal pending (N6) --------------------------------------------------------------------------------------


@pytest.mark.rule("N6")
def test_n6_pending_from_midnight_after_the_term_end(e3):
    # given a subscription with auto-renew on ending 2026-12-01 and one with auto-renew off
    sub = annual(e3, started=datetime(2025, 12, 2, tzinfo=UTC))
    off = annual(e3, started=datetime(2025, 12, 2, tzinfo=UTC), auto_renew=False)

    # when pending renewals are marked at the last second of the term, then at 00:00 UTC the next day
    before = mark_renewals_pending(datetime(2026, 12, 1, 23, 59, 59, tzinfo=UTC))
    at_midnight = mark_renewals_pending(datetime(2026, 12, 2, 0, 0, tzinfo=UTC))

    # then only the renewing one is pending, from midnight; running again marks nothing more
    assert (before, at_midnight) == (0, 1)
    assert Subscription.objects.get(pk=sub.pk).renewal_pending is True
    assert Subscription.objects.get(pk=off.pk).renewal_pending is False
    assert mark_renewals_pending(datetime(2026, 12, 2, 0, 1, tzinfo=UTC)) == 0


@pytest.mark.rule("N6")
@pytest.mark.parametrize(
    "check",
    [
        lambda s, u, n: checks.check_quantity_change(s, u, n),
        lambda s, u, n: checks.check_decrease(s, u, n, 1),
        lambda s, u, n: checks.check_cancel(s, u, n),
        lambda s, u, n: checks.check_rename(s, u, n),
        lambda s, u, n: checks.check_auto_renew(s, u, n, False),
        lambda s, u, n: checks.check_suspend(s, u, n),
    ],
    ids=["quantity", "decrease", "cancel", "rename", "auto_renew", "suspend"],
)
def test_n6_changes_are_refused_with_a_conflict_while_the_renewal_is_pending(e3, check):
    # given a subscription in its cancellation window, whose renewal is pending
    now = datetime(2026, 12, 2, 0, 0, tzinfo=UTC)
    sub = annual(e3, started=now - timedelta(hours=1), renewal_pending=True)
    user = factories.staff(sub.customer.partner, "admin_agent")

    # when the action is checked
    with pytest.raises(RuleViolation) as refused:
        check(sub, user, now)

    # then it is a 409 asking to retry in two minutes
    assert (refused.value.rule, refused.value.conflict, refused.value.status) == ("N6", True, 409)
    assert refused.value.message == "The renewal is being processed: try again in two minutes."


@pytest.mark.rule("N6")
def test_n6_reactivate_is_refused_while_the_renewal_is_pending(e3):
    now = datetime(2026, 12, 2, 0, 0, tzinfo=UTC)
    sub = annual(e3, started=now - timedelta(days=3), suspended=True, renewal_pending=True)
    user = factories.staff(sub.customer.partner, "billing_admin")
    with pytest.raises(RuleViolation) as refused:
        checks.check_reactivate(sub, user, now)
    assert (refused.value.rule, refused.value.conflict) == ("N6", True)


@pytest.mark.rule("N6")
def test_n6_quantity_post_answers_409_and_changes_nothing(client, customer, sales, e3, now):
    # given a subscription of this partner whose renewal is pending
    sub = factories.subscribe(customer, e3, started=now - timedelta(hours=2), renewal_pending=True)
    client.force_login(sales)

    # when the partner adds licenses
    response = client.post(
        reverse("subscriptions:subscription-quantity", args=[customer.pk, sub.pk]), {"quantity": "15"}
    )

    # then the page answers 409 with the reason, and nothing changed
    assert response.status_code == 409
    assert "The renewal is being processed: try again in two minutes." in response.content.decode()
    sub.refresh_from_db()
    assert (sub.quantity, sub.quantity_updates) == (10, 0)
    assert not BillingLine.objects.filter(subscription=sub).exists()


@pytest.mark.rule("N6")
def test_n6_the_renewal_clears_pending(e3):
    sub = annual(e3, started=datetime(2025, 12, 2, tzinfo=UTC))
    run_lifecycle(datetime(2026, 12, 2, 0, 0, tzinfo=UTC))
    sub.refresh_from_db()
    assert (sub.renewal_pending, sub.term_end) == (False, date(2027, 12, 1))


# --- Trials ----------------------------------------------------------------------------------------------------


@pytest.fixture
def trial_sku(e3):
    return factories.trial_offer(trial_of=e3)


def trial(sku, **extra):
    """A one-month trial of 25 licenses that started on 2026-11-01 and ends (inclusive) on 2026-11-30."""
    return factories.start_trial(None, sku, started=datetime(2026, 11, 1, tzinfo=UTC), **extra)


@pytest.mark.rule("TR1")
def test_tr1_a_trial_with_auto_renew_on_converts_to_the_paid_sku(e3, trial_sku):
    # given a trial ending (inclusive) on 2026-11-30 with auto-renew on
    sub = trial(trial_sku)
    now = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)

    # when the engine runs at its end
    report = run_lifecycle(now)

    # then it is the paid SKU, 25 licenses, P1Y billed monthly, charged for its first month
    sub.refresh_from_db()
    assert report.trials_converted == 1
    assert (sub.sku, sub.is_trial, sub.quantity, sub.term, sub.billing_frequency, sub.unit_price) == (
        e3,
        False,
        25,
        "P1Y",
        "monthly",
        Decimal("10.00"),
    )
    assert (sub.status, sub.term_start, sub.term_end) == (Status.ACTIVE, now, date(2027, 11, 30))
    assert sub.availability == factories.availability(e3, "P1Y", "monthly")
    assert renewal_lines(sub) == [(Decimal("250.00"), 25, Decimal("10.00"), date(2026, 12, 1), date(2026, 12, 31))]
    assert renewal_lots(sub) == [(25, now, now + timedelta(hours=168))]
    assert AuditEntry.objects.filter(subscription=sub, action="subscription.trial_converted").count() == 1


@pytest.mark.rule("N2")
@pytest.mark.rule("N3")
@pytest.mark.rule("TR1")
def test_n2_a_trial_converted_at_its_end_at_07_15_starts_its_paid_term_at_00_00_utc(e3, trial_sku):
    # given a trial ending (inclusive) on 2026-11-30 with auto-renew on
    sub = trial(trial_sku)
    completed = datetime(2026, 12, 1, 7, 15, tzinfo=UTC)

    # when the engine converts it at 07:15 UTC the next day
    run_lifecycle(completed)

    # then its paid term starts at 00:00 UTC, and its 7-day cancellation window counts from 07:15 UTC
    sub = Subscription.objects.select_related("sku__product__publisher").get(pk=sub.pk)
    assert (sub.is_trial, sub.term_start, sub.renewal_completed_at, sub.term_end) == (
        False,
        datetime(2026, 12, 1, tzinfo=UTC),
        completed,
        date(2027, 11, 30),
    )
    assert checks.cancellation_window_ends(sub) == datetime(2026, 12, 8, 7, 15, tzinfo=UTC)
    assert renewal_lines(sub) == [(Decimal("250.00"), 25, Decimal("10.00"), date(2026, 12, 1), date(2026, 12, 31))]


@pytest.mark.rule("TR1")
@pytest.mark.rule("TR8")
def test_tr8_a_scheduled_quantity_below_25_is_used_at_conversion(e3, trial_sku):
    sub = trial(trial_sku)
    factories.ScheduledChangeFactory(subscription=sub, kind=ScheduledChange.Kind.QUANTITY, quantity=8)
    run_lifecycle(datetime(2026, 12, 1, 0, 0, tzinfo=UTC))
    sub.refresh_from_db()
    assert (sub.sku, sub.quantity) == (e3, 8)
    assert renewal_lines(sub) == [(Decimal("80.00"), 8, Decimal("10.00"), date(2026, 12, 1), date(2026, 12, 31))]
    assert not sub.scheduled_changes.exists()


@pytest.mark.rule("TR1")
def test_tr1_a_trial_with_auto_renew_off_ends(e3, trial_sku):
    # given a trial with auto-renew off
    sub = trial(trial_sku, auto_renew=False)

    # when it is not over yet, then when it is
    assert run_lifecycle(datetime(2026, 11, 30, 23, 59, tzinfo=UTC)).trials_ended == 0
    report = run_lifecycle(datetime(2026, 12, 1, 0, 0, tzinfo=UTC))

    # then it ends: expired, still the trial SKU, never billed
    sub.refresh_from_db()
    assert report.trials_ended == 1
    assert (sub.status, sub.sku, sub.is_trial) == (Status.EXPIRED, trial_sku, True)
    assert not BillingLine.objects.filter(subscription=sub).exists()


@pytest.mark.rule("S4")
def test_s4_an_isv_free_trial_end_starts_billing(db):
    # given an ISV subscription 30 days into its free trial, paid term fixed at purchase: 2026-12-25..2027-12-24
    sku = factories.SkuFactory(isv=True, free_trial_days=30, availabilities=[("P1Y", "monthly", "10.00")])
    trial_end = datetime(2026, 12, 25, 12, 0, tzinfo=UTC)
    sub = factories.SubscriptionFactory(
        sku=sku,
        availability=factories.availability(sku),
        quantity=10,
        is_trial=True,
        trial_ends_at=trial_end,
        term_start=trial_end,
        term_end=date(2027, 12, 24),
        created_at=trial_end - timedelta(days=30),
    )
    SeatLot.objects.filter(subscription=sub).delete()  # a free trial opens no removal window (TR4)

    # when the engine runs just before the trial ends, then at its end
    assert run_lifecycle(trial_end - timedelta(seconds=1)).free_trials_ended == 0
    report = run_lifecycle(trial_end)

    # then it is paid from its term start, on the term fixed at purchase
    sub.refresh_from_db()
    assert report.free_trials_ended == 1
    assert (sub.is_trial, sub.status, sub.term_start, sub.term_end) == (
        False,
        Status.ACTIVE,
        trial_end,
        date(2027, 12, 24),
    )
    assert list(
        BillingLine.objects.filter(subscription=sub).values_list("kind", "amount", "period_start", "period_end")
    ) == [("purchase", Decimal("100.00"), date(2026, 12, 25), date(2027, 1, 24))]
    assert list(SeatLot.objects.filter(subscription=sub).values_list("quantity", "window_ends_at")) == [
        (10, trial_end + timedelta(hours=168))
    ]
    # and a second run bills nothing more
    assert run_lifecycle(trial_end + timedelta(minutes=1)).free_trials_ended == 0
    assert BillingLine.objects.filter(subscription=sub).count() == 1


# --- Idempotency and concurrency -------------------------------------------------------------------------------


@pytest.mark.rule("N1")
def test_running_twice_renews_once(e3):
    # given a due subscription
    sub = annual(e3, started=datetime(2025, 12, 2, tzinfo=UTC))
    now = datetime(2026, 12, 2, 0, 0, tzinfo=UTC)

    # when the engine runs twice, at the same instant and a minute later
    first = run_lifecycle(now)
    second = run_lifecycle(now)
    third = run_lifecycle(now + timedelta(minutes=1))

    # then it renewed once
    assert (first.renewed, second.renewed, third.renewed) == (1, 0, 0)
    sub.refresh_from_db()
    assert sub.term_end == date(2027, 12, 1)
    assert len(renewal_lines(sub)) == 1 and len(renewal_lots(sub)) == 1
    assert AuditEntry.objects.filter(subscription=sub, action="subscription.renewed").count() == 1


@pytest.mark.rule("N1")
def test_a_run_stopped_midway_is_finished_by_the_next(e3):
    # given three due subscriptions and a run that handled only the first (as if it crashed after it)
    subs = [annual(e3, started=datetime(2025, 12, 2, tzinfo=UTC)) for _ in range(3)]
    now = datetime(2026, 12, 2, 0, 0, tzinfo=UTC)
    assert renew_due_subscriptions(now, limit=1).renewed == 1

    # when the engine runs again
    report = run_lifecycle(now + timedelta(minutes=1))

    # then the other two are renewed and none twice
    assert report.renewed == 2
    assert [len(renewal_lines(s)) for s in subs] == [1, 1, 1]


@pytest.mark.rule("N1")
def test_the_command_replays_an_instant(e3, capsys):
    sub = annual(e3, started=datetime(2025, 12, 2, tzinfo=UTC))
    call_command("run_lifecycle", "--now", "2026-12-02T00:00:00Z")
    out = capsys.readouterr().out
    assert out.startswith("Lifecycle at 2026-12-02 00:00:00 UTC: pending: 1, renewed: 1, expired: 0")
    sub.refresh_from_db()
    assert sub.term_start == datetime(2026, 12, 2, tzinfo=UTC)


@pytest.mark.rule("N1")
@pytest.mark.django_db(transaction=True)
def test_two_engines_at_once_renew_each_subscription_exactly_once():
    if connection.vendor != "postgresql":
        pytest.skip("SKIP LOCKED needs PostgreSQL")
    # given 30 due subscriptions
    e3 = factories.SkuFactory(name="Microsoft 365 E3")
    subs = [annual(e3, started=datetime(2025, 12, 2, tzinfo=UTC)) for _ in range(30)]
    now = datetime(2026, 12, 2, 0, 0, tzinfo=UTC)
    barrier = threading.Barrier(2)
    reports, errors = [], []

    def engine():
        try:
            barrier.wait()
            reports.append(run_lifecycle(now))
        except Exception as error:  # noqa: BLE001 (reported by the assertion below)
            errors.append(error)
        finally:
            connection.close()

    # when two engines run at the same moment
    threads = [threading.Thread(target=engine) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # then every subscription was renewed exactly once
    assert errors == []
    assert sum(r.renewed for r in reports) == 30
    assert sum(r.failed for r in reports) == 0
    for sub in subs:
        assert len(renewal_lines(sub)) == 1
        assert len(renewal_lots(sub)) == 1
        assert AuditEntry.objects.filter(subscription=sub, action="subscription.renewed").count() == 1
    assert set(Subscription.objects.values_list("term_end", flat=True)) == {date(2027, 12, 1)}


@pytest.mark.rule("N1")
@pytest.mark.rule("N6")
def test_a_renewal_already_made_by_another_engine_since_the_chunk_was_read_is_rolled_back(customer, monkeypatch):
    # given a renewal pending since 00:00 UTC (term ended 2026-11-24), read by the engine with its chunk
    sub = factories.SubscriptionFactory(
        customer=customer, quantity=5, term_start=datetime(2025, 11, 25, tzinfo=UTC), term_end=date(2026, 11, 24)
    )
    now = datetime(2026, 11, 25, 0, 5, tzinfo=UTC)
    lifecycle.mark_renewals_pending(now)
    original = lifecycle._frozen
    done = []

    def renewed_meanwhile(row):
        # another engine renews it after this engine read its chunk, before this engine locks or writes it
        if not done:
            Subscription.objects.filter(pk=row.pk).update(term_end=date(2027, 11, 24), renewal_pending=False)
            done.append(row.pk)
        return original(row)

    monkeypatch.setattr(lifecycle, "_frozen", renewed_meanwhile)
    # when this engine gets to it
    report = lifecycle.renew_due_subscriptions(now)
    # then it renews nothing and writes nothing: no charge, no license lot, no audit row of its own
    assert (report.renewed, report.failed) == (0, 0)
    assert not BillingLine.objects.filter(subscription=sub).exists()
    assert not SeatLot.objects.filter(subscription=sub, source=SeatLot.Source.RENEWAL).exists()
    assert not AuditEntry.objects.filter(subscription=sub, action="subscription.renewed").exists()
