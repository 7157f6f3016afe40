"""The REST API, `/api/v1/`: Partner Center's paths, fields and protocol over the portal's own services, scoping and
rules. Each handler is access → (body, validated by its schema) → service → resource: no rule is decided here.

Errors answer in Partner Center's envelope (api.errors); every answer echoes `MS-CorrelationId` and `MS-RequestId`
(api.middleware)."""

import base64
import binascii
import json
import re
from contextlib import nullcontext
from datetime import UTC, datetime
from uuid import UUID, uuid4

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext
from ninja import NinjaAPI, Query, Router, Schema
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.security import HttpBearer
from pydantic import Field, field_validator
from pydantic import ValidationError as PydanticValidationError

from catalog.cart import current_cart
from catalog.eligibility import buying_context
from catalog.listing import listed_offer_ids, listing_facts, offer_cards, offer_filter
from catalog.models import Availability, Sku, catalog_version
from portal import access
from portal.errors import RuleViolation, RuleViolations
from subscriptions import checks, cycles, selectors, services, transfers
from subscriptions.filters import SubscriptionListForm
from subscriptions.models import BillingLine, Subscription
from subscriptions.services import renewal_values
from subscriptions.services.conversions import conversion_targets, scheduled_conversion_refusal
from subscriptions.services.upgrades import upgrade_targets
from subscriptions.states import Status

from . import errors, protocol, schemas, tokens, wire
from .models import TransitionRecord

PAGE_SIZE = 100
MAX_PAGE_SIZE = 500


class TokenAuth(HttpBearer):
    """`Authorization: Bearer <personal token>`: the token's owner, with the owner's partner and roles. A session
    never authenticates the API (so no cross-site form can act through a signed-in browser)."""

    openapi_scheme = "bearer"

    def authenticate(self, request, token):
        now = timezone.now()
        found = tokens.authenticate(token, now=now)
        if found is None:
            return None
        request.user = found.user
        partner = access.partner_of(found.user)
        protocol.admit(partner, now=now)  # 429 past the partner's rate
        request.partner = partner
        return found


api = NinjaAPI(
    title="CSP Portal API",
    version="1",
    description=(
        "Partner Center's REST API for customers and subscriptions, over the portal's own rules. Times are UTC. "
        "Every refusal says which rule (`ruleId`) and the sentence the portal's page shows. A PATCH leaves out what "
        "it doesn't send (unlike Partner Center, a missing `autoRenewEnabled` does not turn auto-renew off)."
    ),
    auth=TokenAuth(),
    urls_namespace="api-v1",
    docs_url="/docs",
    openapi_url="/openapi.json",
)


# --- Errors ----------------------------------------------------------------------------------------------------


@api.exception_handler(RuleViolation)
def _rule(request, exc):
    return errors.refusal(exc)


@api.exception_handler(RuleViolations)
def _rules(request, exc):
    return errors.refusals(exc.violations)


@api.exception_handler(Http404)
def _not_found(request, exc):
    return errors.plain(404, gettext("Not found: no such resource among your partner's."))


@api.exception_handler(PermissionDenied)
def _forbidden(request, exc):
    return errors.plain(403, str(exc) or gettext("Your role can't do this."))


@api.exception_handler(AuthenticationError)
def _unauthorized(request, exc):
    return errors.plain(
        401,
        gettext("Send Authorization: Bearer with a personal API token (user menu, API tokens)."),
        headers={"WWW-Authenticate": 'Bearer realm="csp-portal"'},
    )


@api.exception_handler(NinjaValidationError)
def _invalid(request, exc):
    fields = [
        {"field": ".".join(str(p) for p in e.get("loc", ()) if p not in ("body", "query", "path")), "message": e["msg"]}
        for e in exc.errors
    ]
    described = "; ".join(f"{f['field']}: {f['message']}" if f["field"] else f["message"] for f in fields)
    return errors.plain(
        400, (gettext("The request is malformed: %(problems)s") % {"problems": described})[:1024], data=fields
    )


@api.exception_handler(protocol.PreconditionFailed)
def _precondition(request, exc):
    return errors.envelope(412, 2055, str(exc))


@api.exception_handler(protocol.Throttled)
def _throttled(request, exc):
    # Partner Center's throttling answer, which is not its error envelope.
    response = JsonResponse({"statusCode": 429, "message": str(exc)}, status=429)
    response["Retry-After"] = str(exc.retry_after)
    return response


@api.exception_handler(protocol.RequestIdReused)
def _reused(request, exc):
    return errors.plain(422, str(exc))


@api.exception_handler(HttpError)
def _http(request, exc):
    return errors.plain(exc.status_code, str(exc))


def answered(request, act):
    """`act()`'s answer, or the answer to the refusal it raised: what MS-RequestId stores and replays."""
    try:
        return act()
    except (RuleViolation, RuleViolations, Http404, PermissionDenied, protocol.PreconditionFailed) as exc:
        return api.on_exception(request, exc)


ERROR_RESPONSES = {
    400: schemas.Error,
    401: schemas.Error,
    403: schemas.Error,
    404: schemas.Error,
    409: schemas.Error,
    412: schemas.Error,
    422: schemas.Error,
    429: schemas.Throttle,
}


# --- Paging ------------------------------------------------------------------------------------------------------


class Paging(Schema):
    size: int = Field(PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE, description="Items a page.")
    seekOperation: str | None = Field(None, description='"Next", with MS-ContinuationToken.')


def continuation(request) -> str:
    return request.headers.get("MS-ContinuationToken", "").strip()


def no_nul(*values) -> None:
    """Query values and token contents: a NUL character is no text the portal keeps (PostgreSQL refuses it)."""
    if schemas.holds_nul(list(values)):
        raise HttpError(400, gettext("A value can't hold a NUL character."))


def decode_token(token: str, width: int) -> list:
    try:
        values = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode())
    except (binascii.Error, UnicodeDecodeError, ValueError):
        values = None
    if (
        not isinstance(values, list)
        or len(values) != width
        or not all(isinstance(v, str) and len(v) <= 300 for v in values)
        or schemas.holds_nul(values)
    ):
        raise HttpError(400, gettext("The MS-ContinuationToken is not one this list gave."))
    return values


def list_uri(request) -> str:
    """The list's own URI as Partner Center writes links (relative, without /v1), with every query parameter it was
    asked with but the seek operation: `links.next` keeps the filters."""
    query = request.GET.copy()
    query.pop("seekOperation", None)
    path = request.path.removeprefix("/api/v1")
    return f"{path}?{query.urlencode()}" if query else path


def after_token(request, rows, field: str, *, newest_first: bool = True, key=int):
    """`rows`, ordered by (`field`, pk) newest first (else oldest first), after the row the MS-ContinuationToken
    names, if one was sent: a seek, served by the index of that order. `key` reads the token's pk (int, UUID)."""
    rows = rows.order_by(f"-{field}", "-pk") if newest_first else rows.order_by(field, "pk")
    token = continuation(request)
    if not token:
        return rows
    at, pk = decode_token(token, 2)
    try:
        at, pk = datetime.fromisoformat(at), key(pk)
        if at.tzinfo is None or (isinstance(pk, int) and not 0 < pk < 2**63):
            raise ValueError("a UTC time and an id")
        at = at.astimezone(UTC)
    except (ValueError, OverflowError):
        raise HttpError(400, gettext("The MS-ContinuationToken is not one this list gave.")) from None
    beyond = "lt" if newest_first else "gt"
    return rows.filter(Q(**{f"{field}__{beyond}": at}) | Q(**{field: at, f"pk__{beyond}": pk}))


def token_after(row, field: str) -> str:
    """The MS-ContinuationToken of the page that follows `row` (`after_token` reads it)."""
    return encode_token((getattr(row, field).isoformat(), str(row.pk)))


def page_of(rows, size: int) -> tuple[list, bool]:
    """The first `size` of `rows` (ordered, already after the continuation token's row) and whether more follow."""
    page = list(rows[: size + 1])
    return page[:size], len(page) > size


def encode_token(values) -> str:
    return selectors.encode_cursor(tuple(values))


# --- Customers -------------------------------------------------------------------------------------------------

customers = Router(tags=["customers"])


@customers.get("", response={200: schemas.CustomerCollection, **ERROR_RESPONSES})
def list_customers(request, paging: Query[Paging]):
    """The partner's customers by company name (T3), a page at a time (seek: MS-ContinuationToken)."""
    rows = access.customers_for(request.user).order_by("company_name", "pk")
    token = continuation(request)
    if token:
        name, pk = decode_token(token, 2)
        try:
            pk = UUID(pk)
        except ValueError:
            raise HttpError(400, gettext("The MS-ContinuationToken is not one this list gave.")) from None
        rows = rows.filter(Q(company_name__gt=name) | Q(company_name=name, pk__gt=pk))
    page, more = page_of(rows, paging.size)
    return wire.collection(
        [wire.customer(c) for c in page],
        self_uri=list_uri(request),
        next_token=encode_token((page[-1].company_name, str(page[-1].pk))) if more else None,
    )


@customers.get("/{customer_id}", response={200: schemas.Customer, **ERROR_RESPONSES})
def get_customer(request, customer_id: str):
    return wire.customer(access.get_customer(request.user, customer_id))


# --- The catalog for a customer (C2–C5) --------------------------------------------------------------------


class OfferQuery(Paging):
    q: str | None = Field(None, max_length=200, description="C2: words of the name, product, publisher or SKU id")
    publisher: list[str] = Field(default_factory=list, description="microsoft, partner")
    billing_type: list[str] = Field(default_factory=list, description="license, usage")
    category: list[str] = Field(default_factory=list, description="enterprise, small_business, trial")
    showAll: bool = Field(False, description="C3, C5: also the offers this customer's catalog doesn't list")


def catalog_context(request, customer):
    """What the catalog page's verdicts (C4) read of this customer, as the page reads it for this user: the
    customer's holdings and, for a user who may buy, their open cart (an offer sold once that is in it can't be added
    again). Every catalog resource (here and api.catalog) asks `offer_cards` with it."""
    can_buy = access.permission(request.user, access.Action.BUY)
    cart = current_cart(customer, request.user, timezone.now()) if can_buy else None
    return buying_context(customer, request.partner, cart)


@customers.get("/{customer_id}/products", response={200: schemas.OfferCollection, **ERROR_RESPONSES})
def list_offers(request, customer_id: str, query: Query[OfferQuery]):
    """C2–C5: the customer's catalog as its page lists it, through the page's own FilterSet (a value it rejects is
    ignored, as on the page), each offer with its verdict (C4): whether it can be bought now, and why not."""
    customer = access.get_customer(request.user, customer_id)
    no_nul(query.q, *query.publisher, *query.billing_type, *query.category)
    ctx = catalog_context(request, customer)
    filters = offer_filter(request.GET)
    facts = listing_facts(catalog_version())
    listed = listed_offer_ids(filters.qs, ctx, query.showAll, narrowed=filters.narrows(), facts=facts)
    start = 0
    token = continuation(request)
    if token:
        (after,) = decode_token(token, 1)
        positions = {pk: i for i, pk in enumerate(listed)}
        if not (after.isascii() and after.isdigit() and len(after) <= 18) or int(after) not in positions:
            raise HttpError(
                400, gettext("The MS-ContinuationToken is not one this list gave (or the catalog changed).")
            )
        start = positions[int(after)] + 1
    ids = listed[start : start + query.size]
    more = start + query.size < len(listed)
    cards = offer_cards(ids, ctx, facts)
    skus = Sku.objects.select_related("product__publisher").prefetch_related("availabilities").in_bulk(ids)
    items = [wire.offer(skus[card.pk], card.refusal) for card in cards if card.pk in skus]
    return wire.collection(
        items,
        self_uri=list_uri(request),
        next_token=encode_token((str(ids[-1]),)) if more and ids else None,
    )


# --- Subscriptions -----------------------------------------------------------------------------------------------


class SubscriptionQuery(Paging):
    """S1: the list's filters and sort, read by the lists' own form (subscriptions.filters.SubscriptionListForm)."""

    status: str | None = Field(None, description=", ".join(Status.values))
    sort: str | None = Field(
        None, description="A column of the list (name, quantity, status, term, ...); -: descending"
    )
    offer_id: str | None = Field(None, description="Only this offer's subscriptions (its offerId or skuId).")
    window: str | None = Field(None, description="48h: a removal window closes within 48 hours (across customers)")
    renews: str | None = Field(None, description="30d: renews within 30 days (across customers)")


LIST_INPUTS = ("status", "sort", "window", "renews")


def subscription_page(request, subscriptions, query: SubscriptionQuery, *, across: bool, self_uri: str):
    """A page of subscriptions in the list's order (the lists' own sort indexes), from the continuation token,
    filtered and sorted by the list page's own form; a value it refuses answers 400 (a page ignores it)."""
    no_nul(query.status, query.sort, query.offer_id, query.window, query.renews)
    form = SubscriptionListForm(
        request.GET,
        sorts=selectors.ALL_SORTS if across else selectors.CUSTOMER_SORTS,
        default_sort="customer" if across else "name",
        across_customers=across,
    )
    form.is_valid()
    refused = [f"{name}: {form.errors[name][0]}" for name in LIST_INPUTS if name in form.errors]
    if refused:
        raise HttpError(400, "; ".join(refused))
    sort = form.values()["sort"]
    now = timezone.now()
    subscriptions = selectors.filter_subscriptions(subscriptions, form.filters(), now=now)
    if query.offer_id:
        subscriptions = subscriptions.filter(sku__in=Sku.objects.filter(wire.offer_named(query.offer_id)))
    token = continuation(request)
    if token:
        try:
            after = selectors.decode_cursor(token, sort)
            no_nul(*after)
            subscriptions = selectors.seek_after(subscriptions, sort, after)
        except ValidationError:
            raise HttpError(400, gettext("The MS-ContinuationToken is not one this list gave.")) from None
    columns, _ = selectors.sort_key(sort)
    picked = list(selectors.order_subscriptions(subscriptions, sort).values_list(*columns)[: query.size + 1])
    more = len(picked) > query.size
    picked = picked[: query.size]
    ids = [row[-1] for row in picked]
    loaded = {s.pk: s for s in wire.subscription_reads().filter(pk__in=ids)}
    items = [wire.subscription(loaded[pk], request.user, now) for pk in ids if pk in loaded]
    return wire.collection(items, self_uri=self_uri, next_token=encode_token(picked[-1]) if more else None)


@customers.get("/{customer_id}/subscriptions", response={200: schemas.SubscriptionCollection, **ERROR_RESPONSES})
def list_customer_subscriptions(request, customer_id: str, query: Query[SubscriptionQuery]):
    """S1: a customer's subscriptions by name."""
    customer = access.get_customer(request.user, customer_id)
    return subscription_page(
        request,
        access.customer_subscriptions(request.user, customer),
        query,
        across=False,
        self_uri=list_uri(request),
    )


def load_subscription(request, customer_id, subscription_id, *, customer=None) -> Subscription:
    """The subscription as its resource reads it, scoped to the caller (404 otherwise); `customer` if already read
    (and scoped) by the caller."""
    customer = customer or access.get_customer(request.user, customer_id)
    subscription = access.get_subscription(request.user, customer, subscription_id, wire.subscription_reads())
    subscription.customer = customer
    return subscription


@customers.get(
    "/{customer_id}/subscriptions/{subscription_id}", response={200: schemas.Subscription, **ERROR_RESPONSES}
)
def get_subscription(request, customer_id: str, subscription_id: str):
    return wire.subscription(load_subscription(request, customer_id, subscription_id), request.user, timezone.now())


STATUS_CHANGES = {
    Status.SUSPENDED: services.suspend_subscription,
    Status.ACTIVE: services.reactivate_subscription,
    Status.DELETED: services.cancel_subscription,
}


def _next_charge_frequency(instructions: dict | None) -> str | None:
    """The billing cycle a PATCH's nextChargeInstructions names (None: remove the instruction)."""
    if instructions is None:
        return None
    product = instructions.get("product") if isinstance(instructions, dict) else None
    cycle = product.get("billingCycle") if isinstance(product, dict) else None
    if not isinstance(cycle, str):
        raise HttpError(
            400, "nextChargeInstructions.product.billingCycle names the billing cycle from the next charge."
        )
    try:
        return schemas.ProductTermBody._cycle(cycle)
    except ValueError as error:
        raise HttpError(400, f"nextChargeInstructions: {error}") from None


# Fields of the resource a PATCH may send back as read but not change here: a different value is refused, never
# dropped without a word (how to change it instead, where there is a way).
FIXED_FIELDS = {
    "id": "",
    "customerId": "",
    "offerId": " (upgrade it: POST .../transitions)",
    "termDuration": " (at the renewal: PUT .../scheduledNextTermInstructions)",
    "billingCycle": " (at the renewal: PUT .../scheduledNextTermInstructions; from the next charge: nextChargeInstructions)",
    "partnerId": "",
    "parentSubscriptionId": "",
    "isTrial": " (convert it: POST .../transitions)",
}


def _check_fixed_fields(subscription: Subscription, body: schemas.SubscriptionPatch, user) -> None:
    sent = body.model_dump(include=body.model_fields_set & FIXED_FIELDS.keys(), mode="json")
    if not sent:
        return
    current = schemas.Subscription(**wire.subscription(subscription, user, timezone.now())).model_dump(mode="json")
    for name, value in sent.items():
        if name == "billingCycle" and isinstance(value, str):
            # Read in any spelling (OneTime, one_time, triennial): the frequency it names is what is compared.
            value = schemas.billing_cycle(subscription.term, schemas.billing_frequency_named(value) or value)
        if value != current[name]:
            raise HttpError(400, f"{name} can't be changed by a PATCH{FIXED_FIELDS[name]}. Nothing was changed.")


def unchanged(subscription: Subscription) -> dict:
    """R3: what `schedule_renewal_change` is asked for to renew as the subscription is (its own values remove every
    scheduled change)."""
    return {
        "quantity": subscription.quantity,
        "term": subscription.term,
        "billing_frequency": subscription.billing_frequency,
        "target_sku_id": subscription.sku_id,
        "aligned_end_date": services.NATURAL_END,
    }


def _instruction_changes(subscription: Subscription, sent, ids) -> list:
    """The scheduling call a PATCH's scheduledNextTermInstructions asks for, none if it is as scheduled now."""
    current = wire.scheduled_instructions(subscription)
    if sent is None:
        if current is None:
            return []
        return [lambda v, now: services.schedule_renewal_change(**ids, version=v, now=now, **unchanged(subscription))]
    try:
        wanted = schemas.InstructionsBody.model_validate(sent)
    except PydanticValidationError as error:
        raise HttpError(400, f"scheduledNextTermInstructions: {error.errors()[0]['msg']}") from None
    values = instruction_values(wanted)
    if current is not None:
        as_sent = schemas.ScheduledNextTermInstructions(
            product={
                **current["product"],
                "billingCycle": wanted.product.billingCycle,
                "termDuration": wanted.product.termDuration,
            },
            quantity=wanted.quantity,
            customTermEndDate=wanted.customTermEndDate,
        ).model_dump(mode="json")
        if as_sent == schemas.ScheduledNextTermInstructions(**current).model_dump(mode="json") and (
            values["target_sku_id"] == renewal_values(subscription)["sku_id"]
        ):
            return []  # sent back as read
    return [lambda v, now: services.schedule_renewal_change(**ids, version=v, now=now, **values)]


def _changes(subscription: Subscription, body: schemas.SubscriptionPatch, actor) -> list:
    """The service calls the body asks for, each as `call(version, now)`: only what differs from the subscription
    as it is (so a resource sent back as read changes nothing), status last."""
    ids = {"subscription_id": subscription.pk, "actor": actor}
    calls = []
    # The rename service keeps a name without its surrounding spaces: one differing only by them is the same name.
    if body.friendlyName is not None and body.friendlyName.strip() != subscription.friendly_name:
        name = body.friendlyName
        calls.append(lambda v, now: services.rename_subscription(**ids, version=v, friendly_name=name, now=now))
    if body.autoRenewEnabled is not None and body.autoRenewEnabled != subscription.auto_renew:
        on = body.autoRenewEnabled
        calls.append(lambda v, now: services.set_auto_renew(**ids, version=v, on=on, now=now))
    if body.quantity is not None and body.quantity != subscription.quantity:
        quantity = body.quantity
        calls.append(lambda v, now: services.change_quantity(**ids, version=v, quantity=quantity, now=now))
    if "nextChargeInstructions" in body.model_fields_set:
        wanted = _next_charge_frequency(body.nextChargeInstructions)
        if wanted is None and subscription.next_charge_frequency:
            calls.append(lambda v, now: cycles.remove_next_charge_frequency(**ids, version=v, now=now))
        elif wanted is not None and wanted != subscription.next_charge_frequency:
            calls.append(
                lambda v, now: cycles.set_next_charge_frequency(**ids, version=v, billing_frequency=wanted, now=now)
            )
    if "scheduledNextTermInstructions" in body.model_fields_set:
        # R1: Partner Center schedules renewal changes by PATCHing them; null leaves the renewal unchanged from now.
        calls.extend(_instruction_changes(subscription, body.scheduledNextTermInstructions, ids))
    if body.status is not None and body.status != subscription.status:
        change = STATUS_CHANGES.get(body.status)
        if change is None:
            raise HttpError(400, "status can be set to suspended, active (to reactivate) or deleted (to cancel).")
        calls.append(lambda v, now: change(**ids, version=v, now=now))
    return calls


@customers.patch(
    "/{customer_id}/subscriptions/{subscription_id}", response={200: schemas.Subscription, **ERROR_RESPONSES}
)
def patch_subscription(request, customer_id: str, subscription_id: str, body: schemas.SubscriptionPatch):
    """Quantity (Q1–Q6), friendlyName, autoRenewEnabled (N1, R6), status suspended / active / deleted (P1–P4, X1–X3):
    each through the service the page uses, all in one transaction (a refusal of one changes nothing). Needs
    `If-Match` with the etag last read (412 otherwise, nothing changed); `MS-RequestId` makes a retry safe."""
    # The row alone: comparing a quantity, a name or a status reads nothing else, and what the rarer fields compare
    # (the scheduled instructions, a fixed field sent back) is read when they are sent. The answer reads it all.
    customer = access.get_customer(request.user, customer_id)
    subscription = access.get_subscription(request.user, customer, subscription_id)
    subscription.customer = customer
    now = timezone.now()

    def act():
        version = protocol.if_match_version(request, "subscription", subscription.pk)
        _check_fixed_fields(subscription, body, request.user)
        calls = _changes(subscription, body, request.user)
        if not calls and version != subscription.version:
            raise protocol.PreconditionFailed("The resource changed since this etag was read: read it again.")
        # One change is one transaction already (its service's own); several are one together.
        with transaction.atomic() if len(calls) > 1 else nullcontext():
            for index, call in enumerate(calls):
                # Each service locks the row, refuses a stale version (after its role check: 403 before 412) and
                # bumps it; the next one is handed the version the last left.
                call(version, now)
                if index + 1 < len(calls):
                    version = Subscription.objects.values_list("version", flat=True).get(pk=subscription.pk)
        fresh = load_subscription(request, customer_id, subscription.pk, customer=subscription.customer)
        return JsonResponse(
            schemas.Subscription(**wire.subscription(fresh, request.user, timezone.now())).model_dump(mode="json")
        )

    return protocol.once(request, request.partner, lambda: answered(request, act), now=now)


@customers.get(
    "/{customer_id}/subscriptions/{subscription_id}/addons",
    response={200: schemas.SubscriptionCollection, **ERROR_RESPONSES},
)
def list_addons(request, customer_id: str, subscription_id: str):
    """A1: the base subscription's add-ons."""
    base = load_subscription(request, customer_id, subscription_id)
    addons = list(
        access.customer_subscriptions(request.user, base.customer, wire.subscription_reads())
        .filter(base_subscription=base)
        .order_by("list_name", "pk")
    )
    now = timezone.now()
    items = [wire.subscription(a, request.user, now) for a in addons]
    return wire.collection(items, self_uri=list_uri(request), next_token=None)


@customers.get(
    "/{customer_id}/subscriptions/{subscription_id}/billingLines",
    response={200: schemas.BillingLineCollection, **ERROR_RESPONSES},
)
def list_billing_lines(request, customer_id: str, subscription_id: str, paging: Query[Paging]):
    """L2: every charge and refund of the subscription, each with its arithmetic, oldest first, a page at a time
    (seek: MS-ContinuationToken)."""
    subscription = load_subscription(request, customer_id, subscription_id)
    lines = BillingLine.objects.filter(subscription=subscription)
    page, more = page_of(after_token(request, lines, "created_at", newest_first=False), paging.size)
    return wire.collection(
        [wire.billing_line(line) for line in page],
        self_uri=list_uri(request),
        next_token=token_after(page[-1], "created_at") if more else None,
    )


@customers.get("/{customer_id}/activityLog", response={200: schemas.ActivityCollection, **ERROR_RESPONSES})
def activity_log(request, customer_id: str, paging: Query[Paging]):
    """L1: the customer's audit trail, newest first, a page at a time (MS-ContinuationToken)."""
    customer = access.get_customer(request.user, customer_id)
    entries = access.customer_activity(request.user, customer).select_related("actor")
    page, more = page_of(after_token(request, entries, "at"), paging.size)
    return wire.collection(
        [wire.activity(e) for e in page],
        self_uri=list_uri(request),
        next_token=token_after(page[-1], "at") if more else None,
    )


# --- Scheduled next-term instructions (R1–R6) ----------------------------------------------------------------

INSTRUCTIONS = "/{customer_id}/subscriptions/{subscription_id}/scheduledNextTermInstructions"


@customers.get(INSTRUCTIONS, response={200: schemas.RenewalInstructions, **ERROR_RESPONSES})
def get_instructions(request, customer_id: str, subscription_id: str):
    """What the subscription renews with, and each change scheduled for its renewal (R3)."""
    return wire.instructions_resource(load_subscription(request, customer_id, subscription_id))


def _write_instructions(request, subscription, values: dict | None, now):
    """Schedules `values` for the renewal (None: the subscription's own values, which removes every change), with
    If-Match on the subscription's etag, once per MS-RequestId."""

    def act():
        version = protocol.if_match_version(request, "subscription", subscription.pk)
        services.schedule_renewal_change(
            subscription_id=subscription.pk,
            actor=request.user,
            version=version,
            now=now,
            **(values or unchanged(subscription)),
        )
        if values is None:
            return HttpResponse(status=204)
        fresh = load_subscription(request, subscription.customer_id, subscription.pk)
        return JsonResponse(schemas.RenewalInstructions(**wire.instructions_resource(fresh)).model_dump(mode="json"))

    return protocol.once(request, request.partner, lambda: answered(request, act), now=now)


def _utc_day(moment: datetime):
    try:
        return moment.astimezone(UTC).date()
    except OverflowError:
        raise HttpError(400, "customTermEndDate is out of range.") from None


@customers.put(INSTRUCTIONS, response={200: schemas.RenewalInstructions, **ERROR_RESPONSES})
def put_instructions(request, customer_id: str, subscription_id: str, body: schemas.InstructionsBody):
    """R1: the SKU (its own or an upgrade target, U2), term, billing cycle, quantity and aligned end date (K11) the
    subscription renews with. Only for an active subscription with auto-renew on (R2), not while its renewal is
    pending (N6). Needs If-Match with the subscription's etag."""
    subscription = load_subscription(request, customer_id, subscription_id)
    return _write_instructions(request, subscription, instruction_values(body), timezone.now())


def instruction_values(body: schemas.InstructionsBody) -> dict:
    """What `schedule_renewal_change` is asked for, from Partner Center's ScheduledNextTermInstructions."""
    product = body.product
    target = Sku.objects.filter(wire.sku_named(product.productId, product.skuId)).values_list("pk", flat=True).first()
    if target is None:
        raise HttpError(400, "product names no offer of the catalog (productId and skuId).")
    end = body.customTermEndDate
    return {
        "quantity": body.quantity,
        "term": product.termDuration,
        "billing_frequency": product.billingCycle,
        "target_sku_id": target,
        "aligned_end_date": _utc_day(end) if end else services.NATURAL_END,
    }


@customers.delete(INSTRUCTIONS, response={204: None, **ERROR_RESPONSES})
def delete_instructions(request, customer_id: str, subscription_id: str):
    """R3, R6: removes every change scheduled for the renewal: it renews as it is."""
    subscription = load_subscription(request, customer_id, subscription_id)
    return _write_instructions(request, subscription, None, timezone.now())


# --- Transitions: upgrades now (U1–U9) ---------------------------------------------------------------------


class EligibilityQuery(Schema):
    eligibilityType: str = Field(
        "immediate", max_length=20, description="immediate (upgrade now, the default) or scheduled (at the renewal)"
    )

    @field_validator("eligibilityType")
    @classmethod
    def _kind(cls, value: str) -> str:
        # Partner Center's enum, read in any case; anything else is a malformed request (400).
        kind = value.strip().lower()
        if kind not in ("immediate", "scheduled"):
            raise ValueError("eligibilityType is immediate or scheduled")
        return kind

    @property
    def scheduled(self) -> bool:
        return self.eligibilityType == "scheduled"


def scheduled_eligibilities(source: Subscription, actions: dict, now) -> dict:
    """R1, U2: the targets a renewal can be upgraded to, from the functions the pages ask: the Manage renewal
    panel's (the upgrade matrix's targets, under its `manage_renewal` verdict), or for a trial the conversion
    panel's (TR3, under `convert_trial` and TR8's "needs auto-renew"). Partner Center: "You can only transition
    into an existing subscription with an immediate transition", so no subscription eligibilities."""
    renews = renewal_values(source, list(source.scheduled_changes.all()))
    if source.is_trial:
        verdict = actions["convert_trial"]
        reason = verdict.reason if not verdict.allowed else scheduled_conversion_refusal(source)
        skus = [t.sku for t in conversion_targets(source) if t.subscription is None]
    else:
        verdict = actions["manage_renewal"]
        reason = "" if verdict.allowed else verdict.reason
        skus = [t.sku for t in upgrade_targets(source, now=now)]
    items = [wire.scheduled_eligibility(source, sku, renews, reason) for sku in skus]
    return {"totalCount": len(items), "items": items, "attributes": {"objectType": "Collection"}}


@customers.get(
    "/{customer_id}/subscriptions/{subscription_id}/transitionEligibilities",
    response={200: schemas.TransitionEligibilityCollection, **ERROR_RESPONSES},
)
def transition_eligibilities(request, customer_id: str, subscription_id: str, query: Query[EligibilityQuery]):
    """U2: the upgrade matrix's targets (the Check upgrades panel's list), each with the existing subscriptions of
    it that can receive the licenses and U3's reason for those that can't. With `eligibilityType=scheduled`: what
    the renewal can be changed to (R1: the Manage renewal panel's targets), never into an existing subscription."""
    source = load_subscription(request, customer_id, subscription_id)
    now = timezone.now()
    actions = checks.allowed_actions(source, request.user, now)
    if query.scheduled:
        return scheduled_eligibilities(source, actions, now)
    if source.is_trial:
        # A new-commerce trial converts by a transition (TR3)
        targets = conversion_targets(source)
        existing = {t.subscription.pk for t in targets if t.subscription is not None}
    else:
        targets = upgrade_targets(source, now=now)
        existing = {e.subscription.pk for t in targets for e in t.existing}
    # The existing subscriptions that may receive the licenses, as far as this user may see them (T1, T3: an
    # indirect reseller sees those it is reseller of record for).
    visible = set(
        access.customer_subscriptions(request.user, source.customer)
        .filter(pk__in=existing)
        .values_list("pk", flat=True)
    )
    if source.is_trial:
        items = wire.conversion_eligibilities(source, targets, actions["convert_trial"], visible)
    else:
        items = [wire.transition_eligibility(source, t, actions["upgrade"], visible) for t in targets]
    return {"totalCount": len(items), "items": items, "attributes": {"objectType": "Collection"}}


@customers.post(
    "/{customer_id}/subscriptions/{subscription_id}/transitions",
    response={200: schemas.Transition, **ERROR_RESPONSES},
)
def post_transition(request, customer_id: str, subscription_id: str, body: schemas.TransitionBody):
    """U1–U9: upgrades now, through the Check upgrades panel's service. The request is the confirmation U7 asks
    for: an upgrade can't be undone. Needs If-Match with the subscription's etag; MS-RequestId makes a retry
    safe. A field the server would not follow (another source, transition type, or a term or billing cycle other
    than the one the transition gives) answers 400 naming it, and nothing changes."""
    source = load_subscription(request, customer_id, subscription_id)
    target = Sku.objects.filter(wire.offer_named(body.toCatalogItemId)).values_list("pk", flat=True).first()
    if target is None:
        raise HttpError(400, "toCatalogItemId names no offer of the catalog.")
    into = None
    if body.toSubscriptionId:
        try:
            into = UUID(body.toSubscriptionId)
        except ValueError:
            raise HttpError(400, "toSubscriptionId is not a subscription id.") from None
    kind = "transition_only" if source.is_trial else "transition_with_license_transfer"
    _check_transition_source(source, body, kind)
    wanted, named = _transition_terms(body, target)
    now = timezone.now()

    def act():
        # Required here too: an upgrade can't be undone (U7), so a retry without the etag it was read with (and
        # without an MS-RequestId) must not make a second one.
        version = protocol.if_match_version(request, "subscription", source.pk)
        with transaction.atomic():
            asked = {
                "subscription_id": source.pk,
                "actor": request.user,
                "version": version,
                "target_sku_id": target,
                "quantity": body.quantity,
                "into_subscription_id": into,
                "now": now,
                # What is left out is the service's to choose (TR2's defaults; an upgrade keeps the source's)
                "term": wanted.get("term"),
                "billing_frequency": wanted.get("billing_frequency"),
            }
            if source.is_trial:
                result = services.convert_trial_now(**asked).subscription  # TR2, TR3, TR7: converting now
            else:
                result = services.upgrade_subscription(**asked, confirmed=True)
            # Into an existing subscription it keeps its own term and billing cycle (U5, TR7): one asked for
            # otherwise is not what was done, so the transition is undone (this transaction) and refused.
            for name, field in (("term", "termDuration"), ("billing_frequency", "billingCycle")):
                if name in wanted and wanted[name] != getattr(result, name):
                    raise HttpError(
                        400,
                        f"{field}: the transition gives {getattr(result, name)} (into an existing subscription, its "
                        f"own), not {wanted[name]}{named}. Nothing was changed.",
                    )
        return transition_answer(result, kind)

    def transition_answer(result, kind):
        result = Subscription.objects.select_related("sku__product").get(pk=result.pk)
        # Kept in the transaction of the change, so that its operationId can be polled (GET …/transitions).
        record = TransitionRecord.objects.create(
            operation_id=uuid4(),
            subscription=source,
            to_subscription=result,
            from_catalog_item_id=wire.offer_id(source),
            to_catalog_item_id=wire.offer_id(result),
            quantity=body.quantity,
            term=result.term,
            billing_frequency=result.billing_frequency,
            transition_type=kind,
            at=now,
        )
        return JsonResponse(schemas.Transition(**wire.transition(record)).model_dump(mode="json"))

    # One transaction for the change and its record: a poll never misses a transition made, nor finds one undone.
    return protocol.once(request, request.partner, lambda: answered(request, transaction.atomic(act)), now=now)


class TransitionQuery(Schema):
    operationId: str | None = Field(None, max_length=40, description="Only the transition its POST answered.")


@customers.get(
    "/{customer_id}/subscriptions/{subscription_id}/transitions",
    response={200: schemas.TransitionCollection, **ERROR_RESPONSES},
)
def list_transitions(request, customer_id: str, subscription_id: str, query: Query[TransitionQuery]):
    """The subscription's transitions made through the API (status polling: the services act at once, so each is
    Completed), newest first: those it was the source of and those it received the licenses of."""
    subscription = load_subscription(request, customer_id, subscription_id)
    records = TransitionRecord.objects.filter(Q(subscription=subscription) | Q(to_subscription=subscription))
    if query.operationId is not None:
        try:
            records = records.filter(operation_id=UUID(query.operationId))
        except ValueError:
            raise HttpError(400, "operationId is not an operation id (a GUID).") from None
    items = [wire.transition(record) for record in records.order_by("-at", "-pk")[:MAX_PAGE_SIZE]]
    return wire.collection(items, self_uri=list_uri(request), next_token=None)


def _check_transition_source(source: Subscription, body: schemas.TransitionBody, kind: str) -> None:
    """The fields a transition request may restate (as Partner Center's samples send them): sent, they must be what
    the server does, else 400 naming the field (never ignored without a word)."""
    if body.fromSubscriptionId is not None and body.fromSubscriptionId.strip().lower() != str(source.pk):
        raise HttpError(400, f"fromSubscriptionId is {source.pk}, the subscription of the path. Nothing was changed.")
    if body.fromCatalogItemId is not None:
        parts = body.fromCatalogItemId.strip().split(":")
        same_offer = Sku.objects.filter(wire.offer_named(body.fromCatalogItemId.strip()), pk=source.sku_id).exists()
        if not same_offer or (len(parts) == 3 and parts[2] and parts[2] != str(source.availability_id)):
            raise HttpError(
                400, f"fromCatalogItemId is {wire.offer_id(source)}, the subscription's own. Nothing was changed."
            )
    if body.transitionType is not None and body.transitionType.strip().lower() != kind:
        raise HttpError(
            400,
            f"transitionType is {kind} for this subscription"
            + (" (a trial converts)" if kind == "transition_only" else " (the portal reassigns the licenses)")
            + ". Nothing was changed.",
        )


def _transition_terms(body: schemas.TransitionBody, target_sku_id: int) -> tuple[dict, str]:
    """The term and billing cycle the transition is asked for: `termDuration` and `billingCycle` as sent, and the
    availability `toCatalogItemId` names ("{productId}:{skuId}:{availabilityId}"), which is a term and a billing
    cycle of the target; left out, the service's own (TR2's, or the source's for an upgrade). The two must agree.
    Also the words naming the availability, for a refusal ("" when none is named)."""
    wanted = {}
    if body.termDuration is not None:
        wanted["term"] = body.termDuration
    if body.billingCycle is not None:
        wanted["billing_frequency"] = body.billingCycle
    parts = body.toCatalogItemId.strip().split(":")
    if len(parts) != 3 or not parts[2]:
        return wanted, ""
    availability = (
        Availability.objects.filter(pk=int(parts[2]), sku_id=target_sku_id).first()
        if re.fullmatch(r"[0-9]{1,18}", parts[2])
        else None
    )
    if availability is None:
        raise HttpError(400, "toCatalogItemId names no availability of that offer (its third part).")
    for name, field, own in (
        ("term", "termDuration", availability.term),
        ("billing_frequency", "billingCycle", availability.billing_frequency),
    ):
        if wanted.setdefault(name, own) != own:
            raise HttpError(
                400,
                f"{field} is {wanted[name]}, but toCatalogItemId names the availability {availability.pk} "
                f"({availability.term}, {availability.billing_frequency}). Nothing was changed.",
            )
    return wanted, f" (toCatalogItemId's availability {availability.pk})"


# --- Transfers between partners (TF1–TF4) -------------------------------------------------------------------


def _transfers(request, customer):
    """The requests this partner is a side of, for its customer (the source's or the target's record of it)."""
    return transfers.transfers_for(request.partner).filter(Q(source_customer=customer) | Q(target_customer=customer))


def _transfer_lines(request, transfer_request) -> list:
    """While it is pending, what the source partner may pick (TF3), to the source only: the target sees nothing of
    the source's records until they are its own. Once completed, what moved."""
    now = timezone.now()
    if transfer_request.status_at(now) == transfer_request.Status.PENDING:
        if transfer_request.source_partner_id != request.partner.pk:
            return []
        return list(transfers.transferable_subscriptions(transfer_request).select_related("sku__product"))
    if transfer_request.status != transfer_request.Status.COMPLETED:
        return []
    moved = transfers.moved_subscriptions(transfer_request, request.partner)
    return list(moved.select_related("sku__product").order_by("created_at", "pk"))


def _transfer_answer(request, customer, transfer_id, status=200):
    found = _transfers(request, customer).filter(pk=transfer_id).first()
    body = schemas.Transfer(**wire.transfer(found, customer, _transfer_lines(request, found))).model_dump(mode="json")
    return JsonResponse(body, status=status)


def _transfer_id(transfer_id: str) -> UUID:
    try:
        return UUID(transfer_id)
    except ValueError:
        raise Http404 from None


@customers.get("/{customer_id}/transfers", response={200: schemas.TransferCollection, **ERROR_RESPONSES})
def list_transfers(request, customer_id: str, paging: Query[Paging]):
    """TF2–TF4: the requests for this customer that the partner is a side of, newest first, a page at a time (seek:
    MS-ContinuationToken)."""
    customer = access.get_customer(request.user, customer_id)
    rows = after_token(request, _transfers(request, customer), "created_at", key=UUID)
    page, more = page_of(rows, paging.size)
    return wire.collection(
        [wire.transfer(t, customer, _transfer_lines(request, t)) for t in page],
        self_uri=list_uri(request),
        next_token=token_after(page[-1], "created_at") if more else None,
    )


@customers.get("/{customer_id}/transfers/{transfer_id}", response={200: schemas.Transfer, **ERROR_RESPONSES})
def get_transfer(request, customer_id: str, transfer_id: str):
    customer = access.get_customer(request.user, customer_id)
    found = get_object_or_404(_transfers(request, customer), pk=_transfer_id(transfer_id))
    return wire.transfer(found, customer, _transfer_lines(request, found))


@customers.post("/{customer_id}/transfers", response={201: schemas.Transfer, **ERROR_RESPONSES})
def create_transfer(request, customer_id: str, body: schemas.TransferCreateBody):
    """TF2: the target partner (this customer's partner now, after TF1's relationship) asks the source partner for
    the customer's subscriptions. 201 with the request; MS-RequestId makes a retry safe."""
    customer = access.get_customer(request.user, customer_id)
    now = timezone.now()

    def act():
        created = transfers.file_transfer_request(
            actor=request.user,
            customer=customer,
            source_partner_id=body.sourcePartnerId,
            notification_email=body.targetPartnerEmailId,
            now=now,
        )
        return _transfer_answer(request, customer, created.pk, status=201)

    return protocol.once(request, request.partner, lambda: answered(request, act), now=now)


TRANSFER_ENDS = {"cancel", "reject", "withdraw", "decline"}


def _check_transfer_lines(found, lines: list[schemas.TransferLineBody]) -> None:
    """TF3 moves each picked subscription whole, as it is: a line's `quantity` (or the term, billing cycle or offer it
    restates as read) other than the subscription's is not what the transfer would do, so it answers 400 naming the
    field rather than being ignored. A subscription that can't be picked is left to the service (its rule)."""
    restating = [
        line for line in lines if line.model_fields_set & {"quantity", "billingCycle", "termDuration", "offerId"}
    ]
    if not restating:
        return
    ids = []
    for line in restating:
        try:
            ids.append(UUID(line.subscriptionId))
        except ValueError:
            pass
    picked = {
        str(s.pk): s
        for s in transfers.transferable_subscriptions(found).filter(pk__in=ids).select_related("sku__product")
    }
    for number, line in enumerate(lines):
        subscription = picked.get(line.subscriptionId.strip().lower())
        if subscription is None:
            continue
        for field, sent, own in (
            ("quantity", line.quantity, subscription.quantity),
            ("billingCycle", _frequency(line.billingCycle), subscription.billing_frequency),
            ("termDuration", _upper(line.termDuration), subscription.term),
            ("offerId", line.offerId.strip() if line.offerId else line.offerId, wire.offer_id(subscription)),
        ):
            if sent is not None and sent != own:
                wire_own = schemas.billing_cycle(subscription.term, own) if field == "billingCycle" else own
                raise HttpError(
                    400,
                    f"lineItems[{number}].{field} is {wire_own}: a transfer moves the subscription whole, as it is "
                    "(change it before the transfer, or after, as the new partner). Nothing was changed.",
                )


def _frequency(cycle: str | None) -> str | None:
    """The billing frequency a sent billingCycle names ("" when it names none, so it differs from every one)."""
    return None if cycle is None else (schemas.billing_frequency_named(cycle) or "")


def _upper(value: str | None) -> str | None:
    return value.strip().upper() if isinstance(value, str) else value


@customers.patch("/{customer_id}/transfers/{transfer_id}", response={200: schemas.Transfer, **ERROR_RESPONSES})
def patch_transfer(request, customer_id: str, transfer_id: str, body: schemas.TransferPatchBody):
    """TF3, TF4: `Complete` with the picked `lineItems` (the source partner: every one moves in one transaction, or
    none does); `Cancel` or `Reject` ends it while pending (either side). Needs If-Match with its etag."""
    customer = access.get_customer(request.user, customer_id)
    found = get_object_or_404(_transfers(request, customer), pk=_transfer_id(transfer_id))
    status = body.status.strip().lower()
    if status not in TRANSFER_ENDS | {"complete", "completed"}:
        raise HttpError(400, "status is Complete (with lineItems), Cancel or Reject.")
    if status not in TRANSFER_ENDS:
        _check_transfer_lines(found, body.lineItems)
    now = timezone.now()

    def act():
        version = protocol.if_match_version(request, "transfer", found.pk)
        if status in TRANSFER_ENDS:
            transfers.cancel_transfer_request(actor=request.user, request_id=found.pk, now=now, version=version)
        else:
            transfers.complete_transfer(
                actor=request.user,
                request_id=found.pk,
                subscription_ids=[line.subscriptionId for line in body.lineItems],
                now=now,
                version=version,
            )
        return _transfer_answer(request, customer, found.pk)

    return protocol.once(request, request.partner, lambda: answered(request, act), now=now)


subscriptions = Router(tags=["subscriptions"])


@subscriptions.get("", response={200: schemas.SubscriptionCollection, **ERROR_RESPONSES})
def list_all_subscriptions(request, query: Query[SubscriptionQuery]):
    """The portal's addition: every customer's subscriptions, by customer then name (the list across customers)."""
    return subscription_page(
        request,
        access.subscriptions_for(request.user),
        query,
        across=True,
        self_uri=list_uri(request),
    )


api.add_router("/customers", customers)
api.add_router("/subscriptions", subscriptions)
