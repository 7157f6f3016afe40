"""One function per action on subscriptions. Each: keyword-only, `now` passed in, one transaction, rows locked before
their state is checked, audited.

A package by concern, over a small kernel that imports none of the others (the import-linter contract in
pyproject.toml):

- kernel: the lock, the one status transition, billing lines and charges, seat lots, the billing period
- fulfilment: an order's lines become subscriptions, provisioning, the publisher's set-up; their background tasks
- quantity: changing the number of licenses now
- status: suspend, reactivate, cancel, auto-renew, rename
- addons: add-ons bought on a base subscription
- upgrades: moving licenses to a higher SKU now
- conversions: converting a trial, now or at its end
- renewal: the changes scheduled for the next term

Callers use `from subscriptions import services; services.change_quantity(...)`: the names below are the package's.
"""

from .addons import buy_addons, eligible_addons
from .conversions import (
    ConversionPlan,
    ConversionResult,
    ConversionTarget,
    ConversionTiming,
    conversion_targets,
    conversion_timings,
    convert_trial_now,
    plan_conversion,
    schedule_trial_conversion,
    scheduled_conversion_refusal,
    trial_converts_to,
)
from .fulfilment import (
    confirm_publisher_setup,
    create_subscription_for_line,
    fulfill_order,
    fulfill_order_task,
    provision_subscription,
    provision_subscription_task,
    quoted_first_charge,
)
from .kernel import (
    BILLED,
    REMOVAL_WINDOW,
    bill,
    current_period,
    delete_scheduled_changes,
    first_charge,
    lock_subscription,
    open_seat_lot,
    transition,
)
from .quantity import QuantityPlan, change_quantity, plan_quantity_change
from .renewal import (
    NATURAL_END,
    RENEWAL_FIELDS,
    check_renewal_alignment,
    check_renewal_upgrade,
    remove_scheduled_change,
    renewal_starts_on,
    renewal_upgrade_reassignment,
    renewal_upgrade_reassignment_said,
    renewal_values,
    schedule_renewal_change,
)
from .status import (
    cancel_subscription,
    cancellation_refund,
    reactivate_subscription,
    rename_subscription,
    set_auto_renew,
    suspend_subscription,
)
from .upgrades import (
    ExistingTarget,
    UpgradePlan,
    UpgradeTarget,
    plan_upgrade,
    supported_paths,
    upgrade_path,
    upgrade_subscription,
    upgrade_targets,
)

__all__ = [
    # kernel
    "BILLED",
    "REMOVAL_WINDOW",
    "bill",
    "current_period",
    "delete_scheduled_changes",
    "first_charge",
    "lock_subscription",
    "open_seat_lot",
    "transition",
    # fulfilment
    "confirm_publisher_setup",
    "create_subscription_for_line",
    "fulfill_order",
    "fulfill_order_task",
    "provision_subscription",
    "provision_subscription_task",
    "quoted_first_charge",
    # quantity
    "QuantityPlan",
    "change_quantity",
    "plan_quantity_change",
    # status
    "cancel_subscription",
    "cancellation_refund",
    "reactivate_subscription",
    "rename_subscription",
    "set_auto_renew",
    "suspend_subscription",
    # add-ons
    "buy_addons",
    "eligible_addons",
    # upgrades
    "ExistingTarget",
    "UpgradePlan",
    "UpgradeTarget",
    "plan_upgrade",
    "supported_paths",
    "upgrade_path",
    "upgrade_subscription",
    "upgrade_targets",
    # conversions
    "ConversionPlan",
    "ConversionResult",
    "ConversionTarget",
    "ConversionTiming",
    "conversion_targets",
    "conversion_timings",
    "convert_trial_now",
    "plan_conversion",
    "schedule_trial_conversion",
    "scheduled_conversion_refusal",
    "trial_converts_to",
    # renewal
    "NATURAL_END",
    "RENEWAL_FIELDS",
    "check_renewal_alignment",
    "check_renewal_upgrade",
    "remove_scheduled_change",
    "renewal_starts_on",
    "renewal_upgrade_reassignment",
    "renewal_upgrade_reassignment_said",
    "renewal_values",
    "schedule_renewal_change",
]
