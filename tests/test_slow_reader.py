"""End to end (issue 13, "bounded everything"): an ICQ client that stops reading while an
MSN user keeps writing to it is disconnected by the real gateway once its output limit
is reached, instead of the gateway buffering without bound; other users carry on."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import pytest
import redis

from gateway.store import keys
from tests.cross_clients import MsnUser, OscarUser, alias_from
from tests.support.node import GatewayNode

pytestmark = pytest.mark.slow

SETTINGS: dict[str, dict[str, object]] = {
    "oscar": {
        "factory": "adapters.oscar.adapter:OscarAdapter",
        "max_output_bytes": 65536,
        "output_stall_seconds": 3.0,
    },
    "msn": {
        "factory": "adapters.msn.adapter:MsnAdapter",
        "switchboard_port": 0,
        "http_port": 0,
        # Bob writes as fast as the ACKs come back: not the per-switchboard rate's test.
        "message_rate": 1e6,
        "message_burst": 1e6,
    },
}


def closed_by_peer(sock: socket.socket, within: float) -> bool:
    """Read everything that is waiting; True once the gateway has closed the socket."""
    sock.settimeout(0.2)
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if not sock.recv(1 << 20):
                return True
        except TimeoutError:
            continue
        except ConnectionResetError:
            return True
    return False


def test_a_client_that_stops_reading_is_disconnected(
    gateway_node: Callable[..., GatewayNode],
) -> None:
    """Ivan stops reading; Bob's messages fill his connection; the gateway aborts it."""
    node = gateway_node(["oscar", "msn"], adapter_settings=SETTINGS)
    node.add_account("oscar", "123456", "icq-pass", "Ivan")
    node.add_account("msn", "bob@example.com", "msn-pass", "Bob")
    ivan = OscarUser(node.port("oscar"), "123456", "icq-pass", icq=True)
    bob = MsnUser(node, "bob@example.com", "msn-pass")
    a_bob = alias_from(ivan.ask_bot("find msn bob@example.com"))
    b_ivan = "123456.oscar@gateway.invalid"
    ivan.add(a_bob)
    # The feedbag status answers the client at once; the core stores the entry just
    # after. Bob's ADD finds Ivan's alias through it (his reverse list): wait for it.
    watchers = redis.Redis.from_url(node.redis_url)
    deadline = time.monotonic() + 10
    while not watchers.exists(keys.watchers("msn:bob@example.com")):
        assert time.monotonic() < deadline, "Ivan's buddy list entry was never stored"
        time.sleep(0.05)
    watchers.close()
    bob.add(b_ivan)
    bob.send(b_ivan, "hello")
    assert "hello" in ivan.messages_from(a_bob, 5.0)

    slow = ivan.bos.sock  # from here on nobody reads Ivan's socket
    body = "x" * 1000
    sent = 0
    while sent < 20_000 and "not reading" not in node.log() and "has not read" not in node.log():
        for _ in range(200):
            bob.send(b_ivan, f"{sent} {body}")
            sent += 1
    log = node.log()
    assert sent < 20_000, "the gateway never disconnected the reader that stopped"
    assert (
        len([line for line in log.splitlines() if "oscar" in line and "disconnected:" in line]) == 1
    )
    assert closed_by_peer(slow, 15.0)

    # Bob is untouched: he still talks to the bot.
    assert "find" in bob.ask_bot("help")
    ivan.client.close()
    bob.close()
