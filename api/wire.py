"""Model objects as Partner Center's resources (api.schemas): what each field reads, in one place. The verdicts come
from the same functions the pages ask (subscriptions.checks), never decided here."""

from datetime import UTC, datetime, time

from django.db.models import Q
from django.utils import timezone

from portal.models import Customer
from subscriptions import checks, selectors
from subscriptions.models import Subscription
from subscriptions.services import renewal_values
from subscriptions.services.upgrades import Unfit

from . import errors, protocol, schemas

PRODUCT_TYPES = {
    # (Microsoft's, billing type) -> Partner Center's productType
    (True, "license"): {"id": "OnlineServicesNCE", "displayName": "OnlineServicesNCE"},
    (True, "usage"): {"id": "Azure", "displayName": "Azure"},
    (False, "license"): {"id": "Azure", "displayName": "Azure", "subType": "SaaS"},
    (False, "usage"): {"id": "Azure", "displayName": "Azure", "subType": "SaaS"},
}
UNIT_TYPES = {"license": "Licenses", "usage": "Usage-based"}


def link(uri: str, method: str = "GET") -> dict:
    return {"uri": uri, "method": method, "headers": []}


def day_start(day) -> datetime | None:
    return datetime.combine(day, time.min, tzinfo=UTC) if day else None


def day_end(day) -> datetime | None:
    return datetime.combine(day, time(23, 59, 59), tzinfo=UTC) if day else None


def sku_part(sku) -> str:
    """Partner Center's skuId ("0001"): the portal's SKU id is "{productId}:{skuId}" (portal.demo)."""
    return sku.sku_id.removeprefix(f"{sku.product.product_id}:")


def offer_id(subscription: Subscription) -> str:
    """A new-commerce catalog item id, "{productId}:{skuId}:{availabilityId}"."""
    sku = subscription.sku
    return f"{sku.product.product_id}:{sku_part(sku)}:{subscription.availability_id}"


def sku_named(product_id: str, sku_id: str) -> Q:
    """The SKU Partner Center's (productId, skuId) name: the inverse of `sku_part`."""
    return Q(sku_id=f"{product_id}:{sku_id}") | Q(sku_id=sku_id, product__product_id=product_id)


def offer_named(offer: str) -> Q:
    """The SKU an offerId names ("{productId}:{skuId}:{availabilityId}"), or a SKU id as the portal spells it."""
    parts = offer.split(":")
    return sku_named(parts[0], parts[1]) if len(parts) == 3 else Q(sku_id=offer)


def product_path(customer_id, product) -> str:
    """The customer's view of a catalog product (api.catalog), relative and without /v1 as Partner Center links."""
    return f"/customers/{customer_id}/products/{product.product_id}"


def sku_path(customer_id, sku) -> str:
    return f"{product_path(customer_id, sku.product)}/skus/{sku_part(sku)}"


def availability_path(customer_id, sku, availability_id) -> str:
    return f"{sku_path(customer_id, sku)}/availabilities/{availability_id}"


def catalog_links(customer_id, sku, availability_id) -> dict:
    """Partner Center's `links.product`, `links.sku` and `links.availability` of what a subscription or an order line
    is of: the customer's catalog resources (api.catalog). `sku` comes with its product."""
    return {
        "product": link(product_path(customer_id, sku.product)),
        "sku": link(sku_path(customer_id, sku)),
        "availability": link(availability_path(customer_id, sku, availability_id)),
    }


def subscription_reads():
    """What a subscription resource reads (the page's reads): a fixed number of queries for a
    page of them."""
    return selectors.subscription_page(billing_lines=False)


def subscription_path(subscription: Subscription) -> str:
    return f"/customers/{subscription.customer_id}/subscriptions/{subscription.pk}"


def product_term(sku, term: str, frequency: str) -> dict:
    """Partner Center's ProductTerm: the SKU, and its availability sold with this term and billing frequency ("" if
    none is)."""
    availability = next(
        (a for a in sku.availabilities.all() if a.term == term and a.billing_frequency == frequency), None
    )
    return {
        "productId": sku.product.product_id,
        "skuId": sku_part(sku),
        "availabilityId": str(availability.pk) if availability else "",
        "billingCycle": schemas.billing_cycle(term, frequency),
        "termDuration": term,
    }


def renewal_instructions(subscription: Subscription, changes: list) -> dict:
    """R1, N4: what the subscription renews with (its own values, overridden by what is scheduled)."""
    values = renewal_values(subscription, changes)
    upgrade = next((c.target_sku for c in changes if c.target_sku_id == values["sku_id"]), None)
    sku = upgrade or subscription.sku
    return {
        "product": product_term(sku, values["term"], values["billing_frequency"]),
        "quantity": values["quantity"],
        "customTermEndDate": day_start(values["aligned_end_date"]),
    }


def scheduled_instructions(subscription: Subscription) -> dict | None:
    """`renewal_instructions`, "only present if scheduled changes are set", as Partner Center has it."""
    changes = list(subscription.scheduled_changes.all())
    return renewal_instructions(subscription, changes) if changes else None


def next_charge_instructions(subscription: Subscription) -> dict | None:
    """N7: the billing frequency set to start at the next charge ("only present when ... pending")."""
    frequency = subscription.next_charge_frequency
    if not frequency:
        return None
    return {
        "product": product_term(subscription.sku, subscription.term, frequency),
        "quantity": subscription.quantity,
        "chargeDate": day_start(subscription.next_charge_on),
    }


def instructions_resource(subscription: Subscription) -> dict:
    changes = list(subscription.scheduled_changes.all())
    return {
        **renewal_instructions(subscription, changes),
        "changes": [c.summary for c in changes],
        "links": {"subscription": link(subscription_path(subscription))},
        "attributes": {
            "objectType": "ScheduledNextTermInstructions",
            "etag": protocol.etag("subscription", subscription.pk, subscription.version),
        },
    }


def subscription(subscription: Subscription, user, now: datetime) -> dict:
    sku = subscription.sku
    publisher = sku.product.publisher
    lots = checks.removable_lots(subscription, now)
    allowed = checks.allowed_actions(subscription, user, now)
    # X1, X3: until when the subscription itself may be cancelled, whoever asks (the role is in `actions`); null once
    # that has passed or the subscription has ended.
    closes = checks.cancellation_window_ends(subscription)
    cancel_until = closes if closes and now < closes and subscription.is_live else None
    return {
        "id": str(subscription.pk),
        "customerId": str(subscription.customer_id),
        "offerId": offer_id(subscription),
        "offerName": sku.name,
        "friendlyName": subscription.friendly_name,
        "productType": PRODUCT_TYPES[(publisher.is_microsoft, sku.product.billing_type)],
        "quantity": subscription.quantity,
        "unitType": UNIT_TYPES.get(sku.product.billing_type, "Licenses"),
        "hasPurchasableAddons": checks.takes_addons(subscription),
        "creationDate": subscription.created_at,
        "effectiveStartDate": subscription.term_start,
        "commitmentEndDate": day_start(subscription.term_end),
        "commitmentEndDateTime": day_end(subscription.term_end),
        "cancellationAllowedUntilDate": cancel_until,
        "status": subscription.status,
        "autoRenewEnabled": subscription.auto_renew,
        "isTrial": subscription.is_trial,
        "billingType": sku.product.billing_type,
        "billingCycle": schemas.billing_cycle(subscription.term, subscription.billing_frequency),
        "termDuration": subscription.term,
        "isMicrosoftProduct": publisher.is_microsoft,
        "publisherName": publisher.name,
        "partnerId": subscription.reseller.partner_id if subscription.reseller_id else "",
        "parentSubscriptionId": str(subscription.base_subscription_id) if subscription.base_subscription_id else None,
        "orderId": subscription.order_line.order.number if subscription.order_line_id else None,
        "promotionId": subscription.promotion_id or None,
        "refundableQuantity": {
            "totalQuantity": sum(lot.remaining for lot in lots),
            "details": [{"quantity": lot.remaining, "allowedUntilDateTime": lot.window_ends_at} for lot in lots],
        },
        "scheduledNextTermInstructions": scheduled_instructions(subscription),
        "nextChargeInstructions": next_charge_instructions(subscription),
        "renewalPending": subscription.renewal_pending,
        "actions": [name for name, verdict in allowed.items() if verdict.allowed],
        "links": {
            "self": link(subscription_path(subscription)),
            **catalog_links(subscription.customer_id, sku, subscription.availability_id),
        },
        "attributes": {
            "objectType": "Subscription",
            "etag": protocol.etag("subscription", subscription.pk, subscription.version),
        },
    }


def customer(customer: Customer) -> dict:
    return {
        "id": str(customer.pk),
        "companyProfile": {
            "tenantId": str(customer.tenant_id),
            "domain": customer.domain,
            "companyName": customer.company_name,
        },
        "billingProfile": {
            "companyName": customer.company_name,
            "defaultAddress": {"country": customer.billing_country},
        },
        "relationshipToPartner": "reseller" if customer.reseller_id else "none",
        "links": {"self": link(f"/customers/{customer.pk}")},
        "attributes": {"objectType": "Customer"},
    }


def collection(items: list, *, self_uri: str, next_token: str | None) -> dict:
    links = {"self": link(self_uri)}
    if next_token:
        links["next"] = {
            "uri": self_uri + ("&" if "?" in self_uri else "?") + "seekOperation=Next",
            "method": "GET",
            "headers": [{"key": "MS-ContinuationToken", "value": next_token}],
        }
    return {
        "totalCount": len(items),
        "items": items,
        "continuationToken": next_token,
        "links": links,
        "attributes": {"objectType": "Collection"},
    }


def catalog_item(sku, availability) -> str:
    """A catalog item id, "{productId}:{skuId}:{availabilityId}", of this SKU's availability ("" without one)."""
    return f"{sku.product.product_id}:{sku_part(sku)}:{availability.pk if availability else ''}"


# Partner Center's codes of why an existing subscription can't be transitioned into (the reference's 3.2), by U3's
# kinds of reason; N6's and U3's other reasons answer the API's own codes (api.errors).
TARGET_SUBSCRIPTION_CODES = {Unfit.CANCELLATION_WINDOW: 2, Unfit.TERM_SHORTER: 3, Unfit.ENDS_BEFORE: 4}
TARGET_ENDS_BEFORE_SOURCE = 4  # TR5's reason: the target ends before the trial


def target_subscription_code(kind: str) -> int:
    if kind in TARGET_SUBSCRIPTION_CODES:
        return TARGET_SUBSCRIPTION_CODES[kind]
    if kind == Unfit.RENEWAL_PENDING:
        return errors.code("N6", 409)
    return errors.code("U3", 422)


def eligibility_errors(allowed) -> list[dict]:
    """Why the source can't be transitioned at all now (its U1 or TR3 verdict, N6 while its renewal is processed),
    with the refusal's own code (api.errors: Partner Center's where it has one)."""
    if allowed.allowed:
        return []
    return [{"code": errors.code(allowed.rule, allowed.status or 422), "description": allowed.reason}]


def transition_eligibility(source: Subscription, target, allowed, visible: set) -> dict:
    """U2, U3: one target of the upgrade matrix, with the existing subscriptions the licenses may go into and
    why not (U3's reason as the description)."""
    sold = target.sold
    matching = next(
        (a for a in sold if a.term == source.term and a.billing_frequency == source.billing_frequency),
        sold[0] if sold else None,
    )
    refusal = eligibility_errors(allowed)
    return {
        "catalogItemId": catalog_item(target.sku, matching),
        "title": target.sku.name,
        "description": target.sku.product.description,
        "quantity": source.quantity,
        "eligibilities": [
            {
                "isEligible": allowed.allowed and bool(sold),
                "transitionType": "transition_with_license_transfer",
                "errors": refusal or ([] if sold else [{"code": 10, "description": "No term of it is sold."}]),
            }
        ],
        "subscriptionEligibilities": [
            {
                "isEligible": e.allowed,
                "subscriptionId": str(e.subscription.pk),
                "subscriptionFriendlyName": e.subscription.display_name,
                "subscriptionTermDuration": e.subscription.term,
                "subscriptionBillingCycle": schemas.billing_cycle(
                    e.subscription.term, e.subscription.billing_frequency
                ),
                "errors": [] if e.allowed else [{"code": target_subscription_code(e.kind), "description": e.reason}],
            }
            for e in target.existing
            if e.subscription.pk in visible
        ],
        "attributes": {"objectType": "TransitionEligibility"},
    }


def scheduled_eligibility(source: Subscription, sku, renews: dict, reason: str) -> dict:
    """R1: one target the renewal can be upgraded to, at the availability it would renew with (the renewal's term
    and billing frequency, `renews`, when the target is sold so; else its first), refused with the panel's
    `reason` ("" when it can be scheduled)."""
    sold = list(sku.availabilities.all())
    matching = next(
        (a for a in sold if a.term == renews["term"] and a.billing_frequency == renews["billing_frequency"]),
        sold[0] if sold else None,
    )
    errors = [{"code": 0, "description": reason}] if reason else []
    if not sold:
        errors.append({"code": 10, "description": "No term of it is sold."})
    return {
        "catalogItemId": catalog_item(sku, matching),
        "title": sku.name,
        "description": sku.product.description,
        "quantity": renews["quantity"],
        "eligibilities": [
            {
                "isEligible": not errors,
                "transitionType": "transition_only" if source.is_trial else "transition_with_license_transfer",
                "errors": errors,
            }
        ],
        "subscriptionEligibilities": [],
        "attributes": {"objectType": "TransitionEligibility"},
    }


def conversion_eligibilities(trial: Subscription, targets, allowed, visible: set) -> list[dict]:
    """TR3, TR5: what a new-commerce trial can convert into (Partner Center converts trials by transitions): the
    equivalent paid SKU and the matrix's higher ones, each with the customer's subscriptions of it and TR5's reason
    for those that end too soon."""
    refusal = eligibility_errors(allowed)
    items = []
    for target in (t for t in targets if t.subscription is None):
        sold = list(target.sku.availabilities.all())
        into = [
            t
            for t in targets
            if t.subscription is not None and t.sku.pk == target.sku.pk and t.subscription.pk in visible
        ]
        items.append(
            {
                "catalogItemId": catalog_item(target.sku, sold[0] if sold else None),
                "title": target.sku.name,
                "description": target.sku.product.description,
                "quantity": trial.quantity,
                "eligibilities": [
                    {"isEligible": allowed.allowed, "transitionType": "transition_only", "errors": refusal}
                ],
                "subscriptionEligibilities": [
                    {
                        "isEligible": t.allowed,
                        "subscriptionId": str(t.subscription.pk),
                        "subscriptionFriendlyName": t.subscription.display_name,
                        "subscriptionTermDuration": t.subscription.term,
                        "subscriptionBillingCycle": schemas.billing_cycle(
                            t.subscription.term, t.subscription.billing_frequency
                        ),
                        "errors": [] if t.allowed else [{"code": TARGET_ENDS_BEFORE_SOURCE, "description": t.reason}],
                    }
                    for t in into
                ],
                "attributes": {"objectType": "TransitionEligibility"},
            }
        )
    return items


def billing_line(line) -> dict:
    return {
        "kind": line.kind,
        "amount": line.amount,
        "currency": line.currency,
        "quantity": line.quantity,
        "unitPrice": line.unit_price,
        "periodStart": line.period_start,
        "periodEnd": line.period_end,
        "explanation": line.explanation,
        "createdAt": line.created_at,
        "attributes": {"objectType": "BillingLine"},
    }


def activity(entry) -> dict:
    actor = entry.actor
    return {
        "id": str(entry.pk),
        "at": entry.at,
        "action": entry.action,
        "summary": entry.summary,
        "actor": (actor.get_full_name() or actor.get_username()) if actor else "",
        "subscriptionId": str(entry.subscription_id) if entry.subscription_id else None,
        "orderId": str(entry.order_id) if entry.order_id else None,
        "before": entry.before,
        "after": entry.after,
        "attributes": {"objectType": "ActivityEntry"},
    }


TRANSFER_STATUSES = {"pending": "Active", "completed": "Complete", "cancelled": "Cancel", "expired": "Expired"}


def transfer(transfer, customer, line_items: list) -> dict:
    """TF2–TF4 as Partner Center's new-commerce TransferEntity, seen from `customer` (the side asking)."""
    return {
        "id": str(transfer.pk),
        "status": TRANSFER_STATUSES.get(transfer.status_at(timezone.now()), transfer.status),
        "transferType": "5",
        "createdTime": transfer.created_at,
        "lastModifiedTime": transfer.completed_at or transfer.created_at,
        "completedTime": transfer.completed_at,
        "expirationTime": transfer.expires_at,
        "customerName": customer.company_name,
        "customerTenantId": str(transfer.tenant_id),
        "sourcePartnerName": transfer.source_partner.name,
        "sourcePartnerId": transfer.source_partner.partner_id,
        "targetPartnerName": transfer.target_partner.name,
        "targetPartnerId": transfer.target_partner.partner_id,
        "targetPartnerEmailId": transfer.notification_email,
        "lineItems": [
            {
                "id": i,
                "subscriptionId": str(s.pk),
                "offerId": offer_id(s),
                "friendlyName": s.display_name,
                "quantity": s.quantity,
                "billingCycle": schemas.billing_cycle(s.term, s.billing_frequency),
                "termDuration": s.term,
            }
            for i, s in enumerate(line_items)
        ],
        "links": {"self": link(f"/customers/{customer.pk}/transfers/{transfer.pk}")},
        "attributes": {
            "objectType": "TransferEntity",
            "etag": protocol.etag("transfer", transfer.pk, transfer.version),
        },
    }


def offer(sku, refusal) -> dict:
    """A catalog offer (a SKU with its product and ways to buy) as the catalog's card shows it, with its verdict for
    the customer (C4; `refusal` from catalog.eligibility)."""
    publisher = sku.product.publisher
    return {
        "id": sku_part(sku),
        "productId": sku.product.product_id,
        "title": sku.name,
        "description": sku.product.description,
        "publisherName": publisher.name,
        "isMicrosoftProduct": publisher.is_microsoft,
        "productType": PRODUCT_TYPES[(publisher.is_microsoft, sku.product.billing_type)],
        "isTrial": sku.is_trial,
        "isAddon": sku.is_addon,
        "minimumQuantity": sku.min_quantity,
        "maximumQuantity": sku.max_quantity,
        "availabilities": [
            {
                "id": str(a.pk),
                "catalogItemId": catalog_item(sku, a),
                "termDuration": a.term,
                "billingCycle": schemas.billing_cycle(a.term, a.billing_frequency),
                "unitPrice": a.unit_price,
                "currency": a.currency,
            }
            for a in sku.availabilities.all()
        ],
        "purchasable": refusal is None,
        "refusal": {"ruleId": refusal.rule, "description": refusal.message} if refusal else None,
        "attributes": {"objectType": "Offer"},
    }


def transition(record) -> dict:
    """A transition the API made (api.models.TransitionRecord), as its POST answered it."""
    return {
        "operationId": str(record.operation_id),
        "fromCatalogItemId": record.from_catalog_item_id,
        "fromSubscriptionId": str(record.subscription_id),
        "toCatalogItemId": record.to_catalog_item_id,
        "toSubscriptionId": str(record.to_subscription_id),
        "quantity": record.quantity,
        "termDuration": record.term,
        "billingCycle": schemas.billing_cycle(record.term, record.billing_frequency),
        "transitionType": record.transition_type,
        "events": [
            {
                "name": "Conversion",
                "status": "Completed",
                "timestamp": record.at,
                "attributes": {"objectType": "TransitionEvent"},
            }
        ],
        "attributes": {"objectType": "Transition"},
    }
