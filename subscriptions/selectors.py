"""Reads of subscriptions for the lists (S1, and across customers) and the export (S5).

The subscriptions these functions take are already scoped by `portal.access` (T3); they add to
the query in SQL, so a list page runs the same few queries whatever the number of subscriptions.
"""

from dataclasses import dataclass, replace
from functools import partial
from datetime import date, datetime, timedelta
from uuid import UUID

from django.core.paginator import Page
from django.db.models import Count, Exists, F, OuterRef, QuerySet, Subquery, Window

from catalog.listing import catalog_snapshot
from catalog.models import Sku
from portal import access, prepared
from portal.pagination import SmallListPaginator

from .models import SeatLot, Subscription
from .states import Status

LIST_PAGE_SIZE = 25
WINDOW_SOON = timedelta(hours=48)
RENEWS_SOON_DAYS = 30
OFFER_TEXT_MAX = 100

# Sort keys in the query string -> columns. "name" is what the list shows: the friendly name, else the offer's,
# stored as `list_name` so that the (customer, list_name, id) index serves it.
SORT_COLUMNS = {
    "name": ("list_name",),
    "quantity": ("quantity",),
    "status": ("status",),
    "term": ("term",),
    "billing": ("billing_frequency",),
    "term_end": ("term_end",),
    "auto_renew": ("auto_renew",),
    "reseller": ("reseller__name",),
    # Ties between customers of the same name by tenant, so that (with the customers' unique (partner, company_name,
    # tenant_id) index) the database reads in index order; see portal.models.Customer.
    "customer": ("customer__company_name", "customer__tenant_id", "list_name"),
}
CUSTOMER_SORTS = [key for key in SORT_COLUMNS if key != "customer"]


# What a list row shows, read as plain values (no model instances): a page of 25 rows is built in a fraction of
# the time, and the list needs nothing else of a subscription.
LIST_VALUES = (
    "pk", "customer_id", "customer__company_name", "list_name", "friendly_name", "sku__name", "is_trial",
    "latest_window", "quantity", "status", "term", "billing_frequency", "term_end", "auto_renew", "reseller__name",
    "reseller__partner_id",
)


@dataclass(frozen=True, slots=True)
class ListRow:
    """One row of a subscription list, as the list shows it (S1)."""

    pk: UUID
    customer_id: UUID
    customer_name: str
    name: str  # the friendly name, else the offer's
    friendly_name: str
    offer_name: str
    is_trial: bool
    reduce_until: datetime | None  # Q2, Q4: the latest open removal window's end, or None
    quantity: int
    status: str
    term: str
    billing_frequency: str
    term_end: date | None
    auto_renew: bool
    reseller_name: str | None
    reseller_partner_id: str | None


def open_removal_lots(*, now: datetime) -> QuerySet:
    """License lots that can still be removed now: window not closed, licenses left to remove (Q2)."""
    return SeatLot.objects.filter(window_ends_at__gt=now, removed__lt=F("quantity"))


def with_list_columns(subscriptions: QuerySet, *, now: datetime) -> QuerySet:
    """The list's columns in one query, as values for `list_row`: offer, reseller, customer, the name shown, and
    `latest_window`, the latest end of the removal windows still open among the subscription's lots (Q2, Q4), or
    None: a correlated subquery on the lots' (subscription) index, in the same query."""
    latest_window = (open_removal_lots(now=now).filter(subscription=OuterRef("pk"))
                     .order_by("-window_ends_at").values("window_ends_at")[:1])
    return subscriptions.annotate(latest_window=Subquery(latest_window)).values_list(*LIST_VALUES)


def list_row(values: tuple) -> ListRow:
    row = ListRow(*values)
    if row.reduce_until is not None and (row.status != Status.ACTIVE or row.is_trial):
        # Only an active, paid subscription can have licenses removed (Q6, TR4): the others never say until when.
        return replace(row, reduce_until=None)
    return row


class SubscriptionList:
    """What a list's paginator pages through: the subscriptions of a scope (portal.access) with filters, sorted.

    A page is ONE statement: its inner query sorts and cuts narrow rows (ids), its outer query reads the page's
    rows with every column. Sorting full rows would carry every column, and the lots subquery, through the sort of
    all the customer's (or partner's) subscriptions. The count reads the filtered subscriptions, without the
    sort's joins. Both are prepared queries (portal.prepared): built and compiled once per shape (scope kind,
    filters, sort, page bounds), then run with this list's ids, offer and times.

    The 48-hour window filter finds few subscriptions, and finding them is the costly part (from the lots closing
    soon to their subscriptions and customers): its page's ids are found, sorted and counted in one pass (COUNT(*)
    OVER ()), so the count comes with the page; the page's rows are then read by id."""

    # The paginator warns about an unordered list by testing `ordered`: a queryset under that name would be
    # tested by fetching it whole.
    ordered = True

    def __init__(self, scope, filters: "ListFilters", sort: str, *, now: datetime):
        self._scope, self._sort, self._now = scope, sort, now
        self._values = filter_values(filters, now=now)
        # What the build functions get of the filters: which are on, and the status; no value of theirs (the offer
        # id comes in as a marker), so none can be built into the SQL by mistake.
        self._filters = replace(filters, offer=None if filters.offer is None else -1, offer_text="")
        self._shape = (scope.key, filters.status, filters.offer is not None, filters.window_soon, filters.renews_soon)
        self._counted: int | None = None  # the count that came with a page (the window filter's)

    @property
    def counted(self) -> int | None:
        """The count that came with the page read last (the window filter's), if one did."""
        return self._counted

    def count(self) -> int:
        if self._counted is not None:
            return self._counted
        names = tuple(self._values)
        build = partial(_filtered_subscriptions, self._scope.key, self._filters, names)
        return prepared.count(("subscription-count", *self._shape), build, *self._scope.values, *self._values.values())

    def __getitem__(self, cut: slice) -> list[ListRow]:
        # Always a page and one row more (the paginator asks the last page to the count): one shape per page, not
        # per page and count.
        start, stop = cut.start or 0, (cut.start or 0) + LIST_PAGE_SIZE + 1
        values = {**self._values, "now": self._now}
        if self._filters.window_soon:
            names = tuple(self._values)
            build = partial(_counted_ids, self._scope.key, self._filters, self._sort, names, start, stop)
            found = prepared.rows(("subscription-counted-ids", *self._shape, self._sort, start, stop), build,
                                  *self._scope.values, *self._values.values())
            if not found:
                return []
            self._counted = found[0][1]
            ids = [pk for pk, _ in found[: cut.stop - start]]
            if not ids:  # the paginator asked for no row (a count of 0 read before a subscription came in)
                return []
            padded = ids + ids[:1] * (LIST_PAGE_SIZE + 1 - len(ids))  # one shape for every page
            rows = prepared.rows(("subscription-rows", self._sort, len(padded)), partial(_rows_by_id, self._sort),
                                 self._now, *padded)
            return [list_row(row) for row in rows]
        build = partial(_page, self._scope.key, self._filters, self._sort, tuple(values), start, stop)
        rows = prepared.rows(("subscription-page", *self._shape, self._sort, start, stop), build,
                             *self._scope.values, *values.values())
        return [list_row(row) for row in rows[: cut.stop - start]]


# The build functions of the prepared queries: every value that varies comes in as a marker (`ids_and_values`:
# the scope's ids, then the named values); the other arguments are the query's shape, all in its key.

def _filtered_subscriptions(scope_key: tuple, filters: "ListFilters", names: tuple, *ids_and_values) -> QuerySet:
    split = len(ids_and_values) - len(names)
    subscriptions = access.scoped_subscriptions(scope_key, *ids_and_values[:split])
    return filter_subscriptions(subscriptions, filters, **dict(zip(names, ids_and_values[split:])))


def _page(scope_key: tuple, filters: "ListFilters", sort: str, names: tuple, start: int, stop: int,
          *ids_and_values) -> QuerySet:
    ordered = order_subscriptions(_filtered_subscriptions(scope_key, filters, names, *ids_and_values), sort)
    now = ids_and_values[len(ids_and_values) - len(names) + names.index("now")]
    rows = with_list_columns(Subscription.objects.filter(pk__in=Subquery(ordered.values("pk")[start:stop])), now=now)
    return rows.order_by(*ordered.query.order_by)


def _counted_ids(scope_key: tuple, filters: "ListFilters", sort: str, names: tuple, start: int, stop: int,
                 *ids_and_values) -> QuerySet:
    ordered = order_subscriptions(_filtered_subscriptions(scope_key, filters, names, *ids_and_values), sort)
    return ordered.annotate(counted=Window(Count("*"))).values_list("pk", "counted")[start:stop]


def _rows_by_id(sort: str, now: datetime, *ids) -> QuerySet:
    # The ids come from the scoped, filtered list: a page's rows are read by them alone, in the list's order.
    return with_list_columns(order_subscriptions(Subscription.objects.filter(pk__in=ids), sort), now=now)


def list_page(scope, filters: "ListFilters", number, *, sort: str, allowed: list[str], default: str,
              now: datetime) -> tuple[Page, str]:
    """A page of the subscriptions of this scope (portal.access.subscription_scope) with these filters, sorted by
    `sort` if allowed (else `default`; see `order_subscriptions`), with the list's columns; and the sort applied.
    One query, and a COUNT past the first page, whatever their number (the window filter: its count comes with
    its page, on every page)."""
    sort = allowed_sort(sort, allowed=allowed, default=default)
    subscriptions = SubscriptionList(scope, filters, sort, now=now)
    counted = (lambda rows: subscriptions.counted) if filters.window_soon else None
    return SmallListPaginator(subscriptions, LIST_PAGE_SIZE, count_field=counted).get_page(number), sort


@dataclass(frozen=True)
class ListFilters:
    """What a list is filtered by, read from the query string; unknown values are ignored, not errors."""

    status: str = ""
    offer: int | None = None  # one offer, by its id (the subscription page links to its offer's subscriptions)
    offer_text: str = ""  # what is typed to find an offer to filter by (lower-cased): see `offers_matching`
    window_soon: bool = False
    renews_soon: bool = False

    @classmethod
    def from_query(cls, query) -> "ListFilters":
        status = query.get("status", "")
        offer = query.get("offer", "")
        return cls(
            status=status if status in Status.values else "",
            # ASCII digits only, short enough for any database's integer
            offer=int(offer) if offer.isascii() and offer.isdigit() and len(offer) <= 18 else None,
            offer_text=" ".join(query.get("offer_name", "").split())[:OFFER_TEXT_MAX].lower(),
            window_soon=query.get("window") == "48h",
            renews_soon=query.get("renews") == "30d",
        )

    @property
    def active(self) -> bool:
        return bool(self.status or self.offer is not None or self.window_soon or self.renews_soon)


def filter_values(filters: ListFilters, *, now: datetime) -> dict:
    """The values `filter_subscriptions` compares with, by name, for these filters at this time."""
    values = {}
    if filters.offer is not None:
        values["offer"] = filters.offer
    if filters.window_soon:
        values.update(now=now, soon=now + WINDOW_SOON)
    if filters.renews_soon:
        today = now.date()
        values.update(today=today, until=today + timedelta(days=RENEWS_SOON_DAYS))
    return values


def filter_subscriptions(subscriptions: QuerySet, filters: ListFilters, *, offer: int | None = None,
                         now: datetime | None = None, soon: datetime | None = None, today: date | None = None,
                         until: date | None = None) -> QuerySet:
    """These subscriptions with the filters on, comparing with the values of `filter_values` (given apart from
    the filters, so that a prepared query can give markers in their places)."""
    if filters.status:
        subscriptions = subscriptions.filter(status=filters.status)
    if filters.offer is not None:
        subscriptions = subscriptions.filter(sku_id=offer)
    if filters.window_soon:
        # A removal window closing within 48 hours, with licenses still removable (as on the home page). IN over
        # the few lots closing soon, not EXISTS per subscription: the database reads those lots once.
        closing = open_removal_lots(now=now).filter(window_ends_at__lte=soon).values("subscription_id")
        subscriptions = subscriptions.filter(pk__in=closing, status=Status.ACTIVE, is_trial=False)
    if filters.renews_soon:
        # N1, N2: auto-renewing active subscriptions whose (inclusive) term end falls in the next 30 days.
        subscriptions = subscriptions.filter(status=Status.ACTIVE, auto_renew=True, term_end__gte=today,
                                             term_end__lte=until)
    return subscriptions


def allowed_sort(sort: str, *, allowed: list[str], default: str) -> str:
    """`sort` ("name", "-name", ...) if its column is allowed, else `default`."""
    return sort if sort.removeprefix("-") in allowed else default


def order_subscriptions(subscriptions: QuerySet, sort: str) -> QuerySet:
    """Orders by `sort` ("name", "-name", ...; see `allowed_sort`); ties by id, so pages are stable.

    The ties go the sort's way (id descending under a descending sort): an index on (customer, column, id) then
    serves both directions without a sort, which a deep page of a big customer would otherwise pay for."""
    descending = sort.startswith("-")
    # Blanks (no reseller, no term end yet) first going up and last going down, on every database.
    columns = [F(c).desc(nulls_last=True) if descending else F(c).asc(nulls_first=True)
               for c in SORT_COLUMNS[sort.removeprefix("-")]]
    return subscriptions.order_by(*columns, "-pk" if descending else "pk")


# The offer filter's candidates are checked in batches of these sizes, in name order, until more than the page shows
# are found (each batch padded to its size with copies of its first id, so that a few prepared queries serve any
# number of candidates); past the last size, more batches of that size.
_MATCH_BATCHES = (16, 64, 256, 1024, 4096)


def offers_matching(scope, text: str, *, wanted: int) -> list[tuple[int, str]]:
    """(sku id, name) of the first `wanted` offers of this scope's subscriptions (portal.access.subscription_scope),
    by name, whose name, product, publisher or SKU id contains `text` (lower-cased): what the offer filter offers to
    pick from. The offers are matched in this process's copy of the catalog, as the catalog's own search matches
    them, then kept if held, with an EXISTS per offer on the (sku, customer) index: a batch of them at a time, the
    next batch only if the first ones did not give `wanted`. The partner picks one; the list is then filtered by
    that offer's id, which reads only its subscriptions (a filter by every matching offer would read and sort all of
    theirs)."""
    matching = catalog_snapshot().matching(text)
    found: list[tuple[int, str]] = []
    start = 0
    for n in range(len(matching)):
        if start >= len(matching) or len(found) >= wanted:
            break
        size = _MATCH_BATCHES[min(n, len(_MATCH_BATCHES) - 1)]
        batch = list(matching[start:start + size])
        start += size
        padded = batch + batch[:1] * (size - len(batch))
        build = partial(_held_offers, scope.key, len(scope.values))
        found += prepared.rows(("offers-held", scope.key, size), build, *scope.values, *padded)
    return found[:wanted]


def _held_offers(scope_key: tuple, id_count: int, *ids_and_skus) -> QuerySet:
    held = access.scoped_subscriptions(scope_key, *ids_and_skus[:id_count]).filter(sku=OuterRef("pk"))
    return (Sku.objects.filter(pk__in=ids_and_skus[id_count:]).filter(Exists(held))
            .order_by("name", "pk").values_list("pk", "name"))
