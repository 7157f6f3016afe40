"""Upgrades (U1–U9): moving licenses from a paid subscription to a higher-tier paid SKU, now.

`upgrade_targets` lists what the "Check upgrades" panel offers (U2, U3); `plan_upgrade` checks a
choice and says what it will do (the preview, U4–U6); `upgrade_subscription` carries the plan out
after the "Yes, upgrade" confirmation (U7), removing what was scheduled for the renewal (U8, R6).
"""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop, ngettext

from catalog.models import TERM_MONTHS, Availability, BillingFrequency, Sku, Term, UpgradePath
from portal.access import Action, require
from portal.errors import RuleViolation

from .. import audit, checks
from ..checks import check_upgrade
from ..dates import term_end_for
from ..models import BillingLine, SeatLot, Subscription
from ..pricing import Charge, remaining_charge
from ..states import LIVE_STATUSES, Status
from .kernel import (
    NO_WINDOW,
    bill,
    check_choice,
    check_fits_term,
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
    transition,
)


class Unfit:
    """U3: the kinds of reason an existing subscription can't receive the licenses (what a client tells apart: the
    API gives each Partner Center's code where it has one)."""

    RENEWAL_PENDING = "renewal_pending"
    CANCELLATION_WINDOW = "cancellation_window"
    TERM_SHORTER = "term_shorter"
    TERM_LONGER = "term_longer"
    ENDS_BEFORE = "ends_before"


def existing_refusal(existing: Subscription, source: Subscription, now: datetime) -> tuple[str, str]:
    """U3: why an existing subscription of the target SKU can't receive the licenses, as (its `Unfit` kind, the
    sentence); ("", "") if it can."""
    if existing.renewal_pending:
        return Unfit.RENEWAL_PENDING, _("its renewal is being processed: try again in two minutes.")
    closes = checks.cancellation_window_ends(existing)
    if closes and now < closes:
        return Unfit.CANCELLATION_WINDOW, _("inside its cancellation window (until %(when)s).") % {
            "when": checks.when_utc(closes)
        }
    if existing.term != source.term:
        kind = Unfit.TERM_SHORTER if TERM_MONTHS[existing.term] < TERM_MONTHS[source.term] else Unfit.TERM_LONGER
        return kind, _("its term (%(term)s) differs from this subscription's (%(source_term)s).") % {
            "term": existing.get_term_display(),
            "source_term": source.get_term_display(),
        }
    if existing.term_end and source.term_end and existing.term_end < source.term_end:
        return Unfit.ENDS_BEFORE, _("it ends on %(date)s, before this subscription (%(source_date)s).") % {
            "date": f"{existing.term_end:%Y-%m-%d}",
            "source_date": f"{source.term_end:%Y-%m-%d}",
        }
    return "", ""


def existing_reason(existing: Subscription, source: Subscription, now: datetime) -> str:
    """U3: why an existing subscription of the target SKU can't receive the licenses ("" if it can)."""
    return existing_refusal(existing, source, now)[1]


@dataclass(frozen=True)
class ExistingTarget:
    subscription: Subscription
    reason: str = ""
    kind: str = ""  # U3: the reason's `Unfit` kind

    @property
    def allowed(self) -> bool:
        return not self.reason


def _existing_target(existing: Subscription, source: Subscription, now: datetime) -> ExistingTarget:
    kind, reason = existing_refusal(existing, source, now)
    return ExistingTarget(existing, reason, kind)


@dataclass
class UpgradeTarget:
    sku: Sku
    availabilities: list[Availability]
    existing: list[ExistingTarget]
    source_term: str = ""

    @property
    def sold(self) -> list[Availability]:
        """U4: what the form offers: the target's terms no shorter than the source's, each with its frequencies
        (the server checks the pair again)."""
        shortest = TERM_MONTHS.get(self.source_term, 0)
        return [a for a in self.availabilities if TERM_MONTHS[a.term] >= shortest]

    @property
    def terms(self) -> list[tuple[str, str]]:
        return [(t, Term(t).label) for t in Term.values if any(a.term == t for a in self.sold)]

    @property
    def frequencies(self) -> list[tuple[str, str]]:
        return [
            (f, BillingFrequency(f).label)
            for f in BillingFrequency.values
            if any(a.billing_frequency == f for a in self.sold)
        ]


def _existing_of(source: Subscription, sku_id):
    return (
        Subscription.objects.filter(customer_id=source.customer_id, sku_id=sku_id, status=Status.ACTIVE, is_trial=False)
        .exclude(pk=source.pk)
        .select_related("sku__product__publisher")
        .order_by("term_end", "created_at")
    )


def upgrade_path(subscription: Subscription, target_sku_id) -> UpgradePath:
    """U2: the supported path to `target_sku_id`, or the one refusal of a target the matrix doesn't offer, for an
    upgrade now (plan_upgrade) and one scheduled for the renewal (renewal.check_renewal_upgrade)."""
    path = supported_paths(subscription.sku_id).filter(target_id=target_sku_id).first()
    if path is None:
        raise RuleViolation(
            "U2",
            _("That upgrade is not offered for this subscription: choose one of the listed targets."),
            field="target_sku",
        )
    return path


def upgrade_targets(subscription: Subscription, *, now: datetime) -> list[UpgradeTarget]:
    """U2: the supported paths of the upgrade matrix from this SKU to paid SKUs (none for a subscription
    U1 does not let be upgraded), each with the customer's existing subscriptions of it and U3's reasons."""
    if subscription.is_trial or subscription.status != Status.ACTIVE or not subscription.sku.is_license_based:
        return []
    paths = supported_paths(subscription.sku_id).order_by("target__name")
    return [
        UpgradeTarget(
            sku=path.target,
            availabilities=list(path.target.availabilities.all()),
            source_term=subscription.term,
            existing=[_existing_target(e, subscription, now) for e in _existing_of(subscription, path.target_id)],
        )
        for path in paths
    ]


@dataclass
class UpgradePlan:
    """What an upgrade will do: shown as the preview, then carried out as is."""

    source: Subscription
    target_sku: Sku
    quantity: int
    term: str
    billing_frequency: str
    unit_price: Decimal
    availability: Availability | None = None  # the target's availability (None when upgrading into an existing one)
    into: Subscription | None = None
    charge: Charge | None = None
    # The moved licenses' unused part of the source's current billing period, credited back (a positive amount).
    credit: Charge | None = None
    term_end: object = None
    deletes_scheduled: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def term_label(self) -> str:
        return Term(self.term).label

    @property
    def billing_label(self) -> str:
        return BillingFrequency(self.billing_frequency).label.lower()

    @property
    def full(self) -> bool:
        return self.quantity == self.source.quantity

    @property
    def in_place(self) -> bool:
        # U5: a full upgrade into a new subscription keeps the subscription (and its id).
        return self.full and self.into is None

    @property
    def creates_subscription(self) -> bool:
        return not self.full and self.into is None


def _check_term(source: Subscription, target: Sku, term: str, billing_frequency: str) -> Availability:
    """U4: the target term can't be shorter than the source's, nor the billing frequency longer than the term."""
    check_choice("U4", term, billing_frequency)
    if TERM_MONTHS[term] < TERM_MONTHS[source.term]:
        raise RuleViolation(
            "U4",
            _("The target term (%(term)s) can't be shorter than this subscription's (%(source_term)s).")
            % {"term": Term(term).label, "source_term": source.get_term_display()},
            field="term",
        )
    check_fits_term("U4", term, billing_frequency)
    return sold_availability("U4", target, term, billing_frequency)


def plan_upgrade(
    source: Subscription,
    *,
    user,
    target_sku_id,
    quantity: int,
    term: str | None,
    billing_frequency: str | None,
    into_subscription_id=None,
    now: datetime,
    lock: bool = False,
) -> UpgradePlan:
    """U1–U6 checked without changing anything; `lock` locks the existing target (inside a transaction). A term or
    billing frequency left out (None) is the source's own, as the panel's form starts with them."""
    check_upgrade(source, user, now)
    term = term or source.term
    billing_frequency = billing_frequency or source.billing_frequency
    target = upgrade_path(source, target_sku_id).target  # U2 (a trial is never a target: U1)
    # U4: all licenses = full upgrade, fewer = partial.
    if quantity < 1 or quantity > source.quantity:
        raise RuleViolation(
            "U4",
            _("Upgrade from 1 to %(count)s licenses (the subscription has %(count)s).")
            % {"count": f"{source.quantity:,}"},
            field="quantity",
        )
    today = now.date()
    period = current_period(source, today)
    plan = UpgradePlan(
        source=source,
        target_sku=target,
        quantity=quantity,
        term=term or "",
        billing_frequency=billing_frequency or "",
        unit_price=Decimal("0.00"),
        deletes_scheduled=source.scheduled_changes.count(),
    )
    if into_subscription_id:
        existing = _existing_of(source, target.pk).filter(pk=into_subscription_id)
        into = (existing.select_for_update(of=("self",)) if lock else existing).first()
        if into is None:
            raise RuleViolation(
                "U3",
                _(
                    "That subscription is not an active %(offer)s subscription of this customer any more: choose "
                    "another target."
                )
                % {"offer": target.name},
                conflict=True,
            )
        reason = existing_reason(into, source, now)
        if reason:
            raise RuleViolation(
                "U3",
                _("%(subscription)s can't receive the licenses: %(reason)s")
                % {"subscription": into.display_name, "reason": reason},
            )
        if source.addon_subscriptions.filter(status__in=LIVE_STATUSES).exists() and plan.full:
            raise RuleViolation(
                "U5",
                _("This subscription has add-ons: upgrade it in place (a new subscription) so they keep their base."),
            )
        check_quantity_sold(target, into.quantity + quantity)  # the licenses it will hold
        # U5: the existing subscription keeps its term and billing frequency.
        plan.into, plan.term, plan.billing_frequency = into, into.term, into.billing_frequency
        plan.unit_price, plan.term_end = into.unit_price, into.term_end
        plan.charge = remaining_charge(
            unit_price=into.unit_price, quantity=quantity, period=current_period(into, today), today=today
        )
    else:
        plan.availability = _check_term(source, target, term or "", billing_frequency or "")
        plan.unit_price = plan.availability.unit_price
        check_quantity_sold(target, quantity)
        if checks.customer_holds(source.customer_id, target, excluding=source.pk):  # C4a
            raise RuleViolation(
                "U3",
                _("The customer already holds %(offer)s, which can be held once: upgrade into that subscription.")
                % {"offer": target.name},
            )
        if plan.full and plan.term != source.term:
            # A longer term starts now (U5 keeps the subscription and its id).
            plan.term_end = term_end_for(today, TERM_MONTHS[plan.term])
            plan.charge = first_charge(
                unit_price=plan.unit_price,
                quantity=quantity,
                billing_frequency=plan.billing_frequency,
                term_start=today,
                term_end=plan.term_end,
                term_months=TERM_MONTHS[plan.term],
            )
        else:
            # Same term (in place), or partial (U6: coterminous with the source): the upgraded licenses
            # are charged at the target price for the rest of the current billing period.
            plan.term_end = source.term_end
            plan.charge = remaining_charge(unit_price=plan.unit_price, quantity=quantity, period=period, today=today)
    # The source's licenses were paid to the end of its current billing period: the part not used is credited
    # for the licenses that move, as the upgraded ones are charged for the same days.
    plan.credit = remaining_charge(unit_price=source.unit_price, quantity=quantity, period=period, today=today)
    if plan.creates_subscription:
        plan.warnings.append(
            _(
                "Reassign these licenses by hand: the new subscription's licenses are not assigned to users "
                "automatically."
            )
        )
    elsewhere = (
        (
            Subscription.objects.filter(
                customer__domain=source.customer.domain, sku=target, status__in=LIVE_STATUSES
            ).exclude(customer__partner_id=source.customer.partner_id)
        )
        if source.customer.domain
        else None
    )
    if elsewhere is not None and elsewhere.exists():
        plan.warnings.append(
            _("The customer also holds %(offer)s from another partner or channel: licenses must be assigned by hand.")
            % {"offer": target.name}
        )
    closes = checks.cancellation_window_ends(source)
    if plan.in_place and closes and now < closes:
        # U7: the upgrade closes the window that would have stayed open until `closes`.
        plan.warnings.append(
            _(
                "An upgrade can't be undone: this subscription can no longer be cancelled or have licenses removed "
                "once it is upgraded (otherwise possible until %(when)s)."
            )
            % {"when": checks.when_utc(closes)}
        )
    if plan.deletes_scheduled:
        plan.warnings.append(
            ngettext(
                "This deletes the %(count)s change scheduled for the renewal.",
                "This deletes the %(count)s changes scheduled for the renewal.",
                plan.deletes_scheduled,
            )
            % {"count": plan.deletes_scheduled}
        )
    return plan


def _move_lots(subscription: Subscription, quantity: int) -> None:
    """Licenses moved away can't be removed (and refunded) from the source later: used up newest first."""
    for lot in subscription.seat_lots.select_for_update().order_by("-added_at", "-pk"):
        if quantity == 0:
            return
        take = min(quantity, lot.remaining)
        if take:
            lot.removed += take
            lot.save(update_fields=["removed"])
            quantity -= take


def upgrade_subscription(
    *,
    subscription_id,
    actor,
    version: int | str | None = None,
    target_sku_id,
    quantity: int,
    term: str | None,
    billing_frequency: str | None,
    into_subscription_id=None,
    confirmed: bool,
    now: datetime,
) -> Subscription:
    """U1–U9: upgrades now and returns the subscription that holds the upgraded licenses."""
    require(actor, Action.BUY)
    with transaction.atomic():
        source = lock_subscription(subscription_id, version, actor)
        plan = plan_upgrade(
            source,
            user=actor,
            target_sku_id=target_sku_id,
            quantity=quantity,
            term=term,
            billing_frequency=billing_frequency,
            into_subscription_id=into_subscription_id,
            now=now,
            lock=True,
        )
        if not confirmed:
            # U7: an upgrade can't be undone and has no cancellation window.
            raise RuleViolation("U7", _('An upgrade can\'t be undone: confirm it with "Yes, upgrade".'))
        target = plan.target_sku
        deleted = delete_scheduled_changes(source)  # U8, R6
        before = {
            "sku": source.sku.sku_id,
            "quantity": source.quantity,
            "term": source.term,
            "billing_frequency": source.billing_frequency,
            "unit_price": str(source.unit_price),
        }
        suffix = audit.changes_deleted(deleted)
        if plan.in_place:
            _credit_source(plan, now=now)  # before the source takes the target's price
            result = _upgrade_in_place(source, plan, actor=actor, now=now)
            audit.record(
                actor=actor,
                at=now,
                customer=source.customer,
                subscription=source,
                action="subscription.upgraded",
                summary=audit.said(
                    gettext_noop("Upgraded in place to %(offer)s: %(quantity)s license(s); charge %(amount)s"),
                    offer=target.name,
                    quantity=quantity,
                    amount=audit.money(plan.charge.amount, source.currency),
                )
                + suffix,
                before=before,
                after={
                    "sku": target.sku_id,
                    "quantity": quantity,
                    "term": plan.term,
                    "billing_frequency": plan.billing_frequency,
                    "unit_price": str(plan.unit_price),
                },
            )
            return result
        _credit_source(plan, now=now)
        if plan.into is not None:
            result = _add_to_existing(plan.into, plan, actor=actor, now=now)
        else:
            result = _create_coterminous(source, plan, actor=actor, now=now)
        if plan.full:
            # U5 into an existing subscription: every license moved, the source ends (no refund).
            transition(source, Status.DELETED)
            source.auto_renew = False
            source.cancelled_at = now
            source.save(update_fields=["status", "auto_renew", "cancelled_at", "updated_at"])
            after = {"status": Status.DELETED, "quantity": source.quantity}
        else:
            # U6: the source keeps the rest; the moved licenses' unused days were credited (_credit_source).
            _move_lots(source, quantity)
            source.quantity -= quantity
            source.save(update_fields=["quantity", "updated_at"])
            after = {"quantity": source.quantity}
        audit.record(
            actor=actor,
            at=now,
            customer=source.customer,
            subscription=source,
            action="subscription.upgraded",
            summary=audit.said(
                gettext_noop("%(quantity)s license(s) upgraded to %(offer)s (%(id)s); subscription ended")
                if plan.full
                else gettext_noop("%(quantity)s license(s) upgraded to %(offer)s (%(id)s)"),
                quantity=quantity,
                offer=target.name,
                id=str(result.pk),
            )
            + suffix,
            before=before,
            after={**after, "into": str(result.pk)},
        )
    return result


def _upgrade_in_place(source: Subscription, plan: UpgradePlan, *, actor, now: datetime) -> Subscription:
    source.sku = plan.target_sku
    source.availability = plan.availability
    source.unit_price = plan.availability.unit_price
    source.currency = plan.availability.currency
    source.one_per_customer = plan.target_sku.one_per_customer
    if plan.term != source.term:
        source.term_start, source.term_end = now, plan.term_end
    source.term, source.billing_frequency = plan.term, plan.billing_frequency
    # U7: an upgrade can't be undone: the cancellation window closes now, and so do the removal windows
    # of the licenses it upgraded.
    source.upgraded_at = now
    source.save()
    source.seat_lots.filter(window_ends_at__gt=now).update(window_ends_at=now)
    bill(source, kind=BillingLine.Kind.PURCHASE, charge=_upgrade_charge(plan), quantity=plan.quantity, now=now)
    return source


def _add_to_existing(into: Subscription, plan: UpgradePlan, *, actor, now: datetime) -> Subscription:
    before = {"quantity": into.quantity}
    # R6: its quantity changes mid-term, so what it had scheduled for the renewal is deleted too.
    deleted = delete_scheduled_changes(into)
    into.quantity += plan.quantity
    into.upgraded_at = now  # U7
    into.save(update_fields=["quantity", "upgraded_at", "updated_at"])
    # U7: upgraded licenses have no cancellation window: their lot is closed from the start.
    open_seat_lot(into, quantity=plan.quantity, source=SeatLot.Source.INCREASE, now=now, window=NO_WINDOW)
    bill(into, kind=BillingLine.Kind.INCREASE, charge=_upgrade_charge(plan), quantity=plan.quantity, now=now)
    audit.record(
        actor=actor,
        at=now,
        customer=into.customer,
        subscription=into,
        action="subscription.upgrade_received",
        summary=audit.said(
            gettext_noop("%(quantity)s license(s) upgraded from %(source)s; charge %(amount)s"),
            quantity=plan.quantity,
            source=plan.source.display_name,
            amount=audit.money(plan.charge.amount, into.currency),
        )
        + audit.changes_deleted(deleted),
        before=before,
        after={"quantity": into.quantity},
    )
    return into


def _create_coterminous(source: Subscription, plan: UpgradePlan, *, actor, now: datetime) -> Subscription:
    created = start_subscription(
        new_subscription(
            source.customer,
            plan.availability,
            quantity=plan.quantity,
            # U6: it ends with the source; it is billed on the source's periods. Its term starts with the
            # source's so that, like any upgrade (U7), it has no cancellation window of its own.
            term_start=source.term_start,
            term_end=source.term_end,
            auto_renew=source.auto_renew,
            reseller=source.reseller,
            now=now,
            upgraded_at=now,
        ),
        now=now,
        charge=_upgrade_charge(plan),
        window=NO_WINDOW,  # U7: upgraded licenses have no removal window: their lot is closed from the start
    )
    audit.record(
        actor=actor,
        at=now,
        customer=source.customer,
        subscription=created,
        action="subscription.created_by_upgrade",
        summary=audit.said(
            gettext_noop(
                "Created by upgrading %(quantity)s license(s) of %(source)s; ends with it on %(term_end)s; charge "
                "%(amount)s. Reassign these licenses by hand."
            ),
            quantity=plan.quantity,
            source=source.display_name,
            term_end=f"{source.term_end:%Y-%m-%d}",
            amount=audit.money(plan.charge.amount, created.currency),
        ),
        after={
            "quantity": plan.quantity,
            "term_end": source.term_end.isoformat(),
            "from": str(source.pk),
            "charge": str(plan.charge.amount),
        },
    )
    return created


def _upgrade_charge(plan: UpgradePlan) -> Charge:
    charge = plan.charge
    return Charge(charge.amount, charge.period_start, charge.period_end, f"Upgrade: {charge.explanation}"[:300])


def _credit_source(plan: UpgradePlan, *, now: datetime) -> None:
    """The moved licenses' unused days of the source's current period, credited on the source."""
    credit = plan.credit
    if credit is not None and credit.amount:
        bill(
            plan.source,
            kind=BillingLine.Kind.UPGRADE_CREDIT,
            quantity=plan.quantity,
            now=now,
            charge=Charge(
                -credit.amount,
                credit.period_start,
                credit.period_end,
                f"Credit for {plan.quantity} upgraded license(s): {credit.explanation}"[:300],
            ),
        )


__all__ = [
    "ExistingTarget",
    "UpgradePlan",
    "UpgradeTarget",
    "check_upgrade",
    "plan_upgrade",
    "supported_paths",
    "upgrade_path",
    "upgrade_subscription",
    "upgrade_targets",
]
