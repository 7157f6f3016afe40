"""K4/K5 across the cart and the purchase: what the partner sees is what is bought."""

import re
from html import escape

import pytest
from django.urls import reverse

from catalog import cart as cart_services
from catalog.checkout import purchase
from catalog.models import CartAdditionalReseller, Order
from portal.errors import RuleViolation, RuleViolations
from portal.models import Partner
from tests import factories


def open_cart(customer, actor, now):
    sku = factories.SkuFactory(name="Microsoft 365 E3")
    cart_services.add_to_cart(
        customer=customer,
        actor=actor,
        availability_id=factories.availability(sku).pk,
        quantity=5,
        aligned_end_date=None,
        now=now,
    )
    return cart_services.current_cart(customer, actor, now)


@pytest.fixture
def provider_world(provider):
    seller = factories.staff(provider, "sales_agent")
    signed = factories.ResellerLinkFactory(provider=provider).reseller
    unsigned = factories.ResellerLinkFactory(provider=provider, reseller__mpa_signed=False).reseller
    customer = factories.CustomerFactory(partner=provider, billing_country="DE")
    return {"seller": seller, "signed": signed, "unsigned": unsigned, "customer": customer}


@pytest.mark.rule("K4")
def test_k4_reseller_without_a_signed_mpa_cannot_be_chosen(provider_world, now):
    # given a cart
    w = provider_world
    cart = open_cart(w["customer"], w["seller"], now)
    # when the reseller without a signed MPA is chosen
    with pytest.raises(RuleViolation) as refused:
        cart_services.set_reseller(cart=cart, actor=w["seller"], reseller_id=w["unsigned"].pk, now=now)
    # then it is refused and the cart keeps no reseller
    assert refused.value.rule == "K4"
    assert "has not signed the Microsoft Partner Agreement" in refused.value.message
    cart.refresh_from_db()
    assert cart.reseller_id is None


@pytest.mark.rule("K4")
def test_k4_the_cart_lists_a_reseller_without_a_signed_mpa_unselectable_with_the_reason(client, provider_world, now):
    # given a cart, and a provider with one signed and one unsigned reseller
    w = provider_world
    open_cart(w["customer"], w["seller"], now)
    client.force_login(w["seller"])
    # when the cart is opened
    html = client.get(reverse("catalog:cart-detail", args=[w["customer"].pk])).content.decode()
    # then the unsigned one is listed but can't be picked, and the page says why; the signed one can be
    options = dict(re.findall(r'<option value="(\d+)"([^>]*)>', html))
    assert "disabled" in options[str(w["unsigned"].pk)] and "disabled" not in options[str(w["signed"].pk)]
    reasons = re.search(r'<div id="reseller-refusals">(.*?)</div>', html, re.S).group(1)
    assert escape(f"{w['unsigned'].name} ({w['unsigned'].partner_id}) has not signed the Microsoft") in reasons
    assert w["signed"].name not in reasons


@pytest.mark.rule("K4")
def test_k4_a_chosen_reseller_whose_mpa_lapsed_stays_selected_so_the_purchase_is_refused_not_dropped(
    client, provider_world, now
):
    # given a cart saved with a reseller that has since stopped having a signed MPA
    w = provider_world
    cart = open_cart(w["customer"], w["seller"], now)
    cart_services.set_reseller(cart=cart, actor=w["seller"], reseller_id=w["signed"].pk, now=now)
    Partner.objects.filter(pk=w["signed"].pk).update(mpa_signed=False)
    client.force_login(w["seller"])
    html = client.get(reverse("catalog:cart-detail", args=[w["customer"].pk])).content.decode()
    # then it stays selected and selectable (a disabled option isn't sent: the purchase would drop it silently)
    chosen = re.search(rf'<option value="{w["signed"].pk}"([^>]*)>', html).group(1)
    assert "selected" in chosen and "disabled" not in chosen


@pytest.mark.rule("K4")
def test_k4_purchase_uses_the_reseller_shown_on_the_submitted_page(provider_world, now):
    # given a cart saved with a reseller, then the partner picks "no reseller" and purchases without saving
    w = provider_world
    cart = open_cart(w["customer"], w["seller"], now)
    cart_services.set_reseller(cart=cart, actor=w["seller"], reseller_id=w["signed"].pk, now=now)
    # when the purchase carries the choice shown on the page
    order, created = purchase(cart=cart, actor=w["seller"], attested=True, now=now, reseller_id=None)
    # then the order is bought with no reseller, as a direct partner
    assert created
    assert (order.reseller_id, order.attested_as) == (None, Order.Attestation.DIRECT)


@pytest.mark.rule("K4")
def test_k4_purchase_refuses_a_posted_reseller_without_mpa_and_buys_nothing(provider_world, now):
    # given a cart with no reseller
    w = provider_world
    cart = open_cart(w["customer"], w["seller"], now)
    # when the purchase posts the reseller without a signed MPA
    with pytest.raises(RuleViolation) as refused:
        purchase(cart=cart, actor=w["seller"], attested=True, now=now, reseller_id=w["unsigned"].pk)
    # then nothing is bought and the cart is unchanged
    assert refused.value.rule == "K4"
    assert not Order.objects.exists()
    cart.refresh_from_db()
    assert (cart.status, cart.reseller_id) == ("open", None)


@pytest.mark.rule("K5")
def test_k5_direct_bill_partner_is_the_initial_reseller_and_declares_additional_ones(direct_partner, sales, now):
    # given an EU customer of a direct-bill partner, and another MPA-signed partner
    customer = factories.CustomerFactory(partner=direct_partner, billing_country="FR")
    other = factories.PartnerFactory(kind=Partner.Kind.INDIRECT_RESELLER, name="Proseware")
    cart = open_cart(customer, sales, now)
    # when the direct-bill partner declares the other partner, then itself
    cart_services.add_additional_reseller(cart=cart, actor=sales, partner_id_text=other.partner_id, now=now)
    with pytest.raises(RuleViolation) as refused:
        cart_services.add_additional_reseller(
            cart=cart, actor=sales, partner_id_text=direct_partner.partner_id, now=now
        )
    # then the other partner is declared, itself is refused as the initial reseller, and the order records it
    assert (
        refused.value.rule == "K5"
        and refused.value.message == f"{direct_partner.name} is already the initial reseller."
    )
    assert list(CartAdditionalReseller.objects.values_list("partner__name", "position")) == [("Proseware", 1)]
    order, _ = purchase(cart=cart, actor=sales, attested=True, now=now)
    assert list(order.additional_resellers.values_list("partner__name", flat=True)) == ["Proseware"]


@pytest.mark.rule("K5")
def test_k5_provider_cannot_declare_itself_as_an_additional_reseller(provider, provider_world, now):
    # given a cart with an initial reseller
    w = provider_world
    cart = open_cart(w["customer"], w["seller"], now)
    cart_services.set_reseller(cart=cart, actor=w["seller"], reseller_id=w["signed"].pk, now=now)
    # when the provider declares its own PartnerID
    with pytest.raises(RuleViolation) as refused:
        cart_services.add_additional_reseller(
            cart=cart, actor=w["seller"], partner_id_text=provider.partner_id, now=now
        )
    # then it is refused and nothing is declared
    assert refused.value.message == f"{provider.name} is the partner making this purchase, not an additional reseller."
    assert not CartAdditionalReseller.objects.exists()


@pytest.mark.rule("K5")
def test_k5_choosing_no_reseller_at_purchase_with_additional_resellers_buys_nothing(provider_world, now):
    # given a cart with an initial reseller and one additional reseller
    w = provider_world
    cart = open_cart(w["customer"], w["seller"], now)
    cart_services.set_reseller(cart=cart, actor=w["seller"], reseller_id=w["signed"].pk, now=now)
    extra = factories.PartnerFactory(name="Wingtip")
    cart_services.add_additional_reseller(cart=cart, actor=w["seller"], partner_id_text=extra.partner_id, now=now)
    # when the purchase posts "no reseller"
    with pytest.raises(RuleViolations) as refused:
        purchase(cart=cart, actor=w["seller"], attested=True, now=now, reseller_id=None)
    # then the additional reseller needs an initial one: nothing bought, nothing changed
    assert [v.rule for v in refused.value.violations.values()] == ["K5"]
    assert not Order.objects.exists()
    cart.refresh_from_db()
    assert cart.reseller_id == w["signed"].pk and cart.additional_resellers.count() == 1
