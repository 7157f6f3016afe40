"""Add-ons bought on a base subscription's page (A1–A5): which are offered, and buying them."""

from datetime import datetime

from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from catalog.eligibility import addons_for
from portal.access import Action, require
from portal.errors import RuleViolation

from .. import audit, checks
from ..models import Subscription
from ..pricing import remaining_charge
from .kernel import (
    REMOVAL_WINDOW,
    check_quantity_sold,
    current_period,
    lock_subscription,
    new_subscription,
    start_subscription,
)


def eligible_addons(base: Subscription):
    """A3: the traditional add-ons the base subscription can have (catalog.eligibility.addons_for), each a Sku with
    its product, publisher and availabilities."""
    return addons_for(base)


def buy_addons(
    *, subscription_id, actor, version: int | str | None = None, quantities: dict[int, int], now: datetime
) -> list[Subscription]:
    """A1–A5: add-ons bought from the base subscription's page, ending with it, first charge prorated."""
    require(actor, Action.BUY)  # A2
    wanted = {sku_id: q for sku_id, q in quantities.items() if q}
    if not wanted:
        raise RuleViolation("A1", _("Enter a quantity for at least one add-on."), field="quantity")
    with transaction.atomic():
        base = lock_subscription(subscription_id, version, actor)
        checks.check_buy_addons(base, actor, now)
        offered = {sku.pk: sku for sku in eligible_addons(base)}
        created = []
        today = now.date()
        period = current_period(base, today)
        for sku_id, quantity in wanted.items():
            sku = offered.get(sku_id)
            if sku is None:  # A3
                raise RuleViolation("A3", _("That add-on is not available for this subscription."))
            check_quantity_sold(sku, quantity)
            availabilities = list(sku.availabilities.all())
            availability = next(
                (a for a in availabilities if a.term == base.term and a.billing_frequency == base.billing_frequency),
                None,
            )
            if availability is None:
                raise RuleViolation(
                    "A3",
                    _("%(offer)s is not sold for a %(term)s term billed %(frequency)s.")
                    % {
                        "offer": sku.name,
                        "term": base.get_term_display().lower(),
                        "frequency": base.get_billing_frequency_display().lower(),
                    },
                )
            # A5: coterminous with its base, billed on the base's periods for the rest of the current one.
            charge = remaining_charge(unit_price=availability.unit_price, quantity=quantity, period=period, today=today)
            addon = start_subscription(
                new_subscription(
                    base.customer,
                    availability,
                    quantity=quantity,
                    term_start=now,
                    term_end=base.term_end,
                    auto_renew=base.auto_renew,
                    reseller=base.reseller,
                    now=now,
                    base_subscription=base,
                ),
                now=now,
                charge=charge,
                # Q2: the add-on's licenses can be removed for 7 days, like any bought licenses.
                window=REMOVAL_WINDOW if sku.is_license_based else None,
            )
            audit.record(
                actor=actor,
                at=now,
                customer=base.customer,
                subscription=addon,
                action="subscription.addon_bought",
                summary=audit.said(
                    gettext_noop("Bought %(quantity)s × %(offer)s on %(base)s, ending %(term_end)s"),
                    quantity=quantity,
                    offer=sku.name,
                    base=base.display_name,
                    term_end=base.term_end,
                ),
                after={"quantity": quantity, "term_end": base.term_end.isoformat(), "charge": str(charge.amount)},
            )
            # and on the base's own trail, where the purchase was made
            audit.record(
                actor=actor,
                at=now,
                customer=base.customer,
                subscription=base,
                action="subscription.addon_added",
                summary=audit.said(
                    gettext_noop("Add-on bought: %(quantity)s × %(offer)s"), quantity=quantity, offer=sku.name
                ),
                after={"addon": str(addon.pk), "quantity": quantity, "charge": str(charge.amount)},
            )
            created.append(addon)
    return created
