"""One access-queue message: dispatch it, and turn failures into backoff or a visible failed state.

Three outcomes besides success: a rate-limit wait is re-queued after the platform's
``retry_after`` without counting an attempt or touching the access state; a transient failure
is re-queued with exponential backoff (10 s doubling, capped at 15 min) and counted; a
permanent refusal is recorded (and remembered) where the creator sees it.
"""

from __future__ import annotations

import math
import random
from dataclasses import replace

from ..domain.errors import PermanentError, RateLimitedError, RetryableError
from ..ports import AccessWork, AccessWorkQueue, decode_work
from .access import AccessDispatcher, CatalogSnapshot, DispatchResult, Interrupted

BASE_DELAY = 10
MAX_DELAY = 900  # SQS DelaySeconds ceiling


def backoff_seconds(attempt: int, retry_after: float | None, jitter: float) -> int:
    """Exponential from 10 s, capped at 15 min; never sooner than the platform asked."""
    delay = min(MAX_DELAY, BASE_DELAY * (2**attempt))
    delay = int(delay * (0.75 + 0.5 * jitter))
    if retry_after:
        delay = max(delay, int(retry_after) + 1)
    return min(delay, MAX_DELAY)


def wait_seconds(retry_after: float | None, jitter: float) -> int:
    """A rate-limit wait: the platform's window plus up to a second, so waiters do not stampede."""
    return min(MAX_DELAY, max(1, math.ceil((retry_after or 1.0) + jitter)))


def handle_access_message(
    body: str,
    *,
    dispatcher: AccessDispatcher,
    queue: AccessWorkQueue,
    max_attempts: int,
    now: int,
    jitter: float | None = None,
    catalog: CatalogSnapshot | None = None,
) -> DispatchResult | None:
    work = decode_work(body)
    spread = random.random() if jitter is None else jitter
    try:
        result = dispatcher.dispatch(work, now, catalog)
    except PermanentError as error:
        dispatcher.record_failure(work, error, now, final=True)
        return None
    except RetryableError as error:
        cause = error.cause if isinstance(error, Interrupted) else error
        if isinstance(cause, RateLimitedError):
            # What the platform showed seconds ago still holds: the retry need not read it again.
            if isinstance(error, Interrupted):
                work = replace(work, observed=error.observed)
            # Waiting for a window is not a failure: same attempt, access state untouched.
            queue.send([work], delay_seconds=wait_seconds(cause.retry_after, spread))
            return None
        # After a failure the platform may have changed (the member left): read it again.
        work = replace(work, observed=None)
        final = work.attempt + 1 >= max_attempts
        dispatcher.record_failure(work, cause, now, final=final)
        if not final:
            # Re-queued with a delay instead of failing the message: the attempt count travels
            # with the work, so "gave up after N attempts" is reported rather than a silent DLQ.
            delay = backoff_seconds(work.attempt, cause.retry_after, spread)
            queue.send([replace(work, attempt=work.attempt + 1)], delay_seconds=delay)
        return None
    if result.follow_up:
        queue.send(list(result.follow_up), delay_seconds=backoff_seconds(0, None, spread))
    return result


__all__ = ["AccessWork", "backoff_seconds", "handle_access_message", "wait_seconds"]
