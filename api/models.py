"""What the REST API keeps: personal tokens, the answers to requests a client may retry, and the requests counted
against a partner's rate."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from portal.models import Partner


class ApiToken(models.Model):
    """A staff member's personal API token: it acts as its owner (the owner's partner and roles, T1–T3).

    The secret is shown once, when it is made; only its SHA-256 is kept (a token is 256 random bits, so a fast hash
    is enough: there is nothing to guess a password from). `prefix` is the secret's first characters, shown in the
    list so its owner can tell the tokens apart."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens", verbose_name=_("user")
    )
    name = models.CharField(_("name"), max_length=100)
    prefix = models.CharField(_("prefix"), max_length=16)
    key_hash = models.CharField(_("key hash"), max_length=64, unique=True)
    created_at = models.DateTimeField(_("created at"))
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True, help_text=_("UTC; empty: never expires."))
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)

    class Meta:
        verbose_name_plural = _("API tokens")
        ordering = ["-created_at", "-pk"]
        verbose_name = _("API token")

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def usable_at(self, now) -> bool:
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)

    def state_at(self, now) -> str:
        if self.revoked_at is not None:
            return f"Revoked {self.revoked_at:%Y-%m-%d %H:%M} UTC"
        return "Active" if self.usable_at(now) else "Expired"


class RequestRecord(models.Model):
    """The answer to a write sent with an `MS-RequestId`: a retry with the same id gets this answer again instead of
    acting twice. The row is written in the same transaction as the change, so a change is never without its
    answer, and two concurrent requests with one id meet on the unique constraint: the second waits for the first
    and replays its answer."""

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="+", verbose_name=_("partner"))
    request_id = models.CharField(_("request id"), max_length=100)
    fingerprint = models.CharField(
        _("fingerprint"), max_length=64, help_text=_("SHA-256 of the method, path and body.")
    )
    status = models.PositiveSmallIntegerField(_("status"))
    body = models.BinaryField(_("body"))
    headers = models.JSONField(_("headers"), default=dict)
    created_at = models.DateTimeField(_("created at"), db_index=True)

    class Meta:
        verbose_name = _("request record")
        verbose_name_plural = _("request records")
        constraints = [models.UniqueConstraint(fields=["partner", "request_id"], name="api_request_once")]

    def __str__(self) -> str:
        return self.request_id


class RateWindow(models.Model):
    """The API requests of a partner in one UTC minute, counted in the database so that every worker shares it."""

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="+", verbose_name=_("partner"))
    minute = models.DateTimeField(_("minute"))
    count = models.PositiveIntegerField(_("count"), default=0)

    class Meta:
        verbose_name = _("rate window")
        verbose_name_plural = _("rate windows")
        constraints = [models.UniqueConstraint(fields=["partner", "minute"], name="api_rate_window_once")]

    def __str__(self) -> str:
        return f"{self.partner_id} {self.minute:%Y-%m-%d %H:%M} UTC: {self.count}"


class PartnerRate(models.Model):
    """A partner's own API rate, set by the platform operator; without one, `CSP_API_REQUESTS_PER_MINUTE` (Partner
    Center's published 500 a minute) applies."""

    partner = models.OneToOneField(
        Partner, on_delete=models.CASCADE, related_name="api_rate", verbose_name=_("partner")
    )
    requests_per_minute = models.PositiveIntegerField(_("requests per minute"))

    class Meta:
        verbose_name_plural = _("partner API rates")
        verbose_name = _("partner API rate")

    def __str__(self) -> str:
        return f"{self.partner}: {self.requests_per_minute} a minute"


class WebhookEndpoint(models.Model):
    """Where a partner wants to hear of changes (api.webhooks): a URL, the events it wants, and the secret each
    delivery is signed with.

    The secret is kept as typed (or as made): an HMAC is computed with the secret itself, so a hash of it would sign
    nothing. It is shown once, when it is made, and never again (not in the page, not in the admin)."""

    partner = models.ForeignKey(
        Partner, on_delete=models.CASCADE, related_name="webhook_endpoints", verbose_name=_("partner")
    )
    url = models.URLField(_("url"), max_length=500)
    events = models.JSONField(_("events"), default=list, help_text=_("The event names it wants (api.webhooks.EVENTS)."))
    secret = models.CharField(_("secret"), max_length=200)
    is_active = models.BooleanField(_("is active"), default=True)
    created_at = models.DateTimeField(_("created at"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    # The page's form drew a fresh id; a second submit of the same form finds the endpoint it made (exactly once,
    # without a count that a deletion could bring back to an old value).
    created_from = models.UUIDField(_("created from"))
    version = models.PositiveIntegerField(_("version"), default=1)

    class Meta:
        verbose_name_plural = _("webhook endpoints")
        ordering = ["created_at", "pk"]
        verbose_name = _("webhook endpoint")
        constraints = [models.UniqueConstraint(fields=["partner", "created_from"], name="api_webhook_made_once")]

    def __str__(self) -> str:
        return self.url


class ClosingWindowNotice(models.Model):
    """That a subscription's "cancellation window closes in 24 h" event was made for one window: a window is
    announced once, however many passes see it in its last day (a renewed term has a window of its own)."""

    subscription = models.ForeignKey(
        "subscriptions.Subscription", on_delete=models.CASCADE, related_name="+", verbose_name=_("subscription")
    )
    closes_at = models.DateTimeField(_("closes at"))
    created_at = models.DateTimeField(_("created at"))

    class Meta:
        verbose_name = _("closing window notice")
        verbose_name_plural = _("closing window notices")
        constraints = [
            models.UniqueConstraint(fields=["subscription", "closes_at"], name="api_window_notice_once"),
        ]

    def __str__(self) -> str:
        return f"{self.subscription_id}: closes {self.closes_at:%Y-%m-%d %H:%M} UTC"


class WebhookDelivery(models.Model):
    """One event for one endpoint, and how sending it went: the delivery log.

    `event_id` is sent with every attempt, so a receiver that got it twice (an answer lost on the way back) can
    tell. `source` says what made it ("audit:<entry pk>", "window:<notice pk>", "test:<uuid>"); unique with the
    endpoint, so no event is made twice for one endpoint even if two dispatchers met."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        DELIVERED = "delivered", _("Delivered")
        FAILED = "failed", _("Failed")

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries", verbose_name=_("endpoint")
    )
    event_id = models.UUIDField(_("event id"), unique=True)
    event = models.CharField(_("event"), max_length=60)
    source = models.CharField(_("source"), max_length=60)
    payload = models.JSONField(_("payload"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    created_at = models.DateTimeField(_("created at"))
    next_attempt_at = models.DateTimeField(
        _("next attempt at"), null=True, blank=True, help_text=_("UTC; empty once delivered or failed.")
    )
    last_attempt_at = models.DateTimeField(_("last attempt at"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    response_code = models.PositiveSmallIntegerField(_("response code"), null=True, blank=True)
    last_error = models.CharField(_("last error"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("webhook delivery")
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = _("webhook deliveries")
        constraints = [models.UniqueConstraint(fields=["endpoint", "source"], name="api_webhook_delivery_once")]
        indexes = [
            # The endpoint page's log, newest first.
            models.Index(fields=["endpoint", "-created_at"], name="api_delivery_log"),
            # The sweep's question: which pending deliveries are due (only pending rows are in it).
            models.Index(fields=["next_attempt_at"], name="api_delivery_due", condition=models.Q(status="pending")),
        ]

    def __str__(self) -> str:
        return f"{self.event} → {self.endpoint_id} ({self.status})"


class TransitionRecord(models.Model):
    """A transition (an upgrade or a trial's conversion) made through the API, as its POST answered it, so that
    `GET …/transitions[?operationId=]` can be polled for it (Partner Center's transition history).

    Written by the API in the transaction of the change itself (api.v1.post_transition), never by the services:
    the audit trail records the change for every page, but not the operation id the client was given, nor the
    availability part of the catalog item ids, so it can't answer a poll by itself."""

    operation_id = models.UUIDField(_("operation id"), unique=True)
    subscription = models.ForeignKey(
        "subscriptions.Subscription",
        on_delete=models.CASCADE,
        related_name="api_transitions",
        help_text=_("The subscription transitioned (fromSubscriptionId)."),
        verbose_name=_("subscription"),
    )
    to_subscription = models.ForeignKey(
        "subscriptions.Subscription",
        on_delete=models.CASCADE,
        related_name="api_transitions_received",
        help_text=_("The subscription holding the licenses afterwards (the same one for a full upgrade in place)."),
        verbose_name=_("to subscription"),
    )
    from_catalog_item_id = models.CharField(_("from catalog item id"), max_length=200)
    to_catalog_item_id = models.CharField(_("to catalog item id"), max_length=200)
    quantity = models.PositiveIntegerField(_("quantity"))
    term = models.CharField(_("term"), max_length=3)
    billing_frequency = models.CharField(_("billing frequency"), max_length=10)
    transition_type = models.CharField(_("transition type"), max_length=40)
    at = models.DateTimeField(_("at"), help_text=_("UTC: when it was made (and completed: the services act at once)."))

    class Meta:
        verbose_name = _("transition record")
        verbose_name_plural = _("transition records")
        ordering = ["-at", "-pk"]
        indexes = [
            models.Index(fields=["subscription", "-at"], name="api_transition_history"),
            models.Index(fields=["to_subscription", "-at"], name="api_transition_received"),
        ]

    def __str__(self) -> str:
        return f"{self.operation_id}: {self.from_catalog_item_id} → {self.to_catalog_item_id}"
