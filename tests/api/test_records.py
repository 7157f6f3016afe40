"""Add-ons, billing lines and the activity log through the API (A1, L1, L2)."""

from decimal import Decimal

import pytest

from tests import factories


def subscription_path(subscription):
    return f"/customers/{subscription.customer_id}/subscriptions/{subscription.pk}"


def raise_quantity(api, subscription, quantity):
    etag = api.get(subscription_path(subscription)).json()["attributes"]["etag"]
    response = api.patch(subscription_path(subscription), {"quantity": quantity}, headers={"If-Match": etag})
    assert response.status_code == 200, response.content


@pytest.mark.rule("L2")
def test_a_raise_is_a_billing_line_with_its_arithmetic(api, subscription):
    raise_quantity(api, subscription, 12)
    body = api.get(subscription_path(subscription) + "/billingLines").json()
    assert body["totalCount"] == subscription.billing_lines.count() >= 1
    line = body["items"][-1]
    assert line["quantity"] == 2
    assert Decimal(line["amount"]) == subscription.billing_lines.order_by("created_at", "pk").last().amount
    assert line["explanation"]


@pytest.mark.rule("L1")
def test_the_activity_log_pages_newest_first(api, subscription):
    for quantity in (11, 12, 13):
        raise_quantity(api, subscription, quantity)
    url = f"/customers/{subscription.customer_id}/activityLog"
    first = api.get(url, size=2).json()
    assert [e["after"].get("quantity") for e in first["items"]] == [13, 12]
    assert first["items"][0]["actor"]
    rest = api.get(url, headers={"MS-ContinuationToken": first["continuationToken"]}, size=2).json()
    assert rest["items"][0]["after"].get("quantity") == 11
    assert api.get(url, headers={"MS-ContinuationToken": "W10"}).status_code == 400
    assert api.get(url, headers={"MS-ContinuationToken": "WyIyMDI2LTAxLTAxIiwiMSJd"}).status_code == 400  # naive


@pytest.mark.rule("A1")
def test_a_base_lists_its_add_ons(api, customer, subscription):
    addon = factories.SubscriptionFactory(customer=customer, base_subscription=subscription, quantity=3)
    factories.SubscriptionFactory(customer=customer, quantity=4)  # not an add-on of it
    body = api.get(subscription_path(subscription) + "/addons").json()
    assert [i["id"] for i in body["items"]] == [str(addon.pk)]
    assert body["items"][0]["parentSubscriptionId"] == str(subscription.pk)
