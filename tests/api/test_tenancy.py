"""Tenancy by enumeration: every operation of the API's document, called with another partner's ids, answers 404
and changes nothing; every write, called by a support agent on the partner's own ids, answers 403 and changes
nothing (T1–T3). An operation added to the API is enumerated here without editing this file, except its body."""

import json
import re
import uuid
from datetime import timedelta

import pytest
from django.test import Client

from api import tokens
from api.models import WebhookDelivery, WebhookEndpoint
from api.urls import api as api_v1  # with every router registered (api.urls adds the commerce one)
from catalog.models import UpgradePath
from subscriptions.models import TransferRequest
from tests import factories
from tests.conftest import NOW
from tests.helpers import database_state

SUBSCRIPTION = "/api/v1/customers/{customer_id}/subscriptions/{subscription_id}"
REGISTRATION = "/api/v1/webhooks/registrations/{registration_id}"
WEBHOOK = {"webhookUrl": "https://psa.example.com/hooks", "webhookEvents": ["subscription-updated"]}
# A body each write accepts, from the world's objects (so that a refusal comes from scoping or roles, not from
# parsing or an unknown offer), by the operation's method and path in the document; None: it takes no body.
BODIES = {
    ("patch", SUBSCRIPTION): lambda w: {"quantity": 11},
    ("put", SUBSCRIPTION + "/scheduledNextTermInstructions"): lambda w: {
        "product": {
            "productId": w["source"].product.product_id,
            "skuId": w["source"].sku_id,
            "billingCycle": "monthly",
            "termDuration": "P1Y",
        },
        "quantity": 11,
    },
    ("delete", SUBSCRIPTION + "/scheduledNextTermInstructions"): None,
    ("post", SUBSCRIPTION + "/transitions"): lambda w: {"toCatalogItemId": w["target"].sku_id, "quantity": 1},
    ("post", "/api/v1/customers/{customer_id}/transfers"): lambda w: {
        "sourcePartnerId": w["source_partner"].partner_id,
        "targetPartnerEmailId": "it@example.com",
    },
    ("patch", "/api/v1/customers/{customer_id}/transfers/{transfer_id}"): lambda w: {"status": "Cancel"},
    ("post", "/api/v1/customers/{customer_id}/carts"): lambda w: {"lineItems": [w["line"]]},
    ("put", "/api/v1/customers/{customer_id}/carts/{cart_id}"): lambda w: {"lineItems": [w["line"]]},
    ("post", "/api/v1/customers/{customer_id}/carts/{cart_id}/checkout"): None,
    ("post", "/api/v1/webhooks/registrations"): lambda w: WEBHOOK,
    ("put", REGISTRATION): lambda w: WEBHOOK,
    ("delete", REGISTRATION): None,
    ("post", REGISTRATION + "/validationEvents"): None,
}
WRITES = {"post", "put", "patch", "delete"}


def operations():
    document = api_v1.get_openapi_schema()
    return [
        (method, path)
        for path, item in document["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    ]


OPERATIONS = operations()


def world_of(kind, cart_owner_role="admin_agent"):
    """A partner's customer with a subscription, an open cart (of a staff member with `cart_owner_role`), an order
    and a pending transfer to it; the ids by their names in the paths."""
    partner = factories.PartnerFactory(kind=kind)
    customer = factories.CustomerFactory(partner=partner)
    owner = factories.staff(partner, cart_owner_role)
    cart = factories.CartFactory(customer=customer, owner=owner, created_at=NOW)
    order = factories.OrderFactory(customer=customer, placed_by=owner)
    source, target = factories.SkuFactory(), factories.SkuFactory()
    UpgradePath.objects.create(source=source, target=target)
    subscription = factories.SubscriptionFactory(customer=customer, sku=source, in_cancellation_window=True)
    # A pending transfer of the customer from another partner's record of the same tenant to this partner (TF2)
    source_partner = factories.PartnerFactory(kind="direct_bill")
    source_customer = factories.CustomerFactory(partner=source_partner, tenant_id=customer.tenant_id)
    factories.SubscriptionFactory(customer=source_customer)
    transfer = TransferRequest.objects.create(
        source_partner=source_partner,
        target_partner=partner,
        tenant_id=customer.tenant_id,
        source_customer=source_customer,
        target_customer=customer,
        notification_email="it@example.com",
        created_at=NOW,
        expires_at=NOW + timedelta(days=30),
    )
    endpoint = WebhookEndpoint.objects.create(
        partner=partner,
        url="https://psa.example.com/hooks",
        events=["subscription-updated"],
        secret="a-secret-of-some-length",
        created_at=NOW,
        created_from=uuid.uuid4(),
    )
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint, event_id=uuid.uuid4(), event="test-created", source="test:1", payload={}, created_at=NOW
    )
    ids = {
        "registration_id": endpoint.pk,
        "event_id": delivery.event_id,
        "customer_id": customer.pk,
        "subscription_id": subscription.pk,
        "transfer_id": transfer.pk,
        "cart_id": cart.pk,
        "order_id": order.number,
        # The catalog is every partner's: only the customer in the path scopes its resources (api.catalog).
        "product_id": source.product.product_id,
        "sku_id": source.sku_id,
        "availability_id": source.availabilities.first().pk,
    }
    offer = source.availabilities.first()
    line = {"catalogItemId": f"{source.product.product_id}:{source.sku_id}:{offer.pk}", "quantity": 1}
    objects = {"source": source, "target": target, "source_partner": source_partner, "line": line, "owner": owner}
    return partner, ids, objects


def body_of(method, path, objects):
    make = BODIES.get((method, path))
    return json.dumps(make(objects)) if make else None


def call(client, secret, method, path, ids):
    url = path.format(**ids)
    body = BODIES.get((method, path))
    headers = {"Authorization": f"Bearer {secret}", "If-Match": "x"}
    return getattr(client, method)(
        url, json.dumps(body) if body is not None else None, content_type="application/json", headers=headers
    )


@pytest.mark.rule("T3")
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_another_partners_ids_answer_404_and_change_nothing(db, method, path):
    if "{" not in path:
        pytest.skip("no id in the path: its lists are scoped (test_subscriptions, test_customers)")
    mine, _, _ = world_of("direct_bill")
    _, theirs, objects = world_of("direct_bill")
    missing = {p for p in re.findall(r"{(\w+)}", path)} - theirs.keys()
    assert not missing, f"add the kind of id {missing} to world_of"
    if method in WRITES:
        assert (method, path) in BODIES, f"add a body for {method} {path} to BODIES"
    _, secret = tokens.create_token(factories.staff(mine, "admin_agent"), name="t", expires_at=None, now=NOW)
    before = database_state()
    response = getattr(Client(), method)(
        path.format(**theirs),
        body_of(method, path, objects),
        content_type="application/json",
        headers={"Authorization": f"Bearer {secret}", "If-Match": "x"},
    )
    assert response.status_code == 404, response.content
    assert database_state() == before


@pytest.mark.rule("T2")
@pytest.mark.parametrize(
    ("method", "path"),
    [op for op in OPERATIONS if op[0] in WRITES],
    ids=[f"{m} {p}" for m, p in OPERATIONS if m in WRITES],
)
def test_every_write_by_a_support_agent_answers_403_and_changes_nothing(db, method, path):
    # The cart is the support agent's own: a colleague's would answer 404 (each staff member has their own, T3)
    partner, ids, objects = world_of("direct_bill", cart_owner_role="support_agent")
    _, secret = tokens.create_token(objects["owner"], name="t", expires_at=None, now=NOW)
    auth = {"Authorization": f"Bearer {secret}"}
    # The etag of what the write changes, as the agent read it: the resource, or for a POST the one it acts on
    url = path.format(**ids)
    read = Client().get(url if method != "post" else url.rsplit("/", 1)[0], headers=auth)
    etag = (read.json().get("attributes") or {}).get("etag") or "" if read.status_code == 200 else ""
    before = database_state()
    url = path.format(**ids)
    response = getattr(Client(), method)(
        url,
        body_of(method, path, objects),
        content_type="application/json",
        headers={**auth, "If-Match": etag},
    )
    assert response.status_code == 403, response.content
    assert database_state() == before
