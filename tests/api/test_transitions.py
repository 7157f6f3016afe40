"""Upgrades through the API (Partner Center's transitions, U1–U9): the Check upgrades panel's matrix and service."""

import json

import pytest

from catalog.models import UpgradePath
from subscriptions.models import Subscription
from tests import factories


@pytest.fixture
def upgrade(customer):
    source = factories.SkuFactory(name="Office 365 E3", availabilities=[("P1Y", "monthly", "20.00")])
    target = factories.SkuFactory(name="Office 365 E5", availabilities=[("P1Y", "monthly", "35.00")])
    UpgradePath.objects.create(source=source, target=target)
    subscription = factories.SubscriptionFactory(customer=customer, sku=source, quantity=10)
    return subscription, target


def base(subscription):
    return f"/customers/{subscription.customer_id}/subscriptions/{subscription.pk}"


def post(api, subscription, body, headers=None):
    return api.client.post(
        f"/api/v1{base(subscription)}/transitions",
        json.dumps(body),
        content_type="application/json",
        headers={"Authorization": f"Bearer {api.secret}", **(headers or {})},
    )


def target_item(api, subscription):
    response = api.get(f"{base(subscription)}/transitionEligibilities")
    assert response.status_code == 200, response.content
    return response.json()["items"]


@pytest.mark.rule("U2")
def test_the_eligibilities_list_the_matrix_targets(api, upgrade):
    subscription, target = upgrade
    items = target_item(api, subscription)
    assert [i["title"] for i in items] == ["Office 365 E5"]
    assert items[0]["eligibilities"][0]["isEligible"] is True
    assert items[0]["quantity"] == 10


@pytest.mark.rule("U5")
def test_a_full_transition_upgrades_in_place(api, upgrade):
    subscription, target = upgrade
    item = target_item(api, subscription)[0]
    response = post(api, subscription, {"toCatalogItemId": item["catalogItemId"], "quantity": 10})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["toSubscriptionId"] == str(subscription.pk)  # U5: in place, the same id
    assert body["events"][0]["status"] == "Completed"
    subscription.refresh_from_db()
    assert subscription.sku_id == target.pk


@pytest.mark.rule("U6")
def test_a_partial_transition_makes_a_coterminous_subscription(api, upgrade):
    subscription, target = upgrade
    item = target_item(api, subscription)[0]
    response = post(api, subscription, {"toCatalogItemId": item["catalogItemId"], "quantity": 4})
    assert response.status_code == 200, response.content
    created = Subscription.objects.get(pk=response.json()["toSubscriptionId"])
    assert (created.sku_id, created.quantity, created.term_end) == (target.pk, 4, subscription.term_end)
    subscription.refresh_from_db()
    assert subscription.quantity == 6


@pytest.mark.rule("U2")
def test_a_target_off_the_matrix_is_refused_and_nothing_changes(api, upgrade):
    subscription, _ = upgrade
    elsewhere = factories.SkuFactory(name="Something else")
    offer = f"{elsewhere.product.product_id}:{elsewhere.sku_id}:{elsewhere.availabilities.first().pk}"
    response = post(api, subscription, {"toCatalogItemId": offer, "quantity": 10})
    assert response.status_code == 422
    assert response.json()["ruleId"] == "U2"
    subscription.refresh_from_db()
    assert (subscription.sku.name, subscription.quantity) == ("Office 365 E3", 10)
    assert Subscription.objects.count() == 1


def test_bad_transitions_answer_400_and_a_support_agent_403(api, token_for, direct_partner, upgrade):
    subscription, _ = upgrade
    item = target_item(api, subscription)[0]["catalogItemId"]
    for body in (
        {"toCatalogItemId": "nope:nope:1", "quantity": 10},
        {"toCatalogItemId": item, "quantity": 0},
        {"toCatalogItemId": item, "quantity": 10, "termDuration": "P9Y"},
        {"toCatalogItemId": item, "quantity": 10, "toSubscriptionId": "not-a-uuid"},
        {"toCatalogItemId": item},
    ):
        assert post(api, subscription, body).status_code == 400, body
    support = token_for(factories.staff(direct_partner, "support_agent"))
    assert post(support, subscription, {"toCatalogItemId": item, "quantity": 10}).status_code == 403
    subscription.refresh_from_db()
    assert subscription.sku.name == "Office 365 E3"


def test_a_retried_transition_acts_once(api, upgrade):
    subscription, _ = upgrade
    item = target_item(api, subscription)[0]["catalogItemId"]
    headers = {"MS-RequestId": "transition-1"}
    first = post(api, subscription, {"toCatalogItemId": item, "quantity": 4}, headers)
    again = post(api, subscription, {"toCatalogItemId": item, "quantity": 4}, headers)
    assert first.status_code == again.status_code == 200
    assert first.content == again.content
    assert Subscription.objects.count() == 2
