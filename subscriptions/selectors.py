"""Reads of subscriptions for the lists (S1, and across customers) and the export (S5).

The subscriptions these functions take are already scoped by `portal.access` (T3); they add to
the query in SQL, so a list page runs the same few queries whatever the number of subscriptions.
"""

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from uuid import UUID

from django.core.paginator import Page
from django.db.models import Exists, F, OuterRef, QuerySet, Subquery

from catalog.models import Sku
from portal.pagination import SmallListPaginator

from .models import SeatLot, Subscription
from .states import Status

LIST_PAGE_SIZE = 25
WINDOW_SOON = timedelta(hours=48)
RENEWS_SOON_DAYS = 30

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
    "customer": ("customer__company_name", "list_name"),
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


class _ListRows:
    """What a list's paginator pages through. A page is ONE statement: its inner query sorts and cuts
    narrow rows (ids), its outer query reads the page's rows with every column. Sorting full rows would
    carry every column, and the lots subquery, through the sort of all the customer's (or partner's)
    subscriptions. The count reads the filtered subscriptions, without the sort's joins."""

    # The paginator warns about an unordered list by testing `ordered`: a queryset under that name would be
    # tested by fetching it whole.
    ordered = True

    def __init__(self, subscriptions: QuerySet, sorted_subscriptions: QuerySet, *, now: datetime):
        self._subscriptions, self._sorted, self._now = subscriptions, sorted_subscriptions, now

    def count(self) -> int:
        return self._subscriptions.count()

    def __getitem__(self, cut: slice) -> list[ListRow]:
        ids = self._sorted.values("pk")[cut]
        rows = with_list_columns(Subscription.objects.filter(pk__in=Subquery(ids)), now=self._now)
        return [list_row(row) for row in rows.order_by(*self._sorted.query.order_by)]


def list_page(subscriptions: QuerySet, number, *, sort: str, allowed: list[str], default: str,
              now: datetime) -> tuple[Page, str]:
    """A page of these (filtered) subscriptions sorted by `sort` (see `sort_subscriptions`), with the list's
    columns; and the sort applied. One query, and a COUNT past the first page, whatever their number."""
    ordered, sort = sort_subscriptions(subscriptions, sort, allowed=allowed, default=default)
    return SmallListPaginator(_ListRows(subscriptions, ordered, now=now), LIST_PAGE_SIZE).get_page(number), sort


@dataclass(frozen=True)
class ListFilters:
    """What a list is filtered by, read from the query string; unknown values are ignored, not errors."""

    status: str = ""
    offer: int | None = None
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
            window_soon=query.get("window") == "48h",
            renews_soon=query.get("renews") == "30d",
        )

    @property
    def active(self) -> bool:
        return bool(self.status or self.offer is not None or self.window_soon or self.renews_soon)


def filter_subscriptions(subscriptions: QuerySet, filters: ListFilters, *, now: datetime) -> QuerySet:
    if filters.status:
        subscriptions = subscriptions.filter(status=filters.status)
    if filters.offer is not None:
        subscriptions = subscriptions.filter(sku_id=filters.offer)
    if filters.window_soon:
        # A removal window closing within 48 hours, with licenses still removable (as on the home page). IN over
        # the few lots closing soon, not EXISTS per subscription: the database reads those lots once.
        closing = open_removal_lots(now=now).filter(window_ends_at__lte=now + WINDOW_SOON).values("subscription_id")
        subscriptions = subscriptions.filter(pk__in=closing, status=Status.ACTIVE, is_trial=False)
    if filters.renews_soon:
        # N1, N2: auto-renewing active subscriptions whose (inclusive) term end falls in the next 30 days.
        today = now.date()
        subscriptions = subscriptions.filter(status=Status.ACTIVE, auto_renew=True, term_end__gte=today,
                                             term_end__lte=today + timedelta(days=RENEWS_SOON_DAYS))
    return subscriptions


def sort_subscriptions(subscriptions: QuerySet, sort: str, *, allowed: list[str], default: str) -> tuple[QuerySet, str]:
    """Orders by `sort` ("name", "-name", ...) if allowed, else by `default`; ties by id, so pages are stable.
    Returns the queryset and the sort applied.

    The ties go the sort's way (id descending under a descending sort): an index on (customer, column, id) then
    serves both directions without a sort, which a deep page of a big customer would otherwise pay for."""
    key = sort.removeprefix("-")
    if key not in allowed:
        sort, key = default, default.removeprefix("-")
    descending = sort.startswith("-")
    # Blanks (no reseller, no term end yet) first going up and last going down, on every database.
    columns = [F(c).desc(nulls_last=True) if descending else F(c).asc(nulls_first=True) for c in SORT_COLUMNS[key]]
    return subscriptions.order_by(*columns, "-pk" if descending else "pk"), sort


def offers_held(subscriptions: QuerySet) -> QuerySet:
    """(sku id, offer name) of every offer these subscriptions are of, by name, each once: one query.

    An EXISTS per offer rather than a DISTINCT over the subscriptions: it stops at an offer's first
    subscription (on the sku index) instead of reading and de-duplicating all of them (measured: a DISTINCT
    over the partner's 20,000 subscriptions costs 3 to 5 times more, with or without ANALYZE's statistics).
    """
    held = subscriptions.filter(sku=OuterRef("pk"))
    return Sku.objects.filter(Exists(held)).order_by("name", "pk").values_list("pk", "name")
