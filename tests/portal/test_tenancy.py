"""T3 tenancy through the views: another partner's customers, carts, orders and subscriptions do
not exist for a signed-in user (404), and a POST to them changes nothing."""

import uuid
from dataclasses import dataclass

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import URLResolver, get_resolver, reverse

from catalog.models import Cart, CartAdditionalReseller, CartLine, Order
from portal.models import Partner
from subscriptions import services
from subscriptions.models import AuditEntry, Subscription
from tests import factories
from tests.helpers import database_state, visible_text

TENANT_NAMESPACES = {"portal", "catalog", "subscriptions"}

# Every URL that names a customer, with how it is requested and a body that would change
# something if tenancy let it through.
CUSTOMER_ROUTES = {
    "portal:customer-detail": "get",
    "portal:customer-account": "get",
    "portal:customer-activity": "get",
    "catalog:offer-list": "get",
    "catalog:cart-detail": "get",
    "catalog:cart-add": "post",
    "catalog:cart-line-update": "post",
    "catalog:cart-line-remove": "post",
    "catalog:cart-reseller": "post",
    "catalog:cart-additional-add": "post",
    "catalog:cart-additional-remove": "post",
    "catalog:cart-purchase": "post",
    "catalog:order-list": "get",
    "catalog:order-detail": "get",
    "catalog:order-confirmation": "get",
    "subscriptions:subscription-list": "get",
    "subscriptions:subscription-export": "get",
    "subscriptions:subscription-detail": "get",
    "subscriptions:subscription-quantity": "post",
    "subscriptions:subscription-suspend": "post",
    "subscriptions:subscription-reactivate": "post",
    "subscriptions:subscription-cancel": "post",
    "subscriptions:subscription-auto-renew": "post",
    "subscriptions:subscription-rename": "post",
    "subscriptions:subscription-addons": "post",
    "subscriptions:subscription-schedule": "post",
    "subscriptions:subscription-unschedule": "post",
    "subscriptions:subscription-next-charge-frequency": "post",
    "subscriptions:subscription-next-charge-frequency-remove": "post",
    "subscriptions:subscription-upgrade": "post",
    "subscriptions:subscription-convert": "post",
}


def routes_with_params() -> dict[str, set[str]]:
    """Every named route of the portal's apps with the names of its URL parameters."""
    found: dict[str, set[str]] = {}

    def walk(patterns, namespace):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                if pattern.namespace == "admin":
                    continue
                walk(pattern.url_patterns, pattern.namespace or namespace)
            elif pattern.name and namespace in TENANT_NAMESPACES:
                found[f"{namespace}:{pattern.name}"] = set(pattern.pattern.converters)

    walk(get_resolver().url_patterns, None)
    return found


@dataclass
class World:
    """One partner's customer with everything a URL can name: a cart with a line, a reseller and
    an additional reseller, an order and a subscription."""

    partner: Partner
    customer: object
    user: object
    cart: Cart
    line: CartLine
    additional: Partner
    availability: object
    order: Order
    subscription: Subscription

    def kwargs(self, params: set[str]) -> dict:
        values = {
            "customer_id": self.customer.pk,
            "line_id": self.line.pk,
            "partner_pk": self.additional.pk,
            "cart_id": self.cart.pk,
            "order_id": self.order.pk,
            "subscription_id": self.subscription.pk,
        }
        return {name: values[name] for name in params}

    def post_data(self, name: str) -> dict:
        return {
            "catalog:cart-add": {"availability": self.availability.pk, "quantity": "3"},
            "catalog:cart-line-update": {"quantity": "7"},
            "catalog:cart-reseller": {"reseller": ""},
            "catalog:cart-additional-add": {"partner_id": factories.PartnerFactory().partner_id},
            "catalog:cart-purchase": {"attest": "on"},
            "subscriptions:subscription-quantity": {"quantity": "1"},
            "subscriptions:subscription-auto-renew": {"on": "0"},
            "subscriptions:subscription-rename": {"friendly_name": "Taken over"},
            "subscriptions:subscription-schedule": {"quantity": "7"},
            "subscriptions:subscription-unschedule": {"change": "1"},
        }.get(name, {})


def make_world(partner: Partner, *, offer: str, country: str = "DE") -> World:
    reseller = factories.PartnerFactory(kind=Partner.Kind.INDIRECT_RESELLER)
    if partner.kind == Partner.Kind.INDIRECT_PROVIDER:
        factories.ResellerLinkFactory(provider=partner, reseller=reseller)
    customer = factories.CustomerFactory(partner=partner, billing_country=country)
    user = factories.staff(partner, "sales_agent")
    sku = factories.SkuFactory(name=offer)
    avail = factories.availability(sku)
    cart = factories.CartFactory(customer=customer, owner=user, reseller=reseller)
    line = factories.CartLineFactory(cart=cart, availability=avail, quantity=5)
    additional = factories.PartnerFactory(kind=Partner.Kind.INDIRECT_RESELLER)
    CartAdditionalReseller.objects.create(cart=cart, partner=additional, position=1)
    order = factories.OrderFactory(customer=customer, placed_by=user)
    order_line = factories.OrderLineFactory(order=order, availability=avail, fulfilled=True)
    subscription = factories.SubscriptionFactory(customer=customer, sku=sku, order_line=order_line)
    return World(partner, customer, user, cart, line, additional, avail, order, subscription)


@pytest.fixture
def theirs(now):
    """Another partner (an indirect provider, EU customer: every cart action applies) and its data."""
    return make_world(
        factories.PartnerFactory(kind=Partner.Kind.INDIRECT_PROVIDER, name="Fourth Coffee Distribution"),
        offer="Dynamics 365 Sales Enterprise",
    )


@pytest.fixture
def mine(now, direct_partner, sales):
    world = make_world(direct_partner, offer="Microsoft 365 Business Premium")
    # the signed-in user owns this world's cart
    Cart.objects.filter(pk=world.cart.pk).update(owner=sales)
    world.cart.refresh_from_db()
    world.user = sales
    return world


def request(client, name: str, kwargs: dict, data: dict | None = None):
    url = reverse(name, kwargs=kwargs)
    if CUSTOMER_ROUTES[name] == "post":
        return client.post(url, data or {})
    return client.get(url)


def test_every_customer_route_is_covered_by_the_tenancy_tests():
    # given every named route of the portal's apps
    routes = routes_with_params()
    # when those naming a customer are picked
    customer_routes = {name for name, params in routes.items() if "customer_id" in params}
    # then the tenancy tests below request exactly those
    assert customer_routes == set(CUSTOMER_ROUTES)


@pytest.mark.rule("T3")
@pytest.mark.parametrize("name", sorted(CUSTOMER_ROUTES))
def test_t3_another_partners_customer_urls_answer_404_and_change_nothing(signed_in, mine, theirs, name):
    # given a signed-in sales agent of Contoso Direct, and another partner's customer with a cart,
    # an order and a subscription
    params = routes_with_params()[name]
    before = database_state("catalog", "subscriptions")
    # when the user requests the other partner's URL
    response = request(signed_in, name, theirs.kwargs(params), theirs.post_data(name))
    # then it does not exist, and nothing changed anywhere
    assert response.status_code == 404
    assert database_state("catalog", "subscriptions") == before


@pytest.mark.rule("T3")
@pytest.mark.parametrize("name", sorted(CUSTOMER_ROUTES))
def test_t3_unknown_customer_id_answers_404(signed_in, mine, name):
    # given the user's own cart, order and subscription, under a customer id that does not exist
    params = routes_with_params()[name]
    kwargs = {**mine.kwargs(params), "customer_id": uuid.uuid4()}
    before = database_state("catalog", "subscriptions")
    # when it is requested
    response = request(signed_in, name, kwargs, mine.post_data(name))
    # then 404, nothing changed
    assert response.status_code == 404
    assert database_state("catalog", "subscriptions") == before


@pytest.mark.rule("T3")
@pytest.mark.parametrize(
    "name, param",
    [
        ("catalog:order-detail", "order_id"),
        ("catalog:order-confirmation", "order_id"),
        ("subscriptions:subscription-detail", "subscription_id"),
        ("catalog:cart-purchase", "cart_id"),
    ],
)
def test_t3_another_partners_order_subscription_or_cart_under_own_customer_answers_404(
    signed_in, mine, theirs, name, param
):
    # given the user's own customer, and the other partner's order, subscription or cart id
    params = routes_with_params()[name]
    kwargs = {**mine.kwargs(params), param: theirs.kwargs({param})[param]}
    before = database_state("catalog", "subscriptions")
    # when requested under the user's own customer
    response = request(signed_in, name, kwargs, theirs.post_data(name))
    # then 404, nothing changed
    assert response.status_code == 404
    assert database_state("catalog", "subscriptions") == before


@pytest.mark.rule("T3")
@pytest.mark.parametrize("name", ["catalog:cart-line-update", "catalog:cart-line-remove"])
def test_t3_another_partners_cart_line_under_own_customer_answers_404(signed_in, mine, theirs, name):
    # given the user's own customer and open cart, and the other partner's cart line id
    kwargs = {"customer_id": mine.customer.pk, "line_id": theirs.line.pk}
    before = database_state("catalog", "subscriptions")
    # when it is updated or removed under the user's own customer
    response = request(signed_in, name, kwargs, {"quantity": "7"})
    # then nothing changed, and the line does not exist for this user
    assert database_state("catalog", "subscriptions") == before
    assert response.status_code == 404


@pytest.mark.rule("T3")
@pytest.mark.parametrize("name", ["catalog:cart-line-update", "catalog:cart-line-remove"])
def test_t3_a_colleagues_cart_line_under_the_same_customer_answers_404(signed_in, mine, direct_partner, name):
    # given a colleague of the same partner with an open cart for the same customer
    colleague = factories.staff(direct_partner, "sales_agent")
    their_cart = factories.CartFactory(customer=mine.customer, owner=colleague)
    their_line = factories.CartLineFactory(cart=their_cart, quantity=4)
    before = database_state("catalog", "subscriptions")
    # when the user updates or removes the colleague's line under that customer
    response = request(signed_in, name, {"customer_id": mine.customer.pk, "line_id": their_line.pk}, {"quantity": "7"})
    # then a cart is seen only by its owner: 404, nothing changed
    assert response.status_code == 404
    assert database_state("catalog", "subscriptions") == before


@pytest.mark.rule("T3")
def test_t3_purchase_with_a_colleagues_cart_id_answers_404_and_buys_nothing(signed_in, mine, direct_partner):
    # given a colleague of the same partner with an open cart for the same customer
    colleague = factories.staff(direct_partner, "sales_agent")
    their_cart = factories.CartFactory(customer=mine.customer, owner=colleague)
    factories.CartLineFactory(cart=their_cart, quantity=4)
    before = database_state("catalog", "subscriptions")
    # when the user purchases that cart by its id
    response = signed_in.post(
        reverse("catalog:cart-purchase", args=[mine.customer.pk, their_cart.pk]), {"attest": "on"}
    )
    # then the cart is not the user's: 404, no order, the cart still open
    assert response.status_code == 404
    assert database_state("catalog", "subscriptions") == before
    assert Cart.objects.get(pk=their_cart.pk).status == Cart.Status.OPEN


@pytest.mark.rule("T3")
def test_t3_customer_list_and_search_show_only_own_customers(signed_in, mine, theirs):
    # given the user's customer and another partner's customer
    # when the list is shown, and searched by the other customer's id and name
    url = reverse("portal:customer-list")
    listing = signed_in.get(url).content.decode()
    # (the htmx answer is the results alone, without the search box echoing the query)
    by_id = signed_in.get(url, {"q": str(theirs.customer.pk)}, HTTP_HX_REQUEST="true").content.decode()
    by_name = signed_in.get(url, {"q": theirs.customer.company_name}, HTTP_HX_REQUEST="true").content.decode()
    # then only the user's own customer appears
    assert mine.customer.company_name in listing
    assert theirs.customer.company_name not in listing
    assert str(theirs.customer.pk) not in listing
    for page in (by_id, by_name):
        assert theirs.customer.company_name not in page
        assert "No customer matches these filters." in page


@pytest.mark.rule("T3")
def test_t3_home_does_not_show_another_partners_orders(signed_in, mine, theirs):
    # given both partners have a pending order
    # when the user opens Home
    page = signed_in.get(reverse("portal:home")).content.decode()
    # then only the user's own order is listed, its customer linked to the customer's page
    assert f"{mine.order.number} for {mine.customer.company_name}" in visible_text(page)
    assert f'href="/customers/{mine.customer.pk}/subscriptions/"' in page
    assert theirs.customer.company_name not in page


@pytest.mark.rule("T3")
@pytest.mark.parametrize(
    "call",
    [
        lambda s, sid, actor, now: s.suspend_subscription(subscription_id=sid, actor=actor, now=now),
        lambda s, sid, actor, now: s.set_auto_renew(subscription_id=sid, actor=actor, on=False, now=now),
        lambda s, sid, actor, now: s.rename_subscription(subscription_id=sid, actor=actor, friendly_name="x", now=now),
        lambda s, sid, actor, now: s.change_quantity(subscription_id=sid, actor=actor, quantity=11, now=now),
        lambda s, sid, actor, now: s.cancel_subscription(subscription_id=sid, actor=actor, now=now),
    ],
    ids=["suspend", "auto-renew", "rename", "quantity", "cancel"],
)
def test_t3_a_service_refuses_another_partners_subscription_whoever_calls_it(call, db, now):
    # given another partner's subscription, and a sales agent of this partner calling a service directly
    # (the pages and the admin scope first: this is the service's own check, for any other caller)
    theirs = factories.SubscriptionFactory(customer=factories.CustomerFactory(), created_at=now, term_start=now)
    actor = factories.staff(factories.PartnerFactory(), "admin_agent")
    before = (
        list(Subscription.objects.values_list("pk", "status", "auto_renew", "friendly_name", "quantity", "version")),
        AuditEntry.objects.count(),
    )
    with pytest.raises(PermissionDenied):
        call(services, theirs.pk, actor, now)
    after = (
        list(Subscription.objects.values_list("pk", "status", "auto_renew", "friendly_name", "quantity", "version")),
        AuditEntry.objects.count(),
    )
    assert after == before


@pytest.mark.rule("T3")
def test_t3_a_service_refuses_another_partners_subscription_before_judging_the_version(db, now):
    # given another partner's subscription, renamed by one of its staff (the audit trail names her and what she did)
    theirs = factories.SubscriptionFactory(customer=factories.CustomerFactory(), created_at=now, term_start=now)
    their_agent = factories.staff(theirs.customer.partner, "admin_agent")
    their_agent.first_name, their_agent.last_name = "Robin", "Theirs"
    their_agent.save()
    services.rename_subscription(
        subscription_id=theirs.pk,
        actor=their_agent,
        friendly_name="Project Falcon",
        version=Subscription.objects.get(pk=theirs.pk).version,
        now=now,
    )
    actor = factories.staff(factories.PartnerFactory(), "admin_agent")
    before = (list(Subscription.objects.values_list("pk", "friendly_name", "version")), AuditEntry.objects.count())
    # when this partner's agent calls a service on it with a version older than its current one
    with pytest.raises(PermissionDenied) as refused:
        services.rename_subscription(subscription_id=theirs.pk, actor=actor, friendly_name="x", version="1", now=now)
    # then it is refused as another partner's (not as a stale page saying who changed it and how), nothing changed
    assert str(refused.value) == "This customer is not one of your partner's customers."
    assert (
        list(Subscription.objects.values_list("pk", "friendly_name", "version")),
        AuditEntry.objects.count(),
    ) == before
