"""One function per action on subscriptions. Each: keyword-only, `now` passed in, one transaction,
rows locked before their state is checked, audited."""

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db import models, transaction

from catalog.models import FREQUENCY_MONTHS, TERM_MONTHS, BillingFrequency, Order, OrderLine
from portal.access import Action, require, require_serves
from portal.models import Customer
from portal.rules import RuleViolation
from portal.versions import bump_version, lock_version

from . import actions, audit
from .dates import period_containing, term_end_for
from .models import BillingLine, ScheduledChange, SeatLot, Subscription
from .pricing import Charge, Period, prorated_charge, remaining_charge
from .states import Status, check_transition

REMOVAL_WINDOW = actions.REMOVAL_WINDOW


def transition(subscription: Subscription, new_status: str) -> None:
    """The one place a status changes (S0 transitions in states.py)."""
    check_transition(subscription.status, new_status)
    subscription.status = new_status


def first_charge(*, unit_price, quantity: int, billing_frequency: str, term_start: date, term_end: date,
                 term_months: int) -> Charge:
    """The purchase charge: the first billing period, prorated by the day if the term is aligned short (K11)."""
    if billing_frequency == BillingFrequency.ONE_TIME:
        natural_end = term_end_for(term_start, term_months)
    else:
        natural_end = term_end_for(term_start, FREQUENCY_MONTHS[billing_frequency])
    return prorated_charge(
        unit_price=unit_price, quantity=quantity, period_start=term_start, period_end=min(natural_end, term_end),
        full_period_start=term_start, full_period_end=natural_end,
    )


def quoted_first_charge(*, availability, quantity: int, aligned_end_date: date | None, today: date) -> Charge | None:
    """What a cart or order line will first be charged if bought today.

    None for usage-based offers (billed by consumption); nothing during an ISV free trial (S4).
    """
    sku = availability.sku
    if not sku.is_license_based:
        return None
    if sku.is_isv and sku.free_trial_days:
        return Charge(Decimal("0.00"), today, today + timedelta(days=sku.free_trial_days - 1),
                      f"{sku.free_trial_days}-day free trial")
    months = TERM_MONTHS[availability.term]
    return first_charge(unit_price=availability.unit_price, quantity=quantity,
                        billing_frequency=availability.billing_frequency, term_start=today,
                        term_end=aligned_end_date or term_end_for(today, months), term_months=months)


def new_seat_lot(subscription: Subscription, *, quantity: int, source: str, now: datetime) -> SeatLot:
    """The lot, unsaved (for a caller that writes many at once: the lifecycle engine)."""
    # Q2: every addition opens its own 7-day window for those licenses.
    return SeatLot(subscription=subscription, source=source, quantity=quantity, added_at=now,
                   window_ends_at=now + REMOVAL_WINDOW)


def open_seat_lot(subscription: Subscription, *, quantity: int, source: str, now: datetime) -> SeatLot:
    lot = new_seat_lot(subscription, quantity=quantity, source=source, now=now)
    lot.save(force_insert=True)
    return lot


def billing_line(subscription: Subscription, *, kind: str, charge: Charge, quantity: int, now: datetime) -> BillingLine:
    """The charge's billing line, unsaved (for a caller that writes many at once: the lifecycle engine)."""
    return BillingLine(
        subscription=subscription, kind=kind, amount=charge.amount, currency=subscription.currency,
        quantity=quantity, unit_price=subscription.unit_price, period_start=charge.period_start,
        period_end=charge.period_end, explanation=charge.explanation, created_at=now,
    )


def bill(subscription: Subscription, *, kind: str, charge: Charge, quantity: int, now: datetime) -> BillingLine:
    line = billing_line(subscription, kind=kind, charge=charge, quantity=quantity, now=now)
    line.save(force_insert=True)
    return line


def create_subscription_for_line(line: OrderLine, *, order: Order, now: datetime) -> Subscription:
    """O2 fulfillment of one order line: the subscription, its first lot and its first charge."""
    sku = line.sku
    customer: Customer = order.customer
    today = now.date()
    months = TERM_MONTHS[line.term]
    term_end = line.aligned_end_date or term_end_for(today, months)
    subscription = Subscription(
        customer=customer, sku=sku, availability=line.availability, order_line=line, status=Status.PENDING,
        quantity=line.quantity, term=line.term, billing_frequency=line.billing_frequency, unit_price=line.unit_price,
        currency=line.currency, auto_renew=True, term_start=now, term_end=term_end, reseller=order.reseller,
        one_per_customer=sku.one_per_customer, created_at=now, is_trial=sku.is_trial,
    )
    if sku.is_trial:
        # TR1: a new-commerce trial runs one month, 25 licenses, auto-renew on.
        subscription.trial_ends_at = datetime.combine(term_end + timedelta(days=1), datetime.min.time(), tzinfo=now.tzinfo)
    if sku.is_isv and sku.free_trial_days:
        # S4: the publisher's free trial is applied automatically; the paid term starts after it.
        subscription.is_trial = True
        subscription.trial_ends_at = now + timedelta(days=sku.free_trial_days)
        subscription.term_start = subscription.trial_ends_at
        subscription.term_end = term_end_for(subscription.trial_ends_at.date(), months)
    subscription.save()
    if sku.is_license_based and not subscription.is_trial and not sku.is_isv:
        # A trial's quantity can't change (TR4), so its licenses open no removal window; nor do an ISV SaaS
        # subscription's before its billing starts (S3): confirm_publisher_setup opens it then.
        open_seat_lot(subscription, quantity=line.quantity, source=SeatLot.Source.PURCHASE, now=now)
    if not sku.is_isv and sku.is_license_based:
        # S3: ISV SaaS stays unbilled until the publisher confirms the set-up; usage-based offers
        # are billed by consumption, not at purchase.
        charge = first_charge(unit_price=line.unit_price, quantity=line.quantity, billing_frequency=line.billing_frequency,
                              term_start=today, term_end=term_end, term_months=months)
        bill(subscription, kind=BillingLine.Kind.PURCHASE, charge=charge, quantity=line.quantity, now=now)
    audit.record(actor=order.placed_by, at=now, customer=customer, order=order, subscription=subscription,
                 action="subscription.created", summary=f"Created from {order.number} with {line.quantity} license(s)",
                 after={"status": subscription.status, "quantity": subscription.quantity, "term": subscription.term,
                        "billing_frequency": subscription.billing_frequency,
                        "term_end": subscription.term_end.isoformat()})
    return subscription


def fulfill_order(*, order_id: int, now: datetime) -> Order:
    """Creates one subscription per pending line. Idempotent: fulfilled lines are skipped."""
    from .tasks import provision_subscription_task

    with transaction.atomic():
        order = Order.objects.select_for_update(of=("self",)).select_related("customer__partner", "reseller", "placed_by").get(pk=order_id)
        lines = list(order.lines.select_for_update(of=("self",)).filter(status=OrderLine.Status.PENDING)
                     .select_related("sku__product__publisher", "availability"))
        created = []
        if lines:
            bump_version(order)  # its lines' statuses change: the order page drawn before is an older version
        for line in lines:
            subscription = create_subscription_for_line(line, order=order, now=now)
            line.status = OrderLine.Status.FULFILLED
            line.fulfilled_at = now
            line.save(update_fields=["status", "fulfilled_at"])
            if not line.sku.is_isv:
                created.append(str(subscription.pk))
        if not order.lines.filter(status=OrderLine.Status.PENDING).exists() and order.status != Order.Status.COMPLETED:
            order.status = Order.Status.COMPLETED
            order.save(update_fields=["status"])
            audit.record(actor=None, at=now, customer=order.customer, order=order, action="order.completed",
                         summary=f"{order.number} fulfilled", before={"status": "pending"}, after={"status": "completed"})
        for subscription_id in created:
            transaction.on_commit(lambda sid=subscription_id: provision_subscription_task.enqueue(sid))
    return order


def provision_subscription(*, subscription_id, now: datetime) -> Subscription:
    """The service is ready: a pending Microsoft subscription becomes active. Idempotent."""
    with transaction.atomic():
        subscription = Subscription.objects.select_for_update(of=("self",)).select_related("customer__partner", "sku__product__publisher").get(pk=subscription_id)
        if subscription.status != Status.PENDING or subscription.sku.is_isv:
            return subscription
        transition(subscription, Status.ACTIVE)
        subscription.save(update_fields=["status", "updated_at"])
        audit.record(actor=None, at=now, customer=subscription.customer, subscription=subscription,
                     action="subscription.provisioned", summary="Provisioned", before={"status": "pending"},
                     after={"status": "active"})
    return subscription



# --- Managing a subscription now (issue 3) -----------------------------------------------------



def _locked(subscription_id, version: int | str | None = None, actor=None) -> Subscription:
    """The subscription, locked; a person's change passes the `version` its page showed and is refused (409) when the
    subscription changed since (portal/versions.py). Every lock for a change bumps the version. A person (`actor`)
    acts only on their own partner's subscriptions (T3); the platform's own work passes none."""
    # T3 before the version: another partner's subscription is refused as such, never with its last change (409).
    authorize = None if actor is None else (lambda locked: require_serves(actor, locked.customer))
    return lock_version(Subscription.objects.select_related("customer__partner", "sku__product__publisher"),
                        pk=subscription_id, version=version, noun="subscription", last_change=audit.last_change,
                        authorize=authorize)


def current_period(subscription: Subscription, today: date) -> Period:
    """The billing period holding `today` (one-time billing: the whole term)."""
    if subscription.billing_frequency == BillingFrequency.ONE_TIME:
        months = TERM_MONTHS[subscription.term]
    else:
        months = FREQUENCY_MONTHS[subscription.billing_frequency]
    start, end, full_start, full_end = period_containing(
        term_start=subscription.term_start.date(), term_end=subscription.term_end, period_months=months, today=today)
    return Period(start, end, full_start, full_end)


def _delete_scheduled_changes(subscription: Subscription, *, keep_billing_frequency: bool = False) -> int:
    """R6 (and P4): mid-term changes delete what was scheduled for the renewal."""
    changes = subscription.scheduled_changes.all()
    if keep_billing_frequency:
        changes = changes.exclude(kind=ScheduledChange.Kind.BILLING_FREQUENCY)
    deleted, _ = changes.delete()
    return deleted


@dataclass
class QuantityPlan:
    """What a quantity change will do, shown before it is submitted and then carried out as is."""

    old: int
    new: int
    amount: Decimal = Decimal("0.00")  # charge (> 0) or refund (< 0)
    lines: list = field(default_factory=list)  # (lot or None, licenses, Charge)
    removable: int = 0
    deletes_scheduled: int = 0

    @property
    def delta(self) -> int:
        return self.new - self.old


def plan_quantity_change(subscription: Subscription, *, user, quantity: int, now: datetime) -> QuantityPlan:
    """Q1–Q6: the charge for added licenses, or the refund of each lot removed, newest first."""
    actions.check_quantity_change(subscription, user, now)
    if quantity == subscription.quantity:
        raise RuleViolation("Q1", f"The subscription already has {quantity:,} licenses.", field="quantity")
    if quantity < subscription.sku.min_quantity or quantity > subscription.sku.max_quantity:
        raise RuleViolation("K8", f"{subscription.sku.name} is sold in quantities from {subscription.sku.min_quantity:,} "
                                  f"to {subscription.sku.max_quantity:,}.", field="quantity")
    today = now.date()
    period = current_period(subscription, today)
    plan = QuantityPlan(old=subscription.quantity, new=quantity,
                        deletes_scheduled=subscription.scheduled_changes.count())
    if quantity > subscription.quantity:
        actions.check_quantity_change(subscription, user, now)
        added = quantity - subscription.quantity
        # Q1: prorated from today to the end of the billing period.
        charge = remaining_charge(unit_price=subscription.unit_price, quantity=added, period=period, today=today)
        plan.lines.append((None, added, charge))
        plan.amount = charge.amount
        return plan
    to_remove = subscription.quantity - quantity
    actions.check_decrease(subscription, user, now, to_remove)
    plan.removable = actions.removable_quantity(subscription, now)
    for lot in actions.removable_lots(subscription, now):  # Q2: newest first
        if to_remove == 0:
            break
        take = min(to_remove, lot.quantity - lot.removed)
        # Q3: refunded in full less the days already used.
        refund = remaining_charge(unit_price=subscription.unit_price, quantity=take, period=period, today=today)
        plan.lines.append((lot, take, refund))
        plan.amount -= refund.amount
        to_remove -= take
    return plan


def change_quantity(*, subscription_id, actor, version: int | str | None = None, quantity: int, expected_quantity: int | None, now: datetime) -> QuantityPlan:
    require(actor, Action.BUY)
    with transaction.atomic():
        subscription = _locked(subscription_id, version, actor)
        if expected_quantity is not None and expected_quantity != subscription.quantity:
            raise RuleViolation("Q1", f"The quantity changed to {subscription.quantity:,} since this page was opened: "
                                      "check it and try again.", conflict=True)
        plan = plan_quantity_change(subscription, user=actor, quantity=quantity, now=now)
        for lot, licenses, charge in plan.lines:
            if lot is None:
                open_seat_lot(subscription, quantity=licenses, source=SeatLot.Source.INCREASE, now=now)
                bill(subscription, kind=BillingLine.Kind.INCREASE, charge=charge, quantity=licenses, now=now)
            else:
                SeatLot.objects.filter(pk=lot.pk).update(removed=models.F("removed") + licenses)
                bill(subscription, kind=BillingLine.Kind.REDUCTION_REFUND,
                     charge=Charge(-charge.amount, charge.period_start, charge.period_end, charge.explanation),
                     quantity=-licenses, now=now)
        deleted = _delete_scheduled_changes(subscription)
        subscription.quantity = quantity
        subscription.quantity_updates += 1
        subscription.save(update_fields=["quantity", "quantity_updates", "updated_at"])
        audit.record(actor=actor, at=now, customer=subscription.customer, subscription=subscription,
                     action="subscription.quantity_changed",
                     summary=f"Quantity {plan.old} → {quantity} ({'charge' if plan.amount >= 0 else 'refund'} "
                             f"{abs(plan.amount)} {subscription.currency})"
                             + (f"; {deleted} scheduled renewal change(s) deleted" if deleted else ""),
                     before={"quantity": plan.old}, after={"quantity": quantity, "amount": str(plan.amount)})
    return plan


def suspend_subscription(*, subscription_id, actor, version: int | str | None = None, now: datetime) -> Subscription:
    require(actor, Action.SUSPEND)
    with transaction.atomic():
        subscription = _locked(subscription_id, version, actor)
        actions.check_suspend(subscription, actor, now)
        before = {"status": subscription.status, "auto_renew": subscription.auto_renew}
        transition(subscription, Status.SUSPENDED)
        # P4: auto-renew off, scheduled changes removed (a billing-frequency instruction stays).
        subscription.auto_renew = False
        deleted = _delete_scheduled_changes(subscription, keep_billing_frequency=True)
        subscription.save(update_fields=["status", "auto_renew", "updated_at"])
        audit.record(actor=actor, at=now, customer=subscription.customer, subscription=subscription,
                     action="subscription.suspended",
                     summary="Suspended; auto-renew turned off" + (f"; {deleted} scheduled change(s) removed" if deleted else ""),
                     before=before, after={"status": Status.SUSPENDED, "auto_renew": False})
        # A4: suspending a base suspends its add-ons.
        for addon in subscription.addon_subscriptions.select_for_update(of=("self",)).filter(status=Status.ACTIVE):
            transition(addon, Status.SUSPENDED)
            addon.auto_renew = False
            addon.save(update_fields=["status", "auto_renew", "updated_at"])
            audit.record(actor=actor, at=now, customer=subscription.customer, subscription=addon,
                         action="subscription.suspended", summary=f"Suspended with its base {subscription.display_name}",
                         before={"status": Status.ACTIVE}, after={"status": Status.SUSPENDED})
    return subscription


def reactivate_subscription(*, subscription_id, actor, version: int | str | None = None, now: datetime) -> Subscription:
    require(actor, Action.SUSPEND)
    with transaction.atomic():
        subscription = _locked(subscription_id, version, actor)
        actions.check_reactivate(subscription, actor, now)
        transition(subscription, Status.ACTIVE)
        subscription.save(update_fields=["status", "updated_at"])
        audit.record(actor=actor, at=now, customer=subscription.customer, subscription=subscription,
                     action="subscription.reactivated", summary="Reactivated; auto-renew is still off",
                     before={"status": Status.SUSPENDED}, after={"status": Status.ACTIVE})
        for addon in subscription.addon_subscriptions.select_for_update(of=("self",)).filter(status=Status.SUSPENDED):
            transition(addon, Status.ACTIVE)
            addon.save(update_fields=["status", "updated_at"])
            audit.record(actor=actor, at=now, customer=subscription.customer, subscription=addon,
                         action="subscription.reactivated", summary=f"Reactivated with its base {subscription.display_name}",
                         before={"status": Status.SUSPENDED}, after={"status": Status.ACTIVE})
    return subscription


def cancellation_refund(subscription: Subscription, now: datetime, *, base: Subscription | None = None) -> Charge:
    """X1: prorated by the day for the rest of the billing period; X3: ISV SaaS refunded in full.

    An add-on is billed on its base's periods (A5), so it is refunded on them too.
    """
    today = now.date()
    if subscription.sku.is_isv:
        lines = list(subscription.billing_lines.all())
        billed = sum((b.amount for b in lines), Decimal("0.00"))
        if not lines:
            return Charge(Decimal("0.00"), today, today, "nothing was charged")
        return Charge(billed, min(b.period_start for b in lines), max(b.period_end for b in lines),
                      "full refund within 72 hours")
    if subscription.is_trial or not subscription.sku.is_license_based:
        return Charge(Decimal("0.00"), today, subscription.term_end or today, "nothing was charged")
    period = current_period(base or subscription, today)
    return remaining_charge(unit_price=subscription.unit_price, quantity=subscription.quantity, period=period, today=today)


def cancel_subscription(*, subscription_id, actor, version: int | str | None = None, now: datetime) -> Charge:
    require(actor, Action.BUY)
    with transaction.atomic():
        subscription = _locked(subscription_id, version, actor)
        actions.check_cancel(subscription, actor, now)
        refund = cancellation_refund(subscription, now)
        # X3, S3: awaiting its set-up it was never billed: it ends now with no billing line at all.
        unbilled = actions.awaiting_setup(subscription)
        before = {"status": subscription.status}
        transition(subscription, Status.DELETED)  # X2: final
        subscription.auto_renew = False
        subscription.cancelled_at = now
        deleted = _delete_scheduled_changes(subscription)
        # X2: nothing will be charged again, so a next-charge billing frequency instruction goes too (one being
        # charged right now, N7, is left to the engine, which drops it without a charge).
        if not subscription.cycle_charge_pending:
            subscription.next_charge_frequency, subscription.next_charge_on = "", None
            subscription.next_charge_set_at = None
        subscription.save(update_fields=["status", "auto_renew", "cancelled_at", "next_charge_frequency",
                                         "next_charge_on", "next_charge_set_at", "updated_at"])
        if refund.amount:
            bill(subscription, kind=BillingLine.Kind.CANCELLATION_REFUND,
                 charge=Charge(-refund.amount, refund.period_start, refund.period_end, refund.explanation),
                 quantity=-subscription.quantity, now=now)
        audit.record(actor=actor, at=now, customer=subscription.customer, subscription=subscription,
                     action="subscription.cancelled",
                     summary=("Cancelled while awaiting the publisher's set-up: nothing was billed, nothing refunded"
                              if unbilled else f"Cancelled; refund {refund.amount} {subscription.currency}")
                             + (f"; {deleted} scheduled change(s) deleted" if deleted else ""),
                     before=before, after={"status": Status.DELETED, "refund": str(refund.amount)})
        for addon in subscription.addon_subscriptions.select_for_update(of=("self",)).select_related(
                "sku__product__publisher").exclude(status__in=[Status.DELETED, Status.EXPIRED, Status.DISABLED]):
            # X2 for the add-ons too: cancelled with their base, refunded the same way (X1, L2).
            old_status = addon.status
            addon_refund = cancellation_refund(addon, now, base=subscription)
            transition(addon, Status.DELETED)
            addon.auto_renew = False
            addon.cancelled_at = now
            addon.save(update_fields=["status", "auto_renew", "cancelled_at", "updated_at"])
            if addon_refund.amount:
                bill(addon, kind=BillingLine.Kind.CANCELLATION_REFUND,
                     charge=Charge(-addon_refund.amount, addon_refund.period_start, addon_refund.period_end,
                                   addon_refund.explanation), quantity=-addon.quantity, now=now)
            audit.record(actor=actor, at=now, customer=subscription.customer, subscription=addon,
                         action="subscription.cancelled",
                         summary=f"Cancelled with its base {subscription.display_name}; refund {addon_refund.amount} "
                                 f"{addon.currency}",
                         before={"status": old_status}, after={"status": Status.DELETED, "refund": str(addon_refund.amount)})
    return refund


def set_auto_renew(*, subscription_id, actor, version: int | str | None = None, on: bool, now: datetime) -> Subscription:
    require(actor, Action.AUTO_RENEW)
    with transaction.atomic():
        subscription = _locked(subscription_id, version, actor)
        actions.check_auto_renew(subscription, actor, now, on)
        subscription.auto_renew = on
        deleted = 0 if on else _delete_scheduled_changes(subscription)  # R6
        subscription.save(update_fields=["auto_renew", "updated_at"])
        audit.record(actor=actor, at=now, customer=subscription.customer, subscription=subscription,
                     action="subscription.auto_renew_changed",
                     summary=f"Auto-renew turned {'on' if on else 'off'}"
                             + (f"; {deleted} scheduled change(s) deleted" if deleted else ""),
                     before={"auto_renew": not on}, after={"auto_renew": on})
    return subscription


def rename_subscription(*, subscription_id, actor, version: int | str | None = None, friendly_name: str, now: datetime) -> Subscription:
    require(actor, Action.BUY)
    friendly_name = (friendly_name or "").strip()
    if len(friendly_name) > 200:
        raise RuleViolation("S2", "A friendly name can have at most 200 characters.", field="friendly_name")
    with transaction.atomic():
        subscription = _locked(subscription_id, version, actor)
        actions.check_rename(subscription, actor, now)
        before = subscription.friendly_name
        subscription.friendly_name = friendly_name
        subscription.save(update_fields=["friendly_name", "updated_at"])
        audit.record(actor=actor, at=now, customer=subscription.customer, subscription=subscription,
                     action="subscription.renamed", summary=f"Renamed to {friendly_name or subscription.sku.name}",
                     before={"friendly_name": before}, after={"friendly_name": friendly_name})
    return subscription


def confirm_publisher_setup(*, subscription_id, actor, version: int | str | None = None, now: datetime) -> Subscription:
    """S3: the publisher confirmed the account set-up: the ISV subscription is active and billed
    (after its free trial, S4, whose paid term was fixed at purchase)."""
    require(actor, Action.BUY)
    with transaction.atomic():
        subscription = _locked(subscription_id, version, actor)
        actions.check_confirm_setup(subscription, actor, now)
        transition(subscription, Status.ACTIVE)
        subscription.setup_confirmed_at = now
        fields = ["status", "setup_confirmed_at", "updated_at"]
        in_free_trial = subscription.trial_ends_at is not None and subscription.trial_ends_at > now
        if not in_free_trial:
            # Paid from now (S4: a free trial that already ended is over): the term starts now.
            months = TERM_MONTHS[subscription.term]
            subscription.term_start = now
            subscription.term_end = term_end_for(now.date(), months)
            subscription.is_trial = False
            fields += ["term_start", "term_end", "is_trial"]
        subscription.save(update_fields=fields)
        if not in_free_trial:
            if subscription.sku.is_license_based and not subscription.seat_lots.exists():
                # A free trial opened no removal window (TR4); the paid term opens it now.
                open_seat_lot(subscription, quantity=subscription.quantity, source=SeatLot.Source.PURCHASE, now=now)
            charge = first_charge(unit_price=subscription.unit_price, quantity=subscription.quantity,
                                  billing_frequency=subscription.billing_frequency, term_start=now.date(),
                                  term_end=subscription.term_end, term_months=TERM_MONTHS[subscription.term])
            bill(subscription, kind=BillingLine.Kind.PURCHASE, charge=charge, quantity=subscription.quantity, now=now)
        audit.record(actor=actor, at=now, customer=subscription.customer, subscription=subscription,
                     action="subscription.setup_confirmed",
                     summary="Publisher confirmed the set-up" + (": free trial running, billed from its end" if in_free_trial else "; billing started"),
                     before={"status": Status.PENDING}, after={"status": Status.ACTIVE})
    return subscription


def eligible_addons(base: Subscription, snapshot=None):
    """A3: traditional add-ons of the base's offer, sold to the customer's segment and region, by name; read from
    this process's copy of the catalog (catalog.listing; `snapshot` when the caller has just read it), each a Sku
    with its product, publisher and availabilities."""
    from catalog.listing import catalog_snapshot
    from catalog.models import Sku

    customer, snapshot = base.customer, snapshot or catalog_snapshot()
    eligible = []
    for pk in snapshot.addons_of.get(base.sku_id, ()):
        facts = snapshot.by_pk[pk].facts
        if (facts.is_addon and facts.commerce == Sku.Commerce.TRADITIONAL and customer.segment in facts.segments
                and (not facts.countries or customer.billing_country in facts.countries)
                # Only add-ons sold for the base's term and billing frequency can end with it (A5).
                and any(a.term == base.term and a.billing_frequency == base.billing_frequency
                        for a in snapshot.sku_availabilities.get(pk, ()))):
            eligible.append(snapshot.sku(pk))
    return eligible


def buy_addons(*, subscription_id, actor, version: int | str | None = None, quantities: dict[int, int], now: datetime) -> list[Subscription]:
    """A1–A5: add-ons bought from the base subscription's page, ending with it, first charge prorated."""
    require(actor, Action.BUY)  # A2
    wanted = {sku_id: q for sku_id, q in quantities.items() if q}
    if not wanted:
        raise RuleViolation("A1", "Enter a quantity for at least one add-on.", field="quantity")
    with transaction.atomic():
        base = _locked(subscription_id, version, actor)
        actions.check_buy_addons(base, actor, now)
        offered = {sku.pk: sku for sku in eligible_addons(base)}
        created = []
        today = now.date()
        period = current_period(base, today)
        for sku_id, quantity in wanted.items():
            sku = offered.get(sku_id)
            if sku is None:  # A3
                raise RuleViolation("A3", "That add-on is not available for this subscription.")
            if quantity < sku.min_quantity or quantity > sku.max_quantity:
                raise RuleViolation("K8", f"{sku.name} is sold in quantities from {sku.min_quantity:,} to "
                                          f"{sku.max_quantity:,}.", field="quantity")
            availabilities = list(sku.availabilities.all())
            availability = next((a for a in availabilities if a.term == base.term
                                 and a.billing_frequency == base.billing_frequency), None)
            if availability is None:
                raise RuleViolation("A3", f"{sku.name} is not sold for a {base.get_term_display().lower()} term billed "
                                          f"{base.get_billing_frequency_display().lower()}.")
            addon = Subscription.objects.create(
                customer=base.customer, sku=sku, availability=availability, base_subscription=base,
                status=Status.ACTIVE, quantity=quantity, term=base.term, billing_frequency=base.billing_frequency,
                unit_price=availability.unit_price, currency=availability.currency, auto_renew=base.auto_renew,
                term_start=now, term_end=base.term_end, reseller=base.reseller, created_at=now,  # A5: coterminous
            )
            if sku.is_license_based:
                # Q2: the add-on's licenses can be removed for 7 days, like any bought licenses.
                open_seat_lot(addon, quantity=quantity, source=SeatLot.Source.PURCHASE, now=now)
            charge = remaining_charge(unit_price=addon.unit_price, quantity=quantity, period=period, today=today)
            bill(addon, kind=BillingLine.Kind.PURCHASE, charge=charge, quantity=quantity, now=now)
            audit.record(actor=actor, at=now, customer=base.customer, subscription=addon,
                         action="subscription.addon_bought",
                         summary=f"Bought {quantity} × {sku.name} on {base.display_name}, ending {base.term_end:%Y-%m-%d}",
                         after={"quantity": quantity, "term_end": base.term_end.isoformat(), "charge": str(charge.amount)})
            # and on the base's own trail, where the purchase was made
            audit.record(actor=actor, at=now, customer=base.customer, subscription=base,
                         action="subscription.addon_added", summary=f"Add-on bought: {quantity} × {sku.name}",
                         after={"addon": str(addon.pk), "quantity": quantity, "charge": str(charge.amount)})
            created.append(addon)
    return created


# --- Manage renewal: changes scheduled for the renewal (issue 4, R1–R3, R5, K11 at renewal) ------

from catalog.alignment import can_align_sku, renewal_alignment_options  # noqa: E402
from catalog.models import Availability, Sku, Term  # noqa: E402  (appended with manage renewal)
from .states import LIVE_STATUSES  # noqa: E402

# What each kind of scheduled change sets at the renewal (N4 applies them in lifecycle.py).
BILLED = {BillingFrequency.MONTHLY: "monthly", BillingFrequency.ANNUAL: "annually",
          BillingFrequency.ONE_TIME: "once for the term"}
RENEWAL_FIELDS = {
    ScheduledChange.Kind.QUANTITY: "quantity",
    ScheduledChange.Kind.TERM: "term",
    ScheduledChange.Kind.BILLING_FREQUENCY: "billing_frequency",
}


# schedule_renewal_change(aligned_end_date=NATURAL_END): the renewed term takes its natural end again.
NATURAL_END = "natural"


def renewal_values(subscription: Subscription, changes=None) -> dict:
    """What the subscription renews with: its current values, overridden by the scheduled changes. Besides
    quantity, term and billing frequency: `sku_id`, the SKU it renews on (another one for a scheduled upgrade,
    R1), and `aligned_end_date`, the end date of the renewed term (None: its natural end; K11)."""
    values = {name: getattr(subscription, name) for name in RENEWAL_FIELDS.values()}
    values.update(sku_id=subscription.sku_id, aligned_end_date=None)
    for change in subscription.scheduled_changes.all() if changes is None else changes:
        name = RENEWAL_FIELDS.get(change.kind)
        if name and getattr(change, name):
            values[name] = getattr(change, name)
        elif change.kind == ScheduledChange.Kind.UPGRADE and change.target_sku_id:
            values["sku_id"] = change.target_sku_id
        elif change.kind == ScheduledChange.Kind.ALIGNMENT and change.aligned_end_date:
            values["aligned_end_date"] = change.aligned_end_date
    return values


def renewal_starts_on(subscription: Subscription) -> date:
    """N2: the renewed term starts the day after the inclusive term end."""
    return subscription.term_end + timedelta(days=1)


def renewal_upgrade_reassignment(subscription: Subscription, changes=None) -> str:
    """R5: what happens to the users' licenses with a SKU upgrade scheduled for the renewal ("" with none)."""
    values = renewal_values(subscription, changes)
    if values["sku_id"] == subscription.sku_id:
        return ""
    if values["quantity"] == subscription.quantity:
        return "The quantity is unchanged, so licenses are reassigned to users automatically at the renewal."
    return (f"The quantity changes from {subscription.quantity:,} to {values['quantity']:,}, so licenses must be "
            "reassigned to users by hand after the renewal.")


def check_renewal_upgrade(subscription: Subscription, target_sku_id, *, quantity: int, term: str,
                          billing_frequency: str, now: datetime) -> Availability:
    """R1: a SKU upgrade for the renewal goes to one of the upgrade matrix's supported targets (U2) that is sold
    with the renewed term and billing frequency, for the renewed quantity. Checked when it is scheduled and again
    by the renewal engine. Returns the target's availability the renewal is priced at."""
    # upgrades.py builds on this module; the matrix is read from it at call time.
    from .upgrades import upgrade_targets

    target = next((t for t in upgrade_targets(subscription, now=now) if t.sku.pk == target_sku_id), None)
    if target is None:
        # U2: unsupported paths are never offered or accepted, at the renewal either.
        raise RuleViolation("U2", "That upgrade is not offered for this subscription: choose one of the listed "
                                  "targets.", field="target_sku")
    sku = target.sku
    availability = next((a for a in target.availabilities
                         if a.term == term and a.billing_frequency == billing_frequency), None)
    if availability is None:
        raise RuleViolation("R1", f"{sku.name} is not sold for a {Term(term).label} term billed "
                                  f"{BILLED[billing_frequency]}: choose a term and billing frequency it is sold "
                                  "for.", field="term")
    if not sku.min_quantity <= quantity <= sku.max_quantity:  # K8
        raise RuleViolation("K8", f"{sku.name} is sold in quantities from {sku.min_quantity:,} to "
                                  f"{sku.max_quantity:,}.", field="quantity")
    if sku.one_per_customer and Subscription.objects.filter(
            customer_id=subscription.customer_id, sku=sku, status__in=LIVE_STATUSES).exclude(
            pk=subscription.pk).exists():
        raise RuleViolation("U3", f"The customer already holds {sku.name}, which can be held once.",
                            field="target_sku")
    return availability


def check_renewal_alignment(subscription: Subscription, end_date: date, *, sku: Sku, term: str) -> None:
    """K11 at renewal (R1): the renewed term may end on a calendar month's end or on the end date of another of
    the customer's active new-commerce subscriptions, within the renewed first term. Checked when it is
    scheduled and again by the renewal engine (the other subscription may have ended or renewed since)."""
    if not can_align_sku(sku):
        raise RuleViolation("K11", f"{sku.name} can't end on an aligned date: only license-based new-commerce "
                                   "offers can.", field="aligned_end_date")
    starts_on = renewal_starts_on(subscription)
    options = renewal_alignment_options(subscription, sku=sku, term=term, starts_on=starts_on)
    if not any(o.end_date == end_date for o in options):
        raise RuleViolation("K11", f"The renewed term can't end on {end_date:%Y-%m-%d}: choose the end of a "
                                   "calendar month or the end date of another active subscription of the customer, "
                                   f"within the renewed {Term(term).label} term from {starts_on:%Y-%m-%d}.",
                            field="aligned_end_date")


def _check_renewal_values(subscription: Subscription, values: dict, *, now: datetime) -> None:
    sku = subscription.sku
    upgrade = values["sku_id"] != subscription.sku_id
    if values["quantity"] != subscription.quantity and not upgrade:
        if not sku.is_license_based:
            raise RuleViolation("R1", "A usage-based subscription has no license quantity.", field="quantity")
        # K8
        if not sku.min_quantity <= values["quantity"] <= sku.max_quantity:
            raise RuleViolation("K8", f"{sku.name} is sold in quantities from {sku.min_quantity:,} to "
                                      f"{sku.max_quantity:,}.", field="quantity")
    term, frequency = values["term"], values["billing_frequency"]
    if term not in Term.values:
        raise RuleViolation("R1", "Choose a term of 1 month, 1 year or 3 years.", field="term")
    if frequency not in BillingFrequency.values:
        raise RuleViolation("R1", "Choose a monthly, annual or one-time billing frequency.", field="billing_frequency")
    # The billing frequency can't be longer than the term (a 1-month term can't be billed annually).
    if frequency in FREQUENCY_MONTHS and FREQUENCY_MONTHS[frequency] > TERM_MONTHS[term]:
        raise RuleViolation("R1", f"A {Term(term).label} term can't be billed "
                                  f"{BILLED[frequency]}: the billing frequency can't be longer "
                                  "than the term.", field="billing_frequency")
    if upgrade:
        if not sku.is_license_based:
            raise RuleViolation("U1", "A usage-based subscription has no licenses to upgrade.", field="target_sku")
        sku = check_renewal_upgrade(subscription, values["sku_id"], quantity=values["quantity"], term=term,
                                    billing_frequency=frequency, now=now).sku
    elif (term, frequency) != (subscription.term, subscription.billing_frequency) and not Availability.objects.filter(
            sku=sku, term=term, billing_frequency=frequency).exists():
        raise RuleViolation("R1", f"{sku.name} is not sold for a {Term(term).label} term billed "
                                  f"{BILLED[frequency]}.", field="term")
    if values["aligned_end_date"] is not None:
        check_renewal_alignment(subscription, values["aligned_end_date"], sku=sku, term=term)


# Each kind of scheduled change: the key in renewal_values, its field on ScheduledChange, and the value that
# needs no change (the subscription's own, or no aligned end date).
_SCHEDULED_FIELDS = (
    (ScheduledChange.Kind.UPGRADE, "sku_id", "target_sku_id", lambda s: s.sku_id),
    (ScheduledChange.Kind.QUANTITY, "quantity", "quantity", lambda s: s.quantity),
    (ScheduledChange.Kind.TERM, "term", "term", lambda s: s.term),
    (ScheduledChange.Kind.BILLING_FREQUENCY, "billing_frequency", "billing_frequency", lambda s: s.billing_frequency),
    (ScheduledChange.Kind.ALIGNMENT, "aligned_end_date", "aligned_end_date", lambda s: None),
)


def _audited(subscription: Subscription, values: dict) -> dict:
    """renewal_values as the audit trail stores them (JSON): the SKU and end date only when they change."""
    row = {name: values[name] for name in RENEWAL_FIELDS.values()}
    if values["sku_id"] != subscription.sku_id:
        row["sku"] = Sku.objects.filter(pk=values["sku_id"]).values_list("name", flat=True).first()
    if values["aligned_end_date"] is not None:
        row["aligned_end_date"] = values["aligned_end_date"].isoformat()
    return row


def schedule_renewal_change(*, subscription_id, actor, version: int | str | None = None, quantity: int | None, term: str | None,
                            billing_frequency: str | None, target_sku_id: int | None = None,
                            aligned_end_date: date | str | None = None, now: datetime) -> list[ScheduledChange]:
    """R1, R3: schedules (or updates) the quantity, term, billing frequency, SKU (an upgrade) and aligned end
    date (K11) the subscription renews with.

    A value left None keeps what is scheduled; a value equal to the current one (the subscription's own SKU,
    NATURAL_END for the end date) removes its scheduled change. Returns every change now scheduled.
    """
    require(actor, Action.BUY)
    with transaction.atomic():
        subscription = _locked(subscription_id, version, actor)
        actions.check_schedule_change(subscription, actor, now)
        scheduled = list(subscription.scheduled_changes.select_for_update())
        before = renewal_values(subscription, scheduled)
        wanted = {"quantity": quantity, "term": term, "billing_frequency": billing_frequency,
                  "sku_id": target_sku_id, "aligned_end_date": aligned_end_date}
        after = {name: before[name] if wanted[name] is None else wanted[name] for name in before}
        if after["aligned_end_date"] == NATURAL_END:
            after["aligned_end_date"] = None
        if after == before:
            raise RuleViolation("R1", "Nothing to schedule: the renewal already keeps these values.")
        _check_renewal_values(subscription, after, now=now)
        by_kind = {change.kind: change for change in scheduled}
        for kind, name, field_name, unchanged in _SCHEDULED_FIELDS:
            if after[name] == before[name]:
                continue
            # R3: a new value for a kind replaces what was scheduled for it.
            if kind in by_kind:
                by_kind.pop(kind).delete()
            if after[name] != unchanged(subscription):
                by_kind[kind] = ScheduledChange.objects.create(subscription=subscription, kind=kind, created_at=now,
                                                               **{field_name: after[name]})
        changes = sorted(by_kind.values(), key=lambda c: (c.created_at, c.pk))
        summary = ("Scheduled for the renewal: " + ", ".join(c.summary for c in changes)
                   if changes else "Scheduled renewal changes removed: it renews unchanged")
        reassignment = renewal_upgrade_reassignment(subscription, changes)  # R5
        audit.record(actor=actor, at=now, customer=subscription.customer, subscription=subscription,
                     action="subscription.renewal_change_scheduled",
                     summary=(summary + (f". {reassignment}" if reassignment else ""))[:300],
                     before=_audited(subscription, before), after=_audited(subscription, after))
    return changes


def remove_scheduled_change(*, subscription_id, actor, version: int | str | None = None, change_id, now: datetime) -> ScheduledChange:
    """R3: removes one change scheduled for the renewal."""
    require(actor, Action.BUY)
    with transaction.atomic():
        subscription = _locked(subscription_id, version, actor)
        actions.check_schedule_change(subscription, actor, now)
        change = subscription.scheduled_changes.select_for_update().filter(pk=change_id).first()
        if change is None:
            raise RuleViolation("R3", "That scheduled change doesn't exist any more (removed or already applied): "
                                      "nothing was changed.", conflict=True)
        summary = change.summary
        before = _audited(subscription, renewal_values(subscription))
        change.delete()
        audit.record(actor=actor, at=now, customer=subscription.customer, subscription=subscription,
                     action="subscription.renewal_change_removed",
                     summary=f"Removed from the renewal: {summary}"[:300], before=before,
                     after=_audited(subscription, renewal_values(subscription)))
    return change
