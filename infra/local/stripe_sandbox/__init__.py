"""The local Stripe sandbox: Stripe's API subset, hosted pages, billing controls and signed webhooks, in process.

Modules: ``objects`` (what it stores), ``engine`` (billing without HTTP, with its parts ``payments``
(one-time payments, refunds, disputes), ``items`` (plan changes with prorations) and ``clock``
(renewals, trial ends and retries as time passes, like a Stripe test clock) and ``render`` (objects
in an API version's shapes)), ``api`` (``/v1/...``),
``pages`` (pay page, hosted invoice, customer portal), ``controls`` (``/_control/...``),
``delivery`` (signed webhooks), ``shapes`` (payloads in Stripe's shapes per API version), ``sdk``
(the stripe SDK in process), ``app`` (all of it as one WSGI app).
"""

from .api import MAX_SESSION_SECONDS, MIN_SESSION_SECONDS, parse_form
from .app import StripeSandbox
from .delivery import SignedDelivery, signed_delivery
from .engine import (
    DEFAULT_CURRENCY,
    DEFAULT_UNIT_AMOUNT,
    OUTCOMES,
    PORTAL_ACTIONS,
    RETRY_DELAYS_DAYS,
    BillingEngine,
)
from .errors import SandboxError
from .items import PRORATION_BEHAVIORS
from .objects import DAY, ENDED_STATUSES, PAYMENT_METHOD_BEHAVIOURS, has_ended, shift
from .payments import DISPUTE_OUTCOMES
from .sdk import WsgiStripeHttpClient

__all__ = [
    "DAY",
    "DEFAULT_CURRENCY",
    "DEFAULT_UNIT_AMOUNT",
    "DISPUTE_OUTCOMES",
    "ENDED_STATUSES",
    "MAX_SESSION_SECONDS",
    "MIN_SESSION_SECONDS",
    "OUTCOMES",
    "PAYMENT_METHOD_BEHAVIOURS",
    "PORTAL_ACTIONS",
    "PRORATION_BEHAVIORS",
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
