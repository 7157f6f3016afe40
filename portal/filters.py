"""The customer list's query string, read by a form: a value it refuses is ignored, as if absent (a list anyone may
open with any query string is never an error page)."""

from django import forms

from .models import COUNTRY_CHOICES, Customer


class CustomerListForm(forms.Form):
    # The top bar's search too: a customer's name, domain or id, a subscription's friendly name or id
    q = forms.CharField(max_length=200, required=False)
    segment = forms.ChoiceField(choices=[("", "All segments"), *Customer.Segment.choices], required=False)
    country = forms.ChoiceField(choices=[("", "All countries"), *COUNTRY_CHOICES], required=False)
    # (The page number is the paginator's to read: portal.pagination.ClampedPaginator, a page whatever is asked.)

    def values(self) -> dict:
        """Every field's value: as cleaned, or blank when refused."""
        self.is_valid()
        return {name: self.cleaned_data.get(name, "") for name in self.fields}
