"""Two partners with one row of everything, for the admin-scoping tests (issue 9, finding 4).

Alpha and Zeta are indirect providers, each with its own reseller, customer, cart, order, subscriptions,
audit entries and a staff member. Every name of Zeta's contains "zeta" (in any case), so a page shown to Alpha's
staff can be searched for any of it; `rows[token][model]` holds the primary keys of the rows built for that partner, found by
what each partner's block added to every table (not by the scoping under test).
"""

import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from django.apps import apps
from django.contrib.auth.models import Group, Permission, User
from django_tasks_db.models import DBTaskResult

from api.models import ApiToken, ClosingWindowNotice, PartnerRate, RequestRecord, WebhookDelivery, WebhookEndpoint
from catalog.models import (
    Availability,
    CartAdditionalReseller,
    OrderAdditionalReseller,
    Product,
    Publisher,
    Sku,
    UpgradePath,
)
from portal.models import Partner
from subscriptions.audit import record
from tests import factories

# What partner staff see of each registered model, decided per model (portal.admin_site.PartnerStaff): the
# catalog belongs to no partner (SHARED: viewed, never changed); these are the platform's (OPERATOR_ONLY: hidden).
# Every other registered model is a partner's own. A newly registered model lands in "own" and fails the tests
# until the world below builds a row of it for each partner, or it joins one of these lists.
SHARED = {Publisher, Product, Sku, Availability, UpgradePath}
# The API's tokens, replayed answers and rates, and the webhooks' notices: the operator's (staff manage their own
# tokens from the user menu). Their webhook endpoints and delivery logs are their own, read here too.
OPERATOR_ONLY = {
    User,
    Group,
    DBTaskResult,
    ApiToken,
    PartnerRate,
    RequestRecord,
    ClosingWindowNotice,
}

ZETA = "Zeta"
TENANT_APPS = {"portal", "catalog", "subscriptions", "auth", "api"}


def table_pks() -> dict:
    return {
        m: set(m._default_manager.values_list("pk", flat=True))
        for m in apps.get_models()
        if m._meta.app_label in TENANT_APPS
    }


@dataclass
class World:
    partners: dict = field(default_factory=dict)
    staff: dict = field(default_factory=dict)
    resellers: dict = field(default_factory=dict)
    reseller_staff: dict = field(default_factory=dict)
    subscriptions: dict = field(default_factory=dict)
    rows: dict = field(default_factory=dict)
    operator: User | None = None
    exclusive_sku: Sku | None = None

    def own(self, token: str, model) -> set:
        return self.rows[token].get(model, set())


def admin_staff(partner: Partner, username: str, **roles):
    """A staff member of `partner` with Django admin access and every model permission: the scoping must hold even
    for the most permissions a partner's staff member can be given."""
    user = factories.UserFactory(username=username, first_name=username.split("-")[0].title(), is_staff=True)
    factories.MembershipFactory(
        user=user,
        partner=partner,
        **(roles or dict.fromkeys(("is_admin_agent", "is_sales_agent", "is_billing_admin", "is_support_agent"), True)),
    )
    user.user_permissions.set(Permission.objects.all())
    return User.objects.get(pk=user.pk)  # without cached permissions or membership


def build_world() -> World:
    world = World()
    world.operator = factories.UserFactory(username="platform-operator", is_staff=True, is_superuser=True)
    # The catalog is shared; one offer is exclusive to Zeta (C4e), which Alpha's staff must not be told.
    skus = [factories.SkuFactory() for _ in range(2)]
    for sku in skus:
        UpgradePath.objects.create(source=sku, target=skus[-1] if sku is skus[0] else skus[0])
    world.exclusive_sku = factories.SkuFactory(isv=True)
    # Resellers are built outside the partners' blocks: a provider's Partner row is its own, not its reseller's.
    for token in ("Alpha", ZETA):
        reseller = world.resellers[token] = factories.PartnerFactory(
            kind=Partner.Kind.INDIRECT_RESELLER, name=f"{token} Resale"
        )
        world.reseller_staff[token] = admin_staff(reseller, f"{token}-resale-staff")
    for token, sku in (("Alpha", skus[0]), (ZETA, skus[1])):
        before = table_pks()
        _partner_block(world, token, sku)
        after = table_pks()
        world.rows[token] = {m: after[m] - before[m] for m in after if after[m] - before[m]}
    world.exclusive_sku.exclusive_partners.add(world.partners[ZETA])
    return world


def _partner_block(world: World, token: str, sku: Sku) -> None:
    lower = token.lower()
    partner = factories.PartnerFactory(kind=Partner.Kind.INDIRECT_PROVIDER, name=f"{token} Distribution")
    reseller = world.resellers[token]
    world.partners[token] = partner
    factories.ResellerLinkFactory(provider=partner, reseller=reseller)
    staff = world.staff[token] = admin_staff(partner, f"{token}-staff")
    customer = factories.CustomerFactory(
        partner=partner, company_name=f"{token} Customer Ltd", domain=f"{lower}.example", reseller=reseller
    )
    offer = factories.availability(sku)
    cart = factories.CartFactory(customer=customer, owner=staff, reseller=reseller)
    factories.CartLineFactory(cart=cart, availability=offer)
    CartAdditionalReseller.objects.create(cart=cart, partner=reseller, position=1)
    order = factories.OrderFactory(customer=customer, placed_by=staff, reseller=reseller)
    line = factories.OrderLineFactory(order=order, availability=offer)
    OrderAdditionalReseller.objects.create(order=order, partner=reseller, position=1)
    # One subscription sold through the reseller (it is reseller of record), one sold direct.
    resold = factories.SubscriptionFactory(
        customer=customer,
        sku=sku,
        availability=offer,
        reseller=reseller,
        order_line=line,
        friendly_name=f"{token} resold",
        auto_renew=True,
    )
    direct = factories.SubscriptionFactory(
        customer=customer, sku=sku, availability=offer, friendly_name=f"{token} direct", auto_renew=True
    )
    world.subscriptions[token] = {"resold": resold, "direct": direct}
    for subscription in (resold, direct):
        factories.BillingLineFactory(subscription=subscription)
        factories.SeatLotFactory(subscription=subscription, added_at=factories.BASE_TIME - timedelta(days=1))
        factories.ScheduledChangeFactory(subscription=subscription)
        record(
            actor=staff,
            at=factories.BASE_TIME,
            customer=customer,
            subscription=subscription,
            action="subscription.renamed",
            summary=f"{token}: renamed",
        )
    endpoint = WebhookEndpoint.objects.create(
        partner=partner,
        url=f"https://{lower}.example/hooks",
        events=["subscription-updated"],
        secret=f"{token}-webhook-secret-of-length",
        created_at=factories.BASE_TIME,
        created_by=staff,
        created_from=uuid.uuid4(),
    )
    WebhookDelivery.objects.create(
        endpoint=endpoint,
        event_id=uuid.uuid4(),
        event="subscription-updated",
        source=f"test:{lower}",
        payload={"Summary": f"{token}: renamed"},
        created_at=factories.BASE_TIME,
    )
    record(
        actor=staff,
        at=factories.BASE_TIME,
        customer=customer,
        order=order,
        action="order.placed",
        summary=f"{token}: order placed",
    )
