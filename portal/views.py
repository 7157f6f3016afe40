import uuid
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import BadRequest
from django.db.models import Case, Count, Exists, OuterRef, Q, StringAgg, Subquery, Value, When
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.urls import reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.formats import number_format
from django.views.decorators.http import require_http_methods, require_POST

from catalog.cart import reseller_refusal
from catalog.models import Order
from subscriptions import checks, selectors
from subscriptions.states import LIVE_STATUSES

from . import access, customers, search
from .customer_forms import AddCustomerForm
from .demo import DEMO_PASSWORD, demo_sign_ins
from .errors import RuleViolation
from .filters import CustomerListForm
from .forms import LanguageForm, next_url, refuse
from .middleware import preferred_member
from .models import COUNTRY_NAMES, Customer, Membership
from .pagination import SmallListPaginator


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
            context["demo_sign_ins"] = demo_sign_ins()
            context["demo_password"] = DEMO_PASSWORD
        return context


class SignOutView(_SafeNext, auth_views.LogoutView):
    pass


@login_not_required
@require_POST
def language_set(request):
    """The language chosen in the user menu or on the sign-in page: saved on a member's membership (it follows them
    to any browser) and kept in Django's language cookie (for this browser, signed in or not); blank follows the
    browser's Accept-Language again. A value that is not a language of the portal is refused, nothing saved."""
    form = LanguageForm(request.POST)
    if not form.is_valid():
        raise BadRequest("Not a language of the portal.")
    language = form.cleaned_data["language"]
    target = next_url(request, fallback=reverse("portal:home"))
    member = preferred_member(request.user)
    if member is not None:
        # Only the signed-in person's own row, only this column.
        Membership.objects.filter(pk=member.pk).update(language=language)
    response = redirect(target)
    if language:
        response.set_cookie(
            settings.LANGUAGE_COOKIE_NAME,
            language,
            max_age=settings.LANGUAGE_COOKIE_AGE,
            path=settings.LANGUAGE_COOKIE_PATH,
            domain=settings.LANGUAGE_COOKIE_DOMAIN,
            secure=settings.LANGUAGE_COOKIE_SECURE,
            httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
            samesite=settings.LANGUAGE_COOKIE_SAMESITE,
        )
    else:
        response.delete_cookie(
            settings.LANGUAGE_COOKIE_NAME,
            path=settings.LANGUAGE_COOKIE_PATH,
            domain=settings.LANGUAGE_COOKIE_DOMAIN,
            samesite=settings.LANGUAGE_COOKIE_SAMESITE,
        )
    return response


def home(request):
    """What needs attention now, across this partner's customers."""
    member = access.membership(request.user)
    now = timezone.now()
    subscriptions = access.subscriptions_for(request.user)
    # The same rules as the list's "removal window closes within 48 h" and "renews within 30 days" filters.
    closing = (
        selectors.removal_windows_closing(now=now)
        .filter(subscription__in=subscriptions)
        .select_related("subscription__customer", "subscription__sku")
        .order_by("window_ends_at", "pk")[:10]
    )
    renewing = (
        selectors.renewing_soon(subscriptions, today=now.date())
        .select_related("customer", "sku")
        .order_by("term_end", "pk")[:10]
    )
    pending_orders = (
        access.orders_for(request.user)
        .filter(status=Order.Status.PENDING)
        .select_related("customer")
        .order_by("-created_at")[:10]
    )
    isv_setups = subscriptions.filter(checks.awaiting_setup_filter()).select_related("customer", "sku")[:10]
    return render(
        request,
        "portal/home.html",
        {
            "member": member,
            "now": now,
            "closing": closing,
            "renewing": renewing,
            "pending_orders": pending_orders,
            "isv_setups": isv_setups,
        },
    )


CUSTOMERS_PER_PAGE = 25


def customer_list(request):
    """The partner's customers (T3), searched, filtered by segment and country, by name, a page at a time."""
    values = CustomerListForm(request.GET).values()
    q, segment, country = " ".join(values["q"].split()), values["segment"], values["country"]
    if q:
        # The top bar's search also finds a subscription by its id: straight to it when it is one.
        found = _subscription_with_id(request.user, q)
        if found is not None:
            return redirect(
                "subscriptions:subscription-detail", customer_id=found.customer_id, subscription_id=found.pk
            )
    page = SmallListPaginator(
        listed_customers(request.user, q=q, segment=segment, country=country),
        CUSTOMERS_PER_PAGE,
        count_field=lambda rows: rows[0].total,
    ).get_page(request.GET.get("page"))
    if page.object_list:
        countries = page.object_list[0].countries.split(",")
    else:
        countries = access.customers_for(request.user).order_by().values_list("billing_country", flat=True).distinct()
    countries = sorted(countries)
    context = {
        "page": page,
        "q": q,
        "segment": segment,
        "country": country,
        "segments": Customer.Segment.choices,
        "countries": [(c, COUNTRY_NAMES.get(c, c)) for c in countries],
        "count_bound": selectors.COUNT_BOUND,  # a live count above it reads "1,000+" (listed_customers)
        "count_bound_label": f"{number_format(selectors.COUNT_BOUND, force_grouping=True)}+",
        "can_buy": access.permission(request.user, access.Action.BUY),  # "Add customer" (T2)
    }
    template = (
        "portal/customer_list.html#results"
        if request.htmx and not request.htmx.boosted
        else "portal/customer_list.html"
    )
    return render(request, template, context)


@require_http_methods(["GET", "HEAD", "POST"])
def customer_add(request):
    """A new customer (issue 12, T4), for roles that may buy (T2); it lands on its (empty) subscriptions page."""
    access.require(request.user, access.Action.BUY)
    if request.method != "POST":
        return _add_customer_page(request, AddCustomerForm(initial={"form_id": uuid.uuid4()}))
    form = AddCustomerForm(request.POST)
    if not form.is_valid():
        return _add_customer_page(request, form, status=422)
    data = form.cleaned_data
    try:
        customer = customers.add_customer(
            actor=request.user,
            created_from=data.pop("form_id"),
            reseller_id=data.pop("reseller"),
            now=timezone.now(),
            **data,
        )
    except RuleViolation as violation:
        refuse(form, violation)
        return _add_customer_page(request, form, status=violation.status, existing=violation)
    return redirect("subscriptions:subscription-list", customer_id=customer.pk)


def _add_customer_page(request, form, *, status: int = 200, existing=None):
    partner = access.partner_of(request.user)
    # K4: an indirect provider's resellers, each with why it can't be the customer's reseller of record (no MPA).
    resellers = [
        {"partner": link.reseller, "refusal": reseller_refusal(link.reseller)}
        for link in partner.reseller_links.select_related("reseller").order_by("reseller__name", "reseller_id")
    ]
    context = {
        "form": form,
        "indirect": partner.kind == partner.Kind.INDIRECT_PROVIDER,
        "resellers": resellers,
        # The domain is a tenant's already: the partner's own customer (linked), or any other (a relationship request).
        "existing": existing if isinstance(existing, customers.CustomerExists) else None,
        "domain_suffix": customers.DOMAIN_SUFFIX,
    }
    return render(request, "portal/customer_add.html", context, status=status)


def customer_search(user, q: str) -> Q:
    """The top bar's search of customers: the customer's name or domain containing `q`, its id, or the friendly name
    of one of its subscriptions (that this user may see) containing it."""
    named = access.subscriptions_for(user).filter(customer=OuterRef("pk"), friendly_name__icontains=q)
    return Q(company_name__icontains=q) | Q(domain__icontains=q) | Q(id__iexact=q) | Q(Exists(named))


def listed_customers(user, *, q: str = "", segment: str = "", country: str = ""):
    """The customer table's rows: this user's partner's customers (T3), searched (`customer_search`) and filtered,
    by name, each with its number of live subscriptions.

    Live subscriptions are counted per shown customer (a correlated subquery on the (customer, status) index,
    COUNT(*) so the index alone answers it), not by joining every subscription of the partner before the page is
    cut. The pagination's count (`total`) and the filter's countries come in the same query as scalar subqueries:
    one query a page."""
    everyone = access.customers_for(user)
    customers = everyone
    if segment:
        customers = customers.filter(segment=segment)
    if country:
        customers = customers.filter(billing_country=country)
    if q:
        customers = customers.filter(customer_search(user, q))
    # By the customer alone (its (customer, status) index), not the partner's subscriptions: a filter on the partner
    # let the database read the partner's index, every subscription of the partner for each customer shown.
    live = access.customer_subscriptions(user, OuterRef("pk")).filter(status__in=LIVE_STATUSES).order_by()
    # Counted exactly up to selectors.COUNT_BOUND, as the subscription lists count: a customer with 50,000 live
    # subscriptions is one probe past the bound (an EXISTS at that offset), not 50,000 index entries counted on every
    # page. The database evaluates the CASE's count only when the probe finds nothing (PostgreSQL and SQLite both).
    bound = selectors.COUNT_BOUND
    live_count = Case(
        When(Exists(live[bound : bound + 1]), then=Value(bound + 1)),
        default=_aggregate_of(live, Count("*")),
    )
    return (
        customers.select_related("reseller")
        .only("pk", "company_name", "domain", "segment", "billing_country", "reseller__name")
        .annotate(
            live_subscriptions=live_count,
            total=_aggregate_of(customers, Count("*")),
            countries=_aggregate_of(everyone, StringAgg("billing_country", Value(","), distinct=True)),
        )
        .order_by("company_name", "tenant_id", "pk")
    )  # ties: the same page every time


def _aggregate_of(queryset, aggregate):
    """`aggregate` over the whole `queryset`, as a scalar subquery (one row: grouped by a constant, which is no group)."""
    return Subquery(
        queryset.order_by().annotate(_whole=Value(1)).values("_whole").annotate(value=aggregate).values("value")
    )


def _subscription_with_id(user, q: str):
    try:
        subscription_id = uuid.UUID(q)
    except ValueError:
        return None
    return access.subscriptions_for(user).filter(pk=subscription_id).only("pk", "customer_id").first()


@require_http_methods(["GET", "HEAD"])
def search_page(request):
    """The top bar's search (portal.search): a whole id opens its page at once; anything else, what it finds, by kind.
    A query too short or too long is refused (422) with the reason, the box keeping what was typed."""
    form = search.SearchForm(request.GET)
    if not form.is_valid():
        return render(
            request,
            "portal/search.html",
            {"form": form, "q": request.GET.get("q", "")[: 2 * search.MAX_LENGTH]},
            status=422,
        )
    q = form.cleaned_data["q"]
    if not q:
        return render(request, "portal/search.html", {"form": form, "q": ""})
    found = search.destination(request.user, q)
    if found is not None:
        return redirect(found)
    return render(request, "portal/search.html", {"form": form, "q": q, "results": search.search(request.user, q)})


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
def favicon(request):
    """Browsers ask for /favicon.ico on pages that name no icon (the admin's, a JSON answer): the portal's icon,
    rather than a 404 in every log."""
    return redirect(static("favicon.svg"), permanent=True)


@login_not_required
def csrf_failure(request, reason=""):
    """A form without a valid CSRF token changes nothing and says so (403)."""
    return render(request, "403_csrf.html", status=403)
