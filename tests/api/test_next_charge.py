"""The billing frequency from the next charge through the API (N7): PATCH nextChargeInstructions, as Partner Center
has it, through the Billing frequency panel's service."""

from datetime import UTC, datetime

import pytest

from tests import factories

STARTED = datetime(2026, 10, 10, 9, 0, tzinfo=UTC)


@pytest.fixture
def subscription(customer):
    e3 = factories.SkuFactory(
        name="Microsoft 365 E3", availabilities=[("P1Y", "monthly", "10.00"), ("P1Y", "annual", "114.00")]
    )
    return factories.subscribe(customer, e3, started=STARTED)


def path(subscription):
    return f"/customers/{subscription.customer_id}/subscriptions/{subscription.pk}"


def patch(api, subscription, body):
    etag = api.get(path(subscription)).json()["attributes"]["etag"]
    return api.patch(path(subscription), body, headers={"If-Match": etag})


@pytest.mark.rule("N7")
def test_the_next_charge_frequency_is_set_shown_and_removed(api, subscription):
    response = patch(api, subscription, {"nextChargeInstructions": {"product": {"billingCycle": "Annual"}}})
    assert response.status_code == 200, response.content
    instructions = response.json()["nextChargeInstructions"]
    assert instructions["product"]["billingCycle"] == "annual"
    assert instructions["chargeDate"] == "2026-12-10T00:00:00Z"
    subscription.refresh_from_db()
    assert (subscription.next_charge_frequency, subscription.billing_frequency) == ("annual", "monthly")
    # the resource sent back as read changes nothing
    resource = api.get(path(subscription)).json()
    again = api.patch(path(subscription), resource, headers={"If-Match": resource["attributes"]["etag"]})
    assert again.status_code == 200
    # null removes it
    removed = patch(api, subscription, {"nextChargeInstructions": None})
    assert removed.status_code == 200, removed.content
    assert removed.json()["nextChargeInstructions"] is None
    subscription.refresh_from_db()
    assert subscription.next_charge_frequency == ""


@pytest.mark.rule("N7")
def test_a_frequency_it_is_not_sold_with_is_refused_and_nothing_changes(api, subscription):
    for body in (
        {"nextChargeInstructions": {"product": {"billingCycle": "one_time"}}},
        {"nextChargeInstructions": {"product": {"billingCycle": "weekly"}}},
        {"nextChargeInstructions": {"product": {}}},
        {"nextChargeInstructions": "annual"},
    ):
        response = patch(api, subscription, body)
        assert response.status_code in (400, 422), (body, response.content)
        subscription.refresh_from_db()
        assert subscription.next_charge_frequency == ""
