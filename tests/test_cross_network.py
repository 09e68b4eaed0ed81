"""Acceptance for the cross-network product (issue 7), end to end: real gateway
processes (``python -m gateway run``), the test session's real Redis, real sockets, one
real client per network. Each scenario runs on one node and on two nodes sharing one
Redis with the users spread over both.

Users: ICQ 123456 "Ivan", MSN bob@example.com "Bob", UIN 700123 "철수" (a CP949 client),
and two who are never authorized: AIM "mallory" and MSN eve@example.com. Carol is one
person with two linked accounts, UIN 700456 and MSN carol@example.com.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cross_clients import MsnUser, OscarUser, UinUser, alias_from, offline_time
from tests.support.node import GatewayNode

pytestmark = pytest.mark.slow

SETTINGS: dict[str, dict[str, object]] = {
    "oscar": {"factory": "adapters.oscar.adapter:OscarAdapter"},
    "msn": {"factory": "adapters.msn.adapter:MsnAdapter", "switchboard_port": 0, "http_port": 0},
    "uin": {"factory": "adapters.uin.adapter:UinAdapter"},
}
KOMIX = "안녕하세요 hello 😀"
"""Korean, English and an emoji: MSN (UTF-8) and ICQ (UCS-2BE) show all of it."""
CP949_VIEW = "안녕하세요 hello [grinning face]"
"""The same on a CP949 UIN client: the emoji has no CP949 code, so it is named, visibly."""


class Cluster:
    def __init__(self, a: GatewayNode, b: GatewayNode) -> None:
        self.a, self.b = a, b
        self.users: list[Any] = []

    def keep(self, user: Any) -> Any:
        self.users.append(user)
        return user

    def icq(self, node: GatewayNode, name: str = "123456") -> OscarUser:
        return self.keep(OscarUser(node.port("oscar"), name, PASSWORDS[name], icq=name.isdigit()))

    def msn(self, node: GatewayNode, email: str) -> MsnUser:
        return self.keep(MsnUser(node, email, PASSWORDS[email]))

    def uin(self, node: GatewayNode, uin: int) -> UinUser:
        return self.keep(UinUser(node.port("uin"), uin, PASSWORDS[str(uin)]))


PASSWORDS = {
    "123456": "icq-pass",
    "mallory": "aim-pass",
    "bob@example.com": "msn-pass",
    "eve@example.com": "msn-pass-2",
    "carol@example.com": "msn-pass-3",
    "700123": "비밀번호",
    "700456": "비밀-carol",
}


@pytest.fixture(params=[1, 2], ids=["one-node", "two-nodes"])
def cluster(
    request: pytest.FixtureRequest, gateway_node: Callable[..., GatewayNode], tmp_path: Path
) -> Iterator[Cluster]:
    networks = ["oscar", "msn", "uin"]
    key = tmp_path / "cluster.key"  # one secret key for the cluster (sealed passwords)
    a = gateway_node(networks, adapter_settings=SETTINGS, secret_key_file=key)
    b = (
        a
        if request.param == 1
        else gateway_node(networks, adapter_settings=SETTINGS, secret_key_file=key)
    )
    for network, native, name in (
        ("oscar", "123456", "Ivan"),
        ("oscar", "mallory", "Mallory"),
        ("msn", "bob@example.com", "Bob"),
        ("msn", "eve@example.com", "Eve"),
        ("msn", "carol@example.com", "Carol"),
        ("uin", "700123", "철수"),
        ("uin", "700456", "Carol"),
    ):
        a.add_account(network, native, PASSWORDS[native], name)
    a.link("uin:700456", "msn:carol@example.com")
    cluster = Cluster(a, b)
    yield cluster
    for user in cluster.users:
        user.close()


def test_six_directions_presence_with_consent_and_refusals(cluster: Cluster) -> None:
    a, b = cluster.a, cluster.b
    ivan = cluster.icq(a)
    bob = cluster.msn(b, "bob@example.com")
    chul = cluster.uin(a, 700123)
    mallory = cluster.icq(b, "mallory")
    eve = cluster.msn(a, "eve@example.com")

    # Addressing: everyone finds the others through the gateway contact, in their own
    # client, in their own namespace.
    a_bob = alias_from(ivan.ask_bot("find msn bob@example.com"))
    a_chul = alias_from(ivan.ask_bot("find uin 700123"))
    b_ivan = alias_from(bob.ask_bot("find icq 123456"))
    b_chul = alias_from(bob.ask_bot("find uin 700123"))
    c_ivan = alias_from(chul.ask_bot("find icq 123456"))
    c_bob = alias_from(chul.ask_bot("find msn bob@example.com"))
    m_bob = alias_from(mallory.ask_bot("find msn bob@example.com"))
    m_chul = alias_from(mallory.ask_bot("find uin 700123"))
    e_ivan = alias_from(eve.ask_bot("find icq 123456"))
    assert a_bob.isdigit() and a_chul.isdigit() and c_ivan.isdigit() and c_bob.isdigit()
    assert b_ivan == "123456.oscar@gateway.invalid" and b_chul == "700123.uin@gateway.invalid"
    assert (m_bob, m_chul, e_ivan) == (a_bob, a_chul, b_ivan)  # one alias per network

    # Consent, in each network's own terms.
    ivan.add(a_bob)  # an ICQ buddy list entry allows that contact
    bob.add(b_ivan)  # MSN: forward list + allow list
    ivan.add(a_chul)
    chul.add(c_ivan, "ICQ friend")  # UIN: an authorization request, answered on ICQ
    ivan.await_request(a_chul)
    ivan.grant(a_chul)
    ivan.ask(a_chul, "please")  # ICQ: an authorization request, answered on UIN
    chul.await_request(c_ivan)
    chul.grant(c_ivan)
    bob.add(b_chul)  # MSN adds UIN: the UIN user is asked
    chul.await_request(c_bob)
    chul.grant(c_bob)
    chul.add(c_bob)
    mallory.add(m_bob)  # nobody ever authorizes mallory or eve
    mallory.add(m_chul)
    eve.add(e_ivan)

    # Presence changes reach the authorized, on the other networks, and nobody else.
    chul.client.send("/status away 점심 먹으러 갔어요")
    ivan.await_online(a_chul)
    bob.lines.take(lambda c: c.verb == "NLN" and c.args[0] == "AWY" and b_chul in c.args)
    bob.ns.send("CHG", "BSY", "0")
    ivan.await_online(a_bob)
    chul.client.wait_for(
        lambda e: e["event"] == "presence" and e["uin"] == int(c_bob) and e["status"] == "busy"
    )
    assert "BuddyArrived" not in mallory.presence_seen(m_chul, 1.0)
    assert "BuddyArrived" not in mallory.presence_seen(m_bob, 0.1)

    # All six directions.
    ivan.send(a_bob, KOMIX)
    assert bob.receive(b_ivan) == KOMIX
    ivan.send(a_chul, KOMIX)
    assert chul.receive(c_ivan)["text"] == CP949_VIEW
    bob.send(b_ivan, KOMIX)
    assert ivan.receive(a_bob)[0] == KOMIX
    bob.send(b_chul, KOMIX)
    assert chul.receive(c_bob)["text"] == CP949_VIEW
    chul.send(c_ivan, KOMIX)
    assert ivan.receive(a_chul)[0] == CP949_VIEW  # what a CP949 client can write
    chul.send(c_bob, KOMIX)
    assert bob.receive(b_chul) == CP949_VIEW

    # Nothing twice, nothing echoed.
    assert bob.messages_from(b_ivan, 0.5) == []
    assert ivan.messages_from(a_bob, 0.1) == [] and ivan.messages_from(a_chul, 0.1) == []
    assert chul.messages_from(c_ivan, 0.1) == [] and chul.messages_from(c_bob, 0.1) == []
    assert ivan.messages_from("123456", 0.1) == []

    # Bob blocks the UIN user: the UIN user sees him go offline, and is told "blocked".
    trid = bob.ns.send("REM", "AL", b_chul)
    bob.lines.take(lambda c: c.trid == trid)
    trid = bob.ns.send("ADD", "BL", b_chul, b_chul)
    bob.lines.take(lambda c: c.trid == trid)
    chul.await_offline(c_bob)
    assert chul.send_expecting_error(c_bob, "hello?") == "blocked"

    # MSN's BLP is the account's policy for every network: AL lets anyone not blocked
    # see her, BL only her allow list.
    m_eve = alias_from(mallory.ask_bot("find msn eve@example.com"))
    mallory.add(m_eve)
    assert "BuddyArrived" not in mallory.presence_seen(m_eve, 0.5)
    eve.ns.send("BLP", "AL")
    mallory.await_online(m_eve)
    eve.ns.send("BLP", "BL")
    mallory.await_offline(m_eve)

    # Ivan leaves: his authorized contacts see it; eve, never authorized, saw nothing.
    ivan.close()
    cluster.users.remove(ivan)
    bob.await_offline(b_ivan)
    chul.await_offline(c_ivan)
    assert [v for v in eve.presence_seen(e_ivan, 0.5) if v in ("NLN", "ILN")] == []

    # Unknown recipients are refused in each sender's own terms.
    assert bob.call_fails("nobody.oscar@gateway.invalid") in ("205", "208", "217")
    assert chul.send_expecting_error("2999999999", "hello?") == "unknown_recipient"
    mallory.bos.pending.clear()
    assert mallory.send_expecting_error("2999999999", "hello?") != 0


def test_offline_message_on_each_network_arrives_once_with_its_time(cluster: Cluster) -> None:
    a, b = cluster.a, cluster.b
    chul = cluster.uin(b, 700123)
    ivan = cluster.icq(a)
    a_bob = alias_from(ivan.ask_bot("find msn bob@example.com"))
    a_chul = alias_from(ivan.ask_bot("find uin 700123"))
    c_ivan = alias_from(chul.ask_bot("find icq 123456"))

    # MSN user offline: an ICQ user writes; it arrives at Bob's next login, once.
    ivan.send(a_bob, KOMIX + " (1)")
    # UIN user offline.
    chul.close()
    cluster.users.remove(chul)
    time.sleep(0.5)
    sent_at = time.time()
    ivan.send(a_chul, KOMIX + " (2)")

    bob = cluster.msn(a, "bob@example.com")
    b_ivan = "123456.oscar@gateway.invalid"
    assert bob.receive(b_ivan) == KOMIX + " (1)"
    assert bob.messages_from(b_ivan, 0.5) == []

    chul = cluster.uin(b, 700123)
    got = chul.receive(c_ivan)
    assert got["text"] == CP949_VIEW + " (2)" and got["offline"] is True
    assert abs(float(got["time"]) - sent_at) < 60
    assert chul.messages_from(c_ivan, 0.5) == []

    # ICQ user offline: the UIN user writes; ICQ shows it with its original time.
    ivan.close()
    cluster.users.remove(ivan)
    time.sleep(0.5)
    sent_at = time.time()
    chul.send(c_ivan, "다시 hello (3)")
    time.sleep(1.2)
    ivan = cluster.icq(b)
    shown, body = ivan.receive(a_chul)
    assert shown == "다시 hello (3)"
    stamp = offline_time(body)
    assert stamp is not None and abs(stamp - sent_at) < 2
    assert ivan.messages_from(a_chul, 0.5) == []


def test_linked_person_receives_where_she_is_and_shows_merged_presence(
    cluster: Cluster,
) -> None:
    a, b = cluster.a, cluster.b
    ivan = cluster.icq(a)
    carol_uin = cluster.uin(b, 700456)
    a_carol = alias_from(ivan.ask_bot("find msn carol@example.com"))
    c_ivan = alias_from(carol_uin.ask_bot("find icq 123456"))

    # Ivan knows Carol by her MSN address; she is on UIN only, and is asked there.
    ivan.add(a_carol)
    ivan.ask(a_carol, "hi Carol")
    carol_uin.await_request(c_ivan)
    carol_uin.grant(c_ivan)
    ivan.await_online(a_carol)
    ivan.send(a_carol, KOMIX)
    assert carol_uin.receive(c_ivan)["text"] == CP949_VIEW

    # She signs in on MSN too (the most recently active): the next message goes there.
    carol_msn = cluster.msn(a, "carol@example.com")
    assert _online_at(a, "msn:carol@example.com")  # the core has opened her session
    ivan.send(a_carol, "now on MSN 😀")
    assert carol_msn.receive("123456.oscar@gateway.invalid") == "now on MSN 😀"
    assert carol_uin.messages_from(c_ivan, 0.5) == []

    # Merged presence: leaving one network keeps her online; leaving both does not.
    carol_uin.close()
    cluster.users.remove(carol_uin)
    assert "BuddyDeparted" not in ivan.presence_seen(a_carol, 1.0)
    carol_msn.close()
    cluster.users.remove(carol_msn)
    ivan.await_offline(a_carol)


def _online_at(node: GatewayNode, address: str, seconds: float = 10.0) -> bool:
    """Poll the admin API until ``address`` has a session (MSN clients see the
    challenge before the core has finished opening the session)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if any(s["address"] == address for s in node.whois(address)["online"]):
            return True
        time.sleep(0.05)
    return False
