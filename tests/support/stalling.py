"""An HttpTransport wrapper whose chosen requests stall for their whole timeout on a fake clock, then time out."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from membergate.adapters.http import HttpResponse
from membergate.domain.errors import RetryableError


@dataclass
class StallingTransport:
    """Passes requests to ``inner``, except those whose URL holds one of ``stall``: those use up the timeout
    they were given on ``clock`` (what a socket timeout does) and fail as UrllibTransport fails then; those
    ending with one of ``slow`` answer after that many seconds.

    Every request's timeout is recorded with the fake time it was sent at."""

    inner: Any
    clock: Any  # .now, moved forward by a stall
    stall: Collection[str] = ()
    slow: Mapping[str, float] = field(default_factory=dict)  # URL ending -> seconds it takes to answer
    sent: list[tuple[float, str, float]] = field(default_factory=list)  # (clock time, url, timeout asked)

    def request(
        self, method: str, url: str, *, headers: Mapping[str, str], body: bytes | None, timeout: float
    ) -> HttpResponse:
        self.sent.append((self.clock.now, url, timeout))
        if any(marker in url for marker in self.stall):
            self.clock.now += timeout
            raise RetryableError(f"network error calling {method} {url.split('?')[0]}: TimeoutError")
        self.clock.now += next((seconds for end, seconds in self.slow.items() if url.endswith(end)), 0.0)
        response: HttpResponse = self.inner.request(method, url, headers=headers, body=body, timeout=timeout)
        return response
