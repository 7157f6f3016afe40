"""Partner Center's protocol around a write: `attributes.etag` and `If-Match` (a change made from a stale read
changes nothing: 412), `MS-RequestId` (a retried write gets the first answer instead of acting twice) and the
per-partner rate (429 with `Retry-After`, counted in the database so several workers share it)."""

import base64
import binascii
import hashlib
import json
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.http import HttpResponse
from django.utils.translation import gettext
from ninja.errors import HttpError

from portal.models import Partner

from .models import PartnerRate, RateWindow, RequestRecord

REQUEST_ID_MAX = 100
KEPT_FOR = timedelta(hours=48)  # an MS-RequestId's answer is replayed for at least 24 hours; kept twice that
RATE_WINDOWS_KEPT = timedelta(hours=1)


class PreconditionFailed(Exception):
    """`If-Match` missing, malformed or naming another version than the object's (HTTP 412)."""


class Throttled(Exception):
    def __init__(self, retry_after: int):
        super().__init__(
            gettext("Rate limit is exceeded. Try again in %(seconds)s seconds.") % {"seconds": retry_after}
        )
        self.retry_after = retry_after


class RequestIdReused(Exception):
    """An MS-RequestId sent again with another request (method, path or body): replaying the first answer would
    answer a question that wasn't asked, and acting would break the id's promise."""


# --- Etags --------------------------------------------------------------------------------------------------


def etag(kind: str, pk, version: int) -> str:
    """Opaque to a client, as Partner Center's: base64 of the object's id and version (the version every change
    bumps, portal.versions)."""
    text = json.dumps({"id": str(pk), "kind": kind, "version": version}, separators=(",", ":"))
    return base64.b64encode(text.encode()).decode()


def if_match_version(request, kind: str, pk) -> int:
    """The version the `If-Match` header names for this object; PreconditionFailed without a usable one. A
    quoted value (as HTTP writes entity tags) is read too."""
    raw = request.headers.get("If-Match", "").strip()
    if raw.startswith("W/"):
        raw = raw[2:]
    raw = raw.strip('"')
    if not raw:
        raise PreconditionFailed(gettext("Send If-Match with the etag of the resource as you last read it."))
    try:
        named = json.loads(base64.b64decode(raw, validate=True).decode()) if len(raw) <= 400 else None
    except (binascii.Error, UnicodeDecodeError, ValueError):
        named = None
    if (
        not isinstance(named, dict)
        or named.get("id") != str(pk)
        or named.get("kind") != kind
        or type(named.get("version")) is not int
    ):
        raise PreconditionFailed(gettext("The If-Match etag is not one of this resource's: read it again and resend."))
    return named["version"]


def check_current(request, kind: str, obj) -> int:
    """The `If-Match` version, which must be the object's current one (else 412, nothing changed)."""
    version = if_match_version(request, kind, obj.pk)
    if version != obj.version:
        raise PreconditionFailed(gettext("The resource changed since this etag was read: read it again and resend."))
    return version


# --- MS-RequestId -----------------------------------------------------------------------------------------


def fingerprint(request) -> str:
    digest = hashlib.sha256()
    # Who sent it too: an id replayed by a colleague is another request (their role may not allow it).
    who = str(getattr(request.user, "pk", "")).encode()
    for part in (who, request.method.encode(), request.get_full_path().encode(), request.body):
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()


def request_id(request) -> str:
    """The request's MS-RequestId ("" if none). One longer than REQUEST_ID_MAX, or holding a control character, is
    refused (400) rather than cut: two ids sharing their first characters would be taken for one request."""
    sent = request.headers.get("MS-RequestId", "").strip()
    if len(sent) > REQUEST_ID_MAX or not sent.isprintable():
        raise HttpError(
            400,
            gettext("MS-RequestId: send at most %(count)s printable characters (a GUID).") % {"count": REQUEST_ID_MAX},
        )
    return sent


def replayed(record: RequestRecord) -> HttpResponse:
    response = HttpResponse(bytes(record.body), status=record.status, content_type="application/json")
    for name, value in record.headers.items():
        response[name] = value
    response["MS-Replayed"] = "true"
    return response


KEPT_HEADERS = ("Location", "Cache-Control")  # a replayed secret is no more cacheable than the first
NOT_KEPT = {409, 412, 429}


def once(request, partner: Partner, act, *, now: datetime) -> HttpResponse:
    """`act()`'s answer, given once per MS-RequestId. Without an id, every request acts (Partner Center makes one
    up). With one: the answer is stored in the transaction of the change itself; a retry replays it; a concurrent
    twin waits on the unique (partner, request id) row and then replays it."""
    key = request_id(request)
    if not key:
        return act()
    mark = fingerprint(request)
    with transaction.atomic():
        record = RequestRecord.objects.filter(partner=partner, request_id=key).first()
        if record is not None and record.created_at < now - KEPT_FOR:
            record.delete()  # past its time: the id is free again
            record = None
        if record is None:
            try:
                with transaction.atomic():
                    # Claims the id: a concurrent request with it blocks here until this transaction ends.
                    record = RequestRecord.objects.create(
                        partner=partner, request_id=key, fingerprint=mark, status=0, body=b"", created_at=now
                    )
            except IntegrityError:
                record = RequestRecord.objects.get(partner=partner, request_id=key)
            else:
                response = act()
                record.status = response.status_code
                record.body = response.content
                record.headers = {h: response[h] for h in KEPT_HEADERS if response.has_header(h)}
                if response.status_code >= 500 or response.status_code in NOT_KEPT:
                    # Not kept: a 5xx is no answer, and a 409 (the state is moving: N6 says retry in two minutes) or
                    # a 412 (read again) asks for a retry, which must act then rather than replay the refusal.
                    transaction.set_rollback(True)
                else:
                    record.save(update_fields=["status", "body", "headers"])
                return response
    if record.fingerprint != mark:
        raise RequestIdReused(
            gettext(
                "This MS-RequestId was already used for another request: use a new id for each new request, the same "
                "one only to retry."
            )
        )
    return replayed(record)


def forget_old_requests(now: datetime) -> int:
    return RequestRecord.objects.filter(created_at__lt=now - KEPT_FOR).delete()[0]


# --- Rate -----------------------------------------------------------------------------------------------------


def rate_of(partner: Partner) -> int:
    try:
        return partner.api_rate.requests_per_minute  # read with the token (api.tokens.authenticate)
    except PartnerRate.DoesNotExist:
        return settings.CSP_API_REQUESTS_PER_MINUTE


def admit(partner: Partner, *, now: datetime) -> None:
    """Counts one request in the partner's current UTC minute; Throttled past its rate, with the seconds until the
    next minute."""
    minute = now.replace(second=0, microsecond=0)
    windows = RateWindow.objects.filter(partner=partner, minute=minute)
    # Each statement is atomic on its own, and the count read after the increment includes this request's: a
    # transaction around the two would only add its BEGIN and COMMIT to every request. Another worker's increment
    # between the two is counted too, which can only throttle sooner, never later.
    if not windows.update(count=F("count") + 1):
        try:
            with transaction.atomic():
                RateWindow.objects.create(partner=partner, minute=minute, count=1)
        except IntegrityError:  # another worker opened the minute first
            windows.update(count=F("count") + 1)
        else:
            RateWindow.objects.filter(partner=partner, minute__lt=now - RATE_WINDOWS_KEPT).delete()
    count = windows.values_list("count", flat=True).get()
    if count > rate_of(partner):
        raise Throttled(max(1, 60 - now.second))
