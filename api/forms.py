from datetime import timedelta

from django import forms

EXPIRY_CHOICES = [("30", "30 days"), ("90", "90 days"), ("365", "1 year"), ("never", "Never")]


class ApiTokenForm(forms.Form):
    name = forms.CharField(max_length=100, strip=True, help_text="What the token is for, e.g. your PSA tool.")
    expires = forms.ChoiceField(choices=EXPIRY_CHOICES, initial="90", label="Expires")
    # How many tokens the user had made when the page was drawn (api.tokens.made_so_far): a double submit makes one.
    version = forms.IntegerField(widget=forms.HiddenInput, min_value=0, max_value=2**31 - 1)

    def expires_at(self, now):
        days = self.cleaned_data["expires"]
        return None if days == "never" else now + timedelta(days=int(days))
