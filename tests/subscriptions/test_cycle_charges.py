"""Changing the billing frequency at the next charge, and the cycle charge that applies it (N7, P3, P4).

Today is 2026-11-25 12:00 UTC. The subscription is Microsoft 365 E3, 10 licenses, a 1-year term billed monthly at
10.00, started 2026-10-10 09:00 UTC and ending 2027-10-09 (inclusive). Its monthly periods start on the 10th, so
the next charge is on 2026-12-10. The SKU is sold P1Y monthly (10.00) or annual (114.00), and P1M monthly (12.00).
"""

from datetime import UTC, date, datetime
from decimal import Decimal
from functools import partial

import pytest
import time_machine
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction

from portal.errors import RuleViolation
from subscriptions import services
from subscriptions.checks import allowed_actions
from subscriptions.cycles import (
    charge_due_cycles,
    mark_cycle_charges_pending,
    remove_next_charge_frequency,
    set_next_charge_frequency,
)
from subscriptions.lifecycle import run_lifecycle
from subscriptions.models import AuditEntry, BillingLine, Subscription
from subscriptions.services import suspend_subscription
from subscriptions.states import Status
from tests import factories
from tests.helpers import database_state, drawn
from tests.helpers import subscription_url as url

STARTED = datetime(2026, 10, 10, 9, 0, tzinfo=UTC)
CHARGE_DAY = date(2026, 12, 10)
CHARGE_AT = datetime(2026, 12, 10, 0, 0, tzinfo=UTC)


@pytest.fixture
def e3(db):
    return factories.SkuFactory(
        name="Microsoft 365 E3",
        availabilities=[("P1Y", "monthly", "10.00"), ("P1Y", "annual", "114.00"), ("P1M", "monthly", "12.00")],
    )


subscribe = partial(factories.subscribe, started=STARTED)


def with_instruction(sub, frequency="annual", on=CHARGE_DAY, *, pending=False):
    Subscription.objects.filter(pk=sub.pk).update(
        next_charge_frequency=frequency,
        next_charge_on=on,
        next_charge_set_at=datetime(2026, 11, 20, 8, 0, tzinfo=UTC),
        cycle_charge_pending=pending,
    )
    sub.refresh_from_db()
    return sub


# Setting, changing and removing the instruction ----------------------------------------------------


@pytest.mark.rule("N7")
def test_n7_an_instruction_is_set_for_the_next_charge_and_audited(customer, sales, e3, now):
    # given a 1-year term billed monthly, whose next monthly period starts on 2026-12-10
    sub = subscribe(customer, e3)
    # when annual billing is set for the next charge
    set_next_charge_frequency(subscription_id=sub.pk, actor=sales, billing_frequency="annual", now=now)
    # then the instruction keeps that date, and nothing is billed or changed yet
    sub.refresh_from_db()
    assert (
        sub.billing_frequency,
        sub.unit_price,
        sub.next_charge_frequency,
        sub.next_charge_on,
        sub.next_charge_set_at,
        sub.cycle_charge_pending,
    ) == ("monthly", Decimal("10.00"), "annual", CHARGE_DAY, now, False)
    assert not BillingLine.objects.filter(subscription=sub).exists()
    entry = AuditEntry.objects.get(subscription=sub)
    assert (entry.action, entry.actor, entry.at, entry.summary, entry.before, entry.after) == (
        "subscription.next_charge_frequency_set",
        sales,
        now,
        "Billing frequency changes from monthly to annually at the next charge on 2026-12-10 (UTC)",
        {"next_charge_frequency": None, "next_charge_on": None},
        {"next_charge_frequency": "annual", "next_charge_on": "2026-12-10"},
    )


@pytest.mark.rule("N7")
def test_n7_the_instruction_is_removed_and_audited(customer, sales, e3, now):
    # given an instruction to bill annually from 2026-12-10
    sub = with_instruction(subscribe(customer, e3))
    # when it is removed
    remove_next_charge_frequency(subscription_id=sub.pk, actor=sales, now=now)
    # then the next charge stays monthly
    sub.refresh_from_db()
    assert (sub.next_charge_frequency, sub.next_charge_on, sub.next_charge_set_at) == ("", None, None)
    entry = AuditEntry.objects.get(subscription=sub)
    assert (entry.action, entry.summary, entry.before, entry.after) == (
        "subscription.next_charge_frequency_removed",
        "Billing frequency change removed: the next charge stays monthly",
        {"next_charge_frequency": "annual", "next_charge_on": "2026-12-10"},
        {"next_charge_frequency": None, "next_charge_on": None},
    )


@pytest.mark.rule("N7")
def test_n7_the_instruction_is_set_through_the_page_and_shown(client, customer, sales, e3, now):
    # given a partner's sales agent on the subscription page
    sub = subscribe(customer, e3)
    client.force_login(sales)
    page = client.get(url("detail", sub)).content.decode()
    assert "Next charge</dt><dd>2026-12-10 00:00 UTC" in page
    assert '<option value="annual" >Annual (114.00 USD per license)</option>' in page
    # when annual billing is chosen (a plain form post)
    response = client.post(url("next-charge-frequency", sub), drawn(sub, {"billing_frequency": "annual"}), follow=True)
    # then the page says so and shows the instruction with Remove
    page = response.content.decode()
    assert response.status_code == 200
    assert "From the next charge on 2026-12-10 (UTC) it is billed annually." in page
    assert "From the charge on 2026-12-10 00:00 UTC: billed annually</strong> at 114.00 USD per license" in page
    assert url("next-charge-frequency-remove", sub) in page
    assert Subscription.objects.get(pk=sub.pk).next_charge_frequency == "annual"


@pytest.mark.rule("N7")
def test_n7_htmx_set_and_remove_answer_the_panel_alone(client, customer, sales, e3, now):
    # given the page loaded with htmx
    sub = subscribe(customer, e3)
    client.force_login(sales)
    # when annual billing is set through the panel
    response = client.post(
        url("next-charge-frequency", sub), drawn(sub, {"billing_frequency": "annual"}), HTTP_HX_REQUEST="true"
    )
    # then the answer is the panel with the outcome in it, not the page
    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith('<section class="card" id="billing-frequency"')
    assert "From the next charge on 2026-12-10 (UTC) it is billed annually." in body
    # and removing it answers the panel again
    body = client.post(url("next-charge-frequency-remove", sub), drawn(sub), HTTP_HX_REQUEST="true").content.decode()
    assert "Billing frequency change removed: it stays billed monthly." in body
    assert Subscription.objects.get(pk=sub.pk).next_charge_frequency == ""


# N7: read-only while the cycle charge is pending -----------------------------------------------------


@pytest.mark.rule("N7")
def test_n7_changing_or_removing_while_the_cycle_charge_is_pending_is_a_409_and_changes_nothing(
    client, customer, sales, e3
):
    # given the engine marked the cycle charge pending at 00:00 UTC on the charge day
    sub = with_instruction(subscribe(customer, e3), "annual")
    factories.BillingLineFactory(subscription=sub)
    with time_machine.travel(datetime(2026, 12, 10, 0, 1, tzinfo=UTC), tick=False):
        client.force_login(sales)
        assert mark_cycle_charges_pending(CHARGE_AT) == 1
        before = database_state()
        # when the partner tries to change the frequency back, or to remove the instruction
        changed = client.post(url("next-charge-frequency", sub), drawn(sub, {"billing_frequency": "monthly"}))
        removed = client.post(url("next-charge-frequency-remove", sub), drawn(sub))
        # then both are refused as a conflict naming N7
        for response in (changed, removed):
            assert response.status_code == 409
            assert (
                "the next charge&#x27;s billing frequency instruction is read-only until the cycle charge "
                "completes; retry in a few minutes."
            ) in response.content.decode()
        # and nothing changed
        assert database_state() == before
        # and the page shows the instruction read-only with the reason
        page = client.get(url("detail", sub)).content.decode()
    assert "billed annually</strong>" in page
    assert 'disabled title="The billing frequency change is being charged now' in page
    assert 'name="billing_frequency"' not in page.split('id="billing-frequency"')[1].split("</section>")[0]


@pytest.mark.rule("N7")
def test_n7_the_service_refuses_while_pending_and_the_button_says_why(customer, sales, e3, now):
    # given a pending cycle charge
    sub = with_instruction(subscribe(customer, e3), "annual", date(2026, 11, 25), pending=True)
    before = database_state()
    # when the service is called directly
    with pytest.raises(RuleViolation) as refused:
        set_next_charge_frequency(subscription_id=sub.pk, actor=sales, billing_frequency="annual", now=now)
    # then it is a conflict (409) naming N7, and nothing changed
    assert (refused.value.rule, refused.value.status) == ("N7", 409)
    assert database_state() == before
    verdict = allowed_actions(sub, sales, now)["next_charge_frequency"]
    assert (verdict.allowed, verdict.rule) == (False, "N7")


# The engine -----------------------------------------------------------------------------------------


@pytest.mark.rule("N7")
def test_n7_the_engine_marks_pending_at_00_00_utc_on_the_charge_day_and_not_before(customer, e3):
    # given an instruction for the charge on 2026-12-10
    sub = with_instruction(subscribe(customer, e3))
    # when the engine runs one second before midnight
    assert mark_cycle_charges_pending(datetime(2026, 12, 9, 23, 59, 59, tzinfo=UTC)) == 0
    # then nothing is pending; at 00:00 UTC it is
    assert not Subscription.objects.get(pk=sub.pk).cycle_charge_pending
    assert mark_cycle_charges_pending(CHARGE_AT) == 1
    assert Subscription.objects.get(pk=sub.pk).cycle_charge_pending
    # and marking again changes nothing
    assert mark_cycle_charges_pending(CHARGE_AT) == 0


@pytest.mark.rule("N7")
def test_n7_the_cycle_charge_switches_to_annual_and_bills_once_even_when_run_twice(customer, e3):
    # given an instruction to bill annually from 2026-12-10
    sub = with_instruction(subscribe(customer, e3))
    # when the engine runs at 00:00 UTC on the charge day, and again
    first = run_lifecycle(CHARGE_AT)
    second = run_lifecycle(datetime(2026, 12, 10, 0, 5, tzinfo=UTC))
    # then one cycle charge was made
    assert (first.cycle_pending, first.cycle_charged, first.failed) == (1, 1, 0)
    assert (second.cycle_pending, second.cycle_charged) == (0, 0)
    # and the subscription is billed annually at the annual price, the instruction gone
    sub.refresh_from_db()
    annual = factories.availability(e3, "P1Y", "annual")
    assert (
        sub.billing_frequency,
        sub.unit_price,
        sub.availability,
        sub.next_charge_frequency,
        sub.next_charge_on,
        sub.cycle_charge_pending,
    ) == ("annual", Decimal("114.00"), annual, "", None, False)
    # and the first annual period runs to the term end, prorated by the day: 114.00 × 10 × 304/365 days
    line = BillingLine.objects.get(subscription=sub)
    assert (
        line.kind,
        line.amount,
        line.quantity,
        line.unit_price,
        line.period_start,
        line.period_end,
        line.created_at,
    ) == ("cycle", Decimal("949.48"), 10, Decimal("114.00"), CHARGE_DAY, date(2027, 10, 9), CHARGE_AT)
    assert line.explanation == "Billed annually from 2026-12-10: 114.00 × 10 × 304/365 days"
    entry = AuditEntry.objects.get(subscription=sub, action="subscription.cycle_charged")
    assert (entry.actor, entry.at, entry.summary) == (
        None,
        CHARGE_AT,
        ("Billing frequency changed to annually from 2026-12-10; charged 949.48 USD for 2026-12-10 – 2027-10-09"),
    )
    assert (entry.before["billing_frequency"], entry.after["billing_frequency"]) == ("monthly", "annual")


@pytest.mark.rule("N7")
def test_n7_annual_to_monthly_on_a_three_year_term_bills_one_month(customer, db):
    # given a 3-year term billed annually (1,200.00), started 2025-12-01: its next annual charge is 2026-12-01
    sku = factories.SkuFactory(availabilities=[("P3Y", "annual", "1200.00"), ("P3Y", "monthly", "105.50")])
    sub = subscribe(customer, sku, term="P3Y", frequency="annual", started=datetime(2025, 12, 1, 10, 0, tzinfo=UTC))
    sales = factories.staff(customer.partner)
    set_next_charge_frequency(
        subscription_id=sub.pk, actor=sales, billing_frequency="monthly", now=datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    )
    assert Subscription.objects.get(pk=sub.pk).next_charge_on == date(2026, 12, 1)
    # when the engine runs on the charge day
    report = run_lifecycle(datetime(2026, 12, 1, 0, 0, 30, tzinfo=UTC))
    # then one month is billed at the monthly price: 105.50 × 10
    assert report.cycle_charged == 1
    line = BillingLine.objects.get(subscription=sub)
    assert (line.amount, line.period_start, line.period_end, line.explanation) == (
        Decimal("1055.00"),
        date(2026, 12, 1),
        date(2026, 12, 31),
        "Billed monthly from 2026-12-01: 105.50 × 10",
    )


@pytest.mark.rule("N7")
def test_n7_charge_due_cycles_skips_a_row_already_charged(customer, e3):
    # given a cycle charged once
    sub = with_instruction(subscribe(customer, e3))
    assert charge_due_cycles(CHARGE_AT).charged == 1
    # when the charge step runs again (a second engine, a rerun after a crash)
    again = charge_due_cycles(CHARGE_AT)
    # then it finds nothing to do
    assert (again.charged, again.dropped, again.failed) == (0, 0, 0)
    assert BillingLine.objects.filter(subscription=sub, kind="cycle").count() == 1


@pytest.mark.rule("N7")
def test_n7_an_instruction_on_a_cancelled_subscription_is_dropped_not_charged(customer, e3):
    # given an instruction left on a subscription that was cancelled since
    sub = with_instruction(subscribe(customer, e3, status=Status.DELETED, auto_renew=False))
    # when its charge day comes
    report = run_lifecycle(CHARGE_AT)
    # then nothing is billed and the instruction is gone, with the reason in the audit trail
    assert (report.cycle_charged, report.cycle_dropped) == (0, 1)
    assert not BillingLine.objects.filter(subscription=sub).exists()
    sub.refresh_from_db()
    assert (sub.billing_frequency, sub.next_charge_frequency, sub.cycle_charge_pending) == ("monthly", "", False)
    assert AuditEntry.objects.get(subscription=sub).summary == (
        "Billing frequency change to annually on 2026-12-10 not applied: the subscription is deleted"
    )


@pytest.mark.rule("N7")
def test_n7_an_instruction_after_the_term_end_cannot_exist(customer, e3):
    # given a subscription whose term ends 2027-10-09
    sub = subscribe(customer, e3)
    # when an instruction for the day after its term end is written: the renewal wins
    with pytest.raises(IntegrityError), transaction.atomic():
        Subscription.objects.filter(pk=sub.pk).update(next_charge_frequency="annual", next_charge_on=date(2027, 10, 10))
    # then the database refuses it
    assert Subscription.objects.get(pk=sub.pk).next_charge_on is None


# P4, P3: suspension keeps the instruction, and the suspended subscription is still billed --------------


@pytest.mark.rule("P4")
def test_p4_suspending_keeps_the_billing_frequency_instruction_and_the_cycle_is_still_charged(customer, sales, e3, now):
    # given an instruction to bill annually from 2026-12-10 and a quantity scheduled for the renewal
    sub = subscribe(customer, e3)
    set_next_charge_frequency(subscription_id=sub.pk, actor=sales, billing_frequency="annual", now=now)
    factories.ScheduledChangeFactory(subscription=sub, kind="quantity", quantity=20)
    # when it is suspended
    suspend_subscription(subscription_id=sub.pk, actor=sales, now=now)
    # then the scheduled renewal change is gone but the instruction stays
    sub.refresh_from_db()
    assert (sub.status, sub.scheduled_changes.count(), sub.next_charge_frequency, sub.next_charge_on) == (
        "suspended",
        0,
        "annual",
        CHARGE_DAY,
    )
    # and, still billed while suspended (P3), the cycle charge applies it on the day
    assert run_lifecycle(CHARGE_AT).cycle_charged == 1
    assert BillingLine.objects.get(subscription=sub).amount == Decimal("949.48")


# Refusals ----------------------------------------------------------------------------------------------


@pytest.mark.rule("N7")
@pytest.mark.parametrize(
    "term, frequency, started, reason",
    [
        (
            "P1M",
            "monthly",
            datetime(2026, 11, 20, 9, 0, tzinfo=UTC),
            (
                "No charge is left before the term ends on 2026-12-19 (UTC): its last monthly charge of the term is made. "
                "Schedule it for the renewal in Manage renewal instead."
            ),
        ),
        (
            "P1Y",
            "annual",
            STARTED,
            (
                "No charge is left before the term ends on 2027-10-09 (UTC): its last annual charge of the term is made. "
                "Schedule it for the renewal in Manage renewal instead."
            ),
        ),
    ],
)
def test_n7_without_a_charge_left_in_the_term_it_is_refused_with_manage_renewal_suggested(
    customer, sales, e3, now, term, frequency, started, reason
):
    # given a term with no billing period boundary ahead
    sub = subscribe(customer, e3, term=term, frequency=frequency, started=started)
    before = database_state()
    # when a frequency change is set for the next charge
    with pytest.raises(RuleViolation) as refused:
        set_next_charge_frequency(subscription_id=sub.pk, actor=sales, billing_frequency="annual", now=now)
    # then it is refused with the reason, and nothing changed
    assert (refused.value.rule, refused.value.status, refused.value.message) == ("N7", 422, reason)
    assert database_state() == before


@pytest.mark.rule("N7")
def test_n7_one_time_billing_has_no_next_charge(customer, sales, now):
    sku = factories.SkuFactory(availabilities=[("P3Y", "one_time", "3600.00"), ("P3Y", "monthly", "100.00")])
    sub = subscribe(customer, sku, term="P3Y", frequency="one_time")
    with pytest.raises(RuleViolation) as refused:
        set_next_charge_frequency(subscription_id=sub.pk, actor=sales, billing_frequency="monthly", now=now)
    assert refused.value.message == (
        "No charge is left before the term ends on 2029-10-09 (UTC): it is billed once "
        "for the whole term. Schedule it for the renewal in Manage renewal instead."
    )
    assert Subscription.objects.get(pk=sub.pk).next_charge_frequency == ""


@pytest.mark.rule("N7")
@pytest.mark.parametrize(
    "frequency, message",
    [
        ("weekly", "Choose a monthly, annual or one-time billing frequency."),
        ("monthly", "It is already billed monthly: choose another billing frequency, or remove the instruction."),
        ("one_time", "Microsoft 365 E3 is not sold for a 1 year term billed once for the term."),
    ],
)
def test_n7_a_bad_frequency_is_a_422_through_the_view_and_changes_nothing(
    client, customer, sales, e3, now, frequency, message
):
    sub = subscribe(customer, e3)
    client.force_login(sales)
    before = database_state()
    response = client.post(url("next-charge-frequency", sub), drawn(sub, {"billing_frequency": frequency}))
    assert response.status_code == 422
    assert message in response.content.decode().replace("&#x27;", "'")
    assert database_state() == before


@pytest.mark.rule("N7")
def test_n7_a_three_year_term_billed_monthly_switches_to_annual_at_the_next_month(customer, sales, now):
    # given a 3-year term billed monthly, started 2026-10-10
    sku = factories.SkuFactory(availabilities=[("P3Y", "monthly", "10.00"), ("P3Y", "annual", "120.00")])
    sub = subscribe(customer, sku, term="P3Y", frequency="monthly")
    # when annual billing is set, then it starts with the next monthly period
    set_next_charge_frequency(subscription_id=sub.pk, actor=sales, billing_frequency="annual", now=now)
    assert Subscription.objects.get(pk=sub.pk).next_charge_on == date(2026, 12, 10)
    # and on that day the rest of the term year is billed, to 2027-10-09 (periods count from the term start):
    # 120.00 × 10 × 304/365 days
    run_lifecycle(CHARGE_AT)
    line = BillingLine.objects.get(subscription=sub)
    assert (line.amount, line.period_start, line.period_end) == (Decimal("999.45"), CHARGE_DAY, date(2027, 10, 9))
    # and a later change prorates within that same period
    after = Subscription.objects.get(pk=sub.pk)
    period = services.current_period(after, date(2027, 3, 1))
    assert (after.billing_frequency, period.start, period.end) == ("annual", date(2026, 10, 10), date(2027, 10, 9))


@pytest.mark.rule("N7")
def test_n7_removing_an_instruction_already_gone_is_a_409(client, customer, sales, e3, now):
    sub = subscribe(customer, e3)
    client.force_login(sales)
    before = database_state()
    response = client.post(url("next-charge-frequency-remove", sub), drawn(sub))
    assert response.status_code == 409
    assert "No billing frequency change is set for the next charge" in response.content.decode()
    assert database_state() == before


@pytest.mark.rule("N6")
def test_n6_the_instruction_is_read_only_while_the_renewal_is_pending(customer, sales, e3, now):
    sub = subscribe(customer, e3, renewal_pending=True)
    before = database_state()
    with pytest.raises(RuleViolation) as refused:
        set_next_charge_frequency(subscription_id=sub.pk, actor=sales, billing_frequency="annual", now=now)
    assert (refused.value.rule, refused.value.status) == ("N6", 409)
    assert database_state() == before


@pytest.mark.rule("N7")
def test_n7_a_suspended_subscription_cant_get_a_new_instruction(customer, sales, e3, now):
    sub = subscribe(customer, e3, suspended=True)
    with pytest.raises(RuleViolation) as refused:
        set_next_charge_frequency(subscription_id=sub.pk, actor=sales, billing_frequency="annual", now=now)
    assert refused.value.message == (
        "The billing frequency can only be changed on an active subscription (this one is suspended)."
    )
    assert Subscription.objects.get(pk=sub.pk).next_charge_frequency == ""


# Roles and tenancy (T2, T3) ------------------------------------------------------------------------------


@pytest.mark.rule("T2")
@pytest.mark.parametrize("role", ["support_agent", "billing_admin"])
def test_t2_only_admin_and_sales_agents_change_the_billing_frequency(client, direct_partner, customer, e3, now, role):
    sub = with_instruction(subscribe(customer, e3), "annual")
    user = factories.staff(direct_partner, role)
    client.force_login(user)
    before = database_state()
    assert (
        client.post(url("next-charge-frequency", sub), drawn(sub, {"billing_frequency": "annual"})).status_code == 403
    )
    assert client.post(url("next-charge-frequency-remove", sub), drawn(sub)).status_code == 403
    with pytest.raises(PermissionDenied):
        remove_next_charge_frequency(subscription_id=sub.pk, actor=user, now=now)
    assert database_state() == before
    # and the page shows the Remove button disabled with the reason
    page = client.get(url("detail", sub)).content.decode()
    assert 'disabled title="Your role can&#x27;t buy or change subscriptions' in page


@pytest.mark.rule("T3")
def test_t3_another_partners_subscription_is_a_404(client, customer, e3, now):
    sub = subscribe(customer, e3)
    client.force_login(factories.staff(factories.PartnerFactory(), "admin_agent"))
    before = database_state()
    assert (
        client.post(url("next-charge-frequency", sub), drawn(sub, {"billing_frequency": "annual"})).status_code == 404
    )
    assert client.post(url("next-charge-frequency-remove", sub), drawn(sub)).status_code == 404
    assert database_state() == before


@pytest.mark.rule("X2")
def test_cancelling_removes_the_next_charge_instruction(customer, sales, e3, now):
    # given a subscription in its cancellation window with annual billing set for the next charge
    sub = subscribe(customer, e3, started=datetime(2026, 11, 24, 9, 0, tzinfo=UTC))
    set_next_charge_frequency(subscription_id=sub.pk, actor=sales, billing_frequency="annual", now=now)
    # when it is cancelled
    services.cancel_subscription(subscription_id=sub.pk, actor=sales, now=now)
    # then no instruction is left for the engine to drop later
    sub.refresh_from_db()
    assert (sub.status, sub.next_charge_frequency, sub.next_charge_on) == (Status.DELETED, "", None)


def test_a_cancelled_subscription_shows_no_next_charge(client, customer, sales, e3):
    sub = subscribe(customer, e3, status=Status.DELETED)
    client.force_login(sales)
    page = client.get(url("detail", sub)).content.decode()
    assert "<dt>Next charge</dt><dd>None: the subscription is deleted</dd>" in page
