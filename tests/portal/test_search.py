"""The top bar's search (issue 12, portal.search): customers, subscriptions, offers held and orders, grouped; a whole
id opens its page; scoped to the partner (T3) and the reseller (T1); bad input refused without a 500."""

import re
import uuid
from html import unescape

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import translation

from portal import search
from portal.models import Partner
from subscriptions.models import Subscription
from tests import factories
from tests.helpers import database_state

pytestmark = pytest.mark.django_db
URL = reverse("portal:search")


@pytest.fixture
def partner():
    return factories.PartnerFactory(name="Northwind Direct", kind=Partner.Kind.DIRECT_BILL)


@pytest.fixture
def agent(partner):
    return factories.staff(partner, "sales_agent")


@pytest.fixture
def client_(agent):
    client = Client()
    client.force_login(agent)
    return client


@pytest.fixture
def copilot():
    return factories.SkuFactory(name="Microsoft 365 Copilot")


@pytest.fixture
def contoso(partner):
    return factories.CustomerFactory(
        partner=partner, company_name="Contoso Bikes", domain="contosobikes.onmicrosoft.com"
    )


@pytest.fixture
def other_partner_world(copilot):
    """Another partner's customer, subscription (same offer) and order, with names that every test's query matches."""
    other = factories.PartnerFactory(name="Fabrikam Partners")
    customer = factories.CustomerFactory(partner=other, company_name="Contoso Elsewhere", domain="contoso2.example")
    subscription = factories.SubscriptionFactory(customer=customer, sku=copilot, friendly_name="Contoso Sales team")
    order = factories.OrderFactory(customer=customer)
    return customer, subscription, order


def text_of(response) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", response.content.decode())).split())


def group(response, kind: str) -> str:
    """The HTML of one group of results ("customers", "subscriptions", "offers", "orders"), or ""."""
    html = response.content.decode()
    found = re.search(rf'<section class="search-group" aria-labelledby="search-{kind}">(.*?)</section>', html, re.S)
    return found.group(1) if found else ""


def test_customers_by_name_and_domain(client_, contoso, partner, other_partner_world):
    factories.CustomerFactory(partner=partner, company_name="Adatum", domain="adatum.example")
    by_name = client_.get(URL, {"q": "contoso"})
    assert by_name.status_code == 200
    customers = group(by_name, "customers")
    assert "Contoso Bikes" in customers
    assert reverse("subscriptions:subscription-list", args=[contoso.pk]) in customers
    assert "Adatum" not in customers
    assert "Contoso Elsewhere" not in by_name.content.decode()  # T3
    by_domain = client_.get(URL, {"q": "BIKES.onmicrosoft"})
    assert "Contoso Bikes" in group(by_domain, "customers")


def test_subscriptions_by_friendly_name_with_their_customer(client_, contoso, other_partner_world):
    named = factories.SubscriptionFactory(customer=contoso, friendly_name="Design studio seats")
    factories.SubscriptionFactory(customer=contoso, friendly_name="Warehouse")
    response = client_.get(URL, {"q": "studio"})
    subscriptions = group(response, "subscriptions")
    assert "Design studio seats" in subscriptions
    assert "Warehouse" not in subscriptions
    assert reverse("subscriptions:subscription-detail", args=[contoso.pk, named.pk]) in subscriptions
    assert "Contoso Bikes" in subscriptions  # the customer beside each subscription
    assert reverse("subscriptions:subscription-list", args=[contoso.pk]) in subscriptions
    assert str(named.pk) in subscriptions


def test_copilot_finds_the_offer_and_its_subscriptions(client_, contoso, copilot, other_partner_world):
    """The issue's "copilot": the offer's subscriptions (they have no friendly name) and the offer itself."""
    mine = factories.SubscriptionFactory(customer=contoso, sku=copilot)
    factories.SubscriptionFactory(customer=contoso, sku=factories.SkuFactory(name="Microsoft 365 E3"))
    response = client_.get(URL, {"q": "copilot"})
    subscriptions = group(response, "subscriptions")
    assert str(mine.pk) in subscriptions
    assert "Microsoft 365 E3" not in subscriptions
    assert str(other_partner_world[1].pk) not in response.content.decode()  # T3
    offers = group(response, "offers")
    assert "Microsoft 365 Copilot" in offers
    assert f"{reverse('subscriptions:all-subscriptions')}?offer={copilot.pk}" in offers


def test_an_offer_nobody_holds_is_not_listed(client_, contoso, copilot):
    factories.SkuFactory(name="Copilot Studio")  # in the catalog, no subscription of this partner's
    factories.SubscriptionFactory(customer=contoso, sku=copilot)
    offers = group(client_.get(URL, {"q": "copilot"}), "offers")
    assert "Microsoft 365 Copilot" in offers
    assert "Copilot Studio" not in offers


def test_subscription_by_id_prefix(client_, contoso, other_partner_world):
    subscription = factories.SubscriptionFactory(customer=contoso, id=uuid.UUID("3fa85f64-5717-4562-b3fc-2c963f66afa6"))
    factories.SubscriptionFactory(customer=contoso, id=uuid.UUID("3fa85f65-0000-4562-b3fc-2c963f66afa6"))
    for typed in ("3fa85f64", "3FA85F64-57", "3fa85f6457174562"):
        subscriptions = group(client_.get(URL, {"q": typed}), "subscriptions")
        assert str(subscription.pk) in subscriptions, typed
        assert "3fa85f65" not in subscriptions, typed


def test_an_id_prefix_needs_8_characters(client_, contoso):
    factories.SubscriptionFactory(customer=contoso, id=uuid.UUID("3fa85f64-5717-4562-b3fc-2c963f66afa6"))
    assert search.id_prefix("3fa85f6") is None
    assert search.id_prefix("3fa85f6g") is None
    assert search.id_prefix("3fa85f64") == (
        uuid.UUID("3fa85f64-0000-0000-0000-000000000000"),
        uuid.UUID("3fa85f64-ffff-ffff-ffff-ffffffffffff"),
    )
    assert "3fa85f64" not in group(client_.get(URL, {"q": "3fa85f6"}), "subscriptions")


def test_a_whole_subscription_id_opens_its_page(client_, contoso):
    subscription = factories.SubscriptionFactory(customer=contoso)
    response = client_.get(URL, {"q": f"  {subscription.pk}  "})
    assert response.status_code == 302
    assert response["Location"] == reverse("subscriptions:subscription-detail", args=[contoso.pk, subscription.pk])


def test_a_whole_customer_id_opens_its_subscriptions(client_, contoso):
    response = client_.get(URL, {"q": str(contoso.pk).upper()})
    assert response.status_code == 302
    assert response["Location"] == reverse("subscriptions:subscription-list", args=[contoso.pk])


def test_another_partners_ids_open_nothing_and_reveal_nothing(client_, other_partner_world):
    customer, subscription, order = other_partner_world
    for typed in (str(subscription.pk), str(customer.pk), order.number, str(subscription.pk)[:8]):
        response = client_.get(URL, {"q": typed})
        assert response.status_code == 200, typed
        page = response.content.decode()
        assert "data-result" not in page  # no result of any kind: the query is only echoed back
        assert "Contoso Elsewhere" not in page and "Contoso Sales team" not in page
        assert "Nothing matches" in text_of(response)


def test_orders_by_number(client_, contoso, agent):
    first = factories.OrderFactory(customer=contoso, placed_by=agent)
    number = first.number
    response = client_.get(URL, {"q": number})
    assert response.status_code == 302
    assert response["Location"] == reverse("catalog:order-detail", args=[contoso.pk, first.pk])
    for typed in (number.removeprefix("ORD-"), f"ord{first.pk}", f"ORD-{first.pk}"):
        orders = group(client_.get(URL, {"q": typed}), "orders")
        assert number in orders, typed
        assert reverse("catalog:order-detail", args=[contoso.pk, first.pk]) in orders


def test_an_order_number_prefix_finds_its_range(client_, contoso, agent):
    orders = [factories.OrderFactory(customer=contoso, placed_by=agent) for _ in range(3)]
    prefix = orders[0].number[:-1]  # "ORD-00001": ORD-000010 to ORD-000019
    found = group(client_.get(URL, {"q": prefix}), "orders")
    for order in orders:
        assert (order.number in found) == order.number.startswith(prefix)


def test_groups_show_ten_and_say_there_are_more(client_, partner):
    for n in range(12):
        customer = factories.CustomerFactory(partner=partner, company_name=f"Tailspin {n:02d}")
        factories.SubscriptionFactory(customer=customer, friendly_name=f"Tailspin seats {n:02d}")
    response = client_.get(URL, {"q": "tailspin"})
    customers, subscriptions = group(response, "customers"), group(response, "subscriptions")
    assert customers.count("data-result") == 10
    assert "Tailspin 09" in customers and "Tailspin 10" not in customers  # by name
    assert f"{reverse('portal:customer-list')}?q=tailspin" in customers
    assert subscriptions.count("data-result") == 10
    assert "Tailspin seats 09" in subscriptions and "Tailspin seats 10" not in subscriptions
    assert "More subscriptions match" in unescape(subscriptions)


def test_the_subscriptions_merge_in_the_lists_order(client_, partner, copilot):
    """A friendly name and an offer's name each find some; the group is the first ten of both, by customer, then
    name, whichever query found them."""
    alpha = factories.CustomerFactory(partner=partner, company_name="Alpha")
    beta = factories.CustomerFactory(partner=partner, company_name="Beta")
    for n in range(6):
        factories.SubscriptionFactory(customer=beta, friendly_name=f"Copilot pilots {n}")
        factories.SubscriptionFactory(customer=alpha, sku=copilot)
    subscriptions = group(client_.get(URL, {"q": "copilot"}), "subscriptions")
    assert subscriptions.count("data-result") == 10
    assert subscriptions.index("Alpha") < subscriptions.index("Beta")
    assert subscriptions.count(">Alpha<") == 6 and subscriptions.count(">Beta<") == 4


def test_percent_and_underscore_are_literal(client_, partner):
    factories.CustomerFactory(partner=partner, company_name="100% Bikes")
    factories.CustomerFactory(partner=partner, company_name="1000 Bikes")
    factories.CustomerFactory(partner=partner, company_name="a_b Traders")
    factories.CustomerFactory(partner=partner, company_name="axb Traders")
    percent = group(client_.get(URL, {"q": "0% b"}), "customers")
    assert "100% Bikes" in percent and "1000 Bikes" not in percent
    underscore = group(client_.get(URL, {"q": "a_b"}), "customers")
    assert "a_b Traders" in underscore and "axb Traders" not in underscore


def test_a_reseller_finds_only_what_it_resells(copilot):
    provider = factories.PartnerFactory(kind=Partner.Kind.INDIRECT_PROVIDER, name="Northwind Distribution")
    reseller = factories.PartnerFactory(kind=Partner.Kind.INDIRECT_RESELLER, name="Litware Resale")
    customer = factories.CustomerFactory(partner=provider, company_name="Contoso Retail")
    resold = factories.SubscriptionFactory(customer=customer, sku=copilot, reseller=reseller)
    not_resold = factories.SubscriptionFactory(customer=customer, sku=copilot)
    client = Client()
    client.force_login(factories.staff(reseller, "admin_agent"))
    response = client.get(URL, {"q": "copilot"})
    page = response.content.decode()
    assert str(resold.pk) in group(response, "subscriptions")
    assert str(not_resold.pk) not in page
    assert client.get(URL, {"q": str(not_resold.pk)}).status_code == 200  # not opened: it is not the reseller's


@pytest.mark.parametrize(
    ("typed", "reason"),
    [("a", "at least 2 characters"), ("x" * 101, "at most 100 characters"), ("ab\x00c", "Null characters")],
)
def test_bad_input_is_refused_with_its_reason(client_, contoso, typed, reason):
    before = database_state()
    response = client_.get(URL, {"q": typed})
    assert response.status_code == 422
    assert reason in text_of(response)
    assert 'aria-invalid="true"' in response.content.decode()
    assert database_state() == before


def test_nothing_typed_shows_how_to_search(client_):
    response = client_.get(URL)
    assert response.status_code == 200
    assert "at least 8 characters of a subscription id" in text_of(response)
    assert client_.get(URL, {"q": "   "}).status_code == 200


def test_nothing_matches_says_what_to_try(client_, contoso):
    response = client_.get(URL, {"q": "zzzz-nothing"})
    assert response.status_code == 200
    assert "Nothing matches “zzzz-nothing”" in text_of(response)


def test_signed_out_goes_to_sign_in(client):
    response = client.get(URL, {"q": "contoso"})
    assert response.status_code == 302
    assert reverse("portal:login") in response["Location"]


def test_a_search_changes_nothing(client_, contoso, copilot):
    factories.SubscriptionFactory(customer=contoso, sku=copilot, friendly_name="Contoso seats")
    factories.OrderFactory(customer=contoso)
    before = database_state()
    for typed in ("contoso", "copilot", "ORD-0", "12345678"):
        assert client_.get(URL, {"q": typed}).status_code == 200
    assert database_state() == before


def test_the_top_bar_searches_here(client_):
    page = client_.get(reverse("portal:home")).content.decode()
    form = re.search(r'<form class="global-search" action="([^"]+)"', page)
    assert form.group(1) == URL
    assert 'maxlength="100"' in page


def test_in_traditional_chinese(client_, contoso, copilot):
    factories.SubscriptionFactory(customer=contoso, sku=copilot)
    client_.cookies["django_language"] = "zh-hant"
    response = client_.get(URL, {"q": "copilot"})
    with translation.override("zh-hant"):
        for english in ("Subscriptions", "Offers your customers hold"):  # not literals of gettext: not extracted
            assert translation.gettext(english) != english
            assert translation.gettext(english) in response.content.decode()
    refused = client_.get(URL, {"q": "a"})
    with translation.override("zh-hant"):
        too_short = search.SearchForm.base_fields["q"].error_messages["min_length"]
        assert str(too_short) % {"limit_value": 2} in text_of(refused)
        assert str(too_short) != "Type at least %(limit_value)d characters to search."


def test_the_query_count_does_not_grow_with_the_data(client_, partner, copilot, agent):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client_.get(URL, {"q": "contoso"}).status_code == 200
        return len(captured)

    customer = factories.CustomerFactory(partner=partner, company_name="Contoso 0")
    factories.SubscriptionFactory(customer=customer, sku=copilot, friendly_name="Contoso seats")
    factories.OrderFactory(customer=customer, placed_by=agent)
    few = queries()
    for n in range(1, 15):
        customer = factories.CustomerFactory(partner=partner, company_name=f"Contoso {n}")
        factories.SubscriptionFactory(customer=customer, sku=copilot, friendly_name=f"Contoso seats {n}")
        factories.SubscriptionFactory(customer=customer, friendly_name="Contoso backup")
    assert queries() == few
    assert few <= 8


@pytest.mark.parametrize(("offers_by_id", "by_offer"), [(100, 1000), (100, 2), (1, 1000)])
def test_both_ways_of_reading_an_offers_subscriptions_find_the_same(
    client_, partner, copilot, monkeypatch, offers_by_id, by_offer
):
    """By offer (few offers, few subscriptions) or in the list's order (many): the same first ten."""
    monkeypatch.setattr(search, "OFFERS_READ_BY_ID", offers_by_id)
    monkeypatch.setattr(search, "SUBSCRIPTIONS_READ_BY_OFFER", by_offer)
    copilot_pro = factories.SkuFactory(name="Copilot Pro")
    for n in range(7):
        customer = factories.CustomerFactory(partner=partner, company_name=f"Customer {n:02d}")
        factories.SubscriptionFactory(customer=customer, sku=copilot if n % 2 else copilot_pro)
        factories.SubscriptionFactory(customer=customer, sku=copilot)
        factories.SubscriptionFactory(customer=customer)  # another offer
    subscriptions = group(client_.get(URL, {"q": "copilot"}), "subscriptions")
    assert subscriptions.count("data-result") == 10
    assert [f"Customer {n:02d}" in subscriptions for n in range(7)] == [True] * 5 + [False] * 2
    assert "Customer 04" in subscriptions and subscriptions.count(">Customer 04<") == 2


def test_a_search_is_read_with_get_only(client_):
    assert client_.post(URL, {"q": "contoso"}).status_code == 405


def test_friendly_names_in_any_case_any_script_and_with_wildcards(client_, contoso):
    factories.SubscriptionFactory(customer=contoso, friendly_name="台北 銷售團隊")
    factories.SubscriptionFactory(customer=contoso, friendly_name="Sales 100% team")
    factories.SubscriptionFactory(customer=contoso, friendly_name="Sales 1000 team")
    factories.SubscriptionFactory(customer=contoso, friendly_name="a_b seats")
    factories.SubscriptionFactory(customer=contoso, friendly_name="axb seats")
    assert "台北 銷售團隊" in group(client_.get(URL, {"q": "銷售"}), "subscriptions")
    assert "Sales 100% team" in group(client_.get(URL, {"q": "SALES 1"}), "subscriptions")
    percent = group(client_.get(URL, {"q": "0% t"}), "subscriptions")
    assert "Sales 100% team" in percent and "Sales 1000 team" not in percent
    underscore = group(client_.get(URL, {"q": "a_b"}), "subscriptions")
    assert "a_b seats" in underscore and "axb seats" not in underscore


def test_odd_text_finds_nothing_and_fails_nothing(client_, contoso, agent):
    factories.OrderFactory(customer=contoso, placed_by=agent)
    for typed in ("--------", "ORD-", "ORD-" + "9" * 18, "0" * 30, "ord-0000", "{" + "f" * 8, "%%", "__", "'; --"):
        response = client_.get(URL, {"q": typed})
        assert response.status_code == 200, typed


def test_in_the_demo_copilot_finds_the_copilot_subscriptions_of_the_partner_signed_in():
    """The issue's complaint, in the seeded demo: "copilot" found nothing useful. Northwind's sales agent finds
    Northwind's Copilot subscriptions, each with its customer, and the offer; Fabrikam's provider finds its own."""
    call_command("seed_demo", verbosity=0)
    for username, partner in (("sales", "northwind"), ("provider-sales", "fabrikam")):
        user = get_user_model().objects.get(username=username)
        client = Client()
        client.force_login(user)
        response = client.get(URL, {"q": "copilot"})
        held = Subscription.objects.filter(
            partner=user.membership.partner, sku__name="Microsoft 365 Copilot"
        ).select_related("customer")
        assert held.exists(), partner
        subscriptions = group(response, "subscriptions")
        assert len(held) <= search.GROUP_SIZE  # the demo's: each of them is shown
        for subscription in held:
            assert str(subscription.pk) in subscriptions
            assert subscription.customer.company_name in unescape(subscriptions)
        assert "Microsoft 365 Copilot" in group(response, "offers")
        others = Subscription.objects.filter(sku__name="Microsoft 365 Copilot").exclude(partner=user.membership.partner)
        assert not any(str(s.pk) in response.content.decode() for s in others)


def test_any_script_in_any_case_on_every_database(client_, partner):
    """Capitals as PostgreSQL has them, on SQLite too (portal.apps: UPPER() is Python's there)."""
    customer = factories.CustomerFactory(partner=partner, company_name="Équipe Ventes", domain="équipe.example")
    factories.SubscriptionFactory(customer=customer, friendly_name="Ωmega team")
    factories.SubscriptionFactory(customer=customer, sku=factories.SkuFactory(name="Ñandú Suite"))
    assert "Équipe Ventes" in group(client_.get(URL, {"q": "équipe"}), "customers")
    assert "Équipe Ventes" in group(client_.get(URL, {"q": "ÉQUIPE.EXAMPLE"}), "customers")
    assert "Ωmega team" in group(client_.get(URL, {"q": "ωMEGA"}), "subscriptions")
    assert "Ñandú Suite" in group(client_.get(URL, {"q": "ñandú"}), "subscriptions")
    assert "Ñandú Suite" in group(client_.get(URL, {"q": "ÑANDÚ"}), "offers")


def test_a_customer_is_not_found_by_text_across_its_name_and_domain(client_, partner):
    factories.CustomerFactory(partner=partner, company_name="Contoso", domain="bikes.example")
    assert "data-result" not in client_.get(URL, {"q": "contoso bikes"}).content.decode()


def test_on_postgresql_the_friendly_names_have_a_trigram_index():
    """subscriptions/migrations/0022: "contains" served by pg_trgm on PostgreSQL (SQLite reads the btree)."""
    if connection.vendor != "postgresql":
        pytest.skip("a PostgreSQL index")
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'subscription_named_trgm_idx'")
        (definition,) = cursor.fetchone()
    assert "gin" in definition and "gin_trgm_ops" in definition
    assert "searched_name IS NOT NULL" in definition
