"""The "Add customer" form: what a partner types in, parsed (required, length, NUL, e-mail, date). Whether the domain
is free, the attestation given and the reseller allowed is portal.customers' to say, so any caller is refused alike."""

import re

from django import forms

from portal.forms import IdField, IsoDateField, TextField
from portal.models import COUNTRY_CHOICES

PHONE = re.compile(r"[0-9+()./ -]{4,30}")


def _text(what: str, *, max_length: int, required: bool = True, **kwargs) -> TextField:
    messages = {"required": f"Enter the {what}."} if required else {}
    return TextField(what=f"The {what}", required=required, max_length=max_length, error_messages=messages, **kwargs)


class AddCustomerForm(forms.Form):
    # Drawn fresh with the page: the same form submitted twice adds one customer (portal.customers.add_customer).
    form_id = forms.UUIDField(widget=forms.HiddenInput, error_messages={"invalid": "Reload the page and try again."})
    company_name = _text("company name", max_length=200)
    domain_prefix = _text("primary domain", max_length=100, label="Primary domain")
    address_line1 = _text("address", max_length=100, label="Address line 1")
    address_line2 = _text("second address line", max_length=100, required=False, label="Address line 2 (optional)")
    city = _text("city", max_length=100)
    state = _text("state or region", max_length=100, required=False, label="State or region (optional)")
    postal_code = _text("postal code", max_length=20)
    billing_country = forms.ChoiceField(
        choices=[("", "Choose a country"), *COUNTRY_CHOICES],
        error_messages={
            "required": "Choose the customer's billing country.",
            "invalid_choice": "Choose the customer's billing country from the list.",
        },
    )
    contact_first_name = _text("contact's first name", max_length=100, label="First name")
    contact_last_name = _text("contact's last name", max_length=100, label="Last name")
    contact_email = forms.EmailField(
        label="E-mail",
        max_length=254,
        error_messages={
            "required": "Enter the contact's e-mail address.",
            "invalid": "Enter the contact's e-mail address, such as admin@contoso.com.",
        },
    )
    contact_phone = _text("contact's phone number", max_length=30, required=False, label="Phone (optional)")
    mca_accepted = forms.BooleanField(
        label="The customer has accepted the Microsoft Customer Agreement",
        error_messages={"required": "Confirm that the customer has accepted the Microsoft Customer Agreement."},
    )
    mca_accepted_by_name = _text("name of the person who accepted", max_length=200, label="Accepted by (name)")
    mca_accepted_by_email = forms.EmailField(
        label="Accepted by (e-mail)",
        max_length=254,
        error_messages={
            "required": "Enter the e-mail address of the person who accepted.",
            "invalid": "Enter the e-mail address of the person who accepted, such as admin@contoso.com.",
        },
    )
    mca_accepted_on = IsoDateField(
        label="Date accepted (UTC)",
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"required": "Enter the date the customer accepted the agreement."},
    )
    reseller = IdField(required=False)

    def clean_contact_phone(self):
        phone = self.cleaned_data["contact_phone"]
        if phone and not PHONE.fullmatch(phone):
            raise forms.ValidationError("Enter the phone number with digits, spaces, +, -, ( and ) only.")
        return phone
