from decimal import Decimal

from django.contrib import messages
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext

from catalog import cart as cart_services
from catalog.alignment import CartAlignment
from catalog.checkout import UNCHANGED, attestation_text, line_first_charge, purchase
from catalog.eligibility import buying_context
from catalog.filters import OrderFilter
from catalog.forms import (
    AdditionalResellerForm,
    AddToCartForm,
    CartLineForm,
    CatalogViewForm,
    PurchaseForm,
    ResellerForm,
    VersionForm,
)
from catalog.listing import (
    OFFERS_PER_PAGE,
    cached_offer_facts,
    listed_offer_ids,
    listing_facts,
    offer_cards,
    offer_filter,
)
from catalog.models import TRIAL_LICENSES, Availability, Order, OrderLine, catalog_version
from portal import access
from portal.access import Action
from portal.errors import RuleViolation, RuleViolations
from portal.forms import first_error, next_url
from portal.models import Partner
from portal.pagination import ClampedPaginator, SmallListPaginator
from subscriptions.recovery import order_delay


def _offer_page(request, customer, form=None):
    """The catalog (C2–C5) for this customer: filtered, paginated, each offer with its verdict."""
    partner = access.partner_of(request.user)
    can_buy = access.permission(request.user, Action.BUY)
    cart = cart_services.current_cart(customer, request.user, timezone.now()) if can_buy else None
    ctx = buying_context(customer, partner, cart)
    view = CatalogViewForm(request.GET)
    show_all = view.is_valid() and view.cleaned_data["show_all"]
    filters = offer_filter(request.GET)
    version = catalog_version()  # keys the listing facts and the cards' cached fragments
    facts = listing_facts(version)  # read once for the listing and the page's verdicts
    listed = listed_offer_ids(filters.qs, ctx, show_all, narrowed=filters.narrows(), facts=facts)
    page = ClampedPaginator(listed, OFFERS_PER_PAGE).get_page(request.GET.get("page"))
    return {
        # A refused "Add to cart" sent without JavaScript: its card shows the way and quantity as typed, and why.
        "typed": _typed(form),
        "catalog_version": version,
        "customer": customer,
        "section": "subscriptions",
        "page": page,
        "cards": offer_cards(list(page.object_list), ctx, facts),
        "filters": filters,
        "next_url": request.get_full_path(),
        "trial_licenses": TRIAL_LICENSES,
        "form": form,
        "can_buy": can_buy,
        "cart": cart,
        "cart_count": len(ctx.cart_sku_ids),
        "show_all": show_all,
    }


def _typed(form) -> dict | None:
    """What a refused "Add to cart" form sent, as its card draws it again: the offer it was for (the SKU of the way
    chosen, if that way exists), the way and the quantity as typed."""
    if form is None or not form.is_bound:
        return None
    availability = str(form.data.get("availability", ""))[:20]
    sku_pk = (
        Availability.objects.filter(pk=availability).values_list("sku_id", flat=True).first()
        if availability.isascii() and availability.isdigit()
        else None
    )
    if sku_pk is None:
        return None
    return {"sku_pk": sku_pk, "availability": availability, "quantity": str(form.data.get("quantity", ""))[:40]}


def offer_list(request, customer_id):
    customer = access.get_customer(request.user, customer_id)
    context = _offer_page(request, customer)
    if request.htmx and not request.htmx.boosted:
        return render(request, "catalog/offer_list.html#results", context)
    return render(request, "catalog/offer_list.html", context)


def _add_refused(request, customer, form, message: str, status: int):
    """A refused "Add to cart": the card's feedback for htmx, else the catalog again with the message."""
    if request.htmx:
        return render(
            request, "catalog/offer_list.html#cart-feedback", {"customer": customer, "error": message}, status=status
        )
    messages.error(request, message)
    context = _offer_page(request, customer, form)
    context["error"] = message
    return render(request, "catalog/offer_list.html", context, status=status)


def cart_add(request, customer_id):
    customer = access.get_customer(request.user, customer_id)
    if request.method != "POST":
        return redirect("catalog:offer-list", customer_id=customer.pk)
    access.require(request.user, Action.BUY)
    # Where to go back to is decided before the line is added: an unusable `next` falls back to the catalog.
    back = next_url(request, reverse("catalog:offer-list", args=[customer.pk]))
    form = AddToCartForm(request.POST)
    if not form.is_valid():
        return _add_refused(request, customer, form, first_error(form), 422)
    try:
        line = cart_services.add_to_cart(
            customer=customer,
            actor=request.user,
            availability_id=form.cleaned_data["availability"],
            quantity=form.cleaned_data["quantity"],
            aligned_end_date=None,
            now=timezone.now(),
            version=form.cleaned_data["version"],
        )
    except RuleViolation as violation:
        return _add_refused(request, customer, form, violation.message, violation.status)
    message = gettext("Added %(offer)s to the cart (%(quantity)s in the cart).") % {
        "offer": line.availability.sku.name,
        "quantity": number_format(line.quantity, force_grouping=True),
    }
    if request.htmx:
        count = line.cart.lines.count()
        return render(
            request,
            "catalog/offer_list.html#cart-feedback",
            {"customer": customer, "success": message, "cart_count": count, "oob": True, "cart": line.cart},
        )
    messages.success(request, message)
    return HttpResponseRedirect(back)  # a path (next_url), never a view name for redirect() to reverse


def _cart_context(request, customer, cart, *, errors=None, refused_line=None):
    """The cart page (K2) with each line's verdict. `refused_line` is (line id, its refused CartLineForm): that row
    shows what was typed."""
    member = access.membership(request.user)
    now = timezone.now()
    rows = []
    total = Decimal("0.00")
    if cart is not None:
        cart.customer = customer  # the same row, already read: the page and the K5 checks read it
        lines = cart_services.cart_lines(cart)
        alignment = CartAlignment(customer, now.date())
        # The same refusal the purchase gives each line (catalog.cart.line_refusal: C3–C5, K6–K8, K11), shown before
        # the partner presses Purchase, with the offer's eligibility over the catalog's cached facts (the purchase
        # reads them from the database).
        ctx = buying_context(customer, member.partner)
        known = cached_offer_facts([line.availability.sku_id for line in lines]) if lines else {}
        for line in lines:
            sku = line.availability.sku
            amount = line_first_charge(line, now.date())
            total += amount
            typed = refused_line[1].data if refused_line and refused_line[0] == line.pk else None
            rows.append(
                {
                    "line": line,
                    "sku": sku,
                    "availability": line.availability,
                    "total": amount,
                    "alignment": alignment.options(line.availability),
                    "quantity_field": sku.is_license_based and not sku.is_trial,
                    "quantity": typed.get("quantity", "") if typed is not None else line.quantity,
                    "end_date": (
                        typed.get("aligned_end_date", "")
                        if typed is not None
                        else line.aligned_end_date.isoformat()
                        if line.aligned_end_date
                        else ""
                    ),
                    "error": (errors or {}).get(line.pk),
                    # An offer newer than the cached facts: the rule over the loaded offer.
                    "refusal": cart_services.line_refusal(
                        cart=cart,
                        availability=line.availability,
                        quantity=line.quantity,
                        aligned_end_date=line.aligned_end_date,
                        today=now.date(),
                        ctx=ctx,
                        line_pk=line.pk,
                        lines=lines,
                        offer=known.get(sku.pk),
                    ),
                }
            )
    resellers = []
    if member.partner.kind == Partner.Kind.INDIRECT_PROVIDER:
        # Each with K4's verdict: one that can't be chosen is listed, unselectable, with the reason (the one already
        # chosen stays selectable, so the purchase still sends it and is refused with that reason, not dropped).
        resellers = [
            {"partner": link.reseller, "refusal": cart_services.reseller_refusal(link.reseller)}
            for link in member.partner.reseller_links.select_related("reseller").order_by("reseller__name")
        ]
    other_errors = [v for k, v in (errors or {}).items() if not isinstance(k, int)]
    # K5's additional resellers exist only for EU/EFTA customers: no query for the others.
    additional = list(cart.additional_resellers.select_related("partner")) if cart and customer.is_eu_efta else []
    return {
        "customer": customer,
        "section": "cart",
        "cart": cart,
        "lines": rows,
        "total": total,
        "currency": rows[0]["availability"].currency if rows else "USD",
        "resellers": resellers,
        "partner": member.partner,
        "initial_reseller": cart_services.initial_reseller(cart, member.partner) if cart else None,
        "additional": additional,
        "additional_closed": cart_services.additional_resellers_closed(
            cart, member.partner, [a.partner for a in additional]
        )
        if cart
        else None,
        "max_additional": cart_services.MAX_ADDITIONAL_RESELLERS,
        "attestation": attestation_text(cart) if cart else "",
        "other_errors": other_errors,
        "can_buy": access.permission(request.user, Action.BUY),
        "expired_cart": None if cart else cart_services.last_expired_cart(customer, request.user),
    }


def cart_detail(request, customer_id):
    customer = access.get_customer(request.user, customer_id)
    cart = cart_services.current_cart(customer, request.user, timezone.now())
    return render(request, "catalog/cart.html", _cart_context(request, customer, cart))


def _cart_refused(request, customer, message: str, status: int, **context_args):
    """The cart page again, as it is now, with the refusal's message and its status (422 or 409)."""
    cart = cart_services.current_cart(customer, request.user, timezone.now())
    context = _cart_context(request, customer, cart, **context_args)
    context["error"] = message
    return render(request, "catalog/cart.html", context, status=status)


def _cart_action(request, customer_id, form_class, action, *, line_id=None):
    """A cart form's post: access, then the form (refused: 422 with what was typed), then the service (refused:
    422 or 409), then back to the cart with the service's message."""
    customer = access.get_customer(request.user, customer_id)
    if request.method != "POST":
        # A reload of a refused form's page, or a bookmarked action: show the cart instead.
        return redirect("catalog:cart-detail", customer_id=customer.pk)
    access.require(request.user, Action.BUY)
    refused_line = None
    try:
        cart = cart_services.open_cart_or_conflict(customer, request.user, timezone.now())
        if line_id is not None:
            access.check_cart_line(cart, line_id)
        form = form_class(request.POST)
        refused_line = (line_id, form) if line_id is not None else None
        if not form.is_valid():
            return _cart_refused(request, customer, first_error(form), 422, refused_line=refused_line)
        message = action(customer, cart, form.cleaned_data)
    except RuleViolation as violation:
        return _cart_refused(request, customer, violation.message, violation.status, refused_line=refused_line)
    if message:
        messages.success(request, message)
    return redirect("catalog:cart-detail", customer_id=customer.pk)


def cart_line_update(request, customer_id, line_id):
    def action(customer, cart, data):
        line = cart_services.update_line(
            cart=cart,
            actor=request.user,
            line_id=line_id,
            quantity=data["quantity"],
            aligned_end_date=data["aligned_end_date"],
            now=timezone.now(),
            version=data["version"],
        )
        return gettext("Updated %(offer)s.") % {"offer": line.availability.sku.name}

    return _cart_action(request, customer_id, CartLineForm, action, line_id=line_id)


def cart_line_remove(request, customer_id, line_id):
    def action(customer, cart, data):
        cart_services.remove_line(
            cart=cart, actor=request.user, line_id=line_id, now=timezone.now(), version=data["version"]
        )
        return gettext("Removed the line from the cart.")

    return _cart_action(request, customer_id, VersionForm, action, line_id=line_id)


def cart_reseller(request, customer_id):
    def action(customer, cart, data):
        cart = cart_services.set_reseller(
            cart=cart, actor=request.user, reseller_id=data["reseller"], now=timezone.now(), version=data["version"]
        )
        names = gettext(", ").join(p.name for p in cart.removed_additional)
        if cart.reseller and names:
            return gettext("Reseller set to %(reseller)s. Removed from the additional resellers: %(names)s.") % {
                "reseller": cart.reseller.name,
                "names": names,
            }
        if cart.reseller:
            return gettext("Reseller set to %(reseller)s.") % {"reseller": cart.reseller.name}
        if names:
            return gettext(
                "No indirect reseller for this purchase. Removed from the additional resellers: %(names)s."
            ) % {"names": names}
        return gettext("No indirect reseller for this purchase.")

    return _cart_action(request, customer_id, ResellerForm, action)


def cart_additional_add(request, customer_id):
    def action(customer, cart, data):
        entry = cart_services.add_additional_reseller(
            cart=cart,
            actor=request.user,
            partner_id_text=data["partner_id"],
            now=timezone.now(),
            version=data["version"],
        )
        return gettext("Declared %(partner)s as an additional reseller.") % {"partner": entry.partner.name}

    return _cart_action(request, customer_id, AdditionalResellerForm, action)


def cart_additional_remove(request, customer_id, partner_pk):
    def action(customer, cart, data):
        cart_services.remove_additional_reseller(
            cart=cart, actor=request.user, partner_pk=partner_pk, now=timezone.now(), version=data["version"]
        )
        return gettext("Removed the additional reseller.")

    return _cart_action(request, customer_id, VersionForm, action)


def cart_purchase(request, customer_id, cart_id):
    customer = access.get_customer(request.user, customer_id)
    if request.method != "POST":
        return redirect("catalog:cart-detail", customer_id=customer.pk)
    access.require(request.user, Action.BUY)
    cart = access.get_cart(request.user, customer, cart_id)
    form = PurchaseForm(request.POST)
    if not form.is_valid():
        return _cart_refused(request, customer, first_error(form), 422)
    data = form.cleaned_data
    try:
        # The reseller shown on the submitted page is the one bought with (K4); a page without the field keeps it.
        order, _created = purchase(
            cart=cart,
            actor=request.user,
            attested=data["attest"],
            now=timezone.now(),
            version=data["version"],
            reseller_id=data["reseller"] if "reseller" in request.POST else UNCHANGED,
        )
    except RuleViolations as refused:
        context = _cart_context(request, customer, cart, errors=refused.violations)
        context["error"] = gettext("Nothing was bought: fix the lines marked below and purchase again.")
        return render(request, "catalog/cart.html", context, status=422)
    except RuleViolation as violation:
        return _cart_refused(request, customer, violation.message, violation.status)
    return redirect("catalog:order-confirmation", customer_id=customer.pk, order_id=order.pk)


def order_confirmation(request, customer_id, order_id):
    """The order just placed, with its lines as the order page shows them, updating itself the same way (its lines
    poll the order page's while the order is pending)."""
    return render(request, "catalog/order_confirmation.html", _order_page(request, customer_id, order_id))


def order_list(request, customer_id):
    customer = access.get_customer(request.user, customer_id)
    orders = access.customer_orders(request.user, customer).select_related("placed_by").order_by("-created_at", "-pk")
    page = SmallListPaginator(orders, 25).get_page(request.GET.get("page"))
    return render(request, "catalog/order_list.html", {"customer": customer, "page": page, "section": "orders"})


# What the order page shows of each row it joins (reading only these keeps the wide join cheap to build).
ORDER_PAGE_FIELDS = (
    "order_id",
    "sku_id",
    "status",
    "term",
    "billing_frequency",
    "quantity",
    "unit_price",
    "currency",
    "first_charge",
    "aligned_end_date",
    "fulfilled_at",
    "order__status",
    "order__total",
    "order__currency",
    "order__created_at",
    "order__attested_as",
    "order__customer__company_name",
    "order__customer__billing_country",
    "order__customer__partner_id",
    "order__placed_by__username",
    "order__placed_by__first_name",
    "order__placed_by__last_name",
    "order__reseller__name",
    "order__reseller__partner_id",
    "sku__name",
    "subscription__status",
    "subscription__friendly_name",
    "subscription__customer_id",
    "subscription__sku__name",
)


def _order_page(request, customer_id, order_id) -> dict:
    """The order page's context (and the confirmation's): the order, its lines, its additional resellers, and how late
    its fulfilment is."""
    # The order comes with its lines, in one query: each line joins its order (with the customer, who placed it and
    # the reseller), its offer and its subscription. Scoped as access.get_customer and get_order would: the partner's
    # orders (a reseller's: those it is reseller of), of this customer; outside them, 404.
    order_scope = access.orders_for(request.user).filter(customer_id=customer_id, pk=order_id)
    lines = list(
        OrderLine.objects.filter(order__in=order_scope)
        .select_related("order__customer", "order__placed_by", "order__reseller", "sku", "subscription__sku")
        .only(*ORDER_PAGE_FIELDS)
    )
    if lines:
        order = lines[0].order
    else:  # an order without lines (none is placed so): the order alone
        order = get_object_or_404(order_scope.select_related("customer", "placed_by", "reseller"))
    customer = order.customer
    # K5: only an EU/EFTA customer's order can name additional resellers (the cart refuses them otherwise).
    additional = order.additional_resellers.select_related("partner") if customer.is_eu_efta else []
    return {
        "customer": customer,
        "order": order,
        "lines": lines,
        "section": "orders",
        "additional": additional,
        "delay": order_delay(order, timezone.now(), lines=lines),
    }


def order_detail(request, customer_id, order_id):
    context = _order_page(request, customer_id, order_id)
    if request.htmx and not request.htmx.boosted:
        return render(request, "catalog/order_detail.html#lines", context)
    return render(request, "catalog/order_detail.html", context)


def all_orders(request):
    """Every order of the partner's customers, newest first (O1 across customers)."""
    orders = access.orders_for(request.user).select_related("customer", "placed_by").order_by("-created_at", "-pk")
    filters = OrderFilter(request.GET, queryset=orders)
    status = filters.form.cleaned_data.get("status", "") if filters.is_valid() else ""
    page = SmallListPaginator(filters.qs, 25).get_page(request.GET.get("page"))
    return render(
        request, "catalog/all_orders.html", {"page": page, "status": status, "statuses": Order.Status.choices}
    )
