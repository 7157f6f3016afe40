"""The cancellation windows' worked examples through the API (X1 at its 168 h boundary, X3's 72 h for ISV SaaS),
each refusal changing nothing."""

from datetime import timedelta
from decimal import Decimal

import pytest

from subscriptions.models import Subscription
from tests import factories
from tests.helpers import database_state


def cancel(api, subscription):
    path = f"/customers/{subscription.customer_id}/subscriptions/{subscription.pk}"
    etag = api.get(path).json()["attributes"]["etag"]
    return api.patch(path, {"status": "deleted"}, headers={"If-Match": etag})


@pytest.mark.rule("X1")
@pytest.mark.parametrize(
    ("age", "allowed"), [(timedelta(hours=168) - timedelta(seconds=1), True), (timedelta(hours=168), False)]
)
def test_x1_a_subscription_cancels_until_168_hours_after_its_term_starts(api, customer, now, age, allowed):
    subscription = factories.SubscriptionFactory(customer=customer, term_start=now - age)
    before = database_state()
    response = cancel(api, subscription)
    if allowed:
        assert response.status_code == 200, response.content
        assert response.json()["status"] == "deleted"
    else:
        assert (response.status_code, response.json()["code"], response.json()["ruleId"]) == (400, 900117, "X1")
        assert database_state() == before


@pytest.mark.rule("X3")
def test_x3_an_isv_subscription_is_refunded_in_full_within_72_hours_and_refused_after(api, customer, saas, now):
    recent = factories.subscribe(
        customer, saas, started=now - timedelta(hours=48), setup_confirmed_at=now - timedelta(hours=47)
    )
    factories.BillingLineFactory(subscription=recent)
    response = cancel(api, recent)
    assert response.status_code == 200, response.content
    lines = api.get(f"/customers/{customer.pk}/subscriptions/{recent.pk}/billingLines").json()["items"]
    assert [Decimal(line["amount"]) for line in lines] == [Decimal("80.00"), Decimal("-80.00")]
    older = factories.subscribe(
        factories.CustomerFactory(partner=customer.partner), saas, started=now - timedelta(hours=72)
    )
    before = database_state()
    refused = cancel(api, older)
    assert (refused.status_code, refused.json()["code"], refused.json()["ruleId"]) == (400, 900213, "X3")
    assert database_state() == before
    assert Subscription.objects.get(pk=older.pk).status == "active"
