"""Purchase: the whole cart becomes one order, all or nothing (K3, K9), fulfilled in the background."""

from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils.translation import gettext, gettext_noop

from catalog.cart import additional_reseller_refusal, check_line, resolve_reseller
from catalog.eligibility import buying_context, subscription_limit_refusal
from catalog.models import Cart, Order, OrderAdditionalReseller, OrderLine
from portal.access import Action, require
from portal.errors import RuleViolation, RuleViolations
from portal.models import Customer
from portal.versions import bump_version, check_version
from subscriptions.audit import money, record, said
from subscriptions.services import fulfill_order_task, quoted_first_charge


def line_first_charge(line, today) -> Decimal:
    """A cart line's first charge: unit × quantity, prorated by the day when aligned short (K11)."""
    charge = quoted_first_charge(
        availability=line.availability, quantity=line.quantity, aligned_end_date=line.aligned_end_date, today=today
    )
    return charge.amount if charge else Decimal("0.00")


def attestation_text(cart: Cart) -> str:
    """K3, in the portal's own words; the page shows it and the order records which applied."""
    return gettext(
        "I confirm that my organisation acts as an indirect partner in this purchase when a reseller "
        "is selected, and as a direct partner when no reseller is selected."
    )


UNCHANGED = object()


def purchase(
    *, cart: Cart, actor, attested: bool | None, now: datetime, reseller_id=UNCHANGED, version: int | str | None = None
) -> tuple[Order, bool]:
    """Turns the cart into one order. Returns (order, created).

    `attested`: the page's confirmation at purchase; None, the attestation the cart carries (`set_attestation`, the
    API's), read from the locked row.

    Submitting an already purchased cart again returns its order: the cart row is locked first,
    so two submissions at once buy once (K9), and the database's one-order-per-cart constraint
    backs it. `reseller_id`, when given, is the indirect reseller shown on the submitted page: it is
    applied in the same transaction, so what the partner saw is what is bought (K4).
    """
    member = require(actor, Action.BUY)
    with transaction.atomic():
        cart = Cart.objects.select_for_update(of=("self",)).select_related("customer", "reseller").get(pk=cart.pk)
        if cart.status == Cart.Status.PURCHASED:
            return cart.order, False
        # What is bought is what the page showed: a line added or changed from another tab since makes it stale.
        check_version(cart, version, noun="cart")
        bump_version(cart)
        if cart.is_past_its_time(now):  # K12
            raise RuleViolation(
                "K12",
                gettext("This cart expired on %(time)s: add the offers again.")
                % {"time": f"{cart.expires_at:%Y-%m-%d %H:%M} UTC"},
                conflict=True,
            )
        if reseller_id is not UNCHANGED and reseller_id != cart.reseller_id:
            cart.reseller = resolve_reseller(member.partner, reseller_id)
            cart.save(update_fields=["reseller"])
        # K3: without the confirmation nothing is bought.
        if attested is None:
            attested = cart.attestation_accepted
        if not attested:
            raise RuleViolation("K3", gettext("Confirm the attestation before purchasing."), field="attest")
        lines = list(
            cart.lines.select_related("availability__sku__product__publisher").prefetch_related(
                "availability__sku__base_skus", "availability__sku__exclusive_partners"
            )
        )
        if not lines:
            raise RuleViolation("K9", gettext("The cart is empty: add an offer first."))
        # Two carts of one customer bought at once must not both pass the customer-wide limits
        # (C4a, K8): purchases of one customer take their turn on the customer row.
        Customer.objects.select_for_update().filter(pk=cart.customer_id).first()
        ctx = buying_context(cart.customer, member.partner)
        errors: dict = {}
        for line in lines:
            try:
                check_line(
                    cart=cart,
                    availability=line.availability,
                    quantity=line.quantity,
                    aligned_end_date=line.aligned_end_date,
                    today=now.date(),
                    ctx=ctx,
                    line_pk=line.pk,
                    lines=lines,
                )
            except RuleViolation as violation:
                errors[line.pk] = violation
        # K4: the reseller must still be one of this provider's resellers, with a signed MPA.
        if cart.reseller_id:
            try:
                resolve_reseller(member.partner, cart.reseller_id)
            except RuleViolation as violation:
                errors["reseller"] = violation
        too_many = subscription_limit_refusal(ctx, len(lines))
        if too_many:
            errors["cart"] = RuleViolation(too_many.rule, too_many.message)
        additional = list(cart.additional_resellers.select_related("partner"))
        for index, entry in enumerate(additional):
            why = additional_reseller_refusal(
                cart, member.partner, entry.partner, entry.partner.partner_id, [a.partner for a in additional[:index]]
            )
            if why:
                errors[f"reseller-{entry.partner_id}"] = RuleViolation("K5", why)
        if errors:
            raise RuleViolations(errors)

        currency = lines[0].availability.currency
        charges = {line.pk: line_first_charge(line, now.date()) for line in lines}
        order = Order.objects.create(
            customer=cart.customer,
            cart=cart,
            placed_by=actor,
            created_at=now,
            currency=currency,
            total=sum(charges.values(), Decimal("0.00")),
            attested_as=Order.Attestation.INDIRECT if cart.reseller_id else Order.Attestation.DIRECT,
            reseller=cart.reseller,
        )
        OrderLine.objects.bulk_create(
            [
                OrderLine(
                    order=order,
                    availability=line.availability,
                    sku=line.availability.sku,
                    quantity=line.quantity,
                    term=line.availability.term,
                    billing_frequency=line.availability.billing_frequency,
                    unit_price=line.availability.unit_price,
                    currency=line.availability.currency,
                    aligned_end_date=line.aligned_end_date,
                    first_charge=charges[line.pk],
                )
                for line in lines
            ]
        )
        OrderAdditionalReseller.objects.bulk_create(
            [OrderAdditionalReseller(order=order, partner=a.partner, position=a.position) for a in additional]
        )
        cart.status = Cart.Status.PURCHASED
        cart.save(update_fields=["status"])
        record(
            actor=actor,
            at=now,
            customer=cart.customer,
            order=order,
            action="order.placed",
            summary=said(
                gettext_noop("Placed %(order)s: %(count)s line(s), %(total)s"),
                order=order.number,
                count=len(lines),
                total=money(order.total, order.currency),
            ),
            after={
                "order": order.number,
                "total": str(order.total),
                "attested_as": order.attested_as,
                "reseller": cart.reseller.partner_id if cart.reseller else None,
                "additional_resellers": [a.partner.partner_id for a in additional],
            },
        )
        order_id = order.pk
        transaction.on_commit(lambda: fulfill_order_task.enqueue(order_id))
        return order, True
