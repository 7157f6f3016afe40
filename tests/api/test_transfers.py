"""Transfers through the API (TF2–TF4), as Partner Center's new-commerce TransferEntity: the target files it, the
source completes it with the subscriptions it picks, either side ends it while pending."""

import pytest

from subscriptions.models import Subscription, TransferRequest
from tests import factories
from tests.helpers import database_state
from tests.subscriptions.test_transfers import related


@pytest.fixture
def target(db):
    partner = factories.PartnerFactory(kind="direct_bill", name="Fabrikam Cloud", partner_id="7200001")
    return partner, factories.staff(partner, "admin_agent")


@pytest.fixture
def subs(customer):
    return [
        factories.SubscriptionFactory(customer=customer, quantity=10),
        factories.SubscriptionFactory(customer=customer, quantity=4, status="suspended"),
    ]


@pytest.fixture
def filed(token_for, target, customer, direct_partner, subs, now):
    """The target partner files the request through the API for its own record of the customer (after TF1)."""
    _, target_user = target
    target_api = token_for(target_user)
    theirs = related(target_user, customer, now).customer
    response = target_api.client.post(
        f"/api/v1/customers/{theirs.pk}/transfers",
        {"sourcePartnerId": direct_partner.partner_id, "targetPartnerEmailId": "it@example.com"},
        content_type="application/json",
        headers={"Authorization": f"Bearer {target_api.secret}"},
    )
    assert response.status_code == 201, response.content
    return target_api, theirs, response.json()


def patch(api, customer, transfer, body):
    return api.patch(
        f"/customers/{customer.pk}/transfers/{transfer['id']}",
        body,
        headers={"If-Match": transfer["attributes"]["etag"]},
    )


@pytest.mark.rule("TF2")
def test_the_request_is_filed_and_the_source_sees_what_it_may_pick(filed, api, customer, subs):
    _, _, transfer = filed
    assert transfer["status"] == "Active" and transfer["transferType"] == "5"
    seen = api.get(f"/customers/{customer.pk}/transfers").json()["items"]
    assert [t["id"] for t in seen] == [transfer["id"]]
    assert {line["subscriptionId"] for line in seen[0]["lineItems"]} == {str(s.pk) for s in subs}


@pytest.mark.rule("TF4")
def test_the_source_completes_it_and_the_picked_subscriptions_move_in_one_go(filed, api, customer, subs):
    _, theirs, _ = filed
    transfer = api.get(f"/customers/{customer.pk}/transfers").json()["items"][0]
    response = patch(
        api, customer, transfer, {"status": "Complete", "lineItems": [{"subscriptionId": str(subs[0].pk)}]}
    )
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "Complete"
    subs[0].refresh_from_db()
    assert subs[0].status == "deleted"
    assert Subscription.objects.filter(customer=theirs, status="active").count() == 1


@pytest.mark.rule("TF4")
def test_the_target_cannot_complete_it_and_a_stale_etag_changes_nothing(filed, api, customer, subs):
    target_api, theirs, transfer = filed
    before = database_state()
    body = {"status": "Complete", "lineItems": [{"subscriptionId": str(subs[0].pk)}]}
    assert patch(target_api, theirs, transfer, body).status_code == 403
    stale = {**transfer, "attributes": {**transfer["attributes"], "etag": "eyJpZCI6IngifQ=="}}
    assert patch(api, customer, stale, body).status_code == 412
    assert database_state() == before


def test_the_target_withdraws_it_and_nothing_moves(filed, customer, subs):
    target_api, theirs, transfer = filed
    response = patch(target_api, theirs, transfer, {"status": "Cancel"})
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "Cancel"
    assert TransferRequest.objects.get(pk=transfer["id"]).status == "cancelled"
    assert all(Subscription.objects.get(pk=s.pk).status == s.status for s in subs)


def test_another_partners_transfer_is_404_and_bad_bodies_400(filed, token_for, customer):
    _, _, transfer = filed
    stranger = token_for(factories.staff(factories.PartnerFactory(kind="direct_bill"), "admin_agent"))
    assert stranger.get(f"/customers/{customer.pk}/transfers/{transfer['id']}").status_code == 404
    target_api, theirs, _ = filed
    for body in ({"status": "Explode"}, {"status": "Complete", "lineItems": [{"nope": 1}]}, {}):
        assert patch(target_api, theirs, transfer, body).status_code == 400, body


@pytest.mark.rule("T3")
def test_the_target_sees_nothing_of_the_sources_subscriptions_while_pending(filed):
    target_api, theirs, transfer = filed
    assert transfer["lineItems"] == []
    assert target_api.get(f"/customers/{theirs.pk}/transfers/{transfer['id']}").json()["lineItems"] == []


@pytest.mark.rule("TF3")
def test_a_transfer_line_restating_another_quantity_answers_400_and_moves_nothing(api, filed, subs):
    _target_api, _theirs, transfer = filed
    before = database_state()
    line = {"subscriptionId": str(subs[0].pk), "quantity": 3}
    response = patch(api, subs[0].customer, transfer, {"status": "Complete", "lineItems": [line]})
    assert response.status_code == 400, response.content
    assert response.json()["description"].startswith("lineItems[0].quantity is 10")
    assert database_state() == before
    # and the same line with the subscription's own quantity moves it
    line["quantity"] = 10
    done = patch(api, subs[0].customer, transfer, {"status": "Complete", "lineItems": [line]})
    assert done.status_code == 200, done.content
    assert done.json()["status"] == "Complete"


@pytest.mark.rule("TF4")
@pytest.mark.rule("T3")
def test_a_completed_transfer_shows_each_side_its_own_subscriptions_and_no_id_of_the_others(filed, api, customer, subs):
    # given a transfer completed by the source partner with one of its subscriptions
    target_api, theirs, _ = filed
    transfer = api.get(f"/customers/{customer.pk}/transfers").json()["items"][0]
    done = patch(api, customer, transfer, {"status": "Complete", "lineItems": [{"subscriptionId": str(subs[0].pk)}]})
    assert done.status_code == 200, done.content
    # then the source sees the subscription it gave up
    assert [line["subscriptionId"] for line in done.json()["lineItems"]] == [str(subs[0].pk)]
    # and the target sees the one it received, its own (it opens), never the source's id
    seen = target_api.get(f"/customers/{theirs.pk}/transfers/{transfer['id']}").json()
    received = Subscription.objects.get(customer=theirs)
    assert [line["subscriptionId"] for line in seen["lineItems"]] == [str(received.pk)]
    assert target_api.get(f"/customers/{theirs.pk}/subscriptions/{received.pk}").status_code == 200
    # and neither side's activity log names the other's record
    target_log = target_api.get(f"/customers/{theirs.pk}/activityLog").content.decode()
    source_log = api.get(f"/customers/{customer.pk}/activityLog").content.decode()
    assert str(subs[0].pk) not in target_log and str(received.pk) not in source_log
