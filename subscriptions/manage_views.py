"""The subscription page (S2) and every action on it. Each action is a form (subscriptions/forms.py) and one service
call; a refusal re-renders the page with the form as typed and the reason next to its field (422, or 409 when the
state moved on)."""

from decimal import Decimal

from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_safe
from django_htmx.http import HttpResponseClientRedirect

from catalog.alignment import renewal_alignment_options
from catalog.models import TERM_MONTHS, BillingFrequency, Term
from portal import access
from portal.errors import RuleViolation
from portal.forms import first_error, refuse

from . import checks, cycles, selectors, services
from .dates import term_end_for
from .forms import (
    AddonsForm,
    AutoRenewForm,
    NextChargeFrequencyForm,
    QuantityForm,
    QuantityPreviewForm,
    RenameForm,
    ScheduleRenewalForm,
    UnscheduleForm,
    VersionedForm,
)
from .models import ScheduledChange, Subscription
from .pricing import line_total
from .services.upgrades import upgrade_targets


def _load(request, customer_id, subscription_id):
    customer = access.get_customer(request.user, customer_id)
    subscription = access.get_subscription(request.user, customer, subscription_id)
    return customer, subscription


def _detail_context(request, customer, subscription_id, **extra):
    now = timezone.now()
    # Scoped by `access.get_subscription` (T3: 404 outside the user's customer), with all the page reads loaded.
    subscription = access.get_subscription(request.user, customer, subscription_id, selectors.subscription_page())
    subscription.customer = customer  # the one `get_customer` read and scoped
    billing_lines = list(subscription.billing_lines.all())
    addons = selectors.addons_of(subscription)
    actions = checks.allowed_actions(subscription, request.user, now)
    context = {
        "customer": customer,
        "section": "subscriptions",
        "subscription": subscription,
        "now": now,
        "actions": actions,
        "status_action": checks.status_action(subscription, actions),
        "lots": list(subscription.seat_lots.all()),
        "removable_lots": checks.removable_lots(subscription, now),
        "removable": checks.removable_quantity(subscription, now),
        "quantity_refusal": checks.quantity_refusal(subscription, now),
        "cancel_until": checks.cancellation_window_ends(subscription),
        "cancel_covers_removal": checks.cancellation_covers_removal(subscription, request.user, now),
        "awaiting_setup": checks.awaiting_setup(subscription),
        "at_term_end": checks.at_term_end(subscription),
        "cancel_outcome": checks.cancellation_outcome(subscription, now),
        "in_trial": checks.in_trial(subscription, now),
        "term_ends_at": checks.term_ends_at(subscription),
        "term_end_outcome": checks.term_end_outcome(subscription),
        "billing_lines": billing_lines,
        "billed_total": sum((b.amount for b in billing_lines), Decimal("0.00")),
        "period_charge": line_total(subscription.unit_price, subscription.quantity),
        "scheduled": list(subscription.scheduled_changes.all()),
        "audit": selectors.audit_trail(subscription),
        "addons": addons,
        # A3, A5: each eligible add-on with its price for the base's term and billing frequency
        "eligible_addons": [
            (
                sku,
                next(
                    a.unit_price
                    for a in sku.availabilities.all()
                    if a.term == subscription.term and a.billing_frequency == subscription.billing_frequency
                ),
            )
            for sku in services.eligible_addons(subscription)
        ]
        if checks.takes_addons(subscription)
        else [],
        "billed": services.BILLED.get(subscription.billing_frequency, subscription.billing_frequency),
        "confirm": request.GET.get("confirm", ""),
        "quantity_url": reverse("subscriptions:subscription-quantity", args=[customer.pk, subscription.pk]),
        "setup_url": subscription.sku.publisher_setup_url
        or reverse("subscriptions:publisher-setup", args=[subscription.pk]),
    }
    context["auto_renew_action"] = checks.auto_renew_action(subscription, context["actions"])
    context["tier_action"] = checks.tier_action(subscription, context["actions"])
    # The reasons under the command bar: one per button shown disabled.
    shown = [
        context["actions"]["add_licenses"],
        context["status_action"],
        context["actions"]["cancel"],
        context["auto_renew_action"],
        *([context["tier_action"]] if context["tier_action"] else []),
        context["actions"]["manage_renewal"],
    ]
    context["disabled_reasons"] = [verdict for verdict in shown if not verdict.allowed]
    draft = request.GET if "renewal_draft" in request.GET else None
    context.update(_renewal_context(subscription, context["scheduled"], now, context["actions"], draft=draft))
    context.update(_next_charge_context(subscription, now))
    context.update(extra)
    addons_form = context.get("addons_form") or AddonsForm()
    context["addon_rows"] = addons_form.rows(context["eligible_addons"])
    return context


def _renewal_context(subscription: Subscription, scheduled, now, allowed, draft=None) -> dict:
    """The Manage renewal panel (R3): what it renews with now, and the choices: the availabilities of the SKU it
    renews on, the upgrade targets of the matrix (R1, U2), the end dates the renewed term may align to (K11).
    `draft` (the form's values, sent as the partner changes them, not saved) recomputes the choices for the
    chosen term and SKU; a value that isn't one of the choices is ignored (the server checks on submit)."""
    values = services.renewal_values(subscription, scheduled)
    upgrade = next(
        (c.target_sku for c in scheduled if c.kind == ScheduledChange.Kind.UPGRADE and c.target_sku_id), None
    )
    targets = (
        [t.sku for t in upgrade_targets(subscription, now=now)]
        if allowed["manage_renewal"].allowed and subscription.term_end
        else []
    )
    if draft is not None:
        form = ScheduleRenewalForm(draft, current_sku_id=subscription.sku_id)
        form.is_valid()  # each field that parses is read; one that doesn't keeps its value (refused on submit)
        chosen = form.cleaned_data
        upgrade = next((t for t in targets if t.pk == chosen.get("target_sku")), None)
        values = {**values, "sku_id": upgrade.pk if upgrade else subscription.sku_id}
        if chosen.get("term") in Term.values:
            values["term"] = chosen["term"]
        if chosen.get("billing_frequency") in BillingFrequency.values:
            values["billing_frequency"] = chosen["billing_frequency"]
        if chosen.get("quantity"):
            values["quantity"] = chosen["quantity"]
        values["aligned_end_date"] = chosen.get("aligned_end_date")
    renews_on = upgrade or subscription.sku
    availabilities = list(subscription.sku.availabilities.all()) + list(renews_on.availabilities.all())
    terms = sorted({a.term for a in availabilities} | {subscription.term}, key=lambda t: TERM_MONTHS[t])
    frequencies = [
        f
        for f in BillingFrequency.values
        if f == subscription.billing_frequency or any(a.billing_frequency == f for a in availabilities)
    ]
    context = {
        "renewal_form": {
            **values,
            "aligned_end_date": f"{values['aligned_end_date']:%Y-%m-%d}" if values["aligned_end_date"] else "",
        },
        "renewal_terms": [(t, Term(t).label) for t in terms],
        "renewal_frequencies": [(f, BillingFrequency(f).label) for f in frequencies],
        "renewal_reassignment": services.renewal_upgrade_reassignment(subscription, scheduled),  # R5
        "renewal_upgrade_targets": [],
        "renewal_alignment_options": [],
        "renewal_natural_end": None,
    }
    if allowed["manage_renewal"].allowed and subscription.term_end:
        starts_on = services.renewal_starts_on(subscription)
        context["renewal_upgrade_targets"] = targets
        context["renewal_alignment_options"] = renewal_alignment_options(
            subscription, sku=renews_on, term=values["term"], starts_on=starts_on
        )
        context["renewal_natural_end"] = term_end_for(starts_on, TERM_MONTHS[values["term"]])
    return context


@require_safe
def subscription_detail(request, customer_id, subscription_id):
    customer = access.get_customer(request.user, customer_id)
    context = _detail_context(request, customer, subscription_id)  # scoped to the customer there (T3: else 404)
    if "renewal_draft" in request.GET:
        # The Manage renewal form, its choices recomputed for the term and SKU just picked (nothing saved).
        panel_only = request.htmx and not request.htmx.boosted
        return render(
            request, "subscriptions/detail.html#manage-renewal" if panel_only else "subscriptions/detail.html", context
        )
    if "quantity" not in request.GET:
        return render(request, "subscriptions/detail.html", context)
    # The quantity panel's preview: what the change will do, before it is submitted.
    panel_only = request.htmx and not request.htmx.boosted
    template = "subscriptions/detail.html#quantity-panel" if panel_only else "subscriptions/detail.html"
    form = context["quantity_form"] = QuantityPreviewForm(request.GET)
    status = 422
    if form.is_valid():
        try:
            context["plan"] = services.plan_quantity_change(
                context["subscription"], user=request.user, quantity=form.cleaned_data["quantity"], now=context["now"]
            )
            return render(request, template, context)
        except RuleViolation as violation:
            refuse(form, violation)
            status = violation.status
    context["error"] = context["quantity_error"] = first_error(form)
    return render(request, template, context, status=status)


# Each action: its form, and what it does with the form's values (one service call; returns the success message).


def _change_quantity(request, subscription, form, now):
    data = form.cleaned_data
    plan = services.change_quantity(
        subscription_id=subscription.pk, actor=request.user, version=data["version"], quantity=data["quantity"], now=now
    )
    if plan.amount >= 0:
        message = _("Quantity changed from %(old)s to %(new)s. Charged %(amount)s %(currency)s.")
    else:
        message = _("Quantity changed from %(old)s to %(new)s. Refunded %(amount)s %(currency)s.")
    return message % {"old": plan.old, "new": plan.new, "amount": abs(plan.amount), "currency": subscription.currency}


def _suspend(request, subscription, form, now):
    data = form.cleaned_data
    services.suspend_subscription(subscription_id=subscription.pk, actor=request.user, version=data["version"], now=now)
    return _("Suspended: the customer's access is blocked now. Billing continues; auto-renew is off.")


def _reactivate(request, subscription, form, now):
    data = form.cleaned_data
    services.reactivate_subscription(
        subscription_id=subscription.pk, actor=request.user, version=data["version"], now=now
    )
    return _("Reactivated. Auto-renew is still off: turn it back on if this subscription should renew.")


def _cancel(request, subscription, form, now):
    data = form.cleaned_data
    refund = services.cancel_subscription(
        subscription_id=subscription.pk, actor=request.user, version=data["version"], now=now
    )
    return _("Cancelled. Refund: %(amount)s %(currency)s.") % {
        "amount": refund.amount,
        "currency": subscription.currency,
    }


def _auto_renew(request, subscription, form, now):
    data = form.cleaned_data
    services.set_auto_renew(
        subscription_id=subscription.pk, actor=request.user, version=data["version"], on=data["on"], now=now
    )
    return _("Auto-renew turned on.") if data["on"] else _("Auto-renew turned off.")


def _rename(request, subscription, form, now):
    data = form.cleaned_data
    renamed = services.rename_subscription(
        subscription_id=subscription.pk,
        actor=request.user,
        version=data["version"],
        friendly_name=data["friendly_name"],
        now=now,
    )
    return _("Renamed to %(name)s.") % {"name": renamed.display_name}


def _buy_addons(request, subscription, form, now):
    data = form.cleaned_data
    created = services.buy_addons(
        subscription_id=subscription.pk,
        actor=request.user,
        version=data["version"],
        quantities=data["quantities"],
        now=now,
    )
    bought = checks.listed([f"{a.quantity} × {a.sku.name}" for a in created])
    return _("Bought %(addons)s.") % {"addons": bought}


def _schedule(request, subscription, form, now):
    data = form.cleaned_data
    changes = services.schedule_renewal_change(
        subscription_id=subscription.pk,
        actor=request.user,
        version=data["version"],
        quantity=data["quantity"],
        term=data["term"],
        billing_frequency=data["billing_frequency"],
        now=now,
        **form.choices(services.NATURAL_END),
    )
    if not changes:
        return _("Nothing is scheduled any more: the subscription renews unchanged.")
    reassignment = services.renewal_upgrade_reassignment(subscription, changes)  # R5
    scheduled = checks.listed([c.summary for c in changes])
    if reassignment:
        return _("Scheduled for the renewal: %(changes)s. %(reassignment)s") % {
            "changes": scheduled,
            "reassignment": reassignment,
        }
    return _("Scheduled for the renewal: %(changes)s.") % {"changes": scheduled}


def _unschedule(request, subscription, form, now):
    data = form.cleaned_data
    removed = services.remove_scheduled_change(
        subscription_id=subscription.pk, actor=request.user, version=data["version"], change_id=data["change"], now=now
    )
    return _("Removed from the renewal: %(change)s.") % {"change": removed.summary}


ACTIONS = {
    "quantity": (QuantityForm, _change_quantity),
    "suspend": (VersionedForm, _suspend),
    "reactivate": (VersionedForm, _reactivate),
    "cancel": (VersionedForm, _cancel),
    "auto-renew": (AutoRenewForm, _auto_renew),
    "rename": (RenameForm, _rename),
    "addons": (AddonsForm, _buy_addons),
    "schedule": (ScheduleRenewalForm, _schedule),
    "unschedule": (UnscheduleForm, _unschedule),
}


def _refused_context(action: str, form) -> dict:
    """What the page shows of a refused form: the reason in the bar, and the form as typed (`quantity_form`,
    `rename_form`, `schedule_form`, ...) in its panel with the reason next to its field."""
    extra = {"error": first_error(form), f"{action.replace('-', '_')}_form": form}
    if action in ("schedule", "unschedule"):
        extra["renewal_error"] = extra["error"]
    if action == "schedule":
        extra["renewal_form"] = form.typed()  # the values the panel's choices are drawn with
    return extra


def to_subscription_page(request, customer, subscription):
    """After a change made in a side panel (Check upgrades, Convert trial): the subscription's page. From htmx,
    the whole page goes there (HX-Redirect), so its message shows once."""
    url = reverse("subscriptions:subscription-detail", args=[customer.pk, subscription.pk])
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


def subscription_action(request, customer_id, subscription_id, action):
    customer, subscription = _load(request, customer_id, subscription_id)
    if action not in ACTIONS:
        raise Http404("No such action.")
    if request.method != "POST":
        return redirect("subscriptions:subscription-detail", customer_id=customer.pk, subscription_id=subscription.pk)
    form_class, act = ACTIONS[action]
    # Manage renewal's empty SKU means "keep the current one".
    extra = {"current_sku_id": subscription.sku_id} if form_class is ScheduleRenewalForm else {}
    form = form_class(request.POST, **extra)
    status = 422
    if form.is_valid():
        try:
            now = timezone.now()
            message = act(request, subscription, form, now)
        except RuleViolation as violation:
            refuse(form, violation)
            status = violation.status
        else:
            messages.success(request, message)
            url = reverse("subscriptions:subscription-detail", args=[customer.pk, subscription.pk])
            # Back to the page with the Manage renewal panel open on what is now scheduled.
            return redirect(url + "#manage-renewal" if action in ("schedule", "unschedule") else url)
    context = _detail_context(request, customer, subscription.pk, **_refused_context(action, form))
    return render(request, "subscriptions/detail.html", context, status=status)


def publisher_setup(request, subscription_id):
    """S3: the demo's simulated publisher page, behind the "Go to publisher's site" link."""
    # S3 is an ISV's set-up: a Microsoft subscription has no publisher page to go to (404).
    subscription = get_object_or_404(
        access.subscriptions_for(request.user).select_related("customer", "sku__product__publisher"),
        pk=subscription_id,
        sku__product__publisher__is_microsoft=False,
    )
    if request.method == "POST":
        form = VersionedForm(request.POST)
        try:
            form.is_valid()  # the version alone, which the service judges
            services.confirm_publisher_setup(
                subscription_id=subscription.pk,
                actor=request.user,
                now=timezone.now(),
                version=form.cleaned_data["version"],
            )
        except RuleViolation as violation:
            return render(
                request,
                "subscriptions/publisher_setup.html",
                {"subscription": subscription, "error": violation.message},
                status=violation.status,
            )
        messages.success(
            request,
            _("%(publisher)s confirmed the account set-up: the subscription is active.")
            % {"publisher": subscription.sku.product.publisher.name},
        )
        return redirect(
            "subscriptions:subscription-detail", customer_id=subscription.customer_id, subscription_id=subscription.pk
        )
    return render(request, "subscriptions/publisher_setup.html", {"subscription": subscription})


# --- Billing frequency at the next charge (N7, subscriptions/cycles.py) ------------------------------


def _next_charge_context(subscription: Subscription, now) -> dict:
    """The Billing frequency panel: the next charge date (the instruction's, or the next period start) and the
    frequencies the subscription can switch to there, with their prices."""
    prices = {a.billing_frequency: a for a in subscription.sku.availabilities.all() if a.term == subscription.term}
    instructed = prices.get(subscription.next_charge_frequency)
    return {
        "next_charge_on": subscription.next_charge_on or checks.next_charge_date(subscription, now.date()),
        "next_charge_price": instructed.unit_price if instructed else None,
        "next_charge_billed": services.BILLED.get(subscription.next_charge_frequency, ""),
        # Choosing the frequency already instructed would change nothing; going back is "Remove".
        "next_charge_choices": [
            (f, BillingFrequency(f).label, prices[f].unit_price)
            for f in cycles.next_charge_frequencies(subscription)
            if f != subscription.next_charge_frequency
        ],
    }


def _next_charge_answer(request, customer, subscription, *, message: str = "", violation: RuleViolation | None = None):
    """htmx: the panel alone, with the outcome in it; a plain post: the page (refused) or a redirect (done)."""
    panel_only = request.htmx and not request.htmx.boosted
    if violation is None and not panel_only:
        messages.success(request, message)
        return redirect(
            reverse("subscriptions:subscription-detail", args=[customer.pk, subscription.pk]) + "#billing-frequency"
        )
    extra = {"frequency_message": message}
    if violation is not None:
        extra = {"frequency_error": violation.message, "error": "" if panel_only else violation.message}
    context = _detail_context(request, customer, subscription.pk, **extra)
    template = "subscriptions/detail.html#billing-frequency" if panel_only else "subscriptions/detail.html"
    return render(request, template, context, status=violation.status if violation else 200)


def next_charge_frequency(request, customer_id, subscription_id):
    """Sets or changes the billing frequency from the next charge."""
    customer, subscription = _load(request, customer_id, subscription_id)
    if request.method != "POST":
        return redirect("subscriptions:subscription-detail", customer_id=customer.pk, subscription_id=subscription.pk)
    form = NextChargeFrequencyForm(request.POST)
    form.is_valid()  # the frequency as posted: which ones it can switch to is the service's answer (N7)
    try:
        updated = cycles.set_next_charge_frequency(
            subscription_id=subscription.pk,
            actor=request.user,
            version=form.cleaned_data["version"],
            billing_frequency=form.cleaned_data["billing_frequency"],
            now=timezone.now(),
        )
    except RuleViolation as violation:
        return _next_charge_answer(request, customer, subscription, violation=violation)
    message = _("From the next charge on %(date)s (UTC) it is billed %(billed)s.") % {
        "date": f"{updated.next_charge_on:%Y-%m-%d}",
        "billed": services.BILLED[updated.next_charge_frequency],
    }
    return _next_charge_answer(request, customer, subscription, message=message)


def next_charge_frequency_remove(request, customer_id, subscription_id):
    """Removes the instruction: the next charge keeps the current billing frequency."""
    customer, subscription = _load(request, customer_id, subscription_id)
    if request.method != "POST":
        return redirect("subscriptions:subscription-detail", customer_id=customer.pk, subscription_id=subscription.pk)
    form = VersionedForm(request.POST)
    form.is_valid()  # the version alone, which the service judges
    try:
        updated = cycles.remove_next_charge_frequency(
            subscription_id=subscription.pk,
            actor=request.user,
            version=form.cleaned_data["version"],
            now=timezone.now(),
        )
    except RuleViolation as violation:
        return _next_charge_answer(request, customer, subscription, violation=violation)
    message = _("Billing frequency change removed: it stays billed %(billed)s.") % {
        "billed": services.BILLED[updated.billing_frequency]
    }
    return _next_charge_answer(request, customer, subscription, message=message)
