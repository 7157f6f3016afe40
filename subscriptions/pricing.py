"""Pure Decimal money arithmetic: no ORM, no clock. One rounding helper for the whole portal."""

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from .dates import days_inclusive

CENT = Decimal("0.01")


def round_money(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Charge:
    amount: Decimal
    period_start: date
    period_end: date
    explanation: str


def line_total(unit_price: Decimal, quantity: int) -> Decimal:
    return round_money(unit_price * quantity)


def prorated_charge(
    *,
    unit_price: Decimal,
    quantity: int,
    period_start: date,
    period_end: date,
    full_period_start: date,
    full_period_end: date,
) -> Charge:
    """Charge for part of a billing period, by the day: unit × quantity × days used / days in period."""
    days = days_inclusive(period_start, period_end)
    full_days = days_inclusive(full_period_start, full_period_end)
    if days == full_days:
        amount = line_total(unit_price, quantity)
        explanation = f"{unit_price} × {quantity}"
    else:
        amount = round_money(unit_price * quantity * days / full_days)
        explanation = f"{unit_price} × {quantity} × {days}/{full_days} days"
    return Charge(amount, period_start, period_end, explanation)


@dataclass(frozen=True)
class Period:
    """A billing period: the part charged (start–end) and the whole period it is prorated against."""

    start: date
    end: date
    full_start: date
    full_end: date

    @property
    def full_days(self) -> int:
        return days_inclusive(self.full_start, self.full_end)


def remaining_charge(*, unit_price: Decimal, quantity: int, period: Period, today: date) -> Charge:
    """Licenses from `today` to the period's end, by the day (Q1 added licenses, Q3/X1 refunds)."""
    return prorated_charge(
        unit_price=unit_price,
        quantity=quantity,
        period_start=max(today, period.start),
        period_end=period.end,
        full_period_start=period.full_start,
        full_period_end=period.full_end,
    )
