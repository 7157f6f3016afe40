"""Reads of subscriptions for the lists (S1, and across customers) and the Home page.

The subscriptions these functions take are already scoped by `portal.access` (T3); they add to the query in SQL.
A list page is read by seek pagination: its rows come from an index in the list's order, starting after (or
before) the row a cursor names, so a deep page costs what the first does. Every sort has an index that starts with
the list's scope (the customer, or the partner across customers) and ends with the id (subscriptions.models).
"""

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from uuid import UUID

from django.core.exceptions import ValidationError
from django.db import connections
from django.db.models import Exists, F, Field, Func, OuterRef, Prefetch, Q, QuerySet, Subquery, Value
from django.db.models.lookups import GreaterThan, LessThan
from django.utils.translation import gettext as _

from catalog.models import BillingFrequency, Sku, Term, offer_search

from . import checks
from .models import AuditEntry, ScheduledChange, SeatLot, Subscription
from .states import Status

LIST_PAGE_SIZE = 25
# Counted exactly up to here, "1,000+" beyond (as large consoles do): a count of every subscription of a partner
# would read 100,000 index entries on every page.
COUNT_BOUND = 1000
WINDOW_SOON = timedelta(hours=48)
RENEWS_SOON_DAYS = 30

# Sort keys in the query string -> the columns of the row being listed, in order; ties by id, in the sort's
# direction. "name" is the name shown (`list_name`, a stored `display_name`); "customer" the customer's name, then
# the customer (two customers may share a name) and the subscription's name. Each has an index (see the model).
SORT_COLUMNS = {
    "name": ("list_name",),
    "quantity": ("quantity",),
    "status": ("status", "list_name"),
    "term": ("term",),
    "billing": ("billing_frequency",),
    "term_end": ("term_end",),
    "auto_renew": ("auto_renew",),
    "reseller": ("reseller_name",),  # "" without a reseller: first going up
    "customer": ("customer_name", "customer_id", "list_name"),
}
CUSTOMER_SORTS = [key for key in SORT_COLUMNS if key != "customer"]
ALL_SORTS = list(SORT_COLUMNS)
# The only sort column that may be NULL (a subscription not provisioned yet has no term end). It is ordered as its
# index holds it, so the database's own NULLS order: last going up on PostgreSQL, first on SQLite.
NULLABLE_COLUMNS = {"term_end"}

# What a list row shows, read as plain values.
LIST_VALUES = (
    "pk",
    "customer_id",
    "customer_name",
    "list_name",
    "friendly_name",
    "sku__name",
    "is_trial",
    "reduce_until",
    "quantity",
    "status",
    "term",
    "billing_frequency",
    "term_end",
    "auto_renew",
    "reseller_name",
    "reseller__partner_id",
)


@dataclass(frozen=True, slots=True)
class ListRow:
    """One row of a subscription list, as the list shows it (S1)."""

    pk: UUID
    customer_id: UUID
    customer_name: str
    name: str  # display_name
    friendly_name: str
    offer_name: str
    is_trial: bool
    reduce_until: datetime | None  # Q2, Q4: the latest end of a removal window still usable now, or None
    quantity: int
    status: str
    term: str
    billing_frequency: str
    term_end: date | None
    auto_renew: bool
    reseller_name: str  # "" without a reseller
    reseller_partner_id: str | None
    # The row's links, set by the view (subscriptions.views.with_links): its page, and its customer's list
    url: str = ""
    customer_url: str = ""

    @property
    def status_label(self) -> str:
        return _STATUS_LABELS.get(self.status, self.status)

    @property
    def term_label(self) -> str:
        return _TERM_LABELS.get(self.term, self.term)

    @property
    def billing_label(self) -> str:
        return _BILLING_LABELS.get(self.billing_frequency, self.billing_frequency)


_STATUS_LABELS = dict(Status.choices)
_TERM_LABELS = dict(Term.choices)
_BILLING_LABELS = dict(BillingFrequency.choices)


# --- The rules the lists and the Home page share ------------------------------------------------------------


def open_lots(*, now: datetime) -> QuerySet:
    """Q2, Q4: license lots whose window has not closed and that have licenses left to remove (the queryset form of
    `SeatLot.remaining > 0`, which checks.removable_lots reads of loaded lots)."""
    return SeatLot.objects.filter(window_ends_at__gt=now, removed__lt=F("quantity"))


def removable_lots(*, now: datetime) -> QuerySet:
    """Q2, Q4, Q5, Q6, TR4: license lots whose licenses can still be removed now: `open_lots` of a subscription whose
    licenses can change (`checks.licenses_changeable_filter`); the queryset twin of `checks.removable_lots`. What the
    lists' badge, the 48-hour filter and the Home page all read."""
    return open_lots(now=now).filter(checks.licenses_changeable_filter("subscription__"))


def removal_windows_closing(*, now: datetime) -> QuerySet:
    """The removable lots (`removable_lots`) whose window closes within 48 hours: the Home page's list."""
    return removable_lots(now=now).filter(window_ends_at__lte=now + WINDOW_SOON)


def term_ends_within(*, today: date, days: int) -> Q:
    """N2: the term end is the inclusive last UTC day of the term: ending from today to `days` days on, both in."""
    return Q(term_end__gte=today, term_end__lte=today + timedelta(days=days))


def renewing_soon(subscriptions: QuerySet, *, today: date, days: int = RENEWS_SOON_DAYS) -> QuerySet:
    """N1, N2, N6: "renews within `days` days": the subscriptions that renew at their term end (checks.renewing_filter:
    active, paid, auto-renew on; a trial converts instead, TR1) whose term ends in the window, and those whose renewal
    is already pending (N6: past the term end, taken by the engine and not completed yet). The one rule the Home
    page's list and the lists' "renews within 30 days" filter (30 days) and the Renewals page (30, 60 or 90) read."""
    return subscriptions.filter(
        checks.renewing_filter(), term_ends_within(today=today, days=days) | Q(renewal_pending=True)
    )


# --- The subscription page (S2) ----------------------------------------------------------------------------

AUDIT_SHOWN = 100  # the page's audit trail: the latest entries


def subscription_page(*, billing_lines: bool = True) -> QuerySet:
    """Subscriptions with what their page (and `checks.allowed_actions`, and the services it shows the verdicts of)
    reads: the offer with its product, publisher and availabilities, the reseller, the order line and order, the
    base subscription and its offer; the license lots, billing lines and scheduled changes (each upgrade's target
    with its availabilities). To be scoped (portal.access.get_subscription). Without `billing_lines`, the verdicts'
    reads alone (the API's resource, a list of 100 of them)."""
    return Subscription.objects.select_related(
        "sku__product__publisher",
        "reseller",
        "order_line__order",
        "base_subscription__sku",
    ).prefetch_related(
        "sku__availabilities",
        "seat_lots",
        *(["billing_lines"] if billing_lines else []),
        Prefetch(
            "scheduled_changes",
            queryset=ScheduledChange.objects.select_related("target_sku__product__publisher").prefetch_related(
                "target_sku__availabilities"
            ),
        ),
    )


def addons_of(subscription: Subscription) -> list[Subscription]:
    """The subscription's add-ons (A1), newest first, each with its offer."""
    return list(Subscription.objects.filter(base_subscription=subscription).select_related("sku"))


def audit_trail(subscription: Subscription) -> list[AuditEntry]:
    """The subscription's latest audit entries (L1), newest first, each with who made it (only the names loaded)."""
    return list(
        AuditEntry.objects.filter(subscription=subscription)
        .select_related("actor")
        .only(
            *(f.name for f in AuditEntry._meta.concrete_fields),
            "actor__username",
            "actor__first_name",
            "actor__last_name",
        )[:AUDIT_SHOWN]
    )


# --- Filters ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ListFilters:
    """What a list is filtered by (subscriptions.filters.SubscriptionListForm reads them from the query string)."""

    status: str = ""
    offer: int | None = None  # one offer, by its id (the subscription page links to its offer's subscriptions)
    window_soon: bool = False
    renews_soon: bool = False

    @property
    def active(self) -> bool:
        return bool(self.status or self.offer is not None or self.window_soon or self.renews_soon)


def filter_subscriptions(subscriptions: QuerySet, filters: ListFilters, *, now: datetime) -> QuerySet:
    if filters.status:
        subscriptions = subscriptions.filter(status=filters.status)
    if filters.offer is not None:
        subscriptions = subscriptions.filter(sku_id=filters.offer)
    if filters.window_soon:
        # The same lots as `removal_windows_closing`: the subscription's part of the rule on the listed rows, and IN
        # over the few lots closing soon with no join inside (a join there let PostgreSQL, on tables without
        # statistics, plan a nested loop over every subscription for each lot: minutes in the tests).
        closing = open_lots(now=now).filter(window_ends_at__lte=now + WINDOW_SOON).values("subscription_id")
        subscriptions = subscriptions.filter(checks.licenses_changeable_filter(), pk__in=closing)
    if filters.renews_soon:
        subscriptions = renewing_soon(subscriptions, today=now.date())
    return subscriptions


def with_list_columns(subscriptions: QuerySet, *, now: datetime) -> QuerySet:
    """The list's columns as values for `ListRow`, with `reduce_until`: the latest end of the removal windows still
    usable now among the subscription's lots (`removable_lots`), or None; a correlated subquery on the lots'
    (subscription) index, in the same query."""
    latest = (
        removable_lots(now=now)
        .filter(subscription=OuterRef("pk"))
        .order_by("-window_ends_at")
        .values("window_ends_at")[:1]
    )
    return subscriptions.annotate(reduce_until=Subquery(latest)).values_list(*LIST_VALUES)


def offers_matching(subscriptions: QuerySet, text: str, *, wanted: int) -> list[tuple[int, str]]:
    """(sku id, name) of the first `wanted` offers, by name, of these subscriptions whose name, product, publisher
    or SKU id contains `text`: what the offer filter offers to pick from. The partner picks one; the list is then
    filtered by that offer's id, which reads only its subscriptions."""
    held = subscriptions.filter(sku=OuterRef("pk"))
    return list(
        Sku.objects.filter(offer_search(text))
        .filter(Exists(held))
        .order_by("name", "pk")
        .values_list("pk", "name")[:wanted]
    )


# --- Sorting and seek pagination ----------------------------------------------------------------------------


def sort_key(sort: str) -> tuple[tuple[str, ...], bool]:
    """The columns of `sort` ("name", "-name", ...; one of SORT_COLUMNS) with the id last, and whether descending."""
    return (*SORT_COLUMNS[sort.removeprefix("-")], "pk"), sort.startswith("-")


def order_subscriptions(subscriptions: QuerySet, sort: str, *, reverse: bool = False) -> QuerySet:
    """Ordered by `sort`, ties by id in the sort's direction: each column ASC or DESC with the NULLS order its
    index has (none given: on PostgreSQL an explicit NULLS FIRST going up made the same page 150 times slower),
    so the database reads the page in index order. `reverse`: the other way (the page before a cursor)."""
    columns, descending = sort_key(sort)
    descending = descending != reverse
    return subscriptions.order_by(*(F(c).desc() if descending else F(c).asc() for c in columns))


def encode_cursor(values: tuple) -> str:
    """A cursor naming a row of a list by its sort key's values (`sort_key`), for the query string."""
    text = json.dumps([str(v) if isinstance(v, (UUID, date)) else v for v in values], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str) -> tuple:
    """The sort key's values a cursor of `sort` names; ValidationError for anything else (a cursor of another
    sort, text no cursor is)."""
    columns, _descending = sort_key(sort)
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode())
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValidationError(_("Not a position in this list.")) from None
    if not isinstance(values, list) or len(values) != len(columns):
        raise ValidationError(_("Not a position in this list."))
    decoded = []
    for column, value in zip(columns, values, strict=True):
        field = Subscription._meta.get_field("id" if column == "pk" else column.removesuffix("_id"))
        field = getattr(field, "target_field", field)  # the customer's id, not a lookup of the customer
        if value is None and column not in NULLABLE_COLUMNS or isinstance(value, (list, dict)):
            raise ValidationError(_("Not a position in this list."))
        # The column's own checks (type, length, choices, the database's integer range): ValidationError if not
        decoded.append(None if value is None else field.clean(value, None))
    return tuple(decoded)


class _RowValue(Func):
    """A row value, `(a, b, c)`: compared with another, in SQL's order column by column (PostgreSQL and SQLite)."""

    template = "(%(expressions)s)"
    output_field = Field()


def _after(columns: tuple, values: tuple, *, descending: bool) -> Q:
    """The rows after the row with these sort key values, in the order `order_subscriptions` gives.

    Without a NULL to order, a row value comparison, `(customer_name, customer_id, list_name, id) > (...)`: both
    databases seek the sort's index to that row (written out as ORs, they only bound the first column, and read
    every row tied on it from there: 7,000 rows for page 300 across customers at 100,000 subscriptions). A row value
    cannot say where NULLs go, so a key over a nullable column (a term end) is written out: each column's NULLs where
    the database orders them, and a bound on the first column that the index can start its range from."""
    if not any(c in NULLABLE_COLUMNS for c in columns):
        fields = [Subscription._meta.get_field("id" if c == "pk" else c.removesuffix("_id")) for c in columns]
        cursor = _RowValue(
            *(Value(v, output_field=getattr(f, "target_field", f)) for f, v in zip(fields, values, strict=True))
        )
        beyond = LessThan if descending else GreaterThan
        return Q(beyond(_RowValue(*(F(c) for c in columns)), cursor))
    nulls_largest = connections[Subscription.objects.db].features.nulls_order_largest
    nulls_after = nulls_largest != descending  # whether a NULL comes after every value, in this direction
    beyond = "lt" if descending else "gt"
    after = Q(pk__in=[])  # nothing
    equal = Q()
    for column, value in zip(columns, values, strict=True):
        if value is None:
            further = Q(pk__in=[]) if nulls_after else Q(**{f"{column}__isnull": False})
            same = Q(**{f"{column}__isnull": True})
        else:
            further = Q(**{f"{column}__{beyond}": value})
            if column in NULLABLE_COLUMNS and nulls_after:
                further |= Q(**{f"{column}__isnull": True})
            same = Q(**{column: value})
        after |= equal & further
        equal &= same
    first, value = columns[0], values[0]
    if value is not None and not (first in NULLABLE_COLUMNS and nulls_after):
        # Redundant with the above, but an index range the database can seek to rather than a filter it tests on
        # every row from the start of the list.
        after &= Q(**{f"{first}__{'lte' if descending else 'gte'}": value})
    return after


def row_before_page(subscriptions: QuerySet, sort: str, number: int) -> tuple | None:
    """The sort key (`sort_key`) of the last row of the page before page `number` (> 1) of these subscriptions
    sorted by `sort`, or None past the end: an offset over the sort's index, which holds every column of the key."""
    columns, _descending = sort_key(sort)
    offset = (number - 1) * LIST_PAGE_SIZE - 1
    return next(iter(order_subscriptions(subscriptions, sort).values_list(*columns)[offset : offset + 1]), None)


@dataclass
class ListPage:
    """One page of a list, read from a cursor (or page 1). `number` is for the eye: the page the links counted to."""

    rows: list[ListRow]
    number: int
    count: int  # exact up to COUNT_BOUND; COUNT_BOUND + 1 means more
    next_cursor: str | None
    previous_cursor: str | None  # None on page 2: its Previous is page 1, without a cursor
    has_previous: bool

    @property
    def object_list(self) -> list[ListRow]:
        return self.rows

    @property
    def has_next(self) -> bool:
        return self.next_cursor is not None

    @property
    def count_exact(self) -> bool:
        return self.count <= COUNT_BOUND

    @property
    def count_label(self) -> str:
        return f"{self.count:,}" if self.count_exact else f"{COUNT_BOUND:,}+"

    @property
    def num_pages(self) -> int | None:
        return max(1, -(-self.count // LIST_PAGE_SIZE)) if self.count_exact else None

    @property
    def has_other_pages(self) -> bool:
        return self.has_next or self.has_previous


def bounded_count(subscriptions: QuerySet) -> int:
    """How many, counted up to COUNT_BOUND + 1 (COUNT over a LIMIT: at most that many index entries read)."""
    return subscriptions.order_by()[: COUNT_BOUND + 1].count()


def list_page(
    subscriptions: QuerySet,
    *,
    sort: str,
    now: datetime,
    after: tuple | None = None,
    before: tuple | None = None,
    number: int = 1,
) -> ListPage:
    """A page of these (scoped, filtered) subscriptions sorted by `sort`: the one after the row `after` names, or
    the one before the row `before` names (values of `sort_key`, from `decode_cursor`); without a cursor, page
    `number` (typed or linked from elsewhere; the pages' own links carry cursors): read as after the row ending the
    page before it (`row_before_page`, one more query). The bounded count, the page's ids, its rows with the list's
    columns: three queries, whatever the number of subscriptions or the depth of a page read from a cursor. With a cursor, `number` is the page number the links counted to, shown, not read."""
    columns, descending = sort_key(sort)
    count = bounded_count(subscriptions)
    if before is None and after is None and number > 1:
        # A page number without a cursor: the sort key of the row ending the page before it, read from the sort's
        # index alone (no row, no list column, skipped past), then the page as after that row's cursor.
        after = row_before_page(subscriptions, sort, number)
        if after is None:
            # Past the end: the last page when the count says which, else the first.
            number = -(-count // LIST_PAGE_SIZE) if 0 < count <= COUNT_BOUND else 1
            after = row_before_page(subscriptions, sort, number) if number > 1 else None
    cursor = before if before is not None else after
    if cursor is not None:
        subscriptions = subscriptions.filter(_after(columns, cursor, descending=descending != (before is not None)))
    # The page's rows are picked by their sort key alone (from the index), then read with the list's columns by id:
    # a database that sorts the filtered rows (SQLite, for a filter its index does not follow) reads the lots'
    # latest window for the 26 rows shown, not for every row it sorts. Two queries, not one with the pick as a
    # subquery: on PostgreSQL tables without statistics, the pick nested in IN (the 48-hour filter's own IN inside
    # it) was planned as a loop that ran for minutes.
    reverse = before is not None
    picked = list(
        order_subscriptions(subscriptions, sort, reverse=reverse).values_list("pk", flat=True)[: LIST_PAGE_SIZE + 1]
    )
    ordered = with_list_columns(
        order_subscriptions(Subscription.objects.filter(pk__in=picked), sort, reverse=reverse), now=now
    )
    rows = [ListRow(*values) for values in ordered] if picked else []
    more = len(rows) > LIST_PAGE_SIZE
    rows = rows[:LIST_PAGE_SIZE]
    if before is not None:
        rows.reverse()
        has_previous, has_next = more, True
        number = max(2, number) if more else 1  # at the start of the list: page 1, whatever the link counted
    else:
        has_previous, has_next = after is not None, more
        number = 1 if not has_previous else max(2, number)
    key = lambda row: tuple(getattr(row, _ROW_FIELDS[c]) for c in columns)  # noqa: E731
    return ListPage(
        rows=rows,
        number=number,
        count=count,
        next_cursor=encode_cursor(key(rows[-1])) if has_next and rows else None,
        previous_cursor=encode_cursor(key(rows[0])) if has_previous and rows and number > 2 else None,
        has_previous=has_previous and bool(rows),
    )


# A sort column -> the ListRow field holding its value.
_ROW_FIELDS = {
    "list_name": "name",
    "quantity": "quantity",
    "status": "status",
    "term": "term",
    "billing_frequency": "billing_frequency",
    "term_end": "term_end",
    "auto_renew": "auto_renew",
    "reseller_name": "reseller_name",
    "customer_name": "customer_name",
    "customer_id": "customer_id",
    "pk": "pk",
}


def seek_after(subscriptions: QuerySet, sort: str, values: tuple) -> QuerySet:
    """The subscriptions after the row whose sort key is `values` (from `decode_cursor`), in `order_subscriptions`'s
    order: where the API's next page (its continuation token) starts."""
    columns, descending = sort_key(sort)
    return subscriptions.filter(_after(columns, values, descending=descending))
