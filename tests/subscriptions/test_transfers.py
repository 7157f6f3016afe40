"""Transfers between partners (TF1–TF4): relationship, request, pick, complete; scoping and refusals."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from portal.models import Customer
from portal.rules import RuleViolation
from subscriptions import transfers
from subscriptions.models import AuditEntry, BillingLine, RelationshipRequest, Subscription, TransferRequest
from tests import factories


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
    return [factories.SubscriptionFactory(customer=customer, quantity=10),
            factories.SubscriptionFactory(customer=customer, quantity=4, status="suspended")]


def related(target_sales, customer, now):
    relationship = transfers.send_relationship_request(actor=target_sales, company_name=customer.company_name,
                                                       domain=customer.domain, now=now)
    return transfers.accept_relationship(request_id=relationship.pk, now=now)


@pytest.fixture
def transfer(target_sales, customer, direct_partner, subs, now):
    relationship = related(target_sales, customer, now)
    return transfers.file_transfer_request(actor=target_sales, customer=relationship.customer,
                                           source_partner_id=direct_partner.partner_id,
                                           notification_email="it@example.com", now=now)


def snapshot():
    return {
        "subs": sorted(Subscription.objects.values_list("pk", "customer_id", "status", "quantity")),
        "billing": BillingLine.objects.count(),
        "transfers": sorted(TransferRequest.objects.values_list("pk", "status")),
        "customers": Customer.objects.count(),
    }


@pytest.mark.rule("TF1")
def test_tf1_accepted_relationship_creates_the_target_partners_customer_for_the_same_tenant(
        target_sales, target_partner, customer, now):
    # when
    relationship = related(target_sales, customer, now)
    # then
    assert relationship.status == "accepted" and relationship.accepted_at == now
    new = relationship.customer
    assert new.partner == target_partner and new.tenant_id == customer.tenant_id and new.pk != customer.pk
    assert AuditEntry.objects.filter(customer=new, action="relationship.accepted").count() == 1


@pytest.mark.rule("TF1")
def test_tf1_unknown_domain_is_refused_and_creates_no_customer(target_sales, customer, now):
    relationship = transfers.send_relationship_request(actor=target_sales, company_name="Nobody", domain="nobody.example",
                                                       now=now)
    before = Customer.objects.count()
    with pytest.raises(RuleViolation) as error:
        transfers.accept_relationship(request_id=relationship.pk, now=now)
    assert error.value.rule == "TF1"
    assert Customer.objects.count() == before
    relationship.refresh_from_db()
    assert relationship.status == "pending"


@pytest.mark.rule("TF2")
def test_tf2_request_filed_expires_in_30_days_and_shows_in_the_sources_activity(transfer, customer, direct_partner, now):
    assert transfer.status == "pending" and transfer.source_partner == direct_partner
    assert transfer.source_customer == customer
    assert transfer.expires_at == now + timedelta(days=30)
    assert AuditEntry.objects.filter(customer=customer, action="transfer.requested").count() == 1


@pytest.mark.rule("TF2")
@pytest.mark.parametrize("case", ["unknown_partner_id", "no_relationship", "bad_email", "partner_not_serving"])
def test_tf2_refusals_change_nothing(case, target_sales, target_partner, customer, direct_partner, now):
    # given
    if case == "no_relationship":
        target_customer = factories.CustomerFactory(partner=target_partner, tenant_id=customer.tenant_id)
    else:
        target_customer = related(target_sales, customer, now).customer
    partner_id = {"unknown_partner_id": "9999999",
                  "partner_not_serving": factories.PartnerFactory().partner_id}.get(case, direct_partner.partner_id)
    email = "not-an-email" if case == "bad_email" else "it@example.com"
    before = snapshot()
    # when
    with pytest.raises(RuleViolation) as error:
        transfers.file_transfer_request(actor=target_sales, customer=target_customer, source_partner_id=partner_id,
                                        notification_email=email, now=now)
    # then
    assert error.value.rule == "TF2"
    assert snapshot() == before


@pytest.mark.rule("TF4")
def test_tf4_complete_moves_the_subscriptions_in_one_go(transfer, subs, source_sales, now):
    # when
    created = transfers.complete_transfer(actor=source_sales, request_id=transfer.pk,
                                          subscription_ids=[s.pk for s in subs], now=now)
    # then
    transfer.refresh_from_db()
    assert transfer.status == "completed" and transfer.completed_at == now
    assert set(transfer.subscriptions.all()) == set(subs)
    for old, new in zip(subs, sorted(created, key=lambda s: s.quantity, reverse=True)):
        old.refresh_from_db()
        assert old.status == "deleted" and old.cancelled_at == now
        assert new.customer == transfer.target_customer
        assert (new.sku, new.quantity, new.term, new.billing_frequency, new.unit_price, new.term_end, new.status) == (
            old.sku, old.quantity, old.term, old.billing_frequency, old.unit_price, old.term_end,
            "active" if old.quantity == 10 else "suspended")
        assert new.term_start == now
        assert new.seat_lots.get().quantity == old.quantity
        assert AuditEntry.objects.filter(subscription=old, action="subscription.transferred").count() == 1
    # No refund at the source, no charge at the target.
    assert BillingLine.objects.count() == 0


@pytest.mark.rule("TF4")
def test_tf4_one_untransferable_subscription_transfers_none(transfer, subs, customer, source_sales, now):
    trial = factories.SubscriptionFactory(customer=customer, trial=True)
    before = snapshot()
    with pytest.raises(RuleViolation):
        transfers.complete_transfer(actor=source_sales, request_id=transfer.pk,
                                    subscription_ids=[subs[0].pk, trial.pk], now=now)
    assert snapshot() == before


@pytest.mark.rule("TF4")
def test_tf4_expired_request_is_refused(transfer, subs, source_sales, now):
    later = transfer.expires_at
    before = snapshot()
    with pytest.raises(RuleViolation) as error:
        transfers.complete_transfer(actor=source_sales, request_id=transfer.pk, subscription_ids=[subs[0].pk], now=later)
    assert error.value.conflict and "expired" in error.value.message
    assert snapshot() == before
    assert transfer.status_at(later) == "expired"


@pytest.mark.rule("TF4")
@pytest.mark.parametrize("who", ["target", "support"])
def test_tf4_wrong_side_or_support_agent_is_refused(who, transfer, subs, target_sales, direct_partner, now):
    actor = target_sales if who == "target" else factories.staff(direct_partner, "support_agent")
    before = snapshot()
    with pytest.raises(PermissionDenied):
        transfers.complete_transfer(actor=actor, request_id=transfer.pk, subscription_ids=[subs[0].pk], now=now)
    assert snapshot() == before


@pytest.mark.rule("TF3")
def test_tf3_the_whole_flow_through_the_pages(client, target_sales, source_sales, customer, direct_partner, subs, now):
    # TF1: the target sends a relationship request; the customer accepts on the demo page.
    client.force_login(target_sales)
    response = client.post(reverse("subscriptions:relationship-send"),
                           {"company_name": customer.company_name, "domain": customer.domain})
    assert response.status_code == 302
    relationship = RelationshipRequest.objects.get()
    assert client.post(reverse("subscriptions:relationship-accept", args=[relationship.pk])).status_code == 200
    relationship.refresh_from_db()
    # TF2: the target files the request.
    response = client.post(reverse("subscriptions:transfer-file"), {
        "customer": relationship.customer_id, "source_partner_id": direct_partner.partner_id,
        "notification_email": "it@example.com"})
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
    assert client.post(detail, {"subscriptions": [subs[0].pk]}).status_code == 302
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
    relationship = RelationshipRequest.objects.get()
    assert client.post(reverse("subscriptions:relationship-accept", args=[relationship.pk])).status_code == 404
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
    response = client.post(reverse("subscriptions:transfer-file"), {
        "customer": target_customer.pk, "source_partner_id": "0000000", "notification_email": "it@example.com"})
    assert response.status_code == 422
    assert "No partner has the PartnerID 0000000" in response.content.decode()
    assert not TransferRequest.objects.exists()


@pytest.mark.rule("TF4")
def test_tf4_submitting_nothing_picked_answers_422_with_the_reason(client, transfer, subs, source_sales):
    client.force_login(source_sales)
    response = client.post(reverse("subscriptions:transfer-detail", args=[transfer.pk]), {})
    assert response.status_code == 422
    assert "Pick at least one subscription" in response.content.decode()
    transfer.refresh_from_db()
    assert transfer.status == "pending"
