"""Typed errors: each says what went wrong and, for a creator or member, what to do next."""

from __future__ import annotations


class MembergateError(Exception):
    code = "error"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidRequestError(MembergateError):
    code = "invalid_request"

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


class NotFoundError(MembergateError):
    code = "not_found"


class ConflictError(MembergateError):
    code = "conflict"


class NoSubscriptionError(ConflictError):
    """The member has never started a subscription (no Stripe customer): no billing to manage."""

    code = "no_subscription"


class ReconcileRunningError(ConflictError):
    """Another reconciliation run holds the lease (``started_at``: when that run took it)."""

    code = "reconcile_running"

    def __init__(self, started_at: int, message: str | None = None):
        self.started_at = started_at
        super().__init__(message or (
            f"a reconciliation run is already going (started at epoch {started_at}): wait for it, then read "
            "GET /admin/reconcile/latest"))


class UnauthorizedError(MembergateError):
    code = "unauthorized"


class ForbiddenError(MembergateError):
    code = "forbidden"


class ThrottledError(MembergateError):
    code = "too_many_requests"

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


class IdentityRequiredError(MembergateError):
    code = "identity_required"


class SignatureError(MembergateError):
    """The Stripe-Signature header is missing, malformed, stale or matches no secret."""

    code = "invalid_signature"


class MalformedEventError(MembergateError):
    code = "malformed_event"


class RetryableError(MembergateError):
    """A dependency failed in a way that may succeed later (5xx, 429, timeout)."""

    code = "retryable"

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(MembergateError):
    """A dependency refused in a way that retrying cannot fix; ``reason`` is stable and shown."""

    code = "permanent"

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


class ConcurrentUpdateError(RetryableError):
    code = "concurrent_update"


class RateLimitedError(RetryableError):
    """A platform asked us to wait ``retry_after`` seconds: a wait, not a failed attempt."""

    code = "rate_limited"


class AlreadyUndoneError(ConflictError):
    """A removal was already undone: its access is back through the grant the undo gave."""

    code = "already_undone"


class UndoWindowClosedError(ConflictError):
    """A removal is older than the undo window: the creator gives a grant instead."""

    code = "undo_window_closed"


class SoldOutError(ConflictError):
    """Every seat of a plan is taken (or held by an open checkout)."""

    code = "sold_out"


class CurrencyMismatchError(ConflictError):
    """A switch onto a price in another currency than the subscription's: Stripe cannot change it.

    ``plan_name``/``currency`` let a member page say it in the member's language; ``has_price``
    says whether the target tier has a price in that currency to pick instead."""

    code = "currency_mismatch"

    def __init__(self, message: str, *, plan_name: str, currency: str, has_price: bool):
        super().__init__(message)
        self.plan_name = plan_name
        self.currency = currency
        self.has_price = has_price


class AlreadyHeldError(ConflictError):
    """The member already has the plan they asked to buy or switch to (a stale page, a second tab)."""

    code = "already_held"

    def __init__(self, message: str, *, plan_name: str):
        super().__init__(message)
        self.plan_name = plan_name


class PaymentSettlingError(ConflictError):
    """A payment for this offer is still being confirmed (SEPA, 3-D Secure): a switch waits for it."""

    code = "payment_settling"


class WaiverRequiredError(InvalidRequestError):
    """A new checkout without the join page's waiver box ticked, on a deployment whose Checkout shows no
    terms box (no TermsUrl): EU law needs the member's express consent before access starts at once."""

    code = "waiver_required"

    def __init__(self, message: str):
        super().__init__(message, field="waiver")
