"""LEGACY, for subscriptions/ only: this process's copy of the catalog that subscriptions/reads.py, selectors.py,
views.py and manage_views.py still read. The catalog's own pages no longer use it (catalog/listing.py reads the
database). It builds model instances "as loaded" (`from_db`) and fills `prefetch_related`'s cache by hand, which
the project's standards forbid: the queries branch of issue 10 removes its last users, and this module goes with them.
"""

import threading
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from catalog.eligibility import OfferFacts
from catalog.models import (
    Availability,
    Product,
    Publisher,
    Sku,
    catalog_version,
)

ORDERING = ("-product__publisher__is_microsoft", "name", "pk")
_MAX_MATCHES = 256  # remembered searches per snapshot; cleared when full, so memory stays bounded

_SKU_FIELDS = tuple(f.attname for f in Sku._meta.concrete_fields)
_PRODUCT_FIELDS = tuple(f.attname for f in Product._meta.concrete_fields)
_PUBLISHER_FIELDS = tuple(f.attname for f in Publisher._meta.concrete_fields)
_AVAILABILITY_FIELDS = tuple(f.attname for f in Availability._meta.concrete_fields)


@dataclass(frozen=True, slots=True)
class Offer:
    """One offer of the snapshot: what the rules, the filters and its card read. Never changed once built."""

    facts: OfferFacts
    sku_id: str
    name: str
    is_microsoft: bool
    billing_type: str
    category: str
    search_text: tuple[str, ...]  # lower-cased: name, product name, publisher name, SKU id (C2's search)
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
    _matches: dict = field(default_factory=dict)

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
    offers = tuple(_offer(row, bases.get(row["id"], []), names, exclusive.get(row["id"], set())) for row in rows)
    name_rank = {pk: n for n, pk in enumerate(Sku.objects.order_by("name", "pk").values_list("pk", flat=True))}
    return CatalogSnapshot(
        version=version, offers=offers, by_pk={o.facts.pk: o for o in offers}, availabilities=availabilities,
        addon_base_ids=frozenset(pk for ids in bases.values() for pk in ids),
        sku_availabilities={pk: tuple(sorted(rows, key=lambda r: (r.term, r.billing_frequency)))
                            for pk, rows in ways.items()},
        # by name as the database sorts them (its collation), as the add-ons were listed before they came from here
        addons_of=_addons_of(bases, name_rank),
        name_rank=name_rank,
    )


def _offer(row: dict, base_ids: list[int], names: dict[int, str], exclusive: set[int]) -> Offer:
    billing_type = row["product__billing_type"]
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
    return Offer(
        facts=facts, sku_id=row["sku_id"], name=row["name"], is_microsoft=not is_isv, billing_type=billing_type,
        category=row["product__category"],
        search_text=tuple(text.lower() for text in (row["name"], row["product__name"], row["product__publisher__name"],
                                                    row["sku_id"])),
        columns=(tuple(row[f] for f in _SKU_FIELDS), tuple(row[f"product__{f}"] for f in _PRODUCT_FIELDS),
                 tuple(row[f"product__publisher__{f}"] for f in _PUBLISHER_FIELDS)),
    )


def prefetched(instance, related_name: str, objects: list) -> None:
    """Gives `instance` its related objects under `related_name` as `prefetch_related` leaves them: the manager's
    queryset with its results already there, so `.all()` and the like read them without a query."""
    queryset = getattr(instance, related_name).get_queryset()
    queryset._result_cache = list(objects)
    queryset._prefetch_done = True
    instance.__dict__.setdefault("_prefetched_objects_cache", {})[related_name] = queryset
