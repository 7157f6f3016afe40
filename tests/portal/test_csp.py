"""Content-Security-Policy: every response carries the portal's policy, and no template or HTML built in
Python needs more than it allows (no inline script or style, no event-handler attribute, no javascript:
URL, no hx-on, which htmx runs with eval).

The browser test (tests/browser/test_csp.py) proves the same in Chromium on the main pages.
"""

import ast
import html
import json
import re
from pathlib import Path

import pytest
from django.test import Client
from django.urls import path

import portal.urls
from tests import factories

ROOT = Path(__file__).resolve().parents[2]
POLICY = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}


def policy_of(response) -> dict[str, list[str]]:
    header = response.headers["Content-Security-Policy"]
    return {name: values for name, *values in (d.split() for d in header.split(";") if d.strip())}


# ---------------------------------------------------------------- the header


@pytest.mark.django_db
def test_the_sign_in_page_and_a_signed_in_page_carry_the_policy(client, direct_partner):
    # when an anonymous visitor opens the sign-in page
    response = client.get("/login/")
    # then it carries exactly the portal's policy, and nothing is report-only
    assert response.status_code == 200
    assert policy_of(response) == POLICY
    assert "Content-Security-Policy-Report-Only" not in response.headers

    # when a partner's staff member opens Home
    client.force_login(factories.staff(direct_partner, "sales_agent"))
    response = client.get("/")
    assert response.status_code == 200
    assert policy_of(response) == POLICY
    # and htmx is told not to inject its indicator <style>, which the policy would refuse
    config = re.search(r"""<meta name="htmx-config" content='([^']*)'>""", response.content.decode())
    assert json.loads(html.unescape(config.group(1)))["includeIndicatorStyles"] is False


@pytest.mark.django_db
def test_error_pages_carry_the_policy(client, direct_partner):
    # a page that does not exist (404) and a form without its CSRF token (403)
    client.force_login(factories.staff(direct_partner, "sales_agent"))
    missing = client.get("/customers/00000000-0000-0000-0000-000000000000/")
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(factories.staff(direct_partner, "sales_agent"))
    refused = strict.post("/logout/")
    assert (missing.status_code, refused.status_code) == (404, 403)
    assert policy_of(missing) == policy_of(refused) == POLICY


def crash(request):
    raise RuntimeError("a bug")


# The portal's own URLs plus one that fails, for the 500 page (portal.urls has no such view, rightly).
urlpatterns = [path("crash/", crash), *portal.urls.urlpatterns]


@pytest.mark.urls(__name__)
@pytest.mark.django_db
def test_the_server_error_page_carries_the_policy_and_needs_nothing_inline(direct_partner):
    client = Client(raise_request_exception=False)
    client.force_login(factories.staff(direct_partner, "sales_agent"))
    response = client.get("/crash/")
    assert response.status_code == 500
    assert policy_of(response) == POLICY
    assert inline_code(response.content.decode()) == []


# ---------------------------------------------------------------- what the pages are made of

# What a policy without 'unsafe-inline' / 'unsafe-eval' refuses, as it appears in markup.
INLINE = [
    ("style attribute", re.compile(r"""<[a-z][^>]*\sstyle\s*=""", re.I)),
    ("<style> element", re.compile(r"<style\b", re.I)),
    ("inline <script>", re.compile(r"<script\b(?![^>]*\ssrc\s*=)[^>]*>", re.I)),
    ("event-handler attribute", re.compile(r"""<[a-z][^>]*\son[a-z]+\s*=""", re.I)),
    ("javascript: URL", re.compile(r"javascript:", re.I)),
    ("hx-on attribute (eval)", re.compile(r"""\s(?:data-)?hx-on""", re.I)),
]


def inline_code(markup: str) -> list[tuple[str, str]]:
    """(what, where) for each piece of markup the policy would refuse."""
    return [(label, match.group(0)[:80]) for label, pattern in INLINE for match in pattern.finditer(markup)]


def test_the_inline_code_patterns_catch_what_they_are_for():
    # the scan below is only as good as these patterns: each must find its own kind, and nothing in clean markup
    assert [
        label
        for label, _ in inline_code(
            '<p style="x"><style>p{}</style><script>go()</script><button type="button" onclick="go()">'
            '<a href="javascript:go()"><form hx-on:submit="go()">'
        )
    ] == [
        "style attribute",
        "<style> element",
        "inline <script>",
        "event-handler attribute",
        "javascript: URL",
        "hx-on attribute (eval)",
    ]
    assert (
        inline_code(
            '<script src="/static/js/portal.js" defer></script><p class="on">Turn auto-renew on</p>'
            "<button data-history-back>Back</button>"
        )
        == []
    )


def test_no_template_needs_inline_code():
    found = {
        str(template.relative_to(ROOT)): inline_code(template.read_text())
        for template in sorted((ROOT / "templates").rglob("*.html"))
    }
    assert {name: issues for name, issues in found.items() if issues} == {}


def python_html_strings(source: Path):
    """Every string literal of a module that looks like markup (f-string parts included)."""
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and "<" in node.value:
            yield node.value


def test_no_html_built_in_python_needs_inline_code():
    # catalog/listing.py, catalog/views.py, subscriptions/views.py, portal/views.py, catalog/filters.py and the
    # admin build some markup with format_html; the policy applies to it all the same
    modules = [
        m
        for app in ("portal", "catalog", "subscriptions")
        for m in sorted((ROOT / app).rglob("*.py"))
        if "migrations" not in m.parts
    ]
    found = {
        str(m.relative_to(ROOT)): [issue for s in python_html_strings(m) for issue in inline_code(s)] for m in modules
    }
    assert {name: issues for name, issues in found.items() if issues} == {}
