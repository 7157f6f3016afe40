"""The example client in docs/ runs against the portal served for real (pytest-django's live server)."""

import importlib.util
from pathlib import Path

import pytest
from django.utils import timezone

from api import tokens
from subscriptions.models import Subscription
from tests import factories
from tests.conftest import run_worker

CLIENT = Path(__file__).resolve().parents[2] / "docs" / "api_client.py"


def load_example():
    spec = importlib.util.spec_from_file_location("api_client", CLIENT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.django_db(transaction=True)
def test_the_example_client_buys_raises_a_quantity_and_schedules_the_renewal(live_server, capsys):
    partner = factories.PartnerFactory(kind="direct_bill")
    user = factories.staff(partner, "sales_agent")
    customer = factories.CustomerFactory(partner=partner, billing_country="US")
    offer = factories.SkuFactory(name="Microsoft 365 E3", availabilities=[("P1Y", "monthly", "36.00")])
    way = offer.availabilities.get()
    _, secret = tokens.create_token(user, name="example", expires_at=None, now=timezone.now())
    # While the client waits for its order, the background worker runs here (the portal's fulfilment, as in
    # production), in the test's thread.
    done = load_example().main(
        live_server.url,
        secret,
        str(customer.pk),
        f"{offer.product.product_id}:{offer.sku_id}:{way.pk}",
        wait=run_worker,
    )
    subscription = Subscription.objects.get(customer=customer)
    assert (subscription.sku_id, subscription.quantity) == (offer.pk, 6)
    assert done["renewal"]["quantity"] == 7
    assert subscription.scheduled_changes.get().quantity == 7
    assert "6 licenses now, 7 at the renewal" in capsys.readouterr().out
