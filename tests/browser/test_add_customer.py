"""Adding a customer in the browser (issue 12), as a partner's sales agent: the Customers page's button, the form with
one refusal first (a domain already the partner's), then the new customer's empty subscriptions page."""

import re

from playwright.sync_api import Page, expect

from portal.models import Customer
from subscriptions.models import AuditEntry

from .conftest import sign_in


def test_a_sales_agent_adds_a_customer_and_lands_on_its_empty_subscriptions_page(page: Page, live_server, contoso):
    agent, existing = contoso
    Customer.objects.filter(pk=existing.pk).update(domain="fabrikamltd.onmicrosoft.com")
    sign_in(page, live_server.url, agent)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Customers").click()
    page.get_by_role("link", name="Add customer").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Add customer")

    form = page.get_by_role("form", name="Add customer")
    form.get_by_label("Company name").fill("Northwind Traders GmbH")
    form.get_by_label("Primary domain").fill("fabrikamltd")  # the partner's own customer has it
    form.get_by_label("Address line 1").fill("Hauptstrasse 1")
    form.get_by_label("City").fill("Berlin")
    form.get_by_label("Postal code").fill("10115")
    form.get_by_label("Billing country").select_option("DE")
    form.get_by_label("First name").fill("Anna")
    form.get_by_label("Last name").fill("Schmidt")
    form.get_by_label(re.compile(r"^E-mail")).fill("anna@northwind.example")
    form.get_by_label("The customer has accepted the Microsoft Customer Agreement").check()
    form.get_by_label("Accepted by (name)").fill("Anna Schmidt")
    form.get_by_label("Accepted by (e-mail)").fill("anna@northwind.example")
    form.get_by_label("Date accepted (UTC)").fill("2026-11-24")
    form.get_by_role("button", name="Add customer").click()

    # refused: the domain is already the partner's customer; what was typed stays, nothing was added
    expect(page.get_by_role("alert").first).to_contain_text("Nothing was added")
    expect(page.get_by_role("link", name=f"Open {existing.company_name}")).to_be_visible()
    expect(page.get_by_label("Company name")).to_have_value("Northwind Traders GmbH")
    assert not Customer.objects.filter(company_name="Northwind Traders GmbH").exists()

    # with a domain of its own, it is added
    page.get_by_label("Primary domain").fill("northwindtraders")
    page.get_by_label("The customer has accepted the Microsoft Customer Agreement").check()
    page.get_by_role("form", name="Add customer").get_by_role("button", name="Add customer").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Northwind Traders GmbH")
    expect(page.get_by_role("link", name="Add subscription").first).to_be_visible()
    added = Customer.objects.get(company_name="Northwind Traders GmbH")
    assert (added.domain, added.billing_country, added.is_eu_efta) == ("northwindtraders.onmicrosoft.com", "DE", True)
    assert AuditEntry.objects.filter(customer=added, action="customer.created").count() == 1
    expect(page).to_have_url(re.compile(rf"/customers/{added.pk}/subscriptions/$"))
