"""One function per action on subscriptions. Each: keyword-only, `now` passed in, one transaction,
rows locked before their state is checked, audited."""

from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db import transaction

from catalog.models import FREQUENCY_MONTHS, TERM_MONTHS, BillingFrequency, Order, OrderLine
from portal.models import Customer

from . import audit
from .dates import add_months, term_end_for
from .models import BillingLine, SeatLot, Subscription
from .pricing import Charge, prorated_charge
from .states import Status, check_transition

REMOVAL_WINDOW = timedelta(hours=168)  # Q2 / X1: 7 days


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


def open_seat_lot(subscription: Subscription, *, quantity: int, source: str, now: datetime) -> SeatLot:
    # Q2: every addition opens its own 7-day window for those licenses.
    return SeatLot.objects.create(subscription=subscription, source=source, quantity=quantity, added_at=now,
                                  window_ends_at=now + REMOVAL_WINDOW)


def bill(subscription: Subscription, *, kind: str, charge: Charge, quantity: int, now: datetime) -> BillingLine:
    return BillingLine.objects.create(
        subscription=subscription, kind=kind, amount=charge.amount, currency=subscription.currency,
        quantity=quantity, unit_price=subscription.unit_price, period_start=charge.period_start,
        period_end=charge.period_end, explanation=charge.explanation, created_at=now,
    )


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
    if sku.is_license_based and not subscription.is_trial:
        # A trial's quantity can't change (TR4), so its licenses open no removal window.
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


__all__ = ["add_months", "fulfill_order", "provision_subscription", "transition"]
