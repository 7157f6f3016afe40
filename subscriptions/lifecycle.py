"""Renewals, trial ends and expiry: the one place time moves a subscription.

Every function takes `now`. The engine is idempotent and crash-safe: each due subscription is
handled in its own transaction on a row locked with `SELECT ... FOR UPDATE SKIP LOCKED`, and the
row is checked again once locked, so a rerun (or a second engine running at the same time on
PostgreSQL) finishes what is left and never handles a subscription twice.
"""

import logging
import random
from dataclasses import asdict, dataclass, fields
from datetime import date, datetime, timedelta

from django.db import connection, transaction
from django.db.models import F, Prefetch, Q
from django.tasks import TaskResultStatus, task
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from catalog.models import TERM_MONTHS, TRIAL_LICENSES, Availability, BillingFrequency, Term
from portal.errors import RuleViolation

from . import audit, services
from .cycles import charge_due_cycles, mark_cycle_charges_pending
from .dates import start_of_day, term_end_for
from .models import BillingLine, ScheduledChange, SeatLot, Subscription
from .recovery import TICK_PRESUMED_LOST_AFTER, guarded, is_live, mark_lost, requeue_stranded_work
from .services.conversions import trial_converts_to
from .services.kernel import bill, first_charge, open_seat_lot, transition
from .states import Status

logger = logging.getLogger(__name__)

# N4: every kind of change scheduled for the renewal is applied by _renew: quantity, term and billing frequency
# first, then the SKU upgrade (R1, checked against them) and the aligned end date (K11, checked against the
# renewed SKU and term). A trial conversion applies only the first three: its SKU was chosen by the conversion
# (TR3) and a trial is never aligned.
RENEWAL_VALUES = (ScheduledChange.Kind.QUANTITY, ScheduledChange.Kind.TERM, ScheduledChange.Kind.BILLING_FREQUENCY)
APPLIED_AT_RENEWAL = (*RENEWAL_VALUES, ScheduledChange.Kind.UPGRADE, ScheduledChange.Kind.ALIGNMENT)
CHUNK = 100  # due subscriptions an engine reads the related rows of in one query, then handles one by one


@dataclass
class LifecycleReport:
    pending: int = 0
    renewed: int = 0
    expired: int = 0
    disabled: int = 0
    trials_converted: int = 0
    trials_ended: int = 0
    free_trials_ended: int = 0
    cycle_pending: int = 0  # N7: marked at 00:00 UTC on the day of their cycle charge
    cycle_charged: int = 0
    cycle_dropped: int = 0
    skipped: int = 0
    failed: int = 0
    # Background work found stranded (its task lost with a killed worker) and queued again (recovery.py).
    fulfillment_requeued: int = 0
    provisioning_requeued: int = 0
    lifecycle_requeued: int = 0

    def count(self, outcome: str) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)

    @property
    def handled(self) -> int:
        return sum(getattr(self, f.name) for f in fields(self)
                   if f.name not in ("pending", "cycle_pending", "skipped", "failed") and not f.name.endswith("_requeued"))

    def lines(self) -> list[str]:
        return [f"{f.name.replace('_', ' ')}: {getattr(self, f.name)}" for f in fields(self)]


def _isv() -> Q:
    return Q(sku__product__publisher__is_microsoft=False)


def _due(now: datetime) -> Q:
    """Subscriptions time has to move at `now`. The inclusive term end is over at 00:00 UTC the next day (N2)."""
    ended = Q(term_end__lt=now.date())
    return (
        Q(status=Status.ACTIVE, is_trial=False) & ended  # N1 renew, N5 expire
        | Q(status=Status.SUSPENDED) & ended  # P2 disabled
        | Q(status=Status.ACTIVE, is_trial=True) & ~_isv() & ended  # TR1 convert or end
        | Q(status=Status.ACTIVE, is_trial=True, trial_ends_at__lte=now) & _isv()  # S4 becomes paid
    )


def due_subscription_ids(now: datetime, limit: int | None = None) -> list:
    bases, addons = _due_groups(now, limit)
    return bases + addons


def _due_groups(now: datetime, limit: int | None = None) -> tuple[list, list]:
    """The ids of the first `limit` due subscriptions, oldest term end first: (not add-ons, add-ons)."""
    # Bases before their add-ons, so a renewed add-on can end with its renewed base (A5).
    rows = list(Subscription.objects.filter(_due(now)).order_by("term_end", "pk")
                .values_list("pk", "base_subscription_id"))
    rows.sort(key=lambda row: row[1] is not None)  # stable: keeps term_end order within each group
    rows = rows[:limit] if limit is not None else rows
    return [pk for pk, base in rows if base is None], [pk for pk, base in rows if base is not None]


def mark_renewals_pending(now: datetime) -> int:
    """N6: from 00:00 UTC on the renewal day, a subscription that will renew is read-only until it has."""
    return (Subscription.objects.filter(status=Status.ACTIVE, is_trial=False, auto_renew=True, renewal_pending=False,
                                        term_end__lt=now.date())
            .update(renewal_pending=True, version=F("version") + 1))


def renew_due_subscriptions(now: datetime, limit: int | None = None) -> LifecycleReport:
    """Handles every subscription due at `now`, each in its own transaction."""
    report = LifecycleReport()
    # The work comes in chunks of CHUNK subscriptions, which each engine takes in its own random order (all the
    # chunks of bases and other subscriptions before those of add-ons, A5): two engines at once mostly work on
    # different chunks, and one that reaches a chunk the other has done finds that out in one query (below)
    # instead of trying each of its subscriptions.
    chunks = []
    for group in _due_groups(now, limit):
        group_chunks = [group[start:start + CHUNK] for start in range(0, len(group), CHUNK)]
        random.shuffle(group_chunks)
        chunks += group_chunks
    # Each subscription is read locked and checked again in its own transaction. The rows it points to and that
    # a renewal only reads (customer and partner, offer, product and publisher, availability) are read before, a
    # chunk a query, so the locked query joins only what the due check needs: joining them all there cost more
    # (SQL compiling, and PostgreSQL's planning) than the rest of a renewal. An add-on's base is not read before:
    # it may have been renewed a moment ago in this run (A5). Built once a run (only the pk changes); no ORDER BY:
    # at most one row matches.
    locked = Subscription.objects.select_for_update(skip_locked=True, of=("self",)).filter(_due(now)).order_by()
    # A renewal pending since 00:00 UTC (N6) is frozen: every service refuses to change it, its scheduled changes
    # included, until the engine has renewed it. So the row and its scheduled changes read with the chunk are
    # still what the locked row holds, as long as it is still due and pending: the lock then only checks that.
    # Its term end, unchanged since the chunk was read, says no other engine has renewed it meanwhile.
    still_pending = (Subscription.objects.select_for_update(skip_locked=True, of=("self",))
                     .filter(renewal_pending=True, auto_renew=True, is_trial=False, status=Status.ACTIVE).order_by())
    row_locks = connection.features.has_select_for_update_skip_locked
    for chunk in chunks:
        preloaded = {row.pk: row for row in Subscription.objects.filter(_due(now), pk__in=chunk).order_by()
                     .select_related("customer__partner", "sku__product__publisher", "sku__trial_of", "availability")
                     .prefetch_related(Prefetch("scheduled_changes",
                                                queryset=ScheduledChange.objects.select_related("target_sku")))}
        for pk in chunk:
            if pk not in preloaded:
                continue  # handled since the list was read (by another engine, most likely)
            row = preloaded[pk]
            try:
                with transaction.atomic():
                    if _frozen(row) and not row_locks:
                        # SQLite has no row locks (BEGIN IMMEDIATE serialises writers): the renewal's own
                        # UPDATE re-checks, on the term end read with the chunk (_save_renewed).
                        subscription, row.guard_term_end = row, row.term_end
                        row.loaded_values = {f.attname: getattr(row, f.attname) for f in _SUBSCRIPTION_FIELDS}
                    elif _frozen(row):
                        held = still_pending.filter(pk=pk, term_end=row.term_end).values_list("pk").first()
                        subscription = row if held else None
                    else:
                        subscription = next(iter(locked.filter(pk=pk)), None)
                        if subscription is not None:
                            _reuse_preloaded(subscription, row)
                    if subscription is None:
                        continue  # another engine holds it, or it was handled since the list was read
                    outcome = _advance(subscription, now)
            except _HandledMeanwhile:
                continue  # renewed by another engine since the chunk was read: rolled back, nothing done twice
            except Exception:
                # Only this subscription's transaction is rolled back; the next run retries it.
                logger.exception("Lifecycle failed for subscription %s", pk)
                outcome = "failed"
            report.count(outcome)
    return report


_SUBSCRIPTION_FIELDS = Subscription._meta.concrete_fields


class _HandledMeanwhile(Exception):
    pass


def _save_renewed(subscription: Subscription, fields: list[str], now: datetime) -> None:
    """Saves what the renewal changed. Without row locks (SQLite), only if the row still holds the term end the
    engine read (another engine has not renewed it meanwhile); else the whole renewal is rolled back."""
    guard = getattr(subscription, "guard_term_end", None)
    if guard is None:
        subscription.save(update_fields=fields)
        return
    subscription.updated_at = now  # auto_now, which an UPDATE doesn't apply
    values = {Subscription._meta.get_field(name).attname: getattr(subscription, Subscription._meta.get_field(name).attname)
              for name in fields}
    values["list_name"] = subscription.display_name  # kept by save(), which this UPDATE bypasses
    # Only the columns that changed (most renewals change the term and the pending flag): SQLite rewrites the entries
    # of every index on a column an UPDATE sets, changed or not.
    loaded = getattr(subscription, "loaded_values", {})
    values = {name: value for name, value in values.items() if name not in loaded or loaded[name] != value}
    values["version"] = F("version") + 1  # a renewal is a new version, as save() makes it (portal/versions.py)
    subscription.version += 1
    updated = Subscription.objects.filter(pk=subscription.pk, term_end=guard, renewal_pending=True).update(**values)
    if not updated:
        raise _HandledMeanwhile


def _frozen(row: Subscription) -> bool:
    """N6: a renewal pending, which nothing but the engine changes until it completes."""
    return row.renewal_pending and row.auto_renew and not row.is_trial and row.status == Status.ACTIVE


def _reuse_preloaded(subscription: Subscription, preloaded: Subscription) -> None:
    """Gives the locked row the customer, offer and availability read with its chunk, where it still points to them
    (anything else is read when used)."""
    for name in ("customer", "sku", "availability"):
        attname = Subscription._meta.get_field(name).attname
        if getattr(subscription, attname) == getattr(preloaded, attname):
            setattr(subscription, name, getattr(preloaded, name))


def run_lifecycle(now: datetime, limit: int | None = None) -> LifecycleReport:
    """One pass of the engine: queue again the background work a killed worker left stranded (first: it is quick,
    and an order should not wait for a long pass), mark pending renewals (N6) and cycle charges (N7), charge the
    due cycles (they fall within the term, so before its renewal), then move every due subscription."""
    requeued = requeue_stranded_work(now)
    lifecycle_requeued = guarded(restart_lost_lifecycle_chain, now)
    pending = mark_renewals_pending(now)
    cycle_pending = mark_cycle_charges_pending(now)
    cycles = charge_due_cycles(now, limit=limit)
    report = renew_due_subscriptions(now, limit=limit)
    report.pending, report.cycle_pending = pending, cycle_pending
    report.cycle_charged, report.cycle_dropped = cycles.charged, cycles.dropped
    report.failed += cycles.failed
    for name, count in requeued:
        setattr(report, name, count)
    report.lifecycle_requeued = int(lifecycle_requeued)
    return report


def _advance(subscription: Subscription, now: datetime) -> str:
    if subscription.status == Status.SUSPENDED:
        return _disable(subscription, now)
    if subscription.is_trial and subscription.sku.is_isv:
        return _end_free_trial(subscription, now)
    if subscription.is_trial:
        return _convert_trial(subscription, now) if subscription.auto_renew else _expire(subscription, now, trial=True)
    if subscription.auto_renew:
        return _renew(subscription, now)
    return _expire(subscription, now)


def _snapshot(subscription: Subscription) -> dict:
    return {"status": subscription.status, "sku": subscription.sku.sku_id, "quantity": subscription.quantity,
            "term": subscription.term, "billing_frequency": subscription.billing_frequency,
            "unit_price": str(subscription.unit_price), "is_trial": subscription.is_trial,
            "term_start": subscription.term_start.isoformat() if subscription.term_start else None,
            "term_end": subscription.term_end.isoformat() if subscription.term_end else None}


def _scheduled(subscription: Subscription) -> list[ScheduledChange]:
    """Everything scheduled for the renewal, in one query (or none, when read with the engine's chunk)."""
    return list(subscription.scheduled_changes.all() if _prefetched(subscription)
                else subscription.scheduled_changes.select_related("target_sku"))


def _prefetched(subscription: Subscription) -> bool:
    return "scheduled_changes" in getattr(subscription, "_prefetched_objects_cache", {})


def _apply_scheduled_changes(subscription: Subscription, scheduled: list[ScheduledChange], *,
                             now: datetime | None = None) -> tuple[list[str], list[ScheduledChange]]:
    """N4: quantity, term and billing frequency scheduled for the renewal and, at a renewal (`now` given), the
    SKU upgrade, re-checked now (R1; R5 says what happens to the licenses). Returns the summaries and the
    changes used up (applied, or an upgrade that no longer holds, the summary saying why), for the caller to
    delete. The aligned end date is _aligned_end's."""
    applied = []
    kinds = RENEWAL_VALUES if now is None else (*RENEWAL_VALUES, ScheduledChange.Kind.UPGRADE)
    changes = [change for change in scheduled if change.kind in kinds]
    reassignment = services.renewal_upgrade_reassignment(subscription, changes)  # R5, before the quantity changes
    for change in changes:
        if change.kind == ScheduledChange.Kind.QUANTITY and change.quantity:
            subscription.quantity = change.quantity
        elif change.kind == ScheduledChange.Kind.TERM and change.term:
            subscription.term = change.term
        elif change.kind == ScheduledChange.Kind.BILLING_FREQUENCY and change.billing_frequency:
            subscription.billing_frequency = change.billing_frequency
        if change.kind != ScheduledChange.Kind.UPGRADE:
            applied.append(change.summary)
    upgrade = next((c for c in changes if c.kind == ScheduledChange.Kind.UPGRADE and c.target_sku_id), None)
    if upgrade is not None:
        try:
            services.check_renewal_upgrade(subscription, upgrade.target_sku_id, quantity=subscription.quantity,
                                           term=subscription.term, billing_frequency=subscription.billing_frequency,
                                           now=now)
        except RuleViolation as violation:
            applied.append(f"{upgrade.summary} not applied ({violation.message}), renewed on {subscription.sku.name}")
        else:
            # R1: the same subscription (same id) continues on the target SKU; _reprice prices it.
            subscription.sku = upgrade.target_sku
            subscription.one_per_customer = upgrade.target_sku.one_per_customer
            applied.append(f"{upgrade.summary} ({reassignment})")
    return applied, changes


def _delete(changes: list[ScheduledChange]) -> None:
    if changes:
        ScheduledChange.objects.filter(pk__in=[c.pk for c in changes]).delete()


def _aligned_end(subscription: Subscription, scheduled: list[ScheduledChange]) -> tuple[date | None, str]:
    """K11 at renewal: the end date scheduled for the renewed term, re-checked now against the renewed SKU and
    term (the subscription it was aligned to may have been cancelled or renewed since). Returns the date (None:
    the natural end) and what the audit says; the caller deletes the scheduled change either way."""
    change = next((c for c in scheduled if c.kind == ScheduledChange.Kind.ALIGNMENT and c.aligned_end_date), None)
    if change is None:
        return None, ""
    try:
        services.check_renewal_alignment(subscription, change.aligned_end_date, sku=subscription.sku,
                                         term=subscription.term)
    except RuleViolation as violation:
        return None, (f"aligned end date {change.aligned_end_date:%Y-%m-%d} not applied, natural end kept: "
                      f"{violation.message}")
    return change.aligned_end_date, f"aligned to end on {change.aligned_end_date:%Y-%m-%d}, first term prorated"


def _reprice(subscription: Subscription) -> None:
    """A new SKU (R1 upgrade), term or billing frequency is sold at that availability's price."""
    if (subscription.availability.sku_id, subscription.availability.term,
            subscription.availability.billing_frequency) == (subscription.sku_id, subscription.term,
                                                              subscription.billing_frequency):
        return
    availability = Availability.objects.filter(sku=subscription.sku, term=subscription.term,
                                               billing_frequency=subscription.billing_frequency).first()
    if availability is not None:
        subscription.availability = availability
        subscription.unit_price = availability.unit_price
        subscription.currency = availability.currency


# What a renewal changes on the subscription row (saved alone: cheaper than every column).
RENEWED_FIELDS = ["sku", "one_per_customer", "availability", "quantity", "term", "billing_frequency", "unit_price",
                  "currency", "term_start", "term_end", "renewal_completed_at", "renewal_pending", "updated_at"]


def _start_new_term(subscription: Subscription, *, starts_on: date, now: datetime, source: str,
                    billing_kind: str, aligned_end: date | None = None,
                    update_fields: list[str] | None = None) -> BillingLine | None:
    """The new term runs from 00:00 UTC on `starts_on` to its natural end or `aligned_end` (K11, its first charge
    then prorated by the day); its 7-day windows count from now, when it completes (N3)."""
    months = TERM_MONTHS[subscription.term]
    term_end = aligned_end or term_end_for(starts_on, months)
    base = subscription.base_subscription
    if base is not None and base.term_end and base.term_end >= starts_on:
        term_end = min(term_end, base.term_end)  # A5: an add-on ends with its base
    # N2: the term starts at 00:00 UTC on the renewal day however late processing completes (now: within 24 hours,
    # or later if the engine was down); N3: only its 7-day windows count from the completion (X1 reads it).
    subscription.term_start = start_of_day(starts_on)
    subscription.renewal_completed_at = now
    subscription.term_end = term_end
    subscription.renewal_pending = False
    if update_fields is None:
        subscription.save()
    else:
        _save_renewed(subscription, update_fields, now)
    if not subscription.sku.is_license_based:
        return None  # billed by consumption
    open_seat_lot(subscription, quantity=subscription.quantity, source=source, now=now)
    charge = first_charge(unit_price=subscription.unit_price, quantity=subscription.quantity,
                          billing_frequency=subscription.billing_frequency, term_start=starts_on, term_end=term_end,
                          term_months=months)
    return bill(subscription, kind=billing_kind, charge=charge, quantity=subscription.quantity, now=now)


def _renew(subscription: Subscription, now: datetime) -> str:
    # N1, N2: the new term starts the day after the inclusive end date.
    before = _snapshot(subscription)
    starts_on = subscription.term_end + timedelta(days=1)
    scheduled = _scheduled(subscription)
    applied, used = _apply_scheduled_changes(subscription, scheduled, now=now)
    _reprice(subscription)
    aligned_end, alignment = _aligned_end(subscription, scheduled)  # checked against the renewed SKU and term
    if alignment:
        applied.append(alignment)
    _delete(used + [c for c in scheduled if c.kind == ScheduledChange.Kind.ALIGNMENT])
    line = _start_new_term(subscription, starts_on=starts_on, now=now, source=SeatLot.Source.RENEWAL,
                           billing_kind=BillingLine.Kind.RENEWAL, aligned_end=aligned_end,
                           update_fields=RENEWED_FIELDS)
    summary = f"Renewed from {starts_on:%Y-%m-%d} to {subscription.term_end:%Y-%m-%d}"
    if applied:
        summary += "; applied: " + ", ".join(applied)
    if line is not None:
        summary += f"; charged {line.amount} {line.currency}"
    audit.record(actor=None, at=now, customer=subscription.customer, subscription=subscription,
                 action="subscription.renewed", summary=summary[:300], before=before, after=_snapshot(subscription))
    return "renewed"


def _expire(subscription: Subscription, now: datetime, *, trial: bool = False) -> str:
    # N5 (TR1 for a trial with auto-renew off): the term ended and nothing renews it.
    transition(subscription, Status.EXPIRED)
    subscription.renewal_pending = False
    subscription.save(update_fields=["status", "renewal_pending", "updated_at"])
    subscription.scheduled_changes.all().delete()
    audit.record(actor=None, at=now, customer=subscription.customer, subscription=subscription,
                 action="subscription.expired",
                 summary=(f"{'Trial ended' if trial else 'Expired'}: the term ended on "
                          f"{subscription.term_end:%Y-%m-%d} with auto-renew off"),
                 before={"status": Status.ACTIVE}, after={"status": Status.EXPIRED})
    return "trials_ended" if trial else "expired"


def _disable(subscription: Subscription, now: datetime) -> str:
    # P2, N5: the term ended while suspended; it can never be reactivated.
    transition(subscription, Status.DISABLED)
    subscription.renewal_pending = False
    subscription.save(update_fields=["status", "renewal_pending", "updated_at"])
    subscription.scheduled_changes.all().delete()
    audit.record(actor=None, at=now, customer=subscription.customer, subscription=subscription,
                 action="subscription.disabled",
                 summary=f"Disabled: the term ended on {subscription.term_end:%Y-%m-%d} while suspended; data deleted",
                 before={"status": Status.SUSPENDED}, after={"status": Status.DISABLED})
    return "disabled"


def _convert_trial(subscription: Subscription, now: datetime) -> str:
    """TR1, R4: at its end a trial with auto-renew on becomes the paid SKU, P1Y billed monthly by default (TR2)."""
    # TR3, TR8: a conversion scheduled in the trial panel names the SKU; otherwise the paid SKU (R4).
    scheduled = _scheduled(subscription)
    paid = trial_converts_to(subscription, scheduled)
    if paid is None:
        logger.warning("Trial %s has no paid SKU to convert to; left as is", subscription.pk)
        return "skipped"
    before = _snapshot(subscription)
    starts_on = subscription.term_end + timedelta(days=1)
    availability = (Availability.objects.filter(sku=paid, term=Term.P1Y, billing_frequency=BillingFrequency.MONTHLY)
                    .first() or paid.availabilities.order_by("-term", "billing_frequency").first())
    subscription.sku = paid
    subscription.one_per_customer = paid.one_per_customer
    subscription.quantity = TRIAL_LICENSES
    subscription.is_trial = False
    subscription.promotion_id = ""  # TR6
    if availability is not None:
        subscription.availability = availability
        subscription.term = availability.term
        subscription.billing_frequency = availability.billing_frequency
        subscription.unit_price = availability.unit_price
        subscription.currency = availability.currency
    applied, used = _apply_scheduled_changes(subscription, scheduled)  # TR8: a quantity may be below 25
    _delete(used + [c for c in scheduled if c.kind == ScheduledChange.Kind.UPGRADE])
    _reprice(subscription)
    line = _start_new_term(subscription, starts_on=starts_on, now=now, source=SeatLot.Source.RENEWAL,
                           billing_kind=BillingLine.Kind.RENEWAL)
    summary = f"Trial converted to {paid.name}: {subscription.quantity} licenses from {starts_on:%Y-%m-%d} to " \
              f"{subscription.term_end:%Y-%m-%d}"
    if applied:
        summary += "; applied: " + ", ".join(applied)
    if line is not None:
        summary += f"; charged {line.amount} {line.currency}"
    audit.record(actor=None, at=now, customer=subscription.customer, subscription=subscription,
                 action="subscription.trial_converted", summary=summary[:300], before=before,
                 after=_snapshot(subscription))
    return "trials_converted"


def _end_free_trial(subscription: Subscription, now: datetime) -> str:
    """S4: the ISV free trial is over: the subscription is paid from its term start, fixed at purchase."""
    subscription.is_trial = False
    subscription.save(update_fields=["is_trial", "updated_at"])
    if subscription.sku.is_license_based and not subscription.seat_lots.exists():
        # A free trial opened no removal window (TR4); the paid term opens it now.
        open_seat_lot(subscription, quantity=subscription.quantity, source=SeatLot.Source.PURCHASE, now=now)
    charge = first_charge(unit_price=subscription.unit_price, quantity=subscription.quantity,
                          billing_frequency=subscription.billing_frequency, term_start=subscription.term_start.date(),
                          term_end=subscription.term_end, term_months=TERM_MONTHS[subscription.term])
    line = bill(subscription, kind=BillingLine.Kind.PURCHASE, charge=charge, quantity=subscription.quantity, now=now)
    audit.record(actor=None, at=now, customer=subscription.customer, subscription=subscription,
                 action="subscription.free_trial_ended",
                 summary=f"Free trial ended; billed {line.amount} {line.currency} from "
                         f"{subscription.term_start:%Y-%m-%d}",
                 before={"is_trial": True}, after={"is_trial": False, "charge": str(line.amount)})
    return "free_trials_ended"


# --- The engine as a periodic task (an alternative to `manage.py run_lifecycle --loop`) -----------------------
# The tick lives beside the pass it runs (and the pass restarts a lost chain of ticks), so nothing below the engine
# imports it.

LIFECYCLE_EVERY = timedelta(minutes=1)


@task
def lifecycle_tick_task() -> dict:
    """One pass of the lifecycle engine, and the next pass a minute later: a chain started once with
    `manage.py run_lifecycle --schedule` and run by the background worker. The engine is idempotent, so a
    tick that runs late, or twice, changes nothing twice. Tasks read the clock: they are the edge."""
    now = timezone.now()
    # The next tick is queued (and committed) before this pass runs, not in a `finally` after it: a worker killed
    # mid-pass runs no `finally`, and the chain would end with it. A failed or killed pass is then simply retried
    # by the next tick; a pass longer than a minute may overlap the next on another worker, which the engine
    # allows (it locks what it handles, one subscription at a time).
    schedule_lifecycle_tick(run_after=now + LIFECYCLE_EVERY)
    return asdict(run_lifecycle(now))


def schedule_lifecycle_tick(*, run_after: datetime) -> bool:
    """Enqueues the next tick unless one is already waiting, so starting the chain twice never doubles it."""
    waiting = DBTaskResult.objects.filter(task_path=lifecycle_tick_task.module_path, status=TaskResultStatus.READY)
    if waiting.exists():
        return False
    lifecycle_tick_task.using(run_after=run_after).enqueue()
    return True


def restart_lost_lifecycle_chain(now: datetime) -> bool:
    """A tick queues the next one before its pass, so a tick killed mid-pass leaves the chain going. Killed before
    that, it leaves no READY tick: the chain restarts here (recovery.py's sweep, for the chain). A tick started by
    `run_lifecycle --schedule` is the chain's evidence; with no tick at all (the engine runs as `--loop`) there is
    nothing to do."""
    bound = TICK_PRESUMED_LOST_AFTER
    with transaction.atomic():
        ticks = DBTaskResult.objects.filter(task_path=lifecycle_tick_task.module_path)
        # The lost ticks are locked (skipped if another sweep holds them), so two sweeps restart the chain once.
        lost = [row for row in ticks.filter(status=TaskResultStatus.RUNNING).select_for_update(skip_locked=True)
                if not is_live(row, now, lost_after=bound)]
        if not lost:
            return False
        live = [row for row in ticks.filter(status__in=(TaskResultStatus.READY, TaskResultStatus.RUNNING))
                if is_live(row, now, lost_after=bound)]
        if live:
            mark_lost(lost, now=now, replaced_by="the chain went on with the next tick", lost_after=bound)
            return False
        queued = lifecycle_tick_task.enqueue()
        mark_lost(lost, now=now, replaced_by=f"the chain restarted with task {queued.id}", lost_after=bound)
        return True
