"""Exactly once for a person's change: every object a person changes carries a version.

Partner Center's answer to double submits and stale pages is an etag on every resource and `If-Match` on every
change. Here each subscription, cart, order and transfer request has a `version` column; every page draws its forms with
the version it showed, and every change locks the row, compares the version posted with the one stored and bumps
it in the same transaction. So of two identical submits (a double click, two tabs, back and resubmit, a retry after
a time-out) the first acts and the second finds a newer version and is refused with 409, changing nothing.
"""

from django.db import models
from django.utils.translation import gettext, gettext_lazy, pgettext_lazy

from .errors import RuleViolation

MAX_VERSION = 2**31 - 1  # a PositiveIntegerField on every backend

# The objects a refusal names (the callers' `noun`), each translated as a word: the sentences below take it as a
# named placeholder. A noun not listed here is shown as the caller wrote it.
NOUNS = {
    "page": pgettext_lazy("the object a stale change names", "page"),
    "form": pgettext_lazy("the object a stale change names", "form"),
    "cart": pgettext_lazy("the object a stale change names", "cart"),
    "subscription": pgettext_lazy("the object a stale change names", "subscription"),
    "transfer request": pgettext_lazy("the object a stale change names", "transfer request"),
}
UNMATCHED = gettext_lazy(
    "This %(noun)s couldn't be matched to the page it was sent from: reload the page and try again. Nothing was "
    "changed."
)
CHANGED = gettext_lazy(
    "This %(noun)s changed since you opened the page. Nothing was done: review it as it is now and try again."
)
CHANGED_BY = gettext_lazy(
    "This %(noun)s changed since you opened the page: %(change)s. Nothing was done: review it as it is now and try "
    "again."
)


def noun_text(noun: str) -> str:
    return str(NOUNS.get(noun, noun))


class StaleVersion(RuleViolation):
    """The page the change was made from is older than the object: the state moved on (HTTP 409)."""

    def __init__(self, message: str):
        super().__init__("version", message, conflict=True)


def posted_version(data) -> str:
    """The version a form posted, as text, for the service to check after its role check (403 before 409). A form
    that posted none gives '', refused: only the platform's own work (None) acts on the row as it is."""
    return data.get("version", "")


def parse_version(raw, *, noun: str = "page") -> int:
    """The version a form was drawn with. A form without one (or with a tampered one) can't be matched to what the
    person saw, so it is refused like a stale one: nothing is changed on a guess."""
    text = str(raw if raw is not None else "").strip()
    if text.isascii() and text.isdigit() and len(text) <= 10 and int(text) <= MAX_VERSION:
        return int(text)
    raise StaleVersion(UNMATCHED % {"noun": noun_text(noun)})


def lock_version(
    queryset: models.QuerySet, *, pk, version: int | str | None, noun: str, last_change=None, authorize=None
):
    """Locks the row by bumping its version, refuses a stale `version`, all in the caller's transaction; returns the
    locked object with its new version. `version` is the int a caller read, or the text a form posted
    (`posted_version`); None is for the platform's own work (the lifecycle engine, the operator's admin actions),
    which acts on the row as it is now. `last_change(obj)`, when given, says what changed it last (who, when), for
    the refusal. `authorize(obj)`, when given, raises for someone who may not act on the object at all: it runs
    before the version is compared, since the refusal of a stale page says who changed it last and what they did.

    Bumped at the lock (not only by `Subscription.save()`): some changes write only other rows (a scheduled change,
    a cart line), and they still make the page that showed the old state stale."""
    if isinstance(version, str):
        version = parse_version(version, noun=noun)  # before the lock: a tampered form waits for nothing
    model = queryset.model
    # The bump is the lock (an UPDATE locks the row on every backend), taken on the row alone: a locking read
    # joined to what the row points to would, on PostgreSQL, find nothing once a concurrent change committed a
    # new pointer (an upgrade's new SKU), as it re-checks the join against the rows it read before waiting.
    if not model._default_manager.filter(pk=pk).update(version=models.F("version") + 1):
        raise model.DoesNotExist(gettext("No %(noun)s %(pk)s.") % {"noun": noun_text(noun), "pk": pk})
    obj = queryset.get(pk=pk)  # the locked row, as now committed, with what it points to
    if authorize is not None:
        authorize(obj)
    # Bumped already: the page's version is current if it is one behind.
    check_version(obj, None if version is None else version + 1, noun=noun, last_change=last_change)
    return obj


def check_version(obj, version: int | str | None, *, noun: str, last_change=None) -> None:
    """Refuses (409) a change drawn from a version older (or newer) than the locked `obj`'s."""
    if isinstance(version, str):
        version = parse_version(version, noun=noun)
    if version is not None and version != obj.version:
        changed = last_change(obj) if last_change else ""
        if changed:
            raise StaleVersion(CHANGED_BY % {"noun": noun_text(noun), "change": changed})
        raise StaleVersion(CHANGED % {"noun": noun_text(noun)})


def bump_version(obj) -> None:
    """A new version of the locked `obj`, in the caller's transaction."""
    type(obj)._default_manager.filter(pk=obj.pk).update(version=models.F("version") + 1)
    obj.version += 1
