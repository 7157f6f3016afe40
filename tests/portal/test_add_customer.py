"""Adding a customer (issue 12): the Customers page's "Add customer" form, portal.customers.add_customer behind it."""

import uuid
from datetime import date
from html import unescape

import pytest
from django.test import Client
from django.urls import reverse

from portal.access import RESELLER_NOTICE
from portal.customers import DOMAIN_FORMAT, taken_message
from portal.models import Customer, Partner
from subscriptions.models import AuditEntry
from tests import factories
from tests.helpers import database_state

pytestmark = pytest.mark.django_db
URL = reverse("portal:customer-add")


@pytest.fixture
def partner():
    return factories.PartnerFactory(name="Northwind Direct", kind=Partner.Kind.DIRECT_BILL)


@pytest.fixture
def agent(partner):
    return factories.staff(partner, "admin_agent")


def signed_in(user, **kwargs) -> Client:
    client = Client(**kwargs)
    client.force_login(user)
    return client


def typed(**changes) -> dict:
    """The form as a partner fills it in; a value of None leaves the field out."""
    data = {
        "form_id": str(uuid.uuid4()),
        "company_name": "Contoso Bikes GmbH",
        "domain_prefix": "contosobikes",
        "address_line1": "Hauptstraße 1",
        "address_line2": "",
        "city": "Berlin",
        "state": "",
        "postal_code": "10115",
        "billing_country": "DE",
        "contact_first_name": "Anna",
        "contact_last_name": "Schmidt",
        "contact_email": "anna@contosobikes.de",
        "contact_phone": "+49 30 1234567",
        "mca_accepted": "on",
        "mca_accepted_by_name": "Anna Schmidt",
        "mca_accepted_by_email": "anna@contosobikes.de",
        "mca_accepted_on": "2026-11-24",
        "reseller": "",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def refused(client, data, *, status=422) -> str:
    """Posts `data`, asserting it is refused with `status` and changes nothing; the page's text."""
    before = database_state()
    response = client.post(URL, data)
    assert response.status_code == status
    assert database_state() == before
    return unescape(response.content.decode())


@pytest.mark.rule("T4")
def test_a_new_customer_is_added_with_its_derived_segment_and_eu_efta_and_lands_on_its_empty_page(now, agent, partner):
    # given
    client = signed_in(agent)

    # when
    response = client.post(URL, typed())

    # then
    customer = Customer.objects.get(partner=partner)
    assert response.status_code == 302
    assert response["Location"] == reverse("subscriptions:subscription-list", args=[customer.pk])
    assert (customer.company_name, customer.domain) == ("Contoso Bikes GmbH", "contosobikes.onmicrosoft.com")
    assert (customer.segment, customer.billing_country, customer.is_eu_efta) == ("commercial", "DE", True)
    assert customer.reseller is None
    assert (customer.address_line1, customer.city, customer.postal_code, customer.state) == (
        "Hauptstraße 1",
        "Berlin",
        "10115",
        "",
    )
    assert (customer.contact_first_name, customer.contact_last_name, customer.contact_email) == (
        "Anna",
        "Schmidt",
        "anna@contosobikes.de",
    )
    assert customer.contact_phone == "+49 30 1234567"
    assert (customer.mca_accepted_by_name, customer.mca_accepted_by_email) == ("Anna Schmidt", "anna@contosobikes.de")
    assert customer.mca_accepted_on == date(2026, 11, 24)
    assert (customer.mca_attested_by, customer.mca_attested_at) == (agent, now)
    entry = AuditEntry.objects.get(customer=customer)
    assert (entry.action, entry.actor, entry.at, entry.partner) == ("customer.created", agent, now, partner)
    assert entry.summary == "Customer Contoso Bikes GmbH (contosobikes.onmicrosoft.com) added, billed in Germany"
    assert entry.after["eu_efta"] is True
    page = client.get(response["Location"])
    assert page.status_code == 200
    catalog = reverse("catalog:offer-list", args=[customer.pk])
    assert f'<a class="btn btn-primary" href="{catalog}">Add subscription</a>' in page.content.decode()
    assert page.content.decode().count(f'href="{catalog}"') == 1  # one way, the first step of an empty page
    account = unescape(client.get(reverse("portal:customer-account", args=[customer.pk])).content.decode())
    assert (
        "Accepted by Anna Schmidt (anna@contosobikes.de) on 2026-11-24; attested by Pat at 2026-11-25 12:00" in account
    )


@pytest.mark.rule("T4")
def test_a_customer_billed_outside_the_eu_efta_is_not_in_it_and_the_whole_domain_may_be_typed(now, agent, partner):
    # when
    signed_in(agent).post(URL, typed(billing_country="US", domain_prefix="Fabrikam-US.onmicrosoft.com"))

    # then
    customer = Customer.objects.get(partner=partner)
    assert (customer.domain, customer.is_eu_efta, customer.segment) == (
        "fabrikam-us.onmicrosoft.com",
        False,
        "commercial",
    )


@pytest.mark.parametrize(
    "prefix", ["", "   ", "con toso", "con_toso", "-contoso", "contoso-", "a" * 28, "contoso.com", "cöntoso", "x\x00y"]
)
@pytest.mark.rule("T4")
def test_a_malformed_domain_is_refused_with_what_was_typed(now, agent, prefix):
    # when
    page = refused(signed_in(agent), typed(domain_prefix=prefix))

    # then
    assert str(DOMAIN_FORMAT) in page or "Enter the primary domain." in page or "(NUL)" in page
    assert 'value="Contoso Bikes GmbH"' in page  # what was typed stays


@pytest.mark.rule("T4")
def test_the_longest_domain_microsoft_allows_is_accepted(now, agent, partner):
    signed_in(agent).post(URL, typed(domain_prefix="a" * 27))
    assert Customer.objects.get(partner=partner).domain == "a" * 27 + ".onmicrosoft.com"


@pytest.mark.rule("T4")
def test_the_partners_own_customers_domain_is_refused_naming_it(now, agent, partner):
    # given
    own = factories.CustomerFactory(partner=partner, company_name="Contoso Old", domain="ContosoBikes.onmicrosoft.com")

    # when
    page = refused(signed_in(agent), typed())

    # then
    assert "contosobikes.onmicrosoft.com is already your customer Contoso Old." in page
    assert f'href="{reverse("subscriptions:subscription-list", args=[own.pk])}">Open Contoso Old</a>' in page


@pytest.mark.rule("T3")
@pytest.mark.rule("TF1")
def test_another_partners_tenant_is_refused_saying_nothing_of_that_partner(now, agent):
    # given
    other = factories.PartnerFactory(name="Fabrikam Partners", partner_id="7777777")
    factories.CustomerFactory(partner=other, company_name="Secret Customer Inc", domain="contosobikes.onmicrosoft.com")

    # when
    page = refused(signed_in(agent), typed())

    # then: the sentence any tenant already in use gets, and the way to it: a relationship request (TF1)
    assert taken_message("contosobikes.onmicrosoft.com") in page
    assert f'href="{reverse("subscriptions:transfer-list")}#relationship-request">Send a relationship request' in page
    for secret in ("Fabrikam", "7777777", "Secret Customer"):
        assert secret not in page


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"mca_accepted": None}, "Confirm that the customer has accepted the Microsoft Customer Agreement."),
        ({"mca_accepted_by_name": ""}, "Enter the name of the person who accepted."),
        ({"mca_accepted_by_email": "not-an-address"}, "Enter the e-mail address of the person who accepted"),
        ({"mca_accepted_on": ""}, "Enter the date the customer accepted the agreement."),
        ({"mca_accepted_on": "2026-02-30"}, "is not a date (YYYY-MM-DD)."),
        ({"mca_accepted_on": "2026-11-26"}, "can't be in the future (UTC)."),
        ({"company_name": ""}, "Enter the company name."),
        ({"company_name": "C" * 201}, "Ensure this value has at most 200 characters (it has 201)."),
        ({"postal_code": "1" * 21}, "Ensure this value has at most 20 characters (it has 21)."),
        ({"address_line1": ""}, "Enter the address."),
        ({"city": "Ber\x00lin"}, "The city contains a character that is not allowed (NUL)."),
        ({"billing_country": "XX"}, "Choose the customer's billing country from the list."),
        ({"billing_country": None}, "Choose the customer's billing country."),
        ({"contact_first_name": ""}, "Enter the contact's first name."),
        ({"contact_email": "anna@"}, "Enter the contact's e-mail address, such as admin@contoso.com."),
        ({"contact_phone": "call me"}, "Enter the phone number with digits, spaces, +, -, ( and ) only."),
        ({"form_id": "not-a-uuid"}, "Reload the page and try again."),
        ({"reseller": "-1"}, "Choose one of the listed options."),
    ],
)
@pytest.mark.rule("T4")
def test_bad_input_is_refused_field_by_field_and_changes_nothing(now, agent, changes, message):
    # when
    page = refused(signed_in(agent), typed(**changes))

    # then
    assert message in page
    assert 'value="Berlin"' in page or "Ber" in page  # the form re-rendered with what was typed


@pytest.mark.rule("T4")
def test_a_double_submit_adds_one_customer_and_the_second_says_so(now, agent, partner):
    # given
    client = signed_in(agent)
    data = typed()
    client.post(URL, data)
    customer = Customer.objects.get(partner=partner)

    # when
    page = refused(client, data, status=409)

    # then
    assert "This customer was already added from this page. Nothing was added a second time." in page
    assert f'href="{reverse("subscriptions:subscription-list", args=[customer.pk])}">Open Contoso Bikes GmbH' in page
    assert AuditEntry.objects.filter(action="customer.created").count() == 1


@pytest.mark.rule("T2")
@pytest.mark.parametrize("role", ["billing_admin", "support_agent"])
def test_roles_that_may_not_buy_are_refused_and_see_the_button_disabled_with_the_reason(now, partner, role):
    # given
    client = signed_in(factories.staff(partner, role))
    reason = "Your role can't buy or change subscriptions: ask an admin agent or sales agent."

    # when / then
    assert client.get(URL).status_code == 403
    refused(client, typed(), status=403)
    listing = unescape(client.get(reverse("portal:customer-list")).content.decode())
    assert 'disabled aria-describedby="add-customer-why">Add customer</button>' in listing
    assert reason in listing
    assert URL not in listing


@pytest.mark.rule("T2")
@pytest.mark.parametrize("role", ["admin_agent", "sales_agent"])
def test_roles_that_may_buy_find_the_button_and_the_form(now, partner, role):
    client = signed_in(factories.staff(partner, role))
    assert (
        f'<a class="btn btn-primary" href="{URL}">Add customer</a>'
        in client.get(reverse("portal:customer-list")).content.decode()
    )
    page = client.get(URL)
    assert page.status_code == 200
    assert 'name="form_id"' in page.content.decode()
    client.post(URL, typed())
    assert Customer.objects.filter(partner=partner).count() == 1


@pytest.mark.rule("T1")
def test_an_indirect_reseller_adds_no_customer(now):
    # given
    reseller = factories.PartnerFactory(kind=Partner.Kind.INDIRECT_RESELLER)
    client = signed_in(factories.staff(reseller, "admin_agent"))

    # when / then
    refused(client, typed(), status=403)
    assert str(RESELLER_NOTICE) in unescape(client.get(reverse("portal:customer-list")).content.decode())


def test_a_post_without_the_csrf_token_changes_nothing(now, agent):
    refused(signed_in(agent, enforce_csrf_checks=True), typed(), status=403)


def test_signed_out_the_form_sends_to_sign_in(now):
    response = Client().post(URL, typed())
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("portal:login"))
    assert not Customer.objects.exists()


# --- K4: an indirect provider's reseller of record ------------------------------------------------------------------


@pytest.fixture
def provider():
    return factories.PartnerFactory(name="Adatum Distribution", kind=Partner.Kind.INDIRECT_PROVIDER)


def reseller_of(provider, name, *, mpa_signed=True):
    reseller = factories.PartnerFactory(name=name, kind=Partner.Kind.INDIRECT_RESELLER, mpa_signed=mpa_signed)
    factories.ResellerLinkFactory(provider=provider, reseller=reseller)
    return reseller


@pytest.mark.rule("K4")
def test_an_indirect_provider_names_one_of_its_resellers_as_reseller_of_record(now, provider):
    # given
    reseller = reseller_of(provider, "Woodgrove Resellers")
    client = signed_in(factories.staff(provider, "sales_agent"))

    # when
    client.post(URL, typed(reseller=str(reseller.pk)))

    # then
    customer = Customer.objects.get(partner=provider)
    assert customer.reseller == reseller
    assert AuditEntry.objects.get(customer=customer).after["reseller"] == reseller.partner_id
    # the reseller sees its new customer (T3)
    assert (
        signed_in(factories.staff(reseller, "support_agent"))
        .get(reverse("subscriptions:subscription-list", args=[customer.pk]))
        .status_code
        == 200
    )


@pytest.mark.rule("K4")
def test_a_reseller_without_a_signed_mpa_is_listed_but_not_selectable_and_refused(now, provider):
    # given
    unsigned = reseller_of(provider, "Unsigned Resellers", mpa_signed=False)
    client = signed_in(factories.staff(provider, "sales_agent"))
    why = "has not signed the Microsoft Partner Agreement"

    # when
    form = unescape(client.get(URL).content.decode())
    page = refused(client, typed(reseller=str(unsigned.pk)))

    # then
    assert f'<option value="{unsigned.pk}" disabled>Unsigned Resellers ({unsigned.partner_id})' in form
    assert why in form
    assert why in page


@pytest.mark.rule("K4")
def test_another_providers_reseller_or_an_unknown_id_is_refused(now, provider):
    # given
    theirs = reseller_of(factories.PartnerFactory(kind=Partner.Kind.INDIRECT_PROVIDER), "Their Reseller")
    client = signed_in(factories.staff(provider, "sales_agent"))

    # when / then
    for reseller_id in (str(theirs.pk), "999999999"):
        page = refused(client, typed(reseller=reseller_id))
        assert "That reseller is not one of your indirect resellers." in page
        assert "Their Reseller" not in page


@pytest.mark.rule("K4")
def test_a_direct_bill_partner_names_no_reseller(now, agent, partner):
    # given
    reseller = factories.PartnerFactory(kind=Partner.Kind.INDIRECT_RESELLER)

    # when
    page = refused(signed_in(agent), typed(reseller=str(reseller.pk)))

    # then
    assert "Only indirect providers associate an indirect reseller with a purchase." in page
    assert 'name="reseller"' not in page  # a direct-bill partner's form has no reseller to choose
