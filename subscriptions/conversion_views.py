"""The "Convert trial" panel (TR2–TR8): GET shows the targets and, with the form filled, a preview of
what will happen; POST converts now or schedules the conversion for the trial's end."""

from django.contrib import messages
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _

from catalog.models import BillingFrequency, Term
from portal import access
from portal.errors import RuleViolation
from portal.forms import first_error, refuse

from .forms import ConversionForm
from .manage_views import to_subscription_page
from .models import Subscription
from .services import conversions


def _context(customer, trial, user, now, choice, **extra) -> dict:
    try:
        conversions.check_conversion(trial, user, now)
        blocked = ""
    except RuleViolation as violation:
        blocked = violation.message
    return {
        "customer": customer,
        "section": "subscriptions",
        "subscription": trial,
        "now": now,
        "choice": choice,
        "targets": conversions.conversion_targets(trial),
        "timings": conversions.conversion_timings(trial),
        "blocked": blocked,
        "terms": Term.choices,
        "frequencies": BillingFrequency.choices,
        **extra,
    }


def _convert(request, trial, form, now):
    """Converts now, or schedules the conversion for the trial's end; returns (the subscription, the message)."""
    args = {**form.arguments(), "version": form.cleaned_data["version"]}  # once (portal/versions.py)
    if form.scheduled:
        # TR3: the service refuses scheduling a conversion into an existing subscription (that happens now).
        conversions.schedule_trial_conversion(subscription_id=trial.pk, actor=request.user, now=now, **args)
        return trial, _("The conversion is scheduled for the trial's end.")
    result = conversions.convert_trial_now(subscription_id=trial.pk, actor=request.user, now=now, **args)
    return result.subscription, _("Trial converted: %(summary)s") % {"summary": result.plan.summary}


def convert_trial(request, customer_id, subscription_id):
    customer = access.get_customer(request.user, customer_id)
    # Only a trial has this panel: a paid subscription's conversion URL (typed, or kept from before the conversion)
    # is no page (404), not a panel refusing what it never offered.
    trial = access.get_subscription(request.user, customer, subscription_id, Subscription.objects.filter(is_trial=True))
    now = timezone.now()
    data = request.POST if request.method == "POST" else request.GET
    form = ConversionForm(data)
    extra, status = {"plan": None, "convert_form": form}, 422
    if request.method != "POST" and not data.get("target"):
        return render(
            request,
            "subscriptions/convert_panel.html",
            _context(customer, trial, request.user, now, form.choice(), **extra),
        )
    previewing = request.method != "POST" or "preview" in request.POST
    if form.is_valid():
        try:
            if previewing:  # the same checks the conversion runs, nothing changed
                extra["plan"] = conversions.plan_conversion(
                    trial, user=request.user, now=now, scheduled=form.scheduled, **form.arguments()
                )
                return render(
                    request,
                    "subscriptions/convert_panel.html",
                    _context(customer, trial, request.user, now, form.choice(), **extra),
                )
            subscription, message = _convert(request, trial, form, now)
        except RuleViolation as violation:
            refuse(form, violation)
            status = violation.status
        else:
            messages.success(request, message)
            return to_subscription_page(request, customer, subscription)
    context = _context(customer, trial, request.user, now, form.choice(), error=first_error(form), **extra)
    return render(request, "subscriptions/convert_panel.html", context, status=status)
