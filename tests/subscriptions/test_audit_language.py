"""The audit trail's "What" in the reader's language (issue 12, L1).

A summary is stored twice: its English sentence (`AuditEntry.summary`, what the API and the webhooks send, in
Partner Center's English) and the message it was said from (`summary_message`), which the pages say in the
reader's language. Today is 2026-11-25 12:00 UTC; the subscriptions were bought 2026-11-23 12:00 UTC.
"""

import ast
import json
import re
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import partial
from html import unescape
from pathlib import Path

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone, translation

from catalog.models import Order, Term, UpgradePath
from portal.customers import add_customer
from portal.errors import RuleViolation
from portal.models import Customer, Membership
from subscriptions import audit, services, transfers
from subscriptions.lifecycle import run_lifecycle
from subscriptions.models import (
    AUDIT_LABELS,
    AuditEntry,
    RelationshipRequest,
    ScheduledChange,
    TransferRequest,
    audit_label,
    readable,
)
from subscriptions.said import Joined, Said, from_json, label, listed, said
from subscriptions.services import fulfill_order
from subscriptions.states import Status
from tests import factories
from tests.helpers import buy, count_queries, drawn, subscription_url

# The messages below are the product's msgids, written plainly (not marked): a test adds nothing to a catalog.

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
ZH = "zh-hant"
ROOT = Path(__file__).resolve().parents[2]

subscribe = partial(factories.subscribe, started=datetime(2026, 11, 23, 12, 0, tzinfo=UTC), unit_price="10.00")


@pytest.fixture
def e3(db):
    return factories.SkuFactory(
        name="Microsoft 365 E3",
        min_quantity=1,
        max_quantity=300,
        availabilities=[("P1Y", "monthly", "10.00"), ("P1Y", "annual", "114.00"), ("P1M", "monthly", "12.00")],
    )


def latest(sub, action: str) -> AuditEntry:
    return AuditEntry.objects.filter(subscription=sub, action=action).latest("at", "pk")


def said_in_chinese(entry: AuditEntry) -> str:
    """The entry as a page in Traditional Chinese says it (read back from the database, as the pages read it)."""
    entry = AuditEntry.objects.get(pk=entry.pk)
    with translation.override(ZH):
        return entry.summary_text


def in_chinese(language_of_the_actor=ZH):
    """Each service below runs in the actor's language (Chinese): the stored English must not depend on it."""
    return translation.override(language_of_the_actor)


# --- The message and its values ---------------------------------------------------------------------------------


def test_a_message_is_said_in_the_active_language_with_its_values():
    # given a message whose values are a number, a name, a label and a plural message
    message = said(
        "Scheduled for the renewal: %(changes)s",
        changes=listed(
            [
                Said("%(count)s license", {"count": 12}, plural="%(count)s licenses", count="count"),
                said("Term %(term)s", term=label(Term.P1M.label)),
                said("Upgrade to %(offer)s", offer="Microsoft 365 E5"),
            ]
        ),
    )
    # then it says itself in English and in Chinese, the list with each language's separator
    with translation.override("en"):
        assert str(message) == "Scheduled for the renewal: 12 licenses, Term 1 month, Upgrade to Microsoft 365 E5"
    with translation.override(ZH):
        assert str(message) == "已為續約排定：12 個授權、期限 1 個月、升級至 Microsoft 365 E5"


def test_a_message_is_kept_as_json_and_read_back_the_same():
    # given a sequence of messages with a context, a plural and a nested list
    message = said("Renewed from %(start)s to %(end)s", start=date(2026, 11, 23), end="2027-11-22") + (
        said("; applied: %(changes)s", changes=listed([Said("annually", context="billed"), "E5"]))
    )
    # when it is stored as JSON and read back
    stored = json.loads(json.dumps(message.as_json()))
    # then it is the same message, said the same way
    assert from_json(stored) == message
    with translation.override(ZH):
        assert str(from_json(stored)) == "已續約，期間 2026-11-23 至 2027-11-22；已套用：每年、E5"


@pytest.mark.parametrize("value", [True, None, datetime(2026, 11, 25, tzinfo=UTC), Term.P1M.label, 1.5], ids=repr)
def test_a_value_that_cannot_be_kept_as_it_reads_is_refused_where_it_is_written(value):
    # a bool, a moment without its format, a lazy translation (its msgid is not public) or a float
    with pytest.raises(TypeError):
        said("Renamed to %(name)s", name=value)


def test_a_translation_that_does_not_format_falls_back_to_the_english_message(monkeypatch):
    # given a catalog whose translation names a placeholder its msgid has not
    monkeypatch.setattr("subscriptions.said.gettext", lambda message: "已重新命名為 %(typo)s")
    # then the message is said as it was written, not an error
    assert str(said("Renamed to %(name)s", name="Sales")) == "Renamed to Sales"


# --- What a row shows -------------------------------------------------------------------------------------------


def test_an_old_row_without_a_message_shows_its_english_summary(customer, direct_partner):
    # given a row written before the messages were kept (a plain sentence)
    entry = AuditEntry.objects.create(
        at=NOW, partner=direct_partner, customer=customer, action="subscription.renamed", summary="Renamed to Sales"
    )
    # then every language reads its English
    assert said_in_chinese(entry) == "Renamed to Sales"
    assert entry.summary_message is None


@pytest.mark.parametrize(
    "stored",
    [
        {"m": "Renamed to %(name)s"},  # a value missing
        {"m": "Renamed to %(name)s", "v": {"name": {"x": 1}}},  # a value this code does not read
        {"m": ["not", "a", "message"]},
        {"seq": "nothing"},
        {"m": "%(count)s license", "p": "%(count)s licenses", "n": "count"},  # no number for its plural
        ["a", "list"],
        "a sentence",
    ],
    ids=repr,
)
def test_a_broken_message_shows_the_english_summary_and_never_an_error(stored, customer, direct_partner):
    entry = AuditEntry.objects.create(
        at=NOW,
        partner=direct_partner,
        customer=customer,
        action="subscription.renamed",
        summary="Renamed to Sales",
        summary_message=stored,
    )
    assert said_in_chinese(entry) == "Renamed to Sales"


# --- The services' summaries: the same English as before, and said in Chinese -----------------------------------


@pytest.mark.rule("Q1")
@pytest.mark.parametrize(
    ("quantity", "english", "chinese"),
    [
        (12, "Quantity 10 → 12 (charge {} USD)", "數量 10 → 12（扣款 {} USD）"),
        (8, "Quantity 10 → 8 (refund {} USD)", "數量 10 → 8（退款 {} USD）"),
    ],
)
def test_a_quantity_change_is_recorded_in_english_and_read_in_chinese(
    quantity, english, chinese, customer, sales, e3, now
):
    # given an active subscription of 10 licenses with a change scheduled for its renewal
    sub = subscribe(customer, e3)
    ScheduledChange.objects.create(subscription=sub, kind=ScheduledChange.Kind.TERM, term="P1M", created_at=now)
    # when its quantity changes, by an agent whose page is in Chinese
    with in_chinese():
        plan = services.change_quantity(subscription_id=sub.pk, actor=sales, quantity=quantity, now=now)
    # then the record is the English sentence it always was, and the Chinese page reads it in Chinese
    entry = latest(sub, "subscription.quantity_changed")
    amount = abs(plan.amount)
    assert entry.summary == english.format(amount) + "; 1 scheduled renewal change(s) deleted"
    assert said_in_chinese(entry) == chinese.format(amount) + "；已刪除 1 個排定的續約變更"


@pytest.mark.parametrize(
    ("on", "english", "chinese"),
    [
        (False, "Auto-renew turned off; 1 scheduled change(s) deleted", "已關閉自動續約；已刪除 1 個排定的變更"),
        (True, "Auto-renew turned on", "已開啟自動續約"),
    ],
)
def test_auto_renew_on_and_off_are_recorded_in_english_and_read_in_chinese(
    on, english, chinese, customer, sales, e3, now
):
    sub = subscribe(customer, e3, auto_renew=not on)
    ScheduledChange.objects.create(subscription=sub, kind=ScheduledChange.Kind.QUANTITY, quantity=3, created_at=now)
    with in_chinese():
        services.set_auto_renew(subscription_id=sub.pk, actor=sales, on=on, now=now)
    entry = latest(sub, "subscription.auto_renew_changed")
    assert (entry.summary, said_in_chinese(entry)) == (english, chinese)


@pytest.mark.rule("P1")
def test_a_suspension_and_its_add_on_are_recorded_in_english_and_read_in_chinese(customer, sales, e3, now):
    # given a subscription with an active add-on
    sub = subscribe(customer, e3, friendly_name="Sales")
    addon = subscribe(customer, factories.SkuFactory(is_addon=True), base_subscription=sub)
    # when it is suspended
    with in_chinese():
        services.suspend_subscription(subscription_id=sub.pk, actor=sales, now=now)
    # then both records read in Chinese, the base named as it is
    entry, addons = latest(sub, "subscription.suspended"), latest(addon, "subscription.suspended")
    assert (entry.summary, said_in_chinese(entry)) == ("Suspended; auto-renew turned off", "已暫停；已關閉自動續約")
    assert (addons.summary, said_in_chinese(addons)) == (
        "Suspended with its base Sales",
        "已隨其基礎訂用帳戶 Sales 暫停",
    )


@pytest.mark.rule("X1")
def test_a_cancellation_is_recorded_in_english_and_read_in_chinese(customer, sales, e3, now):
    sub = subscribe(customer, e3)
    with in_chinese():
        refund = services.cancel_subscription(subscription_id=sub.pk, actor=sales, now=now)
    entry = latest(sub, "subscription.cancelled")
    assert refund.amount > 0
    assert (entry.summary, said_in_chinese(entry)) == (
        f"Cancelled; refund {refund.amount} USD",
        f"已取消；退款 {refund.amount} USD",
    )


@pytest.mark.rule("R1")
def test_the_renewals_composite_summary_is_recorded_in_english_and_read_in_chinese(customer, sales, e3, now):
    # given an upgrade path from E3 to E5
    e5 = factories.SkuFactory(name="Microsoft 365 E5", availabilities=[("P1Y", "monthly", "20.00")])
    UpgradePath.objects.create(source=e3, target=e5)
    sub = subscribe(customer, e3)
    # when the upgrade and 12 licenses are scheduled for the renewal
    with in_chinese():
        services.schedule_renewal_change(
            subscription_id=sub.pk,
            actor=sales,
            quantity=12,
            term=None,
            billing_frequency=None,
            target_sku_id=e5.pk,
            now=now,
        )
    # then the record lists the changes and what happens to the licenses (R5), in each language
    entry = latest(sub, "subscription.renewal_change_scheduled")
    assert entry.summary == (
        "Scheduled for the renewal: Upgrade to Microsoft 365 E5, 12 licenses. The quantity changes from 10 to 12, so "
        "licenses must be reassigned to users by hand after the renewal."
    )
    assert said_in_chinese(entry).startswith("已為續約排定：升級至 Microsoft 365 E5、12 個授權。")
    assert "10" in said_in_chinese(entry) and "Upgrade" not in said_in_chinese(entry)
    # and when one of them is removed, that record too
    change = sub.scheduled_changes.get(kind=ScheduledChange.Kind.QUANTITY)
    with in_chinese():
        services.remove_scheduled_change(subscription_id=sub.pk, actor=sales, change_id=change.pk, now=now)
    removed = latest(sub, "subscription.renewal_change_removed")
    assert (removed.summary, said_in_chinese(removed)) == (
        "Removed from the renewal: 12 licenses",
        "已從續約中移除：12 個授權",
    )


@pytest.mark.rule("N4")
def test_a_renewal_by_the_engine_is_recorded_in_english_and_read_in_chinese(customer, e3):
    # given a subscription ending 2027-11-22 with 12 licenses and a 1-month term scheduled for its renewal
    sub = subscribe(customer, e3)
    for kind, values in (
        (ScheduledChange.Kind.QUANTITY, {"quantity": 12}),
        (ScheduledChange.Kind.TERM, {"term": "P1M"}),
    ):
        ScheduledChange.objects.create(subscription=sub, kind=kind, created_at=NOW, **values)
    # when the engine renews it, from a thread whose language is Chinese
    with in_chinese():
        run_lifecycle(datetime(2027, 11, 23, 0, 5, tzinfo=UTC))
    entry = latest(sub, "subscription.renewed")
    charged = re.search(r"charged (\S+) USD$", entry.summary).group(1)
    assert entry.summary == (
        f"Renewed from 2027-11-23 to 2027-12-22; applied: 12 licenses, Term 1 month; charged {charged} USD"
    )
    assert said_in_chinese(entry) == (
        f"已續約，期間 2027-11-23 至 2027-12-22；已套用：12 個授權、期限 1 個月；已收費 {charged} USD"
    )


@pytest.mark.rule("TR3")
def test_a_trial_conversion_is_recorded_in_english_and_read_in_chinese(customer, sales, now):
    paid = factories.SkuFactory(name="Microsoft 365 E3", availabilities=[("P1Y", "monthly", "36.00")])
    trial = factories.start_trial(customer, factories.trial_offer(trial_of=paid), started=NOW - timedelta(days=5))
    with in_chinese():
        services.schedule_trial_conversion(
            subscription_id=trial.pk,
            actor=sales,
            target_sku_id=paid.pk,
            term="P1Y",
            billing_frequency="monthly",
            quantity=10,
            now=now,
        )
    entry = latest(trial, "subscription.trial_conversion_scheduled")
    assert entry.summary == (
        "At the trial's end: from 2026-12-20 it becomes Microsoft 365 E3 with 10 licenses, 1 year billed monthly at "
        "36.00 USD per license, until 2027-12-19. No promotion applies."
    )
    assert said_in_chinese(entry).startswith(
        "試用版結束時：自 2026-12-20 起成為 Microsoft 365 E3，共 10 個授權，1 年期限、每月計費"
    )
    # and converted now, into a new subscription
    with in_chinese():
        result = services.convert_trial_now(
            subscription_id=trial.pk, actor=sales, target_sku_id=paid.pk, quantity=25, now=now
        )
    ended = latest(trial, "subscription.trial_converted")
    name = result.subscription.display_name
    assert ended.summary == (
        f"Trial converted now into {name} ({result.subscription.pk}); the trial ended; 4 scheduled change(s) deleted"
    )
    assert said_in_chinese(ended) == (
        f"試用版已立即轉換為 {name} ({result.subscription.pk})；試用版已結束；已刪除 4 個排定的變更"
    )


@pytest.mark.rule("O2")
def test_a_purchase_and_its_fulfilment_are_recorded_in_english_and_read_in_chinese(customer, sales, e3, now):
    # when an order is placed (from a Chinese page) and fulfilled
    with in_chinese():
        order = buy(customer, sales, now, e3)
        fulfill_order(order_id=order.pk, now=now)
    placed = AuditEntry.objects.get(action="order.placed")
    created = AuditEntry.objects.get(action="subscription.created", order=order)
    completed = AuditEntry.objects.get(action="order.completed")
    # then
    assert (placed.summary, said_in_chinese(placed)) == (
        f"Placed {order.number}: 1 line(s), {order.total} USD",
        f"已下單 {order.number}：1 個明細，{order.total} USD",
    )
    assert (created.summary, said_in_chinese(created)) == (
        f"Created from {order.number} with 10 license(s)",
        f"由 {order.number} 建立，含 10 個授權",
    )
    assert (completed.summary, said_in_chinese(completed)) == (
        f"{order.number} fulfilled",
        f"{order.number} 已履行",
    )


@pytest.mark.rule("TF3")
def test_a_transfer_request_is_recorded_in_english_and_read_in_chinese(customer, direct_partner, now):
    # given another partner related to the customer (TF1)
    target = factories.PartnerFactory(kind="direct_bill", name="Fabrikam Cloud", partner_id="7200001")
    target_sales = factories.staff(target, "sales_agent")
    with in_chinese():
        relationship = transfers.send_relationship_request(
            actor=target_sales,
            company_name=customer.company_name,
            domain=customer.domain,
            contact_email=f"admin@{customer.domain}",
            site_url="http://testserver/",
            now=now,
        )
        relationship = transfers.accept_relationship(
            token=transfers.acceptance_token(relationship),
            actor=AnonymousUser(),
            company_name=customer.company_name,
            billing_country="US",
            segment="commercial",
            now=now,
        )
        # when it files a transfer request
        transfers.file_transfer_request(
            actor=target_sales,
            customer=relationship.customer,
            source_partner_id=direct_partner.partner_id,
            notification_email="it@example.com",
            now=now,
        )
    # then the source partner's record of it reads in Chinese
    entry = AuditEntry.objects.get(action="transfer.requested", partner=direct_partner)
    assert (
        entry.summary == "Fabrikam Cloud (7200001) requests a transfer of subscriptions; expires 2026-12-25 12:00 UTC"
    )
    assert said_in_chinese(entry) == "Fabrikam Cloud (7200001) 要求轉移訂用帳戶；於 2026-12-25 12:00 UTC 到期"
    accepted = AuditEntry.objects.get(action="relationship.accepted")
    assert said_in_chinese(accepted) == (
        f"{customer.company_name} 已接受 Fabrikam Cloud 為合作夥伴 ({relationship.domain})"
    )


@pytest.mark.rule("T4")
def test_a_customer_added_is_recorded_in_english_and_read_in_chinese(direct_partner, now):
    agent = factories.staff(direct_partner, "admin_agent")
    with in_chinese():
        customer = add_customer(
            actor=agent,
            created_from=uuid.uuid4(),
            company_name="Contoso Bikes GmbH",
            domain_prefix="contosobikes",
            address_line1="Hauptstraße 1",
            city="Berlin",
            postal_code="10115",
            billing_country="DE",
            contact_first_name="Anna",
            contact_last_name="Schmidt",
            contact_email="anna@contosobikes.de",
            mca_accepted=True,
            mca_accepted_by_name="Anna Schmidt",
            mca_accepted_by_email="anna@contosobikes.de",
            mca_accepted_on=date(2026, 11, 24),
            now=now,
        )
    entry = AuditEntry.objects.get(customer=customer, action="customer.created")
    assert (entry.summary, said_in_chinese(entry)) == (
        "Customer Contoso Bikes GmbH (contosobikes.onmicrosoft.com) added, billed in Germany",
        "已新增客戶 Contoso Bikes GmbH (contosobikes.onmicrosoft.com)，計費國家/地區為 德國",
    )


def test_a_summary_longer_than_its_column_is_cut_in_english_and_said_whole(customer, sales, e3, now):
    # given a name that makes the sentence longer than the column
    sub = subscribe(customer, e3)
    with in_chinese():
        services.rename_subscription(subscription_id=sub.pk, actor=sales, friendly_name="N" * 200, now=now)
    entry = latest(sub, "subscription.renamed")
    assert entry.summary == ("Renamed to " + "N" * 200)[: audit.SUMMARY_LENGTH]
    assert said_in_chinese(entry) == "已重新命名為 " + "N" * 200


# --- The pages ---------------------------------------------------------------------------------------------------


@pytest.fixture
def chinese_agent(signed_in, sales):
    """The signed-in sales agent, who chose Traditional Chinese."""
    Membership.objects.filter(user=sales).update(language=ZH)
    return signed_in


def suspended(customer, sales, e3, now):
    sub = subscribe(customer, e3)
    services.suspend_subscription(subscription_id=sub.pk, actor=sales, now=now)
    return sub


def test_the_subscription_page_shows_its_trail_in_the_readers_language(chinese_agent, customer, sales, e3, now):
    sub = suspended(customer, sales, e3, now)
    page = unescape(chinese_agent.get(subscription_url("detail", sub)).content.decode())
    assert "<td>已暫停；已關閉自動續約</td>" in page
    assert "Suspended; auto-renew turned off" not in page


def test_the_activity_page_shows_the_trail_in_the_readers_language(chinese_agent, customer, sales, e3, now):
    suspended(customer, sales, e3, now)
    page = unescape(chinese_agent.get(reverse("portal:customer-activity", args=[customer.pk])).content.decode())
    assert "<td>已暫停；已關閉自動續約</td>" in page
    assert "Suspended; auto-renew turned off" not in page


def test_a_stale_page_is_told_what_changed_in_the_readers_language(chinese_agent, customer, sales, e3, now):
    # given a page drawn before the subscription was suspended in another tab
    sub = subscribe(customer, e3)
    old_page = drawn(sub, {"on": "0"})
    services.suspend_subscription(subscription_id=sub.pk, actor=sales, now=now)
    # when the old page turns auto-renew off
    response = chinese_agent.post(subscription_url("auto-renew", sub), old_page)
    # then the 409 says, in Chinese, what changed it last
    assert response.status_code == 409
    assert "已暫停；已關閉自動續約（" in unescape(response.content.decode())


def fill_trail(sub, sales, n: int, now):
    for i in range(n):
        audit.record(
            actor=sales,
            at=now - timedelta(minutes=i),
            customer=sub.customer,
            subscription=sub,
            action="subscription.renewal_change_scheduled",
            summary=said(
                "Scheduled for the renewal: %(changes)s",
                changes=listed(
                    [Said("%(count)s license", {"count": i + 2}, plural="%(count)s licenses", count="count")]
                ),
            )
            + said(". %(reassignment)s", reassignment=said("Provisioned")),
        )


def test_the_pages_read_as_many_queries_with_many_messages_as_with_one(chinese_agent, customer, sales, e3, now):
    # given two subscriptions of the customer, one with 1 entry of messages in its trail, one with 20
    few, many = subscribe(customer, e3), subscribe(customer, e3)
    fill_trail(few, sales, 1, now)
    chinese_agent.get(subscription_url("detail", few))  # warm-up
    detail_few = count_queries(chinese_agent, subscription_url("detail", few))
    activity = reverse("portal:customer-activity", args=[customer.pk])
    activity_few = count_queries(chinese_agent, activity)
    fill_trail(many, sales, 20, now)
    # then saying them in Chinese costs no query more
    assert count_queries(chinese_agent, subscription_url("detail", many)) == detail_few
    assert count_queries(chinese_agent, activity) == activity_few
    assert "已為續約排定：21 個授權。已佈建" in unescape(chinese_agent.get(activity).content.decode())


# --- Every summary the product writes is a message --------------------------------------------------------------

PRODUCT = ["subscriptions", "catalog", "portal", "api"]
# A webhook delivery's Summary is Partner Center's English event text, sent to a receiver and shown on no page.
NOT_AUDIT = {"_delivery"}


def product_modules():
    for package in PRODUCT:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" not in path.parts and "locale" not in path.parts:
                yield path


def is_sentence(node) -> bool:
    """A str literal, an f-string, or text built from them (concatenated, sliced, formatted)."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    if isinstance(node, ast.JoinedStr):
        return True
    if isinstance(node, ast.BinOp):
        return is_sentence(node.left) or is_sentence(node.right)
    if isinstance(node, ast.Subscript):
        return is_sentence(node.value)
    if isinstance(node, ast.IfExp):
        return is_sentence(node.body) or is_sentence(node.orelse)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in {"format", "join"}:
        return True
    return False


def passes_summary_on(function) -> bool:
    """Whether the function passes a variable named summary on as `summary=summary` (to the audit trail)."""
    return any(
        k.arg == "summary" and getattr(k.value, "id", None) == "summary"
        for node in ast.walk(function)
        if isinstance(node, ast.Call)
        for k in node.keywords
    )


def plain_summaries(path: Path, root: Path = ROOT) -> list[str]:
    """Where a module passes a sentence as `summary=`, or builds the sentence a function then passes on."""
    tree = ast.parse(path.read_text(), str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            if name not in NOT_AUDIT:
                found |= {k.value.lineno for k in node.keywords if k.arg == "summary" and is_sentence(k.value)}
    # a sentence built first, in a function that then passes `summary=summary` on
    for function in ast.walk(tree):
        if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef) and passes_summary_on(function):
            for node in ast.walk(function):
                if isinstance(node, ast.Assign | ast.AugAssign):
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    if any(getattr(t, "id", None) == "summary" for t in targets) and is_sentence(node.value):
                        found.add(node.lineno)
    return [f"{path.relative_to(root)}:{line}" for line in sorted(found)]


def test_the_check_finds_a_plain_sentence_passed_as_a_summary(tmp_path):
    # the check below is only as good as what it finds: each way a sentence was written before is found
    module = tmp_path / "m.py"
    module.write_text(
        "audit.record(summary='Provisioned')\n"
        "change_status(s, summary=f'Renamed to {name}')\n"
        "audit.entry(summary='Renewed' + tail)\n"
        "def renew():\n"
        "    summary = f'Billing frequency changed to {billed}'\n"
        "    summary += '; applied: ' + ', '.join(applied)\n"
        "    audit.record(summary=summary)\n"
        "audit.record(summary=said(marked('Provisioned')))\n"
        "_delivery(endpoint, summary=f'Test event sent to {url}')\n"
        "def report():\n"
        "    summary = ', '.join(counts)\n"  # a variable that goes to no audit row
        "    print(summary)\n"
    )
    assert [line.rsplit(":", 1)[1] for line in plain_summaries(module, tmp_path)] == ["1", "2", "3", "5", "6"]


def test_every_summary_the_product_writes_is_a_message():
    found = [site for path in product_modules() for site in plain_summaries(path)]
    assert found == [], "write these summaries as audit.said(gettext_noop(...), ...): " + ", ".join(found)


def test_every_entry_of_the_seeded_demo_and_its_lifecycle_is_said_in_chinese(db):
    # given the demo seeded (the services' own flows: checkout, fulfilment, provisioning, suspension, cancellation,
    # auto-renew, renewal changes, trials, a publisher's set-up, cycle charges) and the engine run over its due work
    call_command("seed_demo", verbosity=0)
    run_lifecycle(timezone.now())
    # then every entry keeps its message, and says it in Chinese
    entries = list(AuditEntry.objects.all())
    assert len(entries) > 50
    unsaid = [e.summary for e in entries if not e.summary_message]
    assert unsaid == []
    with translation.override(ZH):
        english = [(e.action, e.summary) for e in entries if not re.search(r"[\u4e00-\u9fff]", e.summary_text)]
    assert english == []
    assert {e.action for e in entries} >= {"order.placed", "subscription.created", "subscription.suspended"}
    # and every value they record is named in Chinese, and a machine word among them said in Chinese too
    recorded = {key for e in entries for values in (e.before, e.after) for key in values}
    assert sorted(recorded - set(AUDIT_LABELS)) == []
    with translation.override(ZH):
        unnamed = {
            (label, value)
            for e in entries
            for label, value in e.readable_before + e.readable_after
            if value in {c for choices in (Status, TransferRequest.Status, RelationshipRequest.Status) for c in choices}
        }
    assert unnamed == set()


def recorded_keys(path: Path) -> set[str]:
    """The keys of the before= and after= dicts written in a module (the values an audit entry records)."""
    tree = ast.parse(path.read_text(), str(path))
    return {
        key.value
        for node in ast.walk(tree)
        if isinstance(node, ast.keyword) and node.arg in ("before", "after") and isinstance(node.value, ast.Dict)
        for key in node.value.keys
        if isinstance(key, ast.Constant) and isinstance(key.value, str)
    }


def test_every_value_the_product_records_has_a_name_in_both_languages():
    keys = {key for path in product_modules() for key in recorded_keys(path)}
    assert {"quantity", "charge", "refund", "company_name", "verb"} <= keys  # the walk finds them
    assert sorted(keys - set(AUDIT_LABELS)) == []
    with translation.override(ZH):
        english = sorted(key for key in keys if not re.search(r"[\u4e00-\u9fff]", audit_label(key)))
    assert english == ["eu_efta"]  # "EU/EFTA" is said so in Chinese too


def test_recorded_machine_words_are_said_in_the_readers_language():
    values = {"status": "accepted", "attested_as": "direct", "segment": "education", "verb": "withdrawn"}
    with translation.override(ZH):
        said_ = dict(readable(values))
        expected = {
            audit_label("status"): str(RelationshipRequest.Status.ACCEPTED.label),
            audit_label("attested_as"): str(Order.Attestation.DIRECT.label),
            audit_label("segment"): str(Customer.Segment.EDUCATION.label),
            audit_label("verb"): "已撤回",
        }
    assert said_ == expected
    assert "accepted" not in said_.values() and "withdrawn" not in said_.values()
    with translation.override(ZH):
        assert dict(readable({"subscriptions": ["Alpha", "Beta"]})) == {audit_label("subscriptions"): "Alpha、Beta"}


def test_joined_messages_add_up_in_order():
    first = said("Provisioned")
    both = first + None + said("; charged %(amount)s", amount=audit.money(Decimal("1.50"), "USD"))
    assert isinstance(both, Joined)
    with translation.override("en"):
        assert str(both) == "Provisioned; charged 1.50 USD"


def test_the_admin_lists_the_trail_in_the_readers_language(client, customer, sales, e3, now):
    sub = suspended(customer, sales, e3, now)
    operator = factories.UserFactory(is_staff=True, is_superuser=True)
    client.force_login(operator)
    client.cookies["django_language"] = ZH
    listed_page = unescape(client.get(reverse("admin:subscriptions_auditentry_changelist")).content.decode())
    assert "已暫停；已關閉自動續約" in listed_page
    entry = latest(sub, "subscription.suspended")
    change_page = unescape(
        client.get(reverse("admin:subscriptions_auditentry_change", args=[entry.pk])).content.decode()
    )
    assert "已暫停；已關閉自動續約" in change_page
    assert "Suspended; auto-renew turned off" in change_page  # as recorded, what the API sends


def test_a_sentence_in_each_language_is_kept_and_read_in_the_readers():
    worded = audit.Worded({"en": "That upgrade is not offered.", ZH: "此訂用帳戶不提供該升級。"})
    message = said("%(change)s not applied (%(reason)s)", change="Upgrade to E5", reason=worded)
    kept = from_json(message.as_json())
    assert kept == message
    with translation.override(ZH):
        assert str(kept).endswith("(此訂用帳戶不提供該升級。)")
    with translation.override("en"):
        assert str(kept) == "Upgrade to E5 not applied (That upgrade is not offered.)"
    with translation.override("fr"):  # a language the portal does not have: its default's
        assert "That upgrade is not offered." in str(kept)
    for broken in ({"each": "text"}, {"each": {}}, {"each": {"en": 3}}):
        with pytest.raises((ValueError, TypeError)):
            from_json(broken)


def test_a_refusal_is_asked_for_in_each_language_only_when_the_check_refuses():
    calls = []
    refusal = "That upgrade is not offered for this subscription: choose one of the listed targets."

    def refusing():
        calls.append(translation.get_language())
        raise RuleViolation("U2", translation.gettext(refusal))

    worded = audit.refusal(refusing)
    assert calls == ["en", ZH]
    assert worded.texts["en"].startswith("That upgrade is not offered")
    assert worded.texts[ZH].startswith("此訂用帳戶不提供該升級")
    calls.clear()
    assert audit.refusal(lambda: calls.append(translation.get_language())) is None
    assert calls == ["en"]
