"""Purchase: attestation (K3), the reseller on the order (K4, K5), limits (K8), all or nothing and
once only (K9), expiry (K12), and every cart rule checked again at purchase (C4, K7)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection

from catalog import cart as cart_services
from catalog.checkout import attestation_text, purchase
from catalog.models import Cart, CartLine, Order, OrderAdditionalReseller, OrderLine, Sku
from portal.errors import RuleViolation, RuleViolations
from subscriptions.models import AuditEntry, BillingLine, Subscription
from tests import factories
from tests.helpers import add_to_cart, at_once


def nothing_bought():
    return (
        not Order.objects.exists()
        and not OrderLine.objects.exists()
        and not Subscription.objects.exists()
        and not BillingLine.objects.exists()
    )


@pytest.fixture
def e3(db):
    return factories.SkuFactory(
        name="Microsoft 365 E3", availabilities=[("P1Y", "monthly", "36.00"), ("P1M", "monthly", "43.20")]
    )


@pytest.fixture
def teams(db):
    return factories.SkuFactory(name="Microsoft Teams Essentials", availabilities=[("P1Y", "annual", "48.00")])


@pytest.fixture
def cart(customer, sales, now, e3, teams):
    """10 × Microsoft 365 E3 (P1Y monthly, 36.00) and 3 × Teams Essentials (P1Y annual, 48.00)."""
    add_to_cart(customer, sales, factories.availability(e3, "P1Y", "monthly"), 10, now)
    add_to_cart(customer, sales, factories.availability(teams, "P1Y", "annual"), 3, now)
    return cart_services.current_cart(customer, sales, now)


# K3 Attestation ----------------------------------------------------------------------------------


@pytest.mark.rule("K3")
def test_k3_attestation_names_both_ways_of_acting(cart):
    # given a cart / when its attestation is shown / then it covers indirect and direct purchases in the portal's words
    assert attestation_text(cart) == (
        "I confirm that my organisation acts as an indirect partner in this purchase when a reseller is selected, "
        "and as a direct partner when no reseller is selected."
    )


@pytest.mark.rule("K3")
def test_k3_purchase_without_attestation_buys_nothing(cart, sales, now):
    # given a cart ready to buy
    # when it is purchased without the confirmation
    with pytest.raises(RuleViolation) as refused:
        purchase(cart=cart, actor=sales, attested=False, now=now)
    # then it is refused and nothing is bought; the cart stays open with its lines
    assert (refused.value.rule, refused.value.message, refused.value.field) == (
        "K3",
        "Confirm the attestation before purchasing.",
        "attest",
    )
    assert nothing_bought()
    cart.refresh_from_db()
    assert cart.status == Cart.Status.OPEN and cart.lines.count() == 2


@pytest.mark.rule("K3")
def test_k3_order_records_acting_as_direct_partner_without_a_reseller(cart, sales, now):
    # given a cart with no reseller
    # when it is purchased with the confirmation
    order, created = purchase(cart=cart, actor=sales, attested=True, now=now)
    # then the order records the direct attestation
    assert created
    order.refresh_from_db()
    assert (order.attested_as, order.reseller) == (Order.Attestation.DIRECT, None)


@pytest.mark.rule("K3")
@pytest.mark.rule("K4")
def test_k3_order_records_acting_as_indirect_partner_with_a_reseller(provider, now):
    # given an indirect provider's cart with one of its resellers selected
    reseller = factories.ResellerLinkFactory(provider=provider).reseller
    seller = factories.staff(provider, "sales_agent")
    customer = factories.CustomerFactory(partner=provider)
    add_to_cart(customer, seller, factories.availability(factories.SkuFactory()), 5, now)
    cart = cart_services.set_reseller(
        cart=cart_services.current_cart(customer, seller, now), actor=seller, reseller_id=reseller.pk, now=now
    )
    # when it is purchased with the confirmation
    order, _ = purchase(cart=cart, actor=seller, attested=True, now=now)
    # then the order records the indirect attestation and the reseller
    order.refresh_from_db()
    assert (order.attested_as, order.reseller) == (Order.Attestation.INDIRECT, reseller)
    assert AuditEntry.objects.get(action="order.placed").after["reseller"] == reseller.partner_id


# K4 Indirect reseller ----------------------------------------------------------------------------


@pytest.mark.rule("K4")
def test_k4_reseller_no_longer_linked_to_the_provider_is_refused_at_purchase(provider, now):
    # given a reseller selected for the purchase, whose link with the provider then ends
    link = factories.ResellerLinkFactory(provider=provider, reseller__name="Gone Reseller")
    seller = factories.staff(provider, "sales_agent")
    customer = factories.CustomerFactory(partner=provider)
    add_to_cart(customer, seller, factories.availability(factories.SkuFactory()), 5, now)
    cart = cart_services.set_reseller(
        cart=cart_services.current_cart(customer, seller, now), actor=seller, reseller_id=link.reseller.pk, now=now
    )
    link.delete()
    # when the cart is purchased
    with pytest.raises(RuleViolations) as refused:
        purchase(cart=cart, actor=seller, attested=True, now=now)
    # then the reseller is refused and nothing is bought
    assert list(refused.value.violations) == ["reseller"]
    violation = refused.value.violations["reseller"]
    assert (violation.rule, violation.message) == ("K4", "That reseller is not one of your indirect resellers.")
    assert nothing_bought()


# K5 EU/EFTA additional resellers -----------------------------------------------------------------


@pytest.fixture
def eu_indirect_cart(provider, now):
    seller = factories.staff(provider, "sales_agent")
    customer = factories.CustomerFactory(partner=provider, billing_country="FR")
    add_to_cart(customer, seller, factories.availability(factories.SkuFactory()), 5, now)
    reseller = factories.ResellerLinkFactory(provider=provider).reseller
    cart = cart_services.set_reseller(
        cart=cart_services.current_cart(customer, seller, now), actor=seller, reseller_id=reseller.pk, now=now
    )
    return cart, seller


@pytest.mark.rule("K5")
def test_k5_order_records_the_additional_resellers_in_order(eu_indirect_cart, now):
    # given two additional resellers declared
    cart, seller = eu_indirect_cart
    first, second = factories.PartnerFactory(), factories.PartnerFactory()
    for partner in (first, second):
        cart_services.add_additional_reseller(cart=cart, actor=seller, partner_id_text=partner.partner_id, now=now)
    # when the cart is purchased
    order, _ = purchase(cart=cart, actor=seller, attested=True, now=now)
    # then the order records them in the declared order
    assert list(OrderAdditionalReseller.objects.filter(order=order).values_list("partner", "position")) == [
        (first.pk, 1),
        (second.pk, 2),
    ]


@pytest.mark.rule("K5")
def test_k5_additional_reseller_that_no_longer_qualifies_is_refused_at_purchase(eu_indirect_cart, now):
    # given an additional reseller declared, whose MPA then lapses
    cart, seller = eu_indirect_cart
    partner = factories.PartnerFactory(name="Lapsed Partner", partner_id="6300001")
    cart_services.add_additional_reseller(cart=cart, actor=seller, partner_id_text=partner.partner_id, now=now)
    partner.mpa_signed = False
    partner.save()
    # when the cart is purchased
    with pytest.raises(RuleViolations) as refused:
        purchase(cart=cart, actor=seller, attested=True, now=now)
    # then that reseller is reported and nothing is bought
    assert list(refused.value.violations) == [f"reseller-{partner.pk}"]
    violation = refused.value.violations[f"reseller-{partner.pk}"]
    assert (violation.rule, violation.message) == (
        "K5",
        "Lapsed Partner (6300001) has not signed the Microsoft Partner Agreement.",
    )
    assert nothing_bought()


# K8 Limits ---------------------------------------------------------------------------------------


@pytest.mark.rule("K8")
def test_k8_purchase_past_the_subscription_limit_is_refused(settings, customer, sales, cart, now):
    # given a limit of 2 subscriptions and a customer holding 1, with 2 lines in the cart
    settings.CSP_MAX_SUBSCRIPTIONS_PER_CUSTOMER = 2
    factories.SubscriptionFactory(customer=customer)
    # when the cart is purchased
    with pytest.raises(RuleViolations) as refused:
        purchase(cart=cart, actor=sales, attested=True, now=now)
    # then the cart is refused naming the limit, and nothing is bought
    assert list(refused.value.violations) == ["cart"]
    violation = refused.value.violations["cart"]
    assert (violation.rule, violation.message) == (
        "K8",
        "This purchase would give the customer 3 subscriptions; the limit is 2.",
    )
    assert not Order.objects.exists() and Subscription.objects.count() == 1
    cart.refresh_from_db()
    assert cart.status == Cart.Status.OPEN


@pytest.mark.rule("K8")
def test_k8_purchase_reaching_the_subscription_limit_is_accepted(settings, customer, sales, cart, now):
    # given a limit of 3 subscriptions and a customer holding 1 live (and 1 cancelled), with 2 lines in the cart
    settings.CSP_MAX_SUBSCRIPTIONS_PER_CUSTOMER = 3
    factories.SubscriptionFactory(customer=customer)
    factories.SubscriptionFactory(customer=customer, deleted=True)
    # when the cart is purchased
    order, created = purchase(cart=cart, actor=sales, attested=True, now=now)
    # then it is bought
    assert created and order.lines.count() == 2


@pytest.mark.rule("K8")
def test_k8_lines_of_an_order_not_yet_fulfilled_count_toward_the_limit(settings, direct_partner, customer, sales, now):
    # given a limit of 2 subscriptions, a customer holding 1, and a colleague's order for 1 more still being fulfilled
    settings.CSP_MAX_SUBSCRIPTIONS_PER_CUSTOMER = 2
    factories.SubscriptionFactory(customer=customer)
    colleague = factories.staff(direct_partner, "sales_agent")
    add_to_cart(customer, colleague, factories.availability(factories.SkuFactory()), 5, now)
    purchase(cart=cart_services.current_cart(customer, colleague, now), actor=colleague, attested=True, now=now)
    add_to_cart(customer, sales, factories.availability(factories.SkuFactory()), 5, now)
    # when another cart with 1 line is purchased before the first order is fulfilled
    with pytest.raises(RuleViolations) as refused:
        purchase(cart=cart_services.current_cart(customer, sales, now), actor=sales, attested=True, now=now)
    # then it is refused: the customer would hold 3
    assert list(refused.value.violations) == ["cart"]
    violation = refused.value.violations["cart"]
    assert (violation.rule, violation.message) == (
        "K8",
        "This purchase would give the customer 3 subscriptions; the limit is 2.",
    )
    assert Order.objects.count() == 1


# K9 One purchase, all or nothing -----------------------------------------------------------------


@pytest.mark.rule("K9")
def test_k9_purchase_turns_the_whole_cart_into_one_order(customer, sales, cart, now, e3, teams):
    # given a cart with two lines
    # when it is purchased
    order, created = purchase(cart=cart, actor=sales, attested=True, now=now)
    # then one pending order holds both lines, priced from the catalog, and the cart is purchased
    assert created
    order.refresh_from_db()
    assert (order.customer, order.placed_by, order.created_at, order.status, order.total, order.currency) == (
        customer,
        sales,
        now,
        Order.Status.PENDING,
        Decimal("504.00"),
        "USD",
    )
    assert list(order.lines.values_list("sku", "quantity", "term", "billing_frequency", "unit_price", "status")) == [
        (e3.pk, 10, "P1Y", "monthly", Decimal("36.00"), "pending"),
        (teams.pk, 3, "P1Y", "annual", Decimal("48.00"), "pending"),
    ]
    cart.refresh_from_db()
    assert cart.status == Cart.Status.PURCHASED and cart.order == order
    assert cart_services.current_cart(customer, sales, now) is None
    assert AuditEntry.objects.get(action="order.placed").summary == f"Placed {order.number}: 2 line(s), 504.00 USD"


@pytest.mark.rule("K9")
def test_k9_one_refused_line_buys_nothing_and_says_why(customer, sales, cart, now, e3):
    # given a cart with two lines, one of which became unavailable (suspended subscription to it)
    refused_line = cart.lines.get(availability__sku=e3)
    factories.SubscriptionFactory(customer=customer, sku=e3, suspended=True)
    # when it is purchased
    with pytest.raises(RuleViolations) as refused:
        purchase(cart=cart, actor=sales, attested=True, now=now)
    # then only that line is reported, and nothing is bought
    assert list(refused.value.violations) == [refused_line.pk]
    assert refused.value.violations[refused_line.pk].rule == "C4b"
    assert not Order.objects.exists() and not OrderLine.objects.exists()
    assert Subscription.objects.count() == 1 and not BillingLine.objects.exists()
    cart.refresh_from_db()
    assert cart.status == Cart.Status.OPEN and cart.lines.count() == 2


@pytest.mark.rule("K9")
def test_k9_each_refused_line_says_why(customer, sales, cart, now, e3, teams):
    # given both lines became unavailable, for different reasons
    e3_line, teams_line = cart.lines.get(availability__sku=e3), cart.lines.get(availability__sku=teams)
    factories.SubscriptionFactory(customer=customer, sku=e3, suspended=True)
    Sku.objects.filter(pk=teams.pk).update(transactable_in_portal=False)
    # when it is purchased
    with pytest.raises(RuleViolations) as refused:
        purchase(cart=cart, actor=sales, attested=True, now=now)
    # then each line says why, and nothing is bought
    assert {pk: v.rule for pk, v in refused.value.violations.items()} == {e3_line.pk: "C4b", teams_line.pk: "C4f"}
    assert not Order.objects.exists()


@pytest.mark.rule("K9")
def test_k9_the_same_cart_submitted_twice_buys_once(sales, cart, now):
    # given a cart that was just purchased
    first, created_first = purchase(cart=cart, actor=sales, attested=True, now=now)
    # when it is submitted again (double click, back button, second tab)
    again, created_again = purchase(cart=cart, actor=sales, attested=True, now=now + timedelta(seconds=2))
    # then the same order is returned and only one exists
    assert (created_first, created_again) == (True, False)
    assert again.pk == first.pk
    assert Order.objects.count() == 1 and OrderLine.objects.count() == 2


@pytest.mark.rule("K9")
def test_k9_empty_cart_is_refused(customer, sales, now):
    # given an open cart whose lines were all removed
    line = add_to_cart(customer, sales, factories.availability(factories.SkuFactory()), 5, now)
    cart_services.remove_line(cart=line.cart, actor=sales, line_id=line.pk, now=now)
    # when it is purchased
    with pytest.raises(RuleViolation) as refused:
        purchase(cart=line.cart, actor=sales, attested=True, now=now)
    # then it is refused and nothing is bought
    assert (refused.value.rule, refused.value.message) == ("K9", "The cart is empty: add an offer first.")
    assert nothing_bought()


@pytest.mark.rule("K9")
@pytest.mark.django_db(transaction=True)
def test_k9_two_submissions_at_the_same_time_buy_once(customer, sales, now, e3):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL row locks; SQLite serialises whole-database writes instead")
    # given a cart ready to buy
    add_to_cart(customer, sales, factories.availability(e3), 10, now)
    cart = cart_services.current_cart(customer, sales, now)

    # when two submissions run at once
    def submit():
        return purchase(cart=cart, actor=sales, attested=True, now=now)

    results, _ = at_once(submit, submit)
    # then exactly one order was created, and both submissions answer with it
    order = Order.objects.get()
    assert sorted(created for _, created in results) == [False, True]
    assert {o.pk for o, _ in results} == {order.pk}
    assert OrderLine.objects.filter(order=order).count() == 1


# K12 Cart expiry ---------------------------------------------------------------------------------


@pytest.mark.rule("K12")
def test_k12_purchase_of_an_expired_cart_is_a_conflict(customer, sales, now):
    # given a cart created 7 days ago, found expired when the user came back
    cart = factories.CartFactory(customer=customer, owner=sales, created_at=now - timedelta(days=7))
    factories.CartLineFactory(cart=cart)
    assert cart_services.current_cart(customer, sales, now) is None
    # when it is purchased (an old tab)
    with pytest.raises(RuleViolation) as refused:
        purchase(cart=cart, actor=sales, attested=True, now=now)
    # then it is refused as a conflict and nothing is bought
    assert (refused.value.rule, refused.value.conflict) == ("K12", True)
    assert refused.value.message == "This cart expired on 2026-11-25 12:00 UTC: add the offers again."
    assert nothing_bought()
    cart.refresh_from_db()
    assert cart.status == Cart.Status.EXPIRED


@pytest.mark.rule("K12")
def test_k12_purchase_at_the_moment_the_cart_expires_is_a_conflict(customer, sales, now):
    # given an open cart reaching its 7 days now, never looked up since
    cart = factories.CartFactory(customer=customer, owner=sales, created_at=now - timedelta(days=7))
    factories.CartLineFactory(cart=cart)
    # when it is purchased
    with pytest.raises(RuleViolation) as refused:
        purchase(cart=cart, actor=sales, attested=True, now=now)
    # then it is refused as a conflict and nothing is bought
    assert (refused.value.rule, refused.value.conflict) == ("K12", True)
    assert nothing_bought()


@pytest.mark.rule("K12")
def test_k12_purchase_1_second_before_expiry_is_accepted(customer, sales, now):
    # given a cart created 7 days less 1 second ago
    cart = factories.CartFactory(customer=customer, owner=sales, created_at=now - timedelta(days=7, seconds=-1))
    factories.CartLineFactory(cart=cart)
    # when it is purchased
    order, created = purchase(cart=cart, actor=sales, attested=True, now=now)
    # then it is bought
    assert created and Order.objects.get() == order


# T2 Roles ----------------------------------------------------------------------------------------


@pytest.mark.rule("T2")
def test_t2_support_agent_cannot_purchase(direct_partner, cart, now):
    # given a cart, and a support agent of the same partner
    support = factories.staff(direct_partner, "support_agent")
    # when the support agent purchases it
    with pytest.raises(PermissionDenied):
        purchase(cart=cart, actor=support, attested=True, now=now)
    # then nothing is bought
    assert nothing_bought()
    cart.refresh_from_db()
    assert cart.status == Cart.Status.OPEN


# C4, C5, K7, K11: every cart rule is checked again at purchase -----------------------------------


def _break_c4a(customer, sku):
    Sku.objects.filter(pk=sku.pk).update(one_per_customer=True)
    factories.SubscriptionFactory(customer=customer, sku=sku)


def _break_c4b(customer, sku):
    factories.SubscriptionFactory(customer=customer, sku=sku, suspended=True)


def _break_c4c(customer, sku):
    Sku.objects.filter(pk=sku.pk).update(available_countries="CA")


def _break_c4d(customer, sku):
    Sku.objects.filter(pk=sku.pk).update(offered_through_csp=False)


def _break_c4e(customer, sku):
    sku.exclusive_partners.add(factories.PartnerFactory())


def _break_c4f(customer, sku):
    Sku.objects.filter(pk=sku.pk).update(transactable_in_portal=False)


@pytest.mark.rule("C4")
@pytest.mark.parametrize(
    "rule, make_unavailable",
    [
        ("C4a", _break_c4a),
        ("C4b", _break_c4b),
        ("C4c", _break_c4c),
        ("C4d", _break_c4d),
        ("C4e", _break_c4e),
        ("C4f", _break_c4f),
    ],
)
def test_c4_offer_that_became_unavailable_is_refused_again_at_purchase(customer, sales, now, rule, make_unavailable):
    # given an ISV offer in the cart that then becomes unavailable to this customer
    sku = factories.SkuFactory(isv=True)
    line = add_to_cart(customer, sales, factories.availability(sku), 5, now)
    make_unavailable(customer, sku)
    # when the cart is purchased
    with pytest.raises(RuleViolations) as refused:
        purchase(cart=line.cart, actor=sales, attested=True, now=now)
    # then the line is refused under that rule and nothing is bought
    assert list(refused.value.violations) == [line.pk]
    assert refused.value.violations[line.pk].rule == rule
    assert not Order.objects.exists() and not OrderLine.objects.exists() and not BillingLine.objects.exists()


@pytest.mark.rule("C4a")
def test_c4a_offer_limited_to_one_in_an_order_being_fulfilled_is_refused(direct_partner, customer, sales, now):
    # given a colleague's order for an offer limited to one per customer, not yet fulfilled
    sku = factories.SkuFactory(one_per_customer=True)
    colleague = factories.staff(direct_partner, "sales_agent")
    add_to_cart(customer, colleague, factories.availability(sku), 5, now)
    purchase(cart=cart_services.current_cart(customer, colleague, now), actor=colleague, attested=True, now=now)
    # when the offer is added to another cart
    with pytest.raises(RuleViolation) as refused:
        add_to_cart(customer, sales, factories.availability(sku), 5, now)
    # then it is refused: the customer already has it (ordered)
    assert (refused.value.rule, refused.value.message) == (
        "C4a",
        "The customer already has this offer and only one subscription is allowed.",
    )
    assert not CartLine.objects.filter(cart__owner=sales).exists()


@pytest.mark.rule("K7")
def test_k7_base_licenses_in_an_order_being_fulfilled_count(customer, sales, now, e3):
    # given an order for 250 E3 licenses, placed and not yet fulfilled
    copilot = factories.SkuFactory(name="Microsoft 365 Copilot", is_addon=True, addon_limit=Sku.AddonLimit.MAX_BASE)
    copilot.base_skus.set([e3])
    add_to_cart(customer, sales, factories.availability(e3), 250, now)
    purchase(cart=cart_services.current_cart(customer, sales, now), actor=sales, attested=True, now=now)
    # when 250 Copilot licenses are added to a new cart
    line = add_to_cart(customer, sales, factories.availability(copilot), 250, now)
    # then they are accepted: C5 already counts the ordered base offer, K7 must count its licenses too
    assert line.quantity == 250


@pytest.mark.rule("K7")
def test_k7_copilot_above_the_base_licenses_left_in_the_cart_is_refused_at_purchase(customer, sales, now, e3):
    # given 250 E3 licenses and 250 Copilot licenses in the cart
    copilot = factories.SkuFactory(name="Microsoft 365 Copilot", is_addon=True, addon_limit=Sku.AddonLimit.MAX_BASE)
    copilot.base_skus.set([e3])
    base_line = add_to_cart(customer, sales, factories.availability(e3), 250, now)
    copilot_line = add_to_cart(customer, sales, factories.availability(copilot), 250, now)
    # when the base line is lowered to 200 and the cart is purchased
    cart_services.update_line(
        cart=base_line.cart, actor=sales, line_id=base_line.pk, quantity=200, aligned_end_date=None, now=now
    )
    with pytest.raises(RuleViolations) as refused:
        purchase(cart=base_line.cart, actor=sales, attested=True, now=now)
    # then the Copilot line is refused naming 200 and nothing is bought
    assert list(refused.value.violations) == [copilot_line.pk]
    violation = refused.value.violations[copilot_line.pk]
    assert (violation.rule, violation.message) == (
        "K7",
        "Microsoft 365 Copilot can have at most 200 licenses: the customer's base licenses with every partner "
        "and in this cart.",
    )
    assert nothing_bought()


@pytest.mark.rule("C5")
def test_c5_addon_whose_base_left_the_cart_is_refused_at_purchase(customer, sales, now, e3):
    # given an add-on in the cart with its base offer, then the base line is removed
    addon = factories.SkuFactory(name="Microsoft 365 E5 Security", is_addon=True)
    addon.base_skus.set([e3])
    base_line = add_to_cart(customer, sales, factories.availability(e3), 10, now)
    addon_line = add_to_cart(customer, sales, factories.availability(addon), 10, now)
    cart_services.remove_line(cart=base_line.cart, actor=sales, line_id=base_line.pk, now=now)
    # when the cart is purchased
    with pytest.raises(RuleViolations) as refused:
        purchase(cart=base_line.cart, actor=sales, attested=True, now=now)
    # then the add-on line is refused and nothing is bought
    assert {pk: v.rule for pk, v in refused.value.violations.items()} == {addon_line.pk: "C5"}
    assert nothing_bought()
