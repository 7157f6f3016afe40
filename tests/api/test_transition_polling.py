"""Polling transitions (`GET …/transitions[?operationId=]`: what each POST …/transitions answered, kept in the
transaction of the change) and the scheduled eligibilities (`eligibilityType=scheduled`: what the renewal can be
changed to, the Manage renewal panel's targets)."""

import json
from datetime import UTC, datetime
from uuid import uuid4

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from api.models import TransitionRecord
from catalog.models import UpgradePath
from subscriptions.models import Subscription
from tests import factories


@pytest.fixture
def upgrade(customer):
    source = factories.SkuFactory(name="Office 365 E3", availabilities=[("P1Y", "monthly", "20.00")])
    target = factories.SkuFactory(
        name="Office 365 E5", availabilities=[("P1Y", "monthly", "35.00"), ("P1Y", "annual", "400.00")]
    )
    UpgradePath.objects.create(source=source, target=target)
    subscription = factories.SubscriptionFactory(customer=customer, sku=source, quantity=10)
    return subscription, target


def base(subscription):
    return f"/customers/{subscription.customer_id}/subscriptions/{subscription.pk}"


def post(api, subscription, body, *, etag=None):
    if etag is None:
        etag = api.get(base(subscription)).json()["attributes"]["etag"]
    return api.client.post(
        f"/api/v1{base(subscription)}/transitions",
        json.dumps(body),
        content_type="application/json",
        headers={"Authorization": f"Bearer {api.secret}", "If-Match": etag},
    )


def polled(api, subscription, **params):
    response = api.get(f"{base(subscription)}/transitions", **params)
    assert response.status_code == 200, response.content
    return response.json()


def eligibilities(api, subscription, **params):
    response = api.get(f"{base(subscription)}/transitionEligibilities", **params)
    assert response.status_code == 200, response.content
    return response.json()["items"]


@pytest.mark.rule("U6")
def test_a_partial_upgrade_is_polled_by_its_operation_id_from_both_subscriptions(api, upgrade):
    # given: 4 of 10 licenses upgraded, into a new coterminous subscription
    subscription, target = upgrade
    item = eligibilities(api, subscription)[0]
    answer = post(api, subscription, {"toCatalogItemId": item["catalogItemId"], "quantity": 4}).json()
    created = Subscription.objects.get(sku=target)
    # when
    history = polled(api, subscription)
    one = polled(api, subscription, operationId=answer["operationId"])
    # then: the poll answers what the POST answered
    assert history["totalCount"] == 1 and history["items"] == [answer]
    assert history["attributes"] == {"objectType": "Collection", "etag": None}
    assert history["links"]["self"]["uri"] == f"{base(subscription)}/transitions"
    assert one["items"] == [answer]
    assert answer["fromSubscriptionId"] == str(subscription.pk)
    assert answer["toSubscriptionId"] == str(created.pk)
    assert (answer["quantity"], answer["transitionType"]) == (4, "transition_with_license_transfer")
    assert answer["events"][0]["status"] == "Completed"
    # the subscription that received the licenses lists it too; another operation id finds none
    assert polled(api, created)["items"] == [answer]
    assert polled(api, subscription, operationId=str(uuid4()))["items"] == []


def test_a_refused_transition_keeps_no_record(api, upgrade):
    # given
    subscription, _ = upgrade
    item = eligibilities(api, subscription)[0]
    # when: more licenses than the subscription has (U6's quantity is the service's to refuse)
    response = post(api, subscription, {"toCatalogItemId": item["catalogItemId"], "quantity": 11})
    # then
    assert response.status_code == 422, response.content
    assert polled(api, subscription)["items"] == []
    assert TransitionRecord.objects.count() == 0
    subscription.refresh_from_db()
    assert subscription.quantity == 10


@pytest.mark.parametrize("value", ["nonsense", "1234", "\x00"])
def test_an_operation_id_that_is_no_guid_answers_400(api, upgrade, value):
    subscription, _ = upgrade
    response = api.get(f"{base(subscription)}/transitions", operationId=value)
    assert response.status_code == 400, response.content


@pytest.mark.rule("TR3")
def test_a_trial_conversion_is_polled_too(api, customer):
    # given
    paid = factories.SkuFactory(name="Microsoft 365 E3", availabilities=[("P1Y", "monthly", "36.00")])
    trial = factories.start_trial(
        customer, factories.trial_offer(trial_of=paid), started=datetime(2026, 11, 10, tzinfo=UTC)
    )
    item = eligibilities(api, trial)[0]
    # when
    answer = post(api, trial, {"toCatalogItemId": item["catalogItemId"], "quantity": 30}).json()
    # then
    assert polled(api, trial, operationId=answer["operationId"])["items"] == [answer]
    assert answer["transitionType"] == "transition_only"


@pytest.mark.rule("R1")
def test_the_scheduled_eligibilities_are_the_renewals_targets_never_an_existing_subscription(api, customer, upgrade):
    # given: the customer also holds the target, which an upgrade now could go into
    subscription, target = upgrade
    factories.SubscriptionFactory(customer=customer, sku=target, quantity=3)
    assert eligibilities(api, subscription)[0]["subscriptionEligibilities"] != []
    # when
    items = eligibilities(api, subscription, eligibilityType="Scheduled")
    # then: the target, at the availability the renewal would renew with (P1Y monthly), not into a subscription
    yearly = target.availabilities.get(term="P1Y", billing_frequency="monthly")
    assert items == [
        {
            "catalogItemId": f"{target.product.product_id}:{target.sku_id}:{yearly.pk}",
            "title": "Office 365 E5",
            "description": "",
            "quantity": 10,
            "eligibilities": [{"isEligible": True, "transitionType": "transition_with_license_transfer", "errors": []}],
            "subscriptionEligibilities": [],
            "attributes": {"objectType": "TransitionEligibility", "etag": None},
        }
    ]
    # and what it names can be scheduled (the Manage renewal service accepts it)
    etag = api.get(base(subscription)).json()["attributes"]["etag"]
    product, sku, availability = items[0]["catalogItemId"].split(":")
    response = api.client.put(
        f"/api/v1{base(subscription)}/scheduledNextTermInstructions",
        json.dumps(
            {
                "product": {
                    "productId": product,
                    "skuId": sku,
                    "availabilityId": availability,
                    "billingCycle": "monthly",
                    "termDuration": "P1Y",
                },
                "quantity": 10,
            }
        ),
        content_type="application/json",
        headers={"Authorization": f"Bearer {api.secret}", "If-Match": etag},
    )
    assert response.status_code == 200, response.content
    assert subscription.scheduled_changes.get().target_sku_id == target.pk


@pytest.mark.rule("R2")
def test_without_auto_renew_the_scheduled_targets_say_why_they_cant_be_scheduled(api, upgrade):
    # given
    subscription, _ = upgrade
    Subscription.objects.filter(pk=subscription.pk).update(auto_renew=False)
    # when
    (item,) = eligibilities(api, subscription, eligibilityType="scheduled")
    # then: the Manage renewal panel's verdict and sentence
    assert item["eligibilities"][0]["isEligible"] is False
    assert item["eligibilities"][0]["errors"] == [
        {"code": 0, "description": "Auto-renew is off: turn it on to schedule changes for the renewal."}
    ]


@pytest.mark.parametrize("value", ["later", "", "\x00", "x" * 30])
def test_an_eligibility_type_other_than_immediate_or_scheduled_answers_400(api, upgrade, value):
    subscription, _ = upgrade
    response = api.get(f"{base(subscription)}/transitionEligibilities", eligibilityType=value)
    assert response.status_code == 400, response.content
    assert response.json()["code"] == 1_000_400


@pytest.mark.rule("TR8")
def test_a_trials_scheduled_targets_are_its_conversions_and_need_auto_renew(api, customer):
    # given: a trial of a paid SKU the customer already holds (an immediate conversion could go into it)
    paid = factories.SkuFactory(name="Microsoft 365 E3", availabilities=[("P1Y", "monthly", "36.00")])
    factories.SubscriptionFactory(customer=customer, sku=paid)
    trial = factories.start_trial(
        customer, factories.trial_offer(trial_of=paid), started=datetime(2026, 11, 10, tzinfo=UTC)
    )
    # when
    (item,) = eligibilities(api, trial, eligibilityType="scheduled")
    # then: the paid SKU, never into the existing subscription
    assert item["title"] == "Microsoft 365 E3"
    assert item["eligibilities"] == [{"isEligible": True, "transitionType": "transition_only", "errors": []}]
    assert item["subscriptionEligibilities"] == []
    # when auto-renew is off: the conversion panel's sentence
    Subscription.objects.filter(pk=trial.pk).update(auto_renew=False)
    (item,) = eligibilities(api, trial, eligibilityType="scheduled")
    assert item["eligibilities"][0]["isEligible"] is False
    assert item["eligibilities"][0]["errors"] == [
        {"code": 0, "description": "Auto-renew is off: turn it on to schedule the conversion for the trial's end."}
    ]


def test_the_polls_queries_do_not_grow_with_the_history(api, upgrade):
    # given: one partial upgrade, then three
    subscription, _ = upgrade
    item = eligibilities(api, subscription)[0]
    post(api, subscription, {"toCatalogItemId": item["catalogItemId"], "quantity": 1})
    polled(api, subscription)
    with CaptureQueriesContext(connection) as one:
        assert polled(api, subscription)["totalCount"] == 1
    for _ in range(2):
        post(api, subscription, {"toCatalogItemId": item["catalogItemId"], "quantity": 1})
    # when
    with CaptureQueriesContext(connection) as three:
        history = polled(api, subscription)
    # then: newest first, in as many queries
    assert history["totalCount"] == 3
    assert [t["events"][0]["timestamp"] for t in history["items"]] == sorted(
        (t["events"][0]["timestamp"] for t in history["items"]), reverse=True
    )
    assert len(three) == len(one)
