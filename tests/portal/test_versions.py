"""Exactly once (portal/versions.py): a double submit, a second tab, a tampered form. Finding 1 of issue 9 was a
double click on "Yes, upgrade" that upgraded twice (two new subscriptions, two charges, two credits)."""

from datetime import timedelta
from html import unescape

import pytest
from django.urls import reverse

from catalog.models import Cart, CartLine, UpgradePath
from subscriptions.lifecycle import renew_due_subscriptions
from subscriptions.models import BillingLine, Subscription
from tests import factories
from tests.helpers import database_state, drawn

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent(direct_partner):
    return factories.staff(direct_partner, "sales_agent")


@pytest.fixture
def signed_in(client, agent):
    client.force_login(agent)
    return client


def page_url(sub, **query):
    return reverse("subscriptions:subscription-detail", args=[sub.customer_id, sub.pk]) + (
        "?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else ""
    )


def action_url(name, sub):
    return reverse(f"subscriptions:subscription-{name}", args=[sub.customer_id, sub.pk])


@pytest.mark.rule("U7")
def test_double_clicking_yes_upgrade_upgrades_once(signed_in, customer, now):
    # given Office 365 E1 with 30 licenses, and the preview of moving 10 of them to E3
    e1 = factories.SkuFactory(name="Office 365 E1")
    e3 = factories.SkuFactory(name="Office 365 E3", availabilities=[("P1Y", "monthly", "20.00")])
    UpgradePath.objects.create(source=e1, target=e3)
    source = factories.SubscriptionFactory(customer=customer, sku=e1, quantity=30)
    url = reverse("subscriptions:subscription-upgrade", args=[customer.pk, source.pk])
    preview = signed_in.get(url, {"target": e3.pk, "quantity": 10, "term": "P1Y", "billing_frequency": "monthly"})
    assert "data-submit-once" in preview.content.decode()  # the confirmation disables itself once sent
    confirm = drawn(
        source,
        {
            "target": e3.pk,
            "quantity": "10",
            "term": "P1Y",
            "billing_frequency": "monthly",
            "into": "",
            "confirm": "yes",
        },
    )
    # when "Yes, upgrade" is sent twice, as a double click sends it
    first = signed_in.post(url, confirm)
    after_first = database_state()
    second = signed_in.post(url, confirm)
    # then the first upgraded 10 licenses into one new E3 subscription, with one charge and one credit
    assert first.status_code == 302
    assert Subscription.objects.get(pk=source.pk).quantity == 20
    assert list(Subscription.objects.filter(sku=e3).values_list("quantity", flat=True)) == [10]
    assert BillingLine.objects.filter(kind=BillingLine.Kind.UPGRADE_CREDIT).count() == 1
    assert BillingLine.objects.filter(subscription__sku=e3).count() == 1
    # and the second was refused, saying what happened since, and changed nothing
    assert second.status_code == 409
    page = unescape(second.content.decode())
    assert "This subscription changed since you opened the page: 10 license(s) upgraded to Office 365 E3" in page
    assert "Nothing was done" in page
    assert database_state() == after_first


def test_a_page_opened_before_a_change_from_another_tab_is_refused_with_that_change(signed_in, customer, agent, now):
    # given the subscription's page open in two tabs
    sub = factories.SubscriptionFactory(customer=customer)
    tab_b = drawn(sub, {"on": "0"})
    # when tab A suspends it, then tab B turns auto-renew off from its older page
    assert signed_in.post(action_url("suspend", sub), drawn(sub)).status_code == 302
    before = database_state()
    response = signed_in.post(action_url("auto-renew", sub), tab_b)
    # then tab B is told what changed, by whom and when (UTC), and nothing changed
    assert response.status_code == 409
    assert (
        f"This subscription changed since you opened the page: Suspended; auto-renew turned off "
        f"({agent.get_full_name() or agent.username}, 2026-11-25 12:00 UTC). Nothing was done: review it as it "
        "is now and try again."
    ) in unescape(response.content.decode())
    assert database_state() == before


@pytest.mark.parametrize("version", [None, "", "abc", "-1", "9" * 40, "１", "1.0"])
def test_a_form_without_its_version_or_with_a_tampered_one_changes_nothing(signed_in, customer, version, now):
    sub = factories.SubscriptionFactory(customer=customer)
    before = database_state()
    data = {} if version is None else {"version": version}
    response = signed_in.post(action_url("suspend", sub), data)
    assert response.status_code == 409
    page = unescape(response.content.decode())
    assert "couldn't be matched to the page it was sent from" in page or "changed since you opened the page" in page
    assert database_state() == before


def test_a_support_agent_is_refused_for_the_role_before_the_version(client, customer, direct_partner, now):
    client.force_login(factories.staff(direct_partner, "support_agent"))
    sub = factories.SubscriptionFactory(customer=customer)
    before = database_state()
    assert client.post(action_url("suspend", sub), {}).status_code == 403
    assert database_state() == before


@pytest.mark.rule("N3")
def test_a_renewal_by_the_lifecycle_engine_makes_pages_drawn_before_it_stale(signed_in, customer, now):
    # given a page drawn on the last day of the term
    sub = factories.SubscriptionFactory(
        customer=customer, term_start=now - timedelta(days=365), term_end=(now - timedelta(days=1)).date()
    )
    old_page = drawn(sub)
    # when the engine renews it
    renew_due_subscriptions(now)
    sub.refresh_from_db()
    assert sub.term_end > now.date()
    # then a change sent from the old page is refused: the renewal started a new term and window
    before = database_state()
    response = signed_in.post(action_url("suspend", sub), old_page)
    assert response.status_code == 409
    assert database_state() == before
    # and one from a page drawn now goes through
    assert signed_in.post(action_url("suspend", sub), drawn(sub)).status_code == 302


def test_every_cart_change_bumps_the_cart_and_a_second_tab_is_refused(signed_in, customer, agent, now):

    sku = factories.SkuFactory()
    add = reverse("catalog:cart-add", args=[customer.pk])
    # the catalog drawn with no cart yet (version 0), in two tabs
    offer = {"availability": factories.availability(sku).pk, "quantity": "3", "version": "0"}
    assert signed_in.post(add, offer).status_code == 302
    cart = Cart.objects.get()
    lines = list(CartLine.objects.values_list("pk", "quantity"))
    # the second tab's add, from the page without the cart, is refused: it would have made 6
    response = signed_in.post(add, offer)
    assert response.status_code == 409
    assert list(CartLine.objects.values_list("pk", "quantity")) == lines
    assert Cart.objects.get().version == cart.version
