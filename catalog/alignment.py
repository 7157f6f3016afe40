"""K11: the end dates a new line may align to (coterminosity at purchase)."""

from dataclasses import dataclass
from datetime import date

from catalog.models import TERM_MONTHS, Availability, Term
from portal.models import Customer
from subscriptions.dates import add_months, is_last_day_of_month, last_day_of_month, term_end_for
from subscriptions.models import Subscription
from subscriptions.states import Status


@dataclass(frozen=True)
class AlignmentOption:
    end_date: date
    label: str


def can_align(availability: Availability) -> bool:
    sku = availability.sku
    return sku.is_license_based and sku.commerce == sku.Commerce.NEW and not sku.is_trial and not sku.is_isv


def alignable_subscriptions(customer: Customer, today: date) -> list[Subscription]:
    """The customer's active, non-trial new-commerce subscriptions still in term: what a line may end with."""
    return list(Subscription.objects.filter(
        customer=customer, status=Status.ACTIVE, is_trial=False, sku__commerce="new", term_end__gte=today,
    ).select_related("sku").order_by("term_end"))


def alignment_options(customer: Customer, availability: Availability, today: date,
                      subscriptions: list[Subscription] | None = None) -> list[AlignmentOption]:
    """Every end date this line may take instead of its natural term end, earliest first.

    Pass `subscriptions` (from `alignable_subscriptions`) to price several lines with one query.
    """
    if not can_align(availability):
        return []
    natural_end = term_end_for(today, TERM_MONTHS[availability.term])
    options: dict[date, str] = {}
    month_end = last_day_of_month(today)
    while month_end < natural_end:
        options[month_end] = f"End of calendar month ({month_end:%Y-%m-%d})"
        month_end = last_day_of_month(add_months(month_end.replace(day=1), 1))
    if subscriptions is None:
        subscriptions = alignable_subscriptions(customer, today)
    for sub in subscriptions:
        end = sub.term_end
        if end >= natural_end:
            continue  # K11: within the line's first term
        if availability.term == Term.P1M and end.day in (28, 29, 30) and not is_last_day_of_month(end):
            continue  # a monthly term can't end on the 28th–30th unless it is the month's last day
        if availability.term in (Term.P1Y, Term.P3Y) and sub.term == Term.P1M:
            continue  # an annual or triennial term can't align to a monthly subscription
        options.setdefault(end, f"With {sub.display_name} ({end:%Y-%m-%d})")
    return [AlignmentOption(d, label) for d, label in sorted(options.items())]


def alignment_allowed(customer: Customer, availability: Availability, end_date: date, today: date) -> bool:
    return any(o.end_date == end_date for o in alignment_options(customer, availability, today))
