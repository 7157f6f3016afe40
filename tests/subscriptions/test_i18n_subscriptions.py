"""The subscriptions app in both languages (issue 12): its refusals, button labels, choices' labels, audit trail
values and admin labels come out in Traditional Chinese under zh-hant and in English otherwise; its records (audit
summaries) and its CSV export stay English whatever the page's language. Today is 2026-11-25 12:00 UTC.

The catalog is compiled by `make messages` (a step of `make test`); the first test says so if it is missing.
"""

import csv
import io
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import translation

from portal.errors import RuleViolation
from subscriptions import checks, services
from subscriptions.admin import SubscriptionAdmin
from subscriptions.models import AuditEntry, ScheduledChange, Subscription, audit_value, readable
from subscriptions.states import Status
from tests import factories
from tests.helpers import drawn, subscription_url

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
STARTED = NOW - timedelta(days=2)
CATALOG = Path(__file__).resolve().parents[2] / "subscriptions" / "locale" / "zh_Hant" / "LC_MESSAGES"

subscribe = partial(factories.subscribe, started=STARTED, unit_price="10.00")

EN, ZH = "en", "zh-hant"


@pytest.fixture
def e3(db):
    return factories.SkuFactory(name="Microsoft 365 E3", availabilities=[("P1Y", "monthly", "10.00")])


def refusal(check, *args) -> RuleViolation:
    with pytest.raises(RuleViolation) as refused:
        check(*args)
    return refused.value


def test_the_compiled_catalog_is_there():
    # the suite runs after `make messages`: without the .mo every Chinese assertion below would fail obscurely
    assert (CATALOG / "django.mo").is_file(), "subscriptions' catalog is not compiled: run `make messages`"


@pytest.mark.rule("P2")
@pytest.mark.parametrize(
    ("language", "expected"),
    [
        (EN, "Only a suspended subscription can be reactivated."),
        (ZH, "只有已暫停的訂用帳戶才能重新啟用。"),
    ],
)
def test_a_refusal_is_said_in_the_language(language, expected, customer, sales, e3, now):
    # given an active subscription
    sub = subscribe(customer, e3)
    # when reactivating it is asked in the language
    with translation.override(language):
        violation = refusal(checks.check_reactivate, sub, sales, now)
    # then the refusal is that language's sentence, under the same rule
    assert (violation.rule, violation.message) == ("P2", expected)


@pytest.mark.rule("Q6")
@pytest.mark.parametrize(
    ("language", "expected"),
    [
        (EN, "Licenses can only be changed on an active subscription (this one is suspended)."),
        (ZH, "只有作用中的訂用帳戶才能變更授權（此訂用帳戶目前為已暫停）。"),
    ],
)
def test_a_refusal_names_the_status_in_the_language(language, expected, customer, e3, now):
    sub = subscribe(customer, e3, suspended=True)
    with translation.override(language):
        violation = checks.quantity_refusal(sub, now)
    assert (violation.rule, violation.message) == ("Q6", expected)


@pytest.mark.rule("Q2")
@pytest.mark.parametrize(
    ("language", "removable", "expected"),
    [
        (
            EN,
            1,
            "Only 1 license can be removed now (added within the last 7 days); you asked to remove 5.",
        ),
        (
            EN,
            3,
            "Only 3 licenses can be removed now (added within the last 7 days); you asked to remove 5.",
        ),
        (ZH, 3, "目前只能移除 3 個授權（過去 7 天內新增的）；您要求移除 5 個。"),
    ],
)
def test_a_count_in_a_refusal_takes_the_languages_plural(language, removable, expected, customer, sales, e3, now):
    # given a subscription of which `removable` licenses were added within the last 7 days
    sub = subscribe(customer, e3, started=NOW - timedelta(days=30), quantity=10)
    factories.add_lot(sub, quantity=removable, added_at=NOW - timedelta(days=1))
    sub.refresh_from_db()
    with translation.override(language):
        violation = refusal(checks.check_decrease, sub, sales, now, 5)
    assert (violation.rule, violation.message) == ("Q2", expected)


@pytest.mark.parametrize(
    ("language", "labels"),
    [
        (EN, {"suspend": "Suspend", "cancel": "Cancel subscription", "manage_renewal": "Manage renewal"}),
        (ZH, {"suspend": "暫停", "cancel": "取消訂閱", "manage_renewal": "管理續約"}),
    ],
)
def test_the_command_bars_labels_are_in_the_language(language, labels, customer, sales, e3, now):
    sub = subscribe(customer, e3)
    actions = checks.allowed_actions(sub, sales, now)
    with translation.override(language):
        assert {name: str(actions[name].label) for name in labels} == labels


@pytest.mark.parametrize(
    ("language", "expected"),
    [(EN, ["Pending", "Active", "Suspended"]), (ZH, ["擱置中", "作用中", "已暫停"])],
)
def test_a_statuss_label_is_in_the_language(language, expected, customer, e3, now):
    sub = subscribe(customer, e3, suspended=True)
    with translation.override(language):
        assert [str(Status(s).label) for s in ("pending", "active")] + [sub.get_status_display()] == expected


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        (EN, [("Auto-renew", "Off"), ("Status", "Suspended"), ("Trial", "No")]),
        (ZH, [("自動續約", "關閉"), ("狀態", "已暫停"), ("試用版", "否")]),
    ],
)
def test_the_audit_trail_reads_its_values_in_the_language(language, expected):
    # given values as a service records them (machine values: the JSON is the same in every language)
    recorded = {"is_trial": False, "status": "suspended", "auto_renew": False}
    with translation.override(language):
        assert readable(recorded) == expected
        assert audit_value("friendly_name", "") == ("none" if language == EN else "無")


@pytest.mark.parametrize(
    ("language", "expected"),
    [(EN, ["3 licenses", "1 license", "Billed annually"]), (ZH, ["3 個授權", "1 個授權", "每年計費"])],
)
def test_a_scheduled_changes_summary_is_in_the_language(language, expected, customer, e3, now):
    sub = subscribe(customer, e3)
    changes = [
        ScheduledChange(subscription=sub, kind=ScheduledChange.Kind.QUANTITY, quantity=3, created_at=NOW),
        ScheduledChange(subscription=sub, kind=ScheduledChange.Kind.QUANTITY, quantity=1, created_at=NOW),
        ScheduledChange(
            subscription=sub, kind=ScheduledChange.Kind.BILLING_FREQUENCY, billing_frequency="annual", created_at=NOW
        ),
    ]
    with translation.override(language):
        assert [c.summary for c in changes] == expected


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        (EN, ("subscription", "subscriptions", "friendly name", "Suspend selected subscriptions")),
        (ZH, ("訂用帳戶", "訂用帳戶", "易記名稱", "暫停所選的訂用帳戶")),
    ],
)
def test_the_admins_labels_are_in_the_language(language, expected):
    meta = Subscription._meta
    with translation.override(language):
        assert (
            str(meta.verbose_name),
            str(meta.verbose_name_plural),
            str(meta.get_field("friendly_name").verbose_name),
            str(SubscriptionAdmin.suspend_selected.short_description),
        ) == expected


@pytest.mark.rule("P1")
@pytest.mark.parametrize(
    ("accept_language", "expected"),
    [
        ("en", "Suspended: the customer's access is blocked now. Billing continues; auto-renew is off."),
        ("zh-TW", "已暫停：客戶的存取權現已封鎖。計費會繼續；自動續約已關閉。"),
    ],
)
def test_a_success_message_follows_the_browsers_language_and_the_record_stays_english(
    accept_language, expected, signed_in, customer, e3
):
    # given an active subscription with a change scheduled for its renewal
    sub = subscribe(customer, e3)
    ScheduledChange.objects.create(subscription=sub, kind=ScheduledChange.Kind.QUANTITY, quantity=3, created_at=NOW)
    # when the partner suspends it from a browser in that language
    response = signed_in.post(subscription_url("suspend", sub), drawn(sub), HTTP_ACCEPT_LANGUAGE=accept_language)
    assert response.status_code == 302
    # then the message it reads is in its language
    messages = [str(m) for m in response.wsgi_request._messages]
    assert messages == [expected]
    # and the audit trail's record of it is English, as the lifecycle engine's are
    assert AuditEntry.objects.get(subscription=sub).summary == (
        "Suspended; auto-renew turned off; 1 scheduled change(s) removed"
    )


def test_a_trial_conversions_record_stays_english_when_scheduled_in_chinese(customer, sales, now):
    # given a trial with auto-renew on
    paid = factories.SkuFactory(name="Microsoft 365 E3", availabilities=[("P1Y", "monthly", "36.00")])
    trial = factories.start_trial(customer, factories.trial_offer(trial_of=paid), started=NOW - timedelta(days=5))
    # when its conversion is scheduled from a Chinese page
    with translation.override(ZH):
        services.schedule_trial_conversion(
            subscription_id=trial.pk,
            actor=sales,
            target_sku_id=paid.pk,
            term="P1Y",
            billing_frequency="monthly",
            quantity=10,
            now=now,
        )
    # then the audit row says it in English
    summary = AuditEntry.objects.get(subscription=trial, action="subscription.trial_conversion_scheduled").summary
    assert summary.startswith("At the trial's end: from ") and "it becomes Microsoft 365 E3 with 10 licenses" in summary


@pytest.mark.rule("S5")
def test_the_export_is_partner_centers_english_whatever_the_pages_language(signed_in, customer, e3):
    # given a suspended subscription
    sub = subscribe(customer, e3, suspended=True, quantity=7)
    # when it is exported from a Chinese browser
    response = signed_in.get(
        reverse("subscriptions:subscription-export", args=[customer.pk]), HTTP_ACCEPT_LANGUAGE="zh-TW"
    )
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    # then its column names and values are the English ones Partner Center's export has
    assert rows == [
        ["Subscription ID", "Subscription name", "Quantity", "Status", "Billing term", "Promotion", "Reseller"],
        [str(sub.pk), "Microsoft 365 E3", "7", "Suspended", "1 year, billed monthly", "None", ""],
    ]
