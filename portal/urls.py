from django.contrib import admin
from django.urls import include, path, register_converter

from api.urls import v1_app, v1_namespace, v1_patterns

from . import views

app_name = "portal"


class IdConverter:
    """A database id: digits, short enough for a 64-bit integer on every backend (else 404)."""

    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value) -> str:
        return str(value)


register_converter(IdConverter, "id")

portal_patterns = [
    path("", views.home, name="home"),
    path("login/", views.SignInView.as_view(), name="login"),
    path("logout/", views.SignOutView.as_view(), name="logout"),
    path("about/", views.about, name="about"),
    path("language/", views.language_set, name="language-set"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("search/", views.search_page, name="search"),
    path("customers/", views.customer_list, name="customer-list"),
    path("customers/new/", views.customer_add, name="customer-add"),
    path("customers/<uuid:customer_id>/", views.customer_detail, name="customer-detail"),
    path("customers/<uuid:customer_id>/account/", views.customer_account, name="customer-account"),
    path("customers/<uuid:customer_id>/activity/", views.customer_activity, name="customer-activity"),
]

urlpatterns = [
    path("", include((portal_patterns, "portal"))),
    path("", include("api.urls")),
    path("api/v1/", include((v1_patterns, v1_app), namespace=v1_namespace)),
    path("", include("catalog.urls")),
    path("", include("subscriptions.urls")),
    path("admin/", admin.site.urls),
]
