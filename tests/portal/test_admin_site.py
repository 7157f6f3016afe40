"""The admin's scoping machinery (portal.admin_site, portal.access.partner_records): every registered admin is
scoped and says what partner staff see; an admin registered without the mixin is operator-only; a related list
filter and a form's choices hold only the partner's own rows."""

import pytest
from django.contrib import admin
from django.contrib.admin import RelatedFieldListFilter
from django.contrib.auth.models import User
from django.test import RequestFactory
from django.urls import reverse

from catalog.models import CatalogVersion
from portal import access
from portal.admin import MembershipAdmin, ResellerLinkAdmin
from portal.admin_site import PartnerScopedAdmin, PartnerStaff, PortalAdminSite
from portal.models import Membership, Partner, ResellerLink
from subscriptions.admin import SubscriptionAdmin
from subscriptions.models import Subscription
from tests import factories
from tests.portal.admin_world import OPERATOR_ONLY, SHARED, ZETA, build_world


@pytest.fixture
def world(db):
    return build_world()


def request_as(user, path="/admin/"):
    request = RequestFactory().get(path)
    request.user = user
    return request


def test_every_registered_admin_is_scoped_and_says_what_partner_staff_see():
    registry = admin.site._registry
    # every admin, ours or an app's, is a PartnerScopedAdmin
    assert [m._meta.label for m, a in registry.items() if not isinstance(a, PartnerScopedAdmin)] == []
    # and hides from partner staff exactly the platform's tables, shares exactly the catalog
    by_audience = {
        audience: {m for m, a in registry.items() if a.partner_staff is audience} for audience in PartnerStaff
    }
    assert by_audience[PartnerStaff.NOTHING] == OPERATOR_ONLY
    assert by_audience[PartnerStaff.SHARED] == SHARED
    # and every other model has a path to the partner it belongs to
    assert [m._meta.label for m in by_audience[PartnerStaff.OWN] if not access.has_partner_path(m)] == []
    # and the start-up checks pass
    assert [error for a in registry.values() for error in a.check()] == []


def test_an_admin_registered_without_the_mixin_is_the_operators_only(world):
    # given a model registered on the portal's site with a plain ModelAdmin
    site = PortalAdminSite(name="probe")
    site.register(Subscription, admin.ModelAdmin)
    model_admin = site.get_model_admin(Subscription)
    # then it is scoped, for the operator only
    assert isinstance(model_admin, PartnerScopedAdmin) and model_admin.partner_staff is PartnerStaff.NOTHING
    staff = request_as(world.staff["Alpha"])
    assert not model_admin.has_module_permission(staff)
    assert not model_admin.has_view_permission(staff)
    assert model_admin.get_queryset(staff).count() == 0
    operator = request_as(world.operator)
    assert model_admin.has_view_permission(operator)
    assert model_admin.get_queryset(operator).count() == Subscription.objects.count() == 4


def test_an_admin_showing_partner_staff_a_model_without_a_partner_path_fails_the_start_up_check():
    class Unscoped(PartnerScopedAdmin):
        partner_staff = PartnerStaff.OWN

    errors = Unscoped(CatalogVersion, PortalAdminSite(name="probe")).check()
    assert [e.id for e in errors] == ["portal.E001"]


def test_an_unscoped_inline_on_an_admin_partner_staff_see_fails_the_start_up_check():
    class PlainInline(admin.TabularInline):
        model = Membership

    class WithPlainInline(PartnerScopedAdmin):
        partner_staff = PartnerStaff.OWN
        inlines = [PlainInline]

    errors = WithPlainInline(Partner, PortalAdminSite(name="probe")).check()
    assert [e.id for e in errors] == ["portal.E002"]


@pytest.mark.rule("T3")
def test_a_plain_related_list_filter_lists_only_the_partners_own_values(world):
    # given a subscription admin with plain related filters on the partner and the customer, which list every
    # row of those tables
    class WithPlainFilters(SubscriptionAdmin):
        list_filter = ("customer__partner", ("customer", RelatedFieldListFilter), "reseller")

    site = PortalAdminSite(name="probe")
    model_admin = WithPlainFilters(Subscription, site)

    def filters_page(user):
        response = model_admin.changelist_view(request_as(user, "/admin/subscriptions/subscription/"))
        return response.render().content.decode()

    # when Alpha's staff member opens the list, then no name of Zeta's is among the filters' choices
    page = filters_page(world.staff["Alpha"])
    assert "Alpha Distribution" in page and "Alpha Customer Ltd" in page and "Alpha Resale" in page
    assert ZETA.lower() not in page.lower()
    # while the operator's filters list both partners'
    assert "Zeta Distribution" in filters_page(world.operator)


@pytest.mark.rule("T3")
def test_a_forms_choices_are_the_partners_own(world):
    request = request_as(world.staff["Alpha"])
    model_admin = MembershipAdmin(Membership, admin.site)
    # the user a membership names can be one of Alpha's staff only: not Zeta's, not the operator
    users = model_admin.formfield_for_foreignkey(Membership._meta.get_field("user"), request).queryset
    assert set(users) == {world.staff["Alpha"]}
    # (a form that may name partners gets Alpha only; the membership's own partner field is read-only for it)
    link_admin = ResellerLinkAdmin(ResellerLink, admin.site)
    partners = link_admin.formfield_for_foreignkey(ResellerLink._meta.get_field("provider"), request).queryset
    assert set(partners) == {world.partners["Alpha"]}
    assert "partner" in model_admin.get_readonly_fields(request)
    # while the operator's choices are everyone's
    operator = request_as(world.operator)
    assert set(model_admin.formfield_for_foreignkey(Membership._meta.get_field("user"), operator).queryset) == set(
        User.objects.all()
    )
    assert "partner" not in model_admin.get_readonly_fields(operator)


@pytest.mark.rule("T2")
@pytest.mark.rule("T3")
def test_an_admin_agent_changes_their_own_staffs_roles_and_nothing_else(client, world):
    # given Alpha's admin agent with admin access, and another of Alpha's staff members
    colleague = factories.UserFactory(username="alpha-colleague")
    membership = factories.MembershipFactory(user=colleague, partner=world.partners["Alpha"], is_sales_agent=True)
    loner = factories.UserFactory(username="no-partner-yet")
    client.force_login(world.staff["Alpha"])
    url = reverse("admin:portal_membership_change", args=[membership.pk])
    form = {
        "user": colleague.pk,
        "partner": world.partners["Alpha"].pk,
        "is_sales_agent": "on",
        "is_billing_admin": "on",
    }
    # when the admin agent moves the membership to Zeta, then that is ignored (the partner is the operator's)
    assert client.post(url, {**form, "partner": world.partners[ZETA].pk}).status_code == 302
    membership.refresh_from_db()
    assert membership.partner == world.partners["Alpha"]
    # and the roles changed, as Partner Center's admin agents manage their users (T2)
    assert (membership.is_sales_agent, membership.is_billing_admin) == (True, True)
    # when they give the membership to a user of no partner (or the operator), then it is refused
    for user in (loner, world.operator):
        response = client.post(url, {**form, "user": user.pk})
        assert response.status_code == 200 and response.context["adminform"].form.errors["user"]
        membership.refresh_from_db()
        assert membership.user == colleague


@pytest.mark.rule("T2")
def test_staff_who_are_not_admin_agents_only_view_memberships(client, world):
    # given a sales agent of Alpha's with admin access (and every model permission)
    sales = factories.UserFactory(username="alpha-sales", is_staff=True)
    factories.MembershipFactory(user=sales, partner=world.partners["Alpha"], is_sales_agent=True)
    sales.user_permissions.set(world.staff["Alpha"].user_permissions.all())
    client.force_login(sales)
    membership = world.staff["Alpha"].membership
    # when they post a change to their admin agent's roles, then it is refused and nothing changed
    url = reverse("admin:portal_membership_change", args=[membership.pk])
    response = client.post(
        url, {"user": membership.user_id, "partner": membership.partner_id, "is_support_agent": "on"}
    )
    assert response.status_code == 403
    membership.refresh_from_db()
    assert membership.is_admin_agent is True


def test_an_unscoped_inline_picked_per_object_is_not_shown_to_partner_staff(world):
    # given an admin whose get_inlines() picks an unscoped inline (the start-up check sees only `inlines`)
    class PlainInline(admin.TabularInline):
        model = Membership

    class PicksPlainInline(PartnerScopedAdmin):
        partner_staff = PartnerStaff.OWN

        def get_inlines(self, request, obj):
            return [PlainInline]

    model_admin = PicksPlainInline(Partner, PortalAdminSite(name="probe"))
    alpha = world.partners["Alpha"]
    # then partner staff don't get it, the operator does
    assert model_admin.get_inline_instances(request_as(world.staff["Alpha"]), alpha) == []
    assert [type(i) for i in model_admin.get_inline_instances(request_as(world.operator), alpha)] == [PlainInline]
