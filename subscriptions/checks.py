"""What can be done to a subscription now, and why not (S2).

Each `check_*` function is the one place its rule lives: the services call it on the locked row
before changing anything, and `allowed_actions` calls the same functions to build the command
bar, so a button is enabled exactly when the server would accept the action.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from django.db.models import Q
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext, pgettext

from catalog.models import FREQUENCY_MONTHS, BillingFrequency, Sku
from portal.access import Action, permission
from portal.errors import RuleViolation

from .dates import add_months, start_of_day
from .models import SeatLot, Subscription
from .states import LIVE_STATUSES, Status

REMOVAL_WINDOW = timedelta(hours=168)  # Q2, X1: 7 days
ISV_CANCELLATION_PERIOD = timedelta(hours=72)  # X3
MAX_QUANTITY_UPDATES = 1200  # Q5


def when_utc(moment: datetime) -> str:
    # The same in both languages: ISO dates, and "UTC" is never translated (docs/glossary.md).
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def listed(items) -> str:
    """Texts listed in one sentence, with the language's separator (", " in English, "、" in Chinese)."""
    return pgettext("list separator", ", ").join(str(item) for item in items)


def status_text(subscription) -> str:
    """The subscription's status as a sentence says it ("this one is suspended"), in the active language."""
    return subscription.get_status_display().lower()


def renewal_starts_on(subscription: Subscription) -> date:
    """N2: the renewed term (or what a trial converts into at its end, R4) starts the day after the inclusive
    term end."""
    return subscription.term_end + timedelta(days=1)


def term_ends_at(subscription: Subscription) -> datetime | None:
    """The instant the inclusive term end date is over (N2): 00:00 UTC the next day."""
    return start_of_day(renewal_starts_on(subscription)) if subscription.term_end else None


def removal_window_ends(added_at: datetime) -> datetime:
    """Q2: licenses added at `added_at` can be removed until this instant (their lot's `window_ends_at`)."""
    return added_at + REMOVAL_WINDOW


def quantity_refusal(subscription: Subscription, now: datetime) -> RuleViolation | None:
    """Q6, TR4, Q5: why this subscription's licenses can't change now (added or removed, whatever their windows and
    whoever asks), or None. The one statement of the subscription's part of the rule: check_quantity_change raises
    it, `removable_lots` (the quantity service's Q2/Q4, the panel's batches) lists no lot while it refuses, and
    `licenses_changeable_filter` is its queryset twin (the lists' badge and 48-hour filter, the Home page)."""
    if in_trial(subscription, now):
        return _trial_refusal(
            subscription,
            "TR4",
            _("A trial's quantity can't change: convert the trial first."),
            _(
                "Licenses can't change during the free trial, which runs until %(ends)s: it then becomes a paid "
                "subscription."
            ),
        )
    if not subscription.sku.is_license_based:
        return RuleViolation("Q6", _("A usage-based subscription has no license quantity."))
    if subscription.status != Status.ACTIVE:
        return RuleViolation(
            "Q6",
            _("Licenses can only be changed on an active subscription (this one is %(status)s).")
            % {"status": status_text(subscription)},
        )
    if subscription.quantity_updates >= MAX_QUANTITY_UPDATES:
        return RuleViolation(
            "Q5",
            _(
                "This subscription's quantity has been updated %(count)s times, the most allowed: buy a second "
                "subscription of the same offer (it can be aligned to end on the same date)."
            )
            % {"count": f"{MAX_QUANTITY_UPDATES:,}"},
        )
    return None


def licenses_changeable(subscription: Subscription, now: datetime) -> bool:
    """Whether `quantity_refusal` lets this subscription's licenses change."""
    return quantity_refusal(subscription, now) is None


def licenses_changeable_filter(prefix: str = "") -> Q:
    """`licenses_changeable` as a filter of subscriptions (`prefix` "subscription__": of a lot's subscription): active,
    not a trial, under Q5's limit of updates. An active trial is always `in_trial` (an ISV trial past its end is one
    only while its set-up is pending, so not active), and a usage-based subscription holds no license lots
    (fulfilment opens none), so the lots' filter needs no join to the offer."""
    return Q(
        **{
            f"{prefix}status": Status.ACTIVE,
            f"{prefix}is_trial": False,
            f"{prefix}quantity_updates__lt": MAX_QUANTITY_UPDATES,
        }
    )


def removable_lots(subscription: Subscription, now: datetime) -> list[SeatLot]:
    """Q2, Q4: lots whose 7-day window is still open and that still hold licenses, newest first. None while the
    subscription's licenses can't change (`quantity_refusal`: a trial, TR4; suspended, pending or ended, Q6; at Q5's
    limit), whatever the clock says. The queryset twin is `selectors.removable_lots`."""
    if not licenses_changeable(subscription, now):
        return []
    return [lot for lot in subscription.seat_lots.all() if lot.window_ends_at > now and lot.remaining > 0]


def removable_quantity(subscription: Subscription, now: datetime) -> int:
    return sum(lot.remaining for lot in removable_lots(subscription, now))


def awaiting_setup(subscription: Subscription) -> bool:
    """S3: an ISV SaaS subscription pending its publisher's set-up: nothing is billed until it is confirmed."""
    return subscription.sku.is_isv and subscription.status == Status.PENDING


def awaiting_setup_filter() -> Q:
    """`awaiting_setup` as a filter of subscriptions (the Home page's list of set-ups to finish): the same two
    conditions, `Sku.is_isv` being an offer whose publisher isn't Microsoft."""
    return Q(status=Status.PENDING, sku__product__publisher__is_microsoft=False)


def awaiting_provisioning(subscription: Subscription) -> bool:
    """S0: a pending subscription that Microsoft is provisioning (provision_subscription activates it); a pending ISV
    subscription awaits its publisher's set-up instead (S3, `awaiting_setup`), which no provisioning ends."""
    return subscription.status == Status.PENDING and not awaiting_setup(subscription)


def awaiting_provisioning_filter() -> Q:
    """`awaiting_provisioning` as a filter of subscriptions (the sweep's late provisioning, recovery.py): pending, of
    a Microsoft offer (the `awaiting_setup_filter` complement among the pending)."""
    return Q(status=Status.PENDING, sku__product__publisher__is_microsoft=True)


def sold_once(offer) -> bool:
    """C4a: whether an offer is held at most once per customer: it says so, or it is a trial (TR1 gives a trial its
    fixed 25 licenses, so a second one would be a second trial). `offer` is a `Sku` or the catalog's `OfferFacts`."""
    return offer.one_per_customer or offer.is_trial


def customer_holds(customer_id, sku: Sku, *, excluding=None) -> bool:
    """C4a: whether the customer already holds `sku`, an offer sold once per customer (`sold_once`): a live
    subscription of it (pending, active or suspended: `LIVE_STATUSES`, what the database's constraint counts; a
    cancelled, expired or disabled one is no longer held), other than the subscription `excluding` (its id), which
    is the one moving onto it. Asked by the services that give a customer a subscription of an offer outside the
    cart: an upgrade into a new subscription and one scheduled for the renewal (U3), a trial's conversion (TR3) and a
    transfer (TF4); the catalog asks the
    same two conditions of the facts it reads once for a whole page (catalog.eligibility.refusal)."""
    if not sold_once(sku):
        return False
    held = Subscription.objects.filter(customer_id=customer_id, sku=sku, status__in=LIVE_STATUSES)
    if excluding is not None:
        held = held.exclude(pk=excluding)
    return held.exists()


class AtTermEnd(StrEnum):
    """What happens to a subscription when its term ends (or, for an ISV free trial, when the trial does)."""

    RENEWS = "renews"  # N1
    EXPIRES = "expires"  # N5: auto-renew is off
    DISABLED = "disabled"  # P2, N5: suspended
    CONVERTS = "converts"  # TR1, R4: a trial with auto-renew on becomes the paid offer
    TRIAL_ENDS = "trial_ends"  # TR1: a trial with auto-renew off
    FREE_TRIAL_ENDS = "free_trial_ends"  # S4: an ISV free trial becomes a paid subscription
    # N6: the renewal is being processed now. Only `term_end_outcome` says it (the page's term end line); the engine
    # is renewing such a subscription, and `at_term_end` says RENEWS, as the engine reads it.
    RENEWING = "renewing"


def at_term_end(subscription: Subscription) -> AtTermEnd | None:
    """N1, N5, P2, TR1, S4: what the lifecycle engine does to this subscription when its time comes (lifecycle's
    `_advance` asks this), and what the pages say will happen. None once it has ended, or while it is pending."""
    if subscription.status == Status.SUSPENDED:
        return AtTermEnd.DISABLED
    if subscription.status != Status.ACTIVE:
        return None
    if subscription.is_trial and subscription.sku.is_isv:
        return AtTermEnd.FREE_TRIAL_ENDS
    if subscription.is_trial:
        return AtTermEnd.CONVERTS if subscription.auto_renew else AtTermEnd.TRIAL_ENDS
    return _at_paid_term_end(subscription)


def _at_paid_term_end(subscription: Subscription) -> AtTermEnd:
    # N1, N5: a paid subscription renews unless auto-renew is off.
    return AtTermEnd.RENEWS if subscription.auto_renew else AtTermEnd.EXPIRES


def term_end_outcome(subscription: Subscription) -> AtTermEnd | None:
    """What happens when the term ends, as the subscription page's term end line says it: `at_term_end`, except
    while the renewal is being processed (N6: RENEWING), and for an ISV free trial, whose term is the paid one that
    follows the trial (S4): what that paid term does at its end (N1, N5). None once it has ended or while pending."""
    outcome = at_term_end(subscription)
    if outcome == AtTermEnd.RENEWS and subscription.renewal_pending:
        return AtTermEnd.RENEWING
    if outcome == AtTermEnd.FREE_TRIAL_ENDS:
        return _at_paid_term_end(subscription)
    return outcome


def renewing_filter() -> Q:
    """N1: `at_term_end(...) == AtTermEnd.RENEWS` as a filter of subscriptions: active, not a trial (a trial converts
    or ends at its end instead, TR1, R4), auto-renew on. What the renewal engine marks pending and renews (lifecycle)
    and what the pages list as renewing (selectors.renewing_soon)."""
    return Q(status=Status.ACTIVE, is_trial=False, auto_renew=True)


def isv_billing_starts_at(subscription: Subscription) -> datetime | None:
    """When an ISV SaaS subscription's billing starts (X3 counts its 72 hours from then): when the publisher
    confirmed the set-up (S3), or when its free trial ends if that is later (S4). None while the set-up is pending.
    A renewal doesn't move it: Partner Center's 72 hours are the purchase's only."""
    if awaiting_setup(subscription):
        return None
    # Set up before the portal recorded when (or created active by an operator): the purchase is all it knows.
    starts = subscription.setup_confirmed_at or subscription.created_at
    return max(starts, subscription.trial_ends_at) if subscription.trial_ends_at else starts


def in_trial(subscription: Subscription, now: datetime) -> bool:
    """Whether the subscription is a trial now: a new-commerce trial (TR1) until it converts or ends, an ISV free
    trial (S4) until it ends. An ISV subscription whose free trial ended while its set-up was pending is a paid
    one awaiting the set-up (billed from the confirmation). An active ISV trial past its end stays a trial until the
    engine bills its first period, so that nothing is bought on it twice meanwhile."""
    if subscription.is_trial and awaiting_setup(subscription) and subscription.trial_ends_at:
        return now < subscription.trial_ends_at
    return subscription.is_trial


def _trial_refusal(subscription: Subscription, rule: str, message: str, free_trial: str) -> RuleViolation:
    """`message` for a new-commerce trial, which the partner converts (TR3); an ISV free trial can't be converted or
    waived (S4), it becomes paid at its end, so the refusal (`free_trial`, a whole translated sentence with an
    `%(ends)s` placeholder: never a fragment joined to another) says what can't be done until then."""
    if subscription.sku.is_isv:
        return RuleViolation("S4", free_trial % {"ends": when_utc(subscription.trial_ends_at)})
    return RuleViolation(rule, message)


def cancellation_window_ends(subscription: Subscription) -> datetime | None:
    """X1: 168 hours from the start of the term; X3: 72 hours from when an ISV SaaS subscription's billing starts
    (None while its set-up is pending: it can be cancelled at any time until then, check_cancel).
    U7: an upgrade in this term closes the window at the moment of the upgrade."""
    if subscription.sku.is_isv:
        billing_starts = isv_billing_starts_at(subscription)
        if billing_starts is None:
            return None
        closes = billing_starts + ISV_CANCELLATION_PERIOD
    elif subscription.term_start:
        # N3: a renewed term starts at 00:00 UTC, its window when the renewal completed (the later of the two: a
        # term started since, by an upgrade to another term, counts from its own start).
        opened = max(subscription.term_start, subscription.renewal_completed_at or subscription.term_start)
        closes = opened + REMOVAL_WINDOW
    else:
        return None
    closed_early = window_closed_early(subscription)
    if closed_early:
        closes = min(closes, closed_early[0])
    return closes


def cancellation_outcome(subscription: Subscription, now: datetime) -> str:
    """What cancelling now gives back, as the confirmation dialog says it (X1, X3), from what check_cancel counts."""
    if not subscription.sku.is_isv:
        return _("The rest of the billing period is refunded by the day.")
    billing_starts = isv_billing_starts_at(subscription)
    if billing_starts is None:
        return _("Nothing is billed until the publisher confirms the set-up, so nothing is refunded.")
    if now < billing_starts:
        return _("Nothing is billed before its free trial ends on %(when)s, so nothing is refunded.") % {
            "when": when_utc(billing_starts)
        }
    return _("Cancelled within 72 hours of the start of its billing on %(when)s, it is refunded in full.") % {
        "when": when_utc(billing_starts)
    }


def cancellation_covers_removal(subscription: Subscription, user, now: datetime) -> bool:
    """X1, Q2: whether the licenses this term started with can be removed until the cancellation window closes too,
    as the notice beside Cancel says: both windows open at the term start for 168 hours. Not for an ISV subscription
    (X3: its 72 hours are for cancelling only), nor when its licenses can't change now (check_quantity_change: a
    trial, TR4; a usage-based or suspended subscription, Q6; one at Q5's limit of updates)."""
    if subscription.sku.is_isv:
        return False
    return verdict("remove_licenses", "", check_quantity_change, subscription, user, now).allowed


def window_closed_early(subscription: Subscription) -> tuple[datetime, str] | None:
    """When and why this term's cancellation window closed before its 7 days: licenses upgraded in or into it
    (U7), or the subscription transferred in from another partner (TF4). None if neither happened this term. The
    why is a code ("upgraded", "transferred in"), compared by check_cancel, never shown."""
    for moment, why in ((subscription.upgraded_at, "upgraded"), (subscription.transferred_at, "transferred in")):
        if moment and (subscription.term_start is None or moment >= subscription.term_start):
            return moment, why
    return None


def check_not_renewal_pending(subscription: Subscription) -> None:
    # N6: between 00:00 UTC on the renewal day and the renewal's completion the subscription is read-only.
    if subscription.renewal_pending:
        raise RuleViolation("N6", _("The renewal is being processed: try again in two minutes."), conflict=True)


def _require(user, action: str) -> None:
    perm = permission(user, action)
    if not perm:
        raise RuleViolation("T2", perm.reason)


def check_quantity_change(subscription: Subscription, user, now: datetime) -> None:
    check_not_renewal_pending(subscription)
    _require(user, Action.BUY)
    refusal = quantity_refusal(subscription, now)
    if refusal is not None:
        raise refusal


def check_decrease(subscription: Subscription, user, now: datetime, remove: int | None = None) -> None:
    check_quantity_change(subscription, user, now)
    removable = removable_quantity(subscription, now)
    if removable == 0:
        closed = max(
            (
                lot.window_ends_at
                for lot in subscription.seat_lots.all()
                if lot.window_ends_at <= now and lot.remaining > 0
            ),
            default=None,
        )
        if closed:
            message = _(
                "No license can be removed now: the last 7-day window closed on %(when)s. Schedule fewer licenses "
                "for the renewal instead."
            ) % {"when": when_utc(closed)}
        else:
            message = _(
                "No license can be removed now: the last 7-day window closed. Schedule fewer licenses for the "
                "renewal instead."
            )
        raise RuleViolation("Q2", message)
    if remove is not None and remove > removable:
        raise RuleViolation(
            "Q2",
            ngettext(
                "Only %(count)s license can be removed now (added within the last 7 days); you asked to remove "
                "%(asked)s.",
                "Only %(count)s licenses can be removed now (added within the last 7 days); you asked to remove "
                "%(asked)s.",
                removable,
            )
            % {"count": f"{removable:,}", "asked": f"{remove:,}"},
            field="quantity",
        )


def check_suspend(subscription: Subscription, user, now: datetime) -> None:
    check_not_renewal_pending(subscription)
    _require(user, Action.SUSPEND)
    if in_trial(subscription, now):
        raise _trial_refusal(
            subscription,
            "TR4",
            _("A trial's status can't change: convert the trial first."),
            _(
                "The status can't change during the free trial, which runs until %(ends)s: it then becomes a paid "
                "subscription."
            ),
        )
    if subscription.status != Status.ACTIVE:
        raise RuleViolation(
            "P1",
            _("Only an active subscription can be suspended (this one is %(status)s).")
            % {"status": status_text(subscription)},
        )


def check_reactivate(subscription: Subscription, user, now: datetime) -> None:
    check_not_renewal_pending(subscription)
    _require(user, Action.SUSPEND)
    if subscription.status != Status.SUSPENDED:
        raise RuleViolation("P2", _("Only a suspended subscription can be reactivated."))
    end = term_ends_at(subscription)
    if end and now >= end:
        raise RuleViolation(
            "P2",
            _(
                "The term ended on %(date)s (UTC) while suspended: the subscription is disabled and can't be "
                "reactivated."
            )
            % {"date": f"{subscription.term_end:%Y-%m-%d}"},
        )


def check_cancel(subscription: Subscription, user, now: datetime) -> None:
    check_not_renewal_pending(subscription)
    _require(user, Action.BUY)
    if subscription.status in (Status.DELETED, Status.EXPIRED, Status.DISABLED):
        raise RuleViolation(
            "X2",
            _("This subscription is %(status)s: it can't be cancelled, resumed or restored.")
            % {"status": status_text(subscription)},
        )
    if awaiting_setup(subscription):
        return  # X3, S3: never billed while the set-up is pending, so it can always be cancelled (nothing to refund)
    closes = cancellation_window_ends(subscription)
    if closes is None or now >= closes:
        closed_early = window_closed_early(subscription)
        instead = _ends_with_its_term(subscription)
        if closed_early and closed_early[1] == "upgraded":
            raise RuleViolation(
                "U7",
                _(
                    "This subscription was upgraded on %(when)s: an upgrade can't be undone and has no cancellation "
                    "window. %(instead)s"
                )
                % {"when": when_utc(closed_early[0]), "instead": instead},
            )
        if closed_early:
            raise RuleViolation(
                "TF4",
                _(
                    "This subscription was transferred in on %(when)s: its term was paid to the previous partner, "
                    "so it has no cancellation window here. %(instead)s"
                )
                % {"when": when_utc(closed_early[0]), "instead": instead},
            )
        if subscription.sku.is_isv:
            if subscription.auto_renew:
                message = _(
                    "The 72-hour cancellation period closed on %(when)s. Turn auto-renew off instead: the "
                    "subscription then ends with its term."
                )
            else:
                message = _("The 72-hour cancellation period closed on %(when)s. %(instead)s")
            raise RuleViolation("X3", message % {"when": when_utc(closes), "instead": instead})
        raise RuleViolation(
            "X1",
            _("The cancellation window closed on %(when)s: the term is paid in full. %(instead)s")
            % {"when": when_utc(closes), "instead": instead},
        )


def _ends_with_its_term(subscription: Subscription) -> str:
    """What to do instead of cancelling: turn auto-renew off; or, when it is already off, that it will end."""
    if subscription.auto_renew:
        return _("Turn auto-renew off so it ends with its term.")
    if subscription.term_end:
        return _("Auto-renew is off: it ends with its term on %(date)s (UTC).") % {
            "date": f"{subscription.term_end:%Y-%m-%d}"
        }
    return _("Auto-renew is off: it ends with its term.")


def check_auto_renew(subscription: Subscription, user, now: datetime, on: bool) -> None:
    check_not_renewal_pending(subscription)
    _require(user, Action.AUTO_RENEW)
    if subscription.status != Status.ACTIVE:
        raise RuleViolation(
            "P4",
            _("Auto-renew can only be changed on an active subscription (this one is %(status)s).")
            % {"status": status_text(subscription)},
        )
    if subscription.auto_renew == on:
        raise RuleViolation(
            "S2", _("Auto-renew is already on.") if on else _("Auto-renew is already off."), conflict=True
        )


def check_rename(subscription: Subscription, user, now: datetime) -> None:
    check_not_renewal_pending(subscription)
    _require(user, Action.BUY)
    if subscription.status == Status.DELETED:
        raise RuleViolation("X2", _("A cancelled subscription can't be renamed."))


def check_confirm_setup(subscription: Subscription, user, now: datetime) -> None:
    _require(user, Action.BUY)
    if not awaiting_setup(subscription):
        raise RuleViolation("S3", _("Only an ISV subscription waiting for its publisher set-up can be confirmed."))


def check_buy_addons(subscription: Subscription, user, now: datetime) -> None:
    # A2: only direct-bill partners and indirect providers (the permission says so for resellers).
    _require(user, Action.BUY)
    if not takes_addons(subscription):
        raise RuleViolation("A1", _("Add-ons need an active base subscription."))


def takes_addons(subscription: Subscription) -> bool:
    """A1: only an active subscription can get add-ons: the page offers them (to every role: check_buy_addons says
    who may buy them) only then."""
    return subscription.status == Status.ACTIVE


def check_schedule_change(subscription: Subscription, user, now: datetime) -> None:
    """R2, N6: whether changes for the renewal can be scheduled, updated or removed now (R3)."""
    check_not_renewal_pending(subscription)
    _require(user, Action.BUY)
    if in_trial(subscription, now):
        # R4: a trial converts at its end; its conversion is chosen in the trial panel, not here.
        raise _trial_refusal(
            subscription,
            "R4",
            _("A trial converts to the paid offer at its end: convert the trial to choose what it renews with."),
            _(
                "Changes for the renewal can't be scheduled during the free trial, which runs until %(ends)s: it "
                "then becomes a paid subscription."
            ),
        )
    # R2
    if subscription.status != Status.ACTIVE:
        raise RuleViolation(
            "R2",
            _("Changes can only be scheduled for the renewal of an active subscription (this one is %(status)s).")
            % {"status": status_text(subscription)},
        )
    if not subscription.auto_renew:
        raise RuleViolation("R2", _("Auto-renew is off: turn it on to schedule changes for the renewal."))


def next_charge_date(subscription: Subscription, today: date) -> date | None:
    """The next billing period start under the current frequency, counted from the term start, after `today`
    and within the (inclusive) term; None when there is none (one-time billing, or the last period)."""
    months = FREQUENCY_MONTHS.get(subscription.billing_frequency)
    if months is None or subscription.term_start is None or subscription.term_end is None:
        return None
    start, k = subscription.term_start.date(), 1
    while (boundary := add_months(start, k * months)) <= today:
        k += 1
    return boundary if boundary <= subscription.term_end else None


def check_next_charge_frequency(subscription: Subscription, user, now: datetime) -> None:
    """Whether the "change the billing frequency at the next charge" instruction can be set, changed or removed."""
    # N7: from 00:00 UTC on the charge day until the cycle charge completes, the instruction is read-only.
    if subscription.cycle_charge_pending:
        raise RuleViolation(
            "N7",
            _(
                "The billing frequency change is being charged now: the next charge's billing frequency instruction "
                "is read-only until the cycle charge completes; retry in a few minutes."
            ),
            conflict=True,
        )
    check_not_renewal_pending(subscription)
    _require(user, Action.BUY)
    if in_trial(subscription, now):
        raise _trial_refusal(
            subscription,
            "N7",
            _("A trial isn't billed: convert the trial to choose how it is billed."),
            _(
                "Nothing is billed during the free trial, which runs until %(ends)s: it then becomes a paid subscription."
            ),
        )
    if not subscription.sku.is_license_based or subscription.sku.commerce != Sku.Commerce.NEW:
        raise RuleViolation(
            "N7",
            _("Only a license-based new-commerce subscription can change its billing frequency at the next charge."),
        )
    if subscription.status != Status.ACTIVE:
        raise RuleViolation(
            "N7",
            _("The billing frequency can only be changed on an active subscription (this one is %(status)s).")
            % {"status": status_text(subscription)},
        )
    if next_charge_date(subscription, now.date()) is None:
        if subscription.billing_frequency == BillingFrequency.ONE_TIME:
            message = _(
                "No charge is left before the term ends on %(date)s (UTC): it is billed once for the whole term. "
                "Schedule it for the renewal in Manage renewal instead."
            )
        else:
            message = _(
                "No charge is left before the term ends on %(date)s (UTC): its last %(frequency)s charge of the "
                "term is made. Schedule it for the renewal in Manage renewal instead."
            )
        raise RuleViolation(
            "N7",
            message
            % {
                "date": f"{subscription.term_end:%Y-%m-%d}",
                "frequency": subscription.get_billing_frequency_display().lower(),
            },
        )


def check_upgrade(subscription: Subscription, user, now: datetime) -> None:
    """U1 (and N6, T2): whether this subscription can be upgraded now by this user."""
    check_not_renewal_pending(subscription)
    _require(user, Action.BUY)
    if in_trial(subscription, now):
        raise _trial_refusal(
            subscription,
            "U1",
            _("A trial can't be upgraded: convert the trial to a paid subscription first."),
            _(
                "It can't be upgraded during the free trial, which runs until %(ends)s: it then becomes a paid "
                "subscription."
            ),
        )
    if subscription.status != Status.ACTIVE:
        raise RuleViolation(
            "U1",
            _("Only an active subscription can be upgraded (this one is %(status)s).")
            % {"status": status_text(subscription)},
        )
    if not subscription.sku.is_license_based:
        raise RuleViolation("U1", _("A usage-based subscription has no licenses to upgrade."))


def check_conversion(trial: Subscription, user, now: datetime) -> None:
    """TR3 (and N6, T2): whether this trial can be converted at all, now, by this user."""
    check_not_renewal_pending(trial)  # N6
    _require(user, Action.BUY)
    if not trial.is_trial or trial.sku.is_isv:
        raise RuleViolation("TR3", _("Only a new-commerce trial can be converted."))
    if trial.status != Status.ACTIVE:
        raise RuleViolation(
            "TR3",
            _("Only an active trial can be converted (this one is %(status)s).") % {"status": status_text(trial)},
            conflict=True,
        )
    if trial.sku.trial_of is None:
        raise RuleViolation("TR3", _("This trial has no paid offer to convert to."))


# The command bar's buttons, by action: lazy, so each page says them in its own language.
ACTION_LABELS = {
    "add_licenses": gettext_lazy("Change licenses"),
    "remove_licenses": gettext_lazy("Remove licenses"),
    "suspend": gettext_lazy("Suspend"),
    "reactivate": gettext_lazy("Reactivate"),
    "cancel": gettext_lazy("Cancel subscription"),
    "auto_renew_on": gettext_lazy("Turn auto-renew on"),
    "auto_renew_off": gettext_lazy("Turn auto-renew off"),
    "rename": gettext_lazy("Rename"),
    "confirm_setup": gettext_lazy("Confirm publisher set-up"),
    "buy_addons": gettext_lazy("Buy add-ons"),
    "manage_renewal": gettext_lazy("Manage renewal"),
    "upgrade": gettext_lazy("Check upgrades"),
    "convert_trial": gettext_lazy("Convert trial"),
    "next_charge_frequency": gettext_lazy("Change billing frequency at the next charge"),
}


@dataclass(frozen=True)
class Allowed:
    name: str
    label: str
    allowed: bool
    reason: str = ""
    rule: str = ""
    status: int = 0  # the refusal's HTTP status (422, or 409 when the state moved on), 0 when allowed


def verdict(name: str, label: str, check, *args) -> Allowed:
    try:
        check(*args)
    except RuleViolation as violation:
        return Allowed(name, label, False, violation.message, violation.rule, violation.status)
    return Allowed(name, label, True)


def allowed_actions(subscription: Subscription, user, now: datetime) -> dict[str, Allowed]:
    """Every action on this subscription, allowed or with the reason it is not (S2)."""
    s, u, n = subscription, user, now
    actions = [
        verdict("add_licenses", ACTION_LABELS["add_licenses"], check_quantity_change, s, u, n),
        verdict("remove_licenses", ACTION_LABELS["remove_licenses"], check_decrease, s, u, n),
        verdict("suspend", ACTION_LABELS["suspend"], check_suspend, s, u, n),
        verdict("reactivate", ACTION_LABELS["reactivate"], check_reactivate, s, u, n),
        verdict("cancel", ACTION_LABELS["cancel"], check_cancel, s, u, n),
        verdict("auto_renew_on", ACTION_LABELS["auto_renew_on"], check_auto_renew, s, u, n, True),
        verdict("auto_renew_off", ACTION_LABELS["auto_renew_off"], check_auto_renew, s, u, n, False),
        verdict("rename", ACTION_LABELS["rename"], check_rename, s, u, n),
        verdict("confirm_setup", ACTION_LABELS["confirm_setup"], check_confirm_setup, s, u, n),
        verdict("buy_addons", ACTION_LABELS["buy_addons"], check_buy_addons, s, u, n),
        verdict("manage_renewal", ACTION_LABELS["manage_renewal"], check_schedule_change, s, u, n),
        verdict("upgrade", ACTION_LABELS["upgrade"], check_upgrade, s, u, n),
        verdict("convert_trial", ACTION_LABELS["convert_trial"], check_conversion, s, u, n),
        verdict("next_charge_frequency", ACTION_LABELS["next_charge_frequency"], check_next_charge_frequency, s, u, n),
    ]
    return {a.name: a for a in actions}


def status_action(subscription: Subscription, actions: dict[str, Allowed]) -> Allowed:
    """P1, P2: the command bar's one status button, from `allowed_actions`' verdicts: Reactivate for a suspended
    subscription (disabled with the reason when it can't be: its term ended, N6, the role), Suspend for any other
    (disabled with the reason unless it is active)."""
    return actions["reactivate" if subscription.status == Status.SUSPENDED else "suspend"]


def auto_renew_action(subscription: Subscription, actions: dict[str, Allowed]) -> Allowed:
    """N1, R6: the command bar's one auto-renew button: Turn off while it is on, Turn on while it is off."""
    return actions["auto_renew_off" if subscription.auto_renew else "auto_renew_on"]


def tier_action(subscription: Subscription, actions: dict[str, Allowed]) -> Allowed | None:
    """The command bar's way to a higher offer: a new-commerce trial converts (TR3: Convert trial), a paid
    subscription upgrades (U1, U2: Check upgrades); an ISV free trial has neither (S4: it becomes paid at its end)."""
    if subscription.is_trial:
        return None if subscription.sku.is_isv else actions["convert_trial"]
    return actions["upgrade"]
