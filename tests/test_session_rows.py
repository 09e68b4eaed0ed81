"""End to end (issue 13, "sessions that end"): every logout and disconnect removes its
session row, also when the client leaves while its session is still opening; otherwise
`whois` shows offline users online and rows pile up (60 for one user in a fault test)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

import pytest
import redis

from adapters.oscar import snac as S
from tests.msn.msn_client import MsnClient
from tests.oscar.oscar_client import OscarClient
from tests.support.node import GatewayNode

pytestmark = pytest.mark.slow

SETTINGS: dict[str, dict[str, object]] = {
    "oscar": {"factory": "adapters.oscar.adapter:OscarAdapter"},
    "msn": {"factory": "adapters.msn.adapter:MsnAdapter"},
}
BOB = "msn:bob@example.com"
IVAN = "oscar:123456"


def rows(node: GatewayNode, address: str, settle: float = 3.0) -> int:
    """Session rows of ``address`` once the gateway has had time to settle."""
    client = redis.Redis.from_url(node.redis_url)
    try:
        deadline = time.monotonic() + settle
        count = int(client.hlen(f"gw:sess:{{{address}}}"))
        while count and time.monotonic() < deadline:
            time.sleep(0.1)
            count = int(client.hlen(f"gw:sess:{{{address}}}"))
        return count
    finally:
        client.close()


def msn_logged_in(node: GatewayNode) -> MsnClient:
    """MSNP7 MD5 login of bob, up to (not including) going online."""
    client = MsnClient(node.port("msn"))
    client.send("VER", "MSNP7", "CVR0")
    client.expect("VER")
    client.send("USR", "MD5", "I", "bob@example.com")
    salt = client.expect("USR").args[2]
    client.send("USR", "MD5", "S", hashlib.md5((salt + "msn-pass").encode()).hexdigest())
    assert client.expect("USR").args[0] == "OK"
    return client


@pytest.fixture
def node(gateway_node: Callable[..., GatewayNode]) -> GatewayNode:
    node = gateway_node(["oscar", "msn"], adapter_settings=SETTINGS)
    node.add_account("msn", "bob@example.com", "msn-pass", "Bob")
    node.add_account("oscar", "123456", "icq-pass", "Ivan")
    return node


def test_msn_client_leaving_while_its_session_opens_leaves_no_row(node: GatewayNode) -> None:
    """CHG (go online) and a close in the same breath, ten times: no row is left."""
    for _ in range(10):
        client = msn_logged_in(node)
        client.send("CHG", "NLN", "0")
        client.close()
    assert rows(node, BOB) == 0


def test_msn_out_and_plain_close_remove_the_row(node: GatewayNode) -> None:
    """Online, then OUT; online again, then the socket just closes: no row either way."""
    for leave in ("OUT", "close"):
        client = msn_logged_in(node)
        client.send("CHG", "NLN", "0")
        client.expect("CHL")
        assert rows(node, BOB, settle=0) == 1
        if leave == "OUT":
            client.send("OUT")
        client.close()
        assert rows(node, BOB) == 0


def test_oscar_client_leaving_while_its_session_opens_leaves_no_row(node: GatewayNode) -> None:
    """Client-ready (01/02) and a close in the same breath, ten times: no row is left."""
    for _ in range(10):
        client = OscarClient("127.0.0.1", node.port("oscar"))
        bos = client.login("123456", "icq-pass", prehashed=False, ready=False)
        bos.snac(S.ClientOnline(()))
        client.close()
    assert rows(node, IVAN) == 0
