"""Two gateway processes sharing one Redis deliver to each other's users."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from tests.support.jsonline_client import JsonLineClient
from tests.support.node import GatewayNode


def test_two_nodes_deliver_across_in_order(gateway_node: Callable[..., GatewayNode]) -> None:
    """A user on node A messages a user on node B; B's user gets them in order."""
    a = gateway_node(["jsonline"], node_id="node-a")
    b = gateway_node(["jsonline"], node_id="node-b")
    a.add_account("jsonline", "alice", "pw-alice")
    a.add_account("jsonline", "bob", "pw-bob")
    alice = JsonLineClient(a.port("jsonline"))
    bob = JsonLineClient(b.port("jsonline"))
    try:
        alice.login("jsonline:alice", "pw-alice")
        bob.login("jsonline:bob", "pw-bob")
        sent = [alice.message("jsonline:alice", "jsonline:bob", f"hello {i}") for i in range(20)]
        got = [bob.read_kind("message") for _ in sent]
        assert [g["event"]["body"] for g in got] == [m.body for m in sent]
        assert {g["peer"] for g in got} == {"alice"}
        assert all(g["event"]["hops"] == 1 for g in got)
        sessions = a.api("GET", "/v1/sessions")[1]
        assert {(s["node"], s["address"]) for s in sessions} == {
            ("node-a", "jsonline:alice"),
            ("node-b", "jsonline:bob"),
        }
    finally:
        alice.close()
        bob.close()


def test_offline_message_arrives_at_next_login_once(
    gateway_node: Callable[..., GatewayNode],
) -> None:
    """A message to an offline user waits and is delivered at their next login, once."""
    a = gateway_node(["jsonline"], node_id="node-a")
    a.add_account("jsonline", "alice", "pw-alice")
    a.add_account("jsonline", "bob", "pw-bob")
    alice = JsonLineClient(a.port("jsonline"))
    alice.login("jsonline:alice", "pw-alice")
    first = alice.message("jsonline:alice", "jsonline:bob", "while you were out")
    alice.read_op("sent")
    assert a.whois("jsonline:bob")["offline_queued"] == 1
    bob = JsonLineClient(a.port("jsonline"))
    bob.send({"op": "login", "address": "jsonline:bob", "password": "pw-bob"})
    seen: list[str] = []
    while "logged_in" not in seen or first.id not in seen:  # the core streams the backlog
        line = bob.read()
        seen.append(line["event"]["id"] if line["op"] == "deliver" else line["op"])
    assert seen.count(first.id) == 1
    bob.close()
    assert a.whois("jsonline:bob")["offline_queued"] == 0
    again = JsonLineClient(a.port("jsonline"))
    again.login("jsonline:bob", "pw-bob")
    with contextlib.suppress(TimeoutError):
        while True:
            line = again.read(timeout=0.5)
            assert line["op"] != "deliver" or line["event"]["kind"] != "message"
    assert a.whois("jsonline:bob")["offline_queued"] == 0
    again.close()
    alice.close()


def test_dead_node_deliveries_are_reclaimed(gateway_node: Callable[..., GatewayNode]) -> None:
    """When node B dies, its sessions leave the directory and later messages to its
    user are queued offline (not lost), then delivered at the next login."""
    a = gateway_node(["jsonline"], node_id="node-a")
    b = gateway_node(["jsonline"], node_id="node-b")
    a.add_account("jsonline", "alice", "pw-alice")
    a.add_account("jsonline", "bob", "pw-bob")
    alice = JsonLineClient(a.port("jsonline"))
    alice.login("jsonline:alice", "pw-alice")
    bob = JsonLineClient(b.port("jsonline"))
    bob.login("jsonline:bob", "pw-bob")
    b.kill()
    bob.close()
    sent = [alice.message("jsonline:alice", "jsonline:bob", f"m{i}") for i in range(5)]
    for _ in sent:
        alice.read_op("sent")
    import time

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        info = a.whois("jsonline:bob")
        if not info["online"] and info["offline_queued"] == len(sent):
            break
        time.sleep(0.2)
    assert info["online"] == [] and info["offline_queued"] == len(sent)
    back = JsonLineClient(a.port("jsonline"))
    back.send({"op": "login", "address": "jsonline:bob", "password": "pw-bob"})
    bodies = [back.read_kind("message")["event"]["body"] for _ in sent]
    assert bodies == [m.body for m in sent]
    back.close()
    alice.close()
