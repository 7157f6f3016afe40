"""Runs the lifecycle engine (renewals, trial ends, expiry) once, or every minute with --loop."""

import time
from datetime import datetime, timezone as dt_timezone

from django.core.management.base import BaseCommand, CommandError
from django.db import close_old_connections
from django.utils import timezone

from subscriptions.lifecycle import run_lifecycle


def parse_instant(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as error:
        raise CommandError(f"--now {value!r} is not an ISO 8601 instant such as 2026-12-02T00:00:00Z") from error
    # T5: an instant without an offset is read as UTC.
    return moment.replace(tzinfo=dt_timezone.utc) if moment.tzinfo is None else moment.astimezone(dt_timezone.utc)


class Command(BaseCommand):
    help = "Moves subscriptions through time: renewal pending, renewals, expiry, trial ends (N1-N6, P2, TR1, S4)."

    def add_arguments(self, parser):
        parser.add_argument("--now", help="Replay this instant (ISO 8601, UTC) instead of the clock.")
        parser.add_argument("--loop", action="store_true", help="Run again every --interval seconds until stopped.")
        parser.add_argument("--interval", type=float, default=60.0, help="Seconds between runs with --loop (60).")
        parser.add_argument("--limit", type=int, default=None, help="Handle at most this many subscriptions a run.")

    def handle(self, *args, now=None, loop=False, interval=60.0, limit=None, **options):
        if now and loop:
            raise CommandError("--now replays one instant: it can't be combined with --loop.")
        if interval <= 0:
            raise CommandError("--interval must be positive.")
        fixed = parse_instant(now) if now else None
        try:
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
