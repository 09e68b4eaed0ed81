"""Redis outages, told once (docs/adr/0014-liveness-and-outages.md).

While the store cannot be reached every request fails the same way; one line when the
outage starts and one when it ends (how long, how many requests were refused) say all
there is to say. Per-request tracebacks say nothing more and, at a few thousand
requests a second, fill the disk (3.2 MB in 25 s in the held-out test).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError
from redis.exceptions import TimeoutError as RedisTimeoutError
from twisted.logger import Logger

log = Logger()

BACKOFF_FIRST = 0.1
BACKOFF_MAX = 5.0
"""Retry delays of the node's own loops while Redis is away: 0.1 s doubling to 5 s."""


def is_outage(exc: BaseException) -> bool:
    """Is ``exc`` the store being unreachable (as opposed to a bug or a refused
    command)? Connection refused or reset, a timeout, a replica that cannot take
    writes during a failover."""
    return isinstance(
        exc,
        RedisConnectionError | RedisTimeoutError | ReadOnlyError | ConnectionError | TimeoutError,
    )


def describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())[:160]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class OutageTracker:
    """Up or down, with the count of requests refused while down."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.down_since: float | None = None
        self.refused = 0
        self.outages = 0

    @property
    def down(self) -> bool:
        return self.down_since is not None

    def failed(self, exc: BaseException) -> None:
        """A call to the store failed because it is unreachable."""
        if self.down_since is None:
            self.down_since = self._clock()
            self.refused = 0
            self.outages += 1
            log.error(
                "Redis unreachable ({why}): refusing requests until it is back",
                why=describe(exc),
            )

    def refuse(self) -> None:
        """A client's request was refused because of the outage."""
        self.refused += 1

    def succeeded(self) -> None:
        """A call to the store went through."""
        if self.down_since is None:
            return
        lasted = self._clock() - self.down_since
        self.down_since = None
        log.info(
            "Redis back after {seconds:.1f} s, {refused} requests refused meanwhile",
            seconds=lasted,
            refused=self.refused,
        )


def next_delay(delay: float) -> float:
    """The retry delay after ``delay`` (0 for the first retry)."""
    return BACKOFF_FIRST if delay <= 0 else min(delay * 2, BACKOFF_MAX)
