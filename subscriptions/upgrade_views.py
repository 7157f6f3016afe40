"""The "Check upgrades" panel (U2–U7): targets, a preview of the chosen one, then "Yes, upgrade"."""

from django.contrib import messages
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext_lazy, ngettext

from catalog.models import BillingFrequency, Term
from portal import access
from portal.errors import RuleViolation
from portal.forms import first_error, refuse

from . import checks
from .forms import UpgradeForm
from .manage_views import to_subscription_page
from .services import upgrades


def _context(request, customer, subscription, now, **extra) -> dict:
    context = {
        "customer": customer,
        "section": "subscriptions",
        "subscription": subscription,
        "now": now,
        "upgrade": checks.verdict(
            "upgrade", gettext_lazy("Upgrade"), upgrades.check_upgrade, subscription, request.user, now
        ),
        "targets": upgrades.upgrade_targets(subscription, now=now),
        "terms": Term.choices,
        "frequencies": BillingFrequency.choices,
        "form": {
            "target": "",
            "quantity": subscription.quantity,
            "term": subscription.term,
            "billing_frequency": subscription.billing_frequency,
            "into": "",
        },
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
    context = _context(request, customer, subscription, now)
    if request.method != "POST" and not ("target" in data and context["upgrade"].allowed):
        return render(request, template, context)
    form = UpgradeForm(data)
    context.update(
        form={name: data.get(name, "") for name in ("target", "quantity", "term", "billing_frequency", "into")},
        upgrade_form=form,
    )
    status = 422
    if form.is_valid():
        try:
            if request.method != "POST":  # the preview: the same checks the upgrade runs, nothing changed
                context["plan"] = upgrades.plan_upgrade(subscription, user=request.user, now=now, **form.arguments())
                return render(request, template, context)
            # The version the preview was drawn from: a second "Yes, upgrade" (double click, back and resubmit)
            # finds the subscription already upgraded and is refused (409), never upgrading twice.
            result = upgrades.upgrade_subscription(
                subscription_id=subscription.pk,
                actor=request.user,
                version=form.cleaned_data["version"],
                now=now,
                confirmed=form.cleaned_data["confirm"] == "yes",
                **form.arguments(),
            )
        except RuleViolation as violation:
            refuse(form, violation)
            status = violation.status
        else:
            quantity = form.cleaned_data["quantity"]
            values = {"count": quantity, "offer": result.sku.name}
            if result.pk != subscription.pk:
                text = (
                    ngettext(
                        "Upgraded %(count)s license to %(offer)s. Reassign these licenses by hand.",
                        "Upgraded %(count)s licenses to %(offer)s. Reassign these licenses by hand.",
                        quantity,
                    )
                    % values
                )
            else:
                text = (
                    ngettext(
                        "Upgraded %(count)s license to %(offer)s.",
                        "Upgraded %(count)s licenses to %(offer)s.",
                        quantity,
                    )
                    % values
                )
            messages.success(request, text)
            return to_subscription_page(request, customer, result)
    context["error"] = first_error(form)
    return render(request, template, context, status=status)
