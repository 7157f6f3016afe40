"""What has been bought: subscriptions, their license lots, billing lines and the audit trail."""

import uuid
from datetime import UTC, datetime

from django.conf import settings
from django.db import models
from django.db.models import Q, Value
from django.db.models.functions import Coalesce, NullIf, Upper
from django.utils.translation import gettext, gettext_noop, ngettext
from django.utils.translation import gettext_lazy as _

from catalog.models import Availability, BillingFrequency, Order, OrderLine, Sku, Term
from portal.models import Customer, Partner

from . import said
from .states import LIVE_STATUSES, Status


class SubscriptionManager(models.Manager):
    def bulk_create(self, objs, *args, **kwargs):
        # bulk_create calls no save(): the sort keys are set here from what each row holds (its customer, offer and
        # reseller, read once each when the caller gave them as objects, as the seeds and tests do).
        objs = list(objs)
        for obj in objs:
            obj.fill_sort_keys()
        return super().bulk_create(objs, *args, **kwargs)


class Subscription(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False, verbose_name=_("ID"))
    # No index of its own: every list index of a customer starts with it (Meta.indexes).
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="subscriptions", db_index=False, verbose_name=_("customer")
    )
    sku = models.ForeignKey(
        Sku, on_delete=models.PROTECT, related_name="subscriptions", db_index=False, verbose_name=_("SKU")
    )  # see Meta
    availability = models.ForeignKey(
        Availability, on_delete=models.PROTECT, related_name="+", verbose_name=_("availability")
    )
    order_line = models.OneToOneField(
        OrderLine,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="subscription",
        verbose_name=_("order line"),
    )
    # Indexed below only where set: most subscriptions are no add-on (and most have no reseller), and over an
    # index whose entries are mostly NULL, SQLite's statistics (ANALYZE) make it scan the table instead.
    base_subscription = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="addon_subscriptions",
        db_index=False,
        verbose_name=_("base subscription"),
    )
    friendly_name = models.CharField(max_length=200, blank=True, verbose_name=_("friendly name"))
    # The friendly name in capitals, or NULL without one: what the top bar's search reads (portal.search), from the
    # partial index subscription_named_idx alone. Capitals once, on write: a search compares each name as it is
    # stored, not UPPER() of each (a third of the time on PostgreSQL, measured at 10,000 names). The index's
    # condition is "IS NOT NULL", which has no value to bind: PostgreSQL's generic plan of a prepared statement
    # (portal.settings, prepare_threshold) can use it, where a condition with a value (friendly_name <> '') is bound
    # as a parameter, can't be proved, and the plan read every subscription.
    searched_name = models.GeneratedField(
        expression=Upper(NullIf("friendly_name", Value(""))),
        output_field=models.CharField(max_length=200, null=True),
        db_persist=True,
        editable=False,
        verbose_name=_("searched name"),
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, verbose_name=_("status"))
    quantity = models.PositiveIntegerField(verbose_name=_("quantity"))
    # Snapshot of what was bought: a later price list change does not touch it.
    term = models.CharField(max_length=3, choices=Term.choices, verbose_name=_("term"))
    billing_frequency = models.CharField(
        max_length=10, choices=BillingFrequency.choices, verbose_name=_("billing frequency")
    )
    unit_price = models.DecimalField(max_digits=12, decimal_places=2, verbose_name=_("unit price"))
    currency = models.CharField(max_length=3, default="USD", verbose_name=_("currency"))
    auto_renew = models.BooleanField(default=True, verbose_name=_("auto-renew"))
    # The term starts at an instant and ends on an inclusive UTC date (N2); a renewed term starts at 00:00 UTC.
    term_start = models.DateTimeField(null=True, blank=True, verbose_name=_("term start"))
    term_end = models.DateField(null=True, blank=True, verbose_name=_("term end"))
    # N3: when the renewal (or the trial conversion at its end) that started this term completed, up to 24 hours
    # after its 00:00 UTC start: the term's 7-day cancellation window counts from it. None for a first term.
    renewal_completed_at = models.DateTimeField(null=True, blank=True, verbose_name=_("renewal completed at"))
    is_trial = models.BooleanField(default=False, verbose_name=_("trial"))
    trial_ends_at = models.DateTimeField(null=True, blank=True, verbose_name=_("trial ends at"))
    # N6: set by the lifecycle engine from 00:00 UTC the day after the term end until the renewal completes.
    renewal_pending = models.BooleanField(default=False, verbose_name=_("renewal pending"))
    # "Change the billing frequency at the next charge" (subscriptions/cycles.py): the new frequency, the day
    # its first period starts (a period boundary of the current frequency, within the term) and when it was set.
    next_charge_frequency = models.CharField(
        max_length=10, choices=BillingFrequency.choices, blank=True, verbose_name=_("next charge frequency")
    )
    next_charge_on = models.DateField(null=True, blank=True, verbose_name=_("next charge on"))
    next_charge_set_at = models.DateTimeField(null=True, blank=True, verbose_name=_("next charge set at"))
    # N7: set by the lifecycle engine from 00:00 UTC on next_charge_on until the cycle charge completes.
    cycle_charge_pending = models.BooleanField(default=False, verbose_name=_("cycle charge pending"))
    reseller = models.ForeignKey(
        Partner,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="resold_subscriptions",
        db_index=False,
        verbose_name=_("reseller"),
    )
    promotion_id = models.CharField(max_length=40, blank=True, verbose_name=_("promotion ID"))
    one_per_customer = models.BooleanField(
        default=False, editable=False, help_text=_("Snapshot of the offer's rule."), verbose_name=_("one per customer")
    )
    quantity_updates = models.PositiveIntegerField(default=0, verbose_name=_("quantity updates"))
    setup_confirmed_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_("S3: when the publisher confirmed set-up."),
        verbose_name=_("setup confirmed at"),
    )
    cancelled_at = models.DateTimeField(null=True, blank=True, verbose_name=_("cancelled at"))
    # U7: when licenses were last upgraded in or into this subscription; an upgrade has no cancellation window.
    upgraded_at = models.DateTimeField(null=True, blank=True, verbose_name=_("upgraded at"))
    # TF4: when it was transferred in from another partner: the customer paid that partner for this term, so
    # there is no cancellation window (and no refund) with this one.
    transferred_at = models.DateTimeField(null=True, blank=True, verbose_name=_("transferred at"))
    # TF4: the source partner's subscription this one was recreated from. Each side is shown its own records of a
    # completed transfer (subscriptions.transfers.moved_subscriptions), never the other partner's ids.
    transferred_from = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
        verbose_name=_("transferred from"),
    )
    created_at = models.DateTimeField(verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))
    # The lists' sort keys, stored on the row being listed so that one index serves each list's filter and sort
    # (S1): a sort key joined from another table (the customer's name, the reseller's) can't be read from an index,
    # and at 100,000 subscriptions sorting them all on each page was the cost. Copies, not rules: `save()` keeps
    # them from the subscription's own fields; Customer.save() and Partner.save() keep them when the customer or
    # the reseller changes, in the same transaction. `list_name` is `display_name`.
    list_name = models.CharField(max_length=200, blank=True, editable=False, verbose_name=_("list name"))
    customer_name = models.CharField(max_length=200, blank=True, editable=False, verbose_name=_("customer name"))
    # The customer's partner (T3): the scope of the list across customers, so that its index starts with it.
    partner = models.ForeignKey(
        Partner, on_delete=models.PROTECT, related_name="+", db_index=False, editable=False, verbose_name=_("partner")
    )
    reseller_name = models.CharField(
        max_length=200, blank=True, editable=False, verbose_name=_("reseller name")
    )  # "" without a reseller
    # Exactly once (portal/versions.py): bumped by every change, posted back by every form drawn from it.
    version = models.PositiveIntegerField(default=1, editable=False, verbose_name=_("version"))

    objects = SubscriptionManager()

    class Meta:
        verbose_name = _("subscription")
        verbose_name_plural = _("subscriptions")
        ordering = ["-created_at"]
        # An index for every list's sort and filter (S1), each ending with the sort's tie-breaker (id), so that a page
        # is read in index order from where the last one ended (seek pagination, selectors.SubscriptionList), going
        # either way. The list of a customer starts with the customer; the list across customers with the partner
        # (a reseller's: with the reseller, from the partial indexes that only hold resold subscriptions).
        indexes = [
            # The default sort (name), also under the status filter; and the status sort, ties by name.
            models.Index(fields=["customer", "status", "list_name", "id"], name="subscription_status_name_idx"),
            models.Index(fields=["customer", "sku", "status"]),
            models.Index(fields=["term_end"]),
            models.Index(fields=["customer", "list_name", "id"], name="subscription_list_name_idx"),
            # Also the "renews within 30 days" filter: its status and auto-renew are read from the index too.
            models.Index(
                fields=["customer", "term_end", "id", "status", "auto_renew"], name="subscription_term_end_idx"
            ),
            models.Index(fields=["customer", "quantity", "id"], name="subscription_quantity_idx"),
            models.Index(fields=["customer", "term", "id"], name="subscription_term_idx"),
            models.Index(fields=["customer", "billing_frequency", "id"], name="subscription_billing_idx"),
            models.Index(fields=["customer", "auto_renew", "id"], name="subscription_auto_renew_idx"),
            models.Index(fields=["customer", "reseller_name", "id"], name="subscription_reseller_name_idx"),
            # Across customers: by customer (the default: its name, then the customer, then the subscription's name)
            # and by every other column.
            models.Index(
                fields=["partner", "customer_name", "customer", "list_name", "id"], name="subscription_all_customer_idx"
            ),
            models.Index(fields=["partner", "list_name", "id"], name="subscription_all_name_idx"),
            models.Index(fields=["partner", "quantity", "id"], name="subscription_all_quantity_idx"),
            models.Index(fields=["partner", "status", "list_name", "id"], name="subscription_all_status_idx"),
            # The status filter in the default order (by customer): the page is the first entries of one range.
            models.Index(
                fields=["partner", "status", "customer_name", "customer", "list_name", "id"],
                name="subscription_all_stat_cust_idx",
            ),
            models.Index(fields=["partner", "term", "id"], name="subscription_all_term_idx"),
            models.Index(fields=["partner", "billing_frequency", "id"], name="subscription_all_billing_idx"),
            # Also the "renews within 30 days" filter: what it tests (status, auto-renew) and the default order's key
            # are read from the index, for the count and for picking the page's rows, not from 2,000 rows.
            models.Index(
                fields=["partner", "term_end", "id", "status", "auto_renew", "customer_name", "customer", "list_name"],
                name="subscription_all_renews_idx",
            ),
            models.Index(fields=["partner", "auto_renew", "id"], name="subscription_all_renew_idx"),
            models.Index(fields=["partner", "reseller_name", "id"], name="subscription_all_reseller_idx"),
            # A reseller's list across customers (T1), by customer; its other sorts read its few subscriptions. Also
            # its other lookups by reseller (one more index on the reseller alone would only repeat it).
            models.Index(
                fields=["reseller", "customer_name", "customer", "list_name", "id"],
                condition=Q(reseller__isnull=False),
                name="subscription_resold_cust_idx",
            ),
            # The 48-hour window filter finds subscriptions by id from the lots closing soon; what it then tests
            # (partner, status, trial) and sorts by (the default order's key) is read from this index, not from
            # each subscription's row.
            models.Index(
                fields=["id", "partner", "status", "is_trial", "customer_name", "customer", "list_name"],
                name="subscription_by_id_list_idx",
            ),
            # The top bar's search by friendly name (portal.search): only the subscriptions that have one, in the
            # list's order, with the name to test and the columns a result shows, so that a search reads this index
            # alone, not every subscription (the offer's name is joined for the eleven it shows).
            models.Index(
                fields=[
                    "partner",
                    "customer_name",
                    "customer",
                    "list_name",
                    "id",
                    "searched_name",
                    "sku",
                    "status",
                    "quantity",
                ],
                condition=Q(searched_name__isnull=False),
                name="subscription_named_idx",
            ),
            # By offer, with the customer: the offer filter across customers counts its subscriptions in the index.
            models.Index(fields=["sku", "customer"], name="subscription_sku_customer_idx"),
            models.Index(
                fields=["base_subscription"],
                condition=Q(base_subscription__isnull=False),
                name="subscription_addon_of_idx",
            ),
            # The sweep (recovery.py) looks for subscriptions left pending provisioning, every minute.
            models.Index(fields=["created_at"], condition=Q(status="pending"), name="subscription_pending_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="subscription_quantity_positive"),
            models.CheckConstraint(condition=Q(unit_price__gte=0), name="subscription_price_not_negative"),
            # C4a as data: eligibility explains the refusal; this stops two orders racing past it.
            models.UniqueConstraint(
                fields=["customer", "sku"],
                condition=Q(one_per_customer=True, status__in=LIVE_STATUSES),
                name="one_live_subscription_per_customer_for_single_offers",
            ),
            # A next-charge billing frequency instruction is whole, and never outlives the term: at a boundary
            # after the term end the renewal wins (schedule the frequency for the renewal instead).
            models.CheckConstraint(
                condition=Q(next_charge_frequency="", next_charge_on__isnull=True, cycle_charge_pending=False)
                | (
                    ~Q(next_charge_frequency="")
                    & Q(next_charge_on__isnull=False, next_charge_on__lte=models.F("term_end"))
                ),
                name="subscription_next_charge_instruction_whole_within_term",
            ),
        ]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        return display_name(self.friendly_name, self.sku.name)

    def fill_sort_keys(self) -> None:
        """Sets every sort key from the subscription's own fields (the copies `save()` keeps)."""
        self.list_name = self.display_name
        self.customer_name, self.partner_id = self.customer.company_name, self.customer.partner_id
        self.reseller_name = self.reseller.name if self.reseller_id is not None else ""

    def save(self, *args, update_fields=None, **kwargs):
        # The sort keys are copies, not rules: whichever service renames the subscription or moves it to another
        # offer (upgrade, trial conversion, renewal on an upgrade), customer or reseller, the copies follow in the
        # same UPDATE.
        fields = None if update_fields is None else set(update_fields)
        if fields is None or {"friendly_name", "sku", "sku_id"} & fields:
            self.list_name = self.display_name
            fields = None if fields is None else fields | {"list_name"}
        if fields is None or {"customer", "customer_id"} & fields:
            self.customer_name, self.partner_id = self.customer.company_name, self.customer.partner_id
            fields = None if fields is None else fields | {"customer_name", "partner"}
        if fields is None or {"reseller", "reseller_id"} & fields:
            self.reseller_name = self.reseller.name if self.reseller_id is not None else ""
            fields = None if fields is None else fields | {"reseller_name"}
        if fields is not None:
            update_fields = [*update_fields, *sorted(fields - set(update_fields))]
        # Any write of the row is a new version (portal/versions.py), whoever makes it: the lifecycle engine's
        # renewal, an add-on suspended with its base. Every writer holds the row's lock, so the count is exact.
        self.version += 1
        if update_fields is not None:
            update_fields = [*update_fields, "version"]
        super().save(*args, update_fields=update_fields, **kwargs)

    @property
    def is_live(self) -> bool:
        return self.status in LIVE_STATUSES


def display_name(friendly_name: str, offer_name: str) -> str:
    """The name a subscription is shown by: its friendly name, else its offer's (S1). The one place of that rule:
    `Subscription.display_name`, the stored `list_name`, and the reads that only have the two names ask it."""
    return friendly_name or offer_name


def fill_list_names(subscriptions) -> int:
    """Sets the sort keys (`list_name`, `customer_name`, `partner`, `reseller_name`) on these subscriptions: for rows
    written without `save()` (bulk_create). The names are computed by `display_name`, one UPDATE per distinct name
    (offers and friendly names, not rows); the copies of the customer and the reseller in one UPDATE each."""
    by_name: dict[str, list] = {}
    for pk, friendly_name, offer_name in subscriptions.order_by().values_list("pk", "friendly_name", "sku__name"):
        by_name.setdefault(display_name(friendly_name, offer_name), []).append(pk)
    for name, pks in by_name.items():
        for start in range(0, len(pks), 500):  # within every database's limit of parameters
            Subscription.objects.filter(pk__in=pks[start : start + 500]).update(list_name=name)
    customer = Customer.objects.filter(pk=models.OuterRef("customer_id"))
    reseller = Partner.objects.filter(pk=models.OuterRef("reseller_id"))
    return subscriptions.update(
        customer_name=models.Subquery(customer.values("company_name")[:1]),
        partner=models.Subquery(customer.values("partner_id")[:1]),
        reseller_name=Coalesce(models.Subquery(reseller.values("name")[:1]), models.Value("")),
    )


class ScheduledChange(models.Model):
    """A change set for the renewal (R1). Scheduling itself is built with the renewal engine; a
    mid-term change deletes them (R6), suspension too except a billing-frequency instruction (P4)."""

    class Kind(models.TextChoices):
        UPGRADE = "upgrade", _("SKU upgrade")
        QUANTITY = "quantity", _("Quantity")
        TERM = "term", _("Term")
        BILLING_FREQUENCY = "billing_frequency", _("Billing frequency")
        ALIGNMENT = "alignment", _("Aligned end date")

    subscription = models.ForeignKey(
        Subscription, on_delete=models.CASCADE, related_name="scheduled_changes", verbose_name=_("subscription")
    )
    kind = models.CharField(max_length=20, choices=Kind.choices, verbose_name=_("kind"))
    target_sku = models.ForeignKey(
        Sku, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("target SKU")
    )
    quantity = models.PositiveIntegerField(null=True, blank=True, verbose_name=_("quantity"))
    term = models.CharField(max_length=3, choices=Term.choices, blank=True, verbose_name=_("term"))
    billing_frequency = models.CharField(
        max_length=10, choices=BillingFrequency.choices, blank=True, verbose_name=_("billing frequency")
    )
    aligned_end_date = models.DateField(null=True, blank=True, verbose_name=_("aligned end date"))
    created_at = models.DateTimeField(verbose_name=_("created at"))

    class Meta:
        verbose_name = _("scheduled change")
        verbose_name_plural = _("scheduled changes")
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return gettext("%(kind)s at renewal of %(subscription)s") % {
            "kind": self.get_kind_display(),
            "subscription": self.subscription_id,
        }

    @property
    def summary(self) -> str:
        """The change in words, in the active language."""
        return str(self.summary_said)

    @property
    def summary_said(self) -> said.Said:
        """The change in words as a message (subscriptions.said): what an audit row keeps, to be said in each
        reader's language."""
        if self.kind == self.Kind.UPGRADE and self.target_sku_id:
            return said.said(gettext_noop("Upgrade to %(offer)s"), offer=self.target_sku.name)
        if self.kind == self.Kind.QUANTITY:
            return said.Said.ngettext("%(count)s license", "%(count)s licenses", "count", count=self.quantity)
        if self.kind == self.Kind.TERM:
            return said.said(gettext_noop("Term %(term)s"), term=said.label(Term(self.term).label))
        if self.kind == self.Kind.BILLING_FREQUENCY:
            return said.said(
                {
                    "monthly": gettext_noop("Billed monthly"),
                    "annual": gettext_noop("Billed annually"),
                    "one_time": gettext_noop("Billed once for the term"),
                }[self.billing_frequency]
            )
        return said.said(gettext_noop("End on %(date)s"), date=self.aligned_end_date)


class SeatLot(models.Model):
    """Licenses added together (purchase, renewal or increase): each opens its own 7-day window (Q2)."""

    class Source(models.TextChoices):
        PURCHASE = "purchase", _("Purchase")
        INCREASE = "increase", _("Added licenses")
        RENEWAL = "renewal", _("Renewal")

    subscription = models.ForeignKey(
        Subscription, on_delete=models.CASCADE, related_name="seat_lots", verbose_name=_("subscription")
    )
    source = models.CharField(max_length=10, choices=Source.choices, verbose_name=_("source"))
    quantity = models.PositiveIntegerField(help_text=_("Licenses added."), verbose_name=_("quantity"))
    removed = models.PositiveIntegerField(
        default=0, help_text=_("Licenses of this lot removed since."), verbose_name=_("removed")
    )
    added_at = models.DateTimeField(verbose_name=_("added at"))
    window_ends_at = models.DateTimeField(
        help_text=_("Until this instant (UTC) these licenses can be removed."), verbose_name=_("window ends at")
    )

    class Meta:
        verbose_name = _("license lot")
        verbose_name_plural = _("license lots")
        ordering = ["-added_at", "-pk"]
        # Windows closing soon are looked up across all subscriptions (home page, 48 h filter).
        # With the subscription and the counts, the lots closing soon are read from the index alone.
        indexes = [
            models.Index(fields=["window_ends_at", "subscription", "removed", "quantity"], name="seatlot_window_idx")
        ]
        constraints = [
            models.CheckConstraint(condition=Q(removed__lte=models.F("quantity")), name="lot_removed_within_quantity")
        ]

    def __str__(self) -> str:
        return ngettext(
            "%(count)s license added %(when)s UTC", "%(count)s licenses added %(when)s UTC", self.quantity
        ) % {"count": self.quantity, "when": f"{self.added_at:%Y-%m-%d %H:%M}"}

    @property
    def remaining(self) -> int:
        """The licenses this lot still holds: those not removed (Q2) or moved away by an upgrade (U4) since. The
        lists' queryset form of "has some left" is `removed__lt=F("quantity")` (selectors.open_lots)."""
        return self.quantity - self.removed


class BillingLine(models.Model):
    """Every charge and refund (L2), with the period it covers."""

    class Kind(models.TextChoices):
        PURCHASE = "purchase", _("Purchase")
        INCREASE = "increase", _("Added licenses")
        REDUCTION_REFUND = "reduction_refund", _("License removal refund")
        CANCELLATION_REFUND = "cancellation_refund", _("Cancellation refund")
        RENEWAL = "renewal", _("Renewal")
        CYCLE = "cycle", _("Billing cycle")
        UPGRADE_CREDIT = "upgrade_credit", _("Upgrade credit")

    subscription = models.ForeignKey(
        Subscription, on_delete=models.PROTECT, related_name="billing_lines", verbose_name=_("subscription")
    )
    kind = models.CharField(max_length=20, choices=Kind.choices, verbose_name=_("kind"))
    amount = models.DecimalField(max_digits=12, decimal_places=2, verbose_name=_("amount"))
    currency = models.CharField(max_length=3, default="USD", verbose_name=_("currency"))
    quantity = models.IntegerField(verbose_name=_("quantity"))
    unit_price = models.DecimalField(max_digits=12, decimal_places=2, verbose_name=_("unit price"))
    period_start = models.DateField(verbose_name=_("period start"))
    period_end = models.DateField(help_text=_("Inclusive."), verbose_name=_("period end"))
    explanation = models.CharField(
        max_length=300, blank=True, help_text=_("The arithmetic, for checking by hand."), verbose_name=_("explanation")
    )
    created_at = models.DateTimeField(verbose_name=_("created at"))

    class Meta:
        verbose_name = _("billing line")
        verbose_name_plural = _("billing lines")
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.amount} {self.currency}"


class AuditEntry(models.Model):
    """Who changed what, when (UTC), before and after (L1)."""

    at = models.DateTimeField(verbose_name=_("at"))
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("actor"),
    )
    partner = models.ForeignKey(
        Partner, on_delete=models.CASCADE, related_name="audit_entries", verbose_name=_("partner")
    )
    customer = models.ForeignKey(
        Customer,
        on_delete=models.CASCADE,
        related_name="audit_entries",
        null=True,
        blank=True,
        verbose_name=_("customer"),
    )
    order = models.ForeignKey(
        Order, on_delete=models.CASCADE, related_name="audit_entries", null=True, blank=True, verbose_name=_("order")
    )
    subscription = models.ForeignKey(
        Subscription,
        on_delete=models.CASCADE,
        related_name="audit_entries",
        null=True,
        blank=True,
        verbose_name=_("subscription"),
    )
    action = models.CharField(max_length=60, verbose_name=_("action"))
    summary = models.CharField(max_length=300, verbose_name=_("summary"))
    # The message `summary` was said from, with its values (subscriptions.said): what the pages say in the reader's
    # language. Empty for the rows written before it was kept (and for a plain sentence): those show `summary`.
    summary_message = models.JSONField(
        null=True, blank=True, default=None, editable=False, verbose_name=_("summary message")
    )
    before = models.JSONField(default=dict, blank=True, verbose_name=_("before"))
    after = models.JSONField(default=dict, blank=True, verbose_name=_("after"))
    # The webhooks' outbox marker (api.webhooks.dispatch_events): empty until the dispatcher has made this entry's
    # deliveries. A marker on the row, not a cursor over pks: pks are taken when a transaction inserts but seen
    # when it commits, so a long transaction's entry can become visible below a cursor that already moved past it
    # (and the lifecycle engine writes with bulk_create, so no signal sees its entries). The partial index holds
    # only the entries not yet dispatched, so the dispatcher's scan stays as small as its backlog.
    webhooks_dispatched_at = models.DateTimeField(
        null=True, blank=True, editable=False, verbose_name=_("webhooks dispatched at")
    )

    class Meta:
        ordering = ["-at", "-pk"]
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit entries")
        indexes = [
            models.Index(fields=["customer", "-at"]),
            models.Index(fields=["id"], name="audit_webhooks_undispatched", condition=Q(webhooks_dispatched_at=None)),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} UTC {self.action}"

    @property
    def summary_text(self) -> str:
        """The summary in the active language; the English sentence as stored for a row without a message, or one
        whose message cannot be said (a stored message this code does not read): never an error page."""
        if not self.summary_message:
            return self.summary
        try:
            return str(said.from_json(self.summary_message))
        except (KeyError, TypeError, ValueError, IndexError, AttributeError):
            return self.summary

    @property
    def readable_before(self) -> list[tuple[str, str]]:
        """The values before the change as a person reads them ("Term: 1 month", not "term: P1M"), in one order
        whatever the database (PostgreSQL's jsonb keeps no order of its own)."""
        return readable(self.before)

    @property
    def readable_after(self) -> list[tuple[str, str]]:
        return readable(self.after)


# The names of the values the services record (before, after), as the pages call them; any other is its key in words.
# The keys are the audit JSON's (machine values, never translated); the labels are lazy, said in the page's language.
AUDIT_LABELS = {
    "quantity": _("Quantity"),
    "auto_renew": _("Auto-renew"),
    "friendly_name": _("Name"),
    "status": _("Status"),
    "term": _("Term"),
    "billing_frequency": _("Billing frequency"),
    "next_charge_frequency": _("Billing frequency from the next charge"),
    "next_charge_on": _("Next charge"),
    "unit_price": _("Unit price"),
    "is_trial": _("Trial"),
    "term_start": _("Term start"),
    "term_end": _("Term end"),
    "renewal_completed_at": _("Renewal completed"),
    "expires_at": _("Expires"),
    "addon": _("Add-on"),
    "into": _("Into"),
    "to": _("Into"),
    "from": _("From"),
    "sku": _("Offer"),
    "converted_into": _("Converted into"),
    "converted_from": _("Converted from"),
    "aligned_end_date": _("Aligned end date"),
    "amount": _("Amount"),
    "charge": _("Charge"),
    "refund": _("Refund"),
    # an order placed (catalog.checkout)
    "order": _("Order"),
    "total": _("Total"),
    "attested_as": _("Attested as"),
    "reseller": _("Reseller of record"),
    "additional_resellers": _("Additional resellers"),
    # a customer added (portal.customers)
    "company_name": _("Company name"),
    "domain": _("Primary domain"),
    "billing_country": _("Billing country"),
    "segment": _("Segment"),
    "eu_efta": _("EU/EFTA"),
    "mca_accepted_by": _("MCA accepted by"),
    "mca_accepted_on": _("MCA accepted on"),
    # relationship and transfer requests (subscriptions.transfers)
    "id": _("Request ID"),
    "by": _("By"),
    "verb": _("Action"),
    "subscriptions": _("Subscriptions"),
}


def audit_choices(key: str) -> tuple:
    """The choices a value recorded under `key` is one of, for its words: a status (a subscription's, a transfer
    request's, a relationship request's), an attestation, a segment; for any other key a term, a billing frequency
    or a subscription's status, whichever it is."""
    if key == "status":
        return (Status, TransferRequest.Status, RelationshipRequest.Status)
    if key == "attested_as":
        return (Order.Attestation,)
    if key == "segment":
        return (Customer.Segment,)
    return (Term, BillingFrequency, Status)


# How a transfer request ended when a partner cancelled it (transfers.cancel_transfer): the requester withdrew it,
# or the partner asked declined it.
TRANSFER_ENDINGS = {"withdrawn": _("withdrawn"), "declined": _("declined")}


def readable(values: dict) -> list[tuple[str, str]]:
    """Recorded values in the order of AUDIT_LABELS (the rest after them, by name), each as the pages name it."""
    known = list(AUDIT_LABELS)
    ordered = sorted(
        values.items(), key=lambda item: (known.index(item[0]) if item[0] in known else len(known), item[0])
    )
    return [(audit_label(key), audit_value(key, value)) for key, value in ordered]


def audit_label(key: str) -> str:
    # A key without a label (one a future service records) is shown as its words, untranslated: better than nothing.
    return str(AUDIT_LABELS.get(key) or key.replace("_", " ").capitalize())


def audit_value(key: str, value) -> str:
    """A recorded value in the words the pages use: a term as "1 month", a status or a billing frequency by its
    name, on/off, a time in UTC."""
    if value is None or value == "":
        return gettext("none")
    if isinstance(value, bool):
        if key == "auto_renew":
            return gettext("On") if value else gettext("Off")
        return gettext("Yes") if value else gettext("No")
    if isinstance(value, list):
        return str(said.listed(audit_value(key, item) for item in value))  # as the language lists (", ", "、")
    if not isinstance(value, str):
        return str(value)
    for choices in audit_choices(key):
        if value in choices.values:
            return str(choices(value).label)
    if key == "verb" and value in TRANSFER_ENDINGS:
        return str(TRANSFER_ENDINGS[value])
    if len(value) > 10 and value[4:5] == "-" and value[10:11] == "T":
        try:
            return f"{datetime.fromisoformat(value).astimezone(UTC):%Y-%m-%d %H:%M} UTC"
        except ValueError:
            return value
    return value


# --- Transfers between partners (TF1–TF4) -------------------------------------------------------


class ExpiresWhilePending:
    """A request that is pending until `expires_at`, and after that shows (and acts) as expired (TF1, TF4)."""

    def status_at(self, now) -> str:
        if self.status == self.Status.PENDING and now >= self.expires_at:
            return self.Status.EXPIRED
        return self.status

    def status_label_at(self, now) -> str:
        return self.Status(self.status_at(now)).label


class RelationshipRequest(ExpiresWhilePending, models.Model):
    """TF1: a partner asks a customer (known by its domain) to accept it as a new partner.

    The customer accepts through a signed link e-mailed to `contact_email` (subscriptions.transfers), never
    in a partner's session; until then nothing about the domain is looked up, so a request to a domain some
    other partner serves looks and behaves exactly like one to a domain nobody serves."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        ACCEPTED = "accepted", _("Accepted")
        # Never stored: a pending request past `expires_at` shows (and acts) as expired.
        EXPIRED = "expired", _("Expired")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False, verbose_name=_("ID"))
    target_partner = models.ForeignKey(
        Partner, on_delete=models.CASCADE, related_name="relationship_requests", verbose_name=_("target partner")
    )
    company_name = models.CharField(max_length=200, verbose_name=_("company name"))
    domain = models.CharField(max_length=200, verbose_name=_("domain"))
    # Where the acceptance link goes: an address at `domain`. Blank only on requests sent before links existed.
    contact_email = models.EmailField(blank=True, verbose_name=_("contact email"))
    # Filled when the customer accepts: the partner's new customer row and its tenant id.
    tenant_id = models.UUIDField(null=True, blank=True, db_index=True, verbose_name=_("tenant ID"))
    customer = models.ForeignKey(
        Customer, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("customer")
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, verbose_name=_("status"))
    created_at = models.DateTimeField(verbose_name=_("created at"))
    # TF1: the acceptance link works until then (stored, like a transfer request's expiry, so the page shows it).
    expires_at = models.DateTimeField(verbose_name=_("expires at"))
    accepted_at = models.DateTimeField(null=True, blank=True, verbose_name=_("accepted at"))

    class Meta:
        verbose_name = _("relationship request")
        verbose_name_plural = _("relationship requests")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.target_partner.name} → {self.domain} ({self.get_status_display()})"


class TransferRequest(ExpiresWhilePending, models.Model):
    """TF2–TF4: the target partner asks the source partner to hand over a customer's subscriptions."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        COMPLETED = "completed", _("Completed")
        EXPIRED = "expired", _("Expired")
        CANCELLED = "cancelled", _("Cancelled")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False, verbose_name=_("ID"))
    source_partner = models.ForeignKey(
        Partner, on_delete=models.PROTECT, related_name="outgoing_transfers", verbose_name=_("source partner")
    )
    target_partner = models.ForeignKey(
        Partner, on_delete=models.PROTECT, related_name="incoming_transfers", verbose_name=_("target partner")
    )
    tenant_id = models.UUIDField(db_index=True, verbose_name=_("tenant ID"))
    source_customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="+", verbose_name=_("source customer")
    )
    target_customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="+", verbose_name=_("target customer")
    )
    notification_email = models.EmailField(verbose_name=_("notification email"))
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, verbose_name=_("status"))
    created_at = models.DateTimeField(verbose_name=_("created at"))
    expires_at = models.DateTimeField(verbose_name=_("expires at"))
    completed_at = models.DateTimeField(null=True, blank=True, verbose_name=_("completed at"))
    # The source subscriptions the source partner picked, set when the transfer completes.
    subscriptions = models.ManyToManyField(
        Subscription, blank=True, related_name="transfer_requests", verbose_name=_("subscriptions")
    )
    # Exactly once (portal/versions.py): bumped by every change, posted back by every form drawn from it.
    version = models.PositiveIntegerField(default=1, editable=False, verbose_name=_("version"))

    class Meta:
        verbose_name = _("transfer request")
        verbose_name_plural = _("transfer requests")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return gettext("Transfer of %(customer)s from %(source)s to %(target)s") % {
            "customer": self.source_customer,
            "source": self.source_partner.name,
            "target": self.target_partner.name,
        }
