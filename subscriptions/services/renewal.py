"""Manage renewal (R1–R3, R5, K11 at renewal): the changes scheduled for the next term, which the lifecycle engine
applies at the renewal (N4)."""

from datetime import date, datetime

from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from catalog.alignment import can_align_sku, renewal_alignment_options
from catalog.models import Availability, Sku, Term
from portal.access import Action, require
from portal.errors import RuleViolation

from .. import audit, checks
from ..checks import renewal_starts_on
from ..models import ScheduledChange, Subscription
from .kernel import check_choice, check_fits_term, check_quantity_sold, lock_subscription, sold_availability
from .upgrades import upgrade_path

# What each kind of scheduled change sets at the renewal (N4 applies them in lifecycle.py).
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


def renewal_upgrade_reassignment(subscription: Subscription, changes=None) -> str:
    """R5: what happens to the users' licenses with a SKU upgrade scheduled for the renewal ("" with none), in the
    active language."""
    reassignment = renewal_upgrade_reassignment_said(subscription, changes)
    return str(reassignment) if reassignment else ""


def renewal_upgrade_reassignment_said(subscription: Subscription, changes=None) -> audit.Said | None:
    """renewal_upgrade_reassignment as a message (None with no upgrade scheduled), for the audit trail."""
    values = renewal_values(subscription, changes)
    if values["sku_id"] == subscription.sku_id:
        return None
    if values["quantity"] == subscription.quantity:
        return audit.said(
            gettext_noop("The quantity is unchanged, so licenses are reassigned to users automatically at the renewal.")
        )
    return audit.said(
        gettext_noop(
            "The quantity changes from %(old)s to %(new)s, so licenses must be reassigned to users by hand after the "
            "renewal."
        ),
        old=f"{subscription.quantity:,}",
        new=f"{values['quantity']:,}",
    )


def check_renewal_upgrade(
    subscription: Subscription, target_sku_id, *, quantity: int, term: str, billing_frequency: str, now: datetime
) -> Availability:
    """R1: a SKU upgrade for the renewal goes to one of the upgrade matrix's supported targets (U2) that is sold
    with the renewed term and billing frequency, for the renewed quantity. Checked when it is scheduled and again
    by the renewal engine. Returns the target's availability the renewal is priced at."""
    sku = upgrade_path(subscription, target_sku_id).target  # U2, at the renewal too
    availability = sold_availability("R1", sku, term, billing_frequency, choose_another=True)
    check_quantity_sold(sku, quantity)
    if checks.customer_holds(subscription.customer_id, sku, excluding=subscription.pk):  # C4a
        raise RuleViolation(
            "U3",
            _("The customer already holds %(offer)s, which can be held once.") % {"offer": sku.name},
            field="target_sku",
        )
    return availability


def check_renewal_alignment(subscription: Subscription, end_date: date, *, sku: Sku, term: str) -> None:
    """K11 at renewal (R1): the renewed term may end on a calendar month's end or on the end date of another of
    the customer's active new-commerce subscriptions, within the renewed first term. Checked when it is
    scheduled and again by the renewal engine (the other subscription may have ended or renewed since)."""
    if not can_align_sku(sku):
        raise RuleViolation(
            "K11",
            _("%(offer)s can't end on an aligned date: only license-based new-commerce offers can.")
            % {"offer": sku.name},
            field="aligned_end_date",
        )
    starts_on = renewal_starts_on(subscription)
    options = renewal_alignment_options(subscription, sku=sku, term=term, starts_on=starts_on)
    if not any(o.end_date == end_date for o in options):
        raise RuleViolation(
            "K11",
            _(
                "The renewed term can't end on %(date)s: choose the end of a calendar month or the end date of "
                "another active subscription of the customer, within the renewed %(term)s term from %(start)s."
            )
            % {"date": f"{end_date:%Y-%m-%d}", "term": Term(term).label, "start": f"{starts_on:%Y-%m-%d}"},
            field="aligned_end_date",
        )


def _check_renewal_values(subscription: Subscription, values: dict, *, now: datetime) -> None:
    sku = subscription.sku
    upgrade = values["sku_id"] != subscription.sku_id
    if values["quantity"] != subscription.quantity and not upgrade:
        if not sku.is_license_based:
            raise RuleViolation("R1", _("A usage-based subscription has no license quantity."), field="quantity")
        check_quantity_sold(sku, values["quantity"])
    term, frequency = values["term"], values["billing_frequency"]
    check_choice("R1", term, frequency)
    check_fits_term("R1", term, frequency)
    if upgrade:
        if not sku.is_license_based:
            raise RuleViolation("U1", _("A usage-based subscription has no licenses to upgrade."), field="target_sku")
        sku = check_renewal_upgrade(
            subscription, values["sku_id"], quantity=values["quantity"], term=term, billing_frequency=frequency, now=now
        ).sku
    elif (term, frequency) != (subscription.term, subscription.billing_frequency):
        sold_availability("R1", sku, term, frequency)
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


def schedule_renewal_change(
    *,
    subscription_id,
    actor,
    version: int | str | None = None,
    quantity: int | None,
    term: str | None,
    billing_frequency: str | None,
    target_sku_id: int | None = None,
    aligned_end_date: date | str | None = None,
    now: datetime,
) -> list[ScheduledChange]:
    """R1, R3: schedules (or updates) the quantity, term, billing frequency, SKU (an upgrade) and aligned end
    date (K11) the subscription renews with.

    A value left None keeps what is scheduled; a value equal to the current one (the subscription's own SKU,
    NATURAL_END for the end date) removes its scheduled change. Returns every change now scheduled.
    """
    require(actor, Action.BUY)
    with transaction.atomic():
        subscription = lock_subscription(subscription_id, version, actor)
        checks.check_schedule_change(subscription, actor, now)
        scheduled = list(subscription.scheduled_changes.select_for_update())
        before = renewal_values(subscription, scheduled)
        wanted = {
            "quantity": quantity,
            "term": term,
            "billing_frequency": billing_frequency,
            "sku_id": target_sku_id,
            "aligned_end_date": aligned_end_date,
        }
        after = {name: before[name] if wanted[name] is None else wanted[name] for name in before}
        if after["aligned_end_date"] == NATURAL_END:
            after["aligned_end_date"] = None
        if after == before:
            raise RuleViolation("R1", _("Nothing to schedule: the renewal already keeps these values."))
        _check_renewal_values(subscription, after, now=now)
        by_kind = {change.kind: change for change in scheduled}
        for kind, name, field_name, unchanged in _SCHEDULED_FIELDS:
            if after[name] == before[name]:
                continue
            # R3: a new value for a kind replaces what was scheduled for it.
            if kind in by_kind:
                by_kind.pop(kind).delete()
            if after[name] != unchanged(subscription):
                by_kind[kind] = ScheduledChange.objects.create(
                    subscription=subscription, kind=kind, created_at=now, **{field_name: after[name]}
                )
        changes = sorted(by_kind.values(), key=lambda c: (c.created_at, c.pk))
        summary = (
            audit.said(
                gettext_noop("Scheduled for the renewal: %(changes)s"),
                changes=audit.listed(c.summary_said for c in changes),
            )
            if changes
            else audit.said(gettext_noop("Scheduled renewal changes removed: it renews unchanged"))
        )
        reassignment = renewal_upgrade_reassignment_said(subscription, changes)  # R5
        audit.record(
            actor=actor,
            at=now,
            customer=subscription.customer,
            subscription=subscription,
            action="subscription.renewal_change_scheduled",
            summary=summary
            + (audit.said(gettext_noop(". %(reassignment)s"), reassignment=reassignment) if reassignment else None),
            before=_audited(subscription, before),
            after=_audited(subscription, after),
        )
    return changes


def remove_scheduled_change(
    *, subscription_id, actor, version: int | str | None = None, change_id, now: datetime
) -> ScheduledChange:
    """R3: removes one change scheduled for the renewal."""
    require(actor, Action.BUY)
    with transaction.atomic():
        subscription = lock_subscription(subscription_id, version, actor)
        checks.check_schedule_change(subscription, actor, now)
        change = subscription.scheduled_changes.select_for_update().filter(pk=change_id).first()
        if change is None:
            raise RuleViolation(
                "R3",
                _("That scheduled change doesn't exist any more (removed or already applied): nothing was changed."),
                conflict=True,
            )
        summary = change.summary_said
        before = _audited(subscription, renewal_values(subscription))
        change.delete()
        audit.record(
            actor=actor,
            at=now,
            customer=subscription.customer,
            subscription=subscription,
            action="subscription.renewal_change_removed",
            summary=audit.said(gettext_noop("Removed from the renewal: %(change)s"), change=summary),
            before=before,
            after=_audited(subscription, renewal_values(subscription)),
        )
    return change
