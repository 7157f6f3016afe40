from datetime import timedelta

from django import forms
from django.utils.translation import gettext_lazy as _

EXPIRY_CHOICES = [("30", _("30 days")), ("90", _("90 days")), ("365", _("1 year")), ("never", _("Never"))]


class ApiTokenForm(forms.Form):
    name = forms.CharField(
        max_length=100, strip=True, label=_("Name"), help_text=_("What the token is for, e.g. your PSA tool.")
    )
    expires = forms.ChoiceField(choices=EXPIRY_CHOICES, initial="90", label=_("Expires"))
    # How many tokens the user had made when the page was drawn (api.tokens.made_so_far): a double submit makes one.
    version = forms.IntegerField(widget=forms.HiddenInput, min_value=0, max_value=2**31 - 1)

    def expires_at(self, now):
        days = self.cleaned_data["expires"]
        return None if days == "never" else now + timedelta(days=int(days))
