"""One access-queue message: dispatch it, and turn failures into backoff or a visible failed state."""

from __future__ import annotations

import random
from dataclasses import replace

from ..domain.errors import PermanentError, RetryableError
from ..ports import AccessWorkQueue, decode_work
from .access import AccessDispatcher, DispatchResult

BASE_DELAY = 10
MAX_DELAY = 900  # SQS DelaySeconds ceiling


def backoff_seconds(attempt: int, retry_after: float | None, jitter: float) -> int:
    """Exponential from 10 s, capped at 15 min; never sooner than the platform asked."""
    delay = min(MAX_DELAY, BASE_DELAY * (2**attempt))
    delay = int(delay * (0.75 + 0.5 * jitter))
    if retry_after:
        delay = max(delay, int(retry_after) + 1)
    return min(delay, MAX_DELAY)


def handle_access_message(
    body: str,
    *,
    dispatcher: AccessDispatcher,
    queue: AccessWorkQueue,
    max_attempts: int,
    now: int,
    jitter: float | None = None,
) -> DispatchResult | None:
    work = decode_work(body)
    try:
        return dispatcher.dispatch(work, now)
    except PermanentError as error:
        dispatcher.record_failure(work, error, now, final=True)
        return None
    except RetryableError as error:
        final = work.attempt + 1 >= max_attempts
        dispatcher.record_failure(work, error, now, final=final)
        if not final:
            # Re-queued with a delay instead of failing the message: the attempt count travels
            # with the work, so "gave up after N attempts" is reported rather than a silent DLQ.
            delay = backoff_seconds(work.attempt, error.retry_after, random.random() if jitter is None else jitter)
            queue.send([replace(work, attempt=work.attempt + 1)], delay_seconds=delay)
        return None
