"""The top bar's search in a browser (issue 12): typed in the top bar, the results grouped by kind, a result opened
with the keyboard alone (the Down arrow from the search box, then Enter), and a whole subscription id opening its page
at once; at a phone's width the box keeps its width and the results fit."""

import pytest
from playwright.sync_api import Page, expect

from tests import factories
from tests.browser.conftest import make_offer, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def world(clock):
    partner = factories.PartnerFactory(kind="direct_bill", name="Contoso Direct")
    agent = factories.staff(partner, "sales_agent")
    fabrikam = factories.CustomerFactory(partner=partner, company_name="Fabrikam Ltd", domain="fabrikam.example")
    adatum = factories.CustomerFactory(partner=partner, company_name="Adatum Corp", domain="adatum.example")
    copilot = make_offer("Microsoft 365 Copilot")
    e3 = make_offer("Microsoft 365 E3")
    on_copilot = factories.SubscriptionFactory(customer=adatum, sku=copilot)
    named = factories.SubscriptionFactory(customer=fabrikam, sku=e3, friendly_name="Copilot pilot seats")
    other = factories.PartnerFactory(name="Elsewhere Partners")
    factories.SubscriptionFactory(
        customer=factories.CustomerFactory(partner=other, company_name="Copilot Elsewhere"), sku=copilot
    )
    return {"agent": agent, "fabrikam": fabrikam, "adatum": adatum, "on_copilot": on_copilot, "named": named}


def search_from_top_bar(page: Page, text: str) -> None:
    box = page.locator(".global-search input[name=q]")
    box.click()
    box.fill(text)
    box.press("Enter")


def test_search_groups_results_and_opens_one_with_the_keyboard(page: Page, live_server, world):
    sign_in(page, live_server.url, world["agent"])
    search_from_top_bar(page, "copilot")
    expect(page).to_have_url(f"{live_server.url}/search/?q=copilot")
    results = page.locator("[data-search-results]")
    subscriptions = results.locator("section[aria-labelledby=search-subscriptions]")
    expect(subscriptions.locator("a[data-result]")).to_have_count(2)
    # by customer, then name: Adatum's subscription of the offer, then Fabrikam's named one; each with its customer
    expect(subscriptions.locator("tbody tr").nth(0)).to_contain_text("Adatum Corp")
    expect(subscriptions.locator("tbody tr").nth(1)).to_contain_text("Copilot pilot seats")
    expect(subscriptions.locator("tbody tr").nth(1)).to_contain_text("Fabrikam Ltd")
    expect(results.locator("section[aria-labelledby=search-offers]")).to_contain_text("Microsoft 365 Copilot")
    expect(page.locator("body")).not_to_contain_text("Copilot Elsewhere")  # T3

    # the search box has the focus; Down goes to the first result, Down again to the next, Up back; Enter opens it
    box = page.locator("[data-search-input]")
    expect(box).to_be_focused()
    page.wait_for_load_state()  # portal.js is deferred: it listens once the page has loaded
    page.keyboard.press("ArrowDown")
    expect(subscriptions.locator("a[data-result]").nth(0)).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(subscriptions.locator("a[data-result]").nth(1)).to_be_focused()
    page.keyboard.press("ArrowUp")
    page.keyboard.press("ArrowUp")
    expect(box).to_be_focused()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    named = world["named"]
    expect(page).to_have_url(f"{live_server.url}/customers/{named.customer_id}/subscriptions/{named.pk}/")
    expect(page.locator("h1")).to_contain_text("Copilot pilot seats")


def test_a_whole_id_opens_the_subscription_at_once(page: Page, live_server, world):
    sign_in(page, live_server.url, world["agent"])
    subscription = world["on_copilot"]
    search_from_top_bar(page, str(subscription.pk))
    expect(page).to_have_url(f"{live_server.url}/customers/{subscription.customer_id}/subscriptions/{subscription.pk}/")


def test_too_short_is_refused_and_kept(page: Page, live_server, world):
    sign_in(page, live_server.url, world["agent"])
    search_from_top_bar(page, "c")
    expect(page.locator("#search-error")).to_be_visible()
    expect(page.locator("[data-search-input]")).to_have_value("c")
    expect(page.locator("[data-search-input]")).to_have_attribute("aria-invalid", "true")


def test_results_fit_a_phone(page: Page, live_server, world):
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, live_server.url, world["agent"])
    page.goto(f"{live_server.url}/search/?q=copilot")
    expect(page.locator("[data-search-results] a[data-result]").first).to_be_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the results page is {width} px wide at 390"
