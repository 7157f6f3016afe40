import html
from decimal import Decimal

from django.contrib import messages
from django.core.paginator import Paginator
from django.middleware.csrf import get_token
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import SafeString, mark_safe

from catalog import cart as cart_services
from catalog.alignment import alignable_subscriptions, alignment_options, can_align
from catalog.checkout import attestation_text, line_first_charge, purchase
from catalog.eligibility import buying_context, refusal
from catalog.filters import offer_search
from catalog.listing import OFFERS_PER_PAGE, BuyForm, cards_html, catalog_snapshot
from catalog.models import Order
from portal import access
from portal.access import Action
from portal.forms import parse_date, parse_int, parse_quantity
from portal.models import Partner
from portal.pagination import SmallListPaginator
from portal.rules import RuleViolation, RuleViolations


def _offer_page(request, customer):
    """The catalog (C2–C5) for this customer: filtered, paginated, each offer with its verdict."""
    partner = access.partner_of(request.user)
    can_buy = access.permission(request.user, Action.BUY)
    cart = cart_services.current_cart(customer, request.user, timezone.now()) if can_buy else None
    ctx = buying_context(customer, partner, cart)
    show_all = request.GET.get("show_all") == "1"
    search = offer_search(request.GET)
    offers = catalog_snapshot().listing(ctx, search, show_all)
    page = Paginator(offers, OFFERS_PER_PAGE).get_page(request.GET.get("page"))
    buy = BuyForm(action=reverse("catalog:cart-add", args=[customer.pk]), next_url=request.get_full_path(),
                  csrf_token=get_token(request)) if can_buy else None
    return {
        "customer": customer, "section": "subscriptions", "page": page,
        "offers": cards_html(page.object_list, ctx, buy, can_buy.reason),
        "checkboxes": search.checkboxes_html, "search": request.GET.get("q", ""),
        "can_buy": can_buy, "cart": cart, "cart_count": len(ctx.cart_sku_ids), "show_all": show_all,
    }


def offer_list(request, customer_id):
    customer = access.get_customer(request.user, customer_id)
    context = _offer_page(request, customer)
    if request.htmx and not request.htmx.boosted:
        return render(request, "catalog/offer_list.html#results", context)
    return render(request, "catalog/offer_list.html", context)


def _safe_next(request, default: str) -> str:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return default


def cart_add(request, customer_id):
    customer = access.get_customer(request.user, customer_id)
    if request.method != "POST":
        return redirect("catalog:offer-list", customer_id=customer.pk)
    access.require(request.user, Action.BUY)
    back = _safe_next(request, reverse("catalog:offer-list", args=[customer.pk]))
    try:
        availability_id = parse_int(request.POST.get("availability"))
        if availability_id is None:
            raise RuleViolation("C1", "Choose a term and billing frequency.")
        # Offers without a quantity field (usage-based, trials) send none; a sent field must be filled.
        raw_quantity = request.POST.get("quantity", "1")
        line = cart_services.add_to_cart(
            customer=customer, actor=request.user, availability_id=availability_id,
            quantity=parse_quantity(raw_quantity), aligned_end_date=None, now=timezone.now())
    except RuleViolation as violation:
        if request.htmx:
            return render(request, "catalog/offer_list.html#cart-feedback",
                          {"customer": customer, "error": violation.message}, status=violation.status)
        messages.error(request, violation.message)
        context = _offer_page(request, customer)
        context["error"] = violation.message
        return render(request, "catalog/offer_list.html", context, status=violation.status)
    message = f"Added {line.availability.sku.name} to the cart ({line.quantity} in the cart)."
    if request.htmx:
        count = line.cart.lines.count()
        return render(request, "catalog/offer_list.html#cart-feedback",
                      {"customer": customer, "success": message, "cart_count": count, "oob": True})
    messages.success(request, message)
    return redirect(back)


def _cart_context(request, customer, cart, *, errors=None, lines=None, snapshot=None):
    """The cart page (K2) with each line's verdict; `lines` (with their offers) when the caller read them already."""
    member = access.membership(request.user)
    now = timezone.now()
    rows = []
    total = Decimal("0.00")
    if cart is not None:
        cart.customer = customer  # the same row, already read: the page and the K5 checks read it
        if lines is None:
            lines = cart_services.cart_lines(cart, snapshot or catalog_snapshot())
        snapshot = snapshot or catalog_snapshot()
        alignable = alignable_subscriptions(customer, now.date()) if any(can_align(line.availability) for line in lines) else []
        # The same eligibility rule the purchase applies, shown before the partner presses Purchase.
        ctx = buying_context(customer, member.partner)
        for line in lines:
            ctx.cart_sku_ids = {other.availability.sku_id for other in lines if other.pk != line.pk}
            amount = line_first_charge(line, now.date())
            total += amount
            offer = snapshot.by_pk.get(line.availability.sku_id)
            alignment = alignment_options(customer, line.availability, now.date(), alignable) if can_align(line.availability) else []
            rows.append({
                "line": line, "total": amount, "alignment": alignment,
                "alignment_html": _end_date_options(alignment, line.aligned_end_date),
                "error": (errors or {}).get(line.pk),
                "refusal": refusal(offer.facts if offer else line.availability.sku, ctx),
            })
    resellers = []
    if member.partner.kind == Partner.Kind.INDIRECT_PROVIDER:
        resellers = [link.reseller for link in member.partner.reseller_links.select_related("reseller").order_by("reseller__name")]
    other_errors = [v for k, v in (errors or {}).items() if not isinstance(k, int)]
    # K5's additional resellers exist only for EU/EFTA customers: no query for the others.
    additional = list(cart.additional_resellers.select_related("partner")) if cart and customer.is_eu_efta else []
    return {
        "customer": customer, "section": "cart", "cart": cart, "lines": rows, "total": total,
        "currency": rows[0]["line"].availability.currency if rows else "USD",
        "resellers": resellers, "partner": member.partner,
        "initial_reseller": cart_services.initial_reseller(cart, member.partner) if cart else None,
        "additional": additional,
        "additional_closed": cart_services.additional_resellers_closed(cart, member.partner, [a.partner for a in additional])
        if cart else None,
        "max_additional": cart_services.MAX_ADDITIONAL_RESELLERS,
        "attestation": attestation_text(cart) if cart else "", "other_errors": other_errors,
        "can_buy": access.permission(request.user, Action.BUY),
        "expired_cart": None if cart else cart_services.last_expired_cart(customer, request.user),
    }


def _end_date_options(options, selected) -> SafeString:
    """K11's end-date choices of one line as <option>s. They are the cart page's longest loop (every month end and
    every alignable subscription in the term), so they are drawn here rather than by the template; labels are
    escaped with html.escape, which is what Django's escape filter applies, without its lazy-string wrapper."""
    return mark_safe("".join(
        f'<option value="{option.end_date.isoformat()}" {"selected" if option.end_date == selected else ""}>'
        f"{html.escape(option.label)}</option>" for option in options))


def cart_detail(request, customer_id):
    customer = access.get_customer(request.user, customer_id)
    snapshot = catalog_snapshot()
    cart, lines = cart_services.open_cart_with_lines(customer, request.user, timezone.now(), snapshot)
    return render(request, "catalog/cart.html", _cart_context(request, customer, cart, lines=lines, snapshot=snapshot))


def _cart_or_conflict(request, customer):
    cart = cart_services.current_cart(customer, request.user, timezone.now())
    if cart is None:
        raise RuleViolation("K12", "There is no open cart for this customer (it was purchased or has expired).", conflict=True)
    return cart


def _cart_action(request, customer_id, action):
    """Runs one cart service; a refusal re-renders the cart with the message and 422/409."""
    customer = access.get_customer(request.user, customer_id)
    if request.method != "POST":
        # A reload of a refused form's page, or a bookmarked action: show the cart instead.
        return redirect("catalog:cart-detail", customer_id=customer.pk)
    access.require(request.user, Action.BUY)
    try:
        cart = _cart_or_conflict(request, customer)
        message = action(customer, cart)
    except RuleViolation as violation:
        cart = cart_services.current_cart(customer, request.user, timezone.now())
        context = _cart_context(request, customer, cart)
        context["error"] = violation.message
        return render(request, "catalog/cart.html", context, status=violation.status)
    if message:
        messages.success(request, message)
    return redirect("catalog:cart-detail", customer_id=customer.pk)


def cart_line_update(request, customer_id, line_id):
    def action(customer, cart):
        access.check_cart_line(cart, line_id)
        line = cart_services.update_line(
            cart=cart, actor=request.user, line_id=line_id, quantity=parse_quantity(request.POST.get("quantity")),
            aligned_end_date=parse_date(request.POST.get("aligned_end_date")), now=timezone.now())
        return f"Updated {line.availability.sku.name}."
    return _cart_action(request, customer_id, action)


def cart_line_remove(request, customer_id, line_id):
    def action(customer, cart):
        access.check_cart_line(cart, line_id)
        cart_services.remove_line(cart=cart, actor=request.user, line_id=line_id, now=timezone.now())
        return "Removed the line from the cart."
    return _cart_action(request, customer_id, action)


def cart_reseller(request, customer_id):
    def action(customer, cart):
        raw = request.POST.get("reseller", "")
        reseller_id = parse_int(raw)
        if raw and reseller_id is None:
            raise RuleViolation("K4", "Choose a reseller from the list.")
        cart = cart_services.set_reseller(cart=cart, actor=request.user, reseller_id=reseller_id, now=timezone.now())
        message = f"Reseller set to {cart.reseller.name}." if cart.reseller else "No indirect reseller for this purchase."
        if cart.removed_additional:
            names = ", ".join(p.name for p in cart.removed_additional)
            message += f" Removed from the additional resellers: {names}."
        return message
    return _cart_action(request, customer_id, action)


def cart_additional_add(request, customer_id):
    def action(customer, cart):
        entry = cart_services.add_additional_reseller(cart=cart, actor=request.user,
                                                      partner_id_text=request.POST.get("partner_id", "")[:40], now=timezone.now())
        return f"Declared {entry.partner.name} as an additional reseller."
    return _cart_action(request, customer_id, action)


def cart_additional_remove(request, customer_id, partner_pk):
    def action(customer, cart):
        cart_services.remove_additional_reseller(cart=cart, actor=request.user, partner_pk=partner_pk, now=timezone.now())
        return "Removed the additional reseller."
    return _cart_action(request, customer_id, action)


def cart_purchase(request, customer_id, cart_id):
    customer = access.get_customer(request.user, customer_id)
    if request.method != "POST":
        return redirect("catalog:cart-detail", customer_id=customer.pk)
    access.require(request.user, Action.BUY)
    cart = access.get_cart(request.user, customer, cart_id)
    extra = {}
    try:
        if "reseller" in request.POST:
            # The reseller shown on the submitted page is the one bought with (K4).
            raw = request.POST["reseller"]
            extra["reseller_id"] = parse_int(raw) if raw else None
            if raw and extra["reseller_id"] is None:
                raise RuleViolation("K4", "Choose a reseller from the list.")
        order, _created = purchase(cart=cart, actor=request.user, attested=request.POST.get("attest") == "on",
                                   now=timezone.now(), **extra)
    except RuleViolations as refused:
        context = _cart_context(request, customer, cart, errors=refused.violations)
        context["error"] = "Nothing was bought: fix the lines marked below and purchase again."
        return render(request, "catalog/cart.html", context, status=422)
    except RuleViolation as violation:
        live_cart = cart_services.current_cart(customer, request.user, timezone.now())
        context = _cart_context(request, customer, live_cart)
        context["error"] = violation.message
        return render(request, "catalog/cart.html", context, status=violation.status)
    return redirect("catalog:order-confirmation", customer_id=customer.pk, order_id=order.pk)


def order_confirmation(request, customer_id, order_id):
    customer = access.get_customer(request.user, customer_id)
    order = access.get_order(request.user, customer, order_id)
    return render(request, "catalog/order_confirmation.html", {"customer": customer, "order": order, "section": "orders"})


def order_list(request, customer_id):
    customer = access.get_customer(request.user, customer_id)
    orders = access.customer_orders(request.user, customer).select_related("placed_by").order_by("-created_at", "-pk")
    page = SmallListPaginator(orders, 25).get_page(request.GET.get("page"))
    return render(request, "catalog/order_list.html", {"customer": customer, "page": page, "section": "orders"})


def order_detail(request, customer_id, order_id):
    customer = access.get_customer(request.user, customer_id)
    order = access.get_order(request.user, customer, order_id)
    lines = order.lines.select_related("sku", "subscription__sku")  # only what the page shows: fewer joins and rows
    context = {"customer": customer, "order": order, "lines": lines, "section": "orders",
               "additional": order.additional_resellers.select_related("partner")}
    if request.htmx and not request.htmx.boosted:
        return render(request, "catalog/order_detail.html#lines", context)
    return render(request, "catalog/order_detail.html", context)


def all_orders(request):
    """Every order of the partner's customers, newest first (O1 across customers)."""
    orders = access.orders_for(request.user).select_related("customer", "placed_by").order_by("-created_at", "-pk")
    status = request.GET.get("status", "")
    if status in Order.Status.values:
        orders = orders.filter(status=status)
    page = SmallListPaginator(orders, 25).get_page(request.GET.get("page"))
    return render(request, "catalog/all_orders.html", {"page": page, "status": status, "statuses": Order.Status.choices})
