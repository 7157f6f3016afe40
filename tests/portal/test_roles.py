"""T2 staff roles and T1 partner types, through the views: who may view, who may buy, and that a
refused buying action is refused on the server (403) with nothing changed."""

import re

import pytest
from django.urls import reverse
from django.utils.html import escape

from catalog.models import Cart, CartAdditionalReseller, Order
from portal.access import RESELLER_NOTICE
from portal.models import Partner
from tests import factories
from tests.helpers import database_state, drawn

ROLES = ["admin_agent", "sales_agent", "billing_admin", "support_agent"]
BUYERS = ["admin_agent", "sales_agent"]
NON_BUYERS = ["billing_admin", "support_agent"]
BUYING_ACTIONS = [
    "cart-add",
    "cart-line-update",
    "cart-line-remove",
    "cart-reseller",
    "cart-additional-add",
    "cart-additional-remove",
    "cart-purchase",
]
ROLE_REASON = "Your role can&#x27;t buy or change subscriptions: ask an admin agent or sales agent."


@pytest.fixture
def shop(now, provider):
    """An indirect provider (so reseller actions apply) with an EU customer (so additional resellers do)."""
    reseller = factories.PartnerFactory(kind=Partner.Kind.INDIRECT_RESELLER, name="Adatum Reseller")
    factories.ResellerLinkFactory(provider=provider, reseller=reseller)
    customer = factories.CustomerFactory(partner=provider, company_name="Fabrikam GmbH", billing_country="DE")
    sku = factories.SkuFactory(name="Microsoft 365 Business Standard")
    additional = factories.PartnerFactory(kind=Partner.Kind.INDIRECT_RESELLER, name="Tailspin Reseller")
    order = factories.OrderFactory(customer=customer, placed_by=factories.staff(provider))
    order_line = factories.OrderLineFactory(order=order, availability=factories.availability(sku), fulfilled=True)
    subscription = factories.SubscriptionFactory(customer=customer, sku=sku, order_line=order_line)
    return {
        "partner": provider,
        "reseller": reseller,
        "customer": customer,
        "availability": factories.availability(sku),
        "additional": additional,
        "order": order,
        "subscription": subscription,
    }


def arrange(action: str, user, shop) -> tuple[str, dict]:
    """The user's own cart in the state the action needs; returns the action's URL and body."""
    customer = shop["customer"]
    if action == "cart-add":
        return reverse("catalog:cart-add", args=[customer.pk]), {
            "availability": shop["availability"].pk,
            "quantity": "3",
        }
    cart = factories.CartFactory(customer=customer, owner=user)
    line = factories.CartLineFactory(cart=cart, availability=shop["availability"], quantity=5)
    if action in ("cart-additional-add", "cart-additional-remove"):
        cart.reseller = shop["reseller"]
        cart.save()
    if action == "cart-additional-remove":
        CartAdditionalReseller.objects.create(cart=cart, partner=shop["additional"], position=1)
    url, data = {
        "cart-line-update": (reverse("catalog:cart-line-update", args=[customer.pk, line.pk]), {"quantity": "7"}),
        "cart-line-remove": (reverse("catalog:cart-line-remove", args=[customer.pk, line.pk]), {}),
        "cart-reseller": (reverse("catalog:cart-reseller", args=[customer.pk]), {"reseller": shop["reseller"].pk}),
        "cart-additional-add": (
            reverse("catalog:cart-additional-add", args=[customer.pk]),
            {"partner_id": shop["additional"].partner_id},
        ),
        "cart-additional-remove": (
            reverse("catalog:cart-additional-remove", args=[customer.pk, shop["additional"].pk]),
            {},
        ),
        "cart-purchase": (reverse("catalog:cart-purchase", args=[customer.pk, cart.pk]), {"attest": "on"}),
    }[action]
    return url, drawn(cart, data)


def assert_done(action: str, user, shop, response):
    """What each buying action leaves behind when it is allowed."""
    cart = Cart.objects.filter(customer=shop["customer"], owner=user).get()
    if action == "cart-purchase":
        order = Order.objects.get(cart=cart)
        assert response.status_code == 302
        assert response["Location"] == reverse("catalog:order-confirmation", args=[shop["customer"].pk, order.pk])
        assert cart.status == Cart.Status.PURCHASED
        return
    assert response.status_code == 302
    assert cart.status == Cart.Status.OPEN
    lines = list(cart.lines.values_list("availability_id", "quantity"))
    additional = list(cart.additional_resellers.values_list("partner_id", flat=True))
    expected = {
        "cart-add": ([(shop["availability"].pk, 3)], None, []),
        "cart-line-update": ([(shop["availability"].pk, 7)], None, []),
        "cart-line-remove": ([], None, []),
        "cart-reseller": ([(shop["availability"].pk, 5)], shop["reseller"].pk, []),
        "cart-additional-add": ([(shop["availability"].pk, 5)], shop["reseller"].pk, [shop["additional"].pk]),
        "cart-additional-remove": ([(shop["availability"].pk, 5)], shop["reseller"].pk, []),
    }[action]
    assert (lines, cart.reseller_id, additional) == expected
    assert not Order.objects.filter(cart=cart).exists()


# --- T2: buying ---------------------------------------------------------------------------------


@pytest.mark.rule("T2")
@pytest.mark.parametrize("action", BUYING_ACTIONS)
@pytest.mark.parametrize("role", NON_BUYERS)
def test_t2_billing_admin_and_support_agent_are_refused_every_buying_action(client, shop, role, action):
    # given a billing admin or support agent with their own cart in the state the action needs
    user = factories.staff(shop["partner"], role)
    client.force_login(user)
    url, data = arrange(action, user, shop)
    before = database_state("catalog", "subscriptions")
    # when they post the action
    response = client.post(url, data)
    # then the server refuses it and nothing changed
    assert response.status_code == 403
    assert database_state("catalog", "subscriptions") == before


@pytest.mark.rule("T2")
@pytest.mark.parametrize("action", BUYING_ACTIONS)
@pytest.mark.parametrize("role", BUYERS)
def test_t2_admin_and_sales_agents_may_take_every_buying_action(client, shop, role, action):
    # given an admin or sales agent of an indirect provider, with their own cart
    user = factories.staff(shop["partner"], role)
    client.force_login(user)
    url, data = arrange(action, user, shop)
    # when they post the action
    response = client.post(url, data)
    # then it is done
    assert_done(action, user, shop, response)


@pytest.mark.rule("T2")
def test_t2_a_second_role_adds_to_the_first(client, shop):
    # given a staff user who is both billing admin and sales agent
    user = factories.UserFactory()
    factories.MembershipFactory(user=user, partner=shop["partner"], is_billing_admin=True, is_sales_agent=True)
    client.force_login(user)
    url, data = arrange("cart-add", user, shop)
    # when they add to the cart
    response = client.post(url, data)
    # then the sales agent role lets them
    assert_done("cart-add", user, shop, response)


@pytest.mark.rule("T2")
@pytest.mark.parametrize("role", NON_BUYERS)
def test_t2_non_buyers_see_buying_buttons_disabled_with_the_reason(client, shop, role):
    # given a billing admin or support agent
    client.force_login(factories.staff(shop["partner"], role))
    customer = shop["customer"]
    # when they open the customer's subscriptions and the catalog
    subscriptions = client.get(reverse("subscriptions:subscription-list", args=[customer.pk])).content.decode()
    catalog = client.get(reverse("catalog:offer-list", args=[customer.pk])).content.decode()
    # then "Add subscription" and "Add to cart" are disabled with the reason, and no form posts to the cart
    assert re.search(
        rf'<button class="btn" disabled title="{re.escape(ROLE_REASON)}"[^>]*>[^<]*Add subscription</button>'
        rf'<span class="why"[^>]*>{re.escape(ROLE_REASON)}</span>',
        subscriptions,
    )
    assert f'<div class="msgbar msgbar-warning">{ROLE_REASON}</div>' in catalog
    assert re.search(
        rf'<button class="btn" type="button" disabled title="{re.escape(ROLE_REASON)}"[^>]*>Add to cart</button>'
        rf'<span class="why"[^>]*>{re.escape(ROLE_REASON)}</span>',
        catalog,
    )
    assert reverse("catalog:cart-add", args=[customer.pk]) not in catalog


# --- T2: viewing --------------------------------------------------------------------------------

VIEW_PAGES = [
    "portal:customer-list",
    "subscriptions:subscription-list",
    "subscriptions:subscription-detail",
    "catalog:order-list",
    "catalog:order-detail",
    "portal:customer-account",
    "portal:customer-activity",
    "catalog:offer-list",
    "catalog:cart-detail",
]


def page_url(name: str, shop) -> str:
    customer = shop["customer"]
    args = {
        "portal:customer-list": [],
        "subscriptions:subscription-detail": [customer.pk, shop["subscription"].pk],
        "catalog:order-detail": [customer.pk, shop["order"].pk],
    }.get(name, [customer.pk])
    return reverse(name, args=args)


@pytest.mark.rule("T2")
@pytest.mark.parametrize("page", VIEW_PAGES)
@pytest.mark.parametrize("role", ROLES)
def test_t2_every_role_may_view_customers_subscriptions_and_orders(client, shop, role, page):
    # given a staff user holding one role
    client.force_login(factories.staff(shop["partner"], role))
    # when they open the page
    response = client.get(page_url(page, shop))
    # then it is shown, with the customer on it
    assert response.status_code == 200
    assert "Fabrikam GmbH" in response.content.decode()


# --- T1: indirect resellers are read-only and see only their customers --------------------------


@pytest.fixture
def reseller_world(now, provider):
    """A provider's customers: one resold by Adatum, one served directly, one resold by another reseller."""
    adatum = factories.PartnerFactory(kind=Partner.Kind.INDIRECT_RESELLER, name="Adatum Reseller")
    other = factories.PartnerFactory(kind=Partner.Kind.INDIRECT_RESELLER, name="Litware Reseller")
    factories.ResellerLinkFactory(provider=provider, reseller=adatum)
    factories.ResellerLinkFactory(provider=provider, reseller=other)
    sku = factories.SkuFactory(name="Microsoft 365 Business Standard")
    factories.SkuFactory(name="Exchange Online (Plan 1)")

    def customer(name, reseller):
        c = factories.CustomerFactory(partner=provider, company_name=name, reseller=reseller, billing_country="DE")
        order = factories.OrderFactory(customer=c, placed_by=factories.staff(provider), reseller=reseller)
        line = factories.OrderLineFactory(order=order, availability=factories.availability(sku), fulfilled=True)
        sub = factories.SubscriptionFactory(customer=c, sku=sku, order_line=line, reseller=reseller)
        return {"customer": c, "order": order, "subscription": sub}

    return {
        "provider": provider,
        "adatum": adatum,
        "resold": customer("Wingtip Toys", adatum),
        "direct": customer("Proseware Inc", None),
        "other": customer("Woodgrove Bank", other),
        "user": factories.staff(adatum, "admin_agent"),
    }


def customer_pages(world) -> dict[str, str]:
    c, order, sub = world["customer"].pk, world["order"].pk, world["subscription"].pk
    return {
        "subscription-list": reverse("subscriptions:subscription-list", args=[c]),
        "subscription-detail": reverse("subscriptions:subscription-detail", args=[c, sub]),
        "order-list": reverse("catalog:order-list", args=[c]),
        "order-detail": reverse("catalog:order-detail", args=[c, order]),
        "account": reverse("portal:customer-account", args=[c]),
        "activity": reverse("portal:customer-activity", args=[c]),
        "catalog": reverse("catalog:offer-list", args=[c]),
        "cart": reverse("catalog:cart-detail", args=[c]),
    }


PAGES = [
    "subscription-list",
    "subscription-detail",
    "order-list",
    "order-detail",
    "account",
    "activity",
    "catalog",
    "cart",
]


@pytest.mark.rule("T1")
@pytest.mark.rule("T3")
def test_t1_reseller_lists_only_customers_it_is_reseller_of_record_for(client, reseller_world):
    # given an admin agent of the indirect reseller Adatum
    client.force_login(reseller_world["user"])
    # when they open the customer list
    page = client.get(reverse("portal:customer-list")).content.decode()
    # then only the customer Adatum resells is listed
    names = re.findall(r'<tr><td><a href="[^"]+">([^<]+)</a>', page)
    assert names == ["Wingtip Toys"]


@pytest.mark.rule("T1")
@pytest.mark.rule("T3")
@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("which", ["direct", "other"])
def test_t1_reseller_gets_404_for_customers_it_does_not_resell(client, reseller_world, which, page):
    # given Adatum's admin agent, and a customer of its provider it is not reseller of record for
    client.force_login(reseller_world["user"])
    # when they open that customer's page
    response = client.get(customer_pages(reseller_world[which])[page])
    # then it does not exist for them
    assert response.status_code == 404


@pytest.mark.rule("T1")
@pytest.mark.parametrize("page", PAGES)
def test_t1_reseller_sees_its_customers_pages_with_the_contact_your_provider_notice(client, reseller_world, page):
    # given Adatum's admin agent
    client.force_login(reseller_world["user"])
    # when they open a page of the customer they resell
    response = client.get(customer_pages(reseller_world["resold"])[page])
    # then it is shown, with the notice to contact the indirect provider
    assert response.status_code == 200
    assert "Wingtip Toys" in response.content.decode()
    assert f'<div class="msgbar msgbar-info">{escape(RESELLER_NOTICE)}</div>' in response.content.decode()


@pytest.mark.rule("T1")
def test_t1_reseller_catalog_disables_every_add_to_cart_with_the_notice(client, reseller_world):
    # given Adatum's admin agent and a catalog of two offers
    client.force_login(reseller_world["user"])
    customer = reseller_world["resold"]["customer"]
    notice = escape(str(RESELLER_NOTICE))
    # when they open the catalog of the customer they resell
    page = client.get(reverse("catalog:offer-list", args=[customer.pk])).content.decode()
    # then the notice is shown, each offer's Add to cart is disabled with it, and nothing posts to the cart
    assert f'<div class="msgbar msgbar-warning">{notice}</div>' in page
    disabled = (
        rf'<button class="btn" type="button" disabled title="{re.escape(notice)}"[^>]*>Add to cart</button>'
        rf'<span class="why"[^>]*>{re.escape(notice)}</span>'
    )
    assert len(re.findall(disabled, page)) == 2
    assert page.count("Add to cart</button>") == 2
    assert reverse("catalog:cart-add", args=[customer.pk]) not in page


@pytest.mark.rule("T1")
@pytest.mark.parametrize("action", BUYING_ACTIONS)
def test_t1_reseller_is_refused_every_buying_action(client, reseller_world, action):
    # given Adatum's admin agent (a role that may buy) with its own cart for the customer it resells
    user = reseller_world["user"]
    client.force_login(user)
    shop = {
        "customer": reseller_world["resold"]["customer"],
        "reseller": reseller_world["adatum"],
        "availability": factories.availability(reseller_world["resold"]["subscription"].sku),
        "additional": factories.PartnerFactory(kind=Partner.Kind.INDIRECT_RESELLER),
    }
    url, data = arrange(action, user, shop)
    before = database_state("catalog", "subscriptions")
    # when it posts the action
    response = client.post(url, data)
    # then an indirect reseller is read-only whatever its role: 403, nothing changed
    assert response.status_code == 403
    assert database_state("catalog", "subscriptions") == before


@pytest.mark.rule("T1")
@pytest.mark.rule("T3")
def test_t1_provider_staff_see_every_customer_of_the_provider(client, reseller_world):
    # given a sales agent of the indirect provider
    client.force_login(factories.staff(reseller_world["provider"], "sales_agent"))
    # when they open the customer list
    page = client.get(reverse("portal:customer-list")).content.decode()
    # then every customer of the provider is listed, with its reseller of record
    rows = re.findall(r'<tr><td><a href="[^"]+">([^<]+)</a>.*?<td>([^<]*)</td><td class="num">', page, re.S)
    assert rows == [("Proseware Inc", "—"), ("Wingtip Toys", "Adatum Reseller"), ("Woodgrove Bank", "Litware Reseller")]


@pytest.mark.rule("T1")
@pytest.mark.rule("T3")
def test_t1_reseller_sees_only_its_own_subscriptions_and_orders_of_a_shared_customer(client, reseller_world):
    # given a customer resold by Litware, where Adatum is reseller of record of one more subscription
    shared = reseller_world["other"]
    adatum = reseller_world["adatum"]
    sku = factories.SkuFactory(name="Exchange Online (Plan 2)")
    own_order = factories.OrderFactory(
        customer=shared["customer"], placed_by=factories.staff(reseller_world["provider"]), reseller=adatum
    )
    own = factories.SubscriptionFactory(customer=shared["customer"], sku=sku, reseller=adatum)
    client.force_login(reseller_world["user"])
    cid = shared["customer"].pk
    # when Adatum opens the customer's pages
    listing = client.get(reverse("subscriptions:subscription-list", args=[cid])).content.decode()
    orders = client.get(reverse("catalog:order-list", args=[cid])).content.decode()
    # then it sees its own subscription and order, and Litware's answer 404
    assert str(own.pk) in listing and str(shared["subscription"].pk) not in listing
    assert own_order.number in orders and shared["order"].number not in orders
    assert (
        client.get(reverse("subscriptions:subscription-detail", args=[cid, shared["subscription"].pk])).status_code
        == 404
    )
    assert client.get(reverse("catalog:order-detail", args=[cid, shared["order"].pk])).status_code == 404
    assert client.get(reverse("subscriptions:subscription-detail", args=[cid, own.pk])).status_code == 200
