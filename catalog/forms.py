"""The catalog's inputs (C1, K1, K3, K4, K5, K11), read by Django forms with messages a partner understands.

A form parses what was typed; the rules (K8's range, K11's dates, K4's and K5's resellers) are the services'
(catalog/cart.py, catalog/checkout.py): a refused form, or a service's refusal, re-renders the page with 422.
"""

from datetime import date

from django import forms

MAX_QUANTITY_INPUT = 1_000_000
WHOLE_NUMBER = "Enter the number of licenses as a whole number of at least 1."


class QuantityField(forms.Field):
    """A number of licenses: ASCII digits only (int() would also read "１２" or "٣"), at least 1, and never more than
    any offer allows, checked before int() (which is slow on, and past 4,300 digits refuses, very long text)."""

    def to_python(self, value):
        if value is None:
            return None  # not sent: the form says what that means
        text = str(value).strip()
        if not (text.isascii() and text.isdigit()):
            raise forms.ValidationError(WHOLE_NUMBER, code="whole_number")
        if len(text.lstrip("0")) > 18:  # past any 64-bit count
            raise forms.ValidationError("That is more licenses than any offer allows.", code="too_many")
        quantity = int(text)
        if quantity < 1:
            raise forms.ValidationError(WHOLE_NUMBER, code="whole_number")
        if quantity > MAX_QUANTITY_INPUT:
            raise forms.ValidationError(f"{quantity:,} licenses is more than any offer allows.", code="too_many")
        return quantity

    def validate(self, value):
        pass  # an absent quantity is the form's to read


class IdField(forms.Field):
    """A row's id picked from a list the page drew: ASCII digits that fit a database integer, else `message`."""

    def __init__(self, *, message: str, **kwargs):
        self.message = message
        super().__init__(**kwargs)

    def to_python(self, value):
        text = str(value if value is not None else "").strip()
        if not text:
            return None
        if not (text.isascii() and text.isdigit() and len(text) < 12):
            raise forms.ValidationError(self.message, code="invalid")
        return int(text)

    def validate(self, value):
        if value is None and self.required:
            raise forms.ValidationError(self.message, code="required")


class EndDateField(forms.Field):
    """K11: an end date as the page's select sends it (YYYY-MM-DD), or none (the full term)."""

    def to_python(self, value):
        text = str(value if value is not None else "").strip()
        if not text:
            return None
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise forms.ValidationError(f"{text[:20]!r} is not a date (YYYY-MM-DD).", code="invalid") from None

    def validate(self, value):
        pass


class VersionForm(forms.Form):
    """The version the page was drawn with (portal/versions.py): the service compares it, so it is read as text."""

    version = forms.CharField(required=False, strip=False)


class AddToCartForm(VersionForm):
    """A card's "Add to cart" (K1): the way to buy it, and its quantity (offers without a quantity field, usage-based
    and trials, send none: 1; the service gives a trial its licenses, TR1)."""

    availability = IdField(message="Choose a term and billing frequency.")
    quantity = QuantityField(required=False)

    def clean_quantity(self):
        quantity = self.cleaned_data["quantity"]
        return 1 if quantity is None else quantity


class CartLineForm(VersionForm):
    """A cart line's update: its quantity and the end date it aligns to (K11), none for the full term."""

    quantity = QuantityField()
    aligned_end_date = EndDateField(required=False)

    def clean_quantity(self):
        quantity = self.cleaned_data["quantity"]
        if quantity is None:
            raise forms.ValidationError(WHOLE_NUMBER, code="whole_number")
        return quantity


class ResellerForm(VersionForm):
    """K4: the indirect reseller picked from the page's list, or none."""

    reseller = IdField(message="Choose a reseller from the list.", required=False)


class AdditionalResellerForm(VersionForm):
    """K5: an additional reseller, by the PartnerID typed (the service says whether it may be declared)."""

    partner_id = forms.CharField(
        required=False,
        error_messages={"null_characters_not_allowed": "A PartnerID contains a character that is not allowed (NUL)."},
    )

    def clean_partner_id(self):
        return self.cleaned_data["partner_id"][:40]


class PurchaseForm(VersionForm):
    """K3's attestation, and K4's reseller as the page showed it (sent only by an indirect provider's page)."""

    attest = forms.CharField(required=False)

    def clean_attest(self) -> bool:
        # Ticked is what a browser sends for a checkbox without a value: "on". Anything else is not a confirmation.
        return self.cleaned_data["attest"] == "on"

    reseller = IdField(message="Choose a reseller from the list.", required=False)


def first_error(form: forms.Form) -> str:
    """The message of a refused form's first error, for the page's message bar."""
    for errors in form.errors.values():
        return errors[0]
    return ""
