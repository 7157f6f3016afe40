"""A SKU upgrade scheduled for the renewal in real Chromium, as a partner's sales agent: pick the target in the
Manage renewal panel, see it scheduled with what happens to the licenses (R1, R5), then remove it (R3).

The clock is set to 2026-11-25 12:00 UTC and keeps ticking (the live server and the test share it).
"""

from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect

from catalog.models import UpgradePath
from subscriptions.models import ScheduledChange, Subscription
from tests.browser.conftest import NOW, SHOTS_DIR, e3_subscription, make_offer, open_panel, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

AUTOMATIC = "The quantity is unchanged, so licenses are reassigned to users automatically at the renewal."


@pytest.mark.rule("R1")
@pytest.mark.rule("R5")
@pytest.mark.rule("R3")
def test_schedule_an_upgrade_for_the_renewal_then_remove_it(page: Page, live_server, contoso):
    agent, customer = contoso
    e3 = make_offer("Microsoft 365 E3", prices=[("P1Y", "monthly", "10.00")])
    e5 = make_offer("Microsoft 365 E5", prices=[("P1Y", "monthly", "20.00")])
    UpgradePath.objects.create(source=e3, target=e5)
    sub = e3_subscription(customer, started=NOW - timedelta(days=30), e3=e3)
    sign_in(page, live_server.url, agent)
    page.goto(f"{live_server.url}/customers/{customer.pk}/subscriptions/{sub.pk}/")
    renewal = open_panel(page, "Manage renewal")
    expect(renewal).to_contain_text("Nothing is scheduled")

    # the partner picks E5 for the renewal and schedules it
    renewal.get_by_label("SKU at renewal").select_option(label="Upgrade to Microsoft 365 E5")
    renewal.get_by_role("button", name="Schedule for the renewal").click()
    expect(page.locator(".messages [role=status]").first).to_have_text(
        f"Scheduled for the renewal: Upgrade to Microsoft 365 E5. {AUTOMATIC}"
    )

    # the panel lists it with what happens to the licenses (R5), and keeps E5 selected
    renewal = page.locator(".side-panel.open #manage-renewal")
    item = renewal.locator("ul.scheduled-changes li")
    expect(item).to_have_count(1)
    expect(item).to_contain_text(f"Upgrade to Microsoft 365 E5: {AUTOMATIC}")
    expect(renewal.locator("#renewal-reassignment")).to_have_text(AUTOMATIC)
    expect(renewal.get_by_label("SKU at renewal")).to_have_value(str(e5.pk))
    page.screenshot(path=f"{SHOTS_DIR}/renewal-upgrade-scheduled.png", full_page=True)
    assert list(ScheduledChange.objects.filter(subscription=sub).values_list("kind", "target_sku")) == [
        ("upgrade", e5.pk)
    ]
    assert Subscription.objects.get(pk=sub.pk).sku == e3  # nothing changes before the renewal

    # then removes it
    renewal.get_by_role("button", name="Remove Upgrade to Microsoft 365 E5").click()
    expect(page.locator(".messages [role=status]").first).to_have_text(
        "Removed from the renewal: Upgrade to Microsoft 365 E5."
    )
    renewal = page.locator(".side-panel.open #manage-renewal")
    expect(renewal.locator("ul.scheduled-changes li")).to_have_count(0)
    expect(renewal.locator("#renewal-reassignment")).to_have_count(0)
    expect(renewal.get_by_label("SKU at renewal")).to_have_value("")
    assert not ScheduledChange.objects.filter(subscription=sub).exists()
