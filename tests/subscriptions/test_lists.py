"""S1: a customer's subscriptions (columns, status filter, sorting, pages, the removal window badge, the
export button), and the subscriptions of every customer of the partner with their filters; both pages
in a constant number of queries. Today is 2026-11-25 12:00 UTC."""

import re
from datetime import date, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from catalog.models import UpgradePath
from portal.models import Partner
from subscriptions import services
from subscriptions.dates import term_end_for
from subscriptions.models import Subscription
from subscriptions.services import upgrades
from tests import factories
from tests.factories import bulk_subscriptions, lot, subscribe_to_offer
from tests.helpers import ALL_URL, ids, list_url, visible_text

NOW = factories.BASE_TIME
MAX_QUERIES = 15


def table(page: str) -> list[list[str]]:
    """The list's rows, each a list of its cells' text."""
    body = re.search(r"<tbody>(.*?)</tbody>", page, re.S)
    if body is None:
        return []
    return [
        [visible_text(cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        for row in re.findall(r"<tr>(.*?)</tr>", body.group(1), re.S)
    ]


def headers(page: str) -> list[str]:
    return [visible_text(th) for th in re.findall(r"<th[^>]*>(.*?)</th>", page, re.S)]


def count_queries(client, url: str) -> int:
    """The page's queries in the steady state: after one request, which (re)builds this process's copy of the
    catalog if the test just changed the catalog (the offer filter reads it)."""
    client.get(url)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured)


# S1: the customer's subscriptions ---------------------------------------------------------------


@pytest.mark.rule("S1")
@pytest.mark.rule("T5")
def test_s1_list_shows_every_column_of_each_subscription(signed_in, direct_partner, customer):
    # given an active subscription with a friendly name bought yesterday (its licenses can be removed for 6 more
    # days), and a suspended one resold by an indirect reseller
    adatum = factories.PartnerFactory(kind=Partner.Kind.INDIRECT_RESELLER, name="Adatum Reseller", partner_id="4412345")
    e3 = subscribe_to_offer(
        customer, "Microsoft 365 E3", in_cancellation_window=True, quantity=25, friendly_name="Head office"
    )
    premium = subscribe_to_offer(
        customer,
        "Microsoft 365 Business Premium",
        [("P1M", "monthly", "26.40")],
        suspended=True,
        quantity=3,
        reseller=adatum,
    )
    # when the customer's subscriptions are opened
    page = signed_in.get(list_url(customer)).content.decode()
    # then each shows its name (and offer), id, quantity, status, term, billing, term end (UTC), auto-renew, reseller
    assert headers(page) == [
        "Name ↑",
        "Subscription ID",
        "Quantity",
        "Status",
        "Term",
        "Billing",
        "Term end / renewal (UTC)",
        "Auto-renew",
        "Reseller of record",
    ]
    assert table(page) == [
        [
            "Head office Microsoft 365 E3 Reduce until 2026-12-01 12:00 UTC · 6 d 0 h left",
            str(e3.pk),
            "25",
            "Active",
            "1 year",
            "Monthly",
            "2027-11-23",
            "On",
            "—",
        ],
        [
            "Microsoft 365 Business Premium",
            str(premium.pk),
            "3",
            "Suspended",
            "1 month",
            "Monthly",
            "2026-11-25",
            "Off",
            "Adatum Reseller 4412345",
        ],
    ]
    # and each name links to the subscription
    assert (
        f'<a href="{reverse("subscriptions:subscription-detail", args=[customer.pk, e3.pk])}">Head office</a>' in page
    )


@pytest.mark.rule("S1")
def test_s1_filter_by_status_with_chips(signed_in, customer):
    # given an active, a suspended and a deleted subscription
    active = subscribe_to_offer(customer, "Microsoft 365 E3")
    suspended = subscribe_to_offer(customer, "Exchange Online (Plan 1)", suspended=True)
    deleted = subscribe_to_offer(customer, "Visio Plan 2", deleted=True)
    # when the "Suspended" chip is followed
    page = signed_in.get(list_url(customer, "?status=suspended")).content.decode()
    # then only the suspended one is listed, and the chip says it is the current filter
    assert ids(page) == [str(suspended.pk)]
    assert '<a class="chip" href="?status=suspended" aria-current="true">Suspended</a>' in page
    assert '<a class="chip" href="?" >All</a>' in page
    # and a status that does not exist filters nothing
    assert ids(signed_in.get(list_url(customer, "?status=bogus")).content.decode()) == [
        str(s.pk) for s in [suspended, active, deleted]
    ]


@pytest.mark.rule("S1")
def test_s1_filter_without_match_says_so(signed_in, customer):
    subscribe_to_offer(customer, "Microsoft 365 E3")
    page = signed_in.get(list_url(customer, "?status=expired")).content.decode()
    assert '<div class="empty">No expired subscriptions. <a href="?">Show all</a>.</div>' in page


@pytest.fixture
def three(customer):
    """Three subscriptions in a different order on every column but auto-renew."""
    adatum = factories.PartnerFactory(kind=Partner.Kind.INDIRECT_RESELLER, name="Adatum")
    bellows = factories.PartnerFactory(kind=Partner.Kind.INDIRECT_RESELLER, name="Bellows")
    a = subscribe_to_offer(
        customer,
        "Azure Backup",
        [("P1Y", "annual", "120.00")],
        quantity=30,
        term_end=date(2027, 3, 1),
        auto_renew=False,
        reseller=bellows,
    )
    b = subscribe_to_offer(
        customer,
        "Exchange Online",
        [("P3Y", "one_time", "144.00")],
        quantity=10,
        status="pending",
        term_end=date(2027, 1, 1),
        reseller=adatum,
    )
    c = subscribe_to_offer(
        customer,
        "Visio",
        [("P1M", "monthly", "15.00")],
        quantity=20,
        suspended=True,
        auto_renew=True,
        term_end=date(2026, 12, 1),
        friendly_name="Cad team",
    )
    return {"a": a, "b": b, "c": c}


def order_of(page: str, subscriptions: dict) -> str:
    by_id = {str(s.pk): key for key, s in subscriptions.items()}
    return "".join(by_id[pk] for pk in ids(page))


@pytest.mark.rule("S1")
@pytest.mark.parametrize(
    "sort, expected",
    [
        ("", "acb"),  # by name: Azure Backup, "Cad team" (Visio's friendly name), Exchange Online
        ("name", "acb"),
        ("-name", "bca"),
        ("quantity", "bca"),
        ("-quantity", "acb"),
        ("status", "abc"),  # active, pending, suspended
        ("-status", "cba"),
        ("term", "cab"),  # P1M, P1Y, P3Y
        ("-term", "bac"),
        ("billing", "acb"),  # annual, monthly, one-time
        ("term_end", "cba"),
        ("-term_end", "abc"),
        ("reseller", "cba"),  # none first, Adatum, Bellows
        ("-reseller", "abc"),
        ("bogus", "acb"),  # an unknown sort is the default one, by name
    ],
)
def test_s1_sort_by_a_column(signed_in, customer, three, sort, expected):
    # when the list is sorted by a column header
    page = signed_in.get(list_url(customer, f"?sort={sort}" if sort else "")).content.decode()
    # then the rows come in that order
    assert order_of(page, three) == expected


@pytest.mark.rule("S1")
def test_s1_sort_by_name_follows_renames_and_upgrades(signed_in, sales, customer):
    # given three subscriptions listed by name: Azure Backup, Exchange Online, Office 365 E3
    e3 = factories.SkuFactory(name="Office 365 E3", availabilities=[("P1Y", "monthly", "10.00")])
    target = factories.SkuFactory(name="Advanced 365 E5", availabilities=[("P1Y", "monthly", "30.00")])
    UpgradePath.objects.create(source=e3, target=target)
    a, b = subscribe_to_offer(customer, "Azure Backup"), subscribe_to_offer(customer, "Exchange Online")
    c = factories.SubscriptionFactory(
        customer=customer,
        sku=e3,
        availability=factories.availability(e3, "P1Y", "monthly"),
        quantity=10,
        term="P1Y",
        billing_frequency="monthly",
        unit_price="10.00",
        term_start=NOW - timedelta(days=40),
        term_end=term_end_for((NOW - timedelta(days=40)).date(), 12),
        created_at=NOW - timedelta(days=40),
    )
    subscriptions = {"a": a, "b": b, "c": c}
    assert order_of(signed_in.get(list_url(customer)).content.decode(), subscriptions) == "abc"

    # when Exchange Online is renamed "Zeta team"
    services.rename_subscription(subscription_id=b.pk, actor=sales, friendly_name="Zeta team", now=NOW)
    # then it sorts by its new name, first and last page alike
    assert order_of(signed_in.get(list_url(customer)).content.decode(), subscriptions) == "acb"
    assert order_of(signed_in.get(list_url(customer, "?sort=-name")).content.decode(), subscriptions) == "bca"

    # when Office 365 E3 is upgraded (all its licenses, in place) to "Advanced 365 E5"
    upgraded = upgrades.upgrade_subscription(
        subscription_id=c.pk,
        actor=sales,
        target_sku_id=target.pk,
        quantity=10,
        term="P1Y",
        billing_frequency="monthly",
        confirmed=True,
        now=NOW,
    )
    # then the same subscription sorts by its new offer's name, in this list and across customers
    assert upgraded.pk == c.pk
    assert order_of(signed_in.get(list_url(customer)).content.decode(), subscriptions) == "cab"
    everything = signed_in.get(reverse("subscriptions:all-subscriptions")).content.decode()
    assert order_of(everything, subscriptions) == "cab"


@pytest.mark.rule("S1")
def test_s1_sort_by_auto_renew_puts_off_first(signed_in, customer, three):
    assert order_of(signed_in.get(list_url(customer, "?sort=auto_renew")).content.decode(), three)[0] == "a"
    assert order_of(signed_in.get(list_url(customer, "?sort=-auto_renew")).content.decode(), three)[2] == "a"


@pytest.mark.rule("S1")
def test_s1_column_header_toggles_the_direction_and_keeps_the_filter(signed_in, customer, three):
    # given the list filtered by status and sorted by quantity
    page = signed_in.get(list_url(customer, "?status=active&sort=quantity&page=1")).content.decode()
    # then the quantity header says so and sorts the other way next, keeping the filter and going to page 1
    assert (
        '<th class="num" aria-sort="ascending"><a href="?status=active&amp;sort=-quantity">Quantity ↑</a></th>' in page
    )
    assert '<th><a href="?status=active&amp;sort=name">Name</a></th>' in page


@pytest.mark.rule("S1")
def test_s1_list_is_paginated(signed_in, customer):
    # given 27 subscriptions
    skus = [factories.SkuFactory(name="Microsoft 365 E3")]
    bulk_subscriptions([customer], skus, 27)
    # when the list is opened, then its second page
    first = signed_in.get(list_url(customer, "?sort=quantity")).content.decode()
    second = signed_in.get(list_url(customer, "?sort=quantity&page=2")).content.decode()
    # then 25 are on the first page, 2 on the second, none twice
    assert (len(ids(first)), len(ids(second))) == (25, 2)
    assert len(set(ids(first)) | set(ids(second))) == 27
    assert "Page 1 of 2 · 27 in all" in first
    # and the Next link carries the position the second page starts after, and opens the same second page
    next_link = re.search(r'<a class="btn" href="(\?sort=quantity&amp;page=2&amp;after=[\w-]+)">Next</a>', first)
    assert next_link is not None
    assert ids(signed_in.get(list_url(customer, next_link.group(1).replace("&amp;", "&"))).content.decode()) == ids(
        second
    )


@pytest.mark.rule("S5")
@pytest.mark.rule("T2")
@pytest.mark.parametrize("role", ["admin_agent", "support_agent"])
def test_s5_command_bar_has_export_all_subscriptions(client, direct_partner, customer, now, role):
    client.force_login(factories.staff(direct_partner, role))
    page = client.get(list_url(customer)).content.decode()
    export = reverse("subscriptions:subscription-export", args=[customer.pk])
    assert f'<a class="btn" href="{export}" download>Export all subscriptions</a>' in page


# S1, Q2: the removal window badge ----------------------------------------------------------------


def badge(page: str) -> list[str]:
    return [visible_text(b) for b in re.findall(r'<span class="badge badge-warn">(.*?)</span>', page, re.S)]


@pytest.mark.rule("S1")
@pytest.mark.rule("Q2")
def test_s1_badge_shows_until_when_licenses_can_be_removed_with_a_countdown(signed_in, customer):
    # given an active subscription with licenses added, removable until 2026-11-29 18:02 UTC
    sub = subscribe_to_offer(customer, "Microsoft 365 E3")
    lot(sub, NOW + timedelta(days=4, hours=6, minutes=2))
    # when the list is opened at 2026-11-25 12:00 UTC
    page = signed_in.get(list_url(customer)).content.decode()
    # then its row says until when, and how long is left
    assert badge(page) == ["Reduce until 2026-11-29 18:02 UTC · 4 d 6 h left"]


@pytest.mark.rule("S1")
@pytest.mark.rule("Q2")
def test_s1_badge_until_the_last_second_and_not_at_the_closing_instant(signed_in, customer):
    # given one subscription whose window closes exactly now, another's one second from now
    closing_now = subscribe_to_offer(customer, "Microsoft 365 E3")
    lot(closing_now, NOW)
    last_second = subscribe_to_offer(customer, "Microsoft 365 E5")
    lot(last_second, NOW + timedelta(seconds=1))
    # when the list is opened
    page = signed_in.get(list_url(customer)).content.decode()
    rows = table(page)
    # then the first has no badge (the window is closed), the second still has one
    assert rows[0][0] == "Microsoft 365 E3"
    assert rows[1][0] == "Microsoft 365 E5 Reduce until 2026-11-25 12:00 UTC · less than 1 min left"


@pytest.mark.rule("S1")
@pytest.mark.rule("Q2")
def test_s1_badge_shows_the_latest_open_window_with_licenses_left(signed_in, customer):
    # given lots added at different times: one closed, two open, and a later one whose licenses were all removed
    sub = subscribe_to_offer(customer, "Microsoft 365 E3")
    lot(sub, NOW - timedelta(hours=1))
    lot(sub, NOW + timedelta(hours=5))
    lot(sub, NOW + timedelta(days=2, hours=3, minutes=30))
    lot(sub, NOW + timedelta(days=6), quantity=4, removed=4)
    # when the list is opened
    page = signed_in.get(list_url(customer)).content.decode()
    # then the badge shows the latest open window whose licenses can still be removed
    assert badge(page) == ["Reduce until 2026-11-27 15:30 UTC · 2 d 3 h left"]


@pytest.mark.rule("S1")
@pytest.mark.rule("Q6")
@pytest.mark.parametrize("state", [{"suspended": True}, {"deleted": True}, {"trial": True}, {"status": "pending"}])
def test_s1_no_badge_where_licenses_cannot_be_removed(signed_in, customer, state):
    # given a subscription that is not active, or a trial, with a lot still inside its window
    sub = subscribe_to_offer(customer, "Microsoft 365 E3", **state)
    lot(sub, NOW + timedelta(days=3))
    # when the list is opened
    page = signed_in.get(list_url(customer)).content.decode()
    # then no badge: quantity can only be changed on an active paid subscription
    assert ids(page) == [str(sub.pk)]
    assert badge(page) == []


# Query budgets ------------------------------------------------------------------------------------


@pytest.mark.rule("S1")
@pytest.mark.parametrize(
    "query", ["", "?page=2", "?sort=-term_end&page=3", "?status=active&sort=-name", "?sort=reseller"]
)
def test_s1_customer_list_queries_do_not_grow_with_its_subscriptions(signed_in, direct_partner, query):
    # given two customers, one with 90 subscriptions, one with ten times as many (more than a page either way)
    skus = [factories.SkuFactory(name=f"Offer {i}") for i in range(3)]
    small = factories.CustomerFactory(partner=direct_partner)
    large = factories.CustomerFactory(partner=direct_partner)
    bulk_subscriptions([small], skus, 90)
    bulk_subscriptions([large], skus, 900)
    # when each one's list is opened
    counts = [count_queries(signed_in, list_url(c, query)) for c in (small, large)]
    # then both take the same few queries
    assert counts[0] == counts[1] <= MAX_QUERIES


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?page=2",
        "?status=suspended&sort=customer",
        "?window=48h",
        "?renews=30d",
        "?offer=0&sort=-quantity",
        "?offer_name=offer+1",
        "?window=48h&page=2",
        "?window=48h&renews=30d",
    ],
)
def test_all_subscriptions_queries_do_not_grow_with_the_partners_subscriptions(signed_in, direct_partner, query):
    # given 300 subscriptions over 4 customers and 4 offers (more than a page for every filter), then ten times as
    # many over ten times the customers
    skus = [factories.SkuFactory(name=f"Offer {i}") for i in range(4)]
    query = query.replace("offer=0", f"offer={skus[0].pk}")
    customers = [factories.CustomerFactory(partner=direct_partner) for _ in range(4)]
    bulk_subscriptions(customers, skus, 300)
    before = count_queries(signed_in, ALL_URL + query)
    customers = [factories.CustomerFactory(partner=direct_partner) for _ in range(36)]
    bulk_subscriptions(customers, skus, 2700)
    # when the page is opened before and after
    after = count_queries(signed_in, ALL_URL + query)
    # then it takes the same few queries
    assert before == after <= MAX_QUERIES


# Subscriptions of every customer ---------------------------------------------------------------


@pytest.mark.rule("T3")
def test_all_subscriptions_lists_every_customer_of_the_partner_and_no_other(signed_in, direct_partner):
    # given two customers of the partner and one of another partner
    fabrikam = factories.CustomerFactory(partner=direct_partner, company_name="Fabrikam")
    contoso = factories.CustomerFactory(partner=direct_partner, company_name="Adventure Works")
    theirs = factories.CustomerFactory(partner=factories.PartnerFactory(), company_name="Fourth Coffee")
    f1 = subscribe_to_offer(fabrikam, "Microsoft 365 E3", quantity=4)
    f2 = subscribe_to_offer(fabrikam, "Azure Backup", quantity=2)
    c1 = subscribe_to_offer(contoso, "Visio Plan 2", quantity=9)
    subscribe_to_offer(theirs, "Microsoft 365 E5")
    # when the subscriptions of all customers are opened
    page = signed_in.get(ALL_URL).content.decode()
    # then the partner's are listed by customer then name, with a Customer column, and the other partner's are not
    assert headers(page)[:3] == ["Customer ↑", "Name", "Subscription ID"]
    assert [(row[0], row[1], row[2]) for row in table(page)] == [
        ("Adventure Works", "Visio Plan 2", str(c1.pk)),
        ("Fabrikam", "Azure Backup", str(f2.pk)),
        ("Fabrikam", "Microsoft 365 E3", str(f1.pk)),
    ]
    assert f'<a href="{list_url(fabrikam)}">Fabrikam</a>' in page
    # and sorted by quantity, descending
    page = signed_in.get(ALL_URL + "?sort=-quantity").content.decode()
    assert ids(page) == [str(c1.pk), str(f1.pk), str(f2.pk)]


def test_all_subscriptions_filter_by_status(signed_in, customer):
    subscribe_to_offer(customer, "Microsoft 365 E3")
    suspended = subscribe_to_offer(customer, "Visio Plan 2", suspended=True)
    page = signed_in.get(ALL_URL + "?status=suspended").content.decode()
    assert ids(page) == [str(suspended.pk)]


def offer_matches(page: str) -> list[tuple[str, str]]:
    """The offers listed to pick from: (link, name)."""
    region = re.search(r'<div class="offer-matches".*?</div>', page, re.S)
    return re.findall(r'<a class="chip" href="([^"]*)">([^<]*)</a>', region.group(0)) if region else []


def test_all_subscriptions_offer_filter_finds_the_offers_held_by_name_product_publisher_or_sku_id(
    signed_in, direct_partner, customer
):
    # given offers held by two customers of the partner (one of them twice), one held only by another partner's
    # customer, and one held by nobody, whose names all contain "365"
    other = factories.CustomerFactory(partner=direct_partner)
    e3 = factories.SkuFactory(name="Microsoft 365 E3", sku_id="CFQ7TTC0LFLX:0001")
    e5 = factories.SkuFactory(name="Microsoft 365 E5 & Audio")
    theirs = factories.SkuFactory(name="Microsoft 365 E3 (their copy)")
    factories.SkuFactory(name="Microsoft 365 F1")
    visio = factories.SkuFactory(name="Visio Plan 2")
    first = factories.SubscriptionFactory(customer=customer, sku=e3, friendly_name="Head office")
    second = factories.SubscriptionFactory(customer=other, sku=e3, deleted=True)
    factories.SubscriptionFactory(customer=other, sku=e5)
    factories.SubscriptionFactory(customer=other, sku=visio)
    factories.SubscriptionFactory(customer=factories.CustomerFactory(), sku=theirs)
    # when part of a name is typed, in any case and with extra spaces, with the status filter on
    page = signed_in.get(ALL_URL + "?status=active&offer_name=++365+e+").content.decode()
    # then the offers the partner's customers hold that match are listed by name, to pick from
    assert offer_matches(page) == [
        ("?status=active&amp;offer=" + str(e3.pk), "Microsoft 365 E3"),
        ("?status=active&amp;offer=" + str(e5.pk), "Microsoft 365 E5 &amp; Audio"),
    ]
    assert "2 offers of your customers' subscriptions match" in page
    # and by a SKU id, one
    page = signed_in.get(ALL_URL + "?offer_name=cfq7ttc0").content.decode()
    assert [name for _, name in offer_matches(page)] == ["Microsoft 365 E3"]
    assert "1 offer of your customers' subscriptions matches" in page
    # and picking one lists its subscriptions, friendly-named or not
    page = signed_in.get(ALL_URL + f"?offer={e3.pk}").content.decode()
    assert sorted(ids(page)) == sorted([str(first.pk), str(second.pk)])
    # and a name no held offer has says so
    page = signed_in.get(ALL_URL + "?offer_name=F1").content.decode()
    assert offer_matches(page) == [] and "No offer of your customers' subscriptions matches" in page


def test_all_subscriptions_offer_filter_finds_another_offer_to_switch_to_while_one_is_picked(signed_in, customer):
    # given subscriptions of two offers, one of them picked
    e3, e5 = factories.SkuFactory(name="Microsoft 365 E3"), factories.SkuFactory(name="Microsoft 365 E5")
    three, five = (factories.SubscriptionFactory(customer=customer, sku=sku) for sku in (e3, e5))
    # when another offer's name is typed
    page = signed_in.get(ALL_URL + f"?offer={e3.pk}&offer_name=e5").content.decode()
    # then the picked offer still filters the list, what was typed stays in the box, and the match is offered to
    # switch to (dropping the typed text)
    assert ids(page) == [str(three.pk)]
    assert 'name="offer_name" value="e5"' in page
    assert offer_matches(page) == [(f"?offer={e5.pk}", "Microsoft 365 E5")]
    assert ids(signed_in.get(ALL_URL + f"?offer={e5.pk}").content.decode()) == [str(five.pk)]


def test_all_subscriptions_offer_filter_finds_held_offers_past_the_first_batch_of_matches(signed_in, customer):
    # given 40 offers whose names match, of which the partner's customer holds the 4th and the 37th by name
    skus = [factories.SkuFactory(name=f"Backup {n:02}") for n in range(40)]
    for n in (3, 36):
        factories.SubscriptionFactory(customer=customer, sku=skus[n])
    factories.SubscriptionFactory(sku=skus[5])  # another partner's customer's
    # when part of their name is typed (the first batch checked holds only one of them)
    page = signed_in.get(ALL_URL + "?offer_name=backup").content.decode()
    # then both held offers are found, and only they
    assert [name for _, name in offer_matches(page)] == ["Backup 03", "Backup 36"]
    assert "2 offers of your customers' subscriptions match" in page


def test_all_subscriptions_offer_filter_lists_the_first_matches_and_says_how_many(signed_in, customer):
    skus = [factories.SkuFactory(name=f"Backup {n:02}") for n in range(14)]
    for sku in skus:
        factories.SubscriptionFactory(customer=customer, sku=sku)
    page = signed_in.get(ALL_URL + "?offer_name=backup").content.decode()
    assert [name for _, name in offer_matches(page)] == [f"Backup {n:02}" for n in range(12)]
    assert "More than 12 offers of your customers' subscriptions match" in page and "the first 12 by name" in page


def test_all_subscriptions_filter_by_one_offer_shows_it_as_a_chip(signed_in, direct_partner, customer):
    # given two subscriptions of an offer and one of another
    e3 = factories.SkuFactory(name="Microsoft 365 E3 & Audio")
    first = factories.SubscriptionFactory(customer=customer, sku=e3)
    second = factories.SubscriptionFactory(customer=customer, sku=e3)
    factories.SubscriptionFactory(customer=customer, sku=factories.SkuFactory(name="Visio Plan 2"))
    # when the page is opened for that offer (as its subscriptions' pages link to it)
    page = signed_in.get(ALL_URL + f"?offer={e3.pk}").content.decode()
    # then only its subscriptions are listed, and a chip names it and removes the filter
    assert sorted(ids(page)) == sorted([str(first.pk), str(second.pk)])
    assert (
        '<a class="chip" href="?" aria-current="true" aria-label="Remove the filter: offer Microsoft 365 E3 &amp; '
        'Audio">Offer: Microsoft 365 E3 &amp; Audio ✕</a>'
    ) in page
    # and an offer id that is not a number filters nothing
    assert len(ids(signed_in.get(ALL_URL + "?offer=e3").content.decode())) == 3


@pytest.mark.rule("Q2")
def test_all_subscriptions_window_closes_within_48_hours(signed_in, customer):
    # given active subscriptions whose licenses can be removed until various times
    def with_lot(name, window_ends_at, removed=0, **state):
        sub = subscribe_to_offer(customer, name, **state)
        lot(sub, window_ends_at, quantity=5, removed=removed)
        return sub

    in_an_hour = with_lot("A in an hour", NOW + timedelta(hours=1))
    at_48h = with_lot("B at 48 h exactly", NOW + timedelta(hours=48))
    with_lot("C just after 48 h", NOW + timedelta(hours=48, seconds=1))
    with_lot("D closing now", NOW)
    with_lot("E all removed", NOW + timedelta(hours=2), removed=5)
    with_lot("F suspended", NOW + timedelta(hours=2), suspended=True)
    partly = with_lot("G partly removed", NOW + timedelta(hours=30), removed=2)
    # when the "window closes within 48 h" chip is followed
    page = signed_in.get(ALL_URL + "?window=48h").content.decode()
    # then the subscriptions with removable licenses whose window closes in the next 48 hours are listed
    assert ids(page) == [str(s.pk) for s in [in_an_hour, at_48h, partly]]
    assert '<a class="chip" href="?" aria-current="true">Removal window closes within 48 h</a>' in page


@pytest.mark.rule("Q2")
def test_all_subscriptions_window_filter_pages_sorts_and_counts_like_the_other_filters(
    signed_in, customer, direct_partner
):
    # given 31 subscriptions over two customers whose windows close within 48 hours, and one that doesn't
    other = factories.CustomerFactory(partner=direct_partner, company_name="Aardvark Ltd")
    closing = []
    for n in range(31):
        sub = subscribe_to_offer(other if n % 3 == 0 else customer, f"Offer {n:02}", quantity=n + 1)
        lot(sub, NOW + timedelta(hours=1 + n), quantity=5)
        closing.append(sub)
    lot(subscribe_to_offer(customer, "Later"), NOW + timedelta(hours=72), quantity=5)
    # when the filter is on, sorted by quantity descending, a page at a time
    first = signed_in.get(ALL_URL + "?window=48h&sort=-quantity").content.decode()
    second = signed_in.get(ALL_URL + "?window=48h&sort=-quantity&page=2").content.decode()
    # then the pages hold all 31 in that order, and say how many there are
    expected = [str(s.pk) for s in sorted(closing, key=lambda s: -s.quantity)]
    assert (ids(first), ids(second)) == (expected[:25], expected[25:])
    assert "Page 1 of 2 · 31 in all" in first and "Page 2 of 2 · 31 in all" in second
    # and the count comes with each page: page 2, by its Next link, takes no more queries than page 1 (a typed
    # number takes one more, the key of the row it follows: test_list_pages)
    following = re.search(r'<a class="btn" href="([^"]+)">Next</a>', first).group(1).replace("&amp;", "&")
    assert ids(signed_in.get(ALL_URL + following).content.decode()) == expected[25:]
    assert count_queries(signed_in, ALL_URL + following) == count_queries(
        signed_in, ALL_URL + "?window=48h&sort=-quantity"
    )
    # and by customer, then name (the default)
    by_customer = ids(signed_in.get(ALL_URL + "?window=48h").content.decode())
    assert (
        by_customer
        == [str(s.pk) for s in sorted(closing, key=lambda s: (s.customer.company_name != "Aardvark Ltd", s.list_name))][
            :25
        ]
    )


@pytest.mark.rule("N1")
def test_all_subscriptions_renews_within_30_days(signed_in, customer):
    # given subscriptions whose (inclusive) term ends at various dates
    today = NOW.date()
    today_end = subscribe_to_offer(customer, "A ends today", term_end=today)
    in_30 = subscribe_to_offer(customer, "B ends in 30 days", term_end=today + timedelta(days=30))
    subscribe_to_offer(customer, "C ends in 31 days", term_end=today + timedelta(days=31))
    subscribe_to_offer(customer, "D ended yesterday", term_end=today - timedelta(days=1))
    subscribe_to_offer(customer, "E auto-renew off", term_end=today + timedelta(days=3), auto_renew=False)
    subscribe_to_offer(customer, "F suspended", term_end=today + timedelta(days=3), suspended=True)
    # when the "renews within 30 days" chip is followed
    page = signed_in.get(ALL_URL + "?renews=30d").content.decode()
    # then the active, auto-renewing ones ending from today to 30 days on are listed
    assert ids(page) == [str(today_end.pk), str(in_30.pk)]


@pytest.mark.rule("T1")
@pytest.mark.rule("T3")
def test_all_subscriptions_of_a_reseller_are_those_it_is_reseller_of_record_for(client, provider, now):
    adatum = factories.PartnerFactory(kind=Partner.Kind.INDIRECT_RESELLER, name="Adatum")
    customer = factories.CustomerFactory(partner=provider)
    own = subscribe_to_offer(customer, "Microsoft 365 E3", reseller=adatum)
    subscribe_to_offer(customer, "Visio Plan 2")
    client.force_login(factories.staff(adatum, "admin_agent"))
    page = client.get(ALL_URL).content.decode()
    assert ids(page) == [str(own.pk)]
    # and the offer filter finds only the offer it resells
    assert offer_matches(client.get(ALL_URL + "?offer_name=visio").content.decode()) == []
    assert [name for _, name in offer_matches(client.get(ALL_URL + "?offer_name=365").content.decode())] == [
        "Microsoft 365 E3"
    ]


def test_all_subscriptions_empty_states(signed_in, customer):
    page = signed_in.get(ALL_URL).content.decode()
    assert "No subscriptions yet." in page
    page = signed_in.get(ALL_URL + "?status=active").content.decode()
    assert f'No subscription matches these filters. <a href="{ALL_URL}">Clear the filters</a>.' in page


def test_the_main_navigation_links_subscriptions_between_customers_and_orders(signed_in):
    page = signed_in.get(ALL_URL).content.decode()
    nav = re.search(r'<nav class="leftnav"[^>]*>(.*?)</nav>', page, re.S).group(1)
    assert re.findall(r">([^<]+)</a>", nav)[:5] == ["Home", "Customers", "Subscriptions", "Renewals", "Orders"]
    assert f'<a href="{ALL_URL}" aria-current="page">Subscriptions</a>' in nav


# Rows written without the template engine ------------------------------------------------------


@pytest.mark.rule("S1")
def test_s1_rows_escape_what_partners_typed(signed_in, direct_partner, customer):
    # given a subscription whose friendly name, offer, customer and reseller names hold markup
    customer.company_name = "Fabrikam <Ltd> & Co"
    customer.save()
    reseller = factories.PartnerFactory(kind=Partner.Kind.INDIRECT_RESELLER, name="<b>Adatum</b>", partner_id="4412345")
    sub = subscribe_to_offer(customer, "Visio <Plan 2>", friendly_name='<script>alert("x")</script>', reseller=reseller)
    # when the customer's list and the list across customers are opened
    for url in (list_url(customer), ALL_URL):
        page = signed_in.get(url).content.decode()
        # then every one of them is shown as text, never as markup
        assert '<script>alert("x")' not in page and "<b>Adatum" not in page and "<Plan 2>" not in page
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
        assert '<span class="why">Visio &lt;Plan 2&gt;</span>' in page
        assert '&lt;b&gt;Adatum&lt;/b&gt;<span class="why">4412345</span>' in page
        assert str(sub.pk) in ids(page)
    assert f'<a href="{list_url(customer)}">Fabrikam &lt;Ltd&gt; &amp; Co</a>' in page


@pytest.mark.rule("S1")
@pytest.mark.parametrize("sort", ["quantity", "-quantity", "name", "-name"])
def test_s1_ties_keep_a_stable_order_across_pages(signed_in, customer, sort):
    # given 30 subscriptions equal on every sortable column
    bulk_subscriptions([customer], [factories.SkuFactory(name="Microsoft 365 E3")], 1)
    original = Subscription.objects.get(customer=customer)
    for _ in range(29):
        original.pk = None
        original.save()
    expected = sorted(str(pk) for pk in Subscription.objects.filter(customer=customer).values_list("pk", flat=True))
    # when both pages are read, sorted by a column on which they all tie
    first = ids(signed_in.get(list_url(customer, f"?sort={sort}")).content.decode())
    second = ids(signed_in.get(list_url(customer, f"?sort={sort}&page=2")).content.decode())
    # then every subscription comes once, by id in the sort's direction
    assert first + second == (expected[::-1] if sort.startswith("-") else expected)
