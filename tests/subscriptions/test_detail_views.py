"""The subscription page (S2) and every action on it through the test client: what the page shows,
the quantity preview and change (Q1–Q6, R6), suspend and reactivate (P1–P4), cancel (X1–X3),
auto-renew, rename, add-ons (A1–A5), the ISV publisher set-up (S3), roles (T2), tenancy (T3),
CSRF and the SQL the page costs.

Today is 2026-11-25 12:00 UTC. Unless said otherwise the subscription is Microsoft 365 E3, a 1-year
term billed monthly at 10.00 USD a license, 10 licenses bought on 2026-11-23 12:00 UTC: its first
billing period is 2026-11-23..2026-12-22 (30 days), of which 2026-11-25..2026-12-22 (28 days) are
still to come, and its purchase licenses (and cancellation) stay removable until 2026-11-30 12:00 UTC.
"""

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import partial
from html import escape, unescape

import pytest
import time_machine
from django.core import mail
from django.test import Client
from django.urls import reverse

from subscriptions import audit, checks, services
from subscriptions.models import AuditEntry, BillingLine, ScheduledChange, SeatLot, Subscription
from subscriptions.services import fulfill_order
from subscriptions.states import Status
from tests import factories
from tests.helpers import count_queries, database_state, drawn, subscription_url, visible_text

UTC = UTC
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
STARTED = NOW - timedelta(days=2)  # 2026-11-23 12:00 UTC, inside the 7-day window
LATE = NOW - timedelta(days=12)  # 2026-11-13 12:00 UTC, the window closed on 2026-11-20 12:00 UTC
QUERY_BUDGET = 15  # issue 3's budget for the subscription page, as `manage.py bench` checks it

ROLE_BUY = "Your role can't buy or change subscriptions: ask an admin agent or sales agent."
ROLE_SUSPEND = (
    "Your role can't suspend or reactivate subscriptions: ask an admin agent or billing admin or sales agent."
)
ROLE_AUTO_RENEW = "Your role can't change auto-renew: ask an admin agent or billing admin or sales agent."
BAD_QUANTITY = "Enter the number of licenses as a whole number of at least 1."
WINDOW_CLOSED = (
    "The cancellation window closed on 2026-11-20 12:00 UTC: the term is paid in full. Turn auto-renew "
    "off so it ends with its term."
)


# --- helpers ------------------------------------------------------------------------------------


@pytest.fixture
def e3(db):
    product = factories.ProductFactory(name="Microsoft 365 E3")
    return factories.SkuFactory(product=product, name="Microsoft 365 E3", availabilities=[("P1Y", "monthly", "10.00")])


# An active P1Y subscription billed monthly at 10.00 whose term (and first lot) started at STARTED.
subscribe = partial(factories.subscribe, started=STARTED, unit_price="10.00")


def detail(subscription, **query) -> str:
    return subscription_url("detail", subscription, **query)


def page_of(response) -> str:
    return response.content.decode()


def props(page: str) -> dict[str, str]:
    """The subscription's properties: each <dt> with the text of its <dd>."""
    block = re.search(r'<dl class="props">(.*?)</dl>', page, re.S)
    assert block, "no property list on the page"
    return {
        visible_text(dt): visible_text(dd)
        for dt, dd in re.findall(r"<dt>(.*?)</dt>\s*<dd>(.*?)</dd>", block.group(1), re.S)
    }


def section(page: str, heading: str) -> str:
    """The HTML from an <h2> to the next <h2>."""
    match = re.search(rf"<h2[^>]*>{re.escape(heading)}</h2>(.*?)(?=<h2|$)", page, re.S)
    assert match, f"no {heading!r} section"
    return match.group(1)


def rows(fragment: str, part: str = "tbody") -> list[list[str]]:
    body = re.search(rf"<{part}>(.*?)</{part}>", fragment, re.S)
    assert body, f"no <{part}>"
    return [
        [visible_text(c) for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)]
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body.group(1), re.S)
    ]


def commandbar(page: str) -> str:
    match = re.search(r'<div class="commandbar"[^>]*>(.*?)</div>\s*<ul class="why-list">', page, re.S)
    assert match, "no command bar"
    return match.group(1)


def why_list(page: str) -> list[str]:
    match = re.search(r'<ul class="why-list">(.*?)</ul>', page, re.S)
    assert match, "no inline notes under the command bar"
    return [visible_text(li) for li in re.findall(r"<li\b[^>]*>(.*?)</li>", match.group(1), re.S)]


def disabled_button(page: str, label: str) -> str | None:
    """The title (reason) of a disabled <button> of the command bar, or None if it is not disabled."""
    match = re.search(
        rf'<button class="btn"[^>]*\bdisabled title="([^"]*)"[^>]*>{re.escape(label)}</button>', commandbar(page)
    )
    return unescape(match.group(1)) if match else None


def error_of(page: str) -> str:
    match = re.search(r'<div class="msgbar msgbar-error" role="alert">(.*?)</div>', page, re.S)
    assert match, "no error message on the page"
    return visible_text(match.group(1))


def success_after(client, response) -> tuple[str, str]:
    """A successful action redirects to the subscription page; returns (its success message, the page)."""
    assert response.status_code == 302, page_of(response)[:2000]
    page = page_of(client.get(response.url))
    found = re.findall(r'<div class="msgbar msgbar-success" role="status">(.*?)</div>', page, re.S)
    assert len(found) == 1, found
    return visible_text(found[0]), page


def preview_of(page: str) -> str:
    """The text of the quantity preview (the message bar in the quantity panel)."""
    match = re.search(r'<div class="msgbar msgbar-info" id="quantity-preview" role="status">(.*?)</div>', page, re.S)
    assert match, "no quantity preview"
    return visible_text(match.group(1))


def quantity_panel(page: str) -> str:
    match = re.search(r'<section class="card" id="quantity".*?</section>', page, re.S)
    assert match, "no quantity panel"
    return match.group(0)


# --- S2: the page shows everything --------------------------------------------------------------


@pytest.mark.rule("S2")
@pytest.mark.rule("T5")
@pytest.mark.rule("L1")
@pytest.mark.rule("L2")
@pytest.mark.rule("Q4")
def test_s2_page_shows_every_property_the_batches_billing_and_audit_trail(signed_in, sales, customer, e3, now):
    # given a subscription bought through order ORD-…, for an indirect reseller, with a promotion and a friendly
    # name; 10 licenses bought on 2026-11-23 12:00 UTC and 5 added on 2026-11-24 09:30 UTC
    reseller = factories.PartnerFactory(kind="indirect_reseller", name="Litware Reseller")
    order = factories.OrderFactory(customer=customer, placed_by=sales, completed=True)
    line = factories.OrderLineFactory(
        order=order, availability=factories.availability(e3, "P1Y"), quantity=10, fulfilled=True
    )
    sub = subscribe(
        customer,
        e3,
        order_line=line,
        reseller=reseller,
        promotion_id="39NFJQT1Q5KV",
        friendly_name="Contoso HQ licenses",
    )
    added = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
    factories.add_lot(sub, quantity=5, added_at=added)
    factories.BillingLineFactory(
        subscription=sub,
        quantity=10,
        amount=Decimal("100.00"),
        explanation="10.00 × 10",
        period_start=date(2026, 11, 23),
        period_end=date(2026, 12, 22),
        created_at=STARTED,
    )
    factories.BillingLineFactory(
        subscription=sub,
        kind=BillingLine.Kind.INCREASE,
        quantity=5,
        amount=Decimal("48.33"),
        explanation="10.00 × 5 × 29/30 days",
        period_start=date(2026, 11, 24),
        period_end=date(2026, 12, 22),
        created_at=added,
    )
    audit.record(
        actor=sales,
        at=STARTED,
        customer=customer,
        subscription=sub,
        action="subscription.created",
        summary=f"Created from {order.number} with 10 license(s)",
        after={"quantity": 10},
    )
    audit.record(
        actor=sales,
        at=added,
        customer=customer,
        subscription=sub,
        action="subscription.quantity_changed",
        summary="Quantity 10 → 15 (charge 48.33 USD)",
        before={"quantity": 10},
        after={"quantity": 15},
    )

    # when the sales agent opens it
    response = signed_in.get(detail(sub))

    # then every property is there, every time in UTC, the term end inclusive
    assert response.status_code == 200
    page = page_of(response)
    assert re.search(r"<h1>Contoso HQ licenses <span class=\"badge badge-active\">Active</span></h1>", page)
    shown = props(page)
    assert (
        shown["Offer"] == f"Microsoft 365 E3 ({e3.sku_id}) · Microsoft · Every customer's subscriptions of this offer"
    )
    assert f'<a href="/subscriptions/?offer={e3.pk}">Every customer\'s subscriptions of this offer</a>' in page
    assert shown["Subscription ID"] == str(sub.pk)
    assert re.search(r'<input type="text" name="friendly_name" value="Contoso HQ licenses"', page)
    assert shown["Quantity"] == "15"
    assert shown["Status"] == "Active"
    assert shown["Term"] == "1 year, billed monthly at 10.00 USD per license"
    assert "Scheduled for the renewal" not in shown  # nothing is
    assert shown["Term start"] == "2026-11-23 12:00 UTC"
    assert shown["Term end (inclusive)"] == "2027-11-22 (UTC); renews at 2027-11-23 00:00 UTC"
    assert shown["Auto-renew"] == "On"
    assert shown["Reseller of record"] == f"Litware Reseller ({reseller.partner_id})"
    assert shown["Promotion"] == "39NFJQT1Q5KV"
    assert shown["Order"] == order.number
    assert f'href="{reverse("catalog:order-detail", args=[customer.pk, order.pk])}">{order.number}</a>' in page

    # and the license batches with the time each can be removed until (Q4), newest first
    assert rows(section(page, "License batches")) == [
        ["2026-11-24 09:30 UTC", "Added licenses", "5", "0", "2026-12-01 09:30 UTC · 5 d 21 h left"],
        ["2026-11-23 12:00 UTC", "Purchase", "10", "0", "2026-11-30 12:00 UTC · 5 d 0 h left"],
    ]
    panel = quantity_panel(page)
    assert "15 licenses can be removed now:" in visible_text(panel)
    assert rows(panel) == [
        ["2026-11-24 09:30 UTC", "5", "2026-12-01 09:30 UTC · 5 d 21 h left"],
        ["2026-11-23 12:00 UTC", "10", "2026-11-30 12:00 UTC · 5 d 0 h left"],
    ]

    # and the billing lines with their arithmetic and their sum (L2)
    billing = section(page, "Billing")
    assert rows(billing) == [
        ["2026-11-23 12:00 UTC", "Purchase", "2026-11-23 – 2026-12-22", "10.00 × 10", "100.00 USD"],
        ["2026-11-24 09:30 UTC", "Added licenses", "2026-11-24 – 2026-12-22", "10.00 × 5 × 29/30 days", "48.33 USD"],
    ]
    assert rows(billing, "tfoot") == [["Sum", "148.33 USD"]]

    # and the audit trail, newest first, with who and before → after (L1)
    assert rows(section(page, "Audit trail")) == [
        ["2026-11-24 09:30 UTC", "Pat", "Quantity 10 → 15 (charge 48.33 USD)", "Quantity: 10 → Quantity: 15"],
        ["2026-11-23 12:00 UTC", "Pat", f"Created from {order.number} with 10 license(s)", "Quantity: 10"],
    ]

    # and every action this sales agent may take now is enabled, with the window's close time and countdown
    bar = commandbar(page)
    assert 'href="?confirm=suspend#confirm" data-dialog-open="dlg-suspend">Suspend</a>' in bar
    assert 'href="?confirm=cancel#confirm" data-dialog-open="dlg-cancel">Cancel subscription</a>' in bar
    assert re.search(r'<button class="btn" type="submit" >Turn auto-renew off</button>', bar)
    assert "disabled" not in bar
    assert why_list(page) == []
    assert (
        "Cancel, or remove the licenses this term started with, until 2026-11-30 12:00 UTC · 5 d 0 h left."
        in visible_text(page)
    )
    assert '<footer class="footer">All times are UTC.</footer>' in page


@pytest.mark.rule("S2")
@pytest.mark.rule("X1")
def test_s2_x1_cancel_after_the_window_is_disabled_with_the_utc_close_time(signed_in, customer, e3, now):
    # given a subscription whose term started on 2026-11-13 12:00 UTC
    sub = subscribe(customer, e3, started=LATE)
    # when the page is opened
    page = page_of(signed_in.get(detail(sub)))
    # then Cancel subscription is a disabled button whose title gives the reason
    assert disabled_button(page, "Cancel subscription") == WINDOW_CLOSED
    assert "?confirm=cancel" not in commandbar(page)
    # and the same reason is written under the command bar
    assert why_list(page) == [f"Cancel subscription: {WINDOW_CLOSED}"]
    # and the quantity panel says no license can be removed (Q4)
    assert (
        "No license can be removed now: every batch is past its 7-day window. Schedule fewer licenses for the "
        "renewal instead."
    ) in visible_text(quantity_panel(page))
    # and no countdown to a closed window is offered
    assert "Cancel, or remove the licenses this term started with, until" not in page


@pytest.mark.rule("S2")
@pytest.mark.rule("T2")
def test_s2_t2_support_agent_sees_every_action_disabled_with_its_reason(client, direct_partner, customer, e3, now):
    # given a support agent of the partner
    support = factories.staff(direct_partner, "support_agent")
    sub = subscribe(customer, e3)
    client.force_login(support)
    # when they open the subscription
    response = client.get(detail(sub))
    # then they see it, and every action is disabled with the reason
    assert response.status_code == 200
    page = page_of(response)
    assert props(page)["Quantity"] == "10"
    assert disabled_button(page, "Suspend") == ROLE_SUSPEND
    assert disabled_button(page, "Cancel subscription") == ROLE_BUY
    assert disabled_button(page, "Turn auto-renew off") == ROLE_AUTO_RENEW
    assert disabled_button(page, "Check upgrades") == ROLE_BUY
    assert disabled_button(page, "Manage renewal") == ROLE_BUY
    assert f'aria-disabled="true" title="{ROLE_BUY}"'.replace("'", "&#x27;") in commandbar(page)
    assert why_list(page) == [
        f"Change licenses: {ROLE_BUY}",
        f"Suspend: {ROLE_SUSPEND}",
        f"Cancel subscription: {ROLE_BUY}",
        f"Turn auto-renew off: {ROLE_AUTO_RENEW}",
        f"Check upgrades: {ROLE_BUY}",
        f"Manage renewal: {ROLE_BUY}",
    ]
    # and the quantity panel has no preview form, only the reason
    panel = quantity_panel(page)
    assert 'name="quantity"' not in panel
    assert ROLE_BUY in visible_text(panel)


@pytest.mark.rule("S2")
@pytest.mark.rule("Q6")
@pytest.mark.rule("TR4")
def test_s2_trial_shows_why_its_quantity_and_status_cannot_change(signed_in, customer, now):
    sub = factories.start_trial(customer, factories.trial_offer("Microsoft 365 E5 Trial"), started=STARTED)
    page = page_of(signed_in.get(detail(sub)))
    assert "Trial ends" in props(page)
    assert disabled_button(page, "Suspend") == "A trial's status can't change: convert the trial first."
    assert "Change licenses: A trial's quantity can't change: convert the trial first." in why_list(page)


@pytest.mark.rule("S2")
@pytest.mark.rule("R3")
def test_s2_page_lists_the_changes_scheduled_for_the_renewal(signed_in, customer, e3, now):
    sub = subscribe(customer, e3)
    factories.ScheduledChangeFactory(subscription=sub, quantity=20)
    factories.ScheduledChangeFactory(
        subscription=sub, kind=ScheduledChange.Kind.BILLING_FREQUENCY, quantity=None, billing_frequency="annual"
    )
    page = page_of(signed_in.get(detail(sub)))
    panel = section(page, "Manage renewal")
    assert [visible_text(li) for li in re.findall(r"<li>(.*?)</li>", panel, re.S)] == [
        "20 licenses (scheduled 2026-11-24 12:00 UTC) Remove",
        "Billed annually (scheduled 2026-11-24 12:00 UTC) Remove",
    ]


@pytest.mark.rule("T3")
def test_t3_another_partners_subscription_is_404_on_the_page_and_every_action(signed_in, customer, e3, now):
    # given a subscription of another partner's customer
    other = subscribe(factories.CustomerFactory(), e3)
    before = database_state()
    # then its page and every action answer 404
    assert signed_in.get(detail(other)).status_code == 404
    assert signed_in.get(detail(other, quantity=5)).status_code == 404
    for action in ("quantity", "suspend", "reactivate", "cancel", "auto-renew", "rename", "addons"):
        assert (
            signed_in.post(
                subscription_url(action, other), drawn(other, {"quantity": "5", "on": "0", "friendly_name": "x"})
            ).status_code
            == 404
        )
    assert signed_in.get(reverse("subscriptions:publisher-setup", args=[other.pk])).status_code == 404
    assert signed_in.post(reverse("subscriptions:publisher-setup", args=[other.pk])).status_code == 404
    # and nothing changed
    assert database_state() == before


@pytest.mark.rule("T3")
def test_t3_a_subscription_under_another_customers_url_is_404(signed_in, direct_partner, customer, e3, now):
    # given two customers of the same partner
    sub = subscribe(customer, e3)
    sibling = factories.CustomerFactory(partner=direct_partner)
    path = reverse("subscriptions:subscription-detail", args=[sibling.pk, sub.pk])
    assert signed_in.get(path).status_code == 404
    before = database_state()
    assert signed_in.post(reverse("subscriptions:subscription-suspend", args=[sibling.pk, sub.pk])).status_code == 404
    assert database_state() == before


# --- Q1–Q6: the quantity preview ----------------------------------------------------------------


@pytest.mark.rule("Q3")
@pytest.mark.rule("Q4")
def test_q3_preview_of_a_reduction_shows_the_refund_arithmetic_and_changes_nothing(signed_in, customer, e3, now):
    sub = subscribe(customer, e3)
    before = database_state()
    # when the partner previews 7 licenses
    response = signed_in.get(detail(sub, quantity=7))
    # then the panel shows each batch's refund: 10.00 × 3 × 28/30 = 28.00 for 2026-11-25..2026-12-22
    assert response.status_code == 200
    assert preview_of(page_of(response)) == (
        "10 → 7 licenses. Refund 28.00 USD. "
        "3 from the batch added 2026-11-23 12:00 UTC: refund 10.00 × 3 × 28/30 days = 28.00 USD "
        "(period 2026-11-25 – 2026-12-22) "
        "Change to 7 licenses"
    )
    # and the confirming form carries the quantity (and the version of the page it was drawn on)
    assert '<input type="hidden" name="quantity" value="7">' in quantity_panel(page_of(response))
    assert f'<form method="post" action="{subscription_url("quantity", sub)}">' in quantity_panel(page_of(response))
    # and nothing changed
    assert database_state() == before


@pytest.mark.rule("Q2")
@pytest.mark.rule("Q3")
def test_q3_preview_takes_the_newest_batch_first_and_refunds_each_batch(signed_in, customer, e3, now):
    # given 10 bought on 2026-11-23 12:00 and 5 added on 2026-11-24 12:00 UTC
    sub = subscribe(customer, e3)
    factories.add_lot(sub, quantity=5, added_at=NOW - timedelta(days=1))
    # when 7 are previewed away (15 → 8)
    page = page_of(signed_in.get(detail(sub, quantity=8)))
    preview = preview_of(page)
    # then the 5 newest go first, then 2 of the purchase, each refunded for the 28 days to come
    assert "15 → 8 licenses. Refund 65.34 USD." in preview
    assert (
        "5 from the batch added 2026-11-24 12:00 UTC: refund 10.00 × 5 × 28/30 days = 46.67 USD "
        "(period 2026-11-25 – 2026-12-22)"
    ) in preview
    assert (
        "2 from the batch added 2026-11-23 12:00 UTC: refund 10.00 × 2 × 28/30 days = 18.67 USD "
        "(period 2026-11-25 – 2026-12-22)"
    ) in preview


@pytest.mark.rule("Q1")
def test_q1_preview_of_an_increase_shows_the_prorated_charge_and_the_new_window(signed_in, customer, e3, now):
    sub = subscribe(customer, e3)
    before = database_state()
    page = page_of(signed_in.get(detail(sub, quantity=15)))
    preview = preview_of(page)
    # 10.00 × 5 × 28/30 = 46.666… = 46.67
    assert preview == (
        "10 → 15 licenses. Charge 46.67 USD on the next invoice. "
        "5 added: charge 10.00 × 5 × 28/30 days = 46.67 USD (period 2026-11-25 – 2026-12-22) "
        "The added licenses can be removed until 2026-12-02 12:00 UTC. Change to 15 licenses"
    )
    assert database_state() == before


@pytest.mark.rule("Q1")
def test_q1_htmx_preview_returns_only_the_quantity_panel(signed_in, customer, e3, now):
    sub = subscribe(customer, e3)
    before = database_state()
    response = signed_in.get(detail(sub, quantity=7), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    body = page_of(response).strip()
    assert body.startswith('<section class="card" id="quantity"')
    assert body.endswith("</section>")
    assert "<html" not in body and "<h1>" not in body and "commandbar" not in body
    assert "10 → 7 licenses." in visible_text(body) and "Refund 28.00 USD." in visible_text(body)
    assert database_state() == before


@pytest.mark.rule("Q1")
def test_q1_htmx_preview_confirm_form_posts_to_the_quantity_action(signed_in, customer, e3, now):
    sub = subscribe(customer, e3)
    panel = page_of(signed_in.get(detail(sub, quantity=7), HTTP_HX_REQUEST="true"))
    assert f'<form method="post" action="{subscription_url("quantity", sub)}">' in panel


def test_posting_to_the_subscription_page_changes_nothing(signed_in, customer, e3, now):
    # what the broken htmx confirm form does (see above): the page answers, nothing changes
    sub = subscribe(customer, e3)
    before = database_state()
    response = signed_in.post(detail(sub), drawn(sub, {"quantity": "7"}))
    assert response.status_code == 405  # the page only shows: GET and HEAD
    assert database_state() == before


@pytest.mark.rule("R6")
def test_r6_preview_warns_that_the_scheduled_renewal_changes_will_be_deleted(signed_in, customer, e3, now):
    sub = subscribe(customer, e3)
    factories.ScheduledChangeFactory(subscription=sub, quantity=20)
    page = page_of(signed_in.get(detail(sub, quantity=12)))
    assert "Warning: this deletes the 1 change scheduled for the renewal." in visible_text(quantity_panel(page))
    # and with none scheduled there is no warning
    plain = subscribe(customer, e3)
    assert "Warning:" not in visible_text(quantity_panel(page_of(signed_in.get(detail(plain, quantity=12)))))


@pytest.mark.rule("Q1")
@pytest.mark.parametrize(
    "raw, message",
    [
        ("", BAD_QUANTITY),
        ("abc", BAD_QUANTITY),
        ("-1", BAD_QUANTITY),
        ("0", BAD_QUANTITY),
        ("99999999999", "99,999,999,999 licenses is more than any offer allows."),
        # past int()'s 4,300 digits (issue 9: a ValueError, 500)
        pytest.param("9" * 10_000, "That is more licenses than any offer allows.", id="10-kB-of-digits"),
        ("10", "The subscription already has 10 licenses."),
        ("20000", "Microsoft 365 E3 is sold in quantities from 1 to 10,000."),
    ],
)
def test_q1_preview_of_bad_input_is_refused_with_a_message(signed_in, customer, e3, now, raw, message):
    sub = subscribe(customer, e3)
    before = database_state()
    response = signed_in.get(detail(sub, quantity=raw))
    assert response.status_code == 422
    assert error_of(page_of(response)) == message
    assert 'id="quantity-preview"' not in page_of(response)
    assert database_state() == before


@pytest.mark.rule("Q2")
def test_q2_htmx_preview_refusal_shows_its_reason_inside_the_quantity_panel(signed_in, customer, e3, now):
    # given 3 removable licenses out of 13
    sub = subscribe(customer, e3, started=LATE)
    factories.add_lot(sub, quantity=3, added_at=NOW - timedelta(days=1))
    # when the panel previews 8 (5 to remove) through htmx
    response = signed_in.get(detail(sub, quantity=8), HTTP_HX_REQUEST="true")
    # then the panel that htmx swaps in says why
    assert response.status_code == 422
    assert "Only 3 licenses can be removed now (added within the last 7 days); you asked to remove 5." in visible_text(
        quantity_panel(page_of(response))
    )


# --- Q1–Q6: changing the quantity ---------------------------------------------------------------


@pytest.mark.rule("Q2")
@pytest.mark.rule("Q3")
@pytest.mark.rule("L1")
@pytest.mark.rule("L2")
def test_q3_reducing_inside_the_window_refunds_and_says_so(signed_in, customer, e3, now):
    sub = subscribe(customer, e3)
    audits = AuditEntry.objects.count()
    response = signed_in.post(subscription_url("quantity", sub), drawn(sub, {"quantity": "7"}))
    message, page = success_after(signed_in, response)
    assert response.url == detail(sub)
    assert message == "Quantity changed from 10 to 7. Refunded 28.00 USD."
    sub.refresh_from_db()
    assert (sub.quantity, sub.quantity_updates) == (7, 1)
    assert list(SeatLot.objects.filter(subscription=sub).values_list("quantity", "removed")) == [(10, 3)]
    assert list(
        BillingLine.objects.filter(subscription=sub).values_list(
            "kind", "amount", "quantity", "period_start", "period_end", "explanation"
        )
    ) == [("reduction_refund", Decimal("-28.00"), -3, date(2026, 11, 25), date(2026, 12, 22), "10.00 × 3 × 28/30 days")]
    assert AuditEntry.objects.count() == audits + 1
    # and the page shows the new quantity and the refund
    assert props(page)["Quantity"] == "7"
    assert rows(section(page, "Billing"))[-1] == [
        "2026-11-25 12:00 UTC",
        "License removal refund",
        "2026-11-25 – 2026-12-22",
        "10.00 × 3 × 28/30 days",
        "-28.00 USD",
    ]
    when, who, what, change = rows(section(page, "Audit trail"))[0]
    assert (when, who, what) == ("2026-11-25 12:00 UTC", "Pat", "Quantity 10 → 7 (refund 28.00 USD)")
    # (PostgreSQL's jsonb orders the keys its own way)
    before_text, after_text = change.split(" → ")
    assert (before_text, set(after_text.split(", "))) == ("Quantity: 10", {"Quantity: 7", "Amount: -28.00"})


@pytest.mark.rule("Q1")
def test_q1_adding_licenses_charges_and_opens_a_window(signed_in, customer, e3, now):
    sub = subscribe(customer, e3, started=LATE)
    message, page = success_after(
        signed_in, signed_in.post(subscription_url("quantity", sub), drawn(sub, {"quantity": "15"}))
    )
    # period 2026-11-13..2026-12-12 (30 days), 18 days to come: 10.00 × 5 × 18/30 = 30.00
    assert message == "Quantity changed from 10 to 15. Charged 30.00 USD."
    assert props(page)["Quantity"] == "15"
    assert rows(section(page, "License batches"))[0] == [
        "2026-11-25 12:00 UTC",
        "Added licenses",
        "5",
        "0",
        "2026-12-02 12:00 UTC · 7 d 0 h left",
    ]
    assert list(BillingLine.objects.filter(subscription=sub).values_list("kind", "amount", "explanation")) == [
        ("increase", Decimal("30.00"), "10.00 × 5 × 18/30 days")
    ]


@pytest.mark.rule("R6")
def test_r6_a_quantity_change_deletes_the_scheduled_renewal_changes(signed_in, customer, e3, now):
    sub = subscribe(customer, e3)
    factories.ScheduledChangeFactory(subscription=sub, quantity=20)
    success_after(signed_in, signed_in.post(subscription_url("quantity", sub), drawn(sub, {"quantity": "12"})))
    assert not ScheduledChange.objects.filter(subscription=sub).exists()
    assert AuditEntry.objects.get(subscription=sub).summary == (
        "Quantity 10 → 12 (charge 18.67 USD); 1 scheduled renewal change(s) deleted"
    )


@pytest.mark.rule("Q1")
@pytest.mark.parametrize(
    "raw, message",
    [
        ("", BAD_QUANTITY),
        ("abc", BAD_QUANTITY),
        ("-1", BAD_QUANTITY),
        ("0", BAD_QUANTITY),
        (" 7x", BAD_QUANTITY),
        ("99999999999", "99,999,999,999 licenses is more than any offer allows."),
        pytest.param("9" * 10_000, "That is more licenses than any offer allows.", id="10-kB-of-digits"),
    ],
)
def test_q1_bad_quantity_is_refused_with_a_message_and_changes_nothing(signed_in, customer, e3, now, raw, message):
    sub = subscribe(customer, e3)
    factories.BillingLineFactory(subscription=sub)
    before = database_state()
    response = signed_in.post(subscription_url("quantity", sub), drawn(sub, {"quantity": raw}))
    assert response.status_code == 422
    assert error_of(page_of(response)) == message
    assert database_state() == before


@pytest.mark.rule("Q1")
def test_q1_a_missing_quantity_field_is_refused(signed_in, customer, e3, now):
    sub = subscribe(customer, e3)
    before = database_state()
    response = signed_in.post(subscription_url("quantity", sub), drawn(sub, {}))
    assert response.status_code == 422
    assert error_of(page_of(response)) == BAD_QUANTITY
    assert database_state() == before


@pytest.mark.rule("Q2")
def test_q2_removing_more_than_removable_is_refused_with_the_removable_number(signed_in, customer, e3, now):
    # given 10 bought on 2026-11-13 (window closed) and 3 added yesterday (window open)
    sub = subscribe(customer, e3, started=LATE)
    factories.add_lot(sub, quantity=3, added_at=NOW - timedelta(days=1))
    factories.BillingLineFactory(subscription=sub)
    before = database_state()
    # when 5 are removed (13 → 8)
    response = signed_in.post(subscription_url("quantity", sub), drawn(sub, {"quantity": "8"}))
    # then it is refused naming the 3 removable
    assert response.status_code == 422
    assert error_of(page_of(response)) == (
        "Only 3 licenses can be removed now (added within the last 7 days); you asked to remove 5."
    )
    assert database_state() == before
    # and the refused page still shows the 3 licenses that can be removed (Q4)
    assert "3 licenses can be removed now:" in visible_text(quantity_panel(page_of(response)))


@pytest.mark.rule("Q2")
def test_q2_no_license_removable_after_every_window_closed(signed_in, customer, e3, now):
    sub = subscribe(customer, e3, started=LATE)
    before = database_state()
    response = signed_in.post(subscription_url("quantity", sub), drawn(sub, {"quantity": "9"}))
    assert response.status_code == 422
    assert error_of(page_of(response)) == (
        "No license can be removed now: the last 7-day window closed on 2026-11-20 12:00 UTC. Schedule fewer "
        "licenses for the renewal instead."
    )
    assert database_state() == before


@pytest.mark.rule("Q1")
def test_q1_a_page_opened_before_the_quantity_changed_is_a_conflict(signed_in, customer, e3, sales, now):
    # given the panel drawn at 10 licenses, then the quantity changed to 12 from another tab
    sub = subscribe(customer, e3)
    page = drawn(sub, {"quantity": "15"})
    services.change_quantity(subscription_id=sub.pk, actor=sales, version=page["version"], quantity=12, now=now)
    before = database_state()
    # when the first page submits 15, then its version refuses it (409) saying what changed, and nothing changes
    response = signed_in.post(subscription_url("quantity", sub), page)
    assert response.status_code == 409
    assert error_of(page_of(response)).startswith(
        "This subscription changed since you opened the page: Quantity 10 → 12 "
    )
    assert database_state() == before


@pytest.mark.rule("Q6")
def test_q6_quantity_of_a_suspended_subscription_cannot_change(signed_in, customer, e3, now):
    sub = subscribe(customer, e3, suspended=True)
    before = database_state()
    response = signed_in.post(subscription_url("quantity", sub), drawn(sub, {"quantity": "15"}))
    assert response.status_code == 422
    assert error_of(page_of(response)) == (
        "Licenses can only be changed on an active subscription (this one is suspended)."
    )
    assert database_state() == before


@pytest.mark.rule("Q5")
def test_q5_quantity_updated_1200_times_refuses_more(signed_in, customer, e3, now):
    sub = subscribe(customer, e3, quantity_updates=1200)
    before = database_state()
    reason = (
        "This subscription's quantity has been updated 1,200 times, the most allowed: buy a second subscription "
        "of the same offer (it can be aligned to end on the same date)."
    )
    assert f"Change licenses: {reason}" in why_list(page_of(signed_in.get(detail(sub))))
    response = signed_in.post(subscription_url("quantity", sub), drawn(sub, {"quantity": "15"}))
    assert response.status_code == 422
    assert error_of(page_of(response)) == reason
    assert database_state() == before


@pytest.mark.rule("T2")
@pytest.mark.parametrize("role", ["support_agent", "billing_admin"])
def test_t2_support_agent_and_billing_admin_cannot_change_the_quantity(client, direct_partner, customer, e3, now, role):
    sub = subscribe(customer, e3)
    client.force_login(factories.staff(direct_partner, role))
    before = database_state()
    response = client.post(subscription_url("quantity", sub), drawn(sub, {"quantity": "15"}))
    assert response.status_code == 403
    assert ROLE_BUY in visible_text(page_of(response)).replace("&#x27;", "'")
    assert database_state() == before


# --- P1–P4: suspend and reactivate ---------------------------------------------------------------


@pytest.mark.rule("P1")
@pytest.mark.rule("P3")
@pytest.mark.rule("P4")
def test_p1_suspend_shows_the_still_billed_banner_and_turns_auto_renew_off(signed_in, customer, e3, now):
    # given an active subscription with a scheduled quantity and a scheduled billing frequency
    sub = subscribe(customer, e3)
    factories.BillingLineFactory(subscription=sub)
    factories.ScheduledChangeFactory(subscription=sub, quantity=20)
    frequency = factories.ScheduledChangeFactory(
        subscription=sub, kind=ScheduledChange.Kind.BILLING_FREQUENCY, quantity=None, billing_frequency="annual"
    )
    billing = list(BillingLine.objects.values_list("pk", "amount"))
    # when it is suspended
    message, page = success_after(signed_in, signed_in.post(subscription_url("suspend", sub), drawn(sub)))
    # then
    assert message == "Suspended: the customer's access is blocked now. Billing continues; auto-renew is off."
    sub.refresh_from_db()
    assert (sub.status, sub.auto_renew) == (Status.SUSPENDED, False)
    # P4: the scheduled changes are removed but the billing-frequency instruction
    assert list(ScheduledChange.objects.values_list("pk", flat=True)) == [frequency.pk]
    # P3: nothing refunded, still billed, as the banner says
    assert list(BillingLine.objects.values_list("pk", "amount")) == billing
    banner = re.search(
        r'<div class="msgbar msgbar-warning" role="status"><strong>Suspended:</strong>.*?</div>', page, re.S
    )
    assert banner
    assert visible_text(banner.group(0)) == (
        "Suspended: the customer can't use it, and it is still billed (100.00 USD per monthly period) until its term "
        "ends on 2027-11-22 (UTC). Reactivate it before then, or it becomes disabled and its data is deleted."
    )
    # and the command bar now offers Reactivate instead of Suspend
    bar = commandbar(page)
    assert 'data-dialog-open="dlg-reactivate">Reactivate</a>' in bar
    assert ">Suspend<" not in bar
    assert props(page)["Status"] == "Suspended"
    assert (
        AuditEntry.objects.get(subscription=sub).summary
        == "Suspended; auto-renew turned off; 1 scheduled change(s) removed"
    )


@pytest.mark.rule("P2")
@pytest.mark.rule("P4")
def test_p4_reactivate_reminds_to_turn_auto_renew_back_on(signed_in, customer, e3, now):
    sub = subscribe(customer, e3, suspended=True)
    message, page = success_after(signed_in, signed_in.post(subscription_url("reactivate", sub), drawn(sub)))
    assert message == "Reactivated. Auto-renew is still off: turn it back on if this subscription should renew."
    sub.refresh_from_db()
    assert (sub.status, sub.auto_renew) == (Status.ACTIVE, False)
    assert (
        "Auto-renew is off: this subscription ends on 2027-11-22 (UTC). Turn auto-renew on if it should renew."
        in visible_text(page)
    )
    assert re.search(
        r'<input type="hidden" name="on" value="1"><button class="btn" type="submit" >'
        r"Turn auto-renew on</button>",
        page,
    )


@pytest.mark.rule("A4")
def test_a4_suspending_a_base_suspends_its_addons_and_reactivating_brings_them_back(signed_in, customer, e3, now):
    base = subscribe(customer, e3)
    addon = subscribe(
        customer,
        factories.SkuFactory(name="Audio Conferencing", is_addon=True, availabilities=[("P1Y", "monthly", "2.00")]),
        base_subscription=base,
        quantity=4,
    )
    success_after(signed_in, signed_in.post(subscription_url("suspend", base), drawn(base)))
    assert Subscription.objects.get(pk=addon.pk).status == Status.SUSPENDED
    success_after(signed_in, signed_in.post(subscription_url("reactivate", base), drawn(base)))
    assert Subscription.objects.get(pk=addon.pk).status == Status.ACTIVE


@pytest.mark.rule("P2")
def test_p2_a_suspended_subscription_whose_term_ended_cannot_be_reactivated(signed_in, customer, e3, now):
    # given a subscription suspended through the end of its term on 2026-11-22 (not yet marked disabled)
    started = datetime(2025, 11, 23, 12, 0, tzinfo=UTC)
    sub = subscribe(customer, e3, started=started, suspended=True)
    reason = (
        "The term ended on 2026-11-22 (UTC) while suspended: the subscription is disabled and can't be reactivated."
    )
    page = page_of(signed_in.get(detail(sub)))
    assert disabled_button(page, "Reactivate") == reason
    assert f"Reactivate: {reason}" in why_list(page)
    before = database_state()
    response = signed_in.post(subscription_url("reactivate", sub), drawn(sub))
    assert response.status_code == 422
    assert error_of(page_of(response)) == reason
    assert database_state() == before


@pytest.mark.rule("P2")
@pytest.mark.rule("X1")
def test_p2_a_suspended_subscription_can_still_be_cancelled_inside_the_window(signed_in, customer, e3, now):
    sub = subscribe(customer, e3, suspended=True)
    message, _ = success_after(signed_in, signed_in.post(subscription_url("cancel", sub), drawn(sub)))
    assert message == "Cancelled. Refund: 93.33 USD."
    assert Subscription.objects.get(pk=sub.pk).status == Status.DELETED


@pytest.mark.rule("P1")
def test_p1_suspending_a_suspended_subscription_is_refused(signed_in, customer, e3, now):
    sub = subscribe(customer, e3, suspended=True)
    before = database_state()
    response = signed_in.post(subscription_url("suspend", sub), drawn(sub))
    assert response.status_code == 422
    assert error_of(page_of(response)) == "Only an active subscription can be suspended (this one is suspended)."
    assert database_state() == before


@pytest.mark.rule("T2")
@pytest.mark.rule("P1")
def test_t2_billing_admin_may_suspend_and_reactivate(client, direct_partner, customer, e3, now):
    sub = subscribe(customer, e3)
    client.force_login(factories.staff(direct_partner, "billing_admin"))
    assert client.post(subscription_url("suspend", sub), drawn(sub)).status_code == 302
    assert Subscription.objects.get(pk=sub.pk).status == Status.SUSPENDED
    assert client.post(subscription_url("reactivate", sub), drawn(sub)).status_code == 302
    assert Subscription.objects.get(pk=sub.pk).status == Status.ACTIVE


@pytest.mark.rule("T2")
@pytest.mark.parametrize("action", ["suspend", "cancel", "auto-renew", "rename", "addons"])
def test_t2_support_agent_is_refused_every_action(client, direct_partner, customer, e3, now, action):
    sub = subscribe(customer, e3)
    client.force_login(factories.staff(direct_partner, "support_agent"))
    before = database_state()
    response = client.post(
        subscription_url(action, sub), drawn(sub, {"on": "0", "friendly_name": "New name", "addon-1": "1"})
    )
    assert response.status_code == 403
    assert database_state() == before


@pytest.mark.rule("T2")
def test_t2_support_agent_cannot_reactivate(client, direct_partner, customer, e3, now):
    sub = subscribe(customer, e3, suspended=True)
    client.force_login(factories.staff(direct_partner, "support_agent"))
    before = database_state()
    response = client.post(subscription_url("reactivate", sub), drawn(sub))
    assert response.status_code == 403
    assert ROLE_SUSPEND in visible_text(page_of(response))
    assert database_state() == before


@pytest.mark.rule("T2")
def test_t2_billing_admin_cannot_cancel(client, direct_partner, customer, e3, now):
    sub = subscribe(customer, e3)
    client.force_login(factories.staff(direct_partner, "billing_admin"))
    before = database_state()
    assert client.post(subscription_url("cancel", sub), drawn(sub)).status_code == 403
    assert database_state() == before


@pytest.mark.rule("T1")
def test_t1_reseller_of_record_sees_the_subscription_read_only(client, provider, e3, now):
    # given an indirect provider's customer whose subscription a reseller resells
    link = factories.ResellerLinkFactory(provider=provider, reseller__name="Litware Reseller")
    customer = factories.CustomerFactory(partner=provider)
    sub = subscribe(customer, e3, reseller=link.reseller)
    client.force_login(factories.staff(link.reseller, "admin_agent"))
    notice = "Indirect resellers can't buy or change subscriptions here: contact your indirect provider."
    page = page_of(client.get(detail(sub)))
    assert disabled_button(page, "Suspend") == notice
    assert disabled_button(page, "Cancel subscription") == notice
    before = database_state()
    for action in ("quantity", "suspend", "cancel", "auto-renew", "rename"):
        assert (
            client.post(
                subscription_url(action, sub), drawn(sub, {"quantity": "12", "on": "0", "friendly_name": "x"})
            ).status_code
            == 403
        )
    assert database_state() == before


@pytest.mark.rule("R2")
@pytest.mark.rule("S2")
@pytest.mark.rule("T2")
@pytest.mark.parametrize(
    "who, status, reason",
    [
        ("support_agent", Status.ACTIVE, ROLE_BUY),
        (
            "reseller",
            Status.ACTIVE,
            "Indirect resellers can't buy or change subscriptions here: contact your indirect provider.",
        ),
        (
            "sales_agent",
            Status.DELETED,
            "Changes can only be scheduled for the renewal of an active subscription (this one is deleted).",
        ),
        (
            "sales_agent",
            Status.EXPIRED,
            "Changes can only be scheduled for the renewal of an active subscription (this one is expired).",
        ),
    ],
)
def test_r2_manage_renewal_is_disabled_with_its_reason_when_refused(client, provider, e3, now, who, status, reason):
    # given a subscription of an indirect provider's customer, resold by a reseller, and a user who can't schedule
    # changes for its renewal (their role, the reseller's, or the subscription being deleted or expired)
    link = factories.ResellerLinkFactory(provider=provider, reseller__name="Litware Reseller")
    sub = subscribe(factories.CustomerFactory(partner=provider), e3, reseller=link.reseller, status=status)
    if who == "reseller":
        client.force_login(factories.staff(link.reseller, "admin_agent"))
    else:
        client.force_login(factories.staff(provider, who))
    # when they open it
    page = page_of(client.get(detail(sub)))
    # then Manage renewal is a disabled button giving the reason, written under the command bar too, as for the others
    assert disabled_button(page, "Manage renewal") == reason
    assert 'data-panel-open="panel-manage-renewal">Manage renewal</a>' not in commandbar(page)
    assert f"Manage renewal: {reason}" in why_list(page)


@pytest.mark.rule("R2")
def test_r2_manage_renewal_opens_its_panel_when_allowed(signed_in, customer, e3, now):
    # given an active subscription with auto-renew on, and a sales agent / then Manage renewal is a live link
    page = page_of(signed_in.get(detail(subscribe(customer, e3))))
    assert '<a class="btn" href="#manage-renewal" data-panel-open="panel-manage-renewal">Manage renewal</a>' in (
        commandbar(page)
    )
    assert disabled_button(page, "Manage renewal") is None
    assert not any(note.startswith("Manage renewal:") for note in why_list(page))


@pytest.mark.rule("S2")
@pytest.mark.parametrize("action", ["quantity", "suspend", "reactivate", "cancel", "auto-renew", "rename", "addons"])
def test_get_on_an_action_url_leads_back_to_the_page_and_changes_nothing(signed_in, customer, e3, now, action):
    sub = subscribe(customer, e3)
    before = database_state()
    response = signed_in.get(subscription_url(action, sub) + "?quantity=7&on=0&friendly_name=x")
    assert response.status_code == 302
    assert response.url == detail(sub)
    assert database_state() == before


def test_an_unknown_action_is_404(signed_in, customer, e3, now):
    sub = subscribe(customer, e3)
    path = detail(sub) + "delete/"
    assert signed_in.post(path).status_code == 404


# --- X1–X3: cancel ------------------------------------------------------------------------------


@pytest.mark.rule("X1")
@pytest.mark.rule("X2")
@pytest.mark.rule("L2")
def test_x1_cancel_inside_the_window_refunds_the_rest_of_the_period(signed_in, customer, e3, now):
    sub = subscribe(customer, e3)
    factories.ScheduledChangeFactory(subscription=sub, quantity=20)
    response = signed_in.post(subscription_url("cancel", sub), drawn(sub))
    message, page = success_after(signed_in, response)
    # 10.00 × 10 × 28/30 = 93.333… = 93.33 for 2026-11-25..2026-12-22
    assert message == "Cancelled. Refund: 93.33 USD."
    sub.refresh_from_db()
    assert (sub.status, sub.auto_renew, sub.cancelled_at) == (Status.DELETED, False, NOW)
    assert list(
        BillingLine.objects.filter(subscription=sub).values_list(
            "kind", "amount", "quantity", "period_start", "period_end", "explanation"
        )
    ) == [
        (
            "cancellation_refund",
            Decimal("-93.33"),
            -10,
            date(2026, 11, 25),
            date(2026, 12, 22),
            "10.00 × 10 × 28/30 days",
        )
    ]
    assert not ScheduledChange.objects.filter(subscription=sub).exists()
    # and the page says it is final, with every action disabled
    assert (
        "Cancelled on 2026-11-25 12:00 UTC: access ended, and a cancelled subscription can't be resumed or restored."
    ) in visible_text(page)
    assert rows(section(page, "Billing"))[-1][1:] == [
        "Cancellation refund",
        "2026-11-25 – 2026-12-22",
        "10.00 × 10 × 28/30 days",
        "-93.33 USD",
    ]
    assert disabled_button(page, "Cancel subscription") == (
        "This subscription is deleted: it can't be cancelled, resumed or restored."
    )


@pytest.mark.rule("X2")
@pytest.mark.rule("L1")
@pytest.mark.rule("L2")
def test_x2_cancelling_a_base_cancels_and_refunds_its_addons(signed_in, customer, e3, now):
    base = subscribe(customer, e3)
    addon = subscribe(
        customer,
        traditional_addon(e3, "Microsoft 365 Audio Conferencing"),
        base_subscription=base,
        quantity=4,
        started=NOW - timedelta(days=1),
    )
    success_after(signed_in, signed_in.post(subscription_url("cancel", base), drawn(base)))
    addon.refresh_from_db()
    assert (addon.status, addon.auto_renew, addon.cancelled_at) == (Status.DELETED, False, NOW)
    # refunded on its base's billing period (2026-11-23..2026-12-22): 10.00 × 4 × 28/30 = 37.33
    assert list(
        BillingLine.objects.filter(subscription=addon).values_list(
            "kind", "amount", "quantity", "period_start", "period_end", "explanation"
        )
    ) == [
        ("cancellation_refund", Decimal("-37.33"), -4, date(2026, 11, 25), date(2026, 12, 22), "10.00 × 4 × 28/30 days")
    ]
    # and its audit trail says what its status was before (L1)
    entry = AuditEntry.objects.get(subscription=addon)
    assert (entry.action, entry.summary, entry.before, entry.after) == (
        "subscription.cancelled",
        "Cancelled with its base Microsoft 365 E3; refund 37.33 USD",
        {"status": "active"},
        {"status": "deleted", "refund": "37.33"},
    )


@pytest.mark.rule("X1")
def test_x1_cancel_after_the_window_is_refused_with_the_reason(signed_in, customer, e3, now):
    sub = subscribe(customer, e3, started=LATE)
    factories.BillingLineFactory(subscription=sub)
    before = database_state()
    response = signed_in.post(subscription_url("cancel", sub), drawn(sub))
    assert response.status_code == 422
    assert error_of(page_of(response)) == WINDOW_CLOSED
    assert database_state() == before


@pytest.mark.rule("Q4")
@pytest.mark.rule("X2")
def test_q4_a_cancelled_subscriptions_batches_show_no_countdown(signed_in, customer, e3, now):
    # given a subscription bought 2026-11-23 12:00 UTC, its licenses removable until 2026-11-30 12:00 UTC
    sub = subscribe(customer, e3)
    # when it is cancelled inside its window
    _, page = success_after(signed_in, signed_in.post(subscription_url("cancel", sub), drawn(sub)))
    # then its batch no longer counts down to a removal that can't happen, and none is offered for removal
    assert rows(section(page, "License batches")) == [
        ["2026-11-23 12:00 UTC", "Purchase", "10", "0", "None: the subscription is deleted"]
    ]
    panel = visible_text(quantity_panel(page))
    assert "No license can be removed: the subscription is deleted." in panel
    assert "can be removed now" not in panel
    assert " left" not in visible_text(section(page, "License batches"))


@pytest.mark.rule("Q4")
@pytest.mark.rule("Q5")
@pytest.mark.rule("Q6")
@pytest.mark.rule("TR4")
@pytest.mark.parametrize(
    "state, reason",
    [
        ({"suspended": True}, "Licenses can only be changed on an active subscription (this one is suspended)."),
        ({"is_trial": True}, "A trial's quantity can't change: convert the trial first."),
        (
            {"quantity_updates": checks.MAX_QUANTITY_UPDATES},
            "This subscription's quantity has been updated 1,200 times, the most allowed: buy a second subscription "
            "of the same offer (it can be aligned to end on the same date).",
        ),
    ],
)
def test_q4_the_panel_offers_no_batch_while_the_licenses_cannot_change(signed_in, customer, e3, now, state, reason):
    # given a subscription whose purchase batch is in its window (until 2026-11-30 12:00 UTC) but whose licenses
    # can't change: suspended (Q6), a trial (TR4), at Q5's limit of updates
    sub = subscribe(customer, e3, **state)
    # when its page is opened
    page = page_of(signed_in.get(detail(sub)))
    # then the panel lists no batch to remove and says why, as the refused removal does
    panel = visible_text(quantity_panel(page))
    assert f"No license can be removed. {reason}" in panel
    assert "can be removed now" not in panel
    # and removing a license is refused with that reason (422), nothing changed
    before = database_state()
    response = signed_in.post(subscription_url("quantity", sub), drawn(sub, {"quantity": "9"}))
    assert response.status_code == 422
    assert error_of(page_of(response)) == reason
    assert database_state() == before


@pytest.mark.rule("Q4")
@pytest.mark.rule("N5")
@pytest.mark.rule("P2")
@pytest.mark.parametrize("status", [Status.EXPIRED, Status.DISABLED])
def test_q4_an_ended_subscriptions_batches_show_no_countdown(signed_in, customer, e3, now, status):
    # given a subscription that ended while a batch's 7-day window (to 2026-11-30 12:00 UTC) was still open
    sub = subscribe(customer, e3, status=status, auto_renew=False)
    # when its page is opened / then the batch says it can't be removed, with no countdown
    page = page_of(signed_in.get(detail(sub)))
    assert rows(section(page, "License batches"))[0][4] == f"None: the subscription is {status}"
    assert checks.removable_lots(sub, now) == []


@pytest.mark.rule("X2")
def test_x2_a_cancelled_subscription_cannot_be_cancelled_again(signed_in, customer, e3, now):
    sub = subscribe(customer, e3, deleted=True)
    before = database_state()
    response = signed_in.post(subscription_url("cancel", sub), drawn(sub))
    assert response.status_code == 422
    assert error_of(page_of(response)) == "This subscription is deleted: it can't be cancelled, resumed or restored."
    assert database_state() == before


@pytest.mark.rule("X3")
def test_x3_confirm_cancel_page_shows_the_yes_cancel_form_without_javascript(signed_in, customer, e3, now):
    sub = subscribe(customer, e3)
    before = database_state()
    page = page_of(signed_in.get(detail(sub, confirm="cancel")))
    dialog = re.search(r'<dialog id="dlg-cancel" open aria-labelledby="dlg-cancel-title">(.*?)</dialog>', page, re.S)
    assert dialog, "the cancel dialog is not open"
    assert re.search(
        rf'<form method="post" action="{re.escape(subscription_url("cancel", sub))}" data-submit-once>'
        r'<input type="hidden" name="csrfmiddlewaretoken" value="[^"]+">'
        rf'<input type="hidden" name="version" value="{sub.version}" data-version-of="[^"]+">\s*'
        r'<button class="btn btn-danger" type="submit">Yes, cancel</button>',
        dialog.group(1),
    )
    assert "The rest of the billing period is refunded by the day." in visible_text(dialog.group(1))
    # the other dialogs stay closed
    assert not re.search(r'<dialog id="dlg-(suspend|reactivate)"\s+open', page)
    assert database_state() == before


@pytest.mark.rule("X1")
def test_x1_confirm_cancel_after_the_window_offers_no_yes_cancel(signed_in, customer, e3, now):
    sub = subscribe(customer, e3, started=LATE)
    page = page_of(signed_in.get(detail(sub, confirm="cancel")))
    assert "Yes, cancel" not in page or '<dialog id="dlg-cancel" open' not in page


@pytest.fixture
def isv_offer(db):
    product = factories.ProductFactory(isv=True, name="Fabrikam Backup")
    return factories.SkuFactory(product=product, name="Fabrikam Backup", availabilities=[("P1Y", "monthly", "10.00")])


@pytest.mark.rule("X3")
def test_x3_isv_cancelled_within_72_hours_is_refunded_in_full(signed_in, customer, isv_offer, now):
    # bought 100 hours ago; the publisher confirmed the set-up 30 hours ago, when its billing started
    sub = subscribe(
        customer, isv_offer, quantity=3, started=NOW - timedelta(hours=30), setup_confirmed_at=NOW - timedelta(hours=30)
    )
    Subscription.objects.filter(pk=sub.pk).update(created_at=NOW - timedelta(hours=100))
    factories.BillingLineFactory(subscription=sub, amount=Decimal("30.00"))
    page = page_of(signed_in.get(detail(sub, confirm="cancel")))
    assert (
        "Cancelled within 72 hours of the start of its billing on 2026-11-24 06:00 UTC, it is refunded in full."
    ) in visible_text(page)
    assert "Cancel until 2026-11-27 06:00 UTC · 1 d 18 h left." in visible_text(page)
    message, _ = success_after(signed_in, signed_in.post(subscription_url("cancel", sub), drawn(sub)))
    assert message == "Cancelled. Refund: 30.00 USD."
    assert list(
        BillingLine.objects.filter(subscription=sub, kind="cancellation_refund").values_list("amount", "explanation")
    ) == [(Decimal("-30.00"), "full refund within 72 hours")]


@pytest.mark.rule("X3")
def test_x3_isv_after_72_hours_offers_turning_auto_renew_off_instead(signed_in, customer, isv_offer, now):
    sub = subscribe(customer, isv_offer, quantity=3, started=NOW - timedelta(hours=73))
    reason = (
        "The 72-hour cancellation period closed on 2026-11-25 11:00 UTC. Turn auto-renew off instead: the "
        "subscription then ends with its term."
    )
    page = page_of(signed_in.get(detail(sub)))
    assert disabled_button(page, "Cancel subscription") == reason
    assert re.search(r'<button class="btn" type="submit" >Turn auto-renew off</button>', commandbar(page))
    before = database_state()
    response = signed_in.post(subscription_url("cancel", sub), drawn(sub))
    assert response.status_code == 422
    assert error_of(page_of(response)) == reason
    assert database_state() == before


# --- auto-renew and rename ----------------------------------------------------------------------


@pytest.mark.rule("R6")
@pytest.mark.rule("N1")
def test_auto_renew_off_then_on_and_off_deletes_the_scheduled_changes(signed_in, customer, e3, now):
    sub = subscribe(customer, e3)
    factories.ScheduledChangeFactory(subscription=sub, quantity=20)
    message, page = success_after(
        signed_in, signed_in.post(subscription_url("auto-renew", sub), drawn(sub, {"on": "0"}))
    )
    assert message == "Auto-renew turned off."
    assert Subscription.objects.get(pk=sub.pk).auto_renew is False
    assert not ScheduledChange.objects.filter(subscription=sub).exists()  # R6
    assert props(page)["Auto-renew"] == "Off"
    assert props(page)["Term end (inclusive)"] == "2027-11-22 (UTC); ends at 2027-11-23 00:00 UTC"
    message, page = success_after(
        signed_in, signed_in.post(subscription_url("auto-renew", sub), drawn(sub, {"on": "1"}))
    )
    assert message == "Auto-renew turned on."
    assert Subscription.objects.get(pk=sub.pk).auto_renew is True
    assert props(page)["Auto-renew"] == "On"


def test_auto_renew_already_on_is_a_conflict(signed_in, customer, e3, now):
    sub = subscribe(customer, e3)
    before = database_state()
    response = signed_in.post(subscription_url("auto-renew", sub), drawn(sub, {"on": "1"}))
    assert response.status_code == 409
    assert error_of(page_of(response)) == "Auto-renew is already on."
    assert database_state() == before


@pytest.mark.rule("P4")
def test_p4_auto_renew_of_a_suspended_subscription_cannot_change(signed_in, customer, e3, now):
    sub = subscribe(customer, e3, suspended=True)
    before = database_state()
    response = signed_in.post(subscription_url("auto-renew", sub), drawn(sub, {"on": "1"}))
    assert response.status_code == 422
    assert (
        error_of(page_of(response))
        == "Auto-renew can only be changed on an active subscription (this one is suspended)."
    )
    assert database_state() == before


@pytest.mark.rule("T2")
def test_t2_billing_admin_may_toggle_auto_renew(client, direct_partner, customer, e3, now):
    sub = subscribe(customer, e3)
    client.force_login(factories.staff(direct_partner, "billing_admin"))
    assert client.post(subscription_url("auto-renew", sub), drawn(sub, {"on": "0"})).status_code == 302
    assert Subscription.objects.get(pk=sub.pk).auto_renew is False


@pytest.mark.rule("S2")
@pytest.mark.rule("L1")
def test_rename_shows_the_new_name(signed_in, customer, e3, now):
    sub = subscribe(customer, e3)
    message, page = success_after(
        signed_in, signed_in.post(subscription_url("rename", sub), drawn(sub, {"friendly_name": "  Contoso HQ  "}))
    )
    assert message == "Renamed to Contoso HQ."
    assert Subscription.objects.get(pk=sub.pk).friendly_name == "Contoso HQ"
    assert "<h1>Contoso HQ <span" in page
    assert rows(section(page, "Audit trail"))[0][2:] == [
        "Renamed to Contoso HQ",
        "Name: none → Name: Contoso HQ",
    ]
    # an empty name goes back to the offer's name
    message, page = success_after(
        signed_in, signed_in.post(subscription_url("rename", sub), drawn(sub, {"friendly_name": ""}))
    )
    assert message == "Renamed to Microsoft 365 E3."


def test_rename_escapes_markup(signed_in, customer, e3, now):
    sub = subscribe(customer, e3)
    message, page = success_after(
        signed_in, signed_in.post(subscription_url("rename", sub), drawn(sub, {"friendly_name": "<b>x</b>"}))
    )
    assert "<b>x</b>" not in page
    assert "&lt;b&gt;x&lt;/b&gt;" in page


@pytest.mark.parametrize("length", [201, 250, 5000])
def test_rename_too_long_is_refused_and_changes_nothing(signed_in, customer, e3, now, length):
    sub = subscribe(customer, e3, friendly_name="Contoso HQ")
    before = database_state()
    response = signed_in.post(subscription_url("rename", sub), drawn(sub, {"friendly_name": "x" * length}))
    assert response.status_code == 422
    assert error_of(page_of(response)) == "A friendly name can have at most 200 characters."
    assert database_state() == before


def test_rename_to_exactly_200_characters_is_accepted(signed_in, customer, e3, now):
    sub = subscribe(customer, e3)
    success_after(signed_in, signed_in.post(subscription_url("rename", sub), drawn(sub, {"friendly_name": "x" * 200})))
    assert Subscription.objects.get(pk=sub.pk).friendly_name == "x" * 200


# --- A1–A5: add-ons on a base subscription ------------------------------------------------------


def traditional_addon(base_sku, name, *, price="2.00", **extra):
    """An add-on of `base_sku` at 2.00 a license unless `price` says otherwise."""
    return factories.addon_offer(base_sku, name=name, price=price, **extra)


@pytest.mark.rule("A1")
@pytest.mark.rule("A3")
@pytest.mark.rule("A5")
def test_a1_buying_a_traditional_addon_from_the_base_page(signed_in, customer, e3, now):
    base = subscribe(customer, e3)
    audio = traditional_addon(e3, "Microsoft 365 Audio Conferencing")
    # not eligible: for another base, or not sold in the customer's country
    traditional_addon(factories.SkuFactory(name="Office 365 E1"), "Visio Plan 2")
    traditional_addon(e3, "Fabrikam Phone System", available_countries="DE")
    page = page_of(signed_in.get(detail(base)))
    # then only the eligible add-on is offered, with a quantity
    addons = section(page, "Add-ons")
    assert re.findall(r'aria-label="Quantity of ([^"]+)"', addons) == ["Microsoft 365 Audio Conferencing"]
    assert f'name="addon-{audio.pk}"' in addons
    assert (
        "Add-ons end with this subscription on 2027-11-22 (UTC); the first charge is prorated to the end of the "
        "current billing period."
    ) in visible_text(addons)
    # when 4 are bought
    message, page = success_after(
        signed_in, signed_in.post(subscription_url("addons", base), drawn(base, {f"addon-{audio.pk}": "4"}))
    )
    assert message == "Bought 4 × Microsoft 365 Audio Conferencing."
    addon = Subscription.objects.get(base_subscription=base)
    # A5: it ends with its base, its first charge prorated: 2.00 × 4 × 28/30 = 7.466… = 7.47
    assert (addon.sku, addon.status, addon.quantity, addon.term_end, addon.term, addon.billing_frequency) == (
        audio,
        Status.ACTIVE,
        4,
        base.term_end,
        "P1Y",
        "monthly",
    )
    assert list(
        BillingLine.objects.filter(subscription=addon).values_list(
            "kind", "amount", "period_start", "period_end", "explanation"
        )
    ) == [("purchase", Decimal("7.47"), date(2026, 11, 25), date(2026, 12, 22), "2.00 × 4 × 28/30 days")]
    # and the base page lists it
    assert "Microsoft 365 Audio Conferencing · 4 · Active · ends 2027-11-22" in visible_text(section(page, "Add-ons"))


@pytest.mark.rule("A1")
@pytest.mark.parametrize(
    "raw, message",
    [
        ("abc", BAD_QUANTITY),
        ("-2", BAD_QUANTITY),
        ("1.5", BAD_QUANTITY),
        ("99999999999", "99,999,999,999 licenses is more than any offer allows."),
        pytest.param("9" * 10_000, "That is more licenses than any offer allows.", id="10-kB-of-digits"),
    ],
)
def test_a1_bad_addon_quantity_is_refused(signed_in, customer, e3, now, raw, message):
    base = subscribe(customer, e3)
    audio = traditional_addon(e3, "Microsoft 365 Audio Conferencing")
    before = database_state()
    response = signed_in.post(subscription_url("addons", base), drawn(base, {f"addon-{audio.pk}": raw}))
    assert response.status_code == 422
    assert error_of(page_of(response)) == message
    assert database_state() == before


@pytest.mark.rule("A1")
def test_a1_no_addon_quantity_is_refused(signed_in, customer, e3, now):
    base = subscribe(customer, e3)
    audio = traditional_addon(e3, "Microsoft 365 Audio Conferencing")
    before = database_state()
    response = signed_in.post(subscription_url("addons", base), drawn(base, {f"addon-{audio.pk}": ""}))
    assert response.status_code == 422
    assert error_of(page_of(response)) == "Enter a quantity for at least one add-on."
    assert database_state() == before


@pytest.mark.rule("A1")
def test_a1_buying_one_of_two_eligible_addons_as_the_form_sends_it(signed_in, customer, e3, now):
    base = subscribe(customer, e3)
    audio = traditional_addon(e3, "Microsoft 365 Audio Conferencing")
    phone = traditional_addon(e3, "Microsoft 365 Phone System", price="8.00")
    page = page_of(signed_in.get(detail(base)))
    assert f'name="addon-{phone.pk}" min="0" value="0"' in page
    # each with its price for the base's term and billing, before anything is bought
    assert re.search(
        r"Microsoft 365 Phone System <span class=\"muted\">8\.00 USD per license, billed monthly</span>", page
    )
    assert re.search(
        r"Microsoft 365 Audio Conferencing <span class=\"muted\">2\.00 USD per license, billed monthly", page
    )
    response = signed_in.post(
        subscription_url("addons", base), drawn(base, {f"addon-{audio.pk}": "4", f"addon-{phone.pk}": "0"})
    )
    assert response.status_code == 302
    assert list(Subscription.objects.filter(base_subscription=base).values_list("sku", "quantity")) == [(audio.pk, 4)]


@pytest.mark.rule("A1")
def test_a1_addons_need_an_active_base(signed_in, customer, e3, now):
    base = subscribe(customer, e3, suspended=True)
    audio = traditional_addon(e3, "Microsoft 365 Audio Conferencing")
    page = page_of(signed_in.get(detail(base)))
    assert f'name="addon-{audio.pk}"' not in page
    before = database_state()
    response = signed_in.post(subscription_url("addons", base), drawn(base, {f"addon-{audio.pk}": "4"}))
    assert response.status_code == 422
    assert error_of(page_of(response)) == "Add-ons need an active base subscription."
    assert database_state() == before


@pytest.mark.rule("A3")
def test_a3_an_addon_not_eligible_for_this_base_is_refused(signed_in, customer, e3, now):
    base = subscribe(customer, e3)
    other_base = traditional_addon(factories.SkuFactory(name="Office 365 E1"), "Visio Plan 2")
    german = traditional_addon(e3, "Fabrikam Phone System", available_countries="DE")
    new_commerce = factories.SkuFactory(
        name="Teams Premium", is_addon=True, availabilities=[("P1Y", "monthly", "7.00")]
    )
    new_commerce.base_skus.add(e3)
    before = database_state()
    for sku in (other_base, german, new_commerce):
        response = signed_in.post(subscription_url("addons", base), drawn(base, {f"addon-{sku.pk}": "2"}))
        assert response.status_code == 422
        assert error_of(page_of(response)) == "That add-on is not available for this subscription."
    response = signed_in.post(subscription_url("addons", base), drawn(base, {"addon-abc": "2"}))
    assert response.status_code == 422
    assert error_of(page_of(response)) == "That add-on is not available for this subscription."
    assert database_state() == before


@pytest.mark.rule("A3")
def test_a3_an_addon_not_sold_for_the_bases_term_is_refused(signed_in, customer, e3, now):
    base = subscribe(customer, e3)
    monthly_term = traditional_addon(e3, "Microsoft 365 Audio Conferencing", term="P1M")
    before = database_state()
    response = signed_in.post(subscription_url("addons", base), drawn(base, {f"addon-{monthly_term.pk}": "2"}))
    assert response.status_code == 422
    # (not listed either: A3 lists only add-ons that can end with the base)
    assert error_of(page_of(response)) == "That add-on is not available for this subscription."
    assert database_state() == before


@pytest.mark.rule("A2")
def test_a2_an_indirect_reseller_cannot_buy_addons(client, provider, e3, now):
    link = factories.ResellerLinkFactory(provider=provider)
    base = subscribe(factories.CustomerFactory(partner=provider), e3, reseller=link.reseller)
    audio = traditional_addon(e3, "Microsoft 365 Audio Conferencing")
    client.force_login(factories.staff(link.reseller, "admin_agent"))
    before = database_state()
    assert client.post(subscription_url("addons", base), drawn(base, {f"addon-{audio.pk}": "4"})).status_code == 403
    assert database_state() == before


@pytest.mark.rule("A2")
def test_a2_an_indirect_provider_can_buy_addons(client, provider, e3, now):
    base = subscribe(factories.CustomerFactory(partner=provider), e3)
    audio = traditional_addon(e3, "Microsoft 365 Audio Conferencing")
    client.force_login(factories.staff(provider, "sales_agent"))
    assert client.post(subscription_url("addons", base), drawn(base, {f"addon-{audio.pk}": "4"})).status_code == 302
    assert Subscription.objects.filter(base_subscription=base).count() == 1


# --- S3: ISV SaaS publisher set-up --------------------------------------------------------------


def bought_isv(customer, sales, now, *, free_trial_days=0, quantity=3):
    """An ISV SaaS offer bought and fulfilled today: pending, waiting for the publisher's set-up."""
    product = factories.ProductFactory(isv=True, name="Fabrikam Backup")
    sku = factories.SkuFactory(
        product=product,
        name="Fabrikam Backup",
        free_trial_days=free_trial_days,
        availabilities=[("P1Y", "monthly", "10.00")],
    )
    order = factories.OrderFactory(customer=customer, placed_by=sales)
    factories.OrderLineFactory(order=order, availability=factories.availability(sku, "P1Y"), quantity=quantity)
    fulfill_order(order_id=order.pk, now=now)
    return Subscription.objects.get(sku=sku)


@pytest.mark.rule("S3")
def test_s3_pending_isv_subscription_links_to_the_publisher_and_confirming_activates_and_bills(
    signed_in, customer, sales, now
):
    sub = bought_isv(customer, sales, now)
    assert (sub.status, sub.billing_lines.count()) == (Status.PENDING, 0)
    # the page says action is needed and links to the (simulated) publisher's site
    page = page_of(signed_in.get(detail(sub)))
    setup = reverse("subscriptions:publisher-setup", args=[sub.pk])
    assert f'<a class="btn btn-primary" href="{setup}">Go to publisher\'s site</a>' in page
    assert (
        "Action needed: finish the account set-up on the publisher's site. The subscription stays pending and "
        "unbilled until the publisher confirms it; no email is sent for it."
    ) in visible_text(page)
    assert props(page)["Status"] == "Pending"
    # the publisher's page offers to confirm
    publisher_page = page_of(signed_in.get(setup))
    assert "Simulated publisher site (demo)" in publisher_page
    assert '<button class="btn btn-primary" type="submit">Confirm account set-up</button>' in publisher_page
    # confirming it makes the subscription active and billed from today
    message, page = success_after(signed_in, signed_in.post(setup, drawn(sub)))
    assert message == "Fabrikam Software confirmed the account set-up: the subscription is active."
    sub.refresh_from_db()
    assert (sub.status, sub.setup_confirmed_at, sub.term_start, sub.term_end) == (
        Status.ACTIVE,
        NOW,
        NOW,
        date(2027, 11, 24),
    )
    assert list(
        BillingLine.objects.filter(subscription=sub).values_list(
            "kind", "amount", "period_start", "period_end", "explanation"
        )
    ) == [("purchase", Decimal("30.00"), date(2026, 11, 25), date(2026, 12, 24), "10.00 × 3")]
    assert "Go to publisher" not in page
    assert props(page)["Status"] == "Active"
    # no email (S3)
    assert mail.outbox == []
    # and confirming again is refused, the page says it is done
    before = database_state()
    response = signed_in.post(setup, drawn(sub))
    assert response.status_code == 422
    assert "Only an ISV subscription waiting for its publisher set-up can be confirmed." in visible_text(
        page_of(response)
    )
    assert "The set-up is already confirmed: the subscription is active." in visible_text(page_of(signed_in.get(setup)))
    assert database_state() == before


@pytest.mark.rule("S3")
@pytest.mark.rule("Q4")
def test_s3_confirmed_isv_subscription_holds_its_licenses_once(signed_in, customer, sales, now):
    sub = bought_isv(customer, sales, now, quantity=3)
    success_after(signed_in, signed_in.post(reverse("subscriptions:publisher-setup", args=[sub.pk]), drawn(sub)))
    page = page_of(signed_in.get(detail(sub)))
    assert "3 licenses can be removed now:" in visible_text(quantity_panel(page))
    assert sum(q - r for q, r in SeatLot.objects.filter(subscription=sub).values_list("quantity", "removed")) == 3


@pytest.mark.rule("S3")
@pytest.mark.rule("S4")
def test_s3_confirming_during_the_free_trial_activates_without_billing(signed_in, customer, sales, now):
    sub = bought_isv(customer, sales, now, free_trial_days=30)
    setup = reverse("subscriptions:publisher-setup", args=[sub.pk])
    assert "starts its billing when its free trial ends" in visible_text(page_of(signed_in.get(setup)))
    success_after(signed_in, signed_in.post(setup, drawn(sub)))
    sub.refresh_from_db()
    assert (sub.status, sub.is_trial, sub.term_start) == (Status.ACTIVE, True, NOW + timedelta(days=30))
    assert not BillingLine.objects.filter(subscription=sub).exists()
    assert AuditEntry.objects.filter(subscription=sub).order_by("-at", "-pk").first().summary == (
        "Publisher confirmed the set-up: free trial running, billed from its end"
    )


@pytest.mark.rule("X3")
@pytest.mark.rule("S3")
def test_x3_a_set_up_pending_for_five_days_is_cancelled_from_the_page_with_nothing_to_refund(
    signed_in, customer, sales, now
):
    # given an ISV subscription bought five days ago whose set-up is still pending
    sub = bought_isv(customer, sales, now - timedelta(days=5))
    page = page_of(signed_in.get(detail(sub)))
    # then Cancel subscription is offered, and the set-up notice says it can be cancelled until it is confirmed
    assert 'href="?confirm=cancel#confirm" data-dialog-open="dlg-cancel">Cancel subscription</a>' in commandbar(page)
    assert disabled_button(page, "Cancel subscription") is None
    assert (
        "unbilled until the publisher confirms it; no email is sent for it. Until then it can be cancelled at any "
        "time, with nothing to refund."
    ) in visible_text(page)
    # and its confirmation says nothing is refunded, nothing having been billed
    dialog = re.search(
        r'<dialog id="dlg-cancel" open.*?</dialog>', page_of(signed_in.get(detail(sub, confirm="cancel"))), re.S
    )
    assert "Nothing is billed until the publisher confirms the set-up, so nothing is refunded." in visible_text(
        dialog.group(0)
    )
    # when it is cancelled
    message, page = success_after(signed_in, signed_in.post(subscription_url("cancel", sub), drawn(sub)))
    # then it is deleted at once, with no billing line
    assert message == "Cancelled. Refund: 0.00 USD."
    sub.refresh_from_db()
    assert (sub.status, sub.cancelled_at) == (Status.DELETED, NOW)
    assert not BillingLine.objects.filter(subscription=sub).exists()
    assert rows(section(page, "Audit trail"))[0][2] == (
        "Cancelled while awaiting the publisher's set-up: nothing was billed, nothing refunded"
    )


@pytest.mark.rule("S4")
def test_s4_an_isv_free_trial_page_never_says_to_convert_it(signed_in, customer, sales, now):
    # given an ISV subscription bought 10 days ago in its 30-day free trial, set up the day after
    sub = bought_isv(customer, sales, now - timedelta(days=10), free_trial_days=30)
    success_after(signed_in, signed_in.post(reverse("subscriptions:publisher-setup", args=[sub.pk]), drawn(sub)))
    # when its page is opened
    page = page_of(signed_in.get(detail(sub)))
    # then it is a trial until 2026-12-15 12:00 UTC, which becomes paid then; there is no trial to convert
    assert '<span class="badge">Trial</span>' in page
    assert props(page)["Free trial ends"] == "2026-12-15 12:00 UTC"
    assert "convert" not in visible_text(page).lower()
    assert (
        "Nothing is billed during the free trial, which runs until 2026-12-15 12:00 UTC: it then becomes a paid "
        "subscription."
    ) in visible_text(section(page, "Billing frequency"))


@pytest.mark.rule("S4")
@pytest.mark.rule("S3")
def test_s4_a_paid_isv_subscription_awaiting_set_up_after_its_trial_has_no_trial_wording(
    signed_in, customer, sales, now
):
    # given an ISV subscription bought 31 days ago, its 30-day free trial over, its set-up still pending
    sub = bought_isv(customer, sales, now - timedelta(days=31), free_trial_days=30)
    # when its page is opened
    page = page_of(signed_in.get(detail(sub)))
    # then it is no trial any more: no badge, no trial reasons, no conversion; only when the free trial ended
    assert '<span class="badge">Trial</span>' not in page
    assert props(page)["Free trial ended"] == "2026-11-24 12:00 UTC"
    assert "convert" not in visible_text(page).lower()
    assert "A trial" not in visible_text(page)
    # and it can be cancelled, nothing having been billed
    assert disabled_button(page, "Cancel subscription") is None


@pytest.mark.rule("S3")
@pytest.mark.rule("T2")
def test_s3_support_agent_cannot_confirm_the_set_up(client, direct_partner, customer, sales, now):
    sub = bought_isv(customer, sales, now)
    client.force_login(factories.staff(direct_partner, "support_agent"))
    before = database_state()
    assert client.post(reverse("subscriptions:publisher-setup", args=[sub.pk]), drawn(sub)).status_code == 403
    assert database_state() == before


# --- CSRF ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "action, data",
    [
        ("suspend", {}),
        ("cancel", {}),
        ("quantity", {"quantity": "7"}),
        ("auto-renew", {"on": "0"}),
        ("rename", {"friendly_name": "Forged"}),
    ],
)
def test_a_post_without_csrf_token_is_refused_and_changes_nothing(sales, customer, e3, now, action, data):
    sub = subscribe(customer, e3)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(sales)
    before = database_state()
    response = browser.post(subscription_url(action, sub), drawn(sub, data))
    assert response.status_code == 403
    assert "Nothing was changed." in page_of(response)
    assert database_state() == before
    # and with the page's token the same post works
    browser.get(detail(sub))
    response = browser.post(
        subscription_url(action, sub), drawn(sub, {**data, "csrfmiddlewaretoken": browser.cookies["csrftoken"].value})
    )
    assert response.status_code == 302


def test_publisher_setup_without_csrf_token_is_refused(sales, customer, now):
    sub = bought_isv(customer, sales, now)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(sales)
    before = database_state()
    assert browser.post(reverse("subscriptions:publisher-setup", args=[sub.pk])).status_code == 403
    assert database_state() == before


# --- SQL ----------------------------------------------------------------------------------------


def fill(subscription, n, sales):
    """n license batches, n billing lines, n audit entries, n scheduled changes and n add-ons."""
    for i in range(n):
        factories.SeatLotFactory(subscription=subscription, quantity=1, added_at=NOW - timedelta(hours=i + 1))
        factories.BillingLineFactory(subscription=subscription, amount=Decimal("1.00"))
        audit.record(
            actor=factories.UserFactory(),
            at=NOW - timedelta(minutes=i),
            customer=subscription.customer,
            subscription=subscription,
            action="subscription.renamed",
            summary=f"Renamed {i}",
        )
        factories.ScheduledChangeFactory(
            subscription=subscription,
            kind=ScheduledChange.Kind.UPGRADE,
            quantity=None,
            target_sku=factories.SkuFactory(),
        )
        subscribe(subscription.customer, factories.SkuFactory(is_addon=True), base_subscription=subscription)


@pytest.mark.rule("S2")
def test_s2_detail_page_query_count_does_not_grow_with_the_data(signed_in, sales, customer, e3, now):
    few_sub, many_sub = subscribe(customer, e3), subscribe(customer, e3)
    traditional_addon(e3, "Microsoft 365 Audio Conferencing")
    fill(few_sub, 1, sales)
    fill(many_sub, 10, sales)
    signed_in.get(detail(few_sub))  # warm-up: the session and the user are loaded once per request anyway
    few, many = count_queries(signed_in, detail(few_sub)), count_queries(signed_in, detail(many_sub))
    print(f"subscription page: {few} queries with 1 of each, {many} with 10 of each")
    assert many == few
    assert many <= QUERY_BUDGET
    # the preview costs no more per row either
    assert count_queries(signed_in, detail(many_sub, quantity=30)) <= QUERY_BUDGET + 2


# --- The page shows the verdicts of checks, never its own ------------------------------------------------


@pytest.mark.rule("Q1")
@pytest.mark.rule("Q2")
def test_q2_an_increase_preview_says_until_when_the_plan_and_the_new_batch_let_its_licenses_go(
    signed_in, sales, customer, e3, now
):
    # given a subscription of 10 licenses, and the plan for 15 of them now
    sub = subscribe(customer, e3)
    plan = services.plan_quantity_change(sub, user=sales, quantity=15, now=NOW)
    assert plan.removable_until == NOW + checks.REMOVAL_WINDOW == datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    # when the increase is previewed
    preview = preview_of(page_of(signed_in.get(detail(sub, quantity=15))))
    # then the preview says the plan's instant
    assert f"The added licenses can be removed until {checks.when_utc(plan.removable_until)}." in preview
    # and a reduction's plan has no such instant, nor its preview the sentence
    assert services.plan_quantity_change(sub, user=sales, quantity=8, now=NOW).removable_until is None
    assert "can be removed until" not in preview_of(page_of(signed_in.get(detail(sub, quantity=8))))
    # and once carried out, the added batch's window closes at the instant the preview said
    success_after(signed_in, signed_in.post(subscription_url("quantity", sub), drawn(sub, {"quantity": "15"})))
    assert SeatLot.objects.get(subscription=sub, source=SeatLot.Source.INCREASE).window_ends_at == plan.removable_until


CANCEL_ONLY = "Cancel until 2026-11-30 12:00 UTC · 5 d 0 h left."
CANCEL_OR_REMOVE = "Cancel, or remove the licenses this term started with, until 2026-11-30 12:00 UTC · 5 d 0 h left."


@pytest.mark.rule("X1")
@pytest.mark.rule("Q2")
@pytest.mark.rule("Q5")
@pytest.mark.rule("Q6")
@pytest.mark.parametrize(
    "state, covers",
    [
        ({}, True),
        # P2: a suspended subscription can still be cancelled in its window, but its licenses can't change (Q6)
        ({"suspended": True}, False),
        # Q5: no quantity update is left, so no license can be removed either
        ({"quantity_updates": checks.MAX_QUANTITY_UPDATES}, False),
    ],
)
def test_x1_the_cancel_notice_offers_removing_licenses_only_when_they_can_be_removed(
    signed_in, sales, customer, e3, now, state, covers
):
    # given a subscription inside its cancellation window (until 2026-11-30 12:00 UTC)
    sub = subscribe(customer, e3, **state)
    assert checks.cancellation_covers_removal(sub, sales, NOW) is covers
    # when its page is opened
    text = visible_text(page_of(signed_in.get(detail(sub))))
    # then it can be cancelled, and the notice offers removing the term's licenses as checks says
    assert checks.allowed_actions(sub, sales, NOW)["cancel"].allowed
    assert (CANCEL_OR_REMOVE in text, CANCEL_ONLY in text) == (covers, not covers)


@pytest.mark.rule("S3")
@pytest.mark.parametrize("isv", [True, False])
@pytest.mark.parametrize("status", [Status.PENDING, Status.ACTIVE, Status.SUSPENDED, Status.DELETED])
def test_s3_the_set_up_banner_and_the_home_list_follow_awaiting_setup(signed_in, customer, now, isv, status):
    # given a subscription of an ISV or a Microsoft offer in this status
    sku = factories.SkuFactory(product=factories.ProductFactory(isv=isv), availabilities=[("P1Y", "monthly", "10.00")])
    sub = subscribe(customer, sku, status=status, auto_renew=status == Status.ACTIVE)
    waiting = checks.awaiting_setup(sub)
    assert waiting is (isv and status == Status.PENDING)
    # then the queryset form selects it exactly when the check says it waits
    assert list(Subscription.objects.filter(checks.awaiting_setup_filter())) == ([sub] if waiting else [])
    # and its page asks for the set-up, and the Home page lists it, exactly then
    assert ("Action needed: finish the account set-up" in visible_text(page_of(signed_in.get(detail(sub))))) is waiting
    home = page_of(signed_in.get(reverse("portal:home")))
    assert ("finish the set-up on the publisher's site" in home) is waiting


@pytest.mark.rule("N5")
@pytest.mark.rule("P2")
@pytest.mark.parametrize(
    "state, outcome",
    [
        ({}, checks.AtTermEnd.RENEWS),
        ({"auto_renew": False}, checks.AtTermEnd.EXPIRES),
        ({"suspended": True}, checks.AtTermEnd.DISABLED),
        ({"is_trial": True, "auto_renew": False}, checks.AtTermEnd.TRIAL_ENDS),
        ({"deleted": True}, None),
    ],
)
def test_n5_the_banner_says_what_happens_at_the_term_end_as_the_engine_does_it(
    signed_in, customer, e3, now, state, outcome
):
    # given a subscription in this state
    sub = subscribe(customer, e3, **state)
    assert checks.at_term_end(sub) == outcome
    # when its page is opened
    text = visible_text(page_of(signed_in.get(detail(sub))))
    # then the banner says it ends (N5) or is disabled (P2) exactly when that is what happens
    assert ("Auto-renew is off: this subscription ends on 2027-11-22 (UTC)." in text) is (
        outcome == checks.AtTermEnd.EXPIRES
    )
    assert ("Reactivate it before then, or it becomes disabled" in text) is (outcome == checks.AtTermEnd.DISABLED)


@pytest.mark.rule("Q2")
@pytest.mark.rule("Q4")
def test_q4_the_removable_column_shows_what_each_batch_still_holds(signed_in, customer, e3, now):
    # given a purchase of 10 and a batch of 6 added yesterday of which 4 were removed since
    sub = subscribe(customer, e3)
    added = factories.add_lot(sub, quantity=6, removed=4, added_at=NOW - timedelta(days=1))
    assert (added.remaining, SeatLot.objects.get(subscription=sub, source="purchase").remaining) == (2, 10)
    # when the licenses to reduce are listed
    panel = quantity_panel(page_of(signed_in.get(detail(sub))))
    # then each batch shows what it still holds, and the sum of them can be removed
    assert "12 licenses can be removed now:" in visible_text(panel)
    assert [row[1] for row in rows(panel)] == ["2", "10"]


@pytest.mark.rule("A1")
@pytest.mark.rule("A2")
@pytest.mark.parametrize(
    "state, role, offered",
    [
        ({}, "sales_agent", True),
        # A2: a role that can't buy still sees what the base can get, with the button disabled and why
        ({}, "support_agent", True),
        ({"suspended": True}, "sales_agent", False),
        ({"deleted": True}, "sales_agent", False),
    ],
)
def test_a1_the_page_offers_addons_exactly_when_the_base_takes_them(
    client, direct_partner, customer, e3, now, state, role, offered
):
    # given a base subscription in this state, and an add-on of its offer
    base = subscribe(customer, e3, **state)
    audio = traditional_addon(e3, "Microsoft 365 Audio Conferencing")
    assert checks.takes_addons(base) is offered
    user = factories.staff(direct_partner, role)
    client.force_login(user)
    # when its page is opened
    page = page_of(client.get(detail(base)))
    # then the add-on is offered exactly when the base takes add-ons (A1), its button as the role allows (A2)
    assert (f'name="addon-{audio.pk}"' in page) is offered
    bought = checks.allowed_actions(base, user, NOW)["buy_addons"]
    assert bought.allowed is (offered and role == "sales_agent")
    if offered and not bought.allowed:
        assert re.search(rf'disabled title="{re.escape(escape(bought.reason))}"[^>]*>Buy add-ons</button>', page)


# --- the term end line and the status button: verdicts of checks, not of the template --------------------------


def isv_free_trial(customer):
    sku = factories.SkuFactory(
        isv=True, name="Contoso CRM", free_trial_days=30, availabilities=[("P1Y", "monthly", "9.00")]
    )
    return subscribe(customer, sku, is_trial=True, trial_ends_at=datetime(2026, 12, 23, 12, 0, tzinfo=UTC))


@pytest.mark.rule("N1")
@pytest.mark.rule("N5")
@pytest.mark.rule("N6")
@pytest.mark.rule("P2")
@pytest.mark.rule("TR1")
@pytest.mark.rule("S4")
@pytest.mark.parametrize(
    "state, outcome, line",
    [
        ({}, "renews", "renews at 2027-11-23 00:00 UTC"),
        ({"auto_renew": False}, "expires", "ends at 2027-11-23 00:00 UTC"),
        # N6: the engine has taken the renewal and not finished it
        ({"renewal_pending": True}, "renewing", "renewing now, from 2027-11-23 00:00 UTC"),
        # P2: a suspended subscription doesn't renew, even with auto-renew on (a traditional one keeps it on)
        ({"suspended": True}, "disabled", "becomes disabled at 2027-11-23 00:00 UTC unless reactivated before"),
        (
            {"suspended": True, "auto_renew": True},
            "disabled",
            "becomes disabled at 2027-11-23 00:00 UTC unless reactivated before",
        ),
        # TR1: a trial converts to the paid offer, or ends with auto-renew off
        ({"trial": True}, "converts", "converts to a paid subscription at 2027-11-23 00:00 UTC"),
        ({"trial": True, "auto_renew": False}, "trial_ends", "ends at 2027-11-23 00:00 UTC"),
        # an ended subscription says nothing more
        ({"deleted": True}, None, ""),
        ({"status": Status.EXPIRED, "auto_renew": False}, None, ""),
    ],
)
def test_the_term_end_line_says_what_happens_as_checks_decide_it(signed_in, customer, e3, now, state, outcome, line):
    # given a subscription in this state
    sub = subscribe(customer, e3, **state)
    assert checks.term_end_outcome(sub) == outcome
    # when its page is opened, then its term end line says that
    shown = props(page_of(signed_in.get(detail(sub))))["Term end (inclusive)"]
    assert shown == "2027-11-22 (UTC)" + (f"; {line}" if line else "")


@pytest.mark.rule("S4")
@pytest.mark.rule("N1")
def test_an_isv_free_trials_term_end_line_says_what_its_paid_term_does_at_its_end(signed_in, customer, now):
    # given an ISV subscription in its free trial, its paid term (fixed at purchase) ending 2027-11-22
    sub = isv_free_trial(customer)
    assert checks.at_term_end(sub) == checks.AtTermEnd.FREE_TRIAL_ENDS
    # then its term end line says what the paid term does: it renews (auto-renew on), or ends
    assert props(page_of(signed_in.get(detail(sub))))["Term end (inclusive)"] == (
        "2027-11-22 (UTC); renews at 2027-11-23 00:00 UTC"
    )
    Subscription.objects.filter(pk=sub.pk).update(auto_renew=False)
    assert props(page_of(signed_in.get(detail(sub))))["Term end (inclusive)"] == (
        "2027-11-22 (UTC); ends at 2027-11-23 00:00 UTC"
    )


@pytest.mark.rule("P1")
@pytest.mark.rule("P2")
@pytest.mark.rule("S2")
@pytest.mark.parametrize(
    "state, at, label, reason",
    [
        ({}, NOW, "Suspend", ""),
        ({"suspended": True}, NOW, "Reactivate", ""),
        # P2: the term ended while suspended: it can never be reactivated
        (
            {"suspended": True},
            datetime(2027, 11, 23, 0, 0, tzinfo=UTC),
            "Reactivate",
            "The term ended on 2027-11-22 (UTC) while suspended: the subscription is disabled and can't be reactivated.",
        ),
        # N6: read-only while the renewal is processed
        (
            {"suspended": True, "renewal_pending": True},
            NOW,
            "Reactivate",
            "The renewal is being processed: try again in two minutes.",
        ),
        ({"trial": True}, NOW, "Suspend", "A trial's status can't change: convert the trial first."),
        ({"deleted": True}, NOW, "Suspend", "Only an active subscription can be suspended (this one is deleted)."),
        (
            {"status": Status.PENDING},
            NOW,
            "Suspend",
            "Only an active subscription can be suspended (this one is pending).",
        ),
    ],
)
def test_the_status_button_is_the_verdict_of_allowed_actions_with_its_reason(
    signed_in, sales, customer, e3, now, state, at, label, reason
):
    # given a subscription in this state, its page opened at `at`
    sub = subscribe(customer, e3, **state)
    with time_machine.travel(at, tick=False):
        signed_in.force_login(sales)  # a session of a year ago has expired
        page = page_of(signed_in.get(detail(sub)))
        verdict = checks.status_action(sub, checks.allowed_actions(sub, sales, at))
    # then the command bar shows the one status button checks choose, enabled or disabled with the same reason
    assert (verdict.label, verdict.reason) == (label, reason)
    bar = commandbar(page)
    other = "Reactivate" if label == "Suspend" else "Suspend"
    assert f">{other}<" not in bar
    if reason:
        assert disabled_button(page, label) == reason
        assert f"{label}: {reason}" in why_list(page)
        assert "?confirm=" + label.lower() not in bar
    else:
        name = label.lower()
        assert f'href="?confirm={name}#confirm" data-dialog-open="dlg-{name}">{label}</a>' in bar
        assert not any(item.startswith(f"{label}:") for item in why_list(page))


@pytest.mark.rule("L1")
def test_the_audit_trail_shows_recorded_values_as_people_read_them(signed_in, customer, now):
    # given an entry recording a term, a billing frequency, auto-renew, a status and a time as the services store them
    subscription = factories.SubscriptionFactory(customer=customer)
    audit.record(
        actor=None,
        at=now,
        customer=customer,
        subscription=subscription,
        action="subscription.renewed",
        summary="Renewed",
        before={"term": "P1M", "billing_frequency": "monthly", "auto_renew": True, "status": "suspended"},
        after={"term": "P1Y", "next_charge_on": None, "term_start": "2026-12-01T00:00:00+00:00", "is_trial": False},
    )
    # when its page is opened
    row = [r for r in re.findall(r"<tr>.*?</tr>", signed_in.get(subscription_url("detail", subscription)).content.decode(), re.S)
           if "Renewed" in r][0]  # fmt: skip
    # then the values read as the page names them, not as stored, in one order on every database
    assert visible_text(row).endswith(
        "Auto-renew: On, Status: Suspended, Term: 1 month, Billing frequency: Monthly → Term: 1 year, "
        "Next charge: none, Trial: No, Term start: 2026-12-01 00:00 UTC"
    )
    assert "P1M" not in row and "monthly" not in row


@pytest.mark.rule("S3")
def test_a_microsoft_subscription_has_no_publisher_set_up_page(signed_in, customer):
    microsoft = factories.SubscriptionFactory(customer=customer, status=Status.PENDING)
    assert microsoft.sku.product.publisher.is_microsoft
    before = database_state()
    assert signed_in.get(reverse("subscriptions:publisher-setup", args=[microsoft.pk])).status_code == 404
    assert (
        signed_in.post(reverse("subscriptions:publisher-setup", args=[microsoft.pk]), drawn(microsoft)).status_code
        == 404
    )
    assert database_state() == before
