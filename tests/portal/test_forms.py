"""The raw-input parsers views share (portal/forms.py): a refusal a partner can read, never an exception."""

import pytest

from portal.errors import RuleViolation
from portal.forms import parse_int, parse_quantity, parse_text, parse_uuid, search_text


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        # int() refuses past 4,300 digits
        pytest.param("9" * 10_000, "That is more licenses than any offer allows.", id="10-kB-of-digits"),
        ("9" * 19, "That is more licenses than any offer allows."),
        ("99999999999", "99,999,999,999 licenses is more than any offer allows."),
        ("0", "Enter the number of licenses as a whole number of at least 1."),
        ("-1", "Enter the number of licenses as a whole number of at least 1."),
        ("１２", "Enter the number of licenses as a whole number of at least 1."),
        ("٣", "Enter the number of licenses as a whole number of at least 1."),
        ("NaN", "Enter the number of licenses as a whole number of at least 1."),
        ("2.5", "Enter the number of licenses as a whole number of at least 1."),
        ("\x00", "Enter the number of licenses as a whole number of at least 1."),
        (None, "Enter the number of licenses as a whole number of at least 1."),
    ],
)
def test_a_quantity_that_is_not_a_licence_count_is_refused_with_a_reason(raw, message):
    with pytest.raises(RuleViolation) as refused:
        parse_quantity(raw)
    assert (refused.value.message, refused.value.field, refused.value.status) == (message, "quantity", 422)


def test_leading_zeros_do_not_make_a_quantity_huge():
    assert parse_quantity("0" * 30 + "12") == 12


@pytest.mark.parametrize(
    "raw", [pytest.param("9" * 10_000, id="10-kB-of-digits"), "9" * 12, "-1", "１２", "\x00", "", None, "2.5"]
)
def test_an_id_that_is_not_one_is_none(raw):
    assert parse_int(raw) is None
    assert parse_uuid(raw) is None


def test_a_text_field_with_a_nul_is_refused_with_a_reason():
    with pytest.raises(RuleViolation) as refused:
        parse_text(" a\x00b ", rule="S2", field="friendly_name", what="A friendly name")
    assert (refused.value.rule, refused.value.field, refused.value.message) == (
        "S2",
        "friendly_name",
        "A friendly name contains a character that is not allowed (NUL).",
    )
    assert parse_text("  Head office ", rule="S2", field="friendly_name", what="A friendly name") == "Head office"
    assert parse_text(None, rule="S2", field="friendly_name", what="A friendly name") == ""


def test_a_search_drops_its_nul_characters():
    assert search_text(" Con\x00toso\x00 ") == "Contoso"
    assert search_text(None) == ""
