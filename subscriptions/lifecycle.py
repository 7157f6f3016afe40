"""Renewals, trial ends and expiry: the one place time moves a subscription.

Every function takes `now`. The engine is idempotent and crash-safe: each due subscription is
handled in its own transaction on a row locked with `SELECT ... FOR UPDATE SKIP LOCKED`, and the
row is checked again once locked, so a rerun (or a second engine running at the same time on
PostgreSQL) finishes what is left and never handles a subscription twice.
"""

import logging
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta

from django.db import transaction
from django.db.models import Q

from catalog.models import TERM_MONTHS, Availability, BillingFrequency, Term

from . import audit
from .dates import term_end_for
from .models import BillingLine, ScheduledChange, SeatLot, Subscription
from .services import bill, first_charge, open_seat_lot, transition
from .states import Status

logger = logging.getLogger(__name__)

# N4: the kinds applied at renewal here; SKU upgrades and aligned end dates stay scheduled.
APPLIED_AT_RENEWAL = (ScheduledChange.Kind.QUANTITY, ScheduledChange.Kind.TERM, ScheduledChange.Kind.BILLING_FREQUENCY)
TRIAL_LICENSES = 25  # TR1


@dataclass
class LifecycleReport:
    pending: int = 0
    renewed: int = 0
    expired: int = 0
    disabled: int = 0
    trials_converted: int = 0
    trials_ended: int = 0
    free_trials_ended: int = 0
    skipped: int = 0
    failed: int = 0

    def count(self, outcome: str) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)

    @property
    def handled(self) -> int:
        return sum(getattr(self, f.name) for f in fields(self) if f.name not in ("pending", "skipped", "failed"))

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
    # Bases before their add-ons, so a renewed add-on can end with its renewed base (A5).
    rows = list(Subscription.objects.filter(_due(now)).order_by("term_end", "pk")
                .values_list("pk", "base_subscription_id"))
    rows.sort(key=lambda row: row[1] is not None)  # stable: keeps term_end order within each group
    ids = [pk for pk, _ in rows]
    return ids[:limit] if limit is not None else ids


def mark_renewals_pending(now: datetime) -> int:
    """N6: from 00:00 UTC on the renewal day, a subscription that will renew is read-only until it has."""
    return (Subscription.objects.filter(status=Status.ACTIVE, is_trial=False, auto_renew=True, renewal_pending=False,
                                        term_end__lt=now.date())
            .update(renewal_pending=True))


def renew_due_subscriptions(now: datetime, limit: int | None = None) -> LifecycleReport:
    """Handles every subscription due at `now`, each in its own transaction."""
    report = LifecycleReport()
    for pk in due_subscription_ids(now, limit):
        try:
            with transaction.atomic():
                subscription = (Subscription.objects.select_for_update(skip_locked=True, of=("self",))
                                .select_related("customer__partner", "sku__product__publisher", "sku__trial_of",
                                                "base_subscription")
                                .filter(_due(now), pk=pk).first())
                if subscription is None:
                    continue  # another engine holds it, or it was handled since the list was read
                outcome = _advance(subscription, now)
        except Exception:
            # Only this subscription's transaction is rolled back; the next run retries it.
            logger.exception("Lifecycle failed for subscription %s", pk)
            outcome = "failed"
        report.count(outcome)
    return report


def run_lifecycle(now: datetime, limit: int | None = None) -> LifecycleReport:
    """One pass of the engine: mark pending renewals (N6), then move every due subscription."""
    pending = mark_renewals_pending(now)
    report = renew_due_subscriptions(now, limit=limit)
    report.pending = pending
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


def _apply_scheduled_changes(subscription: Subscription) -> list[str]:
    """N4: quantity, term and billing frequency scheduled for the renewal; applied ones are deleted."""
    applied = []
    changes = list(subscription.scheduled_changes.filter(kind__in=APPLIED_AT_RENEWAL))
    for change in changes:
        if change.kind == ScheduledChange.Kind.QUANTITY and change.quantity:
            subscription.quantity = change.quantity
        elif change.kind == ScheduledChange.Kind.TERM and change.term:
            subscription.term = change.term
        elif change.kind == ScheduledChange.Kind.BILLING_FREQUENCY and change.billing_frequency:
            subscription.billing_frequency = change.billing_frequency
        applied.append(change.summary)
    if changes:
        ScheduledChange.objects.filter(pk__in=[c.pk for c in changes]).delete()
    return applied


def _reprice(subscription: Subscription) -> None:
    """A new term or billing frequency is sold at that availability's price."""
    if (subscription.availability.term, subscription.availability.billing_frequency) == (
            subscription.term, subscription.billing_frequency):
        return
    availability = Availability.objects.filter(sku=subscription.sku, term=subscription.term,
                                               billing_frequency=subscription.billing_frequency).first()
    if availability is not None:
        subscription.availability = availability
        subscription.unit_price = availability.unit_price
        subscription.currency = availability.currency


def _start_new_term(subscription: Subscription, *, starts_on: date, now: datetime, source: str,
                    billing_kind: str) -> BillingLine | None:
    """The new term runs from `starts_on`; its 7-day windows count from now, when it completes (N3)."""
    months = TERM_MONTHS[subscription.term]
    term_end = term_end_for(starts_on, months)
    base = subscription.base_subscription
    if base is not None and base.term_end and base.term_end >= starts_on:
        term_end = min(term_end, base.term_end)  # A5: an add-on ends with its base
    # X1 counts the cancellation window from term_start: the renewal completes now.
    subscription.term_start = now
    subscription.term_end = term_end
    subscription.renewal_pending = False
    subscription.save()
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
    applied = _apply_scheduled_changes(subscription)
    _reprice(subscription)
    line = _start_new_term(subscription, starts_on=starts_on, now=now, source=SeatLot.Source.RENEWAL,
                           billing_kind=BillingLine.Kind.RENEWAL)
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
    upgrade = (subscription.scheduled_changes.filter(kind=ScheduledChange.Kind.UPGRADE, target_sku__isnull=False)
               .select_related("target_sku").last())
    paid = upgrade.target_sku if upgrade else subscription.sku.trial_of
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
    applied = _apply_scheduled_changes(subscription)  # TR8: a scheduled quantity may be below 25
    if upgrade:
        subscription.scheduled_changes.filter(kind=ScheduledChange.Kind.UPGRADE).delete()
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
