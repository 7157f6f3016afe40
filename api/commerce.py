"""Carts, checkout and orders through the API (Partner Center's section 2), over the cart page's services
(catalog.cart) and its purchase (catalog.checkout): each handler is access → body → the services the pages call →
resource. No rule is decided here: every refusal is the service's, with its rule id, in Partner Center's envelope.

The portal's cart is Partner Center's with two differences the resources say: a staff member has one open cart per
customer (K1), so creating a second answers 409 naming the open one; and the reseller of record and the EU/EFTA
additional resellers belong to the cart (K4, K5), so every line's `participants` must name the same ones."""

import re
from datetime import UTC, date, datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import Prefetch
from django.http import Http404, JsonResponse
from django.utils import timezone
from django.utils.translation import gettext
from ninja import Query, Router
from ninja.errors import HttpError
from pydantic import BaseModel, Field, field_validator

from catalog import cart as cart_services
from catalog.checkout import attestation_text, line_first_charge, purchase
from catalog.eligibility import buying_context
from catalog.listing import cached_offer_facts
from catalog.models import Availability, Cart, Order, OrderAdditionalReseller, OrderLine
from portal import access
from portal.access import Action
from portal.errors import RuleViolation, RuleViolations
from portal.models import Partner
from portal.versions import StaleVersion

from . import errors, protocol, schemas, wire
from .v1 import ERROR_RESPONSES, Paging, after_token, answered, encode_token

MAX_LINE_ITEMS = 50
MAX_QUANTITY = 2_147_483_647  # the database's PositiveIntegerField; the offer's own maximum is the service's (K8)
TRANSACTION_RESELLER = "transaction_reseller"
ADDITIONAL_RESELLER = "additional_transaction_reseller"
CART_STATUSES = {Cart.Status.OPEN: "Active", Cart.Status.PURCHASED: "Ordered", Cart.Status.EXPIRED: "Expired"}


# --- Schemas -----------------------------------------------------------------------------------------------------


class Participant(schemas.CaseInsensitive):
    key: str = Field(description=f"{TRANSACTION_RESELLER} (K4) or {ADDITIONAL_RESELLER} (K5, EU/EFTA)")
    value: str = Field(max_length=20, pattern=r"^[0-9A-Za-z-]+$", description="The reseller's PartnerID.")

    @field_validator("key")
    @classmethod
    def _known(cls, key: str) -> str:
        key = key.strip().lower()
        if key not in (TRANSACTION_RESELLER, ADDITIONAL_RESELLER):
            raise ValueError(f"a participant is a {TRANSACTION_RESELLER} or an {ADDITIONAL_RESELLER}")
        return key


class CartLineItemIn(schemas.CaseInsensitive):
    id: int | None = Field(None, ge=0, le=MAX_LINE_ITEMS, description="The client's line number; answered in order.")
    catalogItemId: str = Field(max_length=200, description='"{productId}:{skuId}:{availabilityId}"')
    quantity: int = Field(ge=1, le=MAX_QUANTITY)
    billingCycle: str | None = Field(None, max_length=20, description="When sent, the availability's own.")
    termDuration: str | None = Field(None, max_length=5, description="When sent, the availability's own.")
    customTermEndDate: datetime | None = Field(None, description="K11: the first term ends on this day (UTC).")
    participants: list[Participant] | None = Field(None, max_length=6)
    provisioningContext: dict[str, str] | None = Field(None, max_length=0, description="NCE: none ({}).")
    renewsTo: None = None
    # Read-only, as a cart reads (so a client can PUT back what it GET): not changed.
    error: dict | None = None
    currencyCode: str | None = None
    orderGroup: str | None = None
    offerName: str | None = None
    pricing: dict | None = None


class CartIn(schemas.CaseInsensitive):
    """A cart to create, or (PUT) its lines and participants as they should be; the cart as read is accepted."""

    lineItems: list[CartLineItemIn] = Field(min_length=1, max_length=MAX_LINE_ITEMS)
    partnerOnRecordAttestationAccepted: bool | None = Field(
        None, description="K3: the attestation (`attestationText`); without it the checkout buys nothing."
    )
    # Read-only, as a cart reads.
    id: str | None = None
    creationTimestamp: str | None = None
    lastModifiedTimestamp: str | None = None
    expirationTimestamp: str | None = None
    lastModifiedUser: str | None = None
    status: str | None = None
    attestationText: str | None = None
    orderId: str | None = None
    links: dict | None = None
    attributes: dict | None = None


class Pricing(schemas.Schema):
    listPrice: Decimal = Field(description="Money is a decimal string, never a float.")
    price: Decimal
    extendedPrice: Decimal = Field(description="The first charge: prorated by the day when aligned (K11).")


class ParticipantOut(schemas.Schema):
    key: str
    value: str


class CartError(schemas.Schema):
    errorCode: str
    errorDescription: str
    ruleId: str = Field(description="The rule that would refuse this line at checkout now (the cart page's verdict).")


class CartLineItem(schemas.Schema):
    id: int
    catalogItemId: str
    offerName: str
    quantity: int
    currencyCode: str
    billingCycle: str
    termDuration: str
    customTermEndDate: datetime | None
    participants: list[ParticipantOut]
    provisioningContext: dict
    orderGroup: str
    pricing: Pricing
    error: CartError | None = Field(None, description="Why checkout would refuse the line now, if it would.")


class CartOut(schemas.Schema):
    id: str
    creationTimestamp: datetime
    expirationTimestamp: datetime = Field(description="K12: the cart expires then (UTC).")
    lastModifiedUser: str
    status: str = Field(description="Active, Ordered or Expired (the portal's addition)")
    lineItems: list[CartLineItem]
    partnerOnRecordAttestationAccepted: bool
    attestationText: str = Field(description="K3: what partnerOnRecordAttestationAccepted confirms.")
    orderId: str | None = Field(None, description="The order it became, once checked out.")
    links: dict[str, schemas.Link]
    attributes: schemas.Attributes


class OrderLineItem(schemas.Schema):
    lineItemNumber: int
    offerId: str
    offerName: str
    subscriptionId: str | None = Field(description="Once provisioned.")
    friendlyName: str
    quantity: int
    termDuration: str
    billingCycle: str
    transactionType: str
    customTermEndDate: datetime | None
    pricing: Pricing
    partnerIdOnRecord: str
    additionalPartnerIdsOnRecord: list[str]
    provisioningContext: dict
    links: dict[str, schemas.Link]


class OrderOut(schemas.Schema):
    id: str
    alternateId: str
    referenceCustomerId: str = Field(description="The customer's directory tenant.")
    customerId: str = Field(description="The customer's id in this portal.")
    billingCycle: str
    currencyCode: str
    lineItems: list[OrderLineItem]
    creationDate: datetime
    status: str = Field(description="pending or completed")
    transactionType: str
    totalPrice: Decimal
    partnerOnRecordAttestationAccepted: bool
    attestedAs: str = Field(description="K3: direct or indirect, as recorded at checkout.")
    links: dict[str, schemas.Link]
    attributes: schemas.Attributes


class OrderCollection(schemas.Schema):
    totalCount: int
    items: list[OrderOut]
    continuationToken: str | None = None
    links: dict[str, schemas.Link]
    attributes: schemas.Attributes


class CheckoutResult(schemas.Schema):
    orders: list[OrderOut]
    orderErrors: list[dict]
    attributes: schemas.Attributes


class QuantityProvisioning(schemas.Schema):
    quantity: int
    status: str


class LineProvisioning(schemas.Schema):
    orderLineItemId: int
    lineItemNumber: int
    status: str = Field(description="fulfilled or prefulfillment_pending")
    subscriptionId: str | None
    quantityProvisioningInformation: list[QuantityProvisioning]


class ProvisioningCollection(schemas.Schema):
    totalCount: int
    items: list[LineProvisioning]
    attributes: schemas.Attributes


# --- Resources -------------------------------------------------------------------------------------------------


def catalog_item_id(availability: Availability) -> str:
    sku = availability.sku
    return f"{sku.product.product_id}:{wire.sku_part(sku)}:{availability.pk}"


def cart_path(cart: Cart) -> str:
    return f"/customers/{cart.customer_id}/carts/{cart.pk}"


def order_path(order: Order) -> str:
    return f"/customers/{order.customer_id}/orders/{order.number}"


def line_verdicts(cart: Cart, lines: list, today: date) -> dict[int, dict]:
    """Each open cart line's refusal before checkout: `line_refusal`, the rule the checkout applies to each line (C3–C5,
    K6–K8, K11), with the offer's eligibility judged over the catalog's cached facts (catalog.listing) as the cart page
    does."""
    if cart.status != Cart.Status.OPEN or not lines:
        return {}
    ctx = buying_context(cart.customer, access.partner_of(cart.owner))
    known = cached_offer_facts([line.availability.sku_id for line in lines])
    verdicts = {}
    for line in lines:
        why = cart_services.line_refusal(
            cart=cart,
            availability=line.availability,
            quantity=line.quantity,
            aligned_end_date=line.aligned_end_date,
            today=today,
            ctx=ctx,
            line_pk=line.pk,
            lines=lines,
            offer=known.get(line.availability.sku_id),
        )
        if why:
            verdicts[line.pk] = {
                "errorCode": "unable_to_process_cart_line_item",
                "errorDescription": why.message,
                "ruleId": why.rule,
            }
    return verdicts


def cart_resource(cart: Cart, now: datetime) -> dict:
    lines = cart_services.cart_lines(cart)
    verdicts = line_verdicts(cart, lines, now.date())
    participants = []
    if cart.reseller_id:
        participants.append({"key": TRANSACTION_RESELLER, "value": cart.reseller.partner_id})
    participants += [
        {"key": ADDITIONAL_RESELLER, "value": entry.partner.partner_id}
        for entry in cart.additional_resellers.select_related("partner").order_by("position")
    ]
    order_id = Order.objects.filter(cart=cart).values_list("pk", flat=True).first()
    status = CART_STATUSES[cart.status]
    if cart.status == Cart.Status.OPEN and cart.is_past_its_time(now):
        status = CART_STATUSES[Cart.Status.EXPIRED]
    return {
        "id": str(cart.pk),
        "creationTimestamp": cart.created_at,
        "expirationTimestamp": cart.expires_at,
        "lastModifiedUser": str(cart.owner_id),
        "status": status,
        "lineItems": [
            {
                "id": number,
                "catalogItemId": catalog_item_id(line.availability),
                "offerName": line.availability.sku.name,
                "quantity": line.quantity,
                "currencyCode": line.availability.currency,
                "billingCycle": schemas.billing_cycle(line.availability.term, line.availability.billing_frequency),
                "termDuration": line.availability.term,
                "customTermEndDate": wire.day_start(line.aligned_end_date),
                "participants": participants,
                "provisioningContext": {},
                "orderGroup": "0",
                "pricing": {
                    "listPrice": line.availability.unit_price,
                    "price": line.availability.unit_price,
                    "extendedPrice": line_first_charge(line, now.date()),
                },
                "error": verdicts.get(line.pk),
            }
            for number, line in enumerate(lines)
        ],
        "partnerOnRecordAttestationAccepted": cart.attestation_accepted,
        "attestationText": attestation_text(cart),
        "orderId": f"ORD-{order_id:06d}" if order_id else None,
        "links": {"self": wire.link(cart_path(cart)), "checkout": wire.link(f"{cart_path(cart)}/checkout", "POST")},
        "attributes": {"objectType": "Cart", "etag": protocol.etag("cart", cart.pk, cart.version)},
    }


def order_reads():
    """What an order resource reads: the order with its customer and reseller, its lines with their offers and
    subscriptions, its additional resellers: three queries for a page of orders, whatever their number."""
    return Order.objects.select_related("customer", "reseller").prefetch_related(
        Prefetch(
            "lines",
            OrderLine.objects.select_related("sku__product", "availability", "subscription").order_by("pk"),
        ),
        Prefetch(
            "additional_resellers", OrderAdditionalReseller.objects.select_related("partner").order_by("position")
        ),
    )


def order_resource(order: Order) -> dict:
    lines = list(order.lines.all())
    reseller = order.reseller.partner_id if order.reseller_id else ""
    additional = [entry.partner.partner_id for entry in order.additional_resellers.all()]
    items = []
    for number, line in enumerate(lines):
        subscription = getattr(line, "subscription", None)
        sku = line.sku
        links = wire.catalog_links(order.customer_id, sku, line.availability_id)
        if subscription is not None:
            links["subscription"] = wire.link(wire.subscription_path(subscription))
        items.append(
            {
                "lineItemNumber": number,
                "offerId": f"{sku.product.product_id}:{wire.sku_part(sku)}:{line.availability_id}",
                "offerName": sku.name,
                "subscriptionId": str(subscription.pk) if subscription is not None else None,
                "friendlyName": (subscription.friendly_name if subscription is not None else "") or sku.name,
                "quantity": line.quantity,
                "termDuration": line.term,
                "billingCycle": schemas.billing_cycle(line.term, line.billing_frequency),
                "transactionType": "new",
                "customTermEndDate": wire.day_start(line.aligned_end_date),
                "pricing": {"listPrice": line.unit_price, "price": line.unit_price, "extendedPrice": line.first_charge},
                "partnerIdOnRecord": reseller,
                "additionalPartnerIdsOnRecord": additional,
                "provisioningContext": {},
                "links": links,
            }
        )
    return {
        "id": order.number,
        "alternateId": order.number,
        "referenceCustomerId": str(order.customer.tenant_id),
        "customerId": str(order.customer_id),
        "billingCycle": schemas.billing_cycle(lines[0].term, lines[0].billing_frequency) if lines else "none",
        "currencyCode": order.currency,
        "lineItems": items,
        "creationDate": order.created_at,
        "status": order.status,
        "transactionType": "UserPurchase",
        "totalPrice": order.total,
        "partnerOnRecordAttestationAccepted": True,  # K3: no order is placed without it
        "attestedAs": order.attested_as,
        "links": {
            "self": wire.link(order_path(order)),
            "provisioningStatus": wire.link(f"{order_path(order)}/provisioningstatus"),
        },
        "attributes": {"objectType": "Order", "etag": protocol.etag("order", order.pk, order.version)},
    }


def dumped(schema, resource: dict, status: int = 200) -> JsonResponse:
    """The answer `once` stores: validated against its schema on the way out, as ninja's own answers are."""
    return JsonResponse(schema(**resource).model_dump(mode="json"), status=status)


# --- Reading the request ---------------------------------------------------------------------------------------

NUMBER = re.compile(r"[0-9]{1,18}")
ORDER_NUMBER = re.compile(r"ORD-([0-9]{1,18})")


def load_cart(request, customer_id: str, cart_id: str, *, action: str | None = None) -> Cart:
    """The token owner's cart of this customer (K1: a cart is its owner's), else 404. For a change (`action`), a
    role that can't make it answers 403 first, as the cart page does."""
    customer = access.get_customer(request.user, customer_id)
    if action is not None:
        access.require(request.user, action)
    if not NUMBER.fullmatch(cart_id):
        raise Http404(gettext("No such cart."))
    cart = access.get_cart(request.user, customer, int(cart_id))
    cart.customer = customer  # the same row, already read: the rules read it
    return cart


def order_pk(order_id: str) -> int:
    found = ORDER_NUMBER.fullmatch(order_id)
    if not found:
        raise Http404(gettext("No such order."))
    return int(found.group(1))


class Line(BaseModel):
    """A requested line as the services take it."""

    availability_id: int
    quantity: int
    aligned_end_date: date | None


def requested_lines(body: CartIn) -> list[Line]:
    """Each line item's availability (its catalogItemId), quantity and aligned end date. An id that doesn't spell
    one of the catalog's offers, or a term or billing cycle other than the availability's, is a malformed request
    (400); an availability no longer in the catalog is left to the service (C1)."""
    parsed = []
    for item in body.lineItems:
        parts = item.catalogItemId.strip().split(":")
        if len(parts) != 3 or not NUMBER.fullmatch(parts[2]):
            raise HttpError(
                400, f'catalogItemId "{item.catalogItemId}" is not "{{productId}}:{{skuId}}:{{availabilityId}}".'
            )
        parsed.append((item, parts))
    known = {
        a.pk: a
        for a in Availability.objects.filter(pk__in=[int(parts[2]) for _, parts in parsed]).select_related(
            "sku__product"
        )
    }
    lines = []
    for item, parts in parsed:
        availability = known.get(int(parts[2]))
        if availability is not None:
            if catalog_item_id(availability) != ":".join(parts):
                raise HttpError(400, f'catalogItemId "{item.catalogItemId}" names no offer of the catalog.')
            cycle = schemas.billing_cycle(availability.term, availability.billing_frequency)
            for sent, own, name, wire_value in (
                (_upper(item.termDuration), availability.term, "termDuration", availability.term),
                (_frequency(item.billingCycle), availability.billing_frequency, "billingCycle", cycle),
            ):
                if sent is not None and sent != own:
                    raise HttpError(
                        400, f'{name} of "{item.catalogItemId}" is {wire_value}: another is another catalogItemId.'
                    )
        lines.append(
            Line(
                availability_id=int(parts[2]),
                quantity=item.quantity,
                aligned_end_date=utc_day(item.customTermEndDate),
            )
        )
    return lines


def _upper(text: str | None) -> str | None:
    return text.strip().upper() if text is not None else None


def _frequency(cycle: str | None) -> str | None:
    """The billing frequency a sent billingCycle names ("" when it names none, so it differs from every one)."""
    return None if cycle is None else (schemas.billing_frequency_named(cycle) or "")


def utc_day(moment: datetime | None) -> date | None:
    """The UTC day a customTermEndDate names (one without an offset is read as UTC, as every time here is)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        return moment.date()
    try:
        return moment.astimezone(UTC).date()
    except OverflowError:  # past year 9999 or before year 1 once in UTC
        raise HttpError(400, "customTermEndDate is out of range.") from None


def requested_participants(body: CartIn) -> tuple[str | None, list[str]] | None:
    """The reseller of record's and the additional resellers' PartnerIDs the lines name (one set for the cart, K4,
    K5); None when no line names participants (the cart keeps the reseller it has: the customer's, K4)."""
    named = [item.participants for item in body.lineItems if item.participants is not None]
    if not named:
        return None
    sets = set()
    for participants in named:
        reseller = [p.value.strip() for p in participants if p.key == TRANSACTION_RESELLER]
        if len(reseller) > 1:
            raise HttpError(400, f"A line names one {TRANSACTION_RESELLER} at most.")
        additional = tuple(p.value.strip() for p in participants if p.key == ADDITIONAL_RESELLER)
        sets.add((reseller[0] if reseller else None, additional))
    if len(sets) > 1:
        raise HttpError(
            400,
            "Every line's participants must name the same resellers: the portal's cart has one set for all its lines.",
        )
    reseller, additional = sets.pop()
    return reseller, list(additional)


# --- Changing a cart through the services ----------------------------------------------------------------------


class CartChange:
    """Runs the cart services one after another in the caller's transaction, each in a savepoint, handing each
    the version the last one left; collects every refusal (each line's, K9) instead of stopping at the first."""

    def __init__(self, request, customer, cart: Cart | None, version: int):
        self.request = request
        self.customer = customer
        self.cart_pk = cart.pk if cart else None
        self.version = version
        self.refused: dict = {}
        self.now = timezone.now()

    def run(self, key, call):
        try:
            with transaction.atomic():
                result = call(self.version)
        except RuleViolation as violation:
            self.refused[key] = violation
            return None
        if self.cart_pk is None:
            self.cart_pk = cart_services.current_cart(self.customer, self.request.user, self.now).pk
        self.version = Cart.objects.values_list("version", flat=True).get(pk=self.cart_pk)
        return result

    def cart(self) -> Cart | None:
        if self.cart_pk is None:
            return None
        cart = Cart.objects.select_related("reseller").get(pk=self.cart_pk)
        cart.customer = self.customer
        return cart

    def add(self, key, line: Line):
        self.run(
            key,
            lambda v: cart_services.add_to_cart(
                customer=self.customer,
                actor=self.request.user,
                availability_id=line.availability_id,
                quantity=line.quantity,
                aligned_end_date=line.aligned_end_date,
                now=self.now,
                version=v,
            ),
        )

    def participants(self, wanted: tuple[str | None, list[str]] | None) -> None:
        """K4, K5 through the cart's services: the reseller first (additional ones need it), then the additional
        resellers to remove and to declare, in the order sent."""
        cart = self.cart()
        if wanted is None or cart is None:
            return
        reseller_text, additional = wanted
        reseller_pk = None
        if reseller_text is not None:
            # A PartnerID no partner has is handed on as 0, no partner's pk: the service refuses it in its words (K4).
            reseller_pk = Partner.objects.filter(partner_id=reseller_text).values_list("pk", flat=True).first() or 0
        if reseller_pk != cart.reseller_id:
            self.run(
                f"participants[{TRANSACTION_RESELLER}]",
                lambda v: cart_services.set_reseller(
                    cart=cart, actor=self.request.user, version=v, reseller_id=reseller_pk, now=self.now
                ),
            )
        declared = {entry.partner.partner_id: entry.partner_id for entry in self.cart().additional_resellers.all()}
        for partner_id, pk in declared.items():
            if partner_id not in additional:
                self.run(
                    f"participants[{ADDITIONAL_RESELLER}={partner_id}]",
                    lambda v, pk=pk: cart_services.remove_additional_reseller(
                        cart=cart, actor=self.request.user, version=v, partner_pk=pk, now=self.now
                    ),
                )
        for partner_id in additional:
            if partner_id not in declared:
                self.run(
                    f"participants[{ADDITIONAL_RESELLER}={partner_id}]",
                    lambda v, partner_id=partner_id: cart_services.add_additional_reseller(
                        cart=cart, actor=self.request.user, version=v, partner_id_text=partner_id, now=self.now
                    ),
                )

    def attest(self, accepted: bool | None) -> None:
        """K3 through the cart's service, when it differs from what the cart carries (a cart sent back as read
        changes nothing)."""
        cart = self.cart()
        if accepted is None or cart is None or accepted == cart.attestation_accepted:
            return
        self.run(
            "partnerOnRecordAttestationAccepted",
            lambda v: cart_services.set_attestation(
                cart=cart, actor=self.request.user, version=v, accepted=accepted, now=self.now
            ),
        )

    def finish(self) -> Cart:
        """Every refusal at once, and nothing changed (the caller's transaction is rolled back); else the cart."""
        if self.refused:
            raise RuleViolations(self.refused)
        return self.cart()


# --- Carts ---------------------------------------------------------------------------------------------------

router = Router(tags=["carts and orders"])


def already_open(cart: Cart) -> JsonResponse:
    return errors.plain(
        409,
        gettext(
            "You already have an open cart for this customer (%(cart)s): change it with PUT, check it out, or let it "
            "expire (a staff member has one open cart per customer)."
        )
        % {"cart": cart.pk},
        data=[{"key": "cart", "cartId": str(cart.pk), "uri": cart_path(cart)}],
    )


@router.post("/{customer_id}/carts", response={201: CartOut, **ERROR_RESPONSES})
def create_cart(request, customer_id: str, body: CartIn):
    """K1: a cart with its lines (each checked as the catalog's "Add to cart" checks it: C3–C5, K6–K8, K11), its
    participants (K4, K5) and the attestation (K3). Every refused line says why, and then nothing is created.
    `MS-RequestId` makes a retry safe."""
    customer = access.get_customer(request.user, customer_id)
    access.require(request.user, Action.BUY)
    lines = requested_lines(body)
    wanted = requested_participants(body)
    now = timezone.now()

    def act():
        existing = cart_services.current_cart(customer, request.user, now)
        if existing is not None:
            return already_open(existing)
        try:
            with transaction.atomic():
                # Version 0: no cart was read, so a cart a twin request created meanwhile refuses the lines as stale.
                change = CartChange(request, customer, None, 0)
                for number, line in enumerate(lines):
                    change.add(f"lineItems[{number}]", line)
                change.participants(wanted)
                change.attest(body.partnerOnRecordAttestationAccepted)
                cart = change.finish()
        except RuleViolations as refused:
            raced = cart_services.current_cart(customer, request.user, timezone.now())
            if raced is not None and any(isinstance(v, StaleVersion) for v in refused.violations.values()):
                return already_open(raced)
            raise
        response = dumped(CartOut, cart_resource(cart, timezone.now()), 201)
        response["Location"] = f"/api/v1{cart_path(cart)}"
        return response

    return protocol.once(request, request.partner, lambda: answered(request, act), now=now)


@router.get("/{customer_id}/carts/{cart_id}", response={200: CartOut, **ERROR_RESPONSES})
def get_cart(request, customer_id: str, cart_id: str):
    return cart_resource(load_cart(request, customer_id, cart_id), timezone.now())


def _is_addon(line_availability_id: int, availabilities: dict) -> bool:
    availability = availabilities.get(line_availability_id)
    return bool(availability and availability.sku.is_addon)


@router.put("/{customer_id}/carts/{cart_id}", response={200: CartOut, **ERROR_RESPONSES})
def update_cart(request, customer_id: str, cart_id: str, body: CartIn):
    """The cart's lines as sent (a line not sent is removed, one sent again changed, a new one added), its
    participants and attestation: each through the cart page's service, all in one transaction (any refusal:
    every one listed, nothing changed). Needs `If-Match` with the cart's etag (412 otherwise)."""
    cart = load_cart(request, customer_id, cart_id, action=Action.BUY)
    lines = requested_lines(body)
    wanted = requested_participants(body)
    now = timezone.now()

    def act():
        version = protocol.check_current(request, "cart", cart)
        with transaction.atomic():
            cart_services.refuse_if_closed(cart, now)  # K12: adding a line must not open a new cart
            change = CartChange(request, cart.customer, cart, version)
            # A line is its offer and aligned end date (as "Add to cart" merges them); a key sent twice adds up.
            sent: dict[tuple, tuple[int, Line]] = {}
            for number, line in enumerate(lines):
                key = (line.availability_id, line.aligned_end_date)
                if key in sent:
                    first, earlier = sent[key]
                    line = Line(**{**earlier.model_dump(), "quantity": earlier.quantity + line.quantity})
                    number = first
                sent[key] = (number, line)
            present = {(line.availability_id, line.aligned_end_date): line for line in cart_services.cart_lines(cart)}
            availabilities = {
                a.pk: a for a in Availability.objects.filter(pk__in=[k[0] for k in sent]).select_related("sku__product")
            }
            for key, line in present.items():
                if key not in sent:
                    change.run(
                        f"removed[{catalog_item_id(line.availability)}]",
                        lambda v, line=line: cart_services.remove_line(
                            cart=cart, actor=request.user, version=v, line_id=line.pk, now=now
                        ),
                    )
            # Base offers before add-ons: an add-on's limits count the base licenses in the cart (K6, K7).
            for key, (number, line) in sorted(sent.items(), key=lambda kv: _is_addon(kv[0][0], availabilities)):
                held = present.get(key)
                if held is None:
                    change.add(f"lineItems[{number}]", line)
                elif cart_services.normalise_quantity(held.availability, line.quantity) != held.quantity:
                    change.run(
                        f"lineItems[{number}]",
                        lambda v, held=held, line=line: cart_services.update_line(
                            cart=cart,
                            actor=request.user,
                            version=v,
                            line_id=held.pk,
                            quantity=line.quantity,
                            aligned_end_date=line.aligned_end_date,
                            now=now,
                        ),
                    )
            change.participants(wanted)
            change.attest(body.partnerOnRecordAttestationAccepted)
            fresh = change.finish()
        return dumped(CartOut, cart_resource(fresh, timezone.now()))

    return protocol.once(request, request.partner, lambda: answered(request, act), now=now)


@router.post("/{customer_id}/carts/{cart_id}/checkout", response={201: CheckoutResult, **ERROR_RESPONSES})
def checkout_cart(request, customer_id: str, cart_id: str):
    """K9: the whole cart becomes one order, all or nothing, with the attestation the cart carries (K3); every
    line is checked again. Idempotent per cart, as Partner Center's: a cart checked out already answers its order
    again. `If-Match`, when sent, must be the cart's current etag. The order is fulfilled in the background: its
    provisioning status tells when its subscriptions exist."""
    cart = load_cart(request, customer_id, cart_id, action=Action.BUY)
    now = timezone.now()

    def act():
        version = protocol.if_match_version(request, "cart", cart.pk) if request.headers.get("If-Match") else None
        numbers = {line.pk: f"lineItems[{n}]" for n, line in enumerate(cart_services.cart_lines(cart))}
        try:
            order, _created = purchase(cart=cart, actor=request.user, attested=None, now=now, version=version)
        except RuleViolations as refused:
            raise RuleViolations({numbers.get(k, k): v for k, v in refused.violations.items()}) from None
        order = order_reads().get(pk=order.pk)
        result = {
            "orders": [order_resource(order)],
            "orderErrors": [],
            "attributes": {"objectType": "CartCheckoutResult"},
        }
        return dumped(CheckoutResult, result, 201)

    return protocol.once(request, request.partner, lambda: answered(request, act), now=now)


# --- Orders --------------------------------------------------------------------------------------------------


@router.get("/{customer_id}/orders", response={200: OrderCollection, **ERROR_RESPONSES})
def list_orders(request, customer_id: str, paging: Query[Paging]):
    """O1: the customer's orders, newest first, a page at a time (seek: MS-ContinuationToken); a reseller sees
    those it is the reseller of (T1)."""
    customer = access.get_customer(request.user, customer_id)
    orders = after_token(request, access.customer_orders(request.user, customer), "created_at")
    picked = list(orders.values_list("created_at", "pk")[: paging.size + 1])
    more = len(picked) > paging.size
    picked = picked[: paging.size]
    loaded = {o.pk: o for o in order_reads().filter(pk__in=[pk for _, pk in picked])}
    last = picked[-1] if picked else None
    return wire.collection(
        [order_resource(loaded[pk]) for _, pk in picked if pk in loaded],
        self_uri=f"/customers/{customer.pk}/orders?size={paging.size}",
        next_token=encode_token((last[0].isoformat(), str(last[1]))) if more else None,
    )


def load_order(request, customer_id: str, order_id: str) -> Order:
    customer = access.get_customer(request.user, customer_id)
    pk = order_pk(order_id)
    order = order_reads().filter(pk__in=access.customer_orders(request.user, customer).filter(pk=pk)).first()
    if order is None:
        raise Http404(gettext("No such order."))
    return order


@router.get("/{customer_id}/orders/{order_id}", response={200: OrderOut, **ERROR_RESPONSES})
def get_order(request, customer_id: str, order_id: str):
    return order_resource(load_order(request, customer_id, order_id))


@router.get(
    "/{customer_id}/orders/{order_id}/provisioningstatus", response={200: ProvisioningCollection, **ERROR_RESPONSES}
)
def order_provisioning_status(request, customer_id: str, order_id: str):
    """O2: each line's fulfilment (in the background, after checkout): fulfilled once its subscription exists."""
    order = load_order(request, customer_id, order_id)
    items = []
    for number, line in enumerate(order.lines.all()):
        status = "fulfilled" if line.status == OrderLine.Status.FULFILLED else "prefulfillment_pending"
        subscription = getattr(line, "subscription", None)
        items.append(
            {
                "orderLineItemId": number,
                "lineItemNumber": number,
                "status": status,
                "subscriptionId": str(subscription.pk) if subscription is not None else None,
                "quantityProvisioningInformation": [{"quantity": line.quantity, "status": status}],
            }
        )
    return {"totalCount": len(items), "items": items, "attributes": {"objectType": "Collection"}}
