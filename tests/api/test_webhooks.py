"""Webhooks (issue 11): the endpoints page, the events made from the audit trail, and deliveries to a real HTTP
receiver on 127.0.0.1, signed, retried with backoff, found again after a lost task."""

import json
import re
import socket
import threading
import uuid
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from api import webhook_delivery, webhooks
from api.models import ClosingWindowNotice, WebhookDelivery, WebhookEndpoint
from api.webhook_delivery import BACKOFF, LEASE, attempt, verify
from subscriptions import services
from subscriptions.lifecycle import run_lifecycle
from subscriptions.models import AuditEntry
from tests import factories
from tests.conftest import NOW
from tests.helpers import at_once

SECRET = "a-receiver-secret-of-some-length"


class Receiver:
    """An HTTP server on 127.0.0.1 (a free port) that records every POST and answers the next of `codes` (then 200)."""

    def __init__(self):
        self.received = []
        self.codes = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((self.headers, body))  # header names are read case-insensitively
                code = receiver.codes.pop(0) if receiver.codes else 200
                self.send_response(code)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def events(self) -> list[str]:
        return [json.loads(body)["EventName"] for _, body in self.received]


@pytest.fixture
def receiver():
    server = Receiver()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


def endpoint_for(partner, url, *, events=None, secret=SECRET, is_active=True, now=NOW):
    user = factories.staff(partner, "admin_agent")
    endpoint, _ = webhooks.create_endpoint(
        user,
        url=url,
        events=events or list(webhooks.EVENTS),
        secret=secret,
        is_active=is_active,
        created_from=uuid.uuid4(),
        now=now,
    )
    return endpoint


def new_form(**overrides):
    data = {
        "url": "https://psa.example.com/csp-webhooks",
        "events": ["subscription-updated", "subscription-suspended"],
        "secret": "",
        "is_active": "on",
        "form_id": str(uuid.uuid4()),
    }
    return {**data, **overrides}


# --- The page ------------------------------------------------------------------------------------------------


def test_an_endpoint_is_added_and_its_made_secret_shown_once(signed_in, direct_partner):
    assert signed_in.get("/account/webhooks/").status_code == 200
    made = signed_in.post("/account/webhooks/", new_form())
    assert made.status_code == 201
    assert made["Cache-Control"] == "no-store"
    secret = re.search(r'id="new-secret">([^<]+)<', made.content.decode()).group(1)
    endpoint = WebhookEndpoint.objects.get(partner=direct_partner)
    assert (endpoint.url, endpoint.events, endpoint.is_active, endpoint.secret) == (
        "https://psa.example.com/csp-webhooks",
        ["subscription-suspended", "subscription-updated"],
        True,
        secret,
    )
    assert secret not in signed_in.get("/account/webhooks/").content.decode()
    assert secret not in signed_in.get(f"/account/webhooks/{endpoint.pk}/").content.decode()


def test_a_typed_secret_is_kept_and_not_shown(signed_in, direct_partner):
    made = signed_in.post("/account/webhooks/", new_form(secret=SECRET))
    assert made.status_code == 201
    assert SECRET not in made.content.decode()
    assert WebhookEndpoint.objects.get(partner=direct_partner).secret == SECRET


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"url": "http://psa.example.com/hooks"}, "Use an https:// URL"),
        ({"url": "ftp://psa.example.com/hooks"}, "Enter a valid URL"),
        ({"url": "https://user:pw@psa.example.com/hooks"}, "Leave the user name and password out of the URL"),
        ({"url": "https://psa.example.com:99999/"}, "Enter a valid URL"),
        ({"url": ""}, "Enter the URL that receives the events."),
        ({"events": []}, "Choose at least one of the listed events."),
        ({"events": ["subscription-exploded"]}, "Choose at least one of the listed events."),
        ({"secret": "short"}, "Use a secret of at least 16 characters."),
        ({"url": "https://x.example/\x00"}, "The URL contains a character that is not allowed (NUL)."),
    ],
)
def test_a_refused_form_answers_422_says_why_and_adds_nothing(signed_in, overrides, message):
    response = signed_in.post("/account/webhooks/", new_form(**overrides))
    assert response.status_code == 422
    assert message in response.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_http_to_loopback_is_accepted_for_a_test_receiver(signed_in, direct_partner):
    response = signed_in.post("/account/webhooks/", new_form(url="http://127.0.0.1:8765/hooks"))
    assert response.status_code == 201
    assert WebhookEndpoint.objects.get(partner=direct_partner).url == "http://127.0.0.1:8765/hooks"


def test_the_same_form_submitted_twice_adds_one_endpoint(signed_in, direct_partner):
    form = new_form()
    assert signed_in.post("/account/webhooks/", form).status_code == 201
    again = signed_in.post("/account/webhooks/", form)
    assert again.status_code == 409
    assert "already added from this page" in again.content.decode()
    assert WebhookEndpoint.objects.filter(partner=direct_partner).count() == 1


@pytest.mark.rule("T3")
def test_another_partners_endpoint_is_404_and_unchanged(signed_in, provider):
    theirs = endpoint_for(provider, "https://theirs.example/hooks", events=["order-completed"])
    paths = [f"/account/webhooks/{theirs.pk}/", f"/account/webhooks/{theirs.pk}/test/"]
    assert signed_in.get(paths[0]).status_code == 404
    edit = {"url": "https://mine.example/", "events": ["subscription-created"], "version": theirs.version}
    assert signed_in.post(paths[0], edit).status_code == 404
    assert signed_in.post(paths[1], {"version": theirs.version}).status_code == 404
    assert signed_in.post(f"/account/webhooks/{theirs.pk}/delete/", {"version": theirs.version}).status_code == 404
    theirs.refresh_from_db()
    assert (theirs.url, theirs.events, theirs.version) == ("https://theirs.example/hooks", ["order-completed"], 1)
    assert not WebhookDelivery.objects.exists()
    assert theirs.url not in signed_in.get("/account/webhooks/").content.decode()


@pytest.mark.rule("T2")
def test_a_support_agent_sees_the_endpoints_read_only(client, direct_partner, now):
    endpoint = endpoint_for(direct_partner, "https://psa.example/hooks")
    client.force_login(factories.staff(direct_partner, "support_agent"))
    page = client.get("/account/webhooks/").content.decode()
    assert "https://psa.example/hooks" in page and "Add endpoint" not in page
    detail = client.get(f"/account/webhooks/{endpoint.pk}/").content.decode()
    assert "Send test event" not in detail and "Deliveries" in detail
    assert client.post("/account/webhooks/", new_form()).status_code == 403
    assert client.post(f"/account/webhooks/{endpoint.pk}/test/", {"version": endpoint.version}).status_code == 403
    assert client.post(f"/account/webhooks/{endpoint.pk}/delete/", {"version": endpoint.version}).status_code == 403
    assert WebhookEndpoint.objects.count() == 1 and not WebhookDelivery.objects.exists()


def test_an_edit_keeps_the_secret_when_left_empty_and_a_stale_page_changes_nothing(signed_in, direct_partner):
    endpoint = endpoint_for(direct_partner, "https://psa.example/hooks")
    form = {"url": "https://psa.example/v2", "events": ["order-completed"], "secret": "", "version": endpoint.version}
    assert signed_in.post(f"/account/webhooks/{endpoint.pk}/", form).status_code == 302
    endpoint.refresh_from_db()
    assert (endpoint.url, endpoint.events, endpoint.is_active, endpoint.secret) == (
        "https://psa.example/v2",
        ["order-completed"],
        False,
        SECRET,
    )
    stale = signed_in.post(f"/account/webhooks/{endpoint.pk}/", {**form, "url": "https://psa.example/v3"})
    assert stale.status_code == 409
    endpoint.refresh_from_db()
    assert endpoint.url == "https://psa.example/v2"


def test_delete_removes_the_endpoint_once(signed_in, direct_partner):
    endpoint = endpoint_for(direct_partner, "https://psa.example/hooks")
    path = f"/account/webhooks/{endpoint.pk}/delete/"
    assert signed_in.post(path, {"version": endpoint.version}).status_code == 302
    assert not WebhookEndpoint.objects.exists()
    assert signed_in.post(path, {"version": endpoint.version}).status_code == 404


# --- Delivery to a real receiver ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_test_event_button_sends_one_signed_event(client, receiver, worker):
    with time_machine.travel(NOW, tick=False):
        partner = factories.PartnerFactory(kind="direct_bill")
        endpoint = endpoint_for(partner, receiver.url, is_active=False)
        client.force_login(factories.staff(partner, "admin_agent"))
        form = {"version": endpoint.version}
        assert client.post(f"/account/webhooks/{endpoint.pk}/test/", form).status_code == 302
        assert client.post(f"/account/webhooks/{endpoint.pk}/test/", form).status_code == 409  # a double submit
        worker()
        assert receiver.events() == ["test-created"]
        headers, body = receiver.received[0]
        assert verify(SECRET, timestamp=headers["X-CSP-Timestamp"], body=body, header=headers["X-CSP-Signature"])
        assert not verify("another-secret-entirely", timestamp=headers["X-CSP-Timestamp"], body=body,
                          header=headers["X-CSP-Signature"])  # fmt: skip
        assert headers["X-CSP-Timestamp"] == str(int(NOW.timestamp()))
        delivery = WebhookDelivery.objects.get()
        assert headers["X-CSP-Event-Id"] == str(delivery.event_id) == json.loads(body)["EventId"]
        assert (delivery.status, delivery.attempts, delivery.response_code, delivery.delivered_at) == (
            "delivered",
            1,
            200,
            NOW,
        )
        log = client.get(f"/account/webhooks/{endpoint.pk}/").content.decode()
        assert "test-created" in log and "Delivered" in log and str(delivery.event_id) in log


@pytest.mark.django_db(transaction=True)
def test_a_change_becomes_an_event_for_the_endpoints_that_want_it(receiver, worker):
    with time_machine.travel(NOW, tick=False):
        customer = factories.CustomerFactory(partner=factories.PartnerFactory(kind="direct_bill"))
        subscription = factories.SubscriptionFactory(customer=customer)
        endpoint_for(customer.partner, receiver.url, events=["subscription-suspended"])
        endpoint_for(customer.partner, receiver.url + "/off", is_active=False)
        endpoint_for(customer.partner, receiver.url + "/orders", events=["order-completed"])
        other = factories.CustomerFactory(partner=factories.PartnerFactory(kind="direct_bill"))
        endpoint_for(other.partner, receiver.url + "/other")
        agent = factories.staff(customer.partner, "admin_agent")
        services.suspend_subscription(subscription_id=subscription.pk, actor=agent, now=NOW)
        run_lifecycle(NOW)  # the engine's pass dispatches what the audit trail says
        worker()
        assert receiver.events() == ["subscription-suspended"]
        headers, body = receiver.received[0]
        payload = json.loads(body)
        assert payload["ResourceUri"] == f"/api/v1/customers/{customer.pk}/subscriptions/{subscription.pk}"
        assert (payload["Action"], payload["SubscriptionId"], payload["ResourceName"]) == (
            "subscription.suspended",
            str(subscription.pk),
            "subscription",
        )
        assert headers["X-CSP-Event"] == "subscription-suspended"
        assert not AuditEntry.objects.filter(webhooks_dispatched_at=None).exists()
        # dispatched once: a second pass sends nothing again
        run_lifecycle(NOW)
        worker()
        assert len(receiver.received) == 1


@pytest.mark.django_db(transaction=True)
def test_a_renewal_written_by_the_engines_bulk_insert_is_sent(receiver, worker):
    with time_machine.travel(NOW, tick=False):
        customer = factories.CustomerFactory(partner=factories.PartnerFactory(kind="direct_bill"))
        started = NOW - timedelta(days=40)
        subscription = factories.SubscriptionFactory(
            customer=customer, term_start=started, term_end=(NOW - timedelta(days=2)).date(), auto_renew=True
        )
        endpoint_for(customer.partner, receiver.url, events=["subscription-renewed"])
        report = run_lifecycle(NOW)
        assert report.renewed == 1
        worker()
        assert receiver.events() == ["subscription-renewed"]
        assert json.loads(receiver.received[0][1])["SubscriptionId"] == str(subscription.pk)


def test_an_entry_committed_after_a_later_one_was_dispatched_is_still_dispatched(direct_partner, customer, now):
    # given: entry 2 dispatched while entry 1's transaction had not committed yet (pks are taken at insert)
    endpoint = endpoint_for(direct_partner, "https://psa.example/hooks")
    first, second = (
        AuditEntry.objects.create(
            at=now, partner=direct_partner, customer=customer, action="order.completed", summary=f"order {n}"
        )
        for n in (1, 2)
    )
    AuditEntry.objects.filter(pk=second.pk).update(webhooks_dispatched_at=now)
    # when
    made = webhooks.dispatch_events(now)
    # then: the earlier pk is found by its marker, not skipped by a cursor
    assert made == 1
    assert list(WebhookDelivery.objects.values_list("endpoint", "source", "event")) == [
        (endpoint.pk, f"audit:{first.pk}", "order-completed")
    ]


@pytest.mark.django_db(transaction=True)
def test_a_500_is_retried_with_backoff_until_delivered(receiver, worker):
    with time_machine.travel(NOW, tick=False) as traveller:
        partner = factories.PartnerFactory(kind="direct_bill")
        endpoint = endpoint_for(partner, receiver.url)
        receiver.codes = [500, 503]
        webhooks.send_test_event(
            factories.staff(partner, "admin_agent"), endpoint.pk, version=endpoint.version, now=NOW
        )
        worker()
        delivery = WebhookDelivery.objects.get()
        assert (delivery.status, delivery.attempts, delivery.response_code) == ("pending", 1, 500)
        assert delivery.next_attempt_at == NOW + BACKOFF[0]
        assert "HTTP 500" in delivery.last_error
        worker()  # not due yet: nothing is sent
        assert len(receiver.received) == 1
        traveller.move_to(NOW + BACKOFF[0])
        worker()
        delivery.refresh_from_db()
        assert (delivery.attempts, delivery.response_code, delivery.next_attempt_at) == (
            2,
            503,
            NOW + BACKOFF[0] + BACKOFF[1],
        )
        traveller.move_to(delivery.next_attempt_at)
        worker()
        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempts, delivery.response_code, delivery.last_error) == (
            "delivered",
            3,
            200,
            "",
        )
        assert len({headers["X-CSP-Event-Id"] for headers, _ in receiver.received}) == 1  # one event, three tries


@pytest.mark.django_db(transaction=True)
def test_a_receiver_that_keeps_failing_is_marked_failed_after_the_last_backoff(receiver, worker):
    with time_machine.travel(NOW, tick=False) as traveller:
        partner = factories.PartnerFactory(kind="direct_bill")
        endpoint = endpoint_for(partner, receiver.url)
        receiver.codes = [500] * 10
        webhooks.send_test_event(
            factories.staff(partner, "admin_agent"), endpoint.pk, version=endpoint.version, now=NOW
        )
        worker()
        at = NOW
        for wait in BACKOFF:
            at += wait
            traveller.move_to(at)
            worker()
        delivery = WebhookDelivery.objects.get()
        assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("failed", len(BACKOFF) + 1, None)
        assert len(receiver.received) == len(BACKOFF) + 1


@pytest.mark.django_db(transaction=True)
def test_a_delivery_whose_task_was_lost_is_sent_by_the_next_pass(receiver, worker):
    with time_machine.travel(NOW, tick=False) as traveller:
        partner = factories.PartnerFactory(kind="direct_bill")
        endpoint = endpoint_for(partner, receiver.url)
        # given: a pending delivery with no task (its worker was killed after claiming it: the lease ran out)
        delivery = webhooks._delivery(
            endpoint, event="test-created", source="test:lost", now=NOW, resource_name="test", resource_uri=None,
            summary="lost",
        )  # fmt: skip
        delivery.save()
        worker()
        assert not receiver.received
        traveller.move_to(NOW + LEASE)
        # when
        report = webhooks.run_webhooks(timezone.now())
        worker()
        # then
        assert report.requeued == 1
        assert receiver.events() == ["test-created"]
        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempts) == ("delivered", 1)


def test_an_unreachable_receiver_is_logged_and_retried(direct_partner, now):
    endpoint = endpoint_for(direct_partner, "http://127.0.0.1:9/closed")  # the discard port: nothing listens
    delivery = webhooks._delivery(
        endpoint, event="test-created", source="test:x", now=now, resource_name="test", resource_uri=None,
        summary="x",
    )  # fmt: skip
    delivery.save()
    attempt(delivery.pk, now)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_code) == ("pending", 1, None)
    assert delivery.last_error.startswith("Not delivered:")


# --- The portal's own event --------------------------------------------------------------------------------


def test_a_cancellation_window_closing_in_24_hours_is_announced_once(direct_partner, customer, now):
    endpoint = endpoint_for(direct_partner, "https://psa.example/hooks", events=["cancellation-window-closing"])
    closing = factories.SubscriptionFactory(customer=customer, term_start=now - timedelta(hours=150))
    factories.SubscriptionFactory(customer=customer, term_start=now - timedelta(hours=100))  # 68 h left
    factories.SubscriptionFactory(customer=customer, term_start=now - timedelta(hours=170))  # closed already
    assert webhooks.notify_closing_windows(now) == 1
    assert webhooks.notify_closing_windows(now + timedelta(hours=1)) == 0  # the same window: never twice
    delivery = WebhookDelivery.objects.get()
    assert (delivery.endpoint, delivery.event) == (endpoint, "cancellation-window-closing")
    assert delivery.payload["SubscriptionId"] == str(closing.pk)
    assert delivery.payload["CancellationAllowedUntilDate"] == "2026-11-26T06:00:00Z"
    assert ClosingWindowNotice.objects.get().closes_at == now + timedelta(hours=18)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="two dispatchers at once need row locks (PostgreSQL)")
@pytest.mark.django_db(transaction=True)
def test_two_dispatchers_at_once_dispatch_each_entry_once():
    # given: more entries than one batch, and an endpoint that wants them all
    with time_machine.travel(NOW, tick=False):
        customer = factories.CustomerFactory(partner=factories.PartnerFactory(kind="direct_bill"))
        endpoint = endpoint_for(customer.partner, "https://psa.example/hooks", events=["order-completed"])
        count = webhooks.DISPATCH_BATCH * 2 + 7
        AuditEntry.objects.bulk_create(
            AuditEntry(at=NOW, partner=customer.partner, customer=customer, action="order.completed", summary=str(n))
            for n in range(count)
        )
        # when: two workers' passes dispatch at the same instant
        made, _ = at_once(lambda: webhooks.dispatch_events(NOW), lambda: webhooks.dispatch_events(NOW))
        # then: every entry made exactly one delivery, whichever dispatcher took it
        assert sum(made) == count
        assert WebhookDelivery.objects.filter(endpoint=endpoint).count() == count
        assert not AuditEntry.objects.filter(webhooks_dispatched_at=None).exists()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "https://localhost/hook",
        "https://10.0.0.5/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://192.168.1.10/hook",
        "https://224.0.0.1/hook",
    ],
)
def test_without_loopback_allowed_only_public_addresses_are_accepted(settings, url):
    settings.CSP_WEBHOOKS_ALLOW_LOOPBACK = False
    assert webhooks.url_refusal(url)
    assert webhooks.url_refusal("https://psa.example.com/hook") == ""


def test_a_name_that_resolves_to_a_private_address_is_not_sent_to(settings, monkeypatch):
    settings.CSP_WEBHOOKS_ALLOW_LOOPBACK = False
    monkeypatch.setattr(
        webhook_delivery.socket, "getaddrinfo", lambda host, port: [(None, None, None, "", ("10.1.2.3", port))]
    )
    assert webhook_delivery.destination_refusal("https://psa.example.com/hook") == (
        "Not delivered: Deliveries go to public addresses only."
    )


def test_a_delivery_connects_to_the_address_that_was_checked_not_to_a_later_answer(db, receiver, monkeypatch, now):
    # DNS rebinding: the name resolves to an allowed address when checked, then to another (here a private one that
    # would be refused) for anyone who asks again. The connection is made to the address that was checked.
    real = socket.getaddrinfo
    port = receiver.server.server_address[1]
    answers = []

    def resolve(host, *args, **kwargs):
        if host != "rebind.example":
            return real(host, *args, **kwargs)
        answers.append(host)
        address = "127.0.0.1" if len(answers) == 1 else "10.9.9.9"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(webhook_delivery.socket, "getaddrinfo", resolve)
    endpoint = endpoint_for(factories.PartnerFactory(kind="direct_bill"), f"http://127.0.0.1:{port}/hooks")
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(url=f"http://rebind.example:{port}/hooks?from=csp")
    delivery = webhooks.send_test_event(endpoint.created_by, endpoint.pk, version=endpoint.version, now=now)
    delivery.refresh_from_db()
    code, error = webhook_delivery.post(delivery, now)
    assert (code, error) == (200, "")
    assert answers == ["rebind.example"]  # resolved once, at the check
    headers, _ = receiver.received[0]
    assert headers["Host"] == f"rebind.example:{port}"
