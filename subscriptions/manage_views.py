"""The subscription page (S2) and every action on it. Each action is one service call; a refusal
re-renders the page with the reason (422, or 409 when the state moved on)."""

from decimal import Decimal

from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django_htmx.http import HttpResponseClientRedirect
from django.utils import timezone
from django.views.decorators.http import require_safe

from catalog.alignment import renewal_alignment_options
from catalog.models import TERM_MONTHS, BillingFrequency, Term
from portal import access
from portal.forms import parse_date, parse_int, parse_quantity, parse_text
from portal.errors import RuleViolation
from portal.versions import posted_version

from . import checks, cycles, selectors, services
from .dates import term_end_for
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
    context = {
        "customer": customer, "section": "subscriptions", "subscription": subscription, "now": now,
        "actions": checks.allowed_actions(subscription, request.user, now),
        "lots": list(subscription.seat_lots.all()),
        "removable_lots": checks.removable_lots(subscription, now),
        "removable": checks.removable_quantity(subscription, now),
        "cancel_until": checks.cancellation_window_ends(subscription),
        "cancel_outcome": checks.cancellation_outcome(subscription, now),
        "in_trial": checks.in_trial(subscription, now),
        "term_ends_at": checks.term_ends_at(subscription),
        "billing_lines": billing_lines,
        "billed_total": sum((b.amount for b in billing_lines), Decimal("0.00")),
        "period_charge": line_total(subscription.unit_price, subscription.quantity),
        "scheduled": list(subscription.scheduled_changes.all()),
        "audit": selectors.audit_trail(subscription),
        "addons": addons,
        # A3, A5: each eligible add-on with its price for the base's term and billing frequency
        "eligible_addons": [(sku, next(a.unit_price for a in sku.availabilities.all() if a.term == subscription.term
                                       and a.billing_frequency == subscription.billing_frequency))
                            for sku in services.eligible_addons(subscription)]
                           if subscription.status == "active" else [],
        "billed": services.BILLED.get(subscription.billing_frequency, subscription.billing_frequency),
        "confirm": request.GET.get("confirm", ""),
        "quantity_url": reverse("subscriptions:subscription-quantity", args=[customer.pk, subscription.pk]),
        "setup_url": subscription.sku.publisher_setup_url
        or reverse("subscriptions:publisher-setup", args=[subscription.pk]),
    }
    # The reasons under the command bar: one per button shown disabled.
    shown = ["add_licenses", "reactivate" if subscription.status == "suspended" else "suspend", "cancel",
             "auto_renew_off" if subscription.auto_renew else "auto_renew_on"]
    if subscription.is_trial and not subscription.sku.is_isv:
        shown.append("convert_trial")
    elif not subscription.is_trial:
        shown.append("upgrade")
    shown.append("manage_renewal")
    context["disabled_reasons"] = [context["actions"][name] for name in shown if not context["actions"][name].allowed]
    draft = request.GET if "renewal_draft" in request.GET else None
    context.update(_renewal_context(subscription, context["scheduled"], now, context["actions"], draft=draft))
    context.update(_next_charge_context(subscription, now))
    context.update(extra)
    return context


def _renewal_context(subscription: Subscription, scheduled, now, allowed, draft=None) -> dict:
    """The Manage renewal panel (R3): what it renews with now, and the choices: the availabilities of the SKU it
    renews on, the upgrade targets of the matrix (R1, U2), the end dates the renewed term may align to (K11).
    `draft` (the form's values, sent as the partner changes them, not saved) recomputes the choices for the
    chosen term and SKU; a value that isn't one of the choices is ignored (the server checks on submit)."""
    values = services.renewal_values(subscription, scheduled)
    upgrade = next((c.target_sku for c in scheduled if c.kind == ScheduledChange.Kind.UPGRADE and c.target_sku_id),
                   None)
    targets = ([t.sku for t in upgrade_targets(subscription, now=now)]
               if allowed["manage_renewal"].allowed and subscription.term_end else [])
    if draft is not None:
        raw_sku = draft.get("target_sku", "")
        upgrade = next((t for t in targets if str(t.pk) == raw_sku), None) if raw_sku else None
        values = {**values, "sku_id": upgrade.pk if upgrade else subscription.sku_id}
        if draft.get("term") in Term.values:
            values["term"] = draft["term"]
        if draft.get("billing_frequency") in BillingFrequency.values:
            values["billing_frequency"] = draft["billing_frequency"]
        if parse_quantity_or_none(draft.get("quantity")):
            values["quantity"] = parse_quantity_or_none(draft.get("quantity"))
        try:
            values["aligned_end_date"] = parse_date(draft.get("aligned_end_date", ""))
        except RuleViolation:
            values["aligned_end_date"] = None
    renews_on = upgrade or subscription.sku
    availabilities = list(subscription.sku.availabilities.all()) + list(renews_on.availabilities.all())
    terms = sorted({a.term for a in availabilities} | {subscription.term}, key=lambda t: TERM_MONTHS[t])
    frequencies = [f for f in BillingFrequency.values
                   if f == subscription.billing_frequency or any(a.billing_frequency == f for a in availabilities)]
    context = {
        "renewal_form": {**values, "aligned_end_date": f"{values['aligned_end_date']:%Y-%m-%d}"
                         if values["aligned_end_date"] else ""},
        "renewal_terms": [(t, Term(t).label) for t in terms],
        "renewal_frequencies": [(f, BillingFrequency(f).label) for f in frequencies],
        "renewal_reassignment": services.renewal_upgrade_reassignment(subscription, scheduled),  # R5
        "renewal_upgrade_targets": [], "renewal_alignment_options": [], "renewal_natural_end": None,
    }
    if allowed["manage_renewal"].allowed and subscription.term_end:
        starts_on = services.renewal_starts_on(subscription)
        context["renewal_upgrade_targets"] = targets
        context["renewal_alignment_options"] = renewal_alignment_options(
            subscription, sku=renews_on, term=values["term"], starts_on=starts_on)
        context["renewal_natural_end"] = term_end_for(starts_on, TERM_MONTHS[values["term"]])
    return context


def parse_quantity_or_none(raw) -> int | None:
    try:
        return parse_quantity(raw or "", rule="R1")
    except RuleViolation:
        return None


def _renewal_choices(request, subscription: Subscription) -> dict:
    """The SKU and end date posted from the Manage renewal panel. A field not posted keeps what is scheduled; an
    empty one means the current SKU (no upgrade) or the natural end."""
    choices = {}
    raw_sku = request.POST.get("target_sku")
    if raw_sku is not None:
        choices["target_sku_id"] = subscription.sku_id if not raw_sku.strip() else parse_int(raw_sku)
        if choices["target_sku_id"] is None:
            raise RuleViolation("U2", "Choose one of the listed upgrade targets.", field="target_sku")
    raw_end = request.POST.get("aligned_end_date")
    if raw_end is not None:
        choices["aligned_end_date"] = parse_date(raw_end) or services.NATURAL_END
    return choices


@require_safe
def subscription_detail(request, customer_id, subscription_id):
    customer = access.get_customer(request.user, customer_id)
    context = _detail_context(request, customer, subscription_id)  # scoped to the customer there (T3: else 404)
    if "renewal_draft" in request.GET:
        # The Manage renewal form, its choices recomputed for the term and SKU just picked (nothing saved).
        panel_only = request.htmx and not request.htmx.boosted
        return render(request, "subscriptions/detail.html#manage-renewal" if panel_only else
                      "subscriptions/detail.html", context)
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
    version = posted_version(request.POST)  # the page's (portal/versions.py)
    if action == "quantity":
        plan = services.change_quantity(subscription_id=sid, actor=user, version=version, quantity=parse_quantity(request.POST.get("quantity"), rule="Q1"),
                                        now=now)
        verb = "Charged" if plan.amount >= 0 else "Refunded"
        return f"Quantity changed from {plan.old} to {plan.new}. {verb} {abs(plan.amount)} {subscription.currency}."
    if action == "suspend":
        services.suspend_subscription(subscription_id=sid, actor=user, version=version, now=now)
        return "Suspended: the customer's access is blocked now. Billing continues; auto-renew is off."
    if action == "reactivate":
        services.reactivate_subscription(subscription_id=sid, actor=user, version=version, now=now)
        return "Reactivated. Auto-renew is still off: turn it back on if this subscription should renew."
    if action == "cancel":
        refund = services.cancel_subscription(subscription_id=sid, actor=user, version=version, now=now)
        return f"Cancelled. Refund: {refund.amount} {subscription.currency}."
    if action == "auto-renew":
        on = request.POST.get("on") == "1"
        services.set_auto_renew(subscription_id=sid, actor=user, version=version, on=on, now=now)
        return f"Auto-renew turned {'on' if on else 'off'}."
    if action == "rename":
        name = parse_text(request.POST.get("friendly_name"), rule="S2", field="friendly_name", what="A friendly name")
        renamed = services.rename_subscription(subscription_id=sid, actor=user, version=version, friendly_name=name[:300],
                                               now=now)
        return f"Renamed to {renamed.display_name}."
    if action == "addons":
        quantities = {}
        for key, value in request.POST.items():
            if key.startswith("addon-") and value.strip() not in ("", "0"):
                sku_id = parse_int(key.removeprefix("addon-"))
                if sku_id is None:
                    raise RuleViolation("A3", "That add-on is not available for this subscription.")
                quantities[sku_id] = parse_quantity(value, rule="A1")
        created = services.buy_addons(subscription_id=sid, actor=user, version=version, quantities=quantities, now=now)
        return "Bought " + ", ".join(f"{a.quantity} × {a.sku.name}" for a in created) + "."
    if action == "schedule":
        raw = request.POST.get("quantity", "").strip()
        changes = services.schedule_renewal_change(
            subscription_id=sid, actor=user, version=version, quantity=parse_quantity(raw, rule="K8") if raw else None,
            term=request.POST.get("term") or None, billing_frequency=request.POST.get("billing_frequency") or None,
            now=now, **_renewal_choices(request, subscription))
        if not changes:
            return "Nothing is scheduled any more: the subscription renews unchanged."
        reassignment = services.renewal_upgrade_reassignment(subscription, changes)  # R5
        return "Scheduled for the renewal: " + ", ".join(c.summary for c in changes) + "." + (
            f" {reassignment}" if reassignment else "")
    if action == "unschedule":
        change_id = parse_int(request.POST.get("change"))
        if change_id is None:
            raise RuleViolation("R3", "Choose a scheduled change to remove.")
        removed = services.remove_scheduled_change(subscription_id=sid, actor=user, version=version, change_id=change_id, now=now)
        return f"Removed from the renewal: {removed.summary}."
    raise Http404("No such action.")


ACTIONS = ("quantity", "suspend", "reactivate", "cancel", "auto-renew", "rename", "addons", "schedule", "unschedule")


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
            extra["renewal_form"].update(sku_id=parse_int(request.POST.get("target_sku")) or subscription.sku_id,
                                         aligned_end_date=request.POST.get("aligned_end_date", "").strip()[:10])
        context = _detail_context(request, customer, subscription.pk, **extra)
        return render(request, "subscriptions/detail.html", context, status=violation.status)
    messages.success(request, message)
    url = reverse("subscriptions:subscription-detail", args=[customer.pk, subscription.pk])
    # Back to the page with the Manage renewal panel open on what is now scheduled.
    return redirect(url + "#manage-renewal" if action in ("schedule", "unschedule") else url)


def publisher_setup(request, subscription_id):
    """S3: the demo's simulated publisher page, behind the "Go to publisher's site" link."""
    subscription = get_object_or_404(access.subscriptions_for(request.user).select_related(
        "customer", "sku__product__publisher"), pk=subscription_id)
    if request.method == "POST":
        try:
            services.confirm_publisher_setup(subscription_id=subscription.pk, actor=request.user, now=timezone.now(),
                                             version=posted_version(request.POST))
        except RuleViolation as violation:
            return render(request, "subscriptions/publisher_setup.html",
                          {"subscription": subscription, "error": violation.message}, status=violation.status)
        messages.success(request, f"{subscription.sku.product.publisher.name} confirmed the account set-up: the "
                                  "subscription is active.")
        return redirect("subscriptions:subscription-detail", customer_id=subscription.customer_id,
                        subscription_id=subscription.pk)
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
        "next_charge_choices": [(f, BillingFrequency(f).label, prices[f].unit_price)
                                for f in cycles.next_charge_frequencies(subscription)
                                if f != subscription.next_charge_frequency],
    }


def _next_charge_answer(request, customer, subscription, *, message: str = "", violation: RuleViolation | None = None):
    """htmx: the panel alone, with the outcome in it; a plain post: the page (refused) or a redirect (done)."""
    panel_only = request.htmx and not request.htmx.boosted
    if violation is None and not panel_only:
        messages.success(request, message)
        return redirect(reverse("subscriptions:subscription-detail", args=[customer.pk, subscription.pk])
                        + "#billing-frequency")
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
    try:
        updated = cycles.set_next_charge_frequency(subscription_id=subscription.pk, actor=request.user,
                                                   version=posted_version(request.POST),
                                                   billing_frequency=request.POST.get("billing_frequency", ""),
                                                   now=timezone.now())
    except RuleViolation as violation:
        return _next_charge_answer(request, customer, subscription, violation=violation)
    message = (f"From the next charge on {updated.next_charge_on:%Y-%m-%d} (UTC) it is billed "
               f"{services.BILLED[updated.next_charge_frequency]}.")
    return _next_charge_answer(request, customer, subscription, message=message)


def next_charge_frequency_remove(request, customer_id, subscription_id):
    """Removes the instruction: the next charge keeps the current billing frequency."""
    customer, subscription = _load(request, customer_id, subscription_id)
    if request.method != "POST":
        return redirect("subscriptions:subscription-detail", customer_id=customer.pk, subscription_id=subscription.pk)
    try:
        updated = cycles.remove_next_charge_frequency(subscription_id=subscription.pk, actor=request.user,
                                                   version=posted_version(request.POST),
                                                      now=timezone.now())
    except RuleViolation as violation:
        return _next_charge_answer(request, customer, subscription, violation=violation)
    message = f"Billing frequency change removed: it stays billed {services.BILLED[updated.billing_frequency]}."
    return _next_charge_answer(request, customer, subscription, message=message)
