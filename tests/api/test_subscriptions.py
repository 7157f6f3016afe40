"""The API's subscriptions: Partner Center's resource, PATCH through the pages' services, the protocol (If-Match,
MS-RequestId, MS-CorrelationId) and the envelope of a refusal."""

from datetime import timedelta

import pytest

from api import tokens
from api.models import PartnerRate, RequestRecord
from subscriptions.lifecycle import run_lifecycle
from subscriptions.models import Subscription
from subscriptions.states import Status
from tests import factories


def path(subscription):
    return f"/customers/{subscription.customer_id}/subscriptions/{subscription.pk}"


def read(api, subscription):
    response = api.get(path(subscription))
    assert response.status_code == 200, response.content
    return response.json()


def snapshot(subscription):
    subscription.refresh_from_db()
    return (
        subscription.quantity,
        subscription.status,
        subscription.auto_renew,
        subscription.friendly_name,
        subscription.version,
    )


def test_a_subscription_reads_as_partner_centers_resource(api, subscription, now):
    body = read(api, subscription)
    assert body["id"] == str(subscription.pk)
    assert body["status"] == "active"
    assert body["quantity"] == 10
    assert body["termDuration"] == subscription.term
    assert body["billingCycle"] == subscription.billing_frequency
    assert body["autoRenewEnabled"] is True
    assert body["offerName"] == subscription.sku.name
    assert body["offerId"].endswith(f":{subscription.availability_id}")
    assert body["commitmentEndDate"] == f"{subscription.term_end:%Y-%m-%d}T00:00:00Z"
    # X1: 168 hours from the start of the term, bought a day ago
    assert (
        body["cancellationAllowedUntilDate"] == f"{subscription.term_start + timedelta(hours=168):%Y-%m-%dT%H:%M:%SZ}"
    )
    assert body["refundableQuantity"]["totalQuantity"] == 10
    assert body["attributes"]["objectType"] == "Subscription"
    assert body["attributes"]["etag"]
    assert "cancel" in body["actions"] and "remove_licenses" in body["actions"]


def test_without_a_token_the_api_answers_401_in_the_envelope(client, subscription):
    response = client.get(f"/api/v1{path(subscription)}")
    assert response.status_code == 401
    assert response.json()["code"] == 1_000_401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_signed_in_session_does_not_authenticate_the_api(signed_in, subscription):
    assert signed_in.get(f"/api/v1{path(subscription)}").status_code == 401


def test_a_revoked_or_expired_token_is_refused(client, sales, subscription, now):
    token, secret = tokens.create_token(sales, name="old", expires_at=now + timedelta(days=1), now=now)
    headers = {"Authorization": f"Bearer {secret}"}
    assert client.get(f"/api/v1{path(subscription)}", headers=headers).status_code == 200
    token.refresh_from_db()
    assert token.last_used_at == now
    tokens.revoke_token(sales, token.pk, now=now)
    assert client.get(f"/api/v1{path(subscription)}", headers=headers).status_code == 401
    _, later = tokens.create_token(sales, name="short", expires_at=now - timedelta(seconds=1), now=now)
    assert client.get(f"/api/v1{path(subscription)}", headers={"Authorization": f"Bearer {later}"}).status_code == 401


def test_another_partners_subscription_answers_404(token_for, subscription):
    stranger = factories.staff(factories.PartnerFactory(kind="direct_bill"), "admin_agent")
    response = token_for(stranger).get(path(subscription))
    assert response.status_code == 404
    assert response.json()["source"] == "CSPPortal"
    other = token_for(stranger).patch(path(subscription), {"quantity": 11}, headers={"If-Match": "x"})
    assert other.status_code == 404
    assert snapshot(subscription)[0] == 10


def test_the_list_of_a_customer_pages_with_a_continuation_token(api, customer, now):
    made = [factories.SubscriptionFactory(customer=customer, friendly_name=f"Sub {i:02d}") for i in range(5)]
    first = api.get(f"/customers/{customer.pk}/subscriptions", size=2)
    assert first.status_code == 200
    page = first.json()
    assert page["totalCount"] == 2
    token = page["links"]["next"]["headers"][0]["value"]
    assert token == page["continuationToken"]
    seen = [i["friendlyName"] for i in page["items"]]
    while token:
        page = api.get(
            f"/customers/{customer.pk}/subscriptions", headers={"MS-ContinuationToken": token}, size=2
        ).json()
        seen += [i["friendlyName"] for i in page["items"]]
        token = page["continuationToken"]
    assert seen == sorted(s.friendly_name for s in made)


def test_a_tampered_continuation_token_answers_400(api, customer):
    response = api.get(f"/customers/{customer.pk}/subscriptions", headers={"MS-ContinuationToken": "!!"})
    assert response.status_code == 400


def test_the_query_count_of_a_page_does_not_grow_with_its_size(api, customer, django_assert_max_num_queries):
    for _ in range(3):
        factories.SubscriptionFactory(customer=customer)
    with django_assert_max_num_queries(20) as small:
        api.get(f"/customers/{customer.pk}/subscriptions")
    for _ in range(20):
        factories.SubscriptionFactory(customer=customer)
    with django_assert_max_num_queries(len(small.captured_queries)):
        assert len(api.get(f"/customers/{customer.pk}/subscriptions").json()["items"]) == 23


# --- PATCH ----------------------------------------------------------------------------------------------------


def patch(api, subscription, body, *, etag=None, headers=None):
    etag = etag if etag is not None else read(api, subscription)["attributes"]["etag"]
    return api.patch(path(subscription), body, headers={"If-Match": etag, **(headers or {})})


def test_a_patch_raises_the_quantity_and_renames_in_one_go(api, subscription):
    response = patch(api, subscription, {"quantity": 12, "friendlyName": "Sales team"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["quantity"], body["friendlyName"]) == (12, "Sales team")
    assert snapshot(subscription)[:2] == (12, Status.ACTIVE)


def test_the_whole_resource_sent_back_as_read_changes_only_what_differs(api, subscription):
    resource = read(api, subscription)
    resource["Quantity"] = 11  # Partner Center reads field names in any case
    del resource["quantity"]
    response = api.patch(path(subscription), resource, headers={"If-Match": resource["attributes"]["etag"]})
    assert response.status_code == 200, response.content
    assert snapshot(subscription)[:3] == (11, Status.ACTIVE, True)


def test_a_patch_without_if_match_or_with_a_stale_one_answers_412_and_changes_nothing(api, subscription):
    before = snapshot(subscription)
    old = read(api, subscription)["attributes"]["etag"]
    assert api.patch(path(subscription), {"quantity": 12}).status_code == 412
    assert patch(api, subscription, {"friendlyName": "First"}).status_code == 200
    stale = patch(api, subscription, {"quantity": 12}, etag=old)
    assert stale.status_code == 412
    assert stale.json()["code"] == 2055
    assert snapshot(subscription)[0] == before[0]


@pytest.mark.rule("Q2")
def test_removing_more_than_is_removable_answers_partner_centers_code_and_changes_nothing(api, customer, now):
    subscription = factories.SubscriptionFactory(customer=customer, quantity=10)  # bought 30 days ago: window closed
    before = snapshot(subscription)
    response = patch(api, subscription, {"quantity": 9, "friendlyName": "Renamed too"})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == 800090
    assert body["ruleId"] in {"Q2", "Q4"}
    assert "remov" in body["description"].lower()
    assert snapshot(subscription) == before  # the rename in the same PATCH is undone with it


@pytest.mark.rule("Q2")
def test_removing_licenses_inside_their_window_is_refunded(api, subscription):
    response = patch(api, subscription, {"quantity": 4})
    assert response.status_code == 200, response.content
    assert response.json()["refundableQuantity"]["totalQuantity"] == 4


@pytest.mark.rule("X1")
def test_cancelling_after_the_window_answers_900117_and_changes_nothing(api, customer):
    subscription = factories.SubscriptionFactory(customer=customer)  # term started 30 days ago
    before = snapshot(subscription)
    response = patch(api, subscription, {"status": "deleted"})
    assert response.status_code == 400
    assert response.json()["code"] == 900117
    assert response.json()["ruleId"] == "X1"
    assert snapshot(subscription) == before


@pytest.mark.rule("X1")
def test_cancelling_inside_the_window_deletes_it(api, subscription):
    response = patch(api, subscription, {"status": "deleted"})
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "deleted"
    assert snapshot(subscription)[1] == Status.DELETED


@pytest.mark.rule("N6")
def test_a_change_while_the_renewal_is_pending_answers_409_with_retry_after(api, customer):
    subscription = factories.SubscriptionFactory(customer=customer, renewal_pending=True)
    before = snapshot(subscription)
    response = patch(api, subscription, {"quantity": 11})
    assert response.status_code == 409
    assert response.headers["Retry-After"] == "120"
    assert response.json()["ruleId"] == "N6"
    assert snapshot(subscription) == before


@pytest.mark.rule("P4")
def test_suspending_turns_auto_renew_off_and_reactivating_keeps_it_off(token_for, direct_partner, subscription):
    billing = token_for(factories.staff(direct_partner, "billing_admin"))
    assert patch(billing, subscription, {"status": "suspended"}).json()["autoRenewEnabled"] is False
    body = patch(billing, subscription, {"status": "active"}).json()
    assert (body["status"], body["autoRenewEnabled"]) == ("active", False)


def test_a_support_agent_may_read_but_every_write_answers_403(token_for, direct_partner, subscription):
    support = token_for(factories.staff(direct_partner, "support_agent"))
    before = snapshot(subscription)
    for body in (
        {"quantity": 11},
        {"friendlyName": "x"},
        {"autoRenewEnabled": False},
        {"status": "suspended"},
        {"status": "deleted"},
    ):
        response = patch(support, subscription, body)
        assert response.status_code == 403, (body, response.content)
    assert snapshot(subscription) == before


@pytest.mark.parametrize(
    "body",
    [
        {"quantity": -1},
        {"quantity": 10**12},
        {"quantity": "many"},
        {"friendlyName": "x" * 201},
        {"status": "expired"},
        {"colour": "blue"},
        [1, 2],
    ],
)
def test_bad_bodies_answer_400_and_change_nothing(api, subscription, body):
    before = snapshot(subscription)
    response = patch(api, subscription, body)
    assert response.status_code == 400, response.content
    assert response.json()["description"]
    assert snapshot(subscription) == before


def test_malformed_json_answers_400(api, subscription):
    etag = read(api, subscription)["attributes"]["etag"]
    response = api.client.patch(
        f"/api/v1{path(subscription)}",
        "{not json",
        content_type="application/json",
        headers={"Authorization": f"Bearer {api.secret}", "If-Match": etag},
    )
    assert response.status_code == 400


# --- MS-RequestId, MS-CorrelationId -----------------------------------------------------------------------------


def test_a_retry_with_the_same_request_id_replays_the_first_answer_and_acts_once(api, subscription):
    etag = read(api, subscription)["attributes"]["etag"]
    headers = {"MS-RequestId": "6b0f0f3c-retry", "If-Match": etag}
    first = api.patch(path(subscription), {"quantity": 13}, headers=headers)
    again = api.patch(path(subscription), {"quantity": 13}, headers=headers)
    assert first.status_code == again.status_code == 200
    assert first.content == again.content
    assert again.headers["MS-Replayed"] == "true"
    assert Subscription.objects.get(pk=subscription.pk).quantity == 13
    assert subscription.billing_lines.count() == 1  # charged once


def test_a_request_id_reused_for_another_request_is_refused(api, subscription):
    etag = read(api, subscription)["attributes"]["etag"]
    api.patch(path(subscription), {"quantity": 13}, headers={"MS-RequestId": "same", "If-Match": etag})
    other = api.patch(path(subscription), {"quantity": 14}, headers={"MS-RequestId": "same", "If-Match": etag})
    assert other.status_code == 422
    assert Subscription.objects.get(pk=subscription.pk).quantity == 13


def test_each_lifecycle_pass_forgets_the_answers_kept_past_48_hours(api, subscription, now):
    etag = read(api, subscription)["attributes"]["etag"]
    api.patch(path(subscription), {"quantity": 13}, headers={"MS-RequestId": "kept", "If-Match": etag})
    kept = RequestRecord.objects.get(request_id="kept")
    run_lifecycle(kept.created_at + timedelta(hours=47))
    assert RequestRecord.objects.filter(pk=kept.pk).exists()  # replayed for at least 24 hours
    run_lifecycle(kept.created_at + timedelta(hours=48, seconds=1))
    assert not RequestRecord.objects.filter(pk=kept.pk).exists()


def test_the_correlation_id_is_echoed_and_a_request_id_made_up(api, subscription):
    response = api.get(path(subscription), headers={"MS-CorrelationId": "corr-1"})
    assert response.headers["MS-CorrelationId"] == "corr-1"
    assert len(response.headers["MS-RequestId"]) == 36


def test_past_the_partners_rate_the_api_answers_429_with_retry_after(api, subscription, direct_partner):
    PartnerRate.objects.create(partner=direct_partner, requests_per_minute=2)
    assert api.get(path(subscription)).status_code == 200
    assert api.get(path(subscription)).status_code == 200
    throttled = api.get(path(subscription))
    assert throttled.status_code == 429
    assert int(throttled.headers["Retry-After"]) >= 1
    assert throttled.json()["statusCode"] == 429


def test_a_nul_character_in_any_text_is_refused_and_nothing_changes(api, subscription):
    before = snapshot(subscription)
    assert patch(api, subscription, {"friendlyName": "Sales\x00team"}).status_code == 400
    assert api.get(f"/customers/{subscription.customer_id}/subscriptions", offer_id="a\x00b").status_code == 400
    assert snapshot(subscription) == before


def test_a_field_a_patch_cant_change_is_refused_not_dropped(api, subscription):
    before = snapshot(subscription)
    resource = read(api, subscription)
    for field, value in (("termDuration", "P3Y"), ("billingCycle", "annual"), ("offerId", "X:Y:1")):
        response = api.patch(
            path(subscription),
            {**resource, field: value, "quantity": 12},
            headers={"If-Match": resource["attributes"]["etag"]},
        )
        assert response.status_code == 400, (field, response.content)
        assert field in response.json()["description"]
    assert snapshot(subscription) == before


@pytest.mark.rule("N6")
def test_a_409_is_not_replayed_so_the_retry_two_minutes_later_acts(api, customer):
    subscription = factories.SubscriptionFactory(customer=customer, renewal_pending=True, quantity=10)
    etag = read(api, subscription)["attributes"]["etag"]
    headers = {"MS-RequestId": "retry-after-renewal", "If-Match": etag}
    assert api.patch(path(subscription), {"quantity": 11}, headers=headers).status_code == 409
    Subscription.objects.filter(pk=subscription.pk).update(renewal_pending=False)  # the renewal completed
    again = api.patch(path(subscription), {"quantity": 11}, headers=headers)
    assert again.status_code == 200, again.content
    assert "MS-Replayed" not in again.headers
    assert Subscription.objects.get(pk=subscription.pk).quantity == 11


@pytest.mark.rule("S1")
def test_the_lists_filter_and_sort_as_the_pages_do_and_refuse_what_the_form_refuses(api, customer, now):
    for quantity in (3, 7, 5):
        factories.SubscriptionFactory(customer=customer, quantity=quantity)
    factories.SubscriptionFactory(customer=customer, quantity=9, suspended=True)
    url = f"/customers/{customer.pk}/subscriptions"
    assert [i["quantity"] for i in api.get(url, sort="-quantity").json()["items"]] == [9, 7, 5, 3]
    assert [i["quantity"] for i in api.get(url, status="suspended").json()["items"]] == [9]
    first = api.get(url, sort="quantity", status="active", size=2).json()
    assert [i["quantity"] for i in first["items"]] == [3, 5]
    assert "sort=quantity" in first["links"]["next"]["uri"] and "status=active" in first["links"]["next"]["uri"]
    rest = api.get(
        url, sort="quantity", status="active", size=2, headers={"MS-ContinuationToken": first["continuationToken"]}
    )
    assert [i["quantity"] for i in rest.json()["items"]] == [7]
    for bad in ({"status": "gone"}, {"sort": "colour"}, {"sort": "customer"}):
        assert api.get(url, **bad).status_code == 400, bad


@pytest.mark.rule("Q2")
def test_across_customers_the_48_hour_window_filter_is_the_pages(api, customer, now):
    closing = factories.SubscriptionFactory(customer=customer, term_start=now - timedelta(hours=150))
    factories.SubscriptionFactory(customer=customer)  # bought 30 days ago: its window closed long ago
    items = api.get("/subscriptions", window="48h").json()["items"]
    assert [i["id"] for i in items] == [str(closing.pk)]
    assert api.get("/subscriptions", window="7d").status_code == 400
