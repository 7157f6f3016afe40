"""The customer's catalog as Partner Center's resources (its product resources: a product, its SKUs, each SKU's
availabilities), read-only, beside the catalog page's flattened list (`GET …/products`, api.v1).

The portal's catalog maps onto Partner Center's like this: a `Product` is a product (its `product_id` is the
productId); a `Sku` is a SKU (its skuId is `wire.sku_part`), and it is what the catalog page calls an offer; an
`Availability` (one term and billing frequency at one unit price) is an availability, and its pk the availabilityId,
so `productId:skuId:availabilityId` is the catalogItemId a cart line buys.

Each SKU and availability carries the catalog page's own verdict for the customer (`purchasable`, and `refusal`
with the rule and the card's sentence): `catalog.listing.offer_cards` over the cached listing facts, asked with the
same buying context as the page (`api.v1.catalog_context`). Nothing is decided here. A product, SKU or availability
id the catalog doesn't have answers 404, as does another partner's customer."""

from decimal import Decimal

from django.http import Http404
from django.utils.translation import gettext
from ninja import Router
from pydantic import Field

from catalog import models as catalog_models
from catalog.listing import listing_facts, offer_cards
from catalog.models import BillingFrequency, Term, catalog_version
from portal import access

from . import schemas, wire
from .v1 import ERROR_RESPONSES, catalog_context

router = Router(tags=["catalog"])

PRODUCT = "/{customer_id}/products/{product_id}"
SKU = PRODUCT + "/skus/{sku_id}"
AVAILABILITY = SKU + "/availabilities/{availability_id}"


# --- Schemas -----------------------------------------------------------------------------------------------------


class Product(schemas.Schema):
    id: str = Field(description="The productId.")
    title: str
    description: str
    productType: schemas.ProductType
    isMicrosoftProduct: bool
    publisherName: str
    links: dict[str, schemas.Link] = Field(description="self, skus")
    attributes: schemas.Attributes


class Sku(schemas.Schema):
    id: str = Field(description="The skuId (within its product).")
    productId: str
    title: str
    description: str
    publisherName: str
    minimumQuantity: int
    maximumQuantity: int
    isTrial: bool
    isAddon: bool
    supportedBillingCycles: list[str] = Field(description="The billing cycles its availabilities are sold with.")
    purchasable: bool = Field(description="Whether this customer can buy it now (C4), as the catalog's card says.")
    refusal: schemas.Refusal | None = Field(description="Why not, with the rule, as the catalog's card says.")
    links: dict[str, schemas.Link] = Field(description="self, product, availabilities")
    attributes: schemas.Attributes


class AvailabilityTerm(schemas.Schema):
    duration: str = Field(description=", ".join(Term.values))
    billingCycle: str = Field(description=", ".join(BillingFrequency.values))
    description: str


class Availability(schemas.Schema):
    id: str = Field(description="The availabilityId.")
    productId: str
    skuId: str
    catalogItemId: str = Field(description="What a cart line buys: {productId}:{skuId}:{availabilityId}.")
    termDuration: str
    billingCycle: str
    terms: list[AvailabilityTerm] = Field(description="Partner Center's terms: this availability's one term.")
    unitPrice: Decimal = Field(description="Per license per billing period; money is a decimal string.")
    currency: str
    purchasable: bool = Field(description="The SKU's verdict for this customer (C4), as the catalog's card says.")
    refusal: schemas.Refusal | None = Field(description="Why not, with the rule, as the catalog's card says.")
    links: dict[str, schemas.Link] = Field(description="self, product, sku")
    attributes: schemas.Attributes


class SkuCollection(schemas.Schema):
    totalCount: int
    items: list[Sku]
    continuationToken: str | None = None
    links: dict[str, schemas.Link]
    attributes: schemas.Attributes


class AvailabilityCollection(schemas.Schema):
    totalCount: int
    items: list[Availability]
    continuationToken: str | None = None
    links: dict[str, schemas.Link]
    attributes: schemas.Attributes


# --- Reads -------------------------------------------------------------------------------------------------------


def _known(value: str, longest: int) -> str:
    """A path id the catalog could hold: anything else (too long, a control character such as NUL, which
    PostgreSQL refuses) names nothing, so it answers 404 without asking the database."""
    if not value or len(value) > longest or not value.isprintable():
        raise Http404
    return value


def _product(product_id: str) -> catalog_models.Product:
    product_id = _known(product_id, catalog_models.Product._meta.get_field("product_id").max_length)
    product = catalog_models.Product.objects.select_related("publisher").filter(product_id=product_id).first()
    if product is None:
        raise Http404
    return product


def _cards(request, customer, product: catalog_models.Product, sku_id: str | None = None) -> list:
    """The catalog page's cards of this product's SKUs (or of the one `sku_id` names), in the catalog's order, each
    with its verdict for the customer. A fixed number of queries, whatever the number of SKUs and availabilities:
    the SKU ids, the buying context, the catalog version, and the cards' offers with their ways to buy (two)."""
    skus = catalog_models.Sku.objects.filter(product=product)
    if sku_id is not None:
        skus = skus.filter(
            wire.sku_named(product.product_id, _known(sku_id, catalog_models.Sku._meta.get_field("sku_id").max_length))
        )
    wanted = set(skus.values_list("pk", flat=True))
    if sku_id is not None and not wanted:
        raise Http404
    facts = listing_facts(catalog_version())
    ids = [pk for pk in facts.ordered if pk in wanted]
    # A SKU the facts lack (created or deleted since they were read) is left out, as the catalog page leaves it.
    cards = [card for card in offer_cards(ids, catalog_context(request, customer), facts) if card.sku is not None]
    if sku_id is not None and not cards:
        raise Http404
    return cards


def _refusal(card) -> dict | None:
    refusal = card.refusal
    return {"ruleId": refusal.rule, "description": refusal.message} if refusal else None


def product_resource(customer, product: catalog_models.Product) -> dict:
    publisher = product.publisher
    path = wire.product_path(customer.pk, product)
    return {
        "id": product.product_id,
        "title": product.name,
        "description": product.description,
        "productType": wire.PRODUCT_TYPES[(publisher.is_microsoft, product.billing_type)],
        "isMicrosoftProduct": publisher.is_microsoft,
        "publisherName": publisher.name,
        "links": {"self": wire.link(path), "skus": wire.link(f"{path}/skus")},
        "attributes": {"objectType": "Product"},
    }


def sku_resource(customer, card) -> dict:
    sku = card.sku
    path = wire.sku_path(customer.pk, sku)
    cycles = {schemas.billing_cycle(way.term, way.billing_frequency) for way in card.ways}
    return {
        "id": wire.sku_part(sku),
        "productId": sku.product.product_id,
        "title": sku.name,
        "description": sku.product.description,
        "publisherName": sku.product.publisher.name,
        "minimumQuantity": sku.min_quantity,
        "maximumQuantity": sku.max_quantity,
        "isTrial": sku.is_trial,
        "isAddon": sku.is_addon,
        "supportedBillingCycles": [c for c in (*BillingFrequency.values, schemas.TRIENNIAL) if c in cycles],
        "purchasable": card.refusal is None,
        "refusal": _refusal(card),
        "links": {
            "self": wire.link(path),
            "product": wire.link(wire.product_path(customer.pk, sku.product)),
            "availabilities": wire.link(f"{path}/availabilities"),
        },
        "attributes": {"objectType": "Sku"},
    }


def availability_resource(customer, card, way) -> dict:
    sku = card.sku
    return {
        "id": str(way.pk),
        "productId": sku.product.product_id,
        "skuId": wire.sku_part(sku),
        "catalogItemId": wire.catalog_item(sku, way),
        "termDuration": way.term,
        "billingCycle": schemas.billing_cycle(way.term, way.billing_frequency),
        "terms": [
            {
                "duration": way.term,
                "billingCycle": schemas.billing_cycle(way.term, way.billing_frequency),
                "description": gettext("%(term)s, billed %(frequency)s")
                % {"term": Term(way.term).label, "frequency": BillingFrequency(way.billing_frequency).label.lower()},
            }
        ],
        "unitPrice": way.unit_price,
        "currency": way.currency,
        "purchasable": card.refusal is None,
        "refusal": _refusal(card),
        "links": {
            "self": wire.link(wire.availability_path(customer.pk, sku, way.pk)),
            "product": wire.link(wire.product_path(customer.pk, sku.product)),
            "sku": wire.link(wire.sku_path(customer.pk, sku)),
        },
        "attributes": {"objectType": "Availability"},
    }


def _collection(items: list, self_uri: str) -> dict:
    # A product has a handful of SKUs, a SKU a handful of availabilities: one page, as Partner Center answers them.
    return wire.collection(items, self_uri=self_uri, next_token=None)


# --- Operations --------------------------------------------------------------------------------------------------


@router.get(PRODUCT, response={200: Product, **ERROR_RESPONSES})
def get_product(request, customer_id: str, product_id: str):
    """A product of the catalog, as this customer's catalog reads it; its SKUs are at `links.skus`."""
    customer = access.get_customer(request.user, customer_id)
    return product_resource(customer, _product(product_id))


@router.get(PRODUCT + "/skus", response={200: SkuCollection, **ERROR_RESPONSES})
def list_skus(request, customer_id: str, product_id: str):
    """C4: the product's SKUs, each with the catalog card's verdict for this customer."""
    customer = access.get_customer(request.user, customer_id)
    product = _product(product_id)
    items = [sku_resource(customer, card) for card in _cards(request, customer, product)]
    return _collection(items, f"{wire.product_path(customer.pk, product)}/skus")


@router.get(SKU, response={200: Sku, **ERROR_RESPONSES})
def get_sku(request, customer_id: str, product_id: str, sku_id: str):
    """C4: one SKU, with the catalog card's verdict for this customer."""
    customer = access.get_customer(request.user, customer_id)
    card = _cards(request, customer, _product(product_id), sku_id)[0]
    return sku_resource(customer, card)


@router.get(SKU + "/availabilities", response={200: AvailabilityCollection, **ERROR_RESPONSES})
def list_availabilities(request, customer_id: str, product_id: str, sku_id: str):
    """C4: the ways to buy the SKU (a term, a billing cycle, a unit price), most usual first as the catalog's card
    lists them, each with the catalogItemId a cart line buys and the SKU's verdict for this customer."""
    customer = access.get_customer(request.user, customer_id)
    card = _cards(request, customer, _product(product_id), sku_id)[0]
    items = [availability_resource(customer, card, way) for way in card.ways]
    return _collection(items, f"{wire.sku_path(customer.pk, card.sku)}/availabilities")


@router.get(AVAILABILITY, response={200: Availability, **ERROR_RESPONSES})
def get_availability(request, customer_id: str, product_id: str, sku_id: str, availability_id: str):
    customer = access.get_customer(request.user, customer_id)
    card = _cards(request, customer, _product(product_id), sku_id)[0]
    way = next((way for way in card.ways if str(way.pk) == availability_id), None)
    if way is None:
        raise Http404
    return availability_resource(customer, card, way)
