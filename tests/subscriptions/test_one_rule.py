"""Rules the review found decided twice, each now asked of its one function: the display name (S1) in the audit
trail and the admin's sort, the provisioning of a pending subscription (S0, S3), and C2's search."""

from datetime import UTC, datetime, timedelta

import pytest
from django.http import QueryDict

from catalog.filters import OfferFilter
from catalog.models import Sku
from subscriptions import checks, selectors, services
from subscriptions.models import AuditEntry, Subscription
from subscriptions.states import Status
from tests import factories

STARTED = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


# --- S1: the display name ---------------------------------------------------------------------------------------


@pytest.mark.rule("S1")
@pytest.mark.rule("L1")
def test_s1_clearing_the_friendly_name_is_audited_with_the_name_it_is_shown_by(customer, sales, now):
    # given a subscription with a friendly name
    sku = factories.SkuFactory(name="Microsoft 365 E3")
    sub = factories.subscribe(customer, sku, started=STARTED, friendly_name="Head office")
    # when the name is cleared
    renamed = services.rename_subscription(subscription_id=sub.pk, actor=sales, friendly_name="  ", now=now)
    # then it is shown by its offer's name, and the audit says so
    assert renamed.display_name == "Microsoft 365 E3"
    entry = AuditEntry.objects.get(subscription=sub, action="subscription.renamed")
    assert (entry.summary, entry.before, entry.after) == (
        "Renamed to Microsoft 365 E3",
        {"friendly_name": "Head office"},
        {"friendly_name": ""},
    )


@pytest.mark.rule("S1")
def test_s1_the_admin_sorts_subscriptions_by_the_name_they_are_shown_by(admin_client, customer):
    # given subscriptions named by their offer or by a friendly name
    zulu = factories.SkuFactory(name="Zulu offer")
    alpha = factories.SkuFactory(name="Alpha offer")
    for sku, friendly in [(zulu, ""), (alpha, "Mike"), (zulu, "Bravo"), (alpha, "")]:
        factories.subscribe(customer, sku, started=STARTED, friendly_name=friendly)
    # when the operator sorts the admin's list by its first column, the subscription's name
    page = admin_client.get("/admin/subscriptions/subscription/", {"o": "0"}).content.decode()
    # then the rows follow the display names
    names = ["Alpha offer", "Bravo", "Mike", "Zulu offer"]
    positions = [page.index(f">{name}</a>") for name in names]
    assert positions == sorted(positions)


# --- S0, S3: who provisions a pending subscription -----------------------------------------------------------


@pytest.mark.rule("S3")
@pytest.mark.parametrize(
    "microsoft, status, provisioned",
    [
        (True, Status.PENDING, True),
        (False, Status.PENDING, False),  # S3: the publisher's set-up, not provisioning, activates it
        (True, Status.SUSPENDED, False),
        (True, Status.DELETED, False),
    ],
)
def test_s3_only_a_pending_microsoft_subscription_is_provisioned(customer, now, microsoft, status, provisioned):
    # given a subscription of a Microsoft or an ISV offer in this state
    publisher = factories.PublisherFactory(name="Microsoft" if microsoft else "Contoso Apps", is_microsoft=microsoft)
    sku = factories.SkuFactory(product=factories.ProductFactory(publisher=publisher))
    sub = factories.subscribe(customer, sku, started=STARTED, status=status)
    # then the check, its filter (the sweep's) and the service agree
    assert checks.awaiting_provisioning(sub) is provisioned
    assert Subscription.objects.filter(checks.awaiting_provisioning_filter(), pk=sub.pk).exists() is provisioned
    assert checks.awaiting_setup(sub) is (status == Status.PENDING and not microsoft)
    after = services.provision_subscription(subscription_id=sub.pk, now=now)
    assert after.status == (Status.ACTIVE if provisioned else status)


# --- C2: one search -------------------------------------------------------------------------------------------


@pytest.mark.rule("C2")
@pytest.mark.parametrize("text", ["teams", "CFQ7", "Contoso Apps", "phone", "nothing like it"])
def test_c2_the_catalog_search_and_the_list_offer_picker_find_the_same_offers(customer, text):
    # given offers found by their name, product, publisher or SKU id, each held by the customer
    contoso = factories.PublisherFactory(name="Contoso Apps", is_microsoft=False)
    offers = [
        factories.SkuFactory(name="Microsoft Teams Essentials", sku_id="AAA1"),
        factories.SkuFactory(name="Teams Phone", sku_id="AAA2"),
        factories.SkuFactory(name="Visio Plan 2", sku_id="CFQ7TTC0HD33"),
        factories.SkuFactory(name="Contoso CRM", sku_id="AAA3", product=factories.ProductFactory(publisher=contoso)),
    ]
    for sku in offers:
        factories.subscribe(customer, sku, started=STARTED)
    # when the catalog searches the offers and the list's picker searches the offers the customer holds
    catalog = set(OfferFilter(QueryDict(f"q={text}"), queryset=Sku.objects.all()).qs.values_list("pk", flat=True))
    picker = {pk for pk, _ in selectors.offers_matching(Subscription.objects.all(), text, wanted=10)}
    # then they find the same offers
    assert picker == catalog
    expected = {
        "teams": {offers[0].pk, offers[1].pk},
        "CFQ7": {offers[2].pk},
        "Contoso Apps": {offers[3].pk},
        "phone": {offers[1].pk},
        "nothing like it": set(),
    }[text]
    assert catalog == expected


# --- S2: the command bar shows the verdicts, one button each ------------------------------------------------------


@pytest.mark.rule("S2")
@pytest.mark.parametrize(
    ("kind", "shown", "hidden"),
    [
        ("paid", {"Check upgrades", "Turn auto-renew off"}, {"Convert trial", "Turn auto-renew on"}),
        ("auto_renew_off", {"Check upgrades", "Turn auto-renew on"}, {"Convert trial", "Turn auto-renew off"}),
        ("trial", {"Convert trial", "Turn auto-renew off"}, {"Check upgrades"}),
        ("isv_trial", {"Turn auto-renew off"}, {"Convert trial", "Check upgrades"}),
    ],
)
def test_s2_the_command_bar_has_the_tier_and_auto_renew_buttons_the_checks_choose(
    signed_in, sales, customer, kind, shown, hidden
):
    if kind == "trial":
        sub = factories.start_trial(customer, started=STARTED)
    elif kind == "isv_trial":
        sub = factories.SubscriptionFactory(
            customer=customer,
            sku=factories.SkuFactory(isv=True, free_trial_days=30),
            is_trial=True,
            trial_ends_at=STARTED + timedelta(days=30),
        )
    else:
        sub = factories.SubscriptionFactory(customer=customer, auto_renew=kind != "auto_renew_off")
    actions = checks.allowed_actions(sub, sales, STARTED)
    tier = checks.tier_action(sub, actions)
    assert (tier.label if tier else None) == (
        {"paid": "Check upgrades", "auto_renew_off": "Check upgrades", "trial": "Convert trial"}.get(kind)
    )
    page = signed_in.get(f"/customers/{customer.pk}/subscriptions/{sub.pk}/").content.decode()
    bar = page[page.index('class="commandbar"') : page.index("</div>", page.index('class="commandbar"'))]
    assert all(label in bar for label in shown), kind
    assert not any(label in bar for label in hidden), kind
