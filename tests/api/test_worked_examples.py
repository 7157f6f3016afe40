"""Worked examples of RULES.md through the API, each refusal changing nothing: Q2 at its 168 h boundary and U2's
unsupported EMS E3 → EMS E5 (K7's 250 base licenses: test_cart_line_refusals.py; X1, X3: test_cancel_windows.py)."""

from datetime import timedelta

import pytest

from api import wire
from catalog.models import UpgradePath
from subscriptions.models import Subscription
from tests import factories
from tests.api.test_transitions import base, post, target_item
from tests.helpers import database_state


@pytest.mark.rule("Q2")
@pytest.mark.parametrize(
    ("age", "allowed"), [(timedelta(hours=168) - timedelta(seconds=1), True), (timedelta(hours=168), False)]
)
def test_q2_licenses_are_removable_until_168_hours_after_they_were_added(api, customer, now, age, allowed):
    # given 10 licenses bought `age` ago (their window opened then)
    subscription = factories.SubscriptionFactory(customer=customer, quantity=10, term_start=now - age)
    path = base(subscription)
    read = api.get(path).json()
    before = database_state()
    # when one is removed
    response = api.patch(path, {"quantity": 9}, headers={"If-Match": read["attributes"]["etag"]})
    if allowed:
        # then one second before 168 h it is (the batch still listed as refundable until its time)
        assert read["refundableQuantity"]["totalQuantity"] == 10
        assert response.status_code == 200, response.content
        assert response.json()["quantity"] == 9
    else:
        # and at 168 h it is refused (nothing is listed as refundable) and nothing changes
        assert read["refundableQuantity"]["totalQuantity"] == 0
        assert (response.status_code, response.json()["code"], response.json()["ruleId"]) == (400, 800090, "Q2")
        assert database_state() == before
        assert Subscription.objects.get(pk=subscription.pk).quantity == 10


@pytest.mark.rule("U2")
def test_u2_ems_e3_to_ems_e5_is_never_offered_nor_accepted(api, customer):
    # given EMS E3 held, with the unsupported path to EMS E5 in the matrix (and a supported one to another offer)
    ems_e3 = factories.SkuFactory(
        name="Enterprise Mobility + Security E3", availabilities=[("P1Y", "monthly", "10.60")]
    )
    ems_e5 = factories.SkuFactory(
        name="Enterprise Mobility + Security E5", availabilities=[("P1Y", "monthly", "16.40")]
    )
    m365_e3 = factories.SkuFactory(name="Microsoft 365 E3", availabilities=[("P1Y", "monthly", "36.00")])
    UpgradePath.objects.create(source=ems_e3, target=ems_e5, supported=False, note="U2")
    UpgradePath.objects.create(source=ems_e3, target=m365_e3)
    subscription = factories.SubscriptionFactory(customer=customer, sku=ems_e3, quantity=10)
    # when its eligibilities are read, then EMS E5 is not among them
    assert [item["title"] for item in target_item(api, subscription)] == ["Microsoft 365 E3"]
    # and a transition to it is refused by U2, changing nothing
    way = ems_e5.availabilities.get()
    offer = f"{ems_e5.product.product_id}:{wire.sku_part(ems_e5)}:{way.pk}"
    before = database_state()
    response = post(api, subscription, {"toCatalogItemId": offer, "quantity": 10})
    assert (response.status_code, response.json()["ruleId"]) == (422, "U2")
    assert database_state() == before
