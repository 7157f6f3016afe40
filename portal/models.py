"""Tenancy: partners, their staff and roles, and the customers they serve (rules T1–T4)."""

import uuid

from django.conf import settings
from django.db import models, transaction
from django.db.models import Q, Value
from django.db.models.functions import Concat, Lower, Upper
from django.utils.translation import gettext_lazy as _

# T4: the customer's EU/EFTA flag is derived from its billing country, never typed in.
EU_EFTA_COUNTRIES = frozenset(
    "AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE "  # EU
    "IS LI NO CH".split()  # EFTA
)

# Listed by English name, the order of the country lists (sorting the lazy names would translate them at import).
COUNTRY_NAMES = {
    "AU": _("Australia"),
    "AT": _("Austria"),
    "BE": _("Belgium"),
    "BR": _("Brazil"),
    "BG": _("Bulgaria"),
    "CA": _("Canada"),
    "HR": _("Croatia"),
    "CY": _("Cyprus"),
    "CZ": _("Czechia"),
    "DK": _("Denmark"),
    "EE": _("Estonia"),
    "FI": _("Finland"),
    "FR": _("France"),
    "DE": _("Germany"),
    "GR": _("Greece"),
    "HU": _("Hungary"),
    "IS": _("Iceland"),
    "IN": _("India"),
    "IE": _("Ireland"),
    "IT": _("Italy"),
    "JP": _("Japan"),
    "LV": _("Latvia"),
    "LI": _("Liechtenstein"),
    "LT": _("Lithuania"),
    "LU": _("Luxembourg"),
    "MT": _("Malta"),
    "MX": _("Mexico"),
    "NL": _("Netherlands"),
    "NZ": _("New Zealand"),
    "NO": _("Norway"),
    "PL": _("Poland"),
    "PT": _("Portugal"),
    "RO": _("Romania"),
    "SG": _("Singapore"),
    "SK": _("Slovakia"),
    "SI": _("Slovenia"),
    "ZA": _("South Africa"),
    "ES": _("Spain"),
    "SE": _("Sweden"),
    "CH": _("Switzerland"),
    "TW": _("Taiwan"),
    "GB": _("United Kingdom"),
    "US": _("United States"),
}
COUNTRY_CHOICES = list(COUNTRY_NAMES.items())


def is_eu_efta(country: str) -> bool:
    return country.upper() in EU_EFTA_COUNTRIES


class Partner(models.Model):
    """A CSP partner organisation (T1)."""

    class Kind(models.TextChoices):
        DIRECT_BILL = "direct_bill", _("Direct-bill partner")
        INDIRECT_PROVIDER = "indirect_provider", _("Indirect provider")
        INDIRECT_RESELLER = "indirect_reseller", _("Indirect reseller")

    name = models.CharField(_("name"), max_length=200)
    partner_id = models.CharField(
        _("PartnerID"), max_length=20, unique=True, help_text=_("Partner Center's PartnerID (MPN ID).")
    )
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    country = models.CharField(_("country"), max_length=2, choices=COUNTRY_CHOICES)
    mpa_signed = models.BooleanField(
        _("MPA signed"), default=True, help_text=_("Has signed the Microsoft Partner Agreement.")
    )
    resellers = models.ManyToManyField(
        "self",
        through="ResellerLink",
        symmetrical=False,
        related_name="providers",
        blank=True,
        verbose_name=_("resellers"),
    )

    class Meta:
        verbose_name = _("partner")
        verbose_name_plural = _("partners")
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.partner_id})"

    def save(self, *args, update_fields=None, **kwargs):
        # The lists sort by the reseller's name from a copy on each subscription (subscriptions.models): a rename
        # (the admin) changes the copies in the same transaction.
        renamed = not self._state.adding and (update_fields is None or "name" in update_fields)
        with transaction.atomic(using=kwargs.get("using")):
            super().save(*args, update_fields=update_fields, **kwargs)
            if renamed:
                self.resold_subscriptions.exclude(reseller_name=self.name).update(reseller_name=self.name)

    @property
    def can_transact(self) -> bool:
        # T1: only direct-bill partners and indirect providers buy and change subscriptions.
        return self.kind in {self.Kind.DIRECT_BILL, self.Kind.INDIRECT_PROVIDER}

    @property
    def is_reseller(self) -> bool:
        return self.kind == self.Kind.INDIRECT_RESELLER


class ResellerLink(models.Model):
    """An indirect provider's relationship with one of its indirect resellers."""

    provider = models.ForeignKey(
        Partner, on_delete=models.CASCADE, related_name="reseller_links", verbose_name=_("provider")
    )
    reseller = models.ForeignKey(
        Partner, on_delete=models.CASCADE, related_name="provider_links", verbose_name=_("reseller")
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("reseller link")
        verbose_name_plural = _("reseller links")
        constraints = [models.UniqueConstraint(fields=["provider", "reseller"], name="unique_reseller_link")]

    def __str__(self) -> str:
        return f"{self.provider.name} → {self.reseller.name}"


class Role(models.TextChoices):
    ADMIN_AGENT = "admin_agent", _("Admin agent")
    SALES_AGENT = "sales_agent", _("Sales agent")
    BILLING_ADMIN = "billing_admin", _("Billing admin")
    SUPPORT_AGENT = "support_agent", _("Support agent")


class Membership(models.Model):
    """A staff user's place in exactly one partner, with one or more roles (T2)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="membership", verbose_name=_("user")
    )
    partner = models.ForeignKey(
        Partner, on_delete=models.CASCADE, related_name="memberships", verbose_name=_("partner")
    )
    is_admin_agent = models.BooleanField(_("admin agent"), default=False)
    is_sales_agent = models.BooleanField(_("sales agent"), default=False)
    is_billing_admin = models.BooleanField(_("billing admin"), default=False)
    is_support_agent = models.BooleanField(_("support agent"), default=False)
    # The language the portal speaks to this person (a code of settings.LANGUAGES); blank follows the browser's
    # Accept-Language (portal.middleware). Read from the row the sign-in backend loads anyway: no extra query.
    language = models.CharField(_("language"), max_length=10, blank=True, default="", choices=settings.LANGUAGES)

    class Meta:
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")
        constraints = [
            models.CheckConstraint(
                condition=Q(is_admin_agent=True)
                | Q(is_sales_agent=True)
                | Q(is_billing_admin=True)
                | Q(is_support_agent=True),
                name="membership_has_a_role",
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.partner.name}"

    @property
    def roles(self) -> set[str]:
        return {
            role
            for role, held in [
                (Role.ADMIN_AGENT, self.is_admin_agent),
                (Role.SALES_AGENT, self.is_sales_agent),
                (Role.BILLING_ADMIN, self.is_billing_admin),
                (Role.SUPPORT_AGENT, self.is_support_agent),
            ]
            if held
        }

    @property
    def role_labels(self) -> list[str]:
        # Text in the active language (the user menu joins them; a lazy label can't be joined).
        return [str(Role(r).label) for r in sorted(self.roles)]


class Customer(models.Model):
    """A customer tenant served by one partner (T4)."""

    class Segment(models.TextChoices):
        COMMERCIAL = "commercial", _("Commercial")
        EDUCATION = "education", _("Education")
        GOVERNMENT = "government", _("Government")
        NONPROFIT = "nonprofit", _("Nonprofit")

    id = models.UUIDField(_("id"), primary_key=True, default=uuid.uuid4, editable=False)
    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="customers", verbose_name=_("partner"))
    reseller = models.ForeignKey(
        Partner,
        on_delete=models.PROTECT,
        related_name="resold_customers",
        null=True,
        blank=True,
        help_text=_("Reseller of record, for customers an indirect provider serves through a reseller."),
        verbose_name=_("reseller"),
    )
    # The customer's directory tenant: the same organisation may also buy through other partners,
    # and limits that count "with every partner" (K7) count across this id.
    tenant_id = models.UUIDField(_("tenant id"), default=uuid.uuid4, db_index=True)
    company_name = models.CharField(_("company name"), max_length=200)
    domain = models.CharField(_("domain"), max_length=200, blank=True)
    # The name and the domain in capitals, a line apart: what the top bar's search compares (portal.search), so
    # that a search compares each as it is stored, not UPPER() of each, and finds no text across the two.
    searched_name = models.GeneratedField(
        expression=Upper(Concat("company_name", Value("\n"), "domain")),
        output_field=models.CharField(max_length=401),
        db_persist=True,
        editable=False,
        verbose_name=_("searched name"),
    )
    segment = models.CharField(_("segment"), max_length=20, choices=Segment.choices, default=Segment.COMMERCIAL)
    billing_country = models.CharField(_("billing country"), max_length=2, choices=COUNTRY_CHOICES)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    # Added in the portal ("Add customer", portal.customers): the address, the contact and the Microsoft Customer
    # Agreement's acceptance as the partner attested it. Blank for the customers that came before (the seed's).
    address_line1 = models.CharField(_("address line 1"), max_length=100, blank=True)
    address_line2 = models.CharField(_("address line 2"), max_length=100, blank=True)
    city = models.CharField(_("city"), max_length=100, blank=True)
    state = models.CharField(_("state or region"), max_length=100, blank=True)
    postal_code = models.CharField(_("postal code"), max_length=20, blank=True)
    contact_first_name = models.CharField(_("contact's first name"), max_length=100, blank=True)
    contact_last_name = models.CharField(_("contact's last name"), max_length=100, blank=True)
    contact_email = models.EmailField(_("contact's e-mail"), blank=True)
    contact_phone = models.CharField(_("contact's phone"), max_length=30, blank=True)
    mca_accepted_by_name = models.CharField(_("MCA accepted by (name)"), max_length=200, blank=True)
    mca_accepted_by_email = models.EmailField(_("MCA accepted by (e-mail)"), blank=True)
    mca_accepted_on = models.DateField(_("MCA accepted on"), null=True, blank=True)
    mca_attested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("The partner's staff member who attested the customer's acceptance."),
        verbose_name=_("mca attested by"),
    )
    mca_attested_at = models.DateTimeField(_("MCA attested at (UTC)"), null=True, blank=True)
    # The "Add customer" form's id, drawn with the page: submitted twice, it adds one customer (portal.customers).
    created_from = models.UUIDField(_("created from"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        ordering = ["company_name"]
        constraints = [
            # A form adds one customer however often it is submitted (portal.customers.add_customer).
            models.UniqueConstraint(fields=["created_from"], name="customer_made_once"),
            # A domain the portal gave a new tenant is that tenant's alone: two partners adding the same one at once
            # can't both pass add_customer's check (customers from before, the seed's, are checked by the query).
            models.UniqueConstraint(
                Lower("domain"), condition=Q(created_from__isnull=False), name="customer_added_domain_unique"
            ),
            # A partner serves a tenant as one customer (transfers and relationship requests find it by tenant).
            models.UniqueConstraint(fields=["partner", "tenant_id"], name="customer_one_per_partner_and_tenant"),
            # Implied by the one above; declared UNIQUE so that its index tells SQLite that walking a partner's
            # customers by name gives each customer once: the lists across customers (sorted by customer, then by
            # subscription on the (customer, list_name, id) index) then read in index order instead of sorting every
            # subscription of the partner.
            models.UniqueConstraint(
                fields=["partner", "company_name", "tenant_id"], name="customer_partner_name_tenant"
            ),
        ]
        # A customer found by id (a subscription's) is checked for its partner and sorted by name from this index.
        indexes = [models.Index(fields=["id", "partner", "company_name", "tenant_id"], name="customer_by_id_idx")]

    def __str__(self) -> str:
        return self.company_name

    def save(self, *args, update_fields=None, **kwargs):
        # The lists sort by the customer's name and scope by its partner from copies on each subscription
        # (subscriptions.models): a rename or a move to another partner (the admin) changes them in the same
        # transaction, on the (customer, ...) index.
        changed = not self._state.adding and (
            update_fields is None or bool({"company_name", "partner", "partner_id"} & set(update_fields))
        )
        with transaction.atomic(using=kwargs.get("using")):
            super().save(*args, update_fields=update_fields, **kwargs)
            if changed:
                (
                    self.subscriptions.exclude(customer_name=self.company_name, partner_id=self.partner_id).update(
                        customer_name=self.company_name, partner_id=self.partner_id
                    )
                )

    @property
    def is_eu_efta(self) -> bool:
        return is_eu_efta(self.billing_country)

    @property
    def country_name(self) -> str:
        return COUNTRY_NAMES.get(self.billing_country, self.billing_country)
