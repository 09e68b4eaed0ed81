"""End to end on two gateway processes sharing one Redis: feedbag items the core does
not model (extras) are adapter data in Redis, so another node hands them back."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis as sync_redis

from adapters.oscar import snac as S
from adapters.oscar.protocol import EXTRAS_FIELD
from adapters.oscar.tlv import Tlv
from gateway.store import keys
from tests.support.node import GatewayNode

from .oscar_client import OscarClient

pytestmark = pytest.mark.slow

OSCAR = {"factory": "adapters.oscar.adapter:OscarAdapter"}
PD_INFO = S.FeedbagItem("", 0, 0x1234, 0x0004, (Tlv(0x00CA, b"\x04"), Tlv(0x00CB, b"\xff" * 4)))


def wait_stored(redis_url: str, address: str) -> None:
    """The save follows the client's acknowledgement; wait until it is in Redis."""
    client = sync_redis.Redis.from_url(redis_url)
    try:
        deadline = time.monotonic() + 10
        while not client.hexists(keys.adapter_data(address), EXTRAS_FIELD):
            assert time.monotonic() < deadline, "the extras were never stored"
            time.sleep(0.02)
    finally:
        client.close()


def test_extras_stored_on_one_node_are_listed_on_another(
    gateway_node: Callable[..., GatewayNode], tmp_path: Path, redis_url: str
) -> None:
    """Alice stores her permit/deny settings item on node A; logging in on node B, her
    feedbag holds it, byte for byte."""
    key = tmp_path / "cluster.key"
    a = gateway_node(["oscar"], adapter_settings={"oscar": OSCAR}, secret_key_file=key)
    b = gateway_node(["oscar"], adapter_settings={"oscar": OSCAR}, secret_key_file=key)
    a.add_account("oscar", "alice", "aim-secret", "Alice")

    on_a = OscarClient("127.0.0.1", a.port("oscar"))
    bos = on_a.login("alice", "aim-secret")
    bos.snac(S.FeedbagInsertItems((PD_INFO,)))
    status = bos.expect_snac(S.FeedbagStatus).body
    assert status == S.FeedbagStatus((0,))
    wait_stored(redis_url, "oscar:alice")
    on_a.close()

    on_b = OscarClient("127.0.0.1", b.port("oscar"))
    bos = on_b.login("alice", "aim-secret")
    bos.snac(S.FeedbagQuery())
    reply = bos.expect_snac(S.FeedbagReply).body
    assert isinstance(reply, S.FeedbagReply) and PD_INFO in reply.items
    on_b.close()
