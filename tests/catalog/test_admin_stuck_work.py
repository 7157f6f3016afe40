"""Stuck work in the Django admin: orders "waiting longer than expected" (the definition the order page and the
sweep use), and on an order's page its verdict and its background tasks, lost ones marked. Now is 2026-11-25 12:00
UTC."""

import re
from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.urls import reverse
from django_tasks_db.models import DBTaskResult

from subscriptions.services import fulfill_order_task, provision_subscription_task
from subscriptions.states import Status
from tests import factories
from tests.helpers import visible_text


@pytest.fixture
def operator(client, direct_partner, now):
    user = factories.staff(direct_partner, "admin_agent")
    get_user_model().objects.filter(pk=user.pk).update(is_staff=True, is_superuser=True)
    client.force_login(user)
    return client


def listed(page: str) -> list[str]:
    return re.findall(r'<th class="field-number"><a href="[^"]+">(ORD-\d+)</a></th>', page)


def claimed(task, argument, *, at):
    """A task its worker died running (kill -9): RUNNING since `at`, for ever."""
    with time_machine.travel(at, tick=False):
        row = DBTaskResult.objects.get(pk=task.enqueue(argument).id)
        row.claim("worker-1")
    return row


@pytest.fixture
def orders(customer, sales, now):
    def order(minutes_ago, **kwargs):
        return factories.OrderFactory(
            customer=customer, placed_by=sales, created_at=now - timedelta(minutes=minutes_ago), **kwargs
        )

    late = order(10)
    factories.OrderLineFactory(order=late)
    fresh = order(1)
    factories.OrderLineFactory(order=fresh)
    done = order(60, completed=True)
    factories.OrderLineFactory(order=done, fulfilled=True)
    # fulfilled 10 minutes ago, its Microsoft subscription still waiting to be provisioned
    provisioning = order(10, completed=True)
    line = factories.OrderLineFactory(order=provisioning, fulfilled=True)
    subscription = factories.SubscriptionFactory(
        customer=customer,
        sku=line.sku,
        availability=line.availability,
        order_line=line,
        status=Status.PENDING,
        created_at=now - timedelta(minutes=10),
    )
    return {"late": late, "fresh": fresh, "done": done, "provisioning": provisioning, "subscription": subscription}


def test_the_order_list_filters_the_orders_waiting_longer_than_expected(operator, orders):
    url = reverse("admin:catalog_order_changelist")
    # when the operator opens the order list, then the filter is offered
    page = operator.get(url).content.decode()
    assert "By waiting longer than expected" in page
    assert "?waiting=yes" in page
    # when the filter is applied
    stuck = operator.get(url, {"waiting": "yes"}).content.decode()
    # then it lists the order pending past the grace period and the one whose provisioning is late, nothing else
    assert sorted(listed(stuck)) == sorted([orders["late"].number, orders["provisioning"].number])
    assert sorted(listed(page)) == sorted(o.number for key, o in orders.items() if key != "subscription")


def field(page: str, name: str) -> str:
    match = re.search(rf'<div class="form-row field-{name}">(.*?)</div>\s*</div>', page, re.S)
    assert match, f"no {name} on the page"
    return visible_text(match.group(1))


def test_a_stuck_orders_page_shows_its_verdict_and_its_tasks(operator, orders, now):
    # given the late order's fulfilment task, lost with its worker 10 minutes ago, and the task that replaced it
    order = orders["late"]
    lost = claimed(fulfill_order_task, order.pk, at=now - timedelta(minutes=10))
    with time_machine.travel(now - timedelta(seconds=30), tick=False):
        replacement = DBTaskResult.objects.get(pk=fulfill_order_task.enqueue(order.pk).id)
    # when the operator opens the order
    page = operator.get(reverse("admin:catalog_order_change", args=[order.pk])).content.decode()
    # then it says why it is late and lists its tasks, newest first, the lost one marked presumed lost
    assert field(page, "waiting") == (
        "Waiting longer than expected: This order is taking longer than expected: placed "
        "2026-11-25 11:50 UTC, its subscriptions are not created yet (this usually "
        "takes under a minute)."
    )
    tasks = field(page, "background_tasks")
    assert tasks == (
        "Background tasks: Task Run on State Enqueued (UTC) Started (UTC) Finished (UTC) Workers "
        f"fulfill_order_task {order.pk} queued 2026-11-25 11:59 UTC — — — "
        f"fulfill_order_task {order.pk} presumed lost: running since 2026-11-25 11:50 UTC with no result "
        "2026-11-25 11:50 UTC 2026-11-25 11:50 UTC — worker-1"
    )
    for row in (replacement, lost):
        assert reverse("admin:django_tasks_database_dbtaskresult_change", args=[row.pk]) in page


def test_an_orders_page_lists_its_subscriptions_provisioning_tasks(operator, orders, now):
    # given the order whose subscription's provisioning task was lost
    subscription = orders["subscription"]
    claimed(provision_subscription_task, str(subscription.pk), at=now - timedelta(minutes=10))
    # when the operator opens it, then it shows the verdict and that task
    page = operator.get(reverse("admin:catalog_order_change", args=[orders["provisioning"].pk])).content.decode()
    assert field(page, "waiting").startswith(
        "Waiting longer than expected: This order is taking longer than "
        "expected: 1 subscription created 2026-11-25 11:50 UTC is still being "
        "provisioned"
    )
    assert f"provision_subscription_task {subscription.pk} presumed lost: running since 2026-11-25 11:50 UTC" in field(
        page, "background_tasks"
    )


def test_an_order_on_time_says_so(operator, orders):
    page = operator.get(reverse("admin:catalog_order_change", args=[orders["done"].pk])).content.decode()
    assert (field(page, "waiting"), field(page, "background_tasks")) == (
        "Waiting longer than expected: No",
        "Background tasks: None",
    )
