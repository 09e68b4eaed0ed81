"""The redis-py asyncio client and the registered scripts."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import BlockingConnectionPool, Redis
from redis.commands.core import AsyncScript

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
