from django.contrib import admin

from portal.admin_site import PartnerScopedAdmin, PartnerStaff

from .models import ApiToken, ClosingWindowNotice, PartnerRate, RequestRecord, WebhookDelivery, WebhookEndpoint


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "prefix", "created_at", "expires_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["name", "prefix", "user__username"]
    # The secret's hash is of no use to read or to change: a token is made by its owner, from the user menu.
    readonly_fields = ["user", "prefix", "key_hash", "created_at", "last_used_at"]

    def has_add_permission(self, request):
        return False


@admin.register(PartnerRate)
class PartnerRateAdmin(admin.ModelAdmin):
    list_display = ["partner", "requests_per_minute"]


@admin.register(RequestRecord)
class RequestRecordAdmin(admin.ModelAdmin):
    list_display = ["request_id", "partner", "status", "created_at"]
    readonly_fields = ["partner", "request_id", "fingerprint", "status", "body", "headers", "created_at"]

    def has_add_permission(self, request):
        return False


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(PartnerScopedAdmin):
    # A partner's staff read their own endpoints here (they change them from the user menu, where the URL is
    # checked); the operator also switches one off.
    partner_staff = PartnerStaff.OWN
    list_display = ["url", "partner", "is_active", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["url", "partner__name"]
    # The secret signs the partner's deliveries: no one reads it here, not even the operator.
    exclude = ["secret"]
    # The operator may switch an endpoint off (one that floods its partner's receiver, say); its URL and events are
    # the partner's to set, where the page checks them (api.webhooks.url_refusal).
    readonly_fields = ["partner", "url", "events", "created_at", "created_by", "created_from", "version"]

    def has_add_permission(self, request):
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(PartnerScopedAdmin):
    partner_staff = PartnerStaff.OWN  # a partner's own delivery logs, read only
    list_display = ["event", "endpoint", "status", "attempts", "response_code", "created_at", "next_attempt_at"]
    list_filter = ["status", "event"]
    search_fields = ["event_id", "endpoint__url"]
    readonly_fields = [
        "endpoint",
        "event_id",
        "event",
        "source",
        "payload",
        "status",
        "attempts",
        "created_at",
        "next_attempt_at",
        "last_attempt_at",
        "delivered_at",
        "response_code",
        "last_error",
    ]

    def has_add_permission(self, request):
        return False


@admin.register(ClosingWindowNotice)
class ClosingWindowNoticeAdmin(admin.ModelAdmin):
    list_display = ["subscription", "closes_at", "created_at"]
    readonly_fields = ["subscription", "closes_at", "created_at"]

    def has_add_permission(self, request):
        return False
