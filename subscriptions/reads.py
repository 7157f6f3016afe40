"""The subscription page's reads (S2): the subscription and everything its page shows, in a few prepared queries
(portal.prepared) and, for the offers, from this process's copy of the catalog (catalog.listing).

Read the ordinary way, with select_related and prefetch_related, the page spent far more time building and
compiling its queries than running them. What comes back here is what that read gave: a Subscription whose
offer (with product, publisher and availabilities), reseller, order line and order, base subscription, license
lots, billing lines and scheduled changes (each upgrade's target with its availabilities) are already loaded,
so the page, `actions.allowed_actions` and the services read them without a query.
"""

from functools import partial

from django.contrib.auth import get_user_model
from django.http import Http404

from catalog.listing import catalog_snapshot, prefetched
from catalog.models import Order, OrderLine
from portal import access, prepared
from portal.forms import parse_uuid
from portal.models import Customer, Partner

from .models import AuditEntry, BillingLine, ScheduledChange, SeatLot, Subscription

AUDIT_SHOWN = 100  # the page's audit trail: the latest entries
_AUDIT_FIELDS = tuple(f.attname for f in AuditEntry._meta.concrete_fields)
# What the audit trail shows of who made an entry (the name, else the username), in the user model's field order
_ACTOR_FIELDS = tuple(f.attname for f in get_user_model()._meta.concrete_fields
                      if f.primary_key or f.name in {get_user_model().USERNAME_FIELD, "first_name", "last_name"})
_LINE_FIELDS = tuple(f.attname for f in OrderLine._meta.concrete_fields)
_ORDER_FIELDS = tuple(f.attname for f in Order._meta.concrete_fields)


def subscription_for_page(user, customer: Customer, subscription_id, snapshot=None) -> Subscription:
    """The customer's subscription as this user may see it (T1, T3: else 404), with what its page reads loaded;
    its offers from `snapshot` (the catalog's copy this request read) or the current one."""
    subscription_id = parse_uuid(subscription_id)
    scope = access.subscription_scope(user, customer)
    found = [] if subscription_id is None else prepared.instances(("page-subscription", scope.key), partial(_scoped_one, scope.key),
                               *scope.values, subscription_id)
    if not found:
        raise Http404("No such subscription.")
    subscription = found[0]
    subscription.customer = customer
    snapshot = snapshot or catalog_snapshot()
    # An offer not in this process's copy of the catalog (none, but for a race) is read by the ORM when used.
    subscription.sku = snapshot.sku(subscription.sku_id) or subscription.sku
    if subscription.reseller_id is not None:
        subscription.reseller = _one(Partner, subscription.reseller_id)
    if subscription.order_line_id is not None:
        subscription.order_line = _order_line(subscription.order_line_id)
    if subscription.base_subscription_id is not None:
        base = _one(Subscription, subscription.base_subscription_id)
        base.sku = snapshot.sku(base.sku_id) or base.sku
        subscription.base_subscription = base
    _attach(subscription, "seat_lots", _of_subscription(SeatLot, subscription.pk))
    _attach(subscription, "billing_lines", _of_subscription(BillingLine, subscription.pk))
    changes = _of_subscription(ScheduledChange, subscription.pk)
    for change in changes:
        if change.target_sku_id is not None:
            change.target_sku = snapshot.sku(change.target_sku_id) or change.target_sku
    _attach(subscription, "scheduled_changes", changes)
    return subscription


def addons_of(subscription: Subscription, snapshot=None) -> list[Subscription]:
    """The subscription's add-ons (A1), newest first, each with its offer."""
    snapshot = snapshot or catalog_snapshot()
    addons = prepared.instances(("page-addons",), _addons, subscription.pk)
    for addon in addons:
        addon.sku = snapshot.sku(addon.sku_id) or addon.sku
    return addons


def audit_trail(subscription: Subscription) -> list[AuditEntry]:
    """The subscription's latest audit entries (L1), newest first, each with who made it (a user with only the
    names loaded), or none for the system."""
    User = get_user_model()
    entries = []
    for row in prepared.rows(("page-audit",), _audit_rows, subscription.pk):
        entry = AuditEntry.from_db(AuditEntry.objects.db, _AUDIT_FIELDS, row[: len(_AUDIT_FIELDS)])
        actor = row[len(_AUDIT_FIELDS):]
        entry.actor = User.from_db(User.objects.db, _ACTOR_FIELDS, actor) if entry.actor_id is not None else None
        entries.append(entry)
    return entries


def _order_line(pk) -> OrderLine | None:
    """The order line with its order, in one query."""
    rows = prepared.rows(("page-order-line",), _order_line_rows, pk)
    if not rows:
        return None
    db, split = OrderLine.objects.db, len(_LINE_FIELDS)
    line = OrderLine.from_db(db, _LINE_FIELDS, rows[0][:split])
    line.order = Order.from_db(db, _ORDER_FIELDS, rows[0][split:])
    return line


def _attach(subscription: Subscription, related_name: str, objects: list) -> None:
    for obj in objects:
        obj.subscription = subscription
    prefetched(subscription, related_name, objects)


# Build functions of the prepared queries: markers in the ids' places; the rest is in their keys.

def _scoped_one(scope_key: tuple, *ids):
    return access.scoped_subscriptions(scope_key, *ids[:-1]).filter(pk=ids[-1])


def _one(model, pk):
    found = prepared.instances(("by-pk", model._meta.label), partial(_by_pk, model), pk)
    return found[0] if found else None


def _by_pk(model, pk):
    return model._default_manager.filter(pk=pk)


def _of_subscription(model, subscription_id) -> list:
    return prepared.instances(("of-subscription", model._meta.label), partial(_subscription_rows, model),
                              subscription_id)


def _subscription_rows(model, subscription_id):
    return model._default_manager.filter(subscription_id=subscription_id)  # in the model's ordering


def _order_line_rows(pk):
    return OrderLine.objects.filter(pk=pk).values_list(*_LINE_FIELDS, *(f"order__{name}" for name in _ORDER_FIELDS))


def _addons(subscription_id):
    return Subscription.objects.filter(base_subscription_id=subscription_id)


def _audit_rows(subscription_id):
    actor = tuple(f"actor__{name}" for name in _ACTOR_FIELDS)
    return AuditEntry.objects.filter(subscription_id=subscription_id).values_list(*_AUDIT_FIELDS, *actor)[:AUDIT_SHOWN]
