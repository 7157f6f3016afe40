"""A cart line's `error` is the refusal the checkout would give it now (`catalog.cart.line_refusal`): the offer's
eligibility (C3–C5), its quantity (K6–K8) and its aligned end date (K11), shown on GET and PUT of the cart before
checkout, with the same rule id and sentence the checkout then refuses with; and K7's worked example (RULES.md)."""

import pytest

from catalog.models import Cart, Order, Sku
from subscriptions.models import Subscription
from tests import factories
from tests.api.test_carts_and_orders import carts, create, offer, send, state


def e3_and(addon_limit, name):
    e3 = factories.SkuFactory(name="Microsoft 365 E3")
    addon = factories.SkuFactory(name=name, is_addon=True, addon_limit=addon_limit)
    addon.base_skus.set([e3])
    return e3, addon


def k6(customer):
    """20 Multi-Geo licenses for 400 base ones is K6's minimum; the base then grows to 500 (25 needed)."""
    _e3, addon = e3_and(Sku.AddonLimit.MIN_5_PERCENT_OF_BASE, "Multi-Geo Capabilities in Office 365")
    base = factories.SubscriptionFactory(customer=customer, sku=_e3, quantity=400)
    line = {"catalogItemId": offer(factories.availability(addon)), "quantity": 20}

    def change():
        Subscription.objects.filter(pk=base.pk).update(quantity=500)

    return line, change


def k7(customer):
    """250 Copilot licenses for 250 base ones is K7's maximum; the base then drops to 200."""
    _e3, addon = e3_and(Sku.AddonLimit.MAX_BASE, "Microsoft 365 Copilot")
    base = factories.SubscriptionFactory(customer=customer, sku=_e3, quantity=250)
    line = {"catalogItemId": offer(factories.availability(addon)), "quantity": 250}

    def change():
        Subscription.objects.filter(pk=base.pk).update(quantity=200)

    return line, change


def k8(customer):
    """300 licenses of an offer sold up to 500; its maximum then drops to 250."""
    sku = factories.SkuFactory(name="Microsoft 365 E3")
    line = {"catalogItemId": offer(factories.availability(sku)), "quantity": 300}

    def change():
        Sku.objects.filter(pk=sku.pk).update(max_quantity=250)

    return line, change


def k11(customer):
    """A line aligned to another subscription's end date; that subscription is then suspended (no longer a target)."""
    target = factories.SubscriptionFactory(customer=customer, sku=factories.SkuFactory(name="Teams"))
    sku = factories.SkuFactory(name="Microsoft 365 E3")
    line = {
        "catalogItemId": offer(factories.availability(sku)),
        "quantity": 5,
        "customTermEndDate": f"{target.term_end:%Y-%m-%d}T00:00:00Z",
    }

    def change():
        Subscription.objects.filter(pk=target.pk).update(status="suspended")

    return line, change


@pytest.mark.parametrize(
    "rule, setup",
    [
        pytest.param("K6", k6, marks=pytest.mark.rule("K6")),
        pytest.param("K7", k7, marks=pytest.mark.rule("K7")),
        pytest.param("K8", k8, marks=pytest.mark.rule("K8")),
        pytest.param("K11", k11, marks=pytest.mark.rule("K11")),
    ],
)
@pytest.mark.rule("K9")
def test_a_line_the_checkout_would_refuse_shows_that_refusal_on_get_and_put(api, customer, rule, setup):
    # given a cart whose line the checkout would accept
    line, change = setup(customer)
    created = send(api, "POST", carts(customer), {"lineItems": [line], "partnerOnRecordAttestationAccepted": True})
    assert created.status_code == 201, created.content
    assert created.json()["lineItems"][0]["error"] is None
    path = f"{carts(customer)}/{created.json()['id']}"
    # when something the line's rule reads changes
    change()
    # then GET shows the rule and sentence the checkout refuses with
    read = api.get(path).json()
    error = read["lineItems"][0]["error"]
    assert error is not None and error["ruleId"] == rule
    # and so does a PUT of the cart as read (which changes nothing of the line)
    put = send(api, "PUT", path, read, {"If-Match": read["attributes"]["etag"]})
    assert put.status_code == 200, put.content
    assert put.json()["lineItems"][0]["error"] == error
    # and the checkout refuses that line with the same rule and sentence, buying nothing
    before = state()
    refused = send(api, "POST", f"{path}/checkout")
    assert refused.status_code in (400, 422)
    assert [(item["key"], item["ruleId"], item["description"]) for item in refused.json()["data"]] == [
        ("lineItems[0]", rule, error["errorDescription"])
    ]
    assert state() == before


@pytest.mark.rule("K7")
def test_k7_250_base_licenses_with_this_and_another_partner_allow_250_copilot_licenses(api, customer):
    # given (RULES.md's example) 250 base licenses: 150 with this partner, 100 held by the same tenant with another
    e3, copilot = e3_and(Sku.AddonLimit.MAX_BASE, "Microsoft 365 Copilot")
    factories.SubscriptionFactory(customer=customer, sku=e3, quantity=150)
    elsewhere = factories.CustomerFactory(partner=factories.PartnerFactory(), tenant_id=customer.tenant_id)
    factories.SubscriptionFactory(customer=elsewhere, sku=e3, quantity=100)
    way = factories.availability(copilot)
    # when 251 Copilot licenses are put in a cart, then K7 refuses them and nothing is created
    before = state()
    refused = create(api, customer, (way, 251))
    assert (refused.status_code, refused.json()["code"], refused.json()["ruleId"]) == (400, 800088, "K7")
    assert refused.json()["description"] == (
        "Microsoft 365 Copilot can have at most 250 licenses: the customer's base licenses with every partner and in "
        "this cart."
    )
    assert state() == before
    # and 250 are accepted, with no refusal on the line
    accepted = create(api, customer, (way, 250))
    assert accepted.status_code == 201, accepted.content
    assert accepted.json()["lineItems"][0]["error"] is None
    # and raising that line to 251 by PUT is refused the same way, changing nothing
    cart = accepted.json()
    before = state()
    body = {**cart, "lineItems": [{**cart["lineItems"][0], "quantity": 251}]}
    raised = send(api, "PUT", f"{carts(customer)}/{cart['id']}", body, {"If-Match": cart["attributes"]["etag"]})
    assert (raised.status_code, raised.json()["ruleId"]) == (400, "K7")
    assert state() == before


@pytest.mark.rule("K3")
def test_k3_an_attestation_change_is_a_change_of_the_cart_and_stales_its_etag(api, customer):
    # given a cart created without the attestation
    way = factories.availability(factories.SkuFactory(name="Microsoft 365 E3"))
    created = create(api, customer, (way, 5), attested=False).json()
    path = f"{carts(customer)}/{created['id']}"
    old = {"If-Match": created["attributes"]["etag"]}
    # when only the attestation is accepted by PUT
    accepted = send(api, "PUT", path, {**created, "partnerOnRecordAttestationAccepted": True}, old)
    # then the cart carries it under a new etag (its version bumped with it, in the cart's service)
    assert accepted.status_code == 200, accepted.content
    assert accepted.json()["partnerOnRecordAttestationAccepted"] is True
    assert accepted.json()["attributes"]["etag"] != created["attributes"]["etag"]
    assert Cart.objects.get().attestation_accepted is True
    # and the etag read before it is stale: a PUT withdrawing it and a checkout with it answer 412, changing nothing
    before = state()
    stale = send(api, "PUT", path, {**created, "partnerOnRecordAttestationAccepted": False}, old)
    assert stale.status_code == 412
    assert send(api, "POST", f"{path}/checkout", headers=old).status_code == 412
    assert state() == before and Cart.objects.get().attestation_accepted is True
    # and a cart sent back as read changes nothing, not even its etag
    again = send(api, "PUT", path, accepted.json(), {"If-Match": accepted.json()["attributes"]["etag"]})
    assert again.status_code == 200
    assert again.json()["attributes"]["etag"] == accepted.json()["attributes"]["etag"]
    # and the checkout buys with the attestation the cart carries
    bought = send(api, "POST", f"{path}/checkout", headers={"If-Match": accepted.json()["attributes"]["etag"]})
    assert bought.status_code == 201, bought.content
    assert Order.objects.get().attested_as == "direct"
