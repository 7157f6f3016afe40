"""The forms of the subscription page, Check upgrades, Convert trial and Transfers (subscriptions/forms.py): a form
refused for its input answers 422 with what the person typed back in the field and the reason on the page, and
changes nothing; tampered fields (not numbers, huge numbers, NUL, unknown ids) answer 422 or 404, never 500.

Today is 2026-11-25 12:00 UTC; the subscription is Microsoft 365 E3, 10 licenses from 2026-11-23 (see
test_detail_views.py), with Microsoft 365 E5 as an upgrade target and an eligible add-on.
"""

from datetime import UTC, datetime, timedelta
from html import escape

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from catalog.models import UpgradePath
from portal.forms import IdField, IsoDateField, QuantityField, TextField, VersionField
from tests import factories
from tests.helpers import database_state, drawn

NOT_A_QUANTITY = "Enter the number of licenses as a whole number of at least 1."
HUGE = "That is more licenses than any offer allows."


@pytest.fixture
def world(db, customer, now):
    e3 = factories.SkuFactory(name="Microsoft 365 E3", availabilities=[("P1Y", "monthly", "10.00")])
    e5 = factories.SkuFactory(name="Microsoft 365 E5", availabilities=[("P1Y", "monthly", "20.00")])
    UpgradePath.objects.create(source=e3, target=e5)
    addon = factories.addon_offer(e3, name="Audio Conferencing", price="2.00")
    sub = factories.subscribe(customer, e3, started=now - timedelta(days=2))
    trial = factories.start_trial(
        customer, factories.trial_offer(trial_of=e3), started=datetime(2026, 11, 10, tzinfo=UTC)
    )
    return {"sub": sub, "e5": e5, "addon": addon, "trial": trial, "e3": e3}


def action(name, sub):
    return reverse(f"subscriptions:subscription-{name}", args=[sub.customer_id, sub.pk])


# (what, how to send it, the value typed, where it must show again, the reason shown)
REFUSED = [
    ("quantity preview", "get", "detail", {"quantity": "abc"}, 'name="quantity" min="1" value="abc"', NOT_A_QUANTITY),
    ("quantity preview, huge", "get", "detail", {"quantity": "9" * 40}, f'value="{"9" * 40}"', HUGE),
    (
        "quantity preview, too many",
        "get",
        "detail",
        {"quantity": "2000000"},
        'value="2000000"',
        "2,000,000 licenses is more than any offer allows.",
    ),
    ("quantity change", "post", "quantity", {"quantity": "0"}, 'value="0"', NOT_A_QUANTITY),
    (
        "rename with a NUL",
        "post",
        "rename",
        {"friendly_name": "Head\x00office"},
        'value="Head\x00office"',
        "A friendly name contains a character that is not allowed (NUL).",
    ),
    (
        "add-ons",
        "post",
        "addons",
        {"addon-{addon}": "lots"},
        'name="addon-{addon}" min="0" value="lots"',
        NOT_A_QUANTITY,
    ),
    (
        "manage renewal quantity",
        "post",
        "schedule",
        {"quantity": "x7", "term": "P1Y", "billing_frequency": "monthly"},
        'value="x7"',
        NOT_A_QUANTITY,
    ),
    (
        "manage renewal end date",
        "post",
        "schedule",
        {"quantity": "10", "aligned_end_date": "2027-13-45"},
        'value="10"',
        "'2027-13-45' is not a date (YYYY-MM-DD).",
    ),
    (
        "manage renewal SKU",
        "post",
        "schedule",
        {"quantity": "12", "target_sku": "e5!"},
        'value="12"',
        "Choose one of the listed upgrade targets.",
    ),
    (
        "upgrade preview",
        "get",
        "upgrade",
        {"target": "{e5}", "quantity": "four", "term": "P1Y", "billing_frequency": "monthly"},
        'value="four"',
        NOT_A_QUANTITY,
    ),
    (
        "upgrade into",
        "post",
        "upgrade",
        {"target": "{e5}", "quantity": "3", "into": "not-an-id", "confirm": "yes"},
        'value="3"',
        "Choose a new subscription or one of the listed existing subscriptions.",
    ),
    (
        "conversion quantity",
        "post",
        "convert",
        {"target": "sku-{e3}", "when": "now", "quantity": "2.5"},
        'value="2.5"',
        NOT_A_QUANTITY,
    ),
]


@pytest.mark.parametrize(
    ("method", "where", "data", "shown", "reason"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED]
)
def test_a_refused_form_answers_422_with_what_was_typed_and_why(signed_in, world, method, where, data, shown, reason):
    # given
    ids = {"addon": world["addon"].pk, "e5": world["e5"].pk, "e3": world["e3"].pk}
    data = {k.format(**ids): v.format(**ids) for k, v in data.items()}
    sub = world["trial"] if where == "convert" else world["sub"]
    target = (
        reverse("subscriptions:subscription-detail", args=[sub.customer_id, sub.pk])
        if where == "detail"
        else action(where, sub)
    )
    before = database_state()
    # when
    response = signed_in.get(target, data) if method == "get" else signed_in.post(target, drawn(sub, data))
    # then
    page = response.content.decode()
    assert response.status_code == 422, page[:2000]
    assert escape(shown.format(**ids)).replace("&quot;", '"').replace("&#x27;", "'") in page.replace("&#x27;", "'")
    assert escape(reason) in page
    # the reason is next to its field as well as in the page's error bar
    assert page.count(escape(reason)) >= 2
    assert database_state() == before


def test_a_refused_relationship_request_keeps_what_was_typed(signed_in, world):
    # given
    before = database_state()
    # when
    response = signed_in.post(
        reverse("subscriptions:relationship-send"),
        {"company_name": "Fabrikam\x00", "domain": "fabrikam.example", "contact_email": "admin@fabrikam.example"},
    )
    # then
    page = response.content.decode()
    assert response.status_code == 422
    assert 'value="fabrikam.example"' in page and 'value="admin@fabrikam.example"' in page
    assert page.count("A company name contains a character that is not allowed (NUL).") == 2
    assert database_state() == before


def test_a_refused_transfer_request_keeps_what_was_typed(signed_in, world, customer):
    before = database_state()
    response = signed_in.post(
        reverse("subscriptions:transfer-file"),
        {"customer": str(customer.pk), "source_partner_id": "12\x0034", "notification_email": "ops@example.com"},
    )
    page = response.content.decode()
    assert response.status_code == 422
    assert 'value="ops@example.com"' in page
    assert page.count("A PartnerID contains a character that is not allowed (NUL).") == 2
    assert database_state() == before


TAMPERED = ["", "abc", "-1", "9" * 40, "9" * 10_000, "\x00", "１２", "2.5", "NaN"]


@pytest.mark.parametrize("value", TAMPERED)
@pytest.mark.parametrize(
    ("where", "field", "extra"),
    [
        ("quantity", "quantity", {}),
        ("auto-renew", "on", {}),
        ("addons", "addon-{addon}", {}),
        ("addons", "addon-{value}", {}),
        ("schedule", "quantity", {}),
        ("schedule", "target_sku", {}),
        ("schedule", "aligned_end_date", {}),
        ("unschedule", "change", {}),
        ("upgrade", "target", {"quantity": "3", "confirm": "yes"}),
        ("upgrade", "quantity", {"target": "{e5}", "confirm": "yes"}),
        ("upgrade", "into", {"target": "{e5}", "quantity": "3"}),
        ("convert", "target", {"when": "now"}),
        ("convert", "when", {"target": "sku-{e3}"}),
        ("convert", "quantity", {"target": "sku-{e3}", "when": "now"}),
    ],
)
def test_a_tampered_field_is_refused_never_a_500_and_changes_nothing(signed_in, world, where, field, extra, value):
    # given (a field name is sent in a multipart header, whose size Django bounds: a short one will do)
    ids = {"addon": world["addon"].pk, "e5": world["e5"].pk, "e3": world["e3"].pk, "value": value[:100]}
    data = {k.format(**ids): v.format(**ids) for k, v in {field: value, **extra}.items()}
    sub = world["trial"] if where == "convert" else world["sub"]
    before = database_state()
    # when
    response = signed_in.post(action(where, sub), drawn(sub, data))
    # then: refused (422, or 404/409 for an id the service can't find), or, where the value means "nothing" (an
    # empty add-on quantity, an empty optional field), a change the service may make; never a server error
    assert response.status_code in (302, 404, 409, 422), response.content.decode()[:2000]
    if response.status_code != 302:
        assert database_state() == before


@pytest.mark.parametrize("value", ["not-a-uuid", "\x00", "9" * 10_000, ""])
def test_a_tampered_customer_of_a_transfer_request_is_404(signed_in, world, value):
    before = database_state()
    response = signed_in.post(
        reverse("subscriptions:transfer-file"),
        {"customer": value, "source_partner_id": "1234", "notification_email": "ops@example.com"},
    )
    assert response.status_code == 404
    assert database_state() == before


def test_an_unknown_upgrade_target_is_the_services_refusal(signed_in, world):
    sub, before = world["sub"], database_state()
    response = signed_in.post(
        action("upgrade", sub), drawn(sub, {"target": "999999", "quantity": "3", "confirm": "yes"})
    )
    assert response.status_code == 422
    assert "That upgrade is not offered" in response.content.decode()
    assert database_state() == before


# --- The shared fields (portal/forms.py) --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("9" * 10_000, HUGE),
        ("9" * 19, HUGE),
        ("99999999999", "99,999,999,999 licenses is more than any offer allows."),
        ("0", NOT_A_QUANTITY),
        ("-1", NOT_A_QUANTITY),
        ("１２", NOT_A_QUANTITY),
        ("٣", NOT_A_QUANTITY),
        ("2.5", NOT_A_QUANTITY),
        ("\x00", NOT_A_QUANTITY),
        ("", NOT_A_QUANTITY),
        (None, NOT_A_QUANTITY),
    ],
)
def test_the_quantity_field_refuses_what_is_not_a_licence_count(raw, message):
    with pytest.raises(ValidationError) as refused:
        QuantityField().clean(raw)
    assert refused.value.messages == [message]


def test_the_quantity_field_reads_a_count_with_leading_zeros():
    assert QuantityField().clean("0" * 30 + "12") == 12
    assert QuantityField().clean(" 1000000 ") == 1_000_000
    assert QuantityField(required=False).clean("") is None


def test_the_other_fields():
    assert IdField().clean("0042") == 42
    for raw in ("abc", "１２", "9" * 19, "-1"):
        with pytest.raises(ValidationError):
            IdField().clean(raw)
    assert str(IsoDateField().clean("2027-01-31")) == "2027-01-31"
    with pytest.raises(ValidationError) as refused:
        IsoDateField().clean("2027-13-45")
    assert refused.value.messages == ["'2027-13-45' is not a date (YYYY-MM-DD)."]
    with pytest.raises(ValidationError) as refused:
        TextField(what="A domain").clean("a\x00b")
    assert refused.value.messages == ["A domain contains a character that is not allowed (NUL)."]
    assert TextField(what="A domain").clean("  contoso.example ") == "contoso.example"
    # the version is never refused by the form: the service answers a stale or tampered one with 409
    assert [VersionField().clean(raw) for raw in ("7", "\x00", None)] == ["7", "\x00", ""]
