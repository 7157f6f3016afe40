from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = _("API")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Only once the apps are loaded: these modules import models.
        from subscriptions.lifecycle import after_each_pass  # noqa: PLC0415

        from .protocol import forget_old_requests  # noqa: PLC0415
        from .webhooks import run_webhooks  # noqa: PLC0415

        # With every pass of the lifecycle engine (once a minute): the audit trail's new entries become webhook
        # deliveries, closing windows are announced, lost deliveries are queued again; and MS-RequestId answers past
        # their 48 hours are forgotten.
        after_each_pass(run_webhooks)
        after_each_pass(forget_old_requests)
