"""The webhooks page's forms: what a partner types in, parsed; whether the URL and events are allowed is
api.webhooks' to say (the service), so a script calling it is refused the same way."""

from django import forms
from django.utils.translation import gettext_lazy as _

from portal.forms import TextField, VersionField

from .webhooks import EVENTS


class EndpointForm(forms.Form):
    url = TextField(
        what=_("The URL"),
        required=True,
        max_length=500,
        label=_("URL"),
        help_text=_(
            "Where each event is POSTed as signed JSON: https://, or http:// to 127.0.0.1 for a test receiver."
        ),
        error_messages={"required": _("Enter the URL that receives the events.")},
    )
    events = forms.MultipleChoiceField(
        choices=list(EVENTS.items()),
        widget=forms.CheckboxSelectMultiple,
        label=_("Events"),
        error_messages={
            "required": _("Choose at least one of the listed events."),
            "invalid_choice": _("Choose at least one of the listed events."),
        },
    )
    secret = TextField(
        what=_("The secret"),
        label=_("Secret"),
        max_length=200,
        help_text=_("Signs every delivery (HMAC-SHA256). Leave it empty and one is made for you, shown once."),
    )
    is_active = forms.BooleanField(required=False, initial=True, label=_("Active"))


class NewEndpointForm(EndpointForm):
    # Drawn fresh with the page: the same form submitted twice makes one endpoint (api.webhooks.create_endpoint).
    form_id = forms.UUIDField(widget=forms.HiddenInput, error_messages={"invalid": _("Reload the page and try again.")})


class EditEndpointForm(EndpointForm):
    version = VersionField()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["secret"].help_text = _("Leave it empty to keep the current secret; type a new one to replace it.")


class EndpointActionForm(forms.Form):
    """Delete, Send test event: the version of the endpoint as the page showed it."""

    version = VersionField()
