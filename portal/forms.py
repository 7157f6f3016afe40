"""Parsing of the few raw inputs that views read, with messages a partner understands."""

from datetime import date
from uuid import UUID

from django.utils.http import url_has_allowed_host_and_scheme

from portal.errors import RuleViolation

MAX_QUANTITY_INPUT = 1_000_000


def parse_quantity(raw, *, rule: str = "K8") -> int:
    text = str(raw if raw is not None else "").strip()
    if not (text.isascii() and text.isdigit()):
        raise RuleViolation(rule, "Enter the number of licenses as a whole number of at least 1.", field="quantity")
    if len(text.lstrip("0")) > 18:
        # Past any 64-bit count, and int() of thousands of digits is slow or refused (a ValueError past 4,300).
        raise RuleViolation(rule, "That is more licenses than any offer allows.", field="quantity")
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


def parse_text(raw, *, rule: str, field: str, what: str) -> str:
    """A line of text typed into a form, stripped. Refused when it holds a NUL character: no column can store one,
    and PostgreSQL refuses it even in a query (a DataError, 500), as Django's own form fields refuse it."""
    text = str(raw if raw is not None else "").strip()
    if "\x00" in text:
        raise RuleViolation(rule, f"{what} contains a character that is not allowed (NUL).", field=field)
    return text


def search_text(raw) -> str:
    """What was typed into a search box, stripped, its NUL characters dropped: no stored text has one, and
    PostgreSQL refuses them even in a LIKE pattern."""
    return str(raw if raw is not None else "").replace("\x00", "").strip()


def is_safe_next(url, request) -> bool:
    """Whether `url` (a form's or query string's `next`) is a path of this site, safe to redirect to.

    Only an absolute path: one leading "/", never "//" or "/\\" (browsers read a backslash as a slash, so both name
    another host), no scheme or host, no backslash, space or control character anywhere (browsers drop tabs and
    newlines before parsing, and CR/LF cannot go in a Location header). A bare word ("null") is refused too: it is
    not a URL of this site, and `redirect()` would take it for a view name."""
    if not isinstance(url, str) or not url.startswith("/") or url.startswith("//"):
        return False
    if "\\" in url or any(c.isspace() or not c.isprintable() for c in url):
        return False
    return url_has_allowed_host_and_scheme(url, allowed_hosts={request.get_host()}, require_https=request.is_secure())


def next_url(request, fallback: str) -> str:
    """Where to go after a form: its `next` (posted, else in the query string) when it is safe (`is_safe_next`),
    else `fallback`, the page the form was on. Read before anything is saved: a refused `next` cannot fail a
    request whose change is already made."""
    target = request.POST.get("next", request.GET.get("next"))
    return target if is_safe_next(target, request) else fallback
