"""The lifecycle engine's bench (`manage.py bench_lifecycle`, run by `make bench`): its data really is due, the
engine renews every one of it exactly once, the checks catch a run that renewed nothing, the figures land in
the JSON file, and the SQL queries a renewal costs do not grow with the number of renewals."""

import json
from datetime import date, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog.models import Publisher
from portal.management.commands.bench_lifecycle import (
    NOW,
    PREFIX,
    bench_subscriptions,
    build_due_subscriptions,
    delete_bench_data,
    verify,
)
from portal.models import Partner
from subscriptions.lifecycle import due_subscription_ids, run_lifecycle
from subscriptions.models import BillingLine, ScheduledChange, Subscription


def test_the_bench_data_is_due_and_each_subscription_renews_exactly_once(db):
    # given the bench's 50 due subscriptions (and 5 that are not due yet)
    data = build_due_subscriptions(50, now=NOW, tag="t50")
    subs = {s.pk: s for s in Subscription.objects.filter(pk__in=data.due_ids).select_related("base_subscription")}
    assert set(due_subscription_ids(NOW)) == set(data.due_ids)
    assert len(data.not_due_ids) == 5
    assert {(s.term, s.billing_frequency) for s in subs.values()} == {
        ("P1Y", "monthly"),
        ("P1Y", "annual"),
        ("P1M", "monthly"),
    }
    assert {s.term_end for s in subs.values()} == {date(2026, 12, 1)}
    assert all(s.auto_renew and s.status == "active" and s.sku.is_license_based for s in subs.values())
    changed = {
        c.subscription_id: c.quantity
        for c in ScheduledChange.objects.filter(subscription__in=data.due_ids, kind="quantity")
    }
    assert (len(changed), data.scheduled_changes, data.addons) == (6, 7, 1)
    addon = next(s for s in subs.values() if s.base_subscription_id)
    assert addon.base_subscription.term == "P1M"

    # when the engine runs once
    report = run_lifecycle(NOW)

    # then every one was renewed once, with its billing line, lot and audit row, and nothing else was touched
    assert verify(data, now=NOW, reports=[report]) == {
        "renewed": 50,
        "failed": 0,
        "renewal_lines": 50,
        "audit_rows": 50,
        "renewal_lots": 50,
        "still_due": 0,
        "not_due_touched": 0,
    }
    after = {s.pk: s for s in Subscription.objects.filter(pk__in=data.due_ids)}
    assert all(after[pk].quantity == quantity for pk, quantity in changed.items())  # N4
    assert after[addon.base_subscription_id].term_end == date(2027, 1, 1)
    assert after[addon.pk].term_end == date(2027, 1, 1)  # A5: ends with its base, renewed just before it
    assert BillingLine.objects.filter(subscription__in=data.not_due_ids).exclude(kind="purchase").count() == 0
    # and a second run renews nothing more
    assert run_lifecycle(NOW + timedelta(minutes=1)).renewed == 0


def test_the_checks_fail_when_the_engine_renewed_nothing(db):
    # given bench data the engine has not run on
    data = build_due_subscriptions(10, now=NOW, tag="idle")

    # when the bench checks it, then it refuses to report a measurement
    with pytest.raises(CommandError, match="reported 0 renewed.*10 subscriptions are still due"):
        verify(data, now=NOW, reports=[run_lifecycle(NOW - timedelta(days=1))])
    assert BillingLine.objects.filter(subscription__in=data.due_ids, kind="renewal").count() == 0


def test_the_bench_data_is_deleted_afterwards(db):
    # given two runs' data
    build_due_subscriptions(12, now=NOW, tag="a")
    kept = build_due_subscriptions(8, now=NOW, tag="b")

    # when one run's data is deleted, then every other's
    delete_bench_data("a")
    assert set(bench_subscriptions().values_list("pk", flat=True)) == set(kept.due_ids + kept.not_due_ids)
    delete_bench_data()
    assert bench_subscriptions().count() == 0
    assert not Partner.objects.filter(partner_id__startswith=PREFIX).exists()
    assert not Publisher.objects.filter(name__startswith=PREFIX).exists()


def test_queries_per_renewal_do_not_grow_with_the_number_of_renewals(db):
    per_renewal = {}
    for n in (10, 40):
        # given n due subscriptions
        build_due_subscriptions(n, now=NOW, tag=f"q{n}")
        # when the engine renews them
        with CaptureQueriesContext(connection) as captured:
            report = run_lifecycle(NOW)
        assert report.renewed == n
        per_renewal[n] = len(captured) / n
        delete_bench_data()

    # then a renewal costs no more queries with 40 than with 10: the pending renewals of a chunk are written
    # together (the run's own few queries and a chunk's are shared), so less than one query a renewal at 40
    assert per_renewal[40] <= per_renewal[10], per_renewal
    assert per_renewal[40] < 1.0, per_renewal


def test_the_command_writes_its_figures_and_cleans_up(db, tmp_path, capsys):
    # given a figures file that already holds another database's figures
    output = tmp_path / "bench-lifecycle.json"
    output.write_text(json.dumps({"other": {"subscriptions": 1}}))

    # when the bench runs on 30 subscriptions
    call_command("bench_lifecycle", "-n", "30", "--output", str(output))

    # then it prints the time and the rate, and writes them under this database's vendor
    out = capsys.readouterr().out
    assert "One engine: 30 renewals in " in out and "/s" in out
    figures = json.loads(output.read_text())
    assert set(figures) == {"other", connection.vendor}
    mine = figures[connection.vendor]
    assert (mine["subscriptions"], mine["now"]) == (30, "2026-12-02T00:05:00+00:00")
    one = mine["one_engine"]
    assert (one["renewed"], one["renewal_lines"], one["audit_rows"], one["still_due"], one["failed"]) == (
        30,
        30,
        30,
        0,
        0,
    )
    # (the seconds are rounded to the millisecond and the rate to a tenth: on a run of a few tens of milliseconds
    # the rate may differ from 30 / seconds by what that rounding hides)
    assert one["seconds"] > 0
    assert 30 / (one["seconds"] + 0.0005) - 0.05 <= one["rate"] <= 30 / max(one["seconds"] - 0.0005, 1e-9) + 0.05
    assert 0 < mine["queries_per_renewal"] < 1  # a chunk's renewals share their queries
    if connection.vendor == "sqlite":
        assert mine["target_seconds"] == pytest.approx(0.06)
        assert mine["target_met"] == (one["seconds"] < 0.06)
    # and its data is gone
    assert bench_subscriptions().count() == 0


def test_two_engines_are_postgresql_only(db, tmp_path, capsys):
    if connection.vendor == "postgresql":
        pytest.skip("on PostgreSQL two engines do run: see the next test")
    output = tmp_path / "b.json"
    call_command("bench_lifecycle", "-n", "10", "--engines", "2", "--output", str(output))
    assert "Two engines at once: skipped, PostgreSQL only" in capsys.readouterr().out
    assert "two_engines" not in json.loads(output.read_text())["sqlite"]


@pytest.mark.django_db(transaction=True)
def test_two_engines_share_the_renewals_on_postgresql(tmp_path, capsys):
    if connection.vendor != "postgresql":
        pytest.skip("two engines at once need PostgreSQL (SKIP LOCKED)")
    output = tmp_path / "b.json"
    call_command("bench_lifecycle", "-n", "40", "--engines", "2", "--output", str(output))
    two = json.loads(output.read_text())["postgresql"]["two_engines"]
    # every subscription renewed exactly once between them (the command checks each one, or fails)
    assert (two["renewed"], two["renewal_lines"], two["audit_rows"], two["still_due"]) == (40, 40, 40, 0)
    assert sum(two["renewed_by_engine"]) == 40 and len(two["renewed_by_engine"]) == 2
    assert "Two engines: 40 renewals in " in capsys.readouterr().out
    assert bench_subscriptions().count() == 0
