"""Who the Django admin is for (issue 9, finding 4), for every registered model by enumeration of the admin
site's registry: a partner's staff member with admin access (and every model permission) sees and changes only
their own partner's records, the shared catalog read-only and none of the platform's tables; the operator sees
everything. A model registered later is covered here without editing this file (tests/portal/admin_world.py
says what to add)."""

import pytest
from django.apps import apps
from django.contrib import admin
from django.urls import reverse

from catalog.models import Cart, Order
from portal.models import Customer
from subscriptions.models import AuditEntry, Subscription
from tests.helpers import database_state
from tests.portal.admin_world import OPERATOR_ONLY, SHARED, ZETA, build_world

REGISTERED = sorted(admin.site._registry, key=lambda m: m._meta.label)
OWN = [m for m in REGISTERED if m not in SHARED | OPERATOR_ONLY]


def label(model) -> str:
    return model._meta.label


def admin_url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def shows_zeta(response) -> bool:
    return ZETA.lower() in response.content.decode().lower()


@pytest.fixture
def world(db):
    return build_world()


@pytest.fixture
def alpha_client(client, world):
    client.force_login(world.staff["Alpha"])
    return client


def test_the_world_has_rows_of_every_own_model_for_each_partner(world):
    # Without them the tests below would pass on an empty table: add the model's rows to build_world.
    missing = [label(m) for m in OWN for token in ("Alpha", ZETA) if not world.own(token, m)]
    assert missing == []


@pytest.mark.rule("T3")
@pytest.mark.parametrize("model", OWN, ids=label)
def test_partner_staff_list_shows_their_own_rows_and_nothing_of_another_partner(alpha_client, world, model):
    # when Alpha's staff member opens the model's list
    response = alpha_client.get(admin_url(model, "changelist"))
    # then it lists exactly Alpha's rows, and no name of Zeta's anywhere on the page (rows, filters, search)
    assert response.status_code == 200
    assert {obj.pk for obj in response.context["cl"].result_list} == world.own("Alpha", model)
    assert not shows_zeta(response)


@pytest.mark.rule("T3")
@pytest.mark.parametrize("model", OWN, ids=label)
def test_another_partners_record_does_not_exist_for_partner_staff(alpha_client, world, model):
    # given one of Alpha's own rows, which opens
    own_pk = sorted(world.own("Alpha", model), key=str)[0]
    assert alpha_client.get(admin_url(model, "change", own_pk)).status_code == 200
    for pk in world.own(ZETA, model):
        # when Alpha's staff member opens Zeta's row
        change = alpha_client.get(admin_url(model, "change", pk))
        # then it "doesn't exist" (the admin's redirect to its index), and its history and delete pages show
        # nothing of it either
        assert (change.status_code, change.url) == (302, reverse("admin:index"))
        for view in ("history", "delete"):
            response = alpha_client.get(admin_url(model, view, pk))
            assert response.status_code in {302, 403, 404}
            assert not shows_zeta(response)


@pytest.mark.rule("T3")
@pytest.mark.parametrize("model", OWN, ids=label)
def test_every_action_posted_with_another_partners_ids_changes_nothing(alpha_client, world, model):
    # given every action the model's admin declares, the site's own (delete) included
    model_admin = admin.site._registry[model]
    names = [name for name, _ in admin.site.actions] + [
        action if isinstance(action, str) else action.__name__ for action in model_admin.actions or ()
    ]
    zeta = [str(pk) for pk in world.own(ZETA, model)]
    before = database_state()
    for name in names:
        # when Alpha's staff member posts it with Zeta's ids (confirmed, for those that ask)
        response = alpha_client.post(
            admin_url(model, "changelist"), {"action": name, "_selected_action": zeta, "index": 0, "post": "yes"}
        )
        assert not shows_zeta(response)
    # then no row of any table changed: no field, no audit entry, no admin log entry
    assert database_state() == before


def autocomplete_sources():
    """Every forward relation of every model to a registered model that can autocomplete: the autocomplete view
    takes any of them, whether or not an admin shows it as an autocomplete field."""
    for model in apps.get_models():
        for f in model._meta.get_fields():
            if (
                f.is_relation
                and f.concrete
                and f.related_model in admin.site._registry
                and admin.site._registry[f.related_model].search_fields
            ):
                yield model, f


def autocomplete(client, model, f):
    return client.get(
        reverse("admin:autocomplete"),
        {"app_label": model._meta.app_label, "model_name": model._meta.model_name, "field_name": f.name, "term": ""},
    )


TARGETS = sorted({f.related_model for _, f in autocomplete_sources()}, key=label)


@pytest.mark.rule("T3")
@pytest.mark.parametrize("target", TARGETS, ids=label)
def test_autocomplete_offers_partner_staff_nothing_of_another_partner(alpha_client, world, target):
    offered = set()
    for model, f in autocomplete_sources():
        if f.related_model is not target:
            continue
        # when Alpha's staff member asks any field pointing at the target for its choices
        response = autocomplete(alpha_client, model, f)
        if target in OPERATOR_ONLY:
            # then the platform's tables answer nothing at all
            assert response.status_code == 403
            continue
        # then only Alpha's own rows (or the shared catalog) are offered
        assert response.status_code == 200
        ids = {result["id"] for result in response.json()["results"]}
        assert not shows_zeta(response)
        if target in SHARED:
            assert ids
        else:
            assert ids <= {str(pk) for pk in world.own("Alpha", target)}, f"{label(model)}.{f.name}"
        offered |= ids
    if target not in OPERATOR_ONLY | SHARED:
        # and some field does offer Alpha's own rows (the answer isn't just empty)
        assert offered


@pytest.mark.parametrize("model", REGISTERED, ids=label)
def test_the_operator_sees_every_partners_rows(client, world, model):
    client.force_login(world.operator)
    response = client.get(admin_url(model, "changelist"))
    assert response.status_code == 200
    shown = {obj.pk for obj in response.context["cl"].result_list}
    if model in OWN:
        assert world.own("Alpha", model) | world.own(ZETA, model) <= shown
        pk = next(iter(world.own(ZETA, model)))
        assert client.get(admin_url(model, "change", pk)).status_code == 200
    else:
        assert shown == set(model._default_manager.values_list("pk", flat=True))


@pytest.mark.parametrize("model", sorted(SHARED, key=label), ids=label)
def test_partner_staff_view_the_shared_catalog_and_change_none_of_it(alpha_client, world, model):
    # the catalog belongs to no partner: Alpha's staff member sees all of it
    response = alpha_client.get(admin_url(model, "changelist"))
    assert response.status_code == 200
    assert {obj.pk for obj in response.context["cl"].result_list} == set(
        model._default_manager.values_list("pk", flat=True)
    )
    before = database_state()
    # but adds, changes and deletes none of it
    assert alpha_client.get(admin_url(model, "add")).status_code == 403
    for obj in model._default_manager.all():
        page = alpha_client.get(admin_url(model, "change", obj.pk))
        assert page.status_code == 200
        # and is not told which partners an offer is exclusive to (C4e)
        assert not shows_zeta(page)
        assert alpha_client.post(admin_url(model, "change", obj.pk), {}).status_code == 403
        assert alpha_client.post(admin_url(model, "delete", obj.pk), {"post": "yes"}).status_code == 403
    assert database_state() == before


def test_the_operator_is_told_which_partners_an_offer_is_exclusive_to(client, world):
    client.force_login(world.operator)
    page = client.get(admin_url(type(world.exclusive_sku), "change", world.exclusive_sku.pk))
    assert "Zeta Distribution" in page.content.decode()


@pytest.mark.parametrize("model", sorted(OPERATOR_ONLY, key=label), ids=label)
def test_partner_staff_dont_see_the_platforms_tables(alpha_client, world, model):
    # when Alpha's staff member opens the model's list, then it is refused
    assert alpha_client.get(admin_url(model, "changelist")).status_code == 403
    # and the admin's index doesn't list it
    index = alpha_client.get(reverse("admin:index"))
    listed = {m["object_name"] for app in index.context["app_list"] for m in app["models"]}
    assert model._meta.object_name not in listed


@pytest.mark.rule("T1")
@pytest.mark.rule("T3")
def test_a_resellers_staff_see_only_what_they_are_reseller_of_record_for(client, world):
    # given Alpha's reseller's staff member with admin access
    client.force_login(world.reseller_staff["Alpha"])
    subscriptions = world.subscriptions["Alpha"]

    def listed(model):
        response = client.get(admin_url(model, "changelist"))
        assert not shows_zeta(response)
        return {obj.pk for obj in response.context["cl"].result_list}

    # then it sees the subscription it is reseller of record for, not the one Alpha sold direct
    assert listed(Subscription) == {subscriptions["resold"].pk}
    # and that customer, the order it is the reseller of, and the audit entries of those
    assert listed(Customer) == {subscriptions["resold"].customer_id}
    assert listed(Order) == {subscriptions["resold"].order_line.order_id}
    assert listed(AuditEntry) == set(
        AuditEntry.objects.filter(subscription=subscriptions["resold"]).values_list("pk", flat=True)
    ) | set(AuditEntry.objects.filter(order=subscriptions["resold"].order_line.order).values_list("pk", flat=True))
    # and no carts: a reseller buys nothing (T1), an open cart naming it is its provider's
    assert listed(Cart) == set()
