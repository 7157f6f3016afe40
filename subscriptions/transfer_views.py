"""The Transfers page (TF1–TF4): relationship requests, transfer requests in and out, completing one;
and the two pages that are the customer's, not a partner's: accepting an invitation, and (demo only)
the simulated mailbox it arrives in.

Transfer URLs name no customer: a request is looked up among the requests the signed-in partner
is one side of (T3: anything else is 404), and the side is checked by the service (403).
"""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from portal import access
from portal.errors import RuleViolation
from portal.forms import first_error, refuse
from portal.models import COUNTRY_CHOICES, Customer

from .forms import (
    AcceptRelationshipForm,
    MailboxForm,
    RelationshipForm,
    TransferCompleteForm,
    TransferFileForm,
    VersionedForm,
)
from .models import AuditEntry, RelationshipRequest, TransferRequest
from .transfers import (
    RELATIONSHIP_LINK_LIFETIME,
    STAFF_CANT_ACCEPT,
    RelationshipLinkError,
    accept_relationship,
    cancel_transfer_request,
    complete_transfer,
    file_transfer_request,
    invitation,
    moved_subscriptions,
    open_relationship_link,
    relationship_permission,
    send_relationship_request,
    transferable_subscriptions,
    transfers_for,
)

ACCEPT_PAGE = "subscriptions/accept_relationship.html"


def _list_context(request, now, **extra) -> dict:
    partner = access.partner_of(request.user)
    transfers = list(transfers_for(partner))
    for transfer in transfers:
        transfer.shown_status = transfer.status_label_at(now)  # TF4: pending past expiry shows as expired
    relationships = list(RelationshipRequest.objects.filter(target_partner=partner).select_related("customer"))
    for relationship in relationships:
        relationship.shown_status = relationship.status_label_at(now)
    context = {
        "now": now,
        "partner": partner,
        "incoming": [t for t in transfers if t.source_partner_id == partner.pk],
        "outgoing": [t for t in transfers if t.target_partner_id == partner.pk],
        "relationships": relationships,
        "link_days": RELATIONSHIP_LINK_LIFETIME.days,
        # The simulated mailbox exists in the demo only; a real deployment e-mails the link and shows it nowhere.
        "demo": settings.DEMO_MODE,
        "customers": access.customers_for(request.user).order_by("company_name"),
        "can_act": access.permission(request.user, access.Action.BUY),
        "can_send": relationship_permission(request.user),  # TF1: the same answer the service gives
        "relationship_form": {},
        "transfer_form": {},
    }
    context.update(extra)
    return context


def transfer_list(request):
    return render(request, "subscriptions/transfers.html", _list_context(request, timezone.now()))


def relationship_send(request):
    """TF1: the target partner sends a relationship request; its link is e-mailed to the customer."""
    if request.method != "POST":
        return redirect("subscriptions:transfer-list")
    now = timezone.now()
    form = RelationshipForm(request.POST)
    status = 422
    if form.is_valid():
        try:
            # The link in the e-mail points at the portal as the partner reached it (a host ALLOWED_HOSTS accepts).
            relationship = send_relationship_request(
                actor=request.user, now=now, site_url=request.build_absolute_uri("/"), **form.cleaned_data
            )
        except RuleViolation as violation:
            refuse(form, violation)
            status = violation.status
        else:
            messages.success(
                request,
                _("Relationship request sent to %(company)s: the acceptance link was e-mailed to %(email)s.")
                % {"company": relationship.company_name, "email": relationship.contact_email},
            )
            return redirect("subscriptions:transfer-list")
    return render(
        request,
        "subscriptions/transfers.html",
        _list_context(request, now, error=first_error(form), relationship_form=form),
        status=status,
    )


def transfer_file(request):
    """TF2: the target partner files a transfer request for one of its customers."""
    if request.method != "POST":
        return redirect("subscriptions:transfer-list")
    now = timezone.now()
    form = TransferFileForm(request.POST)
    valid = form.is_valid()
    if "customer" not in form.cleaned_data:
        raise Http404("No such customer.")  # not an id: like one outside the partner's customers (T3)
    customer = get_object_or_404(access.customers_for(request.user), pk=form.cleaned_data["customer"])
    status = 422
    if valid:
        try:
            transfer = file_transfer_request(
                actor=request.user,
                customer=customer,
                now=now,
                source_partner_id=form.cleaned_data["source_partner_id"],
                notification_email=form.cleaned_data["notification_email"],
            )
        except RuleViolation as violation:
            refuse(form, violation)
            status = violation.status
        else:
            messages.success(
                request, _("Transfer request sent to %(partner)s.") % {"partner": transfer.source_partner.name}
            )
            return redirect("subscriptions:transfer-detail", transfer_id=transfer.pk)
    return render(
        request,
        "subscriptions/transfers.html",
        _list_context(request, now, error=first_error(form), transfer_form=form),
        status=status,
    )


def _detail_context(request, transfer, now) -> dict:
    partner = access.partner_of(request.user)
    status = transfer.status_at(now)
    return {
        "transfer": transfer,
        "now": now,
        "is_source": transfer.source_partner_id == partner.pk,
        "status": TransferRequest.Status(status).label,
        "open": status == TransferRequest.Status.PENDING,
        "can_act": access.permission(request.user, access.Action.BUY),
        "candidates": transferable_subscriptions(transfer),
        "picked": set(),
        "transferred": moved_subscriptions(transfer, partner).select_related("sku"),
        "cancellation": (
            AuditEntry.objects.filter(action="transfer.cancelled", after__id=str(transfer.pk)).order_by("-at").first()
            if transfer.status == TransferRequest.Status.CANCELLED
            else None
        ),
    }


def transfer_detail(request, transfer_id):
    """TF3/TF4: the request; for the source partner, the subscriptions to pick and "Transfer"."""
    partner = access.partner_of(request.user)
    transfer = get_object_or_404(transfers_for(partner), pk=transfer_id)
    now = timezone.now()
    context = _detail_context(request, transfer, now)
    if request.method == "POST":
        form = TransferCompleteForm(request.POST)
        form.is_valid()  # it never refuses: the picks and the version are the service's to judge
        picked = form.cleaned_data["subscriptions"]
        try:
            created = complete_transfer(
                actor=request.user,
                request_id=transfer.pk,
                subscription_ids=picked,
                now=now,
                version=form.cleaned_data["version"],
            )
        except RuleViolation as violation:
            context.update(error=violation.message, picked=set(picked))
            return render(request, "subscriptions/transfer_detail.html", context, status=violation.status)
        messages.success(
            request,
            ngettext(
                "Transferred %(count)s subscription to %(partner)s.",
                "Transferred %(count)s subscriptions to %(partner)s.",
                len(created),
            )
            % {"count": len(created), "partner": transfer.target_partner.name},
        )
        return redirect("subscriptions:transfer-detail", transfer_id=transfer.pk)
    return render(request, "subscriptions/transfer_detail.html", context)


def transfer_cancel(request, transfer_id):
    """Withdraw (the partner that filed it) or decline (the partner it was sent to) a pending request."""
    partner = access.partner_of(request.user)
    transfer = get_object_or_404(transfers_for(partner), pk=transfer_id)
    if request.method != "POST":
        return redirect("subscriptions:transfer-detail", transfer_id=transfer.pk)
    now = timezone.now()
    form = VersionedForm(request.POST)
    form.is_valid()  # the version alone, which the service judges
    try:
        cancel_transfer_request(
            actor=request.user, request_id=transfer.pk, now=now, version=form.cleaned_data["version"]
        )
    except RuleViolation as violation:
        transfer.refresh_from_db()
        context = _detail_context(request, transfer, now)
        context["error"] = violation.message
        return render(request, "subscriptions/transfer_detail.html", context, status=violation.status)
    is_target = transfer.target_partner_id == partner.pk
    messages.success(
        request,
        _("Transfer request withdrawn: nothing was transferred.")
        if is_target
        else _("Transfer request declined: nothing was transferred to %(partner)s.")
        % {"partner": transfer.target_partner.name},
    )
    return redirect("subscriptions:transfer-detail", transfer_id=transfer.pk)


def _accept_context(request, **extra) -> dict:
    return {
        "countries": COUNTRY_CHOICES,
        "segments": Customer.Segment.choices,
        "form": {},
        "signed_in": request.user.is_authenticated,
        "staff_notice": STAFF_CANT_ACCEPT,
        **extra,
    }


@login_not_required
def relationship_accept(request, token):
    """TF1: the customer's page behind the e-mailed link. It needs no sign-in (the customer has no account
    here) and takes only the signed token: an expired, used or altered link answers 410/404/400 with what to
    do. A signed-in session is partner staff, not the customer: the page says so and refuses to accept (403)."""
    now = timezone.now()
    try:
        relationship = open_relationship_link(token=token, now=now)
    except RelationshipLinkError as refused:
        return render(request, ACCEPT_PAGE, _accept_context(request, link_error=refused.message), status=refused.status)
    context = _accept_context(request, relationship=relationship, form={"company_name": relationship.company_name})
    if request.method != "POST":
        return render(request, ACCEPT_PAGE, context)
    form = AcceptRelationshipForm(request.POST)
    form.is_valid()  # it passes the details on as typed: the service judges them (TF1)
    try:
        relationship = accept_relationship(token=token, actor=request.user, now=now, **form.cleaned_data)
    except RelationshipLinkError as refused:  # used (a second click) or expired since the page was read
        return render(request, ACCEPT_PAGE, _accept_context(request, link_error=refused.message), status=refused.status)
    except PermissionDenied as refused:
        context["error"] = str(refused)
        return render(request, ACCEPT_PAGE, context, status=403)
    except RuleViolation as violation:
        refuse(form, violation)
        context.update(
            form={name: form[name].value() or "" for name in form.fields}, accept_form=form, error=violation.message
        )
        return render(request, ACCEPT_PAGE, context, status=violation.status)
    context.update(relationship=relationship, accepted=True)
    return render(request, ACCEPT_PAGE, context)


@login_not_required
def relationship_mailbox(request):
    """TF1 demo: a simulated mailbox, standing in for the customer administrator's own, where the invitation
    e-mail and its link can be read. It exists only when settings say demo (PORTAL_DEMO=1): anywhere else it is
    404, and the link reaches the customer by e-mail only."""
    if not settings.DEMO_MODE:
        raise Http404("No such page.")
    form = MailboxForm(request.GET)
    address = str(form["to"].value() or "").strip()
    context = {"address": address, "messages_sent": [], "invalid": False, "form": form}
    if address:
        if not form.is_valid():
            context["invalid"] = True
            return render(request, "subscriptions/relationship_mailbox.html", context, status=422)
        site_url = request.build_absolute_uri("/")
        sent = (
            RelationshipRequest.objects.filter(contact_email__iexact=address)
            .select_related("target_partner")
            .order_by("-created_at", "pk")
        )
        context["messages_sent"] = [invitation(relationship, site_url=site_url) for relationship in sent]
    return render(request, "subscriptions/relationship_mailbox.html", context)
