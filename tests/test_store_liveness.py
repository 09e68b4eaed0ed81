"""Node leases, epochs and death declarations against the real Redis
(gateway/store/liveness.py), and the outage tracker's one line per outage."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from twisted.logger import LogEvent, globalLogPublisher

from gateway.outage import OutageTracker, is_outage, next_delay
from gateway.store.connection import connect
from gateway.store.liveness import NodeLeases
from tests.support.aio import LoopRunner


@pytest.fixture
def run() -> Iterator[LoopRunner]:
    runner = LoopRunner()
    yield runner
    runner.close()


def test_a_lapsed_lease_is_not_death_until_declared(redis_url: str, run: LoopRunner) -> None:
    """After its lease expired a node is still alive for routing and may renew, until
    another node declares it dead; then its renewal fails and its inbox takes nothing."""

    async def go() -> None:
        redis = connect(redis_url)
        try:
            leases = NodeLeases(redis)
            epoch = await leases.start("b", 50)
            await asyncio.sleep(0.1)
            assert not await leases.lease_held("b")
            assert await leases.alive("b")
            assert await leases.send("b", "s1", "x:y", "p1")
            assert await leases.renew("b", epoch, 50)  # late, but nobody declared it dead
            await asyncio.sleep(0.1)
            assert await leases.declare_dead("b", "a", 10_000)
            assert not await leases.alive("b")
            assert not await leases.send("b", "s1", "x:y", "p2")
            assert not await leases.renew("b", epoch, 50)  # fenced: it must register again
            assert not await leases.declare_dead("b", "c", 10_000)  # a's reclaim runs
            assert await leases.reclaim_running("b")
            await leases.release("b", "a")
            again = await leases.start("b", 5_000)
            assert again > epoch
            assert await leases.alive("b") and await leases.renew("b", again, 5_000)
            assert not await leases.declare_dead("b", "a", 10_000)  # its lease holds
        finally:
            await redis.aclose()

    run(go())


def test_a_newer_run_of_the_same_id_fences_the_older(redis_url: str, run: LoopRunner) -> None:
    """A node restarted under the same id takes a higher epoch: the old run's renewal
    fails even while the lease exists."""

    async def go() -> None:
        redis = connect(redis_url)
        try:
            leases = NodeLeases(redis)
            old = await leases.start("n", 5_000)
            new = await leases.start("n", 5_000)
            assert new > old
            assert not await leases.renew("n", old, 5_000)
            assert await leases.renew("n", new, 5_000)
        finally:
            await redis.aclose()

    run(go())


def test_outage_tracker_logs_one_line_per_outage_and_per_recovery() -> None:
    """Many failures and refusals make one error line; the recovery line has the
    duration and the count refused; the next outage is a new line."""
    now = [100.0]
    seen: list[LogEvent] = []
    globalLogPublisher.addObserver(seen.append)
    try:
        tracker = OutageTracker(clock=lambda: now[0])
        for _ in range(50):
            tracker.failed(RedisConnectionError("Connection refused"))
            tracker.refuse()
        now[0] += 2.5
        tracker.succeeded()
        tracker.succeeded()
        tracker.failed(RedisConnectionError("again"))
    finally:
        globalLogPublisher.removeObserver(seen.append)
    ours = [e for e in seen if e.get("log_namespace") == "gateway.outage"]
    assert [e["log_format"].split(" (")[0].split(" after")[0] for e in ours] == [
        "Redis unreachable",
        "Redis back",
        "Redis unreachable",
    ]
    assert ours[1]["seconds"] == 2.5 and ours[1]["refused"] == 50
    assert is_outage(ConnectionResetError()) and not is_outage(ValueError("bug"))
    assert [next_delay(d) for d in (0.0, 0.1, 3.2, 5.0)] == [0.1, 0.2, 5.0, 5.0]
