"""Relationship requests (TF1) as Partner Center has them: only roles that may buy send one; the customer
accepts through a signed, expiring link e-mailed to its administrator (shown on the demo's simulated mailbox
page, which exists only in the demo), never in a partner's session; the customer row it creates holds only
what the customer gave; and until then a domain another partner serves and one nobody knows are answered alike."""

import re
from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth.models import AnonymousUser
from django.core import mail
from django.core.exceptions import PermissionDenied
from django.core.signing import Signer
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.html import escape

from portal.errors import RuleViolation
from portal.models import Customer
from subscriptions import transfers
from subscriptions.models import AuditEntry, RelationshipRequest
from subscriptions.transfers import RelationshipLinkError
from tests import factories
from tests.helpers import at_once, database_state

DOMAIN = "fabrikam.onmicrosoft.com"
ADMIN = f"admin@{DOMAIN}"
SITE = "http://testserver/"
CUSTOMER_GIVES = {"company_name": "Fabrikam Ltd", "billing_country": "US", "segment": "commercial"}
SALT = "subscriptions.transfers.relationship-acceptance"
ROLE_REASON = "Your role can't buy or change subscriptions: ask an admin agent or sales agent."


@pytest.fixture
def target_partner(db):
    return factories.PartnerFactory(kind="direct_bill", name="Northwind Cloud", partner_id="7300001")


@pytest.fixture
def target_sales(target_partner):
    return factories.staff(target_partner, "sales_agent")


@pytest.fixture
def other_partners_customer(direct_partner):
    """The same organisation as served by another partner, with its own tenant id, segment and country."""
    return factories.CustomerFactory(
        partner=direct_partner,
        company_name="Fabrikam Holdings AG",
        domain=DOMAIN,
        segment="education",
        billing_country="DE",
    )


def send(actor, now, **given):
    return transfers.send_relationship_request(
        actor=actor,
        now=now,
        site_url=SITE,
        **{"company_name": "Fabrikam Ltd", "domain": DOMAIN, "contact_email": ADMIN, **given},
    )


def accept_link(relationship) -> str:
    return reverse("subscriptions:relationship-accept", kwargs={"token": transfers.acceptance_token(relationship)})


def state():
    """Everything accepting or sending could change: the database and the mail sent."""
    return {"database": database_state(), "mail": len(mail.outbox)}


# --- Who may send (T2) ------------------------------------------------------------------------------


@pytest.mark.rule("TF1")
@pytest.mark.rule("T2")
@pytest.mark.parametrize(
    "kind, role, reason",
    [
        ("direct_bill", "support_agent", ROLE_REASON),
        ("direct_bill", "billing_admin", ROLE_REASON),
        (
            "indirect_reseller",
            "admin_agent",
            "Indirect resellers can't buy or change subscriptions here: contact your indirect provider.",
        ),
    ],
)
def test_tf1_a_role_that_may_not_buy_cant_send_and_its_button_says_why(
    client, db, kind, role, reason, now, django_capture_on_commit_callbacks
):
    # given a signed-in staff user whose role (or partner) may not buy
    user = factories.staff(factories.PartnerFactory(kind=kind), role)
    client.force_login(user)
    # when it opens the Transfers page
    page = client.get(reverse("subscriptions:transfer-list")).content.decode()
    # then the send button is there, disabled, with the reason the server gives (title and inline note)
    assert transfers.relationship_permission(user).reason == reason
    button = re.search(r'<button class="btn btn-primary" type="submit"([^>]*)>Send relationship request</button>', page)
    assert button and " disabled" in button.group(1) and f'title="{escape(reason)}"' in button.group(1)
    assert f'<p class="muted" id="relationship-send-reason">{escape(reason)}</p>' in page
    # and posting anyway is refused with that same reason, and nothing is sent
    before = state()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("subscriptions:relationship-send"),
            {"company_name": "Fabrikam Ltd", "domain": DOMAIN, "contact_email": ADMIN},
        )
    assert response.status_code == 403
    assert escape(reason) in response.content.decode()
    assert state() == before
    assert not RelationshipRequest.objects.exists() and mail.outbox == []


@pytest.mark.rule("TF1")
@pytest.mark.rule("T2")
@pytest.mark.parametrize("role", ["admin_agent", "sales_agent"])
def test_tf1_a_buying_role_sends_and_the_link_is_emailed_to_the_customers_admin(
    client, role, target_partner, now, django_capture_on_commit_callbacks
):
    # given an admin or sales agent
    client.force_login(factories.staff(target_partner, role))
    page = client.get(reverse("subscriptions:transfer-list")).content.decode()
    assert 'id="relationship-send-reason"' not in page
    # when it sends a relationship request
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("subscriptions:relationship-send"),
            {"company_name": "Fabrikam Ltd", "domain": "Fabrikam.onmicrosoft.com ", "contact_email": ADMIN},
        )
    # then it is pending for 14 days and its link went by e-mail to the customer's administrator, once
    assert response.status_code == 302
    relationship = RelationshipRequest.objects.get()
    assert (relationship.domain, relationship.contact_email, relationship.status) == (DOMAIN, ADMIN, "pending")
    assert relationship.expires_at == now + timedelta(days=14)
    [message] = mail.outbox
    assert message.to == [ADMIN]
    assert message.subject == "Northwind Cloud asks to become your Cloud Solution Provider partner"
    link = f"http://testserver{accept_link(relationship)}"
    assert link in message.body and "until 2026-12-09 12:00 UTC" in message.body
    assert f'href="{link}"' in message.alternatives[0].content
    # and the partner's page says where the link went and until when it works, not the link itself
    page = client.get(reverse("subscriptions:transfer-list")).content.decode()
    assert "Relationship request sent to Fabrikam Ltd: the acceptance link was e-mailed to " + ADMIN in page
    assert "2026-12-09 12:00 UTC" in page
    assert transfers.acceptance_token(relationship) not in page


# --- Who may accept: the customer, through its link ---------------------------------------------------


@pytest.mark.rule("TF1")
@pytest.mark.parametrize("who", ["support_agent", "sales_agent", "admin_agent", "operator"])
def test_tf1_no_signed_in_session_accepts_even_with_the_link(client, who, target_partner, target_sales, now):
    # given a pending request, and its link in the hands of someone signed in to the portal: the partner's own
    # staff (a support agent, even the agent who sent it) or the platform operator
    relationship = send(target_sales, now)
    user = (
        factories.UserFactory(is_staff=True, is_superuser=True)
        if who == "operator"
        else target_sales
        if who == "sales_agent"
        else factories.staff(target_partner, who)
    )
    client.force_login(user)
    before = state()
    # when it opens the link: the page says it is for the customer, and offers to sign out, not to accept
    page = client.get(accept_link(relationship))
    assert page.status_code == 200
    assert escape(str(transfers.STAFF_CANT_ACCEPT)) in page.content.decode()
    assert "Accept and authorize" not in page.content.decode()
    assert "Sign out and continue as the customer" in page.content.decode()
    # and accepting anyway is refused
    response = client.post(accept_link(relationship), CUSTOMER_GIVES)
    # then 403, and nothing changed
    assert response.status_code == 403
    assert escape(str(transfers.STAFF_CANT_ACCEPT)) in response.content.decode()
    assert state() == before
    with pytest.raises(PermissionDenied):
        transfers.accept_relationship(
            token=transfers.acceptance_token(relationship), actor=user, now=now, **CUSTOMER_GIVES
        )
    assert state() == before


@pytest.mark.rule("TF1")
def test_tf1_a_staff_session_cant_accept_by_request_id(client, target_sales, now):
    # given a pending request, and the sending agent signed in
    relationship = send(target_sales, now)
    client.force_login(target_sales)
    before = state()
    # when it posts the request's id where the old "accept as the customer" page was, or in place of a token
    old_page = client.post(f"/transfers/relationships/{relationship.pk}/accept/", CUSTOMER_GIVES)
    as_token = [
        client.post(reverse("subscriptions:relationship-accept", kwargs={"token": value}), CUSTOMER_GIVES)
        for value in (str(relationship.pk), relationship.pk.hex)
    ]
    # then there is no such page, an id is not a link, and nothing changed
    assert old_page.status_code == 404
    assert [r.status_code for r in as_token] == [400, 400]
    assert "This invitation link isn&#x27;t valid" in as_token[0].content.decode()
    assert state() == before
    relationship.refresh_from_db()
    assert relationship.status == "pending"


@pytest.mark.rule("TF1")
def test_tf1_the_link_accepts_once_then_is_refused(client, target_partner, target_sales, now):
    # given a pending request, opened by the customer (not signed in)
    relationship = send(target_sales, now)
    page = client.get(accept_link(relationship))
    assert page.status_code == 200
    assert "Northwind Cloud wants to be your partner" in page.content.decode()
    assert "This link works once, until 2026-12-09 12:00 UTC." in page.content.decode()
    # when it accepts
    response = client.post(accept_link(relationship), CUSTOMER_GIVES)
    # then the partner serves the customer, once
    assert response.status_code == 200
    assert "Accepted on 2026-11-25 12:00 UTC: Northwind Cloud is now one of your partners." in response.content.decode()
    relationship.refresh_from_db()
    customer = Customer.objects.get(partner=target_partner)
    assert (relationship.status, relationship.accepted_at, relationship.customer) == ("accepted", now, customer)
    entry = AuditEntry.objects.get(action="relationship.accepted")
    assert (entry.customer, entry.actor, entry.summary) == (
        customer,
        None,
        f"Fabrikam Ltd accepted Northwind Cloud as a partner ({DOMAIN})",
    )
    # and the same link used again (a second click, a forwarded e-mail) is refused and changes nothing
    before = state()
    again, reopened = client.post(accept_link(relationship), CUSTOMER_GIVES), client.get(accept_link(relationship))
    assert (again.status_code, reopened.status_code) == (410, 410)
    assert (
        "This invitation was already accepted on 2026-11-25 12:00 UTC: its link works only once."
        in reopened.content.decode()
    )
    assert state() == before


@pytest.mark.rule("TF1")
def test_tf1_an_expired_link_is_refused(client, target_sales, now):
    # given a request sent 2026-11-25 12:00 UTC, whose link works until 2026-12-09 12:00 UTC
    relationship = send(target_sales, now)
    with time_machine.travel(relationship.expires_at - timedelta(minutes=1), tick=False):
        assert client.get(accept_link(relationship)).status_code == 200
    before = state()
    # when the customer follows it at 2026-12-09 12:00 UTC, or later
    for at in (relationship.expires_at, relationship.expires_at + timedelta(days=30)):
        with time_machine.travel(at, tick=False):
            page, posted = client.get(accept_link(relationship)), client.post(accept_link(relationship), CUSTOMER_GIVES)
            # then it is gone for good: 410 with what to do, and nothing changed
            assert (page.status_code, posted.status_code) == (410, 410)
            assert (
                "This invitation expired on 2026-12-09 12:00 UTC: ask Northwind Cloud to send a new one."
                in posted.content.decode()
            )
            assert state() == before
            with pytest.raises(RelationshipLinkError) as refused:
                transfers.accept_relationship(
                    token=transfers.acceptance_token(relationship), actor=AnonymousUser(), now=at, **CUSTOMER_GIVES
                )
            assert refused.value.status == 410


@pytest.mark.rule("TF1")
def test_tf1_an_altered_or_made_up_link_is_refused_clearly(client, target_sales, now):
    relationship = send(target_sales, now)
    token = transfers.acceptance_token(relationship)
    gone = send(target_sales, now, domain="gone.example", contact_email="it@gone.example")
    gone_token = transfers.acceptance_token(gone)
    gone.delete()
    before = state()
    value, signature = token.split(":")
    cases = {
        f"{value[:-1]}{'0' if value[-1] != '0' else '1'}:{signature}": 400,  # another request's id, same signature
        f"{value}:{signature[:10]}{'A' if signature[10] != 'A' else 'B'}{signature[11:]}": 400,  # signature altered
        value: 400,  # no signature at all
        Signer(salt="another-purpose").sign(relationship.pk.hex): 400,  # signed, but for something else
        Signer(salt=SALT, key="not-our-key").sign(relationship.pk.hex): 400,  # made with another key
        "x" * 10_000: 400,
        gone_token: 404,  # a real link whose request no longer exists
    }
    urls = [
        (reverse("subscriptions:relationship-accept", kwargs={"token": value}), status)
        for value, status in cases.items()
    ]
    urls += [("/relationships/accept/%00/", 400), ("/relationships/accept/%E2%80%AE%F0%9F%92%A9/", 400)]
    for url, status in urls:
        for response in (client.get(url), client.post(url, CUSTOMER_GIVES)):
            assert response.status_code == status, url[:60]
            assert "This invitation can't be used" in response.content.decode()
    assert state() == before


@pytest.mark.rule("TF1")
@pytest.mark.parametrize(
    "field, value, message",
    [
        ("company_name", "  ", "Give the customer's company name."),
        ("company_name", "x" * 201, "A company name has at most 200 characters."),
        ("company_name", "Fabrikam\x00Ltd", "A company name can't contain control characters."),
        ("billing_country", "", "Choose your organisation's billing country."),
        ("billing_country", "XX", "Choose your organisation's billing country."),
        ("segment", "reseller", "Choose your organisation's segment."),
    ],
)
def test_tf1_what_the_customer_gives_is_checked_and_kept_on_refusal(client, field, value, message, target_sales, now):
    relationship = send(target_sales, now)
    before = state()
    response = client.post(accept_link(relationship), {**CUSTOMER_GIVES, field: value})
    assert response.status_code == 422
    assert escape(message) in response.content.decode()
    if field == "company_name" and value.strip() and "\x00" not in value:
        assert f'value="{value}"' in response.content.decode()  # what the customer typed stays in the form
    assert state() == before


# --- The demo's mailbox ------------------------------------------------------------------------------


@pytest.mark.rule("TF1")
def test_tf1_the_mailbox_exists_only_in_the_demo_and_nothing_else_shows_the_link(
    client, settings, target_sales, now, django_capture_on_commit_callbacks
):
    # given a request sent through the page
    client.force_login(target_sales)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("subscriptions:relationship-send"),
            {"company_name": "Fabrikam Ltd", "domain": DOMAIN, "contact_email": ADMIN},
        )
    relationship = RelationshipRequest.objects.get()
    token = transfers.acceptance_token(relationship)
    mailbox = f"{reverse('subscriptions:relationship-mailbox')}?to={ADMIN}"
    # when not demo: the mailbox is 404, signed in or not; the partner's pages show no link; only the e-mail has it
    settings.DEMO_MODE = False
    assert client.get(mailbox).status_code == 404
    transfers_page = client.get(reverse("subscriptions:transfer-list")).content.decode()
    assert token not in transfers_page and "mailbox" not in transfers_page
    client.logout()
    assert client.get(mailbox).status_code == 404
    assert [token in m.body for m in mail.outbox] == [True]
    # when demo: the mailbox shows the e-mail with its link, and the Transfers page links to the mailbox
    settings.DEMO_MODE = True
    page = client.get(mailbox).content.decode()
    assert "Simulated mailbox (demo)" in page
    assert "Northwind Cloud asks to become your Cloud Solution Provider partner" in page
    assert f'href="http://testserver{accept_link(relationship)}"' in page
    assert (
        "No messages for someone@" + DOMAIN
        in client.get(f"{reverse('subscriptions:relationship-mailbox')}?to=someone@{DOMAIN}").content.decode()
    )
    assert client.get(f"{reverse('subscriptions:relationship-mailbox')}?to=%00").status_code == 422
    client.force_login(target_sales)
    transfers_page = client.get(reverse("subscriptions:transfer-list")).content.decode()
    assert f'href="{mailbox}"'.replace("@", "%40") in transfers_page
    assert token not in transfers_page


# --- Known and unknown domains: the same answers; nothing copied ---------------------------------------


IDS = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}")
TOKENS = re.compile(r"/relationships/accept/[^/\"'\s]+/")
CSRF = re.compile(r"(csrfmiddlewaretoken\" value=\"|X-CSRFToken\": \")[^\"]+")
SESSION_KEYS = re.compile(r"'[a-z0-9]{32}'")
SAVEPOINTS = re.compile(r'"s\d+_x\d+"')


def normalised(text: str) -> str:
    """A page or a query with what differs in any two runs (ids, tokens, CSRF and session keys) blanked out."""
    text = TOKENS.sub("/relationships/accept/<token>/", text)
    text = SAVEPOINTS.sub('"<savepoint>"', SESSION_KEYS.sub("'<session>'", text))
    return IDS.sub("<id>", CSRF.sub(r"\1<csrf>", text))


def answers_for_a_domain(client, settings, target_sales, *, served_by=None):
    """Every answer the sending partner and the customer get, from sending to accepting, and the SQL they cost:
    in a savepoint rolled back afterwards, so that the two runs start from the same data."""
    seen = []

    def answer(response, queries):
        body = response.content.decode()
        seen.append(
            (
                response.status_code,
                normalised(response.get("Location", "")),
                normalised(body),
                [normalised(q["sql"]) for q in queries.captured_queries],
            )
        )

    settings.DEMO_MODE = True
    with transaction.atomic():
        if served_by is not None:
            factories.CustomerFactory(
                partner=served_by,
                company_name="Fabrikam Holdings AG",
                domain=DOMAIN,
                segment="education",
                billing_country="DE",
            )
        client.force_login(target_sales)
        steps = [
            lambda: client.post(
                reverse("subscriptions:relationship-send"),
                {"company_name": "Fabrikam Ltd", "domain": DOMAIN, "contact_email": ADMIN},
            ),
            lambda: client.get(reverse("subscriptions:transfer-list")),
            lambda: client.get(f"{reverse('subscriptions:relationship-mailbox')}?to={ADMIN}"),
        ]
        for step in steps:
            with CaptureQueriesContext(connection) as queries:
                response = step()
            answer(response, queries)
        link = accept_link(RelationshipRequest.objects.get())
        client.logout()
        for step in (lambda: client.get(link), lambda: client.post(link, CUSTOMER_GIVES)):
            with CaptureQueriesContext(connection) as queries:
                response = step()
            answer(response, queries)
        client.force_login(target_sales)
        customer = RelationshipRequest.objects.get().customer
        for step in (
            lambda: client.get(reverse("subscriptions:transfer-list")),
            lambda: client.get(reverse("portal:customer-account", args=[customer.pk])),
        ):
            with CaptureQueriesContext(connection) as queries:
                response = step()
            answer(response, queries)
        client.logout()
        transaction.set_rollback(True)
    return seen


@pytest.mark.rule("TF1")
@pytest.mark.rule("T3")
def test_tf1_a_domain_another_partner_serves_and_an_unknown_one_get_the_same_answers(
    client, settings, target_sales, direct_partner, now
):
    # when the same request is sent and accepted for a domain nobody serves, then for one another partner serves
    unknown = answers_for_a_domain(client, settings, target_sales)
    known = answers_for_a_domain(client, settings, target_sales, served_by=direct_partner)
    # then every answer is the same, byte for byte apart from ids, tokens and CSRF tokens: the same status, page
    # and Location, from the same SQL statements (the same work, so the same time)
    assert [status for status, *_ in known] == [302, 200, 200, 200, 200, 200, 200]
    for step, (a, b) in enumerate(zip(unknown, known, strict=True)):
        assert a[:3] == b[:3], f"step {step}"
        assert a[3] == b[3], f"step {step}: different SQL"
    assert "Fabrikam Holdings AG" not in "".join(body for _, _, body, _ in known)


@pytest.mark.rule("TF1")
@pytest.mark.rule("TF2")
@pytest.mark.rule("T3")
def test_tf1_the_new_customer_holds_nothing_of_another_partners_record_and_tf2_still_finds_it(
    client, target_partner, target_sales, direct_partner, other_partners_customer, now
):
    # given the organisation is another partner's customer (tenant id, education, Germany)
    theirs = other_partners_customer
    # when it accepts this partner's request, giving its own details
    relationship = send(target_sales, now)
    transfers.accept_relationship(
        token=transfers.acceptance_token(relationship), actor=AnonymousUser(), now=now, **CUSTOMER_GIVES
    )
    # then the new customer row is built from what the customer gave and the domain it accepted for, only
    ours = Customer.objects.get(partner=target_partner)
    assert (ours.company_name, ours.domain, ours.segment, ours.billing_country) == (
        "Fabrikam Ltd",
        DOMAIN,
        "commercial",
        "US",
    )
    assert ours.tenant_id != theirs.tenant_id
    theirs_before = (theirs.tenant_id, theirs.segment, theirs.billing_country, theirs.company_name)
    theirs.refresh_from_db()
    assert (theirs.tenant_id, theirs.segment, theirs.billing_country, theirs.company_name) == theirs_before
    # and the account page shows none of the other partner's record
    client.force_login(target_sales)
    account = client.get(reverse("portal:customer-account", args=[ours.pk])).content.decode()
    for leaked in (str(theirs.tenant_id), theirs.tenant_id.hex, "Education", "Germany", "Fabrikam Holdings AG"):
        assert leaked not in account
    assert str(ours.tenant_id) in account and "United States (US)" in account
    # and TF2 still finds the current partner's customer (by the domain, on the current partner's side)
    transfer = transfers.file_transfer_request(
        actor=target_sales,
        customer=ours,
        now=now,
        source_partner_id=direct_partner.partner_id,
        notification_email=ADMIN,
    )
    assert (transfer.source_customer, transfer.target_customer) == (theirs, ours)
    detail = client.get(reverse("subscriptions:transfer-detail", args=[transfer.pk])).content.decode()
    assert "Fabrikam Holdings AG" not in detail and str(theirs.tenant_id) not in detail


@pytest.mark.rule("TF1")
def test_tf1_an_unknown_domain_is_accepted_as_a_new_customer(target_partner, target_sales, now):
    relationship = send(
        target_sales, now, domain="tailspin.example", contact_email="it@tailspin.example", company_name="Tailspin Toys"
    )
    accepted = transfers.accept_relationship(
        token=transfers.acceptance_token(relationship),
        actor=AnonymousUser(),
        now=now,
        company_name="Tailspin Toys",
        billing_country="NL",
        segment="nonprofit",
    )
    customer = accepted.customer
    assert (
        customer.partner,
        customer.company_name,
        customer.domain,
        customer.billing_country,
        customer.segment,
        customer.is_eu_efta,
    ) == (target_partner, "Tailspin Toys", "tailspin.example", "NL", "nonprofit", True)
    assert accepted.tenant_id == customer.tenant_id


# --- Sending: what is checked -------------------------------------------------------------------------


@pytest.mark.rule("TF1")
@pytest.mark.parametrize(
    "contact_email, message",
    [
        ("", "Enter the e-mail address of the customer's administrator."),
        ("not-an-email", "Enter the e-mail address of the customer's administrator."),
        (
            "admin@northwind.example",
            f"The acceptance link goes to the customer's administrator: give an address at "
            f"{DOMAIN} (such as admin@{DOMAIN}).",
        ),
        (
            f"admin@evil{DOMAIN}",
            f"The acceptance link goes to the customer's administrator: give an address at "
            f"{DOMAIN} (such as admin@{DOMAIN}).",
        ),
    ],
)
def test_tf1_the_link_goes_only_to_an_address_at_the_customers_domain(target_sales, contact_email, message, now):
    with pytest.raises(RuleViolation) as refused:
        send(target_sales, now, contact_email=contact_email)
    assert (refused.value.rule, refused.value.message, refused.value.field) == ("TF1", message, "contact_email")
    assert not RelationshipRequest.objects.exists()


@pytest.mark.rule("TF1")
def test_tf1_an_address_at_a_subdomain_will_do(target_sales, now):
    address = f"IT@Mail.{DOMAIN.upper()}"
    assert send(target_sales, now, contact_email=address).contact_email == address


@pytest.mark.rule("TF1")
def test_tf1_a_domain_this_partner_already_serves_needs_no_request(target_partner, target_sales, now):
    factories.CustomerFactory(partner=target_partner, company_name="Fabrikam Ltd", domain=DOMAIN)
    with pytest.raises(RuleViolation) as refused:
        send(target_sales, now, domain=DOMAIN.upper())
    assert refused.value.message == f"You already serve Fabrikam Ltd ({DOMAIN}): request a transfer for it instead."
    assert not RelationshipRequest.objects.exists()


@pytest.mark.rule("TF1")
def test_tf1_once_a_link_expired_a_new_request_can_be_sent(target_sales, now):
    first = send(target_sales, now)
    with pytest.raises(RuleViolation) as refused:
        send(target_sales, now + timedelta(days=13))
    assert refused.value.conflict
    assert refused.value.message == (
        f"A relationship request to {DOMAIN} is already waiting for the customer: its "
        f"link was e-mailed to {ADMIN} and works until 2026-12-09 12:00 UTC."
    )
    second = send(target_sales, first.expires_at)
    assert second.expires_at == first.expires_at + timedelta(days=14)
    assert transfers.acceptance_token(second) != transfers.acceptance_token(first)
    assert RelationshipRequest.objects.get(pk=first.pk).status_label_at(first.expires_at) == "Expired"


# --- Races (PostgreSQL row locks) ---------------------------------------------------------------------


@pytest.mark.rule("TF1")
@pytest.mark.django_db(transaction=True)
def test_tf1_two_acceptances_at_once_make_one_customer(target_partner, target_sales, now):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL row locks; SQLite serialises whole-database writes instead")
    relationship = send(target_sales, now)
    token = transfers.acceptance_token(relationship)

    def accept():
        return transfers.accept_relationship(token=token, actor=AnonymousUser(), now=now, **CUSTOMER_GIVES)

    results, refused = at_once(accept, accept, refusals=RelationshipLinkError)
    assert (len(results), [error.status for error in refused]) == (1, [410])
    assert Customer.objects.filter(partner=target_partner).count() == 1
    assert AuditEntry.objects.filter(action="relationship.accepted").count() == 1
    assert RelationshipRequest.objects.get().customer.partner == target_partner
