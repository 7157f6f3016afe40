"""Helpers shared by the tests."""

import re
import threading
from html import unescape

from django.apps import apps
from django.contrib.admin.models import LogEntry
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from catalog import cart as cart_services
from catalog.checkout import purchase
from catalog.models import Cart
from subscriptions.models import BillingLine
from tests import factories

# The apps whose tables a person's action, a task or the admin can write.
STATE_APPS = {"portal", "catalog", "subscriptions", "auth", "admin", "django_tasks_database"}


def database_state(*app_labels: str) -> dict:
    """Every row of every table an action could touch (or of these apps' tables), field by field, whatever fields a
    model gains: what a refused action, a repeated submit or a GET must leave exactly as it was."""
    labels = set(app_labels) or STATE_APPS
    return {
        m._meta.label: list(m._default_manager.order_by("pk").values())
        for m in [*apps.get_models(), LogEntry]
        if m._meta.app_label in labels
    }


def drawn(obj, data=None) -> dict:
    """Form data as the page of `obj` (a subscription, a cart, a transfer) draws it: with the version it shows now
    (portal/versions.py), as a person's browser posts it back."""
    version = type(obj)._default_manager.filter(pk=obj.pk).values_list("version", flat=True).first()
    return {"version": str(version or 1), **(data or {})}


def cart_drawn(customer, data=None) -> dict:
    """Form data as the customer's cart page (or catalog) draws it: with the open cart's version, 0 when none."""
    version = Cart.objects.filter(customer=customer, status=Cart.Status.OPEN).values_list("version", flat=True).first()
    return {"version": str(version or 0), **(data or {})}


def add_to_cart(customer, actor, availability, quantity, now, aligned_end_date=None):
    """The "Add to cart" service for one availability (what the catalog's button posts)."""
    return cart_services.add_to_cart(
        customer=customer,
        actor=actor,
        availability_id=availability.pk,
        quantity=quantity,
        aligned_end_date=aligned_end_date,
        now=now,
    )


def buy(customer, actor, now, *skus, quantity: int = 10):
    """The order a partner places, confirmed, for `quantity` licenses of each SKU (1 year billed monthly)."""
    for sku in skus:
        add_to_cart(customer, actor, factories.availability(sku), quantity, now)
    order, created = purchase(
        cart=cart_services.current_cart(customer, actor, now), actor=actor, attested=True, now=now
    )
    assert created
    return order


def subscription_url(action: str, subscription, **query) -> str:
    """The subscription page's URL (action "detail") or one of its actions', with a query string."""
    path = reverse(f"subscriptions:subscription-{action}", args=[subscription.customer_id, subscription.pk])
    return path + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def visible_text(fragment: str) -> str:
    """The text of an HTML fragment as a person reads it: tags dropped, entities read, whitespace collapsed."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def card_text(response, card_id: str) -> str:
    """The visible text of the page's card (a panel) with this id."""
    match = re.search(rf'<section class="card" id="{card_id}".*?</section>', response.content.decode(), re.S)
    assert match, f"no {card_id} panel"
    return visible_text(match.group(0))


def list_url(customer, query: str = "") -> str:
    """The customer's subscription list, with a query string."""
    return reverse("subscriptions:subscription-list", args=[customer.pk]) + query


# The subscriptions of every customer of the partner.
ALL_URL = reverse("subscriptions:all-subscriptions")


def ids(page: str) -> list[str]:
    """The subscription ids a list page shows, in its order."""
    return re.findall(r"<code>([0-9a-f-]{36})</code>", page)


def count_queries(client, url) -> int:
    """How many queries the page at `url` takes (it must answer 200)."""
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries.captured_queries)


def billing_of(subscription) -> list[tuple]:
    """The subscription's billing lines (L2), oldest first, with every field a partner reads."""
    return list(
        BillingLine.objects.filter(subscription=subscription).values_list(
            "kind", "amount", "currency", "quantity", "unit_price", "period_start", "period_end", "explanation"
        )
    )


def at_once(*calls, refusals=()):
    """Runs the calls in threads released together (a double click, two tabs, two engines), each with its own
    database connection; returns (results, refusals): what they returned, and the exceptions of the `refusals`
    types they raised. Any other exception is raised here, in the test's thread."""
    barrier = threading.Barrier(len(calls))
    results, refused, errors = [], [], []

    def run(call):
        try:
            barrier.wait(timeout=10)
            results.append(call())
        except refusals as refusal:
            refused.append(refusal)
        except BaseException as error:  # re-raised in the test's thread below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    if errors:
        raise errors[0]
    return results, refused
