"""Webhook registrations through the API (api.webhook_api): the same services, checks, roles and versions as the
Webhooks page, with Partner Center's field names; a validation (test) event delivered to a real local receiver."""

import json
import uuid

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.test import Client

from api import tokens, webhooks
from api.models import WebhookDelivery, WebhookEndpoint
from api.webhook_delivery import verify
from tests import factories
from tests.conftest import NOW
from tests.helpers import database_state

from .test_webhooks import SECRET, Receiver, endpoint_for, receiver  # noqa: F401 - the receiver fixture

REGISTRATIONS = "/api/v1/webhooks/registrations"


class Api:
    def __init__(self, user, now=NOW):
        _, secret = tokens.create_token(user, name="t", expires_at=None, now=now)
        self.client = Client()
        self.auth = {"Authorization": f"Bearer {secret}"}

    def call(self, method, path, body=None, **headers):
        return getattr(self.client, method)(
            path,
            json.dumps(body) if body is not None else None,
            content_type="application/json",
            headers={**self.auth, **headers},
        )


def a_body(**overrides):
    return {
        "webhookUrl": "https://psa.example.com/csp-webhooks",
        "webhookEvents": ["subscription-updated", "subscription-renewed"],
        **overrides,
    }


@pytest.fixture
def admin(direct_partner):
    return factories.staff(direct_partner, "admin_agent")


def test_the_available_events_are_listed(admin):
    answer = Api(admin).call("get", "/api/v1/webhooks/availableEvents")
    assert answer.status_code == 200
    names = [e["eventName"] for e in answer.json()["items"]]
    assert names == list(webhooks.EVENTS)
    assert "cancellation-window-closing" in names


def test_a_registration_is_made_with_its_secret_shown_once_and_read_without_it(admin, direct_partner):
    api = Api(admin)
    made = api.call("post", REGISTRATIONS, a_body())
    assert made.status_code == 201, made.content
    body = made.json()
    assert body["secret"].startswith("whsec_") and made["Cache-Control"] == "no-store"
    endpoint = WebhookEndpoint.objects.get()
    assert (endpoint.partner, endpoint.url, endpoint.events, endpoint.secret, endpoint.created_by) == (
        direct_partner,
        "https://psa.example.com/csp-webhooks",
        ["subscription-renewed", "subscription-updated"],
        body["secret"],
        admin,
    )
    assert made["Location"] == f"{REGISTRATIONS}/{endpoint.pk}"
    read = api.call("get", f"{REGISTRATIONS}/{endpoint.pk}").json()
    assert read["secret"] is None and read["webhookUrl"] == endpoint.url and read["isActive"] is True
    listed = api.call("get", REGISTRATIONS).json()
    assert [r["id"] for r in listed["items"]] == [str(endpoint.pk)] and listed["items"][0]["secret"] is None


def test_the_same_request_id_sent_twice_makes_one_registration(admin):
    api = Api(admin)
    first = api.call("post", REGISTRATIONS, a_body(), **{"MS-RequestId": "r-1"})
    again = api.call("post", REGISTRATIONS, a_body(), **{"MS-RequestId": "r-1"})
    assert first.status_code == again.status_code == 201
    assert again["MS-Replayed"] == "true" and again.json()["id"] == first.json()["id"]
    assert WebhookEndpoint.objects.count() == 1


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"webhookUrl": "http://psa.example.com/hooks"}, "url", "https://"),
        ({"webhookUrl": "https://user:pw@psa.example.com/hooks"}, "url", "user name"),
        ({"webhookUrl": "https://10.0.0.5/hooks"}, "url", "public"),
        ({"webhookUrl": "not a url"}, "url", "valid URL"),
        ({"webhookEvents": []}, "events", "at least one"),
        ({"webhookEvents": ["subscription-exploded"]}, "events", "at least one"),
        ({"secret": "short"}, "secret", "16 characters"),
    ],
)
def test_a_refused_registration_says_why_and_adds_nothing(admin, settings, overrides, field, words):
    settings.CSP_WEBHOOKS_ALLOW_LOOPBACK = False
    before = database_state()
    answer = Api(admin).call("post", REGISTRATIONS, a_body(**overrides))
    assert answer.status_code == 422, answer.content
    assert words in answer.json()["description"] and answer.json()["data"] == [{"field": field}]
    assert database_state() == before


@pytest.mark.parametrize(
    "body",
    [
        {"webhookUrl": "https://psa.example.com/hooks"},  # no events
        a_body(webhookUrl="https://psa.example.com/" + "x" * 600),
        a_body(webhookEvents="subscription-updated"),
        a_body(unknown=True),
        a_body(webhookEvents=["subscription-updated"] * 50),
        a_body(secret="\x00" * 20),
    ],
)
def test_a_malformed_registration_answers_400_and_adds_nothing(admin, body):
    before = database_state()
    answer = Api(admin).call("post", REGISTRATIONS, body)
    assert answer.status_code == 400, answer.content
    assert database_state() == before


@pytest.mark.rule("T2")
def test_a_support_agent_reads_registrations_but_changes_none(direct_partner):
    endpoint = endpoint_for(direct_partner, "https://psa.example.com/hooks")
    api = Api(factories.staff(direct_partner, "support_agent"))
    assert api.call("get", f"{REGISTRATIONS}/{endpoint.pk}").status_code == 200
    etag = api.call("get", f"{REGISTRATIONS}/{endpoint.pk}").json()["attributes"]["etag"]
    before = database_state()
    assert api.call("post", REGISTRATIONS, a_body()).status_code == 403
    assert api.call("put", f"{REGISTRATIONS}/{endpoint.pk}", a_body(), **{"If-Match": etag}).status_code == 403
    assert api.call("delete", f"{REGISTRATIONS}/{endpoint.pk}", **{"If-Match": etag}).status_code == 403
    assert api.call("post", f"{REGISTRATIONS}/{endpoint.pk}/validationEvents", **{"If-Match": etag}).status_code == 403
    assert database_state() == before


@pytest.mark.rule("T3")
def test_another_partners_registration_is_404_and_unchanged(admin):
    theirs = endpoint_for(factories.PartnerFactory(kind="direct_bill"), "https://their.example.com/hooks")
    api = Api(admin)
    before = database_state()
    for method, path in [
        ("get", f"{REGISTRATIONS}/{theirs.pk}"),
        ("put", f"{REGISTRATIONS}/{theirs.pk}"),
        ("delete", f"{REGISTRATIONS}/{theirs.pk}"),
        ("post", f"{REGISTRATIONS}/{theirs.pk}/validationEvents"),
        ("get", f"{REGISTRATIONS}/{theirs.pk}/deliveries"),
        ("get", f"{REGISTRATIONS}/{theirs.pk}/deliveries/{uuid.uuid4()}"),
        ("get", f"{REGISTRATIONS}/not-a-number"),
        ("get", f"{REGISTRATIONS}/99999999999999999999999"),
    ]:
        answer = api.call(method, path, a_body() if method == "put" else None, **{"If-Match": "x"})
        assert answer.status_code == 404, (method, path, answer.content)
    assert api.call("get", REGISTRATIONS).json()["items"] == []
    assert database_state() == before


def test_a_put_replaces_with_the_current_etag_keeps_the_secret_and_a_stale_one_changes_nothing(admin, direct_partner):
    endpoint = endpoint_for(direct_partner, "https://psa.example.com/hooks")
    api = Api(admin)
    path = f"{REGISTRATIONS}/{endpoint.pk}"
    etag = api.call("get", path).json()["attributes"]["etag"]
    body = a_body(webhookUrl="https://psa.example.com/v2/hooks", webhookEvents=["order-completed"], isActive=False)
    assert api.call("put", path, body).status_code == 412  # no If-Match
    changed = api.call("put", path, body, **{"If-Match": etag})
    assert changed.status_code == 200, changed.content
    assert changed.json()["secret"] is None and changed.json()["attributes"]["etag"] != etag
    endpoint.refresh_from_db()
    assert (endpoint.url, endpoint.events, endpoint.is_active, endpoint.secret) == (
        "https://psa.example.com/v2/hooks",
        ["order-completed"],
        False,
        SECRET,
    )
    before = database_state()
    stale = api.call("put", path, a_body(), **{"If-Match": etag})
    assert stale.status_code == 412 and stale.json()["code"] == 2055
    assert database_state() == before


def test_a_delete_with_the_current_etag_removes_it_once(admin, direct_partner):
    endpoint = endpoint_for(direct_partner, "https://psa.example.com/hooks")
    api = Api(admin)
    path = f"{REGISTRATIONS}/{endpoint.pk}"
    etag = api.call("get", path).json()["attributes"]["etag"]
    assert api.call("delete", path, **{"If-Match": etag}).status_code == 204
    assert not WebhookEndpoint.objects.exists()
    assert api.call("delete", path, **{"If-Match": etag}).status_code == 404


@pytest.mark.django_db(transaction=True)
def test_a_validation_event_is_delivered_signed_and_its_delivery_read(receiver, worker):  # noqa: F811
    with time_machine.travel(NOW, tick=False):
        partner = factories.PartnerFactory(kind="direct_bill")
        endpoint = endpoint_for(partner, receiver.url, is_active=False)
        api = Api(factories.staff(partner, "admin_agent"))
        path = f"{REGISTRATIONS}/{endpoint.pk}"
        etag = api.call("get", path).json()["attributes"]["etag"]
        sent = api.call("post", f"{path}/validationEvents", **{"If-Match": etag})
        assert sent.status_code == 201, sent.content
        assert (sent.json()["eventName"], sent.json()["status"], sent.json()["attempts"]) == (
            "test-created",
            "pending",
            0,
        )
        again = api.call("post", f"{path}/validationEvents", **{"If-Match": etag})
        assert again.status_code == 412  # the same request sent twice sends one test
        worker()
        assert receiver.events() == ["test-created"]
        headers, body = receiver.received[0]
        assert verify(SECRET, timestamp=headers["X-CSP-Timestamp"], body=body, header=headers["X-CSP-Signature"])
        event_id = sent.json()["eventId"]
        read = api.call("get", f"{path}/deliveries/{event_id}").json()
        assert (read["status"], read["attempts"], read["responseCode"]) == ("delivered", 1, 200)
        assert read["deliveredDateTime"].startswith(NOW.isoformat()[:19])
        log = api.call("get", f"{path}/deliveries").json()
        assert [d["eventId"] for d in log["items"]] == [event_id]
        assert api.call("get", f"{path}/deliveries/not-a-uuid").status_code == 404


def test_the_delivery_log_pages_newest_first_with_continuation_tokens(admin, direct_partner):
    endpoint = endpoint_for(direct_partner, "https://psa.example.com/hooks")
    for minute in range(5):
        WebhookDelivery.objects.create(
            endpoint=endpoint,
            event_id=uuid.uuid4(),
            event="subscription-updated",
            source=f"audit:{minute}",
            payload={},
            created_at=NOW.replace(minute=minute),
            next_attempt_at=None,
            status="delivered",
        )
    api = Api(admin)
    seen, path, token = [], f"{REGISTRATIONS}/{endpoint.pk}/deliveries?size=2", None
    while True:
        headers = {"MS-ContinuationToken": token} if token else {}
        page = api.call("get", path + ("&seekOperation=Next" if token else ""), **headers).json()
        seen += [d["createdDateTime"] for d in page["items"]]
        token = page["continuationToken"]
        if not token:
            break
    assert len(seen) == 5 and seen == sorted(seen, reverse=True)
    bad = api.call("get", path + "&seekOperation=Next", **{"MS-ContinuationToken": "garbage"})
    assert bad.status_code == 400


@pytest.mark.rule("T3")
def test_partner_staff_read_their_endpoints_and_deliveries_in_the_admin_without_the_secret(client, direct_partner):
    endpoint = endpoint_for(direct_partner, "https://psa.example.com/hooks")
    theirs = endpoint_for(factories.PartnerFactory(kind="direct_bill"), "https://their.example.com/hooks")
    staff = factories.staff(direct_partner, "admin_agent")
    staff.is_staff = True
    staff.save()
    staff.user_permissions.add(*Permission.objects.filter(content_type__app_label="api"))
    client.force_login(staff)
    listed = client.get("/admin/api/webhookendpoint/")
    assert listed.status_code == 200
    assert [e.pk for e in listed.context["cl"].result_list] == [endpoint.pk]
    page = client.get(f"/admin/api/webhookendpoint/{endpoint.pk}/change/")
    assert page.status_code == 200 and "psa.example.com" in page.content.decode()
    assert SECRET not in page.content.decode()
    assert client.get(f"/admin/api/webhookendpoint/{theirs.pk}/change/").status_code == 302  # "doesn't exist"
    assert client.get("/admin/api/webhookdelivery/").status_code == 200
