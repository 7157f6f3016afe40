"""The catalog page's read (C2–C5): one page of offers as cards ready to render.

The "Add subscription" page is the busiest read of the portal and its cost was the ORM and the
template, not the database. So it reads plain rows, never model instances or prefetches: the page
of offers (and its count, unless the first page holds them all), their terms and prices in one
more query, and the add-on prerequisites and ISV exclusivity in a third. Each card's markup is
made here (`card_html`), so the template only places it. Every verdict still comes from `eligibility.refusal`, the rule the cart and the purchase apply.
"""

from dataclasses import dataclass
from typing import TypedDict

from django.core.paginator import Page
from django.db.models import CharField, Value
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from catalog.eligibility import BuyingContext, OfferFacts, Refusal, refusal
from catalog.models import Availability, BillingFrequency, Product, Sku, Term
from portal.pagination import SmallListPaginator
from portal.templatetags.portal_tags import money

OFFERS_PER_PAGE = 20
ORDERING = ("-product__publisher__is_microsoft", "name", "pk")  # Microsoft first, then by name
# The term and billing a partner picks most often come first: annual term, billed monthly.
_TERM_RANK = {Term.P1Y: 0, Term.P1M: 1, Term.P3Y: 2}
_FREQUENCY_RANK = {BillingFrequency.MONTHLY: 0, BillingFrequency.ANNUAL: 1, BillingFrequency.ONE_TIME: 2}

_TERM_LABELS = dict(Term.choices)
_FREQUENCY_LABELS = {value: label.lower() for value, label in BillingFrequency.choices}
_BILLING_TYPE_LABELS = dict(Product.BillingType.choices)
_CATEGORY_LABELS = dict(Product.Category.choices)
_COMMERCE_LABELS = dict(Sku.Commerce.choices)

_FIELDS = (
    "pk", "sku_id", "name", "commerce", "segments", "one_per_customer", "min_quantity", "max_quantity", "is_trial",
    "is_addon", "available_countries", "offered_through_csp", "transactable_in_portal", "free_trial_days",
    "product__billing_type", "product__category", "product__publisher__name", "product__publisher__is_microsoft",
)


class OfferCard(TypedDict):
    """One card, as the template reads it. A dict, not an object: the template engine looks keys up
    first, so every {{ o.x }} resolves on its first try."""

    sku_id: str
    name: str
    meta: str  # publisher · billing type · category · commerce, and what is special about it
    details: str  # the SKU id, and the licenses it is sold in
    options: list[tuple[int, str]]  # (availability id, "1 year, monthly · 12.00 USD per license")
    min_quantity: int | None  # set when the partner picks a quantity (license-based, not a trial)
    max_quantity: int
    is_trial: bool
    refusal: Refusal | None
    why: str  # the refusal's message ("" when it can be bought)
    why_link: str
    why_link_label: str


def _split(text: str) -> tuple[str, ...]:
    # The same reading as Sku.segment_list and Sku.country_list (comma-separated, blanks ignored).
    return tuple(part.strip() for part in text.split(",") if part.strip())


class _OfferPaginator(SmallListPaginator):
    """Counts the filtered offers themselves: the rows' query joins product and publisher for its columns,
    which a COUNT does not need."""

    def __init__(self, rows, offers, per_page: int):
        super().__init__(rows, per_page)
        self._offers = offers

    @cached_property
    def count(self):
        return len(self._first_rows) if self._first_rows is not None else self._offers.order_by().count()


def _rows_page(rows, offers, raw_number, per_page: int) -> tuple[Page, list[dict]]:
    """The page's rows, and a Page for the pagination links (no COUNT when one short first page holds all)."""
    page = _OfferPaginator(rows, offers, per_page).get_page(raw_number)
    return page, list(page.object_list)


def _prerequisites(rows: list[dict]) -> tuple[dict, dict]:
    """Add-on base offers (id, name) by add-on, and exclusive partner ids by ISV offer, in one query."""
    ids = [r["pk"] for r in rows]
    bases: dict[int, list[tuple[int, str]]] = {}
    exclusive: dict[int, set[int]] = {}
    base_rows = Sku.base_skus.through.objects.filter(from_sku_id__in=ids).values_list(
        Value("base", output_field=CharField()), "from_sku_id", "to_sku_id", "to_sku__name").order_by()
    exclusive_rows = Sku.exclusive_partners.through.objects.filter(sku_id__in=ids).values_list(
        Value("exclusive", output_field=CharField()), "sku_id", "partner_id", Value("", output_field=CharField())).order_by()
    for kind, sku_pk, other_pk, name in base_rows.union(exclusive_rows, all=True).order_by():
        if kind == "base":
            bases.setdefault(sku_pk, []).append((other_pk, name))
        else:
            exclusive.setdefault(sku_pk, set()).add(other_pk)
    return bases, exclusive


def _options(rows: list[dict]) -> dict[int, list[tuple[int, str]]]:
    """Each offer's ways to buy it, most usual first, with their labels."""
    license_based = {r["pk"] for r in rows if r["product__billing_type"] == Product.BillingType.LICENSE}
    found: dict[int, list[tuple]] = {}
    for pk, sku_pk, term, frequency, price, currency in Availability.objects.filter(
        sku_id__in=[r["pk"] for r in rows]
    ).values_list("pk", "sku_id", "term", "billing_frequency", "unit_price", "currency").order_by():
        found.setdefault(sku_pk, []).append((_TERM_RANK[term], _FREQUENCY_RANK[frequency], pk, term, frequency,
                                             price, currency))
    options = {}
    for sku_pk, ways in found.items():
        ways.sort(key=lambda way: way[:2])
        options[sku_pk] = [
            (pk, f"{_TERM_LABELS[term]}, {_FREQUENCY_LABELS[frequency]} · "
                 + (f"{money(price, currency)} per license" if sku_pk in license_based else "pay as you go"))
            for _, _, pk, term, frequency, price, currency in ways
        ]
    return options


def _card(row: dict, ctx: BuyingContext, bases: list[tuple[int, str]], exclusive: set[int],
          options: list[tuple[int, str]]) -> OfferCard:
    is_license_based = row["product__billing_type"] == Product.BillingType.LICENSE
    facts = OfferFacts(
        pk=row["pk"], segments=_split(row["segments"]), commerce=row["commerce"], is_addon=row["is_addon"],
        base_ids=frozenset(pk for pk, _ in bases), base_names=tuple(sorted(name for _, name in bases)),
        countries=tuple(c.upper() for c in _split(row["available_countries"])),
        is_isv=not row["product__publisher__is_microsoft"], offered_through_csp=row["offered_through_csp"],
        exclusive_ids=frozenset(exclusive), transactable_in_portal=row["transactable_in_portal"],
        one_per_customer=row["one_per_customer"], is_trial=row["is_trial"],
    )
    meta = (f"{row['product__publisher__name']} · {_BILLING_TYPE_LABELS[row['product__billing_type']]} · "
            f"{_CATEGORY_LABELS[row['product__category']]} · {_COMMERCE_LABELS[row['commerce']]}")
    if row["one_per_customer"]:
        meta += " · one per customer"
    if row["is_addon"]:
        meta += " · add-on"
    if row["free_trial_days"]:
        meta += f" · {row['free_trial_days']}-day free trial"
    details = f"SKU {row['sku_id']}"
    if row["is_trial"]:
        details += " · 25 trial licenses for one month"
    elif is_license_based:
        details += f" · {row['min_quantity']}–{row['max_quantity']} licenses"
    why = refusal(facts, ctx)
    picks_quantity = is_license_based and not row["is_trial"]
    return OfferCard(
        sku_id=row["sku_id"], name=row["name"], meta=meta, details=details, options=options,
        min_quantity=row["min_quantity"] if picks_quantity else None, max_quantity=row["max_quantity"],
        is_trial=row["is_trial"], refusal=why, why=why.message if why else "", why_link=why.link if why else "",
        why_link_label=why.link_label if why else "",
    )


def offer_cards(offers, ctx: BuyingContext, page_number, per_page: int = OFFERS_PER_PAGE) -> tuple[Page, list[OfferCard]]:
    """One page of `offers` (a filtered Sku queryset) as cards with their verdict for this customer."""
    page, rows = _rows_page(offers.order_by(*ORDERING).values(*_FIELDS), offers, page_number, per_page)
    if not rows:
        return page, []
    bases, exclusive = _prerequisites(rows)
    options = _options(rows)
    return page, [_card(row, ctx, bases.get(row["pk"], []), exclusive.get(row["pk"], set()), options.get(row["pk"], []))
                  for row in rows]


@dataclass(frozen=True, slots=True)
class BuyForm:
    """What every card's "Add to cart" form needs from the request."""

    action: str
    next_url: str
    csrf_token: str


# The card's markup, filled by format_html (every value escaped). A template loop cost ~0.1 ms per card in
# variable lookups alone; this costs a few microseconds, and it is the page's one repeated block.
_CARD = ('<article class="offer{unavailable}" data-sku="{sku_id}">\n  <div>\n    <h3>{name}</h3>\n'
         '    <div class="meta">{meta}</div>\n    <div class="meta">{details}</div>\n{reason}  </div>\n  <div>\n{action}'
         '  </div>\n</article>\n')
_REASON = '    <p class="reason" role="note"><strong>Unavailable:</strong> {}{}</p>\n'
_DISABLED = '    <button class="btn" type="button" disabled title="{}">Add to cart</button>{}\n'
_FORM = ('    <form method="post" action="{action}" hx-post="{action}" hx-target="find .feedback" hx-swap="innerHTML">\n'
         '      <input type="hidden" name="csrfmiddlewaretoken" value="{csrf}">\n'
         '      <input type="hidden" name="next" value="{next}">\n'
         '      <label>Term and billing\n        <select name="availability">{options}</select>\n      </label>\n'
         '{quantity}      <button class="btn btn-primary" type="submit">Add to cart</button>\n'
         '      <div class="feedback" aria-live="polite"></div>\n    </form>\n')
_QUANTITY = ('      <label>Quantity <input type="number" name="quantity" value="{0}" min="{0}" max="{1}" required>'
             '</label>\n')
_TRIAL = mark_safe('      <span class="muted">25 trial licenses</span>\n')


def card_html(card: OfferCard, buy: BuyForm | None, cannot_buy: str) -> SafeString:
    """One offer's card: its verdict greyed with the reason (C4), or the form to add it to the cart (K1).

    `buy` is None when this user may not buy (`cannot_buy` says why, T1/T2): the button is disabled with it.
    """
    if card["why"]:
        link = format_html(' <a href="{}">{}</a>', card["why_link"], card["why_link_label"]) if card["why_link"] else ""
        reason = format_html(_REASON, card["why"], link)
        action = format_html(_DISABLED, card["why"], "")
    elif buy is not None:
        reason = ""
        if card["min_quantity"]:
            quantity = format_html(_QUANTITY, card["min_quantity"], card["max_quantity"])
        else:
            quantity = _TRIAL if card["is_trial"] else ""
        action = format_html(_FORM, action=buy.action, csrf=buy.csrf_token, next=buy.next_url, quantity=quantity,
                             options=format_html_join("", '<option value="{}">{}</option>', card["options"]))
    else:
        reason = ""
        action = format_html(_DISABLED, cannot_buy, format_html('<span class="why">{}</span>', cannot_buy))
    return format_html(_CARD, unavailable=" unavailable" if card["why"] else "", sku_id=card["sku_id"], name=card["name"],
                       meta=card["meta"], details=card["details"], reason=reason, action=action)
