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
