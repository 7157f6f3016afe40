"""Parsing of the few raw inputs that views read, with messages a partner understands."""

from datetime import date
from uuid import UUID

from portal.rules import RuleViolation

MAX_QUANTITY_INPUT = 1_000_000


def parse_quantity(raw, *, rule: str = "K8") -> int:
    text = str(raw if raw is not None else "").strip()
    if not (text.isascii() and text.isdigit()):
        raise RuleViolation(rule, "Enter the number of licenses as a whole number of at least 1.", field="quantity")
    value = int(text)
    if value < 1:
        raise RuleViolation(rule, "Enter the number of licenses as a whole number of at least 1.", field="quantity")
    if value > MAX_QUANTITY_INPUT:
        raise RuleViolation(rule, f"{value:,} licenses is more than any offer allows.", field="quantity")
    return value


def parse_int(raw) -> int | None:
    text = str(raw if raw is not None else "").strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) < 12 else None


def parse_uuid(raw) -> UUID | None:
    """An id from a URL or a form: a UUID, or None when it is not one."""
    if isinstance(raw, UUID):
        return raw
    try:
        return UUID(str(raw))
    except ValueError:
        return None


def parse_date(raw) -> date | None:
    text = str(raw if raw is not None else "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise RuleViolation("K11", f"{text[:20]!r} is not a date (YYYY-MM-DD).", field="aligned_end_date") from None
