"""The API tokens page (user menu), and the API's own OpenAPI document and docs page (served offline)."""

import re

from django.test import Client
from openapi_spec_validator import validate

from api import tokens
from api.models import ApiToken
from api.tokens import digest
from tests import factories


def test_a_token_is_made_shown_once_and_stored_hashed(signed_in, sales):
    page = signed_in.get("/account/api-tokens/")
    assert page.status_code == 200
    made = signed_in.post("/account/api-tokens/", {"name": "PSA sync", "expires": "90", "version": "0"})
    assert made.status_code == 201
    assert made["Cache-Control"] == "no-store"
    secret = re.search(r'id="new-token">([^<]+)<', made.content.decode()).group(1)
    token = ApiToken.objects.get(user=sales)
    assert token.key_hash == digest(secret) and secret not in (token.prefix, token.key_hash)
    assert token.expires_at is not None
    # shown once: the list afterwards has its prefix, never the secret
    again = signed_in.get("/account/api-tokens/").content.decode()
    assert secret not in again and token.prefix in again


def test_a_token_without_a_name_is_refused_with_422_and_nothing_made(signed_in, sales):
    response = signed_in.post("/account/api-tokens/", {"name": " ", "expires": "90", "version": "0"})
    assert response.status_code == 422
    assert not ApiToken.objects.exists()
    tampered = signed_in.post("/account/api-tokens/", {"name": "x", "expires": "3650000", "version": "0"})
    assert tampered.status_code == 422
    assert not ApiToken.objects.exists()


def test_revoking_a_token_stops_it_and_another_users_token_is_404(signed_in, client, sales, direct_partner, now):
    mine, secret = tokens.create_token(sales, name="mine", expires_at=None, now=now)
    theirs, _ = tokens.create_token(factories.staff(direct_partner), name="theirs", expires_at=None, now=now)
    assert signed_in.post(f"/account/api-tokens/{theirs.pk}/revoke/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked_at is None
    assert signed_in.post(f"/account/api-tokens/{mine.pk}/revoke/").status_code == 302
    mine.refresh_from_db()
    assert mine.revoked_at == now
    assert client.get("/api/v1/customers", headers={"Authorization": f"Bearer {secret}"}).status_code == 401


def test_the_token_page_needs_csrf(client, sales):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(sales)
    assert strict.post("/account/api-tokens/", {"name": "x", "expires": "30", "version": "0"}).status_code == 403
    assert not ApiToken.objects.exists()


def test_the_openapi_document_validates(client, db):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.json()
    validate(document)
    assert "/api/v1/customers/{customer_id}/subscriptions/{subscription_id}" in document["paths"]


def test_the_docs_page_is_served_offline(client, db):
    response = client.get("/api/v1/docs")
    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/ninja/swagger-ui-bundle.js" in html
    assert not re.search(r"""(src|href)=["']https?://""", html)
    assert client.get("/static/ninja/swagger-ui-bundle.js").status_code == 200


def test_the_same_token_form_submitted_twice_makes_one_token(signed_in, sales):
    form = {"name": "PSA sync", "expires": "30", "version": "0"}
    assert signed_in.post("/account/api-tokens/", form).status_code == 201
    again = signed_in.post("/account/api-tokens/", form)
    assert again.status_code == 409
    assert "already made from this page" in again.content.decode()
    assert ApiToken.objects.filter(user=sales).count() == 1
    for tampered in ("", "-1", "x", "9" * 40):
        assert signed_in.post("/account/api-tokens/", {**form, "version": tampered}).status_code == 422
    assert ApiToken.objects.filter(user=sales).count() == 1


def test_staff_without_a_partner_get_403_on_the_tokens_page(client, db):
    loner = factories.UserFactory()
    client.force_login(loner)
    assert client.get("/account/api-tokens/").status_code == 403
    assert client.post("/account/api-tokens/", {"name": "x", "expires": "30", "version": "0"}).status_code == 403
    assert not ApiToken.objects.exists()
