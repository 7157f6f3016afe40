"""Writes the audit trail (L1). Called by every service inside its own transaction."""

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from portal.errors import RuleViolation

from .models import AuditEntry
from .said import Joined, Said, Worded, label, listed, money, said

__all__ = [
    "Joined",
    "Said",
    "Worded",
    "changes_deleted",
    "entry",
    "label",
    "last_change",
    "listed",
    "money",
    "record",
    "records_language",
    "refusal",
    "said",
]

# A summary longer than its column is cut here, once, rather than by each service that writes one.
SUMMARY_LENGTH = AuditEntry._meta.get_field("summary").max_length


def records_language():
    """A context in which an audit summary is written: the portal's default language (English), whoever writes it
    and in whichever language their page is. The trail is a record, written also by the lifecycle engine (no request,
    no language) and sent by the API and the webhooks: one language for all of it. The pages translate its labels
    and values (`readable`) and say a summary from the message it keeps (`AuditEntry.summary_text`); its English
    sentence is rendered here by `entry()`."""
    return translation.override(settings.LANGUAGE_CODE)


def record(**fields) -> AuditEntry:
    """Writes the audit row `entry(**fields)` describes."""
    entry_ = entry(**fields)
    entry_.save(force_insert=True)
    return entry_


def entry(
    *,
    actor,
    at,
    customer,
    action: str,
    summary: Said | Joined | str,
    before=None,
    after=None,
    order=None,
    subscription=None,
    partner=None,
) -> AuditEntry:
    """The audit row record() writes, unsaved (for a caller that writes many at once: the lifecycle engine).

    `summary` is a message (`said(...)`): the row keeps it, to be said in each reader's language
    (`AuditEntry.summary_text`), and its English sentence, which the API and the webhooks send. A plain str is
    stored as the English sentence only (shown as is in every language): the product's services all pass messages
    (tests/subscriptions/test_audit_language.py checks it)."""
    partner = partner or customer.partner
    if isinstance(summary, Said | Joined | Worded):
        message = summary.as_json()
        with records_language():
            summary = str(summary)
    else:
        message = None
    return AuditEntry(
        actor=_named(actor, partner),
        at=at,
        partner=partner,
        customer=customer,
        order=order,
        subscription=subscription,
        action=action,
        summary=summary[:SUMMARY_LENGTH],
        summary_message=message,
        before=before or {},
        after=after or {},
    )


def changes_deleted(count: int) -> Said | None:
    """The end of a summary that says a change deleted what was scheduled for the renewal (R6); None with none."""
    return said(gettext_noop("; %(count)s scheduled change(s) deleted"), count=count) if count else None


def last_change(subscription) -> str:
    """What changed a subscription last, said the way its audit trail says it (in the active language): for a
    refused stale page (409)."""
    entry = AuditEntry.objects.filter(subscription=subscription).select_related("actor").order_by("-at", "-pk").first()
    if entry is None:
        return ""
    who = (entry.actor.get_full_name() or entry.actor.get_username()) if entry.actor else _("the system")
    return _("%(summary)s (%(who)s, %(when)s UTC)") % {
        "summary": entry.summary_text,
        "who": who,
        "when": f"{entry.at:%Y-%m-%d %H:%M}",
    }


def _named(actor, partner):
    """Who is named as having made the change in `partner`'s records: the person, when they are this partner's staff
    (or the platform's operator). A change one partner makes in another's records (a transfer requested, withdrawn,
    declined or completed, TF2-TF4) names no person there: who works for a partner is that partner's business, as
    its own audit trail is (issue 9, finding 4); the entry's summary names the partner that acted."""
    if actor is None or not actor.is_authenticated:
        return None
    membership = getattr(actor, "membership", None)  # the reverse one-to-one raises an AttributeError when missing
    if membership is not None and membership.partner_id != getattr(partner, "pk", partner):
        return None
    return actor


def refusal(check) -> Worded | None:
    """The sentence a rule's `check` refuses with, in each of the portal's languages, for a summary (a RuleViolation
    carries its sentence, not its message, so the check is asked again under each language: twice when it refuses,
    once when it passes, inside the caller's transaction, on the same rows); None when it passes."""
    texts = {}
    for code, _name in settings.LANGUAGES:
        with translation.override(code):
            try:
                check()
            except RuleViolation as violation:
                texts[code] = str(violation.message)
            else:
                return None
    return Worded(texts)
