"""The keyboard alone (issue 12): a sales agent buys a subscription and then removes some of its licenses with Tab,
Shift+Tab, Enter, Space and typing, never a click: from the customer's Subscriptions page through the catalog, the
cart, the attestation and the purchase, the order fulfilled by the real background worker, to the new subscription's
Change licenses panel. Every control reached by Tab shows where the focus is (:focus-visible, an outline).

The controls are found by their place in the page (their form, their URL), not by their words: the same walk runs in
English and in Traditional Chinese."""

import re

import pytest
from playwright.sync_api import Locator, Page, expect

from catalog.models import Order
from subscriptions.models import Subscription
from tests import factories
from tests.browser.conftest import make_offer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BROWSER_LOCALES = {"en": "en-US", "zh-hant": "zh-TW"}
FULFILMENT_TIMEOUT_MS = 15_000
MOST_TABS = 120  # more Tab presses than any of these pages has stops before the control sought

# The focused element shows it: it matches :focus-visible and draws an outline (or a focus ring's box shadow).
FOCUS_SHOWN = """(el) => {
  const style = getComputedStyle(el);
  return el.matches(":focus-visible")
    && ((style.outlineStyle !== "none" && parseFloat(style.outlineWidth) > 0) || style.boxShadow !== "none");
}"""


@pytest.fixture(params=list(BROWSER_LOCALES))
def language(request):
    return request.param


@pytest.fixture
def browser_context_args(browser_context_args, language):
    return {**browser_context_args, "locale": BROWSER_LOCALES[language]}


def tab_to(page: Page, target: Locator, *, backwards: bool = False) -> None:
    """Presses Tab (Shift+Tab backwards) until `target` has the focus, and checks that the focus is visible there."""
    page.wait_for_load_state()  # a page just opened: its deferred scripts (htmx, portal.js) listen once it has loaded
    expect(target).to_be_visible()
    element = target.element_handle()
    for _ in range(MOST_TABS):
        if page.evaluate("(el) => el === document.activeElement", element):
            assert element.evaluate(FOCUS_SHOWN), f"the focus on {target} is not visible"
            return
        page.keyboard.press("Shift+Tab" if backwards else "Tab")
    raise AssertionError(f"{target} is not reachable with {'Shift+' if backwards else ''}Tab")


def type_over(page: Page, text: str) -> None:
    """Replaces what the focused field holds with `text`, typed."""
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.type(text)


def test_buy_then_remove_licenses_with_the_keyboard_alone(page: Page, live_server, clock, task_worker, language):
    partner = factories.PartnerFactory(kind="direct_bill", name="Contoso Direct")
    agent = factories.staff(partner, "sales_agent")
    customer = factories.CustomerFactory(partner=partner, company_name="Fabrikam Ltd", billing_country="US")
    e3 = make_offer("Microsoft 365 E3", prices=[("P1Y", "monthly", "10.00")])
    make_offer("Microsoft 365 Business Basic", category="small_business")

    # signs in: typing, Tab, Enter
    page.goto(f"{live_server.url}/login/")
    tab_to(page, page.locator("input[name=username]"))
    page.keyboard.type(agent.username)
    page.keyboard.press("Tab")
    page.keyboard.type(factories.PASSWORD)
    page.keyboard.press("Enter")
    expect(page.locator("html")).to_have_attribute("lang", language)

    # Customers, then the customer, then Add subscription on its Subscriptions page
    tab_to(page, page.locator("nav.leftnav a[href='/customers/']"))
    page.keyboard.press("Enter")
    tab_to(page, page.locator(f"main a[href='/customers/{customer.pk}/subscriptions/']").first)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"/customers/{customer.pk}/subscriptions/$"))
    tab_to(page, page.locator(".commandbar a[href$='/add-subscription/']"))
    page.keyboard.press("Enter")

    # the catalog: 12 licenses of Microsoft 365 E3 into the cart
    card = page.locator(f"article.offer[data-sku='{e3.sku_id}']")
    tab_to(page, card.locator("input[name=quantity]"))
    type_over(page, "12")
    tab_to(page, card.locator("button[type=submit]"))
    page.keyboard.press("Enter")
    expect(card.locator(".feedback [role=status]")).to_be_visible()
    expect(page.locator("#cart-count")).to_have_text("1")

    # Review cart, back up the page (Shift+Tab) in the command bar
    tab_to(page, page.locator(".commandbar a[href$='/cart/']"), backwards=True)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/cart/$"))
    expect(page.locator("#cart-lines tbody tr")).to_have_count(1)

    # attests (Space on the checkbox) and purchases (Enter)
    attest = page.locator("#purchase-form input[name=attest]")
    tab_to(page, attest)
    page.keyboard.press("Space")
    expect(attest).to_be_checked()
    tab_to(page, page.locator("#purchase-form button[type=submit]"))
    page.keyboard.press("Enter")

    # the confirmation: follows the order, which the background worker fulfils while the page polls
    expect(page.locator("#order-number")).to_have_text(re.compile(r"^ORD-\d{6}$"))
    with task_worker.lock:
        order = Order.objects.get(customer=customer)
    tab_to(page, page.locator(f"main a[href$='/orders/{order.pk}/']"))
    page.keyboard.press("Enter")
    # the order page drawn (its request answered) before the worker starts: a request in flight as the worker starts
    # would run beside it, unserialised, on the in-memory SQLite database they share
    expect(page.locator("#order-status.badge-pending")).to_be_visible()
    page.wait_for_load_state()
    task_worker.start()
    try:
        expect(page.locator("#order-status.badge-completed")).to_be_visible(timeout=FULFILMENT_TIMEOUT_MS)
    except AssertionError as not_completed:
        raise AssertionError(f"{not_completed}\nBackground worker: {task_worker.failures() or 'no failure'}") from None
    with task_worker.lock:
        bought = Subscription.objects.get(customer=customer, sku=e3)
    assert bought.quantity == 12

    # the new subscription's page: Change licenses opens its side panel, 12 become 7 after a preview
    tab_to(page, page.locator(f"#order-lines a[href$='/subscriptions/{bought.pk}/']"))
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"/subscriptions/{bought.pk}/$"))
    tab_to(page, page.locator(".commandbar a[data-panel-open='panel-quantity']"))
    page.keyboard.press("Enter")
    panel = page.locator("#panel-quantity.open")
    expect(panel).to_be_visible()
    expect(panel.locator("h2")).to_be_focused()  # the focus moved into the panel
    tab_to(page, panel.locator("input[name=quantity]"))
    type_over(page, "7")
    page.keyboard.press("Enter")  # submits the preview form
    preview = panel.locator("#quantity-preview")
    expect(preview).to_contain_text("12 → 7", timeout=15_000)  # an htmx round trip, slow on a loaded machine
    with task_worker.lock:
        assert Subscription.objects.get(pk=bought.pk).quantity == 12  # a preview changes nothing
    tab_to(page, preview.locator("button[type=submit]"))
    page.keyboard.press("Enter")

    expect(page.locator(".messages [role=status]")).to_be_visible()
    with task_worker.lock:
        assert Subscription.objects.get(pk=bought.pk).quantity == 7
    assert not task_worker.failures()
