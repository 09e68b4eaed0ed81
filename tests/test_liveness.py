"""Node liveness and Redis outages with real gateway processes on a Redis of the test's
own (stopped, restarted and killed here, never the session's shared one):
docs/adr/0014-liveness-and-outages.md."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from adapters.oscar import snac as S
from gateway.embedded import EmbeddedRedis
from gateway.store import keys
from tests.cross_clients import MsnUser, OscarUser, UinUser
from tests.msn.msn_client import text
from tests.support.jsonline_client import JsonLineClient
from tests.support.node import GatewayNode


def alice_and_bob(
    node_on: Callable[..., GatewayNode], dead_after: float
) -> tuple[GatewayNode, GatewayNode, JsonLineClient, JsonLineClient]:
    """Nodes a and b (ids node-a, node-b) on the test's own Redis; alice logged in on a,
    bob on b."""
    a = node_on(["jsonline"], node_id="node-a", dead_after_seconds=dead_after)
    b = node_on(["jsonline"], node_id="node-b", dead_after_seconds=dead_after)
    a.add_account("jsonline", "alice", "pw-alice")
    a.add_account("jsonline", "bob", "pw-bob")
    alice = JsonLineClient(a.port("jsonline"))
    bob = JsonLineClient(b.port("jsonline"))
    alice.login("jsonline:alice", "pw-alice")
    bob.login("jsonline:bob", "pw-bob")
    return a, b, alice, bob


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """A Redis server for this test alone (AOF on, so a stop and start keeps the data)."""
    server = EmbeddedRedis(tmp_path / "own-redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def node_on(tmp_path: Path, own_redis: EmbeddedRedis) -> Iterator[Callable[..., GatewayNode]]:
    """Factory: a gateway process on the test's own Redis; stopped after the test."""
    nodes: list[GatewayNode] = []

    def start(networks: list[str], **options: Any) -> GatewayNode:
        node = GatewayNode(tmp_path, own_redis.url, networks, **options)
        nodes.append(node)
        return node.start()

    yield start
    for node in nodes:
        node.kill()


def _wait_for(check: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _recovered(*nodes: GatewayNode) -> Callable[[], bool]:
    return lambda: all("Redis back after" in node.log() for node in nodes)


def _answers(*nodes: GatewayNode) -> Callable[[], bool]:
    """Every node's admin API answers from Redis again."""

    def check() -> bool:
        try:
            return all(node.api("GET", "/v1/sessions")[0] == 200 for node in nodes)
        except OSError:
            return False

    return check


def test_outage_longer_than_dead_after_kills_no_live_node(
    node_on: Callable[..., GatewayNode], own_redis: EmbeddedRedis
) -> None:
    """Redis away for twice dead_after with two healthy nodes: afterwards both keep their
    sessions, and messages between their users are delivered live, not queued offline."""
    a, b, alice, bob = alice_and_bob(node_on, dead_after=2.0)
    try:
        own_redis.stop()
        time.sleep(4.0)
        own_redis.start()
        _wait_for(_answers(a, b), 15.0, "both nodes to reach Redis again")
        time.sleep(2.0 * 2 + 1.0)  # long enough for any node to (wrongly) reclaim another
        sessions = a.api("GET", "/v1/sessions")[1]
        assert {(s["node"], s["address"], s["alive"]) for s in sessions} == {
            ("node-a", "jsonline:alice", True),
            ("node-b", "jsonline:bob", True),
        }
        sent = alice.message("jsonline:alice", "jsonline:bob", "after the outage")
        assert bob.read_kind("message")["event"]["id"] == sent.id
        back = bob.message("jsonline:bob", "jsonline:alice", "got it")
        assert alice.read_kind("message")["event"]["id"] == back.id
        assert a.whois("jsonline:bob")["offline_queued"] == 0
        assert a.whois("jsonline:alice")["offline_queued"] == 0
        assert "declared dead" not in a.log() + b.log()
        client = redis.Redis.from_url(own_redis.url, decode_responses=True)
        try:
            for node_id in ("node-a", "node-b"):
                pending = client.xpending(keys.inbox(node_id), keys.INBOX_GROUP)
                assert pending["pending"] == 0
        finally:
            client.close()
    finally:
        alice.close()
        bob.close()


def test_restart_with_the_same_id_delivers_its_pending_entries_once(
    node_on: Callable[..., GatewayNode], own_redis: EmbeddedRedis
) -> None:
    """kill -9 of a node whose inbox holds entries (some read and never acknowledged,
    some unread), restarted with the same id (twice): every entry reaches its user
    once, in order, and nothing stays pending (XPENDING)."""
    a, b, alice, bob = alice_and_bob(node_on, dead_after=60.0)
    assert b.process is not None
    b.process.send_signal(signal.SIGSTOP)  # stops reading its inbox
    sent = [alice.message("jsonline:alice", "jsonline:bob", f"m{i}") for i in range(40)]
    for _ in sent:
        alice.read_op("sent")
    client = redis.Redis.from_url(own_redis.url, decode_responses=True)
    inbox = keys.inbox("node-b")
    try:
        assert client.xlen(inbox) == len(sent)
        # As if node-b had read the first half and died before acknowledging it.
        client.xreadgroup(keys.INBOX_GROUP, "node-b", {inbox: ">"}, count=20)
        assert client.xpending(inbox, keys.INBOX_GROUP)["pending"] >= 20
        b.kill()
        bob.close()
        b.start()
        assert client.xpending(inbox, keys.INBOX_GROUP)["pending"] == 0
        assert client.xlen(inbox) == 0
        # The killed run's row goes a heartbeat after the start.
        _wait_for(lambda: a.whois("jsonline:bob")["online"] == [], 5.0, "the old row to go")
        b.kill()
        b.start()  # a second restart finds nothing left to route again
        again = JsonLineClient(b.port("jsonline"))
        again.send({"op": "login", "address": "jsonline:bob", "password": "pw-bob"})
        got: list[str] = []
        logged_in = False
        while not logged_in or len(got) < len(sent):  # the core streams the backlog
            line = again.read()
            if line["op"] == "logged_in":
                logged_in = True
            elif line["op"] == "deliver" and line["event"]["kind"] == "message":
                got.append(line["event"]["id"])
        assert got == [m.id for m in sent]
        with pytest.raises(TimeoutError):
            again.read_kind("message", timeout=1.0)
        assert client.xpending(inbox, keys.INBOX_GROUP)["pending"] == 0
        again.close()
    finally:
        client.close()
        alice.close()


def test_outage_while_sending_is_try_later_and_two_log_lines(
    node_on: Callable[..., GatewayNode], own_redis: EmbeddedRedis
) -> None:
    """Redis away while an ICQ user sends: each message is refused with OSCAR's "service
    unavailable" error, and the log has one line for the outage, one for the recovery
    (with the count refused), and no traceback."""
    node = node_on(["oscar"], node_id="node-o", dead_after_seconds=2.0)
    node.add_account("oscar", "100001", "pw-alice")
    node.add_account("oscar", "100002", "pw-bob")
    alice = OscarUser(node.port("oscar"), "100001", "pw-alice", icq=True)
    bob = OscarUser(node.port("oscar"), "100002", "pw-bob", icq=True)
    try:
        alice.send("100002", "before")  # both sessions are open
        assert bob.receive("100001")[0] == "before"
        own_redis.stop()
        codes = []
        for i in range(5):  # paced: under the ICBM rate class
            codes.append(alice.send_expecting_error("100002", f"while down {i}"))
            time.sleep(0.3)
        assert codes == [S.ERR_SERVICE_UNAVAILABLE] * 5
        own_redis.start()
        _wait_for(_recovered(node), 15.0, "the node to see Redis again")
        alice.send("100002", "after the outage")
        shown, _ = bob.receive("100001")
        assert shown == "after the outage"
        log = node.log()
        assert log.count("Redis unreachable") == 1
        back = [line for line in log.splitlines() if "Redis back after" in line]
        assert len(back) == 1
        refused = int(back[0].split(" s, ")[1].split()[0])
        assert refused >= 5
        assert "Traceback" not in log
    finally:
        alice.close()
        bob.close()


def test_a_node_stalled_past_dead_after_registers_its_sessions_again(
    node_on: Callable[..., GatewayNode], own_redis: EmbeddedRedis
) -> None:
    """A node stopped (SIGSTOP) for longer than dead_after is declared dead and its
    rows reclaimed; when it runs again it learns so, registers its live sessions under
    a new epoch and delivers what was queued for them meanwhile (sent one every 20 ms
    through the reclaim), each once, in order; later messages reach its user live."""
    a, b, alice, bob = alice_and_bob(node_on, dead_after=2.0)
    assert b.process is not None
    try:
        time.sleep(2.5)  # node-a has renewed its own lease for dead_after
        b.process.send_signal(signal.SIGSTOP)
        sent = []
        deadline = time.monotonic() + 15.0
        # One message every 20 ms, before, during and after node-b's reclaim.
        while time.monotonic() < deadline and a.whois("jsonline:bob")["online"]:
            sent += [alice.message("jsonline:alice", "jsonline:bob", f"m{len(sent)}")]
            time.sleep(0.02)
        sent += [
            alice.message("jsonline:alice", "jsonline:bob", f"m{len(sent) + i}") for i in range(3)
        ]
        for _ in sent:
            alice.read_op("sent")
        b.process.send_signal(signal.SIGCONT)
        got = [bob.read_kind("message")["event"]["body"] for _ in sent]
        assert got == [m.body for m in sent]
        with pytest.raises(TimeoutError):
            bob.read_kind("message", timeout=1.0)
        live = alice.message("jsonline:alice", "jsonline:bob", "live again")
        assert bob.read_kind("message")["event"]["id"] == live.id
        sessions = a.api("GET", "/v1/sessions")[1]
        assert ("node-b", "jsonline:bob", True) in {
            (s["node"], s["address"], s["alive"]) for s in sessions
        }
        assert a.whois("jsonline:bob")["offline_queued"] == 0
    finally:
        if b.process is not None:
            b.process.send_signal(signal.SIGCONT)
        alice.close()
        bob.close()


def test_outage_while_a_uin_user_sends_is_server_busy(
    node_on: Callable[..., GatewayNode], own_redis: EmbeddedRedis
) -> None:
    """Redis away while a UIN user sends: MESSAGE_FAILED with SERVER_BUSY ("try
    later"), no traceback; after the outage the next message is delivered."""
    node = node_on(["uin"], node_id="node-u", dead_after_seconds=2.0)
    node.add_account("uin", "700001", "pw-alice")
    node.add_account("uin", "700002", "pw-bob")
    alice = UinUser(node.port("uin"), 700001, "pw-alice")
    bob = UinUser(node.port("uin"), 700002, "pw-bob")
    try:
        alice.send("700002", "before")
        assert bob.receive("700001")["text"] == "before"
        own_redis.stop()
        assert alice.send_expecting_error("700002", "while down") == "server_busy"
        own_redis.start()
        _wait_for(_answers(node), 15.0, "the node to reach Redis again")
        alice.send("700002", "after")
        assert bob.receive("700001")["text"] == "after"
        assert "Traceback" not in node.log()
    finally:
        alice.close()
        bob.close()


def test_outage_while_an_msn_user_sends_is_nak(
    node_on: Callable[..., GatewayNode], own_redis: EmbeddedRedis
) -> None:
    """Redis away while an MSN user writes in a switchboard: each MSG is NAKed, the
    switchboard stays up, nothing is logged per message, and after the outage the
    next message is ACKed and delivered."""
    node = node_on(["msn"], node_id="node-m", dead_after_seconds=2.0)
    node.add_account("msn", "alice@example.com", "pw-alice")
    node.add_account("msn", "bob@example.com", "pw-bob")
    alice = MsnUser(node, "alice@example.com", "pw-alice")
    bob = MsnUser(node, "bob@example.com", "pw-bob")
    try:
        alice.add("bob@example.com")
        bob.add("alice@example.com")
        sb, lines, trid = alice._call("bob@example.com")
        lines.take(lambda c: c.verb == "CAL" and c.trid == trid)
        _wait_for(lambda: bob._answer_rings() is None and bool(bob.boards), 15.0, "the ring")
        lines.take(lambda c: c.verb == "JOI")
        trid = sb.send("MSG", "A", payload=text("before"))
        assert lines.take(lambda c: c.trid == trid and c.verb in ("ACK", "NAK")).verb == "ACK"
        assert bob.receive("alice@example.com") == "before"
        own_redis.stop()
        for i in range(3):
            trid = sb.send("MSG", "A", payload=text(f"while down {i}"))
            answer = lines.take(lambda c, t=trid: c.trid == t and c.verb in ("ACK", "NAK"))
            assert answer.verb == "NAK"
        own_redis.start()
        _wait_for(_answers(node), 15.0, "the node to reach Redis again")
        trid = sb.send("MSG", "A", payload=text("after"))
        assert lines.take(lambda c: c.trid == trid and c.verb in ("ACK", "NAK")).verb == "ACK"
        assert bob.receive("alice@example.com") == "after"
        log = node.log()
        assert "Traceback" not in log and "failed: unavailable" not in log
    finally:
        alice.close()
        bob.close()


def test_a_session_that_ends_during_an_outage_leaves_no_row(
    node_on: Callable[..., GatewayNode], own_redis: EmbeddedRedis
) -> None:
    """A client that leaves while Redis is away: its session row is removed once Redis
    is back (whois does not show it online), without a traceback."""
    node = node_on(["jsonline"], node_id="node-j", dead_after_seconds=2.0)
    node.add_account("jsonline", "bob", "pw-bob")
    bob = JsonLineClient(node.port("jsonline"))
    bob.login("jsonline:bob", "pw-bob")
    assert node.whois("jsonline:bob")["online"]
    own_redis.stop()
    bob.close()
    time.sleep(1.0)
    own_redis.start()
    _wait_for(
        lambda: _answers(node)() and not node.whois("jsonline:bob")["online"],
        15.0,
        "bob's row to go",
    )
    assert "Traceback" not in node.log()


def test_a_node_stopped_during_an_outage_exits_cleanly(
    node_on: Callable[..., GatewayNode], own_redis: EmbeddedRedis
) -> None:
    """SIGTERM while Redis is away: the node exits 0 with one line saying the others
    will reclaim its work, no traceback."""
    node = node_on(["jsonline"], node_id="node-s", dead_after_seconds=2.0)
    node.add_account("jsonline", "bob", "pw-bob")
    bob = JsonLineClient(node.port("jsonline"))
    bob.login("jsonline:bob", "pw-bob")
    own_redis.stop()
    time.sleep(0.5)
    try:
        assert node.stop() == 0
    finally:
        bob.close()
    log = node.log()
    assert "stopping without Redis" in log
    assert "Traceback" not in log


def test_an_event_sent_twice_to_a_session_is_written_once(
    node_on: Callable[..., GatewayNode], own_redis: EmbeddedRedis
) -> None:
    """The same event for the same session twice in a node's inbox (as a reclaim that
    was retried after its reclaimer died sends it): the client gets it once."""
    _a, b, alice, bob = alice_and_bob(node_on, dead_after=60.0)
    client = redis.Redis.from_url(own_redis.url, decode_responses=True)
    assert b.process is not None
    try:
        b.process.send_signal(signal.SIGSTOP)
        sent = alice.message("jsonline:alice", "jsonline:bob", "once")
        alice.read_op("sent")
        ((_, fields),) = client.xrange(keys.inbox("node-b"))
        client.xadd(keys.inbox("node-b"), fields)
        b.process.send_signal(signal.SIGCONT)
        assert bob.read_kind("message")["event"]["id"] == sent.id
        with pytest.raises(TimeoutError):
            bob.read_kind("message", timeout=1.5)
    finally:
        if b.process is not None:
            b.process.send_signal(signal.SIGCONT)
        client.close()
        alice.close()
        bob.close()


def test_messages_sent_while_a_node_restarts_keep_their_order(
    node_on: Callable[..., GatewayNode], own_redis: EmbeddedRedis
) -> None:
    """kill -9 of the recipient's node, and a restart under the same id, while the
    sender writes every 20 ms: at the next login every message arrives once, in order,
    and nothing stays pending."""
    _a, b, alice, bob = alice_and_bob(node_on, dead_after=60.0)
    first = alice.message("jsonline:alice", "jsonline:bob", "live")
    assert bob.read_kind("message")["event"]["id"] == first.id
    time.sleep(0.3)  # written and acknowledged: nothing in flight at the kill
    b.kill()
    bob.close()
    sent: list[str] = []
    stop = threading.Event()

    def write() -> None:
        while not stop.is_set():
            sent.append(alice.message("jsonline:alice", "jsonline:bob", f"m{len(sent)}").body)
            time.sleep(0.02)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        time.sleep(0.3)
        b.start()
        time.sleep(1.5)  # past the removal of the killed run's rows (one heartbeat)
    finally:
        stop.set()
        writer.join()
    for _ in sent:
        alice.read_op("sent")
    again = JsonLineClient(b.port("jsonline"))
    again.send({"op": "login", "address": "jsonline:bob", "password": "pw-bob"})
    got = [again.read_kind("message")["event"]["body"] for _ in sent]
    assert got == sent
    with pytest.raises(TimeoutError):
        again.read_kind("message", timeout=1.0)
    client = redis.Redis.from_url(own_redis.url, decode_responses=True)
    try:
        assert client.xpending(keys.inbox("node-b"), keys.INBOX_GROUP)["pending"] == 0
    finally:
        client.close()
    again.close()
    alice.close()
