"""Background work. Tasks read the clock (they are the edge) and call idempotent services."""

from dataclasses import asdict
from datetime import datetime, timedelta

from django.tasks import TaskResultStatus, task
from django.utils import timezone


@task
def fulfill_order_task(order_id: int) -> None:
    from .services import fulfill_order

    fulfill_order(order_id=order_id, now=timezone.now())


@task
def provision_subscription_task(subscription_id: str) -> None:
    from .services import provision_subscription

    provision_subscription(subscription_id=subscription_id, now=timezone.now())


# The lifecycle engine as a periodic task (an alternative to `manage.py run_lifecycle --loop`).
LIFECYCLE_EVERY = timedelta(minutes=1)


@task
def lifecycle_tick_task() -> dict:
    """One pass of the lifecycle engine, and the next pass a minute later: a chain started once with
    `manage.py run_lifecycle --schedule` and run by the background worker. The engine is idempotent, so a
    tick that runs late, or twice, changes nothing twice."""
    from .lifecycle import run_lifecycle

    now = timezone.now()
    # The next tick is queued (and committed) before this pass runs, not in a `finally` after it: a worker killed
    # mid-pass runs no `finally`, and the chain would end with it. A failed or killed pass is then simply retried
    # by the next tick; a pass longer than a minute may overlap the next on another worker, which the engine
    # allows (it locks what it handles, one subscription at a time).
    schedule_lifecycle_tick(run_after=now + LIFECYCLE_EVERY)
    return asdict(run_lifecycle(now))


def schedule_lifecycle_tick(*, run_after: datetime) -> bool:
    """Enqueues the next tick unless one is already waiting, so starting the chain twice never doubles it."""
    from django_tasks_db.models import DBTaskResult

    waiting = DBTaskResult.objects.filter(task_path=lifecycle_tick_task.module_path, status=TaskResultStatus.READY)
    if waiting.exists():
        return False
    lifecycle_tick_task.using(run_after=run_after).enqueue()
    return True
