"""The catalog's inputs (C1, K1, K3, K4, K5, K11), read by Django forms with messages a partner understands.

A form parses what was typed; the rules (K8's range, K11's dates, K4's and K5's resellers) are the services'
(catalog/cart.py, catalog/checkout.py): a refused form, or a service's refusal, re-renders the page with 422.
"""

from django import forms
from django.utils.translation import gettext_lazy as _

from portal.forms import NOT_A_QUANTITY, IdField, IsoDateField, QuantityField, VersionField


def listed_id(message: str, **kwargs) -> IdField:
    """An id picked from a list the page drew; anything else is refused with `message`."""
    return IdField(error_messages={"invalid": message, "required": message}, **kwargs)


class SentQuantityField(QuantityField):
    """A card's quantity: offers without a quantity field (usage-based, trials) send none, but one sent must be
    filled (a blank is not "1")."""

    def to_python(self, value):
        if value is not None and not str(value).strip():
            raise forms.ValidationError(NOT_A_QUANTITY, code="invalid")
        return super().to_python(value)


class VersionForm(forms.Form):
    """The version the page was drawn with (portal/versions.py): the service compares it, so it is read as text."""

    version = VersionField()


class AddToCartForm(VersionForm):
    """A card's "Add to cart" (K1): the way to buy it, and its quantity (offers without a quantity field, usage-based
    and trials, send none: 1; the service gives a trial its licenses, TR1)."""

    availability = listed_id(_("Choose a term and billing frequency."))
    quantity = SentQuantityField(required=False)

    def clean_quantity(self):
        quantity = self.cleaned_data["quantity"]
        return 1 if quantity is None else quantity


class CartLineForm(VersionForm):
    """A cart line's update: its quantity and the end date it aligns to (K11), none for the full term."""

    quantity = QuantityField()
    aligned_end_date = IsoDateField(required=False)


class ResellerForm(VersionForm):
    """K4: the indirect reseller picked from the page's list, or none."""

    reseller = listed_id(_("Choose a reseller from the list."), required=False)


class AdditionalResellerForm(VersionForm):
    """K5: an additional reseller, by the PartnerID typed (the service says whether it may be declared)."""

    partner_id = forms.CharField(
        required=False,
        error_messages={
            "null_characters_not_allowed": _("A PartnerID contains a character that is not allowed (NUL).")
        },
    )

    def clean_partner_id(self):
        return self.cleaned_data["partner_id"][:40]


class PurchaseForm(VersionForm):
    """K3's attestation, and K4's reseller as the page showed it (sent only by an indirect provider's page)."""

    attest = forms.CharField(required=False)

    def clean_attest(self) -> bool:
        # Ticked is what a browser sends for a checkbox without a value: "on". Anything else is not a confirmation.
        return self.cleaned_data["attest"] == "on"

    reseller = listed_id(_("Choose a reseller from the list."), required=False)


class CatalogViewForm(forms.Form):
    """What the catalog shows beside its filters: with show_all ticked, also the offers not sold to this customer,
    each with the reason (C3)."""

    show_all = forms.BooleanField(required=False)
