"""The form fields the portal's forms share, with messages a partner understands, and the check of a `next` URL.

Each field parses one shape of input (a licence count, an id, a date, a line of text, the page's version) and refuses
what is not that shape with a sentence; whether the value is allowed (an offer's minimum, a listed target) is the
service's rule, not the field's.
"""

from datetime import date

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.formats import number_format
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from portal.errors import RuleViolation

MAX_QUANTITY_INPUT = 1_000_000
# Past any 64-bit count; and int() of thousands of digits is slow or refused (a ValueError past 4,300).
MAX_DIGITS = 18
NOT_A_QUANTITY = _("Enter the number of licenses as a whole number of at least 1.")


def whole_number(raw) -> int | None:
    """ASCII digits (leading zeros allowed) as an int; None for anything else, or for more than MAX_DIGITS of them.
    Not int(): it reads "１２", "٣", " -1", "1_000" too."""
    text = str(raw if raw is not None else "").strip()
    if not (text.isascii() and text.isdigit()) or len(text.lstrip("0")) > MAX_DIGITS:
        return None
    return int(text)


class QuantityField(forms.Field):
    """A number of licenses: a whole number from 1 to 1,000,000. An offer's own minimum and maximum (K8) are the
    service's to check; this bound only keeps what no offer sells out of the arithmetic."""

    widget = forms.NumberInput
    default_error_messages = {
        "required": NOT_A_QUANTITY,
        "invalid": NOT_A_QUANTITY,
        "too_long": _("That is more licenses than any offer allows."),
        "too_many": _("%(value)s licenses is more than any offer allows."),
    }

    def to_python(self, value):
        text = str(value if value is not None else "").strip()
        if text in self.empty_values:
            return None
        if not (text.isascii() and text.isdigit()):
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        if len(text.lstrip("0")) > MAX_DIGITS:
            raise ValidationError(self.error_messages["too_long"], code="too_long")
        number = int(text)
        if number < 1:
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        if number > MAX_QUANTITY_INPUT:
            raise ValidationError(
                self.error_messages["too_many"],
                code="too_many",
                params={"value": number_format(number, force_grouping=True)},
            )
        return number

    def widget_attrs(self, widget):
        return {**super().widget_attrs(widget), "min": "1"}


class IdField(forms.Field):
    """A row's whole-number id (an offer, a scheduled change) as a form sends it; whether it names one the person may
    pick is the service's answer."""

    widget = forms.HiddenInput
    default_error_messages = {"invalid": _("Choose one of the listed options.")}

    def to_python(self, value):
        if value in self.empty_values:
            return None
        number = whole_number(value)
        if number is None:
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        return number


class TextField(forms.CharField):
    """A line of text, stripped. A NUL is refused with `what` in the sentence: no column can store one, and
    PostgreSQL refuses it even in a query (Django's CharField refuses it too; this says which field)."""

    def __init__(self, *, what: str, **kwargs):
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)
        # Lazy: a form's fields are made at import, before any language is active.
        self.error_messages["null_characters_not_allowed"] = format_lazy(
            _("{what} contains a character that is not allowed (NUL)."), what=what
        )


class IsoDateField(forms.Field):
    """A date as YYYY-MM-DD (what a date <select> or <input type="date"> sends); the refusal quotes what was sent."""

    default_error_messages = {"invalid": _("%(value)s is not a date (YYYY-MM-DD).")}

    def to_python(self, value):
        text = str(value if value is not None else "").strip()
        if not text:
            return None
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise ValidationError(
                self.error_messages["invalid"], code="invalid", params={"value": repr(text[:20])}
            ) from None


class VersionField(forms.Field):
    """The version the page was drawn with (portal/versions.py), handed to the service as posted. It never refuses:
    the service compares it after its role check (403 before 409) and answers a missing, tampered or stale one with
    409, changing nothing; a 422 here would hide that the page is out of date."""

    widget = forms.HiddenInput

    def __init__(self, **kwargs):
        super().__init__(required=False, **kwargs)

    def to_python(self, value):
        return "" if value is None else str(value)

    def run_validators(self, value):
        pass  # the service's to judge, whatever it is


class NextUrlField(forms.Field):
    """Where to go after the form: a path of this site (`is_safe_next`), else None; a refused `next` is dropped, not
    an error, so it can never fail a change already made."""

    widget = forms.HiddenInput

    def __init__(self, **kwargs):
        super().__init__(required=False, **kwargs)

    def to_python(self, value):
        return value if isinstance(value, str) and value else None


def refuse(form: forms.Form, violation: RuleViolation) -> None:
    """Puts a service's refusal on the form: next to its field when the service named one the form has."""
    form.add_error(violation.field if violation.field in form.fields else None, violation.message)


def first_error(form: forms.Form) -> str:
    """The sentence for the page's error bar: the form's first refusal (each also shows next to its field)."""
    for errors in form.errors.values():
        return errors[0]
    return ""


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


class LanguageForm(forms.Form):
    """The user menu's and the sign-in page's choice of language: a code of settings.LANGUAGES, or blank to follow
    the browser again. Anything else is refused (the view answers 400 and saves nothing)."""

    # Each language is named in its own words (settings.LANGUAGES, not translated); blank follows the browser.
    language = forms.ChoiceField(
        label=_("Language"),
        choices=[("", _("Use the browser's language")), *settings.LANGUAGES],
        required=False,
    )
