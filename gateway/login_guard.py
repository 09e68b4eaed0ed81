"""Logins that cannot stall the gateway (docs/adr/0013-login-guard.md).

Three independent brakes, checked in this order by ``GatewayCore.check_login``:

1. **Per source** (the client's IP address, as the adapter saw it): a token bucket in
   this node's memory, ``rate`` attempts a second sustained with a ``burst``. A login
   flood from one host is refused before it costs a Redis round trip or a hash.
2. **Per account**, shared by every node through Redis: after ``free_failures`` wrong
   answers within ``window`` seconds the account is locked for a backoff that doubles
   with each further failure (``first_backoff`` .. ``max_backoff``). While locked a
   login is refused without checking the password, so a guesser learns nothing and
   costs nothing. Unknown accounts are counted the same way, so a lock tells nobody
   whether an account exists. A right answer clears the count.
3. **CPU**: password checks (scrypt, ~40 ms) run in a small thread pool
   (``hashlib.scrypt`` releases the GIL: measured, the loop thread kept stepping every
   <5 ms while a worker hashed), never on the event loop, and at most ``queue`` checks
   wait for a worker; past that a login is refused as busy at once instead of queueing
   without bound.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from redis.asyncio import Redis

from gateway.store import keys

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class LoginPolicy:
    free_failures: int = 5
    first_backoff: float = 1.0
    max_backoff: float = 300.0
    window: float = 900.0
    source_rate: float = 5.0
    source_burst: int = 30
    max_sources: int = 65536
    workers: int = 2
    queue: int = 64


class VerifierBusy(RuntimeError):
    """Every worker is busy and the waiting line is full: refuse, try later."""


class SourceBuckets:
    """Token buckets per source host, in this node's memory, least recently used
    dropped past ``max_sources`` (a forgotten source starts with a full bucket)."""

    def __init__(self, rate: float, burst: int, max_sources: int, clock: Callable[[], float]):
        self._rate = rate
        self._burst = float(burst)
        self._max = max_sources
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def _tokens(self, source: str, now: float) -> float:
        tokens, last = self._buckets.get(source, (self._burst, now))
        return min(self._burst, tokens + (now - last) * self._rate)

    def allows(self, source: str) -> bool:
        """Would an attempt from ``source`` go ahead? (Takes nothing.)"""
        return self._tokens(source, self._clock()) >= 1.0

    def take(self, source: str) -> bool:
        """One attempt from ``source``: True if it may go ahead."""
        now = self._clock()
        tokens = self._tokens(source, now)
        self._buckets.pop(source, None)
        allowed = tokens >= 1.0
        self._buckets[source] = (tokens - 1.0 if allowed else tokens, now)
        while len(self._buckets) > self._max:
            self._buckets.popitem(last=False)
        return allowed


# KEYS[1] failure count, KEYS[2] lock; ARGV: window ms, free failures, first ms, max ms.
_FAILED = """
local n = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
local free = tonumber(ARGV[2])
if n >= free then
  local backoff = tonumber(ARGV[3]) * (2 ^ math.min(n - free, 30))
  backoff = math.min(backoff, tonumber(ARGV[4]))
  redis.call('SET', KEYS[2], '1', 'PX', math.floor(backoff))
end
return n
"""


class AccountBackoff:
    """Failure counts and locks per account, in Redis (every node sees them)."""

    def __init__(self, redis: Redis, policy: LoginPolicy) -> None:
        self._redis = redis
        self._policy = policy
        self._failed = redis.register_script(_FAILED)

    async def locked(self, address: str) -> bool:
        return bool(await self._redis.exists(keys.login_lock(address)))

    async def failed(self, address: str) -> int:
        p = self._policy
        count = await self._failed(
            keys=[keys.login_failures(address), keys.login_lock(address)],
            args=[
                int(p.window * 1000),
                p.free_failures,
                int(p.first_backoff * 1000),
                int(p.max_backoff * 1000),
            ],
        )
        return int(count)

    async def succeeded(self, address: str) -> None:
        await self._redis.delete(keys.login_failures(address), keys.login_lock(address))


class Verifier:
    """A bounded pool for password checks off the event loop."""

    def __init__(self, workers: int, queue: int) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="verify")
        self._limit = workers + queue
        self._in_flight = 0

    @property
    def in_flight(self) -> int:
        return self._in_flight

    async def run(self, work: Callable[[], T]) -> T:
        if self._in_flight >= self._limit:
            raise VerifierBusy("password checks are queued to their limit")
        self._in_flight += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, work)
        finally:
            self._in_flight -= 1

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class LoginGuard:
    def __init__(
        self,
        redis: Redis,
        policy: LoginPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy or LoginPolicy()
        p = self.policy
        self.sources = SourceBuckets(p.source_rate, p.source_burst, p.max_sources, clock)
        self.accounts = AccountBackoff(redis, p)
        self.verifier = Verifier(p.workers, p.queue)

    def close(self) -> None:
        self.verifier.close()
