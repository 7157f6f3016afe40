"""Partner Center's tracing headers on every API answer: `MS-CorrelationId` and `MS-RequestId` echoed (each made up
when the client sent none, as Partner Center does)."""

import uuid

from django.utils.translation import gettext

from . import errors

TRACED = ("MS-CorrelationId", "MS-RequestId")


class ApiHeaders:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            request.path.startswith("/api/v1/")
            and response.status_code in (404, 405)
            and not (response.get("Content-Type", "").startswith("application/json"))
        ):
            # A path or a method the API doesn't have (a trailing slash, a typo): Partner Center's envelope, as every
            # other answer of the API, not the pages' HTML.
            allowed = response.get("Allow")
            response = errors.plain(
                response.status_code,
                gettext("No such operation: see /api/v1/openapi.json.")
                if response.status_code == 404
                else gettext("This operation doesn't take %(method)s.") % {"method": request.method},
                headers={"Allow": allowed} if allowed else None,
            )
        if request.path.startswith("/api/"):
            for name in TRACED:
                sent = request.headers.get(name, "").strip()
                # Echoed only when it is a plain token: a header value must not carry a client's line breaks.
                response[name] = sent if sent and len(sent) <= 100 and sent.isprintable() else str(uuid.uuid4())
        return response
