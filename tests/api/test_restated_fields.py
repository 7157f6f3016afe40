"""Fields a request may restate but the server decides (a transition's source, type and availability, a transfer
line's quantity): sent as the server will act, they are accepted; sent otherwise, 400 names the field and nothing
changes, never a silent "ignored". (A transfer line's quantity: test_transfers.py.)"""

from datetime import UTC, datetime

import pytest

from catalog.models import UpgradePath
from subscriptions.models import Subscription
from tests import factories
from tests.api.test_transitions import post, target_item
from tests.helpers import database_state


@pytest.fixture
def upgrade(customer):
    source = factories.SkuFactory(name="Office 365 E3", availabilities=[("P1Y", "monthly", "20.00")])
    target = factories.SkuFactory(
        name="Office 365 E5", availabilities=[("P1Y", "monthly", "35.00"), ("P3Y", "annual", "33.00")]
    )
    UpgradePath.objects.create(source=source, target=target)
    subscription = factories.SubscriptionFactory(customer=customer, sku=source, quantity=10)
    return subscription, target


@pytest.fixture
def trial(customer):
    paid = factories.SkuFactory(name="Microsoft 365 E3", availabilities=[("P1Y", "monthly", "36.00")])
    return factories.start_trial(
        customer, factories.trial_offer(trial_of=paid), started=datetime(2026, 11, 10, tzinfo=UTC)
    )


def catalog_item(sku, availability) -> str:
    return f"{sku.product.product_id}:{sku.sku_id.split(':')[-1]}:{availability.pk}"


@pytest.mark.rule("U4")
@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"transitionType": "transition_only"}, "transitionType"),
        ({"fromSubscriptionId": "00000000-0000-0000-0000-000000000001"}, "fromSubscriptionId"),
        ({"termDuration": "P3Y"}, "termDuration"),  # the availability named is P1Y, monthly
        ({"billingCycle": "annual"}, "billingCycle"),
    ],
)
def test_a_transition_restating_what_the_server_would_not_do_answers_400_naming_it(api, upgrade, extra, field):
    subscription, target = upgrade
    monthly = target.availabilities.get(term="P1Y")
    before = database_state()
    response = post(api, subscription, {"toCatalogItemId": catalog_item(target, monthly), "quantity": 10, **extra})
    assert response.status_code == 400, response.content
    assert response.json()["description"].startswith(field)
    assert database_state() == before


def test_a_transitions_availability_is_the_term_it_upgrades_to(api, upgrade):
    # given a target sold for a year monthly and for three years annually
    subscription, target = upgrade
    triennial = target.availabilities.get(term="P3Y")
    # when the transition names the 3-year availability, restating the source, type and term as the server will
    body = {
        "toCatalogItemId": catalog_item(target, triennial),
        "quantity": 10,
        "fromSubscriptionId": str(subscription.pk).upper(),
        "transitionType": "transition_with_license_transfer",
        "termDuration": "P3Y",
    }
    response = post(api, subscription, body)
    # then it upgrades to that availability's term and billing cycle (not the source's)
    assert response.status_code == 200, response.content
    subscription.refresh_from_db()
    assert (subscription.sku_id, subscription.term, subscription.billing_frequency) == (target.pk, "P3Y", "annual")
    assert response.json()["toCatalogItemId"] == catalog_item(target, triennial)


def test_a_transitions_availability_of_another_offer_answers_400(api, upgrade):
    subscription, target = upgrade
    other = factories.availability(factories.SkuFactory(name="Elsewhere"))
    before = database_state()
    response = post(api, subscription, {"toCatalogItemId": f"{catalog_item(target, other)}", "quantity": 10})
    assert response.status_code == 400
    assert response.json()["description"].startswith("toCatalogItemId")
    assert database_state() == before


@pytest.mark.rule("U5")
def test_a_term_other_than_the_existing_targets_own_is_refused_and_undone(api, customer, upgrade):
    # given an existing E5 subscription for a year billed monthly (U5: it keeps its term)
    subscription, target = upgrade
    existing = factories.SubscriptionFactory(
        customer=customer, sku=target, availability=target.availabilities.get(term="P1Y"), quantity=5
    )
    item = target_item(api, subscription)[0]
    before = database_state()
    # when licenses are moved into it asking for three years, then 400 names the term and nothing changes
    response = post(
        api,
        subscription,
        {
            "toCatalogItemId": item["catalogItemId"].rsplit(":", 1)[0] + ":",
            "toSubscriptionId": str(existing.pk),
            "quantity": 4,
            "termDuration": "P3Y",
            "billingCycle": "annual",
        },
    )
    assert response.status_code == 400, response.content
    assert response.json()["description"].startswith("termDuration")
    assert database_state() == before


@pytest.mark.rule("TR3")
def test_a_trial_conversion_is_transition_only(api, trial):
    item = target_item(api, trial)[0]
    before = database_state()
    wrong = {
        "toCatalogItemId": item["catalogItemId"],
        "quantity": 25,
        "transitionType": "transition_with_license_transfer",
    }
    refused = post(api, trial, wrong)
    assert (refused.status_code, refused.json()["description"][:14]) == (400, "transitionType")
    assert database_state() == before
    # and without a term (TR2's: a year billed monthly, the service's default), restating the type as it is
    no_availability = item["catalogItemId"].rsplit(":", 1)[0] + ":"
    done = post(api, trial, {**wrong, "toCatalogItemId": no_availability, "transitionType": "Transition_Only"})
    assert done.status_code == 200, done.content
    paid = Subscription.objects.get(pk=done.json()["toSubscriptionId"])
    assert (paid.term, paid.billing_frequency) == ("P1Y", "monthly")


def test_a_three_year_term_billed_once_is_triennial_on_the_wire(api, customer):
    # given an offer sold for three years billed once for the term (the portal's one-time, Partner Center's triennial)
    sku = factories.SkuFactory(
        name="Microsoft 365 E3", availabilities=[("P3Y", "one_time", "1296.00"), ("P1Y", "monthly", "36.00")]
    )
    upfront = sku.availabilities.get(term="P3Y")
    subscription = factories.SubscriptionFactory(customer=customer, sku=sku, availability=upfront, quantity=3)
    path = f"/customers/{customer.pk}/subscriptions/{subscription.pk}"
    # when it is read, then its billingCycle is triennial
    read = api.get(path).json()
    assert (read["termDuration"], read["billingCycle"]) == ("P3Y", "triennial")
    # and sent back as read, or with the portal's spelling, it changes nothing; another cycle is refused by name
    before = database_state()
    for spelling in ("triennial", "Triennial", "one_time", "OneTime"):
        response = api.patch(path, {"billingCycle": spelling}, headers={"If-Match": read["attributes"]["etag"]})
        assert response.status_code == 200, (spelling, response.content)
    assert database_state() == before
    refused = api.patch(path, {"billingCycle": "annual"}, headers={"If-Match": read["attributes"]["etag"]})
    assert refused.status_code == 400 and refused.json()["description"].startswith("billingCycle")
    assert database_state() == before
    # and a cart line names it as triennial too, and is refused with another billing cycle
    line = {"catalogItemId": catalog_item(sku, upfront), "quantity": 2, "termDuration": "P3Y"}
    wrong = api.client.post(
        f"/api/v1/customers/{customer.pk}/carts",
        {"lineItems": [{**line, "billingCycle": "annual"}]},
        content_type="application/json",
        headers={"Authorization": f"Bearer {api.secret}"},
    )
    assert wrong.status_code == 400 and wrong.json()["description"].startswith("billingCycle")
    assert database_state() == before
    created = api.client.post(
        f"/api/v1/customers/{customer.pk}/carts",
        {"lineItems": [{**line, "billingCycle": "Triennial"}]},
        content_type="application/json",
        headers={"Authorization": f"Bearer {api.secret}"},
    )
    assert created.status_code == 201, created.content
    assert created.json()["lineItems"][0]["billingCycle"] == "triennial"
