"""Scheduled next-term instructions through the API (R1–R3): the Manage renewal panel's service, If-Match on the
subscription's etag, and a refusal that changes nothing."""

import json

import pytest

from subscriptions.models import ScheduledChange
from tests import factories


def url(subscription):
    return f"/customers/{subscription.customer_id}/subscriptions/{subscription.pk}/scheduledNextTermInstructions"


@pytest.fixture
def renewing(customer):
    sku = factories.SkuFactory(availabilities=[("P1Y", "monthly", "10.00"), ("P1Y", "annual", "110.00")])
    return factories.SubscriptionFactory(customer=customer, sku=sku, quantity=10)


def current(api, subscription):
    response = api.get(url(subscription))
    assert response.status_code == 200, response.content
    return response.json()


def put(api, subscription, body, etag=None):
    etag = etag or current(api, subscription)["attributes"]["etag"]
    return api.client.put(
        f"/api/v1{url(subscription)}",
        json.dumps(body),
        content_type="application/json",
        headers={"Authorization": f"Bearer {api.secret}", "If-Match": etag},
    )


@pytest.mark.rule("R1")
def test_a_put_schedules_the_quantity_and_billing_cycle_for_the_renewal(api, renewing):
    body = current(api, renewing)
    assert body["changes"] == [] and body["quantity"] == 10
    body["quantity"] = 15
    body["product"]["billingCycle"] = "Annual"  # read in any case
    response = put(api, renewing, body)
    assert response.status_code == 200, response.content
    assert response.json()["quantity"] == 15
    assert response.json()["product"]["billingCycle"] == "annual"
    assert len(response.json()["changes"]) == 2
    assert renewing.scheduled_changes.count() == 2
    got = api.get(f"/customers/{renewing.customer_id}/subscriptions/{renewing.pk}").json()
    assert got["scheduledNextTermInstructions"]["quantity"] == 15
    assert renewing.quantity == 10  # now: unchanged until the renewal (N4)


@pytest.mark.rule("R3")
def test_a_delete_removes_every_scheduled_change(api, renewing):
    body = current(api, renewing)
    body["quantity"] = 12
    assert put(api, renewing, body).status_code == 200
    etag = current(api, renewing)["attributes"]["etag"]
    headers = {"Authorization": f"Bearer {api.secret}", "If-Match": etag}
    response = api.client.delete(f"/api/v1{url(renewing)}", headers=headers)
    assert response.status_code == 204, response.content
    assert not ScheduledChange.objects.filter(subscription=renewing).exists()
    # nothing left: a second delete with the current etag is refused by the service, saying so
    etag = current(api, renewing)["attributes"]["etag"]
    again = api.client.delete(f"/api/v1{url(renewing)}", headers={**headers, "If-Match": etag})
    assert again.status_code == 422
    assert again.json()["ruleId"] == "R1"


@pytest.mark.rule("R2")
def test_with_auto_renew_off_nothing_can_be_scheduled_and_nothing_changes(api, customer):
    subscription = factories.SubscriptionFactory(customer=customer, auto_renew=False)
    body = current(api, subscription)
    body["quantity"] = 12
    response = put(api, subscription, body)
    assert response.status_code == 422
    assert response.json()["ruleId"] == "R2"
    assert not subscription.scheduled_changes.exists()


def test_a_stale_etag_unknown_offer_or_enum_is_refused_and_nothing_changes(api, renewing):
    body = current(api, renewing)
    stale = body["attributes"]["etag"]
    body["quantity"] = 12
    assert put(api, renewing, body).status_code == 200
    body["quantity"] = 13
    assert put(api, renewing, body, etag=stale).status_code == 412
    fresh = current(api, renewing)
    for broken in (
        {**fresh, "product": {**fresh["product"], "skuId": "nope"}},
        {**fresh, "product": {**fresh["product"], "termDuration": "P9Y"}},
        {**fresh, "product": {**fresh["product"], "billingCycle": "weekly"}},
        {**fresh, "quantity": 0},
        {**fresh, "colour": "blue"},
    ):
        assert put(api, renewing, broken).status_code == 400, broken
    assert [c.quantity for c in renewing.scheduled_changes.all() if c.quantity] == [12]


def test_a_support_agent_can_read_but_not_schedule(token_for, direct_partner, renewing):
    support = token_for(factories.staff(direct_partner, "support_agent"))
    body = current(support, renewing)
    body["quantity"] = 12
    assert put(support, renewing, body).status_code == 403
    assert not renewing.scheduled_changes.exists()


@pytest.mark.rule("R1")
def test_a_patch_schedules_the_renewal_as_partner_center_does(api, renewing):
    path = f"/customers/{renewing.customer_id}/subscriptions/{renewing.pk}"
    resource = api.get(path).json()
    assert resource["scheduledNextTermInstructions"] is None
    instructions = {
        k: v for k, v in current(api, renewing).items() if k in ("product", "quantity", "customTermEndDate")
    }
    instructions["quantity"] = 14
    response = api.patch(
        path,
        {**resource, "scheduledNextTermInstructions": instructions},
        headers={"If-Match": resource["attributes"]["etag"]},
    )
    assert response.status_code == 200, response.content
    assert response.json()["scheduledNextTermInstructions"]["quantity"] == 14
    assert [c.quantity for c in renewing.scheduled_changes.all()] == [14]
    # sent back as read: nothing changes (the service would refuse "nothing to schedule")
    again = response.json()
    assert api.patch(path, again, headers={"If-Match": again["attributes"]["etag"]}).status_code == 200
    # null removes them
    again = api.get(path).json()
    removed = api.patch(
        path, {"scheduledNextTermInstructions": None}, headers={"If-Match": again["attributes"]["etag"]}
    )
    assert removed.status_code == 200, removed.content
    assert not renewing.scheduled_changes.exists()
