"""Lists of subscriptions (S1) and their export (S5). The subscription page is in manage_views."""

import dataclasses

from django.http import StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_safe

from catalog.models import Sku
from portal import access
from portal.templatetags.portal_tags import query_string

from . import export, selectors
from . import renewals as renewal_rows  # the module's name is this view's
from .filters import RenewalsWindowForm, SubscriptionListForm
from .states import Status


def subscription_list(request, customer_id):
    """S1: the customer's subscriptions: filter by status, sort by any column, a page at a time; a row whose
    licenses can still be removed says until when."""
    customer = access.get_customer(request.user, customer_id)
    now = timezone.now()
    form = SubscriptionListForm(
        request.GET, sorts=selectors.CUSTOMER_SORTS, default_sort="name", across_customers=False
    )
    filters, values = form.filters(), form.values()
    subscriptions = selectors.filter_subscriptions(
        access.customer_subscriptions(request.user, customer), filters, now=now
    )
    page = _page(subscriptions, values, now=now)
    context = {
        "customer": customer,
        "section": "subscriptions",
        "page": page,
        "now": now,
        "filters": filters,
        "sort": values["sort"],
        "statuses": Status.choices,
        "can_buy": access.permission(request.user, access.Action.BUY),
        **list_table(request, page, sort=values["sort"], show_customer=False),
    }
    return render(request, "subscriptions/list.html", context)


@require_safe
def subscription_export(request, customer_id):
    """S5: every subscription of the customer this user may see, as a CSV download; every role may (T2)."""
    customer = access.get_customer(request.user, customer_id)
    subscriptions = access.customer_subscriptions(request.user, customer)  # a reseller: only its own (T1)
    response = StreamingHttpResponse(export.csv_lines(subscriptions), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{export.filename(customer, timezone.now())}"'
    return response


def all_subscriptions(request):
    """The subscriptions of every customer of the partner (a reseller: those it is reseller of record for),
    filtered by status, offer (picked from those whose name, product, publisher or SKU id contains what is typed, or
    linked from a subscription's page), a removal window closing within 48 hours, or a renewal within 30 days."""
    now = timezone.now()
    scoped = access.subscriptions_for(request.user)
    form = SubscriptionListForm(request.GET, sorts=selectors.ALL_SORTS, default_sort="customer", across_customers=True)
    filters, values = form.filters(), form.values()
    page = _page(selectors.filter_subscriptions(scoped, filters, now=now), values, now=now)
    offer_text = " ".join(values["offer_name"].split())
    context = {
        "page": page,
        "now": now,
        "filters": filters,
        "sort": values["sort"],
        "statuses": Status.choices,
        "offer": Sku.objects.filter(pk=filters.offer).only("pk", "name").first() if filters.offer is not None else None,
        # What is typed finds offers to pick, also to switch from the one picked (which filters until then).
        "offer_matches": (
            selectors.offers_matching(scoped, offer_text, wanted=OFFER_MATCHES_SHOWN + 1) if offer_text else None
        ),
        "offer_matches_shown": OFFER_MATCHES_SHOWN,
        **list_table(request, page, sort=values["sort"], show_customer=True),
    }
    return render(request, "subscriptions/all.html", context)


def _page(subscriptions, values: dict, *, now) -> selectors.ListPage:
    page = selectors.list_page(
        subscriptions,
        sort=values["sort"],
        now=now,
        after=values["after"],
        before=values["before"],
        number=values["page"] or 1,
    )
    page.rows = with_links(page.rows)
    return page


def with_links(rows: list[selectors.ListRow]) -> list[selectors.ListRow]:
    """The rows with their links: each customer's list reversed once for the page (a page across customers mostly
    lists one or two customers; `reverse` is a tenth of a list page's time when called twice per row)."""
    customer_urls = {}
    for row in rows:
        if row.customer_id not in customer_urls:
            customer_urls[row.customer_id] = reverse("subscriptions:subscription-list", args=[row.customer_id])
    return [
        dataclasses.replace(
            row,
            url=reverse("subscriptions:subscription-detail", args=[row.customer_id, row.pk]),
            customer_url=customer_urls[row.customer_id],
        )
        for row in rows
    ]


# The list's columns: (sort key or None, header). The header of a sorted column links to the other direction.
LIST_COLUMNS = [
    ("name", _("Name")),
    (None, _("Subscription ID")),
    ("quantity", _("Quantity")),
    ("status", _("Status")),
    ("term", _("Term")),
    ("billing", _("Billing")),
    ("term_end", _("Term end / renewal (UTC)")),
    ("auto_renew", _("Auto-renew")),
    ("reseller", _("Reseller of record")),
]
NUMERIC_COLUMNS = {"quantity"}
OFFER_MATCHES_SHOWN = 12  # offers listed to pick from as the offer filter is typed; more: type more of the name


def list_table(request, page: selectors.ListPage, *, sort: str, show_customer: bool) -> dict:
    """The subscription table's headers and the links of its pages, for `subscriptions/list.html#subscription-table`
    (which draws the rows). A header or a page link keeps the filters; a new sort starts again at page 1."""
    columns = ([("customer", _("Customer"))] if show_customer else []) + LIST_COLUMNS
    pages = {"page": "", "after": "", "before": ""}
    return {
        "headers": [sort_header(request.GET, key, label, sort=sort, pages=pages) for key, label in columns],
        "show_customer": show_customer,
        "next_url": query_string(request.GET, page=page.number + 1, after=page.next_cursor, before="")
        if page.has_next
        else "",
        # Page 2's Previous is page 1 itself, without a cursor
        "previous_url": query_string(request.GET, page=page.number - 1, after="", before=page.previous_cursor)
        if page.previous_cursor
        else query_string(request.GET, **pages)
        if page.has_previous
        else "",
    }


def sort_header(params, key: str | None, label: str, *, sort: str, pages: dict) -> dict:
    """A column header: its link sorts by the column (the other way when it is the sort), from page 1."""
    if key is None:
        return {"label": label}
    if sort == key:
        href, aria, arrow = query_string(params, sort=f"-{key}", **pages), "ascending", " ↑"
    elif sort == f"-{key}":
        href, aria, arrow = query_string(params, sort=key, **pages), "descending", " ↓"
    else:
        href, aria, arrow = query_string(params, sort=key, **pages), "", ""
    return {"label": label, "href": href, "aria": aria, "arrow": arrow, "num": key in NUMERIC_COLUMNS}


@require_safe
def renewals(request):
    """Every subscription of the partner renewing in the next 30/60/90 days across customers, with its lock
    point, what will change and what it will cost; and those ending without renewal, so partners can act."""
    today = timezone.now().date()
    days = RenewalsWindowForm(request.GET).days()
    scoped = access.subscriptions_for(request.user)
    context = {
        "within": days,
        "windows": renewal_rows.WINDOWS,
        "now": timezone.now(),
        "page": renewal_rows.renewals_page(
            renewal_rows.renewing_subscriptions(scoped, today=today, days=days), request.GET.get("page")
        ),
        "ending": renewal_rows.renewals_page(
            renewal_rows.ending_subscriptions(scoped, today=today, days=days), request.GET.get("ending_page")
        ),
        "trials": renewal_rows.trials_page(
            renewal_rows.ending_trials(scoped, today=today, days=days), request.GET.get("trials_page")
        ),
    }
    return render(request, "subscriptions/renewals.html", context)
