"""Admin for the catalog (editable) and for carts and orders (view only: they are written by
the cart and checkout services, and an order is a record of what was bought).

The catalog belongs to no partner: every partner sells from it, so partner staff view it (SHARED),
and only the platform operator edits it. Carts and orders are a partner's own (OWN)."""

import re

from django.contrib import admin
from django.db.models import Count
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from portal.admin import ReadOnlyAdminMixin, money, utc_field
from portal.admin_site import PartnerScopedAdmin, PartnerScopedInline, PartnerStaff
from subscriptions import recovery

from .models import (
    Availability,
    Cart,
    CartAdditionalReseller,
    CartLine,
    Order,
    OrderAdditionalReseller,
    OrderLine,
    Product,
    Publisher,
    Sku,
    UpgradePath,
)

# --- Catalog --------------------------------------------------------------------------------


@admin.register(Publisher)
class PublisherAdmin(PartnerScopedAdmin):
    # The catalog (publishers, products, SKUs, prices, upgrade paths) is shared: see the module docstring.
    partner_staff = PartnerStaff.SHARED
    list_display = ("name", "is_microsoft", "product_count")
    # Stated here as well as on the model: a counted (GROUP BY) query drops Meta.ordering, and the autocomplete
    # then pages an unordered list.
    ordering = ("-is_microsoft", "name")
    list_filter = ("is_microsoft",)
    search_fields = ("name",)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_product_count=Count("products"))

    @admin.display(description=_("Products"), ordering="_product_count")
    def product_count(self, obj):
        return obj._product_count


@admin.register(Product)
class ProductAdmin(PartnerScopedAdmin):
    partner_staff = PartnerStaff.SHARED
    list_display = ("name", "product_id", "publisher", "billing_type", "category", "sku_count")
    ordering = ("name", "pk")  # counted: see PublisherAdmin
    list_select_related = ("publisher",)
    list_filter = ("billing_type", "category", "publisher")
    search_fields = ("name", "product_id", "publisher__name")
    autocomplete_fields = ("publisher",)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_sku_count=Count("skus"))

    @admin.display(description=_("SKUs"), ordering="_sku_count")
    def sku_count(self, obj):
        return obj._sku_count


class AvailabilityInline(PartnerScopedInline, admin.TabularInline):
    model = Availability
    extra = 0
    fields = ("term", "billing_frequency", "unit_price", "currency")

    def get_queryset(self, request):
        # str(availability), each row's heading, names the SKU.
        return super().get_queryset(request).select_related("sku")


class UpgradePathInline(PartnerScopedInline, admin.TabularInline):
    model = UpgradePath
    fk_name = "source"
    extra = 0
    fields = ("target", "supported", "note")
    autocomplete_fields = ("target",)
    verbose_name = _("upgrade path from this SKU")
    verbose_name_plural = _("upgrade paths from this SKU")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("source", "target")


@admin.register(Sku)
class SkuAdmin(PartnerScopedAdmin):
    # Shared, but partner staff don't see the partners an offer is exclusive to (C4e): PartnerScopedAdmin hides
    # a shared row's partner fields.
    partner_staff = PartnerStaff.SHARED
    list_display = (
        "name",
        "sku_id",
        "product",
        "publisher",
        "commerce",
        "is_addon",
        "is_trial",
        "one_per_customer",
        "min_quantity",
        "max_quantity",
        "transactable_in_portal",
    )
    list_select_related = ("product__publisher",)
    list_filter = (
        "commerce",
        "is_addon",
        "is_trial",
        "one_per_customer",
        "offered_through_csp",
        "transactable_in_portal",
        "product__billing_type",
        "product__category",
        "product__publisher",
    )
    search_fields = ("name", "sku_id", "product__name", "product__product_id", "product__publisher__name")
    # Autocomplete rather than filter_horizontal: the catalog and the partner list are large.
    autocomplete_fields = ("product", "trial_of", "base_skus", "exclusive_partners")
    inlines = [AvailabilityInline, UpgradePathInline]
    fieldsets = (
        (None, {"fields": ("product", "sku_id", "name", "commerce", "segments")}),
        (_("Buying rules"), {"fields": ("min_quantity", "max_quantity", "one_per_customer", "available_countries")}),
        (_("Trial"), {"fields": ("is_trial", "trial_of", "free_trial_days")}),
        (_("Add-on"), {"fields": ("is_addon", "base_skus", "addon_limit")}),
        (
            _("Marketplace"),
            {"fields": ("offered_through_csp", "transactable_in_portal", "exclusive_partners", "publisher_setup_url")},
        ),
    )

    @admin.display(description=_("Publisher"), ordering="product__publisher__name")
    def publisher(self, obj):
        return obj.product.publisher


@admin.register(Availability)
class AvailabilityAdmin(PartnerScopedAdmin):
    partner_staff = PartnerStaff.SHARED
    list_display = ("sku", "term", "billing_frequency", "unit_price", "currency")
    list_select_related = ("sku",)
    list_filter = ("term", "billing_frequency", "currency")
    search_fields = ("sku__name", "sku__sku_id")
    autocomplete_fields = ("sku",)


@admin.register(UpgradePath)
class UpgradePathAdmin(PartnerScopedAdmin):
    partner_staff = PartnerStaff.SHARED
    list_display = ("source", "target", "supported", "note")
    list_select_related = ("source", "target")
    list_filter = ("supported",)
    search_fields = ("source__name", "source__sku_id", "target__name", "target__sku_id", "note")
    autocomplete_fields = ("source", "target")


# --- Carts (view only) ----------------------------------------------------------------------


class CartLineInline(ReadOnlyAdminMixin, PartnerScopedInline, admin.TabularInline):
    model = CartLine
    extra = 0
    fields = ("availability", "quantity", "aligned_end_date", "added_at_utc")
    readonly_fields = fields

    added_at_utc = utc_field("added_at", _("Added"))

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("availability__sku")


class AdditionalResellerInline(ReadOnlyAdminMixin, PartnerScopedInline, admin.TabularInline):
    """The EU/EFTA additional resellers of a cart or an order, in the declared order (K5)."""

    extra = 0
    fields = ("position", "partner")
    readonly_fields = fields
    verbose_name_plural = _("additional resellers (K5)")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("partner")


class CartAdditionalResellerInline(AdditionalResellerInline):
    model = CartAdditionalReseller


@admin.register(Cart)
class CartAdmin(ReadOnlyAdminMixin, PartnerScopedAdmin):
    # A partner's carts, and their lines and resellers below; a reseller has none (it buys nothing, T1).
    partner_staff = PartnerStaff.OWN
    list_display = ("id", "customer", "partner", "owner", "status", "line_count", "created_at_utc", "expires_at_utc")
    ordering = ("-created_at", "-pk")  # counted: see PublisherAdmin
    list_select_related = ("customer__partner", "owner")
    list_filter = ("status", "created_at")
    search_fields = ("customer__company_name", "customer__partner__name", "owner__username", "owner__email")
    date_hierarchy = "created_at"
    fields = ("customer", "owner", "status", "reseller", "created_at_utc", "expires_at_utc", "order_link")
    readonly_fields = ("created_at_utc", "expires_at_utc", "order_link")
    inlines = [CartLineInline, CartAdditionalResellerInline]

    created_at_utc = utc_field("created_at", _("Created"))
    # K12: a cart is open for CSP_CART_LIFETIME_DAYS after it was created.
    expires_at_utc = utc_field("expires_at", _("Expires"), ordering="created_at")

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_line_count=Count("lines"))

    @admin.display(description=_("Partner"), ordering="customer__partner__name")
    def partner(self, obj):
        return obj.customer.partner

    @admin.display(description=_("Lines"), ordering="_line_count")
    def line_count(self, obj):
        return obj._line_count

    @admin.display(description=_("Order"))
    def order_link(self, obj):
        try:
            return obj.order.number
        except Order.DoesNotExist:
            return None


@admin.register(CartLine)
class CartLineAdmin(ReadOnlyAdminMixin, PartnerScopedAdmin):
    partner_staff = PartnerStaff.OWN
    list_display = ("__str__", "cart", "customer", "quantity", "aligned_end_date", "added_at_utc")
    list_select_related = ("cart__customer", "availability__sku")
    list_filter = ("cart__status", "availability__term", "availability__billing_frequency")
    search_fields = ("cart__customer__company_name", "availability__sku__name", "availability__sku__sku_id")
    fields = ("cart", "availability", "quantity", "aligned_end_date", "added_at_utc")
    readonly_fields = ("added_at_utc",)

    added_at_utc = utc_field("added_at", _("Added"))

    @admin.display(description=_("Customer"), ordering="cart__customer__company_name")
    def customer(self, obj):
        return obj.cart.customer


@admin.register(CartAdditionalReseller)
class CartAdditionalResellerAdmin(ReadOnlyAdminMixin, PartnerScopedAdmin):
    partner_staff = PartnerStaff.OWN
    list_display = ("cart", "customer", "position", "partner")
    list_select_related = ("cart__customer", "partner")
    search_fields = ("cart__customer__company_name", "partner__name", "partner__partner_id")

    @admin.display(description=_("Customer"), ordering="cart__customer__company_name")
    def customer(self, obj):
        return obj.cart.customer


# --- Orders (view only) ---------------------------------------------------------------------

ORDER_NUMBER = re.compile(r"(?:ORD-?)?0*(\d{1,12})", re.IGNORECASE)


class OrderLineInline(ReadOnlyAdminMixin, PartnerScopedInline, admin.TabularInline):
    model = OrderLine
    extra = 0
    fields = (
        "sku",
        "quantity",
        "term",
        "billing_frequency",
        "unit_price",
        "line_total",
        "aligned_end_date",
        "status",
        "fulfilled_at_utc",
    )
    readonly_fields = fields

    fulfilled_at_utc = utc_field("fulfilled_at", _("Fulfilled"))

    @admin.display(description=_("Line total"))
    def line_total(self, obj):
        return money(obj.line_total, obj.currency)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("sku")


class OrderAdditionalResellerInline(AdditionalResellerInline):
    model = OrderAdditionalReseller


class WaitingLongerFilter(admin.SimpleListFilter):
    """Stuck work for an operator: orders whose fulfilment, or a subscription's provisioning, is late (the
    definition the order page and the sweep use, subscriptions.recovery)."""

    title = _("waiting longer than expected")
    parameter_name = "waiting"

    def lookups(self, request, model_admin):
        return [("yes", _("Waiting longer than expected"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(pk__in=recovery.stuck_orders(timezone.now()).values("pk"))
        return queryset


@admin.register(Order)
class OrderAdmin(ReadOnlyAdminMixin, PartnerScopedAdmin):
    # A partner's orders, and their lines and resellers below; a reseller's: those it is the reseller of (K4).
    partner_staff = PartnerStaff.OWN
    ordering = ("-created_at", "-pk")  # counted: see PublisherAdmin
    list_display = (
        "number",
        "customer",
        "partner",
        "placed_by",
        "status",
        "total_display",
        "attested_as",
        "reseller",
        "line_count",
        "created_at_utc",
    )
    list_select_related = ("customer__partner", "placed_by", "reseller")
    list_filter = (
        "status",
        "attested_as",
        "currency",
        "created_at",
        ("customer__partner", admin.RelatedOnlyFieldListFilter),
    )
    search_fields = ("customer__company_name", "customer__partner__name", "placed_by__username", "placed_by__email")
    search_help_text = _("Order number (ORD-000123), customer, partner or the staff user who placed it.")
    date_hierarchy = "created_at"
    fields = (
        "number",
        "customer",
        "cart",
        "placed_by",
        "status",
        "attested_as",
        "reseller",
        "total_display",
        "created_at_utc",
    )
    readonly_fields = ("number", "total_display", "created_at_utc")
    inlines = [OrderLineInline, OrderAdditionalResellerInline]

    created_at_utc = utc_field("created_at", _("Placed"))

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_line_count=Count("lines"))

    def get_search_results(self, request, queryset, search_term):
        found, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        # Staff quote order numbers as shown ("ORD-000123"), which isn't a column to search.
        match = ORDER_NUMBER.fullmatch(search_term.strip())
        if match:
            found = found | queryset.filter(pk=int(match[1]))
        return found, may_have_duplicates

    @admin.display(description=_("Order"), ordering="pk")
    def number(self, obj):
        return obj.number

    @admin.display(description=_("Partner"), ordering="customer__partner__name")
    def partner(self, obj):
        return obj.customer.partner

    @admin.display(description=_("Total"), ordering="total")
    def total_display(self, obj):
        return money(obj.total, obj.currency)

    @admin.display(description=_("Lines"), ordering="_line_count")
    def line_count(self, obj):
        return obj._line_count

    # Stuck work: the filter on the list, and on an order's page its verdict and its background tasks.
    STUCK_WORK_FIELDS = ("waiting", "background_tasks")

    def get_list_filter(self, request):
        return (WaitingLongerFilter, *super().get_list_filter(request))

    def get_fields(self, request, obj=None):
        return (*super().get_fields(request, obj), *self.STUCK_WORK_FIELDS)

    def get_readonly_fields(self, request, obj=None):
        return (*super().get_readonly_fields(request, obj), *self.STUCK_WORK_FIELDS)

    @admin.display(description=_("Waiting longer than expected"))
    def waiting(self, obj):
        delay = recovery.order_delay(obj, timezone.now())
        return delay.summary if delay else "No"

    @admin.display(description=_("Background tasks"))
    def background_tasks(self, obj):
        now = timezone.now()
        rows = list(recovery.order_tasks(obj))
        if not rows:
            return "None"
        return render_to_string(
            "admin/catalog/order_tasks.html",
            {
                "tasks": [
                    {
                        "name": row.task_name,
                        "url": _task_url(row),
                        "args": ", ".join(map(str, row.args_kwargs.get("args", []))),
                        "state": recovery.task_state(row, now),
                        "enqueued_at": row.enqueued_at,
                        "started_at": row.started_at,
                        "finished_at": row.finished_at,
                        "workers": ", ".join(row.worker_ids),
                    }
                    for row in rows
                ]
            },
        )


def _task_url(row) -> str:
    try:
        return reverse("admin:django_tasks_database_dbtaskresult_change", args=[row.pk])
    except NoReverseMatch:  # the task results' admin is not registered
        return ""


@admin.register(OrderLine)
class OrderLineAdmin(ReadOnlyAdminMixin, PartnerScopedAdmin):
    partner_staff = PartnerStaff.OWN
    list_display = (
        "__str__",
        "order_number",
        "customer",
        "sku",
        "quantity",
        "term",
        "billing_frequency",
        "unit_price",
        "line_total",
        "status",
        "fulfilled_at_utc",
    )
    list_select_related = ("order__customer", "sku")
    list_filter = ("status", "term", "billing_frequency", "currency")
    search_fields = ("order__customer__company_name", "sku__name", "sku__sku_id")
    fields = (
        "order",
        "sku",
        "availability",
        "quantity",
        "term",
        "billing_frequency",
        "unit_price",
        "line_total",
        "aligned_end_date",
        "status",
        "fulfilled_at_utc",
    )
    readonly_fields = ("line_total", "fulfilled_at_utc")

    fulfilled_at_utc = utc_field("fulfilled_at", _("Fulfilled"))

    @admin.display(description=_("Order"), ordering="order_id")
    def order_number(self, obj):
        return obj.order.number

    @admin.display(description=_("Customer"), ordering="order__customer__company_name")
    def customer(self, obj):
        return obj.order.customer

    @admin.display(description=_("Line total"))
    def line_total(self, obj):
        return money(obj.line_total, obj.currency)


@admin.register(OrderAdditionalReseller)
class OrderAdditionalResellerAdmin(ReadOnlyAdminMixin, PartnerScopedAdmin):
    partner_staff = PartnerStaff.OWN
    list_display = ("order", "customer", "position", "partner")
    list_select_related = ("order__customer", "partner")
    search_fields = ("order__customer__company_name", "partner__name", "partner__partner_id")

    @admin.display(description=_("Customer"), ordering="order__customer__company_name")
    def customer(self, obj):
        return obj.order.customer
