"""The Renewals page (beyond Partner Center): what renews in the next 30/60/90 days, what will change and
what it will cost, and what ends without renewal.

The subscriptions passed in are already scoped by `portal.access` (T3). A page of rows is built from a
fixed number of queries: the page itself, its scheduled changes (with their target offers) and the
availabilities of its offers, whatever the number of rows.
"""

from dataclasses import dataclass
from datetime import date, datetime

from django.db.models import Prefetch, Q, QuerySet
from django.utils.translation import gettext_lazy as _

from catalog.models import TERM_MONTHS, TRIAL_LICENSES, BillingFrequency
from portal.pagination import SmallListPaginator

from . import checks, selectors
from .dates import term_end_for
from .models import ScheduledChange, Subscription
from .pricing import Charge
from .services.conversions import trial_converts_to
from .services.kernel import first_charge
from .services.renewal import renewal_upgrade_reassignment, renewal_values
from .states import Status

WINDOWS = (30, 60, 90)  # the page's windows, in days (subscriptions.filters.RenewalsWindowForm reads which)
DEFAULT_WINDOW = 30
PAGE_SIZE = 50

CHARGE_LABELS = {
    BillingFrequency.MONTHLY: _("first monthly charge"),
    BillingFrequency.ANNUAL: _("first annual charge"),
    BillingFrequency.ONE_TIME: _("one-time charge for the term"),
}


def _with_row_data(subscriptions: QuerySet) -> QuerySet:
    return (
        subscriptions.select_related("customer", "sku__product", "availability")
        .prefetch_related(
            Prefetch(
                "scheduled_changes",
                queryset=ScheduledChange.objects.select_related("target_sku__product").prefetch_related(
                    "target_sku__availabilities"
                ),
            ),
            "sku__availabilities",
        )
        .order_by("term_end", "customer__company_name", "pk")
    )


def renewing_subscriptions(subscriptions: QuerySet, *, today: date, days: int) -> QuerySet:
    """N1, N6: what renews in the window (selectors.renewing_soon, the rule Home and the lists read too), with what
    its row shows."""
    return _with_row_data(selectors.renewing_soon(subscriptions, today=today, days=days))


def ending_subscriptions(subscriptions: QuerySet, *, today: date, days: int) -> QuerySet:
    """N5, P2: auto-renew off (or suspended) with the term ending in the window: they expire (or are disabled)."""
    ending = Q(status=Status.ACTIVE, auto_renew=False, renewal_pending=False) | Q(status=Status.SUSPENDED)
    return _with_row_data(
        subscriptions.filter(ending, selectors.term_ends_within(today=today, days=days), is_trial=False)
    )


@dataclass(frozen=True)
class RenewalQuote:
    """The subscription as it will be after renewal (N4) and its first charge of the new term."""

    quantity: int
    term: str
    billing_frequency: str
    charge: Charge | None  # None: billed by consumption
    currency: str
    sku_name: str = ""  # the SKU it renews on (R1: the target of a scheduled upgrade)
    term_end: date | None = None  # the renewed term's end (K11: an aligned one prorates the first charge)

    @property
    def label(self) -> str:
        return CHARGE_LABELS[self.billing_frequency]


def renewal_quote(subscription: Subscription) -> RenewalQuote:
    """What the renewal engine will charge (lifecycle._renew, N4): the scheduled quantity, term and billing
    frequency, on the SKU of a scheduled upgrade (R1) at its availability's price, to the scheduled aligned end
    date (K11), the first charge then prorated by the day. The engine re-checks the upgrade and the end date when
    it renews; a SKU not sold with the renewed term and frequency renews on the current one, as there."""
    changes = list(subscription.scheduled_changes.all())  # prefetched, in the order they were scheduled
    values = renewal_values(subscription, changes)
    quantity, term, frequency = values["quantity"], values["term"], values["billing_frequency"]
    sku = subscription.sku
    target = next((c.target_sku for c in changes if c.kind == ScheduledChange.Kind.UPGRADE and c.target_sku_id), None)
    unit_price, currency = subscription.unit_price, subscription.currency
    if target is not None and any(
        a.term == term and a.billing_frequency == frequency for a in target.availabilities.all()
    ):
        sku = target
    if (
        subscription.availability.sku_id,
        subscription.availability.term,
        subscription.availability.billing_frequency,
    ) != (sku.pk, term, frequency):
        match = next((a for a in sku.availabilities.all() if a.term == term and a.billing_frequency == frequency), None)
        if match is not None:
            unit_price, currency = match.unit_price, match.currency
    starts_on = checks.renewal_starts_on(subscription)
    months = TERM_MONTHS[term]
    term_end = values["aligned_end_date"] or term_end_for(starts_on, months)
    charge = None
    if sku.is_license_based:
        charge = first_charge(
            unit_price=unit_price,
            quantity=quantity,
            billing_frequency=frequency,
            term_start=starts_on,
            term_end=term_end,
            term_months=months,
        )
    return RenewalQuote(
        quantity=quantity,
        term=term,
        billing_frequency=frequency,
        charge=charge,
        currency=currency,
        sku_name=sku.name,
        term_end=term_end,
    )


class _LocksAtTermEnd:
    """N2, N6: the inclusive term end is over at 00:00 UTC the next day: the subscription locks then (a row of
    the Renewals page says when)."""

    subscription: Subscription

    @property
    def lock_day(self) -> date:
        return checks.renewal_starts_on(self.subscription)

    @property
    def lock_point(self) -> datetime:
        return checks.term_ends_at(self.subscription)

    @property
    def at_term_end(self) -> checks.AtTermEnd | None:
        """N5, P2: what happens then (a row ending without renewal expires, or is disabled if suspended)."""
        return checks.at_term_end(self.subscription)


@dataclass(frozen=True)
class RenewalRow(_LocksAtTermEnd):
    subscription: Subscription
    changes: list[str]
    quote: RenewalQuote


def _changes(subscription: Subscription) -> list[str]:
    """What will change, in the order scheduled; an upgrade says what happens to the licenses (R5)."""
    changes = list(subscription.scheduled_changes.all())
    reassignment = renewal_upgrade_reassignment(subscription, changes)
    return [
        f"{c.summary} ({reassignment})" if c.kind == ScheduledChange.Kind.UPGRADE and reassignment else c.summary
        for c in changes
    ]


def _rows(subscriptions) -> list[RenewalRow]:
    return [RenewalRow(subscription=s, changes=_changes(s), quote=renewal_quote(s)) for s in subscriptions]


def renewals_page(subscriptions: QuerySet, number):
    """A page (50 rows) of these subscriptions, each as a RenewalRow."""
    page = SmallListPaginator(subscriptions, PAGE_SIZE).get_page(number)
    page.object_list = _rows(page.object_list)
    return page


# --- Trials ending in the window (TR1, R4) ------------------------------------------------------------


@dataclass(frozen=True)
class TrialRow(_LocksAtTermEnd):
    """A new-commerce trial ending in the window, and what it becomes: with auto-renew on it converts at its end
    (R4: to the paid offer, or to what the trial panel scheduled, TR3/TR8); with it off it ends (TR1)."""

    subscription: Subscription
    converts_to: str  # "" when it ends
    quantity: int


def ending_trials(subscriptions: QuerySet, *, today: date, days: int) -> QuerySet:
    """Active new-commerce trials (not ISV free trials, S4) whose term ends in the window."""
    return (
        subscriptions.filter(
            selectors.term_ends_within(today=today, days=days),
            status=Status.ACTIVE,
            is_trial=True,
            sku__product__publisher__is_microsoft=True,
        )
        .select_related("customer", "sku__trial_of")
        .prefetch_related(Prefetch("scheduled_changes", queryset=ScheduledChange.objects.select_related("target_sku")))
        .order_by("term_end", "customer__company_name", "pk")
    )


def _trial_row(trial: Subscription) -> TrialRow:
    changes = list(trial.scheduled_changes.all())
    target = trial_converts_to(trial, changes)
    # TR1, TR8: its 25 licenses, unless a quantity was scheduled with the conversion
    quantity = next(
        (c.quantity for c in changes if c.kind == ScheduledChange.Kind.QUANTITY and c.quantity), TRIAL_LICENSES
    )
    converts_to = target.name if trial.auto_renew and target is not None else ""
    return TrialRow(subscription=trial, converts_to=converts_to, quantity=quantity)


def trials_page(trials: QuerySet, number):
    page = SmallListPaginator(trials, PAGE_SIZE).get_page(number)
    page.object_list = [_trial_row(trial) for trial in page.object_list]
    return page
