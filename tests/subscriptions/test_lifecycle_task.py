"""The lifecycle engine as a periodic background task: `run_lifecycle --schedule` starts a chain of
ticks run by the real django-tasks-db worker; each tick runs the engine and enqueues the next one a
minute later; starting it twice never doubles the chain. Now is 2026-11-25 12:00 UTC."""

from datetime import UTC, date, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from subscriptions.lifecycle import lifecycle_tick_task
from subscriptions.models import Subscription
from tests import factories

UTC = UTC


def ticks(status=TaskResultStatus.READY):
    return list(
        DBTaskResult.objects.filter(task_path=lifecycle_tick_task.module_path, status=status).values_list(
            "run_after", flat=True
        )
    )


@pytest.mark.rule("N1")
@pytest.mark.rule("N2")
@pytest.mark.django_db(transaction=True)  # the worker closes its connection between tasks, as in production
def test_the_scheduled_task_renews_what_is_due_and_schedules_the_next_tick(customer, worker, now):
    # given a subscription whose term ended yesterday (2026-11-24), auto-renew on
    sub = factories.SubscriptionFactory(
        customer=customer, quantity=5, term_start=datetime(2025, 11, 25, tzinfo=UTC), term_end=date(2026, 11, 24)
    )
    # when the task is started, and the worker drains the queue
    out = StringIO()
    call_command("run_lifecycle", schedule=True, stdout=out)
    assert out.getvalue().strip() == "Lifecycle task scheduled: the background worker runs it every 60 s."
    worker()
    # then the subscription renewed from 2026-11-25 00:00 UTC (N2), completing now, and the next tick waits a minute
    sub.refresh_from_db()
    assert (sub.term_start, sub.renewal_completed_at, sub.term_end) == (
        datetime(2026, 11, 25, tzinfo=UTC),
        now,
        date(2027, 11, 24),
    )
    assert ticks() == [now + timedelta(minutes=1)]
    assert DBTaskResult.objects.get(status=TaskResultStatus.SUCCESSFUL).return_value["renewed"] == 1


def test_starting_the_task_twice_keeps_one_chain(db):
    call_command("run_lifecycle", schedule=True, stdout=StringIO())
    out = StringIO()
    call_command("run_lifecycle", schedule=True, stdout=out)
    assert "already scheduled" in out.getvalue()
    assert len(ticks()) == 1


def test_a_tick_runs_the_engine_and_enqueues_exactly_one_next_tick(customer, now):
    # when one tick runs (directly, as the worker would)
    report = lifecycle_tick_task.call()
    lifecycle_tick_task.call()
    # then each pass reported, and one next tick is waiting
    assert report["renewed"] == 0 and report["failed"] == 0
    assert ticks() == [now + timedelta(minutes=1)]


@pytest.mark.django_db(transaction=True)  # the loop closes stale connections between runs
def test_the_demo_loop_waits_before_its_first_run_so_pending_states_are_seen(customer, monkeypatch, now):
    # given a subscription whose term ended yesterday, already marked renewal pending (as seed_demo leaves it)
    sub = factories.SubscriptionFactory(
        customer=customer,
        quantity=5,
        term_start=datetime(2025, 11, 25, tzinfo=UTC),
        term_end=date(2026, 11, 24),
        renewal_pending=True,
    )
    slept = []

    def sleep(seconds):
        # the first wait: still pending; the wait after the first run stops the loop
        slept.append(seconds)
        assert Subscription.objects.get(pk=sub.pk).renewal_pending is (len(slept) == 1)
        if len(slept) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr("subscriptions.management.commands.run_lifecycle.time.sleep", sleep)
    out = StringIO()
    call_command("run_lifecycle", loop=True, first_run_after=120, interval=60, stdout=out)
    assert slept == [120, 60]
    assert out.getvalue().startswith("Lifecycle engine: first run in 120 s, then every 60 s.")
    sub.refresh_from_db()
    assert (sub.renewal_pending, sub.term_end) == (False, date(2027, 11, 24))
