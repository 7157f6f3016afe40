"""Property-based: schemathesis generates requests from the API's own OpenAPI document (valid and invalid bodies,
query strings, path ids) and checks every answer: never a 5xx, always what the document says (status, body shape,
headers). Bounded, so `make test` stays quick; run for each database of the suite."""

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import negative_data_rejection, positive_data_acceptance

from api import tokens
from portal.wsgi import application
from tests import factories
from tests.conftest import NOW

schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application)


@pytest.fixture
def in_test_transaction():
    """Requests go to the WSGI application itself, in the test's transaction: like Django's test client, keep the
    end of a request from closing the connection that holds it."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def world(db, in_test_transaction):
    partner = factories.PartnerFactory(kind="direct_bill")
    user = factories.staff(partner, "admin_agent")
    customer = factories.CustomerFactory(partner=partner)
    for _ in range(3):
        factories.SubscriptionFactory(customer=customer)
    _, secret = tokens.create_token(user, name="schemathesis", expires_at=None, now=NOW)
    return {"Authorization": f"Bearer {secret}"}


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_answer_is_a_5xx_or_breaks_the_document(case, world):
    # Not judged: that a request outside the document is refused (an unknown query parameter is ignored, as Partner
    # Center ignores one; unknown body fields are refused, tests/api), and that one inside it succeeds (a made-up id
    # answers 404, a rule may refuse).
    case.call_and_validate(headers=world, excluded_checks=[negative_data_rejection, positive_data_acceptance])
