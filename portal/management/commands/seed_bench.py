"""Seed a LARGE, deterministic data set for `manage.py bench` (see `make bench`).

Everything is built in memory and written with bulk_create (1,000 rows an INSERT) in one transaction, so
the 20k set (~90,000 rows) takes well under a minute and the 100k set (~450,000 rows) one to two. It
writes into whatever DATABASE_URL points at; `make bench` points it at a fresh var/bench-<scale>.sqlite3,
`make bench-pg` at a fresh PostgreSQL database.

What it makes (`--scale 20k`, the default; `--scale 100k` in brackets):

* partner "Bench Partner" (direct bill) with staff user `bench` (sales agent + admin agent);
  200 [1,000] customers holding 20,000 [100,000] subscriptions (mixed statuses, one purchase SeatLot and one
  BillingLine each): the first customer 100, the second ("Bench Customer 001") 10,000 [50,000]
  (at 100k the third holds 10,000): the export's 10k measurement, S5 must stream them in under a second;
  the others 50 [40 or 41] each.
  About one in forty (every 20th of a customer's, if active, in its term and with more than 5
  licenses) got licenses added 5 to 7 days ago: a second SeatLot whose removal window closes
  within the next 48 hours (the "window closes within 48 h" filter), and its charge.
  10 orders of 3 lines per customer (the lines of completed orders link their subscriptions),
  and one open cart of 5 lines for the first customer;
* partner "Tailspin Partners" with a few customers of its own: noise the tenancy scoping
  must keep out of the bench user's pages;
* a catalog of 200 products (Microsoft and four ISV publishers, every category and both
  billing types) with 2,000 offers (Sku rows; `--products` changes the 200), each with 2 or 3 Availability rows, a few
  add-ons with base offers, a few ISV offers exclusive to the other partner.
"""

import time
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.utils import timezone

from catalog.models import (
    FREQUENCY_MONTHS,
    TERM_MONTHS,
    Availability,
    BillingFrequency,
    Cart,
    CartLine,
    Order,
    OrderLine,
    Product,
    Publisher,
    Sku,
    Term,
    bump_catalog_version,
)
from portal.models import Customer, Membership, Partner
from subscriptions.dates import term_end_for
from subscriptions.models import BillingLine, SeatLot, Subscription, fill_list_names
from subscriptions.states import LIVE_STATUSES, Status

BATCH = 1000  # rows per INSERT; well under SQLite's 32,766 bound-parameter limit for these tables

BENCH_PARTNER_ID = "9900001"
NOISE_PARTNER_ID = "9900002"
BENCH_USERNAME = "bench"

N_PRODUCTS = 200
SKUS_PER_PRODUCT = 10  # -> 2,000 offers
# The first customer (the one the catalog, cart and order pages are measured with) keeps a typical 100
# subscriptions at every scale; the big ones sit next, so those pages' data does not change with them.
FIRST_CUSTOMER_SUBS = 100


@dataclass(frozen=True)
class Scale:
    customers: int
    subscriptions: int
    big: tuple[int, ...]  # the subscriptions of customers 1, 2...: the largest first; one holds exactly 10,000


# 20k: 200 customers (100, 10,000, then 50 each). 100k: 1,000 customers (100, 50,000, 10,000, then 40 or 41 each).
SCALES = {
    "20k": Scale(customers=200, subscriptions=20_000, big=(10_000,)),
    "100k": Scale(customers=1_000, subscriptions=100_000, big=(50_000, 10_000)),
}


def subscriptions_per_customer(scale: Scale) -> list[int]:
    """The first customer's 100, the big ones', then the rest shared as evenly as whole numbers allow."""
    fixed = [FIRST_CUSTOMER_SUBS, *scale.big]
    others = scale.customers - len(fixed)
    each, extra = divmod(scale.subscriptions - sum(fixed), others)
    return fixed + [each + (1 if i < extra else 0) for i in range(others)]


ORDERS_PER_CUSTOMER = 10
LINES_PER_ORDER = 3
CART_LINES = 5
N_NOISE_CUSTOMERS = 5
NOISE_SUBS_PER_CUSTOMER = 10

MICROSOFT_PRODUCT_NAMES = [
    "Microsoft 365",
    "Office 365",
    "Exchange Online",
    "Microsoft Teams",
    "Defender for Endpoint",
    "Intune Suite",
    "Entra ID",
    "Power BI",
    "Dynamics 365 Sales",
    "Visio",
    "Project",
    "Windows 365",
]
ISV_PUBLISHERS = ["Adatum Security", "Contoso Labs", "Fabrikam Software", "Northwind Traders"]
ISV_PRODUCT_NAMES = ["Cloud Backup", "Mail Archive", "Signature Manager", "Phone System", "Endpoint Guard"]
# One product's ten offers. The segment-bound variants are hidden from commercial customers (C3).
VARIANTS = [
    ("Basic", "commercial,education,government,nonprofit"),
    ("Standard", "commercial,education,government,nonprofit"),
    ("Premium", "commercial,education,government,nonprofit"),
    ("Plus", "commercial,nonprofit"),
    ("E3", "commercial"),
    ("E5", "commercial"),
    ("Add-on", "commercial,education,government,nonprofit"),
    ("Education", "education"),
    ("Government", "government"),
    ("Nonprofit", "nonprofit"),
]
ADDON_VARIANT = 6
COUNTRIES = ["US", "GB", "DE", "FR", "NL", "CA", "AU", "SE", "ES", "IT", "JP", "NO"]
SEGMENTS = [Customer.Segment.COMMERCIAL] * 7 + [
    Customer.Segment.EDUCATION,
    Customer.Segment.GOVERNMENT,
    Customer.Segment.NONPROFIT,
]
# The status of subscription j is STATUS_CYCLE[j % 20]: 80% live (active, pending, suspended).
STATUS_CYCLE = (
    [Status.ACTIVE] * 12
    + [Status.SUSPENDED] * 2
    + [Status.PENDING]
    + [Status.EXPIRED] * 2
    + [Status.DELETED, Status.DISABLED, Status.ACTIVE]
)


def _bulk(model, objs):
    """One bulk INSERT per BATCH rows; primary keys come back (SQLite >= 3.35 and PostgreSQL return them)."""
    created = model.objects.bulk_create(objs, batch_size=BATCH)
    if created and created[0].pk is None:
        raise CommandError(f"The database did not return primary keys for {model.__name__}.")
    return created


class Command(BaseCommand):
    help = "Seed a large data set (2,000 offers; 20,000 or 100,000 subscriptions) for `manage.py bench`."

    def add_arguments(self, parser):
        parser.add_argument(
            "--scale",
            choices=sorted(SCALES),
            default="20k",
            help="20k: 200 customers, 20,000 subscriptions; 100k: 1,000 customers, 100,000.",
        )
        parser.add_argument(
            "--products",
            type=int,
            default=N_PRODUCTS,
            help=f"Catalog products, {SKUS_PER_PRODUCT} offers each (default {N_PRODUCTS}: 2,000 offers).",
        )

    def handle(self, *args, scale, products, **options):
        self.scale = SCALES[scale]
        self.n_products = products
        if Partner.objects.filter(partner_id=BENCH_PARTNER_ID).exists():
            raise CommandError("The bench data is already there: `make bench` recreates the database first.")
        started = time.perf_counter()
        self.now = timezone.now().replace(microsecond=0)
        with transaction.atomic():
            counts = self.seed()
        fill_list_names(Subscription.objects.all())  # the lists' sort key: bulk_create does not call save()
        connection.cursor().execute("ANALYZE")  # SQLite plans by statistics only once they are gathered
        elapsed = time.perf_counter() - started
        summary = ", ".join(f"{n:,} {label}" for label, n in counts.items())
        self.stdout.write(self.style.SUCCESS(f"Seeded {summary} in {elapsed:.1f} s (list names and ANALYZE included)."))

    # ------------------------------------------------------------------ the whole set

    def seed(self) -> dict[str, int]:
        bench_partner, bench_user = self.partner_with_staff("Bench Partner", BENCH_PARTNER_ID, BENCH_USERNAME)
        noise_partner, noise_user = self.partner_with_staff("Tailspin Partners", NOISE_PARTNER_ID, "tailspin")
        skus, availabilities = self.catalog(noise_partner)

        customers = self.customers(bench_partner, "Bench Customer", self.scale.customers)
        noise_customers = self.customers(noise_partner, "Tailspin Customer", N_NOISE_CUSTOMERS)

        per_customer = subscriptions_per_customer(self.scale)
        subscriptions = self.subscriptions(customers, skus, availabilities, per_customer)
        subscriptions += self.subscriptions(
            noise_customers, skus, availabilities, [NOISE_SUBS_PER_CUSTOMER] * N_NOISE_CUSTOMERS
        )
        # Orders before the subscriptions are written, so each subscription's order_line is set in one pass.
        orders, lines = self.orders(customers, subscriptions, bench_user)
        noise_orders, noise_lines = self.orders(noise_customers, subscriptions, noise_user, per_customer=2)
        _bulk(Subscription, subscriptions)
        lots, billing = self.lots_and_billing(subscriptions)
        cart_lines = self.cart(customers[0], bench_user, skus, availabilities, subscriptions)
        return {
            "offers": len(skus),
            "availabilities": sum(len(a) for a in availabilities.values()),
            "customers": len(customers) + len(noise_customers),
            "subscriptions": len(subscriptions),
            "seat lots": lots,
            "billing lines": billing,
            "orders": len(orders) + len(noise_orders),
            "order lines": len(lines) + len(noise_lines),
            "cart lines": cart_lines,
        }

    # ------------------------------------------------------------------ tenancy

    def partner_with_staff(self, name: str, partner_id: str, username: str):
        partner = Partner.objects.create(name=name, partner_id=partner_id, kind=Partner.Kind.DIRECT_BILL, country="US")
        user = get_user_model()(username=username, first_name="Bench", last_name=name.split()[0])
        user.set_unusable_password()  # the bench signs in with force_login; no password hashing cost here
        user.save()
        Membership.objects.create(user=user, partner=partner, is_sales_agent=True, is_admin_agent=True)
        return partner, user

    def customers(self, partner: Partner, prefix: str, count: int) -> list[Customer]:
        # Customer 000 is the first by name (the list's order): commercial, in the US.
        return _bulk(
            Customer,
            [
                Customer(
                    partner=partner,
                    company_name=f"{prefix} {i:03d}",
                    domain=f"{prefix.split()[0].lower()}{i:03d}.example",
                    segment=SEGMENTS[i % len(SEGMENTS)],
                    billing_country=COUNTRIES[i % len(COUNTRIES)],
                )
                for i in range(count)
            ],
        )

    # ------------------------------------------------------------------ catalog

    def catalog(self, noise_partner: Partner):
        """200 products (--products) x 10 offers; returns (skus in creation order, {sku pk: [availabilities]})."""
        microsoft = Publisher.objects.create(name="Microsoft", is_microsoft=True)
        isvs = _bulk(Publisher, [Publisher(name=name) for name in ISV_PUBLISHERS])
        categories = list(Product.Category.values)
        products = []
        for p in range(self.n_products):
            # Three in five products are Microsoft's; the categories rotate, and a third of the non-trial
            # products in every category are usage-based.
            is_ms = p % 5 < 3
            publisher = microsoft if is_ms else isvs[p % len(isvs)]
            base = (
                MICROSOFT_PRODUCT_NAMES[p % len(MICROSOFT_PRODUCT_NAMES)]
                if is_ms
                else f"{publisher.name.split()[0]} {ISV_PRODUCT_NAMES[(p // 5) % len(ISV_PRODUCT_NAMES)]}"
            )
            category = categories[p % len(categories)]
            billing_type = (
                Product.BillingType.USAGE
                if (p // 3) % 3 == 1 and category != Product.Category.TRIAL
                else Product.BillingType.LICENSE
            )
            products.append(
                Product(
                    product_id=f"BENCH{p:05d}",
                    name=f"{base} {p:03d}",
                    publisher=publisher,
                    billing_type=billing_type,
                    category=category,
                    description=f"{base}, bench product {p}.",
                )
            )
        _bulk(Product, products)

        skus = []
        for product in products:
            is_ms = product.publisher_id == microsoft.pk
            for v, (variant, segments) in enumerate(VARIANTS):
                n = len(skus)
                skus.append(
                    Sku(
                        product=product,
                        sku_id=f"{product.product_id}:{v:04d}",
                        name=f"{product.name} {variant}",
                        commerce=Sku.Commerce.TRADITIONAL if is_ms and n % 7 == 0 else Sku.Commerce.NEW,
                        segments=segments,
                        one_per_customer=n % 11 == 0,
                        is_trial=product.category == Product.Category.TRIAL,
                        is_addon=v == ADDON_VARIANT,
                        addon_limit=(Sku.AddonLimit.MAX_BASE if v == ADDON_VARIANT and n % 2 else Sku.AddonLimit.NONE),
                        # ISV offers: some sold in a few countries only, some not through CSP (C4c, C4d).
                        available_countries="" if is_ms or n % 4 else "US,CA,GB",
                        offered_through_csp=is_ms or n % 13 != 0,
                        transactable_in_portal=not (product.billing_type == Product.BillingType.USAGE and n % 9 == 0),
                        free_trial_days=0 if is_ms or n % 3 else 30,
                    )
                )
        _bulk(Sku, skus)

        # Add-ons need one of their product's base offers ("Basic" or "Standard") (C5).
        through = Sku.base_skus.through
        _bulk(
            through,
            [
                through(from_sku_id=skus[i].pk, to_sku_id=skus[i - ADDON_VARIANT + base].pk)
                for i in range(ADDON_VARIANT, len(skus), SKUS_PER_PRODUCT)
                for base in (0, 1)
            ],
        )
        # Every 25th ISV offer is exclusive to the other partner (C4e): the bench partner sees it refused.
        exclusive = Sku.exclusive_partners.through
        _bulk(
            exclusive,
            [
                exclusive(sku_id=sku.pk, partner_id=noise_partner.pk)
                for i, sku in enumerate(skus)
                if sku.product.publisher_id != microsoft.pk and i % 25 == 0
            ],
        )

        availabilities = []
        for i, sku in enumerate(skus):
            price = Decimal(4 + (i * 37) % 60) + Decimal("0.50")
            if sku.product.billing_type == Product.BillingType.USAGE:
                options = [(Term.P1M, BillingFrequency.MONTHLY, price), (Term.P1Y, BillingFrequency.MONTHLY, price)]
            else:
                options = [
                    (Term.P1M, BillingFrequency.MONTHLY, price * Decimal("1.2")),
                    (Term.P1Y, BillingFrequency.MONTHLY, price),
                ]
                if i % 2 == 0:  # half the license offers also come paid up front for a year
                    options.append((Term.P1Y, BillingFrequency.ANNUAL, price * 12))
            availabilities += [
                Availability(sku=sku, term=t, billing_frequency=f, unit_price=p.quantize(Decimal("0.01")))
                for t, f, p in options
            ]
        _bulk(Availability, availabilities)
        bump_catalog_version()  # bulk_create sends no signal: say the catalog changed (see CatalogVersion)
        by_sku: dict[int, list[Availability]] = {}
        for a in availabilities:
            by_sku.setdefault(a.sku_id, []).append(a)
        return skus, by_sku

    # ------------------------------------------------------------------ subscriptions and orders

    def subscriptions(self, customers, skus, availabilities, per_customer: list[int]) -> list[Subscription]:
        """`per_customer[c]` subscriptions for customer c, unsaved. Subscription j of customer c is of offer
        (37c + 13j) mod 2,000: distinct offers within a customer's first 2,000 (13 and 2,000 are coprime). Past
        that (the big customer) offers come round again; a one-per-customer offer's repeats are then deleted ones,
        so the one-live-subscription constraint always holds."""
        subs = []
        for c, customer in enumerate(customers):
            for j in range(per_customer[c]):
                sku = skus[(c * 37 + j * 13) % len(skus)]
                options = availabilities[sku.pk]
                availability = options[j % len(options)]
                status = STATUS_CYCLE[j % len(STATUS_CYCLE)]
                if j >= len(skus) and sku.one_per_customer:
                    status = Status.DELETED
                # Subscriptions come in threes (one order's lines), the newest first, 11 days apart, over 3 years.
                start = self.now - timedelta(days=(j // LINES_PER_ORDER) * 11 % 1096 + 1, hours=c % 24)
                quantity = 1 if sku.product.billing_type == Product.BillingType.USAGE else 5 + (c + j) % 40
                subs.append(
                    Subscription(
                        customer=customer,
                        sku=sku,
                        availability=availability,
                        status=status,
                        quantity=quantity,
                        term=availability.term,
                        billing_frequency=availability.billing_frequency,
                        unit_price=availability.unit_price,
                        currency=availability.currency,
                        auto_renew=status in LIVE_STATUSES and j % 4 != 0,
                        term_start=start,
                        term_end=term_end_for(start.date(), TERM_MONTHS[availability.term]),
                        is_trial=sku.is_trial,
                        trial_ends_at=start + timedelta(days=30) if sku.is_trial else None,
                        one_per_customer=sku.one_per_customer,
                        created_at=start,
                        friendly_name=f"{customer.company_name} {sku.name}" if j % 10 == 0 else "",
                    )
                )
        return subs

    def orders(self, customers, subscriptions, placed_by, per_customer: int = ORDERS_PER_CUSTOMER):
        """Order k of a customer holds its subscriptions 3k..3k+2. The newest order (k = 0) is still pending:
        its lines have no subscription yet. The others are completed and their lines link their subscriptions."""
        by_customer: dict = {}
        for sub in subscriptions:
            by_customer.setdefault(sub.customer_id, []).append(sub)
        orders, groups = [], []
        for customer in customers:
            subs = by_customer[customer.pk]
            for k in range(per_customer):
                group = subs[k * LINES_PER_ORDER : (k + 1) * LINES_PER_ORDER]
                total = sum((s.unit_price * s.quantity for s in group), Decimal("0.00"))
                orders.append(
                    Order(
                        customer=customer,
                        placed_by=placed_by,
                        created_at=group[0].created_at,
                        status=Order.Status.PENDING if k == 0 else Order.Status.COMPLETED,
                        total=total,
                        attested_as=Order.Attestation.DIRECT,
                    )
                )
                groups.append(group)
        _bulk(Order, orders)
        # The quoted first charge (full term: unit price x quantity), where the model records one.
        quotes_first_charge = any(f.name == "first_charge" for f in OrderLine._meta.concrete_fields)
        lines, linked = [], []
        for order, group in zip(orders, groups, strict=True):
            done = order.status == Order.Status.COMPLETED
            for sub in group:
                line = OrderLine(
                    order=order,
                    availability=sub.availability,
                    sku=sub.sku,
                    quantity=sub.quantity,
                    term=sub.term,
                    billing_frequency=sub.billing_frequency,
                    unit_price=sub.unit_price,
                    currency=sub.currency,
                    status=OrderLine.Status.FULFILLED if done else OrderLine.Status.PENDING,
                    fulfilled_at=order.created_at + timedelta(minutes=1) if done else None,
                )
                if quotes_first_charge:
                    line.first_charge = sub.unit_price * sub.quantity
                lines.append(line)
                linked.append(sub if done else None)
        _bulk(OrderLine, lines)
        for line, sub in zip(lines, linked, strict=True):
            if sub is not None:
                sub.order_line = line
        return orders, lines

    def lots_and_billing(self, subscriptions) -> tuple[int, int]:
        """One purchase SeatLot and one purchase BillingLine per subscription. Every 20th subscription of a customer,
        if active, in its term and with more than 5 licenses, also got 1 to 5 of them 120 to 166 hours ago: an
        "increase" lot whose 7-day removal window closes 2 to 48 hours from now, with its charge."""
        lots, charges = [], []
        position: dict = {}
        for sub in subscriptions:
            j = position[sub.customer_id] = position.get(sub.customer_id, -1) + 1
            in_term = sub.term_end >= self.now.date()
            added = 1 + j % 5 if j % 20 == 5 and sub.status == Status.ACTIVE and sub.quantity > 5 and in_term else 0
            lots.append(
                SeatLot(
                    subscription=sub,
                    source=SeatLot.Source.PURCHASE,
                    quantity=sub.quantity - added,
                    added_at=sub.term_start,
                    window_ends_at=sub.term_start + timedelta(hours=168),
                )
            )
            if added:
                added_at = self.now - timedelta(hours=120 + len(lots) % 47)
                lots.append(
                    SeatLot(
                        subscription=sub,
                        source=SeatLot.Source.INCREASE,
                        quantity=added,
                        added_at=added_at,
                        window_ends_at=added_at + timedelta(hours=168),
                    )
                )
                charges.append(
                    BillingLine(
                        subscription=sub,
                        kind=BillingLine.Kind.INCREASE,
                        amount=sub.unit_price * added,
                        currency=sub.currency,
                        quantity=added,
                        unit_price=sub.unit_price,
                        period_start=added_at.date(),
                        period_end=sub.term_end,
                        created_at=added_at,
                        explanation=f"{added} x {sub.unit_price} = {sub.unit_price * added} (bench: not prorated)",
                    )
                )
            months = FREQUENCY_MONTHS.get(sub.billing_frequency, TERM_MONTHS[sub.term])
            bought = sub.quantity - added
            amount = sub.unit_price * bought
            charges.append(
                BillingLine(
                    subscription=sub,
                    kind=BillingLine.Kind.PURCHASE,
                    amount=amount,
                    currency=sub.currency,
                    quantity=bought,
                    unit_price=sub.unit_price,
                    period_start=sub.term_start.date(),
                    period_end=term_end_for(sub.term_start.date(), months),
                    created_at=sub.term_start,
                    explanation=f"{bought} x {sub.unit_price} = {amount}",
                )
            )
        _bulk(SeatLot, lots)
        _bulk(BillingLine, charges)
        return len(lots), len(charges)

    def cart(self, customer, owner, skus, availabilities, subscriptions) -> int:
        """An open cart, created now (so it does not expire during the bench), of 5 Microsoft license-based
        new-commerce offers the customer may buy and does not own: each line has end-date alignment options."""
        owned = {s.sku_id for s in subscriptions if s.customer_id == customer.pk}
        candidates = [
            sku
            for sku in skus
            if sku.pk not in owned
            and sku.product.publisher.is_microsoft
            and sku.commerce == Sku.Commerce.NEW
            and sku.product.billing_type == Product.BillingType.LICENSE
            and not sku.is_trial
            and not sku.is_addon
            and not sku.one_per_customer
            and customer.segment in sku.segments.split(",")
        ]
        cart = Cart.objects.create(customer=customer, owner=owner, created_at=self.now)
        _bulk(
            CartLine,
            [
                CartLine(cart=cart, availability=availabilities[sku.pk][1], quantity=10 + i, added_at=self.now)
                for i, sku in enumerate(candidates[:CART_LINES])
            ],
        )
        return CART_LINES
