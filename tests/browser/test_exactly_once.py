"""Exactly once in real Chromium: a double click on an irreversible confirmation acts once (issue 9, finding 1),
and a change from a tab opened before another change is refused with what changed, nothing done."""

from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect

from catalog.models import UpgradePath
from subscriptions.models import BillingLine, Subscription
from tests.browser.conftest import NOW, e3_subscription, make_offer, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.rule("U7")
def test_double_clicking_yes_upgrade_upgrades_once(page: Page, live_server, contoso):
    agent, customer = contoso
    source = e3_subscription(customer, started=NOW - timedelta(days=30), quantity=30)
    e5 = make_offer("Microsoft 365 E5", prices=[("P1Y", "monthly", "20.00")])
    UpgradePath.objects.create(source=source.sku, target=e5, supported=True)
    sign_in(page, live_server.url, agent)
    # the upgrade's preview: 10 of the 30 licenses into a new E5 subscription
    page.goto(f"{live_server.url}/customers/{customer.pk}/subscriptions/{source.pk}/upgrade/?target={e5.pk}"
              "&quantity=10&term=P1Y&billing_frequency=monthly&into=")
    confirm = page.get_by_role("button", name="Yes, upgrade")
    expect(confirm).to_be_enabled()
    # when the partner double-clicks "Yes, upgrade"
    confirm.dblclick()
    # then the page moves on to the one new subscription, and only one upgrade happened
    expect(page.get_by_role("heading", level=1)).to_contain_text("Microsoft 365 E5")
    expect(page.get_by_role("status").first).to_contain_text("Upgraded 10 license(s) to Microsoft 365 E5.")
    assert list(Subscription.objects.filter(sku=e5).values_list("quantity", flat=True)) == [10]
    assert Subscription.objects.get(pk=source.pk).quantity == 20
    assert BillingLine.objects.filter(kind=BillingLine.Kind.UPGRADE_CREDIT).count() == 1


def test_a_tab_opened_before_a_change_is_told_what_changed(page: Page, live_server, contoso):
    agent, customer = contoso
    sub = e3_subscription(customer, started=NOW - timedelta(days=30))
    sign_in(page, live_server.url, agent)
    url = f"{live_server.url}/customers/{customer.pk}/subscriptions/{sub.pk}/"
    older = page.context.new_page()
    older.goto(url)
    # another tab suspends it
    page.goto(url)
    page.get_by_role("link", name="Suspend").click()
    page.get_by_role("dialog").get_by_role("button", name="Yes, suspend").click()
    expect(page.get_by_role("status").first).to_contain_text("Suspended")
    # when the older tab, still showing it active, renames it
    older.get_by_label("Friendly name").fill("Sales team")
    older.get_by_role("button", name="Rename").click()
    # then it is told what changed since, and nothing was renamed
    expect(older.get_by_role("alert").first).to_contain_text(
        "This subscription changed since you opened the page: Suspended; auto-renew turned off")
    assert Subscription.objects.get(pk=sub.pk).friendly_name == ""
