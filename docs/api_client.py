"""A short example client of the CSP Portal API, written as a Partner Center client would be (httpx).

    python docs/api_client.py http://localhost:8000 cspp_yourtoken CUSTOMER_ID CATALOG_ITEM_ID

It buys 5 licenses of an offer (catalogItemId "{productId}:{skuId}:{availabilityId}") for a customer, waits until
the order has made the subscription, raises its quantity by one license, and schedules a change for its renewal (one
more license again, billed as it is now). Every write sends an MS-RequestId (and If-Match with the etag it read), and
retries a time-out with the same id, so a retry never acts twice.
"""

import sys
import time
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

    def buy(self, customer_id: str, catalog_item_id: str, quantity: int) -> dict:
        """A cart with one line, attested (the partner's declaration, K3), checked out: the order placed."""
        cart = self._send(
            "POST",
            f"/customers/{customer_id}/carts",
            json={
                "lineItems": [{"catalogItemId": catalog_item_id, "quantity": quantity}],
                "partnerOnRecordAttestationAccepted": True,
            },
        )
        placed = self._send("POST", f"/customers/{customer_id}/carts/{cart['id']}/checkout")
        return placed["orders"][0]

    def provisioned(self, customer_id: str, order: dict, *, wait=lambda: time.sleep(2), attempts: int = 30) -> dict:
        """The subscription the order's first line became, once the portal has fulfilled it in the background."""
        path = f"/customers/{customer_id}/orders/{order['id']}/provisioningstatus"
        for _ in range(attempts):
            line = self._send("GET", path)["items"][0]
            if line["status"] == "fulfilled":
                return self._send("GET", f"/customers/{customer_id}/subscriptions/{line['subscriptionId']}")
            wait()
        raise TimeoutError(f"Order {order['id']} is still being fulfilled.")

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


def main(base_url: str, token: str, customer_id: str, catalog_item_id: str, *, wait=None) -> dict:
    api = PortalApi(base_url, token)
    with api.http:
        order = api.buy(customer_id, catalog_item_id, 5)
        bought = api.provisioned(customer_id, order, **({"wait": wait} if wait else {}))
        raised = api.add_licenses(bought, 1)
        renewal = api.schedule_quantity(raised, raised["quantity"] + 1)
    print(
        f"{raised['offerName']}: order {order['id']}, {raised['quantity']} licenses now, "
        f"{renewal['quantity']} at the renewal"
    )
    return {"order": order, "subscription": raised, "renewal": renewal}


if __name__ == "__main__":
    main(*sys.argv[1:5])
