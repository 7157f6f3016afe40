"""Background work. Tasks read the clock (they are the edge) and call idempotent services."""

from django.tasks import task
from django.utils import timezone


@task
def fulfill_order_task(order_id: int) -> None:
    from .services import fulfill_order

    fulfill_order(order_id=order_id, now=timezone.now())


@task
def provision_subscription_task(subscription_id: str) -> None:
    from .services import provision_subscription

    provision_subscription(subscription_id=subscription_id, now=timezone.now())
