from django.apps import apps
from django.core.management import call_command

import pytest

from catalog.eligibility import buying_context, offer_queryset, refusal
from portal.models import Customer
from subscriptions.models import ScheduledChange, Subscription


def row_counts() -> dict[str, int]:
    return {m._meta.label: m.objects.count() for m in apps.get_models()
            if m._meta.app_label in {"portal", "catalog", "subscriptions", "auth"}}


@pytest.mark.django_db
def test_seed_demo_shows_every_state_and_running_it_twice_changes_nothing():
    # when the demo is seeded, then seeded again
    call_command("seed_demo", verbosity=0)
    first = row_counts()
    call_command("seed_demo", verbosity=0)
    # then nothing changed the second time
    assert row_counts() == first
    # and every subscription status of Partner Center is shown, trials included
    assert set(Subscription.objects.values_list("status", flat=True)) == {
        "pending", "active", "suspended", "expired", "disabled", "deleted"}
    assert Subscription.objects.filter(is_trial=True).exists()
    # and a billing frequency change set for the next charge, and one being charged (N7)
    assert Subscription.objects.filter(next_charge_frequency="annual", cycle_charge_pending=False).exists()
    assert Subscription.objects.filter(next_charge_frequency="annual", cycle_charge_pending=True).exists()
    # and a renewal pending since 00:00 UTC (N6), and renewals with an upgrade and an aligned end date scheduled
    assert Subscription.objects.filter(renewal_pending=True).count() == 1
    assert ScheduledChange.objects.filter(kind="upgrade", subscription__is_trial=False).exists()
    assert ScheduledChange.objects.filter(kind="alignment").exists()
    # and each reason an offer can't be bought is met by some customer
    reasons = set()
    offers = list(offer_queryset())
    for customer in Customer.objects.select_related("partner"):
        ctx = buying_context(customer, customer.partner)
        reasons |= {r.rule for r in (refusal(sku, ctx) for sku in offers) if r}
    assert {"C3", "C4a", "C4b", "C4c", "C4d", "C4e", "C4f", "C5"} <= reasons
