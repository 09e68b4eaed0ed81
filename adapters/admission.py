"""Admission: how many connections one source may hold, and how fast a connection may talk.

Network-neutral pieces every TCP adapter uses around its own sessions
(docs/adr/0017-rates-and-admission.md):

* :class:`TokenBucket` and :class:`CommandBudget`: per-connection command rates. A
  bucket holds ``burst`` tokens and refills at ``per_second``; each command takes one
  from the bucket of its kind (an adapter names the kinds: MSN counts ``MSG`` on a
  switchboard apart from the other commands, and presence/name changes apart again).
  Pure: time is an argument.
* :class:`SourceCap`: a cap on simultaneous connections per source address for one
  listener. It wraps the listener's factory; a connection over the cap is refused by
  returning no protocol from ``buildProtocol``, which makes Twisted close the socket at
  once, before any byte is read. At most one log line per source per minute says so.

The glue of each network decides what a refused command means in its own terms (an
error code, a sign-off) and closes the connection; this module only counts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from twisted.internet.interfaces import IAddress
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory

log = Logger(namespace="adapters.admission")

DEFAULT_MAX_PER_SOURCE = 64
"""Simultaneous connections one source address may hold on one listener."""
REFUSAL_LOG_INTERVAL = 60.0
"""Seconds between two log lines about refusals from the same source."""
MAX_TRACKED_SOURCES = 65_536
"""Sources remembered for the refusal log (the table is cleared when full)."""


@dataclass(frozen=True, slots=True)
class Rate:
    """A token bucket's shape: ``burst`` commands at once, ``per_second`` after that."""

    per_second: float
    burst: float


@dataclass(slots=True)
class TokenBucket:
    rate: Rate
    tokens: float
    stamp: float

    @classmethod
    def full(cls, rate: Rate, now: float) -> TokenBucket:
        return cls(rate, rate.burst, now)

    def take(self, now: float, cost: float = 1.0) -> bool:
        """Spend ``cost`` tokens if there are that many; False (nothing spent) if not."""
        elapsed = max(0.0, now - self.stamp)
        self.tokens = min(self.rate.burst, self.tokens + elapsed * self.rate.per_second)
        self.stamp = now
        if self.tokens >= cost:
            self.tokens -= cost
            return True
        return False


class CommandBudget:
    """One connection's buckets, one per kind of command."""

    def __init__(self, rates: Mapping[str, Rate], now: float) -> None:
        self._buckets = {kind: TokenBucket.full(rate, now) for kind, rate in rates.items()}

    def take(self, kind: str, now: float) -> bool:
        """Count one command of ``kind``; False once that kind is over its rate.
        A kind without a bucket is not limited."""
        bucket = self._buckets.get(kind)
        return True if bucket is None else bucket.take(now)


class _CountedConnection(ProtocolWrapper):
    source = ""


class SourceCap(WrappingFactory[_CountedConnection]):
    """Wraps ``factory``: at most ``limit`` simultaneous connections per source host."""

    protocol = _CountedConnection
    noisy = False

    def __init__(
        self,
        factory: Factory,
        limit: int,
        clock: Any,
        what: str,
        log_line: Callable[[str, str, int, int], None] | None = None,
    ) -> None:
        super().__init__(factory)  # type: ignore[no-untyped-call]
        self.limit = limit
        self.what = what
        self._clock = clock
        self.open: dict[str, int] = {}
        self.refused = 0
        self._last_logged: dict[str, float] = {}
        self._refused_since: dict[str, int] = {}
        self._log_line = log_line or _log_refusal

    def buildProtocol(self, addr: IAddress | None) -> Any:
        source = str(getattr(addr, "host", ""))
        if self.open.get(source, 0) >= self.limit:
            self._refuse(source)
            return None  # Twisted closes the accepted socket at once
        inner = self.wrappedFactory.buildProtocol(addr)
        if inner is None:
            return None
        wrapper = _CountedConnection(self, inner)
        wrapper.source = source
        self.open[source] = self.open.get(source, 0) + 1
        return wrapper

    def unregisterProtocol(self, p: Any) -> None:
        super().unregisterProtocol(p)  # type: ignore[no-untyped-call]
        source = getattr(p, "source", "")
        left = self.open.get(source, 0) - 1
        if left > 0:
            self.open[source] = left
        else:
            self.open.pop(source, None)

    def _refuse(self, source: str) -> None:
        self.refused += 1
        self._refused_since[source] = self._refused_since.get(source, 0) + 1
        now = float(self._clock.seconds())
        last = self._last_logged.get(source)
        if last is not None and now - last < REFUSAL_LOG_INTERVAL:
            return
        if len(self._last_logged) >= MAX_TRACKED_SOURCES:
            self._last_logged.clear()
            self._refused_since.clear()
        self._last_logged[source] = now
        count = self._refused_since.pop(source, 1)
        self._log_line(self.what, source, self.limit, count)


def _log_refusal(what: str, source: str, limit: int, count: int) -> None:
    log.info(
        "{what}: refused {count} connection(s) from {source}: it already holds {limit} "
        "(max_connections_per_source)",
        what=what,
        source=source,
        count=count,
        limit=limit,
    )
