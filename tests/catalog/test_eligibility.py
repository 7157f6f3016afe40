"""Which offers a customer can buy, and why not (C1–C5), and the quantity rules checked when a line
is added to the cart (K6–K8). The purchase re-checks are in test_checkout.py."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.http import QueryDict
from django.urls import reverse

from catalog import cart as cart_services
from catalog.eligibility import Refusal, buying_context, quantity_refusal, refusal
from catalog.filters import OfferFilter
from catalog.listing import listed_offer_ids, offer_cards, offer_filter
from catalog.models import Availability, Cart, CartLine, Sku
from portal.errors import RuleViolation
from subscriptions.models import Subscription
from tests import factories
from tests.helpers import add_to_cart


def addon_sku(*bases, **kwargs):
    sku = factories.SkuFactory(is_addon=True, **kwargs)
    sku.base_skus.set(bases)
    return sku


def listed_ids(customer, partner, cart=None) -> set[int]:
    """The offers the catalog page lists for this customer (C3, C5), as the page reads them."""
    return set(listed_offer_ids(offer_filter(QueryDict()).qs, buying_context(customer, partner, cart), show_all=False))


def page_names(query: str) -> set[str]:
    """The offers the catalog page keeps for this query string (every offer, listed or not), as the page reads them."""
    ids = listed_offer_ids(offer_filter(QueryDict(query)).qs, None, show_all=True)
    return set(Sku.objects.filter(pk__in=ids).values_list("name", flat=True))


# C1 Offers ---------------------------------------------------------------------------------------


@pytest.mark.rule("C1")
def test_c1_offer_is_sold_per_term_and_billing_frequency_at_a_unit_price(customer, sales, now):
    # given an offer sold for three years paid once, and for one year paid annually
    sku = factories.SkuFactory(
        name="Dynamics 365 Sales", availabilities=[("P3Y", "one_time", "1500.00"), ("P1Y", "annual", "600.00")]
    )
    three_years = factories.availability(sku, "P3Y", "one_time")
    # when the three-year one-time way is added to the cart
    add_to_cart(customer, sales, three_years, 4, now)
    # then the cart line is that term, frequency and unit price
    line = CartLine.objects.select_related("availability").get()
    assert (
        line.availability.term,
        line.availability.billing_frequency,
        line.availability.unit_price,
        line.availability.currency,
        line.quantity,
    ) == ("P3Y", "one_time", Decimal("1500.00"), "USD", 4)


@pytest.mark.rule("C1")
def test_c1_offer_no_longer_in_the_catalog_is_refused(customer, sales, now):
    # given an availability that was withdrawn from the catalog
    sku = factories.SkuFactory()
    withdrawn = factories.availability(sku)
    withdrawn_pk = withdrawn.pk
    withdrawn.delete()
    # when it is added to the cart
    with pytest.raises(RuleViolation) as refused:
        cart_services.add_to_cart(
            customer=customer, actor=sales, availability_id=withdrawn_pk, quantity=1, aligned_end_date=None, now=now
        )
    # then it is refused and nothing was created
    assert refused.value.rule == "C1"
    assert refused.value.message == "That offer is no longer in the catalog."
    assert not Cart.objects.exists() and not CartLine.objects.exists()


@pytest.mark.rule("C1")
def test_c1_offer_minimum_quantity_cannot_exceed_its_maximum(db):
    # given an offer
    sku = factories.SkuFactory(min_quantity=1, max_quantity=300)
    # when its minimum is set above its maximum
    sku.min_quantity = 301
    # then the database refuses it
    with pytest.raises(IntegrityError), transaction.atomic():
        sku.save()
    sku.refresh_from_db()
    assert (sku.min_quantity, sku.max_quantity) == (1, 300)


@pytest.mark.rule("C1")
def test_c1_one_term_and_frequency_has_one_price_per_offer(db):
    # given an offer sold P1Y monthly
    sku = factories.SkuFactory(availabilities=[("P1Y", "monthly", "10.00")])
    # when a second P1Y monthly price is added
    with pytest.raises(IntegrityError), transaction.atomic():
        Availability.objects.create(sku=sku, term="P1Y", billing_frequency="monthly", unit_price="9.00")
    # then only the first exists
    assert list(sku.availabilities.values_list("unit_price", flat=True)) == [factories.availability(sku).unit_price]


@pytest.mark.rule("C1")
def test_c1_one_subscription_per_customer_is_held_by_the_database(customer):
    # given an offer limited to one subscription per customer, which the customer has
    sku = factories.SkuFactory(one_per_customer=True)
    first = factories.SubscriptionFactory(customer=customer, sku=sku)
    # when a second live subscription to it is written (two orders racing past the checks)
    with pytest.raises(IntegrityError), transaction.atomic():
        factories.SubscriptionFactory(customer=customer, sku=sku)
    # then the database refuses it
    assert list(Subscription.objects.values_list("pk", flat=True)) == [first.pk]


# C2 Filters --------------------------------------------------------------------------------------


@pytest.fixture
def catalog(db):
    microsoft = factories.PublisherFactory(name="Microsoft", is_microsoft=True)
    fabrikam = factories.PublisherFactory(name="Fabrikam Software", is_microsoft=False)

    def offer(name, publisher, billing_type, category, product_name=None, sku_id=None):
        product = factories.ProductFactory(
            name=product_name or name, publisher=publisher, billing_type=billing_type, category=category
        )
        extra = {"sku_id": sku_id} if sku_id else {}
        return factories.SkuFactory(product=product, name=name, **extra)

    offer("Microsoft 365 E3", microsoft, "license", "enterprise", sku_id="CFQ7TTC0LF8Q")
    offer("Microsoft 365 Business Premium", microsoft, "license", "small_business")
    offer("Azure plan", microsoft, "usage", "enterprise")
    offer("Microsoft 365 E5 (trial)", microsoft, "license", "trial")
    offer(
        "Business Central Essentials",
        microsoft,
        "license",
        "small_business",
        product_name="Dynamics 365 Business Central",
    )
    offer("Fabrikam Backup", fabrikam, "license", "small_business")
    offer("Fabrikam Analytics", fabrikam, "usage", "enterprise")
    return Sku.objects.all()


@pytest.mark.rule("C2")
@pytest.mark.parametrize(
    "query, expected",
    [
        (
            "",
            {
                "Microsoft 365 E3",
                "Microsoft 365 Business Premium",
                "Azure plan",
                "Microsoft 365 E5 (trial)",
                "Business Central Essentials",
                "Fabrikam Backup",
                "Fabrikam Analytics",
            },
        ),
        (
            "publisher=microsoft",
            {
                "Microsoft 365 E3",
                "Microsoft 365 Business Premium",
                "Azure plan",
                "Microsoft 365 E5 (trial)",
                "Business Central Essentials",
            },
        ),
        ("publisher=partner", {"Fabrikam Backup", "Fabrikam Analytics"}),
        (
            "publisher=microsoft&publisher=partner",
            {
                "Microsoft 365 E3",
                "Microsoft 365 Business Premium",
                "Azure plan",
                "Microsoft 365 E5 (trial)",
                "Business Central Essentials",
                "Fabrikam Backup",
                "Fabrikam Analytics",
            },
        ),
        ("billing_type=usage", {"Azure plan", "Fabrikam Analytics"}),
        (
            "billing_type=license&billing_type=usage&category=enterprise",
            {"Microsoft 365 E3", "Azure plan", "Fabrikam Analytics"},
        ),
        (
            "category=small_business",
            {"Microsoft 365 Business Premium", "Business Central Essentials", "Fabrikam Backup"},
        ),
        ("category=trial", {"Microsoft 365 E5 (trial)"}),
        (
            "category=small_business&category=trial",
            {
                "Microsoft 365 Business Premium",
                "Business Central Essentials",
                "Fabrikam Backup",
                "Microsoft 365 E5 (trial)",
            },
        ),
        ("publisher=partner&billing_type=license&category=small_business", {"Fabrikam Backup"}),
        ("publisher=microsoft&billing_type=usage", {"Azure plan"}),
    ],
)
def test_c2_filters_by_publisher_billing_type_and_category_combined(catalog, query, expected):
    # given the catalog and filters taken from the URL query string
    # when the catalog is filtered, as a queryset and as the catalog page does
    names = {sku.name for sku in OfferFilter(QueryDict(query), queryset=catalog).qs}
    # then exactly the matching offers remain, both ways
    assert names == expected
    assert page_names(query) == expected


@pytest.mark.rule("C2")
@pytest.mark.parametrize(
    "query, expected",
    [
        ("q=e3", {"Microsoft 365 E3"}),  # offer name, case-insensitive
        ("q=dynamics", {"Business Central Essentials"}),  # product name
        ("q=fabrikam", {"Fabrikam Backup", "Fabrikam Analytics"}),  # publisher name
        ("q=cfq7ttc0lf8q", {"Microsoft 365 E3"}),  # exact SKU id
        (
            "q=%20%20",
            {
                "Microsoft 365 E3",
                "Microsoft 365 Business Premium",
                "Azure plan",
                "Microsoft 365 E5 (trial)",
                "Business Central Essentials",
                "Fabrikam Backup",
                "Fabrikam Analytics",
            },
        ),  # blank search: everything
        ("q=fabrikam&billing_type=usage", {"Fabrikam Analytics"}),
        ("q=backup&publisher=microsoft", set()),
        ("q=365&category=trial", {"Microsoft 365 E5 (trial)"}),
    ],
)
def test_c2_text_search_combines_with_the_filters(catalog, query, expected):
    # given the catalog
    # when it is searched, with or without filters, as a queryset and as the catalog page does
    names = {sku.name for sku in OfferFilter(QueryDict(query), queryset=catalog).qs}
    # then exactly the matching offers remain, both ways
    assert names == expected
    assert page_names(query) == expected


# C3 Segment --------------------------------------------------------------------------------------


@pytest.mark.rule("C3")
def test_c3_customer_is_only_offered_what_is_sold_to_its_segment(direct_partner, sales, now):
    # given an education customer, an education-only offer and a commercial-only offer
    school = factories.CustomerFactory(partner=direct_partner, segment="education")
    for_schools = factories.SkuFactory(name="Microsoft 365 A3", segments="education")
    commercial = factories.SkuFactory(name="Microsoft 365 E3", segments="commercial")
    ctx = buying_context(school, direct_partner)
    # when the catalog is listed and the commercial offer is checked
    listed = listed_ids(school, direct_partner)
    why = refusal(commercial, ctx)
    # then only the education offer is listed; the other is hidden with its reason
    assert listed == {for_schools.pk}
    assert why == Refusal("C3", "Not sold to education customers (sold to: commercial).", hidden=True)
    assert refusal(for_schools, ctx) is None


@pytest.mark.rule("C3")
def test_c3_offer_not_sold_to_the_segment_is_refused_at_add(direct_partner, sales, now):
    # given a government customer and an offer sold to commercial and education customers only
    agency = factories.CustomerFactory(partner=direct_partner, segment="government")
    sku = factories.SkuFactory(segments="commercial,education")
    # when it is added to the cart
    with pytest.raises(RuleViolation) as refused:
        add_to_cart(agency, sales, factories.availability(sku), 5, now)
    # then it is refused and no cart line exists
    assert refused.value.rule == "C3"
    assert refused.value.message == "Not sold to government customers (sold to: commercial, education)."
    assert not CartLine.objects.exists()


# C4 Unavailable offers show why -----------------------------------------------------------------


def assert_refused_at_add(customer, actor, sku, now, rule, message):
    with pytest.raises(RuleViolation) as refused:
        add_to_cart(customer, actor, factories.availability(sku), 5, now)
    assert (refused.value.rule, refused.value.message) == (rule, message)
    assert not CartLine.objects.filter(availability__sku=sku).exists()


@pytest.mark.rule("C4")
@pytest.mark.rule("C4a")
def test_c4a_offer_already_owned_and_limited_to_one_is_greyed_and_refused(customer, direct_partner, sales, now):
    # given an offer limited to one subscription per customer, which the customer already has
    sku = factories.SkuFactory(name="Microsoft 365 Copilot Chat", one_per_customer=True)
    factories.SubscriptionFactory(customer=customer, sku=sku)
    ctx = buying_context(customer, direct_partner)
    # when the catalog shows it and it is added to the cart
    why = refusal(sku, ctx)
    # then it is listed greyed with the reason, and refused on the server
    assert sku.pk in listed_ids(customer, direct_partner)
    assert why == Refusal("C4a", "The customer already has this offer and only one subscription is allowed.")
    assert_refused_at_add(
        customer, sales, sku, now, "C4a", "The customer already has this offer and only one subscription is allowed."
    )


@pytest.mark.rule("C4a")
def test_c4a_offer_limited_to_one_already_in_the_cart_is_refused(customer, sales, now):
    # given an offer limited to one per customer, already in the cart for one year
    sku = factories.SkuFactory(one_per_customer=True)
    first = add_to_cart(customer, sales, factories.availability(sku, "P1Y"), 5, now)
    # when it is added again for one month
    with pytest.raises(RuleViolation) as refused:
        add_to_cart(customer, sales, factories.availability(sku, "P1M"), 5, now)
    # then it is refused and the cart keeps only the first line
    assert refused.value.rule == "C4a"
    assert (
        refused.value.message == "The customer already has in the cart this offer and only one subscription is allowed."
    )
    assert list(CartLine.objects.values_list("pk", "quantity")) == [(first.pk, 5)]


@pytest.mark.rule("C4a")
def test_c4a_cancelled_subscription_does_not_block_buying_again(customer, direct_partner, sales, now):
    # given an offer limited to one per customer whose only subscription was cancelled
    sku = factories.SkuFactory(one_per_customer=True)
    factories.SubscriptionFactory(customer=customer, sku=sku, deleted=True)
    # when it is added to the cart
    line = add_to_cart(customer, sales, factories.availability(sku), 5, now)
    # then it is accepted
    assert refusal(sku, buying_context(customer, direct_partner)) is None
    assert CartLine.objects.get().pk == line.pk


@pytest.mark.rule("C4")
@pytest.mark.rule("C4b")
def test_c4b_suspended_subscription_is_reactivated_not_bought_again(customer, direct_partner, sales, now):
    # given the customer's subscription to an offer is suspended
    sku = factories.SkuFactory(name="Exchange Online (Plan 1)")
    suspended = factories.SubscriptionFactory(customer=customer, sku=sku, suspended=True)
    # when the catalog shows the offer and it is added to the cart
    why = refusal(sku, buying_context(customer, direct_partner))
    # then it is greyed with the reason and a link to the suspended subscription, and refused
    assert sku.pk in listed_ids(customer, direct_partner)
    assert why == Refusal(
        "C4b",
        "The customer's subscription to this offer is suspended: reactivate it instead.",
        link=reverse("subscriptions:subscription-detail", args=[customer.pk, suspended.pk]),
        link_label="Open the suspended subscription",
    )
    assert why.link == f"/customers/{customer.pk}/subscriptions/{suspended.pk}/"
    assert_refused_at_add(
        customer,
        sales,
        sku,
        now,
        "C4b",
        "The customer's subscription to this offer is suspended: reactivate it instead.",
    )


@pytest.mark.rule("C4")
@pytest.mark.rule("C4c")
def test_c4c_isv_does_not_sell_in_the_customer_country(direct_partner, sales, now):
    # given a German customer and an ISV offer sold in the United States and Canada only
    customer = factories.CustomerFactory(partner=direct_partner, billing_country="DE")
    sku = factories.SkuFactory(isv=True, available_countries="US,CA")
    # when the catalog shows it and it is added to the cart
    why = refusal(sku, buying_context(customer, direct_partner))
    # then it is greyed with the reason and refused
    assert sku.pk in listed_ids(customer, direct_partner)
    assert why == Refusal("C4c", "The publisher does not sell this offer in Germany.")
    assert_refused_at_add(customer, sales, sku, now, "C4c", "The publisher does not sell this offer in Germany.")
    # and a customer in a country it sells in may buy it
    assert (
        refusal(
            sku, buying_context(factories.CustomerFactory(partner=direct_partner, billing_country="CA"), direct_partner)
        )
        is None
    )


@pytest.mark.rule("C4")
@pytest.mark.rule("C4d")
def test_c4d_isv_does_not_offer_it_through_csp(customer, direct_partner, sales, now):
    # given an ISV offer not offered through the CSP program
    sku = factories.SkuFactory(isv=True, offered_through_csp=False)
    # when the catalog shows it and it is added to the cart
    why = refusal(sku, buying_context(customer, direct_partner))
    # then it is greyed with the reason and refused
    assert sku.pk in listed_ids(customer, direct_partner)
    assert why == Refusal("C4d", "The publisher does not offer this through the CSP program.")
    assert_refused_at_add(
        customer, sales, sku, now, "C4d", "The publisher does not offer this through the CSP program."
    )


@pytest.mark.rule("C4")
@pytest.mark.rule("C4e")
def test_c4e_isv_made_the_offer_exclusive_to_other_partners(customer, direct_partner, sales, now):
    # given an ISV offer exclusive to another CSP partner
    sku = factories.SkuFactory(isv=True)
    sku.exclusive_partners.add(factories.PartnerFactory(name="Exclusive Partner"))
    # when the catalog shows it and it is added to the cart
    why = refusal(sku, buying_context(customer, direct_partner))
    # then it is greyed with the reason and refused
    assert sku.pk in listed_ids(customer, direct_partner)
    assert why == Refusal("C4e", "The publisher made this offer exclusive to other CSP partners.")
    assert_refused_at_add(
        customer, sales, sku, now, "C4e", "The publisher made this offer exclusive to other CSP partners."
    )


@pytest.mark.rule("C4e")
def test_c4e_partner_the_offer_is_exclusive_to_may_buy_it(customer, direct_partner, sales, now):
    # given an ISV offer exclusive to this partner (and another)
    sku = factories.SkuFactory(isv=True)
    sku.exclusive_partners.add(direct_partner, factories.PartnerFactory())
    # when it is added to the cart
    line = add_to_cart(customer, sales, factories.availability(sku), 5, now)
    # then it is accepted
    assert CartLine.objects.get().pk == line.pk


@pytest.mark.rule("C4")
@pytest.mark.rule("C4f")
def test_c4f_offer_bought_in_the_azure_portal_is_greyed_and_refused(customer, direct_partner, sales, now):
    # given an offer that cannot be transacted in the portal (a container offer)
    sku = factories.SkuFactory(name="Azure Kubernetes container offer", transactable_in_portal=False)
    # when the catalog shows it and it is added to the cart
    why = refusal(sku, buying_context(customer, direct_partner))
    # then it is greyed with the reason and refused
    message = "This offer can't be bought here (containers, some consumption offers): buy it in the Azure portal."
    assert sku.pk in listed_ids(customer, direct_partner)
    assert why == Refusal("C4f", message)
    assert_refused_at_add(customer, sales, sku, now, "C4f", message)


@pytest.mark.rule("C4")
def test_c4_catalog_cards_verdicts_from_cached_facts_are_the_rules_over_each_offer(customer, direct_partner, sales):
    # given offers that meet each C3-C5 rule for this customer, one owned and suspended, one limited to one and in
    # the cart, an add-on with an owned base offer
    base = factories.SkuFactory(name="Base")
    factories.SubscriptionFactory(customer=customer, sku=base)
    suspended = factories.SkuFactory(name="Suspended")
    factories.SubscriptionFactory(customer=customer, sku=suspended, suspended=True)
    carted = factories.SkuFactory(name="Carted", one_per_customer=True)
    cart = factories.CartFactory(customer=customer, owner=sales)
    factories.CartLineFactory(cart=cart, availability=factories.availability(carted))
    other_partner = factories.PartnerFactory(name="Exclusive Partner")
    offers = [
        base,
        suspended,
        carted,
        factories.SkuFactory(isv=True, available_countries="CA"),
        factories.SkuFactory(isv=True, offered_through_csp=False),
        factories.SkuFactory(isv=True),
        factories.SkuFactory(transactable_in_portal=False),
        factories.SkuFactory(segments="education"),
        addon_sku(base, name="Add-on of the base"),
        addon_sku(factories.SkuFactory(name="Unowned base"), name="Add-on of another base"),
        factories.SkuFactory(name="Plain"),
    ]
    offers[5].exclusive_partners.add(other_partner)
    mine = factories.SkuFactory(isv=True, name="Exclusive to this partner")
    mine.exclusive_partners.add(direct_partner, other_partner)
    offers.append(mine)
    ctx = buying_context(customer, direct_partner, cart)
    # when the catalog draws every offer's card from its cached facts
    ids = [offer.pk for offer in offers]
    cards = {card.pk: card.refusal for card in offer_cards(ids, ctx)}
    # then each verdict is the rule's over the offer loaded from the database, and they differ (the rules applied)
    expected = {offer.pk: refusal(Sku.objects.get(pk=offer.pk), ctx) for offer in offers}
    assert cards == expected
    assert {why.rule for why in expected.values() if why} == {"C3", "C4a", "C4b", "C4c", "C4d", "C4e", "C4f", "C5"}
    assert expected[mine.pk] is None and expected[offers[-2].pk] is None


# C5 Add-ons in the catalog -----------------------------------------------------------------------


@pytest.mark.rule("C5")
def test_c5_addon_is_not_listed_without_a_base_offer(customer, direct_partner, sales, now):
    # given an add-on of Microsoft 365 E3 and E5, and a customer owning neither
    e3 = factories.SkuFactory(name="Microsoft 365 E3")
    e5 = factories.SkuFactory(name="Microsoft 365 E5")
    addon = addon_sku(e3, e5, name="Microsoft 365 E5 Security")
    # when the catalog is listed and the add-on is added to the cart
    listed = listed_ids(customer, direct_partner)
    why = refusal(addon, buying_context(customer, direct_partner))
    # then it is not listed and it is refused
    assert listed == {e3.pk, e5.pk}
    assert why == Refusal(
        "C5", "Add-on: the customer needs one of these first: Microsoft 365 E3, Microsoft 365 E5.", hidden=True
    )
    assert_refused_at_add(
        customer,
        sales,
        addon,
        now,
        "C5",
        "Add-on: the customer needs one of these first: Microsoft 365 E3, Microsoft 365 E5.",
    )


@pytest.mark.rule("C5")
def test_c5_addon_is_listed_when_the_customer_owns_a_base_offer(customer, direct_partner, sales, now):
    # given the customer owns Microsoft 365 E5, one of the add-on's base offers
    e3 = factories.SkuFactory(name="Microsoft 365 E3")
    e5 = factories.SkuFactory(name="Microsoft 365 E5")
    addon = addon_sku(e3, e5)
    factories.SubscriptionFactory(customer=customer, sku=e5)
    # when the catalog is listed and the add-on is added
    listed = listed_ids(customer, direct_partner)
    line = add_to_cart(customer, sales, factories.availability(addon), 5, now)
    # then it is listed and accepted
    assert listed == {e3.pk, e5.pk, addon.pk}
    assert CartLine.objects.get().pk == line.pk


@pytest.mark.rule("C5")
def test_c5_addon_is_listed_when_its_base_offer_is_in_the_cart(customer, direct_partner, sales, now):
    # given the base offer is in the cart
    e3 = factories.SkuFactory(name="Microsoft 365 E3")
    addon = addon_sku(e3)
    add_to_cart(customer, sales, factories.availability(e3), 10, now)
    cart = cart_services.current_cart(customer, sales, now)
    # when the catalog is listed with the cart and the add-on is added
    listed = listed_ids(customer, direct_partner, cart)
    add_to_cart(customer, sales, factories.availability(addon), 5, now)
    # then the add-on is listed and accepted
    assert listed == {e3.pk, addon.pk}
    assert sorted(cart.lines.values_list("availability__sku__name", "quantity")) == sorted(
        [("Microsoft 365 E3", 10), (addon.name, 5)]
    )


@pytest.mark.rule("C5")
def test_c5_addon_is_not_listed_outside_its_region(direct_partner, sales, now):
    # given a Japanese customer owning the base offer, and an add-on available in the US and Canada only
    customer = factories.CustomerFactory(partner=direct_partner, billing_country="JP")
    e3 = factories.SkuFactory(name="Microsoft 365 E3")
    addon = addon_sku(e3, available_countries="US,CA")
    factories.SubscriptionFactory(customer=customer, sku=e3)
    # when the catalog is listed and the add-on is added
    listed = listed_ids(customer, direct_partner)
    # then it is not listed and refused
    assert listed == {e3.pk}
    assert refusal(addon, buying_context(customer, direct_partner)) == Refusal(
        "C5", "This add-on is not available in Japan.", hidden=True
    )
    assert_refused_at_add(customer, sales, addon, now, "C5", "This add-on is not available in Japan.")


@pytest.mark.rule("C5")
def test_c5_cancelled_base_offer_does_not_make_the_addon_eligible(customer, direct_partner, sales, now):
    # given the customer's only base subscription was cancelled
    e3 = factories.SkuFactory(name="Microsoft 365 E3")
    addon = addon_sku(e3)
    factories.SubscriptionFactory(customer=customer, sku=e3, deleted=True)
    # when the catalog is listed
    listed = listed_ids(customer, direct_partner)
    # then the add-on is not listed, and refused
    assert listed == {e3.pk}
    assert_refused_at_add(
        customer, sales, addon, now, "C5", "Add-on: the customer needs one of these first: Microsoft 365 E3."
    )


# K6 Multi-geo add-on minimum ---------------------------------------------------------------------


@pytest.fixture
def multigeo(db):
    e3 = factories.SkuFactory(name="Microsoft 365 E3")
    e5 = factories.SkuFactory(name="Microsoft 365 E5")
    addon = addon_sku(
        e3, e5, name="Multi-Geo Capabilities in Office 365", addon_limit=Sku.AddonLimit.MIN_5_PERCENT_OF_BASE
    )
    return e3, e5, addon


@pytest.mark.rule("K6")
def test_k6_example_400_base_licenses_refuse_19(customer, sales, now, multigeo):
    # given the customer holds 400 base licenses
    e3, _e5, addon = multigeo
    factories.SubscriptionFactory(customer=customer, sku=e3, quantity=400)
    # when 19 multi-geo licenses are added
    with pytest.raises(RuleViolation) as refused:
        add_to_cart(customer, sales, factories.availability(addon), 19, now)
    # then it is refused naming the minimum of 20, and no line was added
    assert refused.value.rule == "K6"
    assert refused.value.message == (
        "Multi-Geo Capabilities in Office 365 needs at least 20 licenses: 5% of the customer's 400 base licenses, rounded up."
    )
    assert not CartLine.objects.exists()


@pytest.mark.rule("K6")
def test_k6_example_400_base_licenses_accept_20(customer, sales, now, multigeo):
    # given the customer holds 400 base licenses
    e3, _e5, addon = multigeo
    factories.SubscriptionFactory(customer=customer, sku=e3, quantity=400)
    # when 20 multi-geo licenses are added
    line = add_to_cart(customer, sales, factories.availability(addon), 20, now)
    # then they are accepted
    assert CartLine.objects.get().pk == line.pk and line.quantity == 20


@pytest.mark.rule("K6")
def test_k6_minimum_is_rounded_up(customer, sales, now, multigeo):
    # given 401 base licenses: 5% is 20.05
    e3, _e5, addon = multigeo
    factories.SubscriptionFactory(customer=customer, sku=e3, quantity=401)
    # when 20 are added, then refused; when 21 are added, then accepted
    with pytest.raises(RuleViolation) as refused:
        add_to_cart(customer, sales, factories.availability(addon), 20, now)
    assert refused.value.rule == "K6" and "at least 21 licenses" in refused.value.message
    assert not CartLine.objects.exists()
    assert add_to_cart(customer, sales, factories.availability(addon), 21, now).quantity == 21


@pytest.mark.rule("K6")
def test_k6_counts_every_required_base_offer_and_the_cart(customer, sales, now, multigeo):
    # given 300 E3 licenses and 60 E5 licenses owned, and 40 more E5 licenses in the cart: 400
    e3, e5, addon = multigeo
    factories.SubscriptionFactory(customer=customer, sku=e3, quantity=300)
    factories.SubscriptionFactory(customer=customer, sku=e5, quantity=60)
    add_to_cart(customer, sales, factories.availability(e5, "P1M"), 40, now)
    # when 19 multi-geo licenses are added, then refused naming 400 base licenses
    with pytest.raises(RuleViolation) as refused:
        add_to_cart(customer, sales, factories.availability(addon), 19, now)
    assert refused.value.message == (
        "Multi-Geo Capabilities in Office 365 needs at least 20 licenses: 5% of the customer's 400 base licenses, rounded up."
    )
    assert CartLine.objects.count() == 1
    # and 20 are accepted
    assert add_to_cart(customer, sales, factories.availability(addon), 20, now).quantity == 20


@pytest.mark.rule("K6")
def test_k6_raising_a_line_below_the_minimum_leaves_it_unchanged(customer, sales, now, multigeo):
    # given 400 base licenses and 20 multi-geo licenses in the cart
    e3, _e5, addon = multigeo
    factories.SubscriptionFactory(customer=customer, sku=e3, quantity=400)
    line = add_to_cart(customer, sales, factories.availability(addon), 20, now)
    cart = cart_services.current_cart(customer, sales, now)
    # when the line is changed to 19
    with pytest.raises(RuleViolation) as refused:
        cart_services.update_line(cart=cart, actor=sales, line_id=line.pk, quantity=19, aligned_end_date=None, now=now)
    # then it is refused and the line keeps 20
    assert refused.value.rule == "K6"
    line.refresh_from_db()
    assert line.quantity == 20


# K7 Microsoft 365 Copilot add-on maximum ---------------------------------------------------------


@pytest.fixture
def copilot_with_250_base_licenses(customer, sales, now):
    """100 E3 licenses with this partner, 100 E5 with another partner (same tenant), 50 E3 in the cart."""
    e3 = factories.SkuFactory(name="Microsoft 365 E3")
    e5 = factories.SkuFactory(name="Microsoft 365 E5")
    copilot = addon_sku(e3, e5, name="Microsoft 365 Copilot", addon_limit=Sku.AddonLimit.MAX_BASE)
    factories.SubscriptionFactory(customer=customer, sku=e3, quantity=100)
    same_tenant_elsewhere = factories.CustomerFactory(
        partner=factories.PartnerFactory(name="Other CSP"),
        tenant_id=customer.tenant_id,
        company_name=customer.company_name,
    )
    factories.SubscriptionFactory(customer=same_tenant_elsewhere, sku=e5, quantity=100)
    # Noise that must not count: another tenant's base licenses and a cancelled base subscription.
    factories.SubscriptionFactory(customer=factories.CustomerFactory(partner=customer.partner), sku=e3, quantity=1000)
    factories.SubscriptionFactory(customer=customer, sku=e5, quantity=1000, deleted=True)
    add_to_cart(customer, sales, factories.availability(e3, "P1M"), 50, now)
    return copilot


@pytest.mark.rule("K7")
def test_k7_example_250_base_licenses_refuse_251(customer, sales, now, copilot_with_250_base_licenses):
    # given 250 base licenses counted with every partner and in the cart
    copilot = copilot_with_250_base_licenses
    # when 251 Copilot licenses are added
    with pytest.raises(RuleViolation) as refused:
        add_to_cart(customer, sales, factories.availability(copilot), 251, now)
    # then it is refused naming the maximum of 250, and the cart holds only the base line
    assert refused.value.rule == "K7"
    assert refused.value.message == (
        "Microsoft 365 Copilot can have at most 250 licenses: the customer's base licenses "
        "with every partner and in this cart."
    )
    assert list(CartLine.objects.values_list("availability__sku__name", "quantity")) == [("Microsoft 365 E3", 50)]


@pytest.mark.rule("K7")
def test_k7_example_250_base_licenses_allow_250(customer, sales, now, copilot_with_250_base_licenses):
    # given 250 base licenses counted with every partner and in the cart
    copilot = copilot_with_250_base_licenses
    # when 250 Copilot licenses are added
    line = add_to_cart(customer, sales, factories.availability(copilot), 250, now)
    # then they are accepted
    assert line.quantity == 250
    assert CartLine.objects.count() == 2


@pytest.mark.rule("K7")
def test_k7_adding_more_to_an_existing_line_counts_the_whole_line(customer, sales, now, copilot_with_250_base_licenses):
    # given 200 Copilot licenses already in the cart, with 250 base licenses
    copilot = copilot_with_250_base_licenses
    line = add_to_cart(customer, sales, factories.availability(copilot), 200, now)
    # when 51 more are added to the same line
    with pytest.raises(RuleViolation) as refused:
        add_to_cart(customer, sales, factories.availability(copilot), 51, now)
    # then it is refused and the line keeps 200
    assert refused.value.rule == "K7"
    line.refresh_from_db()
    assert line.quantity == 200


# K8 Limits ---------------------------------------------------------------------------------------


@pytest.fixture
def limited_sku(db):
    return factories.SkuFactory(name="Dynamics 365 Business Central Premium", min_quantity=5, max_quantity=300)


@pytest.mark.rule("K8")
@pytest.mark.parametrize("quantity", [0, 4, 301])
def test_k8_quantity_outside_the_offer_limits_is_refused_naming_them(customer, sales, now, limited_sku, quantity):
    # given an offer sold in quantities from 5 to 300
    # when a quantity outside them is added
    with pytest.raises(RuleViolation) as refused:
        add_to_cart(customer, sales, factories.availability(limited_sku), quantity, now)
    # then it is refused naming the limits, and nothing was added
    assert refused.value.rule == "K8"
    assert refused.value.message == "Dynamics 365 Business Central Premium is sold in quantities from 5 to 300."
    assert refused.value.field == "quantity"
    assert not CartLine.objects.exists()


@pytest.mark.rule("K8")
@pytest.mark.parametrize("quantity", [5, 300])
def test_k8_quantity_at_the_offer_limits_is_accepted(customer, sales, now, limited_sku, quantity):
    # given an offer sold in quantities from 5 to 300
    # when exactly a limit is added
    line = add_to_cart(customer, sales, factories.availability(limited_sku), quantity, now)
    # then it is accepted
    assert CartLine.objects.get().quantity == line.quantity == quantity


@pytest.mark.rule("K8")
def test_k8_adding_past_the_maximum_to_an_existing_line_leaves_it_unchanged(customer, sales, now, limited_sku):
    # given 200 licenses in the cart
    line = add_to_cart(customer, sales, factories.availability(limited_sku), 200, now)
    # when 101 more are added
    with pytest.raises(RuleViolation) as refused:
        add_to_cart(customer, sales, factories.availability(limited_sku), 101, now)
    # then it is refused and the line keeps 200
    assert refused.value.message == (
        "The cart already has 200, so this would make 301. "
        "Dynamics 365 Business Central Premium is sold in quantities from 5 to 300."
    )
    line.refresh_from_db()
    assert line.quantity == 200


@pytest.mark.rule("K8")
def test_k8_updating_a_line_past_the_maximum_leaves_it_unchanged(customer, sales, now, limited_sku):
    # given 200 licenses in the cart
    line = add_to_cart(customer, sales, factories.availability(limited_sku), 200, now)
    cart = cart_services.current_cart(customer, sales, now)
    # when the line is set to 301
    with pytest.raises(RuleViolation) as refused:
        cart_services.update_line(
            cart=cart, actor=sales, line_id=line.pk, quantity=301, aligned_end_date=None, now=now + timedelta(minutes=5)
        )
    # then it is refused and the line keeps 200
    assert (refused.value.rule, refused.value.message) == (
        "K8",
        "Dynamics 365 Business Central Premium is sold in quantities from 5 to 300.",
    )
    line.refresh_from_db()
    assert line.quantity == 200


@pytest.mark.rule("K7")
def test_k7_copilot_licenses_already_held_count_toward_the_maximum(customer, sales, now):
    # given 250 base licenses and 200 Copilot licenses the customer already holds
    base = factories.SkuFactory(name="Microsoft 365 E3")
    copilot = factories.SkuFactory(name="Microsoft 365 Copilot", is_addon=True, addon_limit=Sku.AddonLimit.MAX_BASE)
    copilot.base_skus.add(base)
    factories.SubscriptionFactory(customer=customer, sku=base, quantity=250)
    factories.SubscriptionFactory(customer=customer, sku=copilot, quantity=200)
    # when 51 more Copilot licenses are added, then 50
    with pytest.raises(RuleViolation) as refused:
        add_to_cart(customer, sales, factories.availability(copilot), 51, now)
    assert not CartLine.objects.exists()
    line = add_to_cart(customer, sales, factories.availability(copilot), 50, now)
    # then the total may not pass the base licenses
    assert refused.value.rule == "K7"
    assert refused.value.message == (
        "Microsoft 365 Copilot can have at most 250 licenses (the customer already has 200): "
        "the customer's base licenses with every partner and in this cart."
    )
    assert line.quantity == 50


@pytest.mark.rule("C4a")
def test_c4a_a_trial_the_customer_already_has_is_refused(customer, sales, now):
    # given an active trial of an offer
    trial = factories.SkuFactory(trial=True, name="Microsoft 365 E5 Trial", availabilities=[("P1M", "monthly", "0.00")])
    factories.SubscriptionFactory(customer=customer, sku=trial, trial=True)
    # when the same trial is added again
    with pytest.raises(RuleViolation) as refused:
        add_to_cart(customer, sales, factories.availability(trial, "P1M"), 25, now)
    # then it is refused: one trial per customer
    assert refused.value.rule == "C4a"
    assert not CartLine.objects.exists()


@pytest.mark.rule("K8")
def test_k8_one_check_of_the_offers_minimum_and_maximum(db):
    # given an offer sold from 5 to 300 licenses
    sku = factories.SkuFactory(name="Microsoft 365 E3", min_quantity=5, max_quantity=300)
    # when each bound, and one past each, is asked of the one K8 check
    # then the bounds are allowed and one past them is refused with the range, in the partner's words
    assert [sku.quantity_refusal(q) for q in (5, 300)] == [None, None]
    refused = "Microsoft 365 E3 is sold in quantities from 5 to 300."
    assert [sku.quantity_refusal(q) for q in (4, 301)] == [refused, refused]
    # and the cart's rule answers with it (K8 before K6/K7)
    customer = factories.CustomerFactory()
    assert quantity_refusal(sku, 301, customer=customer, cart_quantities={}) == Refusal("K8", refused)
