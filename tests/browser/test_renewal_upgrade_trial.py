"""Renewal changes, a partial upgrade and a trial conversion in real Chromium, as a partner's sales agent:
schedule a quantity for the renewal then change the quantity now, which deletes it (R3, R6); upgrade 4 of
10 licenses into a new subscription that ends with the source (U6); convert an NCE trial now (TR2, TR7).

The clock is set to 2026-11-25 12:00 UTC and keeps ticking (the live server and the test share it).
"""

import re
from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect

from catalog.models import UpgradePath
from subscriptions.models import Subscription
from subscriptions.states import Status
from tests import factories
from tests.browser.conftest import (
    NOW,
    SHOTS_DIR,
    e3_subscription,
    make_offer,
    open_panel,
    open_subscription,
    props_value,
    sign_in,
    status_bars,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.rule("R3")
@pytest.mark.rule("R6")
def test_schedule_a_renewal_quantity_then_change_the_quantity_now_deletes_it(page: Page, live_server, contoso):
    agent, customer = contoso
    sub = e3_subscription(customer, started=NOW - timedelta(days=30))
    sign_in(page, live_server.url, agent)
    open_subscription(page, customer, "Microsoft 365 E3")
    renewal = open_panel(page, "Manage renewal")
    expect(renewal.get_by_role("heading", name="Manage renewal")).to_be_focused()
    expect(renewal).to_contain_text("Nothing is scheduled")
    page.keyboard.press("Escape")
    expect(
        page.get_by_role("toolbar", name="Subscription actions").get_by_role("link", name="Manage renewal")
    ).to_be_focused()
    renewal = open_panel(page, "Manage renewal")

    # the partner schedules 15 licenses for the renewal
    renewal.get_by_label("Quantity").fill("15")
    renewal.get_by_role("button", name="Schedule for the renewal").click()
    expect(status_bars(page).first).to_have_text("Scheduled for the renewal: 15 licenses.")
    # the page comes back with the panel open on what is now scheduled
    renewal = page.locator(".side-panel.open #manage-renewal")
    expect(renewal.locator("ul.scheduled-changes li")).to_have_count(1)
    expect(renewal.locator("ul.scheduled-changes li")).to_contain_text("15 licenses")
    expect(renewal.get_by_role("button", name="Remove 15 licenses")).to_be_enabled()
    page.screenshot(path=f"{SHOTS_DIR}/renewal-scheduled.png", full_page=True)

    # then changes the quantity now to 12: the preview warns the scheduled change will be deleted
    # (Esc closes the panel, and the focus goes back to where the partner was)
    page.get_by_role("toolbar", name="Subscription actions").get_by_role("link", name="Manage renewal").focus()
    page.keyboard.press("Escape")
    expect(page.locator(".side-panel.open")).to_have_count(0)
    expect(page.locator("#panel-manage-renewal")).not_to_be_visible()
    panel = open_panel(page, "Change licenses")
    panel.get_by_label("New quantity").fill("12")
    panel.get_by_role("button", name="Preview").click()
    preview = page.locator("#quantity-preview")
    expect(preview).to_contain_text("10 → 12 licenses.")
    expect(preview.locator(".field-error")).to_have_text(
        "Warning: this deletes the 1 change scheduled for the renewal."
    )
    page.screenshot(path=f"{SHOTS_DIR}/quantity-preview-deletes-scheduled.png", full_page=True)
    assert sub.scheduled_changes.count() == 1  # nothing changed yet

    # confirms
    preview.get_by_role("button", name="Change to 12 licenses").click()
    expect(status_bars(page).first).to_contain_text("Quantity changed from 10 to 12.")
    expect(props_value(page, "Quantity")).to_have_text("12")

    # and the scheduled change is gone
    renewal = open_panel(page, "Manage renewal")
    expect(renewal.locator("ul.scheduled-changes li")).to_have_count(0)
    expect(renewal).to_contain_text(
        "Nothing is scheduled: the subscription renews with its current quantity, term and billing frequency."
    )
    expect(renewal.get_by_label("Quantity")).to_have_value("12")
    page.screenshot(path=f"{SHOTS_DIR}/scheduled-change-deleted.png", full_page=True)
    assert sub.scheduled_changes.count() == 0


@pytest.mark.rule("U6")
def test_partial_upgrade_into_a_new_subscription_that_ends_with_the_source(page: Page, live_server, contoso):
    agent, customer = contoso
    source = e3_subscription(customer, started=NOW - timedelta(days=30))
    e5 = make_offer("Microsoft 365 E5", prices=[("P1Y", "monthly", "20.00")])
    UpgradePath.objects.create(source=source.sku, target=e5, supported=True)
    source_end = f"{source.term_end:%Y-%m-%d}"

    sign_in(page, live_server.url, agent)
    open_subscription(page, customer, "Microsoft 365 E3")
    upgrades = open_panel(page, "Check upgrades")
    expect(upgrades.get_by_role("heading", level=1)).to_have_text("Check upgrades: Microsoft 365 E3")
    expect(upgrades.get_by_role("heading", level=1)).to_be_focused()

    # the partner chooses E5, a new subscription, 4 of the 10 licenses, and previews
    target = upgrades.get_by_role("form", name="Upgrade to Microsoft 365 E5")
    expect(target.get_by_role("radio", name="A new subscription")).to_be_checked()
    expect(target.get_by_label("Licenses")).to_have_value("10")
    target.get_by_label("Licenses").fill("4")
    target.get_by_role("button", name="Preview").click()

    # the preview says it is partial, into a new subscription that ends with this one
    preview = upgrades.locator("#upgrade-preview")
    expect(preview.get_by_role("heading")).to_have_text("Upgrade 4 licenses to Microsoft 365 E5?")
    expect(preview).to_contain_text(
        f"Partial upgrade: a new Microsoft 365 E5 subscription of 4 licenses that ends with this one on "
        f"{source_end} (coterminous). This subscription keeps 6 licenses."
    )
    page.screenshot(path=f"{SHOTS_DIR}/upgrade-preview.png", full_page=True)
    assert Subscription.objects.get(pk=source.pk).quantity == 10  # nothing yet

    preview.get_by_role("button", name="Yes, upgrade").click()
    expect(page.locator(".side-panel.open")).to_have_count(0)  # the whole page moves on

    # lands on the new subscription: 4 licenses of E5, ending with the source
    expect(page.get_by_role("heading", level=1)).to_contain_text("Microsoft 365 E5")
    expect(status_bars(page).first).to_have_text(
        "Upgraded 4 licenses to Microsoft 365 E5. Reassign these licenses by hand."
    )
    expect(props_value(page, "Quantity")).to_have_text("4")
    expect(props_value(page, "Status")).to_have_text("Active")
    expect(props_value(page, "Term end (inclusive)")).to_have_text(re.compile(rf"^{source_end} \(UTC\)"))
    new_id = props_value(page, "Subscription ID").inner_text().strip()
    assert new_id != str(source.pk)
    page.screenshot(path=f"{SHOTS_DIR}/upgrade-new-subscription.png", full_page=True)

    # and the source keeps 6
    open_subscription(page, customer, "Microsoft 365 E3")
    expect(props_value(page, "Quantity")).to_have_text("6")
    expect(props_value(page, "Term end (inclusive)")).to_have_text(re.compile(rf"^{source_end} \(UTC\)"))
    created = Subscription.objects.get(pk=new_id)
    assert (created.quantity, created.term_end, created.sku_id) == (4, source.term_end, e5.pk)


@pytest.mark.rule("TR2")
@pytest.mark.rule("TR7")
def test_convert_an_nce_trial_mid_term_into_a_new_paid_subscription(page: Page, live_server, contoso):
    agent, customer = contoso
    paid = make_offer("Microsoft 365 E3", prices=[("P1Y", "monthly", "10.00"), ("P1M", "monthly", "12.00")])
    trial_sku = factories.SkuFactory(
        trial=True,
        name="Microsoft 365 E3 Trial",
        trial_of=paid,
        product__name="Microsoft 365 E3 Trial",
        product__publisher=paid.product.publisher,
        availabilities=[("P1M", "monthly", "0.00")],
    )
    started = NOW - timedelta(days=10)
    trial = factories.start_trial(customer, trial_sku, started=started)

    sign_in(page, live_server.url, agent)
    open_subscription(page, customer, "Microsoft 365 E3 Trial")
    expect(props_value(page, "Quantity")).to_have_text("25")
    panel = open_panel(page, "Convert trial").locator("#convert-trial")
    expect(panel.get_by_role("heading", level=1)).to_have_text("Convert trial: Microsoft 365 E3 Trial")

    # the partner picks the paid offer, keeps the defaults (1 year billed monthly, now) and sets 25 licenses
    panel.get_by_role("radio", name="Microsoft 365 E3 (equivalent paid SKU), new subscription").check()
    expect(panel.get_by_role("radio", name=re.compile(r"^Now"))).to_be_checked()
    expect(panel.get_by_role("combobox", name=re.compile(r"^Term"))).to_have_value("P1Y")
    expect(panel.get_by_role("combobox", name=re.compile(r"^Billing frequency"))).to_have_value("monthly")
    panel.get_by_label("Quantity").fill("25")
    page.screenshot(path=f"{SHOTS_DIR}/convert-form.png", full_page=True)
    # previews first: a POST (no CSRF token in a URL) that changes nothing and keeps the panel open with the choice
    with page.expect_request(lambda request: request.method == "POST" and "/convert/" in request.url):
        panel.get_by_role("button", name="Preview").click()
    expect(panel.locator("#convert-preview")).to_contain_text(
        "Now: a new Microsoft 365 E3 subscription with 25 licenses"
    )
    assert "csrfmiddlewaretoken" not in page.url
    assert Subscription.objects.get(pk=trial.pk).is_trial  # nothing yet
    panel.get_by_role("button", name="Convert trial").click()
    expect(page.locator(".side-panel.open")).to_have_count(0)  # the whole page moves on

    # then the new paid subscription: active, 25 licenses, 1 year billed monthly
    expect(page.get_by_role("heading", level=1)).to_contain_text("Microsoft 365 E3")
    expect(page.get_by_role("heading", level=1)).not_to_contain_text("Trial")
    expect(status_bars(page).first).to_contain_text(
        "Trial converted: Now: a new Microsoft 365 E3 subscription with 25 licenses, 1 year billed monthly"
    )
    expect(props_value(page, "Status")).to_have_text("Active")
    expect(props_value(page, "Quantity")).to_have_text("25")
    expect(props_value(page, "Term")).to_have_text("1 year, billed monthly at 10.00 USD per license")
    expect(props_value(page, "Offer")).to_contain_text(f"Microsoft 365 E3 ({paid.sku_id})")
    page.screenshot(path=f"{SHOTS_DIR}/converted.png", full_page=True)

    # and the trial ended
    open_subscription(page, customer, "Microsoft 365 E3 Trial")
    expect(props_value(page, "Status")).to_have_text("Expired")
    expect(
        page.get_by_role("toolbar", name="Subscription actions").get_by_role("link", name="Convert trial")
    ).to_have_count(0)
    trial.refresh_from_db()
    assert (trial.status, trial.auto_renew) == (Status.EXPIRED, False)
