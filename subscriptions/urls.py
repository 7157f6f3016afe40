from django.urls import path

from . import views

app_name = "subscriptions"

urlpatterns = [
    path("customers/<uuid:customer_id>/subscriptions/", views.subscription_list, name="subscription-list"),
    path("customers/<uuid:customer_id>/subscriptions/<uuid:subscription_id>/", views.subscription_detail,
         name="subscription-detail"),
]
