"""Every state-changing action happens once, however it is submitted (portal/versions.py).

The routes come from the URLconf, so a new one can't be missed: each is either a state-changing action with a
scenario here (a world in which its form succeeds), or a page that changes nothing when posted to. For every
action: the form is read from the page a person would submit it from (its hidden version included), posted, then
posted again exactly as before (a double click, back and resubmit, a retry after a time-out): the second changes
nothing. On PostgreSQL the two identical posts are also sent at once from two threads: the state changes once,
exactly as much as one post changes it.
"""

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from html.parser import HTMLParser
from urllib.parse import urljoin

import pytest
import time_machine
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from catalog.models import Cart, CartAdditionalReseller, CartLine, Order, OrderLine, UpgradePath
from portal.models import Customer, Partner
from subscriptions import cycles, transfers
from subscriptions.models import (
    AuditEntry,
    BillingLine,
    RelationshipRequest,
    ScheduledChange,
    SeatLot,
    Subscription,
    TransferRequest,
)
from subscriptions.states import Status
from tests import factories
from tests.helpers import at_once

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)

# Routes that change nothing (pages, lists, exports): posting to them must change nothing either.
READ_ONLY = {
    "portal:home",
    "portal:about",
    "portal:favicon",
    "portal:customer-list",
    "portal:search",
    "portal:customer-detail",
    "portal:customer-account",
    "portal:customer-activity",
    "catalog:all-orders",
    "catalog:offer-list",
    "catalog:cart-detail",
    "catalog:order-list",
    "catalog:order-detail",
    "catalog:order-confirmation",
    "subscriptions:all-subscriptions",
    "subscriptions:renewals",
    "subscriptions:subscription-list",
    "subscriptions:subscription-export",
    "subscriptions:subscription-detail",
    "subscriptions:transfer-list",
    "subscriptions:relationship-mailbox",
}
# Routes outside this test, and why.
EXEMPT = {
    "portal:login": "signs in: a second sign-in is a new session, not a second change",
    "portal:logout": "signs out: doing it twice leaves the same state",
    "portal:language-set": "sets the language: choosing it twice leaves the same choice (tests/portal/test_language)",
    "api:token-list": "makes a token: a second submit of the form is refused by its version (tests/api)",
    "api:token-revoke": "revokes a token: revoking it again changes nothing (tests/api)",
    "api:webhook-list": "adds an endpoint: a second submit of the form is refused by its form id (tests/api)",
    "api:webhook-detail": "edits an endpoint: a second submit is refused by its version (tests/api)",
    "api:webhook-test": "sends a test event: a second submit is refused by the endpoint's version (tests/api)",
    "api:webhook-delete": "deletes an endpoint: a second submit finds it gone (404) (tests/api)",
}


def named_routes() -> set[str]:
    """Every named route of the portal (the Django admin has its own confirmations and is scoped elsewhere; the REST
    API's writes are made once by If-Match and MS-RequestId, tests/api)."""
    names = set()

    def walk(patterns, namespace):
        for entry in patterns:
            if isinstance(entry, URLResolver):
                if entry.app_name == "admin" or entry.namespace == "api-v1":
                    continue
                walk(entry.url_patterns, entry.namespace or namespace)
            elif isinstance(entry, URLPattern) and entry.name:
                names.add(f"{namespace}:{entry.name}" if namespace else entry.name)

    walk(get_resolver().url_patterns, None)
    return names


# --- Reading a form as the browser would send it ----------------------------------------------------------------


class _Forms(HTMLParser):
    """The page's forms: action, and each successful control's name and value, the way a browser submits them
    (hidden inputs, the checked boxes and radios, each select's selected option; controls outside a form that
    name it with form="...")."""

    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []
        self._open: dict | None = None
        self._select: tuple | None = None
        self._orphans: list[tuple] = []

    def _target(self, attrs):
        owner = attrs.get("form")
        if owner:
            return owner
        return self._open

    def handle_starttag(self, tag, attrs):
        attrs = {k: (v if v is not None else "") for k, v in attrs}
        if tag == "form":
            self._open = {
                "action": attrs.get("action", ""),
                "method": attrs.get("method", "get").lower(),
                "id": attrs.get("id", ""),
                "fields": [],
                "formactions": [],
            }
            self.forms.append(self._open)
            return
        target = self._target(attrs)
        if tag == "button" and attrs.get("formaction"):
            if isinstance(target, dict):
                target["formactions"].append(attrs["formaction"])
            elif isinstance(target, str):
                self._orphans.append((target, None, attrs["formaction"]))
        if tag == "input" and "name" in attrs and "disabled" not in attrs:
            kind = attrs.get("type", "text").lower()
            if kind in ("submit", "button", "image", "reset"):
                return
            if kind in ("checkbox", "radio") and "checked" not in attrs:
                return
            self._add(target, attrs["name"], attrs.get("value", "on" if kind in ("checkbox", "radio") else ""))
        elif tag == "select" and "name" in attrs and "disabled" not in attrs:
            self._select = (target, attrs["name"], [])
        elif tag == "option" and self._select is not None:
            self._select[2].append((attrs.get("value", ""), "selected" in attrs))
        elif tag == "textarea" and "name" in attrs:
            self._add(target, attrs["name"], "")

    def handle_endtag(self, tag):
        if tag == "form":
            self._open = None
        elif tag == "select" and self._select is not None:
            target, name, options = self._select
            chosen = next((v for v, selected in options if selected), options[0][0] if options else None)
            if chosen is not None:
                self._add(target, name, chosen)
            self._select = None

    def _add(self, target, name, value):
        if isinstance(target, str):
            self._orphans.append((target, name, value))
        elif target is not None:
            target["fields"].append((name, value))

    def close(self):
        super().close()
        for form_id, name, value in self._orphans:
            for form in self.forms:
                if form["id"] == form_id:
                    if name is None:
                        form["formactions"].append(value)
                    else:
                        form["fields"].append((name, value))


def form_data(page_html: str, page_url: str, action: str, *, fields: dict, versioned: bool = True) -> dict:
    """The POST body of the form on the page that posts to `action` (its own action or a button's formaction),
    with `fields` set as a person would set them; a form whose controls can't hold `fields` isn't the one."""
    parser = _Forms()
    parser.feed(page_html)
    parser.close()
    candidates = [
        f
        for f in parser.forms
        if f["method"] == "post"
        and action in {urljoin(page_url, a or page_url).split("#")[0] for a in [f["action"], *f["formactions"]]}
    ]
    assert candidates, f"no form on {page_url} posts to {action}"
    for form in candidates:
        data: dict[str, list[str]] = {}
        for name, value in form["fields"]:
            data.setdefault(name, []).append(value)
        if all(name in data for name in fields if not name.startswith("+")):
            for name, value in fields.items():
                data[name.lstrip("+")] = [str(value)]
            assert ("version" in data) == versioned, f"the form posting to {action}: version {data.get('version')}"
            return data
    raise AssertionError(f"no form posting to {action} has the fields {sorted(fields)}")


# --- Worlds in which each action succeeds -------------------------------------------------------------------------


@dataclass
class Scenario:
    user: object  # signed in; None: the customer, following its link
    page: str  # where a person finds the form
    action: str  # where it posts
    fields: dict = field(default_factory=dict)  # what the person fills in ("+name": a field the page doesn't have)
    # A form that creates something has no version to post: its second submit finds the first's result (a pending
    # request to the same customer) and is refused.
    creates: bool = False


def _world(kind=Partner.Kind.DIRECT_BILL, **customer):
    partner = factories.PartnerFactory(kind=kind)
    user = factories.staff(partner, "admin_agent")
    return partner, user, factories.CustomerFactory(partner=partner, **customer)


def _detail(sub, **query):
    url = reverse("subscriptions:subscription-detail", args=[sub.customer_id, sub.pk])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def _action(name, sub):
    return reverse(f"subscriptions:subscription-{name}", args=[sub.customer_id, sub.pk])


def _subscription_action(name, page_query=None, fields=None, **sub_kwargs):
    def build():
        _, user, customer = _world()
        sub = factories.SubscriptionFactory(customer=customer, **sub_kwargs)
        return Scenario(user, _detail(sub, **(page_query or {})), _action(name, sub), dict(fields or {}))

    return build


def _addons():
    _, user, customer = _world()
    base = factories.SubscriptionFactory(customer=customer)
    addon = factories.addon_offer(base.sku, name="Audio Conferencing", price="2.00")
    return Scenario(user, _detail(base), _action("addons", base), {f"addon-{addon.pk}": "2"})


def _unschedule():
    _, user, customer = _world()
    sub = factories.SubscriptionFactory(customer=customer)
    factories.ScheduledChangeFactory(subscription=sub, quantity=20)
    return Scenario(user, _detail(sub), _action("unschedule", sub))


def _frequency_sku():
    return factories.SkuFactory(availabilities=[("P1Y", "monthly", "10.00"), ("P1Y", "annual", "110.00")])


def _next_charge(remove: bool):
    def build():
        _, user, customer = _world()
        sku = _frequency_sku()
        sub = factories.SubscriptionFactory(customer=customer, sku=sku, availability=factories.availability(sku))
        if remove:
            cycles.set_next_charge_frequency(subscription_id=sub.pk, actor=user, billing_frequency="annual", now=NOW)
            return Scenario(user, _detail(sub), _action("next-charge-frequency-remove", sub))
        return Scenario(user, _detail(sub), _action("next-charge-frequency", sub), {"billing_frequency": "annual"})

    return build


def _publisher_setup():
    _, user, customer = _world()
    sku = factories.SkuFactory(isv=True)
    sub = factories.SubscriptionFactory(customer=customer, sku=sku, status=Status.PENDING)
    page = reverse("subscriptions:publisher-setup", args=[sub.pk])
    return Scenario(user, page, page)


def _upgrade():
    _, user, customer = _world()
    sub = factories.SubscriptionFactory(customer=customer)
    target = factories.SkuFactory(name="Higher tier")
    UpgradePath.objects.create(source=sub.sku, target=target)
    url = reverse("subscriptions:subscription-upgrade", args=[customer.pk, sub.pk])
    preview = f"{url}?target={target.pk}&quantity={sub.quantity}&term=P1Y&billing_frequency=monthly&into="
    return Scenario(user, preview, url, {"confirm": "yes"})


def _convert():
    _, user, customer = _world()
    paid = factories.SkuFactory(name="Paid")
    trial_sku = factories.SkuFactory(trial=True, trial_of=paid, availabilities=[("P1M", "monthly", "0.00")])
    trial = factories.SubscriptionFactory(
        customer=customer,
        sku=trial_sku,
        availability=factories.availability(trial_sku, "P1M"),
        trial=True,
        term="P1M",
        unit_price=Decimal("0.00"),
        term_start=datetime(2026, 11, 10, tzinfo=UTC),
        term_end=date(2026, 12, 9),
        trial_ends_at=datetime(2026, 12, 10, tzinfo=UTC),
    )
    url = reverse("subscriptions:subscription-convert", args=[customer.pk, trial.pk])
    return Scenario(user, url, url, {"+target": f"sku-{paid.pk}", "when": "now"})


def _cart(kind=Partner.Kind.DIRECT_BILL, **customer):
    partner, user, customer = _world(kind, **customer)
    cart = factories.CartFactory(customer=customer, owner=user, created_at=NOW - timedelta(hours=1))
    line = factories.CartLineFactory(cart=cart, quantity=5)
    return partner, user, customer, cart, line


def _cart_add():
    _, user, customer = _world()
    sku = factories.SkuFactory(name="Catalog offer")
    return Scenario(
        user,
        reverse("catalog:offer-list", args=[customer.pk]),
        reverse("catalog:cart-add", args=[customer.pk]),
        {"availability": factories.availability(sku).pk, "quantity": "3"},
    )


def _cart_line(name, fields=None):
    def build():
        _, user, customer, _, line = _cart()
        return Scenario(
            user,
            reverse("catalog:cart-detail", args=[customer.pk]),
            reverse(f"catalog:cart-line-{name}", args=[customer.pk, line.pk]),
            dict(fields or {}),
        )

    return build


def _cart_reseller():
    partner, user, customer, _, _ = _cart(Partner.Kind.INDIRECT_PROVIDER)
    link = factories.ResellerLinkFactory(provider=partner)
    return Scenario(
        user,
        reverse("catalog:cart-detail", args=[customer.pk]),
        reverse("catalog:cart-reseller", args=[customer.pk]),
        {"reseller": link.reseller.pk},
    )


def _cart_additional(remove: bool):
    def build():
        _, user, customer, cart, _ = _cart(billing_country="DE")
        other = factories.PartnerFactory(kind=Partner.Kind.INDIRECT_RESELLER)
        page = reverse("catalog:cart-detail", args=[customer.pk])
        if remove:
            CartAdditionalReseller.objects.create(cart=cart, partner=other, position=1)
            return Scenario(user, page, reverse("catalog:cart-additional-remove", args=[customer.pk, other.pk]))
        return Scenario(
            user, page, reverse("catalog:cart-additional-add", args=[customer.pk]), {"partner_id": other.partner_id}
        )

    return build


def _cart_purchase():
    _, user, customer, cart, _ = _cart()
    return Scenario(
        user,
        reverse("catalog:cart-detail", args=[customer.pk]),
        reverse("catalog:cart-purchase", args=[customer.pk, cart.pk]),
        {"+attest": "on"},
    )


def _transfer_world():
    source, source_user, customer = _world()
    factories.SubscriptionFactory(customer=customer)
    target = factories.PartnerFactory(kind=Partner.Kind.DIRECT_BILL)
    target_user = factories.staff(target, "admin_agent")
    relationship = _invite(target_user, customer.domain)
    relationship = transfers.accept_relationship(
        token=transfers.acceptance_token(relationship),
        actor=AnonymousUser(),
        company_name=customer.company_name,
        billing_country="US",
        segment="commercial",
        now=NOW,
    )
    return source, source_user, customer, target_user, relationship


def _invite(user, domain):
    return transfers.send_relationship_request(
        actor=user,
        company_name="Invited",
        domain=domain,
        contact_email=f"admin@{domain}",
        site_url="http://testserver/",
        now=NOW,
    )


def _transfer_file():
    source, _, _, target_user, relationship = _transfer_world()
    return Scenario(
        target_user,
        reverse("subscriptions:transfer-list"),
        reverse("subscriptions:transfer-file"),
        {
            "customer": relationship.customer_id,
            "source_partner_id": source.partner_id,
            "notification_email": "it@example.com",
        },
        creates=True,
    )


def _transfer(name):
    def build():
        source, source_user, customer, target_user, relationship = _transfer_world()
        transfer = transfers.file_transfer_request(
            actor=target_user,
            customer=relationship.customer,
            source_partner_id=source.partner_id,
            notification_email="it@example.com",
            now=NOW,
        )
        page = reverse("subscriptions:transfer-detail", args=[transfer.pk])
        if name == "complete":
            picked = customer.subscriptions.get()
            return Scenario(source_user, page, page, {"+subscriptions": picked.pk})
        return Scenario(target_user, page, reverse("subscriptions:transfer-cancel", args=[transfer.pk]))

    return build


def _relationship_send():
    partner, user, _ = _world()
    return Scenario(
        user,
        reverse("subscriptions:transfer-list"),
        reverse("subscriptions:relationship-send"),
        {
            "company_name": "Tailspin Toys",
            "domain": "tailspintoys.onmicrosoft.com",
            "contact_email": "admin@tailspintoys.onmicrosoft.com",
        },
        creates=True,
    )


def _customer_add():
    partner, user, _ = _world()
    fields = {
        "company_name": "Tailspin Toys",
        # A new tenant each time: the test of two posts at once builds a second world beside the first's customer.
        "domain_prefix": f"tailspin{partner.pk}",
        "address_line1": "1 Main Street",
        "city": "Seattle",
        "postal_code": "98101",
        "billing_country": "US",
        "contact_first_name": "Terry",
        "contact_last_name": "Adams",
        "contact_email": "terry@tailspintoys.com",
        "+mca_accepted": "on",
        "mca_accepted_by_name": "Terry Adams",
        "mca_accepted_by_email": "terry@tailspintoys.com",
        "mca_accepted_on": "2026-11-20",
    }
    return Scenario(user, reverse("portal:customer-add"), reverse("portal:customer-add"), fields, creates=True)


def _relationship_accept():
    _, user, _ = _world()
    relationship = _invite(user, "wingtip.onmicrosoft.com")
    page = reverse("subscriptions:relationship-accept", args=[transfers.acceptance_token(relationship)])
    # The customer, not signed in to the portal, follows its link.
    return Scenario(None, page, page, {"company_name": "Wingtip Toys", "billing_country": "US"}, creates=True)


SCENARIOS = {
    "subscriptions:subscription-quantity": _subscription_action("quantity", {"quantity": 12}, {"quantity": "12"}),
    "subscriptions:subscription-suspend": _subscription_action("suspend"),
    "subscriptions:subscription-reactivate": _subscription_action("reactivate", suspended=True),
    "subscriptions:subscription-cancel": _subscription_action(
        "cancel", {"confirm": "cancel"}, in_cancellation_window=True
    ),
    "subscriptions:subscription-auto-renew": _subscription_action("auto-renew"),
    "subscriptions:subscription-rename": _subscription_action("rename", fields={"friendly_name": "Sales team"}),
    "subscriptions:subscription-addons": _addons,
    "subscriptions:subscription-schedule": _subscription_action("schedule", fields={"quantity": "15"}),
    "subscriptions:subscription-unschedule": _unschedule,
    "subscriptions:subscription-next-charge-frequency": _next_charge(remove=False),
    "subscriptions:subscription-next-charge-frequency-remove": _next_charge(remove=True),
    "subscriptions:publisher-setup": _publisher_setup,
    "subscriptions:subscription-upgrade": _upgrade,
    "subscriptions:subscription-convert": _convert,
    "catalog:cart-add": _cart_add,
    "catalog:cart-line-update": _cart_line("update", {"quantity": "7"}),
    "catalog:cart-line-remove": _cart_line("remove"),
    "catalog:cart-reseller": _cart_reseller,
    "catalog:cart-additional-add": _cart_additional(remove=False),
    "catalog:cart-additional-remove": _cart_additional(remove=True),
    "catalog:cart-purchase": _cart_purchase,
    "subscriptions:relationship-send": _relationship_send,
    "portal:customer-add": _customer_add,
    "subscriptions:relationship-accept": _relationship_accept,
    "subscriptions:transfer-file": _transfer_file,
    "subscriptions:transfer-detail": _transfer("complete"),
    "subscriptions:transfer-cancel": _transfer("cancel"),
}


def fingerprint() -> dict:
    """Everything an action may change, by id."""
    return {
        "subscriptions": sorted(
            Subscription.objects.values_list(
                "pk",
                "status",
                "quantity",
                "auto_renew",
                "friendly_name",
                "sku_id",
                "customer_id",
                "version",
                "next_charge_frequency",
                "setup_confirmed_at",
                "cancelled_at",
            )
        ),
        "lots": sorted(SeatLot.objects.values_list("pk", "quantity", "removed", "window_ends_at")),
        "billing": sorted(BillingLine.objects.values_list("pk", "amount")),
        "audit": AuditEntry.objects.count(),
        "scheduled": sorted(ScheduledChange.objects.values_list("pk", "kind", "quantity")),
        "carts": sorted(Cart.objects.values_list("pk", "status", "version", "reseller_id")),
        "cart_lines": sorted(CartLine.objects.values_list("pk", "quantity")),
        "additional": sorted(CartAdditionalReseller.objects.values_list("cart_id", "partner_id", "position")),
        "orders": sorted(Order.objects.values_list("pk", "status")),
        "order_lines": OrderLine.objects.count(),
        "transfers": sorted(TransferRequest.objects.values_list("pk", "status", "version")),
        "relationships": sorted(RelationshipRequest.objects.values_list("pk", "status", "domain")),
        "customers": Customer.objects.count(),
    }


def shape() -> Counter:
    """How much there is of everything, without ids: two worlds built alike compare by it."""
    counts = Counter(
        {f"{name}:rows": len(rows) if isinstance(rows, list) else rows for name, rows in fingerprint().items()}
    )
    counts.update(
        ("subscription", s.status, s.quantity, s.auto_renew, bool(s.friendly_name))
        for s in Subscription.objects.only("status", "quantity", "auto_renew", "friendly_name")
    )
    counts["versions"] = (
        sum(Subscription.objects.values_list("version", flat=True))
        + sum(Cart.objects.values_list("version", flat=True))
        + sum(TransferRequest.objects.values_list("version", flat=True))
    )
    counts["billed"] = int(sum(BillingLine.objects.values_list("amount", flat=True), Decimal("0")) * 100)
    return counts


def _delta(before: Counter, after: Counter) -> dict:
    return {key: after[key] - before[key] for key in set(before) | set(after) if after[key] != before[key]}


def _prepare(name):
    scenario = SCENARIOS[name]()
    client = Client()
    if scenario.user is not None:
        client.force_login(scenario.user)
    page = client.get(scenario.page)
    assert page.status_code == 200, (scenario.page, page.status_code)
    return (
        scenario,
        client,
        form_data(
            page.content.decode(),
            scenario.page,
            scenario.action,
            fields=scenario.fields,
            versioned=not scenario.creates,
        ),
    )


def _succeeded(response) -> bool:
    return response.status_code in (200, 302) and b'class="msgbar msgbar-error"' not in response.content


# --- The tests ----------------------------------------------------------------------------------------------------


def test_every_route_is_an_action_with_a_scenario_or_changes_nothing():
    routes = named_routes()
    unclassified = routes - set(SCENARIOS) - READ_ONLY - set(EXEMPT)
    assert not unclassified, f"routes with no double-submit scenario and not known to be read-only: {unclassified}"
    assert not (set(SCENARIOS) | READ_ONLY | set(EXEMPT)) - routes, "stale names in this test"


@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_the_same_post_replayed_after_success_changes_nothing(name):
    with time_machine.travel(NOW, tick=False):
        scenario, client, data = _prepare(name)
        before = fingerprint()
        # when the form is submitted
        first = client.post(scenario.action, data)
        assert _succeeded(first), (first.status_code, first.content.decode()[:2000])
        done = fingerprint()
        assert done != before, "the first submit changed nothing"
        # and submitted again, exactly as before
        again = client.post(scenario.action, data)
        # then it is refused, or answered as done (a purchased cart shows its order), and nothing changed
        assert again.status_code in (302, 409, 410), again.status_code  # 410: a used acceptance link
        assert fingerprint() == done


@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted(READ_ONLY))
def test_posting_to_a_page_changes_nothing(name):
    with time_machine.travel(NOW, tick=False):
        _, user, customer = _world()
        sub = factories.SubscriptionFactory(customer=customer)
        order = factories.OrderFactory(customer=customer, placed_by=user)
        args = {"customer_id": customer.pk, "subscription_id": sub.pk, "order_id": order.pk}
        client = Client()
        client.force_login(user)
        needs = [key for key in ("customer_id", "subscription_id", "order_id") if f"<{key}>" in _route(name)]
        url = reverse(name, kwargs={key: args[key] for key in needs})
        before = fingerprint()
        response = client.post(url, {"quantity": "5", "on": "0", "version": "1"})
        assert response.status_code < 500
        assert fingerprint() == before


def _route(name: str) -> str:
    """The route's pattern text with its converters' names, e.g. 'customers/<customer_id>/'."""
    namespace, _, short = name.partition(":")
    resolver = get_resolver()
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver) and entry.namespace == namespace:
            for pattern in entry.url_patterns:
                if isinstance(pattern, URLPattern) and pattern.name == short:
                    text = str(pattern.pattern)
                    for converter in ("uuid:", "id:", "int:", "str:"):
                        text = text.replace(converter, "")
                    return text
    raise LookupError(name)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="two submits at once need row locks (PostgreSQL)")
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_two_identical_posts_at_once_change_the_state_once(name):
    with time_machine.travel(NOW, tick=False):
        # given what one submit changes, in a world built for it
        scenario, client, data = _prepare(name)
        before = shape()
        assert _succeeded(client.post(scenario.action, data))
        once = _delta(before, shape())
        # when, in a second world built alike, the same form is submitted twice at the same instant
        scenario, _, data = _prepare(name)
        before = shape()
        clients = [Client(), Client()]
        for each in clients:
            if scenario.user is not None:
                each.force_login(scenario.user)
        # (the test client raises what would have been a 500: at_once raises it here)
        responses, _ = at_once(*[lambda each=each: each.post(scenario.action, data) for each in clients])
        # then one acted, the other was refused (a purchase: both shown the one order), and the state changed once
        assert len(responses) == 2
        if name == "catalog:cart-purchase":
            assert [r.status_code for r in responses] == [302, 302] and responses[0]["Location"] == responses[1][
                "Location"
            ]
        else:
            assert sorted(_succeeded(r) for r in responses) == [False, True], [r.status_code for r in responses]
            assert sorted(r.status_code for r in responses)[1] in (302, 409) or all(
                r.status_code < 500 for r in responses
            )
        assert _delta(before, shape()) == once
