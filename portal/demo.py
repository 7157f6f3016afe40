"""The demo: partners, staff, customers, a realistic catalog and subscriptions in every state.

`manage.py seed_demo` calls `seed_demo(now=...)` once; the sign-in page lists `demo_sign_ins()`
when PORTAL_DEMO is on.

Every purchase goes through the real cart, checkout and fulfillment services with `now` set in
the past, so carts, orders, seat lots, billing lines and the audit trail agree with each other.
Only the states no service reaches yet (suspended, expired, disabled, cancelled, publisher
set-up confirmed, auto-renew off) and the billing cycles that elapsed since are applied here,
each with the audit entry or billing line the real action would leave.

`build_catalog` and its helpers (`ensure_publisher`, `ensure_product`, `ensure_offer`,
`nce_prices`) know nothing about the demo's customers and are idempotent, so the bench seeder
reuses them.
"""

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import NamedTuple

from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.db.models import Q
from django.utils.translation import gettext, gettext_noop
from django_tasks_db.models import DBTaskResult

from catalog.alignment import renewal_alignment_options
from catalog.cart import add_additional_reseller, add_to_cart, current_cart, set_reseller
from catalog.checkout import purchase
from catalog.models import (
    FREQUENCY_MONTHS,
    TRIAL_LICENSES,
    Availability,
    BillingFrequency,
    Order,
    Product,
    Publisher,
    Sku,
    Term,
    UpgradePath,
)
from subscriptions import audit, checks, cycles, lifecycle, services
from subscriptions.audit import record
from subscriptions.dates import add_months, start_of_day, term_end_for
from subscriptions.models import BillingLine, ScheduledChange, Subscription
from subscriptions.pricing import prorated_charge, round_money
from subscriptions.services import (
    bill,
    fulfill_order,
    fulfill_order_task,
    provision_subscription,
    provision_subscription_task,
    transition,
)
from subscriptions.states import Status

from .models import EU_EFTA_COUNTRIES, Customer, Membership, Partner, ResellerLink, Role

DEMO_PASSWORD = "demo-pass-2026"


# ---------------------------------------------------------------------------------------------
# Partners and staff
# ---------------------------------------------------------------------------------------------


class PartnerSpec(NamedTuple):
    name: str
    partner_id: str
    kind: str
    country: str
    mpa_signed: bool = True


Kind = Partner.Kind
PARTNERS: dict[str, PartnerSpec] = {
    "northwind": PartnerSpec("Northwind Cloud Partners", "6100001", Kind.DIRECT_BILL, "US"),
    "fabrikam": PartnerSpec("Fabrikam Distribution", "6100002", Kind.INDIRECT_PROVIDER, "NL"),
    # Fabrikam's indirect resellers; Litware has not signed the MPA, so it can't be declared
    # as an additional reseller (K5).
    "tailspin": PartnerSpec("Tailspin IT Solutions", "6100011", Kind.INDIRECT_RESELLER, "DE"),
    "adatum": PartnerSpec("Adatum Systems", "6100012", Kind.INDIRECT_RESELLER, "FR"),
    "litware": PartnerSpec("Litware Consulting", "6100013", Kind.INDIRECT_RESELLER, "US", mpa_signed=False),
    # Not linked to anyone: they exist to be declared by PartnerID in EU/EFTA deals (K5).
    "proseware": PartnerSpec("Proseware Networks", "6100021", Kind.INDIRECT_RESELLER, "IE"),
    "wingtip": PartnerSpec("Wingtip Partners", "6100022", Kind.INDIRECT_RESELLER, "NO"),
    # Another CSP that an ISV made an offer exclusive to (C4e).
    "woodgrove": PartnerSpec("Woodgrove Cloud", "6100031", Kind.DIRECT_BILL, "GB"),
}
PROVIDER_RESELLERS = {"fabrikam": ("tailspin", "adatum", "litware")}
# The seed recognises an existing demo by its direct-bill partner.
DIRECT_BILL_PARTNER_ID = PARTNERS["northwind"].partner_id

PARTNER_DOMAINS = {"northwind": "northwind.example", "fabrikam": "fabrikam.example", "tailspin": "tailspin.example"}


class AdminAccess(enum.Enum):
    NONE = ""
    # A partner's staff member with Django admin access: is_staff, in PARTNER_ADMIN_GROUP, sees its own partner's
    # records only (portal.admin_site).
    PARTNER = "partner"
    # The platform operator: a superuser that belongs to no partner and sees everything in the admin.
    OPERATOR = "operator"


class UserSpec(NamedTuple):
    username: str
    first_name: str
    last_name: str
    partner: str | None  # None: the operator
    roles: tuple[str, ...]
    admin: AdminAccess = AdminAccess.NONE


USERS: tuple[UserSpec, ...] = (
    UserSpec("admin", "Avery", "Morgan", "northwind", (Role.ADMIN_AGENT,)),
    UserSpec("sales", "Sam", "Rivera", "northwind", (Role.SALES_AGENT,)),
    UserSpec("billing", "Bianca", "Keller", "northwind", (Role.BILLING_ADMIN,)),
    UserSpec("support", "Sunil", "Rao", "northwind", (Role.SUPPORT_AGENT,)),
    UserSpec("provider-admin", "Pieter", "de Vries", "fabrikam", (Role.ADMIN_AGENT,)),
    UserSpec("provider-sales", "Sofie", "Janssen", "fabrikam", (Role.SALES_AGENT,)),
    UserSpec("provider-billing", "Bram", "Visser", "fabrikam", (Role.BILLING_ADMIN,)),
    UserSpec("provider-support", "Eva", "Bakker", "fabrikam", (Role.SUPPORT_AGENT,)),
    # A reseller's staff only ever view (T1), whatever their roles.
    UserSpec("reseller", "Lena", "Schmidt", "tailspin", (Role.ADMIN_AGENT, Role.SALES_AGENT)),
    # A Northwind admin agent who also has the Django admin, scoped to Northwind's records (issue 9, finding 4:
    # it used to be a superuser shown as a Northwind user, and changed another partner's subscription).
    UserSpec("staff", "Dana", "Whitfield", "northwind", (Role.ADMIN_AGENT,), admin=AdminAccess.PARTNER),
    # The platform operator runs the Django admin for every partner and the catalog; it is nobody's staff, so no
    # partner's audit trail names it as one of theirs.
    UserSpec("operator", "Olive", "Grant", None, (), admin=AdminAccess.OPERATOR),
)
# What a partner's staff member with admin access may open there; portal.admin_site still shows only their own
# partner's rows of it, read-only except their staff's roles (for admin agents).
PARTNER_ADMIN_GROUP = "Partner staff with admin access"
PARTNER_ADMIN_PERMISSIONS = Q(
    content_type__app_label__in=("portal", "catalog", "subscriptions"), codename__startswith="view_"
) | Q(content_type__app_label="portal", codename="change_membership")

ROLE_FIELDS = {
    Role.ADMIN_AGENT: "is_admin_agent",
    Role.SALES_AGENT: "is_sales_agent",
    Role.BILLING_ADMIN: "is_billing_admin",
    Role.SUPPORT_AGENT: "is_support_agent",
}


def _roles_label(user: UserSpec) -> str:
    if user.admin is AdminAccess.OPERATOR:
        return gettext("Django admin (/admin/): every partner and the catalog")
    # A list of role names, as the user menu shows them (Membership.role_labels).
    label = gettext(", ").join(str(Role(role).label) for role in user.roles)
    if user.admin is AdminAccess.PARTNER:
        return gettext("%(roles)s + Django admin (this partner's records only)") % {"roles": label}
    return label


def demo_sign_ins() -> list[dict]:
    """What the sign-in page shows in the demo (portal/views.py), in the active language."""
    return [
        {
            "username": u.username,
            "partner": PARTNERS[u.partner].name if u.partner else gettext("Platform operator (no partner)"),
            "roles": _roles_label(u),
        }
        for u in USERS
    ]


# ---------------------------------------------------------------------------------------------
# The catalog
# ---------------------------------------------------------------------------------------------

ALL_SEGMENTS = "commercial,education,government,nonprofit"
BUSINESS_SEGMENTS = "commercial,education,nonprofit"
ISV_SEGMENTS = "commercial,education,nonprofit"
BUSINESS_MAX_QUANTITY = 300  # Microsoft 365 Business plans stop at 300 users

# The simulated publisher page (S3) does not exist yet: without a URL the subscription page
# shows the set-up notice but no link. Set it here once the page is built.
PUBLISHER_SETUP_URL = ""

Prices = Mapping[tuple[str, str], Decimal]


def nce_prices(monthly: str | Decimal, *, triennial: bool = False) -> dict[tuple[str, str], Decimal]:
    """New-commerce price points from the price per license per month on an annual term.

    Each is the price per license per *billing period*: annual billing pays 12 months at once,
    a one-time triennial pays 36, and a monthly term (P1M) costs 20% more. A monthly term is
    never billed annually.
    """
    month = Decimal(monthly)
    prices = {
        (Term.P1M, BillingFrequency.MONTHLY): round_money(month * Decimal("1.2")),
        (Term.P1Y, BillingFrequency.MONTHLY): month,
        (Term.P1Y, BillingFrequency.ANNUAL): month * 12,
    }
    if triennial:
        prices |= {
            (Term.P3Y, BillingFrequency.MONTHLY): month,
            (Term.P3Y, BillingFrequency.ANNUAL): month * 12,
            (Term.P3Y, BillingFrequency.ONE_TIME): month * 36,
        }
    return prices


def annual_commitment_prices(monthly: str | Decimal) -> dict[tuple[str, str], Decimal]:
    """Traditional commerce: an annual commitment only, billed monthly or annually."""
    month = Decimal(monthly)
    return {(Term.P1Y, BillingFrequency.MONTHLY): month, (Term.P1Y, BillingFrequency.ANNUAL): month * 12}


# Trials and usage-based plans: one month at a time, nothing charged per license.
MONTHLY_FREE = {(Term.P1M, BillingFrequency.MONTHLY): Decimal("0.00")}


def ensure_publisher(name: str, *, is_microsoft: bool = False) -> Publisher:
    publisher, _ = Publisher.objects.update_or_create(name=name, defaults={"is_microsoft": is_microsoft})
    return publisher


def ensure_product(
    product_id: str,
    name: str,
    *,
    publisher: Publisher,
    category: str = Product.Category.ENTERPRISE,
    billing_type: str = Product.BillingType.LICENSE,
    description: str = "",
) -> Product:
    product, _ = Product.objects.update_or_create(
        product_id=product_id,
        defaults={
            "name": name,
            "publisher": publisher,
            "category": category,
            "billing_type": billing_type,
            "description": description,
        },
    )
    return product


def ensure_offer(product: Product, sku_id: str, name: str, *, prices: Prices, **attributes) -> Sku:
    """A SKU with its availabilities; `attributes` are any other Sku fields (segments, is_addon...).

    Availabilities no longer in `prices` are kept: orders and subscriptions may point at them.
    """
    sku, _ = Sku.objects.update_or_create(sku_id=sku_id, defaults={"product": product, "name": name, **attributes})
    for (term, frequency), unit_price in prices.items():
        if term == Term.P1M and frequency != BillingFrequency.MONTHLY:
            raise ValueError(f"{name}: a one-month term is billed monthly, not {frequency}.")
        Availability.objects.update_or_create(
            sku=sku,
            term=term,
            billing_frequency=frequency,
            defaults={"unit_price": Decimal(unit_price), "currency": "USD"},
        )
    return sku


# Names of the catalog's offers that the demo and the upgrade matrix refer to.
BB, BS, BP = "Microsoft 365 Business Basic", "Microsoft 365 Business Standard", "Microsoft 365 Business Premium"
BP_TRIAL, BP_NONPROFIT = "Microsoft 365 Business Premium Trial", "Microsoft 365 Business Premium (Nonprofit)"
TEAMS_ESSENTIALS, EXCHANGE_P1 = "Microsoft Teams Essentials", "Exchange Online (Plan 1)"
O365_E1, O365_E3, O365_E5 = "Office 365 E1", "Office 365 E3", "Office 365 E5"
M365_E3, M365_E3_UNATTENDED = "Microsoft 365 E3", "Microsoft 365 E3 (unattended license)"
M365_E5, M365_E5_NO_AUDIO = "Microsoft 365 E5", "Microsoft 365 E5 (no Teams audio conferencing)"
M365_E5_TRIAL = "Microsoft 365 E5 Trial"
EMS_E3, EMS_E5 = "Enterprise Mobility + Security E3", "Enterprise Mobility + Security E5"
WIN_E3, WIN_E3_VDA, WIN_E5 = (
    "Windows 10/11 Enterprise E3",
    "Windows 10/11 Enterprise E3 VDA",
    "Windows 10/11 Enterprise E5",
)
UNIVERSAL_PRINT = "Universal Print"
MDE_P1, MDE_P2 = "Microsoft Defender for Endpoint P1", "Microsoft Defender for Endpoint P2"
D365_HR_SELF_SERVICE, D365_TEAM_MEMBERS = "Dynamics 365 Human Resources Self Service", "Dynamics 365 Team Members"
PROJECT_ESSENTIALS = "Project Online Essentials"
ENTRA_GOVERNANCE = "Microsoft Entra ID Governance (tenant)"
AZURE_PLAN = "Azure plan"
MULTI_GEO, COPILOT = "Microsoft 365 Multi-Geo Capabilities", "Microsoft 365 Copilot"
TEAMS_PHONE = "Microsoft Teams Phone with Calling Plan"
A3_FACULTY, A3_STUDENTS = "Microsoft 365 A3 for faculty", "Microsoft 365 A3 for students"
A5_FACULTY = "Microsoft 365 A5 for faculty"
O365_G3, M365_G3 = "Office 365 G3", "Microsoft 365 G3"
O365_E3_LEGACY, EXTRA_FILE_STORAGE = "Office 365 E3 (legacy)", "Office 365 Extra File Storage"
SIGNFLOW = "SignFlow e-Signature Business"
ALPINE_BACKUP, ALPINE_CONTAINER = "Alpine Backup for Microsoft 365", "Alpine Analytics Engine (container)"
SOUTHRIDGE_PAYROLL = "Southridge Payroll Connect"
VANARSDEL_FIELD = "VanArsdel Field Service Pro"
AW_THREAT_INTEL, AW_MAIL_GATEWAY = "Adventure Works Threat Intelligence", "Adventure Works Secure Mail Gateway"

# Southridge sells in the EU/EFTA and a few English-speaking markets, not in Brazil or Japan (C4c).
SOUTHRIDGE_COUNTRIES = ",".join(sorted(EU_EFTA_COUNTRIES | {"US", "CA", "GB", "AU", "NZ"}))
# Calling plans exist only where Microsoft is a telephone operator; not Brazil (C5 region).
CALLING_PLAN_COUNTRIES = ",".join(sorted(EU_EFTA_COUNTRIES | {"US", "CA", "GB", "AU", "NZ", "JP"}))


def build_catalog(*, isv_exclusive: Sequence[Partner] = (), isv_co_sell: Sequence[Partner] = ()) -> dict[str, Sku]:
    """The catalog (C1) and its upgrade matrix (U2), by offer name. Idempotent.

    Two ISV offers are exclusive to some CSP partners (C4e): Threat Intelligence to
    `isv_exclusive` only, the Secure Mail Gateway to `isv_exclusive` and `isv_co_sell`.
    With no partners given they are sold by everyone.
    """
    microsoft = ensure_publisher("Microsoft Corporation", is_microsoft=True)
    catalog: dict[str, Sku] = {}

    def offer(
        product_code: str,
        name: str,
        prices: Prices,
        *,
        publisher: Publisher = microsoft,
        product_name: str | None = None,
        category: str = Product.Category.ENTERPRISE,
        billing_type: str = Product.BillingType.LICENSE,
        sku_number: int = 1,
        **attributes,
    ) -> Sku:
        # Product ids follow Partner Center's shape: 12 characters, the SKU id adds ":0001".
        product_id = ("CFQ7TTC0" if publisher.is_microsoft else "DZH318Z0") + product_code
        product = ensure_product(
            product_id, product_name or name, publisher=publisher, category=category, billing_type=billing_type
        )
        sku = ensure_offer(product, f"{product_id}:{sku_number:04d}", name, prices=prices, **attributes)
        catalog[name] = sku
        return sku

    small = {
        "category": Product.Category.SMALL_BUSINESS,
        "segments": BUSINESS_SEGMENTS,
        "max_quantity": BUSINESS_MAX_QUANTITY,
    }
    everyone = {"segments": ALL_SEGMENTS}

    # Microsoft 365 for small and medium businesses.
    offer("D101", BB, nce_prices("6.00"), **small)
    offer("D102", BS, nce_prices("12.50"), **small)
    offer("D103", BP, nce_prices("22.00"), **small)
    offer("D104", TEAMS_ESSENTIALS, nce_prices("4.00"), **small)
    offer(
        "D105",
        BP_NONPROFIT,
        nce_prices("5.50"),
        category=Product.Category.SMALL_BUSINESS,
        segments="nonprofit",
        max_quantity=BUSINESS_MAX_QUANTITY,
    )

    # Enterprise suites; the big ones also come on a three-year term.
    offer("D201", O365_E1, nce_prices("10.00"), **everyone)
    offer("D202", O365_E3, nce_prices("23.00", triennial=True), **everyone)
    offer("D203", O365_E5, nce_prices("38.00", triennial=True), **everyone)
    offer("D204", M365_E3, nce_prices("36.00", triennial=True), **everyone)
    offer("D204", M365_E3_UNATTENDED, nce_prices("36.00"), product_name=M365_E3, sku_number=2)
    offer("D205", M365_E5, nce_prices("57.00", triennial=True), **everyone)
    offer("D205", M365_E5_NO_AUDIO, nce_prices("53.75", triennial=True), product_name=M365_E5, sku_number=2, **everyone)
    offer("D206", EXCHANGE_P1, nce_prices("4.00"), **everyone)
    offer("D207", EMS_E3, nce_prices("10.60"), product_name="Enterprise Mobility + Security", **everyone)
    offer("D207", EMS_E5, nce_prices("16.40"), product_name="Enterprise Mobility + Security", sku_number=2, **everyone)
    offer("D208", WIN_E3, nce_prices("7.00"), product_name="Windows 10/11 Enterprise", **everyone)
    offer("D208", WIN_E3_VDA, nce_prices("9.00"), product_name="Windows 10/11 Enterprise", sku_number=2, **everyone)
    offer("D208", WIN_E5, nce_prices("11.00"), product_name="Windows 10/11 Enterprise", sku_number=3, **everyone)
    offer("D209", UNIVERSAL_PRINT, nce_prices("4.00"), **everyone)
    offer("D210", MDE_P1, nce_prices("3.00"), product_name="Microsoft Defender for Endpoint", **everyone)
    offer("D210", MDE_P2, nce_prices("5.20"), product_name="Microsoft Defender for Endpoint", sku_number=2, **everyone)
    offer("D211", D365_HR_SELF_SERVICE, nce_prices("4.00"), **everyone)
    offer("D212", D365_TEAM_MEMBERS, nce_prices("8.00"), **everyone)
    offer("D213", PROJECT_ESSENTIALS, nce_prices("7.00"), **everyone)
    # A tenant-wide offer: one subscription per customer (C4a).
    offer("D214", ENTRA_GOVERNANCE, nce_prices("7.00"), one_per_customer=True, **everyone)
    # Usage-based: no quantity, billed in arrears on consumption, so nothing per license.
    offer("D215", AZURE_PLAN, MONTHLY_FREE, billing_type=Product.BillingType.USAGE, **everyone)

    # New-commerce trials: one month, 25 licenses, free (TR1), converting to the paid SKU.
    offer(
        "D301",
        BP_TRIAL,
        MONTHLY_FREE,
        category=Product.Category.TRIAL,
        segments=BUSINESS_SEGMENTS,
        is_trial=True,
        trial_of=catalog[BP],
    )
    offer(
        "D302",
        M365_E5_TRIAL,
        MONTHLY_FREE,
        category=Product.Category.TRIAL,
        is_trial=True,
        trial_of=catalog[M365_E5],
        **everyone,
    )

    # New-commerce add-ons (C5) with their quantity rules (K6, K7).
    multi_geo = offer(
        "D401",
        MULTI_GEO,
        nce_prices("2.00"),
        is_addon=True,
        min_quantity=1,
        addon_limit=Sku.AddonLimit.MIN_5_PERCENT_OF_BASE,
        **everyone,
    )
    multi_geo.base_skus.set([catalog[n] for n in (O365_E3, O365_E5, M365_E3, M365_E5, M365_E5_NO_AUDIO)])
    copilot = offer(
        "D402", COPILOT, nce_prices("30.00"), is_addon=True, addon_limit=Sku.AddonLimit.MAX_BASE, **everyone
    )
    copilot.base_skus.set([catalog[n] for n in (BS, BP, O365_E3, O365_E5, M365_E3, M365_E5, M365_E5_NO_AUDIO)])
    teams_phone = offer(
        "D403", TEAMS_PHONE, nce_prices("15.00"), is_addon=True, available_countries=CALLING_PLAN_COUNTRIES, **everyone
    )
    teams_phone.base_skus.set([catalog[n] for n in (BB, BS, BP, O365_E1, O365_E3, O365_E5, M365_E3, M365_E5)])

    # Segment-only offers (C3).
    offer("D501", A3_FACULTY, nce_prices("3.25"), product_name="Microsoft 365 A3", segments="education")
    offer("D501", A3_STUDENTS, nce_prices("2.50"), product_name="Microsoft 365 A3", sku_number=2, segments="education")
    offer("D502", A5_FACULTY, nce_prices("8.00"), segments="education")
    offer("D601", O365_G3, nce_prices("20.00"), segments="government")
    offer("D602", M365_G3, nce_prices("32.00"), segments="government")

    # Traditional commerce: a legacy suite and its add-on, bought from the base subscription (A1).
    legacy = {"commerce": Sku.Commerce.TRADITIONAL, "segments": "commercial"}
    offer("D701", O365_E3_LEGACY, annual_commitment_prices("20.00"), **legacy)
    storage = offer("D702", EXTRA_FILE_STORAGE, annual_commitment_prices("0.20"), is_addon=True, **legacy)
    storage.base_skus.set([catalog[O365_E3_LEGACY]])

    # ISV SaaS offers: some sell, each of the others hits one C4 reason.
    lucerne = ensure_publisher("Lucerne Publishing")
    alpine = ensure_publisher("Alpine Data Labs")
    southridge = ensure_publisher("Southridge Software")
    vanarsdel = ensure_publisher("VanArsdel, Ltd.")
    adventure = ensure_publisher("Adventure Works Security")
    isv = {"segments": ISV_SEGMENTS}
    # S4: a 30-day free trial, applied automatically; S3: set-up on the publisher's site.
    offer(
        "V101",
        SIGNFLOW,
        nce_prices("10.00"),
        publisher=lucerne,
        category=Product.Category.SMALL_BUSINESS,
        free_trial_days=30,
        publisher_setup_url=PUBLISHER_SETUP_URL,
        **isv,
    )
    offer("V201", ALPINE_BACKUP, nce_prices("3.00"), publisher=alpine, publisher_setup_url=PUBLISHER_SETUP_URL, **isv)
    offer(
        "V202", ALPINE_CONTAINER, nce_prices("250.00"), publisher=alpine, transactable_in_portal=False, **isv
    )  # C4f: bought in the Azure portal
    offer(
        "V301",
        SOUTHRIDGE_PAYROLL,
        nce_prices("5.00"),
        publisher=southridge,
        category=Product.Category.SMALL_BUSINESS,
        available_countries=SOUTHRIDGE_COUNTRIES,
        **isv,
    )  # C4c
    offer("V401", VANARSDEL_FIELD, nce_prices("45.00"), publisher=vanarsdel, offered_through_csp=False, **isv)  # C4d
    threat_intel = offer("V501", AW_THREAT_INTEL, nce_prices("12.00"), publisher=adventure, **isv)  # C4e
    threat_intel.exclusive_partners.set(isv_exclusive)
    mail_gateway = offer("V502", AW_MAIL_GATEWAY, nce_prices("4.50"), publisher=adventure, **isv)
    mail_gateway.exclusive_partners.set([*isv_exclusive, *isv_co_sell])

    _build_upgrade_matrix(catalog)
    return catalog


SUPPORTED_UPGRADES = [
    (BB, BS),
    (BB, BP),
    (BS, BP),
    (BS, M365_E3),
    (BP, M365_E3),
    (BP, M365_E5),
    (TEAMS_ESSENTIALS, BB),
    (EXCHANGE_P1, BS),
    (EXCHANGE_P1, O365_E3),
    (O365_E1, O365_E3),
    (O365_E1, O365_E5),
    (O365_E3, O365_E5),
    (O365_E3, M365_E3),
    (O365_E3, M365_E5),
    (O365_E5, M365_E5),
    (M365_E3, M365_E5),
    (M365_E3, M365_E5_NO_AUDIO),
    (EMS_E3, M365_E3),
    (WIN_E3, WIN_E5),
    (A3_FACULTY, A5_FACULTY),
    (O365_G3, M365_G3),
]

# U2: paths Microsoft does not support. Kept in the matrix so they are never offered.
UNSUPPORTED_UPGRADES = [
    (EMS_E3, EMS_E5),
    (EMS_E5, M365_E5),
    (EMS_E5, M365_E5_NO_AUDIO),
    (UNIVERSAL_PRINT, M365_E3),
    (UNIVERSAL_PRINT, M365_E3_UNATTENDED),
    (UNIVERSAL_PRINT, M365_E5),
    (UNIVERSAL_PRINT, M365_E5_NO_AUDIO),
    *[(source, target) for source in (WIN_E3, WIN_E3_VDA, WIN_E5) for target in (M365_E5, M365_E5_NO_AUDIO)],
    (D365_HR_SELF_SERVICE, D365_TEAM_MEMBERS),
    (PROJECT_ESSENTIALS, D365_TEAM_MEMBERS),
    (MDE_P1, MDE_P2),
]


def _build_upgrade_matrix(catalog: Mapping[str, Sku]) -> None:
    paths = [(s, t, True, "") for s, t in SUPPORTED_UPGRADES]
    paths += [(s, t, False, "U2: Microsoft does not support this upgrade path.") for s, t in UNSUPPORTED_UPGRADES]
    for source, target, supported, note in paths:
        UpgradePath.objects.update_or_create(
            source=catalog[source], target=catalog[target], defaults={"supported": supported, "note": note}
        )


# ---------------------------------------------------------------------------------------------
# Customers and what they bought
# ---------------------------------------------------------------------------------------------


class CustomerSpec(NamedTuple):
    key: str
    partner: str
    company_name: str
    tenant: str  # the <tenant>.onmicrosoft.com domain
    segment: str
    country: str
    reseller: str | None = None
    same_tenant_as: str | None = None  # the same organisation, also served by another partner


CUSTOMERS: tuple[CustomerSpec, ...] = (
    # Northwind, the direct-bill partner.
    CustomerSpec("contoso", "northwind", "Contoso Pharmaceuticals GmbH", "contosopharma", "commercial", "DE"),
    CustomerSpec("margies", "northwind", "Margie's Travel", "margiestravel", "commercial", "US"),
    CustomerSpec("munson", "northwind", "Munson's Pickles and Preserves Ltda.", "munsonspickles", "commercial", "BR"),
    CustomerSpec("jefferson", "northwind", "Jefferson County Government", "jeffersoncounty", "government", "US"),
    CustomerSpec("lakeshore", "northwind", "Lakeshore University", "lakeshoreuniversity", "education", "IE"),
    CustomerSpec("relecloud", "northwind", "Relecloud Foundation", "relecloudfoundation", "nonprofit", "NL"),
    CustomerSpec("blueyonder-direct", "northwind", "Blue Yonder Airlines", "blueyonderairlines", "commercial", "DE"),
    # Fabrikam, the indirect provider, mostly through its resellers.
    CustomerSpec("coho", "fabrikam", "Coho Winery SARL", "cohowinery", "commercial", "FR", reseller="adatum"),
    CustomerSpec("trey", "fabrikam", "Trey Research AS", "treyresearch", "commercial", "NO", reseller="tailspin"),
    CustomerSpec(
        "blueyonder",
        "fabrikam",
        "Blue Yonder Airlines",
        "blueyonderairlines",
        "commercial",
        "DE",
        reseller="tailspin",
        same_tenant_as="blueyonder-direct",
    ),
    CustomerSpec(
        "gdi", "fabrikam", "Graphic Design Institute", "graphicdesigninstitute", "education", "NL", reseller="tailspin"
    ),
    CustomerSpec("fourth", "fabrikam", "Fourth Coffee", "fourthcoffee", "commercial", "US", reseller="litware"),
    CustomerSpec("wideworld", "fabrikam", "Wide World Importers K.K.", "wideworldimporters", "commercial", "JP"),
)


@dataclass(frozen=True)
class Line:
    sku: str
    quantity: int
    term: str = Term.P1Y
    billing: str = BillingFrequency.MONTHLY
    align_to: str | None = None  # K11: end with the customer's subscription of this offer


@dataclass(frozen=True)
class Purchase:
    customer: str
    actor: str
    at: datetime  # when the cart was filled; purchased a few minutes later
    lines: tuple[Line, ...]
    reseller: str | None = None
    additional_resellers: tuple[str, ...] = ()
    # False: the order stays in progress, its fulfillment task left queued for the worker.
    fulfill: bool = True
    # False: only the cart is filled, and left open.
    checkout: bool = True


@dataclass(frozen=True)
class Moments:
    """Points in the past, relative to the seed's `now`. Past days use fixed UTC clock times,
    so a purchase and its fulfillment minutes later fall on the same day."""

    now: datetime

    def days_ago(self, days: int, at: str = "09:30") -> datetime:
        return datetime.combine(self.now.date() - timedelta(days=days), time.fromisoformat(at), tzinfo=self.now.tzinfo)

    def months_ago(self, months: int, at: str = "09:30") -> datetime:
        return datetime.combine(add_months(self.now.date(), -months), time.fromisoformat(at), tzinfo=self.now.tzinfo)

    def minutes_ago(self, minutes: int) -> datetime:
        return self.now - timedelta(minutes=minutes)

    def months_ago_same_day(self, at: str = "09:30") -> datetime:
        """Two or more months ago, on a day whose monthly billing periods start today (a 31st needs a 31st)."""
        today = self.now.date()
        months = next(k for k in range(2, 12) if add_months(add_months(today, -k), k) == today)
        return self.months_ago(months, at)


P1M, P1Y, P3Y = Term.P1M, Term.P1Y, Term.P3Y
ANNUAL, MONTHLY = BillingFrequency.ANNUAL, BillingFrequency.MONTHLY


def demo_purchases(t: Moments) -> list[Purchase]:
    """Every purchase of the demo, each customer's in the order they happened."""
    return [
        # --- Northwind (direct-bill) -------------------------------------------------------------
        Purchase(
            "contoso",
            "sales",
            t.months_ago(5, "10:15"),
            (
                Line(M365_E3, 250),
                Line(UNIVERSAL_PRINT, 50, billing=ANNUAL),
                Line(MDE_P1, 250),
                Line(WIN_E3_VDA, 40),
            ),
        ),
        # Two days ago: cancellation and reduction windows still open; Multi-Geo co-terminous
        # with Microsoft 365 E3 (K11), at its 5% minimum (K6).
        Purchase(
            "contoso",
            "admin",
            t.days_ago(2, "13:20"),
            (
                Line(MULTI_GEO, 13, align_to=M365_E3),
                Line(COPILOT, 50, billing=ANNUAL),
                Line(ENTRA_GOVERNANCE, 1),
            ),
        ),
        # An open cart, not yet purchased.
        Purchase(
            "contoso",
            "sales",
            t.days_ago(1, "14:40"),
            (
                Line(EMS_E5, 250),
                Line(WIN_E5, 40, billing=ANNUAL),
            ),
            checkout=False,
        ),
        # Renews within 30 days.
        Purchase("margies", "sales", t.months_ago(11, "09:10"), (Line(BP, 45),)),
        Purchase("margies", "sales", t.days_ago(20, "11:45"), (Line(BB, 10, term=P1M),)),
        Purchase("margies", "sales", t.days_ago(4, "16:30"), (Line(COPILOT, 20, term=P1M),)),
        # ISV SaaS with a free trial, waiting for the publisher set-up (S3, S4).
        Purchase("margies", "sales", t.days_ago(3, "10:05"), (Line(SIGNFLOW, 10),)),
        Purchase(
            "munson",
            "sales",
            t.months_ago(10, "12:00"),
            (
                Line(BS, 30, billing=ANNUAL),
                Line(O365_E3_LEGACY, 20, billing=ANNUAL),
            ),
        ),
        Purchase("munson", "sales", t.days_ago(90, "15:00"), (Line(EXCHANGE_P1, 5),)),  # suspended later
        Purchase("munson", "sales", t.days_ago(60, "09:00"), (Line(ALPINE_BACKUP, 30),)),  # set-up confirmed
        Purchase("munson", "sales", t.days_ago(4, "08:50"), (Line(BP_TRIAL, TRIAL_LICENSES, term=P1M),)),
        Purchase(
            "jefferson",
            "sales",
            t.months_ago(4, "14:10"),
            (
                Line(O365_G3, 400, billing=ANNUAL),
                Line(EMS_E5, 400, billing=ANNUAL),
            ),
        ),
        Purchase("jefferson", "sales", t.days_ago(18, "10:20"), (Line(AZURE_PLAN, 1, term=P1M),)),
        Purchase("jefferson", "sales", t.days_ago(2, "09:40"), (Line(M365_G3, 50),)),
        # Six days ago: its windows close within 48 hours (the "needs attention" filter has one for Northwind too).
        Purchase("jefferson", "sales", t.days_ago(6, "15:20"), (Line(WIN_E3, 25),)),
        Purchase(
            "lakeshore",
            "sales",
            t.months_ago(9, "08:30"),
            (
                Line(A3_FACULTY, 300, billing=ANNUAL),
                Line(A3_STUDENTS, 2000),
            ),
        ),
        Purchase("lakeshore", "sales", t.days_ago(75, "13:00"), (Line(A5_FACULTY, 20, term=P1M),)),  # expired later
        # Its term ended yesterday: the renewal is due today (N2, N6).
        Purchase("relecloud", "sales", t.months_ago(12, "09:30"), (Line(BB, 15, billing=ANNUAL),)),
        Purchase("relecloud", "sales", t.days_ago(30, "11:15"), (Line(BP_NONPROFIT, 60),)),
        Purchase("relecloud", "sales", t.days_ago(6, "11:00"), (Line(TEAMS_ESSENTIALS, 5),)),  # cancelled later
        Purchase("blueyonder-direct", "admin", t.months_ago(7, "10:00"), (Line(M365_E5, 100),)),
        # A monthly period starts today: its change to annual billing is being charged (N7).
        Purchase("margies", "sales", t.months_ago_same_day("10:20"), (Line(O365_E1, 25),)),
        # --- Fabrikam (indirect provider) --------------------------------------------------------
        Purchase(
            "coho", "provider-sales", t.months_ago(3, "10:40"), (Line(BS, 25), Line(COPILOT, 10)), reseller="adatum"
        ),
        # Suspended, then disabled at the end of its term.
        Purchase("coho", "provider-sales", t.days_ago(50, "09:15"), (Line(BB, 5, term=P1M),), reseller="adatum"),
        Purchase(
            "trey",
            "provider-sales",
            t.months_ago(14, "11:30"),
            (Line(M365_E5_NO_AUDIO, 150, term=P3Y),),
            reseller="tailspin",
            additional_resellers=("proseware", "wingtip"),
        ),
        Purchase(
            "trey", "provider-sales", t.days_ago(60, "14:00"), (Line(EMS_E3, 40, billing=ANNUAL),), reseller="tailspin"
        ),
        # Six days ago: its windows close within 48 hours.
        Purchase("trey", "provider-sales", t.days_ago(6, "08:10"), (Line(WIN_E3, 40),), reseller="tailspin"),
        # Multi-Geo's minimum counts the organisation's E5 bought through Northwind too (K6):
        # 5% of 300 + 100 is 20.
        Purchase(
            "blueyonder",
            "provider-sales",
            t.days_ago(45, "10:30"),
            (Line(M365_E3, 300), Line(MULTI_GEO, 20)),
            reseller="tailspin",
            additional_resellers=("proseware",),
        ),
        # Copilot's maximum counts base licenses with every partner (K7): 300 + 100.
        Purchase("blueyonder", "provider-sales", t.days_ago(3, "15:45"), (Line(COPILOT, 350),), reseller="tailspin"),
        Purchase(
            "gdi",
            "provider-sales",
            t.months_ago(5, "09:00"),
            (Line(A3_FACULTY, 80, billing=ANNUAL),),
            reseller="tailspin",
        ),
        Purchase(
            "gdi", "provider-sales", t.days_ago(2, "12:30"), (Line(D365_HR_SELF_SERVICE, 80),), reseller="tailspin"
        ),
        Purchase(
            "fourth",
            "provider-sales",
            t.months_ago(7, "13:30"),
            (Line(BP, 40), Line(PROJECT_ESSENTIALS, 10)),
            reseller="litware",
        ),
        Purchase(
            "fourth",
            "provider-sales",
            t.days_ago(10, "10:00"),
            (Line(M365_E5_TRIAL, TRIAL_LICENSES, term=P1M),),
            reseller="litware",
        ),
        Purchase("wideworld", "provider-sales", t.months_ago(11, "08:45"), (Line(O365_E3, 120, billing=ANNUAL),)),
        Purchase("wideworld", "provider-sales", t.days_ago(12, "09:20"), (Line(O365_E1, 60, term=P1M),)),
        Purchase("wideworld", "provider-sales", t.days_ago(1, "11:10"), (Line(ALPINE_BACKUP, 120),)),  # set-up pending
        # Placed minutes ago: fulfillment still in progress (O2).
        Purchase("wideworld", "provider-admin", t.minutes_ago(13), (Line(MDE_P2, 120),), fulfill=False),
    ]


# ---------------------------------------------------------------------------------------------
# Building it
# ---------------------------------------------------------------------------------------------


@dataclass
class Demo:
    partners: dict[str, Partner] = field(default_factory=dict)
    users: dict[str, object] = field(default_factory=dict)
    customers: dict[str, Customer] = field(default_factory=dict)
    catalog: dict[str, Sku] = field(default_factory=dict)
    orders: list[Order] = field(default_factory=list)
    pending_order_ids: set[int] = field(default_factory=set)

    def subscription_count(self) -> int:
        return Subscription.objects.filter(customer__in=self.customers.values()).count()

    def subscription(self, customer: str, sku: str) -> Subscription:
        return Subscription.objects.select_related("sku__product__publisher", "customer__partner").get(
            customer=self.customers[customer], sku=self.catalog[sku]
        )


class DemoConflict(Exception):
    """The database holds some of the demo's names without being the demo."""


def is_seeded() -> bool:
    return Partner.objects.filter(partner_id=DIRECT_BILL_PARTNER_ID).exists()


def _check_free() -> None:
    users = get_user_model().objects.filter(username__in=[u.username for u in USERS]).values_list("username", flat=True)
    partners = Partner.objects.filter(partner_id__in=[p.partner_id for p in PARTNERS.values()]).values_list(
        "partner_id", flat=True
    )
    if users or partners:
        raise DemoConflict(
            f"The database already has demo names (users: {', '.join(users) or 'none'}; "
            f"PartnerIDs: {', '.join(partners) or 'none'}) but not the demo: seed an empty database."
        )


def seed_demo(*, now: datetime) -> Demo | None:
    """Builds the whole demo in one transaction; None if it is already there."""
    with transaction.atomic():
        if is_seeded():
            return None
        _check_free()
        t = Moments(now)
        demo = Demo()
        demo.partners = create_partners(since=t.months_ago(30))
        # Partners whose agreement lapsed after their past deals sold as resellers until now.
        lapsed = [p for key, p in demo.partners.items() if not PARTNERS[key].mpa_signed]
        Partner.objects.filter(pk__in=[p.pk for p in lapsed]).update(mpa_signed=True)
        demo.users = create_staff(demo.partners, joined=t.months_ago(24))
        demo.catalog = build_catalog(
            isv_exclusive=[demo.partners["woodgrove"]], isv_co_sell=[demo.partners["northwind"]]
        )
        purchases = demo_purchases(t)
        demo.customers = create_customers(demo.partners, purchases)
        for p in sorted(purchases, key=lambda p: p.at):  # in time order, so order numbers follow the calendar
            place(demo, p)
        apply_later_events(demo, t)
        Partner.objects.filter(pk__in=[p.pk for p in lapsed]).update(mpa_signed=False)
        for subscription in Subscription.objects.filter(customer__in=demo.customers.values()):
            bill_elapsed_cycles(subscription, today=now.date())
        # Runs after the fulfillment tasks the purchases enqueued on commit (callbacks run in order).
        seeded_orders = {o.pk for o in demo.orders} - demo.pending_order_ids
        transaction.on_commit(lambda: discard_queued_tasks(order_ids=seeded_orders))
    return demo


def create_partners(*, since: datetime) -> dict[str, Partner]:
    partners = {
        key: Partner.objects.create(
            name=s.name, partner_id=s.partner_id, kind=s.kind, country=s.country, mpa_signed=s.mpa_signed
        )
        for key, s in PARTNERS.items()
    }
    for provider, resellers in PROVIDER_RESELLERS.items():
        for reseller in resellers:
            ResellerLink.objects.create(provider=partners[provider], reseller=partners[reseller])
    # auto_now_add: backdate after the fact.
    ResellerLink.objects.filter(provider__in=[partners[k] for k in PROVIDER_RESELLERS]).update(created_at=since)
    return partners


def create_staff(partners: Mapping[str, Partner], *, joined: datetime) -> dict:
    User = get_user_model()
    password = make_password(DEMO_PASSWORD)  # hashed once: hashing is deliberately slow
    users = {}
    partner_admins, _ = Group.objects.get_or_create(name=PARTNER_ADMIN_GROUP)
    partner_admins.permissions.set(Permission.objects.filter(PARTNER_ADMIN_PERMISSIONS))
    for spec in USERS:
        domain = PARTNER_DOMAINS.get(spec.partner, "example.com")
        user = User.objects.create(
            username=spec.username,
            first_name=spec.first_name,
            last_name=spec.last_name,
            email=f"{spec.first_name.lower()}.{spec.last_name.lower().replace(' ', '')}@{domain}",
            password=password,
            is_staff=spec.admin is not AdminAccess.NONE,
            is_superuser=spec.admin is AdminAccess.OPERATOR,
            date_joined=joined,
        )
        if spec.partner is not None:
            Membership.objects.create(
                user=user, partner=partners[spec.partner], **{ROLE_FIELDS[role]: True for role in spec.roles}
            )
        if spec.admin is AdminAccess.PARTNER:
            user.groups.add(partner_admins)
        users[spec.username] = user
    return users


def create_customers(partners: Mapping[str, Partner], purchases: Sequence[Purchase]) -> dict[str, Customer]:
    customers: dict[str, Customer] = {}
    for spec in CUSTOMERS:
        tenant = {"tenant_id": customers[spec.same_tenant_as].tenant_id} if spec.same_tenant_as else {}
        customer = Customer.objects.create(
            partner=partners[spec.partner],
            reseller=partners[spec.reseller] if spec.reseller else None,
            company_name=spec.company_name,
            domain=f"{spec.tenant}.onmicrosoft.com",
            segment=spec.segment,
            billing_country=spec.country,
            **tenant,
        )
        # auto_now_add: backdate to a month before the customer's first purchase.
        first = min(p.at for p in purchases if p.customer == spec.key)
        Customer.objects.filter(pk=customer.pk).update(created_at=first - timedelta(days=30))
        customers[spec.key] = customer
    return customers


def place(demo: Demo, p: Purchase) -> None:
    """One purchase, through the cart, checkout and fulfillment services like the portal's pages."""
    customer, actor = demo.customers[p.customer], demo.users[p.actor]
    for line in p.lines:
        availability = demo.catalog[line.sku].availabilities.get(term=line.term, billing_frequency=line.billing)
        aligned_end = demo.subscription(p.customer, line.align_to).term_end if line.align_to else None
        add_to_cart(
            customer=customer,
            actor=actor,
            availability_id=availability.pk,
            quantity=line.quantity,
            aligned_end_date=aligned_end,
            now=p.at,
        )
    cart = current_cart(customer, actor, p.at)
    if p.reseller:
        cart = set_reseller(cart=cart, actor=actor, reseller_id=demo.partners[p.reseller].pk, now=p.at)
    for key in p.additional_resellers:
        add_additional_reseller(cart=cart, actor=actor, partner_id_text=demo.partners[key].partner_id, now=p.at)
    if not p.checkout:
        return
    order, _ = purchase(cart=cart, actor=actor, attested=True, now=p.at + timedelta(minutes=3))
    demo.orders.append(order)
    if not p.fulfill:
        demo.pending_order_ids.add(order.pk)
        return
    # What the background tasks would do, a minute or two after the order was placed.
    fulfill_order(order_id=order.pk, now=p.at + timedelta(minutes=4))
    for subscription_id in Subscription.objects.filter(order_line__order=order).values_list("pk", flat=True):
        provision_subscription(subscription_id=subscription_id, now=p.at + timedelta(minutes=6))


def change(
    subscription: Subscription,
    *,
    actor,
    at: datetime,
    action: str,
    summary: audit.Said,
    status: str | None = None,
    **fields,
) -> None:
    """A change no service makes yet, recorded as the service would: before, after, who, when (L1)."""
    before, after = {}, {}
    if status is not None:
        before["status"], after["status"] = subscription.status, status
        transition(subscription, status)
    for name, value in fields.items():
        before[name], after[name] = getattr(subscription, name), value
        setattr(subscription, name, value)
    subscription.save()
    record(
        actor=actor,
        at=at,
        customer=subscription.customer,
        subscription=subscription,
        action=action,
        summary=summary,
        before=before,
        after=after,
    )


def renewal_day(subscription: Subscription) -> datetime:
    # N2: the term end date is inclusive; what happens at its end happens the next day (UTC).
    return checks.term_ends_at(subscription)


def apply_later_events(demo: Demo, t: Moments) -> None:
    """The states the services don't reach yet, each at its moment and with its audit entry."""
    users = demo.users

    # Suspended for non-payment (P1); suspending turns auto-renew off (P4). Still billed (P3).
    exchange = demo.subscription("munson", EXCHANGE_P1)
    services.suspend_subscription(subscription_id=exchange.pk, actor=users["billing"], now=t.days_ago(10, "16:05"))

    # Suspended, then its term ended: disabled, never to be reactivated (P2, N5). The term end is
    # the renewal engine's work (a later issue): recorded here as it will do it.
    basic = demo.subscription("coho", BB)
    services.suspend_subscription(
        subscription_id=basic.pk, actor=users["provider-billing"], now=t.days_ago(30, "10:00")
    )
    basic.refresh_from_db()
    change(
        basic,
        actor=None,
        at=renewal_day(basic),
        action="subscription.disabled",
        summary=audit.said(
            gettext_noop("Term ended on %(date)s while suspended: disabled and its data deleted"),
            date=f"{basic.term_end:%Y-%m-%d}",
        ),
        status=Status.DISABLED,
    )

    # Auto-renew turned off, then the term ended: expired (N5).
    a5 = demo.subscription("lakeshore", A5_FACULTY)
    services.set_auto_renew(subscription_id=a5.pk, actor=users["billing"], on=False, now=t.days_ago(60, "09:00"))
    a5.refresh_from_db()
    change(
        a5,
        actor=None,
        at=renewal_day(a5),
        action="subscription.expired",
        summary=audit.said(gettext_noop("Term ended on %(date)s with auto-renew off"), date=f"{a5.term_end:%Y-%m-%d}"),
        status=Status.EXPIRED,
    )

    # Active, ending with its term.
    project = demo.subscription("fourth", PROJECT_ESSENTIALS)
    services.set_auto_renew(
        subscription_id=project.pk, actor=users["provider-admin"], on=False, now=t.days_ago(20, "15:30")
    )

    # Cancelled the day after purchase, inside the window, with a prorated refund (X1, X2).
    teams = demo.subscription("relecloud", TEAMS_ESSENTIALS)
    services.cancel_subscription(subscription_id=teams.pk, actor=users["sales"], now=t.days_ago(5, "15:20"))

    # Changes scheduled for the renewal (R1): a mid-term quantity change would delete them (R6),
    # and the page warns before it does.
    e3 = demo.subscription("contoso", M365_E3)
    scheduled = ScheduledChange.objects.create(
        subscription=e3, kind=ScheduledChange.Kind.QUANTITY, quantity=220, created_at=t.days_ago(3, "11:00")
    )
    record(
        actor=users["sales"],
        at=t.days_ago(3, "11:00"),
        customer=e3.customer,
        subscription=e3,
        action="subscription.renewal_change_scheduled",
        summary=audit.said(
            gettext_noop("Scheduled for the renewal: %(changes)s"),
            changes=audit.listed([scheduled.summary_said]),
        ),
        after={"quantity": 220},
    )

    # Renewing within 30 days on a higher SKU (R1): the same quantity, so licenses move automatically (R5).
    bp = demo.subscription("margies", BP)
    services.schedule_renewal_change(
        subscription_id=bp.pk,
        actor=users["sales"],
        quantity=None,
        term=None,
        billing_frequency=None,
        target_sku_id=demo.catalog[M365_E3].pk,
        now=t.days_ago(2, "10:30"),
    )
    # Its renewed term aligned to end on a calendar month's end, six months in (K11 at renewal): prorated.
    o365 = demo.subscription("wideworld", O365_E3)
    options = renewal_alignment_options(o365, sku=o365.sku, term=o365.term, starts_on=services.renewal_starts_on(o365))
    services.schedule_renewal_change(
        subscription_id=o365.pk,
        actor=users["provider-sales"],
        quantity=None,
        term=None,
        billing_frequency=None,
        aligned_end_date=options[5].end_date,
        now=t.days_ago(1, "09:45"),
    )

    # The publisher confirmed the ISV set-up the day after purchase: active, and billed from then on (S3).
    backup = demo.subscription("munson", ALPINE_BACKUP)
    services.confirm_publisher_setup(subscription_id=backup.pk, actor=users["sales"], now=t.days_ago(59, "10:10"))

    # Billed annually from its next monthly charge (N7): the instruction can still be changed or removed.
    g3 = demo.subscription("jefferson", M365_G3)
    cycles.set_next_charge_frequency(
        subscription_id=g3.pk, actor=users["sales"], billing_frequency=ANNUAL, now=t.days_ago(1, "10:00")
    )
    # Set yesterday for today's charge: at 00:00 UTC the engine marked it pending (N7, read-only) and charges it
    # on its next run (make demo starts the engine).
    e1 = demo.subscription("margies", O365_E1)
    cycles.set_next_charge_frequency(
        subscription_id=e1.pk, actor=users["sales"], billing_frequency=ANNUAL, now=t.days_ago(1, "16:00")
    )
    cycles.mark_cycle_charges_pending(start_of_day(t.now.date()))
    # Relecloud's Basic term ended yesterday: since 00:00 UTC its renewal is pending (N6: read-only, changes
    # answer 409); `make demo` starts the engine two minutes after the server, which then renews it.
    lifecycle.mark_renewals_pending(start_of_day(t.now.date()))


def bill_elapsed_cycles(subscription: Subscription, *, today: date) -> None:
    """The billing periods after the first that began by `today` (P3: suspended ones too).

    The purchase charged the first period; the lifecycle job charges the rest as they start.
    The demo's history predates that job, so its cycles are written here, on the day each began.
    """
    if (
        subscription.billing_frequency == BillingFrequency.ONE_TIME
        or subscription.is_trial
        or subscription.status in (Status.PENDING, Status.DELETED)
        or not subscription.unit_price
    ):
        return
    start, months = subscription.term_start.date(), FREQUENCY_MONTHS[subscription.billing_frequency]
    last_day = min(today, subscription.term_end)
    if subscription.cycle_charge_pending:
        # N7: the cycle starting that day is charged by the engine, in the new billing frequency.
        last_day = min(last_day, subscription.next_charge_on - timedelta(days=1))
    cycle = 1
    while (period_start := add_months(start, cycle * months)) <= last_day:
        natural_end = term_end_for(start, (cycle + 1) * months)
        charge = prorated_charge(
            unit_price=subscription.unit_price,
            quantity=subscription.quantity,
            period_start=period_start,
            period_end=min(natural_end, subscription.term_end),
            full_period_start=period_start,
            full_period_end=natural_end,
        )
        bill(
            subscription,
            kind=BillingLine.Kind.CYCLE,
            charge=charge,
            quantity=subscription.quantity,
            now=start_of_day(period_start),
        )
        cycle += 1


def discard_queued_tasks(*, order_ids: set[int]) -> None:
    """Drops the fulfillment and provisioning tasks the seed's purchases queued: the seed already
    did that work itself. The in-progress order keeps its task, for the worker to fulfill."""
    if not apps.is_installed("django_tasks_db"):
        return
    subscription_ids = {
        str(pk) for pk in Subscription.objects.filter(order_line__order_id__in=order_ids).values_list("pk", flat=True)
    }
    seeded = {fulfill_order_task.module_path: order_ids, provision_subscription_task.module_path: subscription_ids}
    queued = DBTaskResult.objects.filter(status="READY", task_path__in=seeded).values_list(
        "pk", "task_path", "args_kwargs"
    )
    stale = [pk for pk, path, args in queued if args.get("args") and args["args"][0] in seeded[path]]
    DBTaskResult.objects.filter(pk__in=stale).delete()


__all__ = [
    "DEMO_PASSWORD",
    "demo_sign_ins",
    "DIRECT_BILL_PARTNER_ID",
    "build_catalog",
    "ensure_offer",
    "ensure_product",
    "ensure_publisher",
    "is_seeded",
    "nce_prices",
    "seed_demo",
]
