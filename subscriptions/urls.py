from django.urls import path

from . import conversion_views, manage_views, transfer_views, upgrade_views, views

app_name = "subscriptions"

urlpatterns = [
    path("subscriptions/", views.all_subscriptions, name="all-subscriptions"),
    path("renewals/", views.renewals, name="renewals"),
    path("customers/<uuid:customer_id>/subscriptions/", views.subscription_list, name="subscription-list"),
    path(
        "customers/<uuid:customer_id>/subscriptions/export.csv", views.subscription_export, name="subscription-export"
    ),
    path(
        "customers/<uuid:customer_id>/subscriptions/<uuid:subscription_id>/",
        manage_views.subscription_detail,
        name="subscription-detail",
    ),
    *[
        # One named route per action, e.g. subscriptions:subscription-suspend.
        path(
            f"customers/<uuid:customer_id>/subscriptions/<uuid:subscription_id>/{action}/",
            manage_views.subscription_action,
            {"action": action},
            name=f"subscription-{action}",
        )
        for action in manage_views.ACTIONS
    ],
    path(
        "customers/<uuid:customer_id>/subscriptions/<uuid:subscription_id>/next-charge-frequency/",
        manage_views.next_charge_frequency,
        name="subscription-next-charge-frequency",
    ),  # N7
    path(
        "customers/<uuid:customer_id>/subscriptions/<uuid:subscription_id>/next-charge-frequency/remove/",
        manage_views.next_charge_frequency_remove,
        name="subscription-next-charge-frequency-remove",
    ),
    path("publisher/setup/<uuid:subscription_id>/", manage_views.publisher_setup, name="publisher-setup"),
    path(
        "customers/<uuid:customer_id>/subscriptions/<uuid:subscription_id>/upgrade/",
        upgrade_views.subscription_upgrade,
        name="subscription-upgrade",
    ),
    path(
        "customers/<uuid:customer_id>/subscriptions/<uuid:subscription_id>/convert/",
        conversion_views.convert_trial,
        name="subscription-convert",
    ),  # TR2–TR8
    # TF1–TF4: transfer URLs name no customer; the view scopes the request to its two partners.
    path("transfers/", transfer_views.transfer_list, name="transfer-list"),
    path("transfers/relationships/", transfer_views.relationship_send, name="relationship-send"),
    path("transfers/new/", transfer_views.transfer_file, name="transfer-file"),
    path("transfers/<uuid:transfer_id>/", transfer_views.transfer_detail, name="transfer-detail"),
    path("transfers/<uuid:transfer_id>/cancel/", transfer_views.transfer_cancel, name="transfer-cancel"),
    # TF1: the customer's pages, outside the partner's /transfers/: the invitation's link (a signed token, no
    # request id, no sign-in) and the demo's simulated mailbox it arrives in (404 unless PORTAL_DEMO=1).
    path("relationships/accept/<str:token>/", transfer_views.relationship_accept, name="relationship-accept"),
    path("demo/mailbox/", transfer_views.relationship_mailbox, name="relationship-mailbox"),
]
