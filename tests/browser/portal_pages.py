"""The portal's main pages, with data that fills their widest columns, for the layout and accessibility tests.

An indirect provider's sales agent (so the subscription lists carry the Reseller column) serving one customer with
several subscriptions: a long friendly name, a reseller of record, licenses still inside their removal window (the
list's "Reduce until" badge), a trial; an order with two lines, a cart with one line.
"""

from dataclasses import dataclass
from datetime import timedelta

from playwright.sync_api import Page, expect

from tests import factories
from tests.browser.conftest import NOW, e3_subscription, make_offer

SCREENSHOTS_DIR = "test-results/screenshots"


@dataclass
class PortalData:
    agent: object
    customer: object
    subscription: object
    older: object  # bought 200 days ago: past its cancellation window, some of its actions disabled with a reason
    order: object

    def pages(self) -> list[tuple[str, str]]:
        """(name, path) of every main page, in the order a partner meets them."""
        c, s, o = self.customer.pk, self.subscription.pk, self.order.pk
        return [
            ("home", "/"),
            ("customers", "/customers/"),
            ("customer-subscriptions", f"/customers/{c}/subscriptions/"),
            ("subscription", f"/customers/{c}/subscriptions/{s}/"),
            ("subscription-older", f"/customers/{c}/subscriptions/{self.older.pk}/"),
            ("all-subscriptions", "/subscriptions/"),
            ("renewals", "/renewals/"),
            ("catalog", f"/customers/{c}/add-subscription/"),
            ("cart", f"/customers/{c}/cart/"),
            ("orders", "/orders/"),
            ("customer-orders", f"/customers/{c}/orders/"),
            ("order", f"/customers/{c}/orders/{o}/"),
            ("transfers", "/transfers/"),
            ("account", f"/customers/{c}/account/"),
            ("activity", f"/customers/{c}/activity/"),
            ("add-customer", "/customers/new/"),
            # the top bar's search: its groups (subscriptions and offers held; orders)
            ("search", "/search/?q=e3"),
            ("search-order", f"/search/?q=ORD-{o}"),
        ]

    def subscription_path(self) -> str:
        return f"/customers/{self.customer.pk}/subscriptions/{self.subscription.pk}/"


# The subscription page's side panels, by the name of their command-bar button.
SIDE_PANELS = ["Change licenses", "Manage renewal"]


def make_portal_data() -> PortalData:
    provider = factories.PartnerFactory(kind="indirect_provider", name="Northwind Distribution", country="US")
    reseller = factories.ResellerLinkFactory(
        provider=provider, reseller__name="Adatum Reseller Services International", reseller__country="US"
    ).reseller
    agent = factories.staff(provider, "sales_agent")
    customer = factories.CustomerFactory(
        partner=provider, company_name="Alpine Ski House Holdings Incorporated", billing_country="US"
    )
    factories.CustomerFactory(partner=provider, company_name="Fabrikam Ltd", billing_country="US")
    e3 = make_offer("Microsoft 365 E3", prices=[("P1Y", "monthly", "10.00"), ("P1M", "monthly", "12.00")])
    standard = make_offer("Microsoft 365 Business Standard", category="small_business")
    make_offer("Microsoft 365 Business Basic", category="small_business")
    make_offer("Fabrikam Backup for Microsoft 365 Enterprise Edition", isv=True)
    # bought 2 days ago: its licenses can still be removed (the list shows until when)
    subscription = e3_subscription(
        customer,
        e3=e3,
        started=NOW - timedelta(days=2),
        quantity=1250,
        friendly_name="Head office and regional sales teams, northern hemisphere",
        reseller=reseller,
    )
    older = factories.subscribe(customer, standard, started=NOW - timedelta(days=200), term="P1M", reseller=reseller)
    factories.start_trial(customer, started=NOW - timedelta(days=3))
    order = factories.OrderFactory(customer=customer, placed_by=agent, created_at=NOW - timedelta(days=2))
    factories.OrderLineFactory(order=order, availability=factories.availability(e3, "P1Y"))
    factories.OrderLineFactory(order=order, availability=factories.availability(standard, "P1M"), quantity=5)
    cart = factories.CartFactory(customer=customer, owner=agent, created_at=NOW - timedelta(hours=1))
    factories.CartLineFactory(cart=cart, availability=factories.availability(standard, "P1M"), quantity=3)
    return PortalData(agent=agent, customer=customer, subscription=subscription, older=older, order=order)


def open_side_panel(page: Page, name: str):
    """Opens a subscription's side panel from its command bar and returns it once it has slid in."""
    page.get_by_role("toolbar", name="Subscription actions").get_by_role("link", name=name).click()
    panel = page.locator(".side-panel.open")
    expect(panel).to_be_visible()
    return panel
