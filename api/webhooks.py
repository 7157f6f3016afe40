"""Webhooks: the endpoints a partner registers, the events they hear of, and the dispatcher that turns the audit
trail into deliveries (sent by api.webhook_delivery).

Every service writes an audit entry in the transaction of its change (L1), so the trail is the outbox: no service
knows of webhooks. The dispatcher takes the entries not yet dispatched (`AuditEntry.webhooks_dispatched_at` empty),
makes one delivery per active endpoint of the entry's partner that wants its event, and marks the entries, all in
one transaction; the deliveries are sent after it commits. It runs in every pass of the lifecycle engine (once a
minute), beside the "cancellation window closes in 24 h" notices, which no audit entry announces.
"""

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from ipaddress import ip_address
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils.translation import gettext, gettext_lazy

from catalog.models import Order
from portal import access
from portal.errors import RuleViolation
from portal.versions import StaleVersion, lock_version
from subscriptions import checks
from subscriptions.models import AuditEntry, Subscription
from subscriptions.states import Status

from .models import ClosingWindowNotice, WebhookDelivery, WebhookEndpoint
from .webhook_delivery import address_refusal, deliver_webhook_task, requeue_due
from .wire import subscription_path

# Partner Center's event names (its webhooks say "subscription-updated", "subscription-renewed", ...), and the portal's
# own "cancellation window closes in 24 h".
EVENTS = {
    "subscription-created": gettext_lazy("Subscription created"),
    "subscription-updated": gettext_lazy(
        "Subscription updated (quantity, name, auto-renew, scheduled changes, status)"
    ),
    "subscription-renewed": gettext_lazy("Subscription renewed"),
    "subscription-suspended": gettext_lazy("Subscription suspended"),
    "subscription-cancelled": gettext_lazy("Subscription cancelled"),
    "order-completed": gettext_lazy("Order completed"),
    "transfer-created": gettext_lazy("Transfer created"),
    "transfer-completed": gettext_lazy("Transfer completed"),
    "cancellation-window-closing": gettext_lazy("Cancellation window closes in 24 h"),
}
TEST_EVENT = "test-created"  # Partner Center's name for the event its "send test event" sends
WINDOW_EVENT = "cancellation-window-closing"
WINDOW_NOTICE = timedelta(hours=24)

# Which audit actions are which event. An action not named here (a provisioning requeued, a cycle charged) is
# bookkeeping no receiver acts on: its entry is marked dispatched and makes no delivery.
ACTION_EVENTS = {
    "subscription.created": "subscription-created",
    "subscription.created_by_upgrade": "subscription-created",
    "subscription.addon_bought": "subscription-created",
    "subscription.transferred_in": "subscription-created",
    "subscription.quantity_changed": "subscription-updated",
    "subscription.renamed": "subscription-updated",
    "subscription.auto_renew_changed": "subscription-updated",
    "subscription.renewal_change_scheduled": "subscription-updated",
    "subscription.renewal_change_removed": "subscription-updated",
    "subscription.next_charge_frequency_set": "subscription-updated",
    "subscription.next_charge_frequency_removed": "subscription-updated",
    "subscription.next_charge_frequency_dropped": "subscription-updated",
    "subscription.trial_conversion_scheduled": "subscription-updated",
    "subscription.trial_licenses_added": "subscription-updated",
    "subscription.upgraded": "subscription-updated",
    "subscription.upgrade_received": "subscription-updated",
    "subscription.addon_added": "subscription-updated",
    "subscription.provisioned": "subscription-updated",
    "subscription.setup_confirmed": "subscription-updated",
    "subscription.reactivated": "subscription-updated",
    "subscription.disabled": "subscription-updated",
    "subscription.expired": "subscription-updated",
    "subscription.free_trial_ended": "subscription-updated",
    "subscription.term_start_corrected": "subscription-updated",
    "subscription.transferred": "subscription-updated",
    "subscription.renewed": "subscription-renewed",
    "subscription.trial_converted": "subscription-renewed",
    "subscription.suspended": "subscription-suspended",
    "subscription.cancelled": "subscription-cancelled",
    "order.completed": "order-completed",
    "transfer.requested": "transfer-created",
    "transfer.completed": "transfer-completed",
}

DISPATCH_BATCH = 500  # entries locked and dispatched in one transaction
LOOPBACK_NAMES = {"localhost"}
SECRET_BYTES = 32
MIN_SECRET = 16


class EndpointMadeAlready(StaleVersion):
    """The form that makes an endpoint was submitted again (409): the first submit made it."""


def _is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def url_refusal(url: str) -> str:
    """Why this URL can't receive webhooks, or "" if it can: https (the payload and its signature travel in the
    clear otherwise), or http to this machine only (a receiver run by a test or the demo)."""
    try:
        URLValidator(schemes=["http", "https"])(url)  # a host name or address, no spaces, a port that is a number
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except (ValidationError, ValueError):
        return gettext("Enter a valid URL, such as https://psa.example.com/csp-webhooks.")
    if parts.scheme not in ("http", "https") or not host:
        return gettext("Enter a valid URL, such as https://psa.example.com/csp-webhooks.")
    if parts.username is not None or parts.password is not None:
        return gettext(
            "Leave the user name and password out of the URL: each delivery is signed with the secret instead."
        )
    loopback_allowed = settings.CSP_WEBHOOKS_ALLOW_LOOPBACK
    if parts.scheme == "http" and not (loopback_allowed and _is_loopback(host)):
        return gettext("Use an https:// URL: deliveries carry your customers' data.")
    if host.lower() in LOOPBACK_NAMES and not loopback_allowed:
        return gettext("Deliveries go to public addresses only.")
    try:
        refused = address_refusal(host)
    except ValueError:
        refused = ""  # a host name: its addresses are checked at each delivery (api.webhook_delivery)
    return refused


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(SECRET_BYTES)


def endpoints_for(partner) -> "list[WebhookEndpoint]":
    return list(WebhookEndpoint.objects.filter(partner=partner))


def get_endpoint(user, endpoint_id) -> WebhookEndpoint:
    """One of the user's partner's endpoints; another partner's (or none) raises DoesNotExist (404 on the page)."""
    return WebhookEndpoint.objects.get(pk=endpoint_id, partner=access.partner_of(user))


def _check_events(events: list[str]) -> list[str]:
    unknown = [e for e in events if e not in EVENTS]
    if unknown or not events:
        raise RuleViolation("webhook", gettext("Choose at least one of the listed events."), field="events")
    return sorted(set(events))


def create_endpoint(
    actor,
    *,
    url: str,
    events: list[str],
    secret: str,
    is_active: bool,
    created_from: uuid.UUID,
    now: datetime,
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint of the actor's partner (roles that may buy, T2), and its secret: the one typed, else a new one.
    `created_from` is the form's id: submitted twice, the form makes one endpoint and the second is refused (409)."""
    member = access.require(actor, access.Action.BUY)
    refusal = url_refusal(url)
    if refusal:
        raise RuleViolation("webhook", refusal, field="url")
    events = _check_events(events)
    secret = secret or new_secret()
    if len(secret) < MIN_SECRET:
        raise RuleViolation(
            "webhook",
            gettext("Use a secret of at least %(count)s characters.") % {"count": MIN_SECRET},
            field="secret",
        )
    try:
        with transaction.atomic():
            endpoint = WebhookEndpoint.objects.create(
                partner=member.partner,
                url=url,
                events=events,
                secret=secret,
                is_active=is_active,
                created_at=now,
                created_by=actor,
                created_from=created_from,
            )
    except IntegrityError:
        raise EndpointMadeAlready(
            gettext("This endpoint was already added from this page: see it in the list below. Nothing was added.")
        ) from None
    return endpoint, secret


def _locked(actor, endpoint_id, version) -> WebhookEndpoint:
    """The actor's partner's endpoint, locked, its version checked (a stale page: 409, nothing changed)."""
    member = access.require(actor, access.Action.BUY)
    return lock_version(
        WebhookEndpoint.objects.filter(partner=member.partner), pk=endpoint_id, version=version, noun="form"
    )


def update_endpoint(
    actor, endpoint_id, *, version, url: str, events: list[str], secret: str, is_active: bool
) -> WebhookEndpoint:
    """Changes an endpoint; an empty `secret` keeps the one it has."""
    refusal = url_refusal(url)
    if refusal:
        raise RuleViolation("webhook", refusal, field="url")
    events = _check_events(events)
    if secret and len(secret) < MIN_SECRET:
        raise RuleViolation(
            "webhook",
            gettext("Use a secret of at least %(count)s characters.") % {"count": MIN_SECRET},
            field="secret",
        )
    with transaction.atomic():
        endpoint = _locked(actor, endpoint_id, version)
        endpoint.url, endpoint.events, endpoint.is_active = url, events, is_active
        if secret:
            endpoint.secret = secret
        endpoint.save(update_fields=["url", "events", "is_active", "secret"])
    return endpoint


def delete_endpoint(actor, endpoint_id, *, version) -> WebhookEndpoint:
    """Deletes an endpoint and its delivery log; a pending delivery is never sent."""
    with transaction.atomic():
        endpoint = _locked(actor, endpoint_id, version)
        endpoint.delete()
    return endpoint


def send_test_event(actor, endpoint_id, *, version, now: datetime) -> WebhookDelivery:
    """Queues a test event for one endpoint (active or not: it is how a partner checks a receiver before turning it
    on). The endpoint's version is bumped, so the same click submitted twice sends one test."""
    with transaction.atomic():
        endpoint = _locked(actor, endpoint_id, version)
        delivery = _delivery(
            endpoint,
            event=TEST_EVENT,
            source=f"test:{uuid.uuid4()}",
            now=now,
            resource_name="test",
            resource_uri=None,
            summary=f"Test event sent from the CSP Portal to {endpoint.url}",
        )
        delivery.save(force_insert=True)
        _send_on_commit([delivery.pk])
    return delivery


# --- Events -------------------------------------------------------------------------------------------------


def _delivery(endpoint, *, event, source, now, resource_name, resource_uri, summary, extra=None) -> WebhookDelivery:
    """A pending delivery of `event` to `endpoint`, with Partner Center's event fields (EventName, ResourceUri,
    ResourceName, AuditUri, ResourceChangeUtcDate) and the portal's own (EventId, Summary, ...)."""
    event_id = uuid.uuid4()
    payload = {
        "EventId": str(event_id),
        "EventName": event,
        "ResourceName": resource_name,
        "ResourceUri": resource_uri,
        "AuditUri": None,
        "ResourceChangeUtcDate": now.isoformat().replace("+00:00", "Z"),
        "Summary": summary,
        **(extra or {}),
    }
    return WebhookDelivery(
        endpoint=endpoint,
        event_id=event_id,
        event=event,
        source=source,
        payload=payload,
        created_at=now,
        next_attempt_at=now,
    )


def _resource(entry: AuditEntry, order_numbers: dict) -> tuple[str, str | None]:
    if entry.subscription_id:
        return "subscription", f"/api/v1/customers/{entry.customer_id}/subscriptions/{entry.subscription_id}"
    if entry.order_id:
        return "order", f"/api/v1/customers/{entry.customer_id}/orders/{order_numbers[entry.order_id]}"
    if entry.customer_id:
        return "customer", f"/api/v1/customers/{entry.customer_id}"
    return "partner", None


def _entry_delivery(endpoint, entry: AuditEntry, event: str, order_numbers: dict) -> WebhookDelivery:
    """`order_numbers`: the entries' orders' numbers by id (the API names an order by its number, ORD-…)."""
    name, uri = _resource(entry, order_numbers)
    return _delivery(
        endpoint,
        event=event,
        source=f"audit:{entry.pk}",
        now=entry.at,
        resource_name=name,
        resource_uri=uri,
        summary=entry.summary,
        extra={
            "Action": entry.action,
            "CustomerId": str(entry.customer_id) if entry.customer_id else None,
            "SubscriptionId": str(entry.subscription_id) if entry.subscription_id else None,
            "OrderId": order_numbers.get(entry.order_id),
        },
    )


def _listening(partner_ids) -> dict:
    """The active endpoints of these partners, by partner."""
    found: dict = {}
    for endpoint in WebhookEndpoint.objects.filter(partner_id__in=partner_ids, is_active=True):
        found.setdefault(endpoint.partner_id, []).append(endpoint)
    return found


def dispatch_events(now: datetime) -> int:
    """Makes the deliveries of every audit entry not yet dispatched, a batch per transaction; returns how many."""
    made = 0
    while True:
        with transaction.atomic():
            # Locked and skipped when locked: two dispatchers at once (two workers' passes) take different entries,
            # so no entry is dispatched twice (the deliveries' unique source holds it even where rows don't lock).
            entries = list(
                AuditEntry.objects.select_for_update(skip_locked=True)
                .filter(webhooks_dispatched_at=None)
                .order_by("pk")
                .only("pk", "at", "partner_id", "customer_id", "order_id", "subscription_id", "action", "summary")[
                    :DISPATCH_BATCH
                ]
            )
            if not entries:
                return made
            endpoints = _listening({e.partner_id for e in entries if e.action in ACTION_EVENTS})
            orders = Order.objects.filter(pk__in={e.order_id for e in entries if e.order_id})
            numbers = {order.pk: order.number for order in orders}
            deliveries = [
                _entry_delivery(endpoint, entry, ACTION_EVENTS[entry.action], numbers)
                for entry in entries
                if entry.action in ACTION_EVENTS
                for endpoint in endpoints.get(entry.partner_id, ())
                if ACTION_EVENTS[entry.action] in endpoint.events
            ]
            WebhookDelivery.objects.bulk_create(deliveries)
            AuditEntry.objects.filter(pk__in=[e.pk for e in entries]).update(webhooks_dispatched_at=now)
            made += len(deliveries)
            _send_on_commit([d.pk for d in deliveries])
        if len(entries) < DISPATCH_BATCH:
            return made


def _closing_candidates(now: datetime, partner_ids) -> Q:
    """Active subscriptions whose window may close in the next 24 h, by what opens it (checks.cancellation_window_ends
    decides): a term started, or a renewal completed, 144 to 168 hours ago (X1); an ISV subscription's billing
    started 48 to 72 hours ago (X3)."""
    opened = (now - checks.REMOVAL_WINDOW, now + WINDOW_NOTICE - checks.REMOVAL_WINDOW)
    isv_opened = (now - checks.ISV_CANCELLATION_PERIOD, now + WINDOW_NOTICE - checks.ISV_CANCELLATION_PERIOD)
    return Q(status=Status.ACTIVE, partner_id__in=partner_ids) & (
        Q(term_start__range=opened)
        | Q(renewal_completed_at__range=opened)
        | Q(sku__product__publisher__is_microsoft=False)
        & (
            Q(setup_confirmed_at__range=isv_opened)
            | Q(trial_ends_at__range=isv_opened)
            | Q(created_at__range=isv_opened)
        )
    )


def notify_closing_windows(now: datetime) -> int:
    """The "cancellation window closes in 24 h" event for every active subscription whose window closes within the
    next 24 hours, once per subscription and window (ClosingWindowNotice); returns the deliveries made."""
    listening = {}
    for endpoint in WebhookEndpoint.objects.filter(is_active=True):
        if WINDOW_EVENT in endpoint.events:
            listening.setdefault(endpoint.partner_id, []).append(endpoint)
    if not listening:
        return 0
    made = 0
    candidates = Subscription.objects.filter(_closing_candidates(now, list(listening))).select_related(
        "sku__product__publisher"
    )
    for subscription in candidates:
        closes = checks.cancellation_window_ends(subscription)
        if closes is None or not now <= closes < now + WINDOW_NOTICE:
            continue
        made += _announce_window(subscription, closes, listening[subscription.partner_id], now)
    return made


def _announce_window(subscription, closes: datetime, endpoints, now: datetime) -> int:
    try:
        with transaction.atomic():
            notice = ClosingWindowNotice.objects.create(subscription=subscription, closes_at=closes, created_at=now)
            deliveries = [
                _delivery(
                    endpoint,
                    event=WINDOW_EVENT,
                    source=f"window:{notice.pk}",
                    now=now,
                    resource_name="subscription",
                    resource_uri=f"/api/v1{subscription_path(subscription)}",
                    summary=f"The cancellation window of {subscription.friendly_name} closes {checks.when_utc(closes)}",
                    extra={
                        "CustomerId": str(subscription.customer_id),
                        "SubscriptionId": str(subscription.pk),
                        "CancellationAllowedUntilDate": closes.isoformat().replace("+00:00", "Z"),
                    },
                )
                for endpoint in endpoints
            ]
            WebhookDelivery.objects.bulk_create(deliveries)
            _send_on_commit([d.pk for d in deliveries])
    except IntegrityError:
        return 0  # announced already (by an earlier pass, or by another worker's at the same time)
    return len(deliveries)


def _send_on_commit(delivery_ids: list[int]) -> None:
    # After the commit: a worker must find the delivery row, and a rolled-back change sends nothing.
    for pk in delivery_ids:
        transaction.on_commit(lambda pk=pk: deliver_webhook_task.enqueue(pk))


@dataclass
class WebhookReport:
    dispatched: int = 0
    window_notices: int = 0
    requeued: int = 0


def run_webhooks(now: datetime) -> WebhookReport:
    """The webhooks' part of a lifecycle pass: dispatch the new audit entries, announce closing windows, and queue
    again the deliveries a lost task left pending."""
    return WebhookReport(
        dispatched=dispatch_events(now), window_notices=notify_closing_windows(now), requeued=requeue_due(now)
    )
