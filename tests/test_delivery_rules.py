"""Routing rules end to end (test network, real sockets, real Redis): unknown and
blocked recipients are refused to the sender, duplicates dropped, disabled refused,
presence reaches only consenting contacts, a linked person is reached where online."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable

from gateway.credentials import SealingKey
from gateway.store import Store
from schema.events import Message
from schema.records import ContactEntry
from tests.support.jsonline_client import JsonLineClient
from tests.support.node import GatewayNode


def _put_contact(url: str, owner: str, entry: ContactEntry) -> None:
    async def go() -> None:
        store = Store.open(url, SealingKey(b"t" * 32))
        try:
            await store.contacts.put(owner, entry)
        finally:
            await store.close()

    asyncio.run(go())


def _two_users(
    gateway_node: Callable[..., GatewayNode],
) -> tuple[GatewayNode, JsonLineClient, JsonLineClient]:
    node = gateway_node(["jsonline"])
    node.add_account("jsonline", "alice", "pa")
    node.add_account("jsonline", "bob", "pb")
    alice = JsonLineClient(node.port("jsonline"))
    alice.login("jsonline:alice", "pa")
    bob = JsonLineClient(node.port("jsonline"))
    bob.login("jsonline:bob", "pb")
    return node, alice, bob


def test_unknown_recipient_is_reported_to_the_sender(
    gateway_node: Callable[..., GatewayNode],
) -> None:
    """A message to nobody comes back as delivery_failure unknown_recipient."""
    _, alice, _ = _two_users(gateway_node)
    sent = alice.message("jsonline:alice", "jsonline:nobody", "hello?")
    failure = alice.read_kind("delivery_failure")
    assert failure["event"]["reason"] == "unknown_recipient"
    assert failure["event"]["message_id"] == sent.id and failure["peer"] == "nobody"


def test_blocked_sender_is_refused(gateway_node: Callable[..., GatewayNode]) -> None:
    """When bob blocks alice, her message is refused (blocked) and bob sees nothing."""
    node, alice, bob = _two_users(gateway_node)
    _put_contact(
        node.redis_url, "jsonline:bob", ContactEntry(contact="jsonline:alice", blocked=True)
    )
    alice.message("jsonline:alice", "jsonline:bob", "let me in")
    assert alice.read_kind("delivery_failure")["event"]["reason"] == "blocked"
    alice.message("jsonline:alice", "jsonline:nobody", "probe")
    alice.read_kind("delivery_failure")
    bob.sock.settimeout(0.5)
    with contextlib.suppress(TimeoutError):
        assert bob.sock.recv(65536) == b"", "bob must not hear from a blocked sender"


def test_duplicate_message_ids_are_delivered_once(gateway_node: Callable[..., GatewayNode]) -> None:
    """The same message id sent twice reaches the recipient once."""
    _, alice, bob = _two_users(gateway_node)
    message = Message(sender="jsonline:alice", recipient="jsonline:bob", body="once")
    for _ in range(2):
        alice.send({"op": "send", "event": json.loads(message.model_dump_json())})
        alice.read_op("sent")
    alice.message("jsonline:alice", "jsonline:bob", "marker")
    assert bob.read_kind("message")["event"]["body"] == "once"
    assert bob.read_kind("message")["event"]["body"] == "marker"


def test_presence_only_with_consent(gateway_node: Callable[..., GatewayNode]) -> None:
    """Watchers get a user's presence only when the user allowed them."""
    node = gateway_node(["jsonline"])
    for name in ("alice", "bob", "carol"):
        node.add_account("jsonline", name, "p")
    # bob and carol both watch alice; alice allows only bob.
    _put_contact(node.redis_url, "jsonline:bob", ContactEntry(contact="jsonline:alice"))
    _put_contact(node.redis_url, "jsonline:carol", ContactEntry(contact="jsonline:alice"))
    _put_contact(
        node.redis_url, "jsonline:alice", ContactEntry(contact="jsonline:bob", allowed=True)
    )
    bob = JsonLineClient(node.port("jsonline"))
    bob.login("jsonline:bob", "p")
    carol = JsonLineClient(node.port("jsonline"))
    carol.login("jsonline:carol", "p")
    alice = JsonLineClient(node.port("jsonline"))
    alice.login("jsonline:alice", "p")
    seen = bob.read_kind("presence")
    assert seen["peer"] == "alice" and seen["event"]["state"] == "online"
    alice.message("jsonline:alice", "jsonline:carol", "marker")
    first_for_carol = carol.read_op("deliver")
    assert first_for_carol["event"]["kind"] == "message"


def test_linked_person_is_reached_where_online(gateway_node: Callable[..., GatewayNode]) -> None:
    """A message to one address of a linked person reaches the address that is online."""
    node = gateway_node(["jsonline"])
    node.add_account("jsonline", "alice", "p")
    node.add_account("jsonline", "bob", "p")
    node.add_account("jsonline", "bob2", "p")
    node.link("jsonline:bob", "jsonline:bob2")
    bob2 = JsonLineClient(node.port("jsonline"))
    bob2.login("jsonline:bob2", "p")
    alice = JsonLineClient(node.port("jsonline"))
    alice.login("jsonline:alice", "p")
    alice.message("jsonline:alice", "jsonline:bob", "to the person")
    got = bob2.read_kind("message")
    assert got["event"]["body"] == "to the person" and got["event"]["recipient"] == "jsonline:bob2"


def test_disabled_account_cannot_log_in(gateway_node: Callable[..., GatewayNode]) -> None:
    """A disabled account's login is refused with 'disabled'."""
    node = gateway_node(["jsonline"])
    node.add_account("jsonline", "dave", "p")
    node.api("POST", "/v1/account/jsonline%3Adave/disable")
    client = JsonLineClient(node.port("jsonline"))
    client.send({"op": "login", "address": "jsonline:dave", "password": "p"})
    assert client.read_op("error")["error"] == "disabled"
