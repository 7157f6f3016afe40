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


class CartAttestation(models.Model):
    """K3 as Partner Center carries it: `partnerOnRecordAttestationAccepted` is sent with the cart (its checkout has
    no body), while the portal's page confirms at purchase. The API keeps what the cart's owner sent here and hands
    it to the purchase, which decides (catalog.checkout.purchase)."""

    cart = models.OneToOneField("catalog.Cart", on_delete=models.CASCADE, related_name="api_attestation")
    accepted = models.BooleanField(default=False)
    changed_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"Cart {self.cart_id}: attestation {'accepted' if self.accepted else 'not accepted'}"
