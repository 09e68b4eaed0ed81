"""End to end: the shipped terminal client, a real gateway process and real Redis."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from .script_client import LossyRelay, ScriptClient

pytestmark = pytest.mark.slow

FACTORY = {"uin": {"factory": "adapters.uin.adapter:UinAdapter"}}
KOREAN = [
    "안녕하세요",
    "반갑습니다",
    "오늘 날씨가 좋네요",
    "점심 먹었어요?",
    "김치찌개 먹었어요",
    "ㅋㅋㅋ 맛있겠다",
]


@pytest.fixture
def uin_node(gateway_node: Callable[..., Any]) -> Any:
    node = gateway_node(["uin"], adapter_settings=FACTORY, delivery={"allow_registration": ["uin"]})
    node.add_account("uin", "700123", "비밀-a", "철수")
    node.add_account("uin", "700456", "비밀-b", "영희")
    return node


def _befriend(a: ScriptClient, b: ScriptClient) -> None:
    a.send("/add 700456 친구해요")
    assert b.kind("auth_request")["text"] == "친구해요"
    b.send("/auth 700123")
    assert a.kind("auth_reply")["granted"] is True
    b.send("/add 700123")
    a.kind("auth_request")
    a.send("/auth 700456")
    b.kind("auth_reply")


def test_two_clients_chat_in_korean_through_the_gateway(uin_node: Any) -> None:
    """Two uin-client processes log in, authorize each other and chat in CP949 Korean."""
    port = uin_node.port("uin")
    a = ScriptClient(port, 700123, "비밀-a")
    b = ScriptClient(port, 700456, "비밀-b")
    try:
        assert a.kind("logged_in")["charset"] == "cp949"
        b.kind("logged_in")
        _befriend(a, b)
        a.send("/msg 700456 안녕하세요, 영희 씨!")
        got = b.kind("message")
        assert got["text"] == "안녕하세요, 영희 씨!" and got["from"] == 700123
        b.send("/status away 점심 먹으러 갔어요")
        presence = a.wait_for(lambda e: e["event"] == "presence" and e["status"] == "away")
        assert presence["text"] == "점심 먹으러 갔어요"
        assert a.quit() == 0
        assert b.quit() == 0
    finally:
        a.kill()
        b.kill()


def test_offline_message_arrives_at_next_login(uin_node: Any) -> None:
    """A message to a logged-out user is delivered, flagged offline, at their next login."""
    port = uin_node.port("uin")
    a = ScriptClient(port, 700123, "비밀-a")
    b = ScriptClient(port, 700456, "비밀-b")
    try:
        a.kind("logged_in")
        b.kind("logged_in")
        _befriend(a, b)
        assert b.quit() == 0
        a.send("/msg 700456 내일 만나요")
        a.kind("sent")
        a.wait_for(lambda e: e["event"] == "presence" and e["status"] == "offline", 10)
        b2 = ScriptClient(port, 700456, "비밀-b")
        try:
            got = b2.kind("message")
            assert got == {**got, "text": "내일 만나요", "offline": True, "from": 700123}
        finally:
            b2.kill()
    finally:
        a.kill()
        b.kill()


def test_korean_chat_under_twenty_percent_loss_loses_nothing(uin_node: Any) -> None:
    """Through a relay dropping 20% both ways, every message arrives once and in order."""
    relay = LossyRelay(("127.0.0.1", uin_node.port("uin")), loss=0.2, duplicate=0.05, seed=7)
    a = ScriptClient(relay.port, 700123, "비밀-a")
    b = ScriptClient(relay.port, 700456, "비밀-b")
    try:
        a.kind("logged_in", 60)
        b.kind("logged_in", 60)
        count = 20
        to_b = [f"{KOREAN[i % len(KOREAN)]} {i}" for i in range(count)]
        to_a = [f"답장 {i}: {KOREAN[(i + 3) % len(KOREAN)]}" for i in range(count)]
        for i in range(count):
            a.send(f"/msg 700456 {to_b[i]}")
            b.send(f"/msg 700123 {to_a[i]}")
        b.wait_for(lambda e: len(b.of_kind("message")) >= count, 120)
        a.wait_for(lambda e: len(a.of_kind("message")) >= count, 120)
        assert [e["text"] for e in b.of_kind("message")] == to_b
        assert [e["text"] for e in a.of_kind("message")] == to_a
        assert relay.dropped > 0
    finally:
        a.kill()
        b.kill()
        relay.close()
    assert len([e for e in b.seen if e["event"] == "message"]) == count


def test_wrong_password_is_refused_by_the_real_gateway(uin_node: Any) -> None:
    """A bad password ends with login_failed and exit code 1."""
    c = ScriptClient(uin_node.port("uin"), 700123, "틀린 비밀번호")
    try:
        assert c.kind("login_failed")["error"] == "login_failed"
        assert c.proc.wait(10) == 1
    finally:
        c.kill()


def test_garbage_datagrams_do_not_disturb_the_gateway(uin_node: Any) -> None:
    """A burst of random datagrams is dropped; clients log in and chat afterwards."""
    import os
    import socket

    port = uin_node.port("uin")
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for i in range(200):
        junk = os.urandom(i * 6 % 1300)
        sock.sendto(b"UI\x01" + junk if i % 2 else junk, ("127.0.0.1", port))
    sock.close()
    a = ScriptClient(port, 700123, "비밀-a")
    try:
        a.kind("logged_in")
        a.send("/search 영희")
        assert a.kind("search_result")["results"] == [{"uin": 700456, "nickname": "영희"}]
    finally:
        a.kill()
    assert uin_node.process.poll() is None
