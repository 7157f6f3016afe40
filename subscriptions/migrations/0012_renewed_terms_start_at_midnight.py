"""N2 (issue 9, finding 7): a renewed term starts at 00:00 UTC on the renewal day, not when the renewal's processing
completed, which the engine used to store as its term_start. N3's 7-day cancellation window still counts from the
completion, so the completion gets a field of its own (`renewal_completed_at`), and the terms renewed before this
migration are corrected: their term_start goes to 00:00 UTC of the renewal day and the instant it held moves to
renewal_completed_at.

A term came from a renewal when the renewal's traces, written in the same transaction as the term_start it set,
carry that very instant: the audit row of the renewal (or of a trial's conversion at its end), whose `after` holds
the term_start and whose `before` the term end it followed; the renewal billing line, created then, its period
starting on the renewal day; the renewal seat lot, added then. A term_start none of them carries (a purchase, an
upgrade to another term, a transfer, a renewal already at 00:00 UTC) is left alone, so running it again changes
nothing. Reversing it changes no data either (the old instants were the bug); the reversed AddField drops the
completion instants, which applying it again finds from the same traces.
"""

from datetime import date, datetime, time, timedelta, timezone

from django.db import migrations, models
from django.utils import timezone as django_timezone

RENEWAL_ACTIONS = ("subscription.renewed", "subscription.trial_converted")
BATCH = 1000


def _renewals(apps) -> dict:
    """{subscription id: {instant a renewal completed: its renewal day, or None when only a seat lot says it}}."""
    AuditEntry = apps.get_model("subscriptions", "AuditEntry")
    BillingLine = apps.get_model("subscriptions", "BillingLine")
    SeatLot = apps.get_model("subscriptions", "SeatLot")
    found: dict = {}

    def note(subscription_id, completed: datetime, day: date | None) -> None:
        days = found.setdefault(subscription_id, {})
        if days.get(completed) is None:
            days[completed] = day

    for subscription_id, before, after in (AuditEntry.objects.filter(action__in=RENEWAL_ACTIONS)
                                           .exclude(subscription=None)
                                           .values_list("subscription_id", "before", "after").iterator(BATCH)):
        started = (after or {}).get("term_start")
        if not started:
            continue  # a mid-term conversion's row on the trial itself: no term started there
        ended = (before or {}).get("term_end")
        note(subscription_id, datetime.fromisoformat(started),
             date.fromisoformat(ended) + timedelta(days=1) if ended else None)
    for subscription_id, created_at, period_start in (BillingLine.objects.filter(kind="renewal")
                                                      .values_list("subscription_id", "created_at", "period_start")
                                                      .iterator(BATCH)):
        note(subscription_id, created_at, period_start)
    for subscription_id, added_at in (SeatLot.objects.filter(source="renewal")
                                      .values_list("subscription_id", "added_at").iterator(BATCH)):
        note(subscription_id, added_at, None)
    return found


def _midnight(completed: datetime, day: date | None) -> datetime:
    """00:00 UTC of the renewal day (the day it completed when no trace says which day it renewed)."""
    return datetime.combine(day or completed.astimezone(timezone.utc).date(), time.min, tzinfo=timezone.utc)


def correct_renewed_term_starts(apps, schema_editor) -> None:
    Subscription = apps.get_model("subscriptions", "Subscription")
    AuditEntry = apps.get_model("subscriptions", "AuditEntry")
    renewals = _renewals(apps)
    ids = list(renewals)
    corrected_at = django_timezone.now()  # the audit rows' time: a migration is an edge, like a command
    for start in range(0, len(ids), BATCH):
        changed, entries = [], []
        for sub in (Subscription.objects.filter(pk__in=ids[start:start + BATCH]).select_related("customer")
                    .only("term_start", "renewal_completed_at", "customer__partner")):
            completed, traces = sub.term_start, renewals[sub.pk]
            if completed is None:
                continue
            if completed not in traces:
                # Corrected before, then this migration reversed (which drops renewal_completed_at) and applied
                # again: the completion is found again from the traces of the renewal that started the term.
                again = [c for c, day in traces.items() if c > completed and _midnight(c, day) == completed]
                if again and sub.renewal_completed_at is None:
                    sub.renewal_completed_at = max(again)
                    changed.append(sub)
                continue  # else its current term didn't start with a renewal after 00:00 UTC
            midnight = _midnight(completed, traces[completed])
            if midnight >= completed:
                continue  # already 00:00 UTC (processed at midnight); a renewal can't complete before its day
            sub.term_start = midnight
            if sub.renewal_completed_at is None:
                sub.renewal_completed_at = completed
            changed.append(sub)
            # L1: the correction is a change to the subscription, recorded like the others (by the system).
            entries.append(AuditEntry(
                at=corrected_at, actor=None, partner_id=sub.customer.partner_id, customer_id=sub.customer_id,
                subscription_id=sub.pk, action="subscription.term_start_corrected",
                summary=f"Term start corrected to {midnight:%Y-%m-%d %H:%M} UTC, the renewal day (N2); the renewal "
                        f"completed at {completed:%Y-%m-%d %H:%M} UTC (N3: the 7-day window counts from then)",
                before={"term_start": completed.isoformat()},
                after={"term_start": midnight.isoformat(), "renewal_completed_at": completed.isoformat()}))
        Subscription.objects.bulk_update(changed, ["term_start", "renewal_completed_at"])
        AuditEntry.objects.bulk_create(entries)


class Migration(migrations.Migration):

    dependencies = [
        ('subscriptions', '0011_versions'),
    ]

    operations = [
        migrations.AddField(
            model_name='subscription',
            name='renewal_completed_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(correct_renewed_term_starts, migrations.RunPython.noop),
    ]
