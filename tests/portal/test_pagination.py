"""Page numbers from the query string: whatever is asked, a page that exists (issue 9: a huge number answered 500,
an OFFSET past 64 bits)."""

import re

import pytest
from django.db.models import Count, Window
from django.urls import reverse

from portal.pagination import MAX_OFFSET, ClampedPaginator, SmallListPaginator, requested_page
from portal.views import CUSTOMERS_PER_PAGE
from tests import factories

HUGE = "99999999999999999999"  # past 2**64


@pytest.mark.parametrize(
    ("raw", "page"),
    [
        (None, 1),
        ("", 1),
        ("1", 1),
        ("2", 2),
        (" 3 ", 3),
        (7, 7),
        ("0", 1),
        ("-1", 1),
        ("-0", 1),
        ("+2", 1),
        ("1.5", 1),
        ("2e3", 1),
        ("NaN", 1),
        ("inf", 1),
        ("-inf", 1),
        ("１２", 1),
        ("٣", 1),
        ("\x00", 1),
        ("2\x00", 1),
        ("0x10", 1),
        pytest.param("x" * 10_000, 1, id="10-kB"),
        (HUGE, MAX_OFFSET // 25),
        pytest.param("9" * 10_000, MAX_OFFSET // 25, id="10-kB-of-digits"),
        (str(MAX_OFFSET // 25), MAX_OFFSET // 25),
        (str(MAX_OFFSET // 25 + 1), MAX_OFFSET // 25),
    ],
)
def test_a_requested_page_is_a_number_of_at_least_one_whose_offset_fits(raw, page):
    assert requested_page(raw, 25) == page
    assert (requested_page(raw, 25) - 1) * 25 < MAX_OFFSET


@pytest.mark.parametrize("raw", ["0", "-1", "NaN", "１２", "٣", "\x00", pytest.param("x" * 10_000, id="10-kB")])
def test_a_page_number_that_is_not_one_shows_the_first_page(raw):
    assert ClampedPaginator(list(range(60)), 25).get_page(raw).number == 1


@pytest.mark.parametrize("raw", [HUGE, "9" * 40, pytest.param("9" * 10_000, id="10-kB-of-digits"), "4"])
def test_a_page_number_past_the_end_shows_the_last_page(raw):
    page = ClampedPaginator(list(range(60)), 25).get_page(raw)
    assert (page.number, list(page.object_list)) == (3, list(range(50, 60)))


@pytest.mark.django_db
@pytest.mark.parametrize("count_field", [None, "total"])
def test_the_small_list_paginator_reads_a_huge_page_number_as_past_the_end(count_field, direct_partner):
    # given 30 customers, as rows that carry their count (count_field) or plain rows
    for i in range(30):
        factories.CustomerFactory(partner=direct_partner, company_name=f"C{i:02d}")
    rows = (
        direct_partner.customers.order_by("company_name")
        .annotate(total=Window(Count("*")))
        .values("company_name", "total")
    )
    # when a page number past 64 bits is asked for
    page = SmallListPaginator(rows, 25, count_field=count_field).get_page(HUGE)
    # then it is the last page
    assert page.number == 2
    assert [r["company_name"] for r in page.object_list] == [f"C{i:02d}" for i in range(25, 30)]


@pytest.mark.parametrize(
    "raw", [HUGE, "9" * 40, "-1", "0", "NaN", "inf", "１２", "٣", "\x00", pytest.param("x" * 10_000, id="10-kB"), ""]
)
def test_customer_list_shows_a_page_whatever_the_page_asked_for(client, sales, direct_partner, now, raw):
    # given 27 customers: two pages
    for i in range(27):
        factories.CustomerFactory(partner=direct_partner, company_name=f"Customer {i:02d}")
    client.force_login(sales)
    # when the list is asked for that page
    response = client.get(reverse("portal:customer-list"), {"page": raw})
    # then it shows a page: the last one for a number past the end, else the first
    assert response.status_code == 200
    last = raw.isascii() and raw.isdigit() and int(raw) > 0
    names = re.findall(r'<tr><td><a href="[^"]+">([^<]+)</a>', response.content.decode())
    assert names == (
        ["Customer 25", "Customer 26"] if last else [f"Customer {i:02d}" for i in range(CUSTOMERS_PER_PAGE)]
    )
    assert f"Page {2 if last else 1} of 2 · 27 in all" in response.content.decode()


@pytest.mark.parametrize(
    ("name", "of_customer", "param"),
    [
        ("portal:customer-activity", True, "page"),
        ("catalog:offer-list", True, "page"),
        ("catalog:order-list", True, "page"),
        ("catalog:all-orders", False, "page"),
        ("subscriptions:subscription-list", True, "page"),
        ("subscriptions:all-subscriptions", False, "page"),
        ("subscriptions:renewals", False, "page"),
        ("subscriptions:renewals", False, "ending_page"),
        ("subscriptions:renewals", False, "trials_page"),
    ],
)
@pytest.mark.parametrize("raw", [HUGE, "-1", "NaN", "１２"])
def test_every_paged_list_shows_a_page_whatever_the_page_asked_for(
    client, sales, customer, now, name, of_customer, param, raw
):
    # given a customer with a subscription (a list with something in it)
    factories.SubscriptionFactory(customer=customer)
    client.force_login(sales)
    url = reverse(name, args=[customer.pk] if of_customer else [])
    # when a page is asked for by a number past 64 bits, or by what is no number
    # (across customers, also with the 48-hour window filter: its page comes with its own count)
    response = client.get(url, {param: raw, "window": "48h"} if name.endswith("all-subscriptions") else {param: raw})
    # then the list answers with a page
    assert response.status_code == 200
