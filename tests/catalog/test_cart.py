"""The cart (K1), who may fill it (T1, T2), the indirect reseller (K4), EU/EFTA additional resellers (K5)
and cart expiry (K12)."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from catalog import cart as cart_services
from catalog.models import Cart, CartAdditionalReseller, CartLine
from portal.errors import RuleViolation
from portal.models import Partner
from tests import factories
from tests.helpers import add_to_cart

# K1 Cart -----------------------------------------------------------------------------------------


@pytest.mark.rule("K1")
def test_k1_added_offer_goes_into_the_users_open_cart_for_the_customer(customer, sales, now):
    # given an offer chosen for one month, billed monthly
    sku = factories.SkuFactory(name="Microsoft 365 Business Basic")
    monthly = factories.availability(sku, "P1M", "monthly")
    # when 7 licenses are added to the cart
    line = add_to_cart(customer, sales, monthly, 7, now)
    # then the user's open cart for this customer holds that line
    cart = cart_services.current_cart(customer, sales, now)
    assert (cart.customer, cart.owner, cart.status, cart.created_at) == (customer, sales, Cart.Status.OPEN, now)
    assert list(cart.lines.values_list("pk", "availability", "quantity", "added_at")) == [(line.pk, monthly.pk, 7, now)]


@pytest.mark.rule("K1")
def test_k1_cart_belongs_to_one_customer_and_one_staff_user(direct_partner, customer, sales, now):
    # given a second sales agent and a second customer of the same partner
    colleague = factories.staff(direct_partner, "sales_agent")
    other_customer = factories.CustomerFactory(partner=direct_partner)
    offer = factories.availability(factories.SkuFactory())
    # when each adds the offer for a customer
    mine = add_to_cart(customer, sales, offer, 1, now).cart
    theirs = add_to_cart(customer, colleague, offer, 2, now).cart
    other = add_to_cart(other_customer, sales, offer, 3, now).cart
    # then there are three carts, one per customer and user
    assert len({mine.pk, theirs.pk, other.pk}) == 3
    assert cart_services.current_cart(customer, sales, now).lines.get().quantity == 1
    assert cart_services.current_cart(customer, colleague, now).lines.get().quantity == 2
    assert cart_services.current_cart(other_customer, sales, now).lines.get().quantity == 3
    assert cart_services.current_cart(other_customer, colleague, now) is None


@pytest.mark.rule("K1")
def test_k1_cart_survives_logout(client, customer, sales, now):
    # given a sales agent who put an offer in the cart through the page
    offer = factories.availability(factories.SkuFactory())
    client.force_login(sales)
    response = client.post(reverse("catalog:cart-add", args=[customer.pk]), {"availability": offer.pk, "quantity": "4"})
    assert response.status_code == 302
    cart = cart_services.current_cart(customer, sales, now)
    # when the user signs out and back in
    client.logout()
    client.force_login(sales)
    # then the same cart, with its line, is still there
    again = cart_services.current_cart(customer, sales, now)
    assert again.pk == cart.pk
    assert list(again.lines.values_list("availability", "quantity")) == [(offer.pk, 4)]


@pytest.mark.rule("K1")
def test_k1_adding_the_same_offer_again_adds_to_its_line(customer, sales, now):
    # given 5 licenses of an offer in the cart
    offer = factories.availability(factories.SkuFactory())
    first = add_to_cart(customer, sales, offer, 5, now)
    # when 3 more are added
    second = add_to_cart(customer, sales, offer, 3, now + timedelta(minutes=1))
    # then one line holds 8
    assert second.pk == first.pk
    assert list(CartLine.objects.values_list("quantity", flat=True)) == [8]


@pytest.mark.rule("K1")
def test_k1_usage_based_offer_carries_no_quantity(customer, sales, now):
    # given a usage-based offer
    azure = factories.SkuFactory(usage=True, name="Azure plan", availabilities=[("P1M", "monthly", "0.00")])
    # when it is added with a quantity, twice
    add_to_cart(customer, sales, factories.availability(azure, "P1M"), 12, now)
    add_to_cart(customer, sales, factories.availability(azure, "P1M"), 3, now)
    # then the one line is for one subscription, not licenses
    assert list(CartLine.objects.values_list("quantity", flat=True)) == [1]


@pytest.mark.rule("K1")
def test_k1_line_quantity_can_be_changed_and_the_line_removed(customer, sales, now):
    # given two lines in the cart
    keep = add_to_cart(customer, sales, factories.availability(factories.SkuFactory()), 5, now)
    drop = add_to_cart(customer, sales, factories.availability(factories.SkuFactory()), 5, now)
    cart = keep.cart
    # when one line's quantity is changed and the other is removed
    cart_services.update_line(cart=cart, actor=sales, line_id=keep.pk, quantity=9, aligned_end_date=None, now=now)
    cart_services.remove_line(cart=cart, actor=sales, line_id=drop.pk, now=now)
    # then the cart holds the changed line only
    assert list(cart.lines.values_list("pk", "quantity")) == [(keep.pk, 9)]


@pytest.mark.rule("K1")
def test_k1_changing_a_line_that_is_gone_is_a_conflict(customer, sales, now):
    # given a line that was removed from the cart (another tab)
    line = add_to_cart(customer, sales, factories.availability(factories.SkuFactory()), 5, now)
    cart = line.cart
    cart_services.remove_line(cart=cart, actor=sales, line_id=line.pk, now=now)
    # when it is changed
    with pytest.raises(RuleViolation) as refused:
        cart_services.update_line(cart=cart, actor=sales, line_id=line.pk, quantity=9, aligned_end_date=None, now=now)
    # then it is refused as a conflict and nothing was created
    assert (refused.value.rule, refused.value.conflict) == ("K1", True)
    assert not CartLine.objects.exists()


# T1/T2 Who may fill a cart ------------------------------------------------------------------------


@pytest.mark.rule("T2")
@pytest.mark.parametrize("role", ["support_agent", "billing_admin"])
def test_t2_role_that_may_not_buy_cannot_add_to_cart(direct_partner, customer, now, role):
    # given a support agent (or billing admin)
    user = factories.staff(direct_partner, role)
    offer = factories.availability(factories.SkuFactory())
    # when they add an offer to the cart
    with pytest.raises(PermissionDenied) as refused:
        add_to_cart(customer, user, offer, 5, now)
    # then it is refused and nothing changed
    assert str(refused.value) == "Your role can't buy or change subscriptions: ask an admin agent or sales agent."
    assert not Cart.objects.exists() and not CartLine.objects.exists()


@pytest.mark.rule("T2")
def test_t2_support_agent_cannot_change_an_existing_cart(direct_partner, customer, sales, now):
    # given a cart with a line, and a support agent
    line = add_to_cart(customer, sales, factories.availability(factories.SkuFactory()), 5, now)
    support = factories.staff(direct_partner, "support_agent")
    # when the support agent changes or removes the line
    with pytest.raises(PermissionDenied):
        cart_services.update_line(
            cart=line.cart, actor=support, line_id=line.pk, quantity=50, aligned_end_date=None, now=now
        )
    with pytest.raises(PermissionDenied):
        cart_services.remove_line(cart=line.cart, actor=support, line_id=line.pk, now=now)
    # then the line is unchanged
    assert list(CartLine.objects.values_list("pk", "quantity")) == [(line.pk, 5)]


@pytest.mark.rule("T2")
@pytest.mark.parametrize("role", ["admin_agent", "sales_agent"])
def test_t2_admin_and_sales_agents_may_add_to_cart(direct_partner, customer, now, role):
    # given an admin agent or sales agent
    user = factories.staff(direct_partner, role)
    # when they add an offer
    add_to_cart(customer, user, factories.availability(factories.SkuFactory()), 5, now)
    # then it is in their cart
    assert cart_services.current_cart(customer, user, now).lines.get().quantity == 5


@pytest.mark.rule("T1")
def test_t1_indirect_reseller_cannot_add_to_cart(db, now):
    # given an indirect reseller's admin agent and a customer it is reseller of record for
    link = factories.ResellerLinkFactory()
    customer = factories.CustomerFactory(partner=link.provider, reseller=link.reseller)
    admin = factories.staff(link.reseller, "admin_agent")
    # when they add an offer
    with pytest.raises(PermissionDenied) as refused:
        add_to_cart(customer, admin, factories.availability(factories.SkuFactory()), 5, now)
    # then it is refused with the notice to contact the indirect provider, and nothing changed
    assert (
        str(refused.value)
        == "Indirect resellers can't buy or change subscriptions here: contact your indirect provider."
    )
    assert not Cart.objects.exists()


# K4 Indirect reseller ----------------------------------------------------------------------------


@pytest.fixture
def provider_sales(provider):
    return factories.staff(provider, "sales_agent")


@pytest.fixture
def provider_cart(provider, provider_sales, now):
    customer = factories.CustomerFactory(partner=provider, billing_country="DE")
    add_to_cart(customer, provider_sales, factories.availability(factories.SkuFactory()), 5, now)
    return cart_services.current_cart(customer, provider_sales, now)


@pytest.mark.rule("K4")
def test_k4_provider_picks_one_of_its_own_resellers(provider, provider_sales, provider_cart, now):
    # given a reseller of the provider
    reseller = factories.ResellerLinkFactory(provider=provider).reseller
    # when it is chosen for the purchase
    cart = cart_services.set_reseller(cart=provider_cart, actor=provider_sales, reseller_id=reseller.pk, now=now)
    # then the cart carries it
    provider_cart.refresh_from_db()
    assert cart.reseller == provider_cart.reseller == reseller


@pytest.mark.rule("K4")
def test_k4_reseller_is_optional(provider, provider_sales, provider_cart, now):
    # given a reseller chosen for the purchase
    reseller = factories.ResellerLinkFactory(provider=provider).reseller
    cart_services.set_reseller(cart=provider_cart, actor=provider_sales, reseller_id=reseller.pk, now=now)
    # when it is cleared
    cart_services.set_reseller(cart=provider_cart, actor=provider_sales, reseller_id=None, now=now)
    # then the purchase has no reseller
    provider_cart.refresh_from_db()
    assert provider_cart.reseller is None


@pytest.mark.rule("K4")
def test_k4_another_providers_reseller_is_refused(provider, provider_sales, provider_cart, now):
    # given a reseller of another indirect provider
    foreign = factories.ResellerLinkFactory().reseller
    # when it is chosen for the purchase
    with pytest.raises(RuleViolation) as refused:
        cart_services.set_reseller(cart=provider_cart, actor=provider_sales, reseller_id=foreign.pk, now=now)
    # then it is refused and the cart has no reseller
    assert (refused.value.rule, refused.value.message) == ("K4", "That reseller is not one of your indirect resellers.")
    provider_cart.refresh_from_db()
    assert provider_cart.reseller is None


@pytest.mark.rule("K4")
def test_k4_a_partner_that_is_not_a_reseller_of_the_provider_is_refused(provider, provider_sales, provider_cart, now):
    # given a direct-bill partner
    direct = factories.PartnerFactory(kind=Partner.Kind.DIRECT_BILL)
    # when it is chosen as the reseller
    with pytest.raises(RuleViolation) as refused:
        cart_services.set_reseller(cart=provider_cart, actor=provider_sales, reseller_id=direct.pk, now=now)
    # then it is refused and the cart has no reseller
    assert refused.value.rule == "K4"
    provider_cart.refresh_from_db()
    assert provider_cart.reseller is None


@pytest.mark.rule("K4")
def test_k4_direct_bill_partner_cannot_associate_a_reseller(customer, sales, now):
    # given a direct-bill partner's cart, and some indirect reseller
    add_to_cart(customer, sales, factories.availability(factories.SkuFactory()), 5, now)
    cart = cart_services.current_cart(customer, sales, now)
    reseller = factories.ResellerLinkFactory().reseller
    # when the direct-bill partner chooses it
    with pytest.raises(RuleViolation) as refused:
        cart_services.set_reseller(cart=cart, actor=sales, reseller_id=reseller.pk, now=now)
    # then it is refused and the cart has no reseller
    assert (refused.value.rule, refused.value.message) == (
        "K4",
        "Only indirect providers associate an indirect reseller with a purchase.",
    )
    cart.refresh_from_db()
    assert cart.reseller is None


# K5 EU/EFTA additional resellers -----------------------------------------------------------------


@pytest.fixture
def eu_cart(provider, provider_sales, provider_cart, now):
    """A German customer's cart with an initial reseller chosen."""
    reseller = factories.ResellerLinkFactory(provider=provider, reseller__name="Initial Reseller GmbH").reseller
    return cart_services.set_reseller(cart=provider_cart, actor=provider_sales, reseller_id=reseller.pk, now=now)


def declare(cart, actor, partner_id, now):
    return cart_services.add_additional_reseller(cart=cart, actor=actor, partner_id_text=partner_id, now=now)


def declared(cart) -> list[tuple[str, int]]:
    return list(cart.additional_resellers.order_by("position").values_list("partner__partner_id", "position"))


@pytest.mark.rule("K5")
def test_k5_eu_customer_declares_additional_resellers_by_partner_id(eu_cart, provider_sales, now):
    # given two known partners that signed the MPA
    first = factories.PartnerFactory(partner_id="6100001")
    second = factories.PartnerFactory(partner_id="6100002")
    # when they are declared by PartnerID (spaces around it are ignored)
    declare(eu_cart, provider_sales, " 6100001 ", now)
    declare(eu_cart, provider_sales, "6100002", now)
    # then both are declared, in order
    assert declared(eu_cart) == [(first.partner_id, 1), (second.partner_id, 2)]


@pytest.mark.rule("K5")
def test_k5_efta_customer_may_declare_additional_resellers(provider, provider_sales, now):
    # given a Norwegian (EFTA) customer with an initial reseller
    customer = factories.CustomerFactory(partner=provider, billing_country="NO")
    add_to_cart(customer, provider_sales, factories.availability(factories.SkuFactory()), 5, now)
    reseller = factories.ResellerLinkFactory(provider=provider).reseller
    cart = cart_services.set_reseller(
        cart=cart_services.current_cart(customer, provider_sales, now),
        actor=provider_sales,
        reseller_id=reseller.pk,
        now=now,
    )
    extra = factories.PartnerFactory()
    # when an additional reseller is declared
    declare(cart, provider_sales, extra.partner_id, now)
    # then it is
    assert declared(cart) == [(extra.partner_id, 1)]


@pytest.mark.rule("K5")
def test_k5_customer_outside_the_eu_efta_declares_none(provider, provider_sales, now):
    # given a US customer with an initial reseller
    customer = factories.CustomerFactory(partner=provider, billing_country="US")
    add_to_cart(customer, provider_sales, factories.availability(factories.SkuFactory()), 5, now)
    reseller = factories.ResellerLinkFactory(provider=provider).reseller
    cart = cart_services.set_reseller(
        cart=cart_services.current_cart(customer, provider_sales, now),
        actor=provider_sales,
        reseller_id=reseller.pk,
        now=now,
    )
    # when an additional reseller is declared
    with pytest.raises(RuleViolation) as refused:
        declare(cart, provider_sales, factories.PartnerFactory().partner_id, now)
    # then it is refused and none is declared
    assert (refused.value.rule, refused.value.message) == (
        "K5",
        "Additional resellers are declared only for customers in the EU/EFTA.",
    )
    assert not CartAdditionalReseller.objects.exists()


@pytest.mark.rule("K5")
def test_k5_initial_reseller_comes_before_any_additional_one(provider_cart, provider_sales, now):
    # given an EU customer's cart without an initial reseller
    extra = factories.PartnerFactory()
    # when an additional reseller is declared
    with pytest.raises(RuleViolation) as refused:
        declare(provider_cart, provider_sales, extra.partner_id, now)
    # then it is refused and none is declared
    assert (refused.value.rule, refused.value.message) == (
        "K5",
        "Choose the initial reseller before any additional one.",
    )
    assert not CartAdditionalReseller.objects.exists()


@pytest.mark.rule("K5")
def test_k5_at_most_five_additional_resellers(eu_cart, provider_sales, now):
    # given five additional resellers declared
    five = [factories.PartnerFactory() for _ in range(5)]
    for partner in five:
        declare(eu_cart, provider_sales, partner.partner_id, now)
    # when a sixth is declared
    with pytest.raises(RuleViolation) as refused:
        declare(eu_cart, provider_sales, factories.PartnerFactory().partner_id, now)
    # then it is refused and the five stay
    assert (refused.value.rule, refused.value.message) == ("K5", "At most 5 additional resellers can be declared.")
    assert declared(eu_cart) == [(p.partner_id, i) for i, p in enumerate(five, start=1)]


@pytest.mark.rule("K5")
@pytest.mark.parametrize(
    "typed, message",
    [
        ("9999999", "No partner has the PartnerID 9999999."),
        ("", "No partner has the PartnerID (empty)."),
    ],
)
def test_k5_unknown_partner_id_is_refused(eu_cart, provider_sales, now, typed, message):
    # given no partner has the typed PartnerID
    # when it is declared
    with pytest.raises(RuleViolation) as refused:
        declare(eu_cart, provider_sales, typed, now)
    # then it is refused, saying so, and none is declared
    assert (refused.value.rule, refused.value.message, refused.value.field) == ("K5", message, "partner_id")
    assert not CartAdditionalReseller.objects.exists()


@pytest.mark.rule("K5")
def test_k5_partner_without_the_mpa_is_refused(eu_cart, provider_sales, now):
    # given a known partner that has not signed the Microsoft Partner Agreement
    unsigned = factories.PartnerFactory(name="Unsigned Partner", partner_id="6200001", mpa_signed=False)
    # when it is declared
    with pytest.raises(RuleViolation) as refused:
        declare(eu_cart, provider_sales, unsigned.partner_id, now)
    # then it is refused, naming it, and none is declared
    assert (refused.value.rule, refused.value.message) == (
        "K5",
        "Unsigned Partner (6200001) has not signed the Microsoft Partner Agreement.",
    )
    assert not CartAdditionalReseller.objects.exists()


@pytest.mark.rule("K5")
def test_k5_the_same_partner_cannot_be_declared_twice(eu_cart, provider_sales, now):
    # given an additional reseller already declared
    extra = factories.PartnerFactory(name="Twice Partner")
    declare(eu_cart, provider_sales, extra.partner_id, now)
    # when it is declared again
    with pytest.raises(RuleViolation) as refused:
        declare(eu_cart, provider_sales, extra.partner_id, now)
    # then it is refused and declared once
    assert (refused.value.rule, refused.value.message) == ("K5", "Twice Partner is already declared.")
    assert declared(eu_cart) == [(extra.partner_id, 1)]


@pytest.mark.rule("K5")
def test_k5_the_initial_reseller_cannot_also_be_additional(eu_cart, provider_sales, now):
    # given the initial reseller
    # when it is declared as an additional reseller
    with pytest.raises(RuleViolation) as refused:
        declare(eu_cart, provider_sales, eu_cart.reseller.partner_id, now)
    # then it is refused and none is declared
    assert (refused.value.rule, refused.value.message) == (
        "K5",
        "Initial Reseller GmbH is already the initial reseller.",
    )
    assert not CartAdditionalReseller.objects.exists()


@pytest.mark.rule("K5")
def test_k5_removing_an_additional_reseller_keeps_the_others_in_order(eu_cart, provider_sales, now):
    # given three additional resellers
    a, b, c = (factories.PartnerFactory() for _ in range(3))
    for partner in (a, b, c):
        declare(eu_cart, provider_sales, partner.partner_id, now)
    # when the second is removed
    cart_services.remove_additional_reseller(cart=eu_cart, actor=provider_sales, partner_pk=b.pk, now=now)
    # then the others are numbered 1 and 2
    assert declared(eu_cart) == [(a.partner_id, 1), (c.partner_id, 2)]


@pytest.mark.rule("K5")
def test_k5_clearing_the_initial_reseller_removes_the_additional_ones(eu_cart, provider_sales, now):
    # given an additional reseller declared
    declare(eu_cart, provider_sales, factories.PartnerFactory().partner_id, now)
    # when the initial reseller is cleared
    cart_services.set_reseller(cart=eu_cart, actor=provider_sales, reseller_id=None, now=now)
    # then no additional reseller is left
    assert not CartAdditionalReseller.objects.exists()


@pytest.mark.rule("K5")
def test_k5_positions_stay_consecutive_when_an_additional_reseller_becomes_the_initial_one(
    provider, eu_cart, provider_sales, now
):
    # given two additional resellers; the first is also one of the provider's resellers
    first = factories.ResellerLinkFactory(provider=provider).reseller
    second = factories.PartnerFactory()
    declare(eu_cart, provider_sales, first.partner_id, now)
    declare(eu_cart, provider_sales, second.partner_id, now)
    # when the first becomes the initial reseller, and a third additional one is declared
    cart_services.set_reseller(cart=eu_cart, actor=provider_sales, reseller_id=first.pk, now=now)
    third = factories.PartnerFactory()
    declare(eu_cart, provider_sales, third.partner_id, now)
    # then the additional resellers are numbered 1 and 2, in the order declared
    assert declared(eu_cart) == [(second.partner_id, 1), (third.partner_id, 2)]


# K12 Cart expiry ---------------------------------------------------------------------------------


@pytest.mark.rule("K12")
def test_k12_cart_created_7_days_ago_is_expired(customer, sales, now):
    # given a cart created exactly 7 days ago
    cart = factories.CartFactory(customer=customer, owner=sales, created_at=now - timedelta(days=7))
    factories.CartLineFactory(cart=cart)
    # when the user's current cart is looked up
    current = cart_services.current_cart(customer, sales, now)
    # then there is none: the cart has expired, and it is the last expired cart
    assert current is None
    cart.refresh_from_db()
    assert cart.status == Cart.Status.EXPIRED
    assert cart_services.last_expired_cart(customer, sales) == cart


@pytest.mark.rule("K12")
def test_k12_cart_is_open_until_1_second_before_7_days(customer, sales, now):
    # given a cart created 7 days less 1 second ago
    cart = factories.CartFactory(
        customer=customer, owner=sales, created_at=now - timedelta(days=7) + timedelta(seconds=1)
    )
    # when the user's current cart is looked up
    current = cart_services.current_cart(customer, sales, now)
    # then it is still open
    assert current == cart
    cart.refresh_from_db()
    assert cart.status == Cart.Status.OPEN
    assert cart.expires_at == now + timedelta(seconds=1)


@pytest.mark.rule("K12")
def test_k12_adding_after_expiry_starts_a_new_cart(customer, sales, now):
    # given an expired cart with a line
    old = factories.CartFactory(customer=customer, owner=sales, created_at=now - timedelta(days=8))
    old_line = factories.CartLineFactory(cart=old, quantity=3)
    # when an offer is added
    line = add_to_cart(customer, sales, factories.availability(factories.SkuFactory()), 5, now)
    # then it goes into a new open cart; the old one is expired and keeps its line
    old.refresh_from_db()
    assert old.status == Cart.Status.EXPIRED
    assert line.cart.pk != old.pk and line.cart.status == Cart.Status.OPEN and line.cart.created_at == now
    assert list(old.lines.values_list("pk", "quantity")) == [(old_line.pk, 3)]


@pytest.mark.rule("K12")
def test_k12_changing_an_expired_cart_is_a_conflict(customer, sales, now):
    # given a cart whose 7 days ran out while the page was open
    cart = factories.CartFactory(customer=customer, owner=sales, created_at=now - timedelta(days=7))
    line = factories.CartLineFactory(cart=cart, quantity=3)
    # when its line is changed
    with pytest.raises(RuleViolation) as refused:
        cart_services.update_line(cart=cart, actor=sales, line_id=line.pk, quantity=9, aligned_end_date=None, now=now)
    # then it is refused as a conflict and the line is unchanged
    assert (refused.value.rule, refused.value.conflict) == ("K12", True)
    line.refresh_from_db()
    assert line.quantity == 3


# K2 Review: the line rows (drawn in catalog/views.py) ---------------------------------------------------


@pytest.mark.rule("K2")
@pytest.mark.rule("K11")
def test_k2_cart_page_rows_show_each_kind_of_line(client, customer, sales, now):
    # given an aligned annual line of an offer with markup in its name, a trial and a usage-based line
    e3 = factories.SkuFactory(name="E3 <Plus> & more")
    factories.SubscriptionFactory(
        customer=customer,
        sku=factories.SkuFactory(name="Visio <2>"),
        availability=factories.availability(factories.SkuFactory(), "P1Y"),
        term_end=now.date() + timedelta(days=40),
    )
    visio_end = now.date() + timedelta(days=40)
    aligned = add_to_cart(customer, sales, factories.availability(e3, "P1Y"), 3, now, aligned_end_date=visio_end)
    trial = add_to_cart(customer, sales, factories.availability(factories.SkuFactory(trial=True), "P1M"), 1, now)
    usage = add_to_cart(
        customer, sales, factories.availability(factories.SkuFactory(usage=True, name="Azure"), "P1M"), 1, now
    )
    # when the cart is reviewed
    client.force_login(sales)
    page = client.get(reverse("catalog:cart-detail", args=[customer.pk])).content.decode()
    # then the aligned line keeps its quantity field and its chosen end date, with every name escaped
    update = reverse("catalog:cart-line-update", args=[customer.pk, aligned.pk])
    assert f'<tr data-line="{aligned.pk}">\n    <td><strong>E3 &lt;Plus&gt; &amp; more</strong>' in page
    assert f'<form class="row-actions" method="post" action="{update}">' in page
    assert (
        '<input type="number" name="quantity" value="3" min="1" aria-label="Quantity of E3 &lt;Plus&gt; &amp; more">'
        in page
    )
    assert f'<option value="{visio_end:%Y-%m-%d}" selected>With Visio &lt;2&gt; ({visio_end:%Y-%m-%d})</option>' in page
    assert page.count(" selected>") == 1
    assert f'<span class="why">Ends {visio_end:%Y-%m-%d} (UTC); the first term is prorated.</span>' in page
    # and the trial and usage-based lines show what they are, with no form to change them
    assert f'<tr data-line="{trial.pk}">' in page and "      25 trial licenses\n      \n    </td>" in page
    assert f'<tr data-line="{usage.pk}">' in page and "<td>\n      Pay as you go: billed by usage\n    </td>" in page
    assert page.count('<form class="row-actions"') == 1
    assert page.count('aria-label="Remove ') == 3
