"""Moving a customer's subscriptions from one partner to another (TF1–TF4).

The target partner asks the customer for a relationship (TF1), which the customer accepts through a
signed link e-mailed to its administrator, never inside a partner's session; the partner then files a
transfer request naming the source partner by PartnerID (TF2); the source partner picks subscriptions
(TF3) and completes the transfer, which in one transaction recreates them under the target and cancels them at the source
(TF4). Each function: keyword-only, `now` passed in, one transaction, audited.
"""

import re
import unicodedata
import uuid
from datetime import datetime, timedelta
from functools import partial
from uuid import UUID

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import EmailMultiAlternatives
from django.core.signing import BadSignature, Signer
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Q, QuerySet
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, gettext_noop

from catalog.models import Sku
from portal.access import Action, Permission, partner_of, permission, require
from portal.errors import RuleViolation
from portal.models import COUNTRY_NAMES, Customer, Partner
from portal.versions import bump_version, check_version

from . import audit, checks
from .models import RelationshipRequest, SeatLot, Subscription, TransferRequest
from .services.kernel import NO_WINDOW, delete_scheduled_changes, open_seat_lot, transition
from .states import Status

TRANSFER_LIFETIME = timedelta(days=30)  # TF4: a request expires 30 days after it was filed.
COMPANY_NAME_MAX = RelationshipRequest._meta.get_field("company_name").max_length
DOMAIN_MAX = RelationshipRequest._meta.get_field("domain").max_length
# A DNS name: dot-separated labels of letters, digits and inner hyphens, ending in a letter-only label.
DOMAIN = re.compile(r"(?=.{4,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")
TRANSFERABLE_STATUSES = (Status.ACTIVE, Status.SUSPENDED)
# TF1: the customer has this long to accept a relationship request through its link (the pages say until when).
RELATIONSHIP_LINK_LIFETIME = timedelta(days=14)
# The salt keeps these signatures apart from SECRET_KEY's other uses (sessions, password resets...): a value
# signed for anything else never passes for an acceptance link.
_LINK_SIGNER = Signer(salt="subscriptions.transfers.relationship-acceptance")
TOKEN_MAX = 200  # a signed request id is about 80 characters; anything much longer is not one of ours
BAD_LINK = gettext_lazy(
    "This invitation link isn't valid: it may have been cut short when it was copied. Open it again from "
    "the e-mail, or ask the partner to send a new invitation."
)
STAFF_CANT_ACCEPT = gettext_lazy(
    "You're signed in to CSP Portal: an invitation is accepted by the customer's administrator, "
    "not by partner staff. Sign out first, or open the link in a private window."
)
INVITATION_TEXT = "subscriptions/email/relationship_invitation.txt"
INVITATION_HTML = "subscriptions/email/relationship_invitation.html"


def transfers_for(partner: Partner):
    """Every request this partner is one side of; other partners' requests do not exist for it."""
    return TransferRequest.objects.filter(Q(source_partner=partner) | Q(target_partner=partner)).select_related(
        "source_partner", "target_partner", "source_customer", "target_customer"
    )


def transferable_subscriptions(transfer: TransferRequest):
    """TF3: what the source partner can pick: the customer's active or suspended new-commerce,
    paid subscriptions."""
    return (
        Subscription.objects.filter(
            customer=transfer.source_customer,
            status__in=TRANSFERABLE_STATUSES,
            sku__commerce=Sku.Commerce.NEW,
            is_trial=False,
        )
        .select_related("sku")
        .order_by("created_at", "pk")
    )


def relationship_permission(user) -> Permission:
    """TF1, T2: whether this user may send a relationship request, and if not why. Sending is a step towards
    buying (the transfer), so it takes a role that may buy: admin and sales agents of a partner that transacts
    (T1). The Transfers page's button and `send_relationship_request` both ask this one function."""
    return permission(user, Action.BUY)


class RelationshipLinkError(Exception):
    """An acceptance link that can't be used (TF1). `status`: 400 it is not a link the portal signed (cut short,
    altered, made up), 404 the request it was for no longer exists, 410 it expired or was already used."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def acceptance_token(relationship: RelationshipRequest) -> str:
    """TF1: what the customer's link carries: the request's id, signed. Without SECRET_KEY nobody can make one,
    so a request id alone (all a partner's pages know) accepts nothing. The token is the same however often it
    is made, so the e-mail and the demo's mailbox give the same link; it stops working when the request is
    accepted or past `expires_at`, which the service checks against its own `now`."""
    return _LINK_SIGNER.sign(relationship.pk.hex)


def acceptance_link(relationship: RelationshipRequest, *, site_url: str) -> str:
    """The absolute link e-mailed to the customer; `site_url` is the portal's address (scheme and host)."""
    path = reverse("subscriptions:relationship-accept", kwargs={"token": acceptance_token(relationship)})
    return site_url.rstrip("/") + path


def invitation(relationship: RelationshipRequest, *, site_url: str) -> dict:
    """What the invitation e-mail says (its templates' context): the e-mail and the demo's mailbox show it alike."""
    return {
        "relationship": relationship,
        "partner": relationship.target_partner,
        "link": acceptance_link(relationship, site_url=site_url),
        "lifetime_days": RELATIONSHIP_LINK_LIFETIME.days,
        "subject": _("%(partner)s asks to become your Cloud Solution Provider partner")
        % {"partner": relationship.target_partner.name},
    }


def _email_invitation(relationship: RelationshipRequest, *, site_url: str) -> None:
    context = invitation(relationship, site_url=site_url)
    message = EmailMultiAlternatives(
        context["subject"], render_to_string(INVITATION_TEXT, context), to=[relationship.contact_email]
    )
    message.attach_alternative(render_to_string(INVITATION_HTML, context), "text/html")
    message.send()


def _check_company_name(company_name: str) -> str:
    company_name = (company_name or "").strip()
    if not company_name:
        raise RuleViolation("TF1", _("Give the customer's company name."), field="company_name")
    if len(company_name) > COMPANY_NAME_MAX:
        raise RuleViolation(
            "TF1",
            _("A company name has at most %(count)s characters.") % {"count": COMPANY_NAME_MAX},
            field="company_name",
        )
    if any(unicodedata.category(c) == "Cc" for c in company_name):  # tabs, NUL (which PostgreSQL refuses)...
        raise RuleViolation("TF1", _("A company name can't contain control characters."), field="company_name")
    return company_name


def _email_address(value: str, *, rule: str, field: str, refusal: str) -> str:
    """The address typed, trimmed, or the rule's refusal of one that isn't an address (or is longer than the
    254 characters an address can have)."""
    value = (value or "").strip()
    try:
        if len(value) > 254:
            raise ValidationError("too long")
        validate_email(value)
    except ValidationError:
        raise RuleViolation(rule, refusal, field=field) from None
    return value


def _check_contact_email(contact_email: str, domain: str) -> str:
    contact_email = _email_address(
        contact_email,
        rule="TF1",
        field="contact_email",
        refusal=_("Enter the e-mail address of the customer's administrator."),
    )
    # The link accepts for the whole domain, so it goes only to a mailbox at that domain: whoever can read it
    # speaks for the organisation (Partner Center has the customer's admin sign in to its own tenant instead).
    # An address the partner picked elsewhere would let the partner accept on the customer's behalf.
    at = contact_email.rsplit("@", 1)[1].lower()
    if at != domain and not at.endswith("." + domain):
        raise RuleViolation(
            "TF1",
            _(
                "The acceptance link goes to the customer's administrator: give an address at %(domain)s (such as "
                "admin@%(domain)s)."
            )
            % {"domain": domain},
            field="contact_email",
        )
    return contact_email


def send_relationship_request(
    *, actor, company_name: str, domain: str, contact_email: str, site_url: str, now: datetime
) -> RelationshipRequest:
    """TF1: the target partner invites the customer; the customer accepts through the link e-mailed to it.

    Only this partner's own rows are read: whether any other partner serves the domain is never looked up, so
    the answer (and its work) is the same for a domain served here and for one nobody knows."""
    allowed = relationship_permission(actor)
    if not allowed:
        raise PermissionDenied(allowed.reason)
    partner = partner_of(actor)
    company_name, domain = _check_company_name(company_name), (domain or "").strip().lower()
    if not domain:
        raise RuleViolation("TF1", _("Give the customer's domain (e.g. contoso.onmicrosoft.com)."), field="domain")
    if len(domain) > DOMAIN_MAX or not DOMAIN.fullmatch(domain):
        raise RuleViolation(
            "TF1", _("Enter the customer's domain name, such as contoso.onmicrosoft.com."), field="domain"
        )
    contact_email = _check_contact_email(contact_email, domain)
    with transaction.atomic():
        # One partner's requests are sent one at a time, so that two clicks (or two tabs) can't both pass the
        # check below and send two links for one domain.
        Partner.objects.select_for_update().get(pk=partner.pk)
        waiting = (
            RelationshipRequest.objects.filter(
                target_partner=partner, domain=domain, expires_at__gt=now, status=RelationshipRequest.Status.PENDING
            )
            .order_by("-created_at")
            .first()
        )
        if waiting is not None:
            raise RuleViolation(
                "TF1",
                _(
                    "A relationship request to %(domain)s is already waiting for the customer: its link was e-mailed "
                    "to %(email)s and works until %(when)s UTC."
                )
                % {
                    "domain": domain,
                    "email": waiting.contact_email or _("the customer"),
                    "when": f"{waiting.expires_at:%Y-%m-%d %H:%M}",
                },
                conflict=True,
            )
        served = Customer.objects.filter(partner=partner, domain__iexact=domain).order_by("created_at", "pk").first()
        if served is not None:
            raise RuleViolation(
                "TF1",
                _("You already serve %(company)s (%(domain)s): request a transfer for it instead.")
                % {"company": served.company_name, "domain": domain},
                field="domain",
            )
        relationship = RelationshipRequest.objects.create(
            target_partner=partner,
            company_name=company_name,
            domain=domain,
            contact_email=contact_email,
            created_at=now,
            expires_at=now + RELATIONSHIP_LINK_LIFETIME,
        )
        summary = audit.said(
            gettext_noop("Relationship request sent to %(company)s (%(domain)s), link e-mailed to %(email)s"),
            company=company_name,
            domain=domain,
            email=contact_email,
        )
        audit.record(
            actor=actor,
            at=now,
            customer=None,
            partner=partner,
            action="relationship.requested",
            summary=summary,
            after={"id": str(relationship.pk), "expires_at": relationship.expires_at.isoformat()},
        )
        # After the commit: a request rolled back must not have e-mailed a working link. A mail server that is
        # down is logged (robust) rather than turning a sent request into an error page.
        transaction.on_commit(partial(_email_invitation, relationship, site_url=site_url), robust=True)
    return relationship


def _relationship_for_token(token: str, requests) -> RelationshipRequest:
    token = token or ""
    if len(token) > TOKEN_MAX:
        raise RelationshipLinkError(400, BAD_LINK)
    try:
        # Signed by this portal, so always a request's id; read as one all the same (an older key's link).
        request_id = UUID(_LINK_SIGNER.unsign(token))
    except (BadSignature, ValueError):
        raise RelationshipLinkError(400, BAD_LINK) from None
    relationship = requests.filter(pk=request_id).first()
    if relationship is None:
        raise RelationshipLinkError(404, _("This invitation no longer exists: ask the partner to send a new one."))
    return relationship


def _check_link_open(relationship: RelationshipRequest, now: datetime) -> None:
    if relationship.status == RelationshipRequest.Status.ACCEPTED:
        raise RelationshipLinkError(
            410,
            _("This invitation was already accepted on %(when)s UTC: its link works only once.")
            % {"when": f"{relationship.accepted_at:%Y-%m-%d %H:%M}"},
        )
    if now >= relationship.expires_at:
        raise RelationshipLinkError(
            410,
            _("This invitation expired on %(when)s UTC: ask %(partner)s to send a new one.")
            % {"when": f"{relationship.expires_at:%Y-%m-%d %H:%M}", "partner": relationship.target_partner.name},
        )


def open_relationship_link(*, token: str, now: datetime) -> RelationshipRequest:
    """TF1: the request an acceptance link is for, while it can be accepted; else RelationshipLinkError."""
    relationship = _relationship_for_token(token, RelationshipRequest.objects.select_related("target_partner"))
    _check_link_open(relationship, now)
    return relationship


def accept_relationship(
    *, token: str, actor, company_name: str, billing_country: str, segment: str, now: datetime
) -> RelationshipRequest:
    """TF1: the customer accepts through its link, and the partner gets a customer row built from what the
    customer gives here and the domain the invitation was for: never from another partner's record of the same
    organisation, which is not even looked up (its tenant id, segment and country are that partner's data)."""
    if actor is not None and actor.is_authenticated:
        # TF1: the customer accepts, not the partner: a session of the portal (partner staff of any role, the
        # operator) is refused even with the right link, so no one accepts "as the customer" from the inside.
        raise PermissionDenied(STAFF_CANT_ACCEPT)
    with transaction.atomic():
        relationship = _relationship_for_token(
            token, RelationshipRequest.objects.select_for_update(of=("self",)).select_related("target_partner")
        )
        _check_link_open(relationship, now)
        company_name = _check_company_name(company_name)
        if billing_country not in COUNTRY_NAMES:
            raise RuleViolation("TF1", _("Choose your organisation's billing country."), field="billing_country")
        if segment not in Customer.Segment.values:
            raise RuleViolation("TF1", _("Choose your organisation's segment."), field="segment")
        partner = relationship.target_partner
        # The partner's own row for this domain, if it got one since it sent the request (another accepted
        # invitation): kept as it is rather than a second customer for one organisation.
        customer = (
            Customer.objects.filter(partner=partner, domain__iexact=relationship.domain)
            .order_by("created_at", "pk")
            .first()
        )
        if customer is None:
            # A tenant id of its own (the model's default): the customer's records at other partners keep theirs.
            # A transfer (TF2) finds the current partner's record by the domain, on the current partner's side.
            customer = Customer.objects.create(
                partner=partner,
                company_name=company_name,
                domain=relationship.domain,
                segment=segment,
                billing_country=billing_country,
            )
        relationship.status = RelationshipRequest.Status.ACCEPTED
        relationship.accepted_at = now
        relationship.tenant_id = customer.tenant_id
        relationship.customer = customer
        relationship.save(update_fields=["status", "accepted_at", "tenant_id", "customer"])
        summary = audit.said(
            gettext_noop("%(company)s accepted %(partner)s as a partner (%(domain)s)"),
            company=customer.company_name,
            partner=partner.name,
            domain=relationship.domain,
        )
        audit.record(
            actor=None,
            at=now,
            customer=customer,
            action="relationship.accepted",
            summary=summary,
            after={"id": str(relationship.pk), "status": RelationshipRequest.Status.ACCEPTED},
        )
    return relationship


def file_transfer_request(
    *, actor, customer: Customer, source_partner_id: str, notification_email: str, now: datetime
) -> TransferRequest:
    """TF2: the target partner asks the source partner (by PartnerID) for this customer's subscriptions."""
    member = require(actor, Action.BUY)
    target = member.partner
    if customer.partner_id != target.pk:
        raise PermissionDenied(_("This customer is not yours."))
    notification_email = _email_address(
        notification_email,
        rule="TF2",
        field="notification_email",
        refusal=_("Enter a valid notification email address."),
    )
    source_partner_id = (source_partner_id or "").strip()
    source = Partner.objects.filter(partner_id=source_partner_id).first()
    if source is None:
        raise RuleViolation(
            "TF2",
            _("No partner has the PartnerID %(partner_id)s.") % {"partner_id": source_partner_id or _("(empty)")},
            field="source_partner_id",
        )
    if source.pk == target.pk:
        raise RuleViolation("TF2", _("You can't transfer subscriptions from yourself."), field="source_partner_id")
    # TF2: the source partner's record of the same organisation: the same tenant id (records from before, such as
    # an organisation that always bought through both), else the same domain. A customer that accepted this
    # partner's relationship request has a tenant id of its own (never one read from another partner's record)
    # and the domain it accepted for. Only the request keeps the link; nothing of that record is shown here.
    source_customer = Customer.objects.filter(partner=source, tenant_id=customer.tenant_id).first() or (
        Customer.objects.filter(partner=source, domain__iexact=customer.domain).order_by("created_at", "pk").first()
        if customer.domain
        else None
    )
    if source_customer is None:
        raise RuleViolation(
            "TF2",
            _("%(partner)s does not serve %(company)s.") % {"partner": source.name, "company": customer.company_name},
            field="source_partner_id",
        )
    with transaction.atomic():
        # One pending request per customer and source: filings for this customer take their turn on its row, so a
        # request submitted twice at once (double click, retry) is filed once and the second sees it pending.
        Customer.objects.select_for_update().filter(pk=customer.pk).first()
        # TF1: the relationship is the customer row itself (made when the customer accepted the request, or there
        # from before): `customer` is this partner's, so it exists. A pending request doesn't give one.
        if TransferRequest.objects.filter(
            target_partner=target,
            source_partner=source,
            tenant_id=customer.tenant_id,
            status=TransferRequest.Status.PENDING,
            expires_at__gt=now,
        ).exists():
            raise RuleViolation(
                "TF2",
                _(
                    "A transfer request for %(company)s from %(partner)s is already pending: wait for it, or "
                    "withdraw it first."
                )
                % {"company": customer.company_name, "partner": source.name},
                conflict=True,
            )
        transfer = TransferRequest.objects.create(
            source_partner=source,
            target_partner=target,
            tenant_id=customer.tenant_id,
            source_customer=source_customer,
            target_customer=customer,
            notification_email=notification_email,
            created_at=now,
            expires_at=now + TRANSFER_LIFETIME,
        )
        after = {"id": str(transfer.pk), "expires_at": transfer.expires_at.isoformat()}
        audit.record(
            actor=actor,
            at=now,
            customer=customer,
            action="transfer.requested",
            summary=audit.said(
                gettext_noop("Transfer request sent to %(partner)s (%(partner_id)s)"),
                partner=source.name,
                partner_id=source.partner_id,
            ),
            after=after,
        )
        # TF3: the source partner sees the request in its customer's activity log too.
        audit.record(
            actor=actor,
            at=now,
            customer=source_customer,
            action="transfer.requested",
            summary=audit.said(
                gettext_noop("%(partner)s (%(partner_id)s) requests a transfer of subscriptions; expires %(when)s UTC"),
                partner=target.name,
                partner_id=target.partner_id,
                when=f"{transfer.expires_at:%Y-%m-%d %H:%M}",
            ),
            after=after,
        )
    return transfer


def _check_transferable(subscription: Subscription, transfer: TransferRequest, picked: set) -> None:
    name = subscription.display_name
    if subscription.status not in TRANSFERABLE_STATUSES:
        raise RuleViolation(
            "TF4",
            _("%(name)s is %(status)s: only active or suspended subscriptions can be transferred.")
            % {"name": name, "status": checks.status_text(subscription)},
            conflict=True,
        )
    if subscription.sku.commerce != Sku.Commerce.NEW or subscription.is_trial:
        raise RuleViolation(
            "TF4", _("%(name)s can't be transferred: only paid new-commerce subscriptions can.") % {"name": name}
        )
    if subscription.renewal_pending:
        raise RuleViolation(
            "TF4", _("%(name)s is renewing now: try again once the renewal completes.") % {"name": name}, conflict=True
        )
    if subscription.base_subscription_id and subscription.base_subscription_id not in picked:
        raise RuleViolation("TF4", _("%(name)s is an add-on: transfer it with its base subscription.") % {"name": name})
    if checks.customer_holds(transfer.target_customer_id, subscription.sku):  # C4a
        raise RuleViolation(
            "TF4",
            _("%(partner)s already has %(offer)s for this customer, and only one subscription to it is allowed.")
            % {"partner": transfer.target_partner.name, "offer": subscription.sku.name},
        )


def complete_transfer(
    *, actor, request_id, subscription_ids, now: datetime, version: int | str | None = None
) -> list[Subscription]:
    """TF4: all picked subscriptions move in one transaction, or none do."""
    member = require(actor, Action.BUY)
    with transaction.atomic():
        transfer = (
            TransferRequest.objects.select_for_update(of=("self",))
            .select_related("source_partner", "target_partner", "source_customer", "target_customer")
            .get(pk=request_id)
        )
        if transfer.source_partner_id != member.partner.pk:
            raise PermissionDenied(
                _("Only the partner the subscriptions are transferred from can complete this request.")
            )
        if transfer.status != TransferRequest.Status.PENDING:
            raise RuleViolation(
                "TF4",
                _("This request is already %(status)s.") % {"status": transfer.get_status_display().lower()},
                conflict=True,
            )
        if now >= transfer.expires_at:
            raise RuleViolation(
                "TF4",
                _("This request expired on %(when)s UTC: ask %(partner)s to file a new one.")
                % {"when": f"{transfer.expires_at:%Y-%m-%d %H:%M}", "partner": transfer.target_partner.name},
                conflict=True,
            )
        # After the status: a second submit of a completed request says so (portal/versions.py).
        check_version(transfer, version, noun="transfer request")  # portal/versions.py
        bump_version(transfer)
        ids = {str(pk) for pk in subscription_ids}
        if not ids:
            raise RuleViolation("TF4", _("Pick at least one subscription to transfer."))
        try:
            ids = {str(uuid.UUID(pk)) for pk in ids}
        except ValueError:
            raise RuleViolation(
                "TF4", _("Some picked subscriptions are not this customer's: reload the page."), conflict=True
            ) from None
        subscriptions = list(
            Subscription.objects.select_for_update(of=("self",))
            .select_related("sku")
            .filter(customer=transfer.source_customer, pk__in=ids)
            .order_by("created_at", "pk")
        )
        if len(subscriptions) != len(ids):
            raise RuleViolation(
                "TF4", _("Some picked subscriptions are not this customer's: reload the page."), conflict=True
            )
        picked = {s.pk for s in subscriptions}
        for subscription in subscriptions:
            _check_transferable(subscription, transfer, picked)
        created: dict = {}
        # Bases first, so that an add-on can point at its base's new subscription.
        for subscription in sorted(subscriptions, key=lambda s: s.base_subscription_id is not None):
            created[subscription.pk] = _move(subscription, transfer, created, actor=actor, now=now)
        transfer.status = TransferRequest.Status.COMPLETED
        transfer.completed_at = now
        transfer.save(update_fields=["status", "completed_at"])
        transfer.subscriptions.set(subscriptions)
        names = audit.listed(s.display_name for s in subscriptions)
        for customer in (transfer.source_customer, transfer.target_customer):
            audit.record(
                actor=actor,
                at=now,
                customer=customer,
                action="transfer.completed",
                summary=audit.said(
                    gettext_noop("Transfer from %(source)s to %(target)s completed: %(names)s"),
                    source=transfer.source_partner.name,
                    target=transfer.target_partner.name,
                    names=names,
                ),
                after={"id": str(transfer.pk), "subscriptions": len(created)},
            )
    return list(created.values())


def cancel_transfer_request(*, actor, request_id, now: datetime, version: int | str | None = None) -> TransferRequest:
    """A pending request ends without moving anything: withdrawn by the partner that filed it, or declined by
    the partner it was sent to. Either side's staff who may buy can do it, until it completes or expires (TF4)."""
    member = require(actor, Action.BUY)
    partner = member.partner
    with transaction.atomic():
        transfer = (
            TransferRequest.objects.select_for_update(of=("self",))
            .select_related("source_partner", "target_partner", "source_customer", "target_customer")
            .filter(Q(source_partner=partner) | Q(target_partner=partner), pk=request_id)
            .first()
        )
        if transfer is None:
            raise PermissionDenied(_("This transfer request is not one of yours."))
        if transfer.status != TransferRequest.Status.PENDING:
            raise RuleViolation(
                "TF4",
                _("This request is already %(status)s: nothing was changed.")
                % {"status": transfer.get_status_display().lower()},
                conflict=True,
            )
        if now >= transfer.expires_at:
            raise RuleViolation(
                "TF4",
                _("This request expired on %(when)s UTC: it can no longer be completed, so there is nothing to cancel.")
                % {"when": f"{transfer.expires_at:%Y-%m-%d %H:%M}"},
                conflict=True,
            )
        check_version(transfer, version, noun="transfer request")  # portal/versions.py
        bump_version(transfer)
        transfer.status = TransferRequest.Status.CANCELLED
        transfer.save(update_fields=["status"])
        verb = "withdrawn" if partner.pk == transfer.target_partner_id else "declined"
        summary = audit.said(
            gettext_noop(
                "Transfer request from %(target)s to move subscriptions away from %(source)s withdrawn by %(partner)s"
            )
            if verb == "withdrawn"
            else gettext_noop(
                "Transfer request from %(target)s to move subscriptions away from %(source)s declined by %(partner)s"
            ),
            target=transfer.target_partner.name,
            source=transfer.source_partner.name,
            partner=partner.name,
        )
        for customer in (transfer.source_customer, transfer.target_customer):
            audit.record(
                actor=actor,
                at=now,
                customer=customer,
                action="transfer.cancelled",
                summary=summary,
                before={"status": TransferRequest.Status.PENDING},
                after={
                    "id": str(transfer.pk),
                    "status": TransferRequest.Status.CANCELLED,
                    "by": partner.name,
                    "verb": verb,
                },
            )
    return transfer


def moved_subscriptions(transfer: TransferRequest, partner) -> QuerySet:
    """TF4: what a completed transfer moved, as each side keeps it: the source partner's subscriptions it gave up, or
    the target partner's it received (each recreated from one of those). Neither side sees the other's records."""
    if partner.pk == transfer.target_partner_id:
        return Subscription.objects.filter(
            customer=transfer.target_customer, transferred_from__in=transfer.subscriptions.all()
        )
    return transfer.subscriptions.all()


def _move(source: Subscription, transfer: TransferRequest, created: dict, *, actor, now: datetime) -> Subscription:
    """One subscription: recreated under the target partner's customer, cancelled at the source."""
    new = Subscription.objects.create(
        customer=transfer.target_customer,
        sku=source.sku,
        availability=source.availability,
        base_subscription=created.get(source.base_subscription_id),
        friendly_name=source.friendly_name,
        status=source.status,
        quantity=source.quantity,
        term=source.term,
        billing_frequency=source.billing_frequency,
        unit_price=source.unit_price,
        currency=source.currency,
        auto_renew=source.auto_renew,
        term_start=now,
        term_end=source.term_end,
        # A new subscription takes the offer's rule as it is now, as the check before it did (C4a, checks.customer_holds).
        one_per_customer=source.sku.one_per_customer,
        created_at=now,
        transferred_at=now,
        transferred_from=source,
        # The source's reseller of record worked with the source partner, not with the target.
        reseller=None,
    )
    # The licenses were bought from the source partner, not now: their lot opens no Q2 removal window.
    open_seat_lot(new, quantity=new.quantity, source=SeatLot.Source.PURCHASE, now=now, window=NO_WINDOW)
    # TF4: no charge at transfer. The customer has already paid the source partner for the current
    # billing period (and the source refunds nothing), so the target partner bills from the next
    # billing cycle on; charging here would bill the same days twice.
    audit.record(
        actor=actor,
        at=now,
        customer=transfer.target_customer,
        subscription=new,
        action="subscription.transferred_in",
        summary=audit.said(
            gettext_noop("Transferred in from %(partner)s with %(quantity)s license(s)"),
            partner=transfer.source_partner.name,
            quantity=new.quantity,
        ),
        after={
            "status": new.status,
            "quantity": new.quantity,
            "term": new.term,
            "term_end": new.term_end.isoformat() if new.term_end else None,
        },  # no id of the source partner's record: it is theirs (transferred_from keeps the link)
    )
    before = {"status": source.status}
    transition(source, Status.DELETED)
    source.auto_renew = False
    source.cancelled_at = now
    if not source.cycle_charge_pending:  # N7: one being charged now is left to the engine, which drops it
        source.next_charge_frequency, source.next_charge_on, source.next_charge_set_at = "", None, None
    source.save(
        update_fields=[
            "status",
            "auto_renew",
            "cancelled_at",
            "next_charge_frequency",
            "next_charge_on",
            "next_charge_set_at",
            "updated_at",
        ]
    )
    delete_scheduled_changes(source)
    audit.record(
        actor=actor,
        at=now,
        customer=transfer.source_customer,
        subscription=source,
        action="subscription.transferred",
        summary=audit.said(
            gettext_noop("Transferred to %(partner)s (%(partner_id)s); no refund"),
            partner=transfer.target_partner.name,
            partner_id=transfer.target_partner.partner_id,
        ),
        before=before,
        after={"status": Status.DELETED},  # the target partner's new record is theirs: no id of it here
    )
    return new


__all__ = [
    "RELATIONSHIP_LINK_LIFETIME",
    "TRANSFER_LIFETIME",
    "RelationshipLinkError",
    "accept_relationship",
    "acceptance_link",
    "acceptance_token",
    "cancel_transfer_request",
    "complete_transfer",
    "file_transfer_request",
    "invitation",
    "open_relationship_link",
    "partner_of",
    "relationship_permission",
    "send_relationship_request",
    "transferable_subscriptions",
    "transfers_for",
]
