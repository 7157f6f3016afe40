"""The example client in docs/ runs against the portal served for real (pytest-django's live server)."""

import importlib.util
from pathlib import Path

import pytest

from api import tokens
from subscriptions.models import Subscription
from tests import factories

CLIENT = Path(__file__).resolve().parents[2] / "docs" / "api_client.py"


def load_example():
    spec = importlib.util.spec_from_file_location("api_client", CLIENT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.django_db(transaction=True)
def test_the_example_client_raises_a_quantity_and_schedules_the_renewal(live_server, capsys):
    partner = factories.PartnerFactory(kind="direct_bill")
    user = factories.staff(partner, "sales_agent")
    customer = factories.CustomerFactory(partner=partner)
    subscription = factories.SubscriptionFactory(customer=customer, quantity=10)
    _, secret = tokens.create_token(user, name="example", expires_at=None, now=subscription.term_start)
    done = load_example().main(live_server.url, secret)
    subscription.refresh_from_db()
    assert subscription.quantity == 11
    assert done["renewal"]["quantity"] == 12
    assert subscription.scheduled_changes.get().quantity == 12
    assert "11 licenses now, 12 at the renewal" in capsys.readouterr().out
    assert Subscription.objects.count() == 1
