"""Fulfilment (O2, S3, S4): an order's lines become subscriptions, Microsoft provisions them, a publisher confirms an
ISV offer's set-up; and the first charge a cart line is quoted.

The two background tasks live here, beside the services they run: `fulfill_order` hands the provisioning of what
it created to `provision_subscription_task` on commit, without importing anything above the services.
"""

from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.tasks import task
from django.utils import timezone
from django.utils.translation import gettext_noop

from catalog.models import TERM_MONTHS, Order, OrderLine
from portal.access import Action, require
from portal.models import Customer
from portal.versions import bump_version

from .. import audit, checks
from ..dates import term_end_for
from ..models import Subscription
from ..pricing import Charge
from ..states import Status
from .kernel import (
    REMOVAL_WINDOW,
    change_status,
    first_charge,
    lock_subscription,
    new_subscription,
    start_paid_term,
    start_subscription,
    transition,
)


def quoted_first_charge(*, availability, quantity: int, aligned_end_date: date | None, today: date) -> Charge | None:
    """What a cart or order line will first be charged if bought today.

    None for usage-based offers (billed by consumption); nothing during an ISV free trial (S4).
    """
    sku = availability.sku
    if not sku.is_license_based:
        return None
    if sku.is_isv and sku.free_trial_days:
        return Charge(
            Decimal("0.00"),
            today,
            today + timedelta(days=sku.free_trial_days - 1),
            f"{sku.free_trial_days}-day free trial",
        )
    months = TERM_MONTHS[availability.term]
    return first_charge(
        unit_price=availability.unit_price,
        quantity=quantity,
        billing_frequency=availability.billing_frequency,
        term_start=today,
        term_end=aligned_end_date or term_end_for(today, months),
        term_months=months,
    )


def create_subscription_for_line(line: OrderLine, *, order: Order, now: datetime) -> Subscription:
    """O2 fulfillment of one order line: the subscription, its first lot and its first charge."""
    sku = line.sku
    customer: Customer = order.customer
    today = now.date()
    months = TERM_MONTHS[line.term]
    term_end = line.aligned_end_date or term_end_for(today, months)
    trial = {"is_trial": sku.is_trial}
    if sku.is_trial:
        # TR1: a new-commerce trial runs one month, 25 licenses, auto-renew on.
        trial["trial_ends_at"] = datetime.combine(term_end + timedelta(days=1), datetime.min.time(), tzinfo=now.tzinfo)
    term = {"term_start": now, "term_end": term_end}
    if sku.is_isv and sku.free_trial_days:
        # S4: the publisher's free trial is applied automatically; the paid term starts after it.
        ends = now + timedelta(days=sku.free_trial_days)
        trial = {"is_trial": True, "trial_ends_at": ends}
        term = {"term_start": ends, "term_end": term_end_for(ends.date(), months)}
    charge = None
    if not sku.is_isv and sku.is_license_based:
        # S3: ISV SaaS stays unbilled until the publisher confirms the set-up; usage-based offers
        # are billed by consumption, not at purchase.
        charge = first_charge(
            unit_price=line.unit_price,
            quantity=line.quantity,
            billing_frequency=line.billing_frequency,
            term_start=today,
            term_end=term_end,
            term_months=months,
        )
    # A trial's quantity can't change (TR4), so its licenses open no removal window; nor do an ISV SaaS
    # subscription's before its billing starts (S3): confirm_publisher_setup opens it then.
    opens_window = sku.is_license_based and not trial["is_trial"] and not sku.is_isv
    subscription = start_subscription(
        new_subscription(
            customer,
            line.availability,
            status=Status.PENDING,
            quantity=line.quantity,
            auto_renew=True,
            reseller=order.reseller,
            now=now,
            order_line=line,
            # the price the order quoted, not today's
            unit_price=line.unit_price,
            currency=line.currency,
            **term,
            **trial,
        ),
        now=now,
        charge=charge,
        window=REMOVAL_WINDOW if opens_window else None,
    )
    audit.record(
        actor=order.placed_by,
        at=now,
        customer=customer,
        order=order,
        subscription=subscription,
        action="subscription.created",
        summary=audit.said(
            gettext_noop("Created from %(order)s with %(quantity)s license(s)"),
            order=order.number,
            quantity=line.quantity,
        ),
        after={
            "status": subscription.status,
            "quantity": subscription.quantity,
            "term": subscription.term,
            "billing_frequency": subscription.billing_frequency,
            "term_end": subscription.term_end.isoformat(),
        },
    )
    return subscription


def fulfill_order(*, order_id: int, now: datetime) -> Order:
    """Creates one subscription per pending line. Idempotent: fulfilled lines are skipped."""
    with transaction.atomic():
        order = (
            Order.objects.select_for_update(of=("self",))
            .select_related("customer__partner", "reseller", "placed_by")
            .get(pk=order_id)
        )
        lines = list(
            order.lines.select_for_update(of=("self",))
            .filter(status=OrderLine.Status.PENDING)
            .select_related("sku__product__publisher", "availability__sku__product__publisher")
        )
        created = []
        if lines:
            bump_version(order)  # its lines' statuses change: the order page drawn before is an older version
        for line in lines:
            subscription = create_subscription_for_line(line, order=order, now=now)
            line.status = OrderLine.Status.FULFILLED
            line.fulfilled_at = now
            line.save(update_fields=["status", "fulfilled_at"])
            if checks.awaiting_provisioning(subscription):  # an ISV one awaits its publisher's set-up instead (S3)
                created.append(str(subscription.pk))
        if not order.lines.filter(status=OrderLine.Status.PENDING).exists() and order.status != Order.Status.COMPLETED:
            order.status = Order.Status.COMPLETED
            order.save(update_fields=["status"])
            audit.record(
                actor=None,
                at=now,
                customer=order.customer,
                order=order,
                action="order.completed",
                summary=audit.said(gettext_noop("%(order)s fulfilled"), order=order.number),
                before={"status": "pending"},
                after={"status": "completed"},
            )
        for subscription_id in created:
            transaction.on_commit(lambda sid=subscription_id: provision_subscription_task.enqueue(sid))
    return order


def provision_subscription(*, subscription_id, now: datetime) -> Subscription:
    """The service is ready: a pending Microsoft subscription becomes active. Idempotent."""
    with transaction.atomic():
        subscription = (
            Subscription.objects.select_for_update(of=("self",))
            .select_related("customer__partner", "sku__product__publisher")
            .get(pk=subscription_id)
        )
        if not checks.awaiting_provisioning(subscription):  # provisioned already, ended, or an ISV set-up (S3)
            return subscription
        change_status(
            subscription,
            Status.ACTIVE,
            actor=None,
            now=now,
            action="subscription.provisioned",
            summary=audit.said(gettext_noop("Provisioned")),
        )
    return subscription


def confirm_publisher_setup(*, subscription_id, actor, version: int | str | None = None, now: datetime) -> Subscription:
    """S3: the publisher confirmed the account set-up: the ISV subscription is active and billed
    (after its free trial, S4, whose paid term was fixed at purchase)."""
    require(actor, Action.BUY)
    with transaction.atomic():
        subscription = lock_subscription(subscription_id, version, actor)
        checks.check_confirm_setup(subscription, actor, now)
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
            start_paid_term(subscription, now=now)
        audit.record(
            actor=actor,
            at=now,
            customer=subscription.customer,
            subscription=subscription,
            action="subscription.setup_confirmed",
            summary=audit.said(
                gettext_noop("Publisher confirmed the set-up: free trial running, billed from its end")
                if in_free_trial
                else gettext_noop("Publisher confirmed the set-up; billing started")
            ),
            before={"status": Status.PENDING},
            after={"status": Status.ACTIVE},
        )
    return subscription


# --- Background work: tasks read the clock (they are the edge) and call the idempotent services above ----------


@task
def fulfill_order_task(order_id: int) -> None:
    fulfill_order(order_id=order_id, now=timezone.now())


@task
def provision_subscription_task(subscription_id: str) -> None:
    provision_subscription(subscription_id=subscription_id, now=timezone.now())
