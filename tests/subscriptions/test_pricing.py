"""Money and calendar arithmetic: Decimal only, one rounding (half up, to the cent, once), inclusive
term end dates. Pure functions: no database."""

from datetime import date
from decimal import Decimal

import pytest

from subscriptions.dates import add_months, days_inclusive, is_last_day_of_month, last_day_of_month, term_end_for
from subscriptions.pricing import Charge, line_total, prorated_charge, round_money
from subscriptions.services import first_charge

TODAY = date(2026, 11, 25)


# Rounding and totals -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "amount, rounded",
    [
        ("0.005", "0.01"),
        ("2.675", "2.68"),
        ("1.004", "1.00"),
        ("1.0049999", "1.00"),
        ("-0.005", "-0.01"),
        ("7", "7.00"),
    ],
)
def test_money_is_rounded_half_up_to_the_cent(amount, rounded):
    # given an amount / when it is rounded / then half a cent goes up (away from zero)
    assert round_money(Decimal(amount)) == Decimal(rounded)
    assert str(round_money(Decimal(amount))) == rounded


def test_line_total_is_unit_price_times_quantity():
    # given a unit price and a quantity / when totalled / then exact to the cent
    assert line_total(Decimal("12.34"), 3) == Decimal("37.02")
    assert line_total(Decimal("0.00"), 25) == Decimal("0.00")


# Proration by the day (K11) ----------------------------------------------------------------------


@pytest.mark.rule("K11")
def test_k11_full_billing_period_is_not_prorated():
    # given a charge for the whole month from 2026-11-25 to 2026-12-24
    # when it is computed
    charge = prorated_charge(
        unit_price=Decimal("36.00"),
        quantity=10,
        period_start=TODAY,
        period_end=date(2026, 12, 24),
        full_period_start=TODAY,
        full_period_end=date(2026, 12, 24),
    )
    # then it is unit × quantity
    assert charge == Charge(Decimal("360.00"), TODAY, date(2026, 12, 24), "36.00 × 10")


@pytest.mark.rule("K11")
@pytest.mark.parametrize(
    "unit, quantity, end, full_end, amount, explanation",
    [
        ("36.00", 10, date(2026, 11, 30), date(2026, 12, 24), "72.00", "36.00 × 10 × 6/30 days"),
        ("432.00", 10, date(2027, 6, 30), date(2027, 11, 24), "2580.16", "432.00 × 10 × 218/365 days"),
        ("43.20", 10, date(2026, 12, 15), date(2026, 12, 24), "302.40", "43.20 × 10 × 21/30 days"),
        ("0.01", 1, date(2026, 12, 9), date(2026, 12, 24), "0.01", "0.01 × 1 × 15/30 days"),  # 0.005 rounds up
        # Rounded once on the whole line, not per license: 10.00 × 3 × 10/30 is 10.00, not 3 × 3.33.
        ("10.00", 3, date(2026, 12, 4), date(2026, 12, 24), "10.00", "10.00 × 3 × 10/30 days"),
    ],
)
def test_k11_part_of_a_billing_period_is_prorated_by_the_day(unit, quantity, end, full_end, amount, explanation):
    # given a charge from 2026-11-25 ending before its billing period does
    # when it is computed
    charge = prorated_charge(
        unit_price=Decimal(unit),
        quantity=quantity,
        period_start=TODAY,
        period_end=end,
        full_period_start=TODAY,
        full_period_end=full_end,
    )
    # then it is unit × quantity × days used / days in the period, rounded once to the cent
    assert charge == Charge(Decimal(amount), TODAY, end, explanation)


@pytest.mark.rule("K11")
def test_k11_first_charge_of_an_unaligned_line_is_one_billing_period():
    # given P1Y lines billed monthly and annually, and a P3Y line paid once, none aligned
    monthly = first_charge(
        unit_price=Decimal("36.00"),
        quantity=10,
        billing_frequency="monthly",
        term_start=TODAY,
        term_end=date(2027, 11, 24),
        term_months=12,
    )
    annual = first_charge(
        unit_price=Decimal("432.00"),
        quantity=10,
        billing_frequency="annual",
        term_start=TODAY,
        term_end=date(2027, 11, 24),
        term_months=12,
    )
    one_time = first_charge(
        unit_price=Decimal("1200.00"),
        quantity=2,
        billing_frequency="one_time",
        term_start=TODAY,
        term_end=date(2029, 11, 24),
        term_months=36,
    )
    # then each is charged for its first billing period in full
    assert monthly == Charge(Decimal("360.00"), TODAY, date(2026, 12, 24), "36.00 × 10")
    assert annual == Charge(Decimal("4320.00"), TODAY, date(2027, 11, 24), "432.00 × 10")
    assert one_time == Charge(Decimal("2400.00"), TODAY, date(2029, 11, 24), "1200.00 × 2")


@pytest.mark.rule("K11")
def test_k11_first_charge_of_an_aligned_one_time_line_is_prorated_over_its_whole_term():
    # given a P3Y line paid once (600.00 for 2 licenses) aligned to end 2027-11-30
    # when its first charge is computed
    charge = first_charge(
        unit_price=Decimal("300.00"),
        quantity=2,
        billing_frequency="one_time",
        term_start=TODAY,
        term_end=date(2027, 11, 30),
        term_months=36,
    )
    # then it pays 371 of the three years' 1,096 days (2028 is a leap year)
    assert charge == Charge(Decimal("203.10"), TODAY, date(2027, 11, 30), "300.00 × 2 × 371/1096 days")


@pytest.mark.rule("K11")
def test_k11_aligned_end_beyond_the_first_billing_period_pays_that_period_in_full():
    # given a P1Y line billed monthly, aligned to end 2027-03-15
    # when its first charge is computed
    charge = first_charge(
        unit_price=Decimal("36.00"),
        quantity=10,
        billing_frequency="monthly",
        term_start=TODAY,
        term_end=date(2027, 3, 15),
        term_months=12,
    )
    # then the first month is charged in full
    assert charge == Charge(Decimal("360.00"), TODAY, date(2026, 12, 24), "36.00 × 10")


# Calendar ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "start, months, expected",
    [
        (date(2026, 11, 25), 1, date(2026, 12, 25)),
        (date(2026, 12, 15), 1, date(2027, 1, 15)),  # across the year end
        (date(2026, 11, 25), 12, date(2027, 11, 25)),
        (date(2027, 1, 31), 1, date(2027, 2, 28)),  # clamped to the month's last day
        (date(2028, 1, 31), 1, date(2028, 2, 29)),  # leap year
        (date(2026, 11, 25), 36, date(2029, 11, 25)),
    ],
)
def test_add_months_keeps_the_day_clamped_to_the_month(start, months, expected):
    # given a day / when months are added / then the same day, or the month's last day if shorter
    assert add_months(start, months) == expected


@pytest.mark.rule("TR1")
@pytest.mark.parametrize(
    "start, months, end",
    [
        (date(2026, 11, 25), 1, date(2026, 12, 24)),  # P1M, like a trial bought today
        (date(2026, 11, 25), 12, date(2027, 11, 24)),  # P1Y
        (date(2026, 11, 25), 36, date(2029, 11, 24)),  # P3Y
        (date(2026, 12, 1), 1, date(2026, 12, 31)),
    ],
)
def test_term_ends_on_the_inclusive_day_before_its_anniversary(start, months, end):
    # given a term's start / when its end is computed / then it is the inclusive day before its anniversary
    assert term_end_for(start, months) == end


def test_month_ends_and_days():
    # given days / when month ends and inclusive day counts are asked / then they are exact
    assert last_day_of_month(date(2027, 2, 10)) == date(2027, 2, 28)
    assert last_day_of_month(date(2028, 2, 10)) == date(2028, 2, 29)
    assert is_last_day_of_month(date(2026, 11, 30)) and not is_last_day_of_month(date(2026, 12, 30))
    assert days_inclusive(TODAY, TODAY) == 1
    assert days_inclusive(TODAY, date(2027, 11, 24)) == 365
