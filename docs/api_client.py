"""A short example client of the CSP Portal API, written as a Partner Center client would be (httpx).

    python docs/api_client.py http://localhost:8000 cspp_yourtoken

It lists the partner's customers, raises the quantity of a subscription by one license, and schedules a change for
its renewal (one more license again, billed as it is now). Every write sends If-Match (the etag it read) and an
MS-RequestId, and retries a time-out with the same id, so a retry never acts twice.
"""

import sys
import uuid

import httpx


class PortalApi:
    def __init__(self, base_url: str, token: str, *, client: httpx.Client | None = None):
        self.http = client or httpx.Client(base_url=base_url.rstrip("/") + "/api/v1", timeout=30)
        self.http.headers.update({"Authorization": f"Bearer {token}", "Accept": "application/json"})

    def _send(self, method: str, path: str, *, etag: str | None = None, json=None, attempts: int = 3):
        """One request; a write carries If-Match and one MS-RequestId for all its attempts."""
        headers = {"MS-CorrelationId": str(uuid.uuid4())}
        if method != "GET":
            headers["MS-RequestId"] = str(uuid.uuid4())
        if etag:
            headers["If-Match"] = etag
        for attempt in range(attempts):
            try:
                response = self.http.request(method, path, headers=headers, json=json)
            except httpx.TimeoutException:
                if attempt == attempts - 1:
                    raise
                continue  # the same MS-RequestId: the portal replays the first answer if it had acted
            if response.status_code >= 400:
                error = response.json()
                raise RuntimeError(f"{response.status_code} {error.get('ruleId', '')} {error.get('description')}")
            return response.json() if response.content else None
        raise AssertionError("unreachable")

    def pages(self, path: str):
        """Every item of a collection, following its continuation tokens."""
        headers = {}
        while True:
            page = self.http.get(path, headers=headers).raise_for_status().json()
            yield from page["items"]
            if not page.get("continuationToken"):
                return
            headers = {"MS-ContinuationToken": page["continuationToken"]}

    def customers(self):
        return list(self.pages("/customers"))

    def subscriptions(self, customer_id: str):
        return list(self.pages(f"/customers/{customer_id}/subscriptions"))

    def add_licenses(self, subscription: dict, count: int) -> dict:
        path = subscription["links"]["self"]["uri"]
        return self._send(
            "PATCH", path, etag=subscription["attributes"]["etag"], json={"quantity": subscription["quantity"] + count}
        )

    def schedule_quantity(self, subscription: dict, quantity: int) -> dict:
        """Renews with `quantity` licenses, the rest as it renews now."""
        path = subscription["links"]["self"]["uri"] + "/scheduledNextTermInstructions"
        instructions = self._send("GET", path)
        instructions["quantity"] = quantity
        return self._send("PUT", path, etag=instructions["attributes"]["etag"], json=instructions)


def main(base_url: str, token: str, *, client: httpx.Client | None = None) -> dict:
    api = PortalApi(base_url, token, client=client)
    for customer in api.customers():
        for subscription in api.subscriptions(customer["id"]):
            if {"add_licenses", "manage_renewal"} <= set(subscription["actions"]):
                raised = api.add_licenses(subscription, 1)
                renewal = api.schedule_quantity(raised, raised["quantity"] + 1)
                print(f"{raised['offerName']}: {raised['quantity']} licenses now, {renewal['quantity']} at the renewal")
                return {"subscription": raised, "renewal": renewal}
    raise SystemExit("No subscription of yours takes more licenses and a renewal change now.")


if __name__ == "__main__":
    main(*sys.argv[1:3])
