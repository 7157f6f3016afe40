"""Template helpers: every time in UTC with its label (T5), money with its currency."""

from datetime import UTC, date, datetime
from decimal import Decimal
from urllib.parse import urlencode

from django import template
from django.utils import formats, timezone
from django.utils.translation import gettext, pgettext

register = template.Library()


@register.filter
def utc(value, fmt="%Y-%m-%d %H:%M"):
    """'2026-11-30 14:02 UTC' for datetimes; '2026-11-30' for dates (UTC calendar dates)."""
    if value in (None, ""):
        return "—"
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime(fmt) + " UTC"
    if isinstance(value, date):
        return value.strftime("%Y-%m-%d")
    return value


@register.filter
def countdown(value, now=None):
    """'4 d 6 h left', '3 h 12 min left' or 'closed' (in the active language)."""
    if not isinstance(value, datetime):
        return ""
    now = now or timezone.now()
    seconds = int((value - now).total_seconds())
    if seconds <= 0:
        return pgettext("a cancellation window", "closed")
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return gettext("%(days)s d %(hours)s h left") % {"days": days, "hours": hours}
    if hours:
        return gettext("%(hours)s h %(minutes)s min left") % {"hours": hours, "minutes": minutes}
    if minutes:
        return gettext("%(minutes)s min left") % {"minutes": minutes}
    return gettext("less than 1 min left")


@register.filter
def money(value, currency=""):
    """'1,234.50 USD': two decimals, grouped as the active language writes numbers (portal/formats). Decimal's own
    formatting rounds to the cent (number_format would cut the digits off); the grouping works on that text, so the
    amount never passes through a float."""
    if value is None:
        return "—"
    text = formats.number_format(f"{Decimal(value):.2f}", decimal_pos=2, force_grouping=True)
    return f"{text} {currency}".strip()


@register.filter
def number(value):
    """A whole count or a quantity grouped as the active language writes numbers: '12,500'."""
    if value in (None, ""):
        return "—"
    return formats.number_format(value, force_grouping=True)


@register.simple_tag(takes_context=True)
def query_with(context, **kwargs):
    """The current query string with some keys replaced (pagination, sorting)."""
    return query_string(context["request"].GET, **kwargs)


def query_string(params, **kwargs) -> str:
    """`params` (a QueryDict) with some keys replaced, or removed when the value is blank; not escaped. A replaced
    key keeps its place and a new one comes last, as QueryDict's own setting does; written without copying the
    QueryDict (a deep copy), as a list page draws some thirty of these links."""
    pairs = []
    for key, values in params.lists():
        if key not in kwargs:
            pairs.extend((key, value) for value in values)
        elif kwargs[key] not in (None, ""):
            pairs.append((key, str(kwargs[key])))
    pairs.extend((key, str(value)) for key, value in kwargs.items() if key not in params and value not in (None, ""))
    return "?" + urlencode(pairs) if pairs else "?"


@register.filter
def sub(value, other):
    return value - other


VERSION_INPUT = "portal/version_input.html"


@register.inclusion_tag(VERSION_INPUT)
def version_input(obj, of: str = "", posted: bool = True):
    """The version a form is drawn with (portal/versions.py), posted back so a stale or repeated submit is refused.
    Marked with the object it belongs to (`of`, else the object's model and id), so a part of the page redrawn by
    htmx can bring the page's other forms up to date. No object (a cart not made yet) is version 0.

    `posted=False` draws it without a name: a new version for the page's forms to take (static/js/portal.js), not a
    field of the form it is drawn in. The catalog's feedback lands inside the card's form: named, it would make a
    second submit of that form send the version the first one made, and add the offer twice."""
    if obj is None:
        return {"version": 0, "of": of, "posted": posted}
    return {"version": obj.version, "of": of or f"{obj._meta.label_lower}:{obj.pk}", "posted": posted}
