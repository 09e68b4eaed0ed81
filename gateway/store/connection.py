"""The redis-py asyncio client and the registered scripts."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from gateway.store import scripts


@dataclass(frozen=True)
class Scripts:
    claim_account: AsyncScript
    allocate_alias: AsyncScript
    allocate_registration: AsyncScript
    deliver_or_queue: AsyncScript
    open_session: AsyncScript
    queue_only: AsyncScript
    link: AsyncScript
    unlink: AsyncScript


MAX_CONNECTIONS = 64


def connect(url: str) -> Redis:
    """A client for ``url``; strings are decoded as UTF-8. The pool blocks when all its
    connections are busy (redis-py's default pool raises instead: under a burst that
    failed deliveries, docs/BENCHMARKS.md), so a burst queues instead of failing."""
    pool = BlockingConnectionPool.from_url(
        url,
        decode_responses=True,
        health_check_interval=10,
        max_connections=MAX_CONNECTIONS,
        timeout=None,
    )
    return Redis.from_pool(pool)


def register_scripts(redis: Redis) -> Scripts:
    return Scripts(
        claim_account=redis.register_script(scripts.CLAIM_ACCOUNT),
        allocate_alias=redis.register_script(scripts.ALLOCATE_ALIAS),
        allocate_registration=redis.register_script(scripts.ALLOCATE_REGISTRATION),
        deliver_or_queue=redis.register_script(scripts.DELIVER_OR_QUEUE),
        open_session=redis.register_script(scripts.OPEN_SESSION),
        queue_only=redis.register_script(scripts.QUEUE_ONLY),
        link=redis.register_script(scripts.LINK),
        unlink=redis.register_script(scripts.UNLINK),
    )


class ScriptBatcher:
    """Calls of one script made in the same turn of the event loop go to Redis as one
    pipeline: one connection, one write, one read for the lot, instead of one round
    trip each (about 110 µs of CPU per call alone, 25 µs batched: docs/BENCHMARKS.md).
    Each caller still awaits its own reply. The calls of one turn run in the order they
    were made; a caller that awaits each reply before its next call (the core does, per
    sender) keeps its own order across turns. A script Redis lost (a restart flushes them) is
    loaded again and the calls it refused are retried one by one."""

    MAX_BATCH = 256

    def __init__(self, redis: Redis, script: AsyncScript) -> None:
        self._redis = redis
        self._script = script
        self._pending: list[tuple[list[str], list[Any], asyncio.Future[Any]]] = []
        self._scheduled = False
        self._running: set[asyncio.Future[None]] = set()

    async def __call__(self, keys: list[str], args: list[Any]) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((keys, args, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        self._scheduled = False
        batch, self._pending = self._pending, []
        task = asyncio.ensure_future(self._run_all(batch))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _run_all(self, batch: list[tuple[list[str], list[Any], asyncio.Future[Any]]]) -> None:
        # Chunks one after the other: calls reach Redis in the order they were made.
        for start in range(0, len(batch), self.MAX_BATCH):
            await self._run(batch[start : start + self.MAX_BATCH])

    async def _one(self, keys: list[str], args: list[Any]) -> Any:
        try:
            return await self._script(keys=keys, args=args)  # loads it when Redis lost it
        except Exception as exc:
            return exc

    async def _run(self, batch: list[tuple[list[str], list[Any], asyncio.Future[Any]]]) -> None:
        try:
            if len(batch) == 1:
                results = [await self._one(batch[0][0], batch[0][1])]
            else:
                pipe = self._redis.pipeline(transaction=False)
                for keys, args, _ in batch:
                    pipe.evalsha(self._script.sha, len(keys), *keys, *args)
                results = await pipe.execute(raise_on_error=False)
            for (keys, args, future), result in zip(batch, results, strict=True):
                if isinstance(result, NoScriptError):
                    result = await self._one(keys, args)
                if future.done():
                    continue
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result(result)
        except BaseException as exc:
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
