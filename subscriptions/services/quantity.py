"""Changing the number of licenses now (Q1–Q6): the plan shown before it is submitted, then carried out as is."""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db import models, transaction
from django.utils.translation import gettext_noop, ngettext

from portal.access import Action, require
from portal.errors import RuleViolation

from .. import audit, checks
from ..models import BillingLine, SeatLot, Subscription
from ..pricing import Charge, remaining_charge
from .kernel import (
    bill,
    check_quantity_sold,
    current_period,
    delete_scheduled_changes,
    lock_subscription,
    open_seat_lot,
)


@dataclass
class QuantityPlan:
    """What a quantity change will do, shown before it is submitted and then carried out as is."""

    old: int
    new: int
    amount: Decimal = Decimal("0.00")  # charge (> 0) or refund (< 0)
    lines: list = field(default_factory=list)  # (lot or None, licenses, Charge)
    removable: int = 0
    deletes_scheduled: int = 0
    removable_until: datetime | None = None  # Q2: an increase's licenses can be removed until then (their lot's window)

    @property
    def delta(self) -> int:
        return self.new - self.old


def plan_quantity_change(subscription: Subscription, *, user, quantity: int, now: datetime) -> QuantityPlan:
    """Q1–Q6: the charge for added licenses, or the refund of each lot removed, newest first."""
    checks.check_quantity_change(subscription, user, now)
    if quantity == subscription.quantity:
        raise RuleViolation(
            "Q1",
            ngettext(
                "The subscription already has %(count)s license.",
                "The subscription already has %(count)s licenses.",
                quantity,
            )
            % {"count": f"{quantity:,}"},
            field="quantity",
        )
    check_quantity_sold(subscription.sku, quantity)
    today = now.date()
    period = current_period(subscription, today)
    plan = QuantityPlan(
        old=subscription.quantity, new=quantity, deletes_scheduled=subscription.scheduled_changes.count()
    )
    if quantity > subscription.quantity:
        checks.check_quantity_change(subscription, user, now)
        added = quantity - subscription.quantity
        # Q1: prorated from today to the end of the billing period.
        charge = remaining_charge(unit_price=subscription.unit_price, quantity=added, period=period, today=today)
        plan.lines.append((None, added, charge))
        plan.amount = charge.amount
        plan.removable_until = checks.removal_window_ends(now)
        return plan
    to_remove = subscription.quantity - quantity
    checks.check_decrease(subscription, user, now, to_remove)
    plan.removable = checks.removable_quantity(subscription, now)
    for lot in checks.removable_lots(subscription, now):  # Q2: newest first
        if to_remove == 0:
            break
        take = min(to_remove, lot.remaining)
        # Q3: refunded in full less the days already used.
        refund = remaining_charge(unit_price=subscription.unit_price, quantity=take, period=period, today=today)
        plan.lines.append((lot, take, refund))
        plan.amount -= refund.amount
        to_remove -= take
    return plan


def change_quantity(
    *, subscription_id, actor, version: int | str | None = None, quantity: int, now: datetime
) -> QuantityPlan:
    """Q1–Q6, carried out as plan_quantity_change says. A page opened before the quantity changed is refused by its
    version (409, portal/versions.py): every change bumps it, so a stale quantity needs no check of its own."""
    require(actor, Action.BUY)
    with transaction.atomic():
        subscription = lock_subscription(subscription_id, version, actor)
        plan = plan_quantity_change(subscription, user=actor, quantity=quantity, now=now)
        for lot, licenses, charge in plan.lines:
            if lot is None:
                open_seat_lot(subscription, quantity=licenses, source=SeatLot.Source.INCREASE, now=now)
                bill(subscription, kind=BillingLine.Kind.INCREASE, charge=charge, quantity=licenses, now=now)
            else:
                SeatLot.objects.filter(pk=lot.pk).update(removed=models.F("removed") + licenses)
                bill(
                    subscription,
                    kind=BillingLine.Kind.REDUCTION_REFUND,
                    charge=Charge(-charge.amount, charge.period_start, charge.period_end, charge.explanation),
                    quantity=-licenses,
                    now=now,
                )
        deleted = delete_scheduled_changes(subscription)
        subscription.quantity = quantity
        subscription.quantity_updates += 1
        subscription.save(update_fields=["quantity", "quantity_updates", "updated_at"])
        audit.record(
            actor=actor,
            at=now,
            customer=subscription.customer,
            subscription=subscription,
            action="subscription.quantity_changed",
            summary=audit.said(
                gettext_noop("Quantity %(old)s → %(new)s (charge %(amount)s)")
                if plan.amount >= 0
                else gettext_noop("Quantity %(old)s → %(new)s (refund %(amount)s)"),
                old=plan.old,
                new=quantity,
                amount=audit.money(abs(plan.amount), subscription.currency),
            )
            + (
                audit.said(gettext_noop("; %(count)s scheduled renewal change(s) deleted"), count=deleted)
                if deleted
                else None
            ),
            before={"quantity": plan.old},
            after={"quantity": quantity, "amount": str(plan.amount)},
        )
    return plan
