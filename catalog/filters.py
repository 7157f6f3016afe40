"""C2: the catalog's filters, kept in the query string."""

import django_filters
from django import forms
from django.db.models import Q

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
