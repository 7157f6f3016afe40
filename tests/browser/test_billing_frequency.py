"""Changing the billing frequency at the next charge in real Chromium (N7), the way a partner's sales agent does.

The clock is 2026-11-25 12:00 UTC and keeps ticking. The subscription is Microsoft 365 E3, 1 year billed monthly at
10.00 USD a license, bought 2026-11-23 12:00 UTC: its next monthly charge is on 2026-12-23.
"""

from datetime import date, timedelta

import pytest
from playwright.sync_api import Page, expect

from subscriptions.models import Subscription
from tests.browser.conftest import NOW, SHOTS_DIR, e3_subscription, make_offer, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.rule("N7")
def test_n7_annual_billing_is_set_for_the_next_charge_and_shown_then_removed(page: Page, live_server, contoso):
    # given a subscription billed monthly, whose SKU is also sold billed annually
    agent, customer = contoso
    e3 = make_offer("Microsoft 365 E3", prices=[("P1Y", "monthly", "10.00"), ("P1Y", "annual", "114.00")])
    sub = e3_subscription(customer, started=NOW - timedelta(days=2), e3=e3)
    sign_in(page, live_server.url, agent)
    page.goto(f"{live_server.url}/customers/{customer.pk}/subscriptions/{sub.pk}/")
    panel = page.locator("#billing-frequency")
    expect(panel.locator("dl.props")).to_contain_text("Next charge2026-12-23 00:00 UTC")

    # when the partner picks annual billing and submits
    panel.get_by_label("Bill from the next charge").select_option(label="Annual (114.00 USD per license)")
    panel.get_by_role("button", name="Change at the next charge").click()

    # then the panel shows the instruction, with the date in UTC and the annual price
    expect(panel.get_by_role("status").first).to_have_text(
        "From the next charge on 2026-12-23 (UTC) it is billed annually."
    )
    instruction = panel.locator("#next-charge-instruction")
    expect(instruction).to_contain_text(
        "From the charge on 2026-12-23 00:00 UTC: billed annually at 114.00 USD per license per period."
    )
    page.screenshot(path=f"{SHOTS_DIR}/billing-frequency-set.png", full_page=True)
    sub.refresh_from_db()
    assert (sub.billing_frequency, sub.next_charge_frequency, sub.next_charge_on) == (
        "monthly",
        "annual",
        date(2026, 12, 23),
    )

    # and it is still there after a reload, and can be removed
    page.reload()
    expect(page.locator("#next-charge-instruction")).to_contain_text("billed annually")
    page.locator("#next-charge-instruction").get_by_role("button", name="Remove").click()
    expect(page.locator("#billing-frequency").get_by_role("status").first).to_have_text(
        "Billing frequency change removed: it stays billed monthly."
    )
    expect(page.locator("#next-charge-instruction")).to_have_count(0)
    assert Subscription.objects.get(pk=sub.pk).next_charge_frequency == ""
