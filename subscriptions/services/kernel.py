"""The kernel the subscription services stand on: the lock on a subscription, the one status transition (and a
status change with its audit row), the ways an offer is sold (C1), a new subscription with its first lot and charge,
billing lines and their charges, seat lots, the billing period, and deleting what was scheduled for the renewal (R6).

It imports none of the service modules beside it (import-linter's contract in pyproject.toml holds it to that):
each of them builds on it, so the package has no import cycle.
"""

from datetime import date, datetime, timedelta

from django.utils.translation import gettext as _
from django.utils.translation import pgettext_lazy

from catalog.models import FREQUENCY_MONTHS, TERM_MONTHS, Availability, BillingFrequency, Term, UpgradePath
from portal.access import require_serves
from portal.errors import RuleViolation
from portal.versions import lock_version

from .. import audit, checks
from ..dates import period_containing, term_end_for
from ..models import BillingLine, ScheduledChange, SeatLot, Subscription
from ..pricing import Charge, Period, prorated_charge
from ..states import Status, check_transition

REMOVAL_WINDOW = checks.REMOVAL_WINDOW
# The removal window of licenses that come without one (an upgrade's, U7; a transfer's): closed from the start.
NO_WINDOW = timedelta(0)

# How a billing frequency reads in a sentence ("a 1-year term billed annually"), in the page's language: lazy, each
# translated with the context "billed" (the sentences that hold it are translated whole, with a `%(billed)s`).
BILLED = {
    BillingFrequency.MONTHLY: pgettext_lazy("billed", "monthly"),
    BillingFrequency.ANNUAL: pgettext_lazy("billed", "annually"),
    BillingFrequency.ONE_TIME: pgettext_lazy("billed", "once for the term"),
}
# The same words as messages, for the audit trail's summaries (said in each reader's language: subscriptions.said).
BILLED_SAID = {
    BillingFrequency.MONTHLY: audit.Said.pgettext("billed", "monthly"),
    BillingFrequency.ANNUAL: audit.Said.pgettext("billed", "annually"),
    BillingFrequency.ONE_TIME: audit.Said.pgettext("billed", "once for the term"),
}


def supported_paths(source_sku_id):
    """U2: the upgrade matrix's supported paths from this SKU, to paid SKUs, each target with its availabilities.
    An unsupported path is kept in the matrix only so that it is never offered or accepted. The one list of what a
    SKU upgrades to: an upgrade now or at the renewal (upgrades.upgrade_path) and a trial's higher SKUs (TR3,
    conversions.conversion_targets)."""
    return (
        UpgradePath.objects.filter(source_id=source_sku_id, supported=True, target__is_trial=False)
        .select_related("target__product__publisher")
        .prefetch_related("target__availabilities")
    )


def lock_subscription(subscription_id, version: int | str | None = None, actor=None) -> Subscription:
    """The subscription, locked; a person's change passes the `version` its page showed and is refused (409) when the
    subscription changed since (portal/versions.py). Every lock for a change bumps the version. A person (`actor`)
    acts only on their own partner's subscriptions (T3); the platform's own work passes none."""
    # T3 before the version: another partner's subscription is refused as such, never with its last change (409).
    authorize = None if actor is None else (lambda locked: require_serves(actor, locked.customer))
    return lock_version(
        Subscription.objects.select_related("customer__partner", "sku__product__publisher"),
        pk=subscription_id,
        version=version,
        noun="subscription",
        last_change=audit.last_change,
        authorize=authorize,
    )


def check_quantity_sold(sku, quantity: int) -> None:
    """K8: refuses `quantity` licenses of `sku` outside the offer's minimum and maximum (Sku.quantity_refusal, the
    one test the cart and the checkout ask too), for every service that sets a quantity."""
    why = sku.quantity_refusal(quantity)
    if why:
        raise RuleViolation("K8", why, field="quantity")


def check_choice(rule: str, term: str, billing_frequency: str) -> None:
    """Refuses (under `rule`: TR2, U4, R1) a term or a billing frequency that isn't one of the catalog's (C1)."""
    if term not in Term.values:
        raise RuleViolation(rule, _("Choose a term of 1 month, 1 year or 3 years."), field="term")
    check_frequency_choice(rule, billing_frequency)


def check_frequency_choice(rule: str, billing_frequency: str) -> None:
    if billing_frequency not in BillingFrequency.values:
        raise RuleViolation(
            rule, _("Choose a monthly, annual or one-time billing frequency."), field="billing_frequency"
        )


def fits_term(term: str, billing_frequency: str) -> bool:
    """Whether a term can be billed this often: the billing frequency can't be longer than the term (a 1-month
    term can't be billed annually; one-time billing covers any term)."""
    return FREQUENCY_MONTHS.get(billing_frequency, 0) <= TERM_MONTHS[term]


def check_fits_term(rule: str, term: str, billing_frequency: str) -> None:
    """`rule`'s refusal (U4, R1, N7) of a billing frequency longer than the term (fits_term)."""
    if not fits_term(term, billing_frequency):
        raise RuleViolation(
            rule,
            _("A %(term)s term can't be billed %(billed)s: the billing frequency can't be longer than the term.")
            % {"term": Term(term).label, "billed": BILLED[billing_frequency]},
            field="billing_frequency",
        )


def sold_availability(
    rule: str, sku, term: str, billing_frequency: str, *, field: str = "term", choose_another: bool = False
) -> Availability:
    """The way `sku` is sold for this term and billing frequency (C1), read from its availabilities (prefetched
    or not), or `rule`'s refusal (TR2, U4, R1, N7) naming what isn't sold (and, with `choose_another`, asking for
    a term and billing frequency it is sold for: one sentence each way, never a fragment joined on)."""
    availability = next(
        (a for a in sku.availabilities.all() if a.term == term and a.billing_frequency == billing_frequency), None
    )
    if availability is None:
        raise RuleViolation(
            rule,
            (
                _(
                    "%(offer)s is not sold for a %(term)s term billed %(billed)s: choose a term and billing frequency it "
                    "is sold for."
                )
                if choose_another
                else _("%(offer)s is not sold for a %(term)s term billed %(billed)s.")
            )
            % {"offer": sku.name, "term": Term(term).label, "billed": BILLED[billing_frequency]},
            field=field,
        )
    return availability


def transition(subscription: Subscription, new_status: str) -> None:
    """The one place a status changes (S0 transitions in states.py)."""
    check_transition(subscription.status, new_status)
    subscription.status = new_status


def change_status(
    subscription: Subscription,
    new_status: str,
    *,
    actor,
    now: datetime,
    action: str,
    summary: audit.Said | audit.Joined | str,
    before: dict | None = None,
    after: dict | None = None,
    **fields,
) -> None:
    """A status change and its audit row: the transition (S0), the other `fields` it sets (auto-renew off, the
    cancellation time), saved, and recorded with the status before and after (or the `before`/`after` given)."""
    old_status = subscription.status
    transition(subscription, new_status)
    for name, value in fields.items():
        setattr(subscription, name, value)
    subscription.save(update_fields=["status", *fields, "updated_at"])
    audit.record(
        actor=actor,
        at=now,
        customer=subscription.customer,
        subscription=subscription,
        action=action,
        summary=summary,
        before={"status": old_status} if before is None else before,
        after={"status": new_status} if after is None else after,
    )


def first_charge(
    *, unit_price, quantity: int, billing_frequency: str, term_start: date, term_end: date, term_months: int
) -> Charge:
    """The purchase charge: the first billing period, prorated by the day if the term is aligned short (K11)."""
    if billing_frequency == BillingFrequency.ONE_TIME:
        natural_end = term_end_for(term_start, term_months)
    else:
        natural_end = term_end_for(term_start, FREQUENCY_MONTHS[billing_frequency])
    return prorated_charge(
        unit_price=unit_price,
        quantity=quantity,
        period_start=term_start,
        period_end=min(natural_end, term_end),
        full_period_start=term_start,
        full_period_end=natural_end,
    )


def new_seat_lot(
    subscription: Subscription, *, quantity: int, source: str, now: datetime, window: timedelta = REMOVAL_WINDOW
) -> SeatLot:
    """The lot, unsaved (for a caller that writes many at once: the lifecycle engine)."""
    # Q2: every addition opens its own 7-day window for those licenses (NO_WINDOW for those that come without one).
    return SeatLot(
        subscription=subscription, source=source, quantity=quantity, added_at=now, window_ends_at=now + window
    )


def open_seat_lot(
    subscription: Subscription, *, quantity: int, source: str, now: datetime, window: timedelta = REMOVAL_WINDOW
) -> SeatLot:
    lot = new_seat_lot(subscription, quantity=quantity, source=source, now=now, window=window)
    lot.save(force_insert=True)
    return lot


def billing_line(subscription: Subscription, *, kind: str, charge: Charge, quantity: int, now: datetime) -> BillingLine:
    """The charge's billing line, unsaved (for a caller that writes many at once: the lifecycle engine)."""
    return BillingLine(
        subscription=subscription,
        kind=kind,
        amount=charge.amount,
        currency=subscription.currency,
        quantity=quantity,
        unit_price=subscription.unit_price,
        period_start=charge.period_start,
        period_end=charge.period_end,
        explanation=charge.explanation,
        created_at=now,
    )


def bill(subscription: Subscription, *, kind: str, charge: Charge, quantity: int, now: datetime) -> BillingLine:
    line = billing_line(subscription, kind=kind, charge=charge, quantity=quantity, now=now)
    line.save(force_insert=True)
    return line


def new_subscription(
    customer,
    availability,
    *,
    quantity: int,
    term_start: datetime,
    term_end: date,
    auto_renew: bool,
    reseller,
    now: datetime,
    status: str = Status.ACTIVE,
    **fields,
) -> Subscription:
    """A subscription to `availability` (its SKU, term, billing frequency, price and currency, and the offer's
    one-per-customer rule, C1), unsaved; `fields` sets the rest (an order line's quoted price, a base, a name)."""
    sku = availability.sku
    values = {
        "customer": customer,
        "sku": sku,
        "availability": availability,
        "status": status,
        "quantity": quantity,
        "term": availability.term,
        "billing_frequency": availability.billing_frequency,
        "unit_price": availability.unit_price,
        "currency": availability.currency,
        "auto_renew": auto_renew,
        "term_start": term_start,
        "term_end": term_end,
        "reseller": reseller,
        "one_per_customer": sku.one_per_customer,
        "created_at": now,
    }
    return Subscription(**(values | fields))


def start_subscription(
    subscription: Subscription,
    *,
    now: datetime,
    charge: Charge | None,
    window: timedelta | None = REMOVAL_WINDOW,
) -> Subscription:
    """Saves a new subscription with its first lot of licenses and its first charge.

    The lot opens Q2's removal window (`window`), one closed from the start (NO_WINDOW: an upgrade's licenses,
    U7), or none at all (None: licenses whose window opens later, or that have none). `charge` is billed as the
    purchase (None: nothing is billed now).
    """
    subscription.save(force_insert=True)
    if window is not None:
        open_seat_lot(
            subscription, quantity=subscription.quantity, source=SeatLot.Source.PURCHASE, now=now, window=window
        )
    if charge is not None:
        bill(subscription, kind=BillingLine.Kind.PURCHASE, charge=charge, quantity=subscription.quantity, now=now)
    return subscription


def start_paid_term(subscription: Subscription, *, now: datetime) -> BillingLine:
    """S3, S4: the paid term of a subscription bought unbilled (its set-up awaited, its free trial running) starts
    at its term start: its licenses open their removal window (a free trial opened none, TR4) and the first
    charge is billed."""
    if subscription.sku.is_license_based and not subscription.seat_lots.exists():
        open_seat_lot(subscription, quantity=subscription.quantity, source=SeatLot.Source.PURCHASE, now=now)
    charge = first_charge(
        unit_price=subscription.unit_price,
        quantity=subscription.quantity,
        billing_frequency=subscription.billing_frequency,
        term_start=subscription.term_start.date(),
        term_end=subscription.term_end,
        term_months=TERM_MONTHS[subscription.term],
    )
    return bill(subscription, kind=BillingLine.Kind.PURCHASE, charge=charge, quantity=subscription.quantity, now=now)


def current_period(subscription: Subscription, today: date) -> Period:
    """The billing period holding `today` (one-time billing: the whole term)."""
    if subscription.billing_frequency == BillingFrequency.ONE_TIME:
        months = TERM_MONTHS[subscription.term]
    else:
        months = FREQUENCY_MONTHS[subscription.billing_frequency]
    start, end, full_start, full_end = period_containing(
        term_start=subscription.term_start.date(), term_end=subscription.term_end, period_months=months, today=today
    )
    return Period(start, end, full_start, full_end)


def delete_scheduled_changes(subscription: Subscription, *, keep_billing_frequency: bool = False) -> int:
    """R6 (and P4): mid-term changes delete what was scheduled for the renewal."""
    changes = subscription.scheduled_changes.all()
    if keep_billing_frequency:
        changes = changes.exclude(kind=ScheduledChange.Kind.BILLING_FREQUENCY)
    deleted, _by_model = changes.delete()
    return deleted
