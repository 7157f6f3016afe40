"""What the REST API keeps: personal tokens, the answers to requests a client may retry, and the requests counted
against a partner's rate."""

from django.conf import settings
from django.db import models

from portal.models import Partner


class ApiToken(models.Model):
    """A staff member's personal API token: it acts as its owner (the owner's partner and roles, T1–T3).

    The secret is shown once, when it is made; only its SHA-256 is kept (a token is 256 random bits, so a fast hash
    is enough: there is nothing to guess a password from). `prefix` is the secret's first characters, shown in the
    list so its owner can tell the tokens apart."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16)
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True, help_text="UTC; empty: never expires.")
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = "API token"

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

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="+")
    request_id = models.CharField(max_length=100)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of the method, path and body.")
    status = models.PositiveSmallIntegerField()
    body = models.BinaryField()
    headers = models.JSONField(default=dict)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["partner", "request_id"], name="api_request_once")]

    def __str__(self) -> str:
        return self.request_id


class RateWindow(models.Model):
    """The API requests of a partner in one UTC minute, counted in the database so that every worker shares it."""

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="+")
    minute = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["partner", "minute"], name="api_rate_window_once")]

    def __str__(self) -> str:
        return f"{self.partner_id} {self.minute:%Y-%m-%d %H:%M} UTC: {self.count}"


class PartnerRate(models.Model):
    """A partner's own API rate, set by the platform operator; without one, `CSP_API_REQUESTS_PER_MINUTE` (Partner
    Center's published 500 a minute) applies."""

    partner = models.OneToOneField(Partner, on_delete=models.CASCADE, related_name="api_rate")
    requests_per_minute = models.PositiveIntegerField()

    class Meta:
        verbose_name = "partner API rate"

    def __str__(self) -> str:
        return f"{self.partner}: {self.requests_per_minute} a minute"


class WebhookEndpoint(models.Model):
    """Where a partner wants to hear of changes (api.webhooks): a URL, the events it wants, and the secret each
    delivery is signed with.

    The secret is kept as typed (or as made): an HMAC is computed with the secret itself, so a hash of it would sign
    nothing. It is shown once, when it is made, and never again (not in the page, not in the admin)."""

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=500)
    events = models.JSONField(default=list, help_text="The event names it wants (api.webhooks.EVENTS).")
    secret = models.CharField(max_length=200)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # The page's form drew a fresh id; a second submit of the same form finds the endpoint it made (exactly once,
    # without a count that a deletion could bring back to an old value).
    created_from = models.UUIDField()
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["created_at", "pk"]
        verbose_name = "webhook endpoint"
        constraints = [models.UniqueConstraint(fields=["partner", "created_from"], name="api_webhook_made_once")]

    def __str__(self) -> str:
        return self.url


class ClosingWindowNotice(models.Model):
    """That a subscription's "cancellation window closes in 24 h" event was made for one window: a window is
    announced once, however many passes see it in its last day (a renewed term has a window of its own)."""

    subscription = models.ForeignKey("subscriptions.Subscription", on_delete=models.CASCADE, related_name="+")
    closes_at = models.DateTimeField()
    created_at = models.DateTimeField()

    class Meta:
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
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event_id = models.UUIDField(unique=True)
    event = models.CharField(max_length=60)
    source = models.CharField(max_length=60)
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField()
    next_attempt_at = models.DateTimeField(null=True, blank=True, help_text="UTC; empty once delivered or failed.")
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "webhook deliveries"
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

    operation_id = models.UUIDField(unique=True)
    subscription = models.ForeignKey(
        "subscriptions.Subscription",
        on_delete=models.CASCADE,
        related_name="api_transitions",
        help_text="The subscription transitioned (fromSubscriptionId).",
    )
    to_subscription = models.ForeignKey(
        "subscriptions.Subscription",
        on_delete=models.CASCADE,
        related_name="api_transitions_received",
        help_text="The subscription holding the licenses afterwards (the same one for a full upgrade in place).",
    )
    from_catalog_item_id = models.CharField(max_length=200)
    to_catalog_item_id = models.CharField(max_length=200)
    quantity = models.PositiveIntegerField()
    term = models.CharField(max_length=3)
    billing_frequency = models.CharField(max_length=10)
    transition_type = models.CharField(max_length=40)
    at = models.DateTimeField(help_text="UTC: when it was made (and completed: the services act at once).")

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [
            models.Index(fields=["subscription", "-at"], name="api_transition_history"),
            models.Index(fields=["to_subscription", "-at"], name="api_transition_received"),
        ]

    def __str__(self) -> str:
        return f"{self.operation_id}: {self.from_catalog_item_id} → {self.to_catalog_item_id}"
