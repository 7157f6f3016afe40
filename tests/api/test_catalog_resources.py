"""Partner Center's product resources for a customer (a product, its SKUs, each SKU's availabilities): the portal's
Product, Sku and Availability, each SKU and availability with the catalog card's verdict (C4)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from api import wire
from tests import factories


@pytest.fixture
def e3(db):
    product = factories.ProductFactory(name="Microsoft 365 E3", description="Productivity and security")
    return factories.SkuFactory(
        product=product,
        sku_id=f"{product.product_id}:0001",
        name="Microsoft 365 E3",
        availabilities=[("P1Y", "monthly", "36.00"), ("P1M", "monthly", "43.20"), ("P1Y", "annual", "432.00")],
    )


def get(api, path, status=200):
    response = api.get(path)
    assert response.status_code == status, response.content
    return response.json()


def product_uri(customer, sku):
    return f"/customers/{customer.pk}/products/{sku.product.product_id}"


def test_a_product_its_skus_and_their_availabilities_read_as_partner_center_has_them(api, customer, e3):
    # given
    base = product_uri(customer, e3)
    # when
    product = get(api, base)
    skus = get(api, f"{base}/skus")
    sku = get(api, f"{base}/skus/0001")
    ways = get(api, f"{base}/skus/0001/availabilities")
    # then
    assert product == {
        "id": e3.product.product_id,
        "title": "Microsoft 365 E3",
        "description": "Productivity and security",
        "productType": {"id": "OnlineServicesNCE", "displayName": "OnlineServicesNCE", "subType": None},
        "isMicrosoftProduct": True,
        "publisherName": e3.product.publisher.name,
        "links": {
            "self": {"uri": base, "method": "GET", "headers": []},
            "skus": {"uri": f"{base}/skus", "method": "GET", "headers": []},
        },
        "attributes": {"objectType": "Product", "etag": None},
    }
    assert skus["totalCount"] == 1 and skus["items"] == [sku]
    assert skus["links"]["self"]["uri"] == f"{base}/skus"
    assert sku["id"] == "0001" and sku["productId"] == e3.product.product_id
    assert sku["supportedBillingCycles"] == ["monthly", "annual"]
    assert sku["purchasable"] is True and sku["refusal"] is None
    assert sku["links"]["availabilities"]["uri"] == f"{base}/skus/0001/availabilities"
    assert sku["attributes"]["objectType"] == "Sku"
    by_term = {(a["termDuration"], a["billingCycle"]): a for a in ways["items"]}
    yearly = e3.availabilities.get(term="P1Y", billing_frequency="monthly")
    assert by_term[("P1Y", "monthly")] == {
        "id": str(yearly.pk),
        "productId": e3.product.product_id,
        "skuId": "0001",
        "catalogItemId": f"{e3.product.product_id}:0001:{yearly.pk}",
        "termDuration": "P1Y",
        "billingCycle": "monthly",
        "terms": [{"duration": "P1Y", "billingCycle": "monthly", "description": "1 year, billed monthly"}],
        "unitPrice": "36.00",
        "currency": "USD",
        "purchasable": True,
        "refusal": None,
        "links": {
            "self": {"uri": f"{base}/skus/0001/availabilities/{yearly.pk}", "method": "GET", "headers": []},
            "product": {"uri": base, "method": "GET", "headers": []},
            "sku": {"uri": f"{base}/skus/0001", "method": "GET", "headers": []},
        },
        "attributes": {"objectType": "Availability", "etag": None},
    }
    assert by_term[("P1M", "monthly")]["unitPrice"] == "43.20"
    assert by_term[("P1Y", "annual")]["unitPrice"] == "432.00"
    assert get(api, f"{base}/skus/0001/availabilities/{yearly.pk}") == by_term[("P1Y", "monthly")]


def test_a_sku_spelled_as_the_portal_stores_it_is_found_too(api, customer):
    # given: a SKU whose id doesn't start with its product's (the factories' default)
    sku = factories.SkuFactory()
    # when / then
    found = get(api, f"{product_uri(customer, sku)}/skus/{sku.sku_id}")
    assert found["id"] == sku.sku_id


@pytest.mark.rule("C4a")
def test_an_offer_held_once_says_why_on_its_sku_and_each_availability_and_changes_nothing(api, customer):
    # given: an offer sold once that the customer holds
    once = factories.SkuFactory(name="Tenant Shield", one_per_customer=True)
    factories.SubscriptionFactory(customer=customer, sku=once)
    base = f"{product_uri(customer, once)}/skus/{wire.sku_part(once)}"
    # when
    sku = get(api, base)
    ways = get(api, f"{base}/availabilities")["items"]
    # then: the catalog card's rule and sentence, on the SKU and on each way to buy it
    page = api.get(f"/customers/{customer.pk}/products").json()["items"]
    card = next(i for i in page if i["title"] == "Tenant Shield")
    assert card["refusal"]["ruleId"] == "C4a"
    assert sku["purchasable"] is False and sku["refusal"] == card["refusal"]
    assert len(ways) == 2 and all(w["purchasable"] is False and w["refusal"] == card["refusal"] for w in ways)


@pytest.mark.rule("C4f")
def test_an_offer_bought_in_the_azure_portal_is_refused_with_the_cards_sentence(api, customer):
    azure = factories.SkuFactory(transactable_in_portal=False)
    sku = get(api, f"{product_uri(customer, azure)}/skus/{wire.sku_part(azure)}")
    assert sku["purchasable"] is False
    assert sku["refusal"] == {
        "ruleId": "C4f",
        "description": "This offer can't be bought here (containers, some consumption offers): buy it in the Azure portal.",
    }


@pytest.mark.parametrize(
    "tail",
    [
        "/products/NOPE",
        "/products/NOPE/skus",
        "/products/{product}/skus/9999",
        "/products/{product}/skus/9999/availabilities",
        "/products/{product}/skus/0001/availabilities/999999",
        "/products/{product}/skus/0001/availabilities/abc",
        "/products/{product}/skus/0001/availabilities/{other}",
        "/products/%00/skus",
        "/products/{product}/skus/%00",
        "/products/" + "X" * 300,
    ],
)
def test_unknown_ids_answer_404_in_the_envelope(api, customer, e3, tail):
    # given: another SKU's availability is no availability of this one
    other = factories.SkuFactory().availabilities.first()
    path = f"/customers/{customer.pk}" + tail.format(product=e3.product.product_id, other=other.pk)
    # when
    body = get(api, path, status=404)
    # then
    assert body["code"] == 1_000_404 and body["description"]


def test_another_partners_customer_answers_404(api, e3):
    theirs = factories.CustomerFactory()
    body = get(api, f"{product_uri(theirs, e3)}/skus/0001", status=404)
    assert body["code"] == 1_000_404


@pytest.mark.parametrize("path", ["/skus", "/skus/0001/availabilities"])
def test_the_queries_do_not_grow_with_the_skus_and_availabilities(api, customer, e3, path):
    # given: the same product with one SKU of one availability, then with four SKUs of three
    product = e3.product
    base = f"/customers/{customer.pk}/products/{product.product_id}"
    small = factories.ProductFactory()
    factories.SkuFactory(product=small, sku_id=f"{small.product_id}:0001", availabilities=[("P1Y", "monthly", "1")])
    get(api, f"/customers/{customer.pk}/products/{small.product_id}{path}")  # warms the listing facts' cache
    with CaptureQueriesContext(connection) as one:
        assert get(api, f"/customers/{customer.pk}/products/{small.product_id}{path}")["totalCount"] == 1
    for n in range(2, 5):
        factories.SkuFactory(
            product=product,
            sku_id=f"{product.product_id}:000{n}",
            availabilities=[("P1Y", "monthly", "1"), ("P1M", "monthly", "2"), ("P1Y", "annual", "3")],
        )
    get(api, f"{base}{path}")
    # when
    with CaptureQueriesContext(connection) as many:
        answered = get(api, f"{base}{path}")
    # then
    assert answered["totalCount"] == (4 if path == "/skus" else 3)
    assert len(many) == len(one), [q["sql"] for q in many]


def test_a_subscription_and_an_order_line_link_to_the_catalog_resources(api, customer, subscription):
    # given
    sku = subscription.sku
    base = f"/customers/{customer.pk}/products/{sku.product.product_id}"
    # when
    links = get(api, f"/customers/{customer.pk}/subscriptions/{subscription.pk}")["links"]
    # then: each link answers
    assert links["product"]["uri"] == base
    assert links["sku"]["uri"] == f"{base}/skus/{wire.sku_part(sku)}"
    assert (
        links["availability"]["uri"]
        == f"{base}/skus/{wire.sku_part(sku)}/availabilities/{subscription.availability_id}"
    )
    for name in ("product", "sku", "availability"):
        assert api.get(links[name]["uri"]).status_code == 200


def test_an_order_line_links_to_the_catalog_resources(api, customer):
    # given: an order placed, not fulfilled yet (no subscription to link to)
    line = factories.OrderLineFactory(order=factories.OrderFactory(customer=customer))
    # when
    (item,) = get(api, f"/customers/{customer.pk}/orders/{line.order.number}")["lineItems"]
    # then
    assert set(item["links"]) == {"product", "sku", "availability"}
    availability = get(api, item["links"]["availability"]["uri"])
    assert availability["catalogItemId"] == item["offerId"]
    assert get(api, item["links"]["sku"]["uri"])["id"] == wire.sku_part(line.sku)
