"""Admin for tenancy: partners, their staff memberships and reseller links, and customers.

Also holds the small helpers the catalog and subscriptions admins share (UTC columns, the
read-only mixin): imports flow portal ← catalog ← subscriptions, as for the models.

Every admin is a PartnerScopedAdmin (portal.admin_site): the operator sees everything, a partner's
staff member their own partner's rows; `partner_staff` says which, per model, and why.
"""

import json
from datetime import UTC

from django import forms
from django.contrib import admin
from django.db.models import Count
from django.template.loader import render_to_string
from django.utils.text import format_lazy
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from .admin_site import PartnerScopedAdmin, PartnerScopedInline, PartnerStaff
from .models import EU_EFTA_COUNTRIES, Customer, Membership, Partner, ResellerLink, Role

# --- Shared helpers -------------------------------------------------------------------------


def format_utc(value) -> str | None:
    """An instant as "YYYY-MM-DD HH:MM UTC"; None lets the admin show its empty placeholder."""
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def utc_field(attribute: str, description: str, *, ordering: str | None = None):
    """A list/readonly column showing a datetime attribute (field or property) in UTC.

    Assign it in a ModelAdmin body: ``created_at_utc = utc_field("created_at", _("Created"))``.
    ``ordering`` defaults to the attribute, which must then be a database field.
    """

    @admin.display(description=format_lazy("{} (UTC)", description), ordering=ordering or attribute)
    def display(model_admin, obj):
        return format_utc(getattr(obj, attribute))

    display.__name__ = f"{attribute}_utc"
    return display


def money(amount, currency: str) -> str | None:
    return None if amount is None else f"{amount} {currency}"


def pretty_json(value) -> str:
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    return render_to_string("admin/portal/pretty_json.html", {"text": text})


def admin_link(url: str, text) -> str:
    """A link in an admin column, drawn by its template (autoescaped)."""
    return render_to_string("admin/portal/link.html", {"url": url, "text": text})


class ReadOnlyAdminMixin:
    """Viewable, never written from the admin: changes go through the services.

    Works for ModelAdmin (has_add_permission(request)) and inlines (…(request, obj)).
    """

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# --- Partners -------------------------------------------------------------------------------


ROLE_FIELDS = ("is_admin_agent", "is_sales_agent", "is_billing_admin", "is_support_agent")


class MembershipForm(forms.ModelForm):
    """Says in words what the membership_has_a_role constraint (T2) refuses."""

    class Meta:
        model = Membership
        fields = "__all__"

    def clean(self):
        cleaned_data = super().clean()
        if not any(cleaned_data.get(role) for role in ROLE_FIELDS):
            raise forms.ValidationError(_("Give the staff member at least one role."))
        return cleaned_data


class MembershipInline(PartnerScopedInline, admin.TabularInline):
    model = Membership
    form = MembershipForm
    extra = 0
    fields = ("user", *ROLE_FIELDS)
    autocomplete_fields = ("user",)
    verbose_name = _("staff member")
    verbose_name_plural = _("staff members")

    def get_queryset(self, request):
        # The parent too: each row's heading is str(membership), which names the partner.
        return super().get_queryset(request).select_related("user", "partner")


class ResellerLinkInline(PartnerScopedInline, admin.TabularInline):
    """On an indirect provider: the resellers it works with."""

    model = ResellerLink
    fk_name = "provider"
    extra = 0
    fields = ("reseller", "created_at_utc")
    readonly_fields = ("created_at_utc",)
    autocomplete_fields = ("reseller",)
    verbose_name = _("reseller")
    verbose_name_plural = _("resellers")

    created_at_utc = utc_field("created_at", _("Linked"))

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("provider", "reseller")


class ProviderLinkInline(ReadOnlyAdminMixin, PartnerScopedInline, admin.TabularInline):
    """On an indirect reseller: the providers it works through (edited on the provider)."""

    model = ResellerLink
    fk_name = "reseller"
    extra = 0
    fields = ("provider", "created_at_utc")
    readonly_fields = ("provider", "created_at_utc")
    verbose_name = _("indirect provider")
    verbose_name_plural = _("indirect providers (edit the link on the provider)")

    created_at_utc = utc_field("created_at", _("Linked"))

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("provider", "reseller")


@admin.register(Partner)
class PartnerAdmin(PartnerScopedAdmin):
    # Partner staff view their own partner's record; its name, PartnerID, kind and MPA status are the
    # platform's record of the partner, changed by the operator.
    partner_staff = PartnerStaff.OWN
    list_display = ("name", "partner_id", "kind", "country", "mpa_signed", "customer_count", "staff_count")
    list_filter = ("kind", "mpa_signed", "country")
    search_fields = ("name", "partner_id")
    ordering = ("name",)
    fields = ("name", "partner_id", "kind", "country", "mpa_signed")
    inlines = [MembershipInline]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                _customer_count=Count("customers", distinct=True),
                _staff_count=Count("memberships", distinct=True),
            )
        )

    @admin.display(description=_("Customers"), ordering="_customer_count")
    def customer_count(self, obj):
        return obj._customer_count

    @admin.display(description=_("Staff"), ordering="_staff_count")
    def staff_count(self, obj):
        return obj._staff_count

    def get_inlines(self, request, obj):
        if obj is not None and obj.kind == Partner.Kind.INDIRECT_PROVIDER:
            return [MembershipInline, ResellerLinkInline]
        if obj is not None and obj.kind == Partner.Kind.INDIRECT_RESELLER:
            return [MembershipInline, ProviderLinkInline]
        return [MembershipInline]

    def get_search_results(self, request, queryset, search_term):
        queryset, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        # Autocomplete for a "reseller"/"provider" field (customer, cart, order, link, ...)
        # only offers partners of that kind, so staff can't pick a direct-bill partner there.
        match = getattr(request, "resolver_match", None)
        if match is not None and match.view_name == "admin:autocomplete":
            field_name = request.GET.get("field_name")
            if field_name == "reseller":
                queryset = queryset.filter(kind=Partner.Kind.INDIRECT_RESELLER)
            elif field_name == "provider":
                queryset = queryset.filter(kind=Partner.Kind.INDIRECT_PROVIDER)
        return queryset, may_have_duplicates


@admin.register(ResellerLink)
class ResellerLinkAdmin(PartnerScopedAdmin):
    # A provider's staff view its links to its resellers, a reseller's its links to its providers; the operator
    # makes them (a new link would have to offer other partners as choices).
    partner_staff = PartnerStaff.OWN
    list_display = ("provider", "reseller", "created_at_utc")
    list_select_related = ("provider", "reseller")
    list_filter = (("provider", admin.RelatedOnlyFieldListFilter),)
    search_fields = ("provider__name", "provider__partner_id", "reseller__name", "reseller__partner_id")
    autocomplete_fields = ("provider", "reseller")
    readonly_fields = ("created_at_utc",)
    fields = ("provider", "reseller", "created_at_utc")

    created_at_utc = utc_field("created_at", _("Linked"))


@admin.register(Membership)
class MembershipAdmin(PartnerScopedAdmin):
    # Partner staff view their own partner's staff; its admin agents also change their roles (T2), as Partner
    # Center's admin agents manage their users. Its user can only be one of the partner's own staff (the field's
    # choices); its partner is the operator's to set.
    partner_staff = PartnerStaff.OWN
    form = MembershipForm
    list_display = ("user", "user_email", "partner", "roles", "user_is_active")
    list_select_related = ("user", "partner")
    list_filter = (
        *ROLE_FIELDS,
        "partner__kind",
        ("partner", admin.RelatedOnlyFieldListFilter),
    )
    search_fields = (
        "user__username",
        "user__email",
        "user__first_name",
        "user__last_name",
        "partner__name",
        "partner__partner_id",
    )
    autocomplete_fields = ("user", "partner")
    fields = ("user", "partner", *ROLE_FIELDS, "roles")
    readonly_fields = ("roles",)

    def partner_staff_may_change(self, request, partner):
        return Role.ADMIN_AGENT in request.user.membership.roles

    @admin.display(description=_("Roles"))
    def roles(self, obj):
        return gettext(", ").join(obj.role_labels) or None

    @admin.display(description=_("Email"), ordering="user__email")
    def user_email(self, obj):
        return obj.user.email or None

    @admin.display(description=_("Active"), boolean=True, ordering="user__is_active")
    def user_is_active(self, obj):
        return obj.user.is_active


# --- Customers ------------------------------------------------------------------------------


class EuEftaListFilter(admin.SimpleListFilter):
    title = _("EU/EFTA")
    parameter_name = "eu_efta"

    def lookups(self, request, model_admin):
        return [("yes", _("EU/EFTA")), ("no", _("Outside EU/EFTA"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(billing_country__in=EU_EFTA_COUNTRIES)
        if self.value() == "no":
            return queryset.exclude(billing_country__in=EU_EFTA_COUNTRIES)
        return queryset


@admin.register(Customer)
class CustomerAdmin(PartnerScopedAdmin):
    # Partner staff view their own customers (a reseller: those it is reseller of record for, T3); never change
    # them here: a customer joins by accepting a relationship request (TF1), and its segment and country decide
    # what it may buy (C3, C4c).
    partner_staff = PartnerStaff.OWN
    list_display = (
        "company_name",
        "domain",
        "partner",
        "reseller",
        "segment",
        "billing_country",
        "is_eu_efta",
        "created_at_utc",
    )
    list_select_related = ("partner", "reseller")
    list_filter = ("segment", EuEftaListFilter, "billing_country", ("partner", admin.RelatedOnlyFieldListFilter))
    # Exact UUID lookups are skipped for search terms that aren't UUIDs.
    search_fields = ("company_name", "domain", "partner__name", "partner__partner_id", "id__exact", "tenant_id__exact")
    autocomplete_fields = ("partner", "reseller")
    date_hierarchy = "created_at"
    fieldsets = (
        (None, {"fields": ("company_name", "domain", "segment", "billing_country", "is_eu_efta")}),
        (_("Partner"), {"fields": ("partner", "reseller")}),
        (_("Identifiers"), {"fields": ("id", "tenant_id", "created_at_utc")}),
    )
    readonly_fields = ("id", "is_eu_efta", "created_at_utc")

    created_at_utc = utc_field("created_at", _("Created"))

    @admin.display(description=_("EU/EFTA"), boolean=True)
    def is_eu_efta(self, obj):
        # T4: derived from the billing country, never typed in.
        return obj.is_eu_efta if obj.billing_country else None
