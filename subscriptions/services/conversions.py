"""Converting a new-commerce trial (TR2–TR8, R4, R6): what it can become, and doing it now or at its end.

`plan_conversion` is the one place the rules live: the preview on the page and both services call it
(the services on the locked row), so the panel can never offer what the server refuses.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop, ngettext

from catalog.models import TERM_MONTHS, TRIAL_LICENSES, Availability, BillingFrequency, Sku, Term
from portal.access import Action, require
from portal.errors import RuleViolation

from .. import audit, checks
from ..checks import check_conversion
from ..dates import term_end_for
from ..models import BillingLine, ScheduledChange, SeatLot, Subscription
from ..pricing import Charge, remaining_charge
from ..states import Status
from .kernel import (
    BILLED_SAID,
    bill,
    change_status,
    check_choice,
    check_quantity_sold,
    current_period,
    delete_scheduled_changes,
    first_charge,
    lock_subscription,
    new_subscription,
    open_seat_lot,
    sold_availability,
    start_subscription,
    supported_paths,
)


def trial_converts_to(trial: Subscription, changes: list[ScheduledChange]) -> Sku | None:
    """R4, TR3: the SKU a trial converts to at its end: the one its conversion scheduled in the trial panel names,
    otherwise its paid SKU. Read by the lifecycle engine, which converts it, and by the Renewals page."""
    scheduled = next(
        (c.target_sku for c in reversed(changes) if c.kind == ScheduledChange.Kind.UPGRADE and c.target_sku_id), None
    )
    return scheduled or trial.sku.trial_of


@dataclass(frozen=True)
class ConversionTarget:
    """One thing the trial can become: a SKU (a new subscription) or an existing subscription (TR3)."""

    sku: Sku
    subscription: Subscription | None = None
    higher: bool = False
    allowed: bool = True
    reason: str = ""

    @property
    def key(self) -> str:
        return f"sub-{self.subscription.pk}" if self.subscription else f"sku-{self.sku.pk}"

    @property
    def label(self) -> str:
        if self.subscription:
            s = self.subscription
            return ngettext(
                "Into existing %(name)s (%(count)s license, ends %(date)s, %(term)s billed %(frequency)s)",
                "Into existing %(name)s (%(count)s licenses, ends %(date)s, %(term)s billed %(frequency)s)",
                s.quantity,
            ) % {
                "name": s.display_name,
                "count": s.quantity,
                "date": f"{s.term_end:%Y-%m-%d}",
                "term": s.get_term_display(),
                "frequency": s.get_billing_frequency_display().lower(),
            }
        if self.higher:
            return _("%(offer)s (higher SKU), new subscription") % {"offer": self.sku.name}
        return _("%(offer)s (equivalent paid SKU), new subscription") % {"offer": self.sku.name}


def conversion_targets(trial: Subscription) -> list[ConversionTarget]:
    """TR3: the equivalent paid SKU, its supported upgrades, and the customer's active paid subscriptions of those."""
    paid = trial.sku.trial_of
    if paid is None:
        return []
    higher = [
        p.target for p in supported_paths(paid.pk).order_by("target__name")
    ]  # U2's matrix, as an upgrade reads it
    targets = [ConversionTarget(sku=paid)] + [ConversionTarget(sku=sku, higher=True) for sku in higher]
    skus = {t.sku.pk: t for t in targets}
    existing = (
        Subscription.objects.filter(
            customer_id=trial.customer_id, sku_id__in=skus, status=Status.ACTIVE, is_trial=False
        )
        .select_related("sku")
        .order_by("term_end", "created_at")
    )
    for sub in existing:
        # TR5: the trial's licenses join a subscription only if it lasts at least as long as the trial.
        ok = sub.term_end is not None and sub.term_end >= trial.term_end
        reason = (
            ""
            if ok
            else _(
                "It ends on %(date)s, before the trial's end on %(trial_end)s: a trial can only be converted into a "
                "subscription that ends on or after the trial's end date."
            )
            % {"date": f"{sub.term_end:%Y-%m-%d}", "trial_end": f"{trial.term_end:%Y-%m-%d}"}
        )
        targets.append(
            ConversionTarget(sku=sub.sku, subscription=sub, higher=skus[sub.sku_id].higher, allowed=ok, reason=reason)
        )
    return targets


def scheduled_conversion_refusal(trial: Subscription) -> str:
    """TR8: why the conversion can't be scheduled for the trial's end ("" when it can): it needs auto-renew on."""
    return (
        "" if trial.auto_renew else _("Auto-renew is off: turn it on to schedule the conversion for the trial's end.")
    )


@dataclass(frozen=True)
class ConversionTiming:
    """When the conversion happens, as the panel offers it: now (TR7) or at the trial's end (TR8), with the verdict
    the service reaches on it."""

    value: str  # "now" or "scheduled", as posted
    label: str
    reason: str = ""  # why it can't be chosen ("" if it can)

    @property
    def allowed(self) -> bool:
        return not self.reason


def conversion_timings(trial: Subscription) -> list[ConversionTiming]:
    """TR7, TR8: the panel's choices of when, each from the rule plan_conversion applies."""
    return [
        ConversionTiming(
            "now",
            _(
                "Now (at least %(count)s licenses; into an existing subscription, %(count)s licenses are added and "
                "its term and billing frequency stay)"
            )
            % {"count": TRIAL_LICENSES},
        ),
        ConversionTiming(
            "scheduled",
            _("At the trial's end (needs auto-renew on; fewer than %(count)s licenses allowed)")
            % {"count": TRIAL_LICENSES},
            reason=scheduled_conversion_refusal(trial),
        ),
    ]


@dataclass
class ConversionPlan:
    """What a conversion will do, shown before it is submitted and then carried out as is."""

    scheduled: bool
    sku: Sku
    quantity: int
    term: str
    billing_frequency: str
    into: Subscription | None = None
    availability: Availability | None = None
    charge: Charge | None = None
    term_end: object = None
    # The first day of the paid term: today (now), or the day after the trial's end (scheduled).
    starts_on: object = None
    into_quantity: int = 0  # the existing subscription's licenses before the trial's are added

    @property
    def summary(self) -> str:
        """What the conversion does, in the active language; computed from the plan each time it is read, so each
        reader gets its own."""
        return str(self.summary_said)

    @property
    def summary_said(self) -> audit.Said:
        """What the conversion does, as a message (subscriptions.said): what its audit row keeps."""
        if self.into is not None:
            into = self.into
            return audit.said(
                gettext_noop(
                    "Now: %(count)s licenses are added to %(name)s (%(old)s → %(new)s), charged %(amount)s "
                    "%(currency)s (%(explanation)s); its %(term)s term billed %(billed)s, ending %(date)s, stays. The "
                    "trial ends now."
                ),
                count=self.quantity,
                name=into.display_name,
                old=self.into_quantity,
                new=self.into_quantity + self.quantity,
                amount=self.charge.amount,
                currency=into.currency,
                explanation=self.charge.explanation,
                term=audit.label(Term(self.term).label),
                billed=BILLED_SAID[self.billing_frequency],
                date=f"{self.term_end:%Y-%m-%d}",
            )
        availability = self.availability
        values = {
            "offer": self.sku.name,
            "count": self.quantity,
            "term": audit.label(Term(self.term).label),
            "billed": BILLED_SAID[self.billing_frequency],
            "price": audit.said(
                gettext_noop("%(price)s %(currency)s per license"),
                price=availability.unit_price,
                currency=availability.currency,
            ),
            "start": f"{self.starts_on:%Y-%m-%d}",
            "end": f"{self.term_end:%Y-%m-%d}",
        }
        if self.scheduled:
            return audit.Said.ngettext(
                "At the trial's end: from %(start)s it becomes %(offer)s with %(count)s license, %(term)s billed "
                "%(billed)s at %(price)s, until %(end)s. No promotion applies.",
                "At the trial's end: from %(start)s it becomes %(offer)s with %(count)s licenses, %(term)s billed "
                "%(billed)s at %(price)s, until %(end)s. No promotion applies.",
                "count",
                **values,
            )
        return audit.Said.ngettext(
            "Now: a new %(offer)s subscription with %(count)s license, %(term)s billed %(billed)s at %(price)s, from "
            "%(start)s to %(end)s; first charge %(amount)s %(currency)s. No promotion applies. The trial ends now.",
            "Now: a new %(offer)s subscription with %(count)s licenses, %(term)s billed %(billed)s at %(price)s, from "
            "%(start)s to %(end)s; first charge %(amount)s %(currency)s. No promotion applies. The trial ends now.",
            "count",
            **values,
            amount=self.charge.amount,
            currency=availability.currency,
        )


def _availability(sku: Sku, term: str, billing_frequency: str) -> Availability:
    # TR2: both can be changed, to a way the target SKU is actually sold.
    check_choice("TR2", term, billing_frequency)
    return sold_availability("TR2", sku, term, billing_frequency)


def plan_conversion(
    trial: Subscription,
    *,
    user,
    now: datetime,
    target_sku_id: int | None,
    into_subscription_id=None,
    scheduled: bool = False,
    term: str | None = None,
    billing_frequency: str | None = None,
    quantity: int | None,
) -> ConversionPlan:
    check_conversion(trial, user, now)
    # TR2: left out, a new subscription is a year billed monthly (the panel's form fills the same defaults).
    term = term or Term.P1Y
    billing_frequency = billing_frequency or BillingFrequency.MONTHLY
    if scheduled:
        refusal = scheduled_conversion_refusal(trial)
        if refusal:
            raise RuleViolation("TR8", refusal)
    targets = conversion_targets(trial)
    today = now.date()
    if into_subscription_id:
        if scheduled:
            raise RuleViolation(
                "TR3", _('Converting into an existing subscription happens now: choose "Now".'), field="target"
            )
        target = next(
            (t for t in targets if t.subscription and str(t.subscription.pk) == str(into_subscription_id)), None
        )
        if target is None or (target_sku_id is not None and target.sku.pk != target_sku_id):
            raise RuleViolation(
                "TR3",
                _("That subscription can't take this trial's licenses: choose one of the listed targets."),
                field="target",
            )
        if not target.allowed:
            raise RuleViolation("TR5", target.reason, field="target")
        into = target.subscription
        checks.check_not_renewal_pending(into)
        # TR7: 25 licenses are added; the existing subscription keeps its term and billing frequency.
        charge = remaining_charge(
            unit_price=into.unit_price, quantity=TRIAL_LICENSES, period=current_period(into, today), today=today
        )
        return ConversionPlan(
            scheduled=False,
            sku=into.sku,
            quantity=TRIAL_LICENSES,
            term=into.term,
            billing_frequency=into.billing_frequency,
            into=into,
            charge=charge,
            term_end=into.term_end,
            starts_on=today,
            into_quantity=into.quantity,
        )
    sku = next((t.sku for t in targets if t.subscription is None and t.sku.pk == target_sku_id), None)
    if sku is None:
        raise RuleViolation(
            "TR3", _("Choose the paid offer, a higher offer or an existing subscription to convert to."), field="target"
        )
    availability = _availability(sku, term, billing_frequency)
    if quantity is None:
        raise RuleViolation("TR7", _("Enter the number of licenses."), field="quantity")
    if not scheduled and quantity < TRIAL_LICENSES:
        raise RuleViolation(
            "TR7",
            _(
                "Converting now needs at least %(count)s licenses; schedule the conversion for the trial's end to use "
                "fewer."
            )
            % {"count": TRIAL_LICENSES},
            field="quantity",
        )
    check_quantity_sold(sku, quantity)
    months = TERM_MONTHS[term]
    plan = ConversionPlan(
        scheduled=scheduled,
        sku=sku,
        quantity=quantity,
        term=term,
        billing_frequency=billing_frequency,
        availability=availability,
    )
    if scheduled:
        plan.starts_on = checks.renewal_starts_on(trial)
        plan.term_end = term_end_for(plan.starts_on, months)
        return plan
    if checks.customer_holds(trial.customer_id, sku):  # C4a
        raise RuleViolation(
            "TR3",
            _("The customer already has %(offer)s, which can be bought once: convert into that subscription instead.")
            % {"offer": sku.name},
            field="target",
        )
    plan.starts_on = today
    plan.term_end = term_end_for(today, months)
    plan.charge = first_charge(
        unit_price=availability.unit_price,
        quantity=quantity,
        billing_frequency=billing_frequency,
        term_start=today,
        term_end=plan.term_end,
        term_months=months,
    )
    return plan


@dataclass
class ConversionResult:
    trial: Subscription
    subscription: Subscription  # the paid subscription that now holds the licenses
    plan: ConversionPlan


def _end_trial(trial: Subscription, *, actor, now: datetime, into: Subscription) -> None:
    # Like Partner Center, the paid licenses live in another subscription and the trial itself ends.
    deleted = delete_scheduled_changes(trial)  # R6
    change_status(
        trial,
        Status.EXPIRED,
        actor=actor,
        now=now,
        action="subscription.trial_converted",
        summary=audit.said(
            gettext_noop("Trial converted now into %(name)s (%(id)s); the trial ended"),
            name=into.display_name,
            id=str(into.pk),
        )
        + audit.changes_deleted(deleted),
        before={"status": Status.ACTIVE, "is_trial": True},
        after={"status": Status.EXPIRED, "converted_into": str(into.pk)},
        auto_renew=False,
    )


def convert_trial_now(
    *,
    subscription_id,
    actor,
    version: int | str | None = None,
    target_sku_id: int | None,
    term: str | None = None,
    billing_frequency: str | None = None,
    quantity: int | None,
    into_subscription_id=None,
    now: datetime,
) -> ConversionResult:
    """TR2, TR3, TR6, TR7: converts the trial mid-term (a term or billing frequency left out: TR2's, `plan_conversion`).

    Into a new subscription, a paid subscription is created (new term from now, its own seat lot and
    first charge, no promotion) and the trial ends, as Partner Center does, rather than turning the
    trial row into the paid one: the trial's history stays the trial's. Into an existing subscription,
    25 licenses are added to it (prorated over its current billing period) and the trial ends.
    """
    require(actor, Action.BUY)
    with transaction.atomic():
        trial = lock_subscription(subscription_id, version, actor)
        if into_subscription_id:
            # Lock the receiving subscription too before its state is checked.
            Subscription.objects.select_for_update(of=("self",)).filter(
                pk=into_subscription_id, customer_id=trial.customer_id
            ).first()
        plan = plan_conversion(
            trial,
            user=actor,
            now=now,
            target_sku_id=target_sku_id,
            into_subscription_id=into_subscription_id,
            scheduled=False,
            term=term,
            billing_frequency=billing_frequency,
            quantity=quantity,
        )
        if plan.into is not None:
            into = plan.into
            before = {"quantity": into.quantity}
            open_seat_lot(into, quantity=TRIAL_LICENSES, source=SeatLot.Source.INCREASE, now=now)
            bill(into, kind=BillingLine.Kind.INCREASE, charge=plan.charge, quantity=TRIAL_LICENSES, now=now)
            into.quantity += TRIAL_LICENSES
            into.quantity_updates += 1
            into.save(update_fields=["quantity", "quantity_updates", "updated_at"])
            deleted = delete_scheduled_changes(into)  # R6: its quantity changed mid-term
            audit.record(
                actor=actor,
                at=now,
                customer=into.customer,
                subscription=into,
                action="subscription.trial_licenses_added",
                summary=audit.said(
                    gettext_noop("%(count)s licenses added from the trial %(trial)s; charged %(amount)s"),
                    count=TRIAL_LICENSES,
                    trial=trial.display_name,
                    amount=audit.money(plan.charge.amount, into.currency),
                )
                + audit.changes_deleted(deleted),
                before=before,
                after={"quantity": into.quantity, "charge": str(plan.charge.amount)},
            )
            paid = into
        else:
            paid = start_subscription(
                new_subscription(
                    trial.customer,
                    plan.availability,
                    quantity=plan.quantity,
                    term_start=now,
                    term_end=plan.term_end,
                    auto_renew=True,
                    reseller=trial.reseller,
                    now=now,
                    friendly_name=trial.friendly_name,
                    promotion_id="",  # TR6
                ),
                now=now,
                charge=plan.charge,
            )
            audit.record(
                actor=actor,
                at=now,
                customer=paid.customer,
                subscription=paid,
                action="subscription.created",
                summary=audit.said(
                    gettext_noop(
                        "Created by converting the trial %(trial)s: %(quantity)s license(s), charged %(amount)s"
                    ),
                    trial=trial.display_name,
                    quantity=plan.quantity,
                    amount=audit.money(plan.charge.amount, paid.currency),
                ),
                after={
                    "status": paid.status,
                    "quantity": paid.quantity,
                    "term": paid.term,
                    "billing_frequency": paid.billing_frequency,
                    "term_end": paid.term_end.isoformat(),
                    "converted_from": str(trial.pk),
                },
            )
        _end_trial(trial, actor=actor, now=now, into=paid)
    return ConversionResult(trial=trial, subscription=paid, plan=plan)


def schedule_trial_conversion(
    *,
    subscription_id,
    actor,
    version: int | str | None = None,
    target_sku_id: int | None,
    term: str,
    billing_frequency: str,
    quantity: int | None,
    into_subscription_id=None,
    now: datetime,
) -> list[ScheduledChange]:
    """TR3, TR8: what the trial becomes at its end (applied by the lifecycle engine); replaces earlier choices."""
    require(actor, Action.BUY)
    with transaction.atomic():
        trial = lock_subscription(subscription_id, version, actor)
        plan = plan_conversion(
            trial,
            user=actor,
            now=now,
            target_sku_id=target_sku_id,
            into_subscription_id=into_subscription_id,
            scheduled=True,
            term=term,
            billing_frequency=billing_frequency,
            quantity=quantity,
        )
        deleted = delete_scheduled_changes(trial)
        summary = plan.summary_said
        Kind = ScheduledChange.Kind
        changes = [
            ScheduledChange.objects.create(subscription=trial, kind=Kind.UPGRADE, target_sku=plan.sku, created_at=now),
            ScheduledChange.objects.create(
                subscription=trial, kind=Kind.QUANTITY, quantity=plan.quantity, created_at=now
            ),
            ScheduledChange.objects.create(subscription=trial, kind=Kind.TERM, term=plan.term, created_at=now),
            ScheduledChange.objects.create(
                subscription=trial,
                kind=Kind.BILLING_FREQUENCY,
                billing_frequency=plan.billing_frequency,
                created_at=now,
            ),
        ]
        audit.record(
            actor=actor,
            at=now,
            customer=trial.customer,
            subscription=trial,
            action="subscription.trial_conversion_scheduled",
            summary=summary
            + (
                audit.said(gettext_noop(" Replaced %(count)s earlier scheduled change(s)."), count=deleted)
                if deleted
                else None
            ),
            after={
                "sku": plan.sku.sku_id,
                "quantity": plan.quantity,
                "term": plan.term,
                "billing_frequency": plan.billing_frequency,
            },
        )
    return changes
