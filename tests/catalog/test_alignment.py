"""K11: the end dates a new line may align to (coterminosity at purchase), refused at add, update and
purchase when not allowed. Today is 2026-11-25, so a P1M line naturally ends 2026-12-24 and a P1Y line
2027-11-24. The prorated first charge of an aligned line is in tests/subscriptions/test_fulfillment.py."""

from datetime import date
from uuid import UUID

import pytest

from catalog import cart as cart_services
from catalog.alignment import (
    AlignmentOption,
    CartAlignment,
    alignable_subscriptions,
    alignment_allowed,
    alignment_options,
)
from catalog.checkout import purchase
from catalog.models import CartLine, Order
from portal.errors import RuleViolation, RuleViolations
from subscriptions.states import Status
from tests import factories
from tests.helpers import add_to_cart

MONTH_ENDS_IN_A_YEAR = [
    date(2026, 11, 30),
    date(2026, 12, 31),
    date(2027, 1, 31),
    date(2027, 2, 28),
    date(2027, 3, 31),
    date(2027, 4, 30),
    date(2027, 5, 31),
    date(2027, 6, 30),
    date(2027, 7, 31),
    date(2027, 8, 31),
    date(2027, 9, 30),
    date(2027, 10, 31),
]


@pytest.fixture
def e3(db):
    return factories.SkuFactory(
        name="Microsoft 365 E3",
        availabilities=[
            ("P1M", "monthly", "43.20"),
            ("P1Y", "monthly", "36.00"),
            ("P1Y", "annual", "432.00"),
            ("P3Y", "annual", "410.00"),
        ],
    )


def subscription(customer, name, term, term_end, **kwargs):
    sku = kwargs.pop("sku", None) or factories.SkuFactory(name=name)
    return factories.SubscriptionFactory(
        customer=customer, sku=sku, availability=factories.availability(sku, term), term_end=term_end, **kwargs
    )


@pytest.fixture
def estate(customer, direct_partner):
    """The customer's subscriptions, and some that are no alignment target."""
    return {
        "annual_15th": subscription(customer, "Exchange Online (Plan 1)", "P1Y", date(2027, 3, 15)),
        "annual_29th": subscription(customer, "Visio Plan 2", "P1Y", date(2026, 11, 29)),
        "monthly_15th": subscription(customer, "Project Plan 3", "P1M", date(2026, 12, 15)),
        "monthly_28th": subscription(customer, "Power BI Pro", "P1M", date(2026, 11, 28)),
        # Not targets: a trial, a suspended one, a traditional one, another customer's, one ending after a year,
        # one already ended.
        "trial": subscription(customer, "Microsoft 365 E5 (trial)", "P1M", date(2026, 12, 10), trial=True),
        "suspended": subscription(customer, "Teams Premium", "P1Y", date(2027, 2, 10), suspended=True),
        "traditional": subscription(
            customer,
            "Office 365 E1 (legacy)",
            "P1Y",
            date(2027, 1, 20),
            sku=factories.SkuFactory(name="Office 365 E1 (legacy)", commerce="traditional"),
        ),
        "other_customer": subscription(
            factories.CustomerFactory(partner=direct_partner), "Intune P1", "P1Y", date(2027, 4, 20)
        ),
        "later": subscription(customer, "Defender for Endpoint P2", "P1Y", date(2027, 12, 20)),
        "ended": subscription(customer, "Entra ID P1", "P1M", date(2026, 11, 24)),
    }


@pytest.mark.rule("K11")
def test_k11_annual_line_may_end_on_month_ends_or_with_annual_subscriptions(customer, e3, estate, now):
    # given the customer's subscriptions
    # when the end dates a P1Y line may align to are listed
    options = alignment_options(customer, factories.availability(e3, "P1Y", "monthly"), now.date())
    # then they are every month end within the first year, and the active non-trial new-commerce annual
    # subscriptions ending within it, earliest first
    assert [o.end_date for o in options] == sorted(MONTH_ENDS_IN_A_YEAR + [date(2026, 11, 29), date(2027, 3, 15)])
    assert options[0] == AlignmentOption(date(2026, 11, 29), "With Visio Plan 2 (2026-11-29)")
    assert options[1] == AlignmentOption(date(2026, 11, 30), "End of calendar month (2026-11-30)")
    assert AlignmentOption(date(2027, 3, 15), "With Exchange Online (Plan 1) (2027-03-15)") in options


@pytest.mark.rule("K11")
def test_k11_monthly_line_may_end_on_this_month_end_or_with_a_subscription_ending_within_a_month(
    customer, e3, estate, now
):
    # given the customer's subscriptions
    # when the end dates a P1M line may align to are listed
    options = alignment_options(customer, factories.availability(e3, "P1M"), now.date())
    # then they are this month's end and the monthly subscription ending on the 15th; not the ones ending on
    # the 28th or 29th
    assert options == [
        AlignmentOption(date(2026, 11, 30), "End of calendar month (2026-11-30)"),
        AlignmentOption(date(2026, 12, 15), "With Project Plan 3 (2026-12-15)"),
    ]


@pytest.mark.rule("K11")
@pytest.mark.parametrize("day", [28, 29, 30])
def test_k11_monthly_line_cannot_align_to_a_subscription_ending_on_the_28th_to_30th(customer, e3, day):
    # given a subscription ending on the 28th, 29th or 30th of December
    subscription(customer, "Visio Plan 2", "P1Y", date(2026, 12, day))
    # when a P1M line starting on the 15th checks that date
    allowed = alignment_allowed(customer, factories.availability(e3, "P1M"), date(2026, 12, day), date(2026, 12, 15))
    # then it is not allowed, though the month's last day is
    assert allowed is False
    assert (
        alignment_allowed(customer, factories.availability(e3, "P1M"), date(2026, 12, 31), date(2026, 12, 15)) is True
    )


@pytest.mark.rule("K11")
def test_k11_monthly_line_may_align_to_a_subscription_ending_on_the_months_last_day(customer, e3):
    # given a subscription ending on 2027-02-28, February's last day
    subscription(customer, "Visio Plan 2", "P1Y", date(2027, 2, 28))
    # when a P1M line starting on 2027-02-10 checks that date
    allowed = alignment_allowed(customer, factories.availability(e3, "P1M"), date(2027, 2, 28), date(2027, 2, 10))
    # then it is allowed
    assert allowed is True


@pytest.mark.rule("K11")
@pytest.mark.parametrize("term, frequency", [("P1Y", "monthly"), ("P1Y", "annual"), ("P3Y", "annual")])
def test_k11_annual_or_triennial_line_cannot_align_to_a_monthly_subscription(
    customer, e3, estate, now, term, frequency
):
    # given a P1M subscription ending 2026-12-15
    # when a P1Y or P3Y line lists its options
    ends = [o.end_date for o in alignment_options(customer, factories.availability(e3, term, frequency), now.date())]
    # then that date is not one of them
    assert date(2026, 12, 15) not in ends
    assert date(2027, 3, 15) in ends


@pytest.mark.rule("K11")
def test_k11_triennial_line_may_end_on_any_month_end_within_three_years(customer, e3, now):
    # given no subscriptions
    # when a P3Y line lists its options
    options = alignment_options(customer, factories.availability(e3, "P3Y", "annual"), now.date())
    # then they are the 36 month ends from 2026-11-30 to 2029-10-31
    assert len(options) == 36
    assert (options[0].end_date, options[-1].end_date) == (date(2026, 11, 30), date(2029, 10, 31))


@pytest.mark.rule("K11")
@pytest.mark.parametrize("kind", ["trial", "isv", "usage", "traditional"])
def test_k11_not_for_trials_isv_usage_or_traditional_offers(customer, sales, estate, now, kind):
    # given a trial, an ISV offer, a usage-based offer or a traditional offer
    sku = {
        "trial": lambda: factories.SkuFactory(trial=True, availabilities=[("P1M", "monthly", "0.00")]),
        "isv": lambda: factories.SkuFactory(isv=True, availabilities=[("P1M", "monthly", "5.00")]),
        "usage": lambda: factories.SkuFactory(usage=True, availabilities=[("P1M", "monthly", "0.00")]),
        "traditional": lambda: factories.SkuFactory(
            commerce="traditional", availabilities=[("P1M", "monthly", "8.00")]
        ),
    }[kind]()
    offer = factories.availability(sku, "P1M")
    # when it lists its options, and is added aligned to this month's end
    options = alignment_options(customer, offer, now.date())
    with pytest.raises(RuleViolation) as refused:
        add_to_cart(customer, sales, offer, 25, now, aligned_end_date=date(2026, 11, 30))
    # then it has none and the line is refused
    assert options == []
    assert (refused.value.rule, refused.value.field) == ("K11", "aligned_end_date")
    assert not CartLine.objects.exists()


@pytest.mark.rule("K11")
def test_k11_line_aligned_to_a_valid_date_is_accepted(customer, sales, e3, estate, now):
    # given an annual subscription ending 2027-03-15
    # when a P1Y line is added aligned to it
    line = add_to_cart(
        customer, sales, factories.availability(e3, "P1Y", "monthly"), 10, now, aligned_end_date=date(2027, 3, 15)
    )
    # then it is in the cart with that end date
    assert list(CartLine.objects.values_list("pk", "aligned_end_date", "quantity")) == [
        (line.pk, date(2027, 3, 15), 10)
    ]


@pytest.mark.rule("K11")
@pytest.mark.parametrize(
    "term, bad_date",
    [
        ("P1M", date(2026, 11, 28)),  # a monthly subscription ending on the 28th
        ("P1M", date(2027, 3, 15)),  # beyond the first month
        ("P1Y", date(2026, 12, 15)),  # a monthly subscription
        ("P1Y", date(2027, 2, 10)),  # a suspended subscription
        ("P1Y", date(2026, 12, 10)),  # a trial
        ("P1Y", date(2027, 4, 20)),  # another customer's subscription
        ("P1Y", date(2027, 11, 24)),  # the natural end is no alignment
        ("P1Y", date(2027, 12, 31)),  # a month end beyond the first term
        ("P1Y", date(2026, 11, 24)),  # yesterday
    ],
)
def test_k11_line_aligned_to_an_invalid_date_is_refused_at_add(customer, sales, e3, estate, now, term, bad_date):
    # given the customer's subscriptions
    # when a line is added aligned to a date it may not take
    with pytest.raises(RuleViolation) as refused:
        add_to_cart(customer, sales, factories.availability(e3, term), 10, now, aligned_end_date=bad_date)
    # then it is refused and nothing was added
    assert (refused.value.rule, refused.value.field) == ("K11", "aligned_end_date")
    assert refused.value.message == f"The end date {bad_date:%Y-%m-%d} is not one this line can align to."
    assert not CartLine.objects.exists()


@pytest.mark.rule("K11")
def test_k11_line_changed_to_an_invalid_date_is_refused_and_unchanged(customer, sales, e3, estate, now):
    # given a P1Y line aligned to 2027-03-15
    line = add_to_cart(
        customer, sales, factories.availability(e3, "P1Y", "monthly"), 10, now, aligned_end_date=date(2027, 3, 15)
    )
    # when it is changed to end with the monthly subscription (2026-12-15)
    with pytest.raises(RuleViolation) as refused:
        cart_services.update_line(
            cart=line.cart, actor=sales, line_id=line.pk, quantity=12, aligned_end_date=date(2026, 12, 15), now=now
        )
    # then it is refused and keeps its date and quantity
    assert (refused.value.rule, refused.value.message) == (
        "K11",
        "The end date 2026-12-15 is not one this line can align to.",
    )
    line.refresh_from_db()
    assert (line.aligned_end_date, line.quantity) == (date(2027, 3, 15), 10)


@pytest.mark.rule("K11")
def test_k11_line_changed_to_a_valid_date_or_none(customer, sales, e3, estate, now):
    # given a P1Y line with its natural end
    line = add_to_cart(customer, sales, factories.availability(e3, "P1Y", "monthly"), 10, now)
    # when it is aligned to a month end, then back to its natural end
    cart_services.update_line(
        cart=line.cart, actor=sales, line_id=line.pk, quantity=10, aligned_end_date=date(2027, 6, 30), now=now
    )
    line.refresh_from_db()
    aligned = line.aligned_end_date
    cart_services.update_line(cart=line.cart, actor=sales, line_id=line.pk, quantity=10, aligned_end_date=None, now=now)
    # then each change is kept
    line.refresh_from_db()
    assert (aligned, line.aligned_end_date) == (date(2027, 6, 30), None)


@pytest.mark.rule("K11")
def test_k11_alignment_target_cancelled_before_purchase_is_refused_at_purchase(customer, sales, e3, estate, now):
    # given a P1Y line aligned to an annual subscription, which is then cancelled
    line = add_to_cart(
        customer, sales, factories.availability(e3, "P1Y", "monthly"), 10, now, aligned_end_date=date(2027, 3, 15)
    )
    estate["annual_15th"].status = Status.DELETED
    estate["annual_15th"].save()
    # when the cart is purchased
    with pytest.raises(RuleViolations) as refused:
        purchase(cart=line.cart, actor=sales, attested=True, now=now)
    # then the line is refused and nothing is bought
    assert {pk: v.rule for pk, v in refused.value.violations.items()} == {line.pk: "K11"}
    assert not Order.objects.exists()


@pytest.mark.rule("K11")
def test_k11_of_two_subscriptions_ending_the_same_day_the_lower_pk_names_the_option(customer, e3, now):
    # given two annual subscriptions ending on the same day, the one with the higher pk created first
    subscription(customer, "Project Plan 3", "P1Y", date(2027, 3, 15), id=UUID(int=2))
    subscription(customer, "Visio Plan 2", "P1Y", date(2027, 3, 15), id=UUID(int=1))
    # when the end dates a P1Y line may align to are listed
    options = alignment_options(customer, factories.availability(e3, "P1Y", "monthly"), now.date())
    # then the date is offered once, named after the lower pk whatever the order they were written in
    assert [o for o in options if o.end_date == date(2027, 3, 15)] == [
        AlignmentOption(date(2027, 3, 15), "With Visio Plan 2 (2027-03-15)")
    ]


@pytest.mark.rule("K11")
def test_k11_targets_are_named_by_their_friendly_name_else_their_offer(customer, now):
    # given two alignable subscriptions, one with a friendly name
    subscription(customer, "Visio Plan 2", "P1Y", date(2027, 3, 15), friendly_name="Design team")
    plain = subscription(customer, "Project Plan 3", "P1M", date(2026, 12, 15))
    # when the customer's alignment targets are read
    targets = alignable_subscriptions(customer.pk, now.date())
    # then each carries what K11 reads, earliest end first
    assert [(t.term_end, t.term, t.display_name) for t in targets] == [
        (date(2026, 12, 15), "P1M", "Project Plan 3"),
        (date(2027, 3, 15), "P1Y", "Design team"),
    ]
    assert targets[0].pk == plain.pk


@pytest.mark.rule("K11")
def test_k11_targets_are_the_customers_active_new_commerce_subscriptions_still_in_term(customer, estate, now):
    # given the customer's estate (targets, and a trial, a suspended, a traditional, another customer's, an ended one)
    # when the customer's alignment targets are read
    targets = alignable_subscriptions(customer, now.date())
    # then they are exactly the active, non-trial, new-commerce ones of this customer not yet ended, earliest end first
    # (one ending after a line's first term is still a target: `alignment_options` leaves it out per line)
    assert [t.pk for t in targets] == [
        estate[name].pk for name in ("monthly_28th", "annual_29th", "monthly_15th", "annual_15th", "later")
    ]


@pytest.mark.rule("K11")
def test_k11_cart_page_reads_the_targets_once_and_gives_each_line_its_terms_options(
    customer, e3, estate, now, django_assert_num_queries
):
    # given lines of three terms, two of them annual, and a usage-based line
    annual, monthly = factories.availability(e3, "P1Y", "monthly"), factories.availability(e3, "P1M")
    annual_billed_yearly, triennial = (
        factories.availability(e3, "P1Y", "annual"),
        factories.availability(e3, "P3Y", "annual"),
    )
    usage = factories.availability(factories.SkuFactory(usage=True))
    alignment = CartAlignment(customer, now.date())
    # when each line's options are asked for
    with django_assert_num_queries(1):
        found = [alignment.options(a) for a in (annual, monthly, annual_billed_yearly, triennial, usage)]
    # then they are the rule's, the subscriptions read once for all of them
    assert found == [
        alignment_options(customer, a, now.date()) for a in (annual, monthly, annual_billed_yearly, triennial, usage)
    ]
    assert found[0] is found[2]
    assert found[4] == []


@pytest.mark.rule("K11")
def test_k11_cart_page_reads_no_targets_when_no_line_can_align(customer, estate, now, django_assert_num_queries):
    # given only a trial and an ISV line
    lines = [
        factories.availability(factories.SkuFactory(trial=True), "P1M"),
        factories.availability(factories.SkuFactory(isv=True)),
    ]
    alignment = CartAlignment(customer, now.date())
    # when their options are asked for, then there are none and nothing is read
    with django_assert_num_queries(0):
        assert [alignment.options(a) for a in lines] == [[], []]
