"""S5: a customer's subscriptions as CSV, produced row by row.

The rows come from a server-side iterator over plain tuples (no model instances) and leave as
they are written, a few hundred at a time: memory stays flat however many subscriptions the
customer has.

The file is English whatever the page's language, as Partner Center's own export is: its column names and its
values (statuses, terms, "auto-renew on") are what spreadsheets and scripts that read Partner Center's export
match on, so they are machine values here, not texts to translate (`EXPORT_LANGUAGE`).
"""

import csv
import io
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from itertools import islice

from django.db.models import QuerySet
from django.utils import translation
from django.utils.text import slugify

from catalog.models import BillingFrequency, Term

from .states import Status

EXPORT_LANGUAGE = "en"  # Partner Center's export's column names and values: never translated (see above)
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


def filename(customer, now: datetime) -> str:
    """'subscriptions-fabrikam-gmbh-2026-11-25.csv': the company and the UTC day (T5), ASCII only."""
    return f"subscriptions-{slugify(customer.company_name) or 'customer'}-{now.date():%Y-%m-%d}.csv"


def status_text(status: str, auto_renew: bool, term_end: date | None) -> str:
    """'Active (auto-renew on, renews 2027-11-24)': the term end is inclusive, so the subscription renews,
    or expires, the next day (N2, N5). The date only means something for an active subscription."""
    with translation.override(EXPORT_LANGUAGE):  # the status's label is translated for the pages, not here
        label = str(Status(status).label)
    if status != Status.ACTIVE:
        return label
    state = "auto-renew on" if auto_renew else "auto-renew off"
    if term_end is None:
        return f"{label} ({state})"
    next_day = term_end + timedelta(days=1)
    return f"{label} ({state}, {'renews' if auto_renew else 'expires'} {next_day:%Y-%m-%d})"


def billing_term_text(term: str, billing_frequency: str) -> str:
    """'1 year, billed monthly'."""
    with translation.override(EXPORT_LANGUAGE):
        return f"{Term(term).label}, {BILLED.get(billing_frequency, billing_frequency)}"


def _cell(text: str) -> str:
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def export_row(row: tuple) -> tuple:
    pk, name, quantity, status, auto_renew, term_end, term, frequency, promotion, reseller = row
    return (
        str(pk),
        _cell(name),
        quantity,
        status_text(status, auto_renew, term_end),
        billing_term_text(term, frequency),
        _cell(promotion) if promotion else "None",
        reseller or "",
    )


# The texts a line repeats (formatted once, then looked up) are forgotten past this many of a kind: the memory an
# export holds stays bounded however many subscriptions it streams (about 1.5 MB at most). The bench's 100,000
# subscriptions hold 8,710 (status, auto-renew, term end) triples: fewer slots made a third of the rows miss.
MEMO_SIZE = 16384


def _lines(values: Iterator[tuple]) -> Iterator[str]:
    """One CSV line per row. A customer's subscriptions hold a few hundred offer names, a few thousand (status,
    term end) pairs and a few dozen (billing, promotion, reseller) combinations: each cell is formatted once by
    csv.writer (its quoting and CSV-injection guard) and looked up after, so a line costs three look-ups and the id
    and quantity, which never need quoting. Profiled on 100,000 rows: formatting every cell of every row (the status
    and term texts, the enum labels, csv.writer's quoting) was most of the time; with the status and the billing
    cells looked up together, the pairs' many term ends made half of the rows miss."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="")

    def remember(cells: dict, key, row: tuple) -> str:
        if len(cells) >= MEMO_SIZE:
            cells.clear()
        writer.writerow(row)
        text = cells[key] = _take(buffer)
        return text

    names: dict[str, str] = {}
    states: dict[tuple, str] = {}
    tails: dict[tuple, str] = {}
    for pk, name, quantity, status, auto_renew, term_end, term, frequency, promotion, reseller in values:
        name_text = names.get(name)
        if name_text is None:
            name_text = remember(names, name, (_cell(name),))
        state = (status, auto_renew, term_end)
        state_text = states.get(state)
        if state_text is None:
            state_text = remember(states, state, (status_text(status, auto_renew, term_end),))
        key = (term, frequency, promotion, reseller)
        tail = tails.get(key)
        if tail is None:
            cells = (billing_term_text(term, frequency), _cell(promotion) if promotion else "None", reseller or "")
            tail = remember(tails, key, cells)
        yield f"{pk},{name_text},{quantity},{state_text},{tail}\r\n"


def csv_lines(subscriptions: QuerySet) -> Iterator[str]:
    """The header, then one line per subscription (by offer name), yielded in batches of ROWS_PER_WRITE."""
    buffer = io.StringIO()
    csv.writer(buffer).writerow(HEADER)
    yield _take(buffer)
    values = (
        subscriptions.order_by("sku__name", "pk")
        .values_list(
            "pk",
            "sku__name",
            "quantity",
            "status",
            "auto_renew",
            "term_end",
            "term",
            "billing_frequency",
            "promotion_id",
            "reseller__partner_id",
        )
        .iterator(chunk_size=CHUNK_SIZE)
    )
    lines = _lines(values)
    while batch := "".join(islice(lines, ROWS_PER_WRITE)):
        yield batch


def _take(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text
