"""One access-queue message: dispatch it, and turn failures into backoff or a visible failed state.

Three outcomes besides success: a rate-limit wait is re-queued after the platform's
``retry_after`` without counting an attempt or touching the access state; a transient failure
is re-queued with exponential backoff (10 s doubling, capped at 15 min) and counted; a
permanent refusal is recorded (and remembered) where the creator sees it.

Access before messages: in a batch, access work (roles, kicks) runs before messages, and the
welcomes a convergence causes are sent after the whole batch's access work, so a member's role
never waits behind another member's DMs (or behind the rate-limit windows those DMs meet).
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TypeVar

from ..domain.errors import PermanentError, RateLimitedError, RetryableError
from ..domain.model import WorkKind
from ..ports import AccessWork, AccessWorkQueue, decode_work, encode_work
from .access import AccessDispatcher, CatalogSnapshot, DispatchResult, Interrupted

BASE_DELAY = 10
MAX_DELAY = 900  # SQS DelaySeconds ceiling
# Held-back messages are queued instead of sent when less than this is left of the invocation:
# the access work that caused them is already done, so a timeout would lose them.
MESSAGES_TIME_MARGIN_S = 10.0
R = TypeVar("R")
log = logging.getLogger(__name__)


def access_work_first(records: Sequence[R], body_of: Callable[[R], str]) -> list[R]:
    """The batch in the order to run it: access work (converge, resync) before messages, each
    kind in arrival order. An unreadable body counts as access work (it fails at once anyway)."""

    def is_message(record: R) -> bool:
        try:
            return decode_work(body_of(record)).kind is WorkKind.NOTIFY
        except (ValueError, KeyError, TypeError):
            return False

    return sorted(records, key=is_message)


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
    held_messages: list[AccessWork] | None = None,
) -> DispatchResult | None:
    """Run one work item. With ``held_messages``, the welcome a convergence causes is appended
    there instead of being sent (``send_held_messages`` sends them after the batch's access work)."""
    work = decode_work(body)
    spread = random.random() if jitter is None else jitter
    try:
        result = dispatcher.dispatch(work, now, catalog, defer_messages=held_messages is not None)
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
    if held_messages is not None:
        held_messages.extend(result.messages)
    return result


def send_held_messages(
    messages: Sequence[AccessWork],
    *,
    dispatcher: AccessDispatcher,
    queue: AccessWorkQueue,
    max_attempts: int,
    now: int,
    seconds_left: Callable[[], float],
    catalog: CatalogSnapshot | None = None,
) -> int:
    """Send the messages held back during the batch's access work; return how many were sent here.

    Each goes through ``handle_access_message`` (rate-limit waits and backoff as any message).
    Near the invocation's end, or after an unexpected error, the rest is queued instead: the
    access work that caused them is done and deleted from the queue, nothing would redo them."""
    for index, work in enumerate(messages):
        if seconds_left() < MESSAGES_TIME_MARGIN_S:
            queue.send(list(messages[index:]))
            return index
        try:
            handle_access_message(encode_work(work), dispatcher=dispatcher, queue=queue, max_attempts=max_attempts,
                                  now=now, catalog=catalog)
        except Exception:
            log.exception("sending a held-back message failed; queueing the rest",
                          extra={"member_id": work.member_id, "message_kind": work.message_kind})
            queue.send(list(messages[index:]))
            return index
    return len(messages)


__all__ = ["AccessWork", "access_work_first", "backoff_seconds", "handle_access_message", "send_held_messages",
           "wait_seconds"]
