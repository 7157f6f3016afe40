"""S5: a customer's subscriptions as a .csv download, streamed; every role may export (T2); a partner
exports only its own customers, a reseller only its own subscriptions (T1, T3).
Today is 2026-11-25 12:00 UTC."""

import csv
import io
import time
import tracemalloc
import uuid
from datetime import date, timedelta

import pytest
from django.urls import reverse

from portal.models import Partner
from subscriptions import export
from tests import factories
from tests.factories import subscribe_to_offer

HEADER_LINE = "Subscription ID,Subscription name,Quantity,Status,Billing term,Promotion,Reseller\r\n"


def export_url(customer) -> str:
    return reverse("subscriptions:subscription-export", args=[customer.pk])


def download(client, customer) -> str:
    response = client.get(export_url(customer))
    assert response.status_code == 200
    assert response.streaming
    return b"".join(response.streaming_content).decode("utf-8")


@pytest.fixture
def reseller(direct_partner):
    return factories.PartnerFactory(kind=Partner.Kind.INDIRECT_RESELLER, name="Adatum Reseller", partner_id="4412345")


@pytest.mark.rule("S5")
def test_s5_export_has_the_columns_and_one_exact_row_per_subscription(signed_in, customer, reseller):
    # given subscriptions in different states, terms and billing frequencies
    bought = factories.BASE_TIME - timedelta(days=1)  # 2026-11-24: a year's term ends 2027-11-23 (inclusive)
    renewing = subscribe_to_offer(
        customer, "Microsoft 365 E3", term_start=bought, quantity=25, friendly_name="Head office"
    )
    expiring = subscribe_to_offer(
        customer,
        "Microsoft 365 Business Premium",
        [("P1Y", "annual", "264.00")],
        term_start=bought,
        auto_renew=False,
        promotion_id="39NFJQT1Q5KPR",
        reseller=reseller,
        quantity=3,
    )
    suspended = subscribe_to_offer(
        customer, "Exchange Online (Plan 1)", [("P1M", "monthly", "4.80")], suspended=True, quantity=7
    )
    deleted = subscribe_to_offer(
        customer, "Dynamics 365 Sales Enterprise", [("P3Y", "one_time", "3420.00")], deleted=True, quantity=1
    )
    pending = subscribe_to_offer(customer, "Visio Plan 2", status="pending", quantity=2)
    # when the partner exports them
    content = download(signed_in, customer)
    # then a header, then one line per subscription by offer name, with exactly these values
    assert content.startswith(HEADER_LINE)
    assert list(csv.reader(io.StringIO(content))) == [
        ["Subscription ID", "Subscription name", "Quantity", "Status", "Billing term", "Promotion", "Reseller"],
        [
            str(deleted.pk),
            "Dynamics 365 Sales Enterprise",
            "1",
            "Deleted",
            "3 years, billed once for the whole term",
            "None",
            "",
        ],
        [str(suspended.pk), "Exchange Online (Plan 1)", "7", "Suspended", "1 month, billed monthly", "None", ""],
        [
            str(expiring.pk),
            "Microsoft 365 Business Premium",
            "3",
            "Active (auto-renew off, expires 2027-11-24)",
            "1 year, billed annually",
            "39NFJQT1Q5KPR",
            "4412345",
        ],
        # the offer's name, not the friendly name
        [
            str(renewing.pk),
            "Microsoft 365 E3",
            "25",
            "Active (auto-renew on, renews 2027-11-24)",
            "1 year, billed monthly",
            "None",
            "",
        ],
        [str(pending.pk), "Visio Plan 2", "2", "Pending", "1 year, billed monthly", "None", ""],
    ]


@pytest.mark.rule("S5")
def test_s5_a_line_is_the_same_when_its_cells_are_formatted_anew(signed_in, customer, reseller, monkeypatch):
    # given subscriptions whose cells differ in name, state and billing
    for i, (term, frequency) in enumerate([("P1Y", "monthly"), ("P1M", "monthly"), ("P1Y", "annual")] * 2):
        subscribe_to_offer(
            customer,
            f"=Offer {i % 4}",
            [(term, frequency, "10.00")],
            term_start=factories.BASE_TIME - timedelta(days=i),
            auto_renew=i % 2 == 0,
            reseller=reseller if i % 3 == 0 else None,
            suspended=i == 4,
        )
    looked_up = download(signed_in, customer)
    # when every memo holds one text only, so that each is forgotten at the next new one
    monkeypatch.setattr(export, "MEMO_SIZE", 1)
    # then the export is the same to the byte
    assert download(signed_in, customer) == looked_up
    assert len(looked_up.splitlines()) == 7 and "'=Offer 0" in looked_up


@pytest.mark.rule("S5")
@pytest.mark.rule("T5")
def test_s5_export_is_a_csv_attachment_named_after_the_company_and_the_utc_day(signed_in, direct_partner):
    # given a customer with a name that is not a file name
    customer = factories.CustomerFactory(partner=direct_partner, company_name="Fabrikam GmbH & Co. KG")
    # when it is exported
    response = signed_in.get(export_url(customer))
    # then it downloads as a CSV file named after the company and today's UTC date, with just the header
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="subscriptions-fabrikam-gmbh-co-kg-2026-11-25.csv"'
    assert b"".join(response.streaming_content).decode() == HEADER_LINE


@pytest.mark.rule("S5")
def test_s5_a_cell_a_spreadsheet_would_run_as_a_formula_is_neutralised(signed_in, customer):
    # given an offer whose name starts like a formula
    sub = subscribe_to_offer(customer, '=HYPERLINK("http://evil.example")', promotion_id="+PROMO")
    # when exported
    rows = list(csv.reader(io.StringIO(download(signed_in, customer))))
    # then the cells are text
    assert rows[1][1] == '\'=HYPERLINK("http://evil.example")'
    assert rows[1][5] == "'+PROMO"
    assert rows[1][0] == str(sub.pk)


@pytest.mark.rule("S5")
def test_s5_status_texts():
    # an active subscription renews, or expires, the day after its inclusive term end (N2, N5)
    assert export.status_text("active", True, date(2027, 2, 28)) == "Active (auto-renew on, renews 2027-03-01)"
    assert export.status_text("active", False, date(2026, 12, 31)) == "Active (auto-renew off, expires 2027-01-01)"
    # the other statuses have no date
    assert [
        export.status_text(s, False, date(2027, 1, 1))
        for s in ["pending", "suspended", "expired", "disabled", "deleted"]
    ] == ["Pending", "Suspended", "Expired", "Disabled", "Deleted"]
    assert export.billing_term_text("P1M", "monthly") == "1 month, billed monthly"
    assert export.billing_term_text("P3Y", "annual") == "3 years, billed annually"


@pytest.mark.rule("S5")
@pytest.mark.rule("T2")
@pytest.mark.parametrize("role", ["admin_agent", "sales_agent", "billing_admin", "support_agent"])
def test_t2_every_role_may_export(client, direct_partner, customer, now, role):
    # given a subscription and a staff user holding one role
    sub = subscribe_to_offer(customer, "Microsoft 365 E5")
    client.force_login(factories.staff(direct_partner, role))
    # when they export
    content = download(client, customer)
    # then they get the subscription
    assert content.splitlines()[1].startswith(f"{sub.pk},Microsoft 365 E5,10,")


@pytest.mark.rule("S5")
@pytest.mark.rule("T3")
def test_t3_another_partners_customer_cannot_be_exported(signed_in, now):
    # given another partner's customer with a subscription
    theirs = factories.CustomerFactory(partner=factories.PartnerFactory(name="Fourth Coffee"))
    subscribe_to_offer(theirs, "Microsoft 365 E3")
    # when the signed-in partner asks for its export, or for an unknown customer's
    response = signed_in.get(export_url(theirs))
    unknown = signed_in.get(reverse("subscriptions:subscription-export", args=[uuid.uuid4()]))
    # then neither exists
    assert response.status_code == 404
    assert unknown.status_code == 404


@pytest.mark.rule("S5")
@pytest.mark.rule("T1")
@pytest.mark.rule("T3")
def test_t3_a_reseller_exports_only_the_subscriptions_it_is_reseller_of_record_for(client, provider, now):
    # given a provider's customer with one subscription resold by Adatum, one by Litware, one direct
    adatum = factories.PartnerFactory(kind=Partner.Kind.INDIRECT_RESELLER, name="Adatum", partner_id="4400001")
    litware = factories.PartnerFactory(kind=Partner.Kind.INDIRECT_RESELLER, name="Litware", partner_id="4400002")
    customer = factories.CustomerFactory(partner=provider, reseller=litware)
    own = subscribe_to_offer(customer, "Microsoft 365 E3", reseller=adatum)
    subscribe_to_offer(customer, "Exchange Online (Plan 2)", reseller=litware)
    subscribe_to_offer(customer, "Visio Plan 2")
    client.force_login(factories.staff(adatum, "admin_agent"))
    # when Adatum exports the customer
    rows = list(csv.reader(io.StringIO(download(client, customer))))
    # then only its own subscription is in it
    assert [row[0] for row in rows[1:]] == [str(own.pk)]
    assert rows[1][6] == "4400001"


@pytest.mark.rule("S5")
def test_s5_export_streams_in_pieces_from_an_iterator(signed_in, customer, django_assert_num_queries):
    # given more subscriptions than one piece of the response holds
    sku = factories.SkuFactory(name="Microsoft 365 E3")
    factories.bulk_subscriptions([customer], [sku], export.ROWS_PER_WRITE + 10)
    # when exported
    response = signed_in.get(export_url(customer))
    with django_assert_num_queries(1):
        pieces = list(response.streaming_content)
    # then the header, a full piece and the rest arrive separately, read by one query
    assert [len(p.splitlines()) for p in pieces] == [1, export.ROWS_PER_WRITE, 10]


def timed_export(client, customer) -> tuple[float, int, int]:
    """Seconds to download the whole export, its lines, and the peak of memory allocated while streaming it
    (a second, traced run: tracing slows Python down)."""
    started = time.perf_counter()
    response = client.get(export_url(customer))
    lines = sum(chunk.count(b"\n") for chunk in response.streaming_content)
    elapsed = time.perf_counter() - started
    response = client.get(export_url(customer))
    tracemalloc.start()
    try:
        for _ in response.streaming_content:
            pass
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return elapsed, lines, peak


@pytest.mark.rule("S5")
def test_s5_ten_thousand_subscriptions_export_in_under_a_second_in_flat_memory(signed_in, direct_partner):
    # given a customer with 4,000 subscriptions and one with 10,000
    sku = factories.SkuFactory(name="Microsoft 365 E3")
    smaller = factories.CustomerFactory(partner=direct_partner)
    big = factories.CustomerFactory(partner=direct_partner)
    factories.bulk_subscriptions([smaller], [sku], 4_000)
    factories.bulk_subscriptions([big], [sku], 10_000)
    # when each is exported
    _, smaller_lines, smaller_peak = timed_export(signed_in, smaller)
    elapsed, big_lines, big_peak = timed_export(signed_in, big)
    # then the 10,000 take under a second, and 2.5 times the rows take no more memory to stream: rows are read
    # 2,000 at a time and leave 500 at a time, so past two reads the peak stays where it is (~1.7 MB)
    assert (smaller_lines, big_lines) == (4_001, 10_001)
    assert elapsed < 1.0
    assert big_peak < smaller_peak * 1.1
