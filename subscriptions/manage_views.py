"""The subscription page (S2) and every action on it. Each action is one service call; a refusal
re-renders the page with the reason (422, or 409 when the state moved on)."""

from decimal import Decimal

from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_safe

from catalog.models import TERM_MONTHS, BillingFrequency, Term
from portal import access
from portal.forms import parse_int, parse_quantity
from portal.rules import RuleViolation

from . import actions, services
from .models import Subscription
from .pricing import line_total


def _load(request, customer_id, subscription_id):
    customer = access.get_customer(request.user, customer_id)
    subscription = access.get_subscription(request.user, customer, subscription_id)
    return customer, subscription


def _detail_context(request, customer, subscription_id, **extra):
    now = timezone.now()
    subscription = (Subscription.objects.select_related("sku__product__publisher", "reseller", "order_line__order",
                                                        "base_subscription__sku")
                    .prefetch_related("seat_lots", "billing_lines", "scheduled_changes__target_sku",
                                                      "sku__availabilities")
                    .get(pk=subscription_id))
    billing_lines = list(subscription.billing_lines.all())
    addons = list(subscription.addon_subscriptions.select_related("sku"))
    context = {
        "customer": customer, "section": "subscriptions", "subscription": subscription, "now": now,
        "actions": actions.allowed_actions(subscription, request.user, now),
        "lots": list(subscription.seat_lots.all()),
        "removable_lots": actions.removable_lots(subscription, now),
        "removable": actions.removable_quantity(subscription, now),
        "cancel_until": actions.cancellation_window_ends(subscription),
        "term_ends_at": actions.term_ends_at(subscription),
        "billing_lines": billing_lines,
        "billed_total": sum((b.amount for b in billing_lines), Decimal("0.00")),
        "period_charge": line_total(subscription.unit_price, subscription.quantity),
        "scheduled": list(subscription.scheduled_changes.all()),
        "audit": subscription.audit_entries.select_related("actor")[:100],
        "addons": addons,
        "eligible_addons": services.eligible_addons(subscription) if subscription.status == "active" else [],
        "confirm": request.GET.get("confirm", ""),
        "quantity_url": reverse("subscriptions:subscription-quantity", args=[customer.pk, subscription.pk]),
        "setup_url": subscription.sku.publisher_setup_url
        or reverse("subscriptions:publisher-setup", args=[subscription.pk]),
    }
    # The reasons under the command bar: one per button shown disabled.
    shown = ["add_licenses", "reactivate" if subscription.status == "suspended" else "suspend", "cancel",
             "auto_renew_off" if subscription.auto_renew else "auto_renew_on"]
    context["disabled_reasons"] = [context["actions"][name] for name in shown if not context["actions"][name].allowed]
    context.update(_renewal_context(subscription, context["scheduled"]))
    context.update(extra)
    return context


def _renewal_context(subscription: Subscription, scheduled) -> dict:
    """The Manage renewal panel (R3): what it renews with now, and the choices of the SKU's availabilities."""
    availabilities = list(subscription.sku.availabilities.all())
    terms = sorted({a.term for a in availabilities} | {subscription.term}, key=lambda t: TERM_MONTHS[t])
    frequencies = [f for f in BillingFrequency.values
                   if f == subscription.billing_frequency or any(a.billing_frequency == f for a in availabilities)]
    return {
        "renewal_form": services.renewal_values(subscription, scheduled),
        "renewal_terms": [(t, Term(t).label) for t in terms],
        "renewal_frequencies": [(f, BillingFrequency(f).label) for f in frequencies],
    }


@require_safe
def subscription_detail(request, customer_id, subscription_id):
    customer, subscription = _load(request, customer_id, subscription_id)
    context = _detail_context(request, customer, subscription.pk)
    raw = request.GET.get("quantity")
    panel_only = request.htmx and not request.htmx.boosted and raw is not None
    template = "subscriptions/detail.html#quantity-panel" if panel_only else "subscriptions/detail.html"
    if raw is not None:
        # The quantity panel's preview: what the change will do, before it is submitted.
        try:
            context["plan"] = services.plan_quantity_change(
                context["subscription"], user=request.user, quantity=parse_quantity(raw, rule="Q1"), now=context["now"])
        except RuleViolation as violation:
            context["error"] = context["quantity_error"] = violation.message
            return render(request, template, context, status=violation.status)
    return render(request, template, context)


def _run(request, action: str, subscription: Subscription):
    """One service call for `action`; returns the success message."""
    now = timezone.now()
    user, sid = request.user, subscription.pk
    if action == "quantity":
        expected = parse_int(request.POST.get("expected_quantity"))
        plan = services.change_quantity(subscription_id=sid, actor=user, quantity=parse_quantity(request.POST.get("quantity"), rule="Q1"),
                                        expected_quantity=expected, now=now)
        verb = "Charged" if plan.amount >= 0 else "Refunded"
        return f"Quantity changed from {plan.old} to {plan.new}. {verb} {abs(plan.amount)} {subscription.currency}."
    if action == "suspend":
        services.suspend_subscription(subscription_id=sid, actor=user, now=now)
        return "Suspended: the customer's access is blocked now. Billing continues; auto-renew is off."
    if action == "reactivate":
        services.reactivate_subscription(subscription_id=sid, actor=user, now=now)
        return "Reactivated. Auto-renew is still off: turn it back on if this subscription should renew."
    if action == "cancel":
        refund = services.cancel_subscription(subscription_id=sid, actor=user, now=now)
        return f"Cancelled. Refund: {refund.amount} {subscription.currency}."
    if action == "auto-renew":
        on = request.POST.get("on") == "1"
        services.set_auto_renew(subscription_id=sid, actor=user, on=on, now=now)
        return f"Auto-renew turned {'on' if on else 'off'}."
    if action == "rename":
        renamed = services.rename_subscription(subscription_id=sid, actor=user,
                                               friendly_name=request.POST.get("friendly_name", "")[:300], now=now)
        return f"Renamed to {renamed.display_name}."
    if action == "addons":
        quantities = {}
        for key, value in request.POST.items():
            if key.startswith("addon-") and value.strip() not in ("", "0"):
                sku_id = parse_int(key.removeprefix("addon-"))
                if sku_id is None:
                    raise RuleViolation("A3", "That add-on is not available for this subscription.")
                quantities[sku_id] = parse_quantity(value, rule="A1")
        created = services.buy_addons(subscription_id=sid, actor=user, quantities=quantities, now=now)
        return "Bought " + ", ".join(f"{a.quantity} × {a.sku.name}" for a in created) + "."
    if action == "schedule":
        raw = request.POST.get("quantity", "").strip()
        changes = services.schedule_renewal_change(
            subscription_id=sid, actor=user, quantity=parse_quantity(raw, rule="K8") if raw else None,
            term=request.POST.get("term") or None, billing_frequency=request.POST.get("billing_frequency") or None,
            now=now)
        if not changes:
            return "Nothing is scheduled any more: the subscription renews unchanged."
        return "Scheduled for the renewal: " + ", ".join(c.summary for c in changes) + "."
    if action == "unschedule":
        change_id = parse_int(request.POST.get("change"))
        if change_id is None:
            raise RuleViolation("R3", "Choose a scheduled change to remove.")
        removed = services.remove_scheduled_change(subscription_id=sid, actor=user, change_id=change_id, now=now)
        return f"Removed from the renewal: {removed.summary}."
    raise Http404("No such action.")


ACTIONS = ("quantity", "suspend", "reactivate", "cancel", "auto-renew", "rename", "addons", "schedule", "unschedule")


def subscription_action(request, customer_id, subscription_id, action):
    customer, subscription = _load(request, customer_id, subscription_id)
    if action not in ACTIONS:
        raise Http404("No such action.")
    if request.method != "POST":
        return redirect("subscriptions:subscription-detail", customer_id=customer.pk, subscription_id=subscription.pk)
    try:
        message = _run(request, action, subscription)
    except RuleViolation as violation:
        extra = {"error": violation.message}
        if action in ("schedule", "unschedule"):
            extra["renewal_error"] = violation.message
        if action == "schedule":
            # The form shows what was submitted, next to the reason it was refused.
            extra["renewal_form"] = {name: request.POST.get(name, "") for name in ("quantity", "term",
                                                                                   "billing_frequency")}
        context = _detail_context(request, customer, subscription.pk, **extra)
        return render(request, "subscriptions/detail.html", context, status=violation.status)
    messages.success(request, message)
    return redirect("subscriptions:subscription-detail", customer_id=customer.pk, subscription_id=subscription.pk)


def publisher_setup(request, subscription_id):
    """S3: the demo's simulated publisher page, behind the "Go to publisher's site" link."""
    subscription = get_object_or_404(access.subscriptions_for(request.user).select_related(
        "customer", "sku__product__publisher"), pk=subscription_id)
    if request.method == "POST":
        try:
            services.confirm_publisher_setup(subscription_id=subscription.pk, actor=request.user, now=timezone.now())
        except RuleViolation as violation:
            return render(request, "subscriptions/publisher_setup.html",
                          {"subscription": subscription, "error": violation.message}, status=violation.status)
        messages.success(request, f"{subscription.sku.product.publisher.name} confirmed the account set-up: the "
                                  "subscription is active.")
        return redirect("subscriptions:subscription-detail", customer_id=subscription.customer_id,
                        subscription_id=subscription.pk)
    return render(request, "subscriptions/publisher_setup.html", {"subscription": subscription})
