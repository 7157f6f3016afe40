"""The whole purchase, as an indirect provider's sales agent, for an EU customer, fulfilled by the real worker."""

import re

import pytest
from playwright.sync_api import Page, expect

from tests import factories
from tests.browser.conftest import SHOTS_DIR, make_offer, offer_card, props_value

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Fulfilment: the worker drains the queue every 0.5 s and the order page polls every 2 s.
FULFILMENT_TIMEOUT_MS = 15_000


def test_indirect_provider_buys_for_an_eu_customer_with_additional_resellers(page: Page, live_server, task_worker):
    # given an indirect provider with three indirect resellers, two more MPA-signed partners,
    # a German customer and a few offers
    provider = factories.PartnerFactory(kind="indirect_provider", name="Northwind Distribution", country="DE")
    adatum, litware, proseware = (
        factories.ResellerLinkFactory(provider=provider, reseller__name=name, reseller__country="DE").reseller
        for name in ("Adatum Reseller", "Litware Reseller", "Proseware Reseller")
    )
    tailspin = factories.PartnerFactory(
        kind="indirect_reseller", name="Tailspin Consulting", country="DE", mpa_signed=True
    )
    fourth = factories.PartnerFactory(kind="direct_bill", name="Fourth Coffee IT", country="AT", mpa_signed=True)
    agent = factories.staff(provider, "sales_agent")
    factories.CustomerFactory(partner=provider, company_name="Alpine Ski House GmbH", billing_country="DE")
    e3 = make_offer("Microsoft 365 E3")
    standard = make_offer("Microsoft 365 Business Standard", category="small_business")
    make_offer("Microsoft 365 Business Basic", category="small_business")

    # the provider's sales agent signs in through the login page
    page.goto(f"{live_server.url}/")
    expect(page).to_have_url(re.compile(r"/login/"))
    page.get_by_label("Username").fill(agent.username)
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Good to see you, Pat")
    expect(page.locator("main")).to_contain_text("Northwind Distribution · Indirect provider")

    # opens the customer, then Add subscription
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Customers").click()
    page.get_by_role("link", name="Alpine Ski House GmbH").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Alpine Ski House GmbH")
    page.get_by_role("link", name="Add subscription").click()
    expect(page.get_by_role("heading", name="Add subscription")).to_be_visible()
    expect(page.locator(".commandbar")).to_contain_text("Commercial customer in Germany (EU/EFTA)")

    # adds two offers to the cart
    card = offer_card(page, "Microsoft 365 E3")
    card.get_by_label("Term and billing").select_option(str(factories.availability(e3, "P1Y").pk))
    card.get_by_label("Quantity").fill("12")
    card.get_by_role("button", name="Add to cart").click()
    expect(card.locator(".feedback")).to_contain_text("Added Microsoft 365 E3 to the cart (12 in the cart).")
    expect(page.locator("#cart-count")).to_have_text("1")

    card = offer_card(page, "Microsoft 365 Business Standard")
    card.get_by_label("Term and billing").select_option(str(factories.availability(standard, "P1M").pk))
    card.get_by_label("Quantity").fill("5")
    card.get_by_role("button", name="Add to cart").click()
    expect(card.locator(".feedback")).to_contain_text(
        "Added Microsoft 365 Business Standard to the cart (5 in the cart)."
    )
    expect(page.locator("#cart-count")).to_have_text("2")

    # reviews the cart
    page.get_by_role("link", name=re.compile(r"^Review cart")).first.click()
    expect(page.get_by_role("heading", name="Cart", exact=True)).to_be_visible()
    rows = page.locator("#cart-lines tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("Microsoft 365 E3")
    expect(rows.nth(0).get_by_label("Quantity of Microsoft 365 E3")).to_have_value("12")
    expect(rows.nth(1)).to_contain_text("Microsoft 365 Business Standard")
    expect(rows.nth(1).get_by_label("Quantity of Microsoft 365 Business Standard")).to_have_value("5")
    # first charges: 12 x 10.00 (first month of a yearly term billed monthly) + 5 x 12.00
    expect(page.locator("#cart-total")).to_contain_text("180.00")

    # picks the indirect reseller
    reseller_select = page.get_by_label("Indirect reseller")
    expect(reseller_select.locator("option")).to_have_text(
        [
            "No indirect reseller",
            f"Adatum Reseller ({adatum.partner_id})",
            f"Litware Reseller ({litware.partner_id})",
            f"Proseware Reseller ({proseware.partner_id})",
        ]
    )
    reseller_select.select_option(label=f"Litware Reseller ({litware.partner_id})")
    page.get_by_role("button", name="Save reseller").click()
    expect(page.get_by_role("status")).to_have_text("Reseller set to Litware Reseller.")
    expect(page.get_by_label("Indirect reseller")).to_have_value(str(litware.pk))

    # declares two additional resellers by PartnerID
    additional = page.locator("#additional-resellers")
    for partner in (tailspin, fourth):
        additional.get_by_label("Additional reseller PartnerID").fill(partner.partner_id)
        additional.get_by_role("button", name="Add reseller").click()
        expect(page.get_by_role("status")).to_have_text(f"Declared {partner.name} as an additional reseller.")
    # listed as declared: the initial reseller first, then the additional ones in order (K5)
    expect(page.locator("#additional-resellers ol li")).to_have_text(
        [
            re.compile(rf"^Initial reseller: Litware Reseller \({litware.partner_id}\)"),
            re.compile(rf"^Additional reseller: Tailspin Consulting \({tailspin.partner_id}\)"),
            re.compile(rf"^Additional reseller: Fourth Coffee IT \({fourth.partner_id}\)"),
        ]
    )

    # attests and purchases
    purchase = page.locator("#purchase")
    expect(purchase).to_contain_text("You selected Litware Reseller: you act as an indirect partner.")
    purchase.get_by_role("checkbox").check()
    page.screenshot(path=f"{SHOTS_DIR}/cart-with-resellers.png", full_page=True)
    purchase.get_by_role("button", name="Purchase").click()

    # lands on the confirmation with the order number
    expect(page.get_by_role("heading", name="Thank you: your order is placed")).to_be_visible()
    order_number = page.locator("#order-number")
    expect(order_number).to_have_text(re.compile(r"^ORD-\d{6}$"))
    number = order_number.inner_text()
    page.get_by_role("link", name="Follow this order").click()

    # the order page: in progress until the background worker runs
    expect(page.get_by_role("heading", name=f"Order {number}")).to_be_visible()
    expect(props_value(page, "Attestation")).to_have_text("Acting as an indirect partner")
    expect(props_value(page, "Indirect reseller")).to_have_text(f"Litware Reseller ({litware.partner_id})")
    expect(props_value(page, "Additional resellers")).to_have_text(
        f"Tailspin Consulting ({tailspin.partner_id}), Fourth Coffee IT ({fourth.partner_id})"
    )
    lines = page.locator("#order-lines tbody tr")
    expect(lines).to_have_count(2)
    expect(page.locator("#order-status")).to_have_text("In progress")
    expect(lines.filter(has_text="Being created…")).to_have_count(2)

    task_worker.start()

    # the page polls: every line becomes Fulfilled and links to its subscription
    try:
        expect(page.locator("#order-status")).to_have_text("Completed", timeout=FULFILMENT_TIMEOUT_MS)
    except AssertionError as not_completed:
        raise AssertionError(f"{not_completed}\nBackground worker: {task_worker.failures() or 'no failure'}") from None
    for name, quantity in (("Microsoft 365 E3", "12"), ("Microsoft 365 Business Standard", "5")):
        row = lines.filter(has_text=name)
        expect(row.locator("td").nth(3)).to_have_text(quantity)
        expect(row.locator("td").nth(6)).to_contain_text("Fulfilled", timeout=FULFILMENT_TIMEOUT_MS)
        expect(row.locator("td").nth(7).get_by_role("link", name=name, exact=True)).to_be_visible()
    expect(page.locator("#order-lines")).not_to_contain_text("Being created")
    page.screenshot(path=f"{SHOTS_DIR}/order-fulfilled.png", full_page=True)

    # the subscription shows the offer and the reseller of record
    lines.filter(has_text="Microsoft 365 E3").get_by_role("link", name="Microsoft 365 E3", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Microsoft 365 E3")
    expect(props_value(page, "Offer")).to_contain_text(f"Microsoft 365 E3 ({e3.sku_id}) · Microsoft")
    expect(props_value(page, "Quantity")).to_have_text("12")
    expect(props_value(page, "Reseller of record")).to_have_text(f"Litware Reseller ({litware.partner_id})")
    expect(props_value(page, "Order")).to_have_text(number)
    assert not task_worker.failures()
