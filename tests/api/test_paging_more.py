"""Seek paging of the transfers and billing lines lists (MS-ContinuationToken, `size` bounded), as the other lists:
every row once, in order, whatever the page size."""

from datetime import timedelta

import pytest

from subscriptions import transfers
from tests import factories
from tests.subscriptions.test_transfers import related


def walk(api, url, size):
    """Every page of a list, following links.next with its continuation token."""
    pages = [api.get(url, size=size).json()]
    while pages[-1]["continuationToken"]:
        following = pages[-1]["links"]["next"]
        assert following["headers"][0]["key"] == "MS-ContinuationToken"
        pages.append(api.get(url, headers={"MS-ContinuationToken": following["headers"][0]["value"]}, size=size).json())
    return pages


@pytest.fixture
def five_transfers(customer, direct_partner, now):
    """Five requests the target partner filed (each ended before the next: one is pending at a time), oldest first."""
    target = factories.PartnerFactory(name="Fabrikam Cloud")
    target_user = factories.staff(target, "admin_agent")
    theirs = related(target_user, customer, now).customer
    filed = []
    for n in range(5):
        at = now + timedelta(minutes=n)
        request = transfers.file_transfer_request(
            actor=target_user,
            customer=theirs,
            source_partner_id=direct_partner.partner_id,
            notification_email="it@example.com",
            now=at,
        )
        transfers.cancel_transfer_request(actor=target_user, request_id=request.pk, now=at)
        filed.append(request)
    return filed


@pytest.mark.rule("TF2")
def test_the_transfers_list_pages_newest_first_with_a_continuation_token(api, customer, five_transfers):
    url = f"/customers/{customer.pk}/transfers"
    pages = walk(api, url, size=2)
    assert [len(p["items"]) for p in pages] == [2, 2, 1]
    assert [t["id"] for p in pages for t in p["items"]] == [str(t.pk) for t in reversed(five_transfers)]
    assert api.get(url).json()["continuationToken"] is None  # one page of the default size


@pytest.mark.rule("L2")
def test_the_billing_lines_page_oldest_first_with_a_continuation_token(api, subscription):
    # given five lines, the newest first in the database (so the order is the list's, not the insertion's)
    for n in reversed(range(5)):
        factories.BillingLineFactory(
            subscription=subscription, quantity=n + 1, created_at=subscription.term_start + timedelta(days=n)
        )
    url = f"/customers/{subscription.customer_id}/subscriptions/{subscription.pk}/billingLines"
    pages = walk(api, url, size=2)
    assert [len(p["items"]) for p in pages] == [2, 2, 1]
    assert [line["quantity"] for p in pages for line in p["items"]] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("size", ["0", "501", "-1", "x"])
@pytest.mark.parametrize("list_of", ["transfers", "billingLines"])
def test_a_size_out_of_bounds_or_a_foreign_token_answers_400(api, subscription, size, list_of):
    base = f"/customers/{subscription.customer_id}"
    url = f"{base}/transfers" if list_of == "transfers" else f"{base}/subscriptions/{subscription.pk}/billingLines"
    assert api.get(url, size=size).status_code == 400
    assert api.get(url, headers={"MS-ContinuationToken": "bm90IGEgdG9rZW4"}).status_code == 400
