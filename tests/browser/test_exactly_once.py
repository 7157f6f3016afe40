"""Exactly once in real Chromium: a double click on an irreversible confirmation acts once (issue 9, finding 1),
and a change from a tab opened before another change is refused with what changed, nothing done."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from catalog.models import Cart, CartLine, UpgradePath
from subscriptions import services
from subscriptions.models import BillingLine, Subscription
from tests.browser.conftest import NOW, e3_subscription, make_offer, offer_card, open_panel, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.rule("U7")
def test_double_clicking_yes_upgrade_upgrades_once(page: Page, live_server, contoso):
    agent, customer = contoso
    source = e3_subscription(customer, started=NOW - timedelta(days=30), quantity=30)
    e5 = make_offer("Microsoft 365 E5", prices=[("P1Y", "monthly", "20.00")])
    UpgradePath.objects.create(source=source.sku, target=e5, supported=True)
    sign_in(page, live_server.url, agent)
    # the upgrade's preview: 10 of the 30 licenses into a new E5 subscription
    page.goto(
        f"{live_server.url}/customers/{customer.pk}/subscriptions/{source.pk}/upgrade/?target={e5.pk}"
        "&quantity=10&term=P1Y&billing_frequency=monthly&into="
    )
    confirm = page.get_by_role("button", name="Yes, upgrade")
    expect(confirm).to_be_enabled()
    # when the partner double-clicks "Yes, upgrade"
    confirm.dblclick()
    # then the page moves on to the one new subscription, and only one upgrade happened
    expect(page.get_by_role("heading", level=1)).to_contain_text("Microsoft 365 E5")
    expect(page.get_by_role("status").first).to_contain_text("Upgraded 10 licenses to Microsoft 365 E5.")
    assert list(Subscription.objects.filter(sku=e5).values_list("quantity", flat=True)) == [10]
    assert Subscription.objects.get(pk=source.pk).quantity == 20
    assert BillingLine.objects.filter(kind=BillingLine.Kind.UPGRADE_CREDIT).count() == 1


def test_a_tab_opened_before_a_change_is_told_what_changed(page: Page, live_server, contoso):
    agent, customer = contoso
    sub = e3_subscription(customer, started=NOW - timedelta(days=30))
    sign_in(page, live_server.url, agent)
    url = f"{live_server.url}/customers/{customer.pk}/subscriptions/{sub.pk}/"
    older = page.context.new_page()
    older.goto(url)
    # another tab suspends it
    page.goto(url)
    page.get_by_role("link", name="Suspend").click()
    page.get_by_role("dialog").get_by_role("button", name="Yes, suspend").click()
    expect(page.get_by_role("status").first).to_contain_text("Suspended")
    # when the older tab, still showing it active, renames it
    older.get_by_label("Friendly name").fill("Sales team")
    older.get_by_role("button", name="Rename").click()
    # then it is told what changed since, and nothing was renamed
    expect(older.get_by_role("alert").first).to_contain_text(
        "This subscription changed since you opened the page: Suspended; auto-renew turned off"
    )
    assert Subscription.objects.get(pk=sub.pk).friendly_name == ""


# ---------------------------------------------------------------- the catalog's "Add to cart", with htmx


@pytest.fixture
def two_offers(contoso):
    agent, customer = contoso
    return (
        agent,
        customer,
        make_offer("Microsoft 365 E3"),
        make_offer("Microsoft 365 Business Basic", category="small_business"),
    )


def cart_lines(customer):
    return sorted(CartLine.objects.filter(cart__customer=customer).values_list("availability__sku__name", "quantity"))


@pytest.mark.rule("K1")
def test_double_clicking_add_to_cart_adds_the_offer_once(page: Page, live_server, two_offers):
    agent, customer, e3, _basic = two_offers
    sign_in(page, live_server.url, agent)
    page.goto(f"{live_server.url}/customers/{customer.pk}/add-subscription/")
    posts = []
    page.on("request", lambda request: posts.append(request.url) if request.method == "POST" else None)
    card = offer_card(page, "Microsoft 365 E3")
    # when the partner double-clicks "Add to cart" on one card
    card.get_by_role("button", name="Add to cart").dblclick()
    # then one license of it is in the cart, added by one request
    expect(card.locator(".feedback")).to_contain_text("Added Microsoft 365 E3 to the cart (1 in the cart).")
    page.wait_for_timeout(500)  # a second request, if one were sent, would be answered by now
    assert cart_lines(customer) == [("Microsoft 365 E3", 1)]
    assert len(posts) == 1
    assert Cart.objects.get(customer=customer).version == 1  # created by the one add, never changed since


@pytest.mark.rule("K1")
def test_add_to_cart_on_two_cards_at_once_adds_both(page: Page, live_server, two_offers):
    agent, customer, _e3, _basic = two_offers
    sign_in(page, live_server.url, agent)
    page.goto(f"{live_server.url}/customers/{customer.pk}/add-subscription/")
    e3_card, basic_card = offer_card(page, "Microsoft 365 E3"), offer_card(page, "Microsoft 365 Business Basic")
    # when the partner clicks "Add to cart" on one card and then on another before the first is answered
    page.evaluate("""() => document.querySelectorAll('#results article.offer form button[type=submit]')
                         .forEach((button) => button.click())""")
    # then both are added, neither refused as made from an older page (both forms were drawn with the same version)
    expect(e3_card.locator(".feedback")).to_contain_text("Added Microsoft 365 E3 to the cart (1 in the cart).")
    expect(basic_card.locator(".feedback")).to_contain_text(
        "Added Microsoft 365 Business Basic to the cart (1 in the cart)."
    )
    expect(page.locator("#cart-count")).to_have_text("2")
    assert cart_lines(customer) == [("Microsoft 365 Business Basic", 1), ("Microsoft 365 E3", 1)]


def test_cards_redrawn_while_an_add_to_cart_is_out_dont_stop_the_next_one(page: Page, live_server, two_offers):
    agent, customer, _e3, _basic = two_offers
    sign_in(page, live_server.url, agent)
    page.goto(f"{live_server.url}/customers/{customer.pk}/add-subscription/")
    held = []
    page.route("**/cart/add/", lambda route: held.append(route))
    # given an Add to cart still out (held here) and another card's waiting behind it
    offer_card(page, "Microsoft 365 E3").get_by_role("button", name="Add to cart").click()
    offer_card(page, "Microsoft 365 Business Basic").get_by_role("button", name="Add to cart").click()
    page.wait_for_timeout(200)
    assert len(held) == 1
    # when a filter redraws every card, and then the request out fails (the network dropped it)
    with page.expect_response(lambda response: "small_business" in response.url):
        page.get_by_role("group", name="Category").get_by_role("checkbox", name="Small business").click()
    held.pop().abort()
    page.unroute("**/cart/add/")
    # then Add to cart on a redrawn card is still sent, and adds it
    card = offer_card(page, "Microsoft 365 Business Basic")
    card.get_by_role("button", name="Add to cart").click()
    expect(card.locator(".feedback")).to_contain_text("Added Microsoft 365 Business Basic to the cart (1 in the cart).")
    assert cart_lines(customer) == [("Microsoft 365 Business Basic", 1)]


def test_cards_redrawn_while_an_add_to_cart_is_out_take_the_version_it_made(page: Page, live_server, two_offers):
    agent, customer, _e3, _basic = two_offers
    sign_in(page, live_server.url, agent)
    page.goto(f"{live_server.url}/customers/{customer.pk}/add-subscription/")
    held = []
    page.route("**/cart/add/", lambda route: held.append(route))
    # given an Add to cart still out (held here)
    offer_card(page, "Microsoft 365 E3").get_by_role("button", name="Add to cart").click()
    page.wait_for_timeout(200)
    assert len(held) == 1
    # when a filter redraws every card (with the cart as it was before that add), and then the add is answered
    with page.expect_response(lambda response: "small_business" in response.url):
        page.get_by_role("group", name="Category").get_by_role("checkbox", name="Small business").click()
    with page.expect_response(lambda response: "/cart/add/" in response.url):
        held.pop().continue_()
    page.unroute("**/cart/add/")
    # then Add to cart on a redrawn card goes on from the version that add made: added, not refused as stale
    card = offer_card(page, "Microsoft 365 Business Basic")
    card.get_by_role("button", name="Add to cart").click()
    expect(card.locator(".feedback")).to_contain_text("Added Microsoft 365 Business Basic to the cart (1 in the cart).")
    assert cart_lines(customer) == [("Microsoft 365 Business Basic", 1), ("Microsoft 365 E3", 1)]


# ---------------------------------------------------------------- a panel redrawn is not the page redrawn


def renamed_elsewhere(sub, agent):
    """Someone else renames the subscription, as another tab would: the page opened before is now older."""
    services.rename_subscription(
        subscription_id=sub.pk,
        actor=agent,
        friendly_name="Renamed elsewhere",
        version=Subscription.objects.get(pk=sub.pk).version,
        now=timezone.now(),
    )


def test_a_renewal_draft_redrawn_doesnt_make_an_older_page_current(page: Page, live_server, contoso):
    agent, customer = contoso
    e3 = make_offer("Microsoft 365 E3", prices=[("P1Y", "monthly", "10.00"), ("P1Y", "annual", "114.00")])
    sub = e3_subscription(customer, started=NOW - timedelta(days=30), e3=e3)
    sign_in(page, live_server.url, agent)
    page.goto(f"{live_server.url}/customers/{customer.pk}/subscriptions/{sub.pk}/")
    renamed_elsewhere(sub, agent)
    # when the older page's Manage renewal panel redraws its choices for another billing frequency (an htmx GET,
    # nothing saved)
    page.get_by_role("toolbar", name="Subscription actions").get_by_role("link", name="Manage renewal").click()
    renewal = page.locator("#manage-renewal")
    with page.expect_response(lambda response: "renewal_draft" in response.url) as draft:
        renewal.get_by_label("Billing frequency").select_option("annual")
    # (the draft's URL carries the choices, never the CSRF token: URLs end up in logs)
    assert "csrfmiddlewaretoken" not in draft.value.url and "billing_frequency=annual" in draft.value.url
    page.keyboard.press("Escape")
    # and then auto-renew is turned off from the command bar, which still shows the subscription as it was
    page.get_by_role("button", name="Turn auto-renew off").click()
    # then it is refused as made from an older page, and nothing changed
    expect(page.get_by_role("alert").first).to_contain_text(
        "This subscription changed since you opened the page: Renamed to Renamed elsewhere"
    )
    assert Subscription.objects.get(pk=sub.pk).auto_renew is True


def test_a_refusal_redrawn_in_a_panel_doesnt_make_an_older_page_current(page: Page, live_server, contoso):
    agent, customer = contoso
    e3 = make_offer("Microsoft 365 E3", prices=[("P1Y", "monthly", "10.00"), ("P1Y", "annual", "114.00")])
    sub = e3_subscription(customer, started=NOW - timedelta(days=2), e3=e3)
    sign_in(page, live_server.url, agent)
    page.goto(f"{live_server.url}/customers/{customer.pk}/subscriptions/{sub.pk}/")
    renamed_elsewhere(sub, agent)
    # when the older page changes the billing frequency: refused (409), the panel redrawn with the reason
    panel = page.locator("#billing-frequency")
    panel.get_by_role("button", name="Change at the next charge").click()
    expect(panel.get_by_role("alert")).to_contain_text("This subscription changed since you opened the page")
    # and then auto-renew is turned off from the command bar, drawn before the change
    page.get_by_role("button", name="Turn auto-renew off").click()
    # then that is refused too: only the panel shows the subscription as it is now
    expect(page.get_by_role("alert").first).to_contain_text("This subscription changed since you opened the page")
    sub.refresh_from_db()
    assert (sub.auto_renew, sub.next_charge_frequency) == (True, "")


def test_a_change_made_in_a_panel_keeps_the_rest_of_its_page_current(page: Page, live_server, contoso):
    agent, customer = contoso
    e3 = make_offer("Microsoft 365 E3", prices=[("P1Y", "monthly", "10.00"), ("P1Y", "annual", "114.00")])
    sub = e3_subscription(customer, started=NOW - timedelta(days=2), e3=e3)
    sign_in(page, live_server.url, agent)
    page.goto(f"{live_server.url}/customers/{customer.pk}/subscriptions/{sub.pk}/")
    # when the billing frequency is changed in its panel (htmx: only the panel is redrawn)
    panel = page.locator("#billing-frequency")
    panel.get_by_role("button", name="Change at the next charge").click()
    expect(panel.get_by_role("status").first).to_contain_text("it is billed annually")
    # then the page's other forms go on from the version that change made
    page.get_by_role("button", name="Turn auto-renew off").click()
    expect(page.get_by_role("status").first).to_contain_text("Auto-renew turned off.")
    sub.refresh_from_db()
    assert (sub.auto_renew, sub.next_charge_frequency) == (False, "annual")


@pytest.mark.rule("U7")
def test_yes_upgrade_in_the_side_panel_disables_itself_once_sent(page: Page, live_server, contoso):
    agent, customer = contoso
    source = e3_subscription(customer, started=NOW - timedelta(days=30), quantity=30)
    e5 = make_offer("Microsoft 365 E5", prices=[("P1Y", "monthly", "20.00")])
    UpgradePath.objects.create(source=source.sku, target=e5, supported=True)
    sign_in(page, live_server.url, agent)
    page.goto(f"{live_server.url}/customers/{customer.pk}/subscriptions/{source.pk}/")
    upgrades = open_panel(page, "Check upgrades")
    target = upgrades.get_by_role("form", name="Upgrade to Microsoft 365 E5")
    target.get_by_label("Licenses").fill("10")
    target.get_by_role("button", name="Preview").click()
    confirm = upgrades.locator("#upgrade-preview").get_by_role("button", name="Yes, upgrade")
    posts = []
    page.on("request", lambda request: posts.append(request.url) if request.method == "POST" else None)
    # when the partner double-clicks "Yes, upgrade" in the panel (htmx sends the panel's forms)
    confirm.dblclick()
    # then one request was sent (the button disabled itself), and one upgrade happened
    expect(page.locator(".side-panel.open")).to_have_count(0)  # the whole page moves on
    expect(page.get_by_role("heading", level=1)).to_contain_text("Microsoft 365 E5")
    page.wait_for_timeout(500)  # a second request, if one were sent, would be on its way by now
    assert len(posts) == 1
    assert list(Subscription.objects.filter(sku=e5).values_list("quantity", flat=True)) == [10]
    assert Subscription.objects.get(pk=source.pk).quantity == 20
