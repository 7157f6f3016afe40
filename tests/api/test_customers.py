"""The partner's customers through the API (T3): only its own, by company name, a page at a time."""

from tests import factories


def test_the_customers_are_the_partners_own_by_name_in_pages(api, direct_partner):
    mine = [factories.CustomerFactory(partner=direct_partner, company_name=f"Cust {i:02d}") for i in range(5)]
    factories.CustomerFactory(company_name="Cust 99 of another partner")
    first = api.get("/customers", size=2).json()
    names = [c["companyProfile"]["companyName"] for c in first["items"]]
    token = first["continuationToken"]
    while token:
        page = api.get("/customers", headers={"MS-ContinuationToken": token}, size=2).json()
        names += [c["companyProfile"]["companyName"] for c in page["items"]]
        token = page["continuationToken"]
    assert names == sorted(c.company_name for c in mine)
    one = api.get(f"/customers/{mine[0].pk}").json()
    assert (one["id"], one["companyProfile"]["tenantId"]) == (str(mine[0].pk), str(mine[0].tenant_id))
    for bad in ("!!", "WyJ4Il0", "WyJ4IiwieSJd", "WyJcdTAwMDAiLCJ5Il0"):
        assert api.get("/customers", headers={"MS-ContinuationToken": bad}).status_code == 400, bad
