"""C4a outside the cart: an offer sold once per customer is held once. `checks.customer_holds` is the one definition
of "held" (a live subscription: pending, active or suspended) that a renewal's scheduled upgrade (U3), a trial's
conversion (TR3), an upgrade into a new subscription (U3) and a transfer (TF4) ask, each with its own rule id and
sentence. Time is frozen at the `now` fixture (2026-11-25 12:00 UTC)."""

from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import AnonymousUser

from catalog.models import UpgradePath
from portal.errors import RuleViolation
from subscriptions import checks, transfers
from subscriptions.services import conversions, plan_upgrade, schedule_renewal_change
from subscriptions.states import Status
from tests import factories
from tests.helpers import database_state

STARTED = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
ENDED = [Status.DELETED, Status.EXPIRED, Status.DISABLED]


@pytest.fixture
def e3(db):
    return factories.SkuFactory(
        name="Microsoft 365 E3", availabilities=[("P1Y", "monthly", "10.00"), ("P1Y", "annual", "110.00")]
    )


@pytest.fixture
def copilot(e3):
    """An offer sold once per customer, a supported upgrade from E3."""
    sku = factories.SkuFactory(
        name="Microsoft 365 Copilot", one_per_customer=True, availabilities=[("P1Y", "monthly", "30.00")]
    )
    UpgradePath.objects.create(source=e3, target=sku)
    return sku


def holding(customer, sku, status):
    return factories.subscribe(customer, sku, started=STARTED, status=status, auto_renew=False)


# --- the definition ------------------------------------------------------------------------------------------------


@pytest.mark.rule("C4a")
@pytest.mark.parametrize(
    "status, held", [(s, True) for s in (Status.PENDING, Status.ACTIVE, Status.SUSPENDED)] + [(s, False) for s in ENDED]
)
def test_c4a_a_live_subscription_is_held_an_ended_one_is_not(customer, copilot, status, held):
    holding(customer, copilot, status)
    assert checks.customer_holds(customer.pk, copilot) is held
    # another customer holds nothing
    assert checks.customer_holds(factories.CustomerFactory().pk, copilot) is False


@pytest.mark.rule("C4a")
def test_c4a_only_an_offer_sold_once_counts_and_the_moving_subscription_is_excluded(customer, e3, copilot):
    own = holding(customer, copilot, Status.ACTIVE)
    holding(customer, e3, Status.ACTIVE)
    # an offer sold any number of times is never "held once"
    assert checks.customer_holds(customer.pk, e3) is False
    # the subscription moving onto the offer doesn't hold it against itself
    assert checks.customer_holds(customer.pk, copilot, excluding=own.pk) is False
    # a trial offer is sold once (TR1), as the catalog says
    trial = factories.trial_offer(trial_of=e3)
    assert checks.sold_once(trial) is True
    factories.start_trial(customer, trial, started=STARTED)
    assert checks.customer_holds(customer.pk, trial) is True


# --- U3: an upgrade scheduled for the renewal ------------------------------------------------------------------------


@pytest.mark.rule("U3")
@pytest.mark.rule("C4a")
def test_u3_a_renewal_upgrade_to_an_offer_held_once_is_refused_and_nothing_changes(customer, sales, e3, copilot, now):
    sub = factories.subscribe(customer, e3, started=STARTED)
    holding(customer, copilot, Status.SUSPENDED)
    before = database_state()
    with pytest.raises(RuleViolation) as refused:
        schedule_renewal_change(
            subscription_id=sub.pk,
            actor=sales,
            target_sku_id=copilot.pk,
            quantity=None,
            term=None,
            billing_frequency=None,
            now=now,
        )
    assert (refused.value.rule, refused.value.message) == (
        "U3",
        "The customer already holds Microsoft 365 Copilot, which can be held once.",
    )
    assert database_state() == before


@pytest.mark.rule("U3")
@pytest.mark.rule("C4a")
@pytest.mark.parametrize("status", ENDED)
def test_u3_an_ended_holding_does_not_stop_a_renewal_upgrade(customer, sales, e3, copilot, now, status):
    sub = factories.subscribe(customer, e3, started=STARTED)
    holding(customer, copilot, status)
    changes = schedule_renewal_change(
        subscription_id=sub.pk,
        actor=sales,
        target_sku_id=copilot.pk,
        quantity=None,
        term=None,
        billing_frequency=None,
        now=now,
    )
    assert [(c.kind, c.target_sku) for c in changes] == [("upgrade", copilot)]


# --- U3: an upgrade now into a new subscription ---------------------------------------------------------------------


@pytest.mark.rule("U3")
@pytest.mark.rule("C4a")
def test_u3_a_partial_upgrade_into_a_new_subscription_of_an_offer_held_suspended_is_refused(
    customer, sales, e3, copilot, now
):
    # a suspended Copilot is held (the database's constraint counts it too), though it can't receive licenses
    sub = factories.subscribe(customer, e3, started=STARTED)
    holding(customer, copilot, Status.SUSPENDED)
    before = database_state()
    with pytest.raises(RuleViolation) as refused:
        plan_upgrade(
            sub, user=sales, target_sku_id=copilot.pk, quantity=4, term="P1Y", billing_frequency="monthly", now=now
        )
    assert refused.value.rule == "U3"
    assert "already holds Microsoft 365 Copilot, which can be held once" in refused.value.message
    assert database_state() == before


# --- TR3: a trial converted now into a new subscription ----------------------------------------------------------


@pytest.fixture
def copilot_trial(copilot, customer):
    return factories.start_trial(
        customer, factories.trial_offer(trial_of=copilot), started=datetime(2026, 11, 10, tzinfo=UTC)
    )


def convert(trial, actor, now):
    return conversions.convert_trial_now(
        subscription_id=trial.pk, actor=actor, now=now, target_sku_id=trial.sku.trial_of_id, quantity=25
    )


@pytest.mark.rule("TR3")
@pytest.mark.rule("C4a")
@pytest.mark.parametrize("status", [Status.PENDING, Status.SUSPENDED])
def test_tr3_converting_into_a_new_subscription_of_an_offer_held_once_is_refused(
    customer, sales, copilot, copilot_trial, now, status
):
    holding(customer, copilot, status)
    before = database_state()
    with pytest.raises(RuleViolation) as refused:
        convert(copilot_trial, sales, now)
    assert (refused.value.rule, refused.value.message) == (
        "TR3",
        "The customer already has Microsoft 365 Copilot, which can be bought once: convert into that subscription "
        "instead.",
    )
    assert database_state() == before


@pytest.mark.rule("TR3")
@pytest.mark.rule("C4a")
@pytest.mark.parametrize("status", ENDED)
def test_tr3_an_ended_holding_does_not_stop_the_conversion(customer, sales, copilot, copilot_trial, now, status):
    holding(customer, copilot, status)
    paid = convert(copilot_trial, sales, now).subscription
    assert (paid.sku, paid.quantity, paid.status) == (copilot, 25, Status.ACTIVE)


# --- TF4: a transfer to a partner whose customer holds the offer ------------------------------------------------


@pytest.fixture
def target_sales(db):
    return factories.staff(factories.PartnerFactory(kind="direct_bill", name="Fabrikam Cloud"), "sales_agent")


def transfer_of(customer, direct_partner, target_sales, now):
    relationship = transfers.send_relationship_request(
        actor=target_sales,
        company_name=customer.company_name,
        domain=customer.domain,
        contact_email=f"admin@{customer.domain}",
        site_url="http://testserver/",
        now=now,
    )
    accepted = transfers.accept_relationship(
        token=transfers.acceptance_token(relationship),
        actor=AnonymousUser(),
        company_name=customer.company_name,
        billing_country="US",
        segment="commercial",
        now=now,
    )
    return transfers.file_transfer_request(
        actor=target_sales,
        customer=accepted.customer,
        source_partner_id=direct_partner.partner_id,
        notification_email="it@example.com",
        now=now,
    )


@pytest.mark.rule("TF4")
@pytest.mark.rule("C4a")
def test_tf4_an_offer_the_target_partners_customer_holds_once_is_not_transferred(
    customer, sales, direct_partner, target_sales, copilot, now
):
    sub = holding(customer, copilot, Status.ACTIVE)
    transfer = transfer_of(customer, direct_partner, target_sales, now)
    holding(transfer.target_customer, copilot, Status.SUSPENDED)
    before = database_state()
    with pytest.raises(RuleViolation) as refused:
        transfers.complete_transfer(actor=sales, request_id=transfer.pk, subscription_ids=[sub.pk], now=now)
    assert (refused.value.rule, refused.value.message) == (
        "TF4",
        "Fabrikam Cloud already has Microsoft 365 Copilot for this customer, and only one subscription to it is "
        "allowed.",
    )
    assert database_state() == before


@pytest.mark.rule("TF4")
@pytest.mark.rule("C4a")
@pytest.mark.parametrize("status", ENDED)
def test_tf4_an_ended_holding_at_the_target_does_not_stop_the_transfer(
    customer, sales, direct_partner, target_sales, copilot, now, status
):
    sub = holding(customer, copilot, Status.ACTIVE)
    transfer = transfer_of(customer, direct_partner, target_sales, now)
    holding(transfer.target_customer, copilot, status)
    [new] = transfers.complete_transfer(actor=sales, request_id=transfer.pk, subscription_ids=[sub.pk], now=now)
    assert (new.customer, new.sku, new.status, new.one_per_customer) == (
        transfer.target_customer,
        copilot,
        "active",
        True,
    )
