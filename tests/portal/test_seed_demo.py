import re

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import reverse

from catalog.eligibility import buying_context, offer_queryset, refusal
from portal.models import Customer, Membership, Partner
from subscriptions.models import AuditEntry, ScheduledChange, Subscription


def row_counts() -> dict[str, int]:
    return {
        m._meta.label: m.objects.count()
        for m in apps.get_models()
        if m._meta.app_label in {"portal", "catalog", "subscriptions", "auth"}
    }


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
        "pending",
        "active",
        "suspended",
        "expired",
        "disabled",
        "deleted",
    }
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


@pytest.mark.django_db
def test_the_demo_names_its_operator_sign_in_as_the_operator_and_scopes_its_partner_staffs_admin(client, settings):
    # given the seeded demo
    call_command("seed_demo", verbosity=0)
    User = get_user_model()
    northwind = Partner.objects.get(name="Northwind Cloud Partners")
    # then its operator is a superuser of no partner, listed as the platform operator
    operator = User.objects.get(username="operator")
    assert operator.is_superuser and not Membership.objects.filter(user=operator).exists()
    settings.DEMO_MODE = True
    sign_in_page = client.get(reverse("portal:login")).content.decode()
    assert re.search(r"<code>operator</code></td><td>Platform operator \(no partner\)</td>", sign_in_page)
    # and its "staff" user is a Northwind admin agent whose admin access is not a superuser's
    staff = User.objects.get(username="staff")
    assert (staff.is_staff, staff.is_superuser, staff.membership.partner) == (True, False, northwind)
    assert re.search(
        r"<code>staff</code></td><td>Northwind Cloud Partners</td><td>Admin agent \+ Django admin "
        r"\(this partner&#x27;s records only\)</td>",
        sign_in_page,
    )
    # when it lists subscriptions in the admin, then it sees exactly Northwind's
    changelist = reverse("admin:subscriptions_subscription_changelist")
    client.force_login(staff)
    listed = client.get(changelist)
    northwinds = set(Subscription.objects.filter(customer__partner=northwind).values_list("pk", flat=True))
    assert northwinds and {s.pk for s in listed.context["cl"].result_list} == northwinds
    # and turning another partner's subscription's auto-renew off changes nothing, in no one's audit trail
    theirs = Subscription.objects.exclude(customer__partner=northwind).filter(status="active", auto_renew=True).first()
    entries = AuditEntry.objects.count()
    client.post(changelist, {"action": "auto_renew_off_selected", "_selected_action": [str(theirs.pk)]})
    theirs.refresh_from_db()
    assert theirs.auto_renew is True and AuditEntry.objects.count() == entries
    # while the operator sees every partner's
    client.force_login(operator)
    assert {s.pk for s in client.get(changelist).context["cl"].result_list} == set(
        Subscription.objects.values_list("pk", flat=True)
    )
