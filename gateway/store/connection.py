"""The redis-py asyncio client and the registered scripts."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import unquote, urlsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError, RedisError

from gateway.store import scripts


@dataclass(frozen=True)
class Scripts:
    claim_account: AsyncScript
    allocate_alias: AsyncScript
    allocate_registration: AsyncScript
    deliver_or_queue: AsyncScript
    queue_only: AsyncScript
    link: AsyncScript
    unlink: AsyncScript


MAX_CONNECTIONS = 64


class ReplicationTimeout(RedisError):
    """``WAIT`` saw fewer replicas acknowledge a write than configured: the write may
    not survive a failover, so it is not reported as durable (the caller refuses)."""


class _BlockingSentinelPool(SentinelConnectionPool, BlockingConnectionPool):
    """Sentinel's pool (connections that ask Sentinel for the current primary and drop
    themselves when it was demoted: redis-py raises ``ConnectionError`` on READONLY),
    blocking like the plain one when all connections are busy."""


def parse_sentinels(addresses: list[str] | tuple[str, ...]) -> list[tuple[str, int]]:
    """``host:port`` strings (checked by the config) as redis-py's (host, port) pairs."""
    out = []
    for address in addresses:
        host, _, port = address.rpartition(":")
        out.append((host.strip("[]"), int(port)))
    return out


def connect(url: str, sentinels: list[str] | tuple[str, ...] = (), master_name: str = "") -> Redis:
    """A client for ``url``; strings are decoded as UTF-8. The pool blocks when all its
    connections are busy (redis-py's default pool raises instead: under a burst that
    failed deliveries, docs/BENCHMARKS.md), so a burst queues instead of failing.

    With ``sentinels``, the client asks them for the primary of ``master_name`` and asks
    again whenever a connection to it fails or finds it demoted (a failover); ``url``
    then gives only the database number and the password, if it is set."""
    if sentinels:
        kwargs: dict[str, Any] = {}
        if url:
            parts = urlsplit(url)
            db = parts.path.lstrip("/")
            kwargs["db"] = int(db) if db else 0
            if parts.password:
                kwargs["password"] = unquote(parts.password)
            if parts.username:
                kwargs["username"] = unquote(parts.username)
        sentinel = Sentinel(
            parse_sentinels(sentinels),
            sentinel_kwargs={"socket_timeout": 2.0, "socket_connect_timeout": 2.0},
            socket_connect_timeout=2.0,
            **kwargs,
        )
        client: Redis = sentinel.master_for(
            master_name,
            connection_pool_class=_BlockingSentinelPool,
            decode_responses=True,
            health_check_interval=10,
            max_connections=MAX_CONNECTIONS,
            timeout=None,
        )
        return client
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

    def __init__(
        self, redis: Redis, script: AsyncScript, wait_replicas: int = 0, wait_ms: int = 1000
    ) -> None:
        """``wait_replicas``: after each batch, ``WAIT`` on the same connection until that
        many replicas hold its writes (``wait_ms`` at most), else every call of the batch
        fails with :class:`ReplicationTimeout`."""
        self._redis = redis
        self._script = script
        self._wait_replicas = wait_replicas
        self._wait_ms = wait_ms
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
            if self._wait_replicas:
                results = await self._replicated(batch, by_sha=True)
                if any(isinstance(r, NoScriptError) for r in results):
                    results = await self._replicated(batch, by_sha=False)
            elif len(batch) == 1:
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

    async def _replicated(
        self, batch: list[tuple[list[str], list[Any], asyncio.Future[Any]]], by_sha: bool
    ) -> list[Any]:
        """The batch and a ``WAIT`` in one pipeline (one connection: ``WAIT`` covers the
        writes of its own connection only). ``by_sha=False`` sends the script's source
        (after a restart flushed the script cache)."""
        pipe = self._redis.pipeline(transaction=False)
        for keys, args, _ in batch:
            if by_sha:
                pipe.evalsha(self._script.sha, len(keys), *keys, *args)
            else:
                pipe.eval(cast(str, self._script.script), len(keys), *keys, *args)
        pipe.execute_command("WAIT", self._wait_replicas, self._wait_ms)
        replies = await pipe.execute(raise_on_error=False)
        results, acked = list(replies[:-1]), replies[-1]
        if isinstance(acked, Exception):
            return [acked] * len(results)
        if int(acked) < self._wait_replicas:
            failure = ReplicationTimeout(
                f"{acked} of {self._wait_replicas} replicas acknowledged in {self._wait_ms} ms"
            )
            return [r if isinstance(r, Exception) else failure for r in results]
        return results


async def wait_for_replicas(redis: Redis, wait_replicas: int, wait_ms: int, *commands: Any) -> Any:
    """Run one write command and ``WAIT`` in one pipeline; its reply, or
    :class:`ReplicationTimeout` when fewer than ``wait_replicas`` acknowledged it."""
    pipe = redis.pipeline(transaction=False)
    pipe.execute_command(*commands)
    pipe.execute_command("WAIT", wait_replicas, wait_ms)
    reply, acked = await pipe.execute()
    if int(acked) < wait_replicas:
        raise ReplicationTimeout(
            f"{acked} of {wait_replicas} replicas acknowledged in {wait_ms} ms"
        )
    return reply
