"""Refusals as Partner Center sends them: `{"code", "description", "data", "source"}`, with Partner Center's
numeric code where it has one for the rule, and what this portal adds: the rule id (RULES.md) and the same sentence
the page shows, so a client can tell the partner what to do instead of retrying blindly."""

from django.http import JsonResponse
from django.utils.translation import gettext

from portal.errors import RuleViolation

SOURCE = "CSPPortal"
# The portal's own codes (where Partner Center has none) are 7 digits, 1000000 + the HTTP status: Partner Center's
# are at most 6, so a client's table of Partner Center codes never matches one of them by accident.
OWN = 1_000_000
RENEWAL_RETRY_SECONDS = 120  # N6: "retry in two minutes"

# Rule id -> (HTTP status, Partner Center's code) where Partner Center documents a code for that refusal (the
# reference's tables 1.7 and 8). Any other rule refuses with 409 (the state moved on) or 422 (the request breaks a
# rule), as the pages do.
PARTNER_CENTER_CODES: dict[str, tuple[int, int]] = {
    "Q2": (400, 800090),  # Subscription quantity can't be decreased
    "Q4": (400, 800090),
    "Q5": (400, 900311),  # updated too many times
    "Q6": (400, 800091),  # can't update a subscription with suspended status
    "TR4": (400, 800095),  # can't update the seat quantity
    "K6": (400, 2002),  # quantity not within the minimum and maximum
    "K7": (400, 800088),  # seats exceeded the remaining limit (Partner Center answers 403; here 403 is only a role)
    "K8": (400, 2002),
    "X1": (400, 900117),  # passed your {0}-day cancellation window
    "X3": (400, 900213),  # passed your {0}-hour cancellation window
    "P2": (400, 800096),  # can't update the status
    "N6": (409, 800082),  # not ready to be updated: try again after some time
    "version": (412, 2055),  # Etag is no longer valid
}


def envelope(status: int, code: int, description: str, *, rule: str = "", data=None, headers=None) -> JsonResponse:
    body = {"code": code, "description": description[:1024], "data": data or [], "source": SOURCE}
    if rule:
        body["ruleId"] = rule
    response = JsonResponse(body, status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def refusal(violation: RuleViolation) -> JsonResponse:
    status, code = PARTNER_CENTER_CODES.get(violation.rule, (violation.status, OWN + violation.status))
    headers = {"Retry-After": str(RENEWAL_RETRY_SECONDS)} if violation.rule == "N6" else None
    data = [{"field": violation.field}] if violation.field else []
    return envelope(status, code, violation.message, rule=violation.rule, data=data, headers=headers)


def refusals(violations: dict) -> JsonResponse:
    """Several refusals at once (K9: each refused line says why): the first one's status, code and rule, and every
    one of them in `data` with its `key` (a line item as `lineItems[0]`, the participants, the cart), rule, code
    and sentence. Nothing was changed."""
    listed = []
    for key, violation in violations.items():
        _, code = status_and_code(violation)
        item = {"key": str(key), "ruleId": violation.rule, "code": code, "description": violation.message}
        if violation.field:
            item["field"] = violation.field
        listed.append(item)
    first = next(iter(violations.values()))
    status, code = status_and_code(first)
    described = first.message
    if len(listed) > 1:
        described = gettext("Nothing was done: %(count)s refusals. %(refusals)s") % {
            "count": len(listed),
            "refusals": " ".join(item["description"] for item in listed),
        }
    headers = {"Retry-After": str(RENEWAL_RETRY_SECONDS)} if first.rule == "N6" else None
    return envelope(status, code, described, rule=first.rule, data=listed, headers=headers)


def status_and_code(violation: RuleViolation) -> tuple[int, int]:
    return PARTNER_CENTER_CODES.get(violation.rule, (violation.status, OWN + violation.status))


def code(rule: str, status: int) -> int:
    """The code of a refusal by `rule` that would answer `status`: Partner Center's, else 1,000,000 + the status."""
    return PARTNER_CENTER_CODES.get(rule, (status, OWN + status))[1]


def plain(status: int, description: str, *, data=None, headers=None) -> JsonResponse:
    """A refusal that no product rule makes (not found, forbidden, malformed input)."""
    return envelope(status, OWN + status, description, data=data, headers=headers)
