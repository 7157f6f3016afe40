"""An order waiting longer than expected says so, on its page (and the page's htmx poll) and on its confirmation;
the verdict is subscriptions.recovery.order_delay, the definition the sweep and the admin use. Now is 2026-11-25
12:00 UTC."""

import re
from datetime import timedelta
from html import unescape

import pytest
from django.urls import reverse

from subscriptions import recovery
from subscriptions.states import Status
from tests import factories


def notice(page: str) -> str | None:
    """The text of the page's "waiting longer than expected" notice, or None."""
    match = re.search(r'<div class="msgbar msgbar-warning" role="status" id="order-delay">(.*?)</div>', page, re.S)
    return " ".join(unescape(match.group(1)).split()) if match else None


ADVICE = (
    "The portal retries automatically and never creates a subscription twice. If it is still waiting an hour "
    "after it was placed, contact support with the order number."
)


def order_pages(client, order):
    args = [order.customer_id, order.pk]
    return (
        client.get(reverse("catalog:order-detail", args=args)).content.decode(),
        client.get(reverse("catalog:order-detail", args=args), HTTP_HX_REQUEST="true").content.decode(),
        client.get(reverse("catalog:order-confirmation", args=args)).content.decode(),
    )


@pytest.mark.rule("O2")
def test_an_order_pending_past_the_grace_period_says_it_is_taking_longer(signed_in, sales, customer, now):
    # given an order placed 3 minutes ago (fulfilment takes under a minute), still pending
    order = factories.OrderFactory(customer=customer, placed_by=sales, created_at=now - timedelta(minutes=3))
    factories.OrderLineFactory(order=order)
    # when its page, its htmx poll and its confirmation are opened
    pages = order_pages(signed_in, order)
    # then each says it is taking longer than expected, since when, and what happens next
    expected = (
        "This order is taking longer than expected: placed 2026-11-25 11:57 UTC, its subscriptions are not "
        "created yet (this usually takes under a minute). " + ADVICE
    )
    assert [notice(page) for page in pages] == [expected] * 3


@pytest.mark.rule("O2")
def test_an_order_inside_the_grace_period_says_nothing_more(signed_in, sales, customer, now):
    # given an order placed a minute ago, pending
    order = factories.OrderFactory(customer=customer, placed_by=sales, created_at=now - timedelta(minutes=1))
    factories.OrderLineFactory(order=order)
    # when its pages are opened, then none says it is late
    assert [notice(page) for page in order_pages(signed_in, order)] == [None] * 3
    # and from the grace period on, it is late
    assert recovery.order_delay(order, now - timedelta(minutes=1) + recovery.GRACE).waiting_for == "fulfillment"


def fulfilled(customer, sales, *, created, isv=False, status=Status.PENDING):
    order = factories.OrderFactory(customer=customer, placed_by=sales, created_at=created, completed=True)
    line = factories.OrderLineFactory(
        order=order, fulfilled=True, availability=factories.availability(factories.SkuFactory(isv=isv))
    )
    factories.SubscriptionFactory(
        customer=customer,
        sku=line.sku,
        availability=line.availability,
        order_line=line,
        status=status,
        created_at=created,
    )
    return order


@pytest.mark.rule("O2")
def test_a_completed_order_whose_subscription_is_still_provisioning_says_so(signed_in, sales, customer, now):
    # given an order fulfilled 10 minutes ago whose Microsoft subscription is still pending provisioning
    order = fulfilled(customer, sales, created=now - timedelta(minutes=10))
    # when its page and its confirmation are opened
    page, _poll, confirmation = order_pages(signed_in, order)
    # then both say the subscription is still being provisioned
    expected = (
        "This order is taking longer than expected: 1 subscription created 2026-11-25 11:50 UTC is still "
        "being provisioned (this usually takes under a minute). " + ADVICE
    )
    assert [notice(page), notice(confirmation)] == [expected, expected]


@pytest.mark.rule("S3")
def test_an_isv_subscription_awaiting_its_publisher_or_an_active_one_is_not_late(signed_in, sales, customer, now):
    # given an order whose ISV subscription waits for the publisher's set-up, and one whose subscription is active
    waiting_for_publisher = fulfilled(customer, sales, created=now - timedelta(days=1), isv=True)
    provisioned = fulfilled(customer, sales, created=now - timedelta(days=1), status=Status.ACTIVE)
    # when their pages are opened, then neither says it is late
    for order in (waiting_for_publisher, provisioned):
        assert [notice(page) for page in order_pages(signed_in, order)] == [None] * 3
