"""Lists of subscriptions (S1) and their export (S5). The subscription page is in manage_views."""

from html import escape
from uuid import UUID

from django.http import StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_safe

from catalog.listing import catalog_snapshot
from catalog.models import BillingFrequency, Term
from portal import access
from portal.templatetags.portal_tags import countdown, query_string, utc

from . import export, selectors
from . import renewals as renewal_rows  # the name `renewals` is the view's below
from .states import Status


def subscription_list(request, customer_id):
    """S1: the customer's subscriptions: filter by status, sort by any column, a page at a time; a row whose
    licenses can still be removed says until when."""
    customer = access.get_customer(request.user, customer_id)
    now = timezone.now()
    filters = selectors.ListFilters(status=selectors.ListFilters.from_query(request.GET).status)
    page, sort = selectors.list_page(access.subscription_scope(request.user, customer), filters, request.GET.get("page"),
                                     sort=request.GET.get("sort", ""), allowed=selectors.CUSTOMER_SORTS, default="name",
                                     now=now)
    context = {
        "customer": customer, "section": "subscriptions", "page": page, "now": now, "filters": filters,
        "sort": sort, "statuses": Status.choices, "can_buy": access.permission(request.user, access.Action.BUY),
        **list_table(request, page, sort=sort, now=now, show_customer=False),
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
    scope = access.subscription_scope(request.user)
    filters = selectors.ListFilters.from_query(request.GET)
    page, sort = selectors.list_page(scope, filters, request.GET.get("page"), sort=request.GET.get("sort", ""),
                                     allowed=list(selectors.SORT_COLUMNS), default="customer", now=now)
    context = {
        "page": page, "now": now, "filters": filters, "sort": sort, "statuses": Status.choices,
        "offer": catalog_snapshot().by_pk.get(filters.offer) if filters.offer is not None else None,
        # What is typed finds offers to pick, also to switch from the one picked (which filters until then).
        "offer_matches": (selectors.offers_matching(scope, filters.offer_text, wanted=OFFER_MATCHES_SHOWN + 1)
                          if filters.offer_text else None),
        "offer_matches_shown": OFFER_MATCHES_SHOWN,
        **list_table(request, page, sort=sort, now=now, show_customer=True),
    }
    return render(request, "subscriptions/all.html", context)


# The list's columns: (sort key or None, header). The header of a sorted column links to the other direction.
LIST_COLUMNS = [
    ("name", "Name"), (None, "Subscription ID"), ("quantity", "Quantity"), ("status", "Status"), ("term", "Term"),
    ("billing", "Billing"), ("term_end", "Term end / renewal (UTC)"), ("auto_renew", "Auto-renew"),
    ("reseller", "Reseller of record"),
]
NUMERIC_COLUMNS = {"quantity"}
OFFER_MATCHES_SHOWN = 12  # offers listed to pick from as the offer filter is typed; more: type more of the name
STATUS_LABELS = dict(Status.choices)
TERM_LABELS = dict(Term.choices)
BILLING_LABELS = dict(BillingFrequency.choices)
# Stand-ins for ids: the URL is reversed once per page with them, then each row's ids replace them.
_CUSTOMER_MARK, _SUBSCRIPTION_MARK = str(UUID(int=1)), str(UUID(int=2))


def list_table(request, page, *, sort: str, now, show_customer: bool) -> dict:
    """The subscription table's headers and rows (S1), for `subscriptions/list.html#subscription-table`.

    The rows are written here rather than by a template loop: a list page shows 25 rows of ten cells, and the
    template engine's lookups, filters and tags per cell cost several times the whole rest of the page. Every
    value from the database is escaped; times go through the same `utc` and `countdown` as everywhere (T5)."""
    columns = ([("customer", "Customer")] if show_customer else []) + LIST_COLUMNS
    return {"headers": [sort_header(request.GET, key, label, sort=sort) for key, label in columns],
            "rows": mark_safe("".join(list_rows(page.object_list, now=now, show_customer=show_customer)))}


def sort_header(params, key: str | None, label: str, *, sort: str) -> dict:
    """A column header: its link sorts by the column (the other way when it is the sort), from page 1."""
    if key is None:
        return {"label": label}
    if sort == key:
        href, aria, arrow = query_string(params, sort=f"-{key}", page=""), "ascending", " ↑"
    elif sort == f"-{key}":
        href, aria, arrow = query_string(params, sort=key, page=""), "descending", " ↓"
    else:
        href, aria, arrow = query_string(params, sort=key, page=""), "", ""
    return {"label": label, "href": href, "aria": aria, "arrow": arrow, "num": key in NUMERIC_COLUMNS}


def list_rows(rows: list[selectors.ListRow], *, now, show_customer: bool):
    """Each row's <tr>; the name links to the subscription, the customer (across customers) to its list."""
    detail_url = reverse("subscriptions:subscription-detail", args=[_CUSTOMER_MARK, _SUBSCRIPTION_MARK])
    customer_url = reverse("subscriptions:subscription-list", args=[_CUSTOMER_MARK])
    for r in rows:
        customer_id = str(r.customer_id)
        cells = []
        if show_customer:
            cells.append(f'<td><a href="{customer_url.replace(_CUSTOMER_MARK, customer_id)}">'
                         f'{escape(r.customer_name)}</a></td>')
        url = detail_url.replace(_CUSTOMER_MARK, customer_id).replace(_SUBSCRIPTION_MARK, str(r.pk))
        name = f'<td><a href="{url}">{escape(r.name)}</a>'
        if r.is_trial:
            name += ' <span class="badge">Trial</span>'
        if r.friendly_name:
            name += f'\n      <span class="why">{escape(r.offer_name)}</span>'
        if r.reduce_until:
            # Q2, Q4: until when the licenses added last can still be removed, and how long is left.
            name += (f'\n      <span class="why"><span class="badge badge-warn">Reduce until {utc(r.reduce_until)} · '
                     f'{countdown(r.reduce_until, now)}</span></span>')
        cells.append(name + "</td>")
        status = escape(r.status)
        reseller = (f'{escape(r.reseller_name)}<span class="why">{escape(r.reseller_partner_id)}</span>'
                    if r.reseller_name is not None else "—")
        cells.append(
            f'\n    <td><code>{r.pk}</code></td><td class="num">{r.quantity}</td>'
            f'\n    <td><span class="badge badge-{status}">{escape(STATUS_LABELS.get(r.status, r.status))}</span></td>'
            f'\n    <td>{escape(TERM_LABELS.get(r.term, r.term))}</td>'
            f'<td>{escape(BILLING_LABELS.get(r.billing_frequency, r.billing_frequency))}</td><td class="date">{utc(r.term_end)}</td>'
            f'\n    <td>{"On" if r.auto_renew else "Off"}</td><td>{reseller}</td>'
        )
        yield "\n  <tr>" + "".join(cells) + "</tr>"


@require_safe
def renewals(request):
    """Every subscription of the partner renewing in the next 30/60/90 days across customers, with its lock
    point, what will change and what it will cost; and those ending without renewal, so partners can act."""
    today = timezone.now().date()
    days = renewal_rows.window_from_query(request.GET.get("within"))
    scoped = access.subscriptions_for(request.user)
    context = {
        "within": days, "windows": renewal_rows.WINDOWS, "now": timezone.now(),
        "page": renewal_rows.renewals_page(renewal_rows.renewing_subscriptions(scoped, today=today, days=days),
                                           request.GET.get("page")),
        "ending": renewal_rows.renewals_page(renewal_rows.ending_subscriptions(scoped, today=today, days=days),
                                             request.GET.get("ending_page")),
        "trials": renewal_rows.trials_page(renewal_rows.ending_trials(scoped, today=today, days=days),
                                           request.GET.get("trials_page")),
    }
    return render(request, "subscriptions/renewals.html", context)
