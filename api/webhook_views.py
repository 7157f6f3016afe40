"""The user menu's Webhooks page: a partner's endpoints (add, edit, delete, send a test event) and each one's
delivery log. Roles that may buy change them; every other role (a support agent) sees them read-only (T2)."""

import uuid

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext
from django.views.decorators.http import require_http_methods, require_POST

from portal import access
from portal.errors import RuleViolation
from portal.forms import refuse

from . import webhooks
from .models import WebhookEndpoint
from .webhook_forms import EditEndpointForm, EndpointActionForm, NewEndpointForm

LOG_ROWS = 50  # the newest deliveries an endpoint's page lists


def _may_change(request) -> access.Permission:
    return access.permission(request.user, access.Action.BUY)


def _blank():
    return NewEndpointForm(initial={"form_id": uuid.uuid4(), "is_active": True})


def _list_page(request, form, *, secret: str = "", status: int = 200):
    member = access.require(request.user, access.Action.VIEW)
    return render(
        request,
        "api/webhooks.html",
        {
            "form": form,
            "secret": secret,
            "permission": _may_change(request),
            "endpoints": webhooks.endpoints_for(member.partner),
            "events": webhooks.EVENTS,
        },
        status=status,
    )


@require_http_methods(["GET", "HEAD", "POST"])
def webhook_list(request):
    if request.method != "POST":
        return _list_page(request, _blank())
    access.require(request.user, access.Action.BUY)
    form = NewEndpointForm(request.POST)
    if not form.is_valid():
        return _list_page(request, form, status=422)
    data = form.cleaned_data
    try:
        endpoint, secret = webhooks.create_endpoint(
            request.user,
            url=data["url"],
            events=data["events"],
            secret=data["secret"],
            is_active=data["is_active"],
            created_from=data["form_id"],
            now=timezone.now(),
        )
    except RuleViolation as violation:
        refuse(form, violation)
        return _list_page(request, form, status=violation.status)
    # A secret the portal made is in this answer only (as an API token's is); a typed one the partner has already.
    response = _list_page(request, _blank(), secret="" if data["secret"] else secret, status=201)
    response["Cache-Control"] = "no-store"
    return response


def _endpoint_or_404(request, endpoint_id) -> WebhookEndpoint:
    try:
        return webhooks.get_endpoint(request.user, endpoint_id)
    except WebhookEndpoint.DoesNotExist:
        raise Http404(gettext("No such webhook endpoint.")) from None


def _detail_page(request, endpoint, form, *, status: int = 200, error: str = ""):
    return render(
        request,
        "api/webhook_detail.html",
        {
            "endpoint": endpoint,
            "form": form,
            "permission": _may_change(request),
            "events": [webhooks.EVENTS.get(e, e) for e in endpoint.events],
            "deliveries": endpoint.deliveries.all()[:LOG_ROWS],
            "error": error,  # a refused Delete or Send test event, in the page's error bar
        },
        status=status,
    )


def _edit_form(endpoint):
    return EditEndpointForm(
        initial={
            "url": endpoint.url,
            "events": endpoint.events,
            "is_active": endpoint.is_active,
            "version": endpoint.version,
        }
    )


@require_http_methods(["GET", "HEAD", "POST"])
def webhook_detail(request, endpoint_id):
    access.require(request.user, access.Action.VIEW)
    endpoint = _endpoint_or_404(request, endpoint_id)
    if request.method != "POST":
        return _detail_page(request, endpoint, _edit_form(endpoint))
    access.require(request.user, access.Action.BUY)
    form = EditEndpointForm(request.POST)
    if not form.is_valid():
        return _detail_page(request, endpoint, form, status=422)
    data = form.cleaned_data
    try:
        endpoint = webhooks.update_endpoint(
            request.user,
            endpoint.pk,
            version=data["version"],
            url=data["url"],
            events=data["events"],
            secret=data["secret"],
            is_active=data["is_active"],
        )
    except WebhookEndpoint.DoesNotExist:
        raise Http404(gettext("No such webhook endpoint.")) from None
    except RuleViolation as violation:
        refuse(form, violation)
        return _detail_page(request, _endpoint_or_404(request, endpoint_id), form, status=violation.status)
    messages.success(request, gettext("Saved %(url)s.") % {"url": endpoint.url})
    return redirect("api:webhook-detail", endpoint.pk)


def _action(request, endpoint_id, act):
    """Delete or Send test event: the role, the endpoint (404 if not the partner's), the version posted."""
    access.require(request.user, access.Action.BUY)
    endpoint = _endpoint_or_404(request, endpoint_id)
    form = EndpointActionForm(request.POST)
    form.is_valid()  # a VersionField never refuses: the service judges the version
    try:
        return act(form.cleaned_data.get("version", ""))
    except WebhookEndpoint.DoesNotExist:
        raise Http404(gettext("No such webhook endpoint.")) from None
    except RuleViolation as violation:
        endpoint = _endpoint_or_404(request, endpoint_id)
        return _detail_page(request, endpoint, _edit_form(endpoint), status=violation.status, error=violation.message)


@require_POST
def webhook_delete(request, endpoint_id):
    def act(version):
        endpoint = webhooks.delete_endpoint(request.user, endpoint_id, version=version)
        messages.success(request, gettext("Deleted %(url)s: it receives no more events.") % {"url": endpoint.url})
        return redirect("api:webhook-list")

    return _action(request, endpoint_id, act)


@require_POST
def webhook_test(request, endpoint_id):
    def act(version):
        delivery = webhooks.send_test_event(request.user, endpoint_id, version=version, now=timezone.now())
        messages.success(
            request,
            gettext("Test event %(event)s queued: its delivery shows in the log below.") % {"event": delivery.event_id},
        )
        return redirect("api:webhook-detail", endpoint_id)

    return _action(request, endpoint_id, act)
