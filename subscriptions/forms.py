"""The forms of the subscription page's panels, the Check upgrades and Convert trial panels and the Transfers pages.

Each parses what its page posts into the arguments of one service call and refuses what is not the right shape (not a
number, not a date, a NUL) with a sentence next to the field; the rules (an offer's minimum, a listed target, who may
act) are the service's, whose refusal the view puts on the same form (`portal.forms.refuse`). Every form that
changes an existing object carries its `version`, passed to the service as posted: the service, not the form,
answers a stale page (409).
"""

import uuid

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import ProhibitNullCharactersValidator
from django.utils.translation import gettext_lazy as _

from catalog.models import TRIAL_LICENSES, BillingFrequency, Term
from portal.forms import IdField, IsoDateField, QuantityField, TextField, VersionField, whole_number

NATURAL_END = "natural"  # the Manage renewal panel's "Natural end" (posted as ""), for the service's NATURAL_END


class ServiceTextField(forms.CharField):
    """A text the service checks whole (accept_relationship refuses control characters, NUL among them, in its own
    words), so this field passes it on as typed, NUL included."""

    def __init__(self, **kwargs):
        super().__init__(required=False, strip=False, **kwargs)
        self.validators = [v for v in self.validators if not isinstance(v, ProhibitNullCharactersValidator)]


class VersionedForm(forms.Form):
    """A confirmation (suspend, reactivate, cancel, the publisher's set-up, a transfer's cancel): only the version."""

    version = VersionField()


class QuantityPreviewForm(forms.Form):
    """Q1: the quantity typed into Change licenses, for the preview (GET)."""

    quantity = QuantityField()


class QuantityForm(VersionedForm):
    """Q1–Q6: the previewed change, confirmed (its version refuses a page opened before the quantity changed)."""

    quantity = QuantityField()


class AutoRenewForm(VersionedForm):
    on = forms.TypedChoiceField(
        choices=[("1", _("On")), ("0", _("Off"))],
        coerce=lambda value: value == "1",
        error_messages={
            "required": _("Choose to turn auto-renew on or off."),
            "invalid_choice": _("Choose to turn auto-renew on or off."),
        },
    )


class RenameForm(VersionedForm):
    # Its length (S2, at most 200) is the service's rule; the page's maxlength only helps the person typing.
    friendly_name = TextField(what=_("A friendly name"))


class AddonsForm(VersionedForm):
    """A1–A5: a quantity for each add-on, posted as `addon-<offer id>`. The fields are the `addon-…` the post holds,
    not only those the page showed: which add-ons this subscription can have (A3) is the service's answer, so one
    the page did not offer is passed on for it to refuse, not dropped."""

    PREFIX = "addon-"
    NOT_OFFERED = _("That add-on is not available for this subscription.")

    def __init__(self, data=None, **kwargs):
        super().__init__(data, **kwargs)
        for name in data or {}:
            if name.startswith(self.PREFIX):
                self.fields[name] = forms.CharField(required=False)

    def clean(self):
        quantities, field = {}, QuantityField()
        for name in self.fields:
            if not name.startswith(self.PREFIX):
                continue
            raw = self.cleaned_data.get(name, "")
            if raw in ("", "0"):
                continue  # an add-on left at 0 is not bought
            sku_id = whole_number(name.removeprefix(self.PREFIX))
            if sku_id is None:
                self.add_error(None, self.NOT_OFFERED)
                continue
            try:
                quantities[sku_id] = field.clean(raw)
            except ValidationError as refused:
                self.add_error(name, refused)
        self.cleaned_data["quantities"] = quantities
        return self.cleaned_data

    def rows(self, eligible):
        """The page's add-on rows: (offer, its price, its bound field), so a refused form shows what was typed and
        the reason next to it. An offer the post did not name gets its field here, empty."""
        for sku, _price in eligible:
            self.fields.setdefault(f"{self.PREFIX}{sku.pk}", forms.CharField(required=False))
        return [(sku, price, self[f"{self.PREFIX}{sku.pk}"]) for sku, price in eligible]


class ScheduleRenewalForm(VersionedForm):
    """R1, R3, K8, K11, U2: the Manage renewal panel. A field the post leaves out keeps what is scheduled (None); an
    empty SKU is "keep the current one", an empty end date the natural end. The term and billing frequency are
    passed as posted: which ones the offer is sold with is the service's answer."""

    quantity = QuantityField(required=False)
    term = TextField(what=_("A term"))
    billing_frequency = TextField(what=_("A billing frequency"))
    target_sku = IdField(required=False, error_messages={"invalid": _("Choose one of the listed upgrade targets.")})
    aligned_end_date = IsoDateField(required=False)

    def __init__(self, data=None, *, current_sku_id=None, **kwargs):
        super().__init__(data, **kwargs)
        self.current_sku_id = current_sku_id

    def clean(self):
        data = self.cleaned_data
        data["term"] = data.get("term") or None
        data["billing_frequency"] = data.get("billing_frequency") or None
        posted = self.data
        if "target_sku" in posted and "target_sku" in data:
            data["target_sku_id"] = data["target_sku"] if data["target_sku"] is not None else self.current_sku_id
        if "aligned_end_date" in posted and "aligned_end_date" in data:
            data["aligned_end_date_choice"] = data["aligned_end_date"] or NATURAL_END
        return data

    def choices(self, natural_end) -> dict:
        """The SKU and end date to pass on, only for the fields posted (`natural_end` is the service's marker)."""
        data, choices = self.cleaned_data, {}
        if "target_sku_id" in data:
            choices["target_sku_id"] = data["target_sku_id"]
        if "aligned_end_date_choice" in data:
            end = data["aligned_end_date_choice"]
            choices["aligned_end_date"] = natural_end if end == NATURAL_END else end
        return choices

    def typed(self) -> dict:
        """What was posted, for the panel to show again next to the reason it was refused."""
        return {
            "quantity": self["quantity"].value() or "",
            "term": self.data.get("term", ""),
            "billing_frequency": self.data.get("billing_frequency", ""),
            "sku_id": self.cleaned_data.get("target_sku") or self.current_sku_id,
            "aligned_end_date": str(self.data.get("aligned_end_date", "")).strip()[:10],
        }


class UnscheduleForm(VersionedForm):
    change = IdField(
        error_messages={
            "required": _("Choose a scheduled change to remove."),
            "invalid": _("Choose a scheduled change to remove."),
        }
    )


class NextChargeFrequencyForm(VersionedForm):
    """N7: which frequencies the subscription can switch to is the service's answer (cycles.py), so the value is
    passed on as posted (one that is not a frequency, NUL included, is refused there before any query)."""

    billing_frequency = ServiceTextField()


class UpgradeForm(VersionedForm):
    """U2–U7: the target, licenses, term, billing frequency and existing subscription of a preview (GET) or of
    "Yes, upgrade" (POST, `confirm=yes`)."""

    INTO = _("Choose a new subscription or one of the listed existing subscriptions.")

    target = IdField(
        error_messages={
            "required": _("Choose one of the listed upgrade targets."),
            "invalid": _("Choose one of the listed upgrade targets."),
        }
    )
    quantity = QuantityField()
    term = TextField(what=_("A term"))
    billing_frequency = TextField(what=_("A billing frequency"))
    into = forms.UUIDField(required=False, error_messages={"invalid": INTO})
    confirm = forms.CharField(required=False)

    def arguments(self) -> dict:
        data = self.cleaned_data
        return {
            "target_sku_id": data["target"],
            "quantity": data["quantity"],
            "term": data["term"] or None,
            "billing_frequency": data["billing_frequency"] or None,
            "into_subscription_id": data["into"],
        }


class ConversionForm(VersionedForm):
    """TR2–TR8: what the trial converts to (`sku-<offer id>` or `sub-<subscription id>`), when, and with which term,
    billing frequency and quantity; TR2's defaults (an annual term billed monthly, the trial's 25 licenses) fill
    what the form leaves empty. Into an existing subscription the quantity is TR7's, so the one typed is not read."""

    TARGET = _("Choose the paid offer, a higher offer or an existing subscription to convert to.")

    target = forms.CharField(error_messages={"required": TARGET})
    when = forms.ChoiceField(
        choices=[("now", _("Now")), ("scheduled", _("At the trial's end"))],
        required=False,
        error_messages={"invalid_choice": _("Choose to convert now or at the trial's end.")},
    )
    term = TextField(what=_("A term"))
    billing_frequency = TextField(what=_("A billing frequency"))
    quantity = forms.CharField(required=False)

    def clean_target(self):
        kind, _dash, value = self.cleaned_data["target"].partition("-")
        if kind == "sku" and whole_number(value) is not None:
            return {"target_sku_id": whole_number(value), "into_subscription_id": None}
        if kind == "sub":
            try:
                return {"target_sku_id": None, "into_subscription_id": uuid.UUID(value)}
            except ValueError:
                pass
        raise ValidationError(self.TARGET)

    def clean(self):
        data = self.cleaned_data
        data["when"] = data.get("when") or "now"
        data["term"] = data.get("term") or Term.P1Y
        data["billing_frequency"] = data.get("billing_frequency") or BillingFrequency.MONTHLY
        target = data.get("target")
        if target and not target["into_subscription_id"]:
            try:
                data["quantity"] = QuantityField().clean(data.get("quantity") or str(TRIAL_LICENSES))
            except ValidationError as refused:
                self.add_error("quantity", refused)
        else:
            data["quantity"] = None
        return data

    @property
    def scheduled(self) -> bool:
        return self.cleaned_data["when"] == "scheduled"

    def arguments(self) -> dict:
        data = self.cleaned_data
        return {
            **data["target"],
            "term": data["term"],
            "billing_frequency": data["billing_frequency"],
            "quantity": data["quantity"],
        }

    def choice(self) -> dict:
        """What the panel shows selected: what was typed, with TR2's defaults for what was not."""
        data = self.data
        return {
            "target": data.get("target", ""),
            "when": data.get("when") or "now",
            "term": data.get("term") or Term.P1Y,
            "billing_frequency": data.get("billing_frequency") or BillingFrequency.MONTHLY,
            "quantity": data.get("quantity") or str(TRIAL_LICENSES),
        }


class RelationshipForm(forms.Form):
    """TF1: the company, its domain and its administrator's address; which are acceptable is the service's rule."""

    company_name = TextField(what=_("A company name"))
    domain = TextField(what=_("A domain"))
    contact_email = TextField(what=_("An e-mail address"))


class TransferFileForm(forms.Form):
    """TF2: the customer (an id; one outside the partner's customers is 404, like its URL would be), the current
    partner's PartnerID and the address to notify."""

    customer = forms.UUIDField(error_messages={"required": _("Choose a customer."), "invalid": _("Choose a customer.")})
    source_partner_id = TextField(what=_("A PartnerID"))
    notification_email = TextField(what=_("An e-mail address"))


class PickedField(forms.Field):
    """The values of a group of checkboxes, as posted (a list of text)."""

    widget = forms.CheckboxSelectMultiple

    def to_python(self, value):
        return [str(item) for item in value] if value else []


class TransferCompleteForm(VersionedForm):
    """TF3: the subscriptions picked, as posted: whether each is the customer's and transferable is the service's
    answer (a pick the page no longer shows is a 409 there, as the page is out of date)."""

    subscriptions = PickedField(required=False)


class AcceptRelationshipForm(forms.Form):
    """TF1, the customer's page: their organisation's details, judged by the service."""

    company_name = ServiceTextField()
    billing_country = ServiceTextField()
    segment = ServiceTextField()


class MailboxForm(forms.Form):
    """The demo's mailbox: an address to read."""

    to = forms.EmailField(required=False, max_length=254)
