"""Signing in and out through the real pages."""

import re

import pytest
from playwright.sync_api import Page, expect

from tests import factories
from tests.browser.conftest import fill_sign_in_form

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_anonymous_visit_signs_in_lands_on_home_and_signs_out(page: Page, live_server):
    partner = factories.PartnerFactory(kind="direct_bill", name="Contoso Direct")
    user = factories.staff(partner, "sales_agent")

    # An anonymous visit to Home is sent to the sign-in page, remembering where it was going.
    page.goto(f"{live_server.url}/")
    expect(page).to_have_url(re.compile(r"/login/\?next=/$"))
    expect(page.get_by_role("heading", name="Sign in to CSP Portal")).to_be_visible()

    fill_sign_in_form(page, user.username, factories.PASSWORD)

    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Good to see you, Pat")
    expect(page.locator("main")).to_contain_text("Contoso Direct · Direct-bill partner")
    expect(page.locator(".user-partner")).to_have_text("Contoso Direct · Sales agent")
    expect(page.locator(".user-partner")).to_have_attribute("title", re.compile(r"^PartnerID \d+$"))

    page.get_by_role("button", name="Sign out").click()

    expect(page).to_have_url(f"{live_server.url}/login/")
    expect(page.get_by_role("heading", name="Sign in to CSP Portal")).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_have_count(0)
    # The session is really over: Home asks to sign in again.
    page.goto(f"{live_server.url}/")
    expect(page).to_have_url(re.compile(r"/login/\?next=/$"))


def test_wrong_password_stays_on_sign_in_with_a_message(page: Page, live_server):
    user = factories.staff(factories.PartnerFactory(), "sales_agent")

    page.goto(f"{live_server.url}/login/")
    fill_sign_in_form(page, user.username, "not-the-password")

    expect(page.get_by_role("alert")).to_have_text("The username or password is not right. Try again.")
    expect(page.get_by_label("Username")).to_have_value(user.username)
    expect(page.get_by_role("button", name="Sign out")).to_have_count(0)
