"""Adding a customer (issue 12, T4): a new customer tenant with its `<name>.onmicrosoft.com` domain, address, contact,
the Microsoft Customer Agreement's acceptance as the partner attests it and, for an indirect provider, its reseller
of record (K4). One transaction, audited; the form's id makes a double submit add one customer (409 the second time).
"""

import re
import uuid
from datetime import date, datetime

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext, gettext_lazy, gettext_noop

from catalog.cart import resolve_reseller
from portal.access import Action, require
from portal.errors import RuleViolation
from portal.models import COUNTRY_NAMES, Customer
from subscriptions import audit

DOMAIN_SUFFIX = ".onmicrosoft.com"
# What Microsoft allows before ".onmicrosoft.com": lowercase letters, digits and hyphens, 1 to 27 of them; a hyphen
# can't start or end it (it is a DNS label).
DOMAIN_PREFIX = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,25}[a-z0-9])?")
DOMAIN_FORMAT = gettext_lazy(
    "Enter the part before .onmicrosoft.com: 1 to 27 lowercase letters, digits or hyphens, not starting or "
    "ending with a hyphen (such as contoso)."
)
ATTESTATION_NEEDED = gettext_lazy("Confirm that the customer has accepted the Microsoft Customer Agreement.")


class CustomerExists(RuleViolation):
    """The domain names a tenant that already exists. `customer` is the partner's own customer with it, when it is
    one (the page links to it); None when it is any other tenant, of which nothing more is said (T3)."""

    def __init__(self, message: str, *, customer: Customer | None = None, conflict: bool = False):
        super().__init__("T4", message, field="domain_prefix", conflict=conflict)
        self.customer = customer


def domain_for(prefix: str) -> str:
    """The customer's primary domain for what was typed before ".onmicrosoft.com" (the whole domain is read too),
    checked for Microsoft's format; else RuleViolation."""
    prefix = (prefix or "").strip().lower().removesuffix(DOMAIN_SUFFIX)
    if not DOMAIN_PREFIX.fullmatch(prefix):
        raise RuleViolation("T4", str(DOMAIN_FORMAT), field="domain_prefix")
    return prefix + DOMAIN_SUFFIX


def domain_refusal(partner, domain: str) -> CustomerExists | None:
    """Why `domain` can't be a new customer's: it is already a tenant's. The partner's own customer is named; any
    other partner's is not, with the same sentence as for a tenant nobody here serves: an existing tenant becomes
    this partner's customer by accepting a relationship request (TF1), which the page links to."""
    own = Customer.objects.filter(partner=partner, domain__iexact=domain).order_by("created_at", "pk").first()
    if own is not None:
        return CustomerExists(
            gettext("%(domain)s is already your customer %(customer)s.")
            % {"domain": domain, "customer": own.company_name},
            customer=own,
        )
    if Customer.objects.filter(domain__iexact=domain).exists():
        return CustomerExists(taken_message(domain))
    return None


def taken_message(domain: str) -> str:
    return gettext(
        "%(domain)s is already in use. If it is the customer's existing Microsoft tenant, send the customer a "
        "relationship request instead: once it accepts, it is listed among your customers."
    ) % {"domain": domain}


def add_customer(
    *,
    actor,
    created_from: uuid.UUID,
    company_name: str,
    domain_prefix: str,
    address_line1: str,
    address_line2: str = "",
    city: str,
    state: str = "",
    postal_code: str,
    billing_country: str,
    contact_first_name: str,
    contact_last_name: str,
    contact_email: str,
    contact_phone: str = "",
    mca_accepted: bool,
    mca_accepted_by_name: str,
    mca_accepted_by_email: str,
    mca_accepted_on: date | None,
    reseller_id: int | None = None,
    now: datetime,
) -> Customer:
    """A new commercial customer of the actor's partner (roles that may buy, T2), its EU/EFTA flag derived from the
    billing country (T4), its reseller of record one of an indirect provider's resellers with a signed MPA (K4).
    `created_from` is the form's id: the same form submitted twice adds one customer and the second is refused (409)."""
    member = require(actor, Action.BUY)
    partner = member.partner
    domain = domain_for(domain_prefix)
    if billing_country not in COUNTRY_NAMES:
        raise RuleViolation(
            "T4", gettext("Choose the customer's billing country from the list."), field="billing_country"
        )
    if not mca_accepted:
        raise RuleViolation("T4", ATTESTATION_NEEDED, field="mca_accepted")
    if mca_accepted_on is None:
        raise RuleViolation(
            "T4", gettext("Enter the date the customer accepted the agreement."), field="mca_accepted_on"
        )
    if mca_accepted_on > now.date():
        raise RuleViolation(
            "T4",
            gettext("The date the customer accepted the agreement can't be in the future (UTC)."),
            field="mca_accepted_on",
        )
    reseller = resolve_reseller(partner, reseller_id)
    customer = Customer(
        partner=partner,
        reseller=reseller,
        company_name=(company_name or "").strip(),
        domain=domain,
        segment=Customer.Segment.COMMERCIAL,
        billing_country=billing_country,
        address_line1=address_line1,
        address_line2=address_line2,
        city=city,
        state=state,
        postal_code=postal_code,
        contact_first_name=contact_first_name,
        contact_last_name=contact_last_name,
        contact_email=contact_email,
        contact_phone=contact_phone,
        mca_accepted_by_name=mca_accepted_by_name,
        mca_accepted_by_email=mca_accepted_by_email,
        mca_accepted_on=mca_accepted_on,
        mca_attested_by=actor,
        mca_attested_at=now,
        created_from=created_from,
    )
    _check_fields(customer)
    with transaction.atomic():
        if Customer.objects.filter(created_from=created_from).exists():
            raise _made_already(partner, created_from)
        refused = domain_refusal(partner, domain)
        if refused is not None:
            raise refused
        try:
            # Its own savepoint: the same form or the same domain added at this instant by another request breaks a
            # constraint here (customer_made_once, customer_added_domain_unique); answered as the checks above would.
            with transaction.atomic():
                customer.save(force_insert=True)
        except IntegrityError:
            if Customer.objects.filter(created_from=created_from).exists():
                raise _made_already(partner, created_from) from None
            raise domain_refusal(partner, domain) or CustomerExists(taken_message(domain)) from None
        audit.record(
            actor=actor,
            at=now,
            customer=customer,
            action="customer.created",
            summary=audit.said(
                gettext_noop("Customer %(company)s (%(domain)s) added, billed in %(country)s"),
                company=customer.company_name,
                domain=domain,
                country=audit.label(COUNTRY_NAMES.get(billing_country, billing_country)),
            ),
            after={
                "company_name": customer.company_name,
                "domain": domain,
                "billing_country": billing_country,
                "segment": customer.segment,
                "eu_efta": customer.is_eu_efta,
                "reseller": reseller.partner_id if reseller else None,
                "mca_accepted_by": mca_accepted_by_email,
                "mca_accepted_on": mca_accepted_on.isoformat(),
            },
        )
    return customer


def _made_already(partner, created_from) -> CustomerExists:
    made = Customer.objects.filter(partner=partner, created_from=created_from).first()
    return CustomerExists(
        gettext("This customer was already added from this page. Nothing was added a second time."),
        customer=made,
        conflict=True,
    )


def _check_fields(customer: Customer) -> None:
    """Each field's length and shape, as the model declares them (any caller, not only the form, is refused with a
    sentence rather than a database error)."""
    try:
        customer.full_clean(exclude=["partner", "reseller", "mca_attested_by", "tenant_id"], validate_constraints=False)
    except ValidationError as error:
        field, messages = next(iter(error.message_dict.items()))
        name = str(Customer._meta.get_field(field).verbose_name if field != "__all__" else gettext("A field"))
        raise RuleViolation(
            "T4",
            gettext("%(field)s: %(error)s") % {"field": name[:1].upper() + name[1:], "error": messages[0]},
            field=field,
        ) from None
