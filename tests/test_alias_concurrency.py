"""Alias allocation from several processes at once: unique, stable, never reused."""

from __future__ import annotations

import asyncio
import multiprocessing

import redis as sync_redis

from gateway.credentials import SealingKey
from gateway.store import Store

WORKERS = 4
ADDRESSES = [f"msn:user{i}@example.com" for i in range(60)]


def _allocate(url: str, worker: int, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    async def go() -> dict[str, str]:
        store = Store.open(url, SealingKey(b"c" * 32))
        try:
            got = {}
            order = ADDRESSES[worker:] + ADDRESSES[:worker]  # each starts elsewhere
            for address in order:
                got[address] = await store.identity.alias(address, "uin")
            return got
        finally:
            await store.close()

    out.put(asyncio.run(go()))


def test_concurrent_alias_allocation_from_processes(redis_url: str) -> None:
    """4 processes allocate UIN aliases for the same 60 addresses: every process sees
    the same alias per address and no two addresses share one."""
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_allocate, args=(redis_url, w, queue)) for w in range(WORKERS)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert all(r == results[0] for r in results)
    aliases = list(results[0].values())
    assert len(set(aliases)) == len(ADDRESSES)
    assert all(int(a) > 2_000_000_000 for a in aliases)
    client = sync_redis.Redis.from_url(redis_url, decode_responses=True)
    owners = client.hgetall("gw:ns:{uin}:owner")
    client.close()
    assert {owners[a] for a in aliases} == set(ADDRESSES)
