"""The only way a view reaches tenant data: scoped to the signed-in partner (T3) and checked
against the user's roles (T1, T2).

Outside the partner's scope an object simply does not exist (404). A role that may not do an
action gets 403 with the reason.
"""

import uuid
from collections.abc import Callable
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, Model, OuterRef, Q, QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext, gettext_lazy

from api.models import WebhookDelivery, WebhookEndpoint
from catalog.models import Cart, CartAdditionalReseller, CartLine, Order, OrderAdditionalReseller, OrderLine
from subscriptions.models import AuditEntry, BillingLine, ScheduledChange, SeatLot, Subscription

from .models import Customer, Membership, Partner, ResellerLink, Role


class Action:
    VIEW = "view"
    BUY = "buy"  # buy, and change subscriptions
    SUSPEND = "suspend"  # suspend / reactivate
    AUTO_RENEW = "auto_renew"


# T2: which roles may take which action.
ROLES_FOR_ACTION: dict[str, set[str]] = {
    Action.VIEW: {Role.ADMIN_AGENT, Role.SALES_AGENT, Role.BILLING_ADMIN, Role.SUPPORT_AGENT},
    Action.BUY: {Role.ADMIN_AGENT, Role.SALES_AGENT},
    Action.SUSPEND: {Role.ADMIN_AGENT, Role.SALES_AGENT, Role.BILLING_ADMIN},
    Action.AUTO_RENEW: {Role.ADMIN_AGENT, Role.SALES_AGENT, Role.BILLING_ADMIN},
}

# The refusal of each action to a role without it, a whole sentence per action (a translation can't be pieced
# together from an action's and the roles' names); each names the roles ROLES_FOR_ACTION lets take it.
ROLE_REFUSALS = {
    Action.BUY: gettext_lazy("Your role can't buy or change subscriptions: ask an admin agent or sales agent."),
    Action.SUSPEND: gettext_lazy(
        "Your role can't suspend or reactivate subscriptions: ask an admin agent or billing admin or sales agent."
    ),
    Action.AUTO_RENEW: gettext_lazy(
        "Your role can't change auto-renew: ask an admin agent or billing admin or sales agent."
    ),
}

RESELLER_NOTICE = gettext_lazy(
    "Indirect resellers can't buy or change subscriptions here: contact your indirect provider."
)


@dataclass(frozen=True)
class Permission:
    allowed: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.allowed


def membership(user) -> Membership:
    """The signed-in user's membership; staff without one see no tenant data."""
    if not user.is_authenticated:
        raise PermissionDenied(gettext("Sign in first."))
    try:
        return user.membership
    except Membership.DoesNotExist:
        raise PermissionDenied(gettext("Your account does not belong to a partner.")) from None


def partner_of(user) -> Partner:
    return membership(user).partner


def permission(user, action: str) -> Permission:
    """Whether this user may take this kind of action, and if not why (T1, T2)."""
    member = membership(user)
    if action != Action.VIEW and not member.partner.can_transact:
        # T1: an indirect reseller is read-only.
        return Permission(False, str(RESELLER_NOTICE))
    if member.roles & ROLES_FOR_ACTION[action]:
        return Permission(True)
    return Permission(False, str(ROLE_REFUSALS[action]))


def require(user, action: str) -> Membership:
    perm = permission(user, action)
    if not perm:
        raise PermissionDenied(perm.reason)
    return membership(user)


def require_serves(user, customer: Customer) -> None:
    """T3 in the services too: staff act only on their own partner's customers. The pages and the admin scope
    before they call a service; this holds for any caller that didn't (a script, a future API)."""
    if customer.partner_id != partner_of(user).pk:
        raise PermissionDenied(gettext("This customer is not one of your partner's customers."))


def customers_for(user):
    """T3: a partner's own customers; for a reseller, those it is reseller of record for."""
    return partner_customers(partner_of(user))


def partner_customers(partner: Partner) -> QuerySet:
    """`customers_for` a partner."""
    if partner.is_reseller:
        # The customer's reseller of record, or the reseller of record of any of its subscriptions
        # or orders (K4).
        resold = Subscription.objects.filter(customer=OuterRef("pk"), reseller=partner)
        ordered = Order.objects.filter(customer=OuterRef("pk"), reseller=partner)
        return Customer.objects.filter(Q(reseller=partner) | Q(Exists(resold)) | Q(Exists(ordered)))
    return Customer.objects.filter(partner=partner)


def partner_subscriptions(partner: Partner) -> QuerySet:
    """The subscriptions of all a partner's customers (by the copy of the customer's partner on each subscription,
    which the lists' indexes start with); a reseller's: those it is reseller of record for (T1, T3)."""
    if partner.is_reseller:
        return Subscription.objects.filter(reseller=partner)
    return Subscription.objects.filter(partner=partner)


def orders_for(user):
    return partner_orders(partner_of(user))


def partner_orders(partner: Partner):
    """A partner's orders; a reseller's: those it is the reseller of (T1, K4)."""
    if partner.is_reseller:
        return Order.objects.filter(reseller=partner)
    return Order.objects.filter(customer__partner=partner)


def customer_orders(user, customer: Customer):
    """A customer's orders; a reseller sees only those it is the reseller of (T1)."""
    partner = partner_of(user)
    orders = Order.objects.filter(customer=customer)
    return orders.filter(reseller=partner) if partner.is_reseller else orders


def customer_subscriptions(user, customer: "Customer | OuterRef", subscriptions: QuerySet | None = None):
    """A customer's subscriptions (`customer` got through `get_customer`), of `subscriptions` if given (with what a
    page reads of them); a reseller sees only those it is reseller of record for (T1)."""
    partner = partner_of(user)
    subscriptions = (Subscription.objects.all() if subscriptions is None else subscriptions).filter(customer=customer)
    return subscriptions.filter(reseller=partner) if partner.is_reseller else subscriptions


def customer_activity(user, customer: Customer):
    """A customer's audit trail; a reseller sees the entries of its own orders and subscriptions."""
    partner = partner_of(user)
    entries = AuditEntry.objects.filter(customer=customer)
    if partner.is_reseller:
        entries = entries.filter(Q(subscription__reseller=partner) | Q(order__reseller=partner))
    return entries


def get_customer(user, customer_id) -> Customer:
    """The customer, if this user's partner may see it (T3); else 404, also for an id that is no UUID."""
    return get_object_or_404(customers_for(user), pk=_uuid_or_404(customer_id))


def _uuid_or_404(value) -> uuid.UUID:
    # The lookup would raise ValidationError (a 500) for text that is no UUID: such an id names nothing.
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError:
        raise Http404(gettext("No such object.")) from None


def get_order(user, customer: Customer, order_id) -> Order:
    return get_object_or_404(customer_orders(user, customer).select_related("placed_by", "reseller"), pk=order_id)


def get_cart(user, customer: Customer, cart_id) -> Cart:
    """A cart is seen only by the staff user who owns it, inside its customer."""
    return get_object_or_404(Cart.objects.filter(customer=customer, owner=user), pk=cart_id)


def check_cart_line(cart: Cart, line_id) -> None:
    """A line of someone else's cart does not exist for this user (404). A line that no longer
    exists at all is left to the service, which answers that the page is stale (409)."""
    if not cart.lines.filter(pk=line_id).exists() and CartLine.objects.filter(pk=line_id).exists():
        raise Http404(gettext("No such cart line."))


def subscriptions_for(user):
    """The subscriptions of all the partner's customers; a reseller's: those it is reseller of record for."""
    return partner_subscriptions(partner_of(user))


def get_subscription(user, customer: Customer, subscription_id, queryset: QuerySet | None = None) -> Subscription:
    """The customer's subscription as this user may see it (T1, T3), else 404; read from `queryset` (the
    subscriptions with what a page reads of them: select_related, prefetch_related) if given."""
    return get_object_or_404(customer_subscriptions(user, customer, queryset), pk=_uuid_or_404(subscription_id))


# --- The Django admin (portal.admin_site) ------------------------------------------------------
# The admin reaches every table, so it is scoped here like every page: the platform operator sees
# everything; a partner's staff member with admin access sees their own partner's rows, found by each
# model's path to the partner below (T1, T3). Issue 9 finding 4: unscoped, a Northwind user listed every
# partner's subscriptions and changed another partner's.


def is_operator(user) -> bool:
    """The platform operator: an active superuser. Belongs to no partner (its demo sign-in has no membership)."""
    return user.is_active and user.is_superuser


def partner_carts(partner: Partner):
    # A reseller buys nothing (T1), so it has no carts: a provider's open cart naming it is the provider's draft.
    return Cart.objects.none() if partner.is_reseller else Cart.objects.filter(customer__partner=partner)


def partner_activity(partner: Partner):
    """A partner's audit trail: the entries written for it; a reseller's, those of its own orders and subscriptions
    (as `customer_activity`)."""
    if partner.is_reseller:
        return AuditEntry.objects.filter(Q(subscription__reseller=partner) | Q(order__reseller=partner))
    return AuditEntry.objects.filter(partner=partner)


def _within(path: str, rows) -> Q:
    return Q(**{f"{path}__in": rows.values("pk")})


# Each model's path to the partner it belongs to: a function of the partner giving the model's rows as a Q. A row
# belongs to a partner through the customer, cart, order or subscription it hangs from, each scoped as the portal's
# pages scope it. Models without a path belong to no partner (the catalog) or only to the platform (users, groups,
# the task queue); the admin decides what partner staff see of those (portal.admin_site).
PARTNER_PATHS: dict[type[Model], Callable[[Partner], Q]] = {
    # Its own record only: which partners it works with are its reseller links.
    Partner: lambda p: Q(pk=p.pk),
    ResellerLink: lambda p: Q(provider=p) | Q(reseller=p),
    Membership: lambda p: Q(partner=p),
    # Its staff (a membership's user; a cart's owner, an order's placer): never another partner's or the operator.
    get_user_model(): lambda p: Q(membership__partner=p),
    Customer: lambda p: _within("pk", partner_customers(p)),
    Cart: lambda p: _within("pk", partner_carts(p)),
    CartLine: lambda p: _within("cart", partner_carts(p)),
    CartAdditionalReseller: lambda p: _within("cart", partner_carts(p)),
    Order: lambda p: _within("pk", partner_orders(p)),
    OrderLine: lambda p: _within("order", partner_orders(p)),
    OrderAdditionalReseller: lambda p: _within("order", partner_orders(p)),
    Subscription: lambda p: _within("pk", partner_subscriptions(p)),
    SeatLot: lambda p: _within("subscription", partner_subscriptions(p)),
    BillingLine: lambda p: _within("subscription", partner_subscriptions(p)),
    ScheduledChange: lambda p: _within("subscription", partner_subscriptions(p)),
    AuditEntry: lambda p: _within("pk", partner_activity(p)),
    # The endpoints a partner registered for its webhooks, and their delivery logs (a reseller registers none: T1).
    WebhookEndpoint: lambda p: Q(partner=p),
    WebhookDelivery: lambda p: Q(endpoint__partner=p),
}


def has_partner_path(model: type[Model]) -> bool:
    return model in PARTNER_PATHS


def partner_records(queryset: QuerySet, partner: Partner) -> QuerySet:
    """The rows of `queryset` that belong to `partner`, whatever the model, by its path above. A model without a
    path raises LookupError rather than answering "all" or "none" silently."""
    try:
        path = PARTNER_PATHS[queryset.model]
    except KeyError:
        raise LookupError(
            f"{queryset.model._meta.label} has no path to a partner (portal.access.PARTNER_PATHS)"
        ) from None
    return queryset.filter(path(partner))
