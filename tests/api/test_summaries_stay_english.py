"""The API and the webhooks send the audit trail's English summary (Partner Center's API is English), whatever the
language of the agent who made the change or reads it; the pages say it in the reader's language (issue 12)."""

import uuid

import pytest
from django.utils import translation

from api import webhooks
from api.models import WebhookDelivery
from portal.models import Membership
from subscriptions import services
from tests import factories

ZH = "zh-hant"


@pytest.fixture(autouse=True)
def language_left_as_found():
    """A request in Chinese activates Chinese for the thread: the tests after these read English."""
    with translation.override(translation.get_language()):
        yield


def test_the_activity_log_sends_the_english_summary_whatever_the_agents_language(api, sales, subscription, now):
    # given an agent who reads the portal in Chinese, and a change they made from a Chinese page
    Membership.objects.filter(user=sales).update(language=ZH)
    with translation.override(ZH):
        services.suspend_subscription(subscription_id=subscription.pk, actor=sales, now=now)
    # when the activity log is read through the API, even asking for Chinese
    body = api.get(f"/customers/{subscription.customer_id}/activityLog", headers={"Accept-Language": "zh-TW"}).json()
    # then its summary is the English record
    assert [e["summary"] for e in body["items"] if e["subscriptionId"] == str(subscription.pk)] == [
        "Suspended; auto-renew turned off"
    ]


def test_a_webhook_sends_the_english_summary_whatever_the_actors_language(direct_partner, subscription, now):
    # given an endpoint listening to every event
    agent = factories.staff(direct_partner, "admin_agent")
    Membership.objects.filter(user=agent).update(language=ZH)
    webhooks.create_endpoint(
        agent,
        url="https://psa.example/hooks",
        events=list(webhooks.EVENTS),
        secret="s" * 32,
        is_active=True,
        created_from=uuid.uuid4(),
        now=now,
    )
    # when a change is made in Chinese and dispatched from a Chinese thread
    with translation.override(ZH):
        services.suspend_subscription(subscription_id=subscription.pk, actor=agent, now=now)
        made = webhooks.dispatch_events(now)
    # then its payload says it in English
    assert made == 1
    assert [d.payload["Summary"] for d in WebhookDelivery.objects.all()] == ["Suspended; auto-renew turned off"]
