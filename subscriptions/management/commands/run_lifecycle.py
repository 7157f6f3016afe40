"""Runs the lifecycle engine (renewals, trial ends, expiry) once, or every minute with --loop, or starts it
as a periodic background task with --schedule (the django-tasks-db worker then runs it every minute)."""

import time
from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError
from django.db import close_old_connections
from django.utils import timezone

from subscriptions.lifecycle import LIFECYCLE_EVERY, run_lifecycle, schedule_lifecycle_tick


def parse_instant(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as error:
        raise CommandError(f"--now {value!r} is not an ISO 8601 instant such as 2026-12-02T00:00:00Z") from error
    # T5: an instant without an offset is read as UTC.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class Command(BaseCommand):
    help = "Moves subscriptions through time: renewal pending, renewals, expiry, trial ends (N1-N6, P2, TR1, S4)."

    def add_arguments(self, parser):
        parser.add_argument("--now", help="Replay this instant (ISO 8601, UTC) instead of the clock.")
        parser.add_argument("--loop", action="store_true", help="Run again every --interval seconds until stopped.")
        parser.add_argument("--interval", type=float, default=60.0, help="Seconds between runs with --loop (60).")
        parser.add_argument("--limit", type=int, default=None, help="Handle at most this many subscriptions a run.")
        parser.add_argument(
            "--first-run-after",
            type=float,
            default=0.0,
            metavar="SECONDS",
            help="With --loop, wait this long before the first run (the demo uses it so that its "
            "seeded renewal-pending and cycle-charge-pending subscriptions are seen pending, "
            "then completed).",
        )
        parser.add_argument(
            "--schedule",
            action="store_true",
            help="Start the engine as a periodic task run by the background worker (db_worker).",
        )

    def handle(
        self, *args, now=None, loop=False, interval=60.0, limit=None, schedule=False, first_run_after=0.0, **options
    ):
        if schedule:
            if now or loop:
                raise CommandError("--schedule starts the periodic task: it can't be combined with --now or --loop.")
            started = schedule_lifecycle_tick(run_after=timezone.now())
            every = int(LIFECYCLE_EVERY.total_seconds())
            self.stdout.write(
                f"Lifecycle task scheduled: the background worker runs it every {every} s."
                if started
                else "The lifecycle task is already scheduled: nothing to do."
            )
            return
        if now and loop:
            raise CommandError("--now replays one instant: it can't be combined with --loop.")
        if interval <= 0:
            raise CommandError("--interval must be positive.")
        if first_run_after < 0 or (first_run_after and not loop):
            raise CommandError("--first-run-after needs --loop and a number of seconds >= 0.")
        fixed = parse_instant(now) if now else None
        try:
            if first_run_after:
                self.stdout.write(f"Lifecycle engine: first run in {first_run_after:g} s, then every {interval:g} s.")
                time.sleep(first_run_after)
            while True:
                moment = fixed or timezone.now()
                report = run_lifecycle(moment, limit=limit)
                self.stdout.write(f"Lifecycle at {moment:%Y-%m-%d %H:%M:%S} UTC: " + ", ".join(report.lines()))
                if not loop:
                    return
                close_old_connections()
                time.sleep(interval)
        except KeyboardInterrupt:
            return
