"""Webhooks through the API, as the user menu's Webhooks page has them (api.webhook_views): a partner's registrations
(list, add, read, replace, delete), the events they may ask for, a test event ("validation event", as Partner Center
calls it) and each registration's delivery log. Partner Center keeps one registration per partner under
`/webhooks/v1/registration`; the portal keeps several, so each has an id. The field names are Partner Center's
(`webhookUrl`, `webhookEvents`). Every write goes through api.webhooks' services: the same URL checks, roles (T2:
roles that may buy change them, the others read) and versions as the page."""

import uuid
from datetime import datetime
from uuid import UUID

from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from ninja import Field, Query, Router

from portal import access

from . import protocol, schemas, webhooks
from .models import WebhookDelivery, WebhookEndpoint
from .v1 import ERROR_RESPONSES, Paging, after_token, answered, list_uri, page_of, token_after
from .wire import collection, link

router = Router(tags=["webhooks"])

REGISTRATIONS = "/registrations"
REGISTRATION = "/registrations/{registration_id}"


# --- Schemas ----------------------------------------------------------------------------------------------------


class WebhookEvent(schemas.Schema):
    eventName: str
    description: str


class WebhookEventCollection(schemas.Schema):
    totalCount: int
    items: list[WebhookEvent]
    attributes: schemas.Attributes


class WebhookRegistration(schemas.Schema):
    id: str
    webhookUrl: str
    webhookEvents: list[str]
    isActive: bool
    createdDateTime: datetime
    secret: str | None = Field(
        None, description="The signing secret: only in the answer that made it or set a new one, never again."
    )
    links: dict[str, schemas.Link]
    attributes: schemas.Attributes


class WebhookRegistrationCollection(schemas.Schema):
    totalCount: int
    items: list[WebhookRegistration]
    attributes: schemas.Attributes


class WebhookDeliveryOut(schemas.Schema):
    eventId: str
    eventName: str
    status: str = Field(description="pending, delivered or failed")
    attempts: int
    createdDateTime: datetime
    lastAttemptDateTime: datetime | None
    nextAttemptDateTime: datetime | None = Field(description="UTC; null once delivered or failed.")
    deliveredDateTime: datetime | None
    responseCode: int | None
    lastError: str
    attributes: schemas.Attributes


class WebhookDeliveryCollection(schemas.Schema):
    totalCount: int
    items: list[WebhookDeliveryOut]
    continuationToken: str | None = None
    links: dict[str, schemas.Link]
    attributes: schemas.Attributes


class RegistrationBody(schemas.CaseInsensitive):
    """A registration as sent: what a PUT replaces too (a field left out takes its default, as a form would)."""

    webhookUrl: str = Field(max_length=500)
    webhookEvents: list[str] = Field(max_length=len(webhooks.EVENTS))
    isActive: bool = True
    secret: str | None = Field(
        None,
        max_length=200,
        description="At least 16 characters; left out, a new one is made (POST) or the current one kept (PUT).",
    )


# --- Wire -------------------------------------------------------------------------------------------------------


def registration(endpoint: WebhookEndpoint, *, secret: str | None = None) -> dict:
    path = f"/webhooks{REGISTRATIONS}/{endpoint.pk}"
    return {
        "id": str(endpoint.pk),
        "webhookUrl": endpoint.url,
        "webhookEvents": list(endpoint.events),
        "isActive": endpoint.is_active,
        "createdDateTime": endpoint.created_at,
        "secret": secret,
        "links": {"self": link(path), "deliveries": link(f"{path}/deliveries")},
        "attributes": {
            "objectType": "WebhookRegistration",
            "etag": protocol.etag("webhook", endpoint.pk, endpoint.version),
        },
    }


def delivery(row: WebhookDelivery) -> dict:
    return {
        "eventId": str(row.event_id),
        "eventName": row.event,
        "status": row.status,
        "attempts": row.attempts,
        "createdDateTime": row.created_at,
        "lastAttemptDateTime": row.last_attempt_at,
        "nextAttemptDateTime": row.next_attempt_at,
        "deliveredDateTime": row.delivered_at,
        "responseCode": row.response_code,
        "lastError": row.last_error,
        "attributes": {"objectType": "WebhookDelivery"},
    }


def _endpoint(request, registration_id: str) -> WebhookEndpoint:
    """One of the caller's partner's registrations, else 404 (another partner's id is as unknown as a made-up one)."""
    if not (registration_id.isascii() and registration_id.isdigit() and len(registration_id) < 19):
        raise Http404
    try:
        return webhooks.get_endpoint(request.user, int(registration_id))
    except WebhookEndpoint.DoesNotExist:
        raise Http404 from None


def _answer(endpoint: WebhookEndpoint, *, status: int = 200, secret: str | None = None) -> JsonResponse:
    body = WebhookRegistration(**registration(endpoint, secret=secret)).model_dump(mode="json")
    response = JsonResponse(body, status=status)
    if secret:
        response["Cache-Control"] = "no-store"  # the secret is shown once
    return response


# --- Operations -------------------------------------------------------------------------------------------------


@router.get("/availableEvents", response={200: WebhookEventCollection, **ERROR_RESPONSES})
def available_events(request):
    """The events a registration may ask for: Partner Center's names, and the portal's own
    `cancellation-window-closing` (24 h before a subscription's cancellation window closes)."""
    items = [{"eventName": name, "description": str(text)} for name, text in webhooks.EVENTS.items()]
    return {"totalCount": len(items), "items": items, "attributes": {"objectType": "Collection"}}


@router.get(REGISTRATIONS, response={200: WebhookRegistrationCollection, **ERROR_RESPONSES})
def list_registrations(request):
    items = [registration(e) for e in webhooks.endpoints_for(request.partner)]
    return {"totalCount": len(items), "items": items, "attributes": {"objectType": "Collection"}}


@router.post(REGISTRATIONS, response={201: WebhookRegistration, **ERROR_RESPONSES})
def create_registration(request, body: RegistrationBody):
    """A new registration (roles that may buy, T2). 201 with its secret, shown this once; MS-RequestId makes a retry
    answer the registration the first request made instead of adding a second."""
    now = timezone.now()

    def act():
        endpoint, secret = webhooks.create_endpoint(
            request.user,
            url=body.webhookUrl,
            events=body.webhookEvents,
            secret=body.secret or "",
            is_active=body.isActive,
            created_from=uuid.uuid4(),  # each request adds one; a retry is answered by MS-RequestId
            now=now,
        )
        response = _answer(endpoint, status=201, secret=secret)
        response["Location"] = f"/api/v1/webhooks{REGISTRATIONS}/{endpoint.pk}"
        return response

    return protocol.once(request, request.partner, lambda: answered(request, act), now=now)


@router.get(REGISTRATION, response={200: WebhookRegistration, **ERROR_RESPONSES})
def get_registration(request, registration_id: str):
    return registration(_endpoint(request, registration_id))


@router.put(REGISTRATION, response={200: WebhookRegistration, **ERROR_RESPONSES})
def put_registration(request, registration_id: str, body: RegistrationBody):
    """Replaces the registration's URL, events and state (and its secret, if one is sent). Needs If-Match with its
    etag."""
    endpoint = _endpoint(request, registration_id)
    now = timezone.now()

    def act():
        access.require(request.user, access.Action.BUY)  # 403 before 412, as the page and every other write
        version = protocol.if_match_version(request, "webhook", endpoint.pk)
        changed = webhooks.update_endpoint(
            request.user,
            endpoint.pk,
            version=version,
            url=body.webhookUrl,
            events=body.webhookEvents,
            secret=body.secret or "",
            is_active=body.isActive,
        )
        return _answer(changed)  # a secret sent is never echoed back

    return protocol.once(request, request.partner, lambda: answered(request, act), now=now)


@router.delete(REGISTRATION, response={204: None, **ERROR_RESPONSES})
def delete_registration(request, registration_id: str):
    """Deletes the registration and its delivery log; a pending delivery is never sent. Needs If-Match."""
    endpoint = _endpoint(request, registration_id)
    now = timezone.now()

    def act():
        access.require(request.user, access.Action.BUY)
        version = protocol.if_match_version(request, "webhook", endpoint.pk)
        webhooks.delete_endpoint(request.user, endpoint.pk, version=version)
        return HttpResponse(status=204)

    return protocol.once(request, request.partner, lambda: answered(request, act), now=now)


@router.post(REGISTRATION + "/validationEvents", response={201: WebhookDeliveryOut, **ERROR_RESPONSES})
def send_validation_event(request, registration_id: str):
    """Queues a test event (`test-created`) for this registration, active or not: its delivery (status, attempts,
    response code) is then read at `…/deliveries/{eventId}`. Needs If-Match (sending bumps the registration's etag, so
    the same request sent twice sends one test; MS-RequestId replays the first answer)."""
    endpoint = _endpoint(request, registration_id)
    now = timezone.now()

    def act():
        access.require(request.user, access.Action.BUY)
        version = protocol.if_match_version(request, "webhook", endpoint.pk)
        sent = webhooks.send_test_event(request.user, endpoint.pk, version=version, now=now)
        return JsonResponse(WebhookDeliveryOut(**delivery(sent)).model_dump(mode="json"), status=201)

    return protocol.once(request, request.partner, lambda: answered(request, act), now=now)


@router.get(REGISTRATION + "/deliveries", response={200: WebhookDeliveryCollection, **ERROR_RESPONSES})
def list_deliveries(request, registration_id: str, paging: Query[Paging]):
    """The registration's delivery log, newest first, a page at a time (MS-ContinuationToken)."""
    endpoint = _endpoint(request, registration_id)
    # Newest first, on the log's index (api_delivery_log)
    page, more = page_of(after_token(request, endpoint.deliveries.all(), "created_at"), paging.size)
    return collection(
        [delivery(d) for d in page],
        self_uri=list_uri(request),
        next_token=token_after(page[-1], "created_at") if more else None,
    )


@router.get(REGISTRATION + "/deliveries/{event_id}", response={200: WebhookDeliveryOut, **ERROR_RESPONSES})
def get_delivery(request, registration_id: str, event_id: str):
    endpoint = _endpoint(request, registration_id)
    try:
        event = UUID(event_id)
    except ValueError:
        raise Http404 from None
    return delivery(get_object_or_404(endpoint.deliveries, event_id=event))
