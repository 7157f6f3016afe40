"""The cart page shows each line's refusal as the purchase would give it now (catalog.cart.line_refusal), before
Purchase: not only the offer's eligibility (C4) but its quantity limits (K6–K8) and alignment (K11)."""

import html

import pytest
from django.urls import reverse

from catalog import cart as cart_services
from catalog.models import Sku
from subscriptions.models import Subscription
from tests import factories


@pytest.mark.rule("K7")
def test_k7_the_cart_page_shows_the_refusal_the_purchase_would_give_a_line(signed_in, sales, customer, now):
    # given a cart with 250 Copilot licenses for the customer's 250 base licenses (K7's maximum)
    e3 = factories.SkuFactory(name="Microsoft 365 E3")
    copilot = factories.SkuFactory(name="Microsoft 365 Copilot", is_addon=True, addon_limit=Sku.AddonLimit.MAX_BASE)
    copilot.base_skus.set([e3])
    base = factories.SubscriptionFactory(customer=customer, sku=e3, quantity=250)
    cart = factories.CartFactory(customer=customer, owner=sales)
    factories.CartLineFactory(cart=cart, availability=factories.availability(copilot), quantity=250)
    url = reverse("catalog:cart-detail", args=[customer.pk])
    assert "Can't be bought now" not in signed_in.get(url).content.decode()
    # when the base drops to 200 licenses
    Subscription.objects.filter(pk=base.pk).update(quantity=200)
    # then the cart page says, before Purchase, what the purchase would refuse the line with (line_refusal)
    page = signed_in.get(url).content.decode()
    expected = cart_services.line_refusal(
        cart=cart,
        availability=cart.lines.get().availability,
        quantity=250,
        aligned_end_date=None,
        today=now.date(),
        line_pk=cart.lines.get().pk,
    )
    assert expected.rule == "K7"
    assert f"Can't be bought now: {html.escape(expected.message)}" in page
    assert "Microsoft 365 Copilot can have at most 200 licenses" in page
    assert cart.lines.get().quantity == 250
