from django.contrib import admin
from django.urls import include, path

from . import views

app_name = "portal"

portal_patterns = [
    path("", views.home, name="home"),
    path("login/", views.SignInView.as_view(), name="login"),
    path("logout/", views.SignOutView.as_view(), name="logout"),
    path("about/", views.about, name="about"),
    path("customers/", views.customer_list, name="customer-list"),
    path("customers/<uuid:customer_id>/", views.customer_detail, name="customer-detail"),
    path("customers/<uuid:customer_id>/account/", views.customer_account, name="customer-account"),
    path("customers/<uuid:customer_id>/activity/", views.customer_activity, name="customer-activity"),
]

urlpatterns = [
    path("", include((portal_patterns, "portal"))),
    path("", include("catalog.urls")),
    path("", include("subscriptions.urls")),
    path("admin/", admin.site.urls),
]
