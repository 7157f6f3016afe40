"""How fast the lifecycle engine renews (see `make bench`): N due subscriptions, one `run_lifecycle(now)`.

The command builds its own data in the database it is pointed at (a dedicated partner, customers and
catalog, written with bulk_create): N active, auto-renewing, license-based new-commerce subscriptions whose
term ended the day before a fixed instant, a mix of P1Y billed monthly, P1Y billed annually and P1M; one in
eight with a scheduled quantity change, one in fifty P1Y monthly ones with a scheduled switch to annual
billing, one in forty an add-on of the subscription before it; and a tenth as many that are not due yet.
Then it times one engine run, checks that every due subscription was renewed exactly once (one renewal
billing line and one audit row each, none left due, the others untouched) and prints the seconds and the
rate against the target: under 20 s for 10,000 on SQLite (500 a second); on PostgreSQL at least 500 a second with one
engine and, with `--engines 2`, two engines at least 1.8x one. The tables are ANALYZEd before each timed run.

With `--engines 2` (PostgreSQL only: SQLite allows one writer at a time) it then rebuilds the same data and
runs two engines at once, in two processes, each with its own connection (processes, not threads: most of a
renewal's time is the ORM's Python, which threads would take turns at), and compares them with the one
engine. Before the timed runs it counts the SQL queries of 100 renewals. The figures go to a JSON file keyed
by database vendor, merged with what is already there.

Its data is deleted when it is done (and any left by an interrupted run before it starts), so it can run
on a database that holds other data, as long as nothing else there is due at the bench's instant.
"""

import json
import multiprocessing
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.db.models import Count, Q
from django.test.utils import CaptureQueriesContext

from catalog.models import TERM_MONTHS, Availability, BillingFrequency, Product, Publisher, Sku, Term
from portal.engine_process import run_engine
from portal.models import Customer, Partner
from subscriptions.dates import add_months, start_of_day, term_end_for
from subscriptions.lifecycle import LifecycleReport, due_subscription_ids, run_lifecycle
from subscriptions.models import AuditEntry, BillingLine, ScheduledChange, SeatLot, Subscription
from subscriptions.states import Status

# A fixed instant, five minutes into the renewal day of terms that ended (inclusive) on 2026-12-01.
NOW = datetime(2026, 12, 2, 0, 5, tzinfo=UTC)
DEFAULT_N = 10_000
TARGET_SECONDS = 20.0  # for TARGET_N subscriptions on SQLite
TARGET_N = 10_000
PG_TARGET_RATE = 500.0  # renewals a second with one engine on PostgreSQL (issue 10)
PG_TARGET_SPEEDUP = 1.8  # two engines against one, back to back on fresh statistics
PREFIX = "LCBENCH"  # the bench's partner ids and publisher names start with it; nothing else's should
SUBS_PER_CUSTOMER = 20
N_BASE_SKUS = 12
BATCH = 500  # rows per INSERT: within SQLite's bound-parameter limit for these tables
CALIBRATION_N = 100
# Subscription i's term and billing: P1Y monthly 60 %, P1Y annual 25 %, P1M monthly 15 %.
MIX = (
    [(Term.P1Y, BillingFrequency.MONTHLY)] * 12
    + [(Term.P1Y, BillingFrequency.ANNUAL)] * 5
    + [(Term.P1M, BillingFrequency.MONTHLY)] * 3
)


@dataclass
class BenchData:
    tag: str
    due_ids: list
    not_due_ids: list
    scheduled_changes: int
    addons: int

    @property
    def n(self) -> int:
        return len(self.due_ids)


def build_due_subscriptions(n: int, *, now: datetime, tag: str) -> BenchData:
    """Writes the bench data set for `n` due subscriptions at `now` (see the module docstring)."""
    if n < 1:
        raise ValueError("n must be at least 1")
    ended = now.date() - timedelta(days=1)  # the inclusive term end: the renewal is processed today (N2)
    with transaction.atomic():
        partner = Partner.objects.create(
            name=f"Lifecycle Bench {tag}", partner_id=f"{PREFIX}{tag}"[:20], kind=Partner.Kind.DIRECT_BILL, country="US"
        )
        publisher = Publisher.objects.create(name=f"{PREFIX} Microsoft {tag}", is_microsoft=True)
        products = Product.objects.bulk_create(
            [
                Product(
                    product_id=f"{PREFIX}-{tag}-{p:02d}",
                    name=f"Bench Suite {p:02d}",
                    publisher=publisher,
                    billing_type=Product.BillingType.LICENSE,
                    category=Product.Category.ENTERPRISE,
                )
                for p in range(N_BASE_SKUS + 1)
            ]
        )
        skus = Sku.objects.bulk_create(
            [
                Sku(
                    product=product,
                    sku_id=f"{product.product_id}:0001",
                    name=f"{product.name} {'Add-on' if addon else 'E3'}",
                    commerce=Sku.Commerce.NEW,
                    segments="commercial",
                    is_addon=addon,
                )
                for addon, product in ((p == N_BASE_SKUS, product) for p, product in enumerate(products))
            ]
        )
        base_skus, addon_sku = skus[:N_BASE_SKUS], skus[N_BASE_SKUS]
        addon_sku.base_skus.set(base_skus)
        availabilities = {}
        rows = []
        for s, sku in enumerate(skus):
            monthly = Decimal(6 + (s * 7) % 30) + Decimal("0.40")
            for term, frequency, price in (
                (Term.P1M, BillingFrequency.MONTHLY, monthly * Decimal("1.2")),
                (Term.P1Y, BillingFrequency.MONTHLY, monthly),
                (Term.P1Y, BillingFrequency.ANNUAL, monthly * 12),
            ):
                rows.append(
                    Availability(
                        sku=sku, term=term, billing_frequency=frequency, unit_price=price.quantize(Decimal("0.01"))
                    )
                )
        for availability in Availability.objects.bulk_create(rows):
            availabilities[availability.sku_id, availability.term, availability.billing_frequency] = availability

        n_customers = -(-n // SUBS_PER_CUSTOMER)
        customers = Customer.objects.bulk_create(
            [
                Customer(
                    partner=partner,
                    company_name=f"Bench Renewals {i:05d}",
                    domain=f"renewals{i:05d}.example",
                    billing_country="US",
                )
                for i in range(n_customers)
            ],
            batch_size=BATCH,
        )

        subscriptions, changes = [], []
        for i in range(n):
            customer = customers[i // SUBS_PER_CUSTOMER]
            previous = subscriptions[-1] if subscriptions and i % SUBS_PER_CUSTOMER else None
            is_addon = i % 40 == 39 and previous is not None and previous.base_subscription is None
            term, frequency = (Term.P1Y, BillingFrequency.MONTHLY) if is_addon else MIX[i % len(MIX)]
            sku = addon_sku if is_addon else base_skus[i % N_BASE_SKUS]
            subscriptions.append(
                _subscription(
                    customer,
                    availabilities[sku.pk, term, frequency],
                    i,
                    ended=ended,
                    base=previous if is_addon else None,
                )
            )
            if i % 8 == 3:
                changes.append(
                    ScheduledChange(
                        subscription=subscriptions[-1],
                        kind=ScheduledChange.Kind.QUANTITY,
                        quantity=subscriptions[-1].quantity + 1 + i % 5,
                        created_at=now - timedelta(days=10),
                    )
                )
            elif i % 50 == 7 and (term, frequency) == (Term.P1Y, BillingFrequency.MONTHLY):
                changes.append(
                    ScheduledChange(
                        subscription=subscriptions[-1],
                        kind=ScheduledChange.Kind.BILLING_FREQUENCY,
                        billing_frequency=BillingFrequency.ANNUAL,
                        created_at=now - timedelta(days=10),
                    )
                )
        # Not due: terms that end next month (the engine must leave them alone).
        not_due = [
            _subscription(
                customers[i % n_customers],
                availabilities[base_skus[i % N_BASE_SKUS].pk, Term.P1M, BillingFrequency.MONTHLY],
                i,
                ended=ended + timedelta(days=31),
                base=None,
            )
            for i in range(n // 10)
        ]
        Subscription.objects.bulk_create(subscriptions + not_due, batch_size=BATCH)
        ScheduledChange.objects.bulk_create(changes, batch_size=BATCH)
        # The term that is ending was bought like any other: its purchase lot and its first charge.
        SeatLot.objects.bulk_create(
            [
                SeatLot(
                    subscription=sub,
                    source=SeatLot.Source.PURCHASE,
                    quantity=sub.quantity,
                    added_at=sub.term_start,
                    window_ends_at=sub.term_start + timedelta(hours=168),
                )
                for sub in subscriptions + not_due
            ],
            batch_size=BATCH,
        )
        BillingLine.objects.bulk_create(
            [
                BillingLine(
                    subscription=sub,
                    kind=BillingLine.Kind.PURCHASE,
                    amount=sub.unit_price * sub.quantity,
                    currency=sub.currency,
                    quantity=sub.quantity,
                    unit_price=sub.unit_price,
                    period_start=sub.term_start.date(),
                    period_end=sub.term_end,
                    created_at=sub.term_start,
                    explanation=f"{sub.quantity} x {sub.unit_price} (bench: first period, not prorated)",
                )
                for sub in subscriptions + not_due
            ],
            batch_size=BATCH,
        )
    return BenchData(
        tag=tag,
        due_ids=[s.pk for s in subscriptions],
        not_due_ids=[s.pk for s in not_due],
        scheduled_changes=len(changes),
        addons=sum(s.base_subscription_id is not None for s in subscriptions),
    )


def _subscription(customer, availability, i: int, *, ended, base) -> Subscription:
    months = TERM_MONTHS[availability.term]
    started = add_months(ended + timedelta(days=1), -months)
    assert term_end_for(started, months) == ended, (started, ended)
    term_start = start_of_day(started) + timedelta(hours=8, minutes=i % 600)
    return Subscription(
        customer=customer,
        sku=availability.sku,
        availability=availability,
        status=Status.ACTIVE,
        quantity=5 + i % 45,
        term=availability.term,
        billing_frequency=availability.billing_frequency,
        unit_price=availability.unit_price,
        currency=availability.currency,
        auto_renew=True,
        term_start=term_start,
        term_end=ended,
        base_subscription=base,
        created_at=term_start,
    )


def bench_subscriptions(tag: str | None = None):
    partners = Q(customer__partner__partner_id__startswith=PREFIX)
    if tag is not None:
        partners = Q(customer__partner__partner_id=f"{PREFIX}{tag}"[:20])
    return Subscription.objects.filter(partners)


def verify(data: BenchData, *, now: datetime, reports) -> dict:
    """Every due subscription renewed exactly once; nothing else touched. Returns the counts checked."""
    lines = dict(
        BillingLine.objects.filter(subscription__in=data.due_ids, kind=BillingLine.Kind.RENEWAL)
        .values_list("subscription")
        .annotate(n=Count("pk"))
        .values_list("subscription", "n")
    )
    audits = dict(
        AuditEntry.objects.filter(subscription__in=data.due_ids, action="subscription.renewed")
        .values_list("subscription")
        .annotate(n=Count("pk"))
        .values_list("subscription", "n")
    )
    lots = SeatLot.objects.filter(subscription__in=data.due_ids, source=SeatLot.Source.RENEWAL).count()
    still_due = len(set(due_subscription_ids(now)) & set(data.due_ids))
    renewed_ends = set(Subscription.objects.filter(pk__in=data.due_ids).values_list("term_end", flat=True))
    touched = (
        BillingLine.objects.filter(subscription__in=data.not_due_ids).exclude(kind=BillingLine.Kind.PURCHASE).count()
        + AuditEntry.objects.filter(subscription__in=data.not_due_ids).count()
    )
    counts = {
        "renewed": sum(r.renewed for r in reports),
        "failed": sum(r.failed for r in reports),
        "renewal_lines": sum(lines.values()),
        "audit_rows": sum(audits.values()),
        "renewal_lots": lots,
        "still_due": still_due,
        "not_due_touched": touched,
    }
    problems = []
    if counts["renewed"] != data.n or counts["failed"]:
        problems.append(f"the engine reported {counts['renewed']} renewed and {counts['failed']} failed")
    for name, per_sub in (("renewal billing lines", lines), ("audit rows", audits)):
        wrong = [pk for pk in data.due_ids if per_sub.get(pk, 0) != 1]
        if wrong:
            problems.append(f"{len(wrong)} subscriptions do not have exactly one of their {name}")
    if lots != data.n:
        problems.append(f"{lots} renewal seat lots for {data.n} renewals")
    if still_due:
        problems.append(f"{still_due} subscriptions are still due")
    if any(end is None or end <= now.date() for end in renewed_ends):
        problems.append("a renewed subscription's term does not end after today")
    if touched:
        problems.append(f"{touched} rows were written for subscriptions that were not due")
    if problems:
        raise CommandError("The engine bench checks failed: " + "; ".join(problems) + ".")
    return counts


def delete_bench_data(tag: str | None = None) -> None:
    """Deletes the bench's rows (one run's with `tag`, else every run's), children first."""
    subs = bench_subscriptions(tag)
    partner_filter = {"partner_id": f"{PREFIX}{tag}"[:20]} if tag else {"partner_id__startswith": PREFIX}
    publisher_filter = {"name": f"{PREFIX} Microsoft {tag}"} if tag else {"name__startswith": PREFIX}
    with transaction.atomic():
        AuditEntry.objects.filter(partner__in=Partner.objects.filter(**partner_filter)).delete()
        for model in (BillingLine, SeatLot, ScheduledChange):
            model.objects.filter(subscription__in=subs.values("pk")).delete()
        # Add-ons first: a base subscription is protected while one of its add-ons exists.
        Subscription.objects.filter(
            pk__in=list(subs.filter(base_subscription__isnull=False).values_list("pk", flat=True))
        ).delete()
        Subscription.objects.filter(pk__in=list(subs.values_list("pk", flat=True))).delete()
        Customer.objects.filter(partner__in=Partner.objects.filter(**partner_filter)).delete()
        Partner.objects.filter(**partner_filter).delete()
        skus = Sku.objects.filter(product__publisher__in=Publisher.objects.filter(**publisher_filter))
        Sku.base_skus.through.objects.filter(Q(from_sku__in=skus) | Q(to_sku__in=skus)).delete()
        Availability.objects.filter(sku__in=skus).delete()
        Sku.objects.filter(pk__in=list(skus.values_list("pk", flat=True))).delete()
        Product.objects.filter(publisher__in=Publisher.objects.filter(**publisher_filter)).delete()
        Publisher.objects.filter(**publisher_filter).delete()


def other_due_subscriptions(now: datetime, data: BenchData) -> int:
    return len(set(due_subscription_ids(now)) - set(data.due_ids))


def queries_per_renewal(*, now: datetime, n: int = CALIBRATION_N, tag: str) -> float:
    """SQL queries of one engine run over `n` due subscriptions, per subscription (data deleted after)."""
    data = build_due_subscriptions(n, now=now, tag=tag)
    try:
        with CaptureQueriesContext(connection) as captured:
            report = run_lifecycle(now)
        verify(data, now=now, reports=[report])
        return len(captured) / n
    finally:
        delete_bench_data(tag)


def run_engines(count: int, *, now: datetime):
    """Runs `count` engines at once (processes); returns (wall seconds, their reports)."""
    # Spawned processes (see portal/engine_process.py), each with its own connection to this database.
    context = multiprocessing.get_context("spawn")
    go, ready, results = context.Event(), context.Queue(), context.Queue()
    name = connection.settings_dict["NAME"]
    processes = [context.Process(target=run_engine, args=(now, go, ready, results, name)) for _ in range(count)]
    for process in processes:
        process.start()
    for _ in processes:
        ready.get(timeout=120)  # each has started Django and connected: the clock starts for all at once
    started = time.perf_counter()
    go.set()
    outcomes = [results.get(timeout=3600) for _ in processes]
    elapsed = time.perf_counter() - started
    for process in processes:
        process.join()
    errors = [detail for status, detail, _ in outcomes if status != "ok"]
    if errors:
        raise CommandError("An engine failed: " + "; ".join(errors))
    return elapsed, [LifecycleReport(**report) for _, report, _ in outcomes], [times for _, _, times in outcomes]


class Command(BaseCommand):
    help = "Times the lifecycle engine renewing N due subscriptions (10,000 by default); --engines 2 on PostgreSQL."

    def add_arguments(self, parser):
        parser.add_argument(
            "-n",
            "--subscriptions",
            type=int,
            default=DEFAULT_N,
            dest="n",
            help=f"Due subscriptions to renew ({DEFAULT_N:,}).",
        )
        parser.add_argument(
            "--engines",
            type=int,
            choices=(1, 2),
            default=1,
            help="2: also run two engines at once on the same data and compare (PostgreSQL only).",
        )
        parser.add_argument(
            "--output",
            default="bench-lifecycle.json",
            help="JSON file for the figures, keyed by database vendor (merged if it exists).",
        )

    def handle(self, *args, n, engines, output, **options):
        if n < 1:
            raise CommandError("-n must be at least 1.")
        vendor = connection.vendor
        if settings.DEBUG:
            self.stdout.write(
                "Note: DEBUG is on, so every query is also logged; DJANGO_DEBUG=0 measures the engine alone."
            )
        delete_bench_data()  # what an interrupted run left behind
        figures = {"subscriptions": n, "now": NOW.isoformat()}
        per_renewal = queries_per_renewal(now=NOW, tag="calib")
        figures["queries_per_renewal"] = round(per_renewal, 2)
        self.stdout.write(
            f"Lifecycle engine on {vendor}: {per_renewal:.2f} SQL queries per renewal "
            f"({CALIBRATION_N} renewals counted)."
        )

        one = self.timed(n, engines=1)
        figures["one_engine"] = one
        target = TARGET_SECONDS * n / TARGET_N
        if vendor == "sqlite":
            figures["target_seconds"] = target
            figures["target_met"] = one["seconds"] < target
            verdict = "ok" if figures["target_met"] else "FAIL"
            self.stdout.write(
                f"One engine: {n:,} renewals in {one['seconds']:.2f} s, {one['rate']:,.0f}/s; target "
                f"< {target:.1f} s ({TARGET_N / TARGET_SECONDS:,.0f}/s): {verdict}"
            )
        else:
            figures["target_rate"] = PG_TARGET_RATE
            figures["target_met"] = one["rate"] >= PG_TARGET_RATE
            verdict = "PASS" if figures["target_met"] else "FAIL"
            self.stdout.write(
                f"One engine: {n:,} renewals in {one['seconds']:.2f} s, {one['rate']:,.0f}/s; target "
                f">= {PG_TARGET_RATE:,.0f}/s: {verdict}"
            )

        if engines == 2 and vendor != "postgresql":
            self.stdout.write(
                f"Two engines at once: skipped, PostgreSQL only ({vendor} lets one connection write at "
                "a time, so a second engine would only wait for the first)."
            )
        elif engines == 2:
            two = self.timed(n, engines=2)
            figures["two_engines"] = two
            figures["speedup"] = round(one["seconds"] / two["seconds"], 2)
            figures["two_engines_faster"] = two["seconds"] < one["seconds"]
            figures["target_speedup"] = PG_TARGET_SPEEDUP
            verdict = "PASS" if figures["speedup"] >= PG_TARGET_SPEEDUP else "FAIL"
            self.stdout.write(
                f"Two engines: {n:,} renewals in {two['seconds']:.2f} s, {two['rate']:,.0f}/s "
                f"({' + '.join(str(r) for r in two['renewed_by_engine'])}); "
                f"{figures['speedup']:.2f}x one engine; target >= {PG_TARGET_SPEEDUP}x: {verdict}"
            )

        path = Path(output)
        existing = json.loads(path.read_text()) if path.exists() else {}
        existing[vendor] = figures
        path.write_text(json.dumps(existing, indent=2) + "\n")
        self.stdout.write(f"Wrote {output}")

    def timed(self, n: int, *, engines: int) -> dict:
        """Fresh data, `engines` engines over it, the checks; the data is deleted after."""
        tag = f"e{engines}"
        data = build_due_subscriptions(n, now=NOW, tag=tag)
        try:
            others = other_due_subscriptions(NOW, data)
            if others:
                raise CommandError(
                    f"{others} other subscriptions in this database are due at {NOW:%Y-%m-%d %H:%M} "
                    "UTC: point the bench at a database of its own."
                )
            # Fresh statistics on the freshly written tables, so that each run (one engine, then two) is planned
            # on what is there, not on the empty tables of a new database (autovacuum may not have got to them).
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
            if engines == 1:
                started, cpu = time.perf_counter(), time.process_time()
                reports = [run_lifecycle(NOW)]
                elapsed, cpu_seconds = time.perf_counter() - started, [time.process_time() - cpu]
            else:
                elapsed, reports, times = run_engines(engines, now=NOW)
                cpu_seconds = [cpu for _, cpu in times]
            counts = verify(data, now=NOW, reports=reports)
        finally:
            delete_bench_data(tag)
        # The engines' own CPU time (Python and the driver, not the database's): near `seconds` when CPU-bound.
        result = {
            "seconds": round(elapsed, 3),
            "rate": round(n / elapsed, 1),
            "engine_cpu_seconds": [round(cpu, 2) for cpu in cpu_seconds],
            **counts,
            "scheduled_changes": data.scheduled_changes,
            "addons": data.addons,
        }
        if engines > 1:
            result["renewed_by_engine"] = [r.renewed for r in reports]
        return result
