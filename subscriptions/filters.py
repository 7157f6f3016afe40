"""The subscription lists' query string (S1), read by a form: filters, sort and the page's cursor.

A list is a page anyone may open with any query string (a bookmark, a link typed by hand): a value the form
refuses is ignored, as if absent, never an error page (`SubscriptionListForm.values`).
"""

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from .renewals import DEFAULT_WINDOW, WINDOWS
from .selectors import ListFilters, decode_cursor
from .states import Status

MAX_PAGE_NUMBER = 10**9  # far past any list's end; a page number is shown, or read as an offset without a cursor
MAX_CURSOR_LENGTH = 2000


class SubscriptionListForm(forms.Form):
    status = forms.ChoiceField(choices=[("", gettext_lazy("All")), *Status.choices], required=False)
    sort = forms.ChoiceField(required=False)  # choices: the list's sorts, each way (__init__)
    page = forms.IntegerField(min_value=1, max_value=MAX_PAGE_NUMBER, required=False)
    # Where the page starts: after the row `after` names, or before the row `before` names (selectors.encode_cursor)
    after = forms.CharField(max_length=MAX_CURSOR_LENGTH, required=False)
    before = forms.CharField(max_length=MAX_CURSOR_LENGTH, required=False)
    # Across customers only (`across_customers`): one offer by id, the text that finds offers to pick, the chips
    offer = forms.IntegerField(min_value=0, max_value=2**63 - 1, required=False)
    offer_name = forms.CharField(max_length=100, required=False)
    window = forms.ChoiceField(choices=[("48h", gettext_lazy("Removal window closes within 48 h"))], required=False)
    renews = forms.ChoiceField(choices=[("30d", gettext_lazy("Renews within 30 days"))], required=False)

    def __init__(self, data, *, sorts: list[str], default_sort: str, across_customers: bool):
        super().__init__(data)
        self.default_sort = default_sort
        self.fields["sort"].choices = [(s, s) for key in sorts for s in (key, f"-{key}")]
        if not across_customers:
            for name in ("offer", "offer_name", "window", "renews"):
                del self.fields[name]

    def clean(self):
        data = super().clean()
        sort = data.get("sort") or self.default_sort
        data["sort"] = sort
        for name in ("after", "before"):
            if data.get(name):
                try:
                    data[name] = decode_cursor(data[name], sort)
                except ValidationError as error:
                    self.add_error(name, error)
            else:
                data[name] = None
        if data.get("after") is not None and data.get("before") is not None:
            self.add_error("before", _("A page starts after a row or before one, not both."))
        return data

    def values(self) -> dict:
        """Every field's value: as cleaned, or its blank value when refused (ignored, as if absent)."""
        self.is_valid()
        blank = {"sort": self.default_sort, "after": None, "before": None, "page": None, "offer": None}
        return {name: self.cleaned_data.get(name, blank.get(name, "")) for name in [*self.fields]}

    def filters(self) -> ListFilters:
        values = self.values()
        return ListFilters(
            status=values["status"],
            offer=values.get("offer"),
            window_soon=values.get("window") == "48h",
            renews_soon=values.get("renews") == "30d",
        )


class RenewalsWindowForm(forms.Form):
    """The Renewals page's window: what renews (or ends) in the next 30, 60 or 90 days. Any other value, or none, is
    the default 30 days, as a list's other unknown inputs are ignored: a page anyone may open with any query string."""

    within = forms.TypedChoiceField(
        choices=[(days, days) for days in WINDOWS],  # their words in the request's language: __init__
        coerce=int,
        required=False,
        empty_value=DEFAULT_WINDOW,
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["within"].choices = [
            (days, ngettext("%(count)s day", "%(count)s days", days) % {"count": days}) for days in WINDOWS
        ]

    def days(self) -> int:
        return self.cleaned_data["within"] if self.is_valid() else DEFAULT_WINDOW
