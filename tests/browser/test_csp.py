"""The Content-Security-Policy in real Chromium: the main pages, used like a partner and an operator use
them (side panels opened, a catalog filter applied, an offer added to the cart, the Django admin), are
sent the portal's policy and break none of it.

Chromium reports every refused script, style, handler or eval as a `securitypolicyviolation` event and a
console message; both are recorded across navigations, and none may occur. The data is the demo's
(`seed_demo`): every subscription state, orders pending and completed, renewals, trials.
"""

import re
from urllib.parse import urlsplit

import pytest
from django.contrib import admin
from django.core.management import call_command
from playwright.sync_api import Page, expect

from portal import demo
from portal.models import Membership
from subscriptions.models import AuditEntry, Subscription
from subscriptions.states import Status
from tests import factories
from tests.browser.conftest import open_panel

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DIRECTIVES = [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
]

# Runs in every document before its own scripts (Playwright injects it outside the page's policy).
RECORD_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (e) => window.__cspViolation(
  `${e.effectiveDirective} refused ${e.blockedURI || "inline"} at ${e.sourceFile || document.URL}:${e.lineNumber}`
  + (e.sample ? ` (${e.sample})` : "")));
"""


class PolicyWatch:
    """What Chromium refused, and the policy every page came with."""

    def __init__(self, page: Page):
        self.violations: list[str] = []
        self.documents: list[tuple[str, int, str | None]] = []
        page.expose_function("__cspViolation", lambda text: self.violations.append(f"{page.url}: {text}"))
        page.add_init_script(RECORD_VIOLATIONS)
        page.on("console", self._console)
        page.on("response", self._response)

    def prove_it_records(self, page: Page) -> None:
        """An inline <style> added on purpose must be reported, or an empty list below would prove nothing."""
        page.evaluate(
            "() => document.head.append(Object.assign(document.createElement('style'), {textContent: 'p {}'}))"
        )
        for _ in range(50):
            if len(self.violations) == 2:  # the event and the console message
                break
            page.wait_for_timeout(100)
        assert len(self.violations) == 2 and all("style-src" in v for v in self.violations), self.violations
        self.violations.clear()

    def _console(self, message) -> None:
        if "Content Security Policy" in message.text:
            self.violations.append(f"console: {message.text}")

    def _response(self, response) -> None:
        if response.request.resource_type == "document":
            self.documents.append((response.url, response.status, response.headers.get("content-security-policy")))


def visit(page: Page, url: str, heading: str | re.Pattern) -> None:
    page.goto(url)
    expect(page.get_by_role("heading", level=1)).to_have_text(heading)


def test_the_main_pages_are_sent_the_policy_and_break_none_of_it(page: Page, live_server):
    # given the demo's data, signed in as its direct-bill partner's admin agent
    call_command("seed_demo", verbosity=0)
    agent = Membership.objects.get(
        partner__partner_id=demo.DIRECT_BILL_PARTNER_ID, is_admin_agent=True, user__is_staff=False
    ).user  # not the demo's partner admin "staff"
    partner = agent.membership.partner
    # a paid subscription that can be upgraded, and a trial that can be converted (both are in the demo)
    upgradable = Subscription.objects.filter(
        customer__partner=partner, status=Status.ACTIVE, is_trial=False, sku__upgrade_paths__supported=True
    ).select_related("customer", "sku")
    subscription = upgradable.order_by("customer__company_name", "sku__name").first()
    trial = (
        Subscription.objects.filter(
            customer__partner=partner, status=Status.ACTIVE, is_trial=True, sku__product__publisher__is_microsoft=True
        )
        .select_related("customer")
        .first()
    )
    assert None not in (subscription, trial), "the demo no longer has what this test visits"
    customer = subscription.customer
    base = live_server.url
    watch = PolicyWatch(page)

    # when the agent signs in and goes through the portal
    page.goto(f"{base}/login/")
    watch.prove_it_records(page)
    page.get_by_label("Username").fill(agent.username)
    page.get_by_label("Password").fill(demo.DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile(r"^Good to see you"))

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Customers").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Customers")
    page.get_by_role("link", name=customer.company_name).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(customer.company_name)

    # the subscription page with each side panel opened (two of them load with htmx), then closed
    page.locator(f"table.list a[href$='/subscriptions/{subscription.pk}/']").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(subscription.display_name)
    for name in ("Change licenses", "Manage renewal", "Check upgrades"):
        open_panel(page, name)
        page.keyboard.press("Escape")
        expect(page.locator(".side-panel.open")).to_have_count(0)
    page.goto(f"{base}/customers/{trial.customer_id}/subscriptions/{trial.pk}/")
    expect(open_panel(page, "Convert trial").locator("#convert-trial")).to_be_visible()

    # the catalog with a filter applied (htmx swaps the results), and an offer added to the cart (htmx post)
    visit(page, f"{base}/customers/{customer.pk}/add-subscription/", "Add subscription")
    page.get_by_role("group", name="Publisher").get_by_role("checkbox", name="Microsoft", exact=True).click()
    expect(page).to_have_url(re.compile(r"[?&]publisher=microsoft(&|$)"))
    offer = page.locator("#results article.offer:not(.unavailable)").first
    offer.get_by_role("button", name="Add to cart").click()
    expect(offer.locator(".feedback [role=status]")).to_contain_text("Review cart")
    # the cart, purchased: no worker runs, so the order stays pending and its page polls its lines with htmx
    visit(page, f"{base}/customers/{customer.pk}/cart/", "Cart")
    page.locator("#purchase-form input[name=attest]").check()
    page.get_by_role("button", name="Purchase").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Thank you: your order is placed")
    with page.expect_response(lambda r: "/orders/" in r.url and r.request.headers.get("hx-request") == "true"):
        page.get_by_role("link", name="Follow this order").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile(r"^Order "))

    visit(page, f"{base}/customers/{customer.pk}/orders/", "Order history")
    visit(page, f"{base}/orders/", "Orders")
    visit(page, f"{base}/subscriptions/", "Subscriptions")
    visit(page, f"{base}/renewals/", "Renewals")
    visit(page, f"{base}/transfers/", "Transfers")
    visit(page, f"{base}/customers/00000000-0000-0000-0000-000000000000/", "Not found")

    # and a partner's admin uses the Django admin (the demo's "staff", scoped to Northwind; its subscription
    # actions are offered to it, not to the operator): index, a changelist, a record with the portal's markup
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("Username")).to_be_visible()
    staff = Membership.objects.get(user__username="staff")
    page.goto(f"{base}/admin/login/")
    page.get_by_label("Username").fill("staff")
    page.get_by_label("Password").fill(demo.DEMO_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(str(admin.site.index_title))
    page.locator("a[href='/admin/subscriptions/subscription/']").first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile(r"^Select subscription to "))
    page.locator("input.action-select").first.check()
    expect(page.locator(".action-counter")).to_contain_text("1 of")
    entry = AuditEntry.objects.filter(partner=staff.partner).exclude(after={}).first()
    page.goto(f"{base}/admin/subscriptions/auditentry/{entry.pk}/change/")
    expect(page.locator(".field-after_json pre")).to_be_visible()  # portal/admin.py's markup, styled by admin.css
    # the platform operator belongs to no partner: the portal refuses it (403), and "Go back" (a script, not a
    # link) goes back
    page.context.clear_cookies()
    operator = factories.UserFactory(is_staff=True, is_superuser=True)
    page.goto(f"{base}/admin/login/")
    page.get_by_label("Username").fill(operator.username)
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(str(admin.site.index_title))
    page.goto(f"{base}/customers/")
    expect(page.get_by_role("heading", level=1)).to_have_text("You can't do that")
    page.get_by_text("Go back").click()

    # then every page came with the portal's policy (redirects included)
    assert {urlsplit(url).path for url, _, _ in watch.documents} >= {
        "/login/",
        "/",
        "/customers/",
        f"/customers/{customer.pk}/subscriptions/",
        f"/customers/{customer.pk}/subscriptions/{subscription.pk}/",
        f"/customers/{customer.pk}/add-subscription/",
        f"/customers/{customer.pk}/cart/",
        "/orders/",
        "/renewals/",
        "/transfers/",
        "/admin/",
        "/admin/subscriptions/subscription/",
    }
    without = [
        (url, status, policy)
        for url, status, policy in watch.documents
        if policy is None or sorted(p.strip() for p in policy.split(";")) != sorted(DIRECTIVES)
    ]
    assert without == []
    # and Chromium refused nothing on any of them
    assert watch.violations == []
    # and "Go back" went back
    expect(page).to_have_url(f"{base}/admin/")
