"""The catalog page's read (C2–C5), from an in-process copy of the catalog.

The "Add subscription" page is the busiest read of the portal, and after its queries were cut to
plain rows its cost was still the ORM building them. The catalog changes rarely and is the same for
every customer, so each process keeps a snapshot of it (`catalog_snapshot`): every offer with what
the rules read (`OfferFacts`), its terms and prices, and the fixed part of its card's markup. One
single-row read of `CatalogVersion` per request tells whether the snapshot is still the database's;
every catalog write changes that version (catalog/models.py), and a stale snapshot is rebuilt.

Listing (C3, C5: `eligibility.listing_refusal`), filtering (C2: `filters.OfferSearch`), ordering and
paging then run in Python, and each card's verdict still comes from `eligibility.refusal`, the rule the
cart and the purchase apply.
"""

import threading
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from catalog.eligibility import BuyingContext, OfferFacts, listing_refusal, refusal
from catalog.filters import OfferSearch
from catalog.models import (
    Availability,
    BillingFrequency,
    Product,
    Publisher,
    Sku,
    Term,
    catalog_version,
)
from portal.templatetags.portal_tags import money

OFFERS_PER_PAGE = 20
ORDERING = ("-product__publisher__is_microsoft", "name", "pk")  # Microsoft first, then by name
# The term and billing a partner picks most often come first: annual term, billed monthly.
_TERM_RANK = {Term.P1Y: 0, Term.P1M: 1, Term.P3Y: 2}
_FREQUENCY_RANK = {BillingFrequency.MONTHLY: 0, BillingFrequency.ANNUAL: 1, BillingFrequency.ONE_TIME: 2}

_TERM_LABELS = dict(Term.choices)
_FREQUENCY_LABELS = {value: label.lower() for value, label in BillingFrequency.choices}
_BILLING_TYPE_LABELS = dict(Product.BillingType.choices)
_CATEGORY_LABELS = dict(Product.Category.choices)
_COMMERCE_LABELS = dict(Sku.Commerce.choices)

_SKU_FIELDS = tuple(f.attname for f in Sku._meta.concrete_fields)
_PRODUCT_FIELDS = tuple(f.attname for f in Product._meta.concrete_fields)
_PUBLISHER_FIELDS = tuple(f.attname for f in Publisher._meta.concrete_fields)
_AVAILABILITY_FIELDS = tuple(f.attname for f in Availability._meta.concrete_fields)
# Cached listings per snapshot (customer kind × filters); cleared when full, so memory stays bounded.
_MAX_LISTINGS = 512
_MAX_MATCHES = 256


@dataclass(frozen=True, slots=True)
class Offer:
    """One offer of the snapshot: what the rules, the filters and its card read. Never changed once built."""

    facts: OfferFacts
    group: int  # offers with the same facts for `listing_refusal` share a group: the rule runs once per group
    sku_id: str
    name: str
    is_microsoft: bool
    billing_type: str
    category: str
    search_text: tuple[str, ...]  # lower-cased: name, product name, publisher name, SKU id (C2's search)
    head: str  # escaped card markup from the data-sku attribute to the details line
    options: str  # escaped <option>s: (availability id, "1 year, monthly · 12.00 USD per license"), most usual first
    quantity: str  # the buy form's quantity field (license-based), trial note, or nothing
    # The Sku's, Product's and Publisher's columns in their models' field order, to rebuild instances (cart page).
    columns: tuple[tuple[Any, ...], tuple[Any, ...], tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class AvailabilityRow:
    pk: int
    sku_pk: int
    term: str
    billing_frequency: str
    unit_price: Decimal
    currency: str
    values: tuple  # every column, in the model's field order


@dataclass(eq=False)
class CatalogSnapshot:
    version: int
    offers: tuple[Offer, ...]  # in the page's order (ORDERING, as the database sorts it)
    by_pk: dict[int, Offer]
    availabilities: dict[int, AvailabilityRow]
    addon_base_ids: frozenset[int]  # every offer that is some add-on's base (C5)
    sku_availabilities: dict[int, tuple[AvailabilityRow, ...]]  # by sku, in Availability's order (term, frequency)
    addons_of: dict[int, tuple[int, ...]]  # the add-ons (ids, by name) whose bases include this offer (A3)
    name_rank: dict[int, int]  # each offer's place by name, as the database sorts names (its collation), then id
    groups: list[OfferFacts]  # one offer's facts per Offer.group
    _listings: dict = field(default_factory=dict)
    _matches: dict = field(default_factory=dict)

    def listing(self, ctx: BuyingContext | None, search: OfferSearch, show_all: bool) -> tuple[Offer, ...]:
        """The offers this customer's catalog lists (all of them with `show_all`), filtered by `search`, in order.

        Cached by what `listing_refusal` reads of the customer (segment, billing country, held or carted add-on
        bases) and by the filters, so paging through a listing or reloading it costs a dictionary look-up.
        """
        if show_all:
            listed_key: tuple = ("all",)
        else:
            customer, bases = ctx.customer, self.addon_base_ids
            held = frozenset(pk for pk in ctx.live if pk in bases) | frozenset(pk for pk in ctx.cart_sku_ids if pk in bases)
            listed_key = (customer.segment, customer.billing_country, held)
        key = (listed_key, search.key)
        found = self._listings.get(key)
        if found is None:
            listed = self._listings.get(listed_key)
            if listed is None:
                if show_all:
                    listed = self.offers
                else:
                    # C3, C5: `listing_refusal` once per group of offers it cannot tell apart.
                    shown = [listing_refusal(facts, ctx) is None for facts in self.groups]
                    listed = tuple(o for o in self.offers if shown[o.group])
                self._remember(listed_key, listed)
            found = tuple(o for o in listed if search.matches(o)) if search.filters else listed
            self._remember(key, found)
        return found

    def matching(self, text: str) -> tuple[int, ...]:
        """The ids of the offers whose name, product, publisher or SKU id contains `text` (lower-cased), as the
        catalog's search matches them, by name; remembered apart from the listings (text typed as it is typed comes in
        many variants, which would push the catalog page's listings out)."""
        found = self._matches.get(text)
        if found is None:
            found = tuple(sorted((o.facts.pk for o in self.offers if any(text in t for t in o.search_text)),
                                 key=self.name_rank.__getitem__))
            if len(self._matches) >= _MAX_MATCHES:
                self._matches.clear()
            self._matches[text] = found
        return found

    def _remember(self, key: tuple, offers: tuple[Offer, ...]) -> None:
        if len(self._listings) >= _MAX_LISTINGS:
            self._listings.clear()
        self._listings[key] = offers

    def sku(self, pk: int) -> Sku | None:
        """A new Sku with its Product, Publisher and availabilities (prefetched, in the model's order), as if loaded
        from the database, from the snapshot (no query); None if the snapshot does not have it."""
        if pk not in self.by_pk:
            return None
        sku = self._sku(pk)
        db = Sku.objects.db
        ways = [Availability.from_db(db, None, row.values) for row in self.sku_availabilities.get(pk, ())]
        for way in ways:
            way.sku = sku
        prefetched(sku, "availabilities", ways)
        return sku

    def availability(self, pk: int) -> Availability | None:
        """A new Availability with its Sku, Product and Publisher, as if loaded from the database, from the snapshot
        (no query); None if the snapshot does not have it. Built per call: instances are never shared."""
        row = self.availabilities.get(pk)
        if row is None:
            return None
        availability = Availability.from_db(Availability.objects.db, None, row.values)
        availability.sku = self._sku(row.sku_pk)
        return availability

    def _sku(self, pk: int) -> Sku:
        """A new Sku of the snapshot with its Product and Publisher, as if loaded from the database."""
        sku_values, product_values, publisher_values = self.by_pk[pk].columns
        db = Sku.objects.db
        sku = Sku.from_db(db, None, sku_values)
        sku.product = Product.from_db(db, None, product_values)
        sku.product.publisher = Publisher.from_db(db, None, publisher_values)
        return sku


_snapshot: CatalogSnapshot | None = None
_snapshot_lock = threading.Lock()


def catalog_snapshot() -> CatalogSnapshot:
    """This process's copy of the catalog, rebuilt when the database's catalog version differs (one query)."""
    global _snapshot
    version = catalog_version()
    snapshot = _snapshot
    if snapshot is not None and snapshot.version == version:
        return snapshot
    with _snapshot_lock:  # one thread builds; the others wait for it rather than build their own
        snapshot = _snapshot
        if snapshot is None or snapshot.version != version:
            # Built after the version was read: it holds at least what that version names, and any later
            # write gives a new version, so a snapshot is never kept past a change.
            snapshot = _build(version)
            _snapshot = snapshot
    return snapshot


def _addons_of(bases: dict[int, list[int]], rank: dict[int, int]) -> dict[int, tuple[int, ...]]:
    addons: dict[int, list[int]] = {}
    for addon_pk, base_pks in bases.items():
        for base_pk in base_pks:
            addons.setdefault(base_pk, []).append(addon_pk)
    return {base_pk: tuple(sorted(pks, key=rank.__getitem__)) for base_pk, pks in addons.items()}


def _split(text: str) -> tuple[str, ...]:
    # The same reading as Sku.segment_list and Sku.country_list (comma-separated, blanks ignored).
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _build(version: int) -> CatalogSnapshot:
    rows = list(Sku.objects.order_by(*ORDERING).values(
        *_SKU_FIELDS, *(f"product__{f}" for f in _PRODUCT_FIELDS), *(f"product__publisher__{f}" for f in _PUBLISHER_FIELDS)))
    names = {row["id"]: row["name"] for row in rows}
    bases: dict[int, list[int]] = {}
    for addon_pk, base_pk in Sku.base_skus.through.objects.values_list("from_sku_id", "to_sku_id").order_by():
        bases.setdefault(addon_pk, []).append(base_pk)
    exclusive: dict[int, set[int]] = {}
    for sku_pk, partner_pk in Sku.exclusive_partners.through.objects.values_list("sku_id", "partner_id").order_by():
        exclusive.setdefault(sku_pk, set()).add(partner_pk)
    availabilities = {}
    for values in Availability.objects.values_list(*_AVAILABILITY_FIELDS).order_by():
        row = dict(zip(_AVAILABILITY_FIELDS, values, strict=True))
        availabilities[row["id"]] = AvailabilityRow(row["id"], row["sku_id"], row["term"], row["billing_frequency"],
                                                    row["unit_price"], row["currency"], values)
    ways: dict[int, list[AvailabilityRow]] = {}
    for row in availabilities.values():
        ways.setdefault(row.sku_pk, []).append(row)
    groups: dict[tuple, int] = {}
    offers = tuple(_offer(row, bases.get(row["id"], []), names, exclusive.get(row["id"], set()), ways.get(row["id"], []),
                          groups) for row in rows)
    representatives = {o.group: o.facts for o in offers}
    name_rank = {pk: n for n, pk in enumerate(Sku.objects.order_by("name", "pk").values_list("pk", flat=True))}
    return CatalogSnapshot(
        version=version, offers=offers, by_pk={o.facts.pk: o for o in offers}, availabilities=availabilities,
        addon_base_ids=frozenset(pk for ids in bases.values() for pk in ids),
        sku_availabilities={pk: tuple(sorted(rows, key=lambda r: (r.term, r.billing_frequency)))
                            for pk, rows in ways.items()},
        # by name as the database sorts them (its collation), as the add-ons were listed before they came from here
        addons_of=_addons_of(bases, name_rank),
        name_rank=name_rank,
        groups=[representatives[n] for n in range(len(groups))],
    )


def _options(ways: list[AvailabilityRow], license_based: bool) -> list[tuple[int, str]]:
    """An offer's ways to buy it, most usual first, with their labels."""
    ordered = sorted(ways, key=lambda way: (_TERM_RANK[way.term], _FREQUENCY_RANK[way.billing_frequency]))
    return [
        (way.pk, f"{_TERM_LABELS[way.term]}, {_FREQUENCY_LABELS[way.billing_frequency]} · "
                 + (f"{money(way.unit_price, way.currency)} per license" if license_based else "pay as you go"))
        for way in ordered
    ]


_HEAD = ('" data-sku="{sku_id}">\n  <div>\n    <h3>{name}</h3>\n    <div class="meta">{meta}</div>\n'
         '    <div class="meta">{details}</div>\n')
_QUANTITY = ('      <label>Quantity <input type="number" name="quantity" value="{0}" min="{0}" max="{1}" required>'
             '</label>\n')
_TRIAL = '      <span class="muted">25 trial licenses</span>\n'


def _offer(row: dict, base_ids: list[int], names: dict[int, str], exclusive: set[int],
           ways: list[AvailabilityRow], groups: dict[tuple, int]) -> Offer:
    billing_type = row["product__billing_type"]
    is_license_based = billing_type == Product.BillingType.LICENSE
    is_isv = not row["product__publisher__is_microsoft"]
    facts = OfferFacts(
        pk=row["id"], segments=_split(row["segments"]), commerce=row["commerce"], is_addon=row["is_addon"],
        base_ids=frozenset(base_ids) if row["is_addon"] else frozenset(),
        base_names=tuple(sorted(names[pk] for pk in base_ids)) if row["is_addon"] else (),
        countries=tuple(c.upper() for c in _split(row["available_countries"])), is_isv=is_isv,
        offered_through_csp=row["offered_through_csp"], exclusive_ids=frozenset(exclusive) if is_isv else frozenset(),
        transactable_in_portal=row["transactable_in_portal"], one_per_customer=row["one_per_customer"],
        is_trial=row["is_trial"],
    )
    meta = (f"{row['product__publisher__name']} · {_BILLING_TYPE_LABELS[billing_type]} · "
            f"{_CATEGORY_LABELS[row['product__category']]} · {_COMMERCE_LABELS[row['commerce']]}")
    if row["one_per_customer"]:
        meta += " · one per customer"
    if row["is_addon"]:
        meta += " · add-on"
    if row["free_trial_days"]:
        meta += f" · {row['free_trial_days']}-day free trial"
    details = f"SKU {row['sku_id']}"
    if row["is_trial"]:
        details += " · 25 trial licenses for one month"
    elif is_license_based:
        details += f" · {row['min_quantity']}–{row['max_quantity']} licenses"
    if is_license_based and not row["is_trial"]:
        quantity = format_html(_QUANTITY, row["min_quantity"], row["max_quantity"])
    else:
        quantity = _TRIAL if row["is_trial"] else ""
    # What listing_refusal reads of an offer (its docstring says so): offers alike in these get the same verdict.
    listing_facts = (facts.segments, facts.is_addon, facts.commerce, facts.base_ids, facts.base_names, facts.countries)
    return Offer(
        facts=facts, group=groups.setdefault(listing_facts, len(groups)), sku_id=row["sku_id"], name=row["name"], is_microsoft=not is_isv, billing_type=billing_type,
        category=row["product__category"],
        search_text=tuple(text.lower() for text in (row["name"], row["product__name"], row["product__publisher__name"],
                                                    row["sku_id"])),
        head=format_html(_HEAD, sku_id=row["sku_id"], name=row["name"], meta=meta, details=details),
        options=format_html_join("", '<option value="{}">{}</option>', _options(ways, is_license_based)),
        quantity=quantity,
        columns=(tuple(row[f] for f in _SKU_FIELDS), tuple(row[f"product__{f}"] for f in _PRODUCT_FIELDS),
                 tuple(row[f"product__publisher__{f}"] for f in _PUBLISHER_FIELDS)),
    )


@dataclass(frozen=True, slots=True)
class BuyForm:
    """What every card's "Add to cart" form needs from the request."""

    action: str
    next_url: str
    csrf_token: str
    version_field: str  # the open cart's version input (portal/versions.py), drawn by its template


# A card is '<article class="offer' + (' unavailable') + Offer.head + reason + _MIDDLE + action + _END. Only the
# verdict and the form's request-bound fields (escaped here) are made per request.
_MIDDLE = "  </div>\n  <div>\n"
_END = "  </div>\n</article>\n"
_REASON = '    <p class="reason" role="note"><strong>Unavailable:</strong> {}{}</p>\n'
_DISABLED = '    <button class="btn" type="button" disabled title="{}">Add to cart</button>{}\n'
# data-queue: the cards' forms send one at a time, each with the cart version the one before it left (portal.js).
_FORM_OPEN = ('    <form method="post" action="{action}" hx-post="{action}" hx-target="find .feedback" hx-swap="innerHTML"'
              ' data-queue="cart">\n'
              '      <input type="hidden" name="csrfmiddlewaretoken" value="{csrf}">\n'
              '      <input type="hidden" name="next" value="{next}">\n'
              '      {version_field}\n'
              '      <label>Term and billing\n        <select name="availability">')
_SELECT_CLOSE = "</select>\n      </label>\n"
_FORM_CLOSE = ('      <button class="btn btn-primary" type="submit">Add to cart</button>\n'
               '      <div class="feedback" aria-live="polite"></div>\n    </form>\n')


def cards_html(offers, ctx: BuyingContext, buy: BuyForm | None, cannot_buy: str) -> SafeString:
    """The offers' cards: each greyed with its reason when refused (C4), or with the form to add it to the cart (K1).

    `buy` is None when this user may not buy (`cannot_buy` says why, T1/T2): the button is disabled with it.
    """
    if buy is not None:
        form_open = format_html(_FORM_OPEN, action=buy.action, csrf=buy.csrf_token, next=buy.next_url,
                                version_field=buy.version_field)
    else:
        not_allowed = format_html(_DISABLED, cannot_buy, format_html('<span class="why">{}</span>', cannot_buy))
    parts = []
    for offer in offers:
        why = refusal(offer.facts, ctx)
        if why:
            link = format_html(' <a href="{}">{}</a>', why.link, why.link_label) if why.link else ""
            parts += ['<article class="offer unavailable', offer.head, format_html(_REASON, why.message, link), _MIDDLE,
                      format_html(_DISABLED, why.message, ""), _END]
        elif buy is not None:
            parts += ['<article class="offer', offer.head, _MIDDLE, form_open, offer.options, _SELECT_CLOSE,
                      offer.quantity, _FORM_CLOSE, _END]
        else:
            parts += ['<article class="offer', offer.head, _MIDDLE, not_allowed, _END]
    return mark_safe("".join(parts))  # every part above is escaped markup


def prefetched(instance, related_name: str, objects: list) -> None:
    """Gives `instance` its related objects under `related_name` as `prefetch_related` leaves them: the manager's
    queryset with its results already there, so `.all()` and the like read them without a query."""
    queryset = getattr(instance, related_name).get_queryset()
    queryset._result_cache = list(objects)
    queryset._prefetch_done = True
    instance.__dict__.setdefault("_prefetched_objects_cache", {})[related_name] = queryset
