"""Upgrades through the API (Partner Center's transitions, U1–U9): the Check upgrades panel's matrix and service."""

import json
from datetime import UTC, datetime, timedelta

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


def post(api, subscription, body, headers=None, *, etag=None):
    if etag is None:
        etag = api.get(base(subscription)).json()["attributes"]["etag"]
    return api.client.post(
        f"/api/v1{base(subscription)}/transitions",
        json.dumps(body),
        content_type="application/json",
        headers={"Authorization": f"Bearer {api.secret}", "If-Match": etag, **(headers or {})},
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
    etag = api.get(base(subscription)).json()["attributes"]["etag"]
    first = post(api, subscription, {"toCatalogItemId": item, "quantity": 4}, headers, etag=etag)
    again = post(api, subscription, {"toCatalogItemId": item, "quantity": 4}, headers, etag=etag)
    assert first.status_code == again.status_code == 200
    assert first.content == again.content
    assert Subscription.objects.count() == 2


# --- Trials convert by a transition (TR3, TR5, TR7) ---------------------------------------------------------------


@pytest.fixture
def trial(customer, now):
    paid = factories.SkuFactory(name="Microsoft 365 E3", availabilities=[("P1Y", "monthly", "36.00")])
    return factories.start_trial(
        customer, factories.trial_offer(trial_of=paid), started=datetime(2026, 11, 10, tzinfo=UTC)
    )


@pytest.mark.rule("TR3")
def test_a_trial_converts_now_into_a_new_subscription_of_its_paid_sku(api, trial):
    items = target_item(api, trial)
    assert [i["title"] for i in items] == ["Microsoft 365 E3"]
    response = post(api, trial, {"toCatalogItemId": items[0]["catalogItemId"], "quantity": 30})
    assert response.status_code == 200, response.content
    paid = Subscription.objects.get(pk=response.json()["toSubscriptionId"])
    assert (paid.sku.name, paid.quantity, paid.term, paid.is_trial) == ("Microsoft 365 E3", 30, "P1Y", False)
    trial.refresh_from_db()
    assert trial.status != "active"


@pytest.mark.rule("TR5")
def test_a_trial_converts_into_a_subscription_only_if_it_ends_on_or_after_the_trial(api, customer, trial):
    paid = trial.sku.trial_of
    short = factories.SubscriptionFactory(customer=customer, sku=paid, term_end=trial.term_end - timedelta(days=1))
    long = factories.SubscriptionFactory(customer=customer, sku=paid, term_end=trial.term_end)
    item = target_item(api, trial)[0]
    eligible = {e["subscriptionId"]: e["isEligible"] for e in item["subscriptionEligibilities"]}
    assert eligible == {str(short.pk): False, str(long.pk): True}
    # into the one that ends too soon: refused, nothing changed
    before = (short.quantity, trial.status, Subscription.objects.count())
    refused = post(
        api, trial, {"toCatalogItemId": item["catalogItemId"], "toSubscriptionId": str(short.pk), "quantity": 25}
    )
    assert refused.status_code == 422, refused.content
    assert refused.json()["ruleId"] == "TR5"
    short.refresh_from_db()
    trial.refresh_from_db()
    assert (short.quantity, trial.status, Subscription.objects.count()) == before
    # into the one that ends on the trial's last day: 25 licenses join it (TR7)
    done = post(
        api, trial, {"toCatalogItemId": item["catalogItemId"], "toSubscriptionId": str(long.pk), "quantity": 25}
    )
    assert done.status_code == 200, done.content
    long.refresh_from_db()
    assert long.quantity == 10 + 25


@pytest.mark.rule("U7")
def test_a_transition_without_if_match_is_refused_and_nothing_changes(api, upgrade):
    subscription, _ = upgrade
    item = target_item(api, subscription)[0]["catalogItemId"]
    response = post(api, subscription, {"toCatalogItemId": item, "quantity": 4}, etag="")
    assert response.status_code == 412
    assert Subscription.objects.count() == 1
