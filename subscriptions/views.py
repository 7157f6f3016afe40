"""Lists of subscriptions (S1) and their export (S5). The subscription page is in manage_views."""

from html import escape

from django.http import StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_safe

from portal import access

from . import export, selectors
from .states import Status


def subscription_list(request, customer_id):
    """S1: the customer's subscriptions: filter by status, sort by any column, a page at a time; a row whose
    licenses can still be removed says until when."""
    customer = access.get_customer(request.user, customer_id)
    now = timezone.now()
    filters = selectors.ListFilters(status=selectors.ListFilters.from_query(request.GET).status)
    subscriptions = selectors.filter_subscriptions(access.customer_subscriptions(request.user, customer), filters, now=now)
    page, sort = selectors.list_page(subscriptions, request.GET.get("page"), sort=request.GET.get("sort", ""),
                                     allowed=selectors.CUSTOMER_SORTS, default="name", now=now)
    context = {
        "customer": customer, "section": "subscriptions", "page": page, "now": now, "filters": filters,
        "sort": sort, "statuses": Status.choices, "can_buy": access.permission(request.user, access.Action.BUY),
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
    filtered by status, offer, a removal window closing within 48 hours, or a renewal within 30 days."""
    now = timezone.now()
    scoped = access.subscriptions_for(request.user)
    filters = selectors.ListFilters.from_query(request.GET)
    page, sort = selectors.list_page(selectors.filter_subscriptions(scoped, filters, now=now), request.GET.get("page"),
                                     sort=request.GET.get("sort", ""), allowed=list(selectors.SORT_COLUMNS),
                                     default="customer", now=now)
    context = {
        "page": page, "now": now, "filters": filters, "sort": sort, "statuses": Status.choices,
        "offer_options": offer_options(selectors.offers_held(scoped), selected=filters.offer),
    }
    return render(request, "subscriptions/all.html", context)


def offer_options(offers, *, selected: int | None) -> str:
    """The offer filter's <option>s. A partner may hold thousands of offers: joined here with the standard
    library's escape (Django's lazy-aware one costs more per call), not a template loop over each."""
    return mark_safe("".join(
        f'<option value="{pk}"{" selected" if pk == selected else ""}>{escape(name)}</option>' for pk, name in offers))


@require_safe
def renewals(request):
    """Every subscription of the partner renewing in the next 30/60/90 days across customers, with its lock
    point, what will change and what it will cost; and those ending without renewal, so partners can act."""
    from . import renewals as renewal_rows  # the module name is this view's

    today = timezone.now().date()
    days = renewal_rows.window_from_query(request.GET.get("within"))
    scoped = access.subscriptions_for(request.user)
    context = {
        "within": days, "windows": renewal_rows.WINDOWS, "now": timezone.now(),
        "page": renewal_rows.renewals_page(renewal_rows.renewing_subscriptions(scoped, today=today, days=days),
                                           request.GET.get("page")),
        "ending": renewal_rows.renewals_page(renewal_rows.ending_subscriptions(scoped, today=today, days=days),
                                             request.GET.get("ending_page")),
    }
    return render(request, "subscriptions/renewals.html", context)
