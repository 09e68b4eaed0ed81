"""Issue 12, items 8 and 9: what the spec promises about bad authenticated datagrams and
about the limits, checked on real sockets against a real gateway process."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from adapters.uin.codec import (
    MESSAGE_OFFLINE,
    Ack,
    Charset,
    Command,
    ContactAdd,
    ErrorCode,
    MessageFailed,
    MessageFragment,
    Ping,
)

from .raw_client import RawClient, RawPayload

pytestmark = pytest.mark.slow

FACTORY = {"uin": {"factory": "adapters.uin.adapter:UinAdapter"}}
A, B = 700123, 700456


@pytest.fixture
def node(gateway_node: Callable[..., Any]) -> Any:
    node = gateway_node(["uin"], adapter_settings=FACTORY)
    node.add_account("uin", str(A), "pw-a", "철수")
    node.add_account("uin", str(B), "pw-b", "영희")
    return node


def _message(text: bytes, **changes: Any) -> MessageFragment:
    fields: dict[str, Any] = {
        "uin": B,
        "msg_id": 1,
        "time": 0,
        "flags": 0,
        "charset": Charset.CP949,
        "index": 0,
        "count": 1,
        "text": text,
    }
    fields.update(changes)
    return MessageFragment(**fields)


def _payload(body: MessageFragment) -> bytes:
    return body.encode_payload()


# ---- item 8: an authenticated datagram the gateway cannot take ends the session ------

BAD = {
    # count 0: the codec's own encoder would refuse, so the bytes are written by hand
    "fragment count 0": RawPayload(
        Command.MESSAGE, _payload(_message(b"hi"))[:14] + b"\x00\x00" + b"\x00\x02hi"
    ),
    "status 9": RawPayload(Command.STATUS_SET, b"\x09\x00"),
    "one trailing byte": RawPayload(Command.PING, b"\x00"),
}


@pytest.mark.parametrize("name", [*BAD, "reserved header bit", "MACed LOGIN"])
def test_bad_authenticated_datagram_gets_goodbye_protocol_error(node: Any, name: str) -> None:
    """A MAC-valid datagram that breaks the protocol ends the session with
    GOODBYE(PROTOCOL_ERROR) at once, instead of being dropped unacked (a 70 s stall)."""
    client = RawClient(node.port("uin"), A, "pw-a").login()
    try:
        if name == "reserved header bit":
            client.send(Ping(), mangle=lambda d: d[:3] + b"\x03" + d[4:])
        elif name == "MACed LOGIN":
            client.send_unsequenced(RawPayload(Command.LOGIN, bytes(32)))
        else:
            client.send(BAD[name])
        assert client.disconnected() is ErrorCode.PROTOCOL_ERROR
    finally:
        client.close()
    # the gateway is fine: the same user logs in again and is served
    again = RawClient(node.port("uin"), A, "pw-a").login()
    again.close()


# ---- item 9: each promise of the spec, enforced ---------------------------------------


def test_empty_message_is_refused_with_bad_request(node: Any) -> None:
    """An empty MESSAGE is answered MESSAGE_FAILED(BAD_REQUEST) and nothing reaches the
    recipient; the session goes on."""
    a = RawClient(node.port("uin"), A, "pw-a").login()
    b = RawClient(node.port("uin"), B, "pw-b").login()
    try:
        a.send(_message(b"", msg_id=7))
        failed = a.wait_command(MessageFailed)
        assert failed == MessageFailed(B, 7, ErrorCode.BAD_REQUEST)
        a.send(_message("안녕".encode("cp949"), msg_id=8))
        got = b.wait_command(MessageFragment)
        assert isinstance(got, MessageFragment) and got.text == "안녕".encode("cp949")
        assert a.disconnected(0.2) is None
    finally:
        a.close()
        b.close()


def test_request_text_over_1000_bytes_is_a_protocol_error(node: Any) -> None:
    """CONTACT_ADD with a 1001-byte request text ends the session (PROTOCOL_ERROR)."""
    a = RawClient(node.port("uin"), A, "pw-a").login()
    try:
        a.send(ContactAdd(B, b"x" * 1001))
        assert a.disconnected() is ErrorCode.PROTOCOL_ERROR
    finally:
        a.close()


def test_request_text_of_1000_bytes_is_fine(node: Any) -> None:
    """Exactly 1000 bytes is within the limit: the contact is asked."""
    a = RawClient(node.port("uin"), A, "pw-a").login()
    b = RawClient(node.port("uin"), B, "pw-b").login()
    try:
        from adapters.uin.codec import AuthRequest

        a.send(ContactAdd(B, b"x" * 1000))
        request = b.wait_command(AuthRequest)
        assert isinstance(request, AuthRequest) and len(request.text) == 1000
    finally:
        a.close()
        b.close()


def test_message_in_another_charset_is_a_protocol_error(node: Any) -> None:
    """A MESSAGE whose charset is not the session charset ends the session."""
    a = RawClient(node.port("uin"), A, "pw-a").login()  # CP949 session
    try:
        a.send(_message("안녕".encode(), charset=Charset.UTF8))
        assert a.disconnected() is ErrorCode.PROTOCOL_ERROR
    finally:
        a.close()


def test_client_setting_the_offline_flag_is_a_protocol_error(node: Any) -> None:
    """OFFLINE is the server's flag: a client MESSAGE carrying it ends the session."""
    a = RawClient(node.port("uin"), A, "pw-a").login()
    try:
        a.send(_message(b"hi", flags=MESSAGE_OFFLINE))
        assert a.disconnected() is ErrorCode.PROTOCOL_ERROR
    finally:
        a.close()


def test_selective_ack_for_unsent_numbers_is_a_protocol_error(node: Any) -> None:
    """An ACK whose selective bitmap names sequence numbers the server never sent ends
    the session, like a cumulative ack for one."""
    a = RawClient(node.port("uin"), A, "pw-a").login()
    try:
        a.send_unsequenced(Ack(selective=1 << 31))
        assert a.disconnected() is ErrorCode.PROTOCOL_ERROR
    finally:
        a.close()


def test_second_login_of_one_uin_takes_over(node: Any) -> None:
    """A newer login of the same UIN takes over: the older session gets
    GOODBYE(LOGGED_IN_ELSEWHERE) and messages reach the newer one."""
    old = RawClient(node.port("uin"), A, "pw-a").login()
    new = RawClient(node.port("uin"), A, "pw-a").login()
    b = RawClient(node.port("uin"), B, "pw-b").login()
    try:
        assert old.disconnected() is ErrorCode.LOGGED_IN_ELSEWHERE
        b.send(_message(b"hello", uin=A))
        got = new.wait_command(MessageFragment)
        assert isinstance(got, MessageFragment) and got.text == b"hello"
        assert new.disconnected(0.2) is None
    finally:
        old.close()
        new.close()
        b.close()
