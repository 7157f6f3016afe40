"""Partner Center's tracing headers on every API answer: `MS-CorrelationId` and `MS-RequestId` echoed (each made up
when the client sent none, as Partner Center does)."""

import uuid

TRACED = ("MS-CorrelationId", "MS-RequestId")


class ApiHeaders:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.path.startswith("/api/"):
            for name in TRACED:
                sent = request.headers.get(name, "").strip()
                # Echoed only when it is a plain token: a header value must not carry a client's line breaks.
                response[name] = sent if sent and len(sent) <= 100 and sent.isprintable() else str(uuid.uuid4())
        return response
