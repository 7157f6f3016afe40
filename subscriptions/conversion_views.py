"""The "Convert trial" panel (TR2–TR8): GET shows the targets and, with the form filled, a preview of
what will happen; POST converts now or schedules the conversion for the trial's end."""

import uuid

from django.contrib import messages
from django.shortcuts import render
from django.utils import timezone

from catalog.models import TRIAL_LICENSES, BillingFrequency, Term
from portal import access
from portal.errors import RuleViolation
from portal.forms import parse_int, parse_quantity
from portal.versions import posted_version

from .manage_views import to_subscription_page
from .services import conversions

FIELDS = ("target", "when", "term", "billing_frequency", "quantity")


def _choice(data) -> dict:
    """The submitted form, with TR2's defaults (annual term billed monthly) and the trial's 25 licenses."""
    return {"target": data.get("target", ""), "when": data.get("when", "now"),
            "term": data.get("term") or Term.P1Y, "billing_frequency": data.get("billing_frequency") or BillingFrequency.MONTHLY,
            "quantity": data.get("quantity") or str(TRIAL_LICENSES)}


def _uuid(value: str):
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def _arguments(choice: dict) -> dict:
    if choice["when"] not in ("now", "scheduled"):
        raise RuleViolation("TR3", "Choose to convert now or at the trial's end.", field="when")
    kind, _, value = choice["target"].partition("-")
    if kind == "sku" and parse_int(value) is not None:
        target = {"target_sku_id": parse_int(value), "into_subscription_id": None}
    elif kind == "sub" and _uuid(value):
        target = {"target_sku_id": None, "into_subscription_id": _uuid(value)}
    else:
        raise RuleViolation("TR3", "Choose the paid offer, a higher offer or an existing subscription to convert to.",
                            field="target")
    quantity = None if target["into_subscription_id"] else parse_quantity(choice["quantity"], rule="TR7")
    return {**target, "term": choice["term"], "billing_frequency": choice["billing_frequency"], "quantity": quantity}


def _context(customer, trial, user, now, choice, **extra) -> dict:
    try:
        conversions.check_conversion(trial, user, now)
        blocked = ""
    except RuleViolation as violation:
        blocked = violation.message
    return {"customer": customer, "section": "subscriptions", "subscription": trial, "now": now, "choice": choice,
            "targets": conversions.conversion_targets(trial), "timings": conversions.conversion_timings(trial),
            "blocked": blocked,
            "terms": Term.choices, "frequencies": BillingFrequency.choices, **extra}


def convert_trial(request, customer_id, subscription_id):
    customer = access.get_customer(request.user, customer_id)
    trial = access.get_subscription(request.user, customer, subscription_id)
    now = timezone.now()
    data = request.POST if request.method == "POST" else request.GET
    choice = _choice(data)
    try:
        if request.method == "POST":
            args = _arguments(choice)
            args["version"] = posted_version(data)  # once (portal/versions.py)
            if choice["when"] == "scheduled":
                conversions.schedule_trial_conversion(subscription_id=trial.pk, actor=request.user, now=now, **args)
                messages.success(request, "The conversion is scheduled for the trial's end.")
                return to_subscription_page(request, customer, trial)
            result = conversions.convert_trial_now(subscription_id=trial.pk, actor=request.user, now=now, **args)
            messages.success(request, f"Trial converted: {result.plan.summary}")
            return to_subscription_page(request, customer, result.subscription)
        plan = None
        if choice["target"]:
            # The preview: the same checks the conversion runs, nothing changed.
            plan = conversions.plan_conversion(trial, user=request.user, now=now, scheduled=choice["when"] == "scheduled",
                                               **_arguments(choice))
        return render(request, "subscriptions/convert_panel.html", _context(customer, trial, request.user, now, choice,
                                                                            plan=plan))
    except RuleViolation as violation:
        context = _context(customer, trial, request.user, now, choice, error=violation.message)
        return render(request, "subscriptions/convert_panel.html", context, status=violation.status)
