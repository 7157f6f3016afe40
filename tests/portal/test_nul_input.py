"""A NUL character typed into any text field (issue 9, found by the fuzz test): PostgreSQL refuses it in a column
and even in a query, so it answered 500 there. A form refuses it with a reason (422) and changes nothing; a search
box drops it."""

import pytest
from django.urls import reverse

from catalog.models import CartAdditionalReseller, CartLine
from subscriptions.models import AuditEntry, RelationshipRequest, TransferRequest
from tests import factories

NUL = "Contoso\x00Ltd"


def test_a_search_with_a_nul_finds_what_the_rest_of_it_finds(signed_in, direct_partner):
    # given two customers
    factories.CustomerFactory(partner=direct_partner, company_name="Contoso Ltd")
    factories.CustomerFactory(partner=direct_partner, company_name="Fabrikam")
    # when the customer list is searched with a NUL in the text
    response = signed_in.get(reverse("portal:customer-list"), {"q": "Contoso\x00"})
    # then it answers with what "Contoso" finds
    assert response.status_code == 200
    assert "Contoso Ltd" in response.content.decode() and "Fabrikam" not in response.content.decode()


def test_a_friendly_name_with_a_nul_is_refused(signed_in, customer):
    subscription = factories.SubscriptionFactory(customer=customer, friendly_name="Head office")
    audit = AuditEntry.objects.count()
    # when the subscription is renamed with a NUL in the name
    response = signed_in.post(
        reverse("subscriptions:subscription-rename", args=[customer.pk, subscription.pk]), {"friendly_name": NUL}
    )
    # then the page says why, and the name is unchanged
    assert response.status_code == 422
    assert "A friendly name contains a character that is not allowed (NUL)." in response.content.decode()
    subscription.refresh_from_db()
    assert subscription.friendly_name == "Head office"
    assert AuditEntry.objects.count() == audit


def test_an_additional_reseller_partner_id_with_a_nul_is_refused(signed_in, sales, direct_partner, now):
    # given an EU customer's open cart
    customer = factories.CustomerFactory(partner=direct_partner, billing_country="FR")
    cart = factories.CartFactory(customer=customer, owner=sales)
    factories.CartLineFactory(cart=cart)
    # when a PartnerID with a NUL is declared as an additional reseller
    response = signed_in.post(reverse("catalog:cart-additional-add", args=[customer.pk]), {"partner_id": "61\x0000021"})
    # then the cart says why, and no reseller is declared
    assert response.status_code == 422
    assert "A PartnerID contains a character that is not allowed (NUL)." in response.content.decode()
    assert not CartAdditionalReseller.objects.exists()
    assert CartLine.objects.count() == 1


@pytest.mark.parametrize("field", ["company_name", "domain"])
def test_a_relationship_request_with_a_nul_is_refused(signed_in, field):
    data = {"company_name": "Contoso Ltd", "domain": "contoso.onmicrosoft.com"}
    data[field] = data[field].replace("o", "\x00", 1)
    # when a relationship request is sent with a NUL in the company name or the domain
    response = signed_in.post(reverse("subscriptions:relationship-send"), data)
    # then the page says why, and nothing is sent
    assert response.status_code == 422
    assert "contains a character that is not allowed (NUL)." in response.content.decode()
    assert not RelationshipRequest.objects.exists()


def test_a_transfer_request_with_a_nul_in_the_partner_id_is_refused(signed_in, customer):
    # when a transfer is requested from a PartnerID with a NUL in it
    response = signed_in.post(
        reverse("subscriptions:transfer-file"),
        {"customer": str(customer.pk), "source_partner_id": "72\x0000001", "notification_email": "it@example.com"},
    )
    # then the page says why, and nothing is requested
    assert response.status_code == 422
    assert "A PartnerID contains a character that is not allowed (NUL)." in response.content.decode()
    assert not TransferRequest.objects.exists()
