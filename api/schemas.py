"""The wire format: Partner Center's resources, field names (camelCase) and enums, as pydantic schemas. The OpenAPI
document is generated from these; every answer is validated against them on its way out."""

from datetime import date, datetime
from decimal import Decimal
from typing import get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from catalog.models import BillingFrequency, Term
from subscriptions.states import Status


class Schema(BaseModel):
    """The base of every answer's schema: a plain pydantic model. An answer is a dict (api.wire), so pydantic's core
    validates it at once; ninja's Schema would first wrap every nested object in its attribute getter (about a third
    of a page of 100 subscriptions' time, profiled)."""


class Link(Schema):
    uri: str
    method: str = "GET"
    headers: list[dict] = []


class Attributes(Schema):
    objectType: str
    etag: str | None = None


class ProductType(Schema):
    id: str
    displayName: str
    subType: str | None = None


class RefundableDetail(Schema):
    quantity: int
    allowedUntilDateTime: datetime


class RefundableQuantity(Schema):
    totalQuantity: int
    details: list[RefundableDetail]


class ProductTerm(Schema):
    productId: str
    skuId: str
    availabilityId: str
    billingCycle: str
    termDuration: str


class NextChargeInstructions(Schema):
    product: ProductTerm
    quantity: int
    chargeDate: datetime | None = Field(None, description="The portal's addition: the next charge, at 00:00 UTC.")


class ScheduledNextTermInstructions(Schema):
    product: ProductTerm
    quantity: int
    customTermEndDate: datetime | None = None


class RenewalInstructions(Schema):
    product: ProductTerm
    quantity: int
    customTermEndDate: datetime | None = None
    changes: list[str] = Field(description="Each change scheduled for the renewal, as the page lists it.")
    links: dict[str, Link]
    attributes: Attributes = Field(description="The etag is the subscription's: send it as If-Match to change these.")


class TransitionError(Schema):
    code: int
    description: str


class TransitionEligibilityDetail(Schema):
    isEligible: bool
    transitionType: str
    errors: list[TransitionError]


class TargetSubscriptionEligibility(Schema):
    isEligible: bool
    subscriptionId: str
    subscriptionFriendlyName: str
    subscriptionTermDuration: str
    subscriptionBillingCycle: str
    errors: list[TransitionError]


class TransitionEligibility(Schema):
    catalogItemId: str
    title: str
    description: str
    quantity: int
    eligibilities: list[TransitionEligibilityDetail]
    subscriptionEligibilities: list[TargetSubscriptionEligibility]
    attributes: Attributes


class TransitionEligibilityCollection(Schema):
    totalCount: int
    items: list[TransitionEligibility]
    attributes: Attributes


class TransitionEvent(Schema):
    name: str
    status: str
    timestamp: datetime
    attributes: Attributes


class Transition(Schema):
    operationId: str
    fromCatalogItemId: str
    fromSubscriptionId: str
    toCatalogItemId: str
    toSubscriptionId: str
    quantity: int
    termDuration: str
    billingCycle: str
    transitionType: str
    events: list[TransitionEvent]
    attributes: Attributes


class TransitionCollection(Schema):
    totalCount: int
    items: list[Transition]
    continuationToken: str | None = None
    links: dict[str, Link]
    attributes: Attributes


class Subscription(Schema):
    id: str
    customerId: str = Field(description="The customer it belongs to (the portal's addition).")
    offerId: str = Field(description='"{productId}:{skuId}:{availabilityId}", as new commerce spells it.')
    offerName: str
    friendlyName: str
    productType: ProductType
    quantity: int
    unitType: str
    hasPurchasableAddons: bool
    creationDate: datetime
    effectiveStartDate: datetime | None
    commitmentEndDate: datetime | None = Field(description="The inclusive last day of the term, at 00:00 UTC.")
    commitmentEndDateTime: datetime | None
    cancellationAllowedUntilDate: datetime | None = Field(
        description=(
            "Until when (UTC) its cancellation window is open (X1, X3); null when no window runs: passed, ended, or "
            "not started yet (an ISV subscription waiting for its publisher set-up). Whether it can be cancelled now "
            "is `actions` (cancel)."
        )
    )
    status: str = Field(description=", ".join(Status.values))
    autoRenewEnabled: bool
    isTrial: bool
    billingType: str
    billingCycle: str
    termDuration: str
    isMicrosoftProduct: bool
    publisherName: str
    partnerId: str = Field(description="The reseller of record's PartnerID; empty without one.")
    parentSubscriptionId: str | None = None
    orderId: str | None = None
    promotionId: str | None = None
    refundableQuantity: RefundableQuantity
    scheduledNextTermInstructions: ScheduledNextTermInstructions | None
    nextChargeInstructions: NextChargeInstructions | None = Field(
        description="N7: the billing frequency that starts at the next charge, when one is set."
    )
    renewalPending: bool = Field(description="N6: the renewal is being processed; changes answer 409 meanwhile.")
    actions: list[str] = Field(description="What the token's owner may do now: the same verdicts as the page's.")
    links: dict[str, Link]
    attributes: Attributes


class SubscriptionCollection(Schema):
    totalCount: int = Field(description="The number of items in this page, as Partner Center counts it.")
    items: list[Subscription]
    continuationToken: str | None = None
    links: dict[str, Link]
    attributes: Attributes


class BillingLine(Schema):
    kind: str
    amount: Decimal = Field(description="Money as an exact decimal string; a refund is negative.")
    currency: str
    quantity: int
    unitPrice: Decimal
    periodStart: date
    periodEnd: date = Field(description="Inclusive.")
    explanation: str = Field(description="The arithmetic, for checking by hand.")
    createdAt: datetime
    attributes: Attributes


class BillingLineCollection(Schema):
    totalCount: int
    items: list[BillingLine]
    continuationToken: str | None = None
    links: dict[str, Link]
    attributes: Attributes


class ActivityEntry(Schema):
    id: str
    at: datetime
    action: str
    summary: str
    actor: str = Field(description="Who made the change; empty for the platform's own work or another partner.")
    subscriptionId: str | None
    orderId: str | None
    before: dict
    after: dict
    attributes: Attributes


class ActivityCollection(Schema):
    totalCount: int
    items: list[ActivityEntry]
    continuationToken: str | None = None
    links: dict[str, Link]
    attributes: Attributes


class TransferLineItem(Schema):
    id: int
    subscriptionId: str
    offerId: str
    friendlyName: str
    quantity: int
    billingCycle: str
    termDuration: str


class Transfer(Schema):
    id: str
    status: str = Field(description="Active (pending), Complete, Cancel, Expired")
    transferType: str = Field(description='"5": new commerce')
    createdTime: datetime
    lastModifiedTime: datetime | None
    completedTime: datetime | None
    expirationTime: datetime
    customerName: str
    customerTenantId: str
    sourcePartnerName: str
    sourcePartnerId: str = Field(description="The source partner's PartnerID (the portal's addition).")
    targetPartnerName: str
    targetPartnerId: str
    targetPartnerEmailId: str
    lineItems: list[TransferLineItem] = Field(
        description="While Active, what the source partner may pick (TF3); once Complete, what moved."
    )
    links: dict[str, Link]
    attributes: Attributes


class TransferCollection(Schema):
    totalCount: int
    items: list[Transfer]
    continuationToken: str | None = None
    links: dict[str, Link]
    attributes: Attributes


class OfferAvailability(Schema):
    id: str
    catalogItemId: str = Field(description="What a cart line buys: {productId}:{skuId}:{availabilityId}.")
    termDuration: str
    billingCycle: str
    unitPrice: Decimal
    currency: str


class Refusal(Schema):
    ruleId: str
    description: str


class Offer(Schema):
    id: str = Field(description="The SKU id (skuId).")
    productId: str
    title: str
    description: str
    publisherName: str
    isMicrosoftProduct: bool
    productType: ProductType
    isTrial: bool
    isAddon: bool
    minimumQuantity: int
    maximumQuantity: int
    availabilities: list[OfferAvailability]
    purchasable: bool = Field(description="Whether this customer can buy it now (C4), as the catalog's card says.")
    refusal: Refusal | None = Field(description="Why not, with the rule, as the catalog's card says.")
    attributes: Attributes


class OfferCollection(Schema):
    totalCount: int
    items: list[Offer]
    continuationToken: str | None = None
    links: dict[str, Link]
    attributes: Attributes


class Customer(Schema):
    id: str = Field(description="The customer's id in this portal (its directory tenant is companyProfile.tenantId).")
    companyProfile: dict
    billingProfile: dict
    relationshipToPartner: str
    links: dict[str, Link]
    attributes: Attributes


class CustomerCollection(Schema):
    totalCount: int
    items: list[Customer]
    continuationToken: str | None = None
    links: dict[str, Link]
    attributes: Attributes


class Error(Schema):
    code: int
    description: str
    data: list = []
    source: str
    ruleId: str | None = Field(None, description="The product rule that refused (RULES.md), when one did.")


class Throttle(Schema):
    statusCode: int
    message: str


def holds_nul(value) -> bool:
    """Whether a NUL character is anywhere in this JSON value (keys too)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(holds_nul(k) or holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(holds_nul(v) for v in value)
    return False


class CaseInsensitive(BaseModel):
    """A request body read as Partner Center reads one: field names in any case ("Quantity", "quantity"), and an
    unknown field refused rather than dropped without a word. (A plain pydantic model: ninja's Schema reads its
    input through attribute getters, before a validator could see the names as sent.)"""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _any_case(cls, data):
        if not isinstance(data, dict):
            return data
        if holds_nul(data):
            # No text the portal keeps can hold one (PostgreSQL refuses it): refused here, not at the database
            raise ValueError("text can't hold a NUL character")
        known = {name.lower(): name for name in cls.model_fields}
        read = {}
        for key, value in data.items():
            name = known.get(key.lower(), key) if isinstance(key, str) else key
            if name in read:
                # "quantity" and "Quantity" in one body: which one was meant? Refused rather than one dropped.
                raise ValueError(f"{name} is sent twice (field names are read in any case)")
            _check_json_type(cls, name, value)
            read[name] = value
        return read


def _check_json_type(model, name, value) -> None:
    """A number or a true/false sent as JSON has that type: "11" is no quantity and "off" or 0 no autoRenewEnabled
    (pydantic would read them so, where a client meant something else or made a mistake)."""
    field = model.model_fields.get(name)
    if field is None or value is None:
        return
    kinds = set(get_args(field.annotation)) or {field.annotation}
    if bool in kinds and not isinstance(value, bool):
        raise ValueError(f"{name}: send true or false")
    if int in kinds and bool not in kinds and (isinstance(value, bool) or not isinstance(value, int)):
        raise ValueError(f"{name}: send a whole number, not text or true/false")


class SubscriptionPatch(CaseInsensitive):
    """The subscription as read (GET, change, PATCH, as Partner Center has it), or only the fields to change. Unlike
    Partner Center, a field left out is left as it is (Partner Center turns auto-renew off and drops scheduled
    instructions that a PATCH leaves out). Read-only fields may be sent back as read; they are not changed."""

    quantity: int | None = Field(None, ge=0, le=2_147_483_647)
    friendlyName: str | None = Field(None, max_length=200)
    autoRenewEnabled: bool | None = None
    status: str | None = Field(None, description="suspended, active (reactivate) or deleted (cancel)")
    # Read-only: accepted as read, so a client can send back the whole resource.
    id: str | None = None
    customerId: str | None = None
    offerId: str | None = None
    offerName: str | None = None
    productType: dict | None = None
    unitType: str | None = None
    hasPurchasableAddons: bool | None = None
    creationDate: str | None = None
    effectiveStartDate: str | None = None
    commitmentEndDate: str | None = None
    commitmentEndDateTime: str | None = None
    cancellationAllowedUntilDate: str | None = None
    isTrial: bool | None = None
    billingType: str | None = None
    billingCycle: str | None = None
    termDuration: str | None = None
    isMicrosoftProduct: bool | None = None
    publisherName: str | None = None
    partnerId: str | None = None
    parentSubscriptionId: str | None = None
    orderId: str | None = None
    promotionId: str | None = None
    refundableQuantity: dict | None = None
    scheduledNextTermInstructions: dict | None = None
    nextChargeInstructions: dict | None = Field(
        None,
        description='N7: {"product": {"billingCycle": ...}} sets the billing frequency from the next charge; null '
        "removes the one set; left out, it stays.",
    )
    renewalPending: bool | None = None
    actions: list | None = None
    links: dict | None = None
    attributes: dict | None = None


# Partner Center spells a 3-year term billed once for the whole term "triennial" (its BillingCycleType: the reference's
# 1.2, and its P3Y software sample); the portal calls that frequency one-time, and sells it only with P3Y.
TRIENNIAL = "triennial"


def billing_cycle(term: str, frequency: str) -> str:
    """The wire's billingCycle of a term billed this often (every billingCycle the API answers goes through it)."""
    return TRIENNIAL if frequency == BillingFrequency.ONE_TIME and term == Term.P3Y else frequency


def billing_frequency_named(cycle: str) -> str | None:
    """The portal's billing frequency a billingCycle names, read in any case (OneTime, triennial); None if none."""
    value = cycle.strip().lower()
    value = {"onetime": BillingFrequency.ONE_TIME, TRIENNIAL: BillingFrequency.ONE_TIME}.get(value, value)
    return value if value in BillingFrequency.values else None


CYCLES = ", ".join([*BillingFrequency.values, TRIENNIAL])


class ProductTermBody(CaseInsensitive):
    productId: str = Field(max_length=40)
    skuId: str = Field(max_length=60)
    availabilityId: str | None = Field(None, max_length=40, description="Read, not needed: term and cycle choose it.")
    billingCycle: str = Field(description=CYCLES)
    termDuration: str = Field(description=", ".join(Term.values))
    promotionId: str | None = Field(None, max_length=40)

    @field_validator("billingCycle")
    @classmethod
    def _cycle(cls, value: str) -> str:
        frequency = billing_frequency_named(value)
        if frequency is None:
            raise ValueError(f"billingCycle is one of {CYCLES}")
        return frequency

    @field_validator("termDuration")
    @classmethod
    def _term(cls, value: str) -> str:
        if value.upper() not in Term.values:
            raise ValueError(f"termDuration is one of {', '.join(Term.values)}")
        return value.upper()


class TransitionBody(CaseInsensitive):
    """U1–U9: an upgrade now. `toSubscriptionId` upgrades into an existing subscription of the target (U3);
    fewer licenses than the source's make a partial upgrade into a new coterminous subscription (U6)."""

    toCatalogItemId: str = Field(max_length=120)
    toSubscriptionId: str | None = Field(None, max_length=40)
    quantity: int = Field(ge=1, le=2_147_483_647)
    termDuration: str | None = None
    billingCycle: str | None = None
    transitionType: str | None = Field(None, description="transition_with_license_transfer (the portal reassigns)")
    fromCatalogItemId: str | None = Field(None, max_length=120)
    fromSubscriptionId: str | None = Field(None, max_length=40)
    promotionId: str | None = Field(None, max_length=40)

    @field_validator("billingCycle")
    @classmethod
    def _cycle(cls, value):
        return None if value is None else ProductTermBody._cycle(value)

    @field_validator("termDuration")
    @classmethod
    def _term(cls, value):
        return None if value is None else ProductTermBody._term(value)


class TransferCreateBody(CaseInsensitive):
    """TF2: the target partner asks the source partner (its PartnerID) for this customer's subscriptions."""

    sourcePartnerId: str = Field(max_length=20, description="The source partner's PartnerID.")
    targetPartnerEmailId: str = Field(max_length=254, description="Where notifications of the request go.")
    sourcePartnerName: str | None = Field(None, max_length=200)
    transferType: str | None = Field(None, max_length=2)


class TransferLineBody(CaseInsensitive):
    subscriptionId: str = Field(max_length=40)
    id: int | None = None
    offerId: str | None = Field(None, max_length=120)
    friendlyName: str | None = Field(None, max_length=200)
    quantity: int | None = None
    billingCycle: str | None = None
    termDuration: str | None = None


class TransferPatchBody(CaseInsensitive):
    """TF3, TF4: the source partner completes it with the subscriptions it picks (`Complete`, with `lineItems`);
    either side ends it while pending (`Cancel`: withdrawn by the target, `Reject`: declined by the source)."""

    status: str = Field(max_length=20, description="Complete, Cancel or Reject")
    lineItems: list[TransferLineBody] = Field(default_factory=list, max_length=250)
    id: str | None = None


class InstructionsBody(CaseInsensitive):
    """What the subscription should renew with (R1): the SKU (its own, or an upgrade target), term, billing cycle,
    quantity and an aligned end date (K11; null for the term's natural end). The whole of it, as PUT has it: sending
    the subscription's own values removes what was scheduled."""

    product: ProductTermBody
    quantity: int = Field(ge=1, le=2_147_483_647)
    customTermEndDate: datetime | None = None
    # Read-only, accepted as read (the resource sent back as GET gave it)
    changes: list | None = None
    links: dict | None = None
    attributes: dict | None = None


TERMS = list(Term.values)
BILLING_CYCLES = [*BillingFrequency.values, TRIENNIAL]
