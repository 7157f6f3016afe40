"""Changing the billing frequency at the next charge, and the cycle charge that applies it (N7, P3, P4).

A partner sets an instruction "bill annually (or monthly, or once) from the next charge" on an active,
license-based new-commerce subscription. The next charge is the next billing period start under the current
frequency, counted from the term start, strictly after today and within the inclusive term; the instruction
keeps that date. At 00:00 UTC on it the lifecycle engine marks the subscription cycle-charge pending (N7: the
instruction is read-only from then), then charges the first period of the new frequency and removes the
instruction, each subscription in its own transaction, like the renewals in lifecycle.py.

Suspension keeps the instruction (P4) and a suspended subscription is still billed (P3), so its cycle charge
runs too. A boundary after the term end is the renewal's: the instruction can't exist there (a database
constraint says so), and a frequency for the next term is scheduled in Manage renewal.
"""

import logging
from dataclasses import dataclass
from datetime import date, datetime

from django.db import transaction
from django.db.models import F, Q
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from catalog.models import FREQUENCY_MONTHS, TERM_MONTHS, Availability, BillingFrequency, Term
from portal.access import Action, require
from portal.errors import RuleViolation

from . import audit, checks
from .checks import next_charge_date
from .dates import period_containing, term_end_for
from .models import BillingLine, Subscription
from .pricing import Charge, prorated_charge
from .services.kernel import (
    BILLED,
    BILLED_SAID,
    bill,
    check_fits_term,
    check_frequency_choice,
    fits_term,
    lock_subscription,
    sold_availability,
)
from .states import Status

logger = logging.getLogger(__name__)


# --- The instruction ------------------------------------------------------------------------------


def next_charge_frequencies(subscription: Subscription) -> list[str]:
    """The billing frequencies this subscription can switch to at the next charge: sold for its SKU and term
    (the SKU's availabilities, prefetched by the page), other than the current one, not longer than the term."""
    sold = {a.billing_frequency for a in subscription.sku.availabilities.all() if a.term == subscription.term}
    return [
        f
        for f in BillingFrequency.values
        if f in sold and f != subscription.billing_frequency and fits_term(subscription.term, f)
    ]


def _check_frequency(subscription: Subscription, frequency: str) -> None:
    check_frequency_choice("N7", frequency)
    if frequency == subscription.billing_frequency:
        raise RuleViolation(
            "N7",
            _("It is already billed %(billed)s: choose another billing frequency, or remove the instruction.")
            % {"billed": BILLED[frequency]},
            field="billing_frequency",
        )
    check_fits_term("N7", subscription.term, frequency)
    sold_availability("N7", subscription.sku, subscription.term, frequency, field="billing_frequency")


def instruction(subscription: Subscription) -> dict:
    """The instruction as the audit trail records it."""
    return {
        "next_charge_frequency": subscription.next_charge_frequency or None,
        "next_charge_on": subscription.next_charge_on.isoformat() if subscription.next_charge_on else None,
    }


def set_next_charge_frequency(
    *, subscription_id, actor, version: int | str | None = None, billing_frequency: str, now: datetime
) -> Subscription:
    """Sets (or changes) the billing frequency that starts at the next charge."""
    require(actor, Action.BUY)
    with transaction.atomic():
        subscription = lock_subscription(subscription_id, version, actor)
        checks.check_next_charge_frequency(subscription, actor, now)
        _check_frequency(subscription, billing_frequency)
        charge_on = next_charge_date(subscription, now.date())
        if (subscription.next_charge_frequency, subscription.next_charge_on) == (billing_frequency, charge_on):
            raise RuleViolation(
                "N7",
                _("It is already set to be billed %(billed)s from %(date)s (UTC): nothing was changed.")
                % {"billed": BILLED[billing_frequency], "date": f"{charge_on:%Y-%m-%d}"},
                conflict=True,
            )
        before = instruction(subscription)
        subscription.next_charge_frequency = billing_frequency
        subscription.next_charge_on = charge_on
        subscription.next_charge_set_at = now
        subscription.save(update_fields=["next_charge_frequency", "next_charge_on", "next_charge_set_at", "updated_at"])
        summary = audit.said(
            gettext_noop("Billing frequency changes from %(old)s to %(new)s at the next charge on %(date)s (UTC)"),
            old=BILLED_SAID[subscription.billing_frequency],
            new=BILLED_SAID[billing_frequency],
            date=f"{charge_on:%Y-%m-%d}",
        )
        audit.record(
            actor=actor,
            at=now,
            customer=subscription.customer,
            subscription=subscription,
            action="subscription.next_charge_frequency_set",
            summary=summary,
            before=before,
            after=instruction(subscription),
        )
    return subscription


def remove_next_charge_frequency(
    *, subscription_id, actor, version: int | str | None = None, now: datetime
) -> Subscription:
    """Removes the instruction: the next charge keeps the current billing frequency."""
    require(actor, Action.BUY)
    with transaction.atomic():
        subscription = lock_subscription(subscription_id, version, actor)
        checks.check_next_charge_frequency(subscription, actor, now)
        if not subscription.next_charge_frequency:
            raise RuleViolation(
                "N7",
                _(
                    "No billing frequency change is set for the next charge (it was removed already): nothing was "
                    "changed."
                ),
                conflict=True,
            )
        before = instruction(subscription)
        _clear(subscription)
        subscription.save(
            update_fields=[
                "next_charge_frequency",
                "next_charge_on",
                "next_charge_set_at",
                "cycle_charge_pending",
                "updated_at",
            ]
        )
        summary = audit.said(
            gettext_noop("Billing frequency change removed: the next charge stays %(billed)s"),
            billed=BILLED_SAID[subscription.billing_frequency],
        )
        audit.record(
            actor=actor,
            at=now,
            customer=subscription.customer,
            subscription=subscription,
            action="subscription.next_charge_frequency_removed",
            summary=summary,
            before=before,
            after=instruction(subscription),
        )
    return subscription


def _clear(subscription: Subscription) -> None:
    subscription.next_charge_frequency = ""
    subscription.next_charge_on = None
    subscription.next_charge_set_at = None
    subscription.cycle_charge_pending = False


# --- The cycle charge (the engine step) -------------------------------------------------------------


def cycle_charge(
    *, unit_price, quantity: int, billing_frequency: str, starts_on: date, term_start: date, term_end: date, term: str
) -> Charge:
    """The first period of the new billing frequency, from `starts_on` to the end of that frequency's period
    counted from the term start (a month; the rest of the term year, prorated by the day; cut at the term end),
    or for one-time billing the rest of the term, prorated against the whole term."""
    if billing_frequency == BillingFrequency.ONE_TIME:
        charge = prorated_charge(
            unit_price=unit_price,
            quantity=quantity,
            period_start=starts_on,
            period_end=term_end,
            full_period_start=term_start,
            full_period_end=term_end_for(term_start, TERM_MONTHS[term]),
        )
    else:
        # The new frequency's periods are counted from the term start, like every other period of the term
        # (services.current_period): a switch to annual billing in month 5 pays the rest of that term year.
        start, end, full_start, full_end = period_containing(
            term_start=term_start, term_end=term_end, period_months=FREQUENCY_MONTHS[billing_frequency], today=starts_on
        )
        charge = prorated_charge(
            unit_price=unit_price,
            quantity=quantity,
            period_start=starts_on,
            period_end=end,
            full_period_start=full_start,
            full_period_end=full_end,
        )
    explanation = f"Billed {BILLED[billing_frequency]} from {starts_on:%Y-%m-%d}: {charge.explanation}"
    return Charge(charge.amount, charge.period_start, charge.period_end, explanation[:300])


def _due() -> Q:
    return ~Q(next_charge_frequency="") & Q(next_charge_on__isnull=False)


def mark_cycle_charges_pending(now: datetime) -> int:
    """N7: from 00:00 UTC on the day of the next charge, its billing frequency instruction is read-only."""
    return Subscription.objects.filter(_due(), next_charge_on__lte=now.date(), cycle_charge_pending=False).update(
        cycle_charge_pending=True, version=F("version") + 1
    )


@dataclass
class CycleReport:
    charged: int = 0
    dropped: int = 0
    failed: int = 0


def charge_due_cycles(now: datetime, limit: int | None = None) -> CycleReport:
    """Every cycle charge due at `now`, each in its own transaction on a row locked with SKIP LOCKED and checked
    again once locked: a rerun (or a second engine) finishes what is left and never charges twice."""
    report = CycleReport()
    due = Q(_due(), next_charge_on__lte=now.date())
    ids = list(Subscription.objects.filter(due).order_by("next_charge_on", "pk").values_list("pk", flat=True))
    for pk in ids[:limit] if limit is not None else ids:
        try:
            with transaction.atomic():
                subscription = (
                    Subscription.objects.select_for_update(skip_locked=True, of=("self",))
                    .select_related("customer__partner", "sku__product__publisher")
                    .filter(due, pk=pk)
                    .first()
                )
                if subscription is None:
                    continue  # another engine holds it, or it was charged since the list was read
                with audit.records_language():  # the engine's records, whatever language the caller's thread has
                    outcome = _charge_cycle(subscription, now)
        except Exception:
            # Only this subscription's transaction is rolled back: it stays pending and the next run retries it.
            logger.exception("Cycle charge failed for subscription %s", pk)
            outcome = "failed"
        setattr(report, outcome, getattr(report, outcome) + 1)
    return report


# A status as the middle of a sentence says it ("the subscription is expired"): those a due instruction can find.
_STATUS_IN_SENTENCE = {
    Status.PENDING: audit.Said.pgettext("status in a sentence", "pending"),
    Status.EXPIRED: audit.Said.pgettext("status in a sentence", "expired"),
    Status.DISABLED: audit.Said.pgettext("status in a sentence", "disabled"),
    Status.DELETED: audit.Said.pgettext("status in a sentence", "deleted"),
}


def _stale(subscription: Subscription, availability: Availability | None) -> audit.Said | None:
    """Why a due instruction can no longer be applied (a message for the audit trail), or None."""
    frequency, charge_on = subscription.next_charge_frequency, subscription.next_charge_on
    if subscription.status not in (Status.ACTIVE, Status.SUSPENDED):
        return audit.said(
            gettext_noop("the subscription is %(status)s"), status=_STATUS_IN_SENTENCE[subscription.status]
        )
    if subscription.term_start is None or charge_on < subscription.term_start.date():
        return audit.said(gettext_noop("the term it was set for has ended"))
    if frequency == subscription.billing_frequency:
        return audit.said(gettext_noop("it is already billed %(billed)s"), billed=BILLED_SAID[frequency])
    if availability is None:
        return audit.said(
            gettext_noop("%(offer)s is no longer sold for a %(term)s term billed %(billed)s"),
            offer=subscription.sku.name,
            term=audit.label(Term(subscription.term).label),
            billed=BILLED_SAID[frequency],
        )
    return None


def _charge_cycle(subscription: Subscription, now: datetime) -> str:
    frequency, starts_on = subscription.next_charge_frequency, subscription.next_charge_on
    availability = Availability.objects.filter(
        sku=subscription.sku, term=subscription.term, billing_frequency=frequency
    ).first()
    before = {
        "billing_frequency": subscription.billing_frequency,
        "unit_price": str(subscription.unit_price),
        **instruction(subscription),
    }
    fields = ["next_charge_frequency", "next_charge_on", "next_charge_set_at", "cycle_charge_pending", "updated_at"]
    reason = _stale(subscription, availability)
    if reason:
        _clear(subscription)
        subscription.save(update_fields=fields)
        audit.record(
            actor=None,
            at=now,
            customer=subscription.customer,
            subscription=subscription,
            action="subscription.next_charge_frequency_dropped",
            summary=audit.said(
                gettext_noop("Billing frequency change to %(billed)s on %(date)s not applied: %(reason)s"),
                billed=BILLED_SAID[frequency],
                date=f"{starts_on:%Y-%m-%d}",
                reason=reason,
            ),
            before=before,
            after=instruction(subscription),
        )
        return "dropped"
    subscription.billing_frequency = frequency
    subscription.availability = availability
    subscription.unit_price = availability.unit_price
    subscription.currency = availability.currency
    _clear(subscription)
    subscription.save(update_fields=["billing_frequency", "availability", "unit_price", "currency", *fields])
    line = None
    if subscription.sku.is_license_based:
        charge = cycle_charge(
            unit_price=subscription.unit_price,
            quantity=subscription.quantity,
            billing_frequency=frequency,
            starts_on=starts_on,
            term_start=subscription.term_start.date(),
            term_end=subscription.term_end,
            term=subscription.term,
        )
        line = bill(subscription, kind=BillingLine.Kind.CYCLE, charge=charge, quantity=subscription.quantity, now=now)
    summary = audit.said(
        gettext_noop("Billing frequency changed to %(billed)s from %(date)s"),
        billed=BILLED_SAID[frequency],
        date=f"{starts_on:%Y-%m-%d}",
    )
    if line is not None:
        summary += audit.said(
            gettext_noop("; charged %(amount)s for %(start)s – %(end)s"),
            amount=audit.money(line.amount, line.currency),
            start=f"{line.period_start:%Y-%m-%d}",
            end=f"{line.period_end:%Y-%m-%d}",
        )
    audit.record(
        actor=None,
        at=now,
        customer=subscription.customer,
        subscription=subscription,
        action="subscription.cycle_charged",
        summary=summary,
        before=before,
        after={"billing_frequency": frequency, "unit_price": str(subscription.unit_price), **instruction(subscription)},
    )
    return "charged"
