import json

import pytest

from api import tokens
from tests import factories


class ApiClient:
    """The test client speaking to /api/v1/ with a bearer token (and JSON bodies)."""

    def __init__(self, client, secret: str):
        self.client = client
        self.secret = secret

    def _headers(self, headers):
        return {"Authorization": f"Bearer {self.secret}", **(headers or {})}

    def get(self, path, headers=None, **params):
        return self.client.get(f"/api/v1{path}", params, headers=self._headers(headers))

    def patch(self, path, body, headers=None):
        return self.client.patch(
            f"/api/v1{path}", json.dumps(body), content_type="application/json", headers=self._headers(headers)
        )


@pytest.fixture
def token_for(client, now):
    def make(user):
        _, secret = tokens.create_token(user, name="tests", expires_at=None, now=now)
        return ApiClient(client, secret)

    return make


@pytest.fixture
def api(token_for, sales):
    """The direct partner's sales agent through the API."""
    return token_for(sales)


@pytest.fixture
def subscription(customer, now):
    """Bought a day ago: inside its cancellation and removal windows (10 licenses removable)."""
    return factories.SubscriptionFactory(customer=customer, in_cancellation_window=True, quantity=10)


@pytest.fixture(autouse=True)
def loopback_receivers(settings):
    """The webhook tests' receiver listens on 127.0.0.1, which only development, the demo and tests may send to."""
    settings.CSP_WEBHOOKS_ALLOW_LOOPBACK = True
