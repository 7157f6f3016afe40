"""C2: the catalog's filters, kept in the query string.

`OfferFilter` reads and validates them (its form) and can filter a Sku queryset; the catalog page applies the
same filters to its in-memory offers through `OfferSearch`, which the tests hold to the queryset's results.
"""

from dataclasses import dataclass
from html import escape

import django_filters
from django import forms
from django.db.models import Q
from django.utils.safestring import mark_safe

from catalog.models import Product, Sku


class OfferFilter(django_filters.FilterSet):
    PUBLISHER_CHOICES = [("microsoft", "Microsoft"), ("partner", "Partner")]

    q = django_filters.CharFilter(method="search", label="Search",
                                  widget=forms.TextInput(attrs={"placeholder": "Search offers", "type": "search"}))
    publisher = django_filters.MultipleChoiceFilter(choices=PUBLISHER_CHOICES, method="by_publisher",
                                                    widget=forms.CheckboxSelectMultiple, label="Publisher")
    billing_type = django_filters.MultipleChoiceFilter(field_name="product__billing_type", choices=Product.BillingType.choices,
                                                       widget=forms.CheckboxSelectMultiple, label="Billing type")
    category = django_filters.MultipleChoiceFilter(field_name="product__category", choices=Product.Category.choices,
                                                   widget=forms.CheckboxSelectMultiple, label="Category")

    class Meta:
        model = Sku
        fields = ["q", "publisher", "billing_type", "category"]

    def checkboxes(self) -> list[tuple[str, str, list[tuple[str, str, bool]]]]:
        """The checkbox filters as (name, legend, [(value, label, checked)]), so the page draws them without
        rendering form widgets (the same markup as CheckboxSelectMultiple, at a fraction of the cost)."""
        data = self.form.data
        groups = []
        for name in ("publisher", "billing_type", "category"):
            chosen = set(data.getlist(name)) if hasattr(data, "getlist") else set()
            field = self.filters[name]
            groups.append((name, field.label, [(str(value), label, str(value) in chosen)
                                               for value, label in field.extra["choices"]]))
        return groups

    def search(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(Q(name__icontains=value) | Q(product__name__icontains=value)
                               | Q(product__publisher__name__icontains=value) | Q(sku_id__icontains=value))

    def by_publisher(self, queryset, name, value):
        if set(value) == {"microsoft", "partner"} or not value:
            return queryset
        return queryset.filter(product__publisher__is_microsoft=("microsoft" in value))


_FILTER_NAMES = ("q", "publisher", "billing_type", "category")
_MAX_PARSED = 256


@dataclass(frozen=True, slots=True)
class OfferSearch:
    """One catalog query string's filters, as `OfferFilter` reads them, for offers held in memory.

    An offer here is anything with `is_microsoft`, `billing_type`, `category` and `search_text` (lower-cased
    name, product name, publisher name and SKU id): catalog.listing.Offer.
    """

    key: tuple  # the raw values of the filter parameters
    filters: bool  # whether any filter applies
    text: str  # the search, lower-cased ("" for none)
    microsoft: bool | None  # None: either publisher
    billing_types: frozenset[str] | None  # None: any
    categories: frozenset[str] | None
    checkboxes_html: str  # OfferFilter.checkboxes() as the page's fieldsets (escaped), drawn once per query string

    def matches(self, offer) -> bool:
        # The same tests as OfferFilter's filters: icontains on four columns (Python's lower() folds the case
        # of every letter, as PostgreSQL's UPPER does; SQLite's LIKE folds ASCII only), equality for the rest.
        if self.microsoft is not None and offer.is_microsoft != self.microsoft:
            return False
        if self.billing_types is not None and offer.billing_type not in self.billing_types:
            return False
        if self.categories is not None and offer.category not in self.categories:
            return False
        return not self.text or any(self.text in text for text in offer.search_text)


_parsed: dict[tuple, OfferSearch] = {}


def offer_search(data) -> OfferSearch:
    """The filters of a query string (a QueryDict), read by OfferFilter's own form: a value the form rejects is
    ignored, as django-filter ignores it. Remembered by the raw values, as the same few queries come back."""
    key = tuple((name, tuple(data.getlist(name))) for name in _FILTER_NAMES if name in data)
    found = _parsed.get(key)
    if found is None:
        found = _read(key, data)
        if len(_parsed) >= _MAX_PARSED:
            _parsed.clear()
        _parsed[key] = found
    return found


def _read(key: tuple, data) -> OfferSearch:
    filterset = OfferFilter(data or None, queryset=Sku.objects.none())
    cleaned = {}
    if filterset.is_bound:
        filterset.form.is_valid()  # keeps only the valid fields in cleaned_data, which is what OfferFilter.qs applies
        cleaned = filterset.form.cleaned_data
    text = (cleaned.get("q") or "").strip().lower()  # OfferFilter.search
    publishers = set(cleaned.get("publisher") or ())
    # OfferFilter.by_publisher: both or neither is no filter.
    microsoft = None if publishers in (set(), {"microsoft", "partner"}) else "microsoft" in publishers
    # MultipleChoiceFilter: an empty choice is no filter; otherwise any of the chosen values.
    billing_types = frozenset(cleaned["billing_type"]) if cleaned.get("billing_type") else None
    categories = frozenset(cleaned["category"]) if cleaned.get("category") else None
    return OfferSearch(
        key=key, filters=bool(text) or microsoft is not None or billing_types is not None or categories is not None,
        text=text, microsoft=microsoft, billing_types=billing_types, categories=categories,
        checkboxes_html=mark_safe("".join(_fieldset(*group) for group in filterset.checkboxes())),
    )


def _fieldset(name: str, legend: str, choices: list[tuple[str, str, bool]]) -> str:
    """The markup of Django's CheckboxSelectMultiple for one filter, escaped as the template's {{ }} would."""
    name, options = escape(name), []
    for n, (value, label, checked) in enumerate(choices):
        options.append(f'<div><label for="id_{name}_{n}"><input type="checkbox" name="{name}" value="{escape(value)}" '
                       f'id="id_{name}_{n}"{" checked" if checked else ""}> {escape(label)}</label></div>')
    return f'<fieldset><legend>{escape(legend)}</legend><div id="id_{name}">{"".join(options)}</div></fieldset>\n  ' 
