"""Statuses and their transitions (S0), the actions a user may take now and why not (S2), the ISV
publisher set-up (S3), who may do what (T2), and auto-renew (R6). Today is 2026-11-25 12:00 UTC."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied
from django.db import transaction

from catalog.models import Availability, UpgradePath
from portal.access import RESELLER_NOTICE
from portal.errors import RuleViolation
from subscriptions import checks as subscription_actions
from subscriptions import cycles, services
from subscriptions.checks import allowed_actions
from subscriptions.models import AuditEntry, BillingLine, ScheduledChange, Subscription
from subscriptions.services import conversions, upgrades
from subscriptions.states import TRANSITIONS, Status, TransitionError, check_transition
from tests import factories
from tests.helpers import database_state

UTC = UTC

BUY_REASON = "Your role can't buy or change subscriptions: ask an admin agent or sales agent."
SUSPEND_REASON = (
    "Your role can't suspend or reactivate subscriptions: ask an admin agent or billing admin or sales agent."
)
AUTO_RENEW_REASON = "Your role can't change auto-renew: ask an admin agent or billing admin or sales agent."
NOT_SUSPENDED = "Only a suspended subscription can be reactivated."
NOT_PENDING_ISV = "Only an ISV subscription waiting for its publisher set-up can be confirmed."


@pytest.fixture
def e3(db):
    return factories.SkuFactory(name="Office 365 E3", availabilities=[("P1Y", "monthly", "10.00")])


@pytest.fixture
def audio(e3):
    return factories.addon_offer(e3, name="Audio Conferencing")


subscribe = factories.subscribe


# S0 Statuses and transitions ---------------------------------------------------------------------------

ALLOWED = [
    ("pending", "active"),
    ("pending", "deleted"),
    ("active", "suspended"),
    ("active", "expired"),
    ("active", "deleted"),
    ("suspended", "active"),
    ("suspended", "disabled"),
    ("suspended", "deleted"),
]
REFUSED = [(a, b) for a in Status.values for b in Status.values if (a, b) not in ALLOWED]


@pytest.mark.rule("S0")
def test_s0_statuses_are_those_of_partner_center():
    # given / when the statuses are listed / then they are Partner Center's six
    assert Status.choices == [
        ("pending", "Pending"),
        ("active", "Active"),
        ("suspended", "Suspended"),
        ("expired", "Expired"),
        ("disabled", "Disabled"),
        ("deleted", "Deleted"),
    ]
    assert {(a, b) for a, targets in TRANSITIONS.items() for b in targets} == set(ALLOWED)


@pytest.mark.rule("S0")
@pytest.mark.parametrize("current, new", ALLOWED)
def test_s0_allowed_transition(current, new):
    # given a subscription in `current` / when it moves to `new` / then the move is accepted
    sub = Subscription(status=current)
    services.transition(sub, new)
    assert sub.status == new


@pytest.mark.rule("S0")
@pytest.mark.parametrize("current, new", REFUSED)
def test_s0_refused_transition(current, new):
    # given a subscription in `current`
    sub = Subscription(status=current)
    # when it is moved to `new`
    with pytest.raises(TransitionError) as refused:
        services.transition(sub, new)
    # then the move is refused loudly and the status is unchanged
    assert str(refused.value) == f"A subscription cannot go from {current} to {new}."
    assert sub.status == current


@pytest.mark.rule("S0")
@pytest.mark.parametrize("final", [Status.EXPIRED, Status.DISABLED, Status.DELETED])
def test_s0_expired_disabled_and_deleted_are_final(final):
    # given a final status / when any move is checked / then none is allowed
    for new in Status.values:
        with pytest.raises(TransitionError):
            check_transition(final, new)


# S2 The actions this user may take now, or why not -----------------------------------------------------


def verdicts(subscription, user, now):
    return {name: (a.allowed, a.reason) for name, a in allowed_actions(subscription, user, now).items()}


ALL_ALLOWED = {
    "add_licenses": (True, ""),
    "remove_licenses": (True, ""),
    "suspend": (True, ""),
    "reactivate": (False, NOT_SUSPENDED),
    "cancel": (True, ""),
    "auto_renew_on": (False, "Auto-renew is already on."),
    "auto_renew_off": (True, ""),
    "rename": (True, ""),
    "confirm_setup": (False, NOT_PENDING_ISV),
    "buy_addons": (True, ""),
    "manage_renewal": (True, ""),
    "upgrade": (True, ""),
    "convert_trial": (False, "Only a new-commerce trial can be converted."),
    "next_charge_frequency": (True, ""),
}


@pytest.mark.rule("S2")
def test_s2_active_subscription_in_its_window(customer, sales, e3, now):
    # given an active subscription bought 2026-11-23 12:00 UTC with auto-renew on
    sub = subscribe(customer, e3, started=now - timedelta(days=2))
    # when a sales agent's actions are listed
    actions = allowed_actions(sub, sales, now)
    # then every action is there in order, allowed except those that can't apply, each with its reason
    assert list(actions) == [
        "add_licenses",
        "remove_licenses",
        "suspend",
        "reactivate",
        "cancel",
        "auto_renew_on",
        "auto_renew_off",
        "rename",
        "confirm_setup",
        "buy_addons",
        "manage_renewal",
        "upgrade",
        "convert_trial",
        "next_charge_frequency",
    ]
    assert [a.label for a in actions.values()] == [
        "Change licenses",
        "Remove licenses",
        "Suspend",
        "Reactivate",
        "Cancel subscription",
        "Turn auto-renew on",
        "Turn auto-renew off",
        "Rename",
        "Confirm publisher set-up",
        "Buy add-ons",
        "Manage renewal",
        "Check upgrades",
        "Convert trial",
        "Change billing frequency at the next charge",
    ]
    assert verdicts(sub, sales, now) == ALL_ALLOWED
    assert (actions["reactivate"].rule, actions["auto_renew_on"].rule, actions["confirm_setup"].rule) == (
        "P2",
        "S2",
        "S3",
    )


@pytest.mark.rule("S2")
@pytest.mark.rule("X1")
@pytest.mark.rule("Q2")
def test_s2_after_the_window_cancel_and_remove_are_disabled_with_the_utc_close_time(customer, sales, e3, now):
    # given an active subscription bought 2026-11-13 14:00 UTC: its window closed 2026-11-20 14:00 UTC
    sub = subscribe(customer, e3, started=datetime(2026, 11, 13, 14, 0, tzinfo=UTC))
    # when a sales agent's actions are listed
    actions = allowed_actions(sub, sales, now)
    # then cancelling and removing licenses are disabled, saying when the window closed
    assert verdicts(sub, sales, now) == {
        **ALL_ALLOWED,
        "remove_licenses": (
            False,
            "No license can be removed now: the last 7-day window closed on 2026-11-20 14:00 "
            "UTC. Schedule fewer licenses for the renewal instead.",
        ),
        "cancel": (
            False,
            "The cancellation window closed on 2026-11-20 14:00 UTC: the term is paid in full. Turn "
            "auto-renew off so it ends with its term.",
        ),
    }
    assert (actions["remove_licenses"].rule, actions["cancel"].rule) == ("Q2", "X1")


@pytest.mark.rule("S2")
def test_s2_suspended_subscription(customer, sales, e3, now):
    # given a subscription bought 2026-11-23 and suspended (auto-renew off)
    sub = subscribe(customer, e3, started=now - timedelta(days=2), suspended=True)
    # when its actions are listed / then it can be reactivated, cancelled or renamed, nothing else
    assert verdicts(sub, sales, now) == {
        "add_licenses": (False, "Licenses can only be changed on an active subscription (this one is suspended)."),
        "remove_licenses": (False, "Licenses can only be changed on an active subscription (this one is suspended)."),
        "suspend": (False, "Only an active subscription can be suspended (this one is suspended)."),
        "reactivate": (True, ""),
        "cancel": (True, ""),
        "auto_renew_on": (False, "Auto-renew can only be changed on an active subscription (this one is suspended)."),
        "auto_renew_off": (False, "Auto-renew can only be changed on an active subscription (this one is suspended)."),
        "rename": (True, ""),
        "confirm_setup": (False, NOT_PENDING_ISV),
        "buy_addons": (False, "Add-ons need an active base subscription."),
        "manage_renewal": (
            False,
            "Changes can only be scheduled for the renewal of an active subscription (this one is suspended).",
        ),
        "upgrade": (False, "Only an active subscription can be upgraded (this one is suspended)."),
        "convert_trial": (False, "Only a new-commerce trial can be converted."),
        "next_charge_frequency": (
            False,
            "The billing frequency can only be changed on an active subscription (this one is suspended).",
        ),
    }


@pytest.mark.rule("S2")
@pytest.mark.rule("P2")
def test_s2_suspended_past_its_term_end_cannot_be_reactivated(customer, sales, e3, now):
    # given a subscription suspended whose term ended 2027-11-22
    sub = subscribe(customer, e3, started=now - timedelta(days=2), suspended=True)
    # when its actions are listed on 2027-11-23
    actions = allowed_actions(sub, sales, datetime(2027, 11, 23, 0, 0, tzinfo=UTC))
    # then reactivating is disabled with the reason
    assert (actions["reactivate"].allowed, actions["reactivate"].reason) == (
        False,
        "The term ended on 2027-11-22 (UTC) while suspended: the subscription is disabled and can't be reactivated.",
    )


@pytest.mark.rule("S2")
@pytest.mark.rule("X2")
def test_s2_deleted_subscription_offers_nothing(customer, sales, e3, now):
    # given a cancelled subscription
    sub = subscribe(customer, e3, started=now - timedelta(days=2), deleted=True)
    # when its actions are listed / then all are disabled, each with its reason
    assert verdicts(sub, sales, now) == {
        "add_licenses": (False, "Licenses can only be changed on an active subscription (this one is deleted)."),
        "remove_licenses": (False, "Licenses can only be changed on an active subscription (this one is deleted)."),
        "suspend": (False, "Only an active subscription can be suspended (this one is deleted)."),
        "reactivate": (False, NOT_SUSPENDED),
        "cancel": (False, "This subscription is deleted: it can't be cancelled, resumed or restored."),
        "auto_renew_on": (False, "Auto-renew can only be changed on an active subscription (this one is deleted)."),
        "auto_renew_off": (False, "Auto-renew can only be changed on an active subscription (this one is deleted)."),
        "rename": (False, "A cancelled subscription can't be renamed."),
        "confirm_setup": (False, NOT_PENDING_ISV),
        "buy_addons": (False, "Add-ons need an active base subscription."),
        "manage_renewal": (
            False,
            "Changes can only be scheduled for the renewal of an active subscription (this one is deleted).",
        ),
        "upgrade": (False, "Only an active subscription can be upgraded (this one is deleted)."),
        "convert_trial": (False, "Only a new-commerce trial can be converted."),
        "next_charge_frequency": (
            False,
            "The billing frequency can only be changed on an active subscription (this one is deleted).",
        ),
    }


@pytest.mark.rule("S2")
@pytest.mark.rule("TR4")
def test_s2_trial_quantity_and_status_are_disabled(customer, sales, now):
    # given an active trial started yesterday, auto-renew on
    sub = factories.start_trial(customer, started=now - timedelta(days=1))  # ends (inclusive) on 2026-12-23
    # when its actions are listed / then licenses and suspension are disabled: convert the trial first
    assert verdicts(sub, sales, now) == {
        **ALL_ALLOWED,
        "add_licenses": (False, "A trial's quantity can't change: convert the trial first."),
        "remove_licenses": (False, "A trial's quantity can't change: convert the trial first."),
        "suspend": (False, "A trial's status can't change: convert the trial first."),
        "manage_renewal": (
            False,
            "A trial converts to the paid offer at its end: convert the trial to choose what it renews with.",
        ),
        "upgrade": (False, "A trial can't be upgraded: convert the trial to a paid subscription first."),
        "convert_trial": (False, "This trial has no paid offer to convert to."),
        "next_charge_frequency": (False, "A trial isn't billed: convert the trial to choose how it is billed."),
    }


@pytest.mark.rule("S2")
@pytest.mark.rule("S3")
def test_s2_pending_isv_subscription_offers_the_set_up_confirmation(customer, sales, now):
    # given an ISV subscription bought an hour ago, awaiting its publisher set-up
    saas = factories.SkuFactory(isv=True, name="Fabrikam Backup", availabilities=[("P1Y", "monthly", "8.00")])
    sub = subscribe(customer, saas, started=now - timedelta(hours=1), status=Status.PENDING)
    # when its actions are listed / then the set-up can be confirmed and the subscription cancelled, within 72 hours
    pending = "Licenses can only be changed on an active subscription (this one is pending)."
    assert verdicts(sub, sales, now) == {
        "add_licenses": (False, pending),
        "remove_licenses": (False, pending),
        "suspend": (False, "Only an active subscription can be suspended (this one is pending)."),
        "reactivate": (False, NOT_SUSPENDED),
        "cancel": (True, ""),
        "auto_renew_on": (False, "Auto-renew can only be changed on an active subscription (this one is pending)."),
        "auto_renew_off": (False, "Auto-renew can only be changed on an active subscription (this one is pending)."),
        "rename": (True, ""),
        "confirm_setup": (True, ""),
        "buy_addons": (False, "Add-ons need an active base subscription."),
        "manage_renewal": (
            False,
            "Changes can only be scheduled for the renewal of an active subscription (this one is pending).",
        ),
        "upgrade": (False, "Only an active subscription can be upgraded (this one is pending)."),
        "convert_trial": (False, "Only a new-commerce trial can be converted."),
        "next_charge_frequency": (
            False,
            "The billing frequency can only be changed on an active subscription (this one is pending).",
        ),
    }


@pytest.mark.rule("S2")
@pytest.mark.rule("T2")
def test_s2_billing_admin_may_only_suspend_and_toggle_auto_renew(customer, direct_partner, e3, now):
    # given an active subscription in its window and a billing admin
    sub = subscribe(customer, e3, started=now - timedelta(days=2))
    billing_admin = factories.staff(direct_partner, "billing_admin")
    # when their actions are listed / then buying and changing are disabled with the roles that may
    assert verdicts(sub, billing_admin, now) == {
        "add_licenses": (False, BUY_REASON),
        "remove_licenses": (False, BUY_REASON),
        "suspend": (True, ""),
        "reactivate": (False, NOT_SUSPENDED),
        "cancel": (False, BUY_REASON),
        "auto_renew_on": (False, "Auto-renew is already on."),
        "auto_renew_off": (True, ""),
        "rename": (False, BUY_REASON),
        "confirm_setup": (False, BUY_REASON),
        "buy_addons": (False, BUY_REASON),
        "manage_renewal": (False, BUY_REASON),
        "upgrade": (False, BUY_REASON),
        "convert_trial": (False, BUY_REASON),
        "next_charge_frequency": (False, BUY_REASON),
    }


@pytest.mark.rule("S2")
@pytest.mark.rule("T2")
def test_s2_support_agent_may_do_nothing(customer, direct_partner, e3, now):
    # given an active subscription in its window and a support agent
    sub = subscribe(customer, e3, started=now - timedelta(days=2))
    support = factories.staff(direct_partner, "support_agent")
    # when their actions are listed / then every one is disabled with the roles that may
    assert verdicts(sub, support, now) == {
        "add_licenses": (False, BUY_REASON),
        "remove_licenses": (False, BUY_REASON),
        "suspend": (False, SUSPEND_REASON),
        "reactivate": (False, SUSPEND_REASON),
        "cancel": (False, BUY_REASON),
        "auto_renew_on": (False, AUTO_RENEW_REASON),
        "auto_renew_off": (False, AUTO_RENEW_REASON),
        "rename": (False, BUY_REASON),
        "confirm_setup": (False, BUY_REASON),
        "buy_addons": (False, BUY_REASON),
        "manage_renewal": (False, BUY_REASON),
        "upgrade": (False, BUY_REASON),
        "convert_trial": (False, BUY_REASON),
        "next_charge_frequency": (False, BUY_REASON),
    }


@pytest.mark.rule("S2")
@pytest.mark.rule("T1")
def test_s2_indirect_reseller_is_pointed_to_its_provider(provider, e3, now):
    # given a subscription resold by an indirect reseller, and the reseller's admin agent
    link = factories.ResellerLinkFactory(provider=provider)
    customer = factories.CustomerFactory(partner=provider, reseller=link.reseller)
    sub = subscribe(customer, e3, started=now - timedelta(days=2), reseller=link.reseller)
    agent = factories.staff(link.reseller, "admin_agent")
    # when their actions are listed / then every one is disabled with the notice to contact the provider
    assert verdicts(sub, agent, now) == {name: (False, RESELLER_NOTICE) for name in ALL_ALLOWED}


class _Undo(Exception):
    pass


def server_accepts(act) -> bool:
    """Whether the service accepts the action; whatever it did is rolled back."""
    try:
        with transaction.atomic():
            act()
            raise _Undo
    except _Undo:
        return True
    except (RuleViolation, PermissionDenied):
        return False


def attempts(sub, user, now, audio):
    pk = sub.pk
    return {
        "add_licenses": lambda: services.change_quantity(
            subscription_id=pk, actor=user, quantity=sub.quantity + 1, now=now
        ),
        "remove_licenses": lambda: services.change_quantity(
            subscription_id=pk, actor=user, quantity=sub.quantity - 1, now=now
        ),
        "suspend": lambda: services.suspend_subscription(subscription_id=pk, actor=user, now=now),
        "reactivate": lambda: services.reactivate_subscription(subscription_id=pk, actor=user, now=now),
        "cancel": lambda: services.cancel_subscription(subscription_id=pk, actor=user, now=now),
        "auto_renew_on": lambda: services.set_auto_renew(subscription_id=pk, actor=user, on=True, now=now),
        "auto_renew_off": lambda: services.set_auto_renew(subscription_id=pk, actor=user, on=False, now=now),
        "rename": lambda: services.rename_subscription(subscription_id=pk, actor=user, friendly_name="HQ", now=now),
        "confirm_setup": lambda: services.confirm_publisher_setup(subscription_id=pk, actor=user, now=now),
        "buy_addons": lambda: services.buy_addons(subscription_id=pk, actor=user, quantities={audio.pk: 1}, now=now),
        "manage_renewal": lambda: services.schedule_renewal_change(
            subscription_id=pk, actor=user, quantity=sub.quantity + 1, term=None, billing_frequency=None, now=now
        ),
        "upgrade": lambda: upgrades.upgrade_subscription(
            subscription_id=pk,
            actor=user,
            target_sku_id=upgrade_target(sub.sku).pk,
            quantity=sub.quantity,
            term=sub.term,
            billing_frequency=sub.billing_frequency,
            confirmed=True,
            now=now,
        ),
        "convert_trial": lambda: conversions.convert_trial_now(
            subscription_id=pk, actor=user, target_sku_id=None, quantity=25, now=now
        ),
        "next_charge_frequency": lambda: cycles.set_next_charge_frequency(
            subscription_id=pk, actor=user, billing_frequency="annual", now=now
        ),
    }


def upgrade_target(sku):
    """The SKU this offer upgrades to in the matrix, created with a path on first use (U2)."""
    path = UpgradePath.objects.filter(source=sku, supported=True).select_related("target").first()
    if path is None:
        target = factories.SkuFactory(
            name=f"{sku.name} Premium", isv=sku.is_isv, availabilities=[("P1Y", "monthly", "20.00")]
        )
        path = UpgradePath.objects.create(source=sku, target=target)
    return path.target


@pytest.mark.rule("S2")
@pytest.mark.parametrize("role", ["sales_agent", "billing_admin", "support_agent"])
@pytest.mark.parametrize(
    "offer, state",
    [
        ("e3", {"started": timedelta(days=2)}),
        ("e3", {"started": timedelta(days=12)}),
        ("e3", {"started": timedelta(days=2), "suspended": True}),
        ("e3", {"started": timedelta(days=2), "deleted": True}),
        ("e3", {"started": timedelta(days=2), "auto_renew": False}),
        ("e3", {"started": timedelta(days=2), "trial": True}),
        ("saas", {"started": timedelta(hours=1), "status": Status.PENDING}),
        ("saas", {"started": timedelta(hours=80)}),
    ],
    ids=[
        "in-window",
        "after-window",
        "suspended",
        "deleted",
        "auto-renew-off",
        "trial",
        "isv-pending",
        "isv-after-72h",
    ],
)
def test_s2_an_action_is_offered_exactly_when_the_server_accepts_it(
    request, customer, direct_partner, audio, now, role, offer, state
):
    # given a subscription in some state and a user in some role
    state = dict(state)
    sub = subscribe(customer, request.getfixturevalue(offer), started=now - state.pop("started"), **state)
    audio.base_skus.add(sub.sku)  # an add-on of this offer, so buying add-ons turns on the subscription alone
    user = factories.staff(direct_partner, role)
    before = database_state()
    # when the actions are listed, and each is tried on the server
    upgrade_target(sub.sku)
    Availability.objects.create(sku=sub.sku, term="P1Y", billing_frequency="annual", unit_price=Decimal("100.00"))
    before = database_state()
    tried = attempts(sub, user, now, audio)
    offered = {name: a.allowed for name, a in allowed_actions(sub, user, now).items() if name in tried}
    accepted = {name: server_accepts(act) for name, act in tried.items()}
    # then the page offers exactly what the server accepts
    assert offered == accepted
    assert database_state() == before


# S3 ISV publisher set-up ------------------------------------------------------------------------------


@pytest.mark.rule("S3")
def test_s3_confirmed_set_up_makes_the_isv_subscription_active_and_billed(customer, sales, saas, now):
    # given an ISV subscription bought yesterday, pending its publisher set-up, not billed
    sub = subscribe(customer, saas, started=now - timedelta(days=1), status=Status.PENDING)
    assert not BillingLine.objects.exists()
    # when the publisher confirms the set-up
    services.confirm_publisher_setup(subscription_id=sub.pk, actor=sales, now=now)
    # then it is active, its year starting now, ending 2027-11-24
    sub.refresh_from_db()
    assert (sub.status, sub.setup_confirmed_at, sub.term_start, sub.term_end) == (
        Status.ACTIVE,
        now,
        now,
        date(2027, 11, 24),
    )
    # and its first month is billed: 8.00 × 10
    assert list(
        BillingLine.objects.values_list(
            "subscription",
            "kind",
            "amount",
            "currency",
            "quantity",
            "unit_price",
            "period_start",
            "period_end",
            "explanation",
        )
    ) == [
        (
            sub.pk,
            "purchase",
            Decimal("80.00"),
            "USD",
            10,
            Decimal("8.00"),
            date(2026, 11, 25),
            date(2026, 12, 24),
            "8.00 × 10",
        )
    ]
    entry = AuditEntry.objects.get(subscription=sub)
    assert (entry.action, entry.summary, entry.actor, entry.at, entry.before, entry.after) == (
        "subscription.setup_confirmed",
        "Publisher confirmed the set-up; billing started",
        sales,
        now,
        {"status": "pending"},
        {"status": "active"},
    )


@pytest.mark.rule("S3")
@pytest.mark.rule("S4")
def test_s3_set_up_confirmed_during_the_free_trial_is_active_and_not_billed(customer, sales, now):
    # given an ISV subscription bought yesterday in its 30-day free trial (to 2026-12-24 12:00 UTC), paid year after it
    saas = factories.SkuFactory(
        isv=True, name="Fabrikam Backup", free_trial_days=30, availabilities=[("P1Y", "monthly", "8.00")]
    )
    trial_end = datetime(2026, 12, 24, 12, 0, tzinfo=UTC)
    sub = factories.SubscriptionFactory(
        customer=customer,
        sku=saas,
        status=Status.PENDING,
        is_trial=True,
        trial_ends_at=trial_end,
        term_start=trial_end,
        term_end=date(2027, 12, 23),
        created_at=now - timedelta(days=1),
        unit_price=Decimal("8.00"),
    )
    # when the publisher confirms the set-up
    services.confirm_publisher_setup(subscription_id=sub.pk, actor=sales, now=now)
    # then it is active, nothing is billed, and its paid term still starts when the trial ends
    sub.refresh_from_db()
    assert (sub.status, sub.setup_confirmed_at, sub.is_trial, sub.term_start, sub.term_end) == (
        Status.ACTIVE,
        now,
        True,
        trial_end,
        date(2027, 12, 23),
    )
    assert not BillingLine.objects.exists()
    assert AuditEntry.objects.get(subscription=sub).summary == (
        "Publisher confirmed the set-up: free trial running, billed from its end"
    )


@pytest.mark.rule("S3")
@pytest.mark.rule("S4")
def test_s3_set_up_confirmed_after_the_free_trial_ended_is_a_paid_subscription(customer, sales, now):
    # given an ISV subscription whose 30-day free trial ended yesterday, its set-up still unconfirmed
    saas = factories.SkuFactory(
        isv=True, name="Fabrikam Backup", free_trial_days=30, availabilities=[("P1Y", "monthly", "8.00")]
    )
    trial_end = now - timedelta(days=1)
    sub = factories.SubscriptionFactory(
        customer=customer,
        sku=saas,
        status=Status.PENDING,
        is_trial=True,
        trial_ends_at=trial_end,
        term_start=trial_end,
        term_end=date(2027, 11, 23),
        created_at=now - timedelta(days=31),
        unit_price=Decimal("8.00"),
    )
    # when the publisher confirms the set-up
    services.confirm_publisher_setup(subscription_id=sub.pk, actor=sales, now=now)
    # then it is billed as a paid subscription (80.00 for its first month) ...
    sub.refresh_from_db()
    assert (sub.status, list(BillingLine.objects.values_list("amount", flat=True))) == (
        Status.ACTIVE,
        [Decimal("80.00")],
    )
    # ... and is one: no longer a trial, so its licenses and status can be changed
    assert sub.is_trial is False
    assert allowed_actions(sub, sales, now)["add_licenses"].allowed is True


@pytest.mark.rule("S3")
@pytest.mark.parametrize(
    "publisher, status", [("isv", Status.ACTIVE), ("microsoft", Status.PENDING), ("isv", Status.DELETED)]
)
def test_s3_only_a_pending_isv_subscription_is_confirmed(customer, sales, saas, e3, now, publisher, status):
    # given an ISV subscription already active or cancelled, or a Microsoft one being provisioned
    sub = subscribe(customer, saas if publisher == "isv" else e3, started=now - timedelta(days=1), status=status)
    before = database_state()
    # when its set-up is confirmed
    with pytest.raises(RuleViolation) as refused:
        services.confirm_publisher_setup(subscription_id=sub.pk, actor=sales, now=now)
    # then it is refused and nothing changed
    assert (refused.value.rule, refused.value.message) == ("S3", NOT_PENDING_ISV)
    assert database_state() == before


@pytest.mark.rule("S2")
@pytest.mark.rule("X3")
@pytest.mark.rule("S3")
def test_s2_x3_a_set_up_pending_past_72_hours_still_offers_cancel(customer, sales, saas, now):
    # given an ISV subscription bought five days ago whose set-up is still pending
    sub = subscribe(customer, saas, started=now - timedelta(days=5), status=Status.PENDING)
    # when its actions are listed / then Cancel is enabled (nothing was billed), with no deadline to count down
    assert allowed_actions(sub, sales, now)["cancel"].allowed is True
    assert subscription_actions.cancellation_window_ends(sub) is None
    assert subscription_actions.cancellation_outcome(sub, now) == (
        "Nothing is billed until the publisher confirms the set-up, so nothing is refunded."
    )


@pytest.fixture
def signflow(db):
    """An ISV SaaS offer with a 30-day free trial (S4)."""
    return factories.SkuFactory(
        isv=True, name="SignFlow", free_trial_days=30, availabilities=[("P1Y", "monthly", "8.00")]
    )


def isv_trial(customer, sku, *, bought, status, confirmed=None):
    """An ISV subscription as fulfilment makes it with a free trial: the paid year starts when the trial ends."""
    trial_end = bought + timedelta(days=30)
    return subscribe(
        customer,
        sku,
        started=trial_end,
        created_at=bought,
        status=status,
        is_trial=True,
        trial_ends_at=trial_end,
        setup_confirmed_at=confirmed,
    )


@pytest.mark.rule("S4")
@pytest.mark.rule("S2")
def test_s4_a_paid_isv_subscription_whose_trial_ended_before_its_set_up_has_no_trial_wording(
    customer, sales, signflow, now
):
    # given an ISV subscription bought 31 days ago, its 30-day free trial over, its set-up still pending
    sub = isv_trial(customer, signflow, bought=now - timedelta(days=31), status=Status.PENDING)
    # when its actions are listed
    actions = allowed_actions(sub, sales, now)
    # then it is refused what a pending subscription is refused, without a word about trials or converting
    pending = "Licenses can only be changed on an active subscription (this one is pending)."
    assert {name: (a.allowed, a.reason) for name, a in actions.items() if name != "convert_trial"} == {
        "add_licenses": (False, pending),
        "remove_licenses": (False, pending),
        "suspend": (False, "Only an active subscription can be suspended (this one is pending)."),
        "reactivate": (False, NOT_SUSPENDED),
        "cancel": (True, ""),
        "auto_renew_on": (False, "Auto-renew can only be changed on an active subscription (this one is pending)."),
        "auto_renew_off": (False, "Auto-renew can only be changed on an active subscription (this one is pending)."),
        "rename": (True, ""),
        "confirm_setup": (True, ""),
        "buy_addons": (False, "Add-ons need an active base subscription."),
        "manage_renewal": (
            False,
            "Changes can only be scheduled for the renewal of an active subscription (this one is pending).",
        ),
        "upgrade": (False, "Only an active subscription can be upgraded (this one is pending)."),
        "next_charge_frequency": (
            False,
            "The billing frequency can only be changed on an active subscription (this one is pending).",
        ),
    }


@pytest.mark.rule("S4")
def test_s4_during_an_isv_free_trial_the_reasons_say_when_it_becomes_paid_not_to_convert_it(
    customer, sales, signflow, now
):
    # given an ISV subscription bought 10 days ago in its 30-day free trial (to 2026-12-15 12:00 UTC), set up
    sub = isv_trial(
        customer, signflow, bought=now - timedelta(days=10), status=Status.ACTIVE, confirmed=now - timedelta(days=9)
    )
    # when its actions are listed
    actions = allowed_actions(sub, sales, now)
    # then what a free trial can't do says when it becomes paid (S4: it can't be converted or waived)
    until = "during the free trial, which runs until 2026-12-15 12:00 UTC: it then becomes a paid subscription."
    assert {
        name: (a.allowed, a.rule, a.reason)
        for name, a in actions.items()
        if name in ("add_licenses", "suspend", "manage_renewal", "upgrade", "next_charge_frequency")
    } == {
        "add_licenses": (False, "S4", f"Licenses can't change {until}"),
        "suspend": (False, "S4", f"The status can't change {until}"),
        "manage_renewal": (False, "S4", f"Changes for the renewal can't be scheduled {until}"),
        "upgrade": (False, "S4", f"It can't be upgraded {until}"),
        "next_charge_frequency": (False, "S4", f"Nothing is billed {until}"),
    }
    assert not any("convert" in a.reason.lower() for a in actions.values() if a.name != "convert_trial")
    # and it can be cancelled at any time during the trial, nothing being billed
    assert actions["cancel"].allowed is True


# T2 Roles on the server ------------------------------------------------------------------------------------


def run(service, sub, user, now, audio):
    return attempts(sub, user, now, audio)[service]()


@pytest.mark.rule("T2")
@pytest.mark.parametrize(
    "service, suspended, reason",
    [
        ("add_licenses", False, BUY_REASON),
        ("remove_licenses", False, BUY_REASON),
        ("suspend", False, SUSPEND_REASON),
        ("reactivate", True, SUSPEND_REASON),
        ("cancel", False, BUY_REASON),
        ("auto_renew_off", False, AUTO_RENEW_REASON),
        ("rename", False, BUY_REASON),
        ("buy_addons", False, BUY_REASON),
    ],
)
def test_t2_support_agent_is_forbidden_every_change(
    customer, direct_partner, e3, audio, now, service, suspended, reason
):
    # given a subscription in its window and a support agent of its partner
    sub = subscribe(customer, e3, started=now - timedelta(days=2), **({"suspended": True} if suspended else {}))
    support = factories.staff(direct_partner, "support_agent")
    before = database_state()
    # when they change it
    with pytest.raises(PermissionDenied) as denied:
        run(service, sub, support, now, audio)
    # then it is forbidden (403) with the roles that may, and nothing changed
    assert str(denied.value) == reason
    assert database_state() == before


@pytest.mark.rule("T2")
def test_t2_support_agent_cannot_confirm_a_publisher_set_up(customer, direct_partner, saas, audio, now):
    # given a pending ISV subscription and a support agent
    sub = subscribe(customer, saas, started=now - timedelta(hours=1), status=Status.PENDING)
    support = factories.staff(direct_partner, "support_agent")
    before = database_state()
    # when they confirm its set-up / then it is forbidden and nothing changed
    with pytest.raises(PermissionDenied) as denied:
        services.confirm_publisher_setup(subscription_id=sub.pk, actor=support, now=now)
    assert str(denied.value) == BUY_REASON
    assert database_state() == before


@pytest.mark.rule("T2")
@pytest.mark.parametrize("service", ["add_licenses", "remove_licenses", "cancel", "rename", "buy_addons"])
def test_t2_billing_admin_cannot_change_quantity_or_cancel(customer, direct_partner, e3, audio, now, service):
    # given a subscription in its window and a billing admin of its partner
    sub = subscribe(customer, e3, started=now - timedelta(days=2))
    billing_admin = factories.staff(direct_partner, "billing_admin")
    before = database_state()
    # when they change its licenses, cancel, rename it or buy add-ons
    with pytest.raises(PermissionDenied) as denied:
        run(service, sub, billing_admin, now, audio)
    # then it is forbidden and nothing changed
    assert str(denied.value) == BUY_REASON
    assert database_state() == before


@pytest.mark.rule("T2")
@pytest.mark.rule("P1")
@pytest.mark.rule("P2")
def test_t2_billing_admin_suspends_reactivates_and_toggles_auto_renew(customer, direct_partner, e3, now):
    # given an active subscription and a billing admin of its partner
    sub = subscribe(customer, e3, started=now - timedelta(days=2))
    billing_admin = factories.staff(direct_partner, "billing_admin")
    # when they suspend it (non-payment), then reactivate it, then turn auto-renew back on and off
    services.suspend_subscription(subscription_id=sub.pk, actor=billing_admin, now=now)
    suspended = Subscription.objects.get(pk=sub.pk)
    services.reactivate_subscription(subscription_id=sub.pk, actor=billing_admin, now=now + timedelta(minutes=1))
    reactivated = Subscription.objects.get(pk=sub.pk)
    services.set_auto_renew(subscription_id=sub.pk, actor=billing_admin, on=True, now=now + timedelta(minutes=2))
    renewing = Subscription.objects.get(pk=sub.pk)
    services.set_auto_renew(subscription_id=sub.pk, actor=billing_admin, on=False, now=now + timedelta(minutes=3))
    # then each took effect, recorded as theirs
    assert [(s.status, s.auto_renew) for s in (suspended, reactivated, renewing)] == [
        ("suspended", False),
        ("active", False),
        ("active", True),
    ]
    assert Subscription.objects.get(pk=sub.pk).auto_renew is False
    assert list(AuditEntry.objects.order_by("at").values_list("action", "actor")) == [
        ("subscription.suspended", billing_admin.pk),
        ("subscription.reactivated", billing_admin.pk),
        ("subscription.auto_renew_changed", billing_admin.pk),
        ("subscription.auto_renew_changed", billing_admin.pk),
    ]


# R6 Turning auto-renew off deletes the scheduled renewal changes ------------------------------------------------


@pytest.mark.rule("R6")
def test_r6_turning_auto_renew_off_deletes_scheduled_changes(customer, sales, e3, now):
    # given a subscription renewing with three changes scheduled, and another subscription's change
    sub = subscribe(customer, e3, started=now - timedelta(days=40))
    factories.ScheduledChangeFactory(subscription=sub, kind="quantity", quantity=20)
    factories.ScheduledChangeFactory(subscription=sub, kind="term", term="P3Y", quantity=None)
    factories.ScheduledChangeFactory(
        subscription=sub, kind="billing_frequency", billing_frequency="annual", quantity=None
    )
    other = factories.ScheduledChangeFactory(subscription=subscribe(customer, e3, started=now - timedelta(days=40)))
    # when its auto-renew is turned off
    services.set_auto_renew(subscription_id=sub.pk, actor=sales, on=False, now=now)
    # then it will not renew, and what was scheduled for the renewal is gone
    assert Subscription.objects.get(pk=sub.pk).auto_renew is False
    assert list(ScheduledChange.objects.values_list("pk", flat=True)) == [other.pk]
    entry = AuditEntry.objects.get(subscription=sub)
    assert (entry.summary, entry.before, entry.after) == (
        "Auto-renew turned off; 3 scheduled change(s) deleted",
        {"auto_renew": True},
        {"auto_renew": False},
    )


@pytest.mark.rule("R6")
def test_r6_turning_auto_renew_on_keeps_scheduled_changes(customer, sales, e3, now):
    # given a subscription with auto-renew off and a billing-frequency change kept from a suspension
    sub = subscribe(customer, e3, started=now - timedelta(days=40), auto_renew=False)
    change = factories.ScheduledChangeFactory(
        subscription=sub, kind="billing_frequency", billing_frequency="annual", quantity=None
    )
    # when auto-renew is turned on
    services.set_auto_renew(subscription_id=sub.pk, actor=sales, on=True, now=now)
    # then it renews and the change stays
    assert Subscription.objects.get(pk=sub.pk).auto_renew is True
    assert list(ScheduledChange.objects.values_list("pk", flat=True)) == [change.pk]


@pytest.mark.rule("S2")
def test_s2_auto_renew_already_in_that_state_is_a_conflict(customer, sales, e3, now):
    # given a subscription with auto-renew on
    sub = subscribe(customer, e3, started=now - timedelta(days=40))
    before = database_state()
    # when another tab turns it on again
    with pytest.raises(RuleViolation) as refused:
        services.set_auto_renew(subscription_id=sub.pk, actor=sales, on=True, now=now)
    # then the page is stale (409) and nothing changed
    assert (refused.value.message, refused.value.status) == ("Auto-renew is already on.", 409)
    assert database_state() == before
