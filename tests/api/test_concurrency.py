"""MS-RequestId under a race: the same write sent twice at the same instant acts once, both get its answer."""

import json

import pytest
import time_machine
from django.db import connection
from django.test import Client

from api import tokens
from subscriptions.models import Subscription
from tests import factories
from tests.conftest import NOW
from tests.helpers import at_once


@pytest.mark.skipif(connection.vendor != "postgresql", reason="two requests at once need row locks (PostgreSQL)")
@pytest.mark.django_db(transaction=True)
def test_the_same_request_id_sent_twice_at_once_acts_once():
    with time_machine.travel(NOW, tick=False):
        partner = factories.PartnerFactory(kind="direct_bill")
        user = factories.staff(partner, "sales_agent")
        subscription = factories.SubscriptionFactory(customer=factories.CustomerFactory(partner=partner), quantity=10)
        _, secret = tokens.create_token(user, name="race", expires_at=None, now=NOW)
        url = f"/api/v1/customers/{subscription.customer_id}/subscriptions/{subscription.pk}"
        auth = {"Authorization": f"Bearer {secret}"}
        etag = Client().get(url, headers=auth).json()["attributes"]["etag"]
        headers = {**auth, "If-Match": etag, "MS-RequestId": "c2b5a7de-0f1e-4a51-9d0b-race"}

        def send():
            return Client().patch(url, json.dumps({"quantity": 15}), content_type="application/json", headers=headers)

        responses, _ = at_once(send, send)
        assert sorted(r.status_code for r in responses) == [200, 200], [r.content for r in responses]
        assert responses[0].content == responses[1].content
        assert Subscription.objects.get(pk=subscription.pk).quantity == 15
        assert subscription.billing_lines.count() == 1
        assert [r.headers.get("MS-Replayed") for r in responses].count("true") == 1
