"""A time limit a use case puts on the platform calls made under it, which the adapters honour per request.

GET /admin/health must answer inside the admin function's 15 s whatever a platform does, but the
preflight behind it is several calls deep in an adapter. The use case says how long is left with
``within(remaining)``; each adapter request then waits at most ``request_timeout(its own timeout)``
and sleeps on a rate limit only when ``may_wait(seconds)``. Outside ``within`` nothing changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from .domain.errors import RetryableError

_remaining: ContextVar[Callable[[], float] | None] = ContextVar("membergate_deadline", default=None)


class DeadlineExceededError(RetryableError):
    """The time the caller gave is used up before a request could be sent."""

    code = "deadline_exceeded"


@contextmanager
def within(remaining: Callable[[], float]) -> Iterator[None]:
    """Run the block with ``remaining()`` (seconds, may go negative) as the time left for platform calls."""
    token = _remaining.set(remaining)
    try:
        yield
    finally:
        _remaining.reset(token)


def time_left() -> float | None:
    """Seconds left under the innermost ``within``, or None when no deadline applies."""
    remaining = _remaining.get()
    return None if remaining is None else remaining()


def request_timeout(default: float, what: str) -> float:
    """The timeout for one request: ``default``, or less when the deadline is nearer; raises once it passed."""
    left = time_left()
    if left is None:
        return default
    if left <= 0:
        raise DeadlineExceededError(f"no time left to call {what}")
    return min(default, left)


def may_wait(seconds: float) -> bool:
    """Whether a sleep of ``seconds`` (a rate limit's wait) still leaves time for the request after it."""
    left = time_left()
    return left is None or seconds < left
