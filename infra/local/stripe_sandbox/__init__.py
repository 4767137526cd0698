"""The local Stripe sandbox: Stripe's API subset, hosted pages, billing controls and signed webhooks, in process.

Modules: ``objects`` (what it stores), ``engine`` (billing without HTTP), ``api`` (``/v1/...``),
``pages`` (pay page, hosted invoice, customer portal), ``controls`` (``/_control/...``),
``delivery`` (signed webhooks), ``shapes`` (payloads in Stripe's shapes per API version), ``sdk``
(the stripe SDK in process), ``app`` (all of it as one WSGI app).
"""

from .api import MAX_SESSION_SECONDS, MIN_SESSION_SECONDS, parse_form
from .app import StripeSandbox
from .delivery import SignedDelivery, signed_delivery
from .engine import (
    AUTO_PRICE_NOTE,
    DEFAULT_CURRENCY,
    DEFAULT_UNIT_AMOUNT,
    NOTE_KEY,
    OUTCOMES,
    PORTAL_ACTIONS,
    RETRY_DELAYS_DAYS,
    BillingEngine,
)
from .errors import SandboxError
from .objects import DAY, ENDED_STATUSES, has_ended, shift
from .sdk import WsgiStripeHttpClient

__all__ = [
    "AUTO_PRICE_NOTE",
    "DAY",
    "DEFAULT_CURRENCY",
    "DEFAULT_UNIT_AMOUNT",
    "ENDED_STATUSES",
    "MAX_SESSION_SECONDS",
    "MIN_SESSION_SECONDS",
    "NOTE_KEY",
    "OUTCOMES",
    "PORTAL_ACTIONS",
    "RETRY_DELAYS_DAYS",
    "BillingEngine",
    "SandboxError",
    "SignedDelivery",
    "StripeSandbox",
    "WsgiStripeHttpClient",
    "has_ended",
    "parse_form",
    "shift",
    "signed_delivery",
]
