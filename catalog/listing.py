"""The catalog page's read (C2–C5), with the plain ORM.

The filters (C2) are `filters.OfferFilter`, applied by django-filter to the Sku queryset. What the customer's catalog
lists (C3, C5: `eligibility.listing_refusal`) is decided in Python, since the rule reads comma-separated columns
(segments, countries) and the customer's holdings: the database gives the filtered offers' ids in order, the rule
runs once per distinct set of the values it reads (`ListingFacts`, kept as data in Django's cache under the catalog's
version: `listing_facts`), and only the page's offers are then loaded as models, each with its verdict from
`eligibility.refusal`, the rule the cart and the purchase apply.

A catalog write changes the version, so it shows on the next request; the cache holds compact data (not models, not
HTML), and the cards' fragments (templates/catalog/offer_list.html) are cached by the template, keyed by the version.
"""

from dataclasses import dataclass

from django.core.cache import caches
from django.db.models import Prefetch, prefetch_related_objects

from catalog.eligibility import BuyingContext, ListingFacts, Refusal, listing_refusal, refusal
from catalog.filters import OfferFilter
from catalog.models import Availability, BillingFrequency, Sku, Term, catalog_version
from portal.models import Partner

OFFERS_PER_PAGE = 20
ORDERING = ("-product__publisher__is_microsoft", "name", "pk")  # Microsoft first, then by name
# The term and billing a partner picks most often come first: annual term, billed monthly.
_TERM_RANK = {Term.P1Y: 0, Term.P1M: 1, Term.P3Y: 2}
_FREQUENCY_RANK = {BillingFrequency.MONTHLY: 0, BillingFrequency.ANNUAL: 1, BillingFrequency.ONE_TIME: 2}
_LISTING_COLUMNS = ("pk", "segments", "commerce", "is_addon", "available_countries")


def offer_filter(data) -> OfferFilter:
    """C2: the catalog's filters read from a query string (a QueryDict); its form draws them, its `qs` applies them
    (a value the form rejects is ignored), in the page's order."""
    return OfferFilter(data or None, queryset=Sku.objects.order_by(*ORDERING))


def _split(text: str, *, upper: bool = False) -> tuple[str, ...]:
    # The same reading as Sku.segment_list and Sku.country_list (comma-separated, blanks ignored).
    return tuple((part.strip().upper() if upper else part.strip()) for part in text.split(",") if part.strip())


# The listing facts of every offer, kept in Django's cache under the catalog's version (a catalog write makes a new
# version, so a new key: nothing to invalidate). Data only, and compact: the distinct sets of values the rule reads
# (215 on the bench's 2,000 offers) and, per offer id, the index of its set: 39 KB pickled at 2,000 offers, about
# 0.2 MB at 10,000 (LocMemCache keeps the pickle; a request unpickles its own copy and drops it). Writes (cart, checkout) never read it: they load the offer and ask `refusal`.
LISTING_FACTS_TIMEOUT = 24 * 60 * 60


def _listing_facts_key(version: int) -> str:
    return f"catalog:listing-facts:{version}"


def _read_listing_facts() -> tuple[tuple[tuple, ...], tuple[int, ...], tuple[int, ...]]:
    """Every offer's listing facts from the database: the distinct ones (as plain tuples of ListingFacts' fields,
    which unpickle several times faster than the dataclass), every offer id in the catalog's ORDERING, and beside
    each the index of its facts."""
    bases: dict[int, list[tuple[int, str]]] = {}
    for addon_pk, base_pk, base_name in Sku.base_skus.through.objects.filter(from_sku__is_addon=True).values_list(
        "from_sku_id", "to_sku_id", "to_sku__name"
    ):
        bases.setdefault(addon_pk, []).append((base_pk, base_name))
    classes: dict[tuple, int] = {}
    facts: list[tuple] = []
    ordered: list[int] = []
    indexes: list[int] = []
    for pk, segments, commerce, is_addon, countries in Sku.objects.order_by(*ORDERING).values_list(*_LISTING_COLUMNS):
        offer_bases = tuple(sorted(bases.get(pk, ()))) if is_addon else ()
        key = (segments, commerce, is_addon, countries, offer_bases)
        index = classes.get(key)
        if index is None:
            # pk=0: a set of facts stands for every offer that has them; listing_refusal doesn't read the pk.
            facts.append(
                (
                    0,
                    _split(segments),
                    commerce,
                    is_addon,
                    frozenset(b for b, _ in offer_bases),
                    tuple(sorted(name for _, name in offer_bases)),
                    _split(countries, upper=True),
                )
            )
            index = classes[key] = len(facts) - 1
        ordered.append(pk)
        indexes.append(index)
    return tuple(facts), tuple(ordered), tuple(indexes)


def listing_facts(version: int) -> tuple[tuple[tuple, ...], tuple[int, ...], tuple[int, ...]]:
    """The listing facts of the catalog at `version` (see `_read_listing_facts`), from the cache or read once."""
    cache = caches["default"]
    key = _listing_facts_key(version)
    found = cache.get(key)
    if found is None:
        found = _read_listing_facts()
        cache.set(key, found, LISTING_FACTS_TIMEOUT)
    return found


def listed_offer_ids(offers, ctx: BuyingContext | None, show_all: bool, version: int | None = None) -> list[int]:
    """The ids of `offers` (a Sku queryset: the filters) that this customer's catalog lists, in the catalog's
    ORDERING: every one with `show_all`, else those `listing_refusal` lets through (C3, C5, A1).

    One query, of the filtered ids (the filters are the database's), unsorted: the ORDERING is the listing facts'
    (`listing_facts`, cached by catalog `version`), which saves the database a sort of every offer across three
    tables on each page. An offer created after `version` was read has no facts yet: the next request lists it."""
    facts, ordered, indexes = listing_facts(catalog_version() if version is None else version)
    filtered = set(offers.order_by().values_list("pk", flat=True))
    if show_all:
        return [pk for pk in ordered if pk in filtered]
    # Once per distinct set of facts (a few hundred at most, whatever the number of offers).
    shown = [listing_refusal(ListingFacts(*fields), ctx) is None for fields in facts]
    return [pk for pk, index in zip(ordered, indexes, strict=True) if shown[index] and pk in filtered]


@dataclass(frozen=True)
class OfferCard:
    """What one card of the catalog shows: the offer (with its product and publisher), its verdict for this
    customer (C4; None: it can be bought), and its ways to buy it, most usual first."""

    sku: Sku
    refusal: Refusal | None
    ways: list[Availability]


def offer_cards(ids: list[int], ctx: BuyingContext) -> list[OfferCard]:
    """The cards of these offers (a page of them), in this order: one query for the offers with their products and
    publishers, one for their ways to buy, and what the rules read only of some offers, only for those: the base
    offers of the add-ons, the exclusive partners of the ISV offers (no query when the page has none)."""
    skus = (
        Sku.objects.select_related("product__publisher")
        .prefetch_related(Prefetch("availabilities", queryset=Availability.objects.order_by()))
        .in_bulk(ids)
    )
    # `refusal` (OfferFacts.of) reads base_skus of an add-on only, and exclusive_partners of an ISV offer only.
    prefetch_related_objects(
        [sku for sku in skus.values() if sku.is_addon],
        Prefetch("base_skus", queryset=Sku.objects.only("id", "name").order_by()),
    )
    prefetch_related_objects(
        [sku for sku in skus.values() if sku.is_isv],
        Prefetch("exclusive_partners", queryset=Partner.objects.only("id").order_by()),
    )
    cards = []
    for pk in ids:
        sku = skus.get(pk)
        if sku is None:  # deleted between the two reads: left out, as the next request would
            continue
        ways = sorted(
            sku.availabilities.all(), key=lambda way: (_TERM_RANK[way.term], _FREQUENCY_RANK[way.billing_frequency])
        )
        cards.append(OfferCard(sku=sku, refusal=refusal(sku, ctx), ways=ways))
    return cards
