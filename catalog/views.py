import html
from decimal import Decimal

from django.contrib import messages
from django.http import HttpResponseRedirect
from django.middleware.csrf import get_token
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from catalog import cart as cart_services
from catalog.alignment import CartAlignment
from catalog.checkout import attestation_text, line_first_charge, purchase
from catalog.eligibility import buying_context, refusal
from catalog.filters import offer_search
from catalog.listing import OFFERS_PER_PAGE, BuyForm, cards_html, catalog_snapshot
from catalog.models import Order, OrderLine
from portal import access
from portal.access import Action
from portal.forms import next_url, parse_date, parse_int, parse_quantity, parse_text
from portal.models import Partner
from portal.pagination import ClampedPaginator, SmallListPaginator
from portal.errors import RuleViolation, RuleViolations
from portal.versions import posted_version
from portal.templatetags.portal_tags import money, utc, version_input_html
from subscriptions.recovery import order_delay


def _offer_page(request, customer):
    """The catalog (C2–C5) for this customer: filtered, paginated, each offer with its verdict."""
    partner = access.partner_of(request.user)
    can_buy = access.permission(request.user, Action.BUY)
    cart = cart_services.current_cart(customer, request.user, timezone.now()) if can_buy else None
    ctx = buying_context(customer, partner, cart)
    show_all = request.GET.get("show_all") == "1"
    search = offer_search(request.GET)
    offers = catalog_snapshot().listing(ctx, search, show_all)
    page = ClampedPaginator(offers, OFFERS_PER_PAGE).get_page(request.GET.get("page"))
    buy = BuyForm(action=reverse("catalog:cart-add", args=[customer.pk]), next_url=request.get_full_path(),
                  csrf_token=get_token(request), version_field=version_input_html(cart, of="cart")) if can_buy else None
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


def cart_add(request, customer_id):
    customer = access.get_customer(request.user, customer_id)
    if request.method != "POST":
        return redirect("catalog:offer-list", customer_id=customer.pk)
    access.require(request.user, Action.BUY)
    # Where to go back to is decided before the line is added: an unusable `next` falls back to the catalog.
    back = next_url(request, reverse("catalog:offer-list", args=[customer.pk]))
    try:
        availability_id = parse_int(request.POST.get("availability"))
        if availability_id is None:
            raise RuleViolation("C1", "Choose a term and billing frequency.")
        # Offers without a quantity field (usage-based, trials) send none; a sent field must be filled.
        raw_quantity = request.POST.get("quantity", "1")
        line = cart_services.add_to_cart(
            customer=customer, actor=request.user, availability_id=availability_id,
            quantity=parse_quantity(raw_quantity), aligned_end_date=None, now=timezone.now(),
            version=posted_version(request.POST))
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
                      {"customer": customer, "success": message, "cart_count": count, "oob": True, "cart": line.cart})
    messages.success(request, message)
    return HttpResponseRedirect(back)  # a path (next_url), never a view name for redirect() to reverse


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
        alignment = CartAlignment(customer, now.date())
        # The same eligibility rule the purchase applies, shown before the partner presses Purchase.
        ctx = buying_context(customer, member.partner)
        for line in lines:
            ctx.cart_sku_ids = {other.availability.sku_id for other in lines if other.pk != line.pk}
            amount = line_first_charge(line, now.date())
            total += amount
            offer = snapshot.by_pk.get(line.availability.sku_id)
            options = alignment.options(line.availability)
            rows.append({
                "line": line, "total": amount, "alignment": options,
                "error": (errors or {}).get(line.pk),
                "refusal": refusal(offer.facts if offer else line.availability.sku, ctx),
            })
    resellers = []
    if member.partner.kind == Partner.Kind.INDIRECT_PROVIDER:
        resellers = [link.reseller for link in member.partner.reseller_links.select_related("reseller").order_by("reseller__name")]
    other_errors = [v for k, v in (errors or {}).items() if not isinstance(k, int)]
    can_buy = access.permission(request.user, Action.BUY)
    # K5's additional resellers exist only for EU/EFTA customers: no query for the others.
    additional = list(cart.additional_resellers.select_related("partner")) if cart and customer.is_eu_efta else []
    return {
        "customer": customer, "section": "cart", "cart": cart, "lines": rows, "total": total,
        "lines_html": _line_rows(customer, cart, rows, can_buy, get_token(request)) if rows else "",
        "currency": rows[0]["line"].availability.currency if rows else "USD",
        "resellers": resellers, "partner": member.partner,
        "initial_reseller": cart_services.initial_reseller(cart, member.partner) if cart else None,
        "additional": additional,
        "additional_closed": cart_services.additional_resellers_closed(cart, member.partner, [a.partner for a in additional])
        if cart else None,
        "max_additional": cart_services.MAX_ADDITIONAL_RESELLERS,
        "attestation": attestation_text(cart) if cart else "", "other_errors": other_errors,
        "can_buy": can_buy,
        "expired_cart": None if cart else cart_services.last_expired_cart(customer, request.user),
    }


def _end_date_options(options, selected) -> SafeString:
    """K11's end-date choices of one line as <option>s. They are the cart page's longest loop (every month end and
    every alignable subscription in the term), so they are drawn here rather than by the template; labels are
    escaped with html.escape, which is what Django's escape filter applies, without its lazy-string wrapper."""
    return mark_safe("".join(
        f'<option value="{option.end_date.isoformat()}" {"selected" if option.end_date == selected else ""}>'
        f"{html.escape(option.label)}</option>" for option in options))


# The cart's line rows (K2), drawn here like the catalog's cards (catalog/listing.py): the template's loop cost more
# than the rest of the page. The markup, whitespace included, is what the template's loop drew; every value is
# escaped by format_html.
_ROW_OPEN = ('\n  <tr data-line="{pk}">\n    <td><strong>{name}</strong><span class="why">{publisher}</span>\n'
             '      {note}</td>\n    <td>{term}</td>\n    <td>{billing}</td>\n    <td class="num">{unit_price}</td>\n'
             '    <td>\n      ')
_ERROR = '<div class="field-error" role="alert">{}</div>\n      '
_REFUSAL = '<div class="field-error" role="note">Can\'t be bought now: {}{}</div>'
_REFUSAL_LINK = ' <a href="{}">{}</a>'
_FORM_OPEN = '\n      <form class="row-actions" method="post" action="{}">\n        {}\n        '
_QUANTITY = ('\n        <input type="number" name="quantity" value="{0}" min="1" aria-label="Quantity of {1}">'
             '\n        ')
_FIXED_QUANTITY = '<input type="hidden" name="quantity" value="{0}"><span>{0}</span>'
_SELECT = ('\n        <select name="aligned_end_date" aria-label="End date of {}">\n'
           '          <option value="">Full term</option>\n          {}\n        </select>\n        ')
_UPDATE = '<button class="btn" type="submit">Update</button>'
_FORM_CLOSE = '\n      </form>\n      '
_ENDS = '<span class="why">Ends {} (UTC); the first term is prorated.</span>'
_TRIAL = '{} trial licenses\n      '
_USAGE = "Pay as you go: billed by usage"
_FREE_TRIAL = '<span class="why">{}-day free trial</span>'
_ROW_CLOSE = '\n    </td>\n    <td class="num">{total}</td>\n    <td>{remove}</td>\n  </tr>\n  '
_REMOVE = ('<form method="post" action="{}">{}<button class="btn btn-subtle" type="submit" aria-label="Remove {}">'
           'Remove</button></form>')
_CSRF = '<input type="hidden" name="csrfmiddlewaretoken" value="{}">'


def _line_rows(customer, cart, rows, can_buy, csrf_token: str) -> SafeString:
    """The `<tr>`s of the cart's lines: quantity, K11's end date and the update and remove forms of each."""
    # With the cart's version (portal/versions.py), as {% version_input cart of="cart" %} draws it in the page's forms.
    csrf = format_html(_CSRF, csrf_token) + version_input_html(cart, of="cart")
    unselected: dict[int, SafeString] = {}
    parts = []
    for row in rows:
        line, sku = row["line"], row["line"].availability.sku
        availability = line.availability
        if row["error"]:
            note = format_html(_ERROR, row["error"].message)
        elif row["refusal"]:
            why = row["refusal"]
            note = format_html(_REFUSAL, why.message, format_html(_REFUSAL_LINK, why.link, why.link_label) if why.link else "")
        else:
            note = ""
        parts.append(format_html(
            _ROW_OPEN, pk=line.pk, name=sku.name, publisher=sku.product.publisher.name, note=note,
            term=availability.get_term_display(), billing=availability.get_billing_frequency_display(),
            unit_price=money(availability.unit_price, availability.currency) if sku.is_license_based
            else mark_safe('<span class="muted">pay as you go</span>')))
        quantity_field = sku.is_license_based and not sku.is_trial
        if quantity_field or row["alignment"]:
            parts.append(format_html(
                _FORM_OPEN, reverse("catalog:cart-line-update", args=[customer.pk, line.pk]), csrf))
            parts.append(format_html(_QUANTITY if quantity_field else _FIXED_QUANTITY, line.quantity, sku.name))
            parts.append("\n        ")
            if row["alignment"]:
                if line.aligned_end_date is None:  # the lines of one term share their options' list, and this markup
                    options = unselected.get(id(row["alignment"]))
                    if options is None:
                        options = unselected[id(row["alignment"])] = _end_date_options(row["alignment"], None)
                else:
                    options = _end_date_options(row["alignment"], line.aligned_end_date)
                parts.append(format_html(_SELECT, sku.name, options))
            parts.append("\n        ")
            if can_buy:
                parts.append(_UPDATE)
            parts.append(_FORM_CLOSE)
            if line.aligned_end_date:
                parts.append(format_html(_ENDS, utc(line.aligned_end_date)))
            parts.append("\n      ")
        elif sku.is_trial:
            parts.append(format_html(_TRIAL, line.quantity))
        else:
            parts.append(_USAGE)
        if sku.is_license_based:
            total = money(row["total"], availability.currency)
            if sku.free_trial_days and sku.is_isv:
                total = format_html("{}{}", total, format_html(_FREE_TRIAL, sku.free_trial_days))
        else:
            total = mark_safe('<span class="muted">by usage</span>')
        remove = format_html(_REMOVE, reverse("catalog:cart-line-remove", args=[customer.pk, line.pk]), csrf,
                             sku.name) if can_buy else ""
        parts.append(format_html(_ROW_CLOSE, total=total, remove=remove))
    return mark_safe("".join(parts))  # every part above is escaped markup


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
            aligned_end_date=parse_date(request.POST.get("aligned_end_date")), now=timezone.now(),
            version=posted_version(request.POST))
        return f"Updated {line.availability.sku.name}."
    return _cart_action(request, customer_id, action)


def cart_line_remove(request, customer_id, line_id):
    def action(customer, cart):
        access.check_cart_line(cart, line_id)
        cart_services.remove_line(cart=cart, actor=request.user, line_id=line_id, now=timezone.now(),
                                  version=posted_version(request.POST))
        return "Removed the line from the cart."
    return _cart_action(request, customer_id, action)


def cart_reseller(request, customer_id):
    def action(customer, cart):
        raw = request.POST.get("reseller", "")
        reseller_id = parse_int(raw)
        if raw and reseller_id is None:
            raise RuleViolation("K4", "Choose a reseller from the list.")
        cart = cart_services.set_reseller(cart=cart, actor=request.user, reseller_id=reseller_id, now=timezone.now(),
                                          version=posted_version(request.POST))
        message = f"Reseller set to {cart.reseller.name}." if cart.reseller else "No indirect reseller for this purchase."
        if cart.removed_additional:
            names = ", ".join(p.name for p in cart.removed_additional)
            message += f" Removed from the additional resellers: {names}."
        return message
    return _cart_action(request, customer_id, action)


def cart_additional_add(request, customer_id):
    def action(customer, cart):
        partner_id = parse_text(request.POST.get("partner_id"), rule="K5", field="partner_id", what="A PartnerID")
        entry = cart_services.add_additional_reseller(cart=cart, actor=request.user, partner_id_text=partner_id[:40],
                                                      now=timezone.now(), version=posted_version(request.POST))
        return f"Declared {entry.partner.name} as an additional reseller."
    return _cart_action(request, customer_id, action)


def cart_additional_remove(request, customer_id, partner_pk):
    def action(customer, cart):
        cart_services.remove_additional_reseller(cart=cart, actor=request.user, partner_pk=partner_pk, now=timezone.now(),
                                                 version=posted_version(request.POST))
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
                                   now=timezone.now(), version=posted_version(request.POST), **extra)
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
    return render(request, "catalog/order_confirmation.html", {"customer": customer, "order": order, "section": "orders",
                                                               "delay": order_delay(order, timezone.now())})


def order_list(request, customer_id):
    customer = access.get_customer(request.user, customer_id)
    orders = access.customer_orders(request.user, customer).select_related("placed_by").order_by("-created_at", "-pk")
    page = SmallListPaginator(orders, 25).get_page(request.GET.get("page"))
    return render(request, "catalog/order_list.html", {"customer": customer, "page": page, "section": "orders"})


# What the order page shows of each row it joins (reading only these keeps the wide join cheap to build).
ORDER_PAGE_FIELDS = (
    "order_id", "sku_id", "status", "term", "billing_frequency", "quantity", "unit_price", "currency", "first_charge",
    "aligned_end_date", "fulfilled_at",
    "order__status", "order__total", "order__currency", "order__created_at", "order__attested_as",
    "order__customer__company_name", "order__customer__billing_country", "order__customer__partner_id",
    "order__placed_by__username", "order__placed_by__first_name", "order__placed_by__last_name",
    "order__reseller__name", "order__reseller__partner_id",
    "sku__name", "subscription__status", "subscription__friendly_name", "subscription__customer_id",
    "subscription__sku__name",
)


def order_detail(request, customer_id, order_id):
    # The order comes with its lines, in one query: each line joins its order (with the customer, who placed it and
    # the reseller), its offer and its subscription. Scoped as access.get_customer and get_order would: the partner's
    # orders (a reseller's: those it is reseller of), of this customer; outside them, 404.
    order_scope = access.orders_for(request.user).filter(customer_id=customer_id, pk=order_id)
    lines = list(OrderLine.objects.filter(order__in=order_scope).select_related(
        "order__customer", "order__placed_by", "order__reseller", "sku", "subscription__sku").only(*ORDER_PAGE_FIELDS))
    if lines:
        order = lines[0].order
    else:  # an order without lines (none is placed so): the order alone
        order = get_object_or_404(order_scope.select_related("customer", "placed_by", "reseller"))
    customer = order.customer
    # K5: only an EU/EFTA customer's order can name additional resellers (the cart refuses them otherwise).
    additional = order.additional_resellers.select_related("partner") if customer.is_eu_efta else []
    context = {"customer": customer, "order": order, "line_rows": _order_line_rows(customer, lines), "section": "orders",
               "additional": additional, "delay": order_delay(order, timezone.now(), lines=lines)}
    if request.htmx and not request.htmx.boosted:
        return render(request, "catalog/order_detail.html#lines", context)
    return render(request, "catalog/order_detail.html", context)


def _order_line_rows(customer, lines) -> str:
    """The order's table rows. Written here, not by a template loop (its lookups and filters per cell cost more than
    the rest of the page); every value from the database is escaped."""
    rows = []
    for line in lines:
        currency = line.currency
        aligned = f'<span class="why">aligned to end {utc(line.aligned_end_date)}</span>' if line.aligned_end_date else ""
        fulfilled = f'<span class="why">{utc(line.fulfilled_at)}</span>' if line.fulfilled_at else ""
        subscription = getattr(line, "subscription", None)
        if line.status == OrderLine.Status.FULFILLED and subscription is not None:
            url = reverse("subscriptions:subscription-detail", args=[customer.pk, subscription.pk])
            link = (f'<a href="{url}">{html.escape(subscription.display_name)}</a> '
                    f'<span class="badge badge-{html.escape(subscription.status)}">'
                    f'{html.escape(subscription.get_status_display())}</span>')
        else:
            link = '<span class="muted">Being created…</span>'
        rows.append(
            f'\n    <tr data-line="{line.pk}"><td>{html.escape(line.sku.name)}</td>'
            f'<td>{html.escape(line.get_term_display())}{aligned}</td><td>{html.escape(line.get_billing_frequency_display())}</td>'
            f'\n      <td class="num">{line.quantity}</td><td class="num">{html.escape(money(line.unit_price, currency))}</td>'
            f'<td class="num">{html.escape(money(line.line_total, currency))}</td>'
            f'\n      <td><span class="badge badge-{html.escape(line.status)}">{html.escape(line.get_status_display())}</span>'
            f'{fulfilled}</td>\n      <td>{link}</td></tr>\n    '
        )
    return mark_safe("".join(rows))


def all_orders(request):
    """Every order of the partner's customers, newest first (O1 across customers)."""
    orders = access.orders_for(request.user).select_related("customer", "placed_by").order_by("-created_at", "-pk")
    status = request.GET.get("status", "")
    if status in Order.Status.values:
        orders = orders.filter(status=status)
    page = SmallListPaginator(orders, 25).get_page(request.GET.get("page"))
    return render(request, "catalog/all_orders.html", {"page": page, "status": status, "statuses": Order.Status.choices})
