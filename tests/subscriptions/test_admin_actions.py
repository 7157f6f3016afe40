import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.urls import reverse

from subscriptions.models import AuditEntry, Subscription
from tests import factories


@pytest.fixture
def operator(direct_partner):
    user = factories.staff(direct_partner, "admin_agent")
    get_user_model().objects.filter(pk=user.pk).update(is_staff=True, is_superuser=True)
    user.refresh_from_db()
    return user


@pytest.mark.rule("P1")
@pytest.mark.rule("L1")
def test_admin_action_suspends_through_the_service(client, operator, customer, now):
    # given an active subscription and an admin who is also an admin agent of the partner
    subscription = factories.SubscriptionFactory(customer=customer, auto_renew=True)
    client.force_login(operator)
    # when the admin action runs on it
    response = client.post(
        reverse("admin:subscriptions_subscription_changelist"),
        {"action": "suspend_selected", "_selected_action": [str(subscription.pk)]},
    )
    # then the service suspended it, with its P4 effects and an audit entry by that admin
    assert response.status_code == 302
    subscription.refresh_from_db()
    assert (subscription.status, subscription.auto_renew) == ("suspended", False)
    assert AuditEntry.objects.get(subscription=subscription, action="subscription.suspended").actor == operator


@pytest.mark.rule("P2")
def test_admin_action_refused_by_a_rule_changes_nothing(client, operator, customer, now):
    # given an active subscription (it can't be reactivated)
    subscription = factories.SubscriptionFactory(customer=customer)
    client.force_login(operator)
    # when the reactivate action runs on it
    client.post(
        reverse("admin:subscriptions_subscription_changelist"),
        {"action": "reactivate_selected", "_selected_action": [str(subscription.pk)]},
    )
    # then nothing changed
    assert Subscription.objects.get(pk=subscription.pk).status == "active"
    assert not AuditEntry.objects.filter(subscription=subscription).exists()


SUBSCRIPTION_ACTIONS = {"suspend_selected", "reactivate_selected", "auto_renew_off_selected"}


def admin_staff(partner, role: str):
    """A partner's staff member with admin access and the view permissions the demo's partner admins have."""
    user = factories.staff(partner, role)
    get_user_model().objects.filter(pk=user.pk).update(is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__startswith="view_"))
    return get_user_model().objects.get(pk=user.pk)


def offered_actions(client) -> set[str]:
    response = client.get(reverse("admin:subscriptions_subscription_changelist"))
    assert response.status_code == 200
    form = response.context["action_form"]  # None when no action at all is offered
    return set() if form is None else {name for name, _ in form.fields["action"].choices if name}


@pytest.mark.rule("T3")
@pytest.mark.rule("L1")
def test_issue_9_finding_4_northwind_staff_cannot_turn_off_another_partners_auto_renew(client, db, now):
    # given a Northwind admin agent with admin access, and another partner's customer's subscription
    northwind = factories.PartnerFactory(name="Northwind Cloud Partners")
    woodgrove = factories.PartnerFactory(name="Woodgrove Cloud")
    staff = admin_staff(northwind, "admin_agent")
    theirs = factories.SubscriptionFactory(
        customer=factories.CustomerFactory(partner=woodgrove, company_name="Woodgrove Customer"), auto_renew=True
    )
    client.force_login(staff)
    # when the Northwind user lists subscriptions, then the other partner's isn't there
    listed = client.get(reverse("admin:subscriptions_subscription_changelist"))
    assert list(listed.context["cl"].result_list) == []
    assert "Woodgrove" not in listed.content.decode()
    # when they post "Turn auto-renew off" with its id all the same
    client.post(
        reverse("admin:subscriptions_subscription_changelist"),
        {"action": "auto_renew_off_selected", "_selected_action": [str(theirs.pk)]},
    )
    # then it still renews, and the other partner's audit trail names nobody from Northwind
    theirs.refresh_from_db()
    assert theirs.auto_renew is True
    assert not AuditEntry.objects.filter(subscription=theirs).exists()
    assert not AuditEntry.objects.filter(partner=woodgrove).exists()


@pytest.mark.rule("T1")
@pytest.mark.rule("T2")
@pytest.mark.parametrize(
    ("kind", "role", "offered"),
    [
        ("direct_bill", "admin_agent", SUBSCRIPTION_ACTIONS),
        ("direct_bill", "sales_agent", SUBSCRIPTION_ACTIONS),
        ("direct_bill", "billing_admin", SUBSCRIPTION_ACTIONS),
        ("direct_bill", "support_agent", set()),
        ("indirect_reseller", "admin_agent", set()),
    ],
)
def test_subscription_actions_are_offered_to_the_roles_that_may_take_them(client, db, kind, role, offered):
    # given a staff member with admin access holding one role
    staff = admin_staff(factories.PartnerFactory(kind=kind), role)
    client.force_login(staff)
    # then the subscription list offers the actions the services would let them take, and no other
    assert offered_actions(client) & SUBSCRIPTION_ACTIONS == offered


@pytest.mark.rule("T2")
def test_a_support_agent_posting_suspend_changes_nothing(client, direct_partner, customer, now):
    # given a support agent with admin access and their own partner's active subscription
    staff = admin_staff(direct_partner, "support_agent")
    subscription = factories.SubscriptionFactory(customer=customer)
    client.force_login(staff)
    # when they post the suspend action anyway, then nothing changed
    client.post(
        reverse("admin:subscriptions_subscription_changelist"),
        {"action": "suspend_selected", "_selected_action": [str(subscription.pk)]},
    )
    subscription.refresh_from_db()
    assert subscription.status == "active"
    assert not AuditEntry.objects.filter(subscription=subscription).exists()


def test_the_operator_of_no_partner_is_offered_no_subscription_action(client, db):
    # the services run as a partner's staff member (T2, L1): they'd refuse the operator on every row
    operator = factories.UserFactory(is_staff=True, is_superuser=True)
    client.force_login(operator)
    assert offered_actions(client) & SUBSCRIPTION_ACTIONS == set()


@pytest.mark.rule("T3")
@pytest.mark.rule("L1")
def test_an_operator_who_is_also_partner_staff_changes_only_their_own_partners(client, operator, customer, now):
    # given the operator, an admin agent of the customer's partner, and another partner's subscription
    own = factories.SubscriptionFactory(customer=customer)
    theirs = factories.SubscriptionFactory(customer=factories.CustomerFactory())
    client.force_login(operator)
    # when they suspend both in one action
    response = client.post(
        reverse("admin:subscriptions_subscription_changelist"),
        {"action": "suspend_selected", "_selected_action": [str(own.pk), str(theirs.pk)]},
        follow=True,
    )
    # then their own partner's is suspended, the other partner's is untouched and says why
    own.refresh_from_db()
    theirs.refresh_from_db()
    assert (own.status, theirs.status) == ("suspended", "active")
    assert not AuditEntry.objects.filter(subscription=theirs).exists()
    assert [str(m) for m in response.context["messages"]] == [
        "1 selected subscription belongs to another partner: only its own staff change it.",
        "1 subscription suspended.",
    ]
