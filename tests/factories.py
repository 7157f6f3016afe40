"""factory-boy factories with traits for the states tests need."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model

from catalog.models import TERM_MONTHS, TRIAL_LICENSES, Availability, Cart, CartLine, Product, Publisher, Sku
from portal.models import Customer, Membership, Partner, ResellerLink
from subscriptions.dates import start_of_day, term_end_for
from subscriptions.models import SeatLot, Subscription, fill_list_names
from subscriptions.states import Status

PASSWORD = "test-pass-123"
BASE_TIME = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


class PartnerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Partner

    name = factory.Sequence(lambda n: f"Partner {n}")
    partner_id = factory.Sequence(lambda n: f"{5100000 + n}")
    kind = Partner.Kind.DIRECT_BILL
    country = "US"
    mpa_signed = True


class ResellerLinkFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ResellerLink

    provider = factory.SubFactory(PartnerFactory, kind=Partner.Kind.INDIRECT_PROVIDER)
    reseller = factory.SubFactory(PartnerFactory, kind=Partner.Kind.INDIRECT_RESELLER)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = "Pat"
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def saved(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    partner = factory.SubFactory(PartnerFactory)
    is_admin_agent = False
    is_sales_agent = False
    is_billing_admin = False
    is_support_agent = False

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        roles = ("is_admin_agent", "is_sales_agent", "is_billing_admin", "is_support_agent")
        if not any(kwargs.get(r) for r in roles):
            kwargs["is_sales_agent"] = True
        return super()._create(model_class, *args, **kwargs)


class StaffFactory(UserFactory):
    membership = factory.RelatedFactory(MembershipFactory, factory_related_name="user")


def staff(partner: Partner, role: str = "sales_agent"):
    """A signed-in-able staff user of `partner` holding one role."""
    user = UserFactory()
    MembershipFactory(user=user, partner=partner, **{f"is_{role}": True})
    return user


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    partner = factory.SubFactory(PartnerFactory)
    company_name = factory.Sequence(lambda n: f"Customer {n} Ltd")
    domain = factory.Sequence(lambda n: f"customer{n}.example")
    segment = Customer.Segment.COMMERCIAL
    billing_country = "US"


class PublisherFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Publisher
        django_get_or_create = ("name",)

    name = "Microsoft"
    is_microsoft = True


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    product_id = factory.Sequence(lambda n: f"CFQ7TTC0{n:04d}")
    name = factory.Sequence(lambda n: f"Product {n}")
    publisher = factory.SubFactory(PublisherFactory)
    billing_type = Product.BillingType.LICENSE
    category = Product.Category.ENTERPRISE

    class Params:
        isv = factory.Trait(
            publisher=factory.SubFactory(PublisherFactory, name="Fabrikam Software", is_microsoft=False)
        )


class SkuFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Sku
        skip_postgeneration_save = True

    product = factory.SubFactory(ProductFactory)
    sku_id = factory.Sequence(lambda n: f"SKU-{n:05d}")
    name = factory.LazyAttribute(lambda o: o.product.name)
    segments = "commercial,education,government,nonprofit"

    @factory.post_generation
    def availabilities(obj, create, extracted, **kwargs):
        """By default P1Y monthly at 10.00 and P1M monthly at 12.00; pass a list of (term, freq, price)."""
        if not create:
            return
        for term, frequency, price in extracted or [("P1Y", "monthly", "10.00"), ("P1M", "monthly", "12.00")]:
            Availability.objects.create(sku=obj, term=term, billing_frequency=frequency, unit_price=Decimal(price))

    class Params:
        isv = factory.Trait(product=factory.SubFactory(ProductFactory, isv=True))
        trial = factory.Trait(is_trial=True, product=factory.SubFactory(ProductFactory, category="trial"))
        usage = factory.Trait(product=factory.SubFactory(ProductFactory, billing_type="usage"))


def addon_offer(*bases: Sku, name: str, price="4.00", term="P1Y", frequency="monthly", **fields) -> Sku:
    """An add-on offer (C1, A3) of these base offers, traditional unless `commerce` says otherwise, sold for one
    term and billing frequency at `price`."""
    sku = SkuFactory(
        product=ProductFactory(name=name),
        name=name,
        is_addon=True,
        commerce=fields.pop("commerce", Sku.Commerce.TRADITIONAL),
        availabilities=[(term, frequency, price)],
        **fields,
    )
    sku.base_skus.set(bases)
    return sku


def availability(sku: Sku, term: str = "P1Y", frequency: str = "monthly") -> Availability:
    return sku.availabilities.get(term=term, billing_frequency=frequency)


class SubscriptionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Subscription
        skip_postgeneration_save = True

    customer = factory.SubFactory(CustomerFactory)
    sku = factory.SubFactory(SkuFactory)
    availability = factory.LazyAttribute(lambda o: o.sku.availabilities.order_by("-term").first())
    status = Status.ACTIVE
    quantity = 10
    term = factory.LazyAttribute(lambda o: o.availability.term)
    billing_frequency = factory.LazyAttribute(lambda o: o.availability.billing_frequency)
    unit_price = factory.LazyAttribute(lambda o: o.availability.unit_price)
    auto_renew = True
    term_start = BASE_TIME - timedelta(days=30)
    term_end = factory.LazyAttribute(lambda o: term_end_for(o.term_start.date(), 12 if o.term == "P1Y" else 1))
    created_at = factory.LazyAttribute(lambda o: o.term_start)
    one_per_customer = factory.LazyAttribute(lambda o: o.sku.one_per_customer)
    # N6: `renewal_pending=True` is the state where the lifecycle engine has taken the renewal and not finished it
    # (changes answer 409); a field, so it needs no trait.
    renewal_pending = False

    class Params:
        suspended = factory.Trait(status=Status.SUSPENDED, auto_renew=False)
        trial = factory.Trait(is_trial=True, quantity=TRIAL_LICENSES)
        deleted = factory.Trait(status=Status.DELETED, auto_renew=False)
        # Bought a day before BASE_TIME: inside X1's 7-day cancellation window and Q2's removal window.
        in_cancellation_window = factory.Trait(term_start=BASE_TIME - timedelta(days=1))

    @factory.post_generation
    def lot(obj, create, extracted, **kwargs):
        if create:
            SeatLot.objects.create(
                subscription=obj,
                source=SeatLot.Source.PURCHASE,
                quantity=obj.quantity,
                added_at=obj.term_start,
                window_ends_at=obj.term_start + timedelta(hours=168),
            )


def subscribe(
    customer,
    sku,
    *,
    started: datetime,
    quantity: int = 10,
    term: str = "P1Y",
    frequency: str = "monthly",
    unit_price=None,
    **extra,
) -> Subscription:
    """An active subscription of `sku` bought at `started` by `customer` (a new customer when None) for `term`, billed
    `frequency`, at its availability's price (or `unit_price`), its term ending as a purchase's does and its first
    license lot opened at `started`. Test modules fix their own defaults with functools.partial (their `STARTED`,
    their price)."""
    way = availability(sku, term, frequency)
    return SubscriptionFactory(
        customer=customer or CustomerFactory(),
        sku=sku,
        availability=way,
        quantity=quantity,
        term=term,
        billing_frequency=frequency,
        unit_price=way.unit_price if unit_price is None else Decimal(unit_price),
        term_start=started,
        term_end=term_end_for(started.date(), TERM_MONTHS[term]),
        created_at=extra.pop("created_at", started),
        **extra,
    )


def trial_offer(name: str = "Microsoft 365 E3 Trial", **fields) -> Sku:
    """A new-commerce trial offer (TR1): one month billed monthly, free; `trial_of` names its paid SKU."""
    return SkuFactory(trial=True, name=name, availabilities=[("P1M", "monthly", "0.00")], **fields)


def start_trial(customer, sku: Sku | None = None, *, started: datetime, **extra) -> Subscription:
    """An active trial of `sku` (a new trial offer when none) started at `started` by `customer` (a new one when None), as fulfilment starts one (TR1):
    one month, 25 licenses, free, auto-renew on, the trial ending at 00:00 UTC after its inclusive term end."""
    sku = sku or trial_offer()
    term_end = term_end_for(started.date(), 1)
    return SubscriptionFactory(
        customer=customer or CustomerFactory(),
        sku=sku,
        availability=availability(sku, "P1M", "monthly"),
        trial=True,
        term="P1M",
        billing_frequency="monthly",
        unit_price=Decimal("0.00"),
        term_start=started,
        term_end=term_end,
        trial_ends_at=start_of_day(term_end + timedelta(days=1)),
        created_at=extra.pop("created_at", started),
        **extra,
    )


def subscribe_to_offer(customer, offer: str, availabilities=None, **fields) -> Subscription:
    """A subscription of a new offer named `offer` (the lists' and exports' tests tell rows apart by it)."""
    return SubscriptionFactory(customer=customer, sku=SkuFactory(name=offer, availabilities=availabilities), **fields)


class CartFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Cart

    customer = factory.SubFactory(CustomerFactory)
    owner = factory.SubFactory(UserFactory)
    created_at = BASE_TIME


class CartLineFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CartLine

    cart = factory.SubFactory(CartFactory)
    availability = factory.LazyFunction(lambda: availability(SkuFactory()))
    quantity = 5
    added_at = BASE_TIME


from catalog.models import Order, OrderLine  # noqa: E402  (appended with the order factories)


class OrderFactory(factory.django.DjangoModelFactory):
    """A placed order (no cart), pending fulfillment by default."""

    class Meta:
        model = Order

    customer = factory.SubFactory(CustomerFactory)
    placed_by = factory.SubFactory(UserFactory)
    created_at = BASE_TIME
    total = Decimal("120.00")
    currency = "USD"
    attested_as = Order.Attestation.DIRECT

    class Params:
        completed = factory.Trait(status=Order.Status.COMPLETED)


class OrderLineFactory(factory.django.DjangoModelFactory):
    """An order line copied from an availability, like checkout does; pending by default."""

    class Meta:
        model = OrderLine

    order = factory.SubFactory(OrderFactory)
    availability = factory.LazyFunction(lambda: availability(SkuFactory()))
    sku = factory.LazyAttribute(lambda o: o.availability.sku)
    quantity = 12
    term = factory.LazyAttribute(lambda o: o.availability.term)
    billing_frequency = factory.LazyAttribute(lambda o: o.availability.billing_frequency)
    unit_price = factory.LazyAttribute(lambda o: o.availability.unit_price)
    currency = factory.LazyAttribute(lambda o: o.availability.currency)
    # a full first billing period, as checkout quotes it for a line that is not aligned short (K11)
    first_charge = factory.LazyAttribute(lambda o: o.unit_price * o.quantity)

    class Params:
        fulfilled = factory.Trait(status=OrderLine.Status.FULFILLED, fulfilled_at=BASE_TIME)


from subscriptions.models import BillingLine, ScheduledChange  # noqa: E402  (appended with the manage-subscription factories)


class SeatLotFactory(factory.django.DjangoModelFactory):
    """Licenses added to a subscription at `added_at`, removable for 168 hours (Q2)."""

    class Meta:
        model = SeatLot

    subscription = factory.SubFactory(SubscriptionFactory)
    source = SeatLot.Source.INCREASE
    quantity = 5
    removed = 0
    added_at = BASE_TIME
    window_ends_at = factory.LazyAttribute(lambda o: o.added_at + timedelta(hours=168))


class ScheduledChangeFactory(factory.django.DjangoModelFactory):
    """A change scheduled for the renewal (R1); pass kind and the matching field."""

    class Meta:
        model = ScheduledChange

    subscription = factory.SubFactory(SubscriptionFactory)
    kind = ScheduledChange.Kind.QUANTITY
    quantity = 20
    created_at = BASE_TIME - timedelta(days=1)


class BillingLineFactory(factory.django.DjangoModelFactory):
    """A charge already on the subscription (L2), by default its first month in full."""

    class Meta:
        model = BillingLine

    subscription = factory.SubFactory(SubscriptionFactory)
    kind = BillingLine.Kind.PURCHASE
    quantity = factory.LazyAttribute(lambda o: o.subscription.quantity)
    unit_price = factory.LazyAttribute(lambda o: o.subscription.unit_price)
    amount = factory.LazyAttribute(lambda o: o.unit_price * o.quantity)
    currency = "USD"
    period_start = factory.LazyAttribute(lambda o: o.subscription.term_start.date())
    period_end = factory.LazyAttribute(lambda o: o.period_start + timedelta(days=29))
    explanation = factory.LazyAttribute(lambda o: f"{o.unit_price} × {o.quantity}")
    created_at = factory.LazyAttribute(lambda o: o.subscription.term_start)


def lot(subscription, window_ends_at, *, quantity=5, removed=0) -> SeatLot:
    """Licenses added to `subscription` whose 7-day removal window (Q2) closes at `window_ends_at`."""
    return SeatLotFactory(
        subscription=subscription,
        quantity=quantity,
        removed=removed,
        added_at=window_ends_at - timedelta(hours=168),
        window_ends_at=window_ends_at,
    )


def bulk_subscriptions(customers, skus, n: int) -> None:
    """n subscriptions spread over these customers and offers, in every status, each with a license lot whose
    removal window is still open: closing within 48 hours for every third."""
    statuses = ["active", "active", "suspended", "pending", "deleted", "expired"]
    availabilities = {sku.pk: availability(sku) for sku in skus}
    subs = Subscription.objects.bulk_create(
        [
            Subscription(
                customer=customers[i % len(customers)],
                sku=skus[i % len(skus)],
                availability=availabilities[skus[i % len(skus)].pk],
                status=statuses[i % len(statuses)],
                quantity=1 + i % 40,
                term="P1Y",
                billing_frequency="monthly",
                unit_price="10.00",
                auto_renew=i % 4 != 0,
                term_start=BASE_TIME - timedelta(days=i % 300),
                term_end=BASE_TIME.date() + timedelta(days=i % 60),
                created_at=BASE_TIME - timedelta(days=i % 300),
                friendly_name=f"Team {i}" if i % 7 == 0 else "",
            )
            for i in range(n)
        ],
        batch_size=500,
    )
    fill_list_names(Subscription.objects.filter(pk__in=[sub.pk for sub in subs]))  # bulk_create skips save()
    SeatLot.objects.bulk_create(
        [
            SeatLot(
                subscription=sub,
                source=SeatLot.Source.PURCHASE,
                quantity=sub.quantity,
                added_at=BASE_TIME - timedelta(days=1),
                window_ends_at=BASE_TIME + timedelta(hours=24 if i % 3 == 0 else 120),
            )
            for i, sub in enumerate(subs)
        ],
        batch_size=500,
    )


def add_lot(subscription, *, quantity, added_at, removed=0) -> SeatLot:
    """Licenses added mid-term at `added_at` (their own 168-hour window, Q2), `removed` of them removed since,
    reflected in the subscription's quantity."""
    lot = SeatLotFactory(subscription=subscription, quantity=quantity, removed=removed, added_at=added_at)
    Subscription.objects.filter(pk=subscription.pk).update(quantity=subscription.quantity + quantity - removed)
    subscription.refresh_from_db()
    return lot
