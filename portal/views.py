import uuid
from datetime import timedelta
from functools import partial
from html import escape
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.db.models import Count, Exists, OuterRef, Q, StringAgg, Subquery, Value
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.safestring import mark_safe

from catalog.models import Order
from subscriptions.models import SeatLot
from subscriptions.states import LIVE_STATUSES, Status

from . import access, prepared
from .demo import DEMO_PASSWORD, DEMO_SIGN_INS
from .forms import next_url, search_text
from .pagination import SmallListPaginator
from .models import COUNTRY_NAMES, Customer, is_eu_efta


class _SafeNext:
    """Sign-in and sign-out read `next` like every form of the portal (portal.forms.next_url): a path of this site,
    or the default page (Django's own check lets a bare word through as a relative URL)."""

    def get_redirect_url(self, request=None):
        request = request or self.request
        target = next_url(request, fallback="")
        # Back to this very page is no way on: LoginView even raises for it (a redirect loop) for a signed-in user.
        return "" if urlsplit(target).path == request.path else target


@method_decorator(login_not_required, name="dispatch")
class SignInView(_SafeNext, auth_views.LoginView):
    template_name = "portal/login.html"
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        if settings.DEMO_MODE:
            context["demo_sign_ins"] = DEMO_SIGN_INS
            context["demo_password"] = DEMO_PASSWORD
        return context


class SignOutView(_SafeNext, auth_views.LogoutView):
    pass


def home(request):
    """What needs attention now, across this partner's customers."""
    member = access.membership(request.user)
    now = timezone.now()
    subscriptions = access.subscriptions_for(request.user)
    closing = (
        SeatLot.objects.filter(subscription__in=subscriptions.filter(status=Status.ACTIVE),
                               window_ends_at__gt=now, window_ends_at__lte=now + timedelta(hours=48))
        .select_related("subscription__customer", "subscription__sku").order_by("window_ends_at")[:10]
    )
    renewing = (
        subscriptions.filter(status=Status.ACTIVE, auto_renew=True, term_end__gte=now.date(),
                             term_end__lte=(now + timedelta(days=30)).date())
        .select_related("customer", "sku").order_by("term_end")[:10]
    )
    pending_orders = (
        access.orders_for(request.user).filter(status=Order.Status.PENDING)
        .select_related("customer").order_by("-created_at")[:10]
    )
    isv_setups = subscriptions.filter(status=Status.PENDING, sku__product__publisher__is_microsoft=False).select_related(
        "customer", "sku")[:10]
    return render(request, "portal/home.html", {
        "member": member, "now": now, "closing": closing, "renewing": renewing,
        "pending_orders": pending_orders, "isv_setups": isv_setups,
    })


CUSTOMERS_PER_PAGE = 25
# The customer table's columns, and what comes with each row: the count of the filtered customers and the countries
# of all the partner's (for the filter), each a scalar subquery of the same query.
CUSTOMER_COLUMNS = ("pk", "company_name", "domain", "segment", "billing_country", "reseller__name", "live_subscriptions",
                    "total", "countries")


def customer_list(request):
    partner = access.partner_of(request.user)
    q = search_text(request.GET.get("q"))
    segment = request.GET.get("segment", "")
    segment = segment if segment in Customer.Segment.values else ""
    country = request.GET.get("country", "")
    country = country if country in COUNTRY_NAMES else ""
    if q:
        # The top bar's search also finds a subscription by its id or name: straight to it when it is one.
        found = _subscription_matching(request.user, q)
        if found is not None:
            return redirect("subscriptions:subscription-detail", customer_id=found.customer_id, subscription_id=found.pk)
        search = (Q(company_name__icontains=q) | Q(domain__icontains=q) | Q(id__iexact=q)
                  | Q(Exists(access.subscriptions_for(request.user).filter(customer=OuterRef("pk"),
                                                                          friendly_name__icontains=q))))
        customers = _listed_customers(partner.is_reseller, bool(segment), bool(country), partner.pk,
                                      *[v for v in (segment, country) if v], search=search).values(*CUSTOMER_COLUMNS)
    else:
        customers = _PreparedCustomers(partner, segment, country)
    page = SmallListPaginator(customers, CUSTOMERS_PER_PAGE, count_field="total").get_page(request.GET.get("page"))
    if page.object_list:
        countries = page.object_list[0]["countries"].split(",")
    else:
        countries = access.customers_for(request.user).order_by().values_list("billing_country", flat=True).distinct()
    countries = sorted(countries)
    context = {
        "page": page, "q": q, "segment": segment, "country": country, "rows": customer_rows(page.object_list),
        "segments": Customer.Segment.choices, "countries": [(c, COUNTRY_NAMES.get(c, c)) for c in countries],
    }
    template = "portal/customer_list.html#results" if request.htmx and not request.htmx.boosted else "portal/customer_list.html"
    return render(request, template, context)


def _listed_customers(reseller: bool, by_segment: bool, by_country: bool, partner_id, *segment_and_country,
                      search: Q | None = None):
    """The partner's customers (T3), filtered by segment and country, as the table's rows (CUSTOMER_COLUMNS) by name.

    Live subscriptions are counted per shown customer (a correlated subquery on the (customer, status) index,
    COUNT(*) so the index alone answers it), not by joining every subscription of the partner before the page is
    cut. The pagination's count and the filter's countries come in the same query as scalar subqueries: one query a
    page. Also the build function of its prepared query (without `search`): the ids and filter values may be markers."""
    values = iter(segment_and_country)
    customers = access.partner_customers(reseller, partner_id)
    if by_segment:
        customers = customers.filter(segment=next(values))
    if by_country:
        customers = customers.filter(billing_country=next(values))
    if search is not None:  # the top bar's search (not prepared: its text is matched inside LIKE patterns)
        customers = customers.filter(search)
    live = access.scoped_subscriptions(("partner", reseller), partner_id).filter(customer=OuterRef("pk"),
                                                                               status__in=LIVE_STATUSES)
    return customers.annotate(
        live_subscriptions=_aggregate_of(live, Count("*")), total=_aggregate_of(customers, Count("*")),
        countries=_aggregate_of(access.partner_customers(reseller, partner_id),
                                StringAgg("billing_country", Value(","), distinct=True)),
    ).order_by("company_name", "tenant_id", "pk").values_list(*CUSTOMER_COLUMNS)  # ties: the same page every time


class _PreparedCustomers:
    """The rows `_listed_customers` gives, a page at a time, as a prepared query (portal.prepared): what the
    paginator pages through when the list is not searched."""

    ordered = True

    def __init__(self, partner, segment: str, country: str):
        self._shape = (partner.is_reseller, bool(segment), bool(country))
        self._values = (partner.pk, *[v for v in (segment, country) if v])

    def __getitem__(self, cut: slice) -> list[dict]:
        start, stop = cut.start or 0, cut.stop
        build = partial(_page_of_customers, *self._shape, start, stop)
        rows = prepared.rows(("customer-list", *self._shape, start, stop), build, *self._values)
        return [dict(zip(CUSTOMER_COLUMNS, row)) for row in rows]

    def count(self) -> int:
        return prepared.count(("customer-count", *self._shape), partial(_listed_customers, *self._shape), *self._values)


def _page_of_customers(reseller: bool, by_segment: bool, by_country: bool, start: int, stop: int, *values):
    return _listed_customers(reseller, by_segment, by_country, *values)[start:stop]


def _aggregate_of(queryset, aggregate):
    """`aggregate` over the whole `queryset`, as a scalar subquery (one row: grouped by a constant, which is no group)."""
    return Subquery(queryset.order_by().annotate(_whole=Value(1)).values("_whole").annotate(value=aggregate)
                    .values("value"))


def customer_rows(customers: list[dict]) -> str:
    """The customer table's rows. Written here, not by a template loop: the template engine's lookups and tags per
    cell cost more than the rest of the page. Every value from the database is escaped."""
    # One reverse() with a stand-in id, then each row's id in its place.
    mark = str(uuid.UUID(int=1))
    url = reverse("subscriptions:subscription-list", args=[mark])
    segments = dict(Customer.Segment.choices)
    return mark_safe("".join(
        f'\n  <tr><td><a href="{url.replace(mark, str(c["pk"]))}">{escape(c["company_name"])}</a>'
        f'<span class="why">{escape(c["domain"])}</span></td>'
        f'\n    <td>{escape(segments.get(c["segment"], c["segment"]))}</td>'
        f'<td>{escape(COUNTRY_NAMES.get(c["billing_country"], c["billing_country"]))}</td>'
        f'<td>{"Yes" if is_eu_efta(c["billing_country"]) else "No"}</td>'
        f'\n    <td>{escape(c["reseller__name"]) if c["reseller__name"] else "—"}</td>'
        f'<td class="num">{c["live_subscriptions"]}</td></tr>'
        for c in customers
    ))


def _subscription_matching(user, q: str):
    try:
        subscription_id = uuid.UUID(q)
    except ValueError:
        return None
    return access.subscriptions_for(user).filter(pk=subscription_id).only("pk", "customer_id").first()


def customer_detail(request, customer_id):
    customer = access.get_customer(request.user, customer_id)
    return redirect("subscriptions:subscription-list", customer_id=customer.pk)


def customer_account(request, customer_id):
    customer = access.get_customer(request.user, customer_id)
    return render(request, "portal/customer_account.html", {"customer": customer, "section": "account"})


def customer_activity(request, customer_id):
    customer = access.get_customer(request.user, customer_id)
    entries = access.customer_activity(request.user, customer).select_related("actor", "order", "subscription__sku")
    page = SmallListPaginator(entries, 50).get_page(request.GET.get("page"))
    return render(request, "portal/customer_activity.html", {"customer": customer, "page": page, "section": "activity"})


def about(request):
    """How the portal counts time and money. Also the bench's floor: the base layout, no data of its own."""
    return render(request, "portal/about.html")


@login_not_required
def csrf_failure(request, reason=""):
    """A form without a valid CSRF token changes nothing and says so (403)."""
    return render(request, "403_csrf.html", status=403)
