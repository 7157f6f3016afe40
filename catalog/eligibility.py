"""Why an offer can or cannot be bought by this customer now (C3, C4, C5, K6–K8).

One function, `refusal`, answers for one offer; the catalog page, adding to the cart and the
purchase all call it, so the page never offers what the server refuses. `listing_refusal` is the
part of it that decides whether an offer is listed at all (C3, C5), which the catalog page applies to every
offer's `ListingFacts` (catalog/listing.py) before it loads the page's offers.
"""

import math
from collections import defaultdict
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import CharField, Prefetch, Sum, UUIDField, Value
from django.urls import reverse
from django.utils.formats import number_format
from django.utils.translation import gettext, ngettext

from catalog.models import Availability, Cart, CartLine, OrderLine, Sku
from portal.models import Customer, Partner
from subscriptions import checks
from subscriptions.models import Subscription
from subscriptions.states import LIVE_STATUSES, Status


@dataclass(frozen=True)
class Refusal:
    rule: str
    message: str
    link: str = ""
    link_label: str = ""
    # C3/C5: the offer is not even listed for this customer.
    hidden: bool = False
    # The input it refuses (a cart line's "quantity" or "aligned_end_date"), "" for the offer itself.
    field: str = ""


@dataclass
class BuyingContext:
    """What the rules need to know about a customer, fetched once per request."""

    customer: Customer
    partner: Partner
    cart_sku_ids: set[int] = field(default_factory=set)
    # sku id -> the customer's live subscriptions of it: (subscription id, status)
    live: dict[int, list[tuple]] = field(default_factory=lambda: defaultdict(list))
    live_count: int = 0

    @property
    def owned_or_in_cart(self) -> set[int]:
        return set(self.live) | self.cart_sku_ids


_IN_CART = "in_cart"  # marks the cart's rows in buying_context's one query; not a subscription status


def buying_context(customer: Customer, partner: Partner, cart: Cart | None = None) -> BuyingContext:
    """The customer's live subscriptions, pending order lines and (given a cart) carted offers, in one query (a
    UNION ALL of three querysets, each row an offer id, a subscription id or None, and a status or a marker)."""
    ctx = BuyingContext(customer=customer, partner=partner)
    no_subscription = Value(None, output_field=UUIDField())
    holdings = (
        Subscription.objects.filter(customer=customer, status__in=LIVE_STATUSES)
        .values_list("sku_id", "pk", "status")
        .order_by()
    )
    # Lines of orders placed but not yet fulfilled are subscriptions about to exist (C4a, K8).
    ordered = (
        OrderLine.objects.filter(order__customer=customer, status=OrderLine.Status.PENDING)
        .annotate(no_subscription=no_subscription, marker=Value(Status.PENDING.value, output_field=CharField()))
        .values_list("sku_id", "no_subscription", "marker")
        .order_by()
    )
    parts = [ordered]
    if cart is not None:
        parts.append(
            CartLine.objects.filter(cart=cart)
            .annotate(no_subscription=no_subscription, marker=Value(_IN_CART, output_field=CharField()))
            .values_list("availability__sku_id", "no_subscription", "marker")
            .order_by()
        )
    for sku_id, sub_id, status in holdings.union(*parts, all=True).order_by():
        if status == _IN_CART:
            ctx.cart_sku_ids.add(sku_id)
        else:
            ctx.live[sku_id].append((sub_id, status))
            ctx.live_count += 1
    return ctx


@dataclass(frozen=True, slots=True)
class ListingFacts:
    """What `listing_refusal` reads of one offer (C3, C5, A1): few enough columns to read for every offer of the
    catalog in one plain query (catalog/listing.py), so only the page's offers are loaded as models."""

    pk: int
    segments: tuple[str, ...]
    commerce: str
    is_addon: bool
    base_ids: frozenset[int]
    base_names: tuple[str, ...]  # sorted
    countries: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class OfferFacts(ListingFacts):
    """What the rules read about one offer, from a loaded `Sku` (`of`)."""

    is_isv: bool
    offered_through_csp: bool
    exclusive_ids: frozenset[int]
    transactable_in_portal: bool
    one_per_customer: bool
    is_trial: bool

    @classmethod
    def of(cls, sku: Sku) -> "OfferFacts":
        bases = list(sku.base_skus.all()) if sku.is_addon else []
        is_isv = sku.is_isv
        return cls(
            pk=sku.pk,
            segments=tuple(sku.segment_list),
            commerce=sku.commerce,
            is_addon=sku.is_addon,
            base_ids=frozenset(b.pk for b in bases),
            base_names=tuple(sorted(b.name for b in bases)),
            countries=tuple(sku.country_list),
            is_isv=is_isv,
            offered_through_csp=sku.offered_through_csp,
            exclusive_ids=frozenset(p.pk for p in sku.exclusive_partners.all()) if is_isv else frozenset(),
            transactable_in_portal=sku.transactable_in_portal,
            one_per_customer=sku.one_per_customer,
            is_trial=sku.is_trial,
        )


def _n(number: int) -> str:
    """A count as the active language groups it: 1,250."""
    return number_format(number, force_grouping=True)


def _segment_name(code: str) -> str:
    """A segment's name inside a sentence ("education"); an unknown code as it is."""
    try:
        return str(Customer.Segment(code).label).lower()
    except ValueError:
        return code


def listing_refusal(offer: ListingFacts, ctx: BuyingContext) -> Refusal | None:
    """The rules that keep an offer off this customer's catalog altogether (C3, C5, A1); `refusal` applies them first.

    It reads only the customer's segment and billing country and the offers it owns or has in the cart
    (`ctx.live`, `ctx.cart_sku_ids`), and the offer's `ListingFacts`.
    """
    customer = ctx.customer
    # C3: sold to the customer's segment only.
    if customer.segment not in offer.segments:
        segments = gettext(", ").join(_segment_name(code) for code in offer.segments) or gettext("no segment")
        return Refusal(
            "C3",
            gettext("Not sold to %(segment)s customers (sold to: %(segments)s).")
            % {"segment": _segment_name(customer.segment), "segments": segments},
            hidden=True,
        )
    if offer.is_addon:
        # A1: a traditional add-on is bought from its base subscription's page, never from the catalog.
        if offer.commerce == Sku.Commerce.TRADITIONAL:
            return Refusal("A1", gettext("Traditional add-on: buy it from the base subscription's page."), hidden=True)
        # C5: a new-commerce add-on needs an owned (or carted) base offer, in the customer's region.
        if offer.base_ids.isdisjoint(ctx.live) and offer.base_ids.isdisjoint(ctx.cart_sku_ids):
            names = gettext(", ").join(offer.base_names)
            return Refusal(
                "C5",
                gettext("Add-on: the customer needs one of these first: %(offers)s.") % {"offers": names},
                hidden=True,
            )
        if offer.countries and customer.billing_country not in offer.countries:
            return Refusal(
                "C5",
                gettext("This add-on is not available in %(country)s.") % {"country": customer.country_name},
                hidden=True,
            )
    return None


def refusal(sku: "Sku | OfferFacts", ctx: BuyingContext) -> Refusal | None:
    """The first rule that stops this customer buying this offer now, or None.

    A `Sku` should come with its product, publisher, base_skus and exclusive_partners loaded
    (see `offer_queryset`) so a page of offers costs no query per offer.
    """
    offer = sku if isinstance(sku, OfferFacts) else OfferFacts.of(sku)
    hidden = listing_refusal(offer, ctx)
    if hidden is not None:
        return hidden
    customer, partner = ctx.customer, ctx.partner
    if offer.is_isv:
        # C4d
        if not offer.offered_through_csp:
            return Refusal("C4d", gettext("The publisher does not offer this through the CSP program."))
        # C4e
        if offer.exclusive_ids and partner.pk not in offer.exclusive_ids:
            return Refusal("C4e", gettext("The publisher made this offer exclusive to other CSP partners."))
        # C4c
        if offer.countries and customer.billing_country not in offer.countries:
            return Refusal(
                "C4c",
                gettext("The publisher does not sell this offer in %(country)s.") % {"country": customer.country_name},
            )
    # C4f
    if not offer.transactable_in_portal:
        return Refusal(
            "C4f",
            gettext(
                "This offer can't be bought here (containers, some consumption offers): buy it in the Azure portal."
            ),
        )
    live = ctx.live.get(offer.pk, [])
    # C4b: a suspended subscription is reactivated, not bought again.
    suspended = [sub_id for sub_id, status in live if status == Status.SUSPENDED and sub_id]
    if suspended:
        return Refusal(
            "C4b",
            gettext("The customer's subscription to this offer is suspended: reactivate it instead."),
            link=reverse("subscriptions:subscription-detail", args=[customer.pk, suspended[0]]),
            link_label=gettext("Open the suspended subscription"),
        )
    # C4a: what checks.customer_holds asks of one offer, over the facts read once for the page: an offer sold once
    # (checks.sold_once) that the customer holds live (ctx.live: LIVE_STATUSES, and the lines of orders placed but
    # not fulfilled yet), or has in the cart.
    if checks.sold_once(offer) and (live or offer.pk in ctx.cart_sku_ids):
        if live:
            return Refusal("C4a", gettext("The customer already has this offer and only one subscription is allowed."))
        return Refusal(
            "C4a", gettext("The customer already has in the cart this offer and only one subscription is allowed.")
        )
    return None


def offer_queryset():
    # Only what the rules and the cards read: these run for every page of the catalog.
    return Sku.objects.select_related("product__publisher").prefetch_related(
        Prefetch("base_skus", queryset=Sku.objects.only("id", "name").order_by()),
        Prefetch("exclusive_partners", queryset=Partner.objects.only("id").order_by()),
        Prefetch("availabilities", queryset=Availability.objects.order_by()),
    )


def _licenses(sku_ids: list[int], customer: Customer, cart_quantities: dict[int, int]) -> int:
    """Licenses of these offers the customer holds with every partner, has ordered, and has in the cart."""
    owned = (
        Subscription.objects.filter(
            customer__tenant_id=customer.tenant_id, sku_id__in=sku_ids, status__in=LIVE_STATUSES
        ).aggregate(n=Sum("quantity"))["n"]
        or 0
    )
    ordered = (
        OrderLine.objects.filter(
            order__customer__tenant_id=customer.tenant_id, sku_id__in=sku_ids, status=OrderLine.Status.PENDING
        ).aggregate(n=Sum("quantity"))["n"]
        or 0
    )
    return owned + ordered + sum(q for sku_id, q in cart_quantities.items() if sku_id in sku_ids)


def base_licenses(sku: Sku, customer: Customer, cart_quantities: dict[int, int]) -> int:
    """K6/K7: the customer's licenses of the add-on's base offers, with every partner, plus the cart."""
    return _licenses([b.pk for b in sku.base_skus.all()], customer, cart_quantities)


def quantity_refusal(sku: Sku, quantity: int, *, customer: Customer, cart_quantities: dict[int, int]) -> Refusal | None:
    """K8 minimum/maximum, and the add-on limits K6 and K7 (on the add-on's total: held + ordered + this line)."""
    out_of_range = sku.quantity_refusal(quantity)
    if out_of_range:
        return Refusal("K8", out_of_range)
    if sku.addon_limit:
        base = base_licenses(sku, customer, cart_quantities)
        held = _licenses([sku.pk], customer, {})
        total = held + quantity
        numbers = {"offer": sku.name, "held": _n(held), "base": _n(base)}
        if sku.addon_limit == Sku.AddonLimit.MIN_5_PERCENT_OF_BASE:
            minimum = math.ceil(base * 5 / 100)  # K6: 5%, rounded up
            if total < minimum:
                numbers["minimum"] = _n(minimum)
                if held:
                    text = gettext(
                        "%(offer)s needs at least %(minimum)s licenses (the customer already has %(held)s): 5%% of "
                        "the customer's %(base)s base licenses, rounded up."
                    )
                else:
                    text = gettext(
                        "%(offer)s needs at least %(minimum)s licenses: 5%% of the customer's %(base)s base "
                        "licenses, rounded up."
                    )
                return Refusal("K6", text % numbers)
        if sku.addon_limit == Sku.AddonLimit.MAX_BASE and total > base:
            if held:
                text = gettext(
                    "%(offer)s can have at most %(base)s licenses (the customer already has %(held)s): the "
                    "customer's base licenses with every partner and in this cart."
                )
            else:
                text = gettext(
                    "%(offer)s can have at most %(base)s licenses: the customer's base licenses with every partner "
                    "and in this cart."
                )
            return Refusal("K7", text % numbers)
    return None


def subscription_limit_refusal(ctx: BuyingContext, new_lines: int) -> Refusal | None:
    """K8: the configured maximum number of subscriptions per customer."""
    limit = settings.CSP_MAX_SUBSCRIPTIONS_PER_CUSTOMER
    if ctx.live_count + new_lines > limit:
        return Refusal(
            "K8",
            ngettext(
                "This purchase would give the customer %(count)s subscription; the limit is %(limit)s.",
                "This purchase would give the customer %(count)s subscriptions; the limit is %(limit)s.",
                ctx.live_count + new_lines,
            )
            % {"count": _n(ctx.live_count + new_lines), "limit": _n(limit)},
        )
    return None


def addons_for(base: Subscription) -> list[Sku]:
    """A3: the traditional add-ons of the base subscription's offer that its customer may buy from the base's page:
    sold to the customer's segment (C3) and region (C5), for the base's term and billing frequency (A5: only those can
    end with it), by name; each with its product, publisher and availabilities."""
    customer = base.customer
    candidates = (
        Sku.objects.filter(base_skus=base.sku_id, is_addon=True, commerce=Sku.Commerce.TRADITIONAL)
        .filter(availabilities__term=base.term, availabilities__billing_frequency=base.billing_frequency)
        .distinct()
        .select_related("product__publisher")
        .prefetch_related(
            Prefetch("availabilities", queryset=Availability.objects.order_by("term", "billing_frequency"))
        )
        .order_by("name", "pk")
    )
    return [
        sku
        for sku in candidates
        if customer.segment in sku.segment_list
        and (not sku.country_list or customer.billing_country in sku.country_list)
    ]
