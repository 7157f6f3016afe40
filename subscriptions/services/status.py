"""The subscription's own state, changed by a person now: suspend and reactivate (P1–P4, A4), cancel with its
refund (X1–X3), auto-renew (R6) and the friendly name (S2)."""

from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from portal.access import Action, require
from portal.errors import RuleViolation

from .. import audit, checks
from ..models import BillingLine, Subscription
from ..pricing import Charge, remaining_charge
from ..states import Status
from .kernel import bill, change_status, current_period, delete_scheduled_changes, lock_subscription


def _addons(base: Subscription, *statuses: str):
    """A4, X2: the base's add-ons in `statuses` (all but the ended ones when none is named), locked: they follow it."""
    addons = base.addon_subscriptions.select_for_update(of=("self",)).select_related(
        "customer__partner", "sku__product__publisher"
    )
    if statuses:
        return addons.filter(status__in=statuses)
    return addons.exclude(status__in=[Status.DELETED, Status.EXPIRED, Status.DISABLED])


def _refund(subscription: Subscription, refund: Charge, now: datetime) -> None:
    """X1: the cancellation refund's billing line (a credit for every license)."""
    if refund.amount:
        bill(
            subscription,
            kind=BillingLine.Kind.CANCELLATION_REFUND,
            charge=Charge(-refund.amount, refund.period_start, refund.period_end, refund.explanation),
            quantity=-subscription.quantity,
            now=now,
        )


def suspend_subscription(*, subscription_id, actor, version: int | str | None = None, now: datetime) -> Subscription:
    require(actor, Action.SUSPEND)
    with transaction.atomic():
        subscription = lock_subscription(subscription_id, version, actor)
        checks.check_suspend(subscription, actor, now)
        before = {"status": subscription.status, "auto_renew": subscription.auto_renew}
        # P4: auto-renew off, scheduled changes removed (a billing-frequency instruction stays).
        deleted = delete_scheduled_changes(subscription, keep_billing_frequency=True)
        change_status(
            subscription,
            Status.SUSPENDED,
            actor=actor,
            now=now,
            action="subscription.suspended",
            summary=audit.said(gettext_noop("Suspended; auto-renew turned off"))
            + (audit.said(gettext_noop("; %(count)s scheduled change(s) removed"), count=deleted) if deleted else None),
            before=before,
            after={"status": Status.SUSPENDED, "auto_renew": False},
            auto_renew=False,
        )
        # A4: suspending a base suspends its add-ons.
        for addon in _addons(subscription, Status.ACTIVE):
            change_status(
                addon,
                Status.SUSPENDED,
                actor=actor,
                now=now,
                action="subscription.suspended",
                summary=audit.said(gettext_noop("Suspended with its base %(base)s"), base=subscription.display_name),
                auto_renew=False,
            )
    return subscription


def reactivate_subscription(*, subscription_id, actor, version: int | str | None = None, now: datetime) -> Subscription:
    require(actor, Action.SUSPEND)
    with transaction.atomic():
        subscription = lock_subscription(subscription_id, version, actor)
        checks.check_reactivate(subscription, actor, now)
        change_status(
            subscription,
            Status.ACTIVE,
            actor=actor,
            now=now,
            action="subscription.reactivated",
            summary=audit.said(gettext_noop("Reactivated; auto-renew is still off")),
        )
        for addon in _addons(subscription, Status.SUSPENDED):
            change_status(
                addon,
                Status.ACTIVE,
                actor=actor,
                now=now,
                action="subscription.reactivated",
                summary=audit.said(gettext_noop("Reactivated with its base %(base)s"), base=subscription.display_name),
            )
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
        return Charge(
            billed, min(b.period_start for b in lines), max(b.period_end for b in lines), "full refund within 72 hours"
        )
    if subscription.is_trial or not subscription.sku.is_license_based:
        return Charge(Decimal("0.00"), today, subscription.term_end or today, "nothing was charged")
    period = current_period(base or subscription, today)
    return remaining_charge(
        unit_price=subscription.unit_price, quantity=subscription.quantity, period=period, today=today
    )


def cancel_subscription(*, subscription_id, actor, version: int | str | None = None, now: datetime) -> Charge:
    require(actor, Action.BUY)
    with transaction.atomic():
        subscription = lock_subscription(subscription_id, version, actor)
        checks.check_cancel(subscription, actor, now)
        refund = cancellation_refund(subscription, now)
        # X3, S3: awaiting its set-up it was never billed: it ends now with no billing line at all.
        unbilled = checks.awaiting_setup(subscription)
        deleted = delete_scheduled_changes(subscription)
        # X2: nothing will be charged again, so a next-charge billing frequency instruction goes too (one being
        # charged right now, N7, is left to the engine, which drops it without a charge).
        instruction = (
            {}
            if subscription.cycle_charge_pending
            else {"next_charge_frequency": "", "next_charge_on": None, "next_charge_set_at": None}
        )
        change_status(
            subscription,
            Status.DELETED,  # X2: final
            actor=actor,
            now=now,
            action="subscription.cancelled",
            summary=(
                audit.said(
                    gettext_noop(
                        "Cancelled while awaiting the publisher's set-up: nothing was billed, nothing refunded"
                    )
                )
                if unbilled
                else audit.said(
                    gettext_noop("Cancelled; refund %(amount)s"),
                    amount=audit.money(refund.amount, subscription.currency),
                )
            )
            + audit.changes_deleted(deleted),
            after={"status": Status.DELETED, "refund": str(refund.amount)},
            auto_renew=False,
            cancelled_at=now,
            **instruction,
        )
        _refund(subscription, refund, now)
        for addon in _addons(subscription):
            # X2 for the add-ons too: cancelled with their base, refunded the same way (X1, L2).
            addon_refund = cancellation_refund(addon, now, base=subscription)
            change_status(
                addon,
                Status.DELETED,
                actor=actor,
                now=now,
                action="subscription.cancelled",
                summary=audit.said(
                    gettext_noop("Cancelled with its base %(base)s; refund %(amount)s"),
                    base=subscription.display_name,
                    amount=audit.money(addon_refund.amount, addon.currency),
                ),
                after={"status": Status.DELETED, "refund": str(addon_refund.amount)},
                auto_renew=False,
                cancelled_at=now,
            )
            _refund(addon, addon_refund, now)
    return refund


def set_auto_renew(
    *, subscription_id, actor, version: int | str | None = None, on: bool, now: datetime
) -> Subscription:
    require(actor, Action.AUTO_RENEW)
    with transaction.atomic():
        subscription = lock_subscription(subscription_id, version, actor)
        checks.check_auto_renew(subscription, actor, now, on)
        subscription.auto_renew = on
        deleted = 0 if on else delete_scheduled_changes(subscription)  # R6
        subscription.save(update_fields=["auto_renew", "updated_at"])
        audit.record(
            actor=actor,
            at=now,
            customer=subscription.customer,
            subscription=subscription,
            action="subscription.auto_renew_changed",
            summary=audit.said(gettext_noop("Auto-renew turned on") if on else gettext_noop("Auto-renew turned off"))
            + audit.changes_deleted(deleted),
            before={"auto_renew": not on},
            after={"auto_renew": on},
        )
    return subscription


def rename_subscription(
    *, subscription_id, actor, version: int | str | None = None, friendly_name: str, now: datetime
) -> Subscription:
    require(actor, Action.BUY)
    friendly_name = (friendly_name or "").strip()
    if len(friendly_name) > 200:
        raise RuleViolation("S2", _("A friendly name can have at most 200 characters."), field="friendly_name")
    with transaction.atomic():
        subscription = lock_subscription(subscription_id, version, actor)
        checks.check_rename(subscription, actor, now)
        before = subscription.friendly_name
        subscription.friendly_name = friendly_name
        subscription.save(update_fields=["friendly_name", "updated_at"])
        audit.record(
            actor=actor,
            at=now,
            customer=subscription.customer,
            subscription=subscription,
            action="subscription.renamed",
            summary=audit.said(gettext_noop("Renamed to %(name)s"), name=subscription.display_name),
            before={"friendly_name": before},
            after={"friendly_name": friendly_name},
        )
    return subscription
