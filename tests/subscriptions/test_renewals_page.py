"""The Renewals page (beyond Partner Center): every subscription of the partner renewing in the next
30/60/90 days, its lock point, what will change, what it will cost; and those ending without renewal.
Today is 2026-11-25 12:00 UTC."""

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.db import connection
from django.http import QueryDict
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from portal.models import Partner
from subscriptions import renewals
from subscriptions.filters import RenewalsWindowForm
from subscriptions.lifecycle import renew_due_subscriptions
from subscriptions.models import ScheduledChange, Subscription
from subscriptions.states import Status
from tests import factories
from tests.factories import subscribe_to_offer
from tests.helpers import visible_text

URL = reverse("subscriptions:renewals")
TODAY = date(2026, 11, 25)
MAX_QUERIES = 15


def section(page: str, name: str) -> str:
    return re.search(rf'<section id="{name}".*?</section>', page, re.S).group(0)


def rows(page: str, name: str) -> list[list[str]]:
    """The rows of a section's table, each a list of its cells' text."""
    body = re.search(r"<tbody>(.*?)</tbody>", section(page, name), re.S)
    if body is None:
        return []
    return [
        [visible_text(cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        for row in re.findall(r"<tr>(.*?)</tr>", body.group(1), re.S)
    ]


def names(page: str, name: str) -> list[str]:
    return [row[1] for row in rows(page, name)]


@pytest.mark.rule("N1")
@pytest.mark.rule("N4")
def test_a_row_shows_lock_point_scheduled_changes_and_the_cost_of_the_renewal(signed_in, customer):
    # given a P1Y monthly subscription at 10.00 for 10 licenses ending 2026-12-04, with 120 licenses scheduled
    subscription = subscribe_to_offer(customer, "Microsoft 365 E3", term_end=date(2026, 12, 4))
    factories.ScheduledChangeFactory(subscription=subscription, kind=ScheduledChange.Kind.QUANTITY, quantity=120)
    # when the page is opened
    page = signed_in.get(URL).content.decode()
    # then the row shows the renewal as the engine will apply it: 120 × 10.00 for the first month
    [row] = rows(page, "renewing")
    assert row[0] == customer.company_name
    assert row[1] == "Microsoft 365 E3"
    assert row[2] == "2026-12-04"
    assert row[3].startswith("00:00 UTC on 2026-12-05")
    assert row[4] == "120 licenses"
    assert row[5] == "120"
    assert row[6] == "1,200.00 USD (first monthly charge)"
    assert row[7] == "On"
    assert row[8] == "Manage renewal"
    detail = reverse("subscriptions:subscription-detail", args=[customer.pk, subscription.pk])
    assert f'href="{detail}#manage-renewal"' in page
    assert f'href="{detail}"' in page
    assert f'href="{reverse("subscriptions:subscription-list", args=[customer.pk])}"' in page
    # and the exact Decimal the engine will charge
    quote = renewals.renewal_quote(Subscription.objects.get(pk=subscription.pk))
    assert quote.charge.amount == Decimal("1200.00")
    assert (quote.charge.period_start, quote.charge.period_end) == (date(2026, 12, 5), date(2027, 1, 4))
    assert rows(page, "ending") == []


@pytest.mark.rule("N4")
def test_a_scheduled_term_change_is_priced_at_the_matching_availability(signed_in, customer):
    # given P1Y monthly at 10.00 (10 licenses), a term change to P1M and 3 licenses scheduled; P1M monthly is 12.00
    subscription = subscribe_to_offer(customer, "Visio Plan 2", term_end=date(2026, 12, 1))
    factories.ScheduledChangeFactory(
        subscription=subscription, kind=ScheduledChange.Kind.TERM, term="P1M", quantity=None
    )
    factories.ScheduledChangeFactory(subscription=subscription, kind=ScheduledChange.Kind.QUANTITY, quantity=3)
    # when the page is opened
    [row] = rows(signed_in.get(URL).content.decode(), "renewing")
    # then 3 × 12.00
    assert row[4] == "Term 1 month; 3 licenses"
    assert row[5] == "3"
    assert row[6] == "36.00 USD (first monthly charge)"
    assert row[3].startswith("00:00 UTC on 2026-12-02")


def test_no_scheduled_change_renews_as_is(signed_in, customer):
    subscribe_to_offer(customer, "Project Plan 3", term_end=date(2026, 11, 30), quantity=7)
    [row] = rows(signed_in.get(URL).content.decode(), "renewing")
    assert row[4:7] == ["No changes", "7", "70.00 USD (first monthly charge)"]


@pytest.mark.rule("N1")
@pytest.mark.parametrize("within, last_day_in", [("30", 30), ("60", 60), ("90", 90), ("", 30), ("45", 30)])
def test_the_window_includes_its_last_day_and_not_the_next(signed_in, customer, within, last_day_in):
    # given subscriptions ending yesterday, today, on the window's last day and the day after
    subscribe_to_offer(customer, "Ended yesterday", term_end=TODAY - timedelta(days=1))
    subscribe_to_offer(customer, "Ends today", term_end=TODAY)
    subscribe_to_offer(customer, "Last day", term_end=TODAY + timedelta(days=last_day_in))
    subscribe_to_offer(customer, "Day after", term_end=TODAY + timedelta(days=last_day_in + 1))
    subscribe_to_offer(customer, "Off on last day", term_end=TODAY + timedelta(days=last_day_in), auto_renew=False)
    subscribe_to_offer(customer, "Off day after", term_end=TODAY + timedelta(days=last_day_in + 1), auto_renew=False)
    # when the page is opened for the window
    page = signed_in.get(URL + (f"?within={within}" if within else "")).content.decode()
    # then both ends are in, in term end order
    assert names(page, "renewing") == ["Ends today", "Last day"]
    assert names(page, "ending") == ["Off on last day"]
    assert f'aria-current="true">{last_day_in} days<' in page


@pytest.mark.parametrize(
    "query, days",
    [
        ("within=60", 60),
        ("within=90", 90),
        ("within=30", 30),
        ("", 30),
        ("within=", 30),
        ("within=45", 30),
        ("within=abc", 30),
        ("within=60.0", 30),
        ("within=-60", 30),
        ("within=+60", 30),
        ("within=%2060", 30),
        ("within=99999999999999999999999", 30),
        ("within=%00", 30),
        ("within=30&within=90", 90),
    ],
)
def test_the_window_is_read_by_a_form_and_an_unknown_one_is_the_default_30_days(signed_in, customer, query, days):
    # given subscriptions renewing in 30, 60 and 90 days
    for ends_in in (30, 60, 90):
        subscribe_to_offer(customer, f"In {ends_in} days", term_end=TODAY + timedelta(days=ends_in))
    # when the window is read from the query string
    form = RenewalsWindowForm(QueryDict(query))
    # then it is the window asked for, or the default: never an error
    assert form.days() == days
    response = signed_in.get(f"{URL}?{query}")
    assert response.status_code == 200
    page = response.content.decode()
    assert names(page, "renewing") == [f"In {ends_in} days" for ends_in in (30, 60, 90) if ends_in <= days]
    assert f'aria-current="true">{days} days<' in page
    assert f"Subscriptions whose term ends in the next {days} days (UTC)." in visible_text(page)


@pytest.mark.rule("N1")
def test_renewing_rows_are_ordered_by_term_end_then_customer(signed_in, direct_partner):
    zeta = factories.CustomerFactory(partner=direct_partner, company_name="Zeta Ltd")
    alpha = factories.CustomerFactory(partner=direct_partner, company_name="Alpha Ltd")
    subscribe_to_offer(zeta, "Z later", term_end=TODAY + timedelta(days=5))
    subscribe_to_offer(zeta, "Z first", term_end=TODAY + timedelta(days=2))
    subscribe_to_offer(alpha, "A later", term_end=TODAY + timedelta(days=5))
    page = signed_in.get(URL).content.decode()
    assert names(page, "renewing") == ["Z first", "A later", "Z later"]


@pytest.mark.rule("N1")
def test_only_active_paid_subscriptions_renew_and_pending_ones_stay_listed(signed_in, customer):
    # given a pending renewal (past its lock point), a trial, a cancelled and a suspended subscription
    subscribe_to_offer(customer, "Pending", term_end=TODAY - timedelta(days=1), renewal_pending=True)
    subscribe_to_offer(customer, "Trial", term_end=TODAY + timedelta(days=3), trial=True)
    subscribe_to_offer(customer, "Deleted", term_end=TODAY + timedelta(days=3), deleted=True)
    subscribe_to_offer(customer, "Suspended", term_end=TODAY + timedelta(days=3), suspended=True)
    page = signed_in.get(URL).content.decode()
    [pending] = rows(page, "renewing")
    assert pending[1] == "Pending"
    assert pending[3] == "00:00 UTC on 2026-11-25 Renewal pending"
    [suspended] = rows(page, "ending")
    assert suspended[1] == "Suspended"
    assert suspended[5] == "Suspended will be disabled"


@pytest.mark.rule("TR1")
@pytest.mark.rule("R4")
def test_trials_ending_in_the_window_say_what_they_become(signed_in, customer):
    # given three new-commerce trials ending in the window: converting by default, converting to a scheduled
    # higher offer with 10 licenses (TR3, TR8), and one with auto-renew off; and an ISV free trial (S4, not listed)
    paid = factories.SkuFactory(name="Microsoft 365 E3")
    e5 = factories.SkuFactory(name="Microsoft 365 E5")
    trial_sku = factories.SkuFactory(name="E3 Trial", trial=True, trial_of=paid)
    default = factories.SubscriptionFactory(
        customer=customer, sku=trial_sku, trial=True, term_end=date(2026, 12, 1), friendly_name="Default"
    )
    scheduled = factories.SubscriptionFactory(
        customer=customer, sku=trial_sku, trial=True, term_end=date(2026, 12, 2), friendly_name="Scheduled"
    )
    factories.ScheduledChangeFactory(
        subscription=scheduled, kind=ScheduledChange.Kind.UPGRADE, quantity=None, target_sku=e5
    )
    factories.ScheduledChangeFactory(subscription=scheduled, kind=ScheduledChange.Kind.QUANTITY, quantity=10)
    factories.SubscriptionFactory(
        customer=customer, sku=trial_sku, trial=True, term_end=date(2026, 12, 3), friendly_name="Off", auto_renew=False
    )
    isv = factories.SkuFactory(name="Backup free trial", isv=True)
    factories.SubscriptionFactory(customer=customer, sku=isv, trial=True, term_end=date(2026, 12, 4))
    page = signed_in.get(URL).content.decode()
    # then they are listed with what they become, and none of them under "Renewing"
    assert [row[1:3] + row[4:7] for row in rows(page, "trials")] == [
        ["Default", "2026-12-01", "Converts to Microsoft 365 E3", "25", "On"],
        ["Scheduled", "2026-12-02", "Converts to Microsoft 365 E5", "10", "On"],
        ["Off", "2026-12-03", "Ends", "—", "Off"],
    ]
    assert rows(page, "renewing") == []
    convert = reverse("subscriptions:subscription-convert", args=[customer.pk, default.pk])
    assert f'href="{convert}"' in section(page, "trials")


def test_ending_without_renewal_rows(signed_in, customer):
    subscription = subscribe_to_offer(
        customer, "Teams Essentials", term_end=date(2026, 12, 10), auto_renew=False, quantity=4
    )
    page = signed_in.get(URL).content.decode()
    assert rows(page, "renewing") == []
    [row] = rows(page, "ending")
    assert row[:3] == [customer.company_name, "Teams Essentials", "2026-12-10"]
    assert row[3].startswith("00:00 UTC on 2026-12-11")
    assert row[4:] == ["4", "Active will expire", "Off", "Manage renewal"]
    detail = reverse("subscriptions:subscription-detail", args=[customer.pk, subscription.pk])
    assert f'href="{detail}#manage-renewal"' in section(page, "ending")


def test_empty_states(signed_in, customer):
    page = signed_in.get(URL).content.decode()
    assert "No subscription renews in the next 30 days." in visible_text(page)
    assert "Nothing ends without renewal in the next 30 days." in visible_text(page)
    assert "No trial ends in the next 30 days." in visible_text(page)


@pytest.mark.rule("T3")
def test_another_partners_subscriptions_are_never_shown(signed_in, customer):
    other = factories.CustomerFactory(partner=factories.PartnerFactory(name="Fabrikam Direct"))
    subscribe_to_offer(other, "Theirs", term_end=TODAY + timedelta(days=3))
    subscribe_to_offer(other, "Theirs ending", term_end=TODAY + timedelta(days=3), auto_renew=False)
    subscribe_to_offer(customer, "Ours", term_end=TODAY + timedelta(days=3))
    page = signed_in.get(URL + "?within=90").content.decode()
    assert names(page, "renewing") == ["Ours"]
    assert rows(page, "ending") == []
    assert "Theirs" not in page


@pytest.mark.rule("T1")
@pytest.mark.rule("T3")
def test_a_reseller_sees_only_the_subscriptions_it_is_reseller_of_record_for(client, provider, now):
    adatum = factories.PartnerFactory(kind=Partner.Kind.INDIRECT_RESELLER, name="Adatum")
    customer = factories.CustomerFactory(partner=provider)
    subscribe_to_offer(customer, "Resold by Adatum", term_end=TODAY + timedelta(days=3), reseller=adatum)
    subscribe_to_offer(customer, "Sold by the provider", term_end=TODAY + timedelta(days=3))
    subscribe_to_offer(
        customer,
        "Another reseller",
        term_end=TODAY + timedelta(days=3),
        reseller=factories.PartnerFactory(kind=Partner.Kind.INDIRECT_RESELLER),
    )
    client.force_login(factories.staff(adatum, "support_agent"))
    page = client.get(URL).content.decode()
    assert names(page, "renewing") == ["Resold by Adatum"]


@pytest.mark.rule("T2")
@pytest.mark.parametrize("role", ["admin_agent", "sales_agent", "billing_admin", "support_agent"])
def test_every_role_may_view(client, direct_partner, customer, role, now):
    subscribe_to_offer(customer, "Microsoft 365 E3", term_end=TODAY + timedelta(days=3))
    client.force_login(factories.staff(direct_partner, role))
    response = client.get(URL)
    assert response.status_code == 200
    assert names(response.content.decode(), "renewing") == ["Microsoft 365 E3"]


def test_signed_out_user_is_not_shown_the_page(client, now):
    # they are sent to sign in, and come back here after
    response = client.get(URL)
    assert (response.status_code, response["Location"]) == (302, f"{reverse(settings.LOGIN_URL)}?next={URL}")


def test_the_left_navigation_links_the_page(signed_in):
    page = signed_in.get(URL).content.decode()
    assert f'<a href="{URL}" aria-current="page">Renewals</a>' in page


def test_a_page_holds_50_rows(signed_in, customer):
    sku = factories.SkuFactory(name="Exchange Online")
    for _ in range(51):
        factories.SubscriptionFactory(customer=customer, sku=sku, term_end=TODAY + timedelta(days=3))
    first = signed_in.get(URL).content.decode()
    assert len(rows(first, "renewing")) == 50
    assert "Page 1 of 2 · 51 in all" in first
    assert len(rows(signed_in.get(URL + "?page=2").content.decode(), "renewing")) == 1


def _portfolio(direct_partner, n: int) -> None:
    """n renewing subscriptions (each its own offer, with scheduled changes) and n ending ones."""
    for i in range(n):
        customer = factories.CustomerFactory(partner=direct_partner)
        renewing = subscribe_to_offer(customer, f"Renewing {i}", term_end=TODAY + timedelta(days=1 + i % 20))
        factories.ScheduledChangeFactory(subscription=renewing, kind=ScheduledChange.Kind.QUANTITY, quantity=5)
        factories.ScheduledChangeFactory(
            subscription=renewing,
            kind=ScheduledChange.Kind.BILLING_FREQUENCY,
            billing_frequency="annual",
            quantity=None,
        )
        factories.ScheduledChangeFactory(
            subscription=renewing,
            kind=ScheduledChange.Kind.UPGRADE,
            quantity=None,
            target_sku=factories.SkuFactory(name=f"Upgrade {i}"),
        )
        subscribe_to_offer(customer, f"Ending {i}", term_end=TODAY + timedelta(days=1 + i % 20), auto_renew=False)
        trial = subscribe_to_offer(customer, f"Trial {i}", term_end=TODAY + timedelta(days=1 + i % 20), trial=True)
        factories.ScheduledChangeFactory(subscription=trial, kind=ScheduledChange.Kind.QUANTITY, quantity=10)


@pytest.mark.rule("N1")
def test_the_page_runs_a_constant_number_of_queries(signed_in, direct_partner):
    # given 3 renewing and 3 ending subscriptions
    _portfolio(direct_partner, 3)
    with CaptureQueriesContext(connection) as few:
        page = signed_in.get(URL)
    assert len(rows(page.content.decode(), "renewing")) == 3
    # when there are ten times as many
    _portfolio(direct_partner, 27)
    with CaptureQueriesContext(connection) as many:
        page = signed_in.get(URL)
    # then every row is shown with the same number of queries
    assert len(rows(page.content.decode(), "renewing")) == 30
    assert len(rows(page.content.decode(), "ending")) == 30
    assert len(rows(page.content.decode(), "trials")) == 30
    assert len(many) == len(few) <= MAX_QUERIES


@pytest.mark.rule("N5")
@pytest.mark.rule("P2")
def test_n5_p2_an_ending_row_says_what_the_engine_then_does(signed_in, customer):
    # given a subscription with auto-renew off and a suspended one, both ending on 2026-12-10
    expiring = subscribe_to_offer(customer, "Auto-renew off", term_end=date(2026, 12, 10), auto_renew=False)
    suspended = subscribe_to_offer(customer, "Suspended", term_end=date(2026, 12, 10), suspended=True)
    # when the page is opened
    page = signed_in.get(URL).content.decode()
    # then one will expire and the other will be disabled
    assert {row[1]: row[5] for row in rows(page, "ending")} == {
        "Auto-renew off": "Active will expire",
        "Suspended": "Suspended will be disabled",
    }
    # and that is what the engine does once their terms are over
    renew_due_subscriptions(datetime(2026, 12, 11, 0, 5, tzinfo=UTC))
    assert dict(Subscription.objects.values_list("pk", "status")) == {
        expiring.pk: Status.EXPIRED,
        suspended.pk: Status.DISABLED,
    }
