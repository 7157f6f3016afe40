"""The subscription lists read by seek pagination (S1): every sort pages through every subscription once, by
Next and back by Previous; the count is exact up to a bound; the sort keys copied onto each subscription follow
the customer and the reseller; the Home page and the lists' filters share their rules. Today is 2026-11-25 12:00
UTC."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse

from portal.models import Partner
from subscriptions import checks, selectors
from subscriptions.models import Subscription
from subscriptions.states import Status
from tests import factories
from tests.factories import bulk_subscriptions, lot, subscribe_to_offer
from tests.helpers import ALL_URL, count_queries, ids, list_url, visible_text

NOW = factories.BASE_TIME


def link(page: str, label: str) -> str | None:
    found = re.search(rf'<a class="btn" href="([^"]+)">{label}</a>', page)
    return found.group(1).replace("&amp;", "&") if found else None


def walk(client, base: str, first: str) -> tuple[list[list[str]], list[list[str]], list[str]]:
    """Every page by Next from `first`, then back by Previous from the last: the pages each way and their texts."""
    forward, texts, page = [], [], client.get(base + first).content.decode()
    while True:
        forward.append(ids(page))
        found = re.search(r"<span>(Page [^<]+)</span>", page)
        texts.append(found.group(1) if found else "")
        following = link(page, "Next")
        if following is None:
            break
        page = client.get(base + following).content.decode()
    backward = [ids(page)]
    while (previous := link(page, "Previous")) is not None:
        page = client.get(base + previous).content.decode()
        backward.append(ids(page))
    return forward, backward[::-1], texts


@pytest.mark.rule("S1")
@pytest.mark.parametrize("sort", [f"{way}{key}" for key in selectors.SORT_COLUMNS for way in ("", "-")])
def test_s1_every_sort_pages_through_every_subscription_once_both_ways(signed_in, direct_partner, sort):
    # given 100 subscriptions over three customers (two of them named alike), with many ties on every column, one
    # with a reseller
    customers = [
        factories.CustomerFactory(partner=direct_partner, company_name=name)
        for name in ("Fabrikam", "Fabrikam", "Adatum")
    ]
    bulk_subscriptions(customers, [factories.SkuFactory(name=f"Offer {i}") for i in range(3)], 99)
    reseller = factories.PartnerFactory(kind=Partner.Kind.INDIRECT_RESELLER, name="Bellows")
    subscribe_to_offer(customers[0], "Offer 1", reseller=reseller)
    scoped = Subscription.objects.filter(customer__partner=direct_partner)
    expected = [str(pk) for pk in selectors.order_subscriptions(scoped, sort).values_list("pk", flat=True)]
    # when the list across customers is read by Next to its end, then by Previous back to its start
    forward, backward, texts = walk(signed_in, ALL_URL, f"?sort={sort}")
    # then every subscription comes once, in the sort's order, the same pages both ways, and the pages are counted
    assert [pk for page in forward for pk in page] == expected
    assert [len(page) for page in forward] == [25, 25, 25, 25]
    assert backward == forward
    assert texts == [f"Page {n} of 4 · 100 in all" for n in (1, 2, 3, 4)]
    # and so does the list of one customer (every sort but by customer)
    if sort.removeprefix("-") in selectors.CUSTOMER_SORTS:
        own = [
            str(pk)
            for pk in selectors.order_subscriptions(scoped.filter(customer=customers[0]), sort).values_list(
                "pk", flat=True
            )
        ]
        forward, backward, _ = walk(signed_in, list_url(customers[0]), f"?sort={sort}")
        assert [pk for page in forward for pk in page] == own and backward == forward


@pytest.mark.rule("S1")
def test_s1_a_page_read_from_a_cursor_starts_after_its_row_even_when_rows_come_in_before_it(signed_in, customer):
    # given 30 subscriptions and the second page's link
    bulk_subscriptions([customer], [factories.SkuFactory(name="Microsoft 365 E3")], 30)
    first = signed_in.get(list_url(customer, "?sort=quantity")).content.decode()
    second_url = link(first, "Next")
    before = ids(signed_in.get(list_url(customer, second_url)).content.decode())
    # when a subscription sorting onto the first page is added
    subscribe_to_offer(customer, "Aardvark", quantity=1)
    # then the second page still starts after the row the first page ended with (an offset would shift it)
    assert ids(signed_in.get(list_url(customer, second_url)).content.decode()) == before


@pytest.mark.rule("S1")
def test_s1_the_count_is_exact_up_to_its_bound_and_says_more_beyond(signed_in, customer, monkeypatch):
    # given 30 subscriptions, and a bound of 10 (1,000 in the portal)
    bulk_subscriptions([customer], [factories.SkuFactory(name="Microsoft 365 E3")], 30)
    monkeypatch.setattr(selectors, "COUNT_BOUND", 10)
    # when the list is opened
    page = signed_in.get(list_url(customer)).content.decode()
    # then it says there are more than the bound, without the number of pages, and still pages on
    assert "Page 1 · 10+ in all" in page
    assert link(page, "Next") is not None
    # and with the bound above the count, the exact count
    monkeypatch.setattr(selectors, "COUNT_BOUND", 30)
    assert "Page 1 of 2 · 30 in all" in signed_in.get(list_url(customer)).content.decode()


@pytest.mark.rule("S1")
@pytest.mark.parametrize(
    "query",
    [
        "?after=bm9uc2Vuc2U",
        "?before=%00",
        "?after=W10",
        "?sort=quantity&after=WyJ4Il0",
        "?sort=nope&page=-3",
        "?page=99999999999999999999",
        "?status=gone",
        "?after=WzEseyJhIjoxfV0&sort=quantity",
        "?offer=-1&window=1&renews=x",
        "?offer_name=" + "x" * 300,
        "?offer=99999999999999999999999",
    ],
)
def test_s1_a_query_string_the_list_cannot_read_is_ignored(signed_in, customer, query):
    # given a subscription
    sub = subscribe_to_offer(customer, "Microsoft 365 E3")
    # when a list is opened with values its form refuses
    for url in (list_url(customer, query), ALL_URL + query):
        response = signed_in.get(url)
        # then the list is shown as without them
        assert response.status_code == 200
        assert ids(response.content.decode()) == [str(sub.pk)]


@pytest.mark.rule("S1")
def test_s1_the_list_across_customers_follows_a_customer_renamed(signed_in, direct_partner):
    # given two customers' subscriptions, listed by customer
    adatum = factories.CustomerFactory(partner=direct_partner, company_name="Adatum")
    fabrikam = factories.CustomerFactory(partner=direct_partner, company_name="Fabrikam")
    a, f = subscribe_to_offer(adatum, "Visio"), subscribe_to_offer(fabrikam, "Visio")
    assert ids(signed_in.get(ALL_URL).content.decode()) == [str(a.pk), str(f.pk)]
    # when Adatum is renamed Zenith (as the admin saves it)
    adatum.company_name = "Zenith"
    adatum.save()
    # then its subscriptions sort by the new name, and show it
    page = signed_in.get(ALL_URL).content.decode()
    assert ids(page) == [str(f.pk), str(a.pk)]
    assert ">Zenith</a>" in page
    assert Subscription.objects.get(pk=a.pk).customer_name == "Zenith"


@pytest.mark.rule("S1")
def test_s1_the_reseller_sort_follows_a_reseller_renamed_and_a_customer_moved(signed_in, direct_partner, customer):
    # given subscriptions resold by Adatum and Bellows
    adatum = factories.PartnerFactory(kind=Partner.Kind.INDIRECT_RESELLER, name="Adatum")
    bellows = factories.PartnerFactory(kind=Partner.Kind.INDIRECT_RESELLER, name="Bellows")
    a, b = (
        subscribe_to_offer(customer, "Visio", reseller=adatum),
        subscribe_to_offer(customer, "Visio", reseller=bellows),
    )
    assert ids(signed_in.get(list_url(customer, "?sort=reseller")).content.decode()) == [str(a.pk), str(b.pk)]
    # when Adatum is renamed Zeta
    adatum.name = "Zeta"
    adatum.save()
    # then the reseller sort follows
    assert ids(signed_in.get(list_url(customer, "?sort=reseller")).content.decode()) == [str(b.pk), str(a.pk)]
    # and when the customer is moved to another partner, its subscriptions leave this partner's list with it
    customer.partner = factories.PartnerFactory()
    customer.save()
    assert ids(signed_in.get(ALL_URL).content.decode()) == []
    assert set(Subscription.objects.values_list("partner", flat=True)) == {customer.partner_id}


@pytest.mark.rule("Q2")
@pytest.mark.rule("Q4")
def test_q4_home_and_the_48_hour_filter_list_the_same_open_removal_windows(signed_in, customer):
    # given lots closing within 48 hours: usable, all removed, of a trial, of a suspended subscription; and later
    open_one = subscribe_to_offer(customer, "A usable")
    lot(open_one, NOW + timedelta(hours=5))
    lot(subscribe_to_offer(customer, "B all removed"), NOW + timedelta(hours=5), removed=5)
    lot(subscribe_to_offer(customer, "C trial", trial=True), NOW + timedelta(hours=5))
    lot(subscribe_to_offer(customer, "D suspended", suspended=True), NOW + timedelta(hours=5))
    lot(subscribe_to_offer(customer, "E later"), NOW + timedelta(hours=49))
    # when Home and the filtered list are opened
    home = signed_in.get(reverse("portal:home")).content.decode()
    listed = ids(signed_in.get(ALL_URL + "?window=48h").content.decode())
    # then both show the usable window only
    assert listed == [str(open_one.pk)]
    shown = re.findall(r'subscriptions/([0-9a-f-]{36})/"', home)
    assert shown == [str(open_one.pk)]


@pytest.mark.rule("N1")
def test_n1_home_and_the_30_day_filter_list_the_same_renewals(signed_in, customer):
    # given subscriptions ending today, in 30 and 31 days, one with auto-renew off
    today = NOW.date()
    renewing = [
        subscribe_to_offer(customer, "A", term_end=today),
        subscribe_to_offer(customer, "B", term_end=today + timedelta(days=30)),
    ]
    subscribe_to_offer(customer, "C", term_end=today + timedelta(days=31))
    subscribe_to_offer(customer, "D", term_end=today + timedelta(days=3), auto_renew=False)
    # when Home and the filtered list are opened
    home = signed_in.get(reverse("portal:home")).content.decode()
    listed = ids(signed_in.get(ALL_URL + "?renews=30d").content.decode())
    # then both list the same two
    assert listed == [str(s.pk) for s in renewing]
    assert re.findall(r'subscriptions/([0-9a-f-]{36})/"', home) == [str(s.pk) for s in renewing]


@pytest.mark.rule("Q2")
@pytest.mark.rule("Q4")
def test_q4_home_shows_the_licenses_a_closing_window_still_holds(signed_in, customer):
    # given a batch of 5 closing in 5 hours of which 3 were removed since, and one of 4 closing later, none removed
    partly = subscribe_to_offer(customer, "A partly removed")
    lot(partly, NOW + timedelta(hours=5), quantity=5, removed=3)
    untouched = subscribe_to_offer(customer, "B untouched")
    lot(untouched, NOW + timedelta(hours=30), quantity=4)
    # when Home is opened
    home = signed_in.get(reverse("portal:home")).content.decode()
    # then each closing window shows the licenses still left to remove in it, soonest first
    card = re.search(r"<h2>License windows closing in 48 hours</h2>.*?</table>", home, re.S).group(0)
    shown = [
        (visible_text(name), visible_text(left))
        for name, left in re.findall(
            r'<td><a href="[^"]*/subscriptions/[0-9a-f-]{36}/">(.*?)</a></td>\s*<td class="num">(.*?)</td>', card, re.S
        )
    ]
    assert shown == [("A partly removed", "2"), ("B untouched", "4")]


@pytest.mark.rule("N1")
@pytest.mark.rule("N6")
@pytest.mark.rule("TR1")
def test_n1_home_the_30_day_filter_and_the_renewals_page_list_the_same_renewals(signed_in, customer):
    # given a paid subscription renewing in 10 days, one whose renewal is pending since 00:00 UTC today (N6), a trial
    # ending in 5 days (it converts, TR1) and one with auto-renew off ending in 3 days (it expires, N5)
    today = NOW.date()
    normal = subscribe_to_offer(customer, "A renews", term_end=today + timedelta(days=10))
    pending = subscribe_to_offer(customer, "B pending", term_end=today - timedelta(days=1), renewal_pending=True)
    trial = subscribe_to_offer(customer, "C trial", term_end=today + timedelta(days=5), trial=True)
    subscribe_to_offer(customer, "D auto-renew off", term_end=today + timedelta(days=3), auto_renew=False)
    # when Home, the list's "renews within 30 days" filter and the Renewals page are opened
    home = signed_in.get(reverse("portal:home")).content.decode()
    listed = ids(signed_in.get(ALL_URL + "?renews=30d").content.decode())
    renewals = signed_in.get(reverse("subscriptions:renewals") + "?within=30").content.decode()
    renewing = re.search(r'<section id="renewing".*?</section>', renewals, re.S).group(0)
    # then all three list the same two: the pending renewal and the paid one, each in its own order
    assert re.findall(r'subscriptions/([0-9a-f-]{36})/"', home) == [str(pending.pk), str(normal.pk)]
    assert listed == [str(normal.pk), str(pending.pk)]
    assert re.findall(r'subscriptions/([0-9a-f-]{36})/"', renewing) == [str(pending.pk), str(normal.pk)]
    # and the trial is on the Renewals page among the trials ending, which convert
    trials = re.search(r'<section id="trials".*?</section>', renewals, re.S).group(0)
    assert re.findall(r'subscriptions/([0-9a-f-]{36})/"', trials) == [str(trial.pk)]


@pytest.mark.rule("N1")
@pytest.mark.parametrize("auto_renew", [True, False])
@pytest.mark.parametrize("is_trial", [False, True])
@pytest.mark.parametrize("status", list(Status))
def test_n1_the_renewing_filter_selects_what_at_term_end_says_renews(customer, status, is_trial, auto_renew):
    # given a subscription in this status, a trial or not, with auto-renew on or off
    sub = subscribe_to_offer(customer, "Offer", status=status, is_trial=is_trial, auto_renew=auto_renew)
    renews = checks.at_term_end(sub) == checks.AtTermEnd.RENEWS
    # then the queryset form selects it exactly when the check says it renews: active, paid, auto-renew on
    assert renews is (status == Status.ACTIVE and not is_trial and auto_renew)
    assert list(Subscription.objects.filter(checks.renewing_filter())) == ([sub] if renews else [])


@pytest.mark.rule("S1")
@pytest.mark.parametrize("sort", [f"{way}{key}" for key in selectors.SORT_COLUMNS for way in ("", "-")])
@pytest.mark.parametrize("query", ["", "&status=active", "&window=48h", "&renews=30d"])
def test_s1_a_typed_page_number_shows_the_page_the_cursors_reach(signed_in, direct_partner, sort, query):
    # given 130 subscriptions over three customers (two named alike), with many ties on every column
    customers = [
        factories.CustomerFactory(partner=direct_partner, company_name=name)
        for name in ("Fabrikam", "Fabrikam", "Adatum")
    ]
    bulk_subscriptions(customers, [factories.SkuFactory(name=f"Offer {i}") for i in range(3)], 130)
    # when every page is read by Next from the first, and each is also opened by its number
    forward, _, _ = walk(signed_in, ALL_URL, f"?sort={sort}{query}")
    typed = [ids(signed_in.get(f"{ALL_URL}?sort={sort}{query}&page={n}").content.decode()) for n in range(1, 8)]
    # then page n typed is the nth page by Next, and a number past the end shows the last page
    assert len(forward) > 1 or query
    assert typed[: len(forward)] == forward
    assert all(page == forward[-1] for page in typed[len(forward) :])


@pytest.mark.rule("S1")
def test_s1_a_typed_page_number_reads_as_few_queries_deep_as_near(signed_in, direct_partner):
    # given 200 subscriptions
    customer = factories.CustomerFactory(partner=direct_partner)
    bulk_subscriptions([customer], [factories.SkuFactory(name="Offer")], 200)
    # when page 2 and page 8 are opened by number
    near, deep = (count_queries(signed_in, f"{ALL_URL}?sort=quantity&page={n}") for n in (2, 8))
    # then both take the same queries: one more than from a cursor (the key of the row the page follows)
    assert near == deep
    following = link(signed_in.get(f"{ALL_URL}?sort=quantity").content.decode(), "Next")
    assert count_queries(signed_in, ALL_URL + following) == near - 1
