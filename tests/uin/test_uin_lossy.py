"""Loss, duplication and reordering between real client sessions and the real glue."""

from __future__ import annotations

from .fakes import LossyNetwork, befriend

KOREAN = [
    "안녕하세요",
    "반갑습니다!",
    "오늘 날씨가 좋네요",
    "점심 먹었어요?",
    "네, 김치찌개요 ㅋㅋ",
]


def test_two_users_chat_in_korean_without_loss() -> None:
    """Two UIN users exchange Korean messages through the glue on a perfect network."""
    net = LossyNetwork(seed=3)
    a_addr = net.core.add_account(700123, "비밀번호1", "철수")
    b_addr = net.core.add_account(700456, "password2", "영희")
    befriend(net.core, a_addr, b_addr)
    a = net.client(700123, "비밀번호1")
    b = net.client(700456, "password2")
    net.login(a, b)
    a.do(lambda m: m.send_message(700456, "안녕하세요"))
    assert net.run(5, lambda: bool(b.of_kind("message")))
    msg = b.of_kind("message")[0]
    assert msg["from"] == 700123
    assert msg["text"] == "안녕하세요"


def _chat_under_loss(
    seed: int, count: int
) -> tuple[list[str], list[object], list[str], list[object]]:
    net = LossyNetwork(seed=seed, loss=0.2, duplicate=0.1, max_delay=0.3)
    a_addr = net.core.add_account(700123, "비밀번호1", "철수")
    b_addr = net.core.add_account(700456, "password2", "영희")
    befriend(net.core, a_addr, b_addr)
    a = net.client(700123, "비밀번호1")
    b = net.client(700456, "password2")
    net.login(a, b)
    to_b = [f"{KOREAN[i % len(KOREAN)]} #{i}" for i in range(count)]
    to_a = [f"답장 {i}: {KOREAN[(i + 2) % len(KOREAN)]}" for i in range(count)]
    for i in range(count):
        assert a.do(lambda m, i=i: m.send_message(700456, to_b[i])) is not None
        assert b.do(lambda m, i=i: m.send_message(700123, to_a[i])) is not None
        net.run(0.05)

    def done() -> bool:
        return len(b.of_kind("message")) >= count and len(a.of_kind("message")) >= count

    assert net.run(300, done), (len(a.of_kind("message")), len(b.of_kind("message")))
    net.run(20)  # let any stray duplicates arrive: they must not surface
    got_b = [e["text"] for e in b.of_kind("message")]
    got_a = [e["text"] for e in a.of_kind("message")]
    assert net.lost > 0
    return to_b, got_b, to_a, got_a  # type: ignore[return-value]


def test_twenty_percent_loss_both_ways_every_message_exactly_once_in_order() -> None:
    """Under 20% loss, 10% duplication and reordering, each message arrives once, in order."""
    to_b, got_b, to_a, got_a = _chat_under_loss(seed=11, count=60)
    assert got_b == to_b
    assert got_a == to_a


def test_loss_property_holds_for_several_seeds() -> None:
    """The exactly-once, in-order property does not depend on one lucky seed."""
    for seed in (1, 2, 5):
        to_b, got_b, to_a, got_a = _chat_under_loss(seed=seed, count=15)
        assert (got_b, got_a) == (to_b, to_a), seed


def test_long_korean_message_is_split_and_reassembled_under_loss() -> None:
    """A message of many fragments arrives whole and in order despite 20% loss."""
    net = LossyNetwork(seed=7, loss=0.2, duplicate=0.1, max_delay=0.3)
    a_addr = net.core.add_account(700123, "pw-a")
    b_addr = net.core.add_account(700456, "pw-b")
    befriend(net.core, a_addr, b_addr)
    a = net.client(700123, "pw-a")
    b = net.client(700456, "pw-b")
    net.login(a, b)
    text = "".join(f"{i:04d}가나다라마바사아자차카타파하" for i in range(300))  # ~ 5400 chars
    assert a.do(lambda m: m.send_message(700456, text)) is not None
    assert net.run(300, lambda: bool(b.of_kind("message")))
    net.run(10)
    assert [e["text"] for e in b.of_kind("message")] == [text]
    assert net.core.submitted[-1].body == text  # type: ignore[union-attr]


def test_login_succeeds_under_loss() -> None:
    """The handshake (HELLO, cookie, CHALLENGE, LOGIN) survives 20% loss by retransmission."""
    for seed in range(4):
        net = LossyNetwork(seed=seed, loss=0.2, duplicate=0.1, max_delay=0.3)
        net.core.add_account(700123, "pw")
        a = net.client(700123, "pw")
        net.login(a)
        assert len(a.of_kind("logged_in")) == 1
        assert len(net.core.sessions) == 1


def test_cp949_client_sees_characters_cp949_lacks_by_name() -> None:
    """An emoji sent to a CP949 session shows by name, the rest of the text intact."""
    net = LossyNetwork(seed=4)
    a_addr = net.core.add_account(700123, "pw-a")
    b_addr = net.core.add_account(700456, "pw-b")
    befriend(net.core, a_addr, b_addr)
    a = net.client(700123, "pw-a", want_utf8=True)
    b = net.client(700456, "pw-b")
    net.login(a, b)
    a.do(lambda m: m.send_message(700456, "좋아요 😀"))
    assert net.run(5, lambda: bool(b.of_kind("message")))
    assert b.of_kind("message")[0]["text"] == "좋아요 [grinning face]"
    assert net.core.submitted[-1].body == "좋아요 😀"  # type: ignore[union-attr]


def test_utf8_negotiated_session_keeps_emoji() -> None:
    """A client that asked for UTF-8 gets it and receives characters outside CP949."""
    net = LossyNetwork(seed=4)
    a_addr = net.core.add_account(700123, "pw-a")
    b_addr = net.core.add_account(700456, "pw-b")
    befriend(net.core, a_addr, b_addr)
    a = net.client(700123, "pw-a", want_utf8=True)
    b = net.client(700456, "pw-b", want_utf8=True)
    net.login(a, b)
    assert b.of_kind("logged_in")[0]["charset"] == "utf8"
    a.do(lambda m: m.send_message(700456, "좋아요 😀"))
    assert net.run(5, lambda: bool(b.of_kind("message")))
    assert b.of_kind("message")[0]["text"] == "좋아요 😀"
