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


def prorated_charge(*, unit_price: Decimal, quantity: int, period_start: date, period_end: date,
                    full_period_start: date, full_period_end: date) -> Charge:
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
