"""Sending a webhook delivery: signed, with a short timeout, retried with backoff, and found again after a crash.

A delivery is claimed before it is sent (its next attempt moved a lease ahead, in one UPDATE), so two tasks for one
delivery (the sweep's and a slow worker's) send it once; the POST runs outside any transaction, so no row stays
locked while a receiver takes its time. Delivery is at least once: an answer lost on the way back is sent again with
the same `X-CSP-Event-Id`, by which a receiver tells it has seen it.
"""

import hashlib
import hmac
import http.client
import json
import logging
import socket
import ssl
import threading
from datetime import datetime, timedelta
from ipaddress import IPv4Address, ip_address, ip_network
from urllib.parse import urlsplit

from django.conf import settings
from django.db.models import Q
from django.tasks import task
from django.utils import timezone
from django.utils.translation import gettext

from .models import WebhookDelivery

logger = logging.getLogger(__name__)

TIMEOUT_SECONDS = 5
# After the 1st, 2nd, ... failed attempt, the next one waits this long; after the last the delivery has failed.
BACKOFF = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2), timedelta(hours=12))
# A claimed attempt not finished after this long was lost with its worker: the sweep queues the delivery again.
LEASE = timedelta(minutes=2)
SIGNATURE_HEADER = "X-CSP-Signature"
TIMESTAMP_HEADER = "X-CSP-Timestamp"
EVENT_ID_HEADER = "X-CSP-Event-Id"
EVENT_HEADER = "X-CSP-Event"
ERROR_LENGTH = WebhookDelivery._meta.get_field("last_error").max_length


def body_of(delivery: WebhookDelivery) -> bytes:
    return json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=<hex>` of HMAC-SHA256 over "<timestamp>.<raw body>" with the endpoint's secret. The timestamp is in
    what is signed, so a receiver that refuses old timestamps can't be sent a captured delivery again later."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, *, timestamp: str, body: bytes, header: str) -> bool:
    """What a receiver does (and the tests do): recompute the signature and compare in constant time."""
    return hmac.compare_digest(signature(secret, timestamp, body), header)


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """A connection to `host` made to the one address that was checked (`destination`), not to whatever the name
    resolves to by the time the socket opens: a name pointed at a private address between the check and the
    connection (DNS rebinding) is never reached. The Host header still names the host."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self):
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedHTTPSConnection(_PinnedHTTPConnection):
    """The same over TLS: the certificate is checked against the host's name (SNI too), as any client would."""

    default_port = http.client.HTTPS_PORT

    def connect(self):
        super().connect()
        self.sock = ssl.create_default_context().wrap_socket(self.sock, server_hostname=self.host)


def address_refusal(address: str) -> str:
    """Why deliveries may not go to this IP address ("" if they may): only public addresses, so that a webhook
    can't be pointed at the portal's own network (its database, a cloud's metadata service); loopback only where
    `CSP_WEBHOOKS_ALLOW_LOOPBACK` (development, the tests' receiver)."""
    ip = ip_address(address)
    if ip.version == 6:
        inner = _embedded_ipv4(ip)
        # An IPv6 address that carries an IPv4 one (mapped, 6to4, Teredo, NAT64, IPv4-compatible) reaches that one:
        # it is judged by it, and never as loopback (a test receiver listens on 127.0.0.1 or ::1 themselves).
        if inner is not None:
            return (
                "" if inner.is_global and not inner.is_multicast else gettext("Deliveries go to public addresses only.")
            )
        if ip in LOCAL_NAT64:
            return gettext("Deliveries go to public addresses only.")
    if ip.is_loopback and settings.CSP_WEBHOOKS_ALLOW_LOOPBACK:
        return ""
    if not ip.is_global or ip.is_multicast:
        return gettext("Deliveries go to public addresses only.")
    return ""


NAT64 = ip_network("64:ff9b::/96")  # the well-known prefix: the last 32 bits are the IPv4 address reached
LOCAL_NAT64 = ip_network("64:ff9b:1::/48")  # local-use NAT64: whatever it reaches is this network's own
IPV4_COMPATIBLE = ip_network("::/96")  # deprecated, but still routed by some stacks to the IPv4 address


def _embedded_ipv4(ip) -> IPv4Address | None:
    if ip.ipv4_mapped:
        return ip.ipv4_mapped
    if ip.sixtofour:
        return ip.sixtofour
    if ip.teredo:
        return ip.teredo[1]
    if ip in NAT64 or (ip in IPV4_COMPATIBLE and int(ip) > 1):  # ::1 and :: are themselves (loopback, unspecified)
        return IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def destination(url: str) -> tuple[str, str]:
    """(the address to connect to, "") or ("", why not): the URL's host resolved once, now, and every address it
    resolves to one deliveries may go to (`address_refusal`), since a name can be pointed elsewhere after it was
    registered. The connection is then made to that address (`_PinnedHTTPConnection`)."""
    parts = urlsplit(url)
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    except (OSError, UnicodeError):
        return "", "Not delivered: the receiver's host name doesn't resolve."
    if not infos:
        return "", "Not delivered: the receiver's host name doesn't resolve."
    for *_, address in infos:
        refused = address_refusal(address[0])
        if refused:
            return "", f"Not delivered: {refused}"
    return infos[0][4][0], ""


def destination_refusal(url: str) -> str:
    """Why this URL's host may not be sent to now ("" if it may)."""
    return destination(url)[1]


def post(delivery: WebhookDelivery, now: datetime) -> tuple[int | None, str]:
    """Sends the delivery once: (the response's status code or None, an error sentence or ""). A redirect is an
    answer, not followed: following it would send the signed payload to a URL the partner never registered."""
    endpoint = delivery.endpoint
    address, refused = destination(endpoint.url)
    if refused:
        return None, refused
    body = body_of(delivery)
    timestamp = str(int(now.timestamp()))
    parts = urlsplit(endpoint.url)
    secure = parts.scheme == "https"
    kind = _PinnedHTTPSConnection if secure else _PinnedHTTPConnection
    connection = kind(
        parts.hostname,
        parts.port or (http.client.HTTPS_PORT if secure else http.client.HTTP_PORT),
        address=address,
        timeout=TIMEOUT_SECONDS,
    )
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "CSP-Portal-Webhooks/1",
        SIGNATURE_HEADER: signature(endpoint.secret, timestamp, body),
        TIMESTAMP_HEADER: timestamp,
        EVENT_ID_HEADER: str(delivery.event_id),
        EVENT_HEADER: delivery.event,
    }
    # TIMEOUT_SECONDS for the whole attempt, not for each read: a receiver that answers a byte at a time would
    # otherwise hold the worker (which all partners share) for as long as it likes. At the deadline the socket is
    # shut, which ends the read under way.
    cut = threading.Event()
    deadline = threading.Timer(TIMEOUT_SECONDS, _cut, args=(connection, cut))
    deadline.start()
    try:
        connection.request("POST", (parts.path or "/") + (f"?{parts.query}" if parts.query else ""), body, headers)
        response = connection.getresponse()
        response.read(1024)
    except TimeoutError:
        return None, "Not delivered: the receiver didn't answer in time."
    except (OSError, http.client.HTTPException, ValueError):
        if cut.is_set():
            return None, "Not delivered: the receiver didn't answer in time."
        # Not the socket's own words: what a connection attempt meets is no business of the partner's page.
        return None, "Not delivered: the receiver couldn't be reached."
    finally:
        deadline.cancel()
        connection.close()
    if cut.is_set():
        return None, "Not delivered: the receiver didn't answer in time."
    if 200 <= response.status < 300:
        return response.status, ""
    return response.status, f"The receiver answered HTTP {response.status}."


def _cut(connection, cut: threading.Event) -> None:
    cut.set()
    if connection.sock is not None:
        try:
            connection.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # closed already


def claim(delivery_id: int, now: datetime) -> bool:
    """Takes the delivery's next attempt if it is due: one UPDATE, so of two tasks at once one wins."""
    due = Q(pk=delivery_id, status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now)
    return bool(WebhookDelivery.objects.filter(due).update(next_attempt_at=now + LEASE, last_attempt_at=now))


def attempt(delivery_id: int, now: datetime) -> WebhookDelivery | None:
    """One attempt at a due delivery, its outcome recorded; None if it was not due (sent, failed, or claimed)."""
    if not claim(delivery_id, now):
        return None
    delivery = WebhookDelivery.objects.select_related("endpoint").filter(pk=delivery_id).first()
    if delivery is None:
        return None  # its endpoint was deleted since the claim, and its log with it
    code, error = post(delivery, now)
    delivery.attempts += 1
    delivery.response_code = code
    if code is not None and 200 <= code < 300:
        delivery.status, delivery.delivered_at, delivery.next_attempt_at, delivery.last_error = (
            WebhookDelivery.Status.DELIVERED,
            now,
            None,
            "",
        )
    else:
        delivery.last_error = error or f"The receiver answered HTTP {code}: only 2xx counts as delivered."
        if delivery.attempts <= len(BACKOFF):
            delivery.next_attempt_at = now + BACKOFF[delivery.attempts - 1]
        else:
            delivery.status, delivery.next_attempt_at = WebhookDelivery.Status.FAILED, None
    # An UPDATE, not save(): the endpoint may have been deleted during the POST (its log with it), which is no error.
    recorded = WebhookDelivery.objects.filter(pk=delivery.pk).update(
        **{
            name: getattr(delivery, name)
            for name in ("attempts", "response_code", "status", "delivered_at", "next_attempt_at", "last_error")
        }
    )
    if recorded and delivery.status == WebhookDelivery.Status.PENDING:
        deliver_webhook_task.using(run_after=delivery.next_attempt_at).enqueue(delivery.pk)
    return delivery


@task
def deliver_webhook_task(delivery_id: int) -> str:
    """Sends one delivery if it is due. Idempotent: a delivery not due (sent already, or claimed by another task)
    is left alone. Tasks read the clock: they are the edge."""
    delivery = attempt(delivery_id, timezone.now())
    return "not due" if delivery is None else delivery.status


def requeue_due(now: datetime) -> int:
    """Queues again every pending delivery due for longer than a lease: its task was lost (a worker killed before or
    during the attempt, a retry's task gone). A duplicate task is harmless: `claim` lets one attempt through. The
    delivery's next attempt is moved to now, so the next pass leaves it to the task it was just given."""
    due = WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now - LEASE)
    ids = list(due.order_by("next_attempt_at").values_list("pk", flat=True)[:1000])
    for pk in ids:
        if WebhookDelivery.objects.filter(pk=pk, next_attempt_at__lte=now - LEASE).update(next_attempt_at=now):
            deliver_webhook_task.enqueue(pk)
    return len(ids)
