"""The codes of a transition's eligibility errors: Partner Center's for U3's reasons an existing subscription can't
take the licenses (1–4, the reference's 3.2), TR5's (4: it ends before the trial), and otherwise the refusal's own
(api.errors), never 0."""

from datetime import UTC, datetime, timedelta

import pytest

from catalog.models import UpgradePath
from subscriptions.models import Subscription
from tests import factories
from tests.api.test_transitions import target_item

STARTED = datetime(2026, 6, 1, tzinfo=UTC)  # half a year before the tests' now: out of every window


@pytest.fixture
def e3_to_e5(customer):
    e3 = factories.SkuFactory(name="Office 365 E3", availabilities=[("P1Y", "monthly", "20.00")])
    e5 = factories.SkuFactory(
        name="Office 365 E5",
        availabilities=[("P1M", "monthly", "38.00"), ("P1Y", "monthly", "35.00"), ("P3Y", "monthly", "33.00")],
    )
    UpgradePath.objects.create(source=e3, target=e5)
    source = factories.subscribe(customer, e3, started=STARTED)
    return source, e5


@pytest.mark.rule("U3")
def test_u3_each_reason_an_existing_subscription_cant_take_the_licenses_has_its_code(api, customer, now, e3_to_e5):
    source, e5 = e3_to_e5

    def existing(term, **fields):
        return factories.SubscriptionFactory(
            customer=customer, sku=e5, availability=e5.availabilities.get(term=term), **fields
        )

    fit = existing("P1Y", term_start=STARTED, term_end=source.term_end)
    in_window = existing("P1Y", term_start=now - timedelta(days=1), term_end=source.term_end + timedelta(days=30))
    shorter = existing("P1M", term_start=now - timedelta(days=20), term_end=source.term_end)
    longer = existing("P3Y", term_start=STARTED, term_end=source.term_end + timedelta(days=730))
    ends_before = existing(
        "P1Y", term_start=STARTED - timedelta(days=30), term_end=source.term_end - timedelta(days=30)
    )
    renewing = existing("P1Y", term_start=STARTED, term_end=source.term_end, renewal_pending=True)
    before = list(Subscription.objects.values_list("pk", "quantity", "version").order_by("pk"))
    (item,) = target_item(api, source)
    codes = {e["subscriptionId"]: [x["code"] for x in e["errors"]] for e in item["subscriptionEligibilities"]}
    assert codes == {
        str(fit.pk): [],
        str(in_window.pk): [2],  # SubscriptionInCancellationWindow
        str(shorter.pk): [3],  # term duration shorter than the source's
        str(longer.pk): [1_000_422],  # U3 refuses any other term; Partner Center has no code for a longer one
        str(ends_before.pk): [4],  # term end date before the source's
        str(renewing.pk): [800082],  # N6: not ready to be updated, try again after some time
    }
    assert list(Subscription.objects.values_list("pk", "quantity", "version").order_by("pk")) == before


@pytest.mark.rule("N6")
def test_a_source_whose_renewal_is_processed_is_not_eligible_with_n6s_code(api, e3_to_e5):
    source, _ = e3_to_e5
    Subscription.objects.filter(pk=source.pk).update(renewal_pending=True)
    (item,) = target_item(api, source)
    assert item["eligibilities"][0]["isEligible"] is False
    assert [e["code"] for e in item["eligibilities"][0]["errors"]] == [800082]


@pytest.mark.rule("TR5")
def test_tr5_a_subscription_ending_before_the_trial_is_code_4(api, customer):
    paid = factories.SkuFactory(name="Microsoft 365 E3", availabilities=[("P1Y", "monthly", "36.00")])
    trial = factories.start_trial(
        customer, factories.trial_offer(trial_of=paid), started=datetime(2026, 11, 10, tzinfo=UTC)
    )
    short = factories.SubscriptionFactory(customer=customer, sku=paid, term_end=trial.term_end - timedelta(days=1))
    (item,) = target_item(api, trial)
    assert [(e["subscriptionId"], [x["code"] for x in e["errors"]]) for e in item["subscriptionEligibilities"]] == [
        (str(short.pk), [4])
    ]
    Subscription.objects.filter(pk=trial.pk).update(renewal_pending=True)
    (item,) = target_item(api, trial)
    assert [e["code"] for e in item["eligibilities"][0]["errors"]] == [800082]
