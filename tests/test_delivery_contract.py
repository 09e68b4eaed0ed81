"""The delivery contract end to end (issue 13, docs/adr/0015-delivery-contract.md): real
gateway processes, the test session's Redis, real sockets, numbered messages counted by
tests/support/ledger.py. Every acknowledged number arrives once, in order, within the
session; every other one is refused to its sender in its network's terms.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from adapters.contract import Delivery
from adapters.msn.codec import Command
from adapters.oscar import snac as S
from adapters.oscar.tlv import find
from adapters.oscar.translate import fragments_text
from gateway.core import encode_delivery
from gateway.store import keys
from schema.events import Message
from tests.cross_clients import MsnUser, OscarUser
from tests.msn.msn_client import MsnClient, text
from tests.support.jsonline_client import JsonLineClient
from tests.support.ledger import SequenceLedger
from tests.support.node import GatewayNode

pytestmark = pytest.mark.slow

SETTINGS: dict[str, dict[str, object]] = {
    "oscar": {"factory": "adapters.oscar.adapter:OscarAdapter"},
    "msn": {"factory": "adapters.msn.adapter:MsnAdapter", "switchboard_port": 0, "http_port": 0},
}
ALICE, BOB = "alice@example.com", "bob@example.com"


def _offline_len(redis_url: str, address: str) -> int:
    client = redis.Redis.from_url(redis_url)
    try:
        return int(client.xlen(keys.offline(address)))
    finally:
        client.close()


def test_msn_user_gets_a_1500_message_backlog_whole_and_in_order(
    gateway_node: Callable[..., GatewayNode], redis_url: str
) -> None:
    """1,500 messages waiting offline for an MSN user all arrive once, in order, at
    login: none bounced by the ring wait, none left in the queue."""
    node = gateway_node(["msn"], adapter_settings=SETTINGS, delivery={"offline_queue_max": 5000})
    node.add_account("msn", ALICE, "alice-pass", "Alice")
    node.add_account("msn", BOB, "bob-pass", "Bob")
    ledger = SequenceLedger("backlog")
    client = redis.Redis.from_url(redis_url)
    try:
        pipe = client.pipeline()
        for n in range(1500):
            message = Message(sender=f"msn:{ALICE}", recipient=f"msn:{BOB}", body=ledger.body(n))
            payload = encode_delivery(Delivery(message, ALICE, "Alice"))
            pipe.xadd(keys.offline(f"msn:{BOB}"), {"e": payload})
            ledger.acked(n)  # held durably: what the sender was told "delivered" means
        pipe.execute()
    finally:
        client.close()

    bob = MsnUser(node, BOB, "bob-pass")
    try:
        ledger.received(bob.receive(ALICE))  # answers the ring: the rest comes on that board
        sb, _ = bob.boards[ALICE]
        deadline = time.monotonic() + 60
        quiet_until = 0.0
        while time.monotonic() < deadline:
            for frame in sb.frames:
                if isinstance(frame, Command) and frame.verb == "MSG" and frame.args[0] == ALICE:
                    payload = frame.payload or b""
                    if b"text/plain" in payload:
                        ledger.received(payload.split(b"\r\n\r\n", 1)[1].decode("utf-8"))
            sb.frames.clear()
            if len(ledger.arrived) >= 1500 and not quiet_until:
                quiet_until = time.monotonic() + 1.0  # a duplicate would arrive now
            if quiet_until and time.monotonic() > quiet_until:
                break
            sb.sock.settimeout(0.2)
            with contextlib.suppress(TimeoutError):
                data = sb.sock.recv(1 << 16)
                if not data:
                    break
                sb.frames += sb.codec.receive_data(data)
    finally:
        bob.close()
    report = ledger.report()
    assert report.clean and report.delivered == 1500, report.summary()
    assert _offline_len(redis_url, f"msn:{BOB}") == 0
    # Nothing came back to the sender as a failure ("too many messages waiting").
    assert _offline_len(redis_url, f"msn:{ALICE}") == 0


def _icbm_texts(user: OscarUser, within: float) -> list[str]:
    """Texts of every channel-1 message the OSCAR client reads within ``within`` s."""
    user._drain(within)
    found = []
    keep = []
    for event in user.bos.pending:
        body = getattr(getattr(event, "snac", None), "body", None)
        if isinstance(body, S.IcbmToClient) and body.channel == 1:
            found.append(fragments_text(find(body.tlvs, 2) or b""))
        else:
            keep.append(event)
    user.bos.pending[:] = keep
    return found


@pytest.mark.parametrize("nodes", [1, 2], ids=["one-node", "two-nodes"])
def test_oscar_user_logging_in_gets_every_acknowledged_message_in_order(
    gateway_node: Callable[..., GatewayNode], redis_url: str, tmp_path: Path, nodes: int
) -> None:
    """An ICQ user logs in while another user sends numbered messages at a steady rate:
    every acknowledged number arrives once, in order, within the session (none held
    back 10 s, none stranded offline); the rest were refused to the sender. Two nodes:
    the writer on one, the ICQ user logging in on the other."""
    key = tmp_path / "cluster.key"
    node = gateway_node(["oscar", "jsonline"], adapter_settings=SETTINGS, secret_key_file=key)
    writer_node = (
        node
        if nodes == 1
        else gateway_node(["oscar", "jsonline"], adapter_settings=SETTINGS, secret_key_file=key)
    )
    node.add_account("oscar", "123456", "icq-pass", "Ivan")
    node.add_account("jsonline", "writer", "writer-pass", "Writer")
    writer = JsonLineClient(writer_node.port("jsonline"))
    writer.login("jsonline:writer", "writer-pass")
    ledger = SequenceLedger("login")
    stop = threading.Event()
    pending: dict[str, int] = {}

    def send() -> None:
        n = 0
        while not stop.is_set():
            message = writer.message("jsonline:writer", "oscar:123456", ledger.body(n))
            pending[message.id] = n
            n += 1
            time.sleep(0.02)  # 50 messages a second

    def answers() -> None:
        with contextlib.suppress(OSError, ConnectionError):
            while not (stop.is_set() and len(pending) == 0):
                try:
                    line = writer.read(timeout=1)
                except TimeoutError:
                    if stop.is_set():
                        return
                    continue
                if line["op"] == "sent" and line["id"] in pending:
                    ledger.acked(pending.pop(line["id"]))
                elif line["op"] == "deliver" and line["event"]["kind"] == "delivery_failure":
                    n_failed = pending.pop(line["event"]["message_id"], None)
                    if n_failed is not None:
                        ledger.refused(n_failed)

    sender = threading.Thread(target=send)
    reader = threading.Thread(target=answers)
    sender.start()
    reader.start()
    ivan: OscarUser | None = None
    try:
        time.sleep(0.5)
        ivan = OscarUser(node.port("oscar"), "123456", "icq-pass", icq=True)
        texts = _icbm_texts(ivan, 1.5)
        stop.set()
        sender.join()
        reader.join(10)
        for shown in texts:
            ledger.received(shown)
        # The session's own time, well under the 10 s an offline hold would take.
        deadline = time.monotonic() + 6.0
        while time.monotonic() < deadline and ledger.report().lost:
            for shown in _icbm_texts(ivan, 0.5):
                ledger.received(shown)
        for shown in _icbm_texts(ivan, 0.5):  # a duplicate would arrive now
            ledger.received(shown)
    finally:
        stop.set()
        if ivan is not None:
            ivan.close()
        writer.close()
    report = ledger.report()
    assert report.acknowledged > 50, report.summary()
    assert report.clean, report.summary()
    assert _offline_len(redis_url, "oscar:123456") == 0


@pytest.mark.parametrize("leaving", ["out", "drop"])
def test_msn_messages_after_the_other_leaves_the_switchboard_are_delivered_or_naked(
    gateway_node: Callable[..., GatewayNode], redis_url: str, tmp_path: Path, leaving: str
) -> None:
    """Bob leaves the switchboard (``out``: OUT before Alice writes; ``drop``: the socket
    is reset after 100 of them), staying online; Alice writes 500 numbered messages
    there: each is delivered to Bob (rung again) or NAKed, none ACKed and lost."""
    node = gateway_node(["msn"], adapter_settings=SETTINGS)
    node.add_account("msn", ALICE, "alice-pass", "Alice")
    node.add_account("msn", BOB, "bob-pass", "Bob")
    alice = MsnUser(node, ALICE, "alice-pass")
    bob = MsnUser(node, BOB, "bob-pass")
    ledger = SequenceLedger("left")
    bob_sb: MsnClient | None = None
    try:
        sb, lines, trid = alice._call(BOB)
        lines.take(lambda c: c.verb == "CAL" and c.trid == trid)
        deadline = time.monotonic() + 10
        while ALICE not in bob.boards and time.monotonic() < deadline:
            bob._answer_rings()
            bob.lines.drain(0.1)
        lines.take(lambda c: c.verb == "JOI" and c.args[0] == BOB)
        alice.boards[BOB] = (sb, lines)
        alice.send(BOB, "hello")
        assert bob.receive(ALICE) == "hello"
        bob_sb, _ = bob.boards.pop(ALICE)
        if leaving == "out":
            bob_sb.send("OUT")
            with contextlib.suppress(OSError):
                bob_sb.sock.shutdown(socket.SHUT_WR)
        sb, lines = alice.boards[BOB]
        trids: dict[int, int] = {}
        for n in range(500):
            trids[sb.send("MSG", "A", payload=text(ledger.body(n)))] = n
            if leaving == "drop" and n == 100:
                bob_sb.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
                bob_sb.close()
        deadline = time.monotonic() + 30
        while trids and time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                reply = lines.take(lambda c: c.trid in trids and c.verb in ("ACK", "NAK"), 1)
                n = trids.pop(reply.trid or 0)
                (ledger.acked if reply.verb == "ACK" else ledger.refused)(n)
        with contextlib.suppress(TimeoutError):
            while True:
                ledger.received(bob.receive(ALICE, timeout=2))
    finally:
        alice.close()
        bob.close()
        if bob_sb is not None:
            with contextlib.suppress(OSError):
                bob_sb.close()
    report = ledger.report()
    assert report.clean, report.summary()
