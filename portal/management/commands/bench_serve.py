"""Requests per second through gunicorn (see `make bench-serve`), on the `seed_bench` data set.

Starts gunicorn (3 sync workers) on loopback against the database this command points at, signs in as the bench
user (a session made here, sent as its cookie), then for each page of `manage.py bench` runs 4 client threads for
a bounded time (--seconds) and counts the complete 200 responses. The floor page is measured before each page (the
same rounds, so a busy moment weighs on both). Target: the slowest page's requests/s at least a quarter of the
floor's. Then each worker's resident memory (RSS) after the catalog pages, and the export of the largest customer
downloaded through a worker. Figures in bench-serve.json (floor_rps, pages.<name>.rps, workers_rss_mib, export).
"""

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.test import Client
from django.test.utils import override_settings
from django.urls import reverse

from .bench import Command as PageBench
from .seed_bench import BENCH_USERNAME

WORKERS = 3
CLIENTS = 4
MIN_FLOOR_SHARE = 0.25
# gunicorn serves plain HTTP on loopback: no redirect to HTTPS, no HTTPS-only cookies (as `make demo`).
SERVE_ENV = {"DJANGO_DEBUG": "0", "DJANGO_SSL_REDIRECT": "0", "DJANGO_SECURE_COOKIES": "0", "DJANGO_HSTS_SECONDS": "0"}


class Command(BaseCommand):
    help = "Requests/s per page through gunicorn (3 workers, 4 concurrent clients) on the seed_bench data set."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8765)
        parser.add_argument("--seconds", type=float, default=3.0, help="Time each page is hammered for.")
        parser.add_argument("--output", default="bench-serve.json")

    def handle(self, *args, port, seconds, output, **options):
        user = get_user_model().objects.filter(username=BENCH_USERNAME).select_related("membership__partner").first()
        if user is None:
            raise CommandError("No bench user: run `manage.py seed_bench --scale 100k` first (or `make bench-serve`).")
        with override_settings(ALLOWED_HOSTS=["testserver"]):
            client = Client()
            client.force_login(user)  # a session row in the database the workers read
            cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
        call_command("collectstatic", interactive=False, verbosity=0)  # whitenoise's manifest, with debug off
        bench = PageBench()
        pages = bench.pages(user)
        with override_settings(ALLOWED_HOSTS=["testserver"]):
            pages.update(bench.sorted_pages(client, pages["subscriptions_all"]))  # the list by each sortable column
        env = {**os.environ, **SERVE_ENV}
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                settings.WSGI_APPLICATION.replace(".application", ":application"),
                "--workers",
                str(WORKERS),
                "--bind",
                f"127.0.0.1:{port}",
                "--log-level",
                "warning",
            ],
            env=env,
        )
        try:
            self.wait_up(port, cookie)
            for url in pages.values():  # warm-up: each worker's templates, catalog and connections
                for _ in range(WORKERS * 2):
                    self.fetch(port, url, cookie)
            results = self.measure(port, cookie, pages, seconds)
            rss = self.workers_rss(server.pid)
            export = self.export(port, cookie, user)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
        floor = results.pop("floor")
        slowest = min(results, key=results.get)
        ok = results[slowest] >= MIN_FLOOR_SHARE * floor
        self.stdout.write(
            f"gunicorn, {WORKERS} sync workers, {CLIENTS} clients, {seconds:.0f} s a page; floor "
            f"{floor:.1f} requests/s (measured before each page, median). Target: slowest page >= "
            f"{MIN_FLOOR_SHARE:.0%} of the floor's."
        )
        self.stdout.write(f"{'page':<46} {'req/s':>8} {'of floor':>9}")
        for name, rps in results.items():
            self.stdout.write(f"{name:<46} {rps:>8.1f} {rps / floor:>9.2f}")
        verdict = "PASS" if ok else "FAIL"
        self.stdout.write(
            f"Slowest: {slowest} {results[slowest]:.1f}/s = {results[slowest] / floor:.2f}x floor: {verdict}"
        )
        self.stdout.write(
            "Workers' RSS after every page (catalog included): " + ", ".join(f"{mib:.0f} MiB" for mib in rss)
        )
        self.stdout.write(
            f"Export through a worker: {export['rows']:,} rows, {export['bytes']:,} bytes in {export['ms']:.0f} ms"
        )
        data = {
            "floor_rps": floor,
            "pages": {name: {"rps": rps} for name, rps in results.items()},
            "slowest": slowest,
            "target_met": ok,
            "workers_rss_mib": rss,
            "export": export,
            "workers": WORKERS,
            "clients": CLIENTS,
            "seconds_per_page": seconds,
        }
        Path(output).write_text(json.dumps(data, indent=2) + "\n")
        self.stdout.write(f"Wrote {output}")

    @staticmethod
    def fetch(port: int, url: str, cookie: str) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            connection.request("GET", url, headers={"Cookie": cookie, "Host": "127.0.0.1"})
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def wait_up(self, port: int, cookie: str) -> None:
        for _ in range(120):
            try:
                self.fetch(port, reverse("portal:about"), cookie)
                return
            except OSError:
                time.sleep(0.5)
        raise CommandError("gunicorn did not answer within a minute.")

    def rate(self, port: int, cookie: str, url: str, seconds: float) -> float:
        """Complete 200 responses a second with CLIENTS threads requesting `url` for `seconds`."""
        done, errors = [0] * CLIENTS, []
        stop = time.perf_counter() + seconds

        def client(i):
            while time.perf_counter() < stop:
                status, _ = self.fetch(port, url, cookie)
                if status != 200:
                    errors.append(status)
                    return
                done[i] += 1

        started = time.perf_counter()
        threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise CommandError(f"GET {url} answered {errors[0]}, not 200.")
        return sum(done) / (time.perf_counter() - started)

    def measure(self, port: int, cookie: str, pages: dict, seconds: float) -> dict[str, float]:
        floors, results = [], {}
        for name, url in pages.items():
            if name == "floor":
                continue
            floors.append(self.rate(port, cookie, pages["floor"], seconds / 2))
            results[name] = round(self.rate(port, cookie, url, seconds), 1)
        floors.sort()
        return {"floor": round(floors[len(floors) // 2], 1), **results}

    @staticmethod
    def workers_rss(master: int) -> list[float]:
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        rss = []
        for pid in children:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss.append(round(int(line.split()[1]) / 1024, 1))
        return rss

    def export(self, port: int, cookie: str, user) -> dict:
        largest = PageBench.largest_customer(user.membership.partner)
        url = reverse("subscriptions:subscription-export", args=[largest.pk])
        self.fetch(port, url, cookie)  # warm-up
        started = time.perf_counter()
        status, body = self.fetch(port, url, cookie)
        elapsed = (time.perf_counter() - started) * 1000
        if status != 200:
            raise CommandError(f"The export answered {status}.")
        return {
            "customer": largest.company_name,
            "rows": body.count(b"\n") - 1,
            "bytes": len(body),
            "ms": round(elapsed, 1),
        }
