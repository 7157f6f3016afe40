"""Prepared queries (portal.prepared): the same rows as the ORM's, with each run's own values."""

from datetime import timedelta
from decimal import Decimal
from functools import partial
from uuid import uuid4

import pytest
from django.db import connection, connections
from django.db.models import F, Q
from django.test.utils import CaptureQueriesContext

from portal import access, prepared
from portal.models import Customer
from subscriptions.models import AuditEntry, SeatLot, Subscription
from tests import factories

pytestmark = pytest.mark.django_db


def _by_customer_and_status(customer_id, status, since):
    return (Subscription.objects.filter(customer_id=customer_id, status=status, created_at__gte=since)
            .order_by("list_name", "pk").values_list("pk", "list_name", "quantity", "unit_price", "term_end"))


def test_rows_are_the_orms_for_each_runs_values(now):
    # given two customers with subscriptions in various states, created at various times
    first, second = factories.CustomerFactory(), factories.CustomerFactory()
    for customer, names in ((first, ["B", "A", "C"]), (second, ["Z", "Y"])):
        for n, name in enumerate(names):
            factories.SubscriptionFactory(customer=customer, friendly_name=name, created_at=now - timedelta(days=n))
    factories.SubscriptionFactory(customer=first, friendly_name="Suspended", suspended=True)
    # when the same shape is run with each customer's values
    for customer, status, since in ((first, "active", now - timedelta(days=1)), (second, "active", now - timedelta(days=9)),
                                    (first, "suspended", now - timedelta(days=9)), (second, "deleted", now)):
        got = prepared.rows(("test-rows",), _by_customer_and_status, customer.pk, status, since)
        # then each run gives exactly what the ORM gives for those values, converted alike (UUID, Decimal, date)
        assert got == list(_by_customer_and_status(customer.pk, status, since))
    assert isinstance(got, list)
    assert isinstance(prepared.rows(("test-rows",), _by_customer_and_status, first.pk, "active", now)[0][3], Decimal)


def test_one_shape_is_compiled_once_and_runs_as_one_logged_query(now):
    customer = factories.CustomerFactory()
    factories.SubscriptionFactory(customer=customer)
    compiled = []

    def build(customer_id, status, since):
        compiled.append(customer_id)
        return _by_customer_and_status(customer_id, status, since)

    for _ in range(3):
        with CaptureQueriesContext(connection) as queries:
            prepared.rows(("test-once",), build, customer.pk, "active", now - timedelta(days=1))
        assert len(queries) == 1
    assert len(compiled) == 2  # built with markers the first time only (twice: two sets of markers compared)


def test_count_and_instances_are_the_orms(now):
    customer = factories.CustomerFactory()
    subs = [factories.SubscriptionFactory(customer=customer) for _ in range(3)]
    factories.SeatLotFactory(subscription=subs[0], quantity=5, removed=2)
    factories.SeatLotFactory(subscription=subs[0], quantity=3)

    def lots(subscription_id):
        return SeatLot.objects.filter(subscription_id=subscription_id)

    def scoped(customer_id):
        return Subscription.objects.filter(customer_id=customer_id).filter(Q(quantity__gt=0) | Q(quantity__lt=F("quantity")))

    assert prepared.count(("test-count",), scoped, customer.pk) == 3
    assert prepared.count(("test-count",), scoped, factories.CustomerFactory().pk) == 0
    loaded = prepared.instances(("test-lots",), lots, subs[0].pk)
    expected = list(lots(subs[0].pk))
    assert [(lot.pk, lot.quantity, lot.removed, lot.added_at, lot.window_ends_at, lot.source) for lot in loaded] == [
        (lot.pk, lot.quantity, lot.removed, lot.added_at, lot.window_ends_at, lot.source) for lot in expected]
    assert all(lot._state.adding is False and lot._state.db == "default" for lot in loaded)
    assert [lot.pk for lot in prepared.instances(("test-lots",), lots, subs[1].pk)] == [
        lot.pk for lot in lots(subs[1].pk)]
    assert prepared.instances(("test-lots",), lots, uuid4()) == []


def test_json_fields_come_back_decoded(now):
    customer = factories.CustomerFactory()
    sub = factories.SubscriptionFactory(customer=customer)
    AuditEntry.objects.create(at=now, partner=customer.partner, customer=customer, subscription=sub, action="x",
                              summary="y", before={"quantity": 1}, after={"quantity": 2, "note": "é"})

    def entries(subscription_id):
        return AuditEntry.objects.filter(subscription_id=subscription_id)

    [entry] = prepared.instances(("test-audit",), entries, sub.pk)
    assert entry.before == {"quantity": 1} and entry.after == {"quantity": 2, "note": "é"}


def test_a_value_that_is_not_a_parameter_is_refused():
    # a build function that ignores a value would bake the first run's data into every later run's SQL
    elsewhere = factories.CustomerFactory()

    def ignores_its_value(customer_id):
        return Customer.objects.filter(pk=elsewhere.pk)

    with pytest.raises(ValueError, match="not parameters of its SQL"):
        prepared.rows(("test-ignores",), ignores_its_value, factories.CustomerFactory().pk)


def test_a_value_computed_from_a_marker_is_refused(now):
    # `now + 48 hours` computed in the build function would be the marker's time plus 48 hours in every run
    def computes_from_its_value(now):
        return SeatLot.objects.filter(window_ends_at__gt=now, window_ends_at__lte=now + timedelta(hours=48))

    with pytest.raises(ValueError, match="changes with its values other than in their places"):
        prepared.rows(("test-computed",), computes_from_its_value, now)

    # given as values of their own, both bounds are prepared
    def bounds(now, soon):
        return SeatLot.objects.filter(window_ends_at__gt=now, window_ends_at__lte=soon).values_list("pk")

    lot = factories.SeatLotFactory(added_at=now - timedelta(hours=150))  # its window closes in 18 hours
    assert prepared.rows(("test-bounds",), bounds, now, now + timedelta(hours=48)) == [(lot.pk,)]
    assert prepared.rows(("test-bounds",), bounds, now, now + timedelta(hours=12)) == []


def test_a_lookup_on_a_positive_integer_keeps_its_marker(now):
    # markers are in every column's range: Django compiles the lookup as it would for a real value
    customer = factories.CustomerFactory()
    small, big = (factories.SubscriptionFactory(customer=customer, quantity=q) for q in (3, 300))

    def at_least(customer_id, quantity):
        return Subscription.objects.filter(customer_id=customer_id, quantity__gte=quantity).values_list("pk")

    assert prepared.rows(("test-gte",), at_least, customer.pk, 100) == [(big.pk,)]
    assert sorted(prepared.rows(("test-gte",), at_least, customer.pk, 1)) == sorted([(small.pk,), (big.pk,)])


def test_flags_are_shape_not_values_and_kinds_must_match():
    with pytest.raises(TypeError, match="shape"):
        prepared.rows(("test-flag",), lambda flag: Customer.objects.filter(pk=1), True)

    def by_pk(pk):
        return Customer.objects.filter(pk=pk).values_list("pk")

    customer = factories.CustomerFactory()
    assert prepared.rows(("test-kinds",), by_pk, customer.pk) == [(customer.pk,)]
    with pytest.raises(TypeError, match="other kinds"):
        prepared.rows(("test-kinds",), by_pk, str(customer.pk))


def test_instances_refuse_select_related():
    with pytest.raises(ValueError, match="select_related"):
        prepared.instances(("test-related",), lambda pk: Subscription.objects.select_related("sku").filter(pk=pk),
                           factories.SubscriptionFactory().pk)


@pytest.mark.rule("T3")
def test_get_customer_is_scoped_to_each_users_partner_run_after_run(direct_partner):
    # given two partners' customers, seen through the same prepared query one after the other
    ours = factories.CustomerFactory(partner=direct_partner)
    theirs = factories.CustomerFactory()
    our_user, their_user = factories.staff(direct_partner), factories.staff(theirs.partner)
    assert access.get_customer(our_user, ours.pk) == ours
    assert access.get_customer(their_user, theirs.pk) == theirs
    # then neither sees the other's (404), whichever ran first
    from django.http import Http404
    for user, customer in ((our_user, theirs), (their_user, ours)):
        with pytest.raises(Http404):
            access.get_customer(user, customer.pk)
    with pytest.raises(Http404):
        access.get_customer(our_user, "not-a-uuid")
    assert Customer.objects.count() == 2  # nothing changed


def test_the_least_recently_used_shapes_are_dropped_first(monkeypatch):
    monkeypatch.setattr(prepared, "_MAX_SHAPES", 2)
    customer = factories.CustomerFactory()

    def by_pk(n, pk):
        return Customer.objects.filter(pk=pk).values_list("company_name")

    def run(n):
        return prepared.rows(("test-lru", n), partial(by_pk, n), customer.pk)

    for n in (1, 2, 1, 3):  # 1 is used again before 3 comes: 2 is the least recently used
        assert run(n) == [(customer.company_name,)]
    assert [key[0] for key in connections["default"].__dict__["_prepared_shapes"]] == [("test-lru", 1), ("test-lru", 3)]
