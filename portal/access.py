"""The only way a view reaches tenant data: scoped to the signed-in partner (T3) and checked
against the user's roles (T1, T2).

Outside the partner's scope an object simply does not exist (404). A role that may not do an
action gets 403 with the reason.
"""

from dataclasses import dataclass

from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, Q
from django.http import Http404
from django.shortcuts import get_object_or_404

from catalog.models import Cart, CartLine, Order
from subscriptions.models import AuditEntry, Subscription

from .models import Customer, Membership, Partner, Role


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

ACTION_LABELS = {
    Action.BUY: "buy or change subscriptions",
    Action.SUSPEND: "suspend or reactivate subscriptions",
    Action.AUTO_RENEW: "change auto-renew",
}

RESELLER_NOTICE = "Indirect resellers can't buy or change subscriptions here: contact your indirect provider."


@dataclass(frozen=True)
class Permission:
    allowed: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.allowed


def membership(user) -> Membership:
    """The signed-in user's membership; staff without one see no tenant data."""
    if not user.is_authenticated:
        raise PermissionDenied("Sign in first.")
    try:
        return user.membership
    except Membership.DoesNotExist:
        raise PermissionDenied("Your account does not belong to a partner.") from None


def partner_of(user) -> Partner:
    return membership(user).partner


def permission(user, action: str) -> Permission:
    """Whether this user may take this kind of action, and if not why (T1, T2)."""
    member = membership(user)
    if action != Action.VIEW and not member.partner.can_transact:
        # T1: an indirect reseller is read-only.
        return Permission(False, RESELLER_NOTICE)
    if member.roles & ROLES_FOR_ACTION[action]:
        return Permission(True)
    needed = " or ".join(sorted(Role(r).label.lower() for r in ROLES_FOR_ACTION[action]))
    return Permission(False, f"Your role can't {ACTION_LABELS[action]}: ask an {needed}.")


def require(user, action: str) -> Membership:
    perm = permission(user, action)
    if not perm:
        raise PermissionDenied(perm.reason)
    return membership(user)


def customers_for(user):
    """T3: a partner's own customers; for a reseller, those it is reseller of record for."""
    partner = partner_of(user)
    if partner.is_reseller:
        # The customer's reseller of record, or the reseller of record of any of its subscriptions
        # or orders (K4).
        resold = Subscription.objects.filter(customer=OuterRef("pk"), reseller=partner)
        ordered = Order.objects.filter(customer=OuterRef("pk"), reseller=partner)
        return Customer.objects.filter(Q(reseller=partner) | Q(Exists(resold)) | Q(Exists(ordered)))
    return Customer.objects.filter(partner=partner)


def orders_for(user):
    partner = partner_of(user)
    if partner.is_reseller:
        return Order.objects.filter(reseller=partner)
    return Order.objects.filter(customer__partner=partner)


def customer_orders(user, customer: Customer):
    """A customer's orders; a reseller sees only those it is the reseller of (T1)."""
    partner = partner_of(user)
    orders = Order.objects.filter(customer=customer)
    return orders.filter(reseller=partner) if partner.is_reseller else orders


def customer_subscriptions(user, customer: Customer):
    """A customer's subscriptions; a reseller sees only those it is reseller of record for (T1)."""
    partner = partner_of(user)
    subscriptions = Subscription.objects.filter(customer=customer)
    return subscriptions.filter(reseller=partner) if partner.is_reseller else subscriptions


def customer_activity(user, customer: Customer):
    """A customer's audit trail; a reseller sees the entries of its own orders and subscriptions."""
    partner = partner_of(user)
    entries = AuditEntry.objects.filter(customer=customer)
    if partner.is_reseller:
        entries = entries.filter(Q(subscription__reseller=partner) | Q(order__reseller=partner))
    return entries


def get_customer(user, customer_id) -> Customer:
    return get_object_or_404(customers_for(user), pk=customer_id)


def get_order(user, customer: Customer, order_id) -> Order:
    return get_object_or_404(customer_orders(user, customer).select_related("placed_by", "reseller"), pk=order_id)


def get_cart(user, customer: Customer, cart_id) -> Cart:
    """A cart is seen only by the staff user who owns it, inside its customer."""
    return get_object_or_404(Cart.objects.filter(customer=customer, owner=user), pk=cart_id)


def check_cart_line(cart: Cart, line_id) -> None:
    """A line of someone else's cart does not exist for this user (404). A line that no longer
    exists at all is left to the service, which answers that the page is stale (409)."""
    if not cart.lines.filter(pk=line_id).exists() and CartLine.objects.filter(pk=line_id).exists():
        raise Http404("No such cart line.")


def subscriptions_for(user):
    partner = partner_of(user)
    if partner.is_reseller:
        return Subscription.objects.filter(reseller=partner)
    return Subscription.objects.filter(customer__partner=partner)


def get_subscription(user, customer: Customer, subscription_id) -> Subscription:
    return get_object_or_404(customer_subscriptions(user, customer), pk=subscription_id)

