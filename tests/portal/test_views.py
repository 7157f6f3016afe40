"""The portal's own pages: sign-in, customer list and account (T4), times in UTC (T5), CSRF."""

import re
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import URLResolver, get_resolver, reverse

from catalog.models import Cart, CartLine, Order
from portal.models import Partner
from subscriptions import selectors
from tests import factories
from tests.helpers import count_queries

QUERY_BUDGET = 12


def portal_routes() -> dict[str, dict]:
    """Every named route of the portal's apps, with placeholder values for its parameters."""
    placeholders = {"uuid": uuid.uuid4(), "int": 1}
    found = {}

    def walk(patterns, namespace):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                if pattern.namespace != "admin":
                    walk(pattern.url_patterns, pattern.namespace or namespace)
            elif pattern.name and namespace in {"portal", "catalog", "subscriptions"}:
                kwargs = {}
                for param, converter in pattern.pattern.converters.items():
                    kwargs[param] = placeholders["uuid" if type(converter).__name__ == "UUIDConverter" else "int"]
                found[f"{namespace}:{pattern.name}"] = kwargs

    walk(get_resolver().url_patterns, None)
    return found


ROUTES = portal_routes()
# TF1: the customer's pages, for someone with no account here (the invitation's link, the demo's mailbox).
CUSTOMER_ROUTES = {"subscriptions:relationship-accept", "subscriptions:relationship-mailbox"}
# Open to anyone: the icon a browser asks for on any page, the sign-in page's too, and the choice of language the
# sign-in page offers.
OPEN_ROUTES = {"portal:login", "portal:favicon", "portal:language-set"}
SIGNED_IN_ROUTES = sorted(name for name in ROUTES if name not in OPEN_ROUTES | CUSTOMER_ROUTES)


# --- Sign-in ------------------------------------------------------------------------------------


def test_the_route_list_is_not_empty():
    # the parametrized test below would pass vacuously if the URLconf walk found nothing
    assert len(SIGNED_IN_ROUTES) >= 20
    assert "portal:home" in SIGNED_IN_ROUTES and "catalog:cart-purchase" in SIGNED_IN_ROUTES


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["get", "post"])
@pytest.mark.parametrize("name", SIGNED_IN_ROUTES)
def test_every_page_but_sign_in_sends_an_anonymous_user_to_sign_in(client, name, method):
    # given an anonymous visitor
    url = reverse(name, kwargs=ROUTES[name])
    # when they request any page or action
    response = getattr(client, method)(url)
    # then they are sent to the sign-in page, coming back here afterwards
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('portal:login')}?next={url}"


@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted(CUSTOMER_ROUTES))
def test_the_customers_pages_need_no_sign_in(client, settings, name):
    # given an anonymous visitor (the customer's administrator has no account here), in the demo
    settings.DEMO_MODE = True
    # when it opens the page (here with a made-up link: the page itself is reached, and refuses it)
    response = client.get(reverse(name, kwargs={"token": "made-up"} if "token" in ROUTES[name] else {}))
    # then the page answers itself instead of sending it to sign in
    assert response.status_code == (400 if "token" in ROUTES[name] else 200)


@pytest.mark.django_db
def test_the_icon_is_named_by_every_page_and_favicon_ico_finds_it(signed_in):
    # a page names its icon (so a browser asks for no /favicon.ico), and a page that names none (the admin's, a
    # JSON answer) still finds it there, signed in or not: no 404 in the logs
    assert 'rel="icon" href="/static/favicon.svg"' in signed_in.get(reverse("portal:about")).content.decode()
    for someone in (signed_in, Client()):
        response = someone.get("/favicon.ico")
        assert response.status_code == 301 and response["Location"] == "/static/favicon.svg"


def test_sign_in_page_is_open_to_anonymous_users(client):
    # when an anonymous visitor opens the sign-in page
    response = client.get(reverse("portal:login"))
    # then it is shown, with no demo sign-ins outside the demo
    assert response.status_code == 200
    page = response.content.decode()
    assert "<h1>Sign in to CSP Portal</h1>" in page
    assert "Demo sign-ins" not in page


def test_sign_in_with_the_right_password_opens_home(client, sales, now):
    # given a staff user
    # when they sign in
    response = client.post(reverse("portal:login"), {"username": sales.username, "password": factories.PASSWORD})
    # then they land on Home, signed in
    assert response.status_code == 302
    assert response["Location"] == reverse("portal:home")
    home = client.get(reverse("portal:home"))
    assert home.status_code == 200
    assert "Contoso Direct · Direct-bill partner" in home.content.decode()


def test_sign_in_returns_to_the_page_asked_for(client, sales, customer, now):
    # given an anonymous visitor sent to sign in from a customer's account page
    account = reverse("portal:customer-account", args=[customer.pk])
    # when they sign in
    response = client.post(
        f"{reverse('portal:login')}?next={account}",
        {"username": sales.username, "password": factories.PASSWORD, "next": account},
    )
    # then they go back to that page
    assert response.status_code == 302
    assert response["Location"] == account


@pytest.mark.parametrize(
    "target",
    ["null", "https://evil.example/", "//evil.example", "/\\evil.example", "javascript:alert(1)", "/login/", "/x\r\ny"],
)
def test_sign_in_with_an_unusable_next_goes_home(client, sales, target):
    # when a staff user signs in from a link whose next is not a path of this site (or is the sign-in page)
    response = client.post(
        reverse("portal:login"), {"username": sales.username, "password": factories.PASSWORD, "next": target}
    )
    # then they land on Home
    assert response.status_code == 302
    assert response["Location"] == reverse("portal:home")


def test_a_signed_in_user_sent_back_to_the_sign_in_page_goes_home(client, sales):
    # given a signed-in user
    client.force_login(sales)
    # when a link sends them to the sign-in page with itself as next (Django's LoginView raised for that loop: 500)
    response = client.get(reverse("portal:login") + "?next=/login/")
    # then they go Home
    assert response.status_code == 302
    assert response["Location"] == reverse("portal:home")


@pytest.mark.parametrize("target", ["null", "https://evil.example/"])
def test_sign_out_with_an_unusable_next_goes_to_the_sign_in_page(client, sales, target):
    client.force_login(sales)
    # when a user signs out with a next that is not a path of this site
    response = client.post(reverse("portal:logout"), {"next": target})
    # then they are signed out and on the sign-in page
    assert response.status_code == 302
    assert response["Location"] == reverse("portal:login")
    assert client.get(reverse("portal:home")).status_code == 302


def test_sign_in_with_a_wrong_password_is_refused(client, sales):
    # when a staff user signs in with a wrong password
    response = client.post(reverse("portal:login"), {"username": sales.username, "password": "wrong-password"})
    # then the page says so and they are not signed in
    assert response.status_code == 200
    assert "The username or password is not right. Try again." in response.content.decode()
    assert client.get(reverse("portal:home")).status_code == 302


def test_sign_out_is_a_post(client, sales, now):
    # given a signed-in staff user
    client.force_login(sales)
    # when they GET the sign-out URL
    response = client.get(reverse("portal:logout"))
    # then nothing happens: signing out takes a POST (a link or image can't sign anyone out)
    assert response.status_code == 405
    assert client.get(reverse("portal:home")).status_code == 200
    # when they POST it
    response = client.post(reverse("portal:logout"))
    # then they are signed out and sent to sign in
    assert response.status_code == 302
    assert response["Location"] == reverse("portal:login")
    assert client.get(reverse("portal:home")).status_code == 302


def test_sign_out_button_is_a_form_posting_to_logout(client, sales, now):
    # given a signed-in staff user
    client.force_login(sales)
    # when any page is shown
    page = client.get(reverse("portal:home")).content.decode()
    # then its Sign out is a POST form with a CSRF token
    form = re.search(r'<form method="post" action="/logout/">(.*?)</form>', page, re.S)
    assert form is not None
    assert 'name="csrfmiddlewaretoken"' in form.group(1)
    assert '<button class="link-button" type="submit">Sign out</button>' in form.group(1)


def test_a_user_without_a_partner_sees_no_tenant_data(client, customer, now):
    # given a signed-in user who belongs to no partner
    client.force_login(factories.UserFactory())
    # when they open the customer list and a customer
    listing = client.get(reverse("portal:customer-list"))
    account = client.get(reverse("portal:customer-account", args=[customer.pk]))
    # then they are refused
    assert listing.status_code == 403
    assert account.status_code == 403


# --- T4: customers ------------------------------------------------------------------------------


@pytest.mark.rule("T4")
@pytest.mark.parametrize(
    "country, segment, shown_country, shown_segment, eu_efta",
    [
        ("DE", "education", "Germany (DE)", "Education", "Yes: additional resellers are declared at purchase"),
        ("US", "government", "United States (US)", "Government", "No"),
        ("NO", "nonprofit", "Norway (NO)", "Nonprofit", "Yes: additional resellers are declared at purchase"),
        ("GB", "commercial", "United Kingdom (GB)", "Commercial", "No"),
    ],
)
def test_t4_account_page_shows_segment_country_and_eu_efta_from_the_country(
    client, sales, direct_partner, now, country, segment, shown_country, shown_segment, eu_efta
):
    # given a customer billed in a country, of a segment
    customer = factories.CustomerFactory(
        partner=direct_partner, company_name="Fabrikam Ltd", billing_country=country, segment=segment
    )
    client.force_login(sales)
    # when its account page is opened
    response = client.get(reverse("portal:customer-account", args=[customer.pk]))
    # then it shows the segment, the billing country and whether that is in the EU/EFTA
    page = response.content.decode()
    assert response.status_code == 200
    assert f"<dt>Segment</dt><dd>{shown_segment}</dd>" in page
    assert f"<dt>Billing country</dt><dd>{shown_country}</dd>" in page
    assert f"<dt>EU/EFTA</dt><dd>{eu_efta}</dd>" in page
    assert "<dt>Company</dt><dd>Fabrikam Ltd</dd>" in page


@pytest.mark.rule("T4")
def test_t4_customer_list_shows_segment_country_and_eu_efta(client, sales, direct_partner, now):
    # given two customers of the partner
    factories.CustomerFactory(
        partner=direct_partner, company_name="Fabrikam GmbH", billing_country="DE", segment="education"
    )
    factories.CustomerFactory(
        partner=direct_partner, company_name="Contoso School District", billing_country="US", segment="government"
    )
    client.force_login(sales)
    # when the customer list is opened
    page = client.get(reverse("portal:customer-list")).content.decode()
    # then each row has its segment, country and EU/EFTA flag, by company name
    rows = re.findall(
        r'<tr><td><a href="[^"]+">([^<]+)</a><span class="why">[^<]*</span></td>\s*'
        r"<td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td>",
        page,
    )
    assert rows == [
        ("Contoso School District", "Government", "United States", "No"),
        ("Fabrikam GmbH", "Education", "Germany", "Yes"),
    ]


@pytest.mark.rule("T4")
def test_t4_customer_list_filters_by_segment_and_country(client, sales, direct_partner, now):
    # given customers in several segments and countries
    factories.CustomerFactory(
        partner=direct_partner, company_name="Fabrikam GmbH", billing_country="DE", segment="education"
    )
    factories.CustomerFactory(
        partner=direct_partner, company_name="Adatum AG", billing_country="DE", segment="commercial"
    )
    factories.CustomerFactory(
        partner=direct_partner, company_name="Contoso Schools", billing_country="US", segment="education"
    )
    client.force_login(sales)
    # when filtered by segment and country (htmx: the results only)
    page = client.get(
        reverse("portal:customer-list"), {"segment": "education", "country": "DE"}, HTTP_HX_REQUEST="true"
    ).content.decode()
    # then only the matching customer is listed
    assert re.findall(r'<tr><td><a href="[^"]+">([^<]+)</a>', page) == ["Fabrikam GmbH"]
    assert "<html" not in page


# --- T5: time -----------------------------------------------------------------------------------


@pytest.mark.rule("T5")
def test_t5_order_list_labels_its_times_utc(client, sales, customer, now):
    # given an order placed at 2026-11-24 09:30 UTC
    order = factories.OrderFactory(customer=customer, placed_by=sales, created_at=now - timedelta(hours=26, minutes=30))
    client.force_login(sales)
    # when the order history is opened
    page = client.get(reverse("catalog:order-list", args=[customer.pk])).content.decode()
    # then the column says UTC and so does the time
    assert "<th>Created (UTC)</th>" in page
    assert f">{order.number}</a></td><td>2026-11-24 09:30 UTC</td>" in page


@pytest.mark.rule("T5")
def test_t5_order_detail_created_time_ends_with_utc(client, sales, customer, now):
    # given an order placed now (2026-11-25 12:00 UTC)
    order = factories.OrderFactory(customer=customer, placed_by=sales, created_at=now)
    factories.OrderLineFactory(order=order)
    client.force_login(sales)
    # when the order is opened
    page = client.get(reverse("catalog:order-detail", args=[customer.pk, order.pk])).content.decode()
    # then its created time is shown in UTC, labelled
    created = re.search(r"<dt>Created</dt><dd>([^<]*)</dd>", page).group(1)
    assert created == "2026-11-25 12:00 UTC"
    assert created.endswith("UTC")


@pytest.mark.rule("T5")
def test_t5_cart_shows_its_creation_and_expiry_in_utc(client, sales, customer, now):
    # given a cart created a day ago
    cart = factories.CartFactory(customer=customer, owner=sales, created_at=now - timedelta(days=1))
    factories.CartLineFactory(cart=cart)
    client.force_login(sales)
    # when the cart is opened
    page = client.get(reverse("catalog:cart-detail", args=[customer.pk])).content.decode()
    # then both times say UTC, with the time left
    assert (
        '<span class="muted">Created 2026-11-24 12:00 UTC · expires 2026-12-01 12:00 UTC (6 d 0 h left)</span>' in page
    )


@pytest.mark.rule("T5")
def test_t5_every_page_says_times_are_utc(client, sales, now):
    # given a signed-in staff user
    client.force_login(sales)
    # when Home is opened
    page = client.get(reverse("portal:home")).content.decode()
    # then the current time and the footer say UTC
    assert "now 2026-11-25 12:00 UTC" in page
    assert '<footer class="footer">All times are UTC.</footer>' in page


# --- CSRF ---------------------------------------------------------------------------------------


def test_a_post_without_csrf_token_is_refused_and_changes_nothing(sales, customer, now):
    # given a signed-in sales agent whose browser enforces CSRF, and an offer
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(sales)
    avail = factories.availability(factories.SkuFactory(name="Microsoft 365 Business Standard"))
    url = reverse("catalog:cart-add", args=[customer.pk])
    # when a cart-add is posted without the CSRF token
    response = browser.post(url, {"availability": avail.pk, "quantity": "3"})
    # then it is refused and there is no cart
    assert response.status_code == 403
    assert Cart.objects.count() == 0
    assert CartLine.objects.count() == 0
    # and with the page's token the same post works (the refusal was the missing token)
    browser.get(reverse("catalog:offer-list", args=[customer.pk]))
    token = browser.cookies["csrftoken"].value
    response = browser.post(url, {"availability": avail.pk, "quantity": "3", "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert list(CartLine.objects.values_list("availability_id", "quantity")) == [(avail.pk, 3)]


def test_a_purchase_without_csrf_token_is_refused_and_buys_nothing(sales, customer, now):
    # given a cart ready to buy, and a browser that enforces CSRF
    cart = factories.CartFactory(customer=customer, owner=sales)
    factories.CartLineFactory(cart=cart)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(sales)
    # when the purchase is posted without the CSRF token
    response = browser.post(reverse("catalog:cart-purchase", args=[customer.pk, cart.pk]), {"attest": "on"})
    # then it is refused and nothing is bought
    assert response.status_code == 403
    assert Order.objects.count() == 0
    assert Cart.objects.get(pk=cart.pk).status == Cart.Status.OPEN


# --- Query counts -------------------------------------------------------------------------------


def add_customers(partner, n):
    for _ in range(n):
        reseller = factories.PartnerFactory(kind=Partner.Kind.INDIRECT_RESELLER)
        customer = factories.CustomerFactory(partner=partner, reseller=reseller)
        factories.SubscriptionFactory(customer=customer)


def test_customer_list_query_count_does_not_grow_with_the_customers(client, sales, direct_partner, now):
    # given 2 customers, each with a reseller of record and a subscription
    add_customers(direct_partner, 2)
    client.force_login(sales)
    url = reverse("portal:customer-list")
    client.get(url)  # warm-up: the first request of a session loads what every later one reuses
    few = count_queries(client, url)
    # when there are ten times as many (one page of 20)
    add_customers(direct_partner, 18)
    many = count_queries(client, url)
    # then the page costs the same number of queries, within the budget
    print(f"customer list: {few} queries with 2 customers, {many} with 20")
    assert many == few
    assert many <= QUERY_BUDGET


@pytest.mark.rule("O1")
@pytest.mark.rule("T3")
def test_o1_orders_across_customers_lists_only_this_partners_orders_newest_first(db, client, now):
    # given two customers of one partner with orders, and another partner's order
    mine = factories.PartnerFactory(name="Contoso Direct")
    user = factories.staff(mine, "support_agent")
    older = factories.OrderFactory(
        customer=factories.CustomerFactory(partner=mine, company_name="Alpha"),
        placed_by=user,
        created_at=now - timedelta(days=2),
    )
    newer = factories.OrderFactory(
        customer=factories.CustomerFactory(partner=mine, company_name="Beta"),
        placed_by=user,
        created_at=now - timedelta(days=1),
    )
    theirs = factories.OrderFactory(customer=factories.CustomerFactory(), placed_by=factories.UserFactory())
    client.force_login(user)
    # when the Orders page is opened
    html = client.get(reverse("catalog:all-orders")).content.decode()
    # then it shows this partner's orders, newest first, with their customers, and not the other partner's
    assert html.index(newer.number) < html.index(older.number)
    assert "Alpha" in html and "Beta" in html
    assert theirs.number not in html


@pytest.mark.rule("O1")
def test_o1_orders_across_customers_filter_by_status_and_ignore_an_unknown_one(db, client, now):
    # given a completed and a pending order of one partner
    mine = factories.PartnerFactory()
    user = factories.staff(mine, "support_agent")
    customer = factories.CustomerFactory(partner=mine)
    done = factories.OrderFactory(customer=customer, placed_by=user, status=Order.Status.COMPLETED)
    waiting = factories.OrderFactory(customer=customer, placed_by=user, status=Order.Status.PENDING)
    client.force_login(user)
    url = reverse("catalog:all-orders")
    # when the orders are filtered by status, by a status that isn't one, and by none
    completed = client.get(url, {"status": "completed"}).content.decode()
    unknown = client.get(url, {"status": "shipped\x00"})
    every = client.get(url).content.decode()
    # then the status lists its own orders, with its chip current; an unknown status lists them all, as no filter
    assert done.number in completed and waiting.number not in completed
    assert 'status=completed" aria-current="true"' in completed.replace("&amp;", "&")
    assert unknown.status_code == 200
    assert done.number in unknown.content.decode() and waiting.number in unknown.content.decode()
    assert done.number in every and waiting.number in every


@pytest.mark.rule("T3")
def test_top_bar_search_opens_a_subscription_by_id_only_within_the_partner(db, client, now):
    # given a subscription of this partner and one of another partner
    mine = factories.PartnerFactory()
    user = factories.staff(mine, "support_agent")
    own = factories.SubscriptionFactory(customer=factories.CustomerFactory(partner=mine))
    other = factories.SubscriptionFactory()
    client.force_login(user)
    # when each id is searched
    found = client.get(reverse("portal:customer-list"), {"q": str(own.pk)})
    missed = client.get(reverse("portal:customer-list"), {"q": str(other.pk)})
    # then the own one opens, and the other partner's is not found
    assert found.status_code == 302
    assert found["Location"] == reverse("subscriptions:subscription-detail", args=[own.customer_id, own.pk])
    assert missed.status_code == 200 and "No customer matches these filters" in missed.content.decode()


def test_customer_list_rows_escape_what_partners_typed(client, sales, direct_partner, now):
    reseller = factories.PartnerFactory(name="<i>Adatum</i>")
    factories.CustomerFactory(
        partner=direct_partner, company_name="<script>x</script> & Co", domain="a<b>.example", reseller=reseller
    )
    client.force_login(sales)
    page = client.get(reverse("portal:customer-list")).content.decode()
    assert "<script>x" not in page and "<i>Adatum" not in page and "a<b>" not in page
    assert '">&lt;script&gt;x&lt;/script&gt; &amp; Co</a><span class="why">a&lt;b&gt;.example</span></td>' in page
    assert "<td>&lt;i&gt;Adatum&lt;/i&gt;</td>" in page


def test_customer_list_pages_count_from_their_own_rows_in_one_query(client, sales, direct_partner, now):
    # given 27 customers (a full first page of 25 and a second of 2) in two countries
    for i in range(27):
        factories.CustomerFactory(
            partner=direct_partner, company_name=f"Customer {i:02d}", billing_country="DE" if i % 2 else "US"
        )
    client.force_login(sales)
    url = reverse("portal:customer-list")
    client.get(url)  # warm-up: session and user

    # when the first, the second and a page past the end are opened
    def customer_table(queries):
        return [q for q in queries.captured_queries if 'FROM "portal_customer"' in q["sql"]]

    with CaptureQueriesContext(connection) as queries:
        first = client.get(url).content.decode()
    first_queries = customer_table(queries)  # now: the next request resets the log
    with CaptureQueriesContext(connection) as queries:
        second = client.get(url, {"page": "2"}).content.decode()
    second_queries = customer_table(queries)
    past = client.get(url, {"page": "9"}).content.decode()

    # then each page says the total and lists its own rows, in one query of the customers' table each
    def names(page):
        return re.findall(r'<tr><td><a href="[^"]+">([^<]+)</a>', page)

    assert "Page 1 of 2 · 27 in all" in first and names(first) == [f"Customer {i:02d}" for i in range(25)]
    assert "Page 2 of 2 · 27 in all" in second and names(second) == ["Customer 25", "Customer 26"]
    assert names(past) == ["Customer 25", "Customer 26"]
    # and the country filter still offers every country of the partner
    assert re.findall(r'<option value="([A-Z]{2})"', first) == ["DE", "US"]
    assert len(first_queries) == 1
    assert len(second_queries) == 1


@pytest.mark.rule("T3")
def test_customer_list_search_finds_by_name_domain_or_subscription_name_and_counts_what_it_found(
    client, sales, direct_partner, now
):
    # given 28 customers named alike, one with a subscription named differently, and another partner's namesake
    for i in range(26):
        factories.CustomerFactory(partner=direct_partner, company_name=f"Fabrikam {i:02d}", billing_country="DE")
    factories.CustomerFactory(partner=direct_partner, company_name="Contoso", domain="fabrikam-eu.example")
    named = factories.CustomerFactory(partner=direct_partner, company_name="Adatum")
    factories.SubscriptionFactory(customer=named, friendly_name="Fabrikam licences")
    factories.CustomerFactory(partner=direct_partner, company_name="Northwind")
    factories.CustomerFactory(company_name="Fabrikam (another partner's)")
    client.force_login(sales)
    url = reverse("portal:customer-list")
    # when "fabrikam" is searched, and filtered by country too
    first = client.get(url, {"q": "fabrikam"}).content.decode()
    second = client.get(url, {"q": "fabrikam", "page": "2"}).content.decode()
    german = client.get(url, {"q": "FABRIKAM", "country": "DE", "page": "2"}).content.decode()

    # then the matches (by name, domain or a subscription's name), and only they, are counted and paged
    def names(page):
        return re.findall(r'<tr><td><a href="[^"]+">([^<]+)</a>', page)

    assert "Page 1 of 2 · 28 in all" in first
    assert names(first) == ["Adatum", "Contoso"] + [f"Fabrikam {i:02d}" for i in range(23)]
    assert names(second) == ["Fabrikam 23", "Fabrikam 24", "Fabrikam 25"]
    assert "Page 2 of 2 · 26 in all" in german and names(german) == ["Fabrikam 25"]
    # and without the search every customer of the partner is back
    assert "29 in all" in client.get(url).content.decode()


def test_customer_list_counts_live_subscriptions_exactly_up_to_the_bound(
    client, sales, direct_partner, now, monkeypatch
):
    # given a bound of 2 (selectors.COUNT_BOUND, as the subscription lists count), a customer with 2 live
    # subscriptions and a cancelled one, and a customer with 3 live ones
    monkeypatch.setattr(selectors, "COUNT_BOUND", 2)
    at_bound = factories.CustomerFactory(partner=direct_partner, company_name="Adatum")
    for _ in range(2):
        factories.SubscriptionFactory(customer=at_bound)
    factories.SubscriptionFactory(customer=at_bound, deleted=True)
    beyond = factories.CustomerFactory(partner=direct_partner, company_name="Contoso")
    for _ in range(3):
        factories.SubscriptionFactory(customer=beyond)
    client.force_login(sales)
    # when the customer list is opened
    page = client.get(reverse("portal:customer-list")).content.decode()
    # then the first count is exact (the cancelled one left out) and the second reads "2+"
    counts = re.findall(r'<tr><td><a href="[^"]+">([^<]+)</a>.*?<td class="num">([^<]*)</td></tr>', page, re.S)
    assert counts == [("Adatum", "2"), ("Contoso", "2+")]


def test_customer_list_with_no_match_still_offers_every_country(client, sales, direct_partner, now):
    # given customers in two countries
    factories.CustomerFactory(partner=direct_partner, company_name="Fabrikam GmbH", billing_country="DE")
    factories.CustomerFactory(partner=direct_partner, company_name="Contoso Ltd", billing_country="GB")
    client.force_login(sales)
    # when the search matches none of them
    page = client.get(reverse("portal:customer-list"), {"q": "no such company"}).content.decode()
    # then the page says so, counts nothing and the country filter still lists both countries
    assert "No customer matches these filters." in page
    assert "in all" not in page
    assert re.findall(r'<option value="([A-Z]{2})"', page) == ["DE", "GB"]
