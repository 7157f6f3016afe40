"""The purchase and the license-removal paths in real Chromium, once in English and once in Traditional Chinese.

The browser says which language it prefers (its locale, so its Accept-Language header: en-US or zh-TW, which
Django maps to zh-hant), as a partner's browser does. Every button, label and heading is found through the
catalog (`with translation.override(lang): gettext(...)`), so the test follows the translations instead of
repeating them; a few words of Chinese are asserted as they are, so a missing or uncompiled catalog fails the
zh-hant runs. Texts made in Python (flash messages, statuses) are left to the apps' own catalogs: the test
checks their effects (the cart's count, the order's lines, the database) instead.

Needs the compiled catalogs: `make messages` (compilemessages) first.
"""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import translation
from playwright.sync_api import Page, expect

from subscriptions.models import BillingLine, Subscription
from tests import factories
from tests.browser.conftest import NOW, SHOTS_DIR, e3_subscription, make_offer, offer_card, props_value

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FULFILMENT_TIMEOUT_MS = 15_000
# The browser's own locale for each of the portal's languages, and words the portal shows in it.
BROWSER_LOCALES = {"en": "en-US", "zh-hant": "zh-TW"}
NAVIGATION_WORDS = {"en": ["Customers", "Subscriptions", "Renewals"], "zh-hant": ["客戶", "訂用帳戶", "續約"]}
LANGUAGES = pytest.mark.parametrize("lang", list(BROWSER_LOCALES))


def tr(lang: str, message: str, **values) -> str:
    """The catalog's text for `message` in `lang`, its placeholders filled."""
    with translation.override(lang):
        text = translation.gettext(message)
    return text % values if values else text


def tr_plural(lang: str, singular: str, plural: str, count: int, **values) -> str:
    with translation.override(lang):
        text = translation.ngettext(singular, plural, count)
    return text % {"count": count, **values}


def without_tags(text: str) -> str:
    return re.sub(r"<[^>]+>", "", text)


@pytest.fixture
def browser_page(browser):
    """A page in a fresh browser context per language, made by the test through `open_page(lang)`."""
    contexts = []

    def open_page(lang: str) -> Page:
        context = browser.new_context(locale=BROWSER_LOCALES[lang])
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


def assert_page_language(page: Page, lang: str) -> None:
    """<html lang> is the active language, and the main navigation reads in it."""
    expect(page.locator("html")).to_have_attribute("lang", lang)
    navigation = page.get_by_role("navigation", name=tr(lang, "Main"))
    for word in NAVIGATION_WORDS[lang]:
        expect(navigation.get_by_role("link", name=word, exact=True)).to_be_visible()


def sign_in(page: Page, base_url: str, lang: str, user) -> None:
    page.goto(f"{base_url}/")
    expect(page).to_have_url(re.compile(r"/login/"))
    expect(page.get_by_role("heading", level=1)).to_have_text(tr(lang, "Sign in to CSP Portal"))
    page.get_by_label(tr(lang, "Username")).fill(user.username)
    page.get_by_label(tr(lang, "Password")).fill(factories.PASSWORD)
    page.get_by_role("button", name=tr(lang, "Sign in")).click()
    name = user.get_short_name() or user.username
    expect(page.get_by_role("heading", level=1)).to_have_text(tr(lang, "Good to see you, %(name)s", name=name))
    assert_page_language(page, lang)


def open_customer(page: Page, lang: str, company: str) -> None:
    page.get_by_role("navigation", name=tr(lang, "Main")).get_by_role("link", name=tr(lang, "Customers")).click()
    page.get_by_role("link", name=company).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(company)


@LANGUAGES
def test_indirect_provider_buys_for_an_eu_customer_in_either_language(browser_page, live_server, task_worker, lang):
    # given an indirect provider with two indirect resellers, two more MPA-signed partners, a German customer
    provider = factories.PartnerFactory(kind="indirect_provider", name="Northwind Distribution", country="DE")
    adatum, litware = (
        factories.ResellerLinkFactory(provider=provider, reseller__name=name, reseller__country="DE").reseller
        for name in ("Adatum Reseller", "Litware Reseller")
    )
    tailspin = factories.PartnerFactory(
        kind="indirect_reseller", name="Tailspin Consulting", country="DE", mpa_signed=True
    )
    fourth = factories.PartnerFactory(kind="direct_bill", name="Fourth Coffee IT", country="AT", mpa_signed=True)
    agent = factories.staff(provider, "sales_agent")
    factories.CustomerFactory(partner=provider, company_name="Alpine Ski House GmbH", billing_country="DE")
    e3 = make_offer("Microsoft 365 E3")
    standard = make_offer("Microsoft 365 Business Standard", category="small_business")
    page = browser_page(lang)

    # the provider's sales agent signs in, opens the customer, then Add subscription
    sign_in(page, live_server.url, lang, agent)
    open_customer(page, lang, "Alpine Ski House GmbH")
    page.get_by_role("link", name=tr(lang, "Add subscription")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(tr(lang, "Add subscription"))
    assert_page_language(page, lang)

    # adds two offers to the cart
    for offer, term, quantity, in_cart in ((e3, "P1Y", "12", "1"), (standard, "P1M", "5", "2")):
        card = offer_card(page, offer.name)
        card.get_by_label(tr(lang, "Term and billing")).select_option(str(factories.availability(offer, term).pk))
        card.get_by_label(tr(lang, "Quantity")).fill(quantity)
        card.get_by_role("button", name=tr(lang, "Add to cart")).click()
        expect(page.locator("#cart-count")).to_have_text(in_cart)

    # reviews the cart: two lines, their quantities, the first charges (12 x 10.00 + 5 x 12.00)
    page.get_by_role("link", name=re.compile("^" + re.escape(tr(lang, "Review cart")))).first.click()
    expect(page.get_by_role("heading", name=tr(lang, "Cart"), exact=True)).to_be_visible()
    rows = page.locator("#cart-lines tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0).get_by_label(tr(lang, "Quantity of %(name)s", name=e3.name))).to_have_value("12")
    expect(rows.nth(1).get_by_label(tr(lang, "Quantity of %(name)s", name=standard.name))).to_have_value("5")
    expect(page.locator("#cart-total")).to_contain_text("180.00")
    assert_page_language(page, lang)

    # picks the indirect reseller and saves it
    reseller_select = page.get_by_label(tr(lang, "Indirect reseller"))
    expect(reseller_select.locator("option")).to_have_text(
        [
            tr(lang, "No indirect reseller"),
            f"Adatum Reseller ({adatum.partner_id})",
            f"Litware Reseller ({litware.partner_id})",
        ]
    )
    reseller_select.select_option(label=f"Litware Reseller ({litware.partner_id})")
    page.get_by_role("button", name=tr(lang, "Save reseller")).click()
    expect(page.get_by_label(tr(lang, "Indirect reseller"))).to_have_value(str(litware.pk))

    # declares two additional resellers by PartnerID: listed after the initial reseller, in order (K5)
    additional = page.locator("#additional-resellers")
    for count, partner in ((2, tailspin), (3, fourth)):
        additional.get_by_label(tr(lang, "Additional reseller PartnerID")).fill(partner.partner_id)
        additional.get_by_role("button", name=tr(lang, "Add reseller")).click()
        expect(page.locator("#additional-resellers ol li")).to_have_count(count)
    initial = without_tags(
        tr(
            lang,
            "Initial reseller: <strong>%(name)s (%(partner_id)s)</strong>",
            name=litware.name,
            partner_id=litware.partner_id,
        )
    )
    expect(page.locator("#additional-resellers ol li")).to_have_text(
        [re.compile("^" + re.escape(initial))]
        + [
            re.compile(
                "^"
                + re.escape(
                    tr(lang, "Additional reseller: %(name)s (%(partner_id)s)", name=p.name, partner_id=p.partner_id)
                )
            )
            for p in (tailspin, fourth)
        ]
    )

    # attests and purchases
    purchase = page.locator("#purchase")
    expect(purchase).to_contain_text(
        tr(lang, "You selected %(name)s: you act as an indirect partner.", name="Litware Reseller")
    )
    purchase.get_by_role("checkbox").check()
    page.screenshot(path=f"{SHOTS_DIR}/cart-{lang}.png", full_page=True)
    purchase.get_by_role("button", name=tr(lang, "Purchase")).click()

    # lands on the confirmation with the order number, then follows the order
    expect(page.get_by_role("heading", name=tr(lang, "Thank you: your order is placed"))).to_be_visible()
    order_number = page.locator("#order-number")
    expect(order_number).to_have_text(re.compile(r"^ORD-\d{6}$"))
    number = order_number.inner_text()
    assert_page_language(page, lang)
    page.get_by_role("link", name=tr(lang, "Follow this order")).click()
    expect(page.get_by_role("heading", name=tr(lang, "Order %(number)s", number=number))).to_be_visible()
    expect(props_value(page, tr(lang, "Indirect reseller"))).to_have_text(f"Litware Reseller ({litware.partner_id})")
    expect(props_value(page, tr(lang, "Additional resellers"))).to_have_text(
        f"Tailspin Consulting ({tailspin.partner_id}), Fourth Coffee IT ({fourth.partner_id})"
    )
    lines = page.locator("#order-lines tbody tr")
    expect(lines).to_have_count(2)
    expect(lines.filter(has_text=tr(lang, "Being created…"))).to_have_count(2)

    # the real worker fulfils the order; the page polls until every line links to its subscription
    task_worker.start()
    for name, quantity in (("Microsoft 365 E3", "12"), ("Microsoft 365 Business Standard", "5")):
        row = lines.filter(has_text=name)
        try:
            expect(row.locator("td").nth(7).get_by_role("link", name=name, exact=True)).to_be_visible(
                timeout=FULFILMENT_TIMEOUT_MS
            )
        except AssertionError as not_fulfilled:
            failures = task_worker.failures() or "no failure"
            raise AssertionError(f"{not_fulfilled}\nBackground worker: {failures}") from None
        expect(row.locator("td").nth(3)).to_have_text(quantity)
    expect(page.locator("#order-lines")).not_to_contain_text(tr(lang, "Being created…"))
    # Nothing is left for the worker: stopped, it no longer shares SQLite's in-memory test database with the
    # pages still to come (under load a page read while the worker polls can find the schema locked).
    assert not task_worker.failures()
    task_worker.stop()
    page.screenshot(path=f"{SHOTS_DIR}/order-fulfilled-{lang}.png", full_page=True)

    # the subscription shows its quantity, reseller of record and order
    lines.filter(has_text="Microsoft 365 E3").get_by_role("link", name="Microsoft 365 E3", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Microsoft 365 E3")
    expect(props_value(page, tr(lang, "Quantity"))).to_have_text("12")
    expect(props_value(page, tr(lang, "Reseller of record"))).to_have_text(f"Litware Reseller ({litware.partner_id})")
    expect(props_value(page, tr(lang, "Order"))).to_have_text(number)
    assert_page_language(page, lang)


@LANGUAGES
@pytest.mark.rule("Q2")
@pytest.mark.rule("Q3")
def test_q2_remove_licenses_inside_the_window_in_either_language(browser_page, live_server, contoso, lang):
    # given 10 licenses bought 2 days ago, on 2026-11-23 12:00 UTC: removable until 2026-11-30 12:00 UTC
    agent, customer = contoso
    sub = e3_subscription(customer, started=NOW - timedelta(days=2))
    page = browser_page(lang)
    sign_in(page, live_server.url, lang, agent)
    open_customer(page, lang, customer.company_name)
    page.locator("table.list").get_by_role("link", name="Microsoft 365 E3", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Microsoft 365 E3")
    assert_page_language(page, lang)
    expect(props_value(page, tr(lang, "Quantity"))).to_have_text("10")

    # the partner opens Change licenses from the command bar: the side panel lists what can be removed
    toolbar = page.get_by_role("toolbar", name=tr(lang, "Subscription actions"))
    toolbar.get_by_role("link", name=tr(lang, "Change licenses")).click()
    panel = page.locator(".side-panel.open")
    expect(panel).to_be_visible()
    expect(panel.locator("#licenses-to-reduce")).to_contain_text(
        tr_plural(lang, "%(count)s license can be removed now:", "%(count)s licenses can be removed now:", 10)
    )

    # asks for 7 and previews: the refund is shown before anything changes (3 x 10.00 x 28/30 days)
    panel.get_by_label(tr(lang, "New quantity")).fill("7")
    panel.get_by_role("button", name=tr(lang, "Preview")).click()
    preview = page.locator("#quantity-preview")
    expect(preview).to_contain_text(tr(lang, "%(old)s → %(new)s licenses.", old=10, new=7))
    expect(preview).to_contain_text(tr(lang, "Refund %(amount)s %(currency)s.", amount="28.00", currency="USD"))
    expect(preview.locator("li")).to_contain_text("2026-11-23 12:00 UTC")
    page.screenshot(path=f"{SHOTS_DIR}/quantity-preview-{lang}.png", full_page=True)
    assert Subscription.objects.get(pk=sub.pk).quantity == 10

    # confirms: 7 licenses, and the refund in Billing
    preview.get_by_role("button", name=tr(lang, "Change to %(new)s licenses", new=7)).click()
    expect(props_value(page, tr(lang, "Quantity"))).to_have_text("7")
    billing = page.locator("h2", has_text=re.compile("^" + re.escape(tr(lang, "Billing")) + "$")).locator(
        "xpath=following-sibling::table[1]"
    )
    expect(billing.locator("tbody tr")).to_have_count(1)
    expect(billing.locator("tbody tr td").last).to_have_text("-28.00 USD")
    assert_page_language(page, lang)
    sub.refresh_from_db()
    assert sub.quantity == 7
    assert list(BillingLine.objects.filter(subscription=sub).values_list("kind", "amount")) == [
        ("reduction_refund", Decimal("-28.00"))
    ]


def test_the_catalog_is_compiled_and_chinese():
    # the zh-hant runs above would pass in English against an uncompiled catalog: this says why they fail
    assert tr("zh-hant", "Customers") == "客戶"
    assert tr("zh-hant", "Add subscription") == "新增訂用帳戶"
    assert tr("en", "Add subscription") == "Add subscription"
