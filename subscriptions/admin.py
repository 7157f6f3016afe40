"""Admin for subscriptions, their license lots, billing lines and the audit trail.

All of it is view only: every change to a subscription goes through a service function
(subscriptions.services), which checks the rules and writes the audit row. Admin actions call
those services; the admin never edits these rows directly.

All of it is a partner's own (PartnerStaff.OWN): partner staff see their own partner's rows (a
reseller's: those of the subscriptions it is reseller of record for, T1, T3).
"""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from django.utils import timezone
from django.utils.text import Truncator
from django.utils.translation import gettext, ngettext, ngettext_lazy
from django.utils.translation import gettext_lazy as _

from portal import access
from portal.access import Action
from portal.admin import ReadOnlyAdminMixin, admin_link, money, pretty_json, utc_field
from portal.admin_site import PartnerScopedAdmin, PartnerScopedInline, PartnerStaff
from portal.errors import RuleViolation

from . import services
from .models import AuditEntry, BillingLine, SeatLot, Subscription


class SeatLotInline(ReadOnlyAdminMixin, PartnerScopedInline, admin.TabularInline):
    model = SeatLot
    extra = 0
    fields = ("source", "quantity", "removed", "added_at_utc", "window_ends_at_utc")
    readonly_fields = fields
    verbose_name_plural = _("license lots (each opens its own removal window)")

    added_at_utc = utc_field("added_at", _("Added"))
    window_ends_at_utc = utc_field("window_ends_at", _("Removable until"))


class BillingLineInline(ReadOnlyAdminMixin, PartnerScopedInline, admin.TabularInline):
    model = BillingLine
    extra = 0
    fields = (
        "created_at_utc",
        "kind",
        "quantity",
        "unit_price",
        "amount",
        "currency",
        "period_start",
        "period_end",
        "explanation",
    )
    readonly_fields = fields

    created_at_utc = utc_field("created_at", _("Created"))


@admin.register(Subscription)
class SubscriptionAdmin(ReadOnlyAdminMixin, PartnerScopedAdmin):
    partner_staff = PartnerStaff.OWN
    list_display = (
        "display_name",
        "customer",
        "partner",
        "sku",
        "status",
        "quantity",
        "term",
        "billing_frequency",
        "unit_price_display",
        "auto_renew",
        "is_trial",
        "term_end",
        "created_at_utc",
    )
    list_select_related = ("customer__partner", "sku")
    list_filter = (
        "status",
        "term",
        "billing_frequency",
        "auto_renew",
        "is_trial",
        "term_end",
        ("customer__partner", admin.RelatedOnlyFieldListFilter),
        "sku__product__publisher",
    )
    # Exact UUID lookups are skipped for search terms that aren't UUIDs.
    search_fields = (
        "friendly_name",
        "sku__name",
        "sku__sku_id",
        "customer__company_name",
        "customer__domain",
        "customer__partner__name",
        "customer__partner__partner_id",
        "id__exact",
        "customer__tenant_id__exact",
    )
    search_help_text = _("Name, SKU, customer, partner, or a subscription or tenant id.")
    date_hierarchy = "created_at"
    fieldsets = (
        (None, {"fields": ("id", "display_name", "friendly_name", "customer", "sku", "availability", "status")}),
        (_("Licenses and price"), {"fields": ("quantity", "quantity_updates", "unit_price_display", "auto_renew")}),
        (
            _("Term"),
            {"fields": ("term", "billing_frequency", "term_start_utc", "term_end", "is_trial", "trial_ends_at_utc")},
        ),
        (
            _("Billing frequency at the next charge (N7)"),
            {"fields": ("next_charge_frequency", "next_charge_on", "next_charge_set_at_utc", "cycle_charge_pending")},
        ),
        (
            _("Origin"),
            {"fields": ("order_link", "base_subscription", "reseller", "promotion_id", "one_per_customer")},
        ),
        (_("Record"), {"fields": ("created_at_utc", "updated_at_utc", "audit_trail")}),
    )
    readonly_fields = (
        "id",
        "display_name",
        "unit_price_display",
        "term_start_utc",
        "trial_ends_at_utc",
        "order_link",
        "one_per_customer",
        "created_at_utc",
        "updated_at_utc",
        "audit_trail",
        "next_charge_frequency",
        "next_charge_on",
        "next_charge_set_at_utc",
        "cycle_charge_pending",
    )
    inlines = [SeatLotInline, BillingLineInline]
    actions = ["suspend_selected", "reactivate_selected", "auto_renew_off_selected"]
    # T2: the kind of action each needs, as on the subscription page.
    action_needs = {
        "suspend_selected": Action.SUSPEND,
        "reactivate_selected": Action.SUSPEND,
        "auto_renew_off_selected": Action.AUTO_RENEW,
    }

    def get_actions(self, request, action_location=admin.ActionLocation.CHANGE_LIST):
        # The services run as the signed-in user, who must be a partner's staff member holding the role (T2): an
        # action they would refuse for every row (a support agent's, a reseller's, the operator's, who belongs
        # to no partner) isn't offered.
        actions = super().get_actions(request, action_location=action_location)
        for name, needs in self.action_needs.items():
            if name in actions and not self._may(request.user, needs):
                del actions[name]
        return actions

    @staticmethod
    def _may(user, needs) -> bool:
        try:
            return bool(access.permission(user, needs))
        except PermissionDenied:
            return False

    def _run_service(self, request, queryset, service, done, **kwargs):
        """Changes go through the same services as the portal: same rules, same audit trail. And, as on the
        portal's pages, only the actor's own partner's subscriptions (T3): an operator who is also some partner's
        staff doesn't put that partner's person in another partner's audit trail (issue 9, finding 4). `done` is the
        whole message for the subscriptions changed (ngettext_lazy with a `count` placeholder: never a fragment)."""
        now = timezone.now()
        changed = 0
        own = access.partner_records(queryset, access.partner_of(request.user))
        others = queryset.exclude(pk__in=own.values("pk")).count()
        if others:
            self.message_user(
                request,
                ngettext(
                    "%(count)s selected subscription belongs to another partner: only its own staff change it.",
                    "%(count)s selected subscriptions belong to another partner: only its own staff change them.",
                    others,
                )
                % {"count": others},
                messages.WARNING,
            )
        for subscription in own:
            try:
                service(subscription_id=subscription.pk, actor=request.user, now=now, **kwargs)
                changed += 1
            except (RuleViolation, PermissionDenied) as refused:
                self.message_user(
                    request,
                    gettext("%(subscription)s: %(reason)s")
                    % {"subscription": subscription.display_name, "reason": refused},
                    messages.WARNING,
                )
        if changed:
            self.message_user(request, done % {"count": changed}, messages.SUCCESS)

    @admin.action(description=_("Suspend selected subscriptions"))
    def suspend_selected(self, request, queryset):
        done = ngettext_lazy("%(count)s subscription suspended.", "%(count)s subscriptions suspended.", "count")
        self._run_service(request, queryset, services.suspend_subscription, done)

    @admin.action(description=_("Reactivate selected subscriptions"))
    def reactivate_selected(self, request, queryset):
        done = ngettext_lazy("%(count)s subscription reactivated.", "%(count)s subscriptions reactivated.", "count")
        self._run_service(request, queryset, services.reactivate_subscription, done)

    @admin.action(description=_("Turn auto-renew off for selected subscriptions"))
    def auto_renew_off_selected(self, request, queryset):
        done = ngettext_lazy(
            "%(count)s subscription set to not renew.", "%(count)s subscriptions set to not renew.", "count"
        )
        self._run_service(request, queryset, services.set_auto_renew, done, on=False)

    term_start_utc = utc_field("term_start", _("Term started"))
    trial_ends_at_utc = utc_field("trial_ends_at", _("Trial ends"))
    next_charge_set_at_utc = utc_field("next_charge_set_at", _("Instruction set"))
    created_at_utc = utc_field("created_at", _("Created"))
    updated_at_utc = utc_field("updated_at", _("Updated"))

    # Sorted by the stored copy of the display name (`list_name`, kept by `save()`): the model's one definition of it.
    @admin.display(description=_("Subscription"), ordering="list_name")
    def display_name(self, obj):
        return obj.display_name

    @admin.display(description=_("Partner"), ordering="customer__partner__name")
    def partner(self, obj):
        return obj.customer.partner

    @admin.display(description=_("Unit price"), ordering="unit_price")
    def unit_price_display(self, obj):
        return money(obj.unit_price, obj.currency)

    @admin.display(description=_("Order"))
    def order_link(self, obj):
        if obj.order_line_id is None:
            return None
        order = obj.order_line.order
        return admin_link(reverse("admin:catalog_order_change", args=[order.pk]), order.number)

    @admin.display(description=_("Audit trail"))
    def audit_trail(self, obj):
        url = reverse("admin:subscriptions_auditentry_changelist") + f"?subscription__id__exact={obj.pk}"
        count = obj.audit_entries.count()
        return admin_link(url, ngettext("%(count)s entry", "%(count)s entries", count) % {"count": count})


@admin.register(SeatLot)
class SeatLotAdmin(ReadOnlyAdminMixin, PartnerScopedAdmin):
    partner_staff = PartnerStaff.OWN
    list_display = ("subscription", "customer", "source", "quantity", "removed", "added_at_utc", "window_ends_at_utc")
    list_select_related = ("subscription__sku", "subscription__customer")
    list_filter = ("source", "added_at")
    search_fields = (
        "subscription__friendly_name",
        "subscription__sku__name",
        "subscription__customer__company_name",
        "subscription__id__exact",
    )
    date_hierarchy = "added_at"
    fields = ("subscription", "source", "quantity", "removed", "added_at_utc", "window_ends_at_utc")
    readonly_fields = ("added_at_utc", "window_ends_at_utc")

    added_at_utc = utc_field("added_at", _("Added"))
    window_ends_at_utc = utc_field("window_ends_at", _("Removable until"))

    @admin.display(description=_("Customer"), ordering="subscription__customer__company_name")
    def customer(self, obj):
        return obj.subscription.customer


@admin.register(BillingLine)
class BillingLineAdmin(ReadOnlyAdminMixin, PartnerScopedAdmin):
    partner_staff = PartnerStaff.OWN
    list_display = (
        "created_at_utc",
        "kind",
        "subscription",
        "customer",
        "quantity",
        "unit_price",
        "amount_display",
        "period_start",
        "period_end",
    )
    list_select_related = ("subscription__sku", "subscription__customer")
    list_filter = ("kind", "currency", "created_at")
    search_fields = (
        "explanation",
        "subscription__friendly_name",
        "subscription__sku__name",
        "subscription__customer__company_name",
        "subscription__id__exact",
    )
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-pk")
    fields = (
        "subscription",
        "kind",
        "quantity",
        "unit_price",
        "amount_display",
        "period_start",
        "period_end",
        "explanation",
        "created_at_utc",
    )
    readonly_fields = ("amount_display", "created_at_utc")

    created_at_utc = utc_field("created_at", _("Created"))

    @admin.display(description=_("Customer"), ordering="subscription__customer__company_name")
    def customer(self, obj):
        return obj.subscription.customer

    @admin.display(description=_("Amount"), ordering="amount")
    def amount_display(self, obj):
        return money(obj.amount, obj.currency)


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdminMixin, PartnerScopedAdmin):
    partner_staff = PartnerStaff.OWN
    # The summary in the reader's language; the change page also shows it as recorded (English: what the API sends).
    list_display = (
        "at_utc",
        "action",
        "summary_read",
        "actor",
        "partner",
        "customer",
        "subscription",
        "order",
        "changes",
    )
    list_select_related = ("actor", "partner", "customer", "subscription__sku", "order")
    list_filter = ("action", "at", ("partner", admin.RelatedOnlyFieldListFilter))
    search_fields = (
        "action",
        "summary",
        "actor__username",
        "actor__email",
        "partner__name",
        "customer__company_name",
        "subscription__id__exact",
    )
    date_hierarchy = "at"
    fields = (
        "at_utc",
        "action",
        "summary_read",
        "summary",
        "actor",
        "partner",
        "customer",
        "order",
        "subscription",
        "before_json",
        "after_json",
    )
    readonly_fields = ("at_utc", "summary_read", "before_json", "after_json")

    at_utc = utc_field("at", _("At"))

    @admin.display(description=_("What"))
    def summary_read(self, obj):
        return obj.summary_text

    @admin.display(description=_("Before"))
    def before_json(self, obj):
        return pretty_json(obj.before)

    @admin.display(description=_("After"))
    def after_json(self, obj):
        return pretty_json(obj.after)

    @admin.display(description=_("Changes"))
    def changes(self, obj):
        """The keys whose value differs, "key: before → after", for scanning the list."""
        before = obj.before if isinstance(obj.before, dict) else {}
        after = obj.after if isinstance(obj.after, dict) else {}
        missing = object()
        parts = []
        for key in sorted(set(before) | set(after)):
            old, new = before.get(key, missing), after.get(key, missing)
            if old != new:
                parts.append(f"{key}: {'—' if old is missing else old} → {'—' if new is missing else new}")
        return Truncator("; ".join(parts)).chars(120) or None
