"""The sweep of stranded background work (subscriptions/recovery.py): an order or a Microsoft subscription still
unfinished past the grace period, whose task is not live (a worker killed mid-task leaves it RUNNING for ever),
is queued again, once; fulfilment stays exactly once per line. Now is 2026-11-25 12:00 UTC.

The kill of a real worker process is in test_worker_kill.py (PostgreSQL)."""

import logging
import threading
from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection, connections
from django.tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from catalog.models import Order, OrderLine
from subscriptions import recovery
from subscriptions.lifecycle import lifecycle_tick_task, restart_lost_lifecycle_chain, run_lifecycle
from subscriptions.models import AuditEntry, BillingLine, Subscription
from subscriptions.recovery import requeue_stranded_work
from subscriptions.services import fulfill_order_task, provision_subscription_task
from subscriptions.states import Status
from tests import factories
from tests.helpers import buy

FULFIL, PROVISION, TICK = (
    fulfill_order_task.module_path,
    provision_subscription_task.module_path,
    lifecycle_tick_task.module_path,
)


def claimed(task, *args, at):
    """A task a worker claimed at `at` and died running (kill -9): RUNNING, with no result, for ever."""
    with time_machine.travel(at, tick=False):
        result = task.enqueue(*args)
        row = DBTaskResult.objects.get(pk=result.id)
        row.claim("worker-that-was-killed")
    return row


def queued(task, *args, at):
    with time_machine.travel(at, tick=False):
        return DBTaskResult.objects.get(pk=task.enqueue(*args).id)


def tasks(path, status=None):
    rows = DBTaskResult.objects.filter(task_path=path)
    return list((rows.filter(status=status) if status else rows).values_list("args_kwargs", flat=True))


@pytest.fixture
def placed(customer, sales, now):
    """An order of two lines placed at `at`, not fulfilled."""

    def place(at):
        order = factories.OrderFactory(customer=customer, placed_by=sales, created_at=at)
        factories.OrderLineFactory(order=order)
        factories.OrderLineFactory(order=order)
        return order

    return place


# --- Orders ---------------------------------------------------------------------------------------------------


@pytest.mark.rule("O2")
def test_a_late_order_whose_task_was_lost_is_queued_again_once(placed, now):
    # given an order placed 10 minutes ago whose fulfilment task has been RUNNING since (its worker was killed)
    order = placed(now - timedelta(minutes=10))
    lost = claimed(fulfill_order_task, order.pk, at=now - timedelta(minutes=10))
    # when the sweep runs, twice
    first = requeue_stranded_work(now)
    second = requeue_stranded_work(now)
    # then the order's fulfilment is queued again once, and the lost task is recorded as such
    assert (first.fulfillment_requeued, second.fulfillment_requeued) == (1, 0)
    assert tasks(FULFIL, TaskResultStatus.READY) == [{"args": [order.pk], "kwargs": {}}]
    lost.refresh_from_db()
    assert (lost.status, lost.finished_at, lost.exception_class_path) == (
        TaskResultStatus.FAILED,
        now,
        "subscriptions.recovery.TaskPresumedLost",
    )
    replacement = DBTaskResult.objects.get(task_path=FULFIL, status=TaskResultStatus.READY)
    assert lost.traceback == (
        "Presumed lost at 2026-11-25 12:00:00 UTC: RUNNING with no result for longer than its "
        f"bound (its worker stopped mid-task); queued again as task {replacement.pk}."
    )
    # and the audit trail says so, once, with nothing fulfilled by the sweep itself
    assert list(AuditEntry.objects.filter(action="order.fulfillment_requeued").values_list("order", "summary")) == [
        (order.pk, f"{order.number}: fulfilment queued again (no live background task; placed 2026-11-25 11:50 UTC)")
    ]
    assert not Subscription.objects.exists()


def test_a_late_order_with_no_task_at_all_is_queued(placed, now):
    # given an order placed 3 minutes ago whose task was never queued (the web process died right after the commit)
    order = placed(now - timedelta(minutes=3))
    # when the sweep runs
    report = requeue_stranded_work(now)
    # then its fulfilment is queued
    assert report.fulfillment_requeued == 1
    assert tasks(FULFIL) == [{"args": [order.pk], "kwargs": {}}]


def test_an_order_inside_the_grace_period_is_left_alone(placed, now):
    # given an order placed 1 minute ago, with no task yet
    order = placed(now - timedelta(minutes=1))
    # when the sweep runs, then nothing is queued
    assert requeue_stranded_work(now).fulfillment_requeued == 0
    assert tasks(FULFIL) == []
    assert not AuditEntry.objects.filter(action="order.fulfillment_requeued").exists()
    # and once the grace period is over, it is
    assert requeue_stranded_work(now + recovery.GRACE - timedelta(minutes=1)).fulfillment_requeued == 1
    assert tasks(FULFIL) == [{"args": [order.pk], "kwargs": {}}]


def test_an_order_whose_task_is_ready_is_left_to_the_queue(placed, now):
    # given an order placed an hour ago whose task is still waiting (every worker is stopped)
    order = placed(now - timedelta(hours=1))
    waiting = queued(fulfill_order_task, order.pk, at=now - timedelta(hours=1))
    # when the sweep runs, then nothing more is queued: the task is live
    assert requeue_stranded_work(now).fulfillment_requeued == 0
    assert list(DBTaskResult.objects.values_list("pk", "status")) == [(waiting.pk, TaskResultStatus.READY)]
    # and when a worker takes it and dies, it is queued again once that task is presumed lost
    with time_machine.travel(now, tick=False):
        waiting.claim("worker-that-was-killed")
    assert requeue_stranded_work(now + recovery.PRESUMED_LOST_AFTER).fulfillment_requeued == 1


def test_a_task_running_for_less_than_its_bound_is_live(placed, now):
    # given an order placed 10 minutes ago whose task started 4 minutes ago (the bound is 5)
    order = placed(now - timedelta(minutes=10))
    running = claimed(fulfill_order_task, order.pk, at=now - recovery.PRESUMED_LOST_AFTER + timedelta(minutes=1))
    # when the sweep runs, then it is left running
    assert requeue_stranded_work(now).fulfillment_requeued == 0
    assert list(DBTaskResult.objects.values_list("pk", "status")) == [(running.pk, TaskResultStatus.RUNNING)]
    # and once past the bound it is presumed lost and replaced
    assert requeue_stranded_work(now + timedelta(minutes=1)).fulfillment_requeued == 1
    assert sorted(DBTaskResult.objects.values_list("status", flat=True)) == [
        TaskResultStatus.FAILED,
        TaskResultStatus.READY,
    ]


def test_a_fulfilled_order_is_never_touched(customer, sales, placed, now):
    # given an order fulfilled an hour ago whose worker was killed after the commit, before it recorded success
    order = factories.OrderFactory(
        customer=customer, placed_by=sales, created_at=now - timedelta(hours=1), completed=True
    )
    factories.OrderLineFactory(order=order, fulfilled=True)
    lost = claimed(fulfill_order_task, order.pk, at=now - timedelta(hours=1))
    # and one still pending whose task was lost the same way
    pending = placed(now - timedelta(hours=1))
    claimed(fulfill_order_task, pending.pk, at=now - timedelta(hours=1))
    # when the sweep runs
    report = requeue_stranded_work(now)
    # then only the pending one is queued: neither the fulfilled order nor its task changed
    assert report.fulfillment_requeued == 1
    assert tasks(FULFIL, TaskResultStatus.READY) == [{"args": [pending.pk], "kwargs": {}}]
    lost.refresh_from_db()
    assert (lost.status, lost.finished_at, lost.traceback) == (TaskResultStatus.RUNNING, None, "")
    assert not AuditEntry.objects.filter(order=order).exists()
    order.refresh_from_db()
    assert order.status == Order.Status.COMPLETED


def test_work_that_keeps_failing_is_left_to_an_operator(placed, now, caplog):
    # given a late order whose fulfilment has failed as many times as the sweep retries
    order = placed(now - timedelta(hours=1))
    for attempt in range(recovery.MAX_ATTEMPTS):
        row = claimed(fulfill_order_task, order.pk, at=now - timedelta(minutes=50 - attempt))
        row.set_failed(RuntimeError("the database went away"))
    # when the sweep runs
    with caplog.at_level(logging.ERROR, logger="subscriptions.recovery"):
        report = requeue_stranded_work(now)
    # then it is not queued again, and says so
    assert report.fulfillment_requeued == 0
    assert tasks(FULFIL, TaskResultStatus.READY) == []
    assert f"fulfill_order_task({order.pk}) is still unfinished after 5 tasks" in caplog.text
    # but it is still listed as waiting longer than expected, for the admin
    assert list(recovery.stuck_orders(now)) == [order]


@pytest.mark.rule("O2")
def test_the_lifecycle_pass_runs_the_sweep(placed, now):
    # given a late order whose task was lost
    order = placed(now - timedelta(minutes=10))
    claimed(fulfill_order_task, order.pk, at=now - timedelta(minutes=10))
    # when the lifecycle engine runs, as `run_lifecycle` does every minute
    out = StringIO()
    call_command("run_lifecycle", now="2026-11-25T12:00:00Z", stdout=out)
    # then it queued the order again and reports it
    assert "fulfillment requeued: 1, provisioning requeued: 0, lifecycle requeued: 0" in out.getvalue()
    assert tasks(FULFIL, TaskResultStatus.READY) == [{"args": [order.pk], "kwargs": {}}]
    assert run_lifecycle(now).fulfillment_requeued == 0


@pytest.mark.rule("O2")
@pytest.mark.django_db(transaction=True)  # the worker closes its connection between tasks, as in production
def test_a_requeued_order_is_fulfilled_exactly_once_per_line(customer, sales, now, worker):
    # given an order of two Microsoft offers, bought 10 minutes ago, whose fulfilment task was lost mid-run
    e3 = factories.SkuFactory(name="Microsoft 365 E3", availabilities=[("P1Y", "monthly", "36.00")])
    teams = factories.SkuFactory(name="Teams Essentials", availabilities=[("P1Y", "monthly", "4.00")])
    order = buy(customer, sales, now - timedelta(minutes=10), e3, teams)
    DBTaskResult.objects.get(task_path=FULFIL).claim("worker-that-was-killed")
    # when the worker runs, nothing happens: it runs only READY tasks (the finding)
    worker()
    assert Order.objects.get(pk=order.pk).status == Order.Status.PENDING
    # when the sweep runs (twice) once the task is presumed lost, and then the worker
    later = now + recovery.PRESUMED_LOST_AFTER
    assert requeue_stranded_work(later).fulfillment_requeued == 1
    assert requeue_stranded_work(later).fulfillment_requeued == 0
    worker()
    # then every line is fulfilled once: one subscription each, provisioned, with one purchase charge each
    order.refresh_from_db()
    assert order.status == Order.Status.COMPLETED
    assert sorted(order.lines.values_list("sku__name", "status", "subscription__status")) == [
        ("Microsoft 365 E3", OrderLine.Status.FULFILLED, Status.ACTIVE),
        ("Teams Essentials", OrderLine.Status.FULFILLED, Status.ACTIVE),
    ]
    assert sorted(BillingLine.objects.values_list("subscription__sku__name", "kind", "amount")) == [
        ("Microsoft 365 E3", "purchase", Decimal("360.00")),
        ("Teams Essentials", "purchase", Decimal("40.00")),
    ]
    # and a later pass finds nothing to do
    assert tuple(count for _, count in requeue_stranded_work(later + timedelta(hours=1))) == (0, 0)


# --- Provisioning ---------------------------------------------------------------------------------------------


def pending_subscription(customer, *, created, isv=False):
    order = factories.OrderFactory(customer=customer, created_at=created, completed=True)
    line = factories.OrderLineFactory(
        order=order, fulfilled=True, availability=factories.availability(factories.SkuFactory(isv=isv))
    )
    return factories.SubscriptionFactory(
        customer=customer,
        sku=line.sku,
        availability=line.availability,
        order_line=line,
        status=Status.PENDING,
        created_at=created,
        term_start=created,
    )


@pytest.mark.rule("O2")
def test_late_provisioning_whose_task_was_lost_is_queued_again_once(customer, now):
    # given a Microsoft subscription created 10 minutes ago whose provisioning task was lost
    subscription = pending_subscription(customer, created=now - timedelta(minutes=10))
    claimed(provision_subscription_task, str(subscription.pk), at=now - timedelta(minutes=10))
    # when the sweep runs twice
    reports = [requeue_stranded_work(now), requeue_stranded_work(now)]
    # then its provisioning is queued again once, and audited
    assert [r.provisioning_requeued for r in reports] == [1, 0]
    assert tasks(PROVISION, TaskResultStatus.READY) == [{"args": [str(subscription.pk)], "kwargs": {}}]
    assert AuditEntry.objects.get(action="subscription.provisioning_requeued").subscription == subscription


@pytest.mark.rule("S3")
def test_only_microsoft_subscriptions_pending_provisioning_are_queued(customer, now):
    # given, all created a day ago: an ISV SaaS subscription waiting for its publisher's set-up (no task of the
    # portal does that), an active Microsoft subscription, and a Microsoft one still pending provisioning
    isv = pending_subscription(customer, created=now - timedelta(days=1), isv=True)
    factories.SubscriptionFactory(customer=customer, created_at=now - timedelta(days=1))
    microsoft = pending_subscription(customer, created=now - timedelta(days=1))
    # when the sweep runs, then only the pending Microsoft one is queued, and only its order is late
    assert requeue_stranded_work(now).provisioning_requeued == 1
    assert tasks(PROVISION) == [{"args": [str(microsoft.pk)], "kwargs": {}}]
    assert list(recovery.stuck_orders(now)) == [microsoft.order_line.order]
    assert isv.order_line.order not in recovery.stuck_orders(now)


# --- The lifecycle chain --------------------------------------------------------------------------------------


def test_a_lifecycle_chain_whose_last_tick_was_lost_before_queueing_the_next_restarts_once(db, now):
    # given a chain whose tick was killed before it queued the next one, longer ago than a tick's bound
    lost = claimed(lifecycle_tick_task, at=now - recovery.TICK_PRESUMED_LOST_AFTER - timedelta(seconds=1))
    # when the sweep runs twice
    reports = [restart_lost_lifecycle_chain(now), restart_lost_lifecycle_chain(now)]
    # then one tick is queued, to run now, and the lost one is recorded as such
    assert reports == [True, False]
    assert tasks(TICK, TaskResultStatus.READY) == [{"args": [], "kwargs": {}}]
    lost.refresh_from_db()
    assert lost.status == TaskResultStatus.FAILED
    assert lost.traceback.endswith(
        f"the chain restarted with task {DBTaskResult.objects.get(status=TaskResultStatus.READY).pk}."
    )


def test_a_lost_tick_whose_next_tick_is_queued_is_only_recorded(db, now):
    # given a tick killed mid-pass after it queued the next one (as ticks do, first)
    lost = claimed(lifecycle_tick_task, at=now - timedelta(hours=1))
    following = queued(lifecycle_tick_task.using(run_after=now + timedelta(minutes=1)), at=now - timedelta(hours=1))
    # when the sweep runs, then no second chain starts; the lost tick is recorded as such
    assert restart_lost_lifecycle_chain(now) is False
    assert list(DBTaskResult.objects.filter(status=TaskResultStatus.READY).values_list("pk", flat=True)) == [
        following.pk
    ]
    lost.refresh_from_db()
    assert (lost.status, lost.traceback.endswith("the chain went on with the next tick.")) == (
        TaskResultStatus.FAILED,
        True,
    )


def test_a_running_tick_within_its_bound_is_live_and_no_chain_is_started_from_nothing(db, now):
    # given no tick at all (the engine runs as `run_lifecycle --loop`): nothing is started
    assert restart_lost_lifecycle_chain(now) is False
    # given a tick running for 20 minutes (a long pass; the bound is 30)
    running = claimed(lifecycle_tick_task, at=now - timedelta(minutes=20))
    # when the sweep runs, then it is left running
    assert restart_lost_lifecycle_chain(now) is False
    assert list(DBTaskResult.objects.values_list("pk", "status")) == [(running.pk, TaskResultStatus.RUNNING)]
    # and past the bound it is presumed lost, and the chain restarted
    assert restart_lost_lifecycle_chain(now + timedelta(minutes=10)) is True


# --- Two sweeps at once ---------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_once_queue_an_order_once(placed, now):
    if connection.vendor != "postgresql":
        pytest.skip("two sweeps at once need PostgreSQL's row locks to meet (SQLite runs one writer at a time)")
    # given a late order whose task was lost
    order = placed(now - timedelta(minutes=10))
    claimed(fulfill_order_task, order.pk, at=now - timedelta(minutes=10))
    barrier, reports = threading.Barrier(2, timeout=30), []

    def sweep():
        try:
            barrier.wait()
            reports.append(requeue_stranded_work(now).fulfillment_requeued)
        finally:
            connections.close_all()

    # when two sweeps run at the same instant
    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    # then the order is queued once
    assert sorted(reports) == [0, 1]
    assert tasks(FULFIL, TaskResultStatus.READY) == [{"args": [order.pk], "kwargs": {}}]
    assert AuditEntry.objects.filter(action="order.fulfillment_requeued").count() == 1
