"""The top bar's search (issue 12): what a partner types finds customers (name or domain), subscriptions (the first
8 or more characters of an id, a friendly name or an offer's name), the offers its customers hold, and orders (by
number), each kind a group of its first GROUP_SIZE by name, scoped as every page is (T1, T3).

A whole subscription id, customer id or order number is no search: it opens that page at once (`destination`).

Each group is one bounded query read in the order of an index, so the page costs the same at 100,000 subscriptions
as at 100 (`make bench`: the search pages). Names are compared in capitals stored on write (the models'
`searched_name`: a customer's name and domain, an offer's name, a subscription's friendly name), so a search compares
stored text, not UPPER() of every row. The id prefix is a range of the primary key; a friendly name is looked for only
among the subscriptions that have one (the partial index subscription_named_idx, and on PostgreSQL a trigram index
beside it); an offer's name among the offers (2,000 rows, not the subscriptions), whose subscriptions are then read by
offer on the (sku, customer) index when they are few, or found in one read of the list in its order when many match.
"""

import re
import uuid
from dataclasses import dataclass, field

from django import forms
from django.db.models import Exists, OuterRef, Q, Value
from django.db.models.functions import Upper
from django.db.models.lookups import Contains
from django.http import QueryDict
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from catalog.models import Sku
from subscriptions.states import Status

from . import access

GROUP_SIZE = 10
MIN_LENGTH = 2
MAX_LENGTH = 100
MIN_ID_PREFIX = 8  # an id's first 8 hex digits: 4 billion ranges, a few subscriptions each at most
HEX = re.compile(r"[0-9a-f]+")
ORDER_NUMBER = re.compile(r"(ord-?)?0*(\d{1,18})")
ORDER_DIGITS = 6  # "ORD-000123" (catalog.models.Order.number)


class SearchForm(forms.Form):
    q = forms.CharField(
        min_length=MIN_LENGTH,
        max_length=MAX_LENGTH,
        required=False,
        error_messages={
            "min_length": _("Type at least %(limit_value)d characters to search."),
            "max_length": _("Search for at most %(limit_value)d characters (this is %(show_value)d)."),
        },
    )

    def clean_q(self) -> str:
        # Spaces run together and trimmed: "  contoso   ltd " finds "Contoso Ltd".
        return " ".join(self.cleaned_data["q"].split())


@dataclass
class Group:
    """A kind of result: its first rows and whether there are more (an 11th row was read)."""

    rows: list
    more: bool = False
    more_url: str = ""

    @classmethod
    def of(cls, rows: list, more_url: str = "") -> "Group":
        return cls(rows=rows[:GROUP_SIZE], more=len(rows) > GROUP_SIZE, more_url=more_url)


@dataclass
class SubscriptionHit:
    pk: uuid.UUID
    name: str
    offer: str
    status: str
    quantity: int
    customer_name: str
    url: str
    customer_url: str

    @property
    def status_label(self) -> str:
        return Status(self.status).label


@dataclass
class Results:
    q: str
    customers: Group = field(default_factory=lambda: Group([]))
    subscriptions: Group = field(default_factory=lambda: Group([]))
    offers: Group = field(default_factory=lambda: Group([]))
    orders: Group = field(default_factory=lambda: Group([]))

    @property
    def empty(self) -> bool:
        return not (self.customers.rows or self.subscriptions.rows or self.offers.rows or self.orders.rows)


def destination(user, q: str) -> str | None:
    """The page a whole id opens at once: a subscription's or a customer's (a UUID), or an order's ("ORD-000123"),
    if this user may see it; else None (it is searched like any text, and finds nothing of another partner's)."""
    try:
        pk = uuid.UUID(q)
    except ValueError:
        pk = None
    if pk is not None:
        subscription = access.subscriptions_for(user).filter(pk=pk).values_list("customer_id", flat=True).first()
        if subscription is not None:
            return reverse("subscriptions:subscription-detail", args=[subscription, pk])
        if access.customers_for(user).filter(pk=pk).exists():
            return reverse("subscriptions:subscription-list", args=[pk])
        return None
    number = ORDER_NUMBER.fullmatch(q.lower())
    if number and number.group(1) and len(_order_digits(q)) >= ORDER_DIGITS:
        order = access.orders_for(user).filter(pk=int(number.group(2))).values_list("customer_id", flat=True).first()
        if order is not None:
            return reverse("catalog:order-detail", args=[order, int(number.group(2))])
    return None


def search(user, q: str) -> Results:
    """What `q` finds for this user, by kind (module docstring). `q`: cleaned by SearchForm (2 to 100 characters)."""
    scoped = access.subscriptions_for(user)
    offers = _offers_named(scoped, q)
    return Results(
        q=q,
        customers=_customers(user, q),
        subscriptions=_subscriptions(scoped, q, offers),
        offers=_offers(scoped, q, offers),
        orders=_orders(user, q),
    )


def _customers(user, q: str) -> Group:
    rows = list(
        access.customers_for(user)
        .filter(searched_name__contains=Upper(Value(q)))  # name and domain in capitals, a line apart
        .only("pk", "company_name", "domain")
        .order_by("company_name", "tenant_id", "pk")[: GROUP_SIZE + 1]
    )
    more = reverse("portal:customer-list") + "?" + _query(q)
    return Group.of(rows, more_url=more)


# The list's order across customers (the (partner, customer_name, customer, list_name, id) index, and the named one).
SUBSCRIPTION_ORDER = ("customer_name", "customer_id", "list_name", "pk")
SUBSCRIPTION_COLUMNS = ("pk", "list_name", "sku__name", "status", "quantity", "customer_id", "customer_name")
# An offer's words that many offers have ("E5", "Microsoft"), or an offer that many subscriptions are of: their
# subscriptions are read in the list's order until the 11th (a few index entries, they are everywhere), not all of
# them read by offer and sorted. Fewer: read by offer (the (sku, customer) index), as a rare offer has only a few.
OFFERS_READ_BY_ID = 100
SUBSCRIPTIONS_READ_BY_OFFER = 1000


def _subscriptions(scoped, q: str, offers: list) -> Group:
    """By id prefix, friendly name, or offer name: each a query of its first GROUP_SIZE + 1 in the list's order
    (customer, then name), merged: the first rows of the union are among the first rows of each."""
    # Only the subscriptions that have a friendly name: the partial index subscription_named_idx holds them, with
    # what a result shows. Its names are stored in capitals: compared with `q` in capitals (the database's UPPER).
    named = Q(searched_name__isnull=False, searched_name__contains=Upper(Value(q)))
    by_offer = _of_offers_named(scoped, q, offers)
    if isinstance(by_offer, Q):
        # So many match by offer that the list read in its order finds the first of them at once: the friendly
        # names are looked for in the same read (one query, in the database's order), not in their index.
        queries = [scoped.filter(named | by_offer)]
    else:
        queries = [scoped.filter(named)] + ([by_offer] if by_offer is not None else [])
    prefix = id_prefix(q)
    if prefix is not None:
        queries.append(scoped.filter(pk__gte=prefix[0], pk__lte=prefix[1]))
    found, answered = {}, 0
    for query in queries:
        first = query.order_by(*SUBSCRIPTION_ORDER).values_list(*SUBSCRIPTION_COLUMNS)[: GROUP_SIZE + 1]
        found |= {row[0]: row for row in first}
        answered += bool(first)
    if answered > 1:
        # Rows from two or three queries: put in the list's order by the database (its collation, not Python's
        # code points), the few of them by id.
        rows = list(
            scoped.filter(pk__in=list(found))
            .order_by(*SUBSCRIPTION_ORDER)
            .values_list(*SUBSCRIPTION_COLUMNS)[: GROUP_SIZE + 1]
        )
    else:
        rows = list(found.values())
    customer_urls = {}
    hits = []
    for pk, name, offer, status, quantity, customer_id, customer_name in rows:
        if customer_id not in customer_urls:
            customer_urls[customer_id] = reverse("subscriptions:subscription-list", args=[customer_id])
        hits.append(
            SubscriptionHit(
                pk=pk,
                name=name,
                offer=offer,
                status=status,
                quantity=quantity,
                customer_name=customer_name,
                url=reverse("subscriptions:subscription-detail", args=[customer_id, pk]),
                customer_url=customer_urls[customer_id],
            )
        )
    return Group.of(hits)


def _offers_named(scoped, q: str) -> list[tuple[int, str, bool]]:
    """(id, name, held) of the first OFFERS_READ_BY_ID + 1 offers by name whose name contains `q`; held: one of
    these subscriptions (the partner's) is of it. One read of the offers for both groups that ask for them."""
    return list(
        _offers_by_name(q)
        .annotate(held=Exists(scoped.filter(sku=OuterRef("pk"))))
        .values_list("pk", "name", "held")[: OFFERS_READ_BY_ID + 1]
    )


def _offers_by_name(q: str):
    """The offers whose name contains `q` (compared in capitals, as stored), by name."""
    return Sku.objects.filter(searched_name__contains=Upper(Value(q))).order_by("name", "pk")


def _of_offers_named(scoped, q: str, offers: list):
    """The subscriptions of the offers whose name contains `q`, as the cheaper of two reads finds them (see
    OFFERS_READ_BY_ID): a query by offer when few match, the condition on the list's rows when many do; None when
    no such offer is held."""
    if len(offers) <= OFFERS_READ_BY_ID:
        ids = [pk for pk, _name, held in offers if held]
        if not ids:
            return None
        of_offers = scoped.filter(sku__in=ids)
        if not of_offers.order_by()[SUBSCRIPTIONS_READ_BY_OFFER - 1 : SUBSCRIPTIONS_READ_BY_OFFER].exists():
            return of_offers
    # Many: read in the list's order until the 11th. The offer's name is compared as UPPER(name), not as its stored
    # capitals: a condition without statistics, which PostgreSQL takes for a common one (as it is, when more than a
    # hundred offers or a thousand subscriptions match) and so reads the list in its index order, stopping early.
    # Compared with the stored column, whose statistics are a sample of 2,000 names, it took "E5" (one offer in
    # ten) for a single offer and read all 10,000 of their subscriptions by offer to sort them: 15 ms, not 1.
    return Q(Contains(Upper("sku__name"), Upper(Value(q))))


def id_prefix(q: str) -> tuple[uuid.UUID, uuid.UUID] | None:
    """The range of ids that start with `q` (hex digits, hyphens anywhere, 8 to 32 of them): the first and the last
    id of the range, so that the primary key's index reads it. None for anything else."""
    digits = q.lower().replace("-", "")
    if not (MIN_ID_PREFIX <= len(digits) <= 32) or not HEX.fullmatch(digits):
        return None
    return uuid.UUID(digits.ljust(32, "0")), uuid.UUID(digits.ljust(32, "f"))


def _offers(scoped, q: str, offers: list) -> Group:
    """The offers the partner's customers hold whose name contains `q`, by name: each links to the list of its
    subscriptions across customers (the list's offer filter). From `offers` (_offers_named), unless more offers match
    than it read and fewer than GROUP_SIZE + 1 of those are held: then the held ones are asked for."""
    held = [(pk, name) for pk, name, is_held in offers if is_held]
    if len(offers) > OFFERS_READ_BY_ID and len(held) <= GROUP_SIZE:
        held = list(
            _offers_by_name(q)
            .filter(Exists(scoped.filter(sku=OuterRef("pk"))))
            .values_list("pk", "name")[: GROUP_SIZE + 1]
        )
    base = reverse("subscriptions:all-subscriptions")
    return Group.of([(name, f"{base}?offer={pk}") for pk, name in held])


def _orders(user, q: str) -> Group:
    """Orders by number: "ORD-0001" (the first digits of the 6-digit number: ORD-000100 to ORD-000199), or the
    whole number with or without "ORD-" and its zeros ("123", "ORD-123"). Newest first."""
    number = ORDER_NUMBER.fullmatch(q.lower())
    if number is None:
        return Group([])
    digits = _order_digits(q)
    value = int(number.group(2))
    if number.group(1) and len(digits) < ORDER_DIGITS:  # a prefix of the zero-padded number
        scale = 10 ** (ORDER_DIGITS - len(digits))
        found = Q(pk__gte=value * scale, pk__lt=(value + 1) * scale) | Q(pk=value)
    else:
        found = Q(pk=value)
    if not number.group(1) and value == 0:
        return Group([])
    rows = list(
        access.orders_for(user)
        .filter(found)
        .select_related("customer")
        .only("pk", "created_at", "status", "total", "currency", "customer__company_name")
        .order_by("-pk")[: GROUP_SIZE + 1]
    )
    return Group.of(rows)


def _order_digits(q: str) -> str:
    return q.lower().removeprefix("ord").removeprefix("-")


def _query(q: str) -> str:
    query = QueryDict(mutable=True)
    query["q"] = q
    return query.urlencode()
