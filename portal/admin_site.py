"""Who the Django admin is for (issue 9, finding 4).

The platform operator (a superuser, `access.is_operator`) sees and changes everything. A partner's staff member
with admin access (`is_staff`, a membership, the model permissions) sees only their own partner's records and
changes almost nothing: every query, object page, action, autocomplete, list filter and form choice of the admin
goes through `portal.access.partner_records`, as the portal's pages do (T1, T3). Anyone else signed in to the admin
(staff without a membership) sees nothing.

Every ModelAdmin is a `PartnerScopedAdmin` and says, in `partner_staff`, what partner staff see of its model. The
site makes sure of it: an admin registered without the mixin (auth's users and groups, the task queue, whatever an
app registers later) is wrapped in it and so is operator-only until someone decides otherwise.
"""

import enum

from django.contrib import admin
from django.contrib.admin import RelatedFieldListFilter, RelatedOnlyFieldListFilter
from django.contrib.admin.exceptions import NotRegistered
from django.contrib.admin.utils import NotRelationField, get_fields_from_path
from django.core import checks
from django.core.exceptions import FieldDoesNotExist, PermissionDenied
from django.utils.translation import gettext_lazy as _

from . import access


class PartnerStaff(enum.Enum):
    """What a partner's staff member sees of a model in the admin (the operator always sees all of it)."""

    OWN = "their own partner's rows, view only unless the admin says otherwise"
    SHARED = "every row (it belongs to no partner), view only"
    NOTHING = "nothing: operator only"


OPERATOR = object()  # `_viewer` for the platform operator


def _viewer(request):
    """OPERATOR, the partner whose staff member is signed in, or None for anyone else."""
    user = request.user
    if access.is_operator(user):
        return OPERATOR
    if not (user.is_active and user.is_staff):
        return None
    try:
        return access.partner_of(user)
    except PermissionDenied:
        return None


def _is_partner_field(field) -> bool:
    return field.is_relation and field.related_model is not None and access.has_partner_path(field.related_model)


class PartnerScopedAdmin(admin.ModelAdmin):
    """The one place the admin is scoped: use it for every ModelAdmin, and set `partner_staff`."""

    # Secure by default: an admin that doesn't say otherwise is the operator's only.
    partner_staff = PartnerStaff.NOTHING

    def partner_staff_may_change(self, request, partner) -> bool:
        """Whether this partner's staff member may change (never add or delete) its own rows here. No by default:
        tenant data changes through the services (CONVENTIONS), the catalog and the platform's records through the
        operator."""
        return False

    # --- What is visible ----------------------------------------------------------------------------------

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        viewer = _viewer(request)
        if viewer is OPERATOR:
            return queryset
        if viewer is None or self.partner_staff is PartnerStaff.NOTHING:
            return queryset.none()
        if self.partner_staff is PartnerStaff.SHARED:
            return queryset
        # Change, history and delete pages and actions all find their objects here: another partner's object
        # does not exist (the admin's "doesn't exist" redirect), as T3's 404 on the portal's pages.
        return access.partner_records(queryset, viewer)

    def _staff_sees(self, request) -> bool:
        viewer = _viewer(request)
        return viewer is OPERATOR or (viewer is not None and self.partner_staff is not PartnerStaff.NOTHING)

    def has_module_permission(self, request):
        return self._staff_sees(request) and super().has_module_permission(request)

    def has_view_permission(self, request, obj=None):
        return self._staff_sees(request) and super().has_view_permission(request, obj)

    def has_add_permission(self, request):
        return _viewer(request) is OPERATOR and super().has_add_permission(request)

    def has_change_permission(self, request, obj=None):
        viewer = _viewer(request)
        if viewer is OPERATOR:
            return super().has_change_permission(request, obj)
        return (
            viewer is not None
            and self.partner_staff is PartnerStaff.OWN
            and self.partner_staff_may_change(request, viewer)
            and super().has_change_permission(request, obj)
        )

    def has_delete_permission(self, request, obj=None):
        return _viewer(request) is OPERATOR and super().has_delete_permission(request, obj)

    # --- What a page shows -----------------------------------------------------------------------------------

    def get_list_filter(self, request):
        """A plain related filter lists every row of the related table; for partner staff it lists only the values
        their own rows have (RelatedOnlyFieldListFilter reads them from the scoped queryset)."""
        filters = super().get_list_filter(request)
        if _viewer(request) is OPERATOR:
            return filters
        return tuple(self._scoped_filter(spec) for spec in filters)

    def _scoped_filter(self, spec):
        if isinstance(spec, str):
            try:
                field = get_fields_from_path(self.model, spec)[-1]
            except (FieldDoesNotExist, NotRelationField):
                return spec
            return (spec, RelatedOnlyFieldListFilter) if field.is_relation else spec
        if isinstance(spec, tuple) and spec[1] is RelatedFieldListFilter:
            return (spec[0], RelatedOnlyFieldListFilter)
        return spec

    def get_readonly_fields(self, request, obj=None):
        readonly = tuple(super().get_readonly_fields(request, obj))
        if _viewer(request) is OPERATOR:
            return readonly
        # Which partner a record belongs to is the operator's to say: a partner's staff never moves a record to a
        # partner, theirs or another (a provider's choice would otherwise include its resellers).
        to_partner = tuple(
            f.name
            for f in self.model._meta.get_fields()
            if f.is_relation and f.related_model is access.Partner and f.concrete and f.name not in readonly
        )
        return readonly + to_partner

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if _viewer(request) is OPERATOR or self.partner_staff is not PartnerStaff.SHARED:
            return fieldsets
        # A shared row (the catalog) may name partners, e.g. the ones an ISV made an offer exclusive to (C4e):
        # that is other partners' business, and the portal doesn't name them either.
        hidden = {f.name for f in self.model._meta.get_fields() if _is_partner_field(f)}

        def shown(fields):
            return [tuple(shown(f)) if isinstance(f, (list, tuple)) else f for f in fields if f not in hidden]

        return [(name, {**options, "fields": shown(options["fields"])}) for name, options in fieldsets]

    def get_inline_instances(self, request, obj=None):
        inlines = super().get_inline_instances(request, obj)
        if _viewer(request) is OPERATOR:
            return inlines
        # The start-up check covers `inlines`; this covers those a get_inlines() picks per object.
        return [inline for inline in inlines if isinstance(inline, PartnerScopedInline)]

    # --- What a form offers ----------------------------------------------------------------------------------

    def _choices(self, request, db_field, kwargs):
        queryset = kwargs.get("queryset")
        if queryset is None:
            queryset = self.get_field_queryset(kwargs.get("using"), db_field, request)
        if queryset is None:
            queryset = db_field.remote_field.model._default_manager.using(kwargs.get("using"))
        viewer = _viewer(request)
        model = db_field.related_model
        if viewer is not None and access.has_partner_path(model):
            return access.partner_records(queryset, viewer)
        try:
            shared = self.admin_site.get_model_admin(model).partner_staff is PartnerStaff.SHARED
        except NotRegistered:
            shared = False
        return queryset if viewer is not None and shared else queryset.none()

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        # Autocomplete or select, the field validates against this queryset: a posted id of another partner's
        # object is "not one of the available choices".
        if _viewer(request) is not OPERATOR:
            kwargs["queryset"] = self._choices(request, db_field, kwargs)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if _viewer(request) is not OPERATOR:
            kwargs["queryset"] = self._choices(request, db_field, kwargs)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    # --- Checked at start-up ---------------------------------------------------------------------------------

    def check(self, **kwargs):
        errors = super().check(**kwargs)
        if self.partner_staff is PartnerStaff.OWN and not access.has_partner_path(self.model):
            errors.append(
                checks.Error(
                    f"{type(self).__name__} shows partner staff their own {self.model._meta.verbose_name_plural}, but "
                    f"{self.model._meta.label} has no path to a partner.",
                    hint="Add one to portal.access.PARTNER_PATHS, or make the admin SHARED or NOTHING.",
                    obj=type(self),
                    id="portal.E001",
                )
            )
        for inline in self.inlines:
            if self.partner_staff is not PartnerStaff.NOTHING and not issubclass(inline, PartnerScopedInline):
                errors.append(
                    checks.Error(
                        f"{inline.__name__} on {type(self).__name__} is shown to partner staff without being scoped.",
                        hint="Base it on portal.admin_site.PartnerScopedInline.",
                        obj=type(self),
                        id="portal.E002",
                    )
                )
        return errors


class PartnerScopedInline(admin.options.InlineModelAdmin):
    """An inline's rows, scoped like its parent's: partner staff see their own partner's rows of a model that has
    a path to a partner (all rows of one that doesn't: they hang from a row already in scope) and change none."""

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        viewer = _viewer(request)
        if viewer is OPERATOR or not access.has_partner_path(self.model):
            return queryset
        return queryset.none() if viewer is None else access.partner_records(queryset, viewer)

    def has_add_permission(self, request, obj=None):
        return _viewer(request) is OPERATOR and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return _viewer(request) is OPERATOR and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return _viewer(request) is OPERATOR and super().has_delete_permission(request, obj)


class PortalAdminSite(admin.AdminSite):
    site_header = _("CSP Portal administration")
    site_title = _("CSP Portal admin")
    index_title = _("Partners, catalog and subscriptions")

    def register(self, model_or_iterable, admin_class=None, **options):
        """Every admin is scoped: one registered without PartnerScopedAdmin is wrapped in it, operator-only."""
        admin_class = admin_class or admin.ModelAdmin
        if not issubclass(admin_class, PartnerScopedAdmin):
            admin_class = type(
                admin_class.__name__,
                (PartnerScopedAdmin, admin_class),
                {"__module__": admin_class.__module__, "__qualname__": admin_class.__qualname__},
            )
        return super().register(model_or_iterable, admin_class, **options)
