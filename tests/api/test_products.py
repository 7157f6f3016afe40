"""The customer's catalog through the API (C2–C5): the page's FilterSet and each offer's verdict (C4)."""

import pytest

from tests import factories


@pytest.fixture
def offers(db):
    return {
        "e3": factories.SkuFactory(name="Microsoft 365 E3", availabilities=[("P1Y", "monthly", "36.00")]),
        "backup": factories.SkuFactory(name="Cloud Backup", availabilities=[("P1Y", "monthly", "8.00")]),
        "once": factories.SkuFactory(name="Tenant Shield", one_per_customer=True),
    }


def listed(api, customer, **params):
    response = api.get(f"/customers/{customer.pk}/products", **params)
    assert response.status_code == 200, response.content
    return response.json()


@pytest.mark.rule("C2")
def test_the_catalog_filters_as_its_page_does(api, customer, offers):
    titles = {i["title"] for i in listed(api, customer)["items"]}
    assert {"Microsoft 365 E3", "Cloud Backup", "Tenant Shield"} <= titles
    assert [i["title"] for i in listed(api, customer, q="Backup")["items"]] == ["Cloud Backup"]
    # a value the FilterSet rejects is ignored, as on the page
    assert {i["title"] for i in listed(api, customer, category="nonsense")["items"]} == titles


@pytest.mark.rule("C4a")
def test_an_offer_held_once_says_why_it_cant_be_bought_again(api, customer, offers):
    factories.SubscriptionFactory(customer=customer, sku=offers["once"])
    item = next(i for i in listed(api, customer)["items"] if i["title"] == "Tenant Shield")
    assert item["purchasable"] is False
    assert item["refusal"]["ruleId"] == "C4a"
    e3 = next(i for i in listed(api, customer)["items"] if i["title"] == "Microsoft 365 E3")
    assert e3["purchasable"] is True and e3["availabilities"][0]["unitPrice"] == "36.00"
    # the catalogItemId is what a cart line buys
    assert e3["availabilities"][0]["catalogItemId"].endswith(f":{offers['e3'].availabilities.get().pk}")


def test_the_catalog_pages_with_a_continuation_token(api, customer, offers):
    first = listed(api, customer, size=2)
    seen = [i["title"] for i in first["items"]]
    token = first["continuationToken"]
    while token:
        page = api.get(f"/customers/{customer.pk}/products", headers={"MS-ContinuationToken": token}, size=2).json()
        seen += [i["title"] for i in page["items"]]
        token = page["continuationToken"]
    assert sorted(seen) == sorted({i["title"] for i in listed(api, customer, size=100)["items"]})
    assert len(seen) == len(set(seen))
    bad = api.get(f"/customers/{customer.pk}/products", headers={"MS-ContinuationToken": "WyJ4Il0"})
    assert bad.status_code == 400
