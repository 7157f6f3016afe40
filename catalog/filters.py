"""C2: the catalog's filters, kept in the query string: one django-filter FilterSet, whose form draws them and whose
`qs` applies them (catalog/listing.py)."""

import django_filters
from django import forms
from django.utils.translation import gettext_lazy as _

from catalog.models import Order, Product, Sku, offer_search


class OfferFilter(django_filters.FilterSet):
    PUBLISHER_CHOICES = [("microsoft", "Microsoft"), ("partner", _("Partner"))]

    q = django_filters.CharFilter(
        method="search",
        label=_("Search"),
        widget=forms.TextInput(attrs={"placeholder": _("Search offers"), "type": "search"}),
    )
    publisher = django_filters.MultipleChoiceFilter(
        choices=PUBLISHER_CHOICES, method="by_publisher", widget=forms.CheckboxSelectMultiple, label=_("Publisher")
    )
    billing_type = django_filters.MultipleChoiceFilter(
        field_name="product__billing_type",
        choices=Product.BillingType.choices,
        widget=forms.CheckboxSelectMultiple,
        label=_("Billing type"),
    )
    category = django_filters.MultipleChoiceFilter(
        field_name="product__category",
        choices=Product.Category.choices,
        widget=forms.CheckboxSelectMultiple,
        label=_("Category"),
    )

    class Meta:
        model = Sku
        fields = ["q", "publisher", "billing_type", "category"]

    # The checkbox filters, in the order the page draws them.
    CHECKBOXES = ("publisher", "billing_type", "category")

    def checkbox_fields(self):
        """The form's bound fields of the checkbox filters, for the template to draw."""
        return [self.form[name] for name in self.CHECKBOXES]

    def narrows(self) -> bool:
        """Whether a filter is set (a value the form rejects is ignored, as `qs` ignores it): if not, `qs` is every
        offer, and the catalog lists them from its cached facts without asking the database (catalog/listing.py)."""
        if not self.is_bound:
            return False
        self.form.is_valid()  # validates it, as `qs` does: cleaned_data holds the valid values only
        return any(value not in (None, "", [], ()) for value in self.form.cleaned_data.values())

    def search(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(offer_search(value))

    def by_publisher(self, queryset, name, value):
        if set(value) == {"microsoft", "partner"} or not value:
            return queryset
        return queryset.filter(product__publisher__is_microsoft=("microsoft" in value))


class OrderFilter(django_filters.FilterSet):
    """The partner's orders across customers (O1) by status, the chips of the orders page; a status that is none of
    the choices lists every order, as a list's other unknown inputs do."""

    status = django_filters.ChoiceFilter(choices=Order.Status.choices, label=_("Status"))

    class Meta:
        model = Order
        fields = ["status"]
