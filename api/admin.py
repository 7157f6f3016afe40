from django.contrib import admin

from .models import ApiToken, PartnerRate, RequestRecord


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
