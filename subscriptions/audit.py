"""Writes the audit trail (L1). Called by every service inside its own transaction."""

from .models import AuditEntry


def record(*, actor, at, customer, action: str, summary: str, before=None, after=None, order=None, subscription=None,
           partner=None) -> AuditEntry:
    return AuditEntry.objects.create(
        actor=actor if actor is not None and actor.is_authenticated else None,
        at=at,
        partner=partner or customer.partner,
        customer=customer,
        order=order,
        subscription=subscription,
        action=action,
        summary=summary,
        before=before or {},
        after=after or {},
    )


def last_change(subscription) -> str:
    """What changed a subscription last, said the way its audit trail says it: for a refused stale page (409)."""
    entry = (AuditEntry.objects.filter(subscription=subscription).select_related("actor").order_by("-at", "-pk")
             .first())
    if entry is None:
        return ""
    who = (entry.actor.get_full_name() or entry.actor.get_username()) if entry.actor else "the system"
    return f"{entry.summary} ({who}, {entry.at:%Y-%m-%d %H:%M} UTC)"
