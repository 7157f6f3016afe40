"""What a hostile review of the API found (session 9), each kept as a test: a transition buys the availability it
names; an unknown API path answers the envelope; MS-RequestId isn't cut; addresses that embed a private IPv4 one are
refused; a slow receiver can't hold a delivery past its timeout; the attestation bumps the cart's etag; a replayed
secret isn't cacheable; a field sent twice, or with the wrong JSON type, is refused."""

import json
import socket
import threading
import time

import pytest
from django.utils import timezone

from api import webhook_delivery, webhooks
from catalog.models import UpgradePath
from subscriptions.models import Subscription
from tests import factories
from tests.helpers import database_state


# --- F1: a transition ignores the availability its toCatalogItemId names ------------------------------------
@pytest.fixture
def upgrade(customer):
    source = factories.SkuFactory(name="E3", availabilities=[("P1Y", "monthly", "20.00")])
    target = factories.SkuFactory(name="E5", availabilities=[("P1Y", "monthly", "35.00"), ("P3Y", "annual", "400.00")])
    UpgradePath.objects.create(source=source, target=target)
    return factories.SubscriptionFactory(customer=customer, sku=source, quantity=10), target


def _post_transition(api, subscription, body):
    base = f"/customers/{subscription.customer_id}/subscriptions/{subscription.pk}"
    etag = api.get(base).json()["attributes"]["etag"]
    return api.client.post(
        f"/api/v1{base}/transitions",
        json.dumps(body),
        content_type="application/json",
        headers={"Authorization": f"Bearer {api.secret}", "If-Match": etag},
    )


def test_f1_transition_buys_the_availability_named_by_toCatalogItemId(api, upgrade):
    subscription, target = upgrade
    p3y = target.availabilities.get(term="P3Y")
    item = f"{target.product.product_id}:{target.sku_id.removeprefix(target.product.product_id + ':')}:{p3y.pk}"
    response = _post_transition(api, subscription, {"toCatalogItemId": item, "quantity": 4})
    # Either the named availability (P3Y annual) is bought, or the request is refused; never another term silently.
    if response.status_code == 200:
        assert (response.json()["termDuration"], response.json()["billingCycle"]) == ("P3Y", "annual")
    else:
        assert response.status_code == 400


def test_f1_transition_refuses_an_availability_id_that_is_not_the_targets(api, upgrade):
    subscription, target = upgrade
    item = f"{target.product.product_id}:{target.sku_id.removeprefix(target.product.product_id + ':')}:nonsense"
    response = _post_transition(api, subscription, {"toCatalogItemId": item, "quantity": 4})
    assert response.status_code == 400, response.content
    assert Subscription.objects.filter(sku=target).count() == 0


# --- F3: an unknown path or method under /api/v1/ answers HTML, not the error envelope ------------------------
@pytest.mark.parametrize(
    "method,path", [("get", "/api/v1/customers/"), ("get", "/api/v1/nope"), ("delete", "/api/v1/customers")]
)
def test_f3_unknown_api_route_answers_json_envelope(api, method, path):
    response = getattr(api.client, method)(path, headers={"Authorization": f"Bearer {api.secret}"})
    assert response["Content-Type"].startswith("application/json"), (response.status_code, response["Content-Type"])


# --- F4: an MS-RequestId longer than 100 characters is refused, not cut to its first 100 ---------------------------
@pytest.mark.parametrize("sent", ["x" * 101, "id-with-a-\x01-control"])
def test_f4_an_unusable_request_id_is_refused_and_changes_nothing(api, subscription, sent):
    base = f"/customers/{subscription.customer_id}/subscriptions/{subscription.pk}"
    etag = api.get(base).json()["attributes"]["etag"]
    before = database_state()
    answer = api.patch(base, {"friendlyName": "A"}, headers={"If-Match": etag, "MS-RequestId": sent})
    assert answer.status_code == 400 and "MS-RequestId" in answer.json()["description"]
    assert database_state() == before


# --- F5: addresses that embed an IPv4 address pass the public-address check ------------------------------------
@pytest.mark.parametrize("address", ["64:ff9b::a9fe:a9fe", "64:ff9b::a00:1", "::a9fe:a9fe", "::7f00:1"])
def test_f5_ipv6_forms_of_private_ipv4_are_refused(settings, address):
    settings.CSP_WEBHOOKS_ALLOW_LOOPBACK = False
    assert webhook_delivery.address_refusal(address), address
    assert webhooks.url_refusal(f"https://[{address}]/hook")


# --- F6: a receiver that answers one byte at a time holds a delivery far past its 5 s timeout ------------------------
def test_f6_a_slow_receiver_cannot_hold_a_delivery_past_the_timeout(settings, monkeypatch):
    settings.CSP_WEBHOOKS_ALLOW_LOOPBACK = True
    monkeypatch.setattr(webhook_delivery, "TIMEOUT_SECONDS", 1)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]

    def drip():
        conn, _ = server.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
        for _ in range(6):
            time.sleep(0.8)  # each byte inside the per-read timeout
            conn.sendall(b"a")
        conn.sendall(b"\r\nContent-Length: 0\r\n\r\n")
        conn.close()

    threading.Thread(target=drip, daemon=True).start()

    class Endpoint:
        url = f"http://127.0.0.1:{port}/hook"
        secret = "s" * 20

    class Delivery:
        endpoint = Endpoint()
        payload = {"a": 1}
        event_id = "e"
        event = "test-created"

    started = time.monotonic()
    webhook_delivery.post(Delivery(), timezone.now())
    assert time.monotonic() - started < 2.5  # TIMEOUT_SECONDS is 1 here; it took ~5 s


# --- F7: changing only the attestation through PUT leaves the cart's etag as it was ----------------------------------
def test_f7_attestation_change_bumps_the_cart_etag(api, customer):
    sku = factories.SkuFactory(availabilities=[("P1Y", "monthly", "10.00")])
    availability = sku.availabilities.get()
    item = f"{sku.product.product_id}:{sku.sku_id.removeprefix(sku.product.product_id + ':')}:{availability.pk}"
    created = api.client.post(
        f"/api/v1/customers/{customer.pk}/carts",
        json.dumps({"lineItems": [{"catalogItemId": item, "quantity": 1}]}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {api.secret}"},
    )
    assert created.status_code == 201, created.content
    cart = created.json()
    assert cart["partnerOnRecordAttestationAccepted"] is False
    changed = api.client.put(
        f"/api/v1/customers/{customer.pk}/carts/{cart['id']}",
        json.dumps({**cart, "partnerOnRecordAttestationAccepted": True}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {api.secret}", "If-Match": cart["attributes"]["etag"]},
    )
    assert changed.status_code == 200, changed.content
    assert changed.json()["partnerOnRecordAttestationAccepted"] is True
    assert changed.json()["attributes"]["etag"] != cart["attributes"]["etag"]


# --- F8: the replayed answer of a registration carries the secret without Cache-Control: no-store -----------------
def test_f8_replayed_registration_is_not_cached(api):
    body = json.dumps({"webhookUrl": "https://psa.example.com/hook", "webhookEvents": ["subscription-created"]})
    headers = {"Authorization": f"Bearer {api.secret}", "MS-RequestId": "reg-1"}
    first = api.client.post("/api/v1/webhooks/registrations", body, content_type="application/json", headers=headers)
    again = api.client.post("/api/v1/webhooks/registrations", body, content_type="application/json", headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json()["secret"]  # the secret, replayed from the database's copy of the answer
    assert again.get("Cache-Control") == "no-store"


# --- F9: "quantity" and "Quantity" in one body: the last silently wins --------------------------------------
def test_f9_a_field_sent_twice_in_two_cases_is_refused(api, subscription):
    base = f"/customers/{subscription.customer_id}/subscriptions/{subscription.pk}"
    etag = api.get(base).json()["attributes"]["etag"]
    response = api.client.patch(
        f"/api/v1{base}",
        '{"quantity": 12, "Quantity": 11}',
        content_type="application/json",
        headers={"Authorization": f"Bearer {api.secret}", "If-Match": etag},
    )
    assert response.status_code == 400, (response.status_code, json.loads(response.content).get("quantity"))


# --- F10: wrong JSON types are coerced, not refused ------------------------------------------------------------
@pytest.mark.parametrize("body", [{"quantity": "11"}, {"autoRenewEnabled": "off"}, {"autoRenewEnabled": 0}])
def test_f10_wrong_types_are_refused(api, subscription, body):
    base = f"/customers/{subscription.customer_id}/subscriptions/{subscription.pk}"
    etag = api.get(base).json()["attributes"]["etag"]
    response = api.patch(base, body, headers={"If-Match": etag})
    assert response.status_code == 400, response.status_code


def test_a_name_differing_only_by_surrounding_spaces_renames_nothing(api, subscription):
    base = f"/customers/{subscription.customer_id}/subscriptions/{subscription.pk}"
    Subscription.objects.filter(pk=subscription.pk).update(friendly_name="Head office")
    etag = api.get(base).json()["attributes"]["etag"]
    before = database_state()
    answer = api.patch(base, {"friendlyName": "  Head office "}, headers={"If-Match": etag})
    assert answer.status_code == 200 and answer.json()["attributes"]["etag"] == etag
    assert database_state() == before  # no version bump, no audit entry, so no webhook either
