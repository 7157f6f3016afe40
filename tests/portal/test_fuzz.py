"""No 500 on any input (issue 9): every route of the URLconf, every form and query parameter its pages show, sent
hostile values. No answer is a 5xx; a GET, and every refusal (4xx), changes nothing in the database.

The demo is seeded once for the module (portal.demo, at a frozen instant), plus what it lacks: open carts, an
additional reseller, relationship and transfer requests. Each request runs in a savepoint that is rolled back, so
every one starts from that same state, and the database's fingerprint before it is computed once.

Requests are built from the pages as rendered (tests/html_forms.py): each form is posted as a browser would,
then with one field at a time changed, missing or sent twice. A form that gains a field is fuzzed with it.
"""

import copy
import logging
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import time_machine
from django.apps import apps
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.http import HttpResponseBadRequest
from django.test import Client, override_settings
from django.urls import URLPattern, URLResolver, get_resolver, path, resolve, reverse
from django.urls.exceptions import Resolver404

from api import tokens, webhooks
from api.models import ApiToken, WebhookEndpoint
from catalog import cart as cart_services
from catalog.models import Availability, Cart, CartAdditionalReseller, CartLine, Order
from portal import demo
from portal.errors import RuleViolation
from portal.models import Customer, Partner
from subscriptions import services, transfers
from subscriptions.models import RelationshipRequest, Subscription
from tests.html_forms import Form, forms_on, links_on

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)

# Routes that are not fuzzed, each with the reason. (The admin's are outside the walk: see ADMIN_NAMESPACE.)
EXEMPT: dict[str, str] = {}
# Routes that only redirect, whatever the method: their one input is the URL, fuzzed (other partners' and unknown
# ids), with hostile query parameters. The test checks that they do redirect.
REDIRECT_ONLY = {
    "portal:customer-detail": "the customer's page is its subscription list",
    "portal:favicon": "the icon is a static file",
}
# Pages only a trial has: their instances start with the persona's trials.
TRIALS_ONLY = {"subscriptions:subscription-convert"}
# Django's admin (its own views and forms) is covered lightly by test_admin_changelists_*, as the operator.
ADMIN_NAMESPACE = "admin"
# The REST API answers JSON to a bearer token, not forms to a session: tests/api send it bad bodies, headers, tokens
# and other partners' ids.
API_NAMESPACE = "api-v1"

# Query parameters that only long lists link to (the demo's lists fit one page), fuzzed on every page anyway.
ALWAYS_PARAMS = ("page",)
EXTRA_PARAMS = {"subscriptions:renewals": ("ending_page", "trials_page"), "portal:login": ("next",)}
# Fields a view reads that its form does not send (a link or another page may).
EXTRA_FIELDS = {"portal:logout": ("next",)}

MISSING, TWICE = object(), object()
UNKNOWN_UUID = str(uuid.UUID(int=0xDEAD_BEEF))
# One value of each kind that breaks a parser, for every field: empty, left out, sent twice, too large for 64 bits,
# negative, not a number, infinite, non-ASCII digits (int() reads them), NUL (PostgreSQL refuses it in text), 10 kB
# of digits (int() refuses past 4,300) and 10 kB of text (past every column's length).
HOSTILE = ["", MISSING, TWICE, "9" * 40, "-1", "NaN", "inf", "１２", "\x00", "9" * 10_000, "é" * 5_120]
# More by the shape of the value the page rendered: a number, an id, a date, a `next`.
HOSTILE_NUMBER = ["0", "2.5", "٣"]
HOSTILE_DATE = ["9999-12-31", "0001-01-01", "2026-02-30"]
HOSTILE_NEXT = [
    "",
    MISSING,
    TWICE,
    "\x00",
    "é" * 5_120,
    "null",
    "//evil.example/",
    "https://evil.example/",
    "/\\evil.example",
    "javascript:alert(1)",
    "/\t/evil.example",
    "/x\r\nSet-Cookie: a=b",
    "/login/",
]
# What an htmx request (another template: a panel, a partial) is also sent: the values a page echoes or refuses.
HOSTILE_HTMX = ["", MISSING, "9" * 40, "\x00", "9" * 10_000, "é" * 5_120]
MAX_PROBES_PER_ROUTE = 600  # a bound, so a page that grows many forms cannot make the suite slow

TOTALS: Counter = Counter()
COVERED: set[str] = set()


# --- The URLconf ----------------------------------------------------------------------------------------------


def portal_routes() -> dict[str, URLPattern]:
    """Every named route outside the admin, by its namespaced name."""
    found = {}

    def walk(patterns, namespace):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                if pattern.namespace not in (ADMIN_NAMESPACE, API_NAMESPACE):
                    walk(pattern.url_patterns, ":".join(filter(None, [namespace, pattern.namespace])))
            elif pattern.name:
                found[f"{namespace}:{pattern.name}" if namespace else pattern.name] = pattern

    walk(get_resolver().url_patterns, "")
    return found


ROUTES = portal_routes()


def route_of(url: str) -> str | None:
    try:
        match = resolve(urlsplit(url).path)
    except Resolver404:
        return None
    return match.view_name


def url_kwargs(name: str) -> list[str]:
    return list(ROUTES[name].pattern.converters)


# --- The seeded world -----------------------------------------------------------------------------------------


@dataclass
class Persona:
    name: str
    user: object | None
    client: Client
    # Route name -> instance URLs of this persona's own objects; other partners' ids to try in their place.
    instances: dict[str, list[str]] = field(default_factory=dict)
    foreign_kwargs: dict[str, list[str]] = field(default_factory=dict)
    foreign_values: list[str] = field(default_factory=list)
    pages: dict[str, tuple[int, str]] = field(default_factory=dict)  # URL -> (status, HTML) of each page read
    forms: dict[str, list[Form]] = field(default_factory=dict)  # target route -> distinct forms found
    links: dict[str, list[str]] = field(default_factory=dict)  # target route -> link URLs with a query string

    def token(self) -> str:
        return self.client.cookies["csrftoken"].value if "csrftoken" in self.client.cookies else ""


def _fingerprinted_models():
    """Every table a request could change: the portal's apps, users, the task queue and the admin's log."""
    labels = {"portal", "catalog", "subscriptions", "auth", "django_tasks_database", "admin"}
    return [m for m in apps.get_models(include_auto_created=True) if m._meta.app_label in labels]


def rows_written() -> int:
    """How many rows this connection's transaction has written so far (rolled-back savepoints included): when it
    did not move, nothing changed, and the fingerprint need not be read."""
    if connection.vendor == "sqlite":
        return connection.connection.total_changes
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_xact_user_tables")
        return cursor.fetchone()[0]


def fingerprint() -> dict[str, int]:
    """Each table's rows, hashed: any row added, removed or changed shows (the demo is a few thousand rows; read
    only when a refusal or a GET wrote something, to tell a change from a write its savepoint rolled back)."""
    quote = connection.ops.quote_name
    digest = {}
    with connection.cursor() as cursor:
        for model in _fingerprinted_models():
            cursor.execute(f"SELECT * FROM {quote(model._meta.db_table)} ORDER BY {quote(model._meta.pk.column)}")
            digest[model._meta.label] = hash(tuple(map(tuple, cursor.fetchall())))
    return digest


def _buy(customer, actor, how_many: int) -> Cart:
    """An open cart of `actor` for `customer` with `how_many` lines of offers the customer may buy."""
    added = 0
    for availability in Availability.objects.filter(sku__is_trial=False).order_by("pk"):
        try:
            cart_services.add_to_cart(
                customer=customer,
                actor=actor,
                availability_id=availability.pk,
                quantity=2,
                aligned_end_date=None,
                now=NOW,
            )
        except RuleViolation:
            continue
        added += 1
        if added == how_many:
            break
    assert added == how_many, f"the catalog has no {how_many} offers {customer} may buy"
    return cart_services.current_cart(customer, actor, NOW)


def _complete_world(users):
    """What the demo lacks for every route to have an instance: open carts (one of an EU customer, with an
    additional reseller), a pending relationship request, a pending transfer between Northwind and Fabrikam."""
    admin_user, provider = users["admin"], users["provider-admin"]
    northwind = admin_user.membership.partner
    fabrikam = provider.membership.partner
    us = northwind.customers.filter(billing_country="US").order_by("company_name").first()
    eu = northwind.customers.filter(billing_country="DE").order_by("company_name").first()
    _buy(us, admin_user, 2)
    eu_cart = _buy(eu, admin_user, 1)
    cart_services.add_additional_reseller(
        cart=eu_cart, actor=admin_user, partner_id_text=demo.PARTNERS["proseware"].partner_id, now=NOW
    )
    _buy(fabrikam.customers.order_by("company_name").first(), provider, 1)
    # Northwind becomes a partner of one of Fabrikam's customers and asks for its subscriptions (TF1, TF2); another
    # request of each partner waits for its customer.
    source = (
        fabrikam.customers.filter(subscriptions__status="active")
        .exclude(domain__in=northwind.customers.values("domain"))
        .order_by("company_name")
        .first()
    )
    related = transfers.accept_relationship(
        token=transfers.acceptance_token(_invite(admin_user, source.company_name, source.domain)),
        actor=None,
        company_name=source.company_name,
        billing_country=source.billing_country,
        segment=source.segment,
        now=NOW,
    )
    transfers.file_transfer_request(
        actor=admin_user,
        customer=related.customer,
        source_partner_id=fabrikam.partner_id,
        notification_email="it@example.com",
        now=NOW,
    )
    _invite(admin_user, "Pending Ltd", "pending.example")
    _invite(provider, "Elsewhere Ltd", "elsewhere.example")
    # An API token of each, for the tokens page's Revoke forms.
    for user in (admin_user, provider):
        tokens.create_token(user, name="PSA sync", expires_at=None, now=NOW)
        # A webhook endpoint of each partner, for the webhooks pages' edit, test and delete forms.
        webhooks.create_endpoint(
            user,
            url="https://psa.example/hooks",
            events=["subscription-updated"],
            secret="",
            is_active=True,
            created_from=uuid.uuid4(),
            now=NOW,
        )


def _invite(actor, company_name: str, domain: str):
    """A relationship request (TF1) of `actor`'s partner to the customer at `domain`."""
    return transfers.send_relationship_request(
        actor=actor,
        company_name=company_name,
        domain=domain,
        contact_email=f"admin@{domain}",
        site_url="http://testserver/",
        now=NOW,
    )


def _instances(partner, user) -> dict[frozenset, list[dict]]:
    """This user's objects, as the URL parameters that name them, by the set of those parameters' names."""
    customers = list(Customer.objects.filter(partner=partner).order_by("company_name"))
    subscriptions = _kinds_of(
        Subscription.objects.filter(customer__partner=partner)
        .select_related("sku__product__publisher")
        .prefetch_related("scheduled_changes")
        .order_by("customer__company_name", "created_at", "pk")
    )
    carts = list(Cart.objects.filter(owner=user, status=Cart.Status.OPEN).order_by("pk"))
    lines = CartLine.objects.filter(cart__in=carts).select_related("cart").order_by("pk")
    declared = CartAdditionalReseller.objects.filter(cart__in=carts).select_related("cart").order_by("pk")
    with_cart = {cart.customer_id for cart in carts}
    return {
        frozenset(): [{}],
        # Customers with an open cart first: their cart pages have the forms.
        frozenset({"customer_id"}): [
            {"customer_id": c.pk} for c in sorted(customers, key=lambda c: c.pk not in with_cart)
        ],
        frozenset({"customer_id", "subscription_id"}): [
            {"customer_id": s.customer_id, "subscription_id": s.pk} for s in subscriptions
        ],
        # The publisher's set-up page (S3): of an ISV subscription waiting for it (a Microsoft one has none: 404).
        frozenset({"subscription_id"}): [
            {"subscription_id": s.pk}
            for s in subscriptions
            if s.status == "pending" and not s.sku.product.publisher.is_microsoft
        ]
        or [{"subscription_id": s.pk} for s in subscriptions if not s.sku.product.publisher.is_microsoft][:1],
        frozenset({"customer_id", "line_id"}): [
            {"customer_id": line.cart.customer_id, "line_id": line.pk} for line in lines
        ],
        frozenset({"customer_id", "partner_pk"}): [
            {"customer_id": d.cart.customer_id, "partner_pk": d.partner_id} for d in declared
        ],
        frozenset({"customer_id", "cart_id"}): [{"customer_id": c.customer_id, "cart_id": c.pk} for c in carts],
        frozenset({"customer_id", "order_id"}): [
            {"customer_id": o.customer_id, "order_id": o.pk}
            for o in Order.objects.filter(customer__partner=partner).order_by("-pk")[:3]
        ],
        # The customer's acceptance link of each of this partner's relationship requests (TF1).
        frozenset({"token"}): [
            {"token": transfers.acceptance_token(r)}
            for r in RelationshipRequest.objects.filter(target_partner=partner).order_by("status", "pk")
        ],
        frozenset({"transfer_id"}): [{"transfer_id": t.pk} for t in transfers.transfers_for(partner).order_by("pk")],
        frozenset({"token_id"}): [{"token_id": t.pk} for t in ApiToken.objects.filter(user=user).order_by("pk")],
        frozenset({"endpoint_id"}): [
            {"endpoint_id": e.pk} for e in WebhookEndpoint.objects.filter(partner=partner).order_by("pk")
        ],
    }


def _kinds_of(subscriptions) -> list[Subscription]:
    """One subscription of each kind whose page shows other forms: status, trial, add-on, ISV, license-based,
    something scheduled for the renewal, a billing frequency change set for the next charge, add-ons to buy."""
    kinds = {}
    for s in subscriptions:
        kind = (
            s.status,
            s.is_trial,
            s.sku.is_addon,
            s.sku.is_isv,
            s.sku.is_license_based,
            bool(s.scheduled_changes.all()),
            bool(s.next_charge_frequency),
            s.status == "active" and bool(services.eligible_addons(s)),
        )
        kinds.setdefault(kind, s)
    return list(kinds.values())


def _foreign(partner, user) -> tuple[dict[str, list[str]], list[str]]:
    """Ids of what this user may not see: another partner's customer, subscription, order, cart line, relationship
    request; by URL parameter, and as form values."""
    other_subscription = Subscription.objects.exclude(customer__partner=partner).order_by("pk").first()
    mine = Subscription.objects.filter(customer__partner=partner).order_by("pk")
    other_line = CartLine.objects.exclude(cart__owner=user).order_by("pk").first()
    other_order = Order.objects.exclude(customer__partner=partner).order_by("pk").first()
    other_request = RelationshipRequest.objects.exclude(target_partner=partner).order_by("pk").first()
    other_partner = Partner.objects.exclude(pk=partner.pk).order_by("pk").first()
    by_kwarg = {
        "customer_id": [str(other_subscription.customer_id)],
        # another partner's subscription, and one of this partner's other customers (under the wrong customer: the
        # instance URL names its first customer)
        "subscription_id": [str(other_subscription.pk), str(mine.exclude(customer=mine.first().customer).first().pk)],
        "line_id": [str(other_line.pk), "9" * 18],
        "cart_id": [str(other_line.cart_id), "9" * 18],
        "order_id": [str(other_order.pk), "9" * 18],
        "partner_pk": [str(other_partner.pk), "9" * 18],
        "token": [transfers.acceptance_token(other_request) if other_request else "x", "forged.token", UNKNOWN_UUID],
        "transfer_id": [UNKNOWN_UUID],
        "endpoint_id": [
            str(WebhookEndpoint.objects.exclude(partner=partner).order_by("pk").values_list("pk", flat=True)[0]),
            "9" * 18,
        ],
    }
    values = [
        str(other_subscription.customer_id),
        str(other_subscription.pk),
        str(other_line.pk),
        str(other_order.pk),
        str(other_partner.pk),
    ]
    return by_kwarg, values


def _is_public(route: str) -> bool:
    """Whether the route's view is open to a visitor signed out (LoginRequiredMiddleware lets it through)."""
    return getattr(ROUTES[route].callback, "login_required", True) is False


def _persona(name: str, user, signed_in: Persona | None = None) -> Persona:
    client = Client(enforce_csrf_checks=True)  # a token the page did not give is refused, as in production
    if user is not None:
        client.force_login(user)
    persona = Persona(name, user, client)
    if user is not None:
        partner = user.membership.partner
        objects = _instances(partner, user)
        for route in ROUTES:
            params = set(url_kwargs(route))
            kwargs_list = objects.get(frozenset(params), [])
            if route in TRIALS_ONLY:
                # Only a trial has this page (a paid subscription's answers 404): its trials, first.
                trials = {s.pk for s in Subscription.objects.filter(customer__partner=partner, is_trial=True)}
                kwargs_list = sorted(kwargs_list, key=lambda kw: kw.get("subscription_id") not in trials)
            persona.instances[route] = [reverse(route, kwargs=kwargs) for kwargs in kwargs_list]
        persona.foreign_kwargs, persona.foreign_values = _foreign(partner, user)
    else:
        # Signed out: the public pages (the sign-in page), with the objects of `signed_in`; every other page is
        # tried with the admin agent's ids.
        persona.instances = {route: urls for route, urls in signed_in.instances.items() if _is_public(route)}
    return persona


def _read(persona: Persona, url: str) -> tuple[int, str]:
    """A page as this persona sees it: its status, and its HTML if it is a page. Read in a savepoint that is rolled
    back like every fuzzed request; a page that fails is the route's test to report (it opens it again)."""
    TOTALS["crawled"] += 1
    with transaction.atomic():
        try:
            response = persona.client.get(url)
        except Exception:
            response = None
        transaction.set_rollback(True)
    if response is None or response.status_code != 200 or "html" not in response.get("Content-Type", ""):
        return (500 if response is None else response.status_code), ""
    return 200, response.content.decode()


def _crawl(persona: Persona, most: int) -> None:
    """Reads this persona's pages: up to `most` instances of every route (the admin agent's, every kind of
    subscription: their pages show different forms), a quantity preview of each kind, then each distinct GET form
    submitted as rendered (up to 3 times: a preview page has the form that confirms it). Collects the forms and
    links, by the route they go to."""
    seen_forms: set[tuple] = set()
    queue = []
    for route, urls in persona.instances.items():
        if not urls:
            continue
        # A route whose first instance does not open as a page (an action: its GET redirects) has no page to read.
        persona.pages[urls[0]] = _read(persona, urls[0])
        if persona.pages[urls[0]][0] == 200:
            every_kind = persona.name == "admin" and "subscription_id" in url_kwargs(route)
            queue += urls[1:] if every_kind else urls[1:most]
        queue.insert(0, urls[0])
    if persona.user is not None:
        # The quantity panel's POST form appears with a preview of another quantity.
        shown = {
            resolve(url).kwargs["subscription_id"] for url in persona.instances["subscriptions:subscription-detail"]
        }
        queue += [
            reverse("subscriptions:subscription-detail", args=[s.customer_id, s.pk]) + f"?quantity={s.quantity + 1}"
            for s in Subscription.objects.filter(pk__in=shown, status="active")
        ]
    followed: Counter = Counter()
    parsed: set[str] = set()
    while queue:
        url = queue.pop(0)
        if url in parsed:
            continue
        parsed.add(url)
        if url not in persona.pages:
            persona.pages[url] = _read(persona, url)
        html = persona.pages[url][1]
        if not html:
            continue
        for form in forms_on(html, url):
            target = route_of(form.action)
            if target is None or target not in ROUTES:
                continue
            signature = (target, form.method, form.htmx, tuple(sorted(form.names())))
            if signature not in seen_forms:
                seen_forms.add(signature)
                persona.forms.setdefault(target, []).append(form)
            if form.method == "get" and not form.htmx and followed[signature] < 3:
                followed[signature] += 1
                queue.append(form.action + "?" + urlencode(form.data()))
        for link in links_on(html, url):
            target = route_of(link)
            if target in ROUTES and urlsplit(link).query and link not in persona.links.get(target, []):
                persona.links.setdefault(target, []).append(link)


@dataclass
class World:
    personas: dict[str, Persona]
    base: dict[str, int]


@pytest.fixture(scope="module")
def world(request, django_db_setup, django_db_blocker):
    quiet = [logging.getLogger(name) for name in ("django.request", "django.security")]
    levels = [logger.level for logger in quiet]
    with (
        django_db_blocker.unblock(),
        time_machine.travel(NOW, tick=False),
        # The demo's pages too (the sign-in page lists its sign-ins).
        override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"], DEMO_MODE=True),
    ):
        with transaction.atomic():
            demo.seed_demo(now=NOW)
            User = get_user_model()
            users = {u.username: u for u in User.objects.select_related("membership__partner")}
            _complete_world(users)
            personas = {
                "admin": _persona("admin", users["admin"]),
                "provider-admin": _persona("provider-admin", users["provider-admin"]),
                "support": _persona("support", users["support"]),
            }
            personas["anonymous"] = _persona("anonymous", None, signed_in=personas["admin"])
            # A few instances of each route show its forms (the provider's pages add its own: the reseller, the
            # transfer to pick); the support agent's pages give it its CSRF token.
            for name, most in (("admin", 3), ("provider-admin", 3), ("anonymous", 1), ("support", 1)):
                _crawl(personas[name], most)
            # 4xx warnings for thousands of refused requests say nothing; a 500 is still logged.
            for logger in quiet:
                logger.setLevel(logging.ERROR)
            yield World(personas, fingerprint())
            transaction.set_rollback(True)
    for logger, level in zip(quiet, levels, strict=False):
        logger.setLevel(level)
    reporter = request.config.pluginmanager.getplugin("terminalreporter")
    capture = request.config.pluginmanager.getplugin("capturemanager")
    if reporter is not None and capture is not None and TOTALS["requests"]:
        with capture.global_and_fixture_disabled():  # printed with the results, not into a test's captured output
            reporter.write_line(
                f"\nfuzz: {len(COVERED)} of {len(ROUTES)} routes covered ({len(EXEMPT)} exempt), "
                f"{TOTALS['requests']} fuzzed requests ({TOTALS['crawled']} pages crawled first, "
                f"{TOTALS['admin']} of them to admin changelists, {TOTALS['left out']} left out by the bound of "
                f"{MAX_PROBES_PER_ROUTE} a route), {TOTALS['5xx']} answered 5xx, {TOTALS['changed']} refusals or GETs "
                "changed the database"
            )


# --- Probes ---------------------------------------------------------------------------------------------------


# Who is fuzzed in full: an admin agent of a direct-bill partner and of an indirect provider (whose cart has the
# reseller forms), and a visitor signed out (the public pages' forms: sign-in).
FUZZING = ("admin", "provider-admin", "anonymous")


def is_fuzzed(world: World, route: str) -> bool:
    """Whether a page of this route opened (its query parameters are fuzzed) or a page shows a form for it (its
    fields are); a route that only redirects is fuzzed by its URL, if it does redirect."""
    wanted = (300, 400) if route in REDIRECT_ONLY else (200, 201)
    for name in FUZZING:
        persona = world.personas[name]
        if persona.forms.get(route) or any(
            wanted[0] <= persona.pages.get(url, (0,))[0] < wanted[1] for url in persona.instances.get(route, [])
        ):
            return True
    return False


@dataclass(frozen=True)
class Probe:
    persona: str
    method: str
    url: str
    data: tuple[tuple[str, str], ...] = ()
    htmx: bool = False
    label: str = ""


def _mutations(pairs: list[tuple[str, str]], name: str, values) -> list[tuple[str, list[tuple[str, str]]]]:
    """`pairs` with field `name` set to each value (MISSING: left out; TWICE: sent twice, the second time huge)."""
    out = []
    for value in values:
        if value is MISSING:
            out.append(("missing", [(k, v) for k, v in pairs if k != name]))
        elif value is TWICE:
            first = next((v for k, v in pairs if k == name), "1")
            out.append(("twice", [(k, v) for k, v in pairs if k != name] + [(name, first), (name, "9" * 40)]))
        else:
            kept = [(k, v) for k, v in pairs if k != name]
            label = repr(value) if len(value) < 50 else f"{value[:8]!r}…({len(value)} chars)"
            out.append((label, kept + [(name, value)]))
    return out


def _values_for(persona: Persona, name: str, base_value: str, *, htmx: bool = False) -> list:
    if name == "next":
        return HOSTILE_NEXT
    if htmx:
        return HOSTILE_HTMX
    values = list(HOSTILE)
    if base_value.isascii() and base_value.isdigit():
        values += HOSTILE_NUMBER + persona.foreign_values[2:]  # another partner's ids where this one's go
    elif _is_uuid(base_value):
        values += [UNKNOWN_UUID] + persona.foreign_values[:2]
    if "date" in name or _is_date(base_value):
        values += HOSTILE_DATE
    return values


def _is_date(value: str) -> bool:
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _form_probes(persona: Persona, form: Form, done: set, extra: tuple = ()) -> list[Probe]:
    """The form as rendered (also from htmx), then each field (and each of `extra`, fields the view reads that the
    form does not send) changed, left out or doubled, the others as rendered. A field already fuzzed in another
    form of the same route, method and sender (`done`) is not again: the view reads it the same way."""
    pairs = form.data()
    label = f"{form.method.upper()}{' (htmx)' if form.htmx else ''} form"
    probes = [Probe(persona.name, form.method, form.action, tuple(pairs), form.htmx, f"{label} as rendered")]
    if not form.htmx:
        probes.append(Probe(persona.name, form.method, form.action, tuple(pairs), True, f"{label} as rendered, htmx"))
    for name in form.names() + [name for name in extra if name not in form.names()]:
        if (form.method, form.htmx, name) in done:
            continue
        done.add((form.method, form.htmx, name))
        base_value = next((v for k, v in pairs if k == name), "")
        # The CSRF token is the middleware's to check: wrong or missing is enough.
        values = (
            ["forged", MISSING]
            if name == "csrfmiddlewaretoken"
            else _values_for(persona, name, base_value, htmx=form.htmx)
        )
        for what, mutated in _mutations(pairs, name, values):
            probes.append(
                Probe(persona.name, form.method, form.action, tuple(mutated), form.htmx, f"{label} {name}={what}")
            )
    return probes


def _swap_kwarg(url: str, route: str, kwarg: str, value: str) -> str:
    kwargs = dict(resolve(urlsplit(url).path).kwargs)
    kwargs = {k: v for k, v in kwargs.items() if k in ROUTES[route].pattern.converters}
    # reverse() checks the converter: a foreign id of the right shape, put in by hand where it does not fit
    path = reverse(route, kwargs=kwargs)
    return path.replace(f"/{kwargs[kwarg]}/", f"/{value}/", 1)


def _signature(form: Form) -> tuple:
    return form.method, form.htmx, tuple(sorted(form.names()))


def _novel(world: World, persona: Persona, route: str) -> bool:
    """Whether this persona's pages show a form for the route that the admin agent's do not (the provider's cart
    has the reseller's; only the source partner picks what a transfer moves)."""
    theirs = {_signature(f) for f in world.personas["admin"].forms.get(route, [])}
    return any(_signature(f) not in theirs for f in persona.forms.get(route, []))


def plan(world: World, route: str) -> list[Probe]:
    """Every request sent for this route."""
    probes: list[Probe] = []
    done: set = set()  # (method, htmx, field) fuzzed for this route
    fuzzed_pages = False
    for persona in (world.personas[name] for name in FUZZING):
        urls = persona.instances.get(route, [])
        page = next((u for u in urls if persona.pages.get(u, (0,))[0] == 200), urls[0] if urls else None)
        if page is None or (probes and not _novel(world, persona, route)):
            continue  # a second persona only for what the first one's pages lack
        # The page as a browser and as htmx open it; then, on one persona's page, each query parameter its links
        # (and long lists) take, hostile.
        probes += [
            Probe(persona.name, "get", page, label="page"),
            Probe(persona.name, "get", page, htmx=True, label="page (htmx)"),
        ]
        if not fuzzed_pages and persona.pages.get(page, (0,))[0] == 200:
            fuzzed_pages = True
            params: dict[str, list[tuple[str, str]]] = {p: [] for p in ALWAYS_PARAMS + EXTRA_PARAMS.get(route, ())}
            for link in persona.links.get(route, []):
                query = parse_qsl(urlsplit(link).query, keep_blank_values=True)
                for name, _ in query:
                    params.setdefault(name, query)  # the first link with it: the other parameters as it has them
            for name, base in params.items():
                done.add(("get", False, name))
                for what, mutated in _mutations(base, name, _values_for(persona, name, dict(base).get(name, ""))):
                    probes.append(Probe(persona.name, "get", page, tuple(mutated), label=f"query {name}={what}"))
        for form in persona.forms.get(route, []):
            probes += _form_probes(persona, form, done, extra=EXTRA_FIELDS.get(route, ()))
        # Another partner's ids, unknown ids and ids too large in the URL itself: the page and its first POST form.
        post = next((f for f in persona.forms.get(route, []) if f.method == "post"), None)
        for kwarg in url_kwargs(route):
            unknown = UNKNOWN_UUID if "UUID" in type(ROUTES[route].pattern.converters[kwarg]).__name__ else "0"
            for value in persona.foreign_kwargs.get(kwarg, []) + [unknown]:
                probes.append(
                    Probe(persona.name, "get", _swap_kwarg(page, route, kwarg, value), label=f"url {kwarg}={value}")
                )
                if post is not None:
                    probes.append(
                        Probe(
                            persona.name,
                            "post",
                            _swap_kwarg(post.action, route, kwarg, value),
                            tuple(post.data()),
                            label=f"POST url {kwarg}={value}",
                        )
                    )
    # A support agent opens the page and posts what an admin agent's page posts (T2: refused, nothing changes);
    # a visitor signed out too (sent to sign in).
    admin_agent = world.personas["admin"]
    for who in ("support", "anonymous"):
        persona = world.personas[who]
        urls = persona.instances.get(route) or admin_agent.instances.get(route, [])
        if urls:
            probes.append(Probe(who, "get", urls[0], label=f"page as {who}"))
        post = next((f for f in admin_agent.forms.get(route, []) if f.method == "post"), None)
        if post is not None:
            probes.append(Probe(who, "post", post.action, tuple(post.data()), post.htmx, f"POST form as {who}"))
    TOTALS["left out"] += max(0, len(probes) - MAX_PROBES_PER_ROUTE)  # said in the totals, not silently dropped
    return probes[:MAX_PROBES_PER_ROUTE]


@dataclass
class Outcome:
    probe: Probe
    status: int
    error: str = ""
    changed: list[str] = field(default_factory=list)


def send(world: World, probe: Probe) -> Outcome:
    """One request in a savepoint that is rolled back: its answer, and what it changed if it was a GET or refused."""
    persona = world.personas[probe.persona]
    client = persona.client
    saved = copy.deepcopy(client.cookies)
    data = [(k, v) for k, v in probe.data]
    if probe.method == "post" and persona.token():
        # The form's token as this persona's page would give it (the admin agent's token is not theirs).
        data = [(k, persona.token() if k == "csrfmiddlewaretoken" and v and v != "forged" else v) for k, v in data]
    headers = {"HX-Request": "true"} if probe.htmx else {}
    outcome = Outcome(probe, 0)
    with transaction.atomic():
        written = rows_written()
        try:
            if probe.method == "get":
                url = probe.url + ("?" + urlencode(data) if data else "")
                response = client.get(url, headers=headers)
            else:
                response = client.post(
                    probe.url, urlencode(data), content_type="application/x-www-form-urlencoded", headers=headers
                )
            if response.streaming:
                b"".join(response.streaming_content)  # a CSV export reads its rows as it is sent
            outcome.status = response.status_code
        except Exception as exc:  # the test client re-raises what answered 500
            outcome.status, outcome.error = 500, f"{type(exc).__name__}: {exc}"[:300]
        if not outcome.error and (outcome.status >= 400 or probe.method == "get") and rows_written() != written:
            now = fingerprint()
            outcome.changed = [label for label, digest in now.items() if world.base.get(label) != digest]
        transaction.set_rollback(True)
    client.cookies = saved  # a sign-in or sign-out made by the request is undone with its session row
    return outcome


def _report(outcomes: list[Outcome]) -> str:
    lines = []
    for o in outcomes:
        what = o.error or f"HTTP {o.status}"
        if o.changed:
            what += f", changed {', '.join(o.changed)}"
        lines.append(f"  {o.probe.persona} {o.probe.method.upper()} {o.probe.url[:120]} [{o.probe.label}]: {what}")
    return "\n".join(lines)


def run(world: World, probes: list[Probe]) -> list[Outcome]:
    outcomes = [send(world, probe) for probe in probes]
    TOTALS["requests"] += len(outcomes)
    TOTALS["5xx"] += sum(o.status >= 500 for o in outcomes)
    TOTALS["changed"] += sum(bool(o.changed) for o in outcomes)
    return [o for o in outcomes if o.status >= 500 or o.changed]


# --- The tests ------------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("route", sorted(ROUTES))
def test_no_input_answers_500_and_no_refusal_changes_anything(world, route):
    if route in EXEMPT:
        pytest.skip(EXEMPT[route])
    # given every page of this route that the seeded personas can open, and the forms that post to it
    probes = plan(world, route)
    # then the route is fuzzed: a page of it opened (its query parameters fuzzed), or a form some page shows posts
    # to it
    assert is_fuzzed(world, route), (
        f"{route} has no seeded instance (URL parameters {url_kwargs(route)}), or none that opens, and no page shows a "
        "form for it: add one to _instances/_complete_world, or exempt it in EXEMPT with the reason"
    )
    # when each is sent
    failures = run(world, probes)
    COVERED.add(route)
    # then none answered 5xx, and no GET or refusal changed anything
    assert not failures, f"{len(failures)} of {len(probes)} requests to {route} failed:\n{_report(failures[:40])}"


def _raises(request):
    raise ValueError("a view that fails")


def _changes_then_refuses(request):
    Customer.objects.update(company_name="Changed")
    return HttpResponseBadRequest("refused, after a change")


# The URLconf of the test below: a view that answers 500, and one that changes the database and then refuses.
urlpatterns = [path("raises/", _raises), path("changes-then-refuses/", _changes_then_refuses)]


@pytest.mark.django_db
def test_the_fuzz_reports_a_500_and_a_refusal_that_changed_something(world):
    # given the portal's URLconf replaced by two views that do what the fuzz must catch
    with override_settings(ROOT_URLCONF=__name__):
        # when the fuzz sends a request to each
        raised = send(world, Probe("admin", "get", "/raises/"))
        changed = send(world, Probe("admin", "get", "/changes-then-refuses/"))
    # then it reports the 500 with its exception, and the refusal with the table it changed
    assert (raised.status, raised.error) == (500, "ValueError: a view that fails")
    assert (changed.status, changed.changed) == (400, ["portal.Customer"])
    # and the change was rolled back with its savepoint
    assert not Customer.objects.filter(company_name="Changed").exists()


def test_every_route_is_fuzzed_or_exempt_with_a_reason():
    # The parametrisation above is the URLconf itself; an exemption must name a route that exists, with a reason.
    assert ROUTES, "no route found in the URLconf"
    for listed in (EXEMPT, REDIRECT_ONLY):
        assert set(listed) <= set(ROUTES), f"routes that no longer exist: {set(listed) - set(ROUTES)}"
        assert all(reason.strip() for reason in listed.values())
    assert "portal:customer-list" in ROUTES and "catalog:cart-add" in ROUTES  # the walk reaches the included apps


@pytest.mark.django_db
def test_admin_changelists_survive_hostile_parameters(world):
    # given the platform operator (a superuser) in the Django admin
    operator = get_user_model().objects.create(username="fuzz-operator", is_staff=True, is_superuser=True)
    persona = Persona("operator", operator, Client())
    persona.client.force_login(operator)
    world.personas["operator"] = persona
    # when every registered model's list is asked for hostile pages, orderings and searches
    probes = []
    for model in admin.site._registry:
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        probes.append(Probe("operator", "get", url, label="changelist"))
        for name, value in (("p", "9" * 40), ("o", "9" * 40), ("o", "x.-"), ("q", "\x00"), ("_to_field", "password")):
            probes.append(Probe("operator", "get", url, ((name, value),), label=f"{name}={value[:10]!r}"))
    failures = run(world, probes)
    TOTALS["admin"] += len(probes)
    # then none answers 5xx or changes anything
    assert not failures, _report(failures)
