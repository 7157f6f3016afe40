"""The data migration that puts the terms renewed before issue 9 at 00:00 UTC on their renewal day (N2), keeping
the completion instant their 7-day window counts from (N3). pytest-django's migrator isn't installed: the
migration's function is run on rows written the way the old engine wrote them, with the app registry."""

import importlib
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.apps import apps
from django.db import migrations

from subscriptions import audit, checks
from subscriptions.dates import term_end_for
from subscriptions.models import AuditEntry, BillingLine, SeatLot, Subscription
from subscriptions.states import Status
from tests import factories

UTC = UTC
MIGRATED_AT = datetime(2026, 12, 10, 9, 0, tzinfo=UTC)

migration = importlib.import_module("subscriptions.migrations.0012_renewed_terms_start_at_midnight")


def migrate():
    with time_machine.travel(MIGRATED_AT, tick=False):
        migration.correct_renewed_term_starts(apps, None)


@pytest.fixture
def e3(db):
    return factories.SkuFactory(name="Microsoft 365 E3", availabilities=[("P1Y", "monthly", "10.00")])


def annual(sku, *, ended: date, **extra):
    """A P1Y subscription whose previous term ended (inclusive) on `ended`."""
    started = datetime.combine(ended + timedelta(days=1) - timedelta(days=365), datetime.min.time(), tzinfo=UTC)
    return factories.SubscriptionFactory(
        sku=sku,
        availability=factories.availability(sku),
        quantity=10,
        term="P1Y",
        billing_frequency="monthly",
        unit_price=Decimal("10.00"),
        term_start=started,
        term_end=ended,
        created_at=started,
        **extra,
    )


def renewed_the_old_way(sub, *, completed: datetime, traces=("audit", "line", "lot"), action="subscription.renewed"):
    """What the engine wrote before issue 9 when this renewal completed at `completed`: the term starting then, in
    the same transaction as the renewal's audit row, billing line and seat lot (each written only if in `traces`)."""
    ended = sub.term_end
    renewal_day = ended + timedelta(days=1)
    before = {"status": "active", "term_start": sub.term_start.isoformat(), "term_end": ended.isoformat()}
    Subscription.objects.filter(pk=sub.pk).update(term_start=completed, term_end=term_end_for(renewal_day, 12))
    if "audit" in traces:
        audit.record(
            actor=None,
            at=completed,
            customer=sub.customer,
            subscription=sub,
            action=action,
            summary=f"Renewed from {renewal_day:%Y-%m-%d}",
            before=before,
            after={
                "status": "active",
                "term_start": completed.isoformat(),
                "term_end": term_end_for(renewal_day, 12).isoformat(),
            },
        )
    if "line" in traces:
        factories.BillingLineFactory(
            subscription=sub,
            kind=BillingLine.Kind.RENEWAL,
            period_start=renewal_day,
            period_end=date(2027, 1, 1),
            created_at=completed,
        )
    if "lot" in traces:
        SeatLot.objects.create(
            subscription=sub,
            source=SeatLot.Source.RENEWAL,
            quantity=10,
            added_at=completed,
            window_ends_at=completed + timedelta(hours=168),
        )
    return Subscription.objects.select_related("sku__product__publisher").get(pk=sub.pk)


def starts(*subs):
    return [Subscription.objects.filter(pk=s.pk).values_list("term_start", "renewal_completed_at").get() for s in subs]


@pytest.mark.rule("N2")
@pytest.mark.rule("N3")
def test_n2_terms_renewed_after_00_00_utc_start_at_00_00_utc_of_their_renewal_day(e3):
    # given terms renewed the old way, their term_start the instant processing completed, each found by its traces
    usage_sku = factories.SkuFactory(usage=True, name="Azure plan", availabilities=[("P1Y", "monthly", "0.00")])
    on_the_day = renewed_the_old_way(
        annual(e3, ended=date(2026, 12, 1)), completed=datetime(2026, 12, 2, 18, 31, tzinfo=UTC)
    )
    a_day_late = renewed_the_old_way(
        annual(e3, ended=date(2026, 12, 1)), completed=datetime(2026, 12, 3, 5, 0, tzinfo=UTC), traces=("audit", "line")
    )
    usage = renewed_the_old_way(
        annual(usage_sku, ended=date(2026, 12, 1)),
        completed=datetime(2026, 12, 2, 9, 40, tzinfo=UTC),
        traces=("audit",),
    )
    # (a trial converted at its end is the paid offer by then)
    converted = renewed_the_old_way(
        annual(e3, ended=date(2026, 11, 30)),
        action="subscription.trial_converted",
        completed=datetime(2026, 12, 1, 7, 15, tzinfo=UTC),
    )
    lot_only = renewed_the_old_way(
        annual(e3, ended=date(2026, 12, 1)), completed=datetime(2026, 12, 2, 11, 0, tzinfo=UTC), traces=("lot",)
    )
    window_before = checks.cancellation_window_ends(on_the_day)

    # when the migration runs
    migrate()

    # then each term starts at 00:00 UTC on its renewal day (the day after the term it followed, from the audit row
    # or the billing line's period; else the day it completed), and keeps when its renewal completed
    assert starts(on_the_day, a_day_late, usage, converted, lot_only) == [
        (datetime(2026, 12, 2, tzinfo=UTC), datetime(2026, 12, 2, 18, 31, tzinfo=UTC)),
        (datetime(2026, 12, 2, tzinfo=UTC), datetime(2026, 12, 3, 5, 0, tzinfo=UTC)),
        (datetime(2026, 12, 2, tzinfo=UTC), datetime(2026, 12, 2, 9, 40, tzinfo=UTC)),
        (datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 1, 7, 15, tzinfo=UTC)),
        (datetime(2026, 12, 2, tzinfo=UTC), datetime(2026, 12, 2, 11, 0, tzinfo=UTC)),
    ]
    # and the 7-day cancellation window still closes 168 hours after the completion (N3), not earlier
    migrated = Subscription.objects.select_related("sku__product__publisher").get(pk=on_the_day.pk)
    assert checks.cancellation_window_ends(migrated) == window_before == datetime(2026, 12, 9, 18, 31, tzinfo=UTC)
    # and each correction is on the subscription's audit trail, by the system (L1)
    entry = AuditEntry.objects.get(subscription=on_the_day, action="subscription.term_start_corrected")
    assert (entry.actor, entry.at, entry.partner, entry.customer, entry.summary, entry.before, entry.after) == (
        None,
        MIGRATED_AT,
        on_the_day.customer.partner,
        on_the_day.customer,
        "Term start corrected to 2026-12-02 00:00 UTC, the renewal day (N2); the renewal completed at 2026-12-02 "
        "18:31 UTC (N3: the 7-day window counts from then)",
        {"term_start": "2026-12-02T18:31:00+00:00"},
        {"term_start": "2026-12-02T00:00:00+00:00", "renewal_completed_at": "2026-12-02T18:31:00+00:00"},
    )
    assert AuditEntry.objects.filter(action="subscription.term_start_corrected").count() == 5


@pytest.mark.rule("N2")
def test_n2_terms_that_did_not_start_with_a_renewal_after_00_00_utc_are_left_alone(e3):
    # given a purchase at 09:30 UTC, a renewal at exactly 00:00 UTC, a renewed term since upgraded to another term
    # (its term_start the upgrade's), and a trial converted mid-term (its audit row records no term start)
    purchased = factories.SubscriptionFactory(sku=e3, term_start=datetime(2026, 11, 20, 9, 30, tzinfo=UTC))
    at_midnight = renewed_the_old_way(annual(e3, ended=date(2026, 12, 1)), completed=datetime(2026, 12, 2, tzinfo=UTC))
    upgraded = renewed_the_old_way(
        annual(e3, ended=date(2026, 12, 1)), completed=datetime(2026, 12, 2, 18, 31, tzinfo=UTC)
    )
    Subscription.objects.filter(pk=upgraded.pk).update(
        term_start=datetime(2026, 12, 5, 10, 0, tzinfo=UTC), upgraded_at=datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
    )
    trial = factories.SubscriptionFactory(
        sku=e3, status=Status.EXPIRED, trial=True, term_start=datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
    )
    audit.record(
        actor=None,
        at=datetime(2026, 11, 10, 10, 0, tzinfo=UTC),
        customer=trial.customer,
        subscription=trial,
        action="subscription.trial_converted",
        summary="Trial converted now",
        before={"status": "active", "is_trial": True},
        after={"status": "expired", "converted_into": "x"},
    )
    before = starts(purchased, at_midnight, upgraded, trial)
    audit_rows = AuditEntry.objects.count()

    # when the migration runs
    migrate()

    # then nothing changed
    assert starts(purchased, at_midnight, upgraded, trial) == before
    assert AuditEntry.objects.count() == audit_rows


@pytest.mark.rule("N2")
def test_n2_the_migration_run_again_changes_nothing(e3):
    # given a term renewed at 18:31 UTC the old way, migrated once
    sub = renewed_the_old_way(annual(e3, ended=date(2026, 12, 1)), completed=datetime(2026, 12, 2, 18, 31, tzinfo=UTC))
    migrate()
    once = starts(sub)
    audit_rows = AuditEntry.objects.count()
    # when it runs again
    migrate()
    # then nothing changes, and no second correction is recorded
    assert starts(sub) == once == [(datetime(2026, 12, 2, tzinfo=UTC), datetime(2026, 12, 2, 18, 31, tzinfo=UTC))]
    assert AuditEntry.objects.count() == audit_rows


@pytest.mark.rule("N2")
def test_n2_the_migration_reverses_as_a_no_op(e3):
    # given a migrated term
    sub = renewed_the_old_way(annual(e3, ended=date(2026, 12, 1)), completed=datetime(2026, 12, 2, 18, 31, tzinfo=UTC))
    migrate()
    after = starts(sub)
    # when the migration is reversed, its data step does nothing (the old instants were the bug)
    [operation] = [op for op in migration.Migration.operations if isinstance(op, migrations.RunPython)]
    assert operation.reversible
    operation.reverse_code(apps, None)
    assert starts(sub) == after
    # and applied again after the reversed AddField dropped the completions, it finds them again, correcting nothing
    Subscription.objects.filter(pk=sub.pk).update(renewal_completed_at=None)
    audit_rows = AuditEntry.objects.count()
    migrate()
    assert starts(sub) == after == [(datetime(2026, 12, 2, tzinfo=UTC), datetime(2026, 12, 2, 18, 31, tzinfo=UTC))]
    assert AuditEntry.objects.count() == audit_rows
