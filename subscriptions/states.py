"""Subscription statuses (S0) and the transitions between them, as data."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Status(models.TextChoices):
    PENDING = "pending", _("Pending")
    ACTIVE = "active", _("Active")
    SUSPENDED = "suspended", _("Suspended")
    EXPIRED = "expired", _("Expired")
    DISABLED = "disabled", _("Disabled")
    DELETED = "deleted", _("Deleted")


# Which status may follow which. Anything else is a programming error, refused loudly.
TRANSITIONS: dict[str, set[str]] = {
    Status.PENDING: {Status.ACTIVE, Status.DELETED},
    Status.ACTIVE: {Status.SUSPENDED, Status.EXPIRED, Status.DELETED},
    Status.SUSPENDED: {Status.ACTIVE, Status.DISABLED, Status.DELETED},
    Status.EXPIRED: set(),
    Status.DISABLED: set(),
    Status.DELETED: set(),
}

# Statuses that count as the customer holding the offer (C4a, K8).
LIVE_STATUSES = (Status.PENDING, Status.ACTIVE, Status.SUSPENDED)


class TransitionError(Exception):
    """A programming error (a service asked for a transition S0 has not): for the log, never shown, so English."""


def check_transition(current: str, new: str) -> None:
    if new not in TRANSITIONS[current]:
        raise TransitionError(f"A subscription cannot go from {current} to {new}.")
