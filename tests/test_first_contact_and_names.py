"""End to end (real gateway process, real Redis, real sockets, our own ICQ and MSN
clients): one display name per contact on MSN, and first contact across networks
(docs/adr/0009-first-contact.md)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from urllib.parse import unquote

import pytest

from adapters.msn.codec import Command, CommandCodec, Frame
from tests.cross_clients import MsnUser, OscarUser, UinUser, alias_from
from tests.msn.msn_client import MsnClient
from tests.support.node import GatewayNode

pytestmark = pytest.mark.slow

SETTINGS: dict[str, dict[str, object]] = {
    "oscar": {"factory": "adapters.oscar.adapter:OscarAdapter"},
    "msn": {"factory": "adapters.msn.adapter:MsnAdapter", "switchboard_port": 0, "http_port": 0},
    "uin": {"factory": "adapters.uin.adapter:UinAdapter"},
}
PASSWORDS = {
    "123456": "icq-pass",
    "bob@example.com": "msn-pass",
    "eve@example.com": "msn-pass-2",
    "700123": "uin-pass",
}


@pytest.fixture
def node(gateway_node: Callable[..., GatewayNode]) -> GatewayNode:
    node = gateway_node(["oscar", "msn", "uin"], adapter_settings=SETTINGS)
    for network, native, name in (
        ("oscar", "123456", "Ivan"),
        ("uin", "700123", "Chul"),
        ("msn", "bob@example.com", "Bob"),
        ("msn", "eve@example.com", "Eve"),
    ):
        node.add_account(network, native, PASSWORDS[native], name)
    return node


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Frame]]:
    """Every frame any MSN client of this test reads, in order (NS and switchboards)."""
    frames: list[Frame] = []
    original = CommandCodec.receive_data

    def recording(self: CommandCodec, data: bytes) -> list[Frame]:
        out = original(self, data)
        frames.extend(out)
        return out

    monkeypatch.setattr(CommandCodec, "receive_data", recording)
    yield frames


def names_of(handle: str, frames: list[Frame]) -> list[tuple[str, str]]:
    """(verb, name) for every line that names ``handle``, MSNP8 shapes."""
    where = {"ADD": (2, 3), "LST": (0, 1), "ILN": (1, 2), "NLN": (1, 2), "RNG": (4, 5)}
    where |= {"IRO": (2, 3), "JOI": (0, 1), "MSG": (0, 1)}
    out = []
    for f in frames:
        if isinstance(f, Command) and f.verb in where:
            at, name = where[f.verb]
            if len(f.args) > name and f.args[at] == handle:
                out.append((f.verb, unquote(f.args[name])))
    return out


def test_one_name_for_a_contact_everywhere_an_msn_client_sees_it(
    node: GatewayNode, seen: list[Frame]
) -> None:
    """Bob (MSN) sees ICQ user Ivan under one name, "Ivan [ICQ/AIM]", in the ADD reply,
    the reverse-list notice, SYN's LST, ILN, NLN, RNG, IRO, JOI and MSG lines."""
    ivan = OscarUser(node.port("oscar"), "123456", PASSWORDS["123456"], icq=True)
    bob = MsnUser(node, "bob@example.com", PASSWORDS["bob@example.com"])
    try:
        a_bob = alias_from(ivan.ask_bot("find msn bob@example.com"))
        b_ivan = alias_from(bob.ask_bot("find icq 123456"))
        bob.add(b_ivan)  # typed as the handle, as old clients do: not the name shown
        ivan.add(a_bob)  # Ivan's buddy list allows Bob: Bob sees him online
        bob.await_online(b_ivan)
        trid = bob.ns.send("SYN", "0")
        bob.lines.take(lambda c: c.verb == "SYN" and c.trid == trid)
        bob.lines.take(lambda c: c.verb == "LST" and c.args[0] == b_ivan)
        ivan.send(a_bob, "hello")
        assert bob.receive(b_ivan) == "hello"  # RNG, IRO, MSG
        sb, lines, _ = bob._call(b_ivan)  # a second conversation: CAL, JOI
        lines.take(lambda c: c.verb == "JOI" and c.args[0] == b_ivan)
        sb.close()
        ivan.close()
        bob.await_offline(b_ivan)
        ivan = OscarUser(node.port("oscar"), "123456", PASSWORDS["123456"], icq=True)
        bob.await_online(b_ivan)  # NLN again
        bob.close()
        bob = MsnUser(node, "bob@example.com", PASSWORDS["bob@example.com"])  # ILN
        bob.lines.take(lambda c: c.verb == "ILN" and c.args[1] == b_ivan)
        named = names_of(b_ivan, seen)
        verbs = {verb for verb, _ in named}
        assert {"ADD", "LST", "ILN", "NLN", "RNG", "IRO", "JOI", "MSG"} <= verbs, named
        assert {name for _, name in named} == {"Ivan [ICQ/AIM]"}, named
    finally:
        ivan.close()
        bob.close()


def test_msn_user_writes_first_to_an_icq_user_who_never_authorized_them(
    node: GatewayNode, seen: list[Frame]
) -> None:
    """Eve (MSN) was never authorized by Ivan (ICQ), yet her CAL of his alias is
    accepted and he receives her message, from her alias; whois tells him who it is."""
    ivan = OscarUser(node.port("oscar"), "123456", PASSWORDS["123456"], icq=True)
    eve = MsnUser(node, "eve@example.com", PASSWORDS["eve@example.com"])
    try:
        e_ivan = alias_from(eve.ask_bot("find icq 123456"))
        a_eve = alias_from(ivan.ask_bot("find msn eve@example.com"))
        eve.add(e_ivan)  # her lists only: Ivan gives no consent
        eve.send(e_ivan, "hi Ivan, it is Eve")  # CAL (no 217), JOI, MSG, ACK
        shown, _ = ivan.receive(a_eve)
        assert shown == "hi Ivan, it is Eve"
        assert "Eve [MSN]" in ivan.ask_bot(f"whois {a_eve}")
        # And back: Ivan answers the stranger; Eve sees it under his one name.
        ivan.send(a_eve, "hello Eve")
        assert eve.receive(e_ivan) == "hello Eve"
        assert {n for _, n in names_of(e_ivan, seen)} == {"Ivan [ICQ/AIM]"}
    finally:
        ivan.close()
        eve.close()


def test_icq_user_writes_first_to_an_msn_user_who_never_authorized_them(
    node: GatewayNode,
) -> None:
    """Ivan (ICQ) writes to Bob's alias without any authorization: Bob is rung and
    reads it, from "Ivan [ICQ/AIM]"."""
    ivan = OscarUser(node.port("oscar"), "123456", PASSWORDS["123456"], icq=True)
    bob = MsnUser(node, "bob@example.com", PASSWORDS["bob@example.com"])
    try:
        a_bob = alias_from(ivan.ask_bot("find msn bob@example.com"))
        alias_from(bob.ask_bot("find icq 123456"))
        ivan.send(a_bob, "first contact")
        rng = bob.lines.take(lambda c: c.verb == "RNG")
        assert rng.args[4:] == ("123456.oscar@gateway.invalid", "Ivan%20%5BICQ%2FAIM%5D")
        host, _, port = rng.args[1].partition(":")
        sb = MsnClient(int(port), host)
        sb.send("ANS", "bob@example.com", rng.args[3], rng.args[0])
        msg = sb.take("MSG")
        assert msg.payload is not None and msg.payload.endswith(b"first contact")
        sb.close()
    finally:
        ivan.close()
        bob.close()


def test_a_name_changes_only_when_that_person_renames_themselves(
    node: GatewayNode, seen: list[Frame]
) -> None:
    """Eve sees Bob as "Bob" until Bob renames himself (PRP MFN); from then on, in NLN
    at once and in ILN after her next login, as "Bobby" — never anything else."""
    bob = MsnUser(node, "bob@example.com", PASSWORDS["bob@example.com"])
    eve = MsnUser(node, "eve@example.com", PASSWORDS["eve@example.com"])
    try:
        bob.add("eve@example.com")
        eve.add("bob@example.com")
        eve.await_online("bob@example.com")
        before = len(seen)
        trid = bob.ns.send("REA", "bob@example.com", "Bobby")  # MSNP8: REA of oneself
        bob.lines.take(lambda c: c.verb == "REA" and c.trid == trid)
        eve.lines.take(lambda c: c.verb == "NLN" and c.args[2] == "Bobby")
        eve.close()
        eve = MsnUser(node, "eve@example.com", PASSWORDS["eve@example.com"])
        eve.lines.take(lambda c: c.verb == "ILN" and c.args[1] == "bob@example.com")
        named = names_of("bob@example.com", seen)
        old = {n for _, n in names_of("bob@example.com", seen[:before])}
        new = {n for _, n in names_of("bob@example.com", seen[before:])}
        assert old == {"Bob"} and new == {"Bobby"}, named
    finally:
        bob.close()
        eve.close()


def test_uin_user_writes_first_to_icq_and_msn_users_who_never_authorized_them(
    node: GatewayNode,
) -> None:
    """A UIN user nobody authorized writes first to an ICQ and an MSN user; both get it,
    the MSN user from "Chul [UIN]"; each answers the stranger back."""
    chul = UinUser(node.port("uin"), 700123, PASSWORDS["700123"])
    ivan = OscarUser(node.port("oscar"), "123456", PASSWORDS["123456"], icq=True)
    bob = MsnUser(node, "bob@example.com", PASSWORDS["bob@example.com"])
    try:
        c_ivan = alias_from(chul.ask_bot("find icq 123456"))
        c_bob = alias_from(chul.ask_bot("find msn bob@example.com"))
        a_chul = alias_from(ivan.ask_bot("find uin 700123"))
        b_chul = alias_from(bob.ask_bot("find uin 700123"))
        chul.send(c_ivan, "hello Ivan")
        assert ivan.receive(a_chul)[0] == "hello Ivan"
        chul.send(c_bob, "hello Bob")
        rng = bob.lines.take(lambda c: c.verb == "RNG" and c.args[4] == b_chul)
        assert unquote(rng.args[5]) == "Chul [UIN]"
        bob.lines.client.frames.insert(0, rng)  # let receive() answer it
        assert bob.receive(b_chul) == "hello Bob"
        ivan.send(a_chul, "hi stranger")
        assert chul.receive(c_ivan)["text"] == "hi stranger"
        bob.send(b_chul, "hi Chul")
        assert chul.receive(c_bob)["text"] == "hi Chul"
    finally:
        chul.close()
        ivan.close()
        bob.close()
