"""Background work left stranded: found from the orders and subscriptions, not from the queue.

django-tasks-db's worker runs only READY tasks. A worker killed mid-task (kill -9, out of memory, a deploy
that doesn't wait) leaves its task RUNNING for ever and nothing runs it again (its upstream issue "Unclean
exits of the worker leave tasks in limbo" is open). So the record is the truth: an order still pending, or a
Microsoft subscription still pending provisioning, past a short grace period and with no live task, is queued
again by the sweep, which the lifecycle engine runs every pass (once a minute). Running a task twice is safe:
each service locks its row and checks its state first (`fulfill_order` fulfils only pending lines,
`provision_subscription` only a pending subscription), so every line is fulfilled exactly once whatever the
queue holds.

The page, the admin and the sweep share the definitions here of "waiting longer than expected" and of "live".
"""

import logging
from dataclasses import dataclass, fields
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Count, Exists, Min, OuterRef, Q, QuerySet
from django.tasks import TaskResultStatus
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop, ngettext
from django_tasks_db.models import DBTaskResult

from catalog.models import Order

from . import audit, checks
from .models import Subscription
from .services.fulfilment import fulfill_order_task, provision_subscription_task
from .states import Status

logger = logging.getLogger(__name__)

# A worker polls every second and fulfils an order in well under one: two minutes is "longer than expected".
GRACE = timedelta(minutes=2)
# The worker writes no heartbeat, so a RUNNING task's age is all there is to judge it by. An order's or a
# subscription's task takes a second or so; one RUNNING for 5 minutes is presumed lost (its worker died). Being
# wrong costs nothing: a task queued again while the first still runs waits for its row lock, then finds the
# work done.
PRESUMED_LOST_AFTER = timedelta(minutes=5)
# A lifecycle pass over a large backlog of renewals legitimately runs for minutes; two at once are safe (its
# rows are locked one by one) but waste work, so a tick is given longer.
TICK_PRESUMED_LOST_AFTER = timedelta(minutes=30)
# A task that keeps failing (or keeps killing its worker) is not queued for ever: after this many tasks for one
# order or subscription the sweep leaves it to an operator, who finds it in the admin with its tasks' errors.
MAX_ATTEMPTS = 5


class TaskPresumedLost(Exception):
    """Recorded on a RUNNING task that the sweep replaced (its path is the failed task's exception class)."""


# --- What is late -------------------------------------------------------------------------------------------


def late_orders(now: datetime) -> QuerySet[Order]:
    """Orders still waiting for fulfilment past the grace period."""
    return Order.objects.filter(status=Order.Status.PENDING, created_at__lte=now - GRACE)


def late_provisioning(now: datetime) -> QuerySet[Subscription]:
    """Microsoft subscriptions still waiting to be provisioned past the grace period. An ISV SaaS subscription
    waits for its publisher's set-up (S3), which no task of the portal does: it is never late here."""
    return Subscription.objects.filter(checks.awaiting_provisioning_filter(), created_at__lte=now - GRACE)


def stuck_orders(now: datetime) -> QuerySet[Order]:
    """Orders waiting longer than expected: for their fulfilment, or for one of their subscriptions."""
    provisioning = late_provisioning(now).filter(order_line__order=OuterRef("pk"))
    return Order.objects.filter(Q(pk__in=late_orders(now).values("pk")) | Q(Exists(provisioning)))


@dataclass(frozen=True)
class OrderDelay:
    """An order waiting longer than expected, as its page and the admin say it."""

    waiting_for: str  # "fulfillment" or "provisioning"
    since: datetime
    subscriptions: int = 0

    @property
    def advice(self) -> str:
        """What the partner can do: nothing but wait, for a while (the sweep retries within PRESUMED_LOST_AFTER and
        a pass; MAX_ATTEMPTS of them take under an hour)."""
        return _(
            "The portal retries automatically and never creates a subscription twice. If it is still waiting an "
            "hour after it was placed, contact support with the order number."
        )

    @property
    def summary(self) -> str:
        since = f"{self.since:%Y-%m-%d %H:%M} UTC"
        if self.waiting_for == "fulfillment":
            return _(
                "This order is taking longer than expected: placed %(since)s, its subscriptions are not created yet "
                "(this usually takes under a minute)."
            ) % {"since": since}
        return ngettext(
            "This order is taking longer than expected: %(count)s subscription created %(since)s is still being "
            "provisioned (this usually takes under a minute).",
            "This order is taking longer than expected: %(count)s subscriptions created %(since)s are still being "
            "provisioned (this usually takes under a minute).",
            self.subscriptions,
        ) % {"count": self.subscriptions, "since": since}


def order_delay(order: Order, now: datetime, *, lines=None) -> OrderDelay | None:
    """Whether `order` waits longer than expected at `now`, and for what; None if it doesn't.

    `lines`, the order's lines read with their subscriptions, spare the query for a completed order none of whose
    subscriptions is pending."""
    if order.status == Order.Status.PENDING:
        return OrderDelay("fulfillment", order.created_at) if order.created_at <= now - GRACE else None
    if lines is not None and not any(
        getattr(getattr(line, "subscription", None), "status", None) == Status.PENDING for line in lines
    ):
        return None
    late = (
        late_provisioning(now)
        .filter(order_line__order_id=order.pk)
        .aggregate(since=Min("created_at"), count=Count("pk"))
    )
    return OrderDelay("provisioning", late["since"], late["count"]) if late["count"] else None


# --- Which task is live -------------------------------------------------------------------------------------


def task_results(task, argument) -> QuerySet[DBTaskResult]:
    """The queue's rows for `task` run on one order or subscription: each of the portal's tasks takes that id as
    its one positional argument (see its enqueue calls)."""
    return DBTaskResult.objects.filter(task_path=task.module_path, args_kwargs__args__0=argument)


def is_live(row: DBTaskResult, now: datetime, *, lost_after: timedelta = PRESUMED_LOST_AFTER) -> bool:
    """READY (a worker will run it) or RUNNING since less than its bound, `lost_after` (a worker is, presumably,
    running it). A lifecycle tick's bound is TICK_PRESUMED_LOST_AFTER (lifecycle.restart_lost_lifecycle_chain)."""
    if row.status == TaskResultStatus.READY:
        return True
    return row.status == TaskResultStatus.RUNNING and row.started_at > now - lost_after


def task_state(row: DBTaskResult, now: datetime) -> str:
    """What the admin says of a task: live (queued, running) or not (presumed lost, failed, succeeded)."""
    if row.status == TaskResultStatus.RUNNING and not is_live(row, now):
        return f"presumed lost: running since {row.started_at:%Y-%m-%d %H:%M} UTC with no result"
    return {
        TaskResultStatus.READY: "queued",
        TaskResultStatus.RUNNING: "running",
        TaskResultStatus.SUCCESSFUL: "succeeded",
        TaskResultStatus.FAILED: "failed",
    }.get(row.status, row.status)


def order_tasks(order: Order) -> QuerySet[DBTaskResult]:
    """Every task for the order: its fulfilment, and its subscriptions' provisioning; newest first."""
    subscriptions = [
        str(pk) for pk in Subscription.objects.filter(order_line__order=order).values_list("pk", flat=True)
    ]
    fulfilment = Q(task_path=fulfill_order_task.module_path, args_kwargs__args__0=order.pk)
    provisioning = Q(task_path=provision_subscription_task.module_path, args_kwargs__args__0__in=subscriptions)
    return DBTaskResult.objects.filter(fulfilment | provisioning if subscriptions else fulfilment).order_by(
        "-enqueued_at"
    )


def mark_lost(
    rows: list[DBTaskResult], *, now: datetime, replaced_by: str, lost_after: timedelta = PRESUMED_LOST_AFTER
) -> int:
    """Marks presumed-lost RUNNING tasks failed, saying why, so the admin shows them finished and replaced. A task
    that was in fact still running and finishes later records its own result over this."""
    ids = [
        row.pk
        for row in rows
        if row.status == TaskResultStatus.RUNNING and not is_live(row, now, lost_after=lost_after)
    ]
    if not ids:
        return 0
    return DBTaskResult.objects.filter(pk__in=ids, status=TaskResultStatus.RUNNING).update(
        status=TaskResultStatus.FAILED,
        finished_at=now,
        exception_class_path=f"{TaskPresumedLost.__module__}.{TaskPresumedLost.__qualname__}",
        traceback=(
            f"Presumed lost at {now:%Y-%m-%d %H:%M:%S} UTC: RUNNING with no result for longer than its bound "
            f"(its worker stopped mid-task); {replaced_by}."
        ),
    )


def _queue_again(task, argument, now: datetime) -> bool:
    """Queues `task` for one order or subscription again unless one of its tasks is live, or it has had its
    MAX_ATTEMPTS. The caller holds the record's row lock, in the same transaction as this insert, so two sweeps at
    once queue it once."""
    rows = list(task_results(task, argument))
    if any(is_live(row, now) for row in rows):
        return False
    if len(rows) >= MAX_ATTEMPTS:
        logger.error(
            "%s(%s) is still unfinished after %d tasks: left for an operator (admin: waiting longer than expected)",
            task.name,
            argument,
            len(rows),
        )
        return False
    # Enqueued inside the transaction, not on commit: django-tasks-db writes the task to this same database, so
    # the check above and this insert commit together or not at all.
    queued = task.enqueue(argument)
    mark_lost(rows, now=now, replaced_by=f"queued again as task {queued.id}")
    return True


# --- The sweep ----------------------------------------------------------------------------------------------


@dataclass
class SweepReport:
    fulfillment_requeued: int = 0
    provisioning_requeued: int = 0

    def __iter__(self):
        return iter((f.name, getattr(self, f.name)) for f in fields(self))


def requeue_stranded_work(now: datetime) -> SweepReport:
    """Queues again every order fulfilment and Microsoft provisioning late at `now` whose task is not live, each record
    in its own transaction. (The lifecycle chain, whose ticks run this sweep, is restarted beside its tick:
    lifecycle.restart_lost_lifecycle_chain.)"""
    report = SweepReport()
    for order_id in late_orders(now).order_by("created_at", "pk").values_list("pk", flat=True):
        if guarded(_requeue_fulfillment, order_id, now):
            report.fulfillment_requeued += 1
    for subscription_id in late_provisioning(now).order_by("created_at", "pk").values_list("pk", flat=True):
        if guarded(_requeue_provisioning, subscription_id, now):
            report.provisioning_requeued += 1
    return report


def guarded(step, *args) -> bool:
    # Like the engine's renewals: one record's error rolls back its own transaction only, and is retried next pass.
    try:
        return step(*args)
    except Exception:
        logger.exception("Sweep of stranded work failed: %s%r", step.__name__, args)
        return False


def _requeue_fulfillment(order_id: int, now: datetime) -> bool:
    with transaction.atomic():
        # Locked, then checked again: a worker fulfilling it right now holds the lock (skipped: it is live), and so
        # does another sweep running at the same time.
        order = (
            Order.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(pk=order_id, status=Order.Status.PENDING)
            .select_related("customer__partner")
            .first()
        )
        if order is None or not _queue_again(fulfill_order_task, order.pk, now):
            return False
        audit.record(
            actor=None,
            at=now,
            customer=order.customer,
            order=order,
            action="order.fulfillment_requeued",
            summary=audit.said(
                gettext_noop("%(order)s: fulfilment queued again (no live background task; placed %(when)s UTC)"),
                order=order.number,
                when=f"{order.created_at:%Y-%m-%d %H:%M}",
            ),
        )
        return True


def _requeue_provisioning(subscription_id, now: datetime) -> bool:
    with transaction.atomic():
        subscription = (
            Subscription.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(pk=subscription_id, status=Status.PENDING)
            .select_related("customer__partner")
            .first()
        )
        if subscription is None or not _queue_again(provision_subscription_task, str(subscription.pk), now):
            return False
        audit.record(
            actor=None,
            at=now,
            customer=subscription.customer,
            subscription=subscription,
            action="subscription.provisioning_requeued",
            summary=audit.said(
                gettext_noop("Provisioning queued again (no live background task; created %(when)s UTC)"),
                when=f"{subscription.created_at:%Y-%m-%d %H:%M}",
            ),
        )
        return True
