from django.contrib.auth import get_user_model
from django.urls import reverse

import pytest

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
    response = client.post(reverse("admin:subscriptions_subscription_changelist"),
                           {"action": "suspend_selected", "_selected_action": [str(subscription.pk)]})
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
    client.post(reverse("admin:subscriptions_subscription_changelist"),
                {"action": "reactivate_selected", "_selected_action": [str(subscription.pk)]})
    # then nothing changed
    assert Subscription.objects.get(pk=subscription.pk).status == "active"
    assert not AuditEntry.objects.filter(subscription=subscription).exists()
