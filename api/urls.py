from django.contrib.auth.decorators import login_not_required
from django.urls import path

from . import catalog, commerce, views, webhook_api, webhook_views
from .v1 import api

app_name = "api"

urlpatterns = [
    path("account/api-tokens/", views.token_list, name="token-list"),
    path("account/api-tokens/<int:token_id>/revoke/", views.token_revoke, name="token-revoke"),
    path("account/webhooks/", webhook_views.webhook_list, name="webhook-list"),
    path("account/webhooks/<int:endpoint_id>/", webhook_views.webhook_detail, name="webhook-detail"),
    path("account/webhooks/<int:endpoint_id>/delete/", webhook_views.webhook_delete, name="webhook-delete"),
    path("account/webhooks/<int:endpoint_id>/test/", webhook_views.webhook_test, name="webhook-test"),
]

# Carts, checkout and orders (api.commerce) and webhooks (api.webhook_api) build on api.v1's protocol, so they are
# registered here, above both.
api.add_router("/customers", commerce.router)
api.add_router("/webhooks", webhook_api.router)
# The catalog's product, SKU and availability resources (api.catalog), over api.v1's catalog verdicts, likewise.
api.add_router("/customers", catalog.router)
v1_patterns, v1_app, v1_namespace = api.urls
for pattern in v1_patterns:
    # The API authenticates each request by its bearer token (api.v1.TokenAuth), never by a session: the sign-in
    # redirect of the pages has no place there (a client gets 401 in Partner Center's envelope).
    login_not_required(pattern.callback)
