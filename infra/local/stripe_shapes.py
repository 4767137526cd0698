"""Former home of the sandbox's Stripe payload builders, kept so existing imports keep working.

The builders live in ``infra.local.stripe_sandbox.shapes``; import them from there in new code.
"""

from infra.local.stripe_sandbox.shapes import (
    NEW_SHAPES_SINCE,
    PORTAL_AFTER_EXPIRATION_SINCE,
    ZERO_DECIMAL_CURRENCIES,
    ItemSpec,
    LineSpec,
    default_api_version,
    format_amount,
    is_new_shape,
    make_checkout_session,
    make_customer,
    make_customer_details,
    make_event,
    make_invoice,
    make_invoice_line,
    make_plan,
    make_portal_session,
    make_price,
    make_product,
    make_subscription,
    make_subscription_item,
    new_id,
    previous_attributes,
)

__all__ = [
    "NEW_SHAPES_SINCE",
    "PORTAL_AFTER_EXPIRATION_SINCE",
    "ZERO_DECIMAL_CURRENCIES",
    "ItemSpec",
    "LineSpec",
    "default_api_version",
    "format_amount",
    "is_new_shape",
    "make_checkout_session",
    "make_customer",
    "make_customer_details",
    "make_event",
    "make_invoice",
    "make_invoice_line",
    "make_plan",
    "make_portal_session",
    "make_price",
    "make_product",
    "make_subscription",
    "make_subscription_item",
    "new_id",
    "previous_attributes",
]
