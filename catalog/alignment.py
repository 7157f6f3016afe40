"""K11: the end dates a new line may align to (coterminosity at purchase), and a renewed term too (R1)."""

from dataclasses import dataclass
from datetime import date
from functools import cached_property
from uuid import UUID

from django.utils.translation import gettext

from catalog.models import TERM_MONTHS, Availability, Sku, Term
from portal.models import Customer
from subscriptions.dates import (
    add_months,
    is_last_day_of_month,
    last_day_of_month,
    term_end_for,
)
from subscriptions.models import Subscription, display_name
from subscriptions.states import Status


@dataclass(frozen=True)
class AlignmentOption:
    end_date: date
    label: str

    @cached_property
    def value(self) -> str:
        """The end date as a form posts it (YYYY-MM-DD): worked out once per option, though the cart page draws a
        term's options in every line of that term (CartAlignment shares them)."""
        return self.end_date.isoformat()


@dataclass(frozen=True, slots=True)
class AlignableSubscription:
    """What K11 reads of a subscription a line may end with: plain values, no model instances to build."""

    pk: UUID
    term_end: date
    term: str
    display_name: str


def can_align(availability: Availability) -> bool:
    return can_align_sku(availability.sku)


def can_align_sku(sku) -> bool:
    return sku.is_license_based and sku.commerce == sku.Commerce.NEW and not sku.is_trial and not sku.is_isv


def alignable_subscriptions(customer: Customer | UUID, today: date) -> list[AlignableSubscription]:
    """K11's targets: the customer's active, non-trial new-commerce subscriptions still in term, what a line may end
    with (`_options` then applies the rest of the rule to their end dates and terms).

    Ordered by end date, then pk: of two subscriptions ending the same day, the same one names the option every time.
    One query of plain values: no model instances to build.
    """
    customer_id = customer.pk if isinstance(customer, Customer) else customer
    rows = (
        Subscription.objects.filter(
            customer_id=customer_id,
            status=Status.ACTIVE,
            is_trial=False,
            sku__commerce=Sku.Commerce.NEW,
            term_end__gte=today,
        )
        .order_by("term_end", "pk")
        .values_list("pk", "term_end", "term", "friendly_name", "sku__name")
    )
    return [
        AlignableSubscription(pk, term_end, term, display_name(friendly_name, sku_name))
        for pk, term_end, term, friendly_name, sku_name in rows
    ]


def alignment_options(
    customer: Customer,
    availability: Availability,
    today: date,
    subscriptions: list[AlignableSubscription] | None = None,
) -> list[AlignmentOption]:
    """Every end date this line may take instead of its natural term end, earliest first.

    Pass `subscriptions` (from `alignable_subscriptions`) to price several lines with one query.
    """
    if not can_align(availability):
        return []
    if subscriptions is None:
        subscriptions = alignable_subscriptions(customer, today)
    return _options(availability.term, today, subscriptions)


def renewal_alignment_options(subscription: Subscription, *, sku, term: str, starts_on: date) -> list[AlignmentOption]:
    """K11 at renewal (R1): the end dates the renewed term (of `sku`, `term`, starting `starts_on`) may take
    instead of its natural end; the same rule as at purchase, never aligned to the subscription itself."""
    if not can_align_sku(sku):
        return []
    others = [s for s in alignable_subscriptions(subscription.customer_id, starts_on) if s.pk != subscription.pk]
    return _options(term, starts_on, others)


class CartAlignment:
    """K11 for the lines of one cart page: the customer's subscriptions read once (only if some line can align),
    and each term's options worked out once, since a line's options depend only on its term (and today)."""

    def __init__(self, customer: Customer, today: date):
        self.customer = customer
        self.today = today
        self._subscriptions: list[AlignableSubscription] | None = None
        self._by_term: dict[str, list[AlignmentOption]] = {}

    def options(self, availability: Availability) -> list[AlignmentOption]:
        """`alignment_options` of this line (the same list for every line with its term: don't change it)."""
        if not can_align(availability):
            return []
        found = self._by_term.get(availability.term)
        if found is None:
            if self._subscriptions is None:
                self._subscriptions = alignable_subscriptions(self.customer, self.today)
            found = self._by_term[availability.term] = alignment_options(
                self.customer, availability, self.today, self._subscriptions
            )
        return found


def _options(term: str, start: date, subscriptions: list[AlignableSubscription]) -> list[AlignmentOption]:
    """K11: month ends and other subscriptions' end dates within the first term that starts on `start`."""
    natural_end = term_end_for(start, TERM_MONTHS[term])
    options: dict[date, str] = {}
    month_end = last_day_of_month(start)
    while month_end < natural_end:
        options[month_end] = gettext("End of calendar month (%(date)s)") % {"date": f"{month_end:%Y-%m-%d}"}
        month_end = last_day_of_month(add_months(month_end.replace(day=1), 1))
    for sub in subscriptions:
        end = sub.term_end
        if end >= natural_end:
            continue  # K11: within the line's first term
        if term == Term.P1M and end.day in (28, 29, 30) and not is_last_day_of_month(end):
            continue  # a monthly term can't end on the 28th–30th unless it is the month's last day
        if term in (Term.P1Y, Term.P3Y) and sub.term == Term.P1M:
            continue  # an annual or triennial term can't align to a monthly subscription
        options.setdefault(
            end,
            gettext("With %(subscription)s (%(date)s)") % {"subscription": sub.display_name, "date": f"{end:%Y-%m-%d}"},
        )
    return [AlignmentOption(d, label) for d, label in sorted(options.items())]


def alignment_allowed(customer: Customer, availability: Availability, end_date: date, today: date) -> bool:
    return any(o.end_date == end_date for o in alignment_options(customer, availability, today))
