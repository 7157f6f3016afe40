"""Trial conversions (TR2–TR8, R4, R6, N6): the targets, converting now, scheduling for the trial's end,
and the "Convert trial" page. Time is frozen at 2026-11-25 12:00 UTC (the `now` fixture)."""

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import partial

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from catalog.models import UpgradePath
from portal.errors import RuleViolation
from subscriptions import services
from subscriptions.dates import term_end_for
from subscriptions.lifecycle import run_lifecycle
from subscriptions.models import AuditEntry, ScheduledChange, Subscription
from subscriptions.services import conversions
from subscriptions.states import Status
from tests import factories
from tests.helpers import database_state, drawn

UTC = UTC


@pytest.fixture
def e3(db):
    return factories.SkuFactory(
        name="Microsoft 365 E3",
        availabilities=[("P1Y", "monthly", "10.00"), ("P1Y", "annual", "110.00"), ("P1M", "monthly", "12.00")],
    )


@pytest.fixture
def e5(e3):
    sku = factories.SkuFactory(
        name="Microsoft 365 E5", availabilities=[("P1Y", "monthly", "20.00"), ("P1Y", "annual", "220.00")]
    )
    UpgradePath.objects.create(source=e3, target=sku)
    return sku


@pytest.fixture
def trial_sku(e3):
    return factories.trial_offer(trial_of=e3)


# A one-month trial of 25 licenses from 2026-11-10, ending (inclusive) on 2026-12-09.
make_trial = partial(factories.start_trial, started=datetime(2026, 11, 10, tzinfo=UTC))


@pytest.fixture
def trial(trial_sku, customer, now):
    return make_trial(customer, trial_sku)


def convert(trial, actor, now, **kwargs):
    kwargs.setdefault("target_sku_id", trial.sku.trial_of_id)
    kwargs.setdefault("quantity", 25)
    return conversions.convert_trial_now(subscription_id=trial.pk, actor=actor, now=now, **kwargs)


# --- Targets ---------------------------------------------------------------------------------------------------


@pytest.mark.rule("TR3")
@pytest.mark.rule("TR5")
def test_tr3_tr5_targets_are_the_paid_sku_higher_skus_and_existing_subscriptions_with_the_reason(
    trial, e3, e5, customer, now
):
    # given an E3 subscription ending 2027-10-31 and another ending 2026-11-30, before the trial's end
    lasting = factories.subscribe(customer, e3, started=datetime(2026, 11, 1, tzinfo=UTC))
    short = factories.subscribe(customer, e3, started=datetime(2025, 12, 1, tzinfo=UTC))
    # when the targets are listed
    targets = conversions.conversion_targets(trial)
    # then
    assert [(t.sku, t.subscription, t.higher, t.allowed) for t in targets] == [
        (e3, None, False, True),
        (e5, None, True, True),
        (e3, short, False, False),
        (e3, lasting, False, True),
    ]
    assert targets[2].reason == (
        "It ends on 2026-11-30, before the trial's end on 2026-12-09: a trial can only be "
        "converted into a subscription that ends on or after the trial's end date."
    )


@pytest.mark.rule("TR3")
@pytest.mark.rule("U2")
def test_tr3_the_higher_skus_are_the_upgrade_matrixs_supported_paths_as_an_upgrade_reads_them(
    trial, e3, e5, customer, sales, now
):
    # given E3's matrix: E5 supported, an unsupported path (U2: never offered or accepted), and a path to a trial
    unsupported = factories.SkuFactory(name="EMS E5", availabilities=[("P1Y", "monthly", "15.00")])
    UpgradePath.objects.create(source=e3, target=unsupported, supported=False)
    to_trial = factories.trial_offer(name="Microsoft 365 E5 Trial")
    UpgradePath.objects.create(source=e3, target=to_trial)
    paid = factories.subscribe(customer, e3, started=datetime(2026, 11, 1, tzinfo=UTC))
    # when the trial's targets and an E3 subscription's upgrades are listed
    higher = [t.sku for t in conversions.conversion_targets(trial) if t.higher and t.subscription is None]
    upgrades = [t.sku for t in services.upgrade_targets(paid, now=now)]
    # then the trial converts to a higher SKU exactly where an upgrade goes: E5 only
    assert higher == upgrades == [e5]
    # and converting to either other target is refused, changing nothing
    before = database_state()
    for target in (unsupported, to_trial):
        with pytest.raises(RuleViolation) as refused:
            convert(trial, sales, now, target_sku_id=target.pk)
        assert refused.value.rule == "TR3"
    assert database_state() == before


# --- Converting now --------------------------------------------------------------------------------------------


@pytest.mark.rule("TR2")
@pytest.mark.rule("TR7")
def test_tr2_converting_now_defaults_to_an_annual_term_billed_monthly_in_a_new_subscription(trial, e3, sales, now):
    # when the trial is converted now with the defaults and 30 licenses
    result = convert(trial, sales, now, quantity=30)
    # then a new P1Y monthly subscription starts now, with its lot and first month's charge; the trial ended
    paid = result.subscription
    trial.refresh_from_db()
    assert paid.pk != trial.pk
    assert (
        paid.sku,
        paid.status,
        paid.quantity,
        paid.term,
        paid.billing_frequency,
        paid.unit_price,
        paid.is_trial,
    ) == (e3, Status.ACTIVE, 30, "P1Y", "monthly", Decimal("10.00"), False)
    assert (paid.term_start, paid.term_end) == (now, term_end_for(date(2026, 11, 25), 12))
    assert list(paid.seat_lots.values_list("source", "quantity", "window_ends_at")) == [
        ("purchase", 30, now + timedelta(hours=168))
    ]
    assert list(paid.billing_lines.values_list("kind", "amount", "quantity", "period_start")) == [
        ("purchase", Decimal("300.00"), 30, date(2026, 11, 25))
    ]
    assert (trial.status, trial.is_trial, trial.auto_renew) == (Status.EXPIRED, True, False)
    assert AuditEntry.objects.filter(subscription=trial, action="subscription.trial_converted").count() == 1


@pytest.mark.rule("TR2")
def test_tr2_term_and_billing_frequency_can_be_changed(trial, e3, sales, now):
    # when converted now billed annually
    paid = convert(trial, sales, now, billing_frequency="annual").subscription
    # then it is sold at the annual price, charged for the year
    assert (paid.term, paid.billing_frequency, paid.unit_price) == ("P1Y", "annual", Decimal("110.00"))
    assert list(paid.billing_lines.values_list("amount", flat=True)) == [Decimal("2750.00")]


@pytest.mark.rule("TR2")
def test_tr2_a_term_the_target_is_not_sold_for_is_refused(trial, e3, sales, now):
    before = database_state()
    with pytest.raises(RuleViolation) as refused:
        convert(trial, sales, now, term="P3Y")
    assert (refused.value.rule, refused.value.status) == ("TR2", 422)
    assert refused.value.message == "Microsoft 365 E3 is not sold for a 3 years term billed monthly."
    assert database_state() == before


@pytest.mark.rule("TR7")
def test_tr7_fewer_than_25_licenses_now_is_refused_and_nothing_changes(trial, e3, sales, now):
    before = database_state()
    with pytest.raises(RuleViolation) as refused:
        convert(trial, sales, now, quantity=24)
    assert (refused.value.rule, refused.value.status, refused.value.field) == ("TR7", 422, "quantity")
    assert database_state() == before


@pytest.mark.rule("TR3")
def test_tr3_converting_now_to_a_higher_sku(trial, e5, sales, now):
    paid = convert(trial, sales, now, target_sku_id=e5.pk).subscription
    assert (paid.sku, paid.quantity, paid.unit_price) == (e5, 25, Decimal("20.00"))


@pytest.mark.rule("TR3")
def test_tr3_an_sku_that_is_not_a_target_is_refused(trial, sales, now):
    other = factories.SkuFactory(name="Visio Plan 2")
    before = database_state()
    with pytest.raises(RuleViolation) as refused:
        convert(trial, sales, now, target_sku_id=other.pk)
    assert refused.value.rule == "TR3"
    assert database_state() == before


@pytest.mark.rule("TR6")
def test_tr6_no_promotion_applies_to_the_converted_trial(trial_sku, customer, e3, sales, now):
    # given a trial that carried a promotion id
    trial = make_trial(customer, trial_sku, promotion_id="39NFJQT1Q5KP")
    # when converted now
    paid = convert(trial, sales, now).subscription
    # then the paid subscription has none, at the list price
    assert (paid.promotion_id, paid.unit_price) == ("", Decimal("10.00"))


@pytest.mark.rule("TR7")
@pytest.mark.rule("TR3")
def test_tr7_into_an_existing_subscription_adds_25_licenses_and_keeps_its_term(trial, e3, customer, sales, now):
    # given an E3 subscription of 10 licenses, P1Y billed monthly, 2026-11-01 to 2027-10-31
    target = factories.subscribe(customer, e3, started=datetime(2026, 11, 1, tzinfo=UTC))
    # when the trial is converted into it now
    result = convert(trial, sales, now, target_sku_id=None, into_subscription_id=target.pk, quantity=None)
    # then 25 licenses are added, charged for 6 of the period's 30 days; its term and frequency stay
    target.refresh_from_db()
    trial.refresh_from_db()
    assert result.subscription == target
    assert (target.quantity, target.term, target.billing_frequency, target.term_end) == (
        35,
        "P1Y",
        "monthly",
        date(2027, 10, 31),
    )
    assert list(
        target.billing_lines.filter(kind="increase").values_list("amount", "quantity", "period_start", "period_end")
    ) == [(Decimal("50.00"), 25, date(2026, 11, 25), date(2026, 11, 30))]
    assert target.seat_lots.filter(source="increase", quantity=25, added_at=now).count() == 1
    assert trial.status == Status.EXPIRED
    assert Subscription.objects.count() == 2


@pytest.mark.rule("TR5")
def test_tr5_into_a_subscription_ending_before_the_trial_is_refused_with_the_reason(trial, e3, customer, sales, now):
    # given an E3 subscription ending 2026-11-30, before the trial's end on 2026-12-09
    short = factories.subscribe(customer, e3, started=datetime(2025, 12, 1, tzinfo=UTC))
    before = database_state()
    # when the trial is converted into it
    with pytest.raises(RuleViolation) as refused:
        convert(trial, sales, now, target_sku_id=None, into_subscription_id=short.pk, quantity=None)
    # then refused with the dates, nothing changed
    assert (refused.value.rule, refused.value.status) == ("TR5", 422)
    assert "It ends on 2026-11-30, before the trial's end on 2026-12-09" in refused.value.message
    assert database_state() == before


@pytest.mark.rule("R6")
def test_r6_converting_now_deletes_the_scheduled_conversion(trial, e3, sales, now):
    conversions.schedule_trial_conversion(
        subscription_id=trial.pk,
        actor=sales,
        target_sku_id=e3.pk,
        term="P1Y",
        billing_frequency="monthly",
        quantity=5,
        now=now,
    )
    convert(trial, sales, now)
    assert not ScheduledChange.objects.filter(subscription=trial).exists()


@pytest.mark.rule("N6")
def test_n6_a_trial_whose_renewal_is_pending_answers_409(trial, sales, now):
    Subscription.objects.filter(pk=trial.pk).update(renewal_pending=True)
    before = database_state()
    with pytest.raises(RuleViolation) as refused:
        convert(trial, sales, now)
    assert (refused.value.rule, refused.value.status) == ("N6", 409)
    assert database_state() == before


@pytest.mark.rule("TR3")
def test_tr3_only_an_active_trial_converts(trial, e3, customer, sales, now):
    paid = factories.subscribe(customer, e3, started=datetime(2026, 11, 1, tzinfo=UTC))
    with pytest.raises(RuleViolation) as refused:
        convert(paid, sales, now, target_sku_id=e3.pk)
    assert refused.value.rule == "TR3"
    convert(trial, sales, now)
    with pytest.raises(RuleViolation) as again:
        convert(trial, sales, now)
    assert (again.value.rule, again.value.status) == ("TR3", 409)


@pytest.mark.rule("T2")
def test_t2_a_support_agent_cannot_convert_or_schedule(trial, e3, direct_partner, now):
    support = factories.staff(direct_partner, "support_agent")
    before = database_state()
    with pytest.raises(PermissionDenied):
        convert(trial, support, now)
    with pytest.raises(PermissionDenied):
        conversions.schedule_trial_conversion(
            subscription_id=trial.pk,
            actor=support,
            target_sku_id=e3.pk,
            term="P1Y",
            billing_frequency="monthly",
            quantity=25,
            now=now,
        )
    assert database_state() == before


# --- Scheduled for the trial's end -----------------------------------------------------------------------------


@pytest.mark.rule("TR8")
def test_tr8_a_scheduled_conversion_may_use_fewer_than_25_licenses_and_replaces_earlier_ones(trial, e3, e5, sales, now):
    conversions.schedule_trial_conversion(
        subscription_id=trial.pk,
        actor=sales,
        target_sku_id=e3.pk,
        term="P1Y",
        billing_frequency="monthly",
        quantity=20,
        now=now,
    )
    conversions.schedule_trial_conversion(
        subscription_id=trial.pk,
        actor=sales,
        target_sku_id=e5.pk,
        term="P1Y",
        billing_frequency="annual",
        quantity=8,
        now=now,
    )
    assert sorted(
        trial.scheduled_changes.values_list("kind", "target_sku", "quantity", "term", "billing_frequency")
    ) == [
        ("billing_frequency", None, None, "", "annual"),
        ("quantity", None, 8, "", ""),
        ("term", None, None, "P1Y", ""),
        ("upgrade", e5.pk, None, "", ""),
    ]
    trial.refresh_from_db()
    assert (trial.status, trial.is_trial, trial.quantity) == (Status.ACTIVE, True, 25)


@pytest.mark.rule("TR8")
def test_tr8_scheduling_needs_auto_renew_on(trial_sku, customer, e3, sales, now):
    trial = make_trial(customer, trial_sku, auto_renew=False)
    before = database_state()
    with pytest.raises(RuleViolation) as refused:
        conversions.schedule_trial_conversion(
            subscription_id=trial.pk,
            actor=sales,
            target_sku_id=e3.pk,
            term="P1Y",
            billing_frequency="monthly",
            quantity=8,
            now=now,
        )
    assert (refused.value.rule, refused.value.status) == ("TR8", 422)
    assert database_state() == before


@pytest.mark.rule("TR8")
@pytest.mark.rule("R4")
def test_r4_tr8_the_scheduled_conversion_is_applied_by_the_engine_at_the_trials_end(trial, e5, sales, now):
    # given a conversion to E5 with 8 licenses billed annually, scheduled for the trial's end
    conversions.schedule_trial_conversion(
        subscription_id=trial.pk,
        actor=sales,
        target_sku_id=e5.pk,
        term="P1Y",
        billing_frequency="annual",
        quantity=8,
        now=now,
    )
    end = datetime(2026, 12, 10, 0, 0, tzinfo=UTC)
    # when the engine runs at the trial's end
    report = run_lifecycle(end)
    # then the trial is E5, 8 licenses, P1Y annual, charged for the year; nothing stays scheduled
    trial.refresh_from_db()
    assert report.trials_converted == 1
    assert (trial.sku, trial.is_trial, trial.quantity, trial.term, trial.billing_frequency, trial.unit_price) == (
        e5,
        False,
        8,
        "P1Y",
        "annual",
        Decimal("220.00"),
    )
    assert (trial.term_start, trial.term_end, trial.promotion_id) == (end, date(2027, 12, 9), "")
    assert list(trial.billing_lines.values_list("amount", flat=True)) == [Decimal("1760.00")]
    assert not trial.scheduled_changes.exists()


@pytest.mark.rule("R4")
def test_r4_without_a_scheduled_conversion_the_trial_converts_to_the_equivalent_paid_sku(trial, e3, e5, now):
    run_lifecycle(datetime(2026, 12, 10, 0, 0, tzinfo=UTC))
    trial.refresh_from_db()
    assert (trial.sku, trial.quantity, trial.term, trial.billing_frequency) == (e3, 25, "P1Y", "monthly")


# --- The page --------------------------------------------------------------------------------------------------


def url(subscription):
    return reverse("subscriptions:subscription-convert", args=[subscription.customer_id, subscription.pk])


def test_the_page_lists_the_targets_with_defaults_and_the_detail_page_links_to_it(signed_in, trial, e3, e5, customer):
    short = factories.subscribe(customer, e3, started=datetime(2025, 12, 1, tzinfo=UTC))
    response = signed_in.get(url(trial))
    assert response.status_code == 200
    html = response.content.decode()
    assert f'value="sku-{e3.pk}"' in html and f'value="sku-{e5.pk}"' in html
    assert f'value="sub-{short.pk}"' in html and "before the trial&#x27;s end on 2026-12-09" in html
    assert '<option value="P1Y" selected>' in html and '<option value="monthly" selected>' in html
    assert 'name="quantity" min="1" value="25"' in html
    detail = signed_in.get(reverse("subscriptions:subscription-detail", args=[customer.pk, trial.pk]))
    assert url(trial) in detail.content.decode()


def test_the_preview_button_posts_so_no_csrf_token_lands_in_a_url_and_it_changes_nothing(signed_in, trial, e3):
    html = signed_in.get(url(trial)).content.decode()
    preview = re.search(r"<button[^>]*>Preview</button>", html).group(0)
    assert "formmethod" not in preview and 'name="preview"' in preview
    before = database_state()
    response = signed_in.post(
        url(trial),
        {**drawn(trial), "preview": "1", "target": f"sku-{e3.pk}", "when": "now", "term": "P1Y",
         "billing_frequency": "monthly", "quantity": "30"},
    )  # fmt: skip
    assert response.status_code == 200
    assert "Now: a new Microsoft 365 E3 subscription with 30 licenses" in response.content.decode()
    assert database_state() == before


@pytest.mark.rule("TR3")
def test_a_paid_subscriptions_conversion_url_is_no_page_and_changes_nothing(signed_in, customer, e3, e5):
    paid = factories.subscribe(customer, e3, started=datetime(2026, 11, 1, tzinfo=UTC))
    before = database_state()
    assert signed_in.get(url(paid)).status_code == 404
    assert signed_in.get(url(paid), {"target": f"sku-{e5.pk}", "when": "now"}).status_code == 404
    assert signed_in.post(url(paid), {**drawn(paid), "target": f"sku-{e5.pk}", "when": "now"}).status_code == 404
    assert database_state() == before


def test_the_preview_says_what_will_happen_and_changes_nothing(signed_in, trial, e3):
    before = database_state()
    response = signed_in.get(
        url(trial),
        {"target": f"sku-{e3.pk}", "when": "now", "term": "P1Y", "billing_frequency": "monthly", "quantity": "30"},
    )
    assert response.status_code == 200
    assert (
        "Now: a new Microsoft 365 E3 subscription with 30 licenses, 1 year billed monthly at 10.00 USD per "
        "license, from 2026-11-25 to"
    ) in response.content.decode()
    assert database_state() == before


@pytest.mark.rule("TR7")
def test_post_converts_and_redirects_to_the_paid_subscription(signed_in, trial, e3):
    response = signed_in.post(
        url(trial),
        drawn(
            trial,
            {"target": f"sku-{e3.pk}", "when": "now", "term": "P1Y", "billing_frequency": "monthly", "quantity": "25"},
        ),
    )
    paid = Subscription.objects.get(sku=e3)
    assert response.status_code == 302
    assert response["Location"] == reverse("subscriptions:subscription-detail", args=[trial.customer_id, paid.pk])


@pytest.mark.rule("TR8")
def test_post_schedules_and_redirects_to_the_trial(signed_in, trial, e3):
    response = signed_in.post(
        url(trial),
        drawn(
            trial,
            {
                "target": f"sku-{e3.pk}",
                "when": "scheduled",
                "term": "P1Y",
                "billing_frequency": "monthly",
                "quantity": "5",
            },
        ),
    )
    assert response.status_code == 302
    assert trial.scheduled_changes.get(kind="quantity").quantity == 5


@pytest.mark.rule("TR7")
def test_post_with_fewer_than_25_now_answers_422_with_the_reason(signed_in, trial, e3):
    before = database_state()
    response = signed_in.post(
        url(trial),
        drawn(
            trial,
            {"target": f"sku-{e3.pk}", "when": "now", "term": "P1Y", "billing_frequency": "monthly", "quantity": "10"},
        ),
    )
    assert response.status_code == 422
    assert "Converting now needs at least 25 licenses" in response.content.decode()
    assert database_state() == before


@pytest.mark.rule("TR8")
def test_tr8_the_panel_shows_the_services_verdict_on_scheduling(signed_in, trial_sku, customer, e3, sales, now):
    # given a trial with auto-renew off
    trial = make_trial(customer, trial_sku, auto_renew=False)
    # when the panel is drawn, then "At the trial's end" is disabled with the sentence the service refuses with
    html = signed_in.get(url(trial)).content.decode()
    with pytest.raises(RuleViolation) as refused:
        conversions.plan_conversion(trial, user=sales, now=now, target_sku_id=e3.pk, scheduled=True, quantity=8)
    assert refused.value.message == "Auto-renew is off: turn it on to schedule the conversion for the trial's end."
    assert '<input type="radio" name="when" value="scheduled"  disabled>' in html
    assert (
        '<p class="why">Auto-renew is off: turn it on to schedule the conversion for the trial&#x27;s end.</p>' in html
    )
    # and with auto-renew on, both choices are offered, "Now" chosen
    trial.auto_renew = True
    trial.save()
    html = signed_in.get(url(trial)).content.decode()
    assert '<input type="radio" name="when" value="now" checked >' in html
    assert '<input type="radio" name="when" value="scheduled"  >' in html
    assert "Auto-renew is off" not in html


@pytest.mark.rule("TR3")
def test_tr3_scheduling_a_conversion_into_an_existing_subscription_is_refused_by_the_service(
    signed_in, trial, e3, customer, sales, now
):
    # given an existing E3 subscription that could take the trial's licenses now
    into = factories.subscribe(customer, e3, started=datetime(2026, 11, 1, tzinfo=UTC))
    before = database_state()
    # when a conversion into it is scheduled for the trial's end (the service, then the panel's post)
    with pytest.raises(RuleViolation) as refused:
        conversions.schedule_trial_conversion(
            subscription_id=trial.pk,
            actor=sales,
            target_sku_id=None,
            term="P1Y",
            billing_frequency="monthly",
            quantity=None,
            into_subscription_id=into.pk,
            now=now,
        )
    response = signed_in.post(
        url(trial),
        drawn(trial, {"target": f"sub-{into.pk}", "when": "scheduled", "term": "P1Y", "billing_frequency": "monthly"}),
    )
    # then both are refused with TR3's sentence, and nothing changed
    assert (refused.value.rule, refused.value.message) == (
        "TR3",
        'Converting into an existing subscription happens now: choose "Now".',
    )
    assert response.status_code == 422
    assert "Converting into an existing subscription happens now: choose &quot;Now&quot;." in response.content.decode()
    assert database_state() == before


@pytest.mark.rule("TR3")
@pytest.mark.parametrize(
    "tampered",
    [
        {"target": "sub-abc", "when": "now"},
        {"target": "sub-", "when": "now"},
        {"target": "sku-x", "when": "now"},
        {"when": "bogus"},
    ],
)
def test_tampered_post_answers_422_and_changes_nothing(signed_in, trial, e3, tampered):
    before = database_state()
    data = {"target": f"sku-{e3.pk}", "term": "P1Y", "billing_frequency": "monthly", "quantity": "25", **tampered}
    response = signed_in.post(url(trial), drawn(trial, data))
    assert response.status_code == 422
    assert database_state() == before


def test_post_on_a_trial_already_converted_answers_409(signed_in, trial, e3, sales, now):
    convert(trial, sales, now)
    response = signed_in.post(url(trial), drawn(trial, {"target": f"sku-{e3.pk}", "when": "now", "quantity": "25"}))
    assert response.status_code == 409


@pytest.mark.rule("T2")
def test_t2_a_support_agent_sees_the_page_but_a_post_answers_403(client, direct_partner, trial, e3):
    client.force_login(factories.staff(direct_partner, "support_agent"))
    before = database_state()
    assert client.get(url(trial)).status_code == 200
    response = client.post(url(trial), drawn(trial, {"target": f"sku-{e3.pk}", "when": "now", "quantity": "25"}))
    assert response.status_code == 403
    assert database_state() == before


@pytest.mark.rule("T3")
def test_t3_another_partners_trial_answers_404(signed_in, trial_sku, e3, now):
    theirs = make_trial(factories.CustomerFactory(), trial_sku)
    before = database_state()
    assert signed_in.get(url(theirs)).status_code == 404
    assert (
        signed_in.post(
            url(theirs), drawn(theirs, {"target": f"sku-{e3.pk}", "when": "now", "quantity": "25"})
        ).status_code
        == 404
    )
    assert database_state() == before
