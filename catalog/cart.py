"""Cart services (K1, K4, K5, K11, K12). Each is one transaction and answers with RuleViolation."""

from dataclasses import replace
from datetime import date, datetime

from django.db import IntegrityError, transaction
from django.utils.formats import number_format
from django.utils.translation import gettext

from catalog.alignment import alignment_allowed
from catalog.eligibility import Refusal, buying_context, quantity_refusal, refusal
from catalog.models import TRIAL_LICENSES, Availability, Cart, CartAdditionalReseller, CartLine
from portal.access import Action, partner_of, require
from portal.errors import RuleViolation
from portal.models import Customer, Partner
from portal.versions import StaleVersion, bump_version, check_version, lock_version

MAX_ADDITIONAL_RESELLERS = 5


def _expire_if_due(cart: Cart, now: datetime) -> bool:
    """K12 (`Cart.is_past_its_time`): an open cart past its time is stored as expired; True if it is no longer open."""
    if cart.status == Cart.Status.OPEN and cart.is_past_its_time(now):
        cart.status = Cart.Status.EXPIRED
        cart.save(update_fields=["status"])
        return True
    return False


def current_cart(customer: Customer, user, now: datetime) -> Cart | None:
    """The user's open cart for this customer with its reseller, expiring it first if its time is up (K12)."""
    cart = (
        Cart.objects.filter(customer=customer, owner=user, status=Cart.Status.OPEN).select_related("reseller").first()
    )
    if cart is not None and _expire_if_due(cart, now):
        return None
    if cart is not None:
        cart.customer = customer  # the same row, already read: the rules read it
    return cart


def open_cart_or_conflict(customer: Customer, user, now: datetime) -> Cart:
    """The open cart a cart page's form acts on; none (purchased or expired since the page was drawn, K12) is 409."""
    cart = current_cart(customer, user, now)
    if cart is None:
        raise RuleViolation(
            "K12", gettext("There is no open cart for this customer (it was purchased or has expired)."), conflict=True
        )
    return cart


def cart_lines(cart: Cart) -> list[CartLine]:
    """A cart's lines in the order they were added, each with its offer as the cart page draws it (product,
    publisher): one query, whatever the number of lines. The page's verdicts come from the catalog's cached facts
    (catalog/listing.cached_refusals), so the add-on bases and exclusive partners are not read here."""
    return list(cart.lines.select_related("availability__sku__product__publisher").order_by("added_at", "pk"))


def last_expired_cart(customer: Customer, user) -> Cart | None:
    return (
        Cart.objects.filter(customer=customer, owner=user, status=Cart.Status.EXPIRED).order_by("-created_at").first()
    )


def _locked_open_cart(customer: Customer, user, now: datetime, version: int | str | None = None) -> Cart:
    """The open cart, locked, at the `version` the page showed (0: the page showed no cart), bumped; or a new one
    when there is none open (a cart purchased or expired since the page was drawn leaves nothing to conflict with)."""
    cart = Cart.objects.select_for_update().filter(customer=customer, owner=user, status=Cart.Status.OPEN).first()
    if cart is not None and _expire_if_due(cart, now):
        cart = None
    if cart is not None:
        check_version(cart, version, noun="cart")
        bump_version(cart)
        return cart
    # K4: an indirect provider's cart starts with the customer's reseller of record, if still linked.
    reseller = (
        customer.reseller
        if customer.reseller_id and customer.partner.reseller_links.filter(reseller_id=customer.reseller_id).exists()
        else None
    )
    try:
        with transaction.atomic():  # a savepoint: the same first add, submitted twice at once, may create it first
            return Cart.objects.create(customer=customer, owner=user, created_at=now, reseller=reseller)
    except IntegrityError:
        raise StaleVersion(
            gettext(
                "The cart changed since you opened the page: it was just created from another "
                "submission. Nothing was done: review the cart and try again."
            )
        ) from None


def cart_quantities(lines, *, excluding: int | None = None) -> dict[int, int]:
    """Licenses of each offer in these cart lines (read with their availabilities), but the line `excluding`."""
    quantities: dict[int, int] = {}
    for line in lines:
        if line.pk != excluding:
            sku_id = line.availability.sku_id
            quantities[sku_id] = quantities.get(sku_id, 0) + line.quantity
    return quantities


def normalise_quantity(availability: Availability, quantity: int) -> int:
    """Usage-based offers carry no quantity (K1); trials always come with 25 licenses (TR1)."""
    sku = availability.sku
    if sku.is_trial:
        return TRIAL_LICENSES
    if not sku.is_license_based:
        return 1
    return quantity


def line_refusal(
    *,
    cart: Cart,
    availability: Availability,
    quantity: int,
    aligned_end_date: date | None,
    today: date,
    ctx=None,
    line_pk: int | None = None,
    lines: list[CartLine] | None = None,
    offer=None,
) -> Refusal | None:
    """The first rule that refuses this cart line now, or None: the offer's eligibility (C3–C5, `refusal`), its
    quantity (K6–K8, `quantity_refusal`) and its aligned end date (K11). Adding, changing and purchasing a line ask it
    (`check_line`), and the cart's per-line verdict (the API's cart resource) shows it before Purchase.

    `lines`: the cart's lines with their availabilities, when the caller has read them (else they are read);
    `offer`: the offer's cached facts (catalog.listing) to judge its eligibility by, in place of the loaded SKU."""
    customer = cart.customer
    sku = availability.sku
    ctx = ctx or buying_context(customer, partner_of(cart.owner))
    if lines is None:
        lines = list(cart.lines.select_related("availability"))
    # The line itself must not count as "already in the cart" (C4a); the cart's other lines do.
    ctx.cart_sku_ids = {line.availability.sku_id for line in lines if line.pk != line_pk}
    why = refusal(offer if offer is not None else sku, ctx)
    if why:
        return why
    why = quantity_refusal(sku, quantity, customer=customer, cart_quantities=cart_quantities(lines, excluding=line_pk))
    if why:
        return replace(why, field="quantity")
    if aligned_end_date is not None and not alignment_allowed(customer, availability, aligned_end_date, today):
        return Refusal(
            "K11",
            gettext("The end date %(date)s is not one this line can align to.")
            % {"date": f"{aligned_end_date:%Y-%m-%d}"},
            field="aligned_end_date",
        )
    return None


def check_line(
    *,
    cart: Cart,
    availability: Availability,
    quantity: int,
    aligned_end_date: date | None,
    today: date,
    ctx=None,
    line_pk: int | None = None,
    lines: list[CartLine] | None = None,
) -> None:
    """Every rule a cart line must pass, at add time and again at purchase: `line_refusal`'s, raised."""
    why = line_refusal(
        cart=cart,
        availability=availability,
        quantity=quantity,
        aligned_end_date=aligned_end_date,
        today=today,
        ctx=ctx,
        line_pk=line_pk,
        lines=lines,
    )
    if why:
        raise RuleViolation(why.rule, why.message, field=why.field or None)


def add_to_cart(
    *,
    customer: Customer,
    actor,
    availability_id: int,
    quantity: int,
    aligned_end_date: date | None,
    now: datetime,
    version: int | str | None = None,
) -> CartLine:
    require(actor, Action.BUY)
    availability = (
        Availability.objects.filter(pk=availability_id)
        .select_related("sku__product__publisher")
        .prefetch_related("sku__base_skus", "sku__exclusive_partners")
        .first()
    )
    if availability is None:
        raise RuleViolation("C1", gettext("That offer is no longer in the catalog."))
    quantity = normalise_quantity(availability, quantity)
    with transaction.atomic():
        cart = _locked_open_cart(customer, actor, now, version)
        existing = cart.lines.filter(availability=availability, aligned_end_date=aligned_end_date).first()
        if existing:
            new_quantity = (
                quantity
                if not availability.sku.is_license_based or availability.sku.is_trial
                else existing.quantity + quantity
            )
            try:
                check_line(
                    cart=cart,
                    availability=availability,
                    quantity=new_quantity,
                    aligned_end_date=aligned_end_date,
                    today=now.date(),
                    line_pk=existing.pk,
                )
            except RuleViolation as violation:
                if violation.field != "quantity":
                    raise
                raise RuleViolation(
                    violation.rule,
                    gettext("The cart already has %(quantity)s, so this would make %(total)s. %(reason)s")
                    % {
                        "quantity": number_format(existing.quantity, force_grouping=True),
                        "total": number_format(new_quantity, force_grouping=True),
                        "reason": violation.message,
                    },
                    field="quantity",
                ) from None
            existing.quantity = new_quantity
            existing.save(update_fields=["quantity"])
            return existing
        check_line(
            cart=cart, availability=availability, quantity=quantity, aligned_end_date=aligned_end_date, today=now.date()
        )
        return CartLine.objects.create(
            cart=cart, availability=availability, quantity=quantity, aligned_end_date=aligned_end_date, added_at=now
        )


def _locked_line(cart: Cart, line_id: int) -> CartLine:
    line = (
        CartLine.objects.select_for_update(of=("self",))
        .select_related("availability__sku__product__publisher")
        .filter(cart=cart, pk=line_id)
        .first()
    )
    if line is None:
        raise RuleViolation("K1", gettext("That line is no longer in the cart."), conflict=True)
    return line


def _open_for_change(cart: Cart, now: datetime, version: int | str | None) -> Cart:
    """The cart locked at the version the page showed (portal/versions.py), bumped, and still open."""
    cart = lock_version(Cart.objects.all(), pk=cart.pk, version=version, noun="cart")
    refuse_if_closed(cart, now)
    return cart


def refuse_if_closed(cart: Cart, now: datetime) -> None:
    """K12: a cart purchased or past its time takes no change (409); one past its time is stored as expired."""
    if cart.status != Cart.Status.OPEN or _expire_if_due(cart, now):
        raise RuleViolation(
            "K12", gettext("This cart is no longer open (it was purchased or has expired)."), conflict=True
        )


def update_line(
    *,
    cart: Cart,
    actor,
    version: int | str | None = None,
    line_id: int,
    quantity: int,
    aligned_end_date: date | None,
    now: datetime,
) -> CartLine:
    require(actor, Action.BUY)
    with transaction.atomic():
        cart = _open_for_change(cart, now, version)
        line = _locked_line(cart, line_id)
        quantity = normalise_quantity(line.availability, quantity)
        check_line(
            cart=cart,
            availability=line.availability,
            quantity=quantity,
            aligned_end_date=aligned_end_date,
            today=now.date(),
            line_pk=line.pk,
        )
        line.quantity = quantity
        line.aligned_end_date = aligned_end_date
        line.save(update_fields=["quantity", "aligned_end_date"])
        return line


def remove_line(*, cart: Cart, actor, version: int | str | None = None, line_id: int, now: datetime) -> None:
    require(actor, Action.BUY)
    with transaction.atomic():
        cart = _open_for_change(cart, now, version)
        _locked_line(cart, line_id).delete()


def set_attestation(*, cart: Cart, actor, version: int | str | None = None, accepted: bool, now: datetime) -> Cart:
    """K3 as the API's cart carries it (`partnerOnRecordAttestationAccepted`): accepted or withdrawn before checkout,
    a change of the cart like any other (locked at `version`, bumped), so an etag read before it is stale."""
    require(actor, Action.BUY)
    with transaction.atomic():
        cart = _open_for_change(cart, now, version)
        cart.attestation_accepted = accepted
        cart.save(update_fields=["attestation_accepted"])
        return cart


def resolve_reseller(seller: Partner, reseller_id: int | None) -> Partner | None:
    """K4: the indirect reseller an indirect provider associates with a purchase, checked."""
    if reseller_id is None:
        return None
    if seller.kind != Partner.Kind.INDIRECT_PROVIDER:
        raise RuleViolation("K4", gettext("Only indirect providers associate an indirect reseller with a purchase."))
    link = seller.reseller_links.filter(reseller_id=reseller_id).select_related("reseller").first()
    if link is None:
        raise RuleViolation("K4", gettext("That reseller is not one of your indirect resellers."), field="reseller")
    refused = reseller_refusal(link.reseller)
    if refused is not None:
        raise refused
    return link.reseller


def reseller_refusal(reseller: Partner) -> RuleViolation | None:
    """K4: why one of a provider's resellers can't be the reseller of a purchase (the service refuses it, the cart's
    list shows it unselectable with this reason); None if it can."""
    if not reseller.mpa_signed:
        return RuleViolation(
            "K4",
            gettext(
                "%(partner)s (%(partner_id)s) has not signed the Microsoft Partner Agreement: it can't be the reseller "
                "of a purchase."
            )
            % {"partner": reseller.name, "partner_id": reseller.partner_id},
            field="reseller",
        )
    return None


def set_reseller(
    *, cart: Cart, actor, version: int | str | None = None, reseller_id: int | None, now: datetime
) -> Cart:
    """K4: an indirect provider associates one of its own resellers (or none) with the purchase.

    K5: additional resellers need an initial reseller, so choosing none removes them; the new
    initial reseller can't also be an additional one. `cart.removed_additional` lists them.
    """
    member = require(actor, Action.BUY)
    with transaction.atomic():
        cart = _open_for_change(cart, now, version)
        cart.reseller = resolve_reseller(member.partner, reseller_id)
        removed_entries = cart.additional_resellers.select_related("partner")
        if cart.reseller is not None and member.partner.kind == Partner.Kind.INDIRECT_PROVIDER:
            removed_entries = removed_entries.filter(partner=cart.reseller)
        cart.removed_additional = [entry.partner for entry in removed_entries]
        removed_entries.delete()
        _renumber_additional(cart)
        cart.save(update_fields=["reseller"])
        return cart


def initial_reseller(cart: Cart, seller: Partner) -> Partner | None:
    """K5: the deal's initial reseller: the chosen indirect reseller, or the direct-bill partner itself."""
    if seller.kind == Partner.Kind.DIRECT_BILL:
        return seller
    return cart.reseller


def additional_reseller_refusal(
    cart: Cart, seller: Partner, partner: Partner | None, partner_id_text: str, existing: list[Partner]
) -> str | None:
    """K5 for one additional reseller; None when it may be declared."""
    why = additional_resellers_closed(cart, seller, existing)
    if why:
        return why
    initial = initial_reseller(cart, seller)
    if partner is None:
        return gettext("No partner has the PartnerID %(partner_id)s.") % {"partner_id": partner_id_text}
    names = {"partner": partner.name, "partner_id": partner.partner_id}
    if not partner.mpa_signed:
        return gettext("%(partner)s (%(partner_id)s) has not signed the Microsoft Partner Agreement.") % names
    if partner.pk == initial.pk:
        return gettext("%(partner)s is already the initial reseller.") % names
    if partner.pk == seller.pk:
        return gettext("%(partner)s is the partner making this purchase, not an additional reseller.") % names
    if partner in existing:
        return gettext("%(partner)s is already declared.") % names
    return None


def additional_resellers_closed(cart: Cart, seller: Partner, existing: list[Partner]) -> str | None:
    """K5: why no further additional reseller can be declared on this cart now (the page's button too)."""
    if not cart.customer.is_eu_efta:
        return gettext("Additional resellers are declared only for customers in the EU/EFTA.")
    if initial_reseller(cart, seller) is None:
        return gettext("Choose the initial reseller before any additional one.")
    if len(existing) >= MAX_ADDITIONAL_RESELLERS:
        return gettext("At most %(count)s additional resellers can be declared.") % {"count": MAX_ADDITIONAL_RESELLERS}
    return None


def add_additional_reseller(
    *, cart: Cart, actor, version: int | str | None = None, partner_id_text: str, now: datetime
) -> CartAdditionalReseller:
    member = require(actor, Action.BUY)
    partner_id_text = (partner_id_text or "").strip()
    with transaction.atomic():
        cart = _open_for_change(cart, now, version)
        partner = Partner.objects.filter(partner_id=partner_id_text).first() if partner_id_text else None
        existing = [r.partner for r in cart.additional_resellers.select_related("partner")]
        why = additional_reseller_refusal(cart, member.partner, partner, partner_id_text or "(empty)", existing)
        if why:
            raise RuleViolation("K5", why, field="partner_id")
        return CartAdditionalReseller.objects.create(cart=cart, partner=partner, position=len(existing) + 1)


def remove_additional_reseller(
    *, cart: Cart, actor, version: int | str | None = None, partner_pk: int, now: datetime
) -> None:
    require(actor, Action.BUY)
    with transaction.atomic():
        cart = _open_for_change(cart, now, version)
        cart.additional_resellers.filter(partner_id=partner_pk).delete()
        _renumber_additional(cart)


def _renumber_additional(cart: Cart) -> None:
    """K5 keeps the declared order: positions stay 1, 2, 3... after a removal."""
    for position, entry in enumerate(cart.additional_resellers.order_by("position"), start=1):
        if entry.position != position:
            entry.position = position
            entry.save(update_fields=["position"])
