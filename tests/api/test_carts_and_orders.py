"""The API's carts, checkout and orders (Partner Center's section 2) over the cart page's services: buying end to
end, the cart rules' refusals in the envelope (every refused line listed, nothing changed), tenancy, roles,
checkout once, bad bodies, and the orders list's queries."""

import json
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from api import protocol, tokens, wire
from catalog import cart as cart_services
from catalog.models import Cart, CartLine, Order, OrderLine, Sku
from subscriptions.models import Subscription
from subscriptions.selectors import encode_cursor
from tests import factories
from tests.conftest import NOW
from tests.helpers import at_once


def send(api, method, path, body=None, headers=None, raw=None):
    data = raw if raw is not None else ("" if body is None else json.dumps(body))
    return api.client.generic(
        method, f"/api/v1{path}", data, content_type="application/json", headers=api._headers(headers)
    )


def offer(availability) -> str:
    return f"{availability.sku.product.product_id}:{wire.sku_part(availability.sku)}:{availability.pk}"


def carts(customer):
    return f"/customers/{customer.pk}/carts"


def state():
    """Everything a cart request could change."""
    return (
        list(Cart.objects.values_list("pk", "status", "version", "reseller_id").order_by("pk")),
        list(CartLine.objects.values_list("pk", "availability_id", "quantity").order_by("pk")),
        Order.objects.count(),
        OrderLine.objects.count(),
    )


@pytest.fixture
def e3(db):
    return factories.SkuFactory(name="Microsoft 365 E3", availabilities=[("P1Y", "monthly", "36.00")])


@pytest.fixture
def teams(db):
    return factories.SkuFactory(name="Microsoft Teams Essentials", availabilities=[("P1Y", "annual", "48.00")])


def create(api, customer, *lines, attested=True, headers=None, **extra):
    body = {
        "partnerOnRecordAttestationAccepted": attested,
        "lineItems": [
            {
                "id": n,
                "catalogItemId": offer(a),
                "quantity": q,
                "termDuration": a.term,
                "billingCycle": a.billing_frequency,
            }
            for n, (a, q) in enumerate(lines)
        ],
        **extra,
    }
    return send(api, "POST", carts(customer), body, headers)


# Buying end to end --------------------------------------------------------------------------------------------


@pytest.mark.rule("K9")
@pytest.mark.rule("O2")
@pytest.mark.django_db(transaction=True)
def test_buy_through_the_api_end_to_end(api, customer, e3, teams, now, worker):
    # given two offers in a cart created through the API, with the attestation
    e3_way, teams_way = factories.availability(e3), factories.availability(teams, "P1Y", "annual")
    created = create(api, customer, (e3_way, 10), (teams_way, 3))
    assert created.status_code == 201, created.content
    cart = created.json()
    assert cart["status"] == "Active" and cart["partnerOnRecordAttestationAccepted"] is True
    assert [(line["catalogItemId"], line["quantity"]) for line in cart["lineItems"]] == [
        (offer(e3_way), 10),
        (offer(teams_way), 3),
    ]
    assert cart["lineItems"][0]["pricing"]["price"] == "36.00"
    assert cart["expirationTimestamp"] == f"{now + timedelta(days=7):%Y-%m-%dT%H:%M:%SZ}"
    path = f"{carts(customer)}/{cart['id']}"
    assert api.get(path).json()["lineItems"] == cart["lineItems"]
    # when it is checked out and the worker runs
    checked = send(api, "POST", f"{path}/checkout")
    assert checked.status_code == 201, checked.content
    order = checked.json()["orders"][0]
    assert order["status"] == "pending" and order["attestedAs"] == "direct"
    assert [line["subscriptionId"] for line in order["lineItems"]] == [None, None]
    worker()
    # then the order is completed, each line provisioned into a subscription the API reads
    order_path = f"/customers/{customer.pk}/orders/{order['id']}"
    done = api.get(order_path).json()
    assert done["status"] == "completed"
    status = api.get(f"{order_path}/provisioningstatus").json()
    assert [item["status"] for item in status["items"]] == ["fulfilled", "fulfilled"]
    subscription_id = done["lineItems"][0]["subscriptionId"]
    assert status["items"][0]["subscriptionId"] == subscription_id
    subscription = api.get(f"/customers/{customer.pk}/subscriptions/{subscription_id}").json()
    assert (subscription["offerId"], subscription["quantity"], subscription["orderId"]) == (
        offer(e3_way),
        10,
        order["id"],
    )
    assert Subscription.objects.filter(customer=customer).count() == 2
    assert api.get(path).json()["status"] == "Ordered"


# Cart rules -------------------------------------------------------------------------------------------------


@pytest.fixture
def multigeo(customer):
    """400 base E3 licenses held: Multi-Geo needs at least 20 (K6)."""
    e3 = factories.SkuFactory(name="Microsoft 365 E3")
    addon = factories.SkuFactory(
        name="Multi-Geo Capabilities in Office 365", is_addon=True, addon_limit=Sku.AddonLimit.MIN_5_PERCENT_OF_BASE
    )
    addon.base_skus.set([e3])
    factories.SubscriptionFactory(customer=customer, sku=e3, quantity=400)
    return addon


@pytest.mark.rule("K6")
def test_k6_a_cart_with_19_multigeo_licenses_for_400_base_is_refused_and_nothing_is_created(api, customer, multigeo):
    before = state()
    response = create(api, customer, (factories.availability(multigeo), 19))
    assert response.status_code == 400
    body = response.json()
    assert (body["code"], body["ruleId"]) == (2002, "K6")
    assert body["description"] == (
        "Multi-Geo Capabilities in Office 365 needs at least 20 licenses: 5% of the customer's 400 base licenses, "
        "rounded up."
    )
    assert body["data"][0]["key"] == "lineItems[0]"
    assert state() == before


@pytest.mark.rule("K6")
def test_k6_raising_a_line_below_the_minimum_with_put_changes_nothing(api, customer, multigeo):
    created = create(api, customer, (factories.availability(multigeo), 20)).json()
    before = state()
    body = {**created, "lineItems": [{**created["lineItems"][0], "quantity": 19}]}
    response = send(api, "PUT", f"{carts(customer)}/{created['id']}", body, {"If-Match": created["attributes"]["etag"]})
    assert (response.status_code, response.json()["ruleId"]) == (400, "K6")
    assert state() == before


@pytest.mark.rule("K8")
@pytest.mark.rule("K9")
def test_k8_every_refused_line_is_listed_and_nothing_is_created(api, customer, e3, teams):
    # given two lines past their offers' maximum and one that is fine
    e3.max_quantity = 300
    e3.save()
    teams.max_quantity = 25
    teams.save()
    e3_way, teams_way = factories.availability(e3), factories.availability(teams, "P1Y", "annual")
    fine = factories.availability(factories.SkuFactory(name="Visio Plan 2"))
    before = state()
    response = create(api, customer, (e3_way, 301), (fine, 2), (teams_way, 26))
    # then both refusals are listed with their line, and no cart exists
    assert response.status_code == 400
    body = response.json()
    assert body["ruleId"] == "K8" and body["description"].startswith("Nothing was done: 2 refusals.")
    assert [(item["key"], item["ruleId"], item["code"]) for item in body["data"]] == [
        ("lineItems[0]", "K8", 2002),
        ("lineItems[2]", "K8", 2002),
    ]
    assert body["data"][0]["description"] == "Microsoft 365 E3 is sold in quantities from 1 to 300."
    assert state() == before


@pytest.mark.rule("K3")
def test_k3_checkout_without_the_attestation_buys_nothing(api, customer, e3):
    cart = create(api, customer, (factories.availability(e3), 5), attested=False).json()
    before = state()
    response = send(api, "POST", f"{carts(customer)}/{cart['id']}/checkout")
    assert response.status_code == 422
    assert (response.json()["ruleId"], response.json()["description"]) == (
        "K3",
        "Confirm the attestation before purchasing.",
    )
    assert state() == before and Cart.objects.get().status == Cart.Status.OPEN


@pytest.mark.rule("K4")
def test_k4_a_direct_partner_naming_a_reseller_is_refused(api, customer, e3):
    reseller = factories.PartnerFactory(kind="indirect_reseller")
    line = {"catalogItemId": offer(factories.availability(e3)), "quantity": 5}
    line["participants"] = [{"key": "transaction_reseller", "value": reseller.partner_id}]
    before = state()
    response = send(api, "POST", carts(customer), {"lineItems": [line]})
    assert (response.status_code, response.json()["ruleId"]) == (422, "K4")
    assert response.json()["data"][0]["key"] == "participants[transaction_reseller]"
    assert state() == before


@pytest.mark.rule("K4")
def test_k4_an_indirect_providers_cart_takes_its_reseller_from_participants(provider, token_for, now):
    reseller = factories.ResellerLinkFactory(provider=provider).reseller
    seller = factories.staff(provider, "sales_agent")
    customer = factories.CustomerFactory(partner=provider)
    line = {"catalogItemId": offer(factories.availability(factories.SkuFactory())), "quantity": 5}
    line["participants"] = [{"key": "transaction_reseller", "value": reseller.partner_id}]
    response = send(token_for(seller), "POST", carts(customer), {"lineItems": [line]})
    assert response.status_code == 201, response.content
    assert response.json()["lineItems"][0]["participants"] == [
        {"key": "transaction_reseller", "value": reseller.partner_id}
    ]
    assert Cart.objects.get().reseller == reseller


@pytest.mark.rule("C4f")
@pytest.mark.rule("K9")
def test_a_line_the_checkout_would_refuse_says_why_before_and_at_checkout(api, customer, e3, teams):
    # given a cart of two offers, one of which can no longer be bought here
    e3_way, teams_way = factories.availability(e3), factories.availability(teams, "P1Y", "annual")
    cart = create(api, customer, (e3_way, 10), (teams_way, 3)).json()
    assert [line["error"] for line in cart["lineItems"]] == [None, None]
    teams.transactable_in_portal = False
    teams.save()
    # when the cart is read, then that line carries the page's verdict
    read = api.get(f"{carts(customer)}/{cart['id']}").json()
    assert read["lineItems"][0]["error"] is None
    assert read["lineItems"][1]["error"]["ruleId"] == "C4f"
    # and checkout refuses it by its line, buying nothing
    before = state()
    response = send(api, "POST", f"{carts(customer)}/{cart['id']}/checkout")
    assert response.status_code == 422
    assert [(item["key"], item["ruleId"]) for item in response.json()["data"]] == [("lineItems[1]", "C4f")]
    assert response.json()["data"][0]["description"] == read["lineItems"][1]["error"]["errorDescription"]
    assert state() == before


@pytest.mark.rule("K12")
def test_k12_an_expired_cart_takes_no_change(api, customer, e3, sales, now):
    cart = factories.CartFactory(customer=customer, owner=sales, created_at=now - timedelta(days=8))
    factories.CartLineFactory(cart=cart, availability=factories.availability(e3), quantity=5)
    read = api.get(f"{carts(customer)}/{cart.pk}").json()
    assert read["status"] == "Expired"
    before = state()
    body = {"lineItems": [{"catalogItemId": offer(factories.availability(e3)), "quantity": 6}]}
    response = send(api, "PUT", f"{carts(customer)}/{cart.pk}", body, {"If-Match": read["attributes"]["etag"]})
    assert (response.status_code, response.json()["ruleId"]) == (409, "K12")
    assert state() == before


@pytest.mark.rule("K5")
def test_k5_additional_resellers_are_declared_for_an_eu_customer_only(api, direct_partner, e3):
    # given a direct-bill partner (its own initial reseller) and an MPA-signed partner to declare
    other = factories.PartnerFactory(kind="indirect_reseller")
    line = {"catalogItemId": offer(factories.availability(e3)), "quantity": 5}
    line["participants"] = [{"key": "additional_transaction_reseller", "value": other.partner_id}]
    # when a US customer's cart names it, then K5 refuses and nothing is created
    us = factories.CustomerFactory(partner=direct_partner, billing_country="US")
    before = state()
    refused = send(api, "POST", carts(us), {"lineItems": [line]})
    assert (refused.status_code, refused.json()["ruleId"]) == (422, "K5")
    assert refused.json()["description"] == "Additional resellers are declared only for customers in the EU/EFTA."
    assert state() == before
    # and a German customer's cart declares it
    de = factories.CustomerFactory(partner=direct_partner, billing_country="DE")
    created = send(api, "POST", carts(de), {"lineItems": [line]})
    assert created.status_code == 201, created.content
    assert created.json()["lineItems"][0]["participants"] == line["participants"]


@pytest.mark.rule("K11")
def test_k11_a_custom_term_end_date_the_line_cannot_align_to_is_refused(api, customer, e3):
    line = {
        "catalogItemId": offer(factories.availability(e3)),
        "quantity": 5,
        "customTermEndDate": "2027-01-15T00:00:00Z",
    }
    before = state()
    response = send(api, "POST", carts(customer), {"lineItems": [line]})
    assert (response.status_code, response.json()["ruleId"]) == (422, "K11")
    assert response.json()["data"][0]["field"] == "aligned_end_date"
    assert state() == before
    line["customTermEndDate"] = "2026-12-31T00:00:00Z"  # a calendar month's last day, within the first term
    created = send(api, "POST", carts(customer), {"lineItems": [line]})
    assert created.status_code == 201, created.content
    assert created.json()["lineItems"][0]["customTermEndDate"] == "2026-12-31T00:00:00Z"


# PUT ----------------------------------------------------------------------------------------------------------


def test_put_replaces_the_lines_with_if_match(api, customer, e3, teams):
    e3_way, teams_way = factories.availability(e3), factories.availability(teams, "P1Y", "annual")
    cart = create(api, customer, (e3_way, 10), (teams_way, 3)).json()
    path = f"{carts(customer)}/{cart['id']}"
    body = {"lineItems": [{"catalogItemId": offer(e3_way), "quantity": 12}]}
    before = state()
    assert send(api, "PUT", path, body).status_code == 412
    assert send(api, "PUT", path, body, {"If-Match": "bm90IGFuIGV0YWc="}).status_code == 412
    assert state() == before
    response = send(api, "PUT", path, body, {"If-Match": cart["attributes"]["etag"]})
    assert response.status_code == 200, response.content
    assert [(line["catalogItemId"], line["quantity"]) for line in response.json()["lineItems"]] == [(offer(e3_way), 12)]
    assert response.json()["attributes"]["etag"] != cart["attributes"]["etag"]
    # the etag read before is stale now
    again = send(
        api,
        "PUT",
        path,
        {"lineItems": [{"catalogItemId": offer(e3_way), "quantity": 1}]},
        {"If-Match": cart["attributes"]["etag"]},
    )
    assert again.status_code == 412
    assert CartLine.objects.get().quantity == 12


def test_a_second_open_cart_answers_409_naming_the_first(api, customer, e3):
    first = create(api, customer, (factories.availability(e3), 1)).json()
    before = state()
    response = create(api, customer, (factories.availability(e3), 2))
    assert response.status_code == 409
    assert response.json()["data"][0]["cartId"] == first["id"]
    assert state() == before


# Checkout once ------------------------------------------------------------------------------------------------


@pytest.mark.rule("K9")
def test_checkout_twice_makes_one_order(api, customer, e3):
    cart = create(api, customer, (factories.availability(e3), 5)).json()
    path = f"{carts(customer)}/{cart['id']}/checkout"
    first = send(api, "POST", path)
    second = send(api, "POST", path)
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["orders"][0]["id"] == second.json()["orders"][0]["id"]
    assert Order.objects.count() == 1 and OrderLine.objects.count() == 1


@pytest.mark.rule("K9")
def test_checkout_twice_with_one_request_id_replays_the_first_answer(api, customer, e3):
    cart = create(api, customer, (factories.availability(e3), 5)).json()
    path = f"{carts(customer)}/{cart['id']}/checkout"
    headers = {"MS-RequestId": "7d7d5a8e-0d44-4b6f-9a55-0c52a8f2c0a1"}
    first = send(api, "POST", path, headers=headers)
    second = send(api, "POST", path, headers=headers)
    assert (first.status_code, second.status_code) == (201, 201)
    assert second.headers["MS-Replayed"] == "true" and second.content == first.content
    assert Order.objects.count() == 1


def test_create_twice_with_one_request_id_creates_one_cart(api, customer, e3):
    headers = {"MS-RequestId": "c1d5e0a2-5d8e-4b6f-9a55-0c52a8f2c0a1"}
    first = create(api, customer, (factories.availability(e3), 5), headers=headers)
    second = create(api, customer, (factories.availability(e3), 5), headers=headers)
    assert (first.status_code, second.status_code) == (201, 201)
    assert second.headers["MS-Replayed"] == "true"
    assert Cart.objects.count() == 1 and CartLine.objects.get().quantity == 5


# Tenancy and roles --------------------------------------------------------------------------------------------


@pytest.fixture
def bought(customer, sales, e3, now):
    """An open cart of the sales agent, and an order placed from another cart."""
    factories.OrderLineFactory(order=factories.OrderFactory(customer=customer, placed_by=sales))
    cart_services.add_to_cart(
        customer=customer,
        actor=sales,
        availability_id=factories.availability(e3).pk,
        quantity=5,
        aligned_end_date=None,
        now=now,
    )
    return cart_services.current_cart(customer, sales, now), Order.objects.get()


def api_etag(cart):
    cart.refresh_from_db()
    return protocol.etag("cart", cart.pk, cart.version)


def routes(customer, cart, order):
    cart_path = f"/customers/{customer.pk}/carts/{cart.pk}"
    order_path = f"/customers/{customer.pk}/orders/{order.number}"
    body = {"lineItems": [{"catalogItemId": "x:y:1", "quantity": 1}]}
    return [
        ("POST", f"/customers/{customer.pk}/carts", body),
        ("GET", cart_path, None),
        ("PUT", cart_path, body),
        ("POST", f"{cart_path}/checkout", None),
        ("GET", f"/customers/{customer.pk}/orders", None),
        ("GET", order_path, None),
        ("GET", f"{order_path}/provisioningstatus", None),
    ]


@pytest.mark.rule("T3")
def test_another_partners_ids_answer_404(token_for, customer, bought):
    cart, order = bought
    other = token_for(factories.staff(factories.PartnerFactory(), "admin_agent"))
    before = state()
    for method, path, body in routes(customer, cart, order):
        response = send(other, method, path, body, {"If-Match": "x"})
        assert response.status_code == 404, (method, path, response.content)
    assert state() == before


@pytest.mark.rule("T2")
def test_another_staff_members_cart_answers_404(token_for, customer, direct_partner, bought):
    cart, _ = bought
    colleague = token_for(factories.staff(direct_partner, "sales_agent"))
    assert colleague.get(f"/customers/{customer.pk}/carts/{cart.pk}").status_code == 404
    assert send(colleague, "POST", f"/customers/{customer.pk}/carts/{cart.pk}/checkout").status_code == 404
    assert not Order.objects.filter(cart=cart).exists()


@pytest.mark.rule("T2")
def test_a_support_agents_writes_answer_403(token_for, customer, direct_partner, bought, e3):
    cart, order = bought
    support = token_for(factories.staff(direct_partner, "support_agent"))
    body = {"lineItems": [{"catalogItemId": offer(factories.availability(e3)), "quantity": 1}]}
    before = state()
    assert send(support, "POST", carts(customer), body).status_code == 403
    etag = {"If-Match": api_etag(cart)}
    assert send(support, "PUT", f"{carts(customer)}/{cart.pk}", body, etag).status_code == 403
    assert send(support, "POST", f"{carts(customer)}/{cart.pk}/checkout").status_code == 403
    assert support.get(f"/customers/{customer.pk}/orders").status_code == 200
    assert support.get(f"/customers/{customer.pk}/orders/{order.number}").status_code == 200
    assert state() == before


# Bad bodies ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        '{"lineItems": [{"catalogItemId": "%s", "quantity": 1, "colour": "red"}]}',
        '{"lineItems": [{"catalogItemId": "%s", "quantity": -1}]}',
        '{"lineItems": [{"catalogItemId": "%s", "quantity": 0}]}',
        '{"lineItems": [{"catalogItemId": "%s", "quantity": 99999999999999999999}]}',
        '{"lineItems": [{"catalogItemId": "%s", "quantity": "many"}]}',
        '{"lineItems": [{"catalogItemId": "%s", "quantity": 1.5}]}',
        '{"lineItems": [{"catalogItemId": "%s", "quantity": 1}], "partnerOnRecordAttestationAccepted": "maybe"}',
        '{"lineItems": [{"catalogItemId": "%s", "quantity": 1, "termDuration": "P9Y"}]}',
        '{"lineItems": [{"catalogItemId": "%s", "quantity": 1, "participants": [{"key": "friend", "value": "1"}]}]}',
        '{"lineItems": [{"catalogItemId": "%s", "quantity": 1, "customTermEndDate": "soon"}]}',
        '{"lineItems": [{"catalogItemId": "%s", "quantity": 1, "customTermEndDate": "0001-01-01T00:00:00+05:00"}]}',
        '{"lineItems": [{"catalogItemId": "%s", "quantity": 1, "friendlyName": "Sales team"}]}',
        '{"lineItems": [{"catalogItemId": "%s", "quantity": 1, "participants": [{"key": "transaction_reseller", '
        '"value": "51\\u0000"}]}]}',
        '{"lineItems": [{"catalogItemId": "nope", "quantity": 1}]}',
        '{"lineItems": [{"catalogItemId": "%s:0", "quantity": 1}]}',
        '{"lineItems": []}',
        '{"lineItems": "%s"}',
        "[]",
        '{"lineItems": [{"catalogItemId": "%s", "quantity": 1}]',
        "not json",
    ],
)
def test_bad_bodies_answer_400_and_change_nothing(api, customer, e3, raw):
    way = factories.availability(e3)
    before = state()
    response = send(api, "POST", carts(customer), raw=raw.replace("%s", offer(way)) if "%s" in raw else raw)
    assert response.status_code == 400, response.content
    assert response.json()["description"]
    assert state() == before


def test_a_catalog_item_no_longer_in_the_catalog_is_refused_by_the_service(api, customer, e3):
    way = factories.availability(e3)
    gone = offer(way).rsplit(":", 1)[0] + ":999999"
    before = state()
    response = send(api, "POST", carts(customer), {"lineItems": [{"catalogItemId": gone, "quantity": 1}]})
    assert (response.status_code, response.json()["ruleId"]) == (422, "C1")
    assert state() == before


def test_odd_ids_answer_404(api, customer):
    assert api.get(f"/customers/{customer.pk}/carts/abc").status_code == 404
    assert api.get(f"/customers/{customer.pk}/carts/99999999999999999999999").status_code == 404
    assert api.get(f"/customers/{customer.pk}/orders/ORD-x").status_code == 404
    assert api.get(f"/customers/{customer.pk}/orders/12").status_code == 404
    assert api.get(f"/customers/{customer.pk}/orders/ORD-{'9' * 18}").status_code == 404
    assert api.get(f"/customers/{customer.pk}/carts/{'9' * 18}").status_code == 404


# Orders list ----------------------------------------------------------------------------------------------------


def make_orders(customer, sales, count, start):
    for n in range(count):
        order = factories.OrderFactory(customer=customer, placed_by=sales, created_at=start + timedelta(minutes=n))
        factories.OrderLineFactory(order=order)
        factories.OrderLineFactory(order=order)


def test_the_orders_list_pages_newest_first_with_a_continuation_token(api, customer, sales, now):
    make_orders(customer, sales, 5, now - timedelta(days=1))
    first = api.get(f"/customers/{customer.pk}/orders", size=2).json()
    assert first["totalCount"] == 2 and first["continuationToken"]
    seen = [o["id"] for o in first["items"]]
    token = first["continuationToken"]
    while token:
        page = api.get(
            f"/customers/{customer.pk}/orders", headers={"MS-ContinuationToken": token}, size=2, seekOperation="Next"
        ).json()
        seen += [o["id"] for o in page["items"]]
        token = page["continuationToken"]
    expected = [o.number for o in Order.objects.filter(customer=customer).order_by("-created_at", "-pk")]
    assert seen == expected and len(seen) == 5
    for garbage in ("garbage", encode_cursor(("2026-01-01T00:00:00+00:00", "9" * 40)), encode_cursor(("x", "1"))):
        bad = api.get(f"/customers/{customer.pk}/orders", headers={"MS-ContinuationToken": garbage})
        assert bad.status_code == 400, garbage


def test_the_orders_lists_queries_do_not_grow_with_the_orders(api, customer, sales, now):
    def queries():
        with CaptureQueriesContext(connection) as captured:
            assert api.get(f"/customers/{customer.pk}/orders").status_code == 200
        return len(captured)

    make_orders(customer, sales, 2, now - timedelta(days=2))
    queries()  # the token's first use and the rate's first minute write once
    few = queries()
    make_orders(customer, sales, 8, now - timedelta(days=1))
    assert queries() == few


@pytest.mark.rule("K9")
@pytest.mark.skipif(connection.vendor != "postgresql", reason="two requests at once need row locks (PostgreSQL)")
@pytest.mark.django_db(transaction=True)
def test_two_checkouts_of_one_cart_at_once_make_one_order():
    with time_machine.travel(NOW, tick=False):
        partner = factories.PartnerFactory(kind="direct_bill")
        user = factories.staff(partner, "sales_agent")
        customer = factories.CustomerFactory(partner=partner)
        _, secret = tokens.create_token(user, name="race", expires_at=None, now=NOW)
        auth = {"Authorization": f"Bearer {secret}"}
        way = factories.availability(factories.SkuFactory())
        body = {"partnerOnRecordAttestationAccepted": True, "lineItems": [{"catalogItemId": offer(way), "quantity": 3}]}
        created = Client().post(
            f"/api/v1{carts(customer)}", json.dumps(body), content_type="application/json", headers=auth
        )
        url = f"/api/v1{carts(customer)}/{created.json()['id']}/checkout"

        def checkout():
            return Client().post(url, "", content_type="application/json", headers=auth)

        responses, _ = at_once(checkout, checkout)
        assert [r.status_code for r in responses] == [201, 201], [r.content for r in responses]
        assert len({r.json()["orders"][0]["id"] for r in responses}) == 1
        assert Order.objects.count() == 1 and OrderLine.objects.count() == 1


@pytest.mark.rule("K7")
def test_k7_put_raises_the_base_before_the_addon_it_bounds(api, customer):
    # given 50 E3 licenses and 50 Copilot licenses in the cart (Copilot: at most the base licenses, K7)
    e3 = factories.SkuFactory(name="Microsoft 365 E3")
    copilot = factories.SkuFactory(name="Microsoft 365 Copilot", is_addon=True, addon_limit=Sku.AddonLimit.MAX_BASE)
    copilot.base_skus.set([e3])
    base, addon = factories.availability(e3), factories.availability(copilot)
    cart = create(api, customer, (base, 50), (addon, 50)).json()
    path = f"{carts(customer)}/{cart['id']}"
    etag = {"If-Match": cart["attributes"]["etag"]}
    # when both go to 100 in one PUT, the add-on listed first, then it is accepted (the base is raised first)
    body = {
        "lineItems": [{"catalogItemId": offer(addon), "quantity": 100}, {"catalogItemId": offer(base), "quantity": 100}]
    }
    response = send(api, "PUT", path, body, etag)
    assert response.status_code == 200, response.content
    assert sorted(line["quantity"] for line in response.json()["lineItems"]) == [100, 100]
    # and past the base, 101, it is refused by K7 and nothing changes
    before = state()
    body["lineItems"][0]["quantity"] = 101
    refused = send(api, "PUT", path, body, {"If-Match": response.json()["attributes"]["etag"]})
    assert (refused.status_code, refused.json()["ruleId"], refused.json()["code"]) == (400, "K7", 800088)
    assert refused.json()["data"][0]["key"] == "lineItems[0]"
    assert state() == before


def test_checkout_with_a_stale_if_match_buys_nothing(api, customer, e3):
    cart = create(api, customer, (factories.availability(e3), 5)).json()
    path = f"{carts(customer)}/{cart['id']}"
    changed = send(
        api,
        "PUT",
        path,
        {"lineItems": [{"catalogItemId": cart["lineItems"][0]["catalogItemId"], "quantity": 6}]},
        {"If-Match": cart["attributes"]["etag"]},
    )
    assert changed.status_code == 200
    before = state()
    response = send(api, "POST", f"{path}/checkout", headers={"If-Match": cart["attributes"]["etag"]})
    assert response.status_code == 412
    assert state() == before
    fresh = send(api, "POST", f"{path}/checkout", headers={"If-Match": changed.json()["attributes"]["etag"]})
    assert fresh.status_code == 201 and fresh.json()["orders"][0]["lineItems"][0]["quantity"] == 6


def test_a_carts_queries_do_not_grow_with_its_lines(api, customer):
    ways = [factories.availability(factories.SkuFactory()) for _ in range(6)]
    cart = create(api, customer, *[(way, 2) for way in ways[:1]]).json()
    path = f"{carts(customer)}/{cart['id']}"

    def queries():
        with CaptureQueriesContext(connection) as captured:
            assert api.get(path).status_code == 200
        return len(captured)

    queries()
    few = queries()
    for way in ways[1:]:
        cart_services.add_to_cart(
            customer=customer,
            actor=Cart.objects.get().owner,
            availability_id=way.pk,
            quantity=2,
            aligned_end_date=None,
            now=timezone.now(),
        )
    assert len(api.get(path).json()["lineItems"]) == 6
    assert queries() == few


@pytest.mark.rule("K1")
@pytest.mark.skipif(connection.vendor != "postgresql", reason="two requests at once need row locks (PostgreSQL)")
@pytest.mark.django_db(transaction=True)
def test_two_creates_at_once_make_one_cart_and_the_other_answers_409():
    with time_machine.travel(NOW, tick=False):
        partner = factories.PartnerFactory(kind="direct_bill")
        user = factories.staff(partner, "sales_agent")
        customer = factories.CustomerFactory(partner=partner)
        _, secret = tokens.create_token(user, name="race", expires_at=None, now=NOW)
        auth = {"Authorization": f"Bearer {secret}"}
        way = factories.availability(factories.SkuFactory())
        body = json.dumps({"lineItems": [{"catalogItemId": offer(way), "quantity": 3}]})

        def create_one():
            return Client().post(f"/api/v1{carts(customer)}", body, content_type="application/json", headers=auth)

        responses, _ = at_once(create_one, create_one)
        assert sorted(r.status_code for r in responses) == [201, 409], [r.content for r in responses]
        assert Cart.objects.count() == 1 and CartLine.objects.get().quantity == 3
