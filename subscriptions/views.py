from portal.pagination import SmallListPaginator
from django.shortcuts import render

from portal import access

from .models import Subscription
from .states import Status

SORTS = {
    "name": "sku__name", "-name": "-sku__name", "quantity": "quantity", "-quantity": "-quantity",
    "status": "status", "-status": "-status", "term_end": "term_end", "-term_end": "-term_end",
    "created": "created_at", "-created": "-created_at",
}


def subscription_list(request, customer_id):
    """S1: the customer's subscriptions, filterable by status and sortable."""
    customer = access.get_customer(request.user, customer_id)
    subscriptions = access.customer_subscriptions(request.user, customer).select_related("sku", "reseller")
    status = request.GET.get("status", "")
    if status in Status.values:
        subscriptions = subscriptions.filter(status=status)
    sort = request.GET.get("sort", "name")
    subscriptions = subscriptions.order_by(SORTS.get(sort, "sku__name"), "pk")
    page = SmallListPaginator(subscriptions, 25).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "customer": customer, "section": "subscriptions", "page": page, "status": status, "sort": sort,
        "statuses": Status.choices, "can_buy": access.permission(request.user, access.Action.BUY),
        "querystring": query.urlencode(),
    }
    return render(request, "subscriptions/list.html", context)


def subscription_detail(request, customer_id, subscription_id):
    customer = access.get_customer(request.user, customer_id)
    subscription = access.get_subscription(request.user, customer, subscription_id)
    subscription = Subscription.objects.select_related(
        "sku__product__publisher", "reseller", "order_line__order", "availability").get(pk=subscription.pk)
    context = {
        "customer": customer, "section": "subscriptions", "subscription": subscription,
        "lots": subscription.seat_lots.all(), "billing_lines": subscription.billing_lines.all(),
        "audit": subscription.audit_entries.select_related("actor")[:50],
        "addons": subscription.addon_subscriptions.select_related("sku"),
    }
    return render(request, "subscriptions/detail.html", context)
