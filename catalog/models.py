"""What can be bought (C1), and buying it: carts (K) and orders (O)."""

import secrets
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, models
from django.db.models import Q
from django.db.models.functions import Upper
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.utils.formats import number_format
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from portal.models import Customer, Partner


class Term(models.TextChoices):
    P1M = "P1M", _("1 month")
    P1Y = "P1Y", _("1 year")
    P3Y = "P3Y", _("3 years")


class BillingFrequency(models.TextChoices):
    MONTHLY = "monthly", _("Monthly")
    ANNUAL = "annual", _("Annual")
    ONE_TIME = "one_time", _("One-time")


TERM_MONTHS = {Term.P1M: 1, Term.P1Y: 12, Term.P3Y: 36}
FREQUENCY_MONTHS = {BillingFrequency.MONTHLY: 1, BillingFrequency.ANNUAL: 12}
# TR1: a new-commerce trial comes with this many licenses, for one month (also what converting it adds: TR7).
TRIAL_LICENSES = 25


class Publisher(models.Model):
    name = models.CharField(_("name"), max_length=200, unique=True)
    is_microsoft = models.BooleanField(_("is microsoft"), default=False)

    class Meta:
        verbose_name = _("publisher")
        verbose_name_plural = _("publishers")
        ordering = ["-is_microsoft", "name"]

    def __str__(self) -> str:
        return self.name


class Product(models.Model):
    class BillingType(models.TextChoices):
        LICENSE = "license", _("License-based")
        USAGE = "usage", _("Usage-based")

    class Category(models.TextChoices):
        ENTERPRISE = "enterprise", _("Enterprise")
        SMALL_BUSINESS = "small_business", _("Small business")
        TRIAL = "trial", _("Trial")

    product_id = models.CharField(_("product id"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=200)
    publisher = models.ForeignKey(
        Publisher, on_delete=models.PROTECT, related_name="products", verbose_name=_("publisher")
    )
    billing_type = models.CharField(
        _("billing type"), max_length=10, choices=BillingType.choices, default=BillingType.LICENSE
    )
    category = models.CharField(_("category"), max_length=20, choices=Category.choices, default=Category.ENTERPRISE)
    description = models.TextField(_("description"), blank=True)

    class Meta:
        verbose_name = _("product")
        verbose_name_plural = _("products")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Sku(models.Model):
    """One offer in the catalog: a product's SKU with its rules (C1, C4, C5, K6–K8)."""

    class Commerce(models.TextChoices):
        NEW = "new", _("New commerce")
        TRADITIONAL = "traditional", _("Traditional")

    class AddonLimit(models.TextChoices):
        NONE = "", _("None")
        # K6: at least 5% (rounded up) of the base licenses. A label, never %-formatted:
        # xgettext:no-python-format
        MIN_5_PERCENT_OF_BASE = "min_5pct_base", _("At least 5% of base licenses")
        # K7: at most the base licenses.
        MAX_BASE = "max_base", _("At most the base licenses")

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="skus", verbose_name=_("product"))
    sku_id = models.CharField(_("SKU id"), max_length=60, unique=True)
    name = models.CharField(_("name"), max_length=200)
    # The name in capitals: what the top bar's search compares (portal.search), as it is stored.
    searched_name = models.GeneratedField(
        expression=Upper("name"),
        output_field=models.CharField(max_length=200),
        db_persist=True,
        editable=False,
        verbose_name=_("searched name"),
    )
    commerce = models.CharField(_("commerce"), max_length=12, choices=Commerce.choices, default=Commerce.NEW)
    segments = models.CharField(
        _("segments"),
        max_length=80,
        default="commercial",
        help_text=_("Comma-separated customer segments it is sold to: commercial, education, government, nonprofit."),
    )
    one_per_customer = models.BooleanField(_("one per customer"), default=False)
    min_quantity = models.PositiveIntegerField(_("min quantity"), default=1)
    max_quantity = models.PositiveIntegerField(_("max quantity"), default=10000)
    is_trial = models.BooleanField(_("is trial"), default=False)
    trial_of = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="trials",
        help_text=_("The paid SKU a trial converts to."),
        verbose_name=_("trial of"),
    )
    is_addon = models.BooleanField(_("is addon"), default=False)
    base_skus = models.ManyToManyField(
        "self",
        symmetrical=False,
        blank=True,
        related_name="addons",
        help_text=_("Add-on prerequisites: any one of these."),
        verbose_name=_("base skus"),
    )
    addon_limit = models.CharField(
        _("addon limit"), max_length=20, choices=AddonLimit.choices, default=AddonLimit.NONE, blank=True
    )
    # Where it is sold (ISV) or available (add-on region); blank means everywhere.
    available_countries = models.CharField(
        _("available countries"), max_length=300, blank=True, help_text=_("Comma-separated ISO codes; blank = all.")
    )
    # ISV SaaS attributes (C4 c–f, S3, S4).
    offered_through_csp = models.BooleanField(_("offered through csp"), default=True)
    exclusive_partners = models.ManyToManyField(
        Partner,
        blank=True,
        related_name="exclusive_skus",
        help_text=_("If any, only these partners may sell it."),
        verbose_name=_("exclusive partners"),
    )
    transactable_in_portal = models.BooleanField(
        _("transactable in portal"),
        default=True,
        help_text=_("Off for offers bought in the Azure portal (containers, some consumption offers)."),
    )
    free_trial_days = models.PositiveIntegerField(_("free trial days"), default=0)
    publisher_setup_url = models.CharField(_("publisher setup url"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("SKU")
        verbose_name_plural = _("SKUs")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(min_quantity__gte=1), name="sku_min_quantity_positive"),
            models.CheckConstraint(
                condition=Q(max_quantity__gte=models.F("min_quantity")), name="sku_max_not_below_min"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def segment_list(self) -> list[str]:
        return [s.strip() for s in self.segments.split(",") if s.strip()]

    @property
    def country_list(self) -> list[str]:
        return [c.strip().upper() for c in self.available_countries.split(",") if c.strip()]

    @property
    def is_isv(self) -> bool:
        return not self.product.publisher.is_microsoft

    @property
    def is_license_based(self) -> bool:
        return self.product.billing_type == Product.BillingType.LICENSE

    def quantity_refusal(self, quantity: int) -> str | None:
        """K8: why `quantity` licenses of this offer can't be bought (or held), or None. The one test of the offer's
        minimum and maximum: the cart, the checkout, the quantity changes, upgrades, conversions and add-ons ask it,
        and the catalog's card draws its quantity field's bounds from the same two columns."""
        if self.min_quantity <= quantity <= self.max_quantity:
            return None
        return gettext("%(offer)s is sold in quantities from %(minimum)s to %(maximum)s.") % {
            "offer": self.name,
            "minimum": number_format(self.min_quantity, force_grouping=True),
            "maximum": number_format(self.max_quantity, force_grouping=True),
        }


def offer_search(text: str) -> Q:
    """C2: the offers whose name, product, publisher or SKU id contains `text` (any case): the catalog's search
    (filters.OfferFilter) and the subscription lists' offer picker (subscriptions.selectors.offers_matching)."""
    return (
        Q(name__icontains=text)
        | Q(product__name__icontains=text)
        | Q(product__publisher__name__icontains=text)
        | Q(sku_id__icontains=text)
    )


class Availability(models.Model):
    """A way to buy a SKU: term, billing frequency and unit price per license per billing period."""

    sku = models.ForeignKey(Sku, on_delete=models.CASCADE, related_name="availabilities", verbose_name=_("sku"))
    term = models.CharField(_("term"), max_length=3, choices=Term.choices)
    billing_frequency = models.CharField(_("billing frequency"), max_length=10, choices=BillingFrequency.choices)
    unit_price = models.DecimalField(_("unit price"), max_digits=12, decimal_places=2)
    currency = models.CharField(_("currency"), max_length=3, default="USD")

    class Meta:
        verbose_name = _("availability")
        ordering = ["sku", "term", "billing_frequency"]
        verbose_name_plural = _("availabilities")
        constraints = [
            models.UniqueConstraint(fields=["sku", "term", "billing_frequency"], name="unique_availability"),
            models.CheckConstraint(condition=Q(unit_price__gte=0), name="availability_price_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.sku.name}, {self.term} {self.get_billing_frequency_display()}: {self.unit_price} {self.currency}"


class UpgradePath(models.Model):
    """The upgrade matrix between SKUs. Unsupported paths (U2) are kept so they are never offered."""

    source = models.ForeignKey(Sku, on_delete=models.CASCADE, related_name="upgrade_paths", verbose_name=_("source"))
    target = models.ForeignKey(Sku, on_delete=models.CASCADE, related_name="upgrade_sources", verbose_name=_("target"))
    supported = models.BooleanField(_("supported"), default=True)
    note = models.CharField(_("note"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("upgrade path")
        verbose_name_plural = _("upgrade paths")
        constraints = [models.UniqueConstraint(fields=["source", "target"], name="unique_upgrade_path")]

    def __str__(self) -> str:
        return f"{self.source.name} → {self.target.name}{'' if self.supported else ' (unsupported)'}"


class CatalogVersion(models.Model):
    """One row whose `version` changes with every write to the catalog tables, so each process can tell
    whether its in-memory copy of the catalog (catalog/listing.py) is still the database's.

    The rule: every write to Publisher, Product, Sku (and its base_skus and exclusive_partners),
    Availability or UpgradePath changes the version in the same transaction. `save()`, `delete()`,
    cascades and the M2M managers do it through the receivers below; `QuerySet.update()`,
    `bulk_create()` and raw SQL send no signal, so code that writes the catalog that way calls
    `bump_catalog_version()` itself (as `seed_bench` does).

    The version is a random number, not a counter: a bump inside a transaction that is rolled back
    must never be followed by another bump to the same value (a counter would go 5 -> 6, back to 5,
    then 6 again with other contents).
    """

    version = models.BigIntegerField(_("version"))

    class Meta:
        verbose_name = _("catalog version")
        verbose_name_plural = _("catalog versions")

    def __str__(self) -> str:
        return f"Catalog version {self.version}"


CATALOG_VERSION_PK = 1


def _new_version() -> int:
    return secrets.randbits(62)


def bump_catalog_version(using: str = DEFAULT_DB_ALIAS) -> int:
    """Gives the catalog a new version; call it in the transaction that wrote the catalog."""
    version = _new_version()
    rows = CatalogVersion.objects.using(using).filter(pk=CATALOG_VERSION_PK).update(version=version)
    if not rows:  # a flushed database (tests) has no row yet
        _row, created = CatalogVersion.objects.using(using).get_or_create(
            pk=CATALOG_VERSION_PK, defaults={"version": version}
        )
        if not created:
            CatalogVersion.objects.using(using).filter(pk=CATALOG_VERSION_PK).update(version=version)
    return version


def catalog_version(using: str = DEFAULT_DB_ALIAS) -> int:
    """The catalog's current version: one single-row SELECT by primary key, without the ORM's query building
    (it runs on every catalog and cart page)."""
    connection = connections[using]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT version FROM {connection.ops.quote_name(CatalogVersion._meta.db_table)} WHERE id = %s",
            [CATALOG_VERSION_PK],
        )
        row = cursor.fetchone()
    return row[0] if row else bump_catalog_version(using)


class Cart(models.Model):
    """A customer's cart, owned by one staff user (K1), open for CSP_CART_LIFETIME_DAYS (K12)."""

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        PURCHASED = "purchased", _("Purchased")
        EXPIRED = "expired", _("Expired")

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="carts", verbose_name=_("customer"))
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="carts", verbose_name=_("owner")
    )
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(_("created at"))
    reseller = models.ForeignKey(
        Partner,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("K4: the indirect reseller to associate with the purchase."),
        verbose_name=_("reseller"),
    )
    # K3 as Partner Center carries it: `partnerOnRecordAttestationAccepted` comes with the cart (its checkout has no
    # body), while the cart page confirms at purchase. Set by `catalog.cart.set_attestation`; the purchase decides.
    attestation_accepted = models.BooleanField(_("attestation accepted"), default=False)
    # Exactly once (portal/versions.py): bumped by every change, posted back by every form drawn from it.
    version = models.PositiveIntegerField(_("version"), default=1, editable=False)

    class Meta:
        verbose_name = _("cart")
        verbose_name_plural = _("carts")
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "owner"], condition=Q(status="open"), name="one_open_cart_per_customer_and_user"
            )
        ]

    def __str__(self) -> str:
        return f"Cart {self.pk} for {self.customer}"

    @property
    def lifetime_days(self) -> int:
        """K12: how long a cart stays open, as the cart page says it."""
        return settings.CSP_CART_LIFETIME_DAYS

    @property
    def expires_at(self):
        return self.created_at + timedelta(days=self.lifetime_days)

    def is_past_its_time(self, now) -> bool:
        """K12: an unpurchased cart expires CSP_CART_LIFETIME_DAYS after it was created (stored as expired, or not
        yet). The one test: the cart services, the purchase and the pages ask it."""
        return self.status == self.Status.EXPIRED or (self.status == self.Status.OPEN and now >= self.expires_at)


class CartLine(models.Model):
    cart = models.ForeignKey(Cart, on_delete=models.CASCADE, related_name="lines", verbose_name=_("cart"))
    availability = models.ForeignKey(
        Availability, on_delete=models.PROTECT, related_name="+", verbose_name=_("availability")
    )
    quantity = models.PositiveIntegerField(_("quantity"))
    aligned_end_date = models.DateField(
        _("aligned end date"), null=True, blank=True, help_text=_("K11: end the first term on this date (UTC).")
    )
    added_at = models.DateTimeField(_("added at"))

    class Meta:
        verbose_name = _("cart line")
        verbose_name_plural = _("cart lines")
        ordering = ["added_at", "pk"]
        constraints = [models.CheckConstraint(condition=Q(quantity__gt=0), name="cart_line_quantity_positive")]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.availability}"


class CartAdditionalReseller(models.Model):
    """K5: an additional reseller in an EU/EFTA deal, declared by PartnerID."""

    cart = models.ForeignKey(
        Cart, on_delete=models.CASCADE, related_name="additional_resellers", verbose_name=_("cart")
    )
    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="+", verbose_name=_("partner"))
    position = models.PositiveSmallIntegerField(_("position"))

    class Meta:
        verbose_name = _("cart additional reseller")
        verbose_name_plural = _("cart additional resellers")
        ordering = ["position"]
        constraints = [models.UniqueConstraint(fields=["cart", "partner"], name="unique_cart_additional_reseller")]


class Order(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("In progress")
        COMPLETED = "completed", _("Completed")

    class Attestation(models.TextChoices):
        DIRECT = "direct", _("Acting as a direct partner")
        INDIRECT = "indirect", _("Acting as an indirect partner")

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="orders", verbose_name=_("customer"))
    # K9: one order per cart, enforced by the database, so a cart submitted twice buys once.
    cart = models.OneToOneField(
        Cart, on_delete=models.PROTECT, related_name="order", null=True, blank=True, verbose_name=_("cart")
    )
    placed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="orders", verbose_name=_("placed by")
    )
    created_at = models.DateTimeField(_("created at"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    total = models.DecimalField(_("total"), max_digits=12, decimal_places=2)
    currency = models.CharField(_("currency"), max_length=3, default="USD")
    attested_as = models.CharField(_("attested as"), max_length=10, choices=Attestation.choices)
    reseller = models.ForeignKey(
        Partner, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("reseller")
    )
    # Exactly once (portal/versions.py): bumped by every change, posted back by every form drawn from it.
    version = models.PositiveIntegerField(_("version"), default=1, editable=False)

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["customer", "-created_at"]),
            # The sweep (subscriptions/recovery.py) looks for orders left pending, every minute: the few there are.
            models.Index(fields=["created_at"], condition=Q(status="pending"), name="order_pending_idx"),
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def number(self) -> str:
        return f"ORD-{self.pk:06d}"


class OrderLine(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        FULFILLED = "fulfilled", _("Fulfilled")

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="lines", verbose_name=_("order"))
    availability = models.ForeignKey(
        Availability, on_delete=models.PROTECT, related_name="+", verbose_name=_("availability")
    )
    sku = models.ForeignKey(Sku, on_delete=models.PROTECT, related_name="+", verbose_name=_("sku"))
    quantity = models.PositiveIntegerField(_("quantity"))
    term = models.CharField(_("term"), max_length=3, choices=Term.choices)
    billing_frequency = models.CharField(_("billing frequency"), max_length=10, choices=BillingFrequency.choices)
    unit_price = models.DecimalField(_("unit price"), max_digits=12, decimal_places=2)
    currency = models.CharField(_("currency"), max_length=3, default="USD")
    aligned_end_date = models.DateField(_("aligned end date"), null=True, blank=True)
    first_charge = models.DecimalField(
        _("first charge"),
        max_digits=12,
        decimal_places=2,
        default=Decimal("0.00"),
        help_text=_("Quoted at purchase: unit price × quantity, prorated by the day when the term is aligned short."),
    )
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    fulfilled_at = models.DateTimeField(_("fulfilled at"), null=True, blank=True)

    class Meta:
        verbose_name = _("order line")
        verbose_name_plural = _("order lines")
        ordering = ["pk"]
        constraints = [models.CheckConstraint(condition=Q(quantity__gt=0), name="order_line_quantity_positive")]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.sku.name}"

    @property
    def line_total(self) -> Decimal:
        return self.first_charge


class OrderAdditionalReseller(models.Model):
    order = models.ForeignKey(
        Order, on_delete=models.PROTECT, related_name="additional_resellers", verbose_name=_("order")
    )
    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="+", verbose_name=_("partner"))
    position = models.PositiveSmallIntegerField(_("position"))

    class Meta:
        verbose_name = _("order additional reseller")
        verbose_name_plural = _("order additional resellers")
        ordering = ["position"]


# Cache invalidation, not domain logic: every saved or deleted catalog row, and every change to a SKU's
# add-on prerequisites or exclusive partners, gives the catalog a new version (see CatalogVersion).
CATALOG_TABLES = (
    Publisher,
    Product,
    Sku,
    Availability,
    UpgradePath,
    Sku.base_skus.through,
    Sku.exclusive_partners.through,
)


def _catalog_row_written(sender, using=DEFAULT_DB_ALIAS, **kwargs):
    bump_catalog_version(using)


def _catalog_links_changed(sender, action, using=DEFAULT_DB_ALIAS, **kwargs):
    if action in ("post_add", "post_remove", "post_clear"):
        bump_catalog_version(using)


for _model in CATALOG_TABLES:
    post_save.connect(_catalog_row_written, sender=_model, dispatch_uid=f"catalog_version_save_{_model._meta.label}")
    post_delete.connect(
        _catalog_row_written, sender=_model, dispatch_uid=f"catalog_version_delete_{_model._meta.label}"
    )
for _through in (Sku.base_skus.through, Sku.exclusive_partners.through):
    m2m_changed.connect(
        _catalog_links_changed, sender=_through, dispatch_uid=f"catalog_version_m2m_{_through._meta.label}"
    )
