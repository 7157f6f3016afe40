"""A sentence kept as its message and its values, said in the language of whoever reads it (issue 12).

The audit trail is written once and read by everyone: the lifecycle engine writes with no request and no language,
the API and the webhooks send it in English, a partner's staff read it in English or 繁體中文. So a summary is kept
twice: the English sentence (`AuditEntry.summary`, what the API sends) and the message it was said from
(`AuditEntry.summary_message`): the msgid, marked for translation where it is written, and its values, which are
numbers, machine-neutral text (names, 2026-12-07, "12.34 USD") or messages themselves ("charge", "refund", a
scheduled change, a list of them). The page translates the message when it shows it, as it would a label.

    said(gettext_noop("Quantity %(old)s → %(new)s"), old=5, new=7)
    said(gettext_noop("Scheduled for the renewal: %(changes)s"), changes=listed([...])) + said(gettext_noop(". ..."))
    Said.ngettext("%(count)s license", "%(count)s licenses", "count", count=3)
    Said.pgettext("billed", "monthly")

`Said.ngettext` and `Said.pgettext` are named as gettext's functions so that makemessages (xgettext, which knows a
call by its function's name) collects their msgids where they are written, as `gettext_noop` marks the others.
No ORM, no models: the models' own sentences (a scheduled change's) are built from it too.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from django.conf import settings
from django.utils import translation
from django.utils.functional import Promise
from django.utils.translation import gettext, ngettext, npgettext, pgettext


@dataclass(frozen=True)
class Said:
    """A message and its values; `str()` says it in the active language."""

    message: str
    values: Mapping[str, object] = field(default_factory=dict)
    plural: str = ""  # the plural msgid, when `count` names the value whose number picks the form
    count: str = ""
    context: str = ""

    def __post_init__(self):
        object.__setattr__(self, "values", {name: _value(value) for name, value in self.values.items()})

    @classmethod
    def ngettext(cls, singular: str, plural: str, number: str, /, **values) -> "Said":
        """A message with plural forms, picked by the value named `number` (as ngettext_lazy's `number="count"`)."""
        if number not in values:
            raise TypeError(f"No value named {number!r} to pick the plural form of {singular!r}")
        return cls(singular, values, plural=plural, count=number)

    @classmethod
    def pgettext(cls, context: str, message: str, /, **values) -> "Said":
        return cls(message, values, context=context)

    def __str__(self) -> str:
        values = {
            name: str(value) if isinstance(value, Said | Joined | Worded) else value
            for name, value in self.values.items()
        }
        translated = self._translated()
        try:
            return translated % values
        except (KeyError, TypeError, ValueError):
            # A translation whose placeholders do not match its msgid's: the message as it was written (English),
            # rather than an error page. One that does not format either raises: AuditEntry shows its stored summary.
            written = self.plural if self.plural and int(self.values[self.count]) != 1 else self.message
            return written % values

    def _translated(self) -> str:
        if self.plural:
            number = int(self.values[self.count])
            if self.context:
                return npgettext(self.context, self.message, self.plural, number)
            return ngettext(self.message, self.plural, number)
        if self.context:
            return pgettext(self.context, self.message)
        return gettext(self.message)

    def __add__(self, other) -> "Joined":
        return Joined((self,)) + other

    def as_json(self) -> dict:
        stored: dict = {"m": self.message}
        if self.values:
            stored["v"] = {name: _stored(value) for name, value in self.values.items()}
        if self.plural:
            stored["p"], stored["n"] = self.plural, self.count
        if self.context:
            stored["c"] = self.context
        return stored


@dataclass(frozen=True)
class Joined:
    """Messages said one after the other ("Quantity 5 → 7 (charge 12.34 USD)" then "; 2 scheduled renewal changes
    deleted"), or listed with the language's separator (", " in English, "、" in Chinese) when `listed`."""

    parts: tuple
    listed: bool = False

    def __post_init__(self):
        object.__setattr__(self, "parts", tuple(_value(part) for part in self.parts))

    def __str__(self) -> str:
        separator = pgettext("list separator", ", ") if self.listed else ""
        return separator.join(str(part) for part in self.parts)

    def __add__(self, other) -> "Joined":
        if other is None or other == "":
            return self
        if isinstance(other, Joined) and not other.listed:
            addition = other.parts
        else:
            addition = (other,)
        if self.listed:
            return Joined((self, *addition))
        return Joined((*self.parts, *addition))

    def __bool__(self) -> bool:
        return bool(self.parts)

    def as_json(self) -> dict:
        return {"list" if self.listed else "seq": [_stored(part) for part in self.parts]}


@dataclass(frozen=True)
class Worded:
    """A sentence that exists only as text, said in each of the portal's languages when it was written: a rule's
    refusal (a RuleViolation carries its sentence, not its message), asked for once in each language
    (`audit.refusal`). `str()` says the active language's, else the portal's default language's."""

    texts: Mapping[str, str]

    def __post_init__(self):
        if not self.texts or not all(isinstance(k, str) and isinstance(v, str) for k, v in self.texts.items()):
            raise TypeError(f"A sentence in each language is text by language code, not {self.texts!r}")

    def __str__(self) -> str:
        language = translation.get_language() or settings.LANGUAGE_CODE
        return self.texts.get(language) or self.texts.get(settings.LANGUAGE_CODE) or next(iter(self.texts.values()))

    def as_json(self) -> dict:
        return {"each": dict(self.texts)}


def said(message: str, /, **values) -> Said:
    """`message` (marked with gettext_noop where it is written) with its `values`."""
    return Said(message, values)


def listed(items) -> Joined:
    """Messages (or names) listed in one sentence, as checks.listed lists texts."""
    return Joined(tuple(items), listed=True)


def label(lazy) -> Said | str:
    """A choice's label (`Term.P1M.label`, a gettext_lazy without a context) as a message: its msgid, which the
    label says when no language is active. A plain str (a name no catalog has) is kept as it is."""
    if isinstance(lazy, str):
        return lazy
    with translation.override(None):
        return Said(str(lazy))


def money(amount: Decimal, currency: str) -> str:
    """An amount as the trail says it in every language: "12.34 USD"."""
    return f"{amount} {currency}"


def from_json(stored) -> Said | Joined | Worded:
    """The message `as_json()` stored. Raises ValueError (or KeyError, TypeError) for what it did not store."""
    if not isinstance(stored, dict):
        raise ValueError(f"Not a stored message: {stored!r}")
    if "each" in stored:
        if not isinstance(stored["each"], dict):
            raise ValueError(f"Not a stored message: {stored!r}")
        return Worded(stored["each"])
    if "seq" in stored or "list" in stored:
        listed_ = "list" in stored
        parts = stored["list" if listed_ else "seq"]
        if not isinstance(parts, list):
            raise ValueError(f"Not a stored message: {stored!r}")
        return Joined(tuple(_read(part) for part in parts), listed=listed_)
    if not isinstance(stored["m"], str):
        raise ValueError(f"Not a stored message: {stored!r}")
    values = {name: _read(value) for name, value in stored.get("v", {}).items()}
    message = Said(
        stored["m"], values, plural=stored.get("p", ""), count=stored.get("n", ""), context=stored.get("c", "")
    )
    if message.plural and message.count not in values:
        raise ValueError(f"No value named {message.count!r} to pick the plural form of {message.message!r}")
    return message


def _read(stored) -> Said | Joined | Worded | str | int:
    """A stored value: a number, text, or a message."""
    if isinstance(stored, str | int) and not isinstance(stored, bool):
        return stored
    return from_json(stored)


def _value(value):
    """A value as a message keeps it: a number, text, or a message. A date is said as the trail says dates
    (2026-12-07, UTC); an amount as its digits. A lazy translation cannot be kept (its msgid is not public): say
    it with `Said` instead."""
    if isinstance(value, bool) or value is None:
        raise TypeError(f"A message value is a number, text or a message, not {value!r}")
    if isinstance(value, Said | Joined | Worded | str | int):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date) and not isinstance(value, datetime):
        return f"{value:%Y-%m-%d}"
    if isinstance(value, Promise):
        raise TypeError(f"A lazy translation cannot be stored as a message value ({value}): pass a Said")
    raise TypeError(f"A message value is a number, text or a message, not {value!r}")


def _stored(value):
    return value.as_json() if isinstance(value, Said | Joined | Worded) else value
