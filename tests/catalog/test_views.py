"""The catalog, cart, checkout and order pages through the test client (C2, C4, K1–K3, K9, K10,
K12, O1, O2), with the bad input they must survive and the SQL they cost."""

import re
from datetime import timedelta
from decimal import Decimal
from html import escape

import pytest
from django.urls import reverse

from catalog.models import Cart, CartLine, Order, OrderAdditionalReseller, OrderLine
from portal.models import Partner
from subscriptions.models import Subscription
from tests import factories
from tests.helpers import cart_drawn, count_queries, database_state, visible_text

QUERY_BUDGET = 12


def offer_names(page: str) -> list[str]:
    return re.findall(r"<h3>([^<]*)</h3>", page)


def offer_card(page: str, sku) -> str:
    match = re.search(rf'<article class="offer[^"]*" data-sku="{re.escape(sku.sku_id)}">.*?</article>', page, re.S)
    assert match, f"{sku.sku_id} is not on the page"
    return match.group(0)


def cart_row(page: str, line) -> str:
    match = re.search(rf'<tr data-line="{line.pk}">(.*?)</tr>', page, re.S)
    assert match, f"cart line {line.pk} is not on the page"
    return match.group(1)


def cells(row: str) -> list[str]:
    return [visible_text(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]


def sku(name: str, **kwargs):
    """An offer whose product has the same name (so a text search finds exactly it)."""
    product = {k[len("product__") :]: v for k, v in kwargs.items() if k.startswith("product__")}
    rest = {k: v for k, v in kwargs.items() if not k.startswith("product__")}
    if "publisher" in product:
        publisher = product.pop("publisher")
        return factories.SkuFactory(
            name=name, product=factories.ProductFactory(name=name, publisher=publisher, **product), **rest
        )
    return factories.SkuFactory(name=name, product=factories.ProductFactory(name=name, **product), **rest)


# --- C2: filters --------------------------------------------------------------------------------


@pytest.fixture
def catalog(db):
    fabrikam = factories.PublisherFactory(name="Fabrikam Software", is_microsoft=False)
    return {
        "e3": sku("Microsoft 365 E3"),
        "azure": sku("Azure plan", product__billing_type="usage"),
        "basic": sku("Microsoft 365 Business Basic", product__category="small_business"),
        "trial": sku("Microsoft 365 E5 Trial", is_trial=True, product__category="trial"),
        "backup": sku("Fabrikam Backup", product__publisher=fabrikam, product__category="small_business"),
        "insights": sku("Fabrikam Insights", product__publisher=fabrikam, product__billing_type="usage"),
    }


ALL_OFFERS = [
    "Azure plan",
    "Microsoft 365 Business Basic",
    "Microsoft 365 E3",
    "Microsoft 365 E5 Trial",
    "Fabrikam Backup",
    "Fabrikam Insights",
]


@pytest.mark.rule("C2")
@pytest.mark.parametrize(
    "query, expected",
    [
        ("", ALL_OFFERS),
        ("publisher=partner", ["Fabrikam Backup", "Fabrikam Insights"]),
        (
            "publisher=microsoft",
            ["Azure plan", "Microsoft 365 Business Basic", "Microsoft 365 E3", "Microsoft 365 E5 Trial"],
        ),
        ("publisher=microsoft&publisher=partner", ALL_OFFERS),
        ("billing_type=usage", ["Azure plan", "Fabrikam Insights"]),
        (
            "billing_type=license",
            ["Microsoft 365 Business Basic", "Microsoft 365 E3", "Microsoft 365 E5 Trial", "Fabrikam Backup"],
        ),
        ("category=small_business", ["Microsoft 365 Business Basic", "Fabrikam Backup"]),
        ("category=trial", ["Microsoft 365 E5 Trial"]),
        (
            "category=enterprise&category=trial",
            ["Azure plan", "Microsoft 365 E3", "Microsoft 365 E5 Trial", "Fabrikam Insights"],
        ),
        ("publisher=microsoft&category=small_business", ["Microsoft 365 Business Basic"]),
        ("publisher=partner&billing_type=license", ["Fabrikam Backup"]),
        ("q=E3", ["Microsoft 365 E3"]),
        ("q=fabrikam", ["Fabrikam Backup", "Fabrikam Insights"]),
        ("q=fabrikam&billing_type=usage", ["Fabrikam Insights"]),
        ("q=backup&publisher=microsoft", []),
    ],
)
def test_c2_catalog_filters_from_the_query_string(signed_in, customer, catalog, query, expected):
    # given six offers of two publishers, both billing types and the three categories
    # when the catalog is opened with filters in its query string
    response = signed_in.get(f"{reverse('catalog:offer-list', args=[customer.pk])}?{query}")
    # then exactly the matching offers are listed, Microsoft first, by name
    assert response.status_code == 200
    page = response.content.decode()
    assert offer_names(page) == expected
    if not expected:
        assert "No offer matches these filters. Clear a filter or the search." in page


@pytest.mark.rule("C2")
def test_c2_the_filter_form_shows_the_filters_of_the_url(signed_in, customer, catalog):
    # when the catalog is opened with filters in the URL
    page = signed_in.get(
        reverse("catalog:offer-list", args=[customer.pk]),
        {"publisher": "partner", "category": "small_business", "q": "backup"},
    ).content.decode()
    # then the form shows them set, so the next change keeps them
    assert re.search(r'<input type="checkbox" name="publisher" value="partner"[^>]*checked>', page)
    assert not re.search(r'<input type="checkbox" name="publisher" value="microsoft"[^>]*checked>', page)
    assert re.search(r'<input type="checkbox" name="category" value="small_business"[^>]*checked>', page)
    assert '<input type="search" name="q" value="backup"' in page


@pytest.mark.rule("C2")
@pytest.mark.parametrize(
    "query", ["publisher=bogus", "category=nope&billing_type=x", "page=abc", "page=999", "q=%00%27%22<script>"]
)
def test_c2_bad_filter_values_never_break_the_page(signed_in, customer, catalog, query):
    # when the catalog is opened with values no filter knows
    response = signed_in.get(f"{reverse('catalog:offer-list', args=[customer.pk])}?{query}")
    # then the page is still shown (an unknown value filters nothing)
    assert response.status_code == 200
    assert 'id="results"' in response.content.decode()


@pytest.mark.rule("C2")
def test_c2_htmx_request_returns_only_the_results(signed_in, customer, catalog):
    # given the catalog URL with a filter
    url = reverse("catalog:offer-list", args=[customer.pk])
    # when htmx asks for it (a filter changed) and when a browser does
    partial = signed_in.get(url, {"publisher": "partner"}, HTTP_HX_REQUEST="true")
    full = signed_in.get(url, {"publisher": "partner"})
    # then htmx gets the results alone, the browser the whole page, both filtered
    assert partial.status_code == 200
    partial_page = partial.content.decode()
    assert "<html" not in partial_page
    assert partial_page.strip().startswith('<div id="results" aria-live="polite">')
    assert 'id="offer-filters"' not in partial_page
    assert offer_names(partial_page) == ["Fabrikam Backup", "Fabrikam Insights"]
    full_page = full.content.decode()
    assert full_page.startswith("<!doctype html>")
    assert 'id="results"' in full_page and 'id="offer-filters"' in full_page
    assert offer_names(full_page) == ["Fabrikam Backup", "Fabrikam Insights"]


@pytest.mark.rule("C2")
def test_c2_a_boosted_navigation_gets_the_whole_page(signed_in, customer, catalog):
    # when htmx boosts a link to the catalog (a navigation, not a filter change)
    response = signed_in.get(
        reverse("catalog:offer-list", args=[customer.pk]), HTTP_HX_REQUEST="true", HTTP_HX_BOOSTED="true"
    )
    # then the whole page is returned
    page = response.content.decode()
    assert page.startswith("<!doctype html>")
    assert 'id="offer-filters"' in page


@pytest.mark.rule("C3")
def test_c3_offers_not_sold_to_the_segment_are_hidden_unless_asked_for(signed_in, customer, catalog):
    # given an offer sold to education customers only, and a commercial customer
    education = sku("Microsoft 365 A3", segments="education")
    url = reverse("catalog:offer-list", args=[customer.pk])
    # when the catalog is opened, then with "also show offers not sold to this customer"
    default = signed_in.get(url).content.decode()
    shown = signed_in.get(url, {"show_all": "1"}).content.decode()
    # then it is hidden by default, and shown greyed with the reason on request
    assert "Microsoft 365 A3" not in offer_names(default)
    card = offer_card(shown, education)
    assert card.startswith(f'<article class="offer unavailable" data-sku="{education.sku_id}">')
    assert ("<strong>Unavailable:</strong> Not sold to commercial customers (sold to: education).") in card


@pytest.mark.rule("C2")
def test_c2_more_than_20_offers_are_paginated_keeping_the_filters(signed_in, customer):
    # given 21 offers
    for n in range(1, 22):
        sku(f"Offer {n:02d}")
    url = reverse("catalog:offer-list", args=[customer.pk])
    # when the first page is opened, with a search
    first = signed_in.get(url, {"q": "Offer"}).content.decode()
    # then it lists 20, says how many pages, and links to the next one with the same search
    assert offer_names(first) == [f"Offer {n:02d}" for n in range(1, 21)]
    assert "<span>Page 1 of 2 · 21 in all</span>" in first
    assert '<a class="btn" href="?q=Offer&amp;page=2">Next</a>' in first
    # when the second page is asked for by htmx
    second = signed_in.get(url, {"q": "Offer", "page": "2"}, HTTP_HX_REQUEST="true").content.decode()
    # then it has the last offer and a link back
    assert offer_names(second) == ["Offer 21"]
    assert "<span>Page 2 of 2 · 21 in all</span>" in second
    assert '<a class="btn" href="?q=Offer&amp;page=1">Previous</a>' in second


@pytest.mark.rule("C2")
def test_c2_twenty_offers_or_fewer_have_no_pagination(signed_in, customer):
    # given exactly 20 offers
    for n in range(1, 21):
        sku(f"Offer {n:02d}")
    # when the catalog is opened
    page = signed_in.get(reverse("catalog:offer-list", args=[customer.pk])).content.decode()
    # then all are on one page
    assert len(offer_names(page)) == 20
    assert 'class="pagination"' not in page


# --- C4: unavailable offers show why ------------------------------------------------------------


def unavailable(reason: str, customer, direct_partner):
    """An offer this customer cannot buy for `reason`, and the sentence that says why."""
    fabrikam = factories.PublisherFactory(name="Fabrikam Software", is_microsoft=False)
    if reason == "C4a":
        offer = sku("Microsoft Defender for Business", one_per_customer=True)
        factories.SubscriptionFactory(customer=customer, sku=offer)
        return offer, "The customer already has this offer and only one subscription is allowed."
    if reason == "C4b":
        offer = sku("Microsoft 365 Business Premium")
        factories.SubscriptionFactory(customer=customer, sku=offer, suspended=True)
        return offer, "The customer&#x27;s subscription to this offer is suspended: reactivate it instead."
    if reason == "C4c":
        offer = sku("Fabrikam Payroll EU", product__publisher=fabrikam, available_countries="DE,FR")
        return offer, "The publisher does not sell this offer in United States."
    if reason == "C4d":
        offer = sku("Fabrikam Direct Only", product__publisher=fabrikam, offered_through_csp=False)
        return offer, "The publisher does not offer this through the CSP program."
    if reason == "C4e":
        offer = sku("Fabrikam Exclusive", product__publisher=fabrikam)
        offer.exclusive_partners.add(factories.PartnerFactory(name="Woodgrove Partners"))
        return offer, "The publisher made this offer exclusive to other CSP partners."
    if reason == "C4f":
        offer = sku("Azure Container Instances", product__billing_type="usage", transactable_in_portal=False)
        return offer, (
            "This offer can&#x27;t be bought here (containers, some consumption offers): buy it in the Azure portal."
        )
    raise AssertionError(reason)


C4_REASONS = ["C4a", "C4b", "C4c", "C4d", "C4e", "C4f"]


@pytest.mark.rule("C4")
@pytest.mark.parametrize("reason", C4_REASONS)
def test_c4_unavailable_offer_is_greyed_with_its_reason_and_a_disabled_button(
    signed_in, customer, direct_partner, reason
):
    # given an offer the customer cannot buy, and one it can
    offer, why = unavailable(reason, customer, direct_partner)
    available = sku("Exchange Online (Plan 1)")
    # when the catalog is opened
    page = signed_in.get(reverse("catalog:offer-list", args=[customer.pk])).content.decode()
    # then the offer is greyed, says why, and its Add to cart is disabled with the reason
    card = offer_card(page, offer)
    assert card.startswith(f'<article class="offer unavailable" data-sku="{offer.sku_id}">')
    assert re.search(rf'<p class="reason" role="note"[^>]*><strong>Unavailable:</strong> {re.escape(why)}', card)
    assert re.search(
        rf'<button class="btn" type="button" disabled title="{re.escape(why)}"[^>]*>Add to cart</button>', card
    )
    assert "<form" not in card
    # and the other offer is not
    other = offer_card(page, available)
    assert other.startswith(f'<article class="offer" data-sku="{available.sku_id}">')
    assert '<button class="btn btn-primary" type="submit">Add to cart</button>' in other


@pytest.mark.rule("C4")
def test_c4b_suspended_offer_links_to_the_subscription_to_reactivate(signed_in, customer, direct_partner):
    # given the customer's subscription to an offer is suspended
    offer, _why = unavailable("C4b", customer, direct_partner)
    subscription = Subscription.objects.get(customer=customer, sku=offer)
    # when the catalog is opened
    page = signed_in.get(reverse("catalog:offer-list", args=[customer.pk])).content.decode()
    # then the reason links to that subscription
    link = reverse("subscriptions:subscription-detail", args=[customer.pk, subscription.pk])
    assert f'<a href="{link}">Open the suspended subscription</a>' in offer_card(page, offer)


@pytest.mark.rule("C4")
@pytest.mark.parametrize("reason", C4_REASONS)
def test_c4_posting_an_unavailable_offer_anyway_is_refused_with_the_reason(signed_in, customer, direct_partner, reason):
    # given an offer the customer cannot buy
    offer, why = unavailable(reason, customer, direct_partner)
    # when its availability is posted to the cart anyway
    response = signed_in.post(
        reverse("catalog:cart-add", args=[customer.pk]),
        cart_drawn(customer, {"availability": factories.availability(offer).pk, "quantity": "3"}),
    )
    # then it is refused with the same reason and no cart line exists
    assert response.status_code == 422
    assert f'<div class="msgbar msgbar-error" role="alert">{why}</div>' in response.content.decode()
    assert CartLine.objects.count() == 0
    assert Cart.objects.count() == 0


@pytest.mark.rule("C4")
def test_c4_htmx_add_of_an_unavailable_offer_answers_422_with_the_reason_in_the_feedback(
    signed_in, customer, direct_partner
):
    # given an offer that can't be bought in the portal
    offer, why = unavailable("C4f", customer, direct_partner)
    # when htmx posts it to the cart
    response = signed_in.post(
        reverse("catalog:cart-add", args=[customer.pk]),
        cart_drawn(customer, {"availability": factories.availability(offer).pk, "quantity": "1"}),
        HTTP_HX_REQUEST="true",
    )
    # then the feedback fragment alone carries the reason, with 422 (which the page swaps in)
    assert response.status_code == 422
    assert response.content.decode().strip() == f'<span class="field-error" role="alert">{why}</span>'
    assert CartLine.objects.count() == 0


@pytest.mark.rule("C4")
@pytest.mark.rule("K9")
def test_c4_an_offer_that_became_unavailable_is_refused_again_at_purchase(signed_in, sales, customer, now):
    # given a cart with two lines, one of whose offers can no longer be bought in the portal
    cart = factories.CartFactory(customer=customer, owner=sales)
    fine = factories.CartLineFactory(cart=cart, availability=factories.availability(sku("Exchange Online (Plan 1)")))
    gone_sku = sku("Azure Container Instances")
    gone = factories.CartLineFactory(cart=cart, availability=factories.availability(gone_sku))
    gone_sku.transactable_in_portal = False
    gone_sku.save()
    # when the cart is purchased
    response = signed_in.post(
        reverse("catalog:cart-purchase", args=[customer.pk, cart.pk]), cart_drawn(customer, {"attest": "on"})
    )
    # then nothing is bought and the refused line says why
    assert response.status_code == 422
    page = response.content.decode()
    assert (
        '<div class="msgbar msgbar-error" role="alert">Nothing was bought: fix the lines marked below and '
        "purchase again.</div>"
    ) in page
    assert (
        '<div class="field-error" role="alert">This offer can&#x27;t be bought here (containers, some consumption '
        "offers): buy it in the Azure portal.</div>"
    ) in cart_row(page, gone)
    assert 'class="field-error"' not in cart_row(page, fine)
    assert Order.objects.count() == 0
    assert Cart.objects.get(pk=cart.pk).status == Cart.Status.OPEN


# --- K1/K2: cart --------------------------------------------------------------------------------


@pytest.fixture
def standard(db):
    """Microsoft 365 Business Standard: P1Y monthly at 10.00, P1M monthly at 12.00."""
    return sku("Microsoft 365 Business Standard")


@pytest.mark.rule("K8")
def test_a_refused_add_without_javascript_keeps_the_way_and_the_quantity_typed_on_its_card(
    signed_in, customer, standard
):
    # given an offer sold in two ways (the second chosen) and a quantity above its maximum typed
    yearly = factories.availability(standard)
    monthly = factories.availability(standard, "P1M", "monthly")
    signed_in.get(reverse("catalog:offer-list", args=[customer.pk]))  # its card's fragments are cached
    before = database_state()
    response = signed_in.post(
        reverse("catalog:cart-add", args=[customer.pk]),
        cart_drawn(customer, {"availability": monthly.pk, "quantity": "10001"}),
    )
    # then the catalog comes back with the refusal on that card, which shows what was typed; nothing was added
    assert response.status_code == 422
    card = re.search(
        rf'<article class="offer" data-sku="{standard.sku_id}">.*?</article>', response.content.decode(), re.S
    )
    html = card.group(0)
    assert 'name="quantity" value="10001"' in html and 'aria-invalid="true"' in html
    assert f'<option value="{monthly.pk}" selected>' in html and f'<option value="{yearly.pk}">' in html
    assert "sold in quantities from 1 to 10,000" in html
    assert database_state() == before
    # and the next visit draws the card as before, from its cached fragment
    again = signed_in.get(reverse("catalog:offer-list", args=[customer.pk])).content.decode()
    assert 'name="quantity" value="1"' in again and 'value="10001"' not in again


@pytest.mark.rule("K1")
@pytest.mark.rule("K2")
def test_k1_k2_added_line_is_reviewed_with_price_quantity_term_frequency_and_totals(
    signed_in, sales, customer, standard
):
    # given the catalog of a customer
    catalog_url = reverse("catalog:offer-list", args=[customer.pk])
    # when 12 licenses of the annual term billed monthly are added to the cart
    response = signed_in.post(
        reverse("catalog:cart-add", args=[customer.pk]),
        cart_drawn(
            customer,
            {
                "availability": factories.availability(standard, "P1Y").pk,
                "quantity": "12",
                "next": f"{catalog_url}?q=Standard",
            },
        ),
    )
    # then the user goes back to the catalog they were on
    assert response.status_code == 302
    assert response["Location"] == f"{catalog_url}?q=Standard"
    # and the cart lists the line with its unit price, quantity, term, frequency and total, and the cart total
    line = CartLine.objects.get()
    assert (line.cart.owner, line.cart.customer, line.quantity) == (sales, customer, 12)
    page = signed_in.get(reverse("catalog:cart-detail", args=[customer.pk])).content.decode()
    row = cart_row(page, line)
    offer, term, frequency, unit_price, _quantity_form, total, _remove = cells(row)
    assert (offer, term, frequency, unit_price, total) == (
        "Microsoft 365 Business Standard Microsoft",
        "1 year",
        "Monthly",
        "10.00 USD",
        "120.00 USD",
    )
    assert 'name="quantity" value="12"' in row
    assert '<td class="num" id="cart-total">120.00 USD</td>' in page


@pytest.mark.rule("K1")
@pytest.mark.rule("K2")
def test_k2_cart_total_sums_every_line(signed_in, customer, standard):
    # given two lines added: 12 × 10.00 (annual term) and 3 × 12.00 (monthly term)
    add = reverse("catalog:cart-add", args=[customer.pk])
    signed_in.post(
        add, cart_drawn(customer, {"availability": factories.availability(standard, "P1Y").pk, "quantity": "12"})
    )
    signed_in.post(
        add, cart_drawn(customer, {"availability": factories.availability(standard, "P1M").pk, "quantity": "3"})
    )
    # when the cart is reviewed
    page = signed_in.get(reverse("catalog:cart-detail", args=[customer.pk])).content.decode()
    # then each line shows its own total and the cart the sum
    annual, monthly = CartLine.objects.order_by("pk")
    assert cells(cart_row(page, annual))[1:6:4] == ["1 year", "120.00 USD"]
    assert cells(cart_row(page, monthly))[1:6:4] == ["1 month", "36.00 USD"]
    assert '<td class="num" id="cart-total">156.00 USD</td>' in page


@pytest.mark.rule("K1")
def test_k1_adding_the_same_offer_again_adds_to_its_line(signed_in, customer, standard):
    # given 12 licenses in the cart
    add = reverse("catalog:cart-add", args=[customer.pk])
    avail = factories.availability(standard, "P1Y")
    signed_in.post(add, cart_drawn(customer, {"availability": avail.pk, "quantity": "12"}))
    # when 3 more of the same are added
    response = signed_in.post(add, cart_drawn(customer, {"availability": avail.pk, "quantity": "3"}), follow=True)
    # then there is one line of 15, and the page says so
    assert list(CartLine.objects.values_list("availability_id", "quantity")) == [(avail.pk, 15)]
    assert "Added Microsoft 365 Business Standard to the cart (15 in the cart)." in response.content.decode()


@pytest.mark.rule("K1")
def test_k1_htmx_add_answers_with_the_feedback_and_the_new_cart_count(signed_in, customer, standard):
    # when htmx adds 12 licenses
    response = signed_in.post(
        reverse("catalog:cart-add", args=[customer.pk]),
        cart_drawn(customer, {"availability": factories.availability(standard).pk, "quantity": "12"}),
        HTTP_HX_REQUEST="true",
    )
    # then the answer is the feedback fragment with the cart count swapped out of band
    page = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in page
    assert "Added Microsoft 365 Business Standard to the cart (12 in the cart)." in page
    assert '<span id="cart-count" hx-swap-oob="true">1</span>' in page


@pytest.mark.rule("K1")
def test_k1_line_update_and_remove(signed_in, sales, customer, standard):
    # given a line of 12 in the cart
    cart = factories.CartFactory(customer=customer, owner=sales)
    line = factories.CartLineFactory(cart=cart, availability=factories.availability(standard), quantity=12)
    # when its quantity is changed to 20
    response = signed_in.post(
        reverse("catalog:cart-line-update", args=[customer.pk, line.pk]), cart_drawn(customer, {"quantity": "20"})
    )
    # then the line and the totals follow
    assert response.status_code == 302
    assert response["Location"] == reverse("catalog:cart-detail", args=[customer.pk])
    page = signed_in.get(response["Location"]).content.decode()
    assert cells(cart_row(page, line))[5] == "200.00 USD"
    assert '<td class="num" id="cart-total">200.00 USD</td>' in page
    # when it is removed
    response = signed_in.post(
        reverse("catalog:cart-line-remove", args=[customer.pk, line.pk]), cart_drawn(customer), follow=True
    )
    # then the cart is empty
    assert CartLine.objects.count() == 0
    assert "The cart is empty." in response.content.decode()


# --- Bad input ----------------------------------------------------------------------------------

WHOLE_NUMBER = "Enter the number of licenses as a whole number of at least 1."
BAD_QUANTITIES = [
    pytest.param("", WHOLE_NUMBER, id="empty"),
    pytest.param("abc", WHOLE_NUMBER, id="abc"),
    pytest.param("-3", WHOLE_NUMBER, id="negative"),
    pytest.param("0", WHOLE_NUMBER, id="zero"),
    pytest.param("1.5", WHOLE_NUMBER, id="decimal"),
    pytest.param("²", WHOLE_NUMBER, id="superscript-two"),
    pytest.param("99999999999", "99,999,999,999 licenses is more than any offer allows.", id="huge"),
    # int() refuses a string of more than 4,300 digits (issue 9: a ValueError, 500)
    pytest.param("9" * 10_000, "That is more licenses than any offer allows.", id="10-kB-of-digits"),
    pytest.param("10001", "Microsoft 365 Business Standard is sold in quantities from 1 to 10,000.", id="above-max"),
]


def bad_quantities() -> list:
    return list(BAD_QUANTITIES)


@pytest.mark.rule("K8")
@pytest.mark.parametrize("quantity, message", bad_quantities())
def test_cart_add_refuses_a_bad_quantity_with_a_clear_message(signed_in, customer, standard, quantity, message):
    # when a bad quantity is posted with a valid offer
    signed_in.raise_request_exception = False
    response = signed_in.post(
        reverse("catalog:cart-add", args=[customer.pk]),
        cart_drawn(customer, {"availability": factories.availability(standard).pk, "quantity": quantity}),
    )
    # then it is refused with a message, and there is no cart
    assert response.status_code == 422
    assert f'<div class="msgbar msgbar-error" role="alert">{message}</div>' in response.content.decode()
    assert Cart.objects.count() == 0
    assert CartLine.objects.count() == 0


@pytest.mark.rule("K1")
@pytest.mark.rule("TR1")
@pytest.mark.parametrize("kind, quantity", [("usage", 1), ("trial", 25)])
def test_k1_offers_without_a_quantity_field_are_added_without_one(signed_in, customer, kind, quantity):
    # given a usage-based offer, or a trial (their forms send no quantity)
    offer = factories.SkuFactory(**{kind: True})
    # when it is added with no quantity field at all
    response = signed_in.post(
        reverse("catalog:cart-add", args=[customer.pk]),
        cart_drawn(customer, {"availability": factories.availability(offer).pk}),
    )
    # then it is added: usage-based carries 1, a trial its 25 licenses
    assert response.status_code == 302
    assert list(CartLine.objects.values_list("quantity", flat=True)) == [quantity]


@pytest.mark.parametrize(
    "value, message",
    [
        ("999999", "That offer is no longer in the catalog."),
        ("", "Choose a term and billing frequency."),
        ("abc", "Choose a term and billing frequency."),
        ("-1", "Choose a term and billing frequency."),
        ("99999999999999999999", "Choose a term and billing frequency."),
        pytest.param("²", "Choose a term and billing frequency.", id="superscript-two"),
    ],
)
def test_cart_add_refuses_an_unknown_availability_with_a_clear_message(signed_in, customer, standard, value, message):
    # when an availability that does not exist, or is not a number, is posted
    signed_in.raise_request_exception = False
    response = signed_in.post(
        reverse("catalog:cart-add", args=[customer.pk]), cart_drawn(customer, {"availability": value, "quantity": "3"})
    )
    # then it is refused with a message, and there is no cart
    assert response.status_code == 422
    assert f'<div class="msgbar msgbar-error" role="alert">{message}</div>' in response.content.decode()
    assert Cart.objects.count() == 0


@pytest.mark.rule("K8")
@pytest.mark.parametrize("quantity, message", bad_quantities())
def test_cart_line_update_refuses_a_bad_quantity_with_a_clear_message(
    signed_in, sales, customer, standard, quantity, message
):
    # given a line of 12 in the cart
    cart = factories.CartFactory(customer=customer, owner=sales)
    line = factories.CartLineFactory(cart=cart, availability=factories.availability(standard), quantity=12)
    # when a bad quantity is posted for it
    signed_in.raise_request_exception = False
    response = signed_in.post(
        reverse("catalog:cart-line-update", args=[customer.pk, line.pk]), cart_drawn(customer, {"quantity": quantity})
    )
    # then it is refused with a message and the line keeps its 12, while its field shows what was typed
    assert response.status_code == 422
    html = response.content.decode()
    assert f'<div class="msgbar msgbar-error" role="alert">{message}</div>' in html
    assert list(CartLine.objects.values_list("pk", "quantity")) == [(line.pk, 12)]
    field = re.search(r'<input type="[a-z]+" name="quantity"[^>]*aria-label="Quantity of [^"]*"[^>]*>', html).group(0)
    assert f'value="{escape(quantity[:40])}' in field


def test_cart_line_update_refuses_a_date_that_is_not_a_date(signed_in, sales, customer, standard):
    # given a line of 12 in the cart
    cart = factories.CartFactory(customer=customer, owner=sales)
    line = factories.CartLineFactory(cart=cart, availability=factories.availability(standard), quantity=12)
    # when an end date that is not a date is posted
    response = signed_in.post(
        reverse("catalog:cart-line-update", args=[customer.pk, line.pk]),
        cart_drawn(customer, {"quantity": "12", "aligned_end_date": "2026-13-45"}),
    )
    # then it is refused with a message, the line unchanged
    assert response.status_code == 422
    assert "&#x27;2026-13-45&#x27; is not a date (YYYY-MM-DD)." in response.content.decode()
    assert list(CartLine.objects.values_list("quantity", "aligned_end_date")) == [(12, None)]


@pytest.mark.rule("K4")
@pytest.mark.parametrize(
    "value, status, message",
    [
        ("abc", 422, "Choose a reseller from the list."),
        ("999999", 422, "That reseller is not one of your indirect resellers."),
        pytest.param("²", 422, "Choose a reseller from the list.", id="superscript-two"),
    ],
)
def test_cart_reseller_refuses_bad_input_with_a_clear_message(client, provider, now, value, status, message):
    # given an indirect provider's sales agent with an open cart
    user = factories.staff(provider, "sales_agent")
    customer = factories.CustomerFactory(partner=provider)
    cart = factories.CartFactory(customer=customer, owner=user)
    factories.CartLineFactory(cart=cart)
    client.force_login(user)
    client.raise_request_exception = False
    # when a reseller that is not one of theirs, or not a number, is posted
    response = client.post(
        reverse("catalog:cart-reseller", args=[customer.pk]), cart_drawn(customer, {"reseller": value})
    )
    # then it is refused with a message, and the cart has no reseller
    assert response.status_code == status
    assert message in response.content.decode()
    assert Cart.objects.get(pk=cart.pk).reseller_id is None


HUGE_ID = 99999999999999999999  # matches <int:...> but fits no database integer


@pytest.mark.parametrize(
    "name, status",
    [
        # ids longer than a 64-bit integer don't match the URL: 404 on every backend
        ("catalog:cart-line-update", 404),
        ("catalog:cart-line-remove", 404),
        ("catalog:cart-purchase", 404),
        ("catalog:order-detail", 404),
        ("catalog:order-confirmation", 404),
        ("catalog:cart-additional-remove", 404),
    ],
)
def test_an_id_too_large_for_the_database_never_answers_500(signed_in, sales, customer, standard, name, status):
    # given an open cart with a line
    cart = factories.CartFactory(customer=customer, owner=sales)
    line = factories.CartLineFactory(cart=cart, availability=factories.availability(standard))
    signed_in.raise_request_exception = False
    # (reverse() refuses such an id, so the URL is built from a real one)
    url = reverse(name, args=[customer.pk, 1]).replace("/1/", f"/{HUGE_ID}/")
    # when a URL carries an id too large for any integer column
    response = (
        signed_in.get(url)
        if name.startswith("catalog:order")
        else signed_in.post(url, cart_drawn(customer, {"quantity": "3", "attest": "on"}))
    )
    # then it answers like for any id that does not exist, and nothing changed
    assert response.status_code == status
    assert list(CartLine.objects.values_list("pk", "quantity")) == [(line.pk, 5)]
    assert Order.objects.count() == 0


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/phish",
        "//evil.example/phish",
        "http://testserver.evil/x",
        "/\\evil.example/phish",
        "/\tevil",
        "\t//evil.example",
        "javascript:alert(1)",
        "null",
        "customers",
        "/x\r\nSet-Cookie: a=b",
        "/x\x00",
        "//testserver/customers/",
    ],
)
def test_cart_add_never_redirects_off_site(signed_in, customer, standard, target):
    # when an add to cart carries a `next` pointing at another site
    response = signed_in.post(
        reverse("catalog:cart-add", args=[customer.pk]),
        cart_drawn(customer, {"availability": factories.availability(standard).pk, "quantity": "1", "next": target}),
    )
    # then the line is added and the user goes back to the catalog, not off-site
    assert response.status_code == 302
    assert response["Location"] == reverse("catalog:offer-list", args=[customer.pk])
    assert CartLine.objects.count() == 1


def test_cart_add_with_a_bare_word_as_next_adds_the_line_once_and_goes_back_to_the_catalog(
    signed_in, customer, standard
):
    # given a catalog page whose form posts next=null (issue 9: redirect() took it for a view name and answered 500
    # after the line was saved, so each retry added it again)
    url = reverse("catalog:cart-add", args=[customer.pk])
    availability = factories.availability(standard)
    # when the line is added
    response = signed_in.post(url, {"availability": availability.pk, "quantity": "3", "next": "null"})
    # then the add succeeds once and the user is back on the catalog
    assert response.status_code == 302
    assert response["Location"] == reverse("catalog:offer-list", args=[customer.pk])
    assert list(CartLine.objects.values_list("availability_id", "quantity")) == [(availability.pk, 3)]


def test_cart_add_goes_back_to_a_path_of_this_site_with_its_query(signed_in, customer, standard):
    # when the catalog's form names the filtered catalog page (a path, with a query string) as next
    target = reverse("catalog:offer-list", args=[customer.pk]) + "?q=Standard&page=2"
    response = signed_in.post(
        reverse("catalog:cart-add", args=[customer.pk]),
        {"availability": factories.availability(standard).pk, "quantity": "1", "next": target},
    )
    # then it goes back there
    assert response.status_code == 302
    assert response["Location"] == target


@pytest.mark.parametrize("name", ["catalog:cart-line-update", "catalog:cart-line-remove"])
def test_a_line_already_removed_answers_409_from_a_stale_page(signed_in, sales, customer, standard, name):
    # given an open cart whose line was removed in another tab
    cart = factories.CartFactory(customer=customer, owner=sales)
    line = factories.CartLineFactory(cart=cart, availability=factories.availability(standard), quantity=12)
    kept = factories.CartLineFactory(cart=cart, quantity=3)
    url = reverse(name, args=[customer.pk, line.pk])
    signed_in.post(reverse("catalog:cart-line-remove", args=[customer.pk, line.pk]), cart_drawn(customer))
    # when the stale page posts to that line again
    response = signed_in.post(url, cart_drawn(customer, {"quantity": "3"}))
    # then the state moved on: 409 with the reason, the cart re-rendered, the other line untouched
    assert response.status_code == 409
    assert (
        '<div class="msgbar msgbar-error" role="alert">That line is no longer in the cart.</div>'
        in response.content.decode()
    )
    assert list(CartLine.objects.values_list("pk", "quantity")) == [(kept.pk, 3)]


@pytest.mark.parametrize(
    "name",
    [
        "catalog:cart-add",
        "catalog:cart-line-update",
        "catalog:cart-line-remove",
        "catalog:cart-reseller",
        "catalog:cart-additional-add",
        "catalog:cart-purchase",
    ],
)
def test_cart_actions_on_get_change_nothing_and_lead_back(signed_in, sales, customer, standard, name):
    # given an open cart with a line
    cart = factories.CartFactory(customer=customer, owner=sales)
    line = factories.CartLineFactory(cart=cart, availability=factories.availability(standard))
    args = {
        "catalog:cart-line-update": [customer.pk, line.pk],
        "catalog:cart-line-remove": [customer.pk, line.pk],
        "catalog:cart-purchase": [customer.pk, cart.pk],
    }.get(name, [customer.pk])
    # when an action is requested with GET (a link, a prefetch)
    response = signed_in.get(reverse(name, args=args))
    # then nothing happens: the partner is led back to the cart (or the catalog, for "Add to cart")
    back = "catalog:offer-list" if name == "catalog:cart-add" else "catalog:cart-detail"
    assert response.status_code == 302
    assert response["Location"] == reverse(back, args=[customer.pk])
    assert list(CartLine.objects.values_list("pk", "quantity")) == [(line.pk, 5)]
    assert Order.objects.count() == 0


# --- K3, K9, K10: purchase ----------------------------------------------------------------------


@pytest.fixture
def cart(sales, customer, standard):
    cart = factories.CartFactory(customer=customer, owner=sales)
    factories.CartLineFactory(cart=cart, availability=factories.availability(standard), quantity=12)
    return cart


@pytest.mark.rule("K3")
def test_k3_cart_shows_the_attestation_for_a_direct_partner(signed_in, customer, cart):
    # when the cart is reviewed with no reseller selected
    page = signed_in.get(reverse("catalog:cart-detail", args=[customer.pk])).content.decode()
    # then the attestation says the partner acts as a direct partner, and must be ticked
    assert (
        '<label class="attest"><input type="checkbox" name="attest" required> <span>I confirm that my organisation '
        "acts as an indirect partner in this purchase when a reseller is selected, and as a direct partner when no "
        'reseller is selected. <strong id="attest-role"'
    ) in page
    assert ">No reseller is selected: you act as a direct partner.</strong></span></label>" in page


@pytest.mark.rule("K3")
@pytest.mark.parametrize("attest", [None, "", "off", "true"])
def test_k3_purchase_without_attestation_buys_nothing(signed_in, customer, cart, attest):
    # when the cart is purchased without ticking the attestation
    data = {} if attest is None else {"attest": attest}
    response = signed_in.post(reverse("catalog:cart-purchase", args=[customer.pk, cart.pk]), cart_drawn(customer, data))
    # then it is refused with the reason, nothing is bought and the cart stays open
    assert response.status_code == 422
    assert (
        '<div class="msgbar msgbar-error" role="alert">Confirm the attestation before purchasing.</div>'
        in response.content.decode()
    )
    assert Order.objects.count() == 0
    assert Cart.objects.get(pk=cart.pk).status == Cart.Status.OPEN


@pytest.mark.rule("K3")
@pytest.mark.rule("K10")
def test_k3_k10_attested_purchase_confirms_with_the_order_number_and_a_link_to_order_history(
    signed_in, sales, customer, cart, now
):
    # when the cart is purchased with the attestation ticked
    response = signed_in.post(
        reverse("catalog:cart-purchase", args=[customer.pk, cart.pk]), cart_drawn(customer, {"attest": "on"})
    )
    # then one order is placed and the user is sent to its confirmation
    order = Order.objects.get()
    assert (order.customer, order.placed_by, order.total, order.currency, order.attested_as, order.created_at) == (
        customer,
        sales,
        Decimal("120.00"),
        "USD",
        Order.Attestation.DIRECT,
        now,
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("catalog:order-confirmation", args=[customer.pk, order.pk])
    # and the confirmation shows the order number and a link to review the order history
    page = signed_in.get(response["Location"]).content.decode()
    assert re.fullmatch(r"ORD-\d{6}", order.number)
    assert f'Order number <strong id="order-number">{order.number}</strong>, placed 2026-11-25 12:00 UTC' in page
    assert f'<a class="btn" href="{reverse("catalog:order-list", args=[customer.pk])}">Review order history</a>' in page


@pytest.mark.rule("K3")
@pytest.mark.rule("K4")
def test_k3_attestation_names_the_selected_reseller_and_the_order_records_indirect(client, now, provider):
    # given an indirect provider's sales agent whose cart has a reseller selected
    reseller = factories.PartnerFactory(kind=Partner.Kind.INDIRECT_RESELLER, name="Adatum Reseller")
    factories.ResellerLinkFactory(provider=provider, reseller=reseller)
    user = factories.staff(provider, "sales_agent")
    customer = factories.CustomerFactory(partner=provider)
    client.force_login(user)
    cart = factories.CartFactory(customer=customer, owner=user)
    factories.CartLineFactory(cart=cart)
    client.post(reverse("catalog:cart-reseller", args=[customer.pk]), cart_drawn(customer, {"reseller": reseller.pk}))
    # when the cart is reviewed, then purchased
    page = client.get(reverse("catalog:cart-detail", args=[customer.pk])).content.decode()
    client.post(reverse("catalog:cart-purchase", args=[customer.pk, cart.pk]), cart_drawn(customer, {"attest": "on"}))
    # then the page said the partner acts as an indirect partner, and the order records it with the reseller
    assert ">You selected Adatum Reseller: you act as an indirect partner.</strong>" in page
    order = Order.objects.get()
    assert (order.attested_as, order.reseller) == (Order.Attestation.INDIRECT, reseller)


@pytest.mark.rule("K9")
def test_k9_submitting_the_same_cart_twice_buys_once(signed_in, customer, cart):
    # given a cart ready to buy
    url = reverse("catalog:cart-purchase", args=[customer.pk, cart.pk])
    # when the purchase is posted twice (double click, back button, second tab)
    first = signed_in.post(url, cart_drawn(customer, {"attest": "on"}))
    second = signed_in.post(url, cart_drawn(customer, {"attest": "on"}))
    # then both land on the same order's confirmation, and there is exactly one order
    order = Order.objects.get()
    confirmation = reverse("catalog:order-confirmation", args=[customer.pk, order.pk])
    assert (first.status_code, first["Location"]) == (302, confirmation)
    assert (second.status_code, second["Location"]) == (302, confirmation)
    assert OrderLine.objects.filter(order=order).count() == 1
    assert Cart.objects.get(pk=cart.pk).status == Cart.Status.PURCHASED


@pytest.mark.rule("K9")
def test_k9_purchase_of_an_empty_cart_is_refused(signed_in, sales, customer):
    # given an open cart with no line
    cart = factories.CartFactory(customer=customer, owner=sales)
    # when it is purchased
    response = signed_in.post(
        reverse("catalog:cart-purchase", args=[customer.pk, cart.pk]), cart_drawn(customer, {"attest": "on"})
    )
    # then nothing is bought
    assert response.status_code == 422
    assert "The cart is empty: add an offer first." in response.content.decode()
    assert Order.objects.count() == 0


# --- K12: cart expiry ---------------------------------------------------------------------------


@pytest.fixture
def old_cart(sales, customer, standard, now):
    cart = factories.CartFactory(customer=customer, owner=sales, created_at=now - timedelta(days=8))
    factories.CartLineFactory(cart=cart, availability=factories.availability(standard), quantity=12)
    return cart


@pytest.mark.rule("K12")
def test_k12_cart_created_8_days_ago_shows_it_expired(signed_in, customer, old_cart):
    # given a cart created 8 days ago (2026-11-17 12:00 UTC)
    # when the cart page is opened
    page = signed_in.get(reverse("catalog:cart-detail", args=[customer.pk])).content.decode()
    # then it says the cart expired 7 days after it was created, and shows no line to buy
    assert (
        '<div class="msgbar msgbar-warning">Your previous cart for this customer expired on 2026-11-24 12:00 UTC, '
        "7 days after it was created. Add the offers again.</div>"
    ) in page
    assert "The cart is empty." in page
    assert 'id="purchase"' not in page
    assert Cart.objects.get(pk=old_cart.pk).status == Cart.Status.EXPIRED


@pytest.mark.rule("K12")
def test_k12_the_expired_cart_notice_says_the_lifetime_the_cart_expires_by(signed_in, customer, old_cart, settings):
    # given carts that live 3 days: the 8-day-old cart expired on 2026-11-20 12:00 UTC
    settings.CSP_CART_LIFETIME_DAYS = 3
    # when the cart page is opened
    page = signed_in.get(reverse("catalog:cart-detail", args=[customer.pk])).content.decode()
    # then the notice gives the lifetime the expiry was counted with, not a fixed 7 days
    assert (
        '<div class="msgbar msgbar-warning">Your previous cart for this customer expired on 2026-11-20 12:00 UTC, '
        "3 days after it was created. Add the offers again.</div>"
    ) in page


@pytest.mark.rule("K12")
def test_k12_purchase_of_a_cart_created_8_days_ago_answers_409(signed_in, customer, old_cart):
    # when the 8-day-old cart is purchased (a page left open for a week)
    response = signed_in.post(
        reverse("catalog:cart-purchase", args=[customer.pk, old_cart.pk]), cart_drawn(customer, {"attest": "on"})
    )
    # then the state moved on: 409 with the reason, nothing bought
    assert response.status_code == 409
    assert (
        '<div class="msgbar msgbar-error" role="alert">This cart expired on 2026-11-24 12:00 UTC: add the offers '
        "again.</div>"
    ) in response.content.decode()
    assert Order.objects.count() == 0


@pytest.mark.rule("K12")
@pytest.mark.parametrize("age, expired", [(timedelta(days=7), True), (timedelta(days=7) - timedelta(seconds=1), False)])
def test_k12_a_cart_expires_exactly_7_days_after_it_was_created(
    signed_in, sales, customer, standard, now, age, expired
):
    # given a cart created exactly 7 days ago, or one second less
    cart = factories.CartFactory(customer=customer, owner=sales, created_at=now - age)
    factories.CartLineFactory(cart=cart, availability=factories.availability(standard))
    # when it is purchased
    response = signed_in.post(
        reverse("catalog:cart-purchase", args=[customer.pk, cart.pk]), cart_drawn(customer, {"attest": "on"})
    )
    # then at 7 days it has expired; a second before it still buys
    assert response.status_code == (409 if expired else 302)
    assert Order.objects.count() == (0 if expired else 1)


@pytest.mark.rule("K12")
def test_k12_changing_an_expired_cart_answers_409(signed_in, customer, old_cart):
    # when a line of the 8-day-old cart is updated
    line = old_cart.lines.get()
    response = signed_in.post(
        reverse("catalog:cart-line-update", args=[customer.pk, line.pk]), cart_drawn(customer, {"quantity": "3"})
    )
    # then it is refused as expired, the line unchanged
    assert response.status_code == 409
    assert "There is no open cart for this customer (it was purchased or has expired)." in response.content.decode()
    assert CartLine.objects.get(pk=line.pk).quantity == 12


@pytest.mark.rule("K12")
def test_k12_adding_after_expiry_starts_a_new_cart(signed_in, customer, old_cart, standard):
    # when an offer is added for the customer whose cart expired
    response = signed_in.post(
        reverse("catalog:cart-add", args=[customer.pk]),
        cart_drawn(customer, {"availability": factories.availability(standard, "P1M").pk, "quantity": "2"}),
    )
    # then a new cart holds it, and the old one is expired with its line
    assert response.status_code == 302
    new_cart = Cart.objects.exclude(pk=old_cart.pk).get()
    assert new_cart.status == Cart.Status.OPEN
    assert list(new_cart.lines.values_list("quantity", flat=True)) == [2]
    assert Cart.objects.get(pk=old_cart.pk).status == Cart.Status.EXPIRED


# --- O1/O2: orders ------------------------------------------------------------------------------


def order_rows(page: str) -> list[tuple]:
    return re.findall(
        r'<tr><td><a href="[^"]+">(ORD-\d+)</a></td><td>([^<]+)</td>\s*'
        r'<td><span class="badge badge-\w+">([^<]+)</span></td><td>[^<]*</td>\s*'
        r'<td class="num">([^<]+)</td></tr>',
        page,
    )


@pytest.mark.rule("O1")
@pytest.mark.rule("T5")
def test_o1_order_history_lists_number_created_utc_status_and_total_newest_first(signed_in, sales, customer, now):
    # given three orders placed at different times, and another customer's order
    oldest = factories.OrderFactory(
        customer=customer, placed_by=sales, created_at=now - timedelta(days=5), total=Decimal("36.00"), completed=True
    )
    newest = factories.OrderFactory(
        customer=customer, placed_by=sales, created_at=now - timedelta(minutes=5), total=Decimal("1234.50")
    )
    middle = factories.OrderFactory(
        customer=customer,
        placed_by=sales,
        created_at=now - timedelta(days=1, hours=3),
        total=Decimal("120.00"),
        completed=True,
    )
    factories.OrderFactory(customer=factories.CustomerFactory(partner=customer.partner), placed_by=sales)
    # when the customer's order history is opened
    page = signed_in.get(reverse("catalog:order-list", args=[customer.pk])).content.decode()
    # then the customer's orders are listed newest first, each with its number, UTC time, status and total
    # (the "Placed by" column is not part of O1 and is skipped)
    assert (
        '<th>Order number</th><th>Created (UTC)</th><th>Status</th><th>Placed by</th><th class="num">Total</th>' in page
    )
    assert order_rows(page) == [
        (newest.number, "2026-11-25 11:55 UTC", "In progress", "1,234.50 USD"),
        (middle.number, "2026-11-24 09:00 UTC", "Completed", "120.00 USD"),
        (oldest.number, "2026-11-20 12:00 UTC", "Completed", "36.00 USD"),
    ]


@pytest.mark.rule("O1")
def test_o1_order_history_is_in_the_customers_navigation(signed_in, customer, now):
    # when any page of the customer is opened
    page = signed_in.get(reverse("subscriptions:subscription-list", args=[customer.pk])).content.decode()
    # then its left navigation links to the order history
    assert f'<a href="{reverse("catalog:order-list", args=[customer.pk])}" >Order history</a>' in page


@pytest.mark.rule("O1")
def test_o1_empty_order_history_says_what_to_do(signed_in, customer):
    # when a customer without orders has its history opened
    page = signed_in.get(reverse("catalog:order-list", args=[customer.pk])).content.decode()
    # then it says how to place the first
    assert "No orders yet." in page
    assert (
        f'<a href="{reverse("catalog:offer-list", args=[customer.pk])}">Add a subscription</a> to place the first.'
        in page
    )


@pytest.mark.rule("O2")
@pytest.mark.django_db(transaction=True)
def test_o2_order_detail_shows_fulfillment_and_then_links_each_line_to_its_subscription(client, now, worker):
    # given a sales agent who buys 12 licenses through the pages
    partner = factories.PartnerFactory(kind="direct_bill", name="Contoso Direct")
    user = factories.staff(partner, "sales_agent")
    customer = factories.CustomerFactory(partner=partner)
    offer = sku("Microsoft 365 Business Standard")
    client.force_login(user)
    client.post(
        reverse("catalog:cart-add", args=[customer.pk]),
        cart_drawn(customer, {"availability": factories.availability(offer).pk, "quantity": "12"}),
    )
    cart = Cart.objects.get()
    client.post(reverse("catalog:cart-purchase", args=[customer.pk, cart.pk]), cart_drawn(customer, {"attest": "on"}))
    order = Order.objects.get()
    line = order.lines.get()
    url = reverse("catalog:order-detail", args=[customer.pk, order.pk])
    # when the order is opened before the background fulfillment ran
    pending = client.get(url).content.decode()
    # then it shows progress: the line pending, no subscription yet, the page polling
    assert '<span class="badge badge-pending" id="order-status">In progress</span>' in pending
    assert cells(cart_row(pending, line))[6:] == ["Pending", "Being created…"]
    assert 'hx-trigger="every 2s"' in pending
    # when the worker has fulfilled it
    worker()
    fulfilled = client.get(url).content.decode()
    # then the line is fulfilled, at its UTC time, and links to its active subscription; polling stops
    subscription = Subscription.objects.get(order_line=line)
    detail = reverse("subscriptions:subscription-detail", args=[customer.pk, subscription.pk])
    assert '<span class="badge badge-completed" id="order-status">Completed</span>' in fulfilled
    assert cells(cart_row(fulfilled, line))[6:] == [
        "Fulfilled 2026-11-25 12:00 UTC",
        "Microsoft 365 Business Standard Active",
    ]
    assert f'<a href="{detail}">Microsoft 365 Business Standard</a>' in fulfilled
    assert 'hx-trigger="every 2s"' not in fulfilled
    # and the confirmation page, opened again now, shows the same (it polled the order page's lines till now)
    confirmation = client.get(reverse("catalog:order-confirmation", args=[customer.pk, order.pk])).content.decode()
    assert f'<a href="{detail}">Microsoft 365 Business Standard</a>' in confirmation
    assert 'hx-trigger="every 2s"' not in confirmation
    # and an htmx poll gets the lines alone
    partial = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in partial
    assert partial.strip().startswith('<div id="order-lines" >')
    assert f'<a href="{detail}">Microsoft 365 Business Standard</a>' in partial


@pytest.mark.rule("O2")
def test_o2_the_confirmation_of_a_pending_order_shows_its_lines_polling_the_order_page(signed_in, sales, customer):
    # given an order just placed, its line pending
    order = factories.OrderFactory(customer=customer, placed_by=sales)
    line = factories.OrderLineFactory(order=order)
    # when its confirmation is opened
    html = signed_in.get(reverse("catalog:order-confirmation", args=[customer.pk, order.pk])).content.decode()
    # then it shows the line's progress and polls the order page's lines, as the order page does
    assert "Thank you: your order is placed" in html
    assert cells(cart_row(html, line))[6:] == ["Pending", "Being created…"]
    assert (
        f'<div id="order-lines" hx-get="{reverse("catalog:order-detail", args=[customer.pk, order.pk])}" '
        'hx-trigger="every 2s" hx-swap="outerHTML">'
    ) in html


@pytest.mark.rule("O2")
def test_o2_htmx_poll_of_a_pending_order_returns_only_the_lines(signed_in, sales, customer):
    # given a pending order with one line
    order = factories.OrderFactory(customer=customer, placed_by=sales)
    line = factories.OrderLineFactory(order=order)
    # when htmx polls the order
    partial = signed_in.get(
        reverse("catalog:order-detail", args=[customer.pk, order.pk]), HTTP_HX_REQUEST="true"
    ).content.decode()
    # then it gets the lines partial alone, still polling
    assert "<html" not in partial
    assert "<h1>" not in partial
    assert partial.strip().startswith(
        f'<div id="order-lines" hx-get="{reverse("catalog:order-detail", args=[customer.pk, order.pk])}" '
        'hx-trigger="every 2s" hx-swap="outerHTML">'
    )
    assert cells(cart_row(partial, line))[6:] == ["Pending", "Being created…"]


# --- Query counts -------------------------------------------------------------------------------


def measure(client, url, grow, *, catalog_changes: bool = False, refilled: int = 0) -> tuple[int, int]:
    """Queries for the page with N rows, then with 10N rows (`grow` adds the other 9N).

    With `catalog_changes`, `grow` writes the catalog: the first request after it costs what the next one does, plus
    `refilled` queries: the catalog page reads its offer facts anew (three queries: the offers' few columns, the
    add-ons' bases and the ISV offers' exclusive partners, catalog/listing.py) and draws its cards' fragments anew
    (two: the page's offers and their ways to buy); the next requests find both in the cache under the new version.
    """
    client.get(url)  # warm-up: the first request of a session loads what every later one reuses
    few = count_queries(client, url)
    grow()
    if catalog_changes:
        assert count_queries(client, url) == count_queries(client, url) + refilled
    many = count_queries(client, url)
    return few, many


def add_offers(customer, partner, units: int):
    """Per unit two offers: a Microsoft one the customer owns, and an ISV one exclusive to this partner."""
    fabrikam = factories.PublisherFactory(name="Fabrikam Software", is_microsoft=False)
    for _ in range(units):
        owned = factories.SkuFactory()
        factories.SubscriptionFactory(customer=customer, sku=owned)
        isv = factories.SkuFactory(product=factories.ProductFactory(publisher=fabrikam), available_countries="US,DE")
        isv.exclusive_partners.add(partner)


def test_catalog_query_count_does_not_grow_with_the_offers(signed_in, sales, customer, direct_partner):
    # given a cart line and a catalog of 25 offers (more than a page of 20), then 241
    cart = factories.CartFactory(customer=customer, owner=sales)
    factories.CartLineFactory(cart=cart)
    add_offers(customer, direct_partner, 12)
    few, many = measure(
        signed_in,
        reverse("catalog:offer-list", args=[customer.pk]),
        lambda: add_offers(customer, direct_partner, 108),
        catalog_changes=True,
        refilled=5,
    )
    print(f"catalog: {few} queries with 25 offers, {many} with 241")
    # then the page costs no more queries, within the budget (the verdicts come from the cached offer facts, the
    # offers themselves only for a card drawn anew: catalog/listing.offer_cards)
    assert many <= few
    assert many <= QUERY_BUDGET


def add_cart_lines(cart, n):
    """License-based new-commerce lines (alignable, K11), and an active subscription to align to."""
    for _ in range(n):
        offer = factories.SkuFactory()
        factories.SubscriptionFactory(customer=cart.customer, sku=offer)
        factories.CartLineFactory(cart=cart, availability=factories.availability(offer))


def test_cart_query_count_does_not_grow_with_the_lines(signed_in, sales, customer):
    # given a cart of 1 alignable line, then of 10
    cart = factories.CartFactory(customer=customer, owner=sales)
    add_cart_lines(cart, 1)
    few, many = measure(
        signed_in,
        reverse("catalog:cart-detail", args=[customer.pk]),
        lambda: add_cart_lines(cart, 9),
        catalog_changes=True,
        refilled=3,  # the offer facts, read anew for the new catalog version (the lines' verdicts read them)
    )
    print(f"cart: {few} queries with 1 line, {many} with 10")
    # then the page costs the same number of queries, within the budget
    assert many == few
    assert many <= QUERY_BUDGET


def add_orders(customer, partner, n):
    for _ in range(n):
        order = factories.OrderFactory(customer=customer, placed_by=factories.staff(partner), completed=True)
        factories.OrderLineFactory(order=order, fulfilled=True)


def test_order_list_query_count_does_not_grow_with_the_orders(signed_in, customer, direct_partner):
    # given 2 orders, each placed by another user, then 20 (one page of 25)
    add_orders(customer, direct_partner, 2)
    few, many = measure(
        signed_in, reverse("catalog:order-list", args=[customer.pk]), lambda: add_orders(customer, direct_partner, 18)
    )
    print(f"order list: {few} queries with 2 orders, {many} with 20")
    # then the page costs the same number of queries, within the budget
    assert many == few
    assert many <= QUERY_BUDGET


def add_fulfilled_lines(order, n):
    for _ in range(n):
        line = factories.OrderLineFactory(order=order, fulfilled=True)
        factories.SubscriptionFactory(
            customer=order.customer, sku=line.sku, availability=line.availability, order_line=line
        )


def test_order_detail_query_count_does_not_grow_with_the_lines(signed_in, sales, customer, direct_partner):
    # given an order with a reseller, an additional reseller and 2 fulfilled lines, then 20
    reseller = factories.PartnerFactory(kind=Partner.Kind.INDIRECT_RESELLER)
    order = factories.OrderFactory(customer=customer, placed_by=sales, reseller=reseller, completed=True)
    OrderAdditionalReseller.objects.create(order=order, partner=factories.PartnerFactory(), position=1)
    add_fulfilled_lines(order, 2)
    few, many = measure(
        signed_in, reverse("catalog:order-detail", args=[customer.pk, order.pk]), lambda: add_fulfilled_lines(order, 18)
    )
    print(f"order detail: {few} queries with 2 lines, {many} with 20")
    # then the page costs the same number of queries, within the budget
    assert many == few
    assert many <= QUERY_BUDGET


@pytest.mark.rule("K5")
def test_order_detail_shows_an_eu_customers_additional_resellers(signed_in, sales, direct_partner):
    # given an order of an EU customer with an additional reseller (K5)
    customer = factories.CustomerFactory(partner=direct_partner, billing_country="DE")
    order = factories.OrderFactory(customer=customer, placed_by=sales, completed=True)
    extra = factories.PartnerFactory(name="Litware EU", partner_id="7654321")
    OrderAdditionalReseller.objects.create(order=order, partner=extra, position=1)
    add_fulfilled_lines(order, 1)
    # when the order is opened / then the reseller is listed
    page = signed_in.get(reverse("catalog:order-detail", args=[customer.pk, order.pk])).content.decode()
    assert "<dt>Additional resellers</dt><dd>Litware EU (7654321)</dd>" in page
