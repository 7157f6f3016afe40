"""Disabled buttons' reasons are reachable by screen readers (issue 12): every disabled control a page draws with its
reason in `title` (which not every screen reader reads, and a touch screen never shows) is also described by an
element of the page holding that reason's text (aria-describedby), the reason the rule function gave."""

from datetime import timedelta
from html.parser import HTMLParser

import pytest
from django.urls import reverse

from subscriptions import checks
from tests import factories
from tests.helpers import subscription_url


class DescribedControls(HTMLParser):
    """The disabled controls of a page (their title and aria-describedby) and the text of every element with an id."""

    VOID = {"input", "br", "img", "meta", "link", "hr", "source", "wbr"}

    def __init__(self):
        super().__init__()
        self.disabled: list[dict] = []
        self.texts: dict[str, str] = {}
        self.open: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if ("disabled" in a or a.get("aria-disabled") == "true") and a.get("title"):
            self.disabled.append({"tag": tag, "title": a["title"], "describedby": (a.get("aria-describedby") or "")})
        if tag in self.VOID:
            return
        self.open.append((tag, a.get("id")))
        if a.get("id"):
            self.texts.setdefault(a["id"], "")

    def handle_endtag(self, tag):
        while self.open:
            name, _ = self.open.pop()
            if name == tag:
                break

    def handle_data(self, data):
        for _, element_id in self.open:
            if element_id:
                self.texts[element_id] += data

    def undescribed(self) -> list[str]:
        missing = []
        for control in self.disabled:
            described = " ".join(self.texts.get(i, "") for i in control["describedby"].split())
            if " ".join(control["title"].split()) not in " ".join(described.split()):
                missing.append(f"{control['tag']} ({control['title']}): described by {control['describedby']!r}")
        return missing


def disabled_controls(response) -> DescribedControls:
    assert response.status_code == 200
    parser = DescribedControls()
    parser.feed(response.content.decode())
    return parser


@pytest.mark.rule("S2")
def test_a_support_agents_disabled_actions_are_described_by_their_reasons(client, direct_partner, customer, now):
    # given a subscription with a change scheduled for its renewal, seen by a support agent (who may do nothing)
    e3 = factories.SkuFactory(name="Microsoft 365 E3", availabilities=[("P1Y", "monthly", "10.00")])
    sub = factories.subscribe(customer, e3, started=now - timedelta(days=2))
    factories.ScheduledChangeFactory(subscription=sub, quantity=12)
    support = factories.staff(direct_partner, "support_agent")
    client.force_login(support)

    # when the subscription page is drawn
    page = disabled_controls(client.get(subscription_url("detail", sub)))

    # then each disabled control says why in an element it names, the reason the rule function gives
    reasons = {v.reason for v in checks.allowed_actions(sub, support, now).values() if not v.allowed}
    assert {c["title"] for c in page.disabled} <= reasons
    assert len(page.disabled) >= 8  # the command bar's six, Rename, the scheduled change's Remove, Buy add-ons
    assert page.undescribed() == []


@pytest.mark.rule("T2")
def test_a_support_agents_disabled_purchases_are_described_by_their_reasons(client, direct_partner, customer, now):
    # given a catalog offer and a cart, seen by a support agent (who may not buy)
    standard = factories.SkuFactory(name="Microsoft 365 Business Standard")
    support = factories.staff(direct_partner, "support_agent")
    cart = factories.CartFactory(customer=customer, owner=support)
    factories.CartLineFactory(cart=cart, availability=factories.availability(standard, "P1Y"))
    client.force_login(support)

    for name in ("subscriptions:subscription-list", "catalog:offer-list", "catalog:cart-detail"):
        # when the page is drawn
        page = disabled_controls(client.get(reverse(name, args=[customer.pk])))
        # then its disabled buttons (Add subscription, Add to cart, Purchase) are described by their reasons
        assert page.disabled, f"{name} draws no disabled control"
        assert page.undescribed() == [], name
