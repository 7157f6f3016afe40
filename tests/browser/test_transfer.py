"""A transfer between partners in real Chromium, from the relationship request to the completed transfer
(TF1–TF4): the new partner's sales agent invites the customer, the customer accepts through the link in
its e-mail (read on the demo's simulated mailbox page, signed out of the portal), the agent files the
transfer request; the current partner's agent picks a subscription and transfers it; the new
partner then finds it under its own customer. Then a second request is withdrawn before anyone acts on it.

The clock is set to 2026-11-25 12:00 UTC and keeps ticking (the live server and the test share it).
"""

import re
from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect

from subscriptions.models import Subscription, TransferRequest
from subscriptions.states import Status
from tests import factories
from tests.browser.conftest import NOW, SHOTS_DIR, e3_subscription, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def sign_out(page: Page) -> None:
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("Username")).to_be_visible()


def open_transfers(page: Page) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Transfers").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Transfers")


@pytest.mark.rule("TF1")
@pytest.mark.rule("TF2")
@pytest.mark.rule("TF3")
@pytest.mark.rule("TF4")
def test_a_transfer_from_relationship_request_to_completion(page: Page, live_server, contoso, settings):
    settings.DEMO_MODE = True  # PORTAL_DEMO=1: the simulated mailbox exists
    source_agent, customer = contoso
    e3 = e3_subscription(customer, started=NOW - timedelta(days=40), quantity=12)
    e3_subscription(customer, started=NOW - timedelta(days=40), quantity=3, friendly_name="Branch office", e3=e3.sku)
    target = factories.PartnerFactory(kind="direct_bill", name="Northwind Cloud", partner_id="7300001")
    target_agent = factories.staff(target, "sales_agent")
    source_partner_id = source_agent.membership.partner.partner_id

    # TF1: the new partner invites the customer by its domain; the link is e-mailed to the customer's administrator
    sign_in(page, live_server.url, target_agent)
    open_transfers(page)
    invite = page.get_by_role("form", name="Send a relationship request")
    invite.get_by_label("Company name").fill("Fabrikam Ltd")
    invite.get_by_label("Domain").fill(customer.domain)
    invite.get_by_label("Customer administrator's e-mail").fill(f"admin@{customer.domain}")
    invite.get_by_role("button", name="Send relationship request").click()
    expect(page.locator(".messages [role=status]").first).to_contain_text(
        f"Relationship request sent to Fabrikam Ltd: the acceptance link was e-mailed to admin@{customer.domain}"
    )
    relationships = page.get_by_role("table", name="Relationship requests")
    expect(relationships).to_contain_text("Pending")
    expect(relationships).to_contain_text("2026-12-09")  # the link works for 14 days
    # the demo's simulated mailbox stands in for the customer's e-mail
    relationships.get_by_role("link", name="Open the customer's mailbox (demo)").click()
    mail = page.get_by_role("article", name="Northwind Cloud asks to become your Cloud Solution Provider partner")
    expect(mail).to_contain_text("The link works once, for 14 days: until 2026-12-09")
    mail.get_by_role("link", name="Review and accept the invitation").click()
    # still signed in as the partner's agent: the page is the customer's, so it offers to sign out, not to accept
    expect(page.get_by_role("heading", level=1)).to_have_text("Northwind Cloud wants to be your partner")
    expect(page.get_by_role("button", name="Accept and authorize")).to_have_count(0)
    page.get_by_role("button", name="Sign out and continue as the customer").click()
    # the customer confirms its own details and accepts
    accept = page.get_by_role("form", name="Accept the invitation")
    expect(accept.get_by_label("Company name")).to_have_value("Fabrikam Ltd")
    accept.get_by_label("Billing country").select_option(label="United States")
    accept.get_by_role("button", name="Accept and authorize").click()
    expect(page.get_by_role("status")).to_contain_text("Northwind Cloud is now one of your partners")
    page.screenshot(path=f"{SHOTS_DIR}/relationship-accepted.png", full_page=True)

    # TF2: the new partner files the transfer request, naming the current partner by its PartnerID
    sign_in(page, live_server.url, target_agent)
    open_transfers(page)
    expect(page.get_by_role("table", name="Relationship requests")).to_contain_text("Accepted")
    request = page.get_by_role("form", name="Request a transfer")
    request.get_by_label("Customer").select_option(label="Fabrikam Ltd")
    request.get_by_label("Current partner's PartnerID").fill(source_partner_id)
    request.get_by_label("Notification email").fill("it@fabrikam.example")
    request.get_by_role("button", name="Send transfer request").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Transfer request: Fabrikam Ltd")
    expect(page.locator("dl.facts")).to_contain_text("Pending")
    expect(page.locator("dl.facts")).to_contain_text("2026-12-25 12:00 UTC")  # TF4: expires after 30 days
    expect(page.get_by_text("Waiting for Contoso Direct to pick and transfer the subscriptions.")).to_be_visible()
    sign_out(page)

    # TF3: the current partner sees the request, picks one subscription and transfers it
    sign_in(page, live_server.url, source_agent)
    open_transfers(page)
    incoming = page.get_by_role("table", name="Incoming transfer requests")
    expect(incoming).to_contain_text("Northwind Cloud (7300001)")
    incoming.get_by_role("link", name="Fabrikam Ltd").click()
    pick = page.get_by_role("form", name="Pick subscriptions to transfer")
    expect(pick.locator("tbody tr")).to_have_count(2)
    pick.get_by_label("Microsoft 365 E3").check()
    page.screenshot(path=f"{SHOTS_DIR}/transfer-pick.png", full_page=True)
    pick.get_by_role("button", name="Transfer selected subscriptions").click()
    # a transfer can't be undone: a native dialog asks first
    confirm = page.get_by_role("dialog", name="Transfer the selected subscriptions to Northwind Cloud?")
    expect(confirm).to_be_visible()
    assert Subscription.objects.get(pk=e3.pk).status == Status.ACTIVE  # nothing yet
    confirm.get_by_role("button", name="Yes, transfer").click()

    # TF4: done in one go: the request is completed, the subscription listed as transferred
    expect(page.locator(".messages [role=status]").first).to_have_text("Transferred 1 subscription to Northwind Cloud.")
    expect(page.locator("dl.facts")).to_contain_text("Completed")
    expect(page.locator("main")).to_contain_text("Microsoft 365 E3 · 12 licenses")
    # at the current partner it is cancelled; the one not picked stays
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Customers").click()
    page.get_by_role("link", name="Fabrikam Ltd").click()
    rows = page.locator("table.list tbody tr")
    expect(rows.filter(has_text="Branch office")).to_contain_text("Active")
    sign_out(page)

    # the new partner now serves the customer with the 12 licenses
    sign_in(page, live_server.url, target_agent)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Customers").click()
    page.get_by_role("link", name="Fabrikam Ltd").click()
    moved = page.locator("table.list tbody tr").filter(has_text="Microsoft 365 E3")
    expect(moved).to_have_count(1)
    expect(moved).to_contain_text("12")
    page.screenshot(path=f"{SHOTS_DIR}/transfer-done.png", full_page=True)
    assert Subscription.objects.get(pk=e3.pk).status == Status.DELETED
    assert (
        Subscription.objects.filter(customer__partner=target, sku=e3.sku, quantity=12, status=Status.ACTIVE).count()
        == 1
    )

    # a second request filed by mistake is withdrawn before the current partner acts on it
    open_transfers(page)
    request = page.get_by_role("form", name="Request a transfer")
    request.get_by_label("Customer").select_option(label="Fabrikam Ltd")
    request.get_by_label("Current partner's PartnerID").fill(source_partner_id)
    request.get_by_label("Notification email").fill("it@fabrikam.example")
    request.get_by_role("button", name="Send transfer request").click()
    page.get_by_role("button", name="Withdraw request").click()
    expect(page.locator(".messages [role=status]").first).to_have_text(
        "Transfer request withdrawn: nothing was transferred."
    )
    expect(page.locator("dl.facts")).to_contain_text(
        re.compile(
            r"Withdrawn \(UTC\)\s*2026-11-25 \d\d:\d\d UTC by "
            r"Northwind Cloud"
        )
    )
    expect(page.get_by_role("button", name="Withdraw request")).to_have_count(0)
    assert sorted(TransferRequest.objects.values_list("status", flat=True)) == ["cancelled", "completed"]
