"""Bridge between Twisted code and the core's asyncio coroutines.

The gateway runs Twisted's asyncio reactor, so both share one event loop. Core
coroutines await asyncio futures (redis-py), which ``Deferred.fromCoroutine`` cannot
drive; wrap them as tasks instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from twisted.internet.defer import Deferred

T = TypeVar("T")


def as_deferred(coro: Coroutine[Any, Any, T]) -> Deferred[T]:
    """Run a core coroutine on the shared loop and return a Deferred of its result."""
    return Deferred.fromFuture(asyncio.ensure_future(coro))


async def wait_deferred(deferred: Deferred[T]) -> T:
    """Await a Deferred from inside an asyncio coroutine (``Adapter.start``/``stop`` and
    other core-side coroutines run as asyncio tasks, which cannot await a Deferred)."""
    return await deferred.asFuture(asyncio.get_running_loop())
