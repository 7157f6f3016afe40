"""The "Check upgrades" panel (U2–U7): targets, a preview of the chosen one, then "Yes, upgrade"."""

import uuid

from django.contrib import messages
from django.shortcuts import render
from django.utils import timezone

from catalog.models import BillingFrequency, Term
from portal import access
from portal.forms import parse_int, parse_quantity
from portal.errors import RuleViolation
from portal.versions import posted_version

from . import checks
from .services import upgrades
from .manage_views import to_subscription_page


def _choice(data) -> dict:
    """The target, quantity, term, billing frequency and existing subscription as submitted."""
    into = (data.get("into") or "").strip()
    try:
        into_id = uuid.UUID(into) if into else None
    except ValueError:
        raise RuleViolation("U3", "Choose a new subscription or one of the listed existing subscriptions.") from None
    return {
        "target_sku_id": parse_int(data.get("target")),
        "quantity": parse_quantity(data.get("quantity"), rule="U4"),
        "term": data.get("term") or None,
        "billing_frequency": data.get("billing_frequency") or None,
        "into_subscription_id": into_id,
    }


def _context(request, customer, subscription, now, **extra) -> dict:
    context = {
        "customer": customer, "section": "subscriptions", "subscription": subscription, "now": now,
        "upgrade": checks.verdict("upgrade", "Upgrade", upgrades.check_upgrade, subscription, request.user, now),
        "targets": upgrades.upgrade_targets(subscription, now=now),
        "terms": Term.choices, "frequencies": BillingFrequency.choices,
        "form": {"target": "", "quantity": subscription.quantity, "term": subscription.term,
                 "billing_frequency": subscription.billing_frequency, "into": ""},
    }
    context.update(extra)
    return context


def subscription_upgrade(request, customer_id, subscription_id):
    customer = access.get_customer(request.user, customer_id)
    subscription = access.get_subscription(request.user, customer, subscription_id)
    now = timezone.now()
    template = "subscriptions/upgrade_panel.html"
    if request.htmx and not request.htmx.boosted:
        template += "#upgrade-panel"
    data = request.POST if request.method == "POST" else request.GET
    chosen = "target" in data
    form = {name: data.get(name, "") for name in ("target", "quantity", "term", "billing_frequency", "into")}
    if request.method == "POST":
        try:
            # The version the preview was drawn from: a second "Yes, upgrade" (double click, back and resubmit)
            # finds the subscription already upgraded and is refused (409), never upgrading twice.
            version = posted_version(data)
            result = upgrades.upgrade_subscription(subscription_id=subscription.pk, actor=request.user, version=version,
                                                   confirmed=data.get("confirm") == "yes", now=now, **_choice(data))
        except RuleViolation as violation:
            context = _context(request, customer, subscription, now, error=violation.message, form=form)
            return render(request, template, context, status=violation.status)
        text = f"Upgraded {form['quantity']} license(s) to {result.sku.name}."
        if result.pk != subscription.pk:
            text += " Reassign these licenses by hand."
        messages.success(request, text)
        return to_subscription_page(request, customer, result)
    context = _context(request, customer, subscription, now)
    if chosen and context["upgrade"].allowed:
        context["form"] = form
        try:
            context["plan"] = upgrades.plan_upgrade(subscription, user=request.user, now=now, **_choice(data))
        except RuleViolation as violation:
            context["error"] = violation.message
            return render(request, template, context, status=violation.status)
    return render(request, template, context)
