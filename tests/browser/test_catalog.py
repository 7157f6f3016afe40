"""The catalog ("Add subscription"): htmx filters kept in the URL, and offers the customer can't buy."""

import re

import pytest
from playwright.sync_api import Page, expect

from tests import factories
from tests.browser.conftest import make_offer, offer_card, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MICROSOFT_OFFERS = ["Azure plan", "Microsoft 365 Business Basic", "Microsoft 365 E3", "Microsoft 365 E5 Trial"]
ISV_OFFERS = ["Fabrikam Backup", "Fabrikam Insights Trial"]
GREYED = "rgb(97, 97, 97)"  # an unavailable offer's heading (portal.css: --muted)


@pytest.fixture
def catalog_customer():
    """A US commercial customer of a direct partner, and a catalog mixing publishers, billing types and categories."""
    partner = factories.PartnerFactory(kind="direct_bill", name="Contoso Direct")
    user = factories.staff(partner, "sales_agent")
    customer = factories.CustomerFactory(partner=partner, company_name="Wingtip Toys", billing_country="US")
    make_offer("Microsoft 365 E3", category="enterprise")
    make_offer("Microsoft 365 Business Basic", category="small_business")
    make_offer("Azure plan", billing_type="usage", category="enterprise", prices=[("P1M", "monthly", "0.00")])
    make_offer("Microsoft 365 E5 Trial", category="trial", trial=True, prices=[("P1M", "monthly", "0.00")])
    make_offer("Fabrikam Backup", isv=True, category="small_business")
    make_offer("Fabrikam Insights Trial", isv=True, category="trial", trial=True, prices=[("P1M", "monthly", "0.00")])
    return user, customer


def shown_offers(page: Page):
    return page.locator("#results article.offer h3")


def htmx_request_for(fragment: str):
    """Matches the catalog's own htmx GET (not a page load) whose URL holds `fragment`."""
    return lambda request: (
        request.headers.get("hx-request") == "true" and "/add-subscription/" in request.url and fragment in request.url
    )


def test_filters_swap_results_in_place_and_stay_in_the_url(page: Page, live_server, catalog_customer):
    user, customer = catalog_customer
    sign_in(page, live_server.url, user)
    page.goto(f"{live_server.url}/customers/{customer.pk}/add-subscription/")
    expect(page.get_by_role("heading", name="Add subscription")).to_be_visible()
    expect(shown_offers(page)).to_have_text(MICROSOFT_OFFERS + ISV_OFFERS)  # Microsoft first, then by name
    expect(page.locator("#results")).to_contain_text("6 offers")

    # Mark the document and the current results: a full reload would lose the first mark,
    # an htmx outerHTML swap of #results drops the second.
    page.evaluate("() => { window.__sameDocument = true; document.getElementById('results').dataset.old = '1'; }")

    publisher = page.get_by_role("group", name="Publisher")
    with page.expect_request(htmx_request_for("publisher=microsoft")):
        publisher.get_by_role("checkbox", name="Microsoft", exact=True).click()
    expect(shown_offers(page)).to_have_text(MICROSOFT_OFFERS)
    expect(page.locator("#results article.offer", has_text="Fabrikam")).to_have_count(0)
    expect(page.locator("#results[data-old]")).to_have_count(0)
    assert page.evaluate("() => window.__sameDocument === true"), "the filter reloaded the whole page"
    expect(page).to_have_url(re.compile(r"[?&]publisher=microsoft(&|$)"))

    category = page.get_by_role("group", name="Category")
    with page.expect_request(htmx_request_for("category=trial")):
        category.get_by_role("checkbox", name="Trial", exact=True).click()
    expect(shown_offers(page)).to_have_text(["Microsoft 365 E5 Trial"])
    expect(page.locator("#results")).to_contain_text("1 offer")
    expect(page).to_have_url(re.compile(r"[?&]category=trial(&|$)"))
    expect(page).to_have_url(re.compile(r"[?&]publisher=microsoft(&|$)"))
    assert page.evaluate("() => window.__sameDocument === true"), "the filter reloaded the whole page"

    # A reload (or a shared link) shows the same filters and the same results.
    page.reload()
    expect(page.get_by_role("heading", name="Add subscription")).to_be_visible()
    publisher = page.get_by_role("group", name="Publisher")
    category = page.get_by_role("group", name="Category")
    expect(publisher.get_by_role("checkbox", name="Microsoft", exact=True)).to_be_checked()
    expect(publisher.get_by_role("checkbox", name="Partner", exact=True)).not_to_be_checked()
    expect(category.get_by_role("checkbox", name="Trial", exact=True)).to_be_checked()
    expect(category.get_by_role("checkbox", name="Enterprise", exact=True)).not_to_be_checked()
    expect(shown_offers(page)).to_have_text(["Microsoft 365 E5 Trial"])

    # Back to every Microsoft category, then search by typing.
    category.get_by_role("checkbox", name="Trial", exact=True).click()
    expect(shown_offers(page)).to_have_text(MICROSOFT_OFFERS)
    with page.expect_request(htmx_request_for("q=business")):
        page.get_by_placeholder("Search offers").press_sequentially("business")
    expect(shown_offers(page)).to_have_text(["Microsoft 365 Business Basic"])
    expect(page).to_have_url(re.compile(r"[?&]q=business(&|$)"))
    expect(page).to_have_url(re.compile(r"[?&]publisher=microsoft(&|$)"))

    # A search that matches nothing says so.
    page.get_by_placeholder("Search offers").fill("no such offer")
    expect(page.locator("#results")).to_contain_text("No offer matches these filters.")
    expect(shown_offers(page)).to_have_count(0)


def test_offer_not_sold_in_the_customers_country_is_greyed_with_its_reason(page: Page, live_server):
    partner = factories.PartnerFactory(kind="direct_bill", name="Contoso Direct")
    user = factories.staff(partner, "sales_agent")
    customer = factories.CustomerFactory(partner=partner, company_name="Alpine Ski House GmbH", billing_country="DE")
    make_offer("Microsoft 365 E3")
    make_offer("Fabrikam Backup", isv=True, countries="US,CA")

    sign_in(page, live_server.url, user)
    page.goto(f"{live_server.url}/customers/{customer.pk}/add-subscription/")

    unavailable = offer_card(page, "Fabrikam Backup")
    expect(unavailable).to_have_class(re.compile(r"\bunavailable\b"))
    expect(unavailable.get_by_role("note")).to_have_text(
        "Unavailable: The publisher does not sell this offer in Germany."
    )
    # greyed: the muted grey, which keeps 4.5:1 on the card (axe's color-contrast)
    expect(unavailable.get_by_role("heading", name="Fabrikam Backup")).to_have_css("color", GREYED)
    button = unavailable.get_by_role("button", name="Add to cart")
    expect(button).to_be_disabled()
    expect(button).to_have_attribute("title", "The publisher does not sell this offer in Germany.")
    expect(unavailable.get_by_label("Quantity")).to_have_count(0)

    # The Microsoft offer next to it can be bought.
    available = offer_card(page, "Microsoft 365 E3")
    expect(available).not_to_have_class(re.compile(r"\bunavailable\b"))
    expect(available.get_by_role("note")).to_have_count(0)
    expect(available.get_by_role("button", name="Add to cart")).to_be_enabled()
    expect(available.get_by_role("heading", name="Microsoft 365 E3")).not_to_have_css("color", GREYED)
