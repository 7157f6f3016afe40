"""Issue 9, finding 2, with a real worker: a `manage.py db_worker` process is killed (SIGKILL) while it runs a task,
another is started, and the work is finished exactly once.

The worker is held mid-task legitimately: the test holds, from its own connection, the row lock the task's service
takes first (`SELECT ... FOR UPDATE` on the order, or the subscription), so the worker waits inside the task's
transaction, its task RUNNING, until it is killed. That needs PostgreSQL: SQLite has no row locks, and its test
database is in memory, out of reach of another process.

Real time, no frozen clock: the worker processes read the clock. The sweep is then run as `run_lifecycle --now`
an instant past the bound after which a RUNNING task is presumed lost."""

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path
from urllib.parse import quote

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.tasks import TaskResultStatus
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from catalog.models import Order, OrderLine
from subscriptions import recovery
from subscriptions.lifecycle import lifecycle_tick_task
from subscriptions.models import AuditEntry, BillingLine, Subscription
from subscriptions.services import fulfill_order, fulfill_order_task, provision_subscription_task
from subscriptions.states import Status
from tests import factories
from tests.helpers import buy

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 60  # seconds: every wait is bounded; a worker starts in 1-2 s and a task takes well under one


@pytest.fixture
def processes(transactional_db, tmp_path):
    """Starts `manage.py` commands against the test database; kills any still running at the end, before the
    test database is flushed."""
    started = []
    db = connection.settings_dict
    host = db["HOST"] or "localhost"
    url = (
        f"postgres://{quote(db['USER'])}:{quote(db['PASSWORD'])}@{host}"
        f"{':' + str(db['PORT']) if db['PORT'] else ''}/{quote(db['NAME'])}"
    )
    env = {**os.environ, "DATABASE_URL": url, "PYTHONUNBUFFERED": "1"}

    def start(*args):
        log = tmp_path / f"{len(started)}-{args[0]}.log"
        with log.open("w") as out:
            process = subprocess.Popen(
                [sys.executable, "manage.py", *args], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        process.log = log
        started.append(process)
        return process

    def run(*args):
        process = start(*args)
        assert process.wait(timeout=TIMEOUT) == 0, process.log.read_text()
        return process.log.read_text()

    start.run = run
    start.logs = lambda: "\n".join(f"--- {p.args[2:]}\n{p.log.read_text()}" for p in started)
    yield start
    for process in started:
        if process.poll() is None:
            process.terminate()  # a worker stops cleanly on SIGTERM (between tasks)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=TIMEOUT)


def worker(processes):
    return processes("db_worker", "--no-reload", "--no-startup-delay", "--interval", "0.1")


def wait_until(condition, what: str, processes):
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    pytest.fail(f"Still waiting after {TIMEOUT} s for {what}.\n{processes.logs()}")


def blocked_by_us() -> list[int]:
    """The database sessions waiting for a lock this test's connection holds."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid))")
        return [pid for (pid,) in cursor.fetchall()]


def session_exists(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid])
        return cursor.fetchone() is not None


def status(row: DBTaskResult) -> str:
    return DBTaskResult.objects.values_list("status", flat=True).get(pk=row.pk)


def kill_mid_task(processes, task_row, lock):
    """Starts a worker while `lock()` holds the row its task locks first; once the worker waits on it with the
    task RUNNING, kills the worker (SIGKILL) and lets go. Returns when the killed worker's session is gone."""
    with transaction.atomic():
        lock()
        killed = worker(processes)
        wait_until(
            lambda: status(task_row) == TaskResultStatus.RUNNING and blocked_by_us(),
            "the worker to wait on the row lock inside its RUNNING task",
            processes,
        )
        sessions = blocked_by_us()
        killed.send_signal(signal.SIGKILL)
        assert killed.wait(timeout=TIMEOUT) == -signal.SIGKILL
    # Its session, waiting on the lock, gets it now, finds its client gone and rolls back.
    wait_until(
        lambda: not any(session_exists(pid) for pid in sessions), "the killed worker's session to end", processes
    )


def sweep_after_the_bound(processes, bound) -> str:
    later = datetime.now(UTC) + bound + timedelta(minutes=1)
    return processes.run("run_lifecycle", "--now", later.isoformat())


@pytest.fixture(autouse=True)
def postgresql_only(db):
    if connection.vendor != "postgresql":
        pytest.skip(
            "holds a worker mid-task with a row lock from the test's connection: needs PostgreSQL (SQLite "
            "has no row locks, and its test database is in memory, out of the worker process's reach)"
        )


@pytest.mark.rule("O2")
@pytest.mark.django_db(transaction=True)  # the worker processes see only what is committed
def test_a_worker_killed_mid_fulfilment_strands_nothing(customer, sales, processes):
    # given an order of two Microsoft offers, just bought: its fulfilment task is queued
    e3 = factories.SkuFactory(name="Microsoft 365 E3", availabilities=[("P1Y", "monthly", "36.00")])
    teams = factories.SkuFactory(name="Teams Essentials", availabilities=[("P1Y", "monthly", "4.00")])
    order = buy(customer, sales, timezone.now(), e3, teams)
    task = DBTaskResult.objects.get(task_path=fulfill_order_task.module_path)

    # when a worker is killed (kill -9) inside the fulfilment
    kill_mid_task(processes, task, lambda: Order.objects.select_for_update().get(pk=order.pk))
    # then the task is stranded RUNNING and nothing was fulfilled (the transaction rolled back)
    assert status(task) == TaskResultStatus.RUNNING
    assert list(order.lines.values_list("status", flat=True)) == [OrderLine.Status.PENDING] * 2
    assert not Subscription.objects.exists() and not BillingLine.objects.exists()
    # and a restarted worker alone does nothing about it: it runs only READY tasks (the finding)
    processes.run("db_worker", "--no-reload", "--batch", "--no-startup-delay")
    assert (status(task), Order.objects.get(pk=order.pk).status) == (TaskResultStatus.RUNNING, Order.Status.PENDING)

    # when a worker runs again and the lifecycle pass sweeps, once the task is presumed lost
    worker(processes)
    out = sweep_after_the_bound(processes, recovery.PRESUMED_LOST_AFTER)
    assert "fulfillment requeued: 1, provisioning requeued: 0" in out
    wait_until(
        lambda: (
            not Subscription.objects.filter(order_line__order=order).exclude(status=Status.ACTIVE).exists()
            and Subscription.objects.filter(order_line__order=order).count() == 2
        ),
        "the order fulfilled and its subscriptions provisioned",
        processes,
    )

    # then every line is fulfilled exactly once: one subscription each, one purchase charge each
    order.refresh_from_db()
    assert order.status == Order.Status.COMPLETED
    assert sorted(order.lines.values_list("sku__name", "status", "subscription__status")) == [
        ("Microsoft 365 E3", "fulfilled", "active"),
        ("Teams Essentials", "fulfilled", "active"),
    ]
    assert Subscription.objects.count() == 2
    assert sorted(BillingLine.objects.values_list("subscription__sku__name", "kind", "quantity")) == [
        ("Microsoft 365 E3", "purchase", 10),
        ("Teams Essentials", "purchase", 10),
    ]
    assert AuditEntry.objects.filter(action="subscription.created").count() == 2
    assert AuditEntry.objects.filter(action="order.completed").count() == 1
    # and the killed task is recorded as lost, replaced by one that succeeded
    assert sorted(
        DBTaskResult.objects.filter(task_path=fulfill_order_task.module_path).values_list(
            "status", "exception_class_path"
        )
    ) == [("FAILED", "subscriptions.recovery.TaskPresumedLost"), ("SUCCESSFUL", "")]


@pytest.mark.rule("O2")
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_provisioning_strands_nothing(customer, sales, processes):
    # given an order fulfilled a moment ago: its Microsoft subscription's provisioning task is queued
    e3 = factories.SkuFactory(name="Microsoft 365 E3", availabilities=[("P1Y", "monthly", "36.00")])
    order = buy(customer, sales, timezone.now(), e3)
    DBTaskResult.objects.all().delete()  # fulfilled here, below, instead of by its task
    fulfill_order(order_id=order.pk, now=timezone.now())
    subscription = Subscription.objects.get()
    task = DBTaskResult.objects.get(task_path=provision_subscription_task.module_path)

    # when a worker is killed inside the provisioning
    kill_mid_task(processes, task, lambda: Subscription.objects.select_for_update().get(pk=subscription.pk))
    # then the task is stranded and the subscription still pending, for a restarted worker too
    processes.run("db_worker", "--no-reload", "--batch", "--no-startup-delay")
    assert (status(task), Subscription.objects.get().status) == (TaskResultStatus.RUNNING, Status.PENDING)

    # when the lifecycle pass sweeps, once the task is presumed lost, and a worker runs
    out = sweep_after_the_bound(processes, recovery.PRESUMED_LOST_AFTER)
    assert "fulfillment requeued: 0, provisioning requeued: 1" in out
    processes.run("db_worker", "--no-reload", "--batch", "--no-startup-delay")

    # then the subscription is provisioned, once
    assert Subscription.objects.get().status == Status.ACTIVE
    assert AuditEntry.objects.filter(action="subscription.provisioned").count() == 1
    assert sorted(DBTaskResult.objects.values_list("status", flat=True)) == ["FAILED", "SUCCESSFUL"]


@pytest.mark.rule("N1")
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_lifecycle_pass_keeps_the_chain(customer, processes):
    # given a subscription due for renewal, and the lifecycle chain started (`run_lifecycle --schedule`)
    today = timezone.now().date()
    due = factories.SubscriptionFactory(
        customer=customer, term_start=timezone.now() - timedelta(days=365), term_end=today - timedelta(days=1)
    )
    call_command("run_lifecycle", schedule=True, stdout=StringIO())
    tick = DBTaskResult.objects.get(task_path=lifecycle_tick_task.module_path)

    # when a worker is killed in the middle of the pass (waiting to mark that subscription's renewal pending)
    kill_mid_task(processes, tick, lambda: Subscription.objects.select_for_update().get(pk=due.pk))
    # then the killed tick is stranded, but the chain goes on: the next tick was queued before the pass
    assert status(tick) == TaskResultStatus.RUNNING
    following = DBTaskResult.objects.get(task_path=lifecycle_tick_task.module_path, status=TaskResultStatus.READY)
    started = DBTaskResult.objects.get(pk=tick.pk).started_at
    assert timedelta(minutes=1) < following.run_after - started < timedelta(minutes=1, seconds=TIMEOUT)

    # when the sweep runs once the killed tick is presumed lost
    out = sweep_after_the_bound(processes, recovery.TICK_PRESUMED_LOST_AFTER)
    # then no second chain is started; the killed tick is recorded as lost
    assert "lifecycle requeued: 0" in out
    assert list(
        DBTaskResult.objects.filter(task_path=lifecycle_tick_task.module_path)
        .values_list("status", flat=True)
        .order_by("enqueued_at")
    ) == ["FAILED", "READY"]
