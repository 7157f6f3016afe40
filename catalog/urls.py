from django.urls import path

from . import views

app_name = "catalog"

urlpatterns = [
    path("orders/", views.all_orders, name="all-orders"),
    path("customers/<uuid:customer_id>/add-subscription/", views.offer_list, name="offer-list"),
    path("customers/<uuid:customer_id>/cart/", views.cart_detail, name="cart-detail"),
    path("customers/<uuid:customer_id>/cart/add/", views.cart_add, name="cart-add"),
    path(
        "customers/<uuid:customer_id>/cart/lines/<id:line_id>/update/", views.cart_line_update, name="cart-line-update"
    ),
    path(
        "customers/<uuid:customer_id>/cart/lines/<id:line_id>/remove/", views.cart_line_remove, name="cart-line-remove"
    ),
    path("customers/<uuid:customer_id>/cart/reseller/", views.cart_reseller, name="cart-reseller"),
    path(
        "customers/<uuid:customer_id>/cart/additional-resellers/add/",
        views.cart_additional_add,
        name="cart-additional-add",
    ),
    path(
        "customers/<uuid:customer_id>/cart/additional-resellers/<id:partner_pk>/remove/",
        views.cart_additional_remove,
        name="cart-additional-remove",
    ),
    path("customers/<uuid:customer_id>/cart/<id:cart_id>/purchase/", views.cart_purchase, name="cart-purchase"),
    path("customers/<uuid:customer_id>/orders/", views.order_list, name="order-list"),
    path("customers/<uuid:customer_id>/orders/<id:order_id>/", views.order_detail, name="order-detail"),
    path(
        "customers/<uuid:customer_id>/orders/<id:order_id>/confirmation/",
        views.order_confirmation,
        name="order-confirmation",
    ),
]
