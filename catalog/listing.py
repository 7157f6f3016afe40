"""The catalog page's read (C2–C5), with the plain ORM.

The filters (C2) are `filters.OfferFilter`, applied by django-filter to the Sku queryset. What the customer's catalog
lists (C3, C5: `eligibility.listing_refusal`) is decided in Python, since the rule reads comma-separated columns
(segments, countries) and the customer's holdings: the filtered offers are read as plain values, a few columns each
(`ListingFacts`), the rule runs once per distinct set of those values, and only the page's offers are then loaded as
models, each with its verdict from `eligibility.refusal`, the rule the cart and the purchase apply.

Nothing is kept between requests: a catalog write shows on the next request, and a worker's memory holds what one
page needs, whatever the size of the catalog.
"""

from dataclasses import dataclass

from catalog.eligibility import BuyingContext, ListingFacts, Refusal, listing_refusal, offer_queryset, refusal
from catalog.filters import OfferFilter
from catalog.models import Availability, BillingFrequency, Sku, Term

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


def listed_offer_ids(offers, ctx: BuyingContext | None, show_all: bool) -> list[int]:
    """The ids of `offers` (a Sku queryset, in its order) that this customer's catalog lists: every one with
    `show_all`, else those `listing_refusal` lets through (C3, C5, A1). Two queries at most, of plain values."""
    if show_all:
        return list(offers.values_list("pk", flat=True))
    rows = list(offers.values_list(*_LISTING_COLUMNS))
    bases: dict[int, list[tuple[int, str]]] = {}
    if any(is_addon for _, _, _, is_addon, _ in rows):
        for addon_pk, base_pk, base_name in Sku.base_skus.through.objects.filter(from_sku__is_addon=True).values_list(
                "from_sku_id", "to_sku_id", "to_sku__name"):
            bases.setdefault(addon_pk, []).append((base_pk, base_name))
    verdicts: dict[tuple, bool] = {}  # the rule reads only these values: offers alike in them get one verdict
    listed = []
    for pk, segments, commerce, is_addon, countries in rows:
        offer_bases = tuple(sorted(bases.get(pk, ()))) if is_addon else ()
        key = (segments, commerce, is_addon, countries, offer_bases)
        shown = verdicts.get(key)
        if shown is None:
            facts = ListingFacts(pk=pk, segments=_split(segments), commerce=commerce, is_addon=is_addon,
                                 base_ids=frozenset(b for b, _ in offer_bases),
                                 base_names=tuple(sorted(name for _, name in offer_bases)),
                                 countries=_split(countries, upper=True))
            shown = verdicts[key] = listing_refusal(facts, ctx) is None
        if shown:
            listed.append(pk)
    return listed


@dataclass(frozen=True)
class OfferCard:
    """What one card of the catalog shows: the offer (with its product and publisher), its verdict for this
    customer (C4; None: it can be bought), and its ways to buy it, most usual first."""

    sku: Sku
    refusal: Refusal | None
    ways: list[Availability]


def offer_cards(ids: list[int], ctx: BuyingContext) -> list[OfferCard]:
    """The cards of these offers (a page of them), in this order: one query for the offers, three for what the
    rules and the cards read of them, whatever their number."""
    skus = offer_queryset().in_bulk(ids)
    cards = []
    for pk in ids:
        sku = skus.get(pk)
        if sku is None:  # deleted between the two reads: left out, as the next request would
            continue
        ways = sorted(sku.availabilities.all(), key=lambda way: (_TERM_RANK[way.term], _FREQUENCY_RANK[way.billing_frequency]))
        cards.append(OfferCard(sku=sku, refusal=refusal(sku, ctx), ways=ways))
    return cards


# LEGACY: subscriptions/ (reads.py, selectors.py, views.py, manage_views.py) still import the old snapshot from here;
# the queries branch of issue 10 removes those users, and then this line and catalog/snapshot.py go.
from catalog.snapshot import catalog_snapshot, prefetched  # noqa: E402, F401
