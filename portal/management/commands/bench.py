"""Page times and SQL query counts on the large data set of `seed_bench` (see `make bench`).

Each page is requested in-process through django.test.Client, signed in as the bench user:
2 warm-up requests, then N timed ones; the median is compared with the floor (the About
page: the base layout and no data of its own). One more request runs under
CaptureQueriesContext to count its SQL queries.

Targets, per page: median < 30 ms, median <= 3x the floor's, <= 12 SQL queries. A page that
misses one is printed with FAIL; the command still exits 0 (it measures, it does not gate).
"""

import json
import os
import statistics
import time
import warnings
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings
from django.urls import reverse

from catalog.models import Order
from portal.models import Customer

from .seed_bench import BENCH_USERNAME

MAX_MS = 30.0
MAX_FLOOR_RATIO = 3.0
MAX_QUERIES = 12
SEARCH_WORD = "Backup"  # in the names of the ISV "Cloud Backup" products' offers


class Command(BaseCommand):
    help = "Time the main pages and count their SQL queries on the `seed_bench` data set."

    def add_arguments(self, parser):
        parser.add_argument("--output", default="bench-results.json", help="Where to write the JSON results.")
        parser.add_argument("--requests", type=int, default=20, help="Timed requests per page (after 2 warm-ups).")
        parser.add_argument("--show-queries", action="store_true", help="Print the SQL of every failing page.")

    def handle(self, *args, output, requests, show_queries, **options):
        if requests < 1:
            raise CommandError("--requests must be at least 1.")
        user = get_user_model().objects.filter(username=BENCH_USERNAME).select_related("membership__partner").first()
        if user is None:
            raise CommandError("No bench user: run `manage.py seed_bench` first (or `make bench`).")
        pages = self.pages(user)

        # DJANGO_DEBUG=0 selects whitenoise's manifest storage, which needs collectstatic; the plain storage
        # makes {% static %} work without it. ALLOWED_HOSTS must accept the test client's host.
        storages = {**settings.STORAGES,
                    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
        # WhiteNoise warns that STATIC_ROOT does not exist (no collectstatic): expected here, and not a page's cost.
        warnings.filterwarnings("ignore", message="No directory at", category=UserWarning)
        with override_settings(ALLOWED_HOSTS=["testserver"], STORAGES=storages):
            client = Client(raise_request_exception=True)
            client.force_login(user)
            results = {name: self.measure(client, name, url, requests) for name, url in pages.items()}

        floor_ms = results["floor"]["median_ms"]
        failures = self.report(results, floor_ms, requests)
        if show_queries:
            for name in failures:
                self.stdout.write(f"\n-- {name}: {results[name]['queries']} queries")
                for i, sql in enumerate(results[name]["sql"], 1):
                    self.stdout.write(f"{i:3d}. {sql}")

        data = {"floor_ms": floor_ms,
                "pages": {name: {"median_ms": r["median_ms"], "queries": r["queries"]} for name, r in results.items()}}
        Path(output).write_text(json.dumps(data, indent=2) + "\n")
        self.stdout.write(f"Wrote {output}")

    def pages(self, user) -> dict[str, str]:
        """The pages to measure, by name: the bench partner's first customer (by name) and its newest completed order."""
        customer = Customer.objects.filter(partner=user.membership.partner).order_by("company_name").first()
        order = (Order.objects.filter(customer=customer, status=Order.Status.COMPLETED)
                 .order_by("-created_at", "-pk").first())
        if customer is None or order is None:
            raise CommandError("The bench data set is incomplete: run `make bench` to recreate it.")
        catalog = reverse("catalog:offer-list", args=[customer.pk])
        pages = {
            "floor": reverse("portal:about"),
            "customer_list": reverse("portal:customer-list"),
            "catalog": catalog,
        }
        for query in ["publisher=microsoft", "publisher=partner", "billing_type=license", "billing_type=usage",
                      "category=enterprise", "category=small_business", "category=trial", f"q={SEARCH_WORD}"]:
            pages[f"catalog?{query}"] = f"{catalog}?{query}"
        pages["cart_review"] = reverse("catalog:cart-detail", args=[customer.pk])
        pages["order_history"] = reverse("catalog:order-list", args=[customer.pk])
        pages["order_detail"] = reverse("catalog:order-detail", args=[customer.pk, order.pk])
        return pages

    def measure(self, client: Client, name: str, url: str, requests: int) -> dict:
        for _ in range(2):  # warm-up: template loading, URL resolver, SQLite page cache
            self.get(client, name, url)
        timings = []
        for _ in range(requests):
            started = time.perf_counter()
            self.get(client, name, url)
            timings.append((time.perf_counter() - started) * 1000)
        # A separate, untimed request counts the queries: capturing them costs time of its own.
        with CaptureQueriesContext(connection) as captured:
            self.get(client, name, url)
        return {"url": url, "median_ms": round(statistics.median(timings), 2), "queries": len(captured),
                "sql": [q["sql"] for q in captured.captured_queries]}

    def get(self, client: Client, name: str, url: str):
        response = client.get(url)
        if response.status_code != 200:
            raise CommandError(f"{name}: GET {url} answered {response.status_code}, not 200.")
        return response

    def report(self, results: dict, floor_ms: float, requests: int) -> list[str]:
        """Prints the table and returns the names of the pages that miss a target."""
        self.stdout.write(f"Median of {requests} requests per page after 2 warm-ups; targets: < {MAX_MS:.0f} ms, "
                          f"<= {MAX_FLOOR_RATIO:.0f}x floor ({floor_ms:.2f} ms), <= {MAX_QUERIES} queries.")
        # Times are wall-clock: other processes on the machine inflate them, so say how busy it was.
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
        self.stdout.write(f"Load average (1, 5, 15 min) at the end of the run: {load} on {os.cpu_count()} CPUs.")
        header = f"{'page':<30} {'median ms':>10} {'queries':>8} {'x floor':>8}  result"
        self.stdout.write(header)
        self.stdout.write("-" * len(header))
        failures = []
        for name, r in results.items():
            ratio = r["median_ms"] / floor_ms if floor_ms else float("inf")
            misses = []
            if r["median_ms"] >= MAX_MS:
                misses.append(f"{r['median_ms']:.1f} ms >= {MAX_MS:.0f} ms")
            if ratio > MAX_FLOOR_RATIO:
                misses.append(f"{ratio:.1f}x floor > {MAX_FLOOR_RATIO:.0f}x")
            if r["queries"] > MAX_QUERIES:
                misses.append(f"{r['queries']} queries > {MAX_QUERIES}")
            verdict = "PASS" if not misses else "FAIL (" + "; ".join(misses) + ")"
            line = f"{name:<30} {r['median_ms']:>10.2f} {r['queries']:>8} {ratio:>8.2f}  {verdict}"
            self.stdout.write(self.style.ERROR(line) if misses else line)
            if misses:
                failures.append(name)
        self.stdout.write(f"{len(results) - len(failures)} of {len(results)} pages pass"
                          + (f"; FAIL: {', '.join(failures)}" if failures else "."))
        return failures
