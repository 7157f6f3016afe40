"""The form fields every form of the portal shares (portal/forms.py): a refusal a partner can read, never an
exception past the form."""

import pytest
from django.core.exceptions import ValidationError

from portal.forms import IdField, QuantityField, TextField


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
    with pytest.raises(ValidationError) as refused:
        QuantityField().clean(raw)
    assert refused.value.messages == [message]


def test_leading_zeros_do_not_make_a_quantity_huge():
    assert QuantityField().clean("0" * 30 + "12") == 12


@pytest.mark.parametrize(
    "raw", [pytest.param("9" * 10_000, id="10-kB-of-digits"), "9" * 19, "-1", "１２", "\x00", "2.5"]
)
def test_an_id_that_is_not_one_is_refused(raw):
    with pytest.raises(ValidationError) as refused:
        IdField().clean(raw)
    assert refused.value.messages == ["Choose one of the listed options."]


def test_a_text_field_with_a_nul_is_refused_with_a_reason():
    field = TextField(what="A friendly name")
    with pytest.raises(ValidationError) as refused:
        field.clean(" a\x00b ")
    assert refused.value.messages == ["A friendly name contains a character that is not allowed (NUL)."]
    assert field.clean("  Head office ") == "Head office"
    assert field.clean(None) == ""
