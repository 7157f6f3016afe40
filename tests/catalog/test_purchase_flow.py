from decimal import Decimal

import pytest

from catalog import cart as cart_services
from catalog.checkout import purchase
from catalog.models import Order, OrderLine
from subscriptions.models import BillingLine, SeatLot, Subscription
from tests import factories


@pytest.mark.rule("O2")
@pytest.mark.django_db(transaction=True)
def test_purchase_is_fulfilled_in_the_background_into_subscriptions(customer, sales, now, worker):
    # given a cart with one license-based line
    sku = factories.SkuFactory(name="Microsoft 365 Business Standard")
    avail = factories.availability(sku)
    cart_services.add_to_cart(
        customer=customer, actor=sales, availability_id=avail.pk, quantity=12, aligned_end_date=None, now=now
    )
    cart = cart_services.current_cart(customer, sales, now)
    # when it is purchased and the worker runs
    order, created = purchase(cart=cart, actor=sales, attested=True, now=now)
    assert created and order.lines.get().status == OrderLine.Status.PENDING
    worker()
    # then the line is fulfilled into an active subscription with its lot and its charge
    order.refresh_from_db()
    line = order.lines.get()
    assert order.status == Order.Status.COMPLETED
    assert line.status == OrderLine.Status.FULFILLED
    sub = Subscription.objects.get(order_line=line)
    assert sub.status == "active" and sub.quantity == 12
    assert SeatLot.objects.get(subscription=sub).quantity == 12
    charge = BillingLine.objects.get(subscription=sub)
    assert charge.amount == Decimal("120.00")
