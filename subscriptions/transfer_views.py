"""The Transfers page (TF1–TF4): relationship requests, transfer requests in and out, completing one.

Transfer URLs name no customer: a request is looked up among the requests the signed-in partner
is one side of (T3: anything else is 404), and the side is checked by the service (403).
"""

import uuid

from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone

from portal import access
from portal.forms import parse_text
from portal.rules import RuleViolation

from .models import AuditEntry, RelationshipRequest, TransferRequest
from .transfers import (accept_relationship, cancel_transfer_request, complete_transfer, file_transfer_request,
                        send_relationship_request, transferable_subscriptions, transfers_for)


def _list_context(request, now, **extra) -> dict:
    partner = access.partner_of(request.user)
    transfers = list(transfers_for(partner))
    for transfer in transfers:
        transfer.shown_status = transfer.status_label_at(now)  # TF4: pending past expiry shows as expired
    context = {
        "now": now, "partner": partner,
        "incoming": [t for t in transfers if t.source_partner_id == partner.pk],
        "outgoing": [t for t in transfers if t.target_partner_id == partner.pk],
        "relationships": RelationshipRequest.objects.filter(target_partner=partner).select_related("customer"),
        "customers": access.customers_for(request.user).order_by("company_name"),
        "can_act": access.permission(request.user, access.Action.BUY),
        "relationship_form": {}, "transfer_form": {},
    }
    context.update(extra)
    return context


def transfer_list(request):
    return render(request, "subscriptions/transfers.html", _list_context(request, timezone.now()))


def relationship_send(request):
    """TF1: the target partner sends a relationship request to the customer."""
    if request.method != "POST":
        return redirect("subscriptions:transfer-list")
    now = timezone.now()
    form = {"company_name": request.POST.get("company_name", ""), "domain": request.POST.get("domain", "")}
    try:
        parse_text(form["company_name"], rule="TF1", field="company_name", what="A company name")
        parse_text(form["domain"], rule="TF1", field="domain", what="A domain")
        relationship = send_relationship_request(actor=request.user, now=now, **form)
    except RuleViolation as violation:
        return render(request, "subscriptions/transfers.html",
                      _list_context(request, now, error=violation.message, relationship_form=form), status=violation.status)
    messages.success(request, f"Relationship request sent to {relationship.company_name}. Send the customer the "
                              "acceptance link shown below.")
    return redirect("subscriptions:transfer-list")


def transfer_file(request):
    """TF2: the target partner files a transfer request for one of its customers."""
    if request.method != "POST":
        return redirect("subscriptions:transfer-list")
    now = timezone.now()
    form = {name: request.POST.get(name, "") for name in ("customer", "source_partner_id", "notification_email")}
    customer = get_object_or_404(access.customers_for(request.user), pk=_uuid_or_404(form["customer"]))
    try:
        parse_text(form["source_partner_id"], rule="TF2", field="source_partner_id", what="A PartnerID")
        transfer = file_transfer_request(actor=request.user, customer=customer, now=now,
                                         source_partner_id=form["source_partner_id"],
                                         notification_email=form["notification_email"])
    except RuleViolation as violation:
        return render(request, "subscriptions/transfers.html",
                      _list_context(request, now, error=violation.message, transfer_form=form), status=violation.status)
    messages.success(request, f"Transfer request sent to {transfer.source_partner.name}.")
    return redirect("subscriptions:transfer-detail", transfer_id=transfer.pk)


def _detail_context(request, transfer, now) -> dict:
    partner = access.partner_of(request.user)
    status = transfer.status_at(now)
    return {"transfer": transfer, "now": now, "is_source": transfer.source_partner_id == partner.pk,
            "status": TransferRequest.Status(status).label, "open": status == TransferRequest.Status.PENDING,
            "can_act": access.permission(request.user, access.Action.BUY),
            "candidates": transferable_subscriptions(transfer), "picked": set(),
            "transferred": transfer.subscriptions.select_related("sku"),
            "cancellation": (AuditEntry.objects.filter(action="transfer.cancelled", after__id=str(transfer.pk))
                             .order_by("-at").first() if transfer.status == TransferRequest.Status.CANCELLED else None)}


def transfer_detail(request, transfer_id):
    """TF3/TF4: the request; for the source partner, the subscriptions to pick and "Transfer"."""
    partner = access.partner_of(request.user)
    transfer = get_object_or_404(transfers_for(partner), pk=transfer_id)
    now = timezone.now()
    context = _detail_context(request, transfer, now)
    if request.method == "POST":
        picked = request.POST.getlist("subscriptions")
        try:
            created = complete_transfer(actor=request.user, request_id=transfer.pk, subscription_ids=picked, now=now)
        except RuleViolation as violation:
            context.update(error=violation.message, picked=set(picked))
            return render(request, "subscriptions/transfer_detail.html", context, status=violation.status)
        messages.success(request, f"Transferred {len(created)} subscription(s) to {transfer.target_partner.name}.")
        return redirect("subscriptions:transfer-detail", transfer_id=transfer.pk)
    return render(request, "subscriptions/transfer_detail.html", context)


def transfer_cancel(request, transfer_id):
    """Withdraw (the partner that filed it) or decline (the partner it was sent to) a pending request."""
    partner = access.partner_of(request.user)
    transfer = get_object_or_404(transfers_for(partner), pk=transfer_id)
    if request.method != "POST":
        return redirect("subscriptions:transfer-detail", transfer_id=transfer.pk)
    now = timezone.now()
    try:
        cancel_transfer_request(actor=request.user, request_id=transfer.pk, now=now)
    except RuleViolation as violation:
        transfer.refresh_from_db()
        context = _detail_context(request, transfer, now)
        context["error"] = violation.message
        return render(request, "subscriptions/transfer_detail.html", context, status=violation.status)
    is_target = transfer.target_partner_id == partner.pk
    messages.success(request, "Transfer request withdrawn: nothing was transferred." if is_target
                     else f"Transfer request declined: nothing was transferred to {transfer.target_partner.name}.")
    return redirect("subscriptions:transfer-detail", transfer_id=transfer.pk)


def relationship_accept(request, request_id):
    """TF1 demo: plays the customer, who follows the partner's link and accepts. Like the simulated
    publisher page, it is shown to the signed-in partner that sent the request (every page needs sign-in)."""
    requests = RelationshipRequest.objects.filter(target_partner=access.partner_of(request.user))
    relationship = get_object_or_404(requests.select_related("target_partner"), pk=request_id)
    context = {"relationship": relationship}
    if request.method == "POST":
        try:
            accept_relationship(request_id=relationship.pk, now=timezone.now())
        except RuleViolation as violation:
            context["error"] = violation.message
            return render(request, "subscriptions/accept_relationship.html", context, status=violation.status)
        relationship.refresh_from_db()
        context["accepted"] = True
    return render(request, "subscriptions/accept_relationship.html", context)


def _uuid_or_404(value):
    try:
        return uuid.UUID(value)
    except (TypeError, ValueError):
        raise Http404("No such customer.") from None
