"""The catalog's pages show the catalog as the database holds it: every write to the catalog tables shows on the
next request (the catalog page reads the database, and keeps nothing between requests). Every write also gives the
catalog a new version (catalog.models.CatalogVersion), the key of what is cached of it."""

import itertools
import re
from decimal import Decimal

import pytest
from django.db import transaction
from django.http import QueryDict
from django.urls import reverse

from catalog.filters import OfferFilter
from catalog.listing import ORDERING, listed_offer_ids, offer_filter
from catalog.models import Availability, CatalogVersion, Sku, UpgradePath, bump_catalog_version, catalog_version
from tests import factories


def catalog_page(client, customer, query="") -> str:
    response = client.get(reverse("catalog:offer-list", args=[customer.pk]) + (f"?{query}" if query else ""))
    assert response.status_code == 200
    return response.content.decode()


def card(page: str, sku: Sku) -> str:
    found = re.search(rf'<article class="offer[^"]*" data-sku="{re.escape(sku.sku_id)}">.*?</article>', page, re.S)
    assert found, f"no card for {sku.sku_id}"
    return found.group(0)


def test_an_admin_edit_of_a_price_shows_on_the_next_request(signed_in, admin_client, customer):
    # given an offer at 10.00 a month on a year's term, shown once (the snapshot is built)
    sku = factories.SkuFactory(name="Microsoft 365 E3")
    yearly = factories.availability(sku, "P1Y", "monthly")
    assert "1 year, monthly · 10.00 USD per license" in card(catalog_page(signed_in, customer), sku)
    # when an administrator changes the price in the admin
    response = admin_client.post(
        reverse("admin:catalog_availability_change", args=[yearly.pk]),
        {"sku": sku.pk, "term": "P1Y", "billing_frequency": "monthly", "unit_price": "11.50", "currency": "USD"},
    )
    assert response.status_code == 302
    assert Availability.objects.get(pk=yearly.pk).unit_price == Decimal("11.50")
    # then the next catalog request shows the new price, not the old
    shown = card(catalog_page(signed_in, customer), sku)
    assert "1 year, monthly · 11.50 USD per license" in shown
    assert "10.00 USD" not in shown


def test_a_new_offer_shows_on_the_next_request(signed_in, customer):
    # given a catalog already shown
    factories.SkuFactory(name="Microsoft 365 E3")
    assert "Visio Plan 2" not in catalog_page(signed_in, customer)
    # when a SKU is added
    visio = factories.SkuFactory(name="Visio Plan 2")
    # then the next request lists it
    assert "<h3>Visio Plan 2</h3>" in card(catalog_page(signed_in, customer), visio)


def test_a_removed_availability_leaves_the_card_on_the_next_request(signed_in, customer):
    # given an offer sold monthly and yearly, shown
    sku = factories.SkuFactory(name="Microsoft 365 E3")
    monthly = factories.availability(sku, "P1M", "monthly")
    assert f'<option value="{monthly.pk}">' in card(catalog_page(signed_in, customer), sku)
    # when the monthly term is withdrawn
    monthly.delete()
    # then the next request offers only the yearly term
    shown = card(catalog_page(signed_in, customer), sku)
    assert f'<option value="{monthly.pk}">' not in shown
    assert "1 year, monthly · 10.00 USD per license" in shown


@pytest.mark.rule("C4")
def test_an_exclusivity_change_shows_on_the_next_request(signed_in, customer, direct_partner):
    # given an ISV offer any partner may sell, shown as available
    isv = factories.SkuFactory(isv=True, name="Fabrikam Backup")
    assert "Unavailable" not in card(catalog_page(signed_in, customer), isv)
    other = factories.PartnerFactory()
    # when the publisher makes it exclusive to another partner
    isv.exclusive_partners.add(other)
    # then the next request greys it with the reason (C4e)
    assert "exclusive to other CSP partners" in card(catalog_page(signed_in, customer), isv)
    # and when this partner is added too, it is available again
    isv.exclusive_partners.add(direct_partner)
    assert "Unavailable" not in card(catalog_page(signed_in, customer), isv)
    # and when the exclusivity is cleared from the partner's side, it stays available
    isv.exclusive_partners.clear()
    assert "Unavailable" not in card(catalog_page(signed_in, customer), isv)


def test_an_upgrade_path_gives_the_catalog_a_new_version(signed_in, customer):
    # given two offers and the catalog's version
    e3, e5 = factories.SkuFactory(name="Microsoft 365 E3"), factories.SkuFactory(name="Microsoft 365 E5")
    catalog_page(signed_in, customer)
    before = catalog_version()
    # when an upgrade path is added, then marked unsupported
    path = UpgradePath.objects.create(source=e3, target=e5)
    after_create = catalog_version()
    path.supported = False
    path.save()
    # then each write gave a new version
    assert len({before, after_create, catalog_version()}) == 3


def test_a_publisher_renamed_shows_on_the_next_request(signed_in, customer):
    # given an ISV offer shown with its publisher's name
    isv = factories.SkuFactory(isv=True, name="Fabrikam Backup")
    publisher = isv.product.publisher
    catalog_page(signed_in, customer)
    # when the publisher is renamed
    publisher.name = "Fabrikam Cloud"
    publisher.save()
    # then the card names it so on the next request
    assert "Fabrikam Cloud · License-based" in card(catalog_page(signed_in, customer), isv)


def test_a_write_rolled_back_never_leaves_its_offer_in_the_snapshot(signed_in, customer):
    # given an offer created, shown, then rolled back with its transaction
    with pytest.raises(RuntimeError), transaction.atomic():
        ghost = factories.SkuFactory(name="Ghost Offer")
        assert "<h3>Ghost Offer</h3>" in card(catalog_page(signed_in, customer), ghost)
        raise RuntimeError("rolled back")
    # when another offer is created afterwards
    factories.SkuFactory(name="Visio Plan 2")
    # then the page shows the new offer and not the rolled-back one (a version counter would have come back to the
    # rolled-back snapshot's value here; a random version cannot)
    page = catalog_page(signed_in, customer)
    assert "<h3>Visio Plan 2</h3>" in page
    assert "Ghost Offer" not in page


def test_a_queryset_update_is_seen_once_the_version_is_bumped(signed_in, customer):
    # given an offer shown (QuerySet.update and bulk_create send no signal: their callers bump the version)
    sku = factories.SkuFactory(name="Microsoft 365 E3")
    catalog_page(signed_in, customer)
    # when it is renamed by a QuerySet.update, and the version bumped as catalog/models.py asks
    Sku.objects.filter(pk=sku.pk).update(name="Microsoft 365 E3 (no Teams)")
    bump_catalog_version()
    # then the next request shows the new name
    assert "<h3>Microsoft 365 E3 (no Teams)</h3>" in card(catalog_page(signed_in, customer), sku)


def test_a_database_without_the_version_row_gets_one(db):
    # given a database whose version row is gone (a flushed test database)
    CatalogVersion.objects.all().delete()
    # when the version is read, then it is created, and stays put until a write
    version = catalog_version()
    assert CatalogVersion.objects.get().version == version == catalog_version()
    factories.SkuFactory()
    assert catalog_version() != version


@pytest.mark.rule("C2")
def test_c2_the_page_lists_exactly_the_offer_filter_queryset(db):
    # given a catalog of every kind of offer, some names sharing words with publishers and SKU ids
    microsoft = factories.PublisherFactory(name="Microsoft", is_microsoft=True)
    fabrikam = factories.PublisherFactory(name="Fabrikam Software", is_microsoft=False)
    for n, (publisher, billing_type, category) in enumerate(
        itertools.product([microsoft, fabrikam], ["license", "usage"], ["enterprise", "small_business", "trial"])
    ):
        product = factories.ProductFactory(
            name=f"Product {n} Backup" if n % 3 else f"Suite {n}",
            publisher=publisher,
            billing_type=billing_type,
            category=category,
        )
        for variant in ("Basic", "Standard", "E5"):
            factories.SkuFactory(
                product=product, name=f"{product.name} {variant}", sku_id=f"CFQ{n:02d}{variant.upper()}"
            )
    queries = [
        "",
        "publisher=microsoft",
        "publisher=partner",
        "publisher=microsoft&publisher=partner",
        "publisher=foo",
        "publisher=microsoft&publisher=foo",
        "billing_type=usage",
        "billing_type=license&billing_type=usage",
        "category=trial&category=enterprise",
        "category=nonsense",
        "q=backup",
        "q=BACKUP&publisher=partner",
        "q=%20e5%20",
        "q=fabrikam",
        "q=cfq01",
        "q=%25",
        "q=_",
        "q=zzz",
        "q=suite&category=trial&billing_type=usage",
        "q=&billing_type=license",
        "q=a%00b",
        "page=2&show_all=1",
    ]
    for query in queries:
        # when the query string is applied by django-filter to a queryset, and by the catalog page's read
        expected = list(
            OfferFilter(QueryDict(query), queryset=Sku.objects.order_by(*ORDERING)).qs.values_list("pk", flat=True)
        )
        found = listed_offer_ids(offer_filter(QueryDict(query)).qs, None, show_all=True)
        # then both keep the same offers in the same order (the FilterSet is the one implementation of C2)
        assert found == expected, query


@pytest.mark.rule("C4")
def test_c4_the_cart_page_shows_a_line_refused_after_a_catalog_change(signed_in, sales, customer):
    # given a cart with an ISV offer, reviewed once while it could be bought
    isv = factories.SkuFactory(isv=True, name="Fabrikam Backup")
    cart = factories.CartFactory(customer=customer, owner=sales)
    factories.CartLineFactory(cart=cart, availability=factories.availability(isv))
    url = reverse("catalog:cart-detail", args=[customer.pk])
    assert "Can't be bought now" not in signed_in.get(url).content.decode()
    # when the publisher stops offering it through the CSP program
    isv.offered_through_csp = False
    isv.save()
    # then the next review of the cart says why it can't be bought (C4d), and nothing else changed
    page = signed_in.get(url).content.decode()
    assert "Can't be bought now: The publisher does not offer this through the CSP program." in page
    assert cart.lines.count() == 1
