"""S5: a customer's subscriptions as CSV, produced row by row.

The rows come from a server-side iterator over plain tuples (no model instances) and leave as
they are written, a few hundred at a time: memory stays flat however many subscriptions the
customer has.
"""

import csv
from collections.abc import Iterator
from datetime import date, datetime, timedelta

from django.db.models import QuerySet
from django.utils.text import slugify

from catalog.models import BillingFrequency, Term

from .states import Status

HEADER = ("Subscription ID", "Subscription name", "Quantity", "Status", "Billing term", "Promotion", "Reseller")
CHUNK_SIZE = 2000  # rows fetched from the database at a time
ROWS_PER_WRITE = 500  # rows joined into one piece of the response: few, mid-sized writes to the socket

BILLED = {
    BillingFrequency.MONTHLY: "billed monthly",
    BillingFrequency.ANNUAL: "billed annually",
    BillingFrequency.ONE_TIME: "billed once for the whole term",
}
# A spreadsheet runs a cell starting with one of these as a formula (CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


class _Echo:
    """A file-like object whose write() hands back the line: csv.writer formats, the generator yields."""

    def write(self, value: str) -> str:
        return value


def filename(customer, now: datetime) -> str:
    """'subscriptions-fabrikam-gmbh-2026-11-25.csv': the company and the UTC day (T5), ASCII only."""
    return f"subscriptions-{slugify(customer.company_name) or 'customer'}-{now.date():%Y-%m-%d}.csv"


def status_text(status: str, auto_renew: bool, term_end: date | None) -> str:
    """'Active (auto-renew on, renews 2027-11-24)': the term end is inclusive, so the subscription renews,
    or expires, the next day (N2, N5). The date only means something for an active subscription."""
    label = Status(status).label
    if status != Status.ACTIVE:
        return label
    state = "auto-renew on" if auto_renew else "auto-renew off"
    if term_end is None:
        return f"{label} ({state})"
    next_day = term_end + timedelta(days=1)
    return f"{label} ({state}, {'renews' if auto_renew else 'expires'} {next_day:%Y-%m-%d})"


def billing_term_text(term: str, billing_frequency: str) -> str:
    """'1 year, billed monthly'."""
    return f"{Term(term).label}, {BILLED.get(billing_frequency, billing_frequency)}"


def _cell(text: str) -> str:
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def export_row(row: tuple) -> tuple:
    pk, name, quantity, status, auto_renew, term_end, term, frequency, promotion, reseller = row
    return (str(pk), _cell(name), quantity, status_text(status, auto_renew, term_end),
            billing_term_text(term, frequency), _cell(promotion) if promotion else "None", reseller or "")


def csv_lines(subscriptions: QuerySet) -> Iterator[str]:
    """The header, then one line per subscription (by offer name), yielded in batches of ROWS_PER_WRITE."""
    writer = csv.writer(_Echo())
    yield writer.writerow(HEADER)
    rows = subscriptions.order_by("sku__name", "pk").values_list(
        "pk", "sku__name", "quantity", "status", "auto_renew", "term_end", "term", "billing_frequency",
        "promotion_id", "reseller__partner_id",
    )
    batch = []
    for row in rows.iterator(chunk_size=CHUNK_SIZE):
        batch.append(writer.writerow(export_row(row)))
        if len(batch) == ROWS_PER_WRITE:
            yield "".join(batch)
            batch = []
    if batch:
        yield "".join(batch)
