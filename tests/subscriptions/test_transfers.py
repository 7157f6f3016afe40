"""Transfers between partners (TF1–TF4): relationship, request, pick, complete; scoping and refusals."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from portal.errors import RuleViolation
from subscriptions import checks, services, transfers
from subscriptions.models import AuditEntry, BillingLine, RelationshipRequest, Subscription, TransferRequest
from tests import factories
from tests.helpers import database_state, drawn


@pytest.fixture
def target_partner(db):
    return factories.PartnerFactory(kind="direct_bill", name="Fabrikam Cloud", partner_id="7200001")


@pytest.fixture
def target_sales(target_partner):
    return factories.staff(target_partner, "sales_agent")


@pytest.fixture
def source_sales(sales):
    return sales


@pytest.fixture
def subs(customer):
    return [
        factories.SubscriptionFactory(customer=customer, quantity=10),
        factories.SubscriptionFactory(customer=customer, quantity=4, status="suspended"),
    ]


def related(target_sales, customer, now):
    """TF1: the target partner invites the customer's domain and the customer accepts through its link."""
    relationship = transfers.send_relationship_request(
        actor=target_sales,
        company_name=customer.company_name,
        domain=customer.domain,
        contact_email=f"admin@{customer.domain}",
        site_url="http://testserver/",
        now=now,
    )
    return transfers.accept_relationship(
        token=transfers.acceptance_token(relationship),
        actor=AnonymousUser(),
        company_name=customer.company_name,
        billing_country="US",
        segment="commercial",
        now=now,
    )


@pytest.fixture
def transfer(target_sales, customer, direct_partner, subs, now):
    relationship = related(target_sales, customer, now)
    return transfers.file_transfer_request(
        actor=target_sales,
        customer=relationship.customer,
        source_partner_id=direct_partner.partner_id,
        notification_email="it@example.com",
        now=now,
    )


@pytest.mark.rule("TF1")
def test_tf1_accepted_relationship_creates_the_target_partners_own_customer_for_the_same_domain(
    target_sales, target_partner, customer, now
):
    # when
    relationship = related(target_sales, customer, now)
    # then the target partner has a customer of its own for the domain, with a tenant id of its own (T3: the
    # source partner's record is not read, let alone copied)
    assert relationship.status == "accepted" and relationship.accepted_at == now
    new = relationship.customer
    assert new.partner == target_partner and new.domain == customer.domain and new.pk != customer.pk
    assert new.tenant_id != customer.tenant_id and relationship.tenant_id == new.tenant_id
    assert AuditEntry.objects.filter(customer=new, action="relationship.accepted").count() == 1


@pytest.mark.rule("TF2")
def test_tf2_request_filed_expires_in_30_days_and_shows_in_the_sources_activity(
    transfer, customer, direct_partner, now
):
    assert transfer.status == "pending" and transfer.source_partner == direct_partner
    assert transfer.source_customer == customer
    assert transfer.expires_at == now + timedelta(days=30)
    assert AuditEntry.objects.filter(customer=customer, action="transfer.requested").count() == 1


@pytest.mark.rule("TF2")
@pytest.mark.parametrize(
    "case", ["unknown_partner_id", "already_pending", "bad_email", "huge_email", "partner_not_serving"]
)
def test_tf2_refusals_change_nothing(case, target_sales, target_partner, customer, direct_partner, now):
    # given
    target_customer = related(target_sales, customer, now).customer
    if case == "already_pending":
        transfers.file_transfer_request(
            actor=target_sales,
            customer=target_customer,
            source_partner_id=direct_partner.partner_id,
            notification_email="it@example.com",
            now=now,
        )
    partner_id = {"unknown_partner_id": "9999999", "partner_not_serving": factories.PartnerFactory().partner_id}.get(
        case, direct_partner.partner_id
    )
    email = {"bad_email": "not-an-email", "huge_email": "a" * 250 + "@example.com"}.get(case, "it@example.com")
    before = database_state()
    # when
    with pytest.raises(RuleViolation) as error:
        transfers.file_transfer_request(
            actor=target_sales,
            customer=target_customer,
            source_partner_id=partner_id,
            notification_email=email,
            now=now,
        )
    # then
    assert error.value.rule == "TF2"
    assert database_state() == before


@pytest.mark.rule("TF4")
def test_tf4_complete_moves_the_subscriptions_in_one_go(transfer, subs, source_sales, now):
    # when
    created = transfers.complete_transfer(
        actor=source_sales, request_id=transfer.pk, subscription_ids=[s.pk for s in subs], now=now
    )
    # then
    transfer.refresh_from_db()
    assert transfer.status == "completed" and transfer.completed_at == now
    assert set(transfer.subscriptions.all()) == set(subs)
    for old, new in zip(subs, sorted(created, key=lambda s: s.quantity, reverse=True), strict=False):
        old.refresh_from_db()
        assert old.status == "deleted" and old.cancelled_at == now
        assert new.customer == transfer.target_customer
        assert (new.sku, new.quantity, new.term, new.billing_frequency, new.unit_price, new.term_end, new.status) == (
            old.sku,
            old.quantity,
            old.term,
            old.billing_frequency,
            old.unit_price,
            old.term_end,
            "active" if old.quantity == 10 else "suspended",
        )
        assert new.term_start == now
        assert new.seat_lots.get().quantity == old.quantity
        assert AuditEntry.objects.filter(subscription=old, action="subscription.transferred").count() == 1
    # No refund at the source, no charge at the target.
    assert BillingLine.objects.count() == 0


@pytest.mark.rule("TF3")
def test_a_transfer_names_a_person_only_in_their_own_partners_records(
    transfer, subs, target_sales, source_sales, customer, now
):
    # given a request filed by the target's agent (the fixture), then completed by the source's
    transfers.complete_transfer(actor=source_sales, request_id=transfer.pk, subscription_ids=[subs[0].pk], now=now)
    # then each partner's records name its own staff, and the other partner's only by its name in the summary
    named = {
        (e.action, e.partner_id, e.actor_id)
        for e in AuditEntry.objects.filter(
            action__in=[
                "transfer.requested",
                "transfer.completed",
                "subscription.transferred",
                "subscription.transferred_in",
            ]
        )
    }
    source, target = transfer.source_partner_id, transfer.target_partner_id
    assert named == {
        ("transfer.requested", target, target_sales.pk),
        ("transfer.requested", source, None),
        ("transfer.completed", source, source_sales.pk),
        ("transfer.completed", target, None),
        ("subscription.transferred", source, source_sales.pk),
        ("subscription.transferred_in", target, None),
    }
    requested = AuditEntry.objects.get(action="transfer.requested", partner_id=source)
    assert requested.summary.startswith("Fabrikam Cloud (7200001) requests a transfer of subscriptions")


@pytest.mark.rule("TF4")
def test_tf4_one_untransferable_subscription_transfers_none(transfer, subs, customer, source_sales, now):
    trial = factories.SubscriptionFactory(customer=customer, trial=True)
    before = database_state()
    with pytest.raises(RuleViolation):
        transfers.complete_transfer(
            actor=source_sales, request_id=transfer.pk, subscription_ids=[subs[0].pk, trial.pk], now=now
        )
    assert database_state() == before


@pytest.mark.rule("TF4")
def test_tf4_expired_request_is_refused(transfer, subs, source_sales, now):
    later = transfer.expires_at
    before = database_state()
    with pytest.raises(RuleViolation) as error:
        transfers.complete_transfer(
            actor=source_sales, request_id=transfer.pk, subscription_ids=[subs[0].pk], now=later
        )
    assert error.value.conflict and "expired" in error.value.message
    assert database_state() == before
    assert transfer.status_at(later) == "expired"


@pytest.mark.rule("TF4")
@pytest.mark.parametrize("who", ["target", "support"])
def test_tf4_wrong_side_or_support_agent_is_refused(who, transfer, subs, target_sales, direct_partner, now):
    actor = target_sales if who == "target" else factories.staff(direct_partner, "support_agent")
    before = database_state()
    with pytest.raises(PermissionDenied):
        transfers.complete_transfer(actor=actor, request_id=transfer.pk, subscription_ids=[subs[0].pk], now=now)
    assert database_state() == before


@pytest.mark.rule("TF3")
def test_tf3_the_whole_flow_through_the_pages(client, target_sales, source_sales, customer, direct_partner, subs, now):
    # TF1: the target sends a relationship request; the customer, not signed in, accepts through its link.
    client.force_login(target_sales)
    response = client.post(
        reverse("subscriptions:relationship-send"),
        {"company_name": customer.company_name, "domain": customer.domain, "contact_email": f"it@{customer.domain}"},
    )
    assert response.status_code == 302
    relationship = RelationshipRequest.objects.get()
    client.logout()
    link = reverse("subscriptions:relationship-accept", kwargs={"token": transfers.acceptance_token(relationship)})
    assert (
        client.post(
            link, {"company_name": customer.company_name, "billing_country": "US", "segment": "commercial"}
        ).status_code
        == 200
    )
    relationship.refresh_from_db()
    client.force_login(target_sales)
    # TF2: the target files the request.
    response = client.post(
        reverse("subscriptions:transfer-file"),
        {
            "customer": relationship.customer_id,
            "source_partner_id": direct_partner.partner_id,
            "notification_email": "it@example.com",
        },
    )
    transfer = TransferRequest.objects.get()
    assert response.status_code == 302
    page = client.get(reverse("subscriptions:transfer-list")).content.decode()
    assert "Pending" in page and "2026-12-25 12:00 UTC" in page
    # TF3: the source sees it, picks, submits.
    client.force_login(source_sales)
    page = client.get(reverse("subscriptions:transfer-list")).content.decode()
    assert "Fabrikam Cloud" in page
    detail = reverse("subscriptions:transfer-detail", args=[transfer.pk])
    assert subs[0].display_name in client.get(detail).content.decode()
    assert client.post(detail, drawn(transfer, {"subscriptions": [subs[0].pk]})).status_code == 302
    transfer.refresh_from_db()
    subs[0].refresh_from_db()
    assert transfer.status == "completed" and subs[0].status == "deleted"
    assert Subscription.objects.filter(customer=relationship.customer).count() == 1


@pytest.mark.rule("T3")
def test_t3_other_partners_get_404_and_the_target_gets_403_on_complete(client, transfer, subs, target_sales):
    detail = reverse("subscriptions:transfer-detail", args=[transfer.pk])
    stranger = factories.staff(factories.PartnerFactory(), "admin_agent")
    client.force_login(stranger)
    assert client.get(detail).status_code == 404
    assert client.post(detail, {"subscriptions": [subs[0].pk]}).status_code == 404
    assert "Fabrikam" not in client.get(reverse("subscriptions:transfer-list")).content.decode()
    client.force_login(target_sales)
    assert client.get(detail).status_code == 200
    assert client.post(detail, {"subscriptions": [subs[0].pk]}).status_code == 403
    subs[0].refresh_from_db()
    assert subs[0].status == "active"


@pytest.mark.rule("TF2")
def test_tf2_refusal_through_the_page_answers_422(client, target_sales, customer, now):
    target_customer = related(target_sales, customer, now).customer
    client.force_login(target_sales)
    response = client.post(
        reverse("subscriptions:transfer-file"),
        {"customer": target_customer.pk, "source_partner_id": "0000000", "notification_email": "it@example.com"},
    )
    assert response.status_code == 422
    assert "No partner has the PartnerID 0000000" in response.content.decode()
    assert not TransferRequest.objects.exists()


@pytest.mark.rule("TF4")
def test_tf4_submitting_nothing_picked_answers_422_with_the_reason(client, transfer, subs, source_sales):
    client.force_login(source_sales)
    response = client.post(reverse("subscriptions:transfer-detail", args=[transfer.pk]), drawn(transfer))
    assert response.status_code == 422
    assert "Pick at least one subscription" in response.content.decode()
    transfer.refresh_from_db()
    assert transfer.status == "pending"


# Withdrawing or declining a pending request ------------------------------------------------------------


@pytest.mark.parametrize("side, verb", [("target", "withdrawn"), ("source", "declined")])
def test_either_side_can_end_a_pending_request_and_nothing_moves(
    side, verb, transfer, subs, target_sales, source_sales, customer, now
):
    actor = target_sales if side == "target" else source_sales
    subs_before = sorted(Subscription.objects.values_list("pk", "customer_id", "status", "quantity"))
    # when
    transfers.cancel_transfer_request(actor=actor, request_id=transfer.pk, now=now)
    # then the request is cancelled, both activity logs say which partner ended it (the person only in their own
    # partner's), and no subscription moved
    transfer.refresh_from_db()
    assert transfer.status == "cancelled"
    entries = AuditEntry.objects.filter(action="transfer.cancelled")
    assert sorted(e.customer_id for e in entries) == sorted([transfer.source_customer_id, transfer.target_customer_id])
    partner = actor.membership.partner
    assert all(e.summary.endswith(f"{verb} by {partner.name}") for e in entries)
    assert {e.partner_id: e.actor for e in entries} == {
        transfer.source_partner_id: actor if side == "source" else None,
        transfer.target_partner_id: actor if side == "target" else None,
    }
    assert sorted(Subscription.objects.values_list("pk", "customer_id", "status", "quantity")) == subs_before
    # and it can't be completed any more
    with pytest.raises(RuleViolation) as error:
        transfers.complete_transfer(actor=source_sales, request_id=transfer.pk, subscription_ids=[subs[0].pk], now=now)
    assert error.value.conflict and "already cancelled" in error.value.message


@pytest.mark.rule("TF4")
@pytest.mark.parametrize("state", ["completed", "cancelled", "expired"])
def test_a_request_that_has_ended_cant_be_cancelled(state, transfer, subs, target_sales, source_sales, now):
    when = now
    if state == "completed":
        transfers.complete_transfer(actor=source_sales, request_id=transfer.pk, subscription_ids=[subs[0].pk], now=now)
    elif state == "cancelled":
        transfers.cancel_transfer_request(actor=source_sales, request_id=transfer.pk, now=now)
    else:
        when = transfer.expires_at
    before = database_state()
    audit_before = AuditEntry.objects.count()
    with pytest.raises(RuleViolation) as error:
        transfers.cancel_transfer_request(actor=target_sales, request_id=transfer.pk, now=when)
    assert error.value.conflict
    assert database_state() == before and AuditEntry.objects.count() == audit_before


def test_cancelling_needs_a_buying_role_on_one_of_the_two_sides(transfer, direct_partner, now):
    actors = (
        factories.staff(direct_partner, "support_agent"),
        factories.staff(factories.PartnerFactory(), "admin_agent"),
    )
    before = database_state()
    for actor in actors:
        with pytest.raises(PermissionDenied):
            transfers.cancel_transfer_request(actor=actor, request_id=transfer.pk, now=now)
    assert database_state() == before


def test_withdraw_and_decline_through_the_page(client, transfer, subs, target_sales, source_sales, customer, now):
    detail = reverse("subscriptions:transfer-detail", args=[transfer.pk])
    cancel = reverse("subscriptions:transfer-cancel", args=[transfer.pk])
    # the source partner sees "Decline request", the target "Withdraw request"
    client.force_login(source_sales)
    assert "Decline request" in client.get(detail).content.decode()
    client.force_login(target_sales)
    assert "Withdraw request" in client.get(detail).content.decode()
    # a stranger gets 404, a GET changes nothing
    stranger = factories.staff(factories.PartnerFactory(), "admin_agent")
    client.force_login(stranger)
    assert client.post(cancel).status_code == 404
    client.force_login(target_sales)
    assert client.get(cancel).status_code == 302
    transfer.refresh_from_db()
    assert transfer.status == "pending"
    # when the target withdraws it
    form = drawn(transfer)
    response = client.post(cancel, form, follow=True)
    page = response.content.decode()
    assert response.status_code == 200 and "Transfer request withdrawn: nothing was transferred." in page
    assert "Withdrawn (UTC)" in page and "Withdraw request" not in page
    # and a second submit (double click, stale page) answers 409 and changes nothing
    before = database_state()
    response = client.post(cancel, form)
    assert response.status_code == 409 and "already cancelled" in response.content.decode()
    assert database_state() == before
    # the source partner sees who ended it
    client.force_login(source_sales)
    assert f"withdrawn by {transfer.target_partner.name}" in client.get(detail).content.decode()


@pytest.mark.rule("TF4")
def test_tf4_a_tampered_pick_answers_409_and_moves_nothing(client, transfer, subs, source_sales):
    client.force_login(source_sales)
    before = database_state()
    response = client.post(
        reverse("subscriptions:transfer-detail", args=[transfer.pk]),
        drawn(transfer, {"subscriptions": [str(subs[0].pk), "not-a-uuid"]}),
    )
    assert response.status_code == 409 and "reload the page" in response.content.decode()
    assert database_state() == before


@pytest.mark.rule("TF4")
@pytest.mark.rule("X1")
def test_tf4_a_transferred_in_subscription_has_no_cancellation_window_with_its_new_partner(
    transfer, subs, source_sales, target_sales, now
):
    # given a subscription just transferred in (the customer paid the previous partner for this term)
    moved = transfers.complete_transfer(
        actor=source_sales, request_id=transfer.pk, subscription_ids=[subs[0].pk], now=now
    )[0]
    # then the new partner is not offered a cancellation, and the server refuses one: no refund of money it never got
    verdict = checks.allowed_actions(moved, target_sales, now + timedelta(hours=1))["cancel"]
    assert (verdict.allowed, verdict.rule) == (False, "TF4")
    assert verdict.reason.startswith("This subscription was transferred in on 2026-11-25 12:00 UTC")
    before = database_state()
    with pytest.raises(RuleViolation) as refused:
        services.cancel_subscription(subscription_id=moved.pk, actor=target_sales, now=now + timedelta(hours=1))
    assert refused.value.rule == "TF4"
    assert database_state() == before


@pytest.mark.rule("TF2")
def test_tf2_a_customer_already_served_needs_no_new_relationship_request(
    target_sales, target_partner, customer, direct_partner, now
):
    # given the target partner already serves the same organisation (same tenant), from before
    ours = factories.CustomerFactory(partner=target_partner, tenant_id=customer.tenant_id)
    # when it files a transfer request / then it is accepted
    transfer = transfers.file_transfer_request(
        actor=target_sales,
        customer=ours,
        source_partner_id=direct_partner.partner_id,
        notification_email="it@example.com",
        now=now,
    )
    assert (transfer.status, transfer.source_customer, transfer.target_customer) == ("pending", customer, ours)


@pytest.mark.rule("TF1")
@pytest.mark.parametrize(
    "company_name, domain",
    [
        ("Contoso", "nope"),
        ("Contoso", "a b.example"),
        ("x" * 201, "contoso.example"),
        ("Contoso", "-bad-.example"),
        ("", "contoso.example"),
        ("Contoso", "d" * 250 + ".example"),
        ("Contoso\x00", "contoso.example"),
        ("Contoso", ""),
    ],
)
def test_tf1_a_relationship_request_needs_a_company_name_and_a_real_domain(target_sales, company_name, domain, now):
    with pytest.raises(RuleViolation) as refused:
        transfers.send_relationship_request(
            actor=target_sales,
            company_name=company_name,
            domain=domain,
            contact_email="admin@contoso.example",
            site_url="http://testserver/",
            now=now,
        )
    assert refused.value.rule == "TF1"
    assert not RelationshipRequest.objects.exists()


@pytest.mark.rule("TF1")
def test_tf1_a_second_pending_request_to_the_same_domain_is_refused(target_sales, now):
    def send(domain):
        return transfers.send_relationship_request(
            actor=target_sales,
            company_name="Contoso",
            domain=domain,
            contact_email="admin@contoso.example",
            site_url="http://testserver/",
            now=now,
        )

    send("Contoso.example")
    with pytest.raises(RuleViolation) as refused:
        send("contoso.example")
    assert refused.value.conflict
    assert RelationshipRequest.objects.count() == 1
