"""The catalog page's read (C2–C5), with the plain ORM.

The filters (C2) are `filters.OfferFilter`, applied by django-filter to the Sku queryset. What the customer's catalog
lists (C3, C5: `eligibility.listing_refusal`) is decided in Python, since the rule reads comma-separated columns
(segments, countries) and the customer's holdings: the database gives the filtered offers' ids (none when no filter
is set), the rule runs once per distinct set of the values it reads (`OfferFacts` but the pk, kept as data in
Django's cache under the catalog's version: `listing_facts`, in the catalog's order), and each card of the page gets
its verdict from `eligibility.refusal`, the rule the cart and the purchase apply, over the same cached facts. The
page's offers are loaded as models only to draw a card's fragment anew (`PageOffers`).

A catalog write changes the version, so it shows on the next request; the cache holds compact data (not models, not
HTML), and the cards' fragments (templates/catalog/offer_list.html) are cached by the template, keyed by the version.
"""

from array import array
from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

from django.core.cache import caches
from django.db.models import Prefetch

from catalog.eligibility import BuyingContext, ListingFacts, OfferFacts, Refusal, listing_refusal, refusal
from catalog.filters import OfferFilter
from catalog.models import Availability, BillingFrequency, Sku, Term, catalog_version

OFFERS_PER_PAGE = 20
ORDERING = ("-product__publisher__is_microsoft", "name", "pk")  # Microsoft first, then by name
# The term and billing a partner picks most often come first: annual term, billed monthly.
_TERM_RANK = {Term.P1Y: 0, Term.P1M: 1, Term.P3Y: 2}
_FREQUENCY_RANK = {BillingFrequency.MONTHLY: 0, BillingFrequency.ANNUAL: 1, BillingFrequency.ONE_TIME: 2}


def offer_filter(data) -> OfferFilter:
    """C2: the catalog's filters read from a query string (a QueryDict); its form draws them, its `qs` applies them
    (a value the form rejects is ignored), in the page's order."""
    return OfferFilter(data or None, queryset=Sku.objects.order_by(*ORDERING))


def _split(text: str, *, upper: bool = False) -> tuple[str, ...]:
    # The same reading as Sku.segment_list and Sku.country_list (comma-separated, blanks ignored).
    return tuple((part.strip().upper() if upper else part.strip()) for part in text.split(",") if part.strip())


# The facts of every offer, kept in Django's cache under the catalog's version (a catalog write makes a new version,
# so a new key: nothing to invalidate). Data only, and compact: the distinct sets of values the rules read (C3-C5,
# A1: the OfferFacts of an offer but its pk; a few hundred on the bench's 2,000 offers) and, per offer id, the index of
# its set. LocMemCache keeps the pickle; a request unpickles its own copy and drops it. Writes (cart, checkout) never
# read it: they load the offer and ask `refusal`.
LISTING_FACTS_TIMEOUT = 24 * 60 * 60
_FACT_COLUMNS = (
    "pk",
    "segments",
    "commerce",
    "is_addon",
    "available_countries",
    "product__publisher__is_microsoft",
    "offered_through_csp",
    "transactable_in_portal",
    "one_per_customer",
    "is_trial",
)


def _listing_facts_key(version: int) -> str:
    return f"catalog:offer-facts:{version}"


class OfferFactsTable(NamedTuple):
    """Every offer's facts (`_read_listing_facts`), as plain tuples, which unpickle several times faster than the
    dataclasses, and arrays of integers: the distinct sets of ListingFacts' fields and of OfferFacts' fields (pk 0: a
    set stands for every offer that has it), every offer id in the catalog's ORDERING, and beside each the index of
    its two sets."""

    listing: tuple[tuple, ...]
    facts: tuple[tuple, ...]
    ordered: array  # of offer ids
    listing_indexes: array
    indexes: array


def _read_listing_facts() -> OfferFactsTable:
    """Every offer's facts from the database, in three queries (the offers, the add-ons' bases, the ISV offers'
    exclusive partners): the same values `OfferFacts.of` reads from a loaded offer."""
    bases: dict[int, list[tuple[int, str]]] = {}
    for addon_pk, base_pk, base_name in Sku.base_skus.through.objects.filter(from_sku__is_addon=True).values_list(
        "from_sku_id", "to_sku_id", "to_sku__name"
    ):
        bases.setdefault(addon_pk, []).append((base_pk, base_name))
    exclusive: dict[int, set[int]] = {}
    for sku_pk, partner_pk in Sku.exclusive_partners.through.objects.filter(
        sku__product__publisher__is_microsoft=False
    ).values_list("sku_id", "partner_id"):
        exclusive.setdefault(sku_pk, set()).add(partner_pk)
    classes: dict[tuple, int] = {}
    listing_classes: dict[tuple, int] = {}
    facts: list[tuple] = []
    listing: list[tuple] = []
    # Per offer, machine integers (arrays: 16 bytes an offer, no int objects), so the pickle a request unpickles stays
    # small and makes no object per offer: a worker's memory does not grow with the catalog beyond what a page needs.
    ordered = array("q")
    indexes = array("i")
    listing_indexes = array("i")
    # Streamed (`iterator`): the rows are not all held at once while the facts are built.
    rows = Sku.objects.order_by(*ORDERING).values_list(*_FACT_COLUMNS).iterator(chunk_size=2000)
    for pk, segments, commerce, is_addon, countries, is_microsoft, through_csp, transactable, one, trial in rows:
        offer_bases = tuple(sorted(bases.get(pk, ()))) if is_addon else ()
        exclusive_ids = frozenset(exclusive.get(pk, ())) if not is_microsoft else frozenset()
        listing_key = (segments, commerce, is_addon, countries, offer_bases)
        listing_index = listing_classes.get(listing_key)
        if listing_index is None:
            # pk=0: a set of facts stands for every offer that has them; listing_refusal doesn't read the pk.
            listing.append(
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
            listing_index = listing_classes[listing_key] = len(listing) - 1
        key = (listing_index, is_microsoft, through_csp, transactable, one, trial, tuple(sorted(exclusive_ids)))
        index = classes.get(key)
        if index is None:
            # The rest of OfferFacts, after the listing facts (the pk comes from the offer: `offer_cards`).
            facts.append(
                listing[listing_index] + (not is_microsoft, through_csp, exclusive_ids, transactable, one, trial)
            )
            index = classes[key] = len(facts) - 1
        ordered.append(pk)
        indexes.append(index)
        listing_indexes.append(listing_index)
    return OfferFactsTable(tuple(listing), tuple(facts), ordered, listing_indexes, indexes)


def listing_facts(version: int) -> OfferFactsTable:
    """The offer facts of the catalog at `version` (see `_read_listing_facts`), from the cache or read once."""
    cache = caches["default"]
    key = _listing_facts_key(version)
    found = cache.get(key)
    if found is None:
        found = _read_listing_facts()
        cache.set(key, found, LISTING_FACTS_TIMEOUT)
    return found


def listed_offer_ids(
    offers,
    ctx: BuyingContext | None,
    show_all: bool,
    version: int | None = None,
    *,
    narrowed: bool = True,
    facts: OfferFactsTable | None = None,
) -> list[int]:
    """The ids of `offers` (a Sku queryset: the filters) that this customer's catalog lists, in the catalog's
    ORDERING: every one with `show_all`, else those `listing_refusal` lets through (C3, C5, A1).

    One query, of the filtered ids (the filters are the database's), unsorted: the ORDERING is the listing facts'
    (`listing_facts`, cached by catalog `version`, or given as `facts`), which saves the database a sort of every
    offer across three tables on each page. Not `narrowed` (no filter set: `offers` is every offer), no query at all:
    the facts list every offer of the version. An offer created after `version` was read has no facts yet: the next
    request lists it."""
    if facts is None:
        facts = listing_facts(catalog_version() if version is None else version)
    ordered = facts.ordered
    filtered = set(offers.order_by().values_list("pk", flat=True)) if narrowed else None
    if show_all:
        return list(ordered) if filtered is None else [pk for pk in ordered if pk in filtered]
    # Once per distinct set of listing facts (a few hundred at most, whatever the number of offers).
    shown = [listing_refusal(ListingFacts(*fields), ctx) is None for fields in facts.listing]
    pairs = zip(ordered, facts.listing_indexes, strict=True)
    if filtered is None:
        return [pk for pk, index in pairs if shown[index]]
    return [pk for pk, index in pairs if shown[index] and pk in filtered]


class PageOffers:
    """The models of a page's offers, read on first use: one query for the offers with their products and
    publishers, one for their ways to buy. Only a card's fragment drawn anew reads them (its cached copy is keyed by
    the catalog version), so a page whose cards are all cached reads no offer at all."""

    def __init__(self, ids: list[int]):
        self.ids = ids

    @cached_property
    def skus(self) -> dict[int, Sku]:
        return (
            Sku.objects.select_related("product__publisher")
            .prefetch_related(Prefetch("availabilities", queryset=Availability.objects.order_by()))
            .in_bulk(self.ids)
        )


@dataclass(frozen=True)
class OfferCard:
    """What one card of the catalog shows: the offer's id, its verdict for this customer (C4; None: it can be
    bought), and, read when the card's fragment is drawn, the offer (with its product and publisher) and its ways
    to buy it, most usual first."""

    pk: int
    refusal: Refusal | None
    offers: PageOffers

    @property
    def sku(self) -> Sku | None:
        # None only for an offer deleted since the page's facts were read: its card is drawn empty, the next
        # request (a new catalog version) leaves it out.
        return self.offers.skus.get(self.pk)

    @property
    def ways(self) -> list[Availability]:
        sku = self.sku
        if sku is None:
            return []
        return sorted(
            sku.availabilities.all(), key=lambda way: (_TERM_RANK[way.term], _FREQUENCY_RANK[way.billing_frequency])
        )


def cached_offer_facts(ids, facts: OfferFactsTable | None = None) -> dict[int, OfferFacts]:
    """What `refusal` reads of each of these offers, from the catalog's cached facts: no query but the version's
    (none given `facts`). An offer the facts lack (created since they were read) has no entry."""
    if facts is None:
        facts = listing_facts(catalog_version())
    wanted = set(ids)
    # The shared set of facts with the offer's own pk, which the rules read (owned, in the cart: C4a, C4b).
    return {
        pk: OfferFacts(pk, *facts.facts[index][1:])
        for pk, index in zip(facts.ordered, facts.indexes, strict=True)
        if pk in wanted
    }


def offer_cards(ids: list[int], ctx: BuyingContext, facts: OfferFactsTable | None = None) -> list[OfferCard]:
    """The cards of these offers (a page of them), in this order, each with its verdict (`refusal`, the rule the cart
    and the purchase apply, over `cached_offer_facts`): no query here. The offers themselves are read only if a card's fragment is drawn (`PageOffers`)."""
    known = cached_offer_facts(ids, facts)
    offers = PageOffers(ids)
    # An offer the facts lack (created since they were read) is left out: the next request lists it.
    return [OfferCard(pk=pk, refusal=refusal(known[pk], ctx), offers=offers) for pk in ids if pk in known]
