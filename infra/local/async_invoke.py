"""Lambda's asynchronous invoke, in process: a thread pool, retries with backoff, an on-failure queue.

Behaves like the real thing as far as Membergate can tell: the caller returns at once, the
handler runs on one of ``max_concurrency`` workers, an error is retried ``max_retries`` times
after growing delays (seconds locally, minutes on AWS), and an invoke that still fails lands in
the on-failure destination (the moto DeadLetterQueue) as Lambda's destination record. With
``max_concurrency=0`` nothing runs until ``run_pending()`` (tests pump by hand).
"""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

DEFAULT_DELAYS = (0.2, 0.5)  # Lambda waits ~1 then ~2 minutes; locally a fraction of a second


class LocalAsyncInvoke:
    def __init__(
        self,
        handler: Callable[[dict[str, Any], Any], Any],
        *,
        function_arn: str,
        context_factory: Callable[[], Any],
        on_failure: Callable[[str], None],
        max_retries: int = 2,
        max_concurrency: int = 10,
        delays: tuple[float, ...] = DEFAULT_DELAYS,
    ):
        self._handler = handler
        self._arn = function_arn
        self._context = context_factory
        self._on_failure = on_failure
        self._max_retries = max_retries
        self._delays = delays
        self._pool = ThreadPoolExecutor(max_concurrency, thread_name_prefix="async-invoke") if max_concurrency else None
        self._pending: list[bytes] = []
        self._in_flight = 0
        self._idle = threading.Condition()
        self.invocations = 0
        self.failures: list[dict[str, Any]] = []

    def __call__(self, payload: bytes) -> None:
        """InvocationType=Event: accepted (202) and run later."""
        json.loads(payload)  # Lambda refuses a payload that is not JSON at the invoke
        with self._idle:
            self._in_flight += 1
        if self._pool is None:
            self._pending.append(payload)
        else:
            self._pool.submit(self._run, payload)

    def run_pending(self) -> int:
        """Manual mode: run every accepted invoke now, in order (with retries); return how many."""
        ran = 0
        while self._pending:
            self._run(self._pending.pop(0), sleep=False)
            ran += 1
        return ran

    def pending(self) -> list[bytes]:
        """Manual mode: the payloads accepted and not run yet, in order."""
        return list(self._pending)

    def discard_pending(self) -> None:
        """Manual mode: forget every accepted invoke (as if Lambda had lost them)."""
        with self._idle:
            self._in_flight -= len(self._pending)
            self._pending.clear()
            self._idle.notify_all()

    def wait_idle(self, timeout: float = 60.0) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout)

    @property
    def busy(self) -> bool:
        return self._in_flight > 0

    def _run(self, payload: bytes, sleep: bool = True) -> None:
        request_id = str(uuid.uuid4())
        error: BaseException | None = None
        try:
            for attempt in range(self._max_retries + 1):
                if attempt and sleep:
                    time.sleep(self._delays[min(attempt - 1, len(self._delays) - 1)])
                try:
                    self.invocations += 1
                    self._handler(json.loads(payload), self._context())
                    return
                except Exception as exc:  # what Lambda would report as a function error
                    error = exc
            self._park(payload, request_id, error)
        finally:
            with self._idle:
                self._in_flight -= 1
                self._idle.notify_all()

    def _park(self, payload: bytes, request_id: str, error: BaseException | None) -> None:
        record = {
            "version": "1.0",
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
            "requestContext": {"requestId": request_id, "functionArn": f"{self._arn}:$LATEST",
                               "condition": "RetriesExhausted", "approximateInvokeCount": self._max_retries + 1},
            "requestPayload": json.loads(payload),
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "responsePayload": {"errorMessage": str(error), "errorType": type(error).__name__},
        }
        self.failures.append(record)
        chain, cause = [], error
        while cause is not None and len(chain) < 6:  # the root cause, not only the wrapper's words
            chain.append(repr(cause)[:300])
            cause = cause.__cause__ or cause.__context__
        print(f"[local-stack] async invoke failed {self._max_retries + 1} times, parked: {' <- '.join(chain)}",
              file=sys.stderr)
        self._on_failure(json.dumps(record))

    def close(self, wait: bool = False) -> None:
        """Drop the invokes not started; with ``wait``, let the running ones finish first."""
        if self._pool is not None:
            self._pool.shutdown(wait=wait, cancel_futures=True)
