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

from django.db import transaction
from django.db.models import Case, F, Prefetch, Q, Value, When
from django.tasks import TaskResultStatus, task
from django.utils import timezone
from django.utils.translation import gettext_noop
from django_tasks_db.models import DBTaskResult

from catalog.models import TERM_MONTHS, TRIAL_LICENSES, Availability, BillingFrequency, Term

from . import audit, checks, services
from .cycles import charge_due_cycles, mark_cycle_charges_pending
from .dates import start_of_day, term_end_for
from .models import AuditEntry, BillingLine, ScheduledChange, SeatLot, Subscription
from .recovery import TICK_PRESUMED_LOST_AFTER, guarded, is_live, mark_lost, requeue_stranded_work
from .services.conversions import trial_converts_to
from .services.kernel import (
    billing_line,
    change_status,
    delete_scheduled_changes,
    first_charge,
    new_seat_lot,
    start_paid_term,
)
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
        return sum(
            getattr(self, f.name)
            for f in fields(self)
            if f.name not in ("pending", "cycle_pending", "skipped", "failed") and not f.name.endswith("_requeued")
        )

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
    rows = list(
        Subscription.objects.filter(_due(now)).order_by("term_end", "pk").values_list("pk", "base_subscription_id")
    )
    rows.sort(key=lambda row: row[1] is not None)  # stable: keeps term_end order within each group
    rows = rows[:limit] if limit is not None else rows
    return [pk for pk, base in rows if base is None], [pk for pk, base in rows if base is not None]


def mark_renewals_pending(now: datetime) -> int:
    """N6: from 00:00 UTC on the renewal day, a subscription that will renew is read-only until it has."""
    return Subscription.objects.filter(checks.renewing_filter(), renewal_pending=False, term_end__lt=now.date()).update(
        renewal_pending=True, version=F("version") + 1
    )


def renew_due_subscriptions(now: datetime, limit: int | None = None) -> LifecycleReport:
    """Handles every subscription due at `now`: the renewals pending since 00:00 UTC (N6) a chunk a transaction,
    everything else (expiry, trials, a renewal not marked pending) each in its own transaction."""
    report = LifecycleReport()
    # The work comes in chunks of CHUNK subscriptions, which each engine takes in its own random order (all the
    # chunks of bases and other subscriptions before those of add-ons, A5): two engines at once mostly work on
    # different chunks, and one that reaches a chunk the other has done finds that out in one query (below)
    # instead of trying each of its subscriptions.
    chunks = []
    for group in _due_groups(now, limit):
        group_chunks = [group[start : start + CHUNK] for start in range(0, len(group), CHUNK)]
        random.shuffle(group_chunks)
        chunks += group_chunks
    # The rows a subscription points to and that a renewal only reads (customer and partner, offer, product and
    # publisher, availability) and its scheduled changes are read before, a chunk a query, so the locking query
    # joins only what the due check needs. An add-on's base is not read before: it may have been renewed a moment
    # ago in this run (A5). No ORDER BY: at most one row matches.
    locked = Subscription.objects.select_for_update(skip_locked=True, of=("self",)).filter(_due(now)).order_by()
    for chunk in chunks:
        rows = _preload(now, chunk)
        frozen = [row for row in rows if _frozen(row)]  # once per row, on the row as read with the chunk
        if frozen:
            _renew_frozen(frozen, now, report)
        frozen_pks = {row.pk for row in frozen}
        for row in rows:
            if row.pk in frozen_pks:
                continue
            try:
                with transaction.atomic():
                    subscription = next(iter(locked.filter(pk=row.pk)), None)
                    if subscription is None:
                        continue  # another engine holds it, or it was handled since the list was read
                    _reuse_preloaded(subscription, row)
                    outcome = _advance(subscription, now)
            except _HandledMeanwhile:
                continue  # renewed by another engine since the chunk was read: rolled back, nothing done twice
            except Exception:
                # Only this subscription's transaction is rolled back; the next run retries it.
                logger.exception("Lifecycle failed for subscription %s", row.pk)
                outcome = "failed"
            report.count(outcome)
    return report


def _preload(now: datetime, pks: list) -> list[Subscription]:
    """The chunk's subscriptions still due, in the chunk's order, with what a renewal reads: one query for the rows
    and those they point to, one for their scheduled changes (in `renewal_changes`)."""
    changes = Prefetch(
        "scheduled_changes", to_attr="renewal_changes", queryset=ScheduledChange.objects.select_related("target_sku")
    )
    by_pk = {
        row.pk: row
        for row in Subscription.objects.filter(_due(now), pk__in=pks)
        .order_by()
        .select_related("customer__partner", "sku__product__publisher", "sku__trial_of", "availability")
        .prefetch_related(changes)
    }
    return [by_pk[pk] for pk in pks if pk in by_pk]  # the others were handled since the list was read


def _renew_frozen(rows: list[Subscription], now: datetime, report: LifecycleReport) -> None:
    """N1, N6: renews a chunk's pending renewals in one transaction, written with a few set-wide queries (the renewed
    rows in one UPDATE, their license lots, charges and audit rows in one INSERT each) instead of a transaction and
    half a dozen round trips each: those round trips were most of a renewal's time on PostgreSQL. If anything fails,
    the chunk is rolled back and its renewals are made one by one, each in its own transaction, so that a failure
    rolls back only its own renewal (and is logged, for the next pass to retry)."""
    try:
        with transaction.atomic():
            renewed = _renew_held(rows, now)
    except Exception:
        if len(rows) == 1:
            logger.exception("Lifecycle failed for subscription %s", rows[0].pk)
            report.count("failed")
            return
    else:
        report.renewed += renewed
        return
    # The failed attempt changed the rows in memory: read them again, then one transaction each.
    for row in _preload(now, [row.pk for row in rows]):
        if _frozen(row):
            _renew_frozen([row], now, report)


def _renew_held(rows: list[Subscription], now: datetime) -> int:
    """Locks those of the rows still pending with the term end they were read with (skipping any another engine
    holds, or has renewed since), then renews them. A renewal pending since 00:00 UTC (N6) is frozen: every service
    refuses to change it, its scheduled changes included, until the engine has renewed it; so the rows and changes
    read with the chunk are still what the locked rows hold. Without row locks (SQLite) the transaction holds the
    database's write lock from its start (BEGIN IMMEDIATE) instead, and the UPDATE re-checks each term end either
    way (_write_renewals)."""
    held = set(
        Subscription.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(checks.renewing_filter(), pk__in=[row.pk for row in rows], renewal_pending=True)
        .order_by()
        .values_list("pk", "term_end")
    )
    renewals = [_plan_renewal(row, now) for row in rows if (row.pk, row.term_end) in held]
    _write_renewals(renewals, now)
    return len(renewals)


class _HandledMeanwhile(Exception):
    pass


def _frozen(row: Subscription) -> bool:
    """N6: a renewal pending, which nothing but the engine changes until it completes."""
    return row.renewal_pending and checks.at_term_end(row) == checks.AtTermEnd.RENEWS


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
    due cycles (they fall within the term, so before its renewal), then move every due subscription. In the
    audit trail's one language (English), whatever language the thread that runs it last activated: the refusals
    and labels the engine writes into its records come from the same translated functions the pages use."""
    with audit.records_language():
        return _run_lifecycle(now, limit)


def _run_lifecycle(now: datetime, limit: int | None) -> LifecycleReport:
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
    # Then what other apps asked to run with every pass (`after_each_pass`), last: the API's webhooks (the audit
    # entries written since the last pass, this pass's renewals too, become deliveries) and its replayed answers
    # past their time. Guarded: their trouble never holds up a renewal, and is retried next pass.
    for work in AFTER_EACH_PASS:
        guarded(work, now)
    return report


# Work another app runs with every pass of the engine, each `work(now)`: registered from its AppConfig.ready (the API
# registers its webhooks and its MS-RequestId sweep), so this module knows of no app above it.
AFTER_EACH_PASS: list = []


def after_each_pass(work) -> None:
    if work not in AFTER_EACH_PASS:
        AFTER_EACH_PASS.append(work)


def _advance(subscription: Subscription, now: datetime) -> str:
    # What the pages say will happen (checks.at_term_end) is what happens: the row is due, so active or suspended.
    outcome = checks.at_term_end(subscription)
    if outcome == checks.AtTermEnd.DISABLED:
        return _disable(subscription, now)
    if outcome == checks.AtTermEnd.FREE_TRIAL_ENDS:
        return _end_free_trial(subscription, now)
    if outcome == checks.AtTermEnd.CONVERTS:
        return _convert_trial(subscription, now)
    if outcome == checks.AtTermEnd.TRIAL_ENDS:
        return _expire(subscription, now, trial=True)
    if outcome == checks.AtTermEnd.RENEWS:
        return _renew(subscription, now)
    if outcome == checks.AtTermEnd.EXPIRES:
        return _expire(subscription, now)
    return "skipped"  # ended or pending since it was found due: nothing to do


def _snapshot(subscription: Subscription) -> dict:
    return {
        "status": subscription.status,
        "sku": subscription.sku.sku_id,
        "quantity": subscription.quantity,
        "term": subscription.term,
        "billing_frequency": subscription.billing_frequency,
        "unit_price": str(subscription.unit_price),
        "is_trial": subscription.is_trial,
        "term_start": subscription.term_start.isoformat() if subscription.term_start else None,
        "term_end": subscription.term_end.isoformat() if subscription.term_end else None,
    }


def _scheduled(subscription: Subscription) -> list[ScheduledChange]:
    """Everything scheduled for the renewal: as read with the engine's chunk (_preload), else in one query."""
    preloaded = getattr(subscription, "renewal_changes", None)
    if preloaded is not None:
        return list(preloaded)
    return list(subscription.scheduled_changes.select_related("target_sku"))


def _apply_scheduled_changes(
    subscription: Subscription, scheduled: list[ScheduledChange], *, now: datetime | None = None
) -> tuple[list[audit.Said], list[ScheduledChange]]:
    """N4: quantity, term and billing frequency scheduled for the renewal and, at a renewal (`now` given), the
    SKU upgrade, re-checked now (R1; R5 says what happens to the licenses). Returns the summaries (messages) and the
    changes used up (applied, or an upgrade that no longer holds, the summary saying why), for the caller to
    delete. The aligned end date is _aligned_end's."""
    applied = []
    kinds = RENEWAL_VALUES if now is None else (*RENEWAL_VALUES, ScheduledChange.Kind.UPGRADE)
    changes = [change for change in scheduled if change.kind in kinds]
    reassignment = services.renewal_upgrade_reassignment_said(subscription, changes)  # R5, before the quantity changes
    for change in changes:
        if change.kind == ScheduledChange.Kind.QUANTITY and change.quantity:
            subscription.quantity = change.quantity
        elif change.kind == ScheduledChange.Kind.TERM and change.term:
            subscription.term = change.term
        elif change.kind == ScheduledChange.Kind.BILLING_FREQUENCY and change.billing_frequency:
            subscription.billing_frequency = change.billing_frequency
        if change.kind != ScheduledChange.Kind.UPGRADE:
            applied.append(change.summary_said)
    upgrade = next((c for c in changes if c.kind == ScheduledChange.Kind.UPGRADE and c.target_sku_id), None)
    if upgrade is not None:

        def check_upgrade():
            services.check_renewal_upgrade(
                subscription,
                upgrade.target_sku_id,
                quantity=subscription.quantity,
                term=subscription.term,
                billing_frequency=subscription.billing_frequency,
                now=now,
            )

        refusal = audit.refusal(check_upgrade)
        if refusal is not None:
            applied.append(
                audit.said(
                    gettext_noop("%(change)s not applied (%(reason)s), renewed on %(offer)s"),
                    change=upgrade.summary_said,
                    reason=refusal,
                    offer=subscription.sku.name,
                )
            )
        else:
            # R1: the same subscription (same id) continues on the target SKU; _reprice prices it.
            subscription.sku = upgrade.target_sku
            subscription.one_per_customer = upgrade.target_sku.one_per_customer
            applied.append(
                audit.said(
                    gettext_noop("%(change)s (%(reassignment)s)"),
                    change=upgrade.summary_said,
                    reassignment=reassignment,
                )
            )
    return applied, changes


def _delete(changes: list[ScheduledChange]) -> None:
    if changes:
        ScheduledChange.objects.filter(pk__in=[c.pk for c in changes]).delete()


def _aligned_end(subscription: Subscription, scheduled: list[ScheduledChange]) -> tuple[date | None, audit.Said | None]:
    """K11 at renewal: the end date scheduled for the renewed term, re-checked now against the renewed SKU and
    term (the subscription it was aligned to may have been cancelled or renewed since). Returns the date (None:
    the natural end) and what the audit says; the caller deletes the scheduled change either way."""
    change = next((c for c in scheduled if c.kind == ScheduledChange.Kind.ALIGNMENT and c.aligned_end_date), None)
    if change is None:
        return None, None
    refusal = audit.refusal(
        lambda: services.check_renewal_alignment(
            subscription, change.aligned_end_date, sku=subscription.sku, term=subscription.term
        )
    )
    if refusal is not None:
        return None, audit.said(
            gettext_noop("aligned end date %(date)s not applied, natural end kept: %(reason)s"),
            date=f"{change.aligned_end_date:%Y-%m-%d}",
            reason=refusal,
        )
    return change.aligned_end_date, audit.said(
        gettext_noop("aligned to end on %(date)s, first term prorated"), date=f"{change.aligned_end_date:%Y-%m-%d}"
    )


def _reprice(subscription: Subscription) -> None:
    """A new SKU (R1 upgrade), term or billing frequency is sold at that availability's price."""
    if (
        subscription.availability.sku_id,
        subscription.availability.term,
        subscription.availability.billing_frequency,
    ) == (subscription.sku_id, subscription.term, subscription.billing_frequency):
        return
    availability = Availability.objects.filter(
        sku=subscription.sku, term=subscription.term, billing_frequency=subscription.billing_frequency
    ).first()
    if availability is not None:
        subscription.availability = availability
        subscription.unit_price = availability.unit_price
        subscription.currency = availability.currency


# What a renewal changes on the subscription row (written alone: cheaper than every column), by column name;
# list_name follows the offer as save() keeps it (models.Subscription.save), and version is bumped as save() does.
RENEWED_COLUMNS = [
    "sku_id",
    "one_per_customer",
    "availability_id",
    "quantity",
    "term",
    "billing_frequency",
    "unit_price",
    "currency",
    "term_start",
    "term_end",
    "list_name",
]


def _begin_new_term(
    subscription: Subscription, *, starts_on: date, now: datetime, aligned_end: date | None = None
) -> int:
    """The new term runs from 00:00 UTC on `starts_on` to its natural end or `aligned_end` (K11, its first charge
    then prorated by the day); its 7-day windows count from now, when it completes (N3). Sets it on the
    subscription (unsaved); returns the term's months."""
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
    return months


def _new_term_charges(
    subscription: Subscription, *, starts_on: date, months: int, now: datetime, source: str, billing_kind: str
) -> tuple[SeatLot | None, BillingLine | None]:
    """The new term's license lot and first charge, unsaved (none for an offer billed by consumption)."""
    if not subscription.sku.is_license_based:
        return None, None
    lot = new_seat_lot(subscription, quantity=subscription.quantity, source=source, now=now)
    charge = first_charge(
        unit_price=subscription.unit_price,
        quantity=subscription.quantity,
        billing_frequency=subscription.billing_frequency,
        term_start=starts_on,
        term_end=subscription.term_end,
        term_months=months,
    )
    return lot, billing_line(subscription, kind=billing_kind, charge=charge, quantity=subscription.quantity, now=now)


def _start_new_term(
    subscription: Subscription, *, starts_on: date, now: datetime, source: str, billing_kind: str
) -> BillingLine | None:
    """The new term (see _begin_new_term) saved, with its license lot and first charge."""
    months = _begin_new_term(subscription, starts_on=starts_on, now=now)
    subscription.save()
    lot, line = _new_term_charges(
        subscription, starts_on=starts_on, months=months, now=now, source=source, billing_kind=billing_kind
    )
    if lot is not None:
        lot.save(force_insert=True)
        line.save(force_insert=True)
    return line


@dataclass
class _Renewal:
    """One renewal worked out, for _write_renewals to write with others."""

    subscription: Subscription
    read: dict  # RENEWED_COLUMNS as read, before the renewal
    used: list[ScheduledChange]  # to delete
    lot: SeatLot | None
    line: BillingLine | None
    entry: AuditEntry


def _plan_renewal(subscription: Subscription, now: datetime) -> _Renewal:
    """N1, N2, N4: the renewal of a locked subscription, worked out in memory (its rule checks may read); nothing
    is written here."""
    read = {name: getattr(subscription, name) for name in RENEWED_COLUMNS}
    before = _snapshot(subscription)
    # N1, N2: the new term starts the day after the inclusive end date.
    starts_on = checks.renewal_starts_on(subscription)
    scheduled = _scheduled(subscription)
    applied, used = _apply_scheduled_changes(subscription, scheduled, now=now)
    _reprice(subscription)
    aligned_end, alignment = _aligned_end(subscription, scheduled)  # checked against the renewed SKU and term
    if alignment:
        applied.append(alignment)
    used = used + [c for c in scheduled if c.kind == ScheduledChange.Kind.ALIGNMENT]
    months = _begin_new_term(subscription, starts_on=starts_on, now=now, aligned_end=aligned_end)
    if subscription.sku_id != read["sku_id"]:
        subscription.list_name = subscription.display_name
    lot, line = _new_term_charges(
        subscription,
        starts_on=starts_on,
        months=months,
        now=now,
        source=SeatLot.Source.RENEWAL,
        billing_kind=BillingLine.Kind.RENEWAL,
    )
    summary = audit.said(
        gettext_noop("Renewed from %(start)s to %(end)s"),
        start=f"{starts_on:%Y-%m-%d}",
        end=f"{subscription.term_end:%Y-%m-%d}",
    ) + _applied_and_charged(applied, line)
    entry = audit.entry(
        actor=None,
        at=now,
        customer=subscription.customer,
        subscription=subscription,
        action="subscription.renewed",
        summary=summary,
        before=before,
        after=_snapshot(subscription),
    )
    return _Renewal(subscription=subscription, read=read, used=used, lot=lot, line=line, entry=entry)


def _write_renewals(renewals: list[_Renewal], now: datetime) -> None:
    """Writes renewals worked out by _plan_renewal, in the caller's transaction: their used scheduled changes
    deleted in one query, the rows in one UPDATE, the lots, charges and audit rows in one INSERT each."""
    if not renewals:
        return
    _delete([change for renewal in renewals for change in renewal.used])
    _update_renewed(renewals, now)
    SeatLot.objects.bulk_create([r.lot for r in renewals if r.lot is not None])
    BillingLine.objects.bulk_create([r.line for r in renewals if r.line is not None])
    AuditEntry.objects.bulk_create([r.entry for r in renewals])


def _update_renewed(renewals: list[_Renewal], now: datetime) -> None:
    """One UPDATE for every renewed row: what all of them take alike (pending off, completed now, a new version) as
    values, and each column some of them change as a CASE over the rows that change it, a WHEN per distinct value
    (a renewal's term end, or a scheduled quantity). It matches a row only with the term end it was read with, so
    a row another engine renewed meanwhile is not renewed twice: then the whole transaction is rolled back."""
    values = {
        "renewal_pending": False,
        "renewal_completed_at": now,
        "updated_at": now,  # auto_now, which an
        "version": F("version") + 1,
    }  # UPDATE doesn't apply; any write is a new version (portal/versions.py)
    changed: dict[str, dict] = {}
    by_end: dict[date, list] = {}
    for renewal in renewals:
        subscription = renewal.subscription
        by_end.setdefault(renewal.read["term_end"], []).append(subscription.pk)
        for name in RENEWED_COLUMNS:
            value = getattr(subscription, name)
            if value != renewal.read[name]:
                changed.setdefault(name, {}).setdefault(value, []).append(subscription.pk)
    for name, pks_by_value in changed.items():
        field = Subscription._meta.get_field(name)
        if len(pks_by_value) == 1 and len(next(iter(pks_by_value.values()))) == len(renewals):
            values[name] = next(iter(pks_by_value))  # the same for every row
        else:
            values[name] = Case(
                *[When(pk__in=pks, then=Value(value, output_field=field)) for value, pks in pks_by_value.items()],
                default=F(name),
                output_field=field,
            )
    guard = Q()
    for term_end, pks in by_end.items():
        guard |= Q(term_end=term_end, pk__in=pks)
    if Subscription.objects.filter(guard).update(**values) != len(renewals):
        raise _HandledMeanwhile
    for renewal in renewals:
        renewal.subscription.version += 1
        renewal.subscription.updated_at = now


def _renew(subscription: Subscription, now: datetime) -> str:
    """A due renewal not marked pending (N6), on its own locked row."""
    _write_renewals([_plan_renewal(subscription, now)], now)
    return "renewed"


def _applied_and_charged(applied: list[audit.Said], line: BillingLine | None) -> audit.Joined:
    """The end of a renewal's (or a trial conversion's) summary: the scheduled changes applied, and the charge."""
    tail = audit.Joined(())
    if applied:
        tail += audit.said(gettext_noop("; applied: %(changes)s"), changes=audit.listed(applied))
    if line is not None:
        tail += audit.said(gettext_noop("; charged %(amount)s"), amount=audit.money(line.amount, line.currency))
    return tail


def _end_term(subscription: Subscription, now: datetime, new_status: str, *, action: str, summary: audit.Said) -> None:
    # N5: the term ended and nothing renews it: what was scheduled for the renewal goes with it.
    change_status(subscription, new_status, actor=None, now=now, action=action, summary=summary, renewal_pending=False)
    delete_scheduled_changes(subscription)


def _expire(subscription: Subscription, now: datetime, *, trial: bool = False) -> str:
    # N5 (TR1 for a trial with auto-renew off): the term ended with auto-renew off.
    _end_term(
        subscription,
        now,
        Status.EXPIRED,
        action="subscription.expired",
        summary=audit.said(
            gettext_noop("Trial ended: the term ended on %(date)s with auto-renew off")
            if trial
            else gettext_noop("Expired: the term ended on %(date)s with auto-renew off"),
            date=f"{subscription.term_end:%Y-%m-%d}",
        ),
    )
    return "trials_ended" if trial else "expired"


def _disable(subscription: Subscription, now: datetime) -> str:
    # P2, N5: the term ended while suspended; it can never be reactivated.
    _end_term(
        subscription,
        now,
        Status.DISABLED,
        action="subscription.disabled",
        summary=audit.said(
            gettext_noop("Disabled: the term ended on %(date)s while suspended; data deleted"),
            date=f"{subscription.term_end:%Y-%m-%d}",
        ),
    )
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
    starts_on = checks.renewal_starts_on(subscription)
    availability = (
        Availability.objects.filter(sku=paid, term=Term.P1Y, billing_frequency=BillingFrequency.MONTHLY).first()
        or paid.availabilities.order_by("-term", "billing_frequency").first()
    )
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
    line = _start_new_term(
        subscription, starts_on=starts_on, now=now, source=SeatLot.Source.RENEWAL, billing_kind=BillingLine.Kind.RENEWAL
    )
    summary = audit.said(
        gettext_noop("Trial converted to %(offer)s: %(quantity)s licenses from %(start)s to %(end)s"),
        offer=paid.name,
        quantity=subscription.quantity,
        start=f"{starts_on:%Y-%m-%d}",
        end=f"{subscription.term_end:%Y-%m-%d}",
    ) + _applied_and_charged(applied, line)
    audit.record(
        actor=None,
        at=now,
        customer=subscription.customer,
        subscription=subscription,
        action="subscription.trial_converted",
        summary=summary,
        before=before,
        after=_snapshot(subscription),
    )
    return "trials_converted"


def _end_free_trial(subscription: Subscription, now: datetime) -> str:
    """S4: the ISV free trial is over: the subscription is paid from its term start, fixed at purchase."""
    subscription.is_trial = False
    subscription.save(update_fields=["is_trial", "updated_at"])
    line = start_paid_term(subscription, now=now)
    audit.record(
        actor=None,
        at=now,
        customer=subscription.customer,
        subscription=subscription,
        action="subscription.free_trial_ended",
        summary=audit.said(
            gettext_noop("Free trial ended; billed %(amount)s from %(date)s"),
            amount=audit.money(line.amount, line.currency),
            date=f"{subscription.term_start:%Y-%m-%d}",
        ),
        before={"is_trial": True},
        after={"is_trial": False, "charge": str(line.amount)},
    )
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
        lost = [
            row
            for row in ticks.filter(status=TaskResultStatus.RUNNING).select_for_update(skip_locked=True)
            if not is_live(row, now, lost_after=bound)
        ]
        if not lost:
            return False
        live = [
            row
            for row in ticks.filter(status__in=(TaskResultStatus.READY, TaskResultStatus.RUNNING))
            if is_live(row, now, lost_after=bound)
        ]
        if live:
            mark_lost(lost, now=now, replaced_by="the chain went on with the next tick", lost_after=bound)
            return False
        queued = lifecycle_tick_task.enqueue()
        mark_lost(lost, now=now, replaced_by=f"the chain restarted with task {queued.id}", lost_after=bound)
        return True
