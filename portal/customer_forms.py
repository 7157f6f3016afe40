"""The "Add customer" form: what a partner types in, parsed (required, length, NUL, e-mail, date). Whether the domain
is free, the attestation given and the reseller allowed is portal.customers' to say, so any caller is refused alike."""

import re

from django import forms
from django.utils.translation import gettext_lazy as _

from portal.forms import IdField, IsoDateField, TextField
from portal.models import COUNTRY_CHOICES

PHONE = re.compile(r"[0-9+()./ -]{4,30}")


def _text(what, *, max_length: int, required=None, **kwargs) -> TextField:
    """A line of text; `what` names it in the NUL refusal ("The city"), `required` is the sentence for a blank one
    (None: optional). Whole sentences each, so that each translates as one."""
    messages = {"required": required} if required else {}
    return TextField(what=what, required=bool(required), max_length=max_length, error_messages=messages, **kwargs)


class AddCustomerForm(forms.Form):
    # Drawn fresh with the page: the same form submitted twice adds one customer (portal.customers.add_customer).
    form_id = forms.UUIDField(widget=forms.HiddenInput, error_messages={"invalid": _("Reload the page and try again.")})
    company_name = _text(
        _("The company name"), max_length=200, required=_("Enter the company name."), label=_("Company name")
    )
    domain_prefix = _text(
        _("The primary domain"), max_length=100, required=_("Enter the primary domain."), label=_("Primary domain")
    )
    address_line1 = _text(_("The address"), max_length=100, required=_("Enter the address."), label=_("Address line 1"))
    address_line2 = _text(_("The second address line"), max_length=100, label=_("Address line 2 (optional)"))
    city = _text(_("The city"), max_length=100, required=_("Enter the city."), label=_("City"))
    state = _text(_("The state or region"), max_length=100, label=_("State or region (optional)"))
    postal_code = _text(
        _("The postal code"), max_length=20, required=_("Enter the postal code."), label=_("Postal code")
    )
    billing_country = forms.ChoiceField(
        label=_("Billing country"),
        choices=[("", _("Choose a country")), *COUNTRY_CHOICES],
        error_messages={
            "required": _("Choose the customer's billing country."),
            "invalid_choice": _("Choose the customer's billing country from the list."),
        },
    )
    contact_first_name = _text(
        _("The contact's first name"),
        max_length=100,
        required=_("Enter the contact's first name."),
        label=_("First name"),
    )
    contact_last_name = _text(
        _("The contact's last name"),
        max_length=100,
        required=_("Enter the contact's last name."),
        label=_("Last name"),
    )
    contact_email = forms.EmailField(
        label=_("E-mail"),
        max_length=254,
        error_messages={
            "required": _("Enter the contact's e-mail address."),
            "invalid": _("Enter the contact's e-mail address, such as admin@contoso.com."),
        },
    )
    contact_phone = _text(_("The contact's phone number"), max_length=30, label=_("Phone (optional)"))
    mca_accepted = forms.BooleanField(
        label=_("The customer has accepted the Microsoft Customer Agreement"),
        error_messages={"required": _("Confirm that the customer has accepted the Microsoft Customer Agreement.")},
    )
    mca_accepted_by_name = _text(
        _("The name of the person who accepted"),
        max_length=200,
        required=_("Enter the name of the person who accepted."),
        label=_("Accepted by (name)"),
    )
    mca_accepted_by_email = forms.EmailField(
        label=_("Accepted by (e-mail)"),
        max_length=254,
        error_messages={
            "required": _("Enter the e-mail address of the person who accepted."),
            "invalid": _("Enter the e-mail address of the person who accepted, such as admin@contoso.com."),
        },
    )
    mca_accepted_on = IsoDateField(
        label=_("Date accepted (UTC)"),
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"required": _("Enter the date the customer accepted the agreement.")},
    )
    reseller = IdField(required=False)

    def clean_contact_phone(self):
        phone = self.cleaned_data["contact_phone"]
        if phone and not PHONE.fullmatch(phone):
            raise forms.ValidationError(_("Enter the phone number with digits, spaces, +, -, ( and ) only."))
        return phone
