"""Helpers shared by the tests."""

from catalog.models import Cart


def drawn(obj, data=None) -> dict:
    """Form data as the page of `obj` (a subscription, a cart, a transfer) draws it: with the version it shows now
    (portal/versions.py), as a person's browser posts it back."""
    version = type(obj)._default_manager.filter(pk=obj.pk).values_list("version", flat=True).first()
    return {"version": str(version or 1), **(data or {})}


def cart_drawn(customer, data=None) -> dict:
    """Form data as the customer's cart page (or catalog) draws it: with the open cart's version, 0 when none."""
    version = Cart.objects.filter(customer=customer, status=Cart.Status.OPEN).values_list("version", flat=True).first()
    return {"version": str(version or 0), **(data or {})}
