"""Manage renewal: quantity, term and billing frequency scheduled for the renewal (R1–R3, N4, N6, K8).

Today is 2026-11-25 12:00 UTC. The subscription is Microsoft 365 E3, 10 licenses, a 1-year term billed
monthly at 10.00, bought 2026-11-23 12:00 UTC and ending 2027-11-22 (inclusive), auto-renew on: it
renews at 2027-11-23 00:00 UTC. The SKU is sold P1Y monthly or annual, and P1M monthly, 1 to 300 licenses.
"""

import re
from datetime import UTC, date, datetime
from functools import partial

import pytest
from django.core.exceptions import PermissionDenied

from portal.errors import RuleViolation
from subscriptions.lifecycle import run_lifecycle
from subscriptions.models import AuditEntry, ScheduledChange
from subscriptions.services import remove_scheduled_change, schedule_renewal_change
from subscriptions.states import Status
from tests import factories
from tests.helpers import card_text, database_state, drawn, subscription_url

UTC = UTC
RENEWS_AT = "2027-11-23 00:00 UTC"


@pytest.fixture
def e3(db):
    return factories.SkuFactory(
        name="Microsoft 365 E3",
        min_quantity=1,
        max_quantity=300,
        availabilities=[("P1Y", "monthly", "10.00"), ("P1Y", "annual", "114.00"), ("P1M", "monthly", "12.00")],
    )


subscribe = partial(factories.subscribe, started=datetime(2026, 11, 23, 12, 0, tzinfo=UTC), unit_price="10.00")


def scheduled(sub) -> list[tuple]:
    return list(
        ScheduledChange.objects.filter(subscription=sub)
        .order_by("pk")
        .values_list("kind", "quantity", "term", "billing_frequency")
    )


def schedule(sub, actor, *, quantity=None, term=None, billing_frequency=None, now):
    return schedule_renewal_change(
        subscription_id=sub.pk, actor=actor, quantity=quantity, term=term, billing_frequency=billing_frequency, now=now
    )


# R1 Scheduling -------------------------------------------------------------------------------------


@pytest.mark.rule("R1")
def test_r1_fewer_licenses_are_scheduled_for_the_renewal_and_audited(customer, sales, e3, now):
    # given an active subscription with auto-renew on
    sub = subscribe(customer, e3)
    # when 8 licenses are scheduled for the renewal
    changes = schedule(sub, sales, quantity=8, now=now)
    # then one change is scheduled, and nothing changes now
    assert [(c.kind, c.quantity, c.created_at, c.summary) for c in changes] == [("quantity", 8, now, "8 licenses")]
    assert scheduled(sub) == [("quantity", 8, "", "")]
    sub.refresh_from_db()
    assert (sub.quantity, sub.term, sub.billing_frequency) == (10, "P1Y", "monthly")
    entry = AuditEntry.objects.get(subscription=sub)
    assert (entry.action, entry.actor, entry.at, entry.summary, entry.before, entry.after) == (
        "subscription.renewal_change_scheduled",
        sales,
        now,
        "Scheduled for the renewal: 8 licenses",
        {"quantity": 10, "term": "P1Y", "billing_frequency": "monthly"},
        {"quantity": 8, "term": "P1Y", "billing_frequency": "monthly"},
    )


@pytest.mark.rule("R1")
def test_r1_term_and_billing_frequency_are_scheduled_together(customer, sales, e3, now):
    sub = subscribe(customer, e3)
    # when a 1-year term billed annually is scheduled (the quantity posted unchanged)
    changes = schedule(sub, sales, quantity=10, term="P1Y", billing_frequency="annual", now=now)
    # then only the billing frequency differs from today, so only it is scheduled
    assert [c.summary for c in changes] == ["Billed annually"]
    assert scheduled(sub) == [("billing_frequency", None, "", "annual")]
    # and a 1-month term billed monthly replaces it with a term change
    changes = schedule(sub, sales, quantity=12, term="P1M", billing_frequency="monthly", now=now)
    assert [c.summary for c in changes] == ["12 licenses", "Term 1 month"]
    assert sorted(scheduled(sub)) == [("quantity", 12, "", ""), ("term", None, "P1M", "")]


@pytest.mark.rule("R3")
def test_r3_a_new_value_replaces_the_scheduled_change_of_that_kind(customer, sales, e3, now):
    # given 20 licenses and annual billing scheduled yesterday
    sub = subscribe(customer, e3)
    factories.ScheduledChangeFactory(subscription=sub, quantity=20)
    annual = factories.ScheduledChangeFactory(
        subscription=sub, kind="billing_frequency", quantity=None, billing_frequency="annual"
    )
    # when 30 licenses are scheduled
    schedule(sub, sales, quantity=30, now=now)
    # then the quantity change is replaced, the billing frequency kept
    assert sorted(scheduled(sub)) == [("billing_frequency", None, "", "annual"), ("quantity", 30, "", "")]
    assert ScheduledChange.objects.filter(pk=annual.pk).exists()
    entry = AuditEntry.objects.get(subscription=sub)
    assert (entry.before["quantity"], entry.after["quantity"]) == (20, 30)


@pytest.mark.rule("R3")
def test_r3_scheduling_the_current_value_again_removes_that_change(customer, sales, e3, now):
    sub = subscribe(customer, e3)
    factories.ScheduledChangeFactory(subscription=sub, quantity=20)
    # when the current 10 licenses are scheduled
    changes = schedule(sub, sales, quantity=10, now=now)
    # then nothing is scheduled any more: it renews with 10
    assert (changes, scheduled(sub)) == ([], [])


@pytest.mark.rule("R3")
def test_r3_a_scheduled_change_is_removed(customer, sales, e3, now):
    sub = subscribe(customer, e3)
    change = factories.ScheduledChangeFactory(subscription=sub, quantity=20)
    kept = factories.ScheduledChangeFactory(subscription=sub, kind="term", quantity=None, term="P1M")
    # when the quantity change is removed
    removed = remove_scheduled_change(subscription_id=sub.pk, actor=sales, change_id=change.pk, now=now)
    # then only the term change is left, and the removal is audited
    assert removed.summary == "20 licenses"
    assert list(ScheduledChange.objects.values_list("pk", flat=True)) == [kept.pk]
    entry = AuditEntry.objects.get(subscription=sub)
    assert (entry.action, entry.actor, entry.summary, entry.before["quantity"], entry.after["quantity"]) == (
        "subscription.renewal_change_removed",
        sales,
        "Removed from the renewal: 20 licenses",
        20,
        10,
    )


# Refusals: nothing changes ----------------------------------------------------------------------


@pytest.mark.rule("R2")
@pytest.mark.parametrize(
    "state, message",
    [
        ({"auto_renew": False}, "Auto-renew is off: turn it on to schedule changes for the renewal."),
        (
            {"suspended": True},
            "Changes can only be scheduled for the renewal of an active subscription (this one is suspended).",
        ),
        (
            {"deleted": True},
            "Changes can only be scheduled for the renewal of an active subscription (this one is deleted).",
        ),
    ],
    ids=["auto-renew-off", "suspended", "deleted"],
)
def test_r2_only_an_active_subscription_with_auto_renew_on(customer, sales, e3, now, state, message):
    sub = subscribe(customer, e3, **state)
    change = factories.ScheduledChangeFactory(
        subscription=sub, kind="billing_frequency", quantity=None, billing_frequency="annual"
    )  # P4 keeps it while suspended
    before = database_state()
    with pytest.raises(RuleViolation) as refused:
        schedule(sub, sales, quantity=20, now=now)
    assert (refused.value.rule, refused.value.message, refused.value.status) == ("R2", message, 422)
    with pytest.raises(RuleViolation):
        remove_scheduled_change(subscription_id=sub.pk, actor=sales, change_id=change.pk, now=now)
    assert database_state() == before


@pytest.mark.rule("N6")
def test_n6_scheduled_changes_are_read_only_while_the_renewal_is_pending(customer, sales, e3, now):
    sub = subscribe(customer, e3, renewal_pending=True)
    change = factories.ScheduledChangeFactory(subscription=sub, quantity=20)
    before = database_state()
    for attempt in (
        lambda: schedule(sub, sales, quantity=30, now=now),
        lambda: remove_scheduled_change(subscription_id=sub.pk, actor=sales, change_id=change.pk, now=now),
    ):
        with pytest.raises(RuleViolation) as refused:
            attempt()
        assert (refused.value.rule, refused.value.status, refused.value.message) == (
            "N6",
            409,
            "The renewal is being processed: try again in two minutes.",
        )
    assert database_state() == before


@pytest.mark.rule("K8")
@pytest.mark.parametrize("quantity", [301, 1000])
def test_k8_scheduled_quantity_within_the_offer_limits(customer, sales, e3, now, quantity):
    sub = subscribe(customer, e3)
    before = database_state()
    with pytest.raises(RuleViolation) as refused:
        schedule(sub, sales, quantity=quantity, now=now)
    assert (refused.value.rule, refused.value.message, refused.value.field) == (
        "K8",
        "Microsoft 365 E3 is sold in quantities from 1 to 300.",
        "quantity",
    )
    assert database_state() == before


@pytest.mark.rule("R1")
@pytest.mark.parametrize(
    "term, frequency, message",
    [
        (
            "P1M",
            "annual",
            "A 1 month term can't be billed annually: the billing frequency can't be longer than the term.",
        ),
        ("P3Y", "monthly", "Microsoft 365 E3 is not sold for a 3 years term billed monthly."),
        ("P1Y", "one_time", "Microsoft 365 E3 is not sold for a 1 year term billed once for the term."),
        ("P2Y", "monthly", "Choose a term of 1 month, 1 year or 3 years."),
    ],
)
def test_r1_term_and_frequency_must_be_sold_for_the_sku(customer, sales, e3, now, term, frequency, message):
    sub = subscribe(customer, e3)
    before = database_state()
    with pytest.raises(RuleViolation) as refused:
        schedule(sub, sales, term=term, billing_frequency=frequency, now=now)
    assert (refused.value.message, refused.value.status) == (message, 422)
    assert database_state() == before


@pytest.mark.rule("R1")
def test_r1_a_change_identical_to_the_current_values_is_refused(customer, sales, e3, now):
    sub = subscribe(customer, e3)
    before = database_state()
    with pytest.raises(RuleViolation) as refused:
        schedule(sub, sales, quantity=10, term="P1Y", billing_frequency="monthly", now=now)
    assert refused.value.message == "Nothing to schedule: the renewal already keeps these values."
    assert database_state() == before


@pytest.mark.rule("R3")
def test_r3_another_subscriptions_change_cannot_be_removed(customer, sales, e3, now):
    sub, other = subscribe(customer, e3), subscribe(customer, e3)
    theirs = factories.ScheduledChangeFactory(subscription=other, quantity=20)
    before = database_state()
    with pytest.raises(RuleViolation) as refused:
        remove_scheduled_change(subscription_id=sub.pk, actor=sales, change_id=theirs.pk, now=now)
    assert refused.value.rule == "R3"
    assert database_state() == before


@pytest.mark.rule("R2")
@pytest.mark.parametrize("role", ["support_agent", "billing_admin"])
def test_r2_only_agents_who_may_buy_schedule_changes(customer, direct_partner, e3, now, role):
    sub = subscribe(customer, e3)
    change = factories.ScheduledChangeFactory(subscription=sub, quantity=20)
    user = factories.staff(direct_partner, role)
    before = database_state()
    with pytest.raises(PermissionDenied):
        schedule(sub, user, quantity=30, now=now)
    with pytest.raises(PermissionDenied):
        remove_scheduled_change(subscription_id=sub.pk, actor=user, change_id=change.pk, now=now)
    assert database_state() == before


# N4 The renewal applies what was scheduled -------------------------------------------------------


@pytest.mark.rule("N4")
@pytest.mark.rule("R1")
def test_n4_the_renewal_applies_the_scheduled_quantity(customer, sales, e3, now):
    # given 25 licenses scheduled for the renewal of a term ending 2027-11-22
    sub = subscribe(customer, e3)
    schedule(sub, sales, quantity=25, now=now)
    # when the engine runs after the term end
    report = run_lifecycle(now=datetime(2027, 11, 23, 0, 5, tzinfo=UTC))
    # then it renewed with 25 licenses for another year, and nothing is scheduled any more
    sub.refresh_from_db()
    assert report.renewed == 1
    assert (sub.status, sub.quantity, sub.term_end, sub.renewal_pending) == (
        Status.ACTIVE,
        25,
        date(2028, 11, 22),
        False,
    )
    assert scheduled(sub) == []


# The panel through the test client --------------------------------------------------------------

url = subscription_url
detail = partial(subscription_url, "detail")
panel_text = partial(card_text, card_id="manage-renewal")


@pytest.mark.rule("R3")
def test_r3_panel_shows_the_form_with_the_renewal_values_and_when_they_take_effect(signed_in, customer, e3, now):
    sub = subscribe(customer, e3)
    factories.ScheduledChangeFactory(subscription=sub, quantity=20)
    page = signed_in.get(detail(sub))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="quantity" min="1" max="300" value="20"' in html
    assert re.search(r'<option value="P1Y" selected>1 year</option>', html)
    assert re.search(r'<option value="monthly" selected>Monthly</option>', html)
    assert panel_text(page).startswith(
        "Manage renewal Scheduled for the renewal 20 licenses (scheduled 2026-11-24 12:00 UTC) Remove"
    )
    assert f"Takes effect at the renewal on {RENEWS_AT}." in panel_text(page)


@pytest.mark.rule("R2")
def test_r2_panel_says_why_changes_cannot_be_scheduled(signed_in, customer, e3, now):
    sub = subscribe(customer, e3, auto_renew=False)
    text = panel_text(signed_in.get(detail(sub)))
    assert "Auto-renew is off: turn it on to schedule changes for the renewal." in text
    assert "Schedule for the renewal" not in text


@pytest.mark.rule("R1")
def test_r1_posting_the_form_schedules_and_redirects_with_a_message(signed_in, customer, e3, now):
    sub = subscribe(customer, e3)
    response = signed_in.post(
        url("schedule", sub), drawn(sub, {"quantity": "15", "term": "P1Y", "billing_frequency": "annual"})
    )
    assert (response.status_code, response["Location"]) == (302, detail(sub) + "#manage-renewal")
    assert sorted(scheduled(sub)) == [("billing_frequency", None, "", "annual"), ("quantity", 15, "", "")]
    page = signed_in.get(detail(sub))
    assert "Scheduled for the renewal: 15 licenses, Billed annually." in page.content.decode()
    # and the page's properties say it too, beside the term, without opening the panel
    assert re.search(
        r"<dt>Scheduled for the renewal</dt><dd>(15 licenses; Billed annually|Billed annually; 15 licenses) · "
        r'<a href="#manage-renewal" data-panel-open="panel-manage-renewal">Manage renewal</a></dd>',
        page.content.decode(),
    )


@pytest.mark.rule("R3")
def test_r3_posting_remove_deletes_the_change(signed_in, customer, e3, now):
    sub = subscribe(customer, e3)
    change = factories.ScheduledChangeFactory(subscription=sub, quantity=20)
    response = signed_in.post(url("unschedule", sub), drawn(sub, {"change": str(change.pk)}))
    assert (response.status_code, response["Location"]) == (302, detail(sub) + "#manage-renewal")
    assert scheduled(sub) == []
    # removing it again (a second tab): the state moved on
    again = signed_in.post(url("unschedule", sub), drawn(sub, {"change": str(change.pk)}))
    assert again.status_code == 409


@pytest.mark.rule("K8")
def test_k8_a_refused_schedule_rerenders_the_page_with_422_and_the_posted_values(signed_in, customer, e3, now):
    sub = subscribe(customer, e3)
    before = database_state()
    response = signed_in.post(
        url("schedule", sub), drawn(sub, {"quantity": "500", "term": "P1Y", "billing_frequency": "monthly"})
    )
    assert response.status_code == 422
    assert "Microsoft 365 E3 is sold in quantities from 1 to 300." in panel_text(response)
    assert 'value="500"' in response.content.decode()
    assert database_state() == before


@pytest.mark.rule("N6")
def test_n6_posting_while_the_renewal_is_pending_answers_409(signed_in, customer, e3, now):
    sub = subscribe(customer, e3, renewal_pending=True)
    change = factories.ScheduledChangeFactory(subscription=sub, quantity=20)
    before = database_state()
    assert signed_in.post(url("schedule", sub), drawn(sub, {"quantity": "30"})).status_code == 409
    assert signed_in.post(url("unschedule", sub), drawn(sub, {"change": str(change.pk)})).status_code == 409
    assert database_state() == before


@pytest.mark.rule("R2")
def test_r2_a_support_agent_gets_403(client, direct_partner, customer, e3, now):
    sub = subscribe(customer, e3)
    change = factories.ScheduledChangeFactory(subscription=sub, quantity=20)
    client.force_login(factories.staff(direct_partner, "support_agent"))
    before = database_state()
    assert client.post(url("schedule", sub), drawn(sub, {"quantity": "30"})).status_code == 403
    assert client.post(url("unschedule", sub), drawn(sub, {"change": str(change.pk)})).status_code == 403
    assert database_state() == before


@pytest.mark.rule("T3")
def test_t3_another_partners_subscription_answers_404(signed_in, e3, now):
    other = subscribe(factories.CustomerFactory(), e3)
    change = factories.ScheduledChangeFactory(subscription=other, quantity=20)
    before = database_state()
    assert signed_in.post(url("schedule", other), drawn(other, {"quantity": "30"})).status_code == 404
    assert signed_in.post(url("unschedule", other), drawn(other, {"change": str(change.pk)})).status_code == 404
    assert database_state() == before
