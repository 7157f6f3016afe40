"""The customer list's query string, read by a form: a value it refuses is ignored, as if absent (a list anyone may
open with any query string is never an error page)."""

from django import forms
from django.utils.translation import gettext_lazy as _

from .models import COUNTRY_CHOICES, Customer


class SearchField(forms.CharField):
    """What was typed into a search box, its NUL characters dropped: no stored text has one (PostgreSQL refuses them
    even in a LIKE pattern), so the rest of the text finds what it finds."""

    def to_python(self, value):
        return super().to_python(value.replace("\x00", "") if isinstance(value, str) else value)


class CustomerListForm(forms.Form):
    # The top bar's search too: a customer's name, domain or id, a subscription's friendly name or id
    q = SearchField(max_length=200, required=False)
    segment = forms.ChoiceField(choices=[("", _("All segments")), *Customer.Segment.choices], required=False)
    country = forms.ChoiceField(choices=[("", _("All countries")), *COUNTRY_CHOICES], required=False)
    # (The page number is the paginator's to read: portal.pagination.ClampedPaginator, a page whatever is asked.)

    def values(self) -> dict:
        """Every field's value: as cleaned, or blank when refused."""
        self.is_valid()
        return {name: self.cleaned_data.get(name, "") for name in self.fields}
