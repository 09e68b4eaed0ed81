"""The Twisted glue: security over UDP and the messenger features, with a fake core."""

from __future__ import annotations

import os
from collections.abc import Coroutine
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.defer import Deferred
from twisted.internet.testing import MemoryReactorClock

from adapters.uin.client.session import ClientSession, RegistrationClient, RegistrationDone
from adapters.uin.codec import (
    HELLO_REGISTER,
    Charset,
    ContactListGet,
    Datagram,
    ErrorCode,
    Hello,
    HelloVerify,
    MessageFragment,
    Refused,
    Status,
    decode,
    encode,
    peek,
)
from adapters.uin.protocol import Limits, UinServer
from schema.events import Message
from tests.support.fake_core import FakeCore, run_now

from .fakes import SERVER, LossyNetwork, befriend

CLIENT = ("10.0.0.2", 40000)


class Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, tuple[str, int]]] = []

    def write(self, packet: bytes, addr: tuple[str, int]) -> None:
        self.sent.append((packet, addr))


def bare_server(
    core: FakeCore | None = None, limits: Limits | None = None
) -> tuple[UinServer, Recorder, MemoryReactorClock]:
    clock = MemoryReactorClock()
    clock.advance(1_700_000_000)
    server = UinServer(
        core or FakeCore(), clock, run=run_now, cookie_secret=b"s" * 32, limits=limits
    )
    rec = Recorder()
    server.transport = rec  # type: ignore[assignment]
    return server, rec, clock


def hello(
    uin: int = 700123, cookie: bytes = b"", flags: int = 0, nonce: bytes = b"n" * 24
) -> bytes:
    return encode(Datagram(Hello(flags, Status.ONLINE, nonce, cookie), 0, uin))


# ---- security ---------------------------------------------------------------------


def test_hello_without_cookie_gets_small_stateless_verify() -> None:
    """A first HELLO gets HELLO_VERIFY, much smaller than the HELLO, and no state."""
    server, rec, _ = bare_server()
    request = hello()
    server.datagramReceived(request, CLIENT)
    ((reply, to),) = rec.sent
    assert to == CLIENT
    assert isinstance(decode(reply).body, HelloVerify)
    assert len(reply) * 4 < len(request)
    assert server.connections == {}


def test_no_prelogin_reply_is_larger_than_its_request() -> None:
    """Every server datagram before login is smaller than the datagram that caused it."""
    net = LossyNetwork(seed=1)
    net.core.add_account(700123, "pw")
    net.core.add_account(700124, "pw")
    a = net.client(700123, "pw")
    bad = net.client(700124, "wrong")
    net.login(a)
    bad.start()
    net.run(5)
    smallest_hello: dict[tuple[str, int], int] = {}
    for src, dst, data in net.wire:
        if dst == SERVER and peek(data).command.name == "HELLO":
            smallest_hello[src] = min(smallest_hello.get(src, 10**6), len(data))
    replies = [(dst, data) for src, dst, data in net.wire if src == SERVER]
    unauthenticated = [(dst, data) for dst, data in replies if not peek(data).authenticated]
    assert {peek(d).command.name for _, d in unauthenticated} == {
        "HELLO_VERIFY",
        "CHALLENGE",
        "REFUSED",
    }
    for dst, data in unauthenticated:
        assert len(data) * 3 < smallest_hello[dst]  # HELLOs are 512 bytes
        if peek(data).command.name == "REFUSED":
            assert len(data) < 64  # the LOGIN that it answers is 64 bytes


def test_cookie_from_another_address_is_refused() -> None:
    """A cookie is bound to the source address: replayed elsewhere it earns a new verify."""
    server, rec, _ = bare_server()
    server.datagramReceived(hello(), CLIENT)
    cookie = decode(rec.sent[0][0]).body.cookie  # type: ignore[attr-defined]
    server.datagramReceived(hello(cookie=cookie), ("10.9.9.9", 40000))
    assert isinstance(decode(rec.sent[1][0]).body, HelloVerify)
    assert server.connections == {}


def test_stale_cookie_is_refused() -> None:
    """A cookie older than 60 s no longer opens a session."""
    server, rec, clock = bare_server()
    server.datagramReceived(hello(), CLIENT)
    cookie = decode(rec.sent[0][0]).body.cookie  # type: ignore[attr-defined]
    clock.advance(61)
    server.datagramReceived(hello(cookie=cookie), CLIENT)
    assert isinstance(decode(rec.sent[1][0]).body, HelloVerify)
    assert server.connections == {}


def test_session_ids_are_64_random_bits() -> None:
    """Session ids come from the injected CSPRNG, all 8 bytes, distinct."""
    core = FakeCore()
    ids = set()
    for i in range(20):
        server = UinServer(core, MemoryReactorClock(), run=run_now, rng=os.urandom)
        rec = Recorder()
        server.transport = rec  # type: ignore[assignment]
        server.datagramReceived(hello(), (f"10.0.1.{i}", 1))
        cookie = decode(rec.sent[0][0]).body.cookie  # type: ignore[attr-defined]
        server.datagramReceived(hello(cookie=cookie), (f"10.0.1.{i}", 1))
        ids |= set(server.connections)
    assert len(ids) == 20
    assert max(ids).bit_length() > 56


def _logged_in_pair() -> tuple[LossyNetwork, object, object]:
    net = LossyNetwork(seed=2)
    a_addr = net.core.add_account(700123, "pw-a", "철수")
    b_addr = net.core.add_account(700456, "pw-b", "영희")
    befriend(net.core, a_addr, b_addr)
    a = net.client(700123, "pw-a")
    b = net.client(700456, "pw-b")
    net.login(a, b)
    return net, a, b


def test_datagram_from_another_source_address_is_dropped() -> None:
    """A perfectly valid datagram of A's session sent from elsewhere is ignored."""
    net, a, _b = _logged_in_pair()
    a.messenger.send_message(700456, "진짜")
    (data,) = a.session.datagrams_to_send(net.clock.seconds())
    before = len(net.core.submitted)
    net.server.datagramReceived(data, ("10.6.6.6", 40000))
    assert len(net.core.submitted) == before
    net.server.datagramReceived(data, a.address)
    assert net.core.submitted[-1].body == "진짜"  # type: ignore[union-attr]


def test_injected_message_without_the_key_is_dropped() -> None:
    """An attacker who knows the session id but not the key cannot inject a message."""
    net, a, _b = _logged_in_pair()
    sid = a.session.session_id
    body = MessageFragment(700456, 1, 0, 0, Charset.CP949, 0, 1, "가짜".encode("cp949"))
    forged_mac = encode(Datagram(body, sid, 700123, 1, 0), b"\x00" * 32)
    forged_crc = encode(Datagram(body, sid, 700123, 1, 0))
    before = len(net.core.submitted)
    for forged in (forged_mac, forged_crc):
        net.server.datagramReceived(forged, a.address)
    assert len(net.core.submitted) == before
    assert sid in net.server.connections


def test_replayed_datagram_is_processed_once() -> None:
    """Replaying a captured, valid message datagram does not deliver it again."""
    net, a, _b = _logged_in_pair()
    a.messenger.send_message(700456, "한 번만")
    (data,) = a.session.datagrams_to_send(net.clock.seconds())
    for _ in range(3):
        net.server.datagramReceived(data, a.address)
    assert [e.body for e in net.core.submitted if isinstance(e, Message)] == ["한 번만"]


def test_wrong_password_is_refused_and_opens_nothing() -> None:
    """A bad password gets REFUSED(LOGIN_FAILED); no core session opens."""
    net = LossyNetwork(seed=3)
    net.core.add_account(700123, "right")
    c = net.client(700123, "wrong")
    c.start()
    net.run(5)
    assert c.of_kind("login_failed") == [{"event": "login_failed", "error": "login_failed"}]
    assert net.core.sessions == {}
    assert net.server.connections == {}


def test_unknown_uin_is_refused_exactly_like_a_wrong_password() -> None:
    """An unknown UIN is challenged with plausible parameters and refused the same way."""
    net = LossyNetwork(seed=3)
    c = net.client(123456789, "whatever")
    c.start()
    net.run(5)
    assert c.of_kind("login_failed") == [{"event": "login_failed", "error": "login_failed"}]


def test_password_never_appears_on_the_wire() -> None:
    """No datagram of a login or a registration contains the password in any encoding."""
    password = "비밀번호-secret"
    net = LossyNetwork(seed=4)
    net.core.add_account(700123, password)
    c = net.client(700123, password)
    net.login(c)
    reg = RegistrationClient(password, "새사람", rng=os.urandom)
    _register(net, reg)
    for _, _, data in net.wire:
        for encoded in (password.encode("utf-8"), password.encode("cp949"), b"secret"):
            assert encoded not in data


def test_rate_limit_drops_a_flood_from_one_host() -> None:
    """Beyond the per-host burst, datagrams are dropped without reply."""
    server, rec, _ = bare_server(
        limits=Limits(packets_per_second=1, packet_burst=5, hellos_per_second=100, hello_burst=100)
    )
    for _ in range(50):
        server.datagramReceived(hello(), CLIENT)
    assert len(rec.sent) == 5
    server.datagramReceived(hello(), ("10.0.0.3", 1))
    assert len(rec.sent) == 6


def test_hello_rate_limit_is_stricter() -> None:
    """HELLOs have their own, smaller budget per host."""
    server, rec, _ = bare_server(limits=Limits(hello_burst=3, hellos_per_second=0.5))
    for _ in range(10):
        server.datagramReceived(hello(), CLIENT)
    assert len(rec.sent) == 3


def test_too_many_sessions_from_one_host_get_server_busy() -> None:
    """Past the per-host session limit, a valid HELLO is answered SERVER_BUSY."""
    server, rec, _ = bare_server(limits=Limits(max_sessions_per_host=2))
    for i in range(3):
        nonce = bytes([i]) * 24
        server.datagramReceived(hello(nonce=nonce), (CLIENT[0], 1000 + i))
        cookie = decode(rec.sent[-1][0]).body.cookie  # type: ignore[attr-defined]
        server.datagramReceived(hello(cookie=cookie, nonce=nonce), (CLIENT[0], 1000 + i))
    assert len(server.connections) == 2
    assert decode(rec.sent[-1][0]).body == Refused(ErrorCode.SERVER_BUSY)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(max_size=1300), max_size=10))
def test_garbage_datagrams_never_crash_and_the_server_still_works(garbage: list[bytes]) -> None:
    """Random datagrams, even with a valid prefix, raise nothing; a login still works."""
    net = LossyNetwork(seed=5)
    net.core.add_account(700123, "pw")
    for junk in garbage:
        net.server.datagramReceived(junk, CLIENT)
        net.server.datagramReceived(b"UI\x01\x00" + junk, CLIENT)
    c = net.client(700123, "pw")
    net.login(c, seconds=10)


def test_garbage_inside_a_live_session_address_leaves_the_session_alone() -> None:
    """Junk from a logged-in client's own address is dropped; the session survives."""
    net, a, b = _logged_in_pair()
    sid = a.session.session_id.to_bytes(8, "big")
    for junk in (b"", b"UI", b"UI\x01\x01\x00\x40" + bytes(8) + sid + bytes(100), os.urandom(700)):
        net.server.datagramReceived(junk, a.address)
    a.do(lambda m: m.send_message(700456, "아직 살아있어요"))
    assert net.run(5, lambda: bool(b.of_kind("message")))


# ---- features ---------------------------------------------------------------------


def test_offline_message_arrives_at_next_login_flagged_offline() -> None:
    """A message to an offline user is delivered, flagged offline, when they log in."""
    net = LossyNetwork(seed=6, loss=0.2, duplicate=0.1, max_delay=0.2)
    a_addr = net.core.add_account(700123, "pw-a")
    b_addr = net.core.add_account(700456, "pw-b")
    befriend(net.core, a_addr, b_addr)
    a = net.client(700123, "pw-a")
    net.login(a)
    a.do(lambda m: m.send_message(700456, "나중에 봐요"))
    assert net.run(30, lambda: any(isinstance(e, Message) for e in net.core.submitted))
    b = net.client(700456, "pw-b")
    net.login(b)
    assert net.run(30, lambda: bool(b.of_kind("message")))
    net.run(5)
    (msg,) = b.of_kind("message")
    assert msg["text"] == "나중에 봐요" and msg["offline"] is True and msg["from"] == 700123


def test_contact_request_authorization_and_presence() -> None:
    """A adds B; B is asked and grants; A's list shows B allowed, not pending, online."""
    net = LossyNetwork(seed=7)
    net.core.add_account(700123, "pw-a", "철수")
    net.core.add_account(700456, "pw-b", "영희")
    a = net.client(700123, "pw-a")
    b = net.client(700456, "pw-b")
    net.login(a, b)
    a.do(lambda m: m.add_contact(700456, "친구해요"))
    assert net.run(5, lambda: bool(b.of_kind("auth_request")))
    assert b.of_kind("auth_request")[0] == {
        "event": "auth_request",
        "from": 700123,
        "text": "친구해요",
    }
    pending = a.of_kind("contacts")[-1]["contacts"]
    assert pending == [
        {
            "uin": 700456,
            "nickname": "영희",
            "status": "offline",
            "status_text": "",
            "pending": True,
            "allowed": False,
        }
    ]
    b.do(lambda m: m.authorize(700123, True))
    assert net.run(5, lambda: bool(a.of_kind("auth_reply")))
    net.run(2)
    final = a.of_kind("contacts")[-1]["contacts"]
    assert final[0]["pending"] is False and final[0]["status"] == "online"


def test_status_change_reaches_watchers_with_text() -> None:
    """Setting away with a Korean status text shows on the contact's client."""
    net, a, b = _logged_in_pair()
    a.do(lambda m: m.set_status(Status.AWAY, "점심 먹으러 갔어요"))
    assert net.run(5, lambda: any(e["status"] == "away" for e in b.of_kind("presence")))
    last = [e for e in b.of_kind("presence") if e["uin"] == 700123][-1]
    assert last == {
        "event": "presence",
        "uin": 700123,
        "status": "away",
        "text": "점심 먹으러 갔어요",
    }


def test_remove_contact_updates_the_list() -> None:
    """Removing a contact sends the shortened list."""
    net, a, _b = _logged_in_pair()
    a.do(lambda m: m.remove_contact(700456))
    assert net.run(5, lambda: a.of_kind("contacts")[-1]["contacts"] == [])


def test_typing_is_relayed() -> None:
    """Typing notices reach the other client."""
    net, a, b = _logged_in_pair()
    a.do(lambda m: m.typing(700456, True))
    assert net.run(
        5, lambda: b.of_kind("typing") == [{"event": "typing", "from": 700123, "active": True}]
    )


def test_message_to_unknown_uin_reports_failure_with_our_msg_id() -> None:
    """A message nobody can receive comes back as MESSAGE_FAILED for our msg id."""
    net, a, _b = _logged_in_pair()
    msg_id = a.do(lambda m: m.send_message(999999, "누구세요?"))
    assert net.run(5, lambda: bool(a.of_kind("message_failed")))
    failed = a.of_kind("message_failed")[0]
    assert failed == {
        **failed,
        "event": "message_failed",
        "to": 999999,
        "msg_id": msg_id,
        "error": "unknown_recipient",
        "text": "누구세요?",  # the client names the message that failed
    }


def test_search_by_nickname_and_by_uin() -> None:
    """Search finds accounts by part of the nickname or by number."""
    net, a, _b = _logged_in_pair()
    a.do(lambda m: m.search("영"))
    assert net.run(5, lambda: bool(a.of_kind("search_result")))
    assert a.of_kind("search_result")[0]["results"] == [{"uin": 700456, "nickname": "영희"}]
    a.do(lambda m: m.search("700123"))
    assert net.run(5, lambda: len(a.of_kind("search_result")) == 2)
    assert a.of_kind("search_result")[1]["results"] == [{"uin": 700123, "nickname": "철수"}]


def test_logout_closes_the_core_session() -> None:
    """LOGOUT is acked, the client reports logged_out and the core session closes."""
    net, a, _b = _logged_in_pair()
    a.events.extend(a.messenger.handle(a.session.logout(net.clock.seconds())))
    a.flush()
    assert net.run(10, lambda: bool(a.of_kind("disconnected")))
    assert a.of_kind("disconnected") == [{"event": "disconnected", "reason": "logged_out"}]
    assert [s.address for s in net.core.sessions.values()] == ["uin:700456"]


def test_silent_client_is_dropped_after_the_timeout() -> None:
    """A client that vanishes is timed out and its core session closed."""
    net, a, _b = _logged_in_pair()
    del net.clients[a.address]  # its datagrams no longer arrive anywhere
    a.session._channel = None  # and it sends nothing more
    net.run(200, lambda: len(net.core.sessions) == 1, step=1.0)
    assert [s.address for s in net.core.sessions.values()] == ["uin:700456"]


def test_shutdown_says_goodbye_and_closes_core_sessions() -> None:
    """Stopping the server sends GOODBYE(SERVER_SHUTDOWN) to everyone."""
    net, a, _b = _logged_in_pair()
    net.server.shutdown()
    net.run(2)
    assert a.of_kind("disconnected") == [{"event": "disconnected", "reason": "server_shutdown"}]
    assert net.core.sessions == {} and net.server.connections == {}


def test_contact_list_request_is_answered() -> None:
    """CONTACT_LIST_GET gets the whole list with nicknames and presence."""
    net, a, _b = _logged_in_pair()
    a.do(lambda m: m.session.send(ContactListGet()))
    assert net.run(5, lambda: len(a.of_kind("contacts")) >= 2)
    assert a.of_kind("contacts")[-1]["contacts"][0]["nickname"] == "영희"


# ---- registration -----------------------------------------------------------------


def _register(
    net: LossyNetwork, reg: RegistrationClient, address: tuple[str, int] = ("10.0.0.9", 5555)
) -> list[RegistrationDone]:
    results: list[RegistrationDone] = []

    class Peer:
        def receive(self, data: bytes) -> None:
            results.extend(reg.receive(data, net.clock.seconds()))
            for out in reg.datagrams_to_send():
                net.post(out, address, SERVER)

    net.clients[address] = Peer()  # type: ignore[assignment]
    reg.start(net.clock.seconds())
    for out in reg.datagrams_to_send():
        net.post(out, address, SERVER)
    net.run(10, lambda: bool(results))
    return results


def test_self_registration_gives_a_new_uin_that_can_log_in() -> None:
    """A client registers, gets a fresh UIN, and logs in with it."""
    net = LossyNetwork(seed=8)
    (done,) = _register(net, RegistrationClient("새비밀번호", "새사람", rng=os.urandom))
    assert done.uin == 800000 and done.error is ErrorCode.NONE
    assert net.core.names["uin:800000"] == "새사람"
    c = net.client(800000, "새비밀번호")
    net.login(c)


def test_registration_refused_when_the_admin_disallows_it() -> None:
    """With registration closed, the answer is REFUSED(REGISTRATION_CLOSED)."""
    net = LossyNetwork(seed=9)
    net.core.allow_registration = False
    (done,) = _register(net, RegistrationClient("pw", "nick", rng=os.urandom))
    assert done == RegistrationDone(None, ErrorCode.REGISTRATION_CLOSED)


def test_registration_hello_needs_uin_zero() -> None:
    """A registration HELLO naming a UIN is dropped."""
    server, rec, _ = bare_server()
    server.datagramReceived(hello(uin=5, flags=HELLO_REGISTER), CLIENT)
    assert rec.sent == []


def test_client_session_refuses_utf8_it_did_not_ask_for() -> None:
    """A CHALLENGE choosing UTF-8 for a CP949 client is a protocol error (dropped)."""
    from adapters.uin.codec import Challenge, UinProtocolError

    c = ClientSession(700123, "pw")
    c.start(0.0)
    data = encode(Datagram(Challenge(Charset.UTF8, 4096, b"s" * 16, b"n" * 24), 9, 700123))
    try:
        c.receive(data, 0.0)
    except UinProtocolError:
        pass
    else:
        raise AssertionError("accepted")


def test_client_ends_session_on_a_mac_valid_bad_server_datagram() -> None:
    """The client mirrors the server: a server datagram whose MAC verifies but which
    breaks the protocol (a reserved header bit) ends the session with PROTOCOL_ERROR;
    the same bytes with a wrong MAC are only dropped."""
    from adapters.uin.client.session import ClientState, Disconnected
    from adapters.uin.codec import ContactList, IntegrityError, mac

    net, a, _b = _logged_in_pair()
    conn = next(c for c in net.server.connections.values() if c.session.uin == 700123)
    keys = conn.session.keys
    assert keys is not None
    sent = encode(Datagram(ContactList(True, ()), a.session.session_id, 700123, 0, 0), keys[1])
    bad = bytearray(sent[:-16])
    bad[3] |= 0x02  # a reserved flag bit
    forged = bytes(bad) + bytes(16)
    with pytest.raises(IntegrityError):  # the caller drops it
        a.session.receive(forged, net.clock.seconds())
    assert a.session.state is ClientState.ONLINE
    events = a.session.receive(bytes(bad) + mac(keys[1], bytes(bad)), net.clock.seconds())
    assert events == [Disconnected(ErrorCode.PROTOCOL_ERROR)]
    assert a.session.state is ClientState.CLOSED


def test_message_ack_waits_until_the_core_took_the_message() -> None:
    """The ack of a MESSAGE datagram tells the client "the gateway took it": it is sent
    only once the core's submit has returned, not when the datagram arrived."""
    waiting: list[tuple[Coroutine[Any, Any, Any], Deferred[Any]]] = []
    holding = [False]

    def run(coro: Coroutine[Any, Any, Any]) -> Deferred[Any]:
        if holding[0] and coro.__qualname__.endswith(".submit"):
            later: Deferred[Any] = Deferred()
            waiting.append((coro, later))
            return later
        return run_now(coro)

    net = LossyNetwork(seed=3)
    net.server._run = run  # type: ignore[method-assign]
    a_addr = net.core.add_account(700123, "pw-a")
    b_addr = net.core.add_account(700456, "pw-b")
    befriend(net.core, a_addr, b_addr)
    a, b = net.client(700123, "pw-a"), net.client(700456, "pw-b")
    net.login(a, b)
    channel = a.session.channel
    assert channel is not None and channel.idle
    holding[0] = True
    a.do(lambda m: m.send_message(700456, "taken?"))
    net.run(3)
    assert waiting and not channel.idle  # arrived, not acknowledged: the core has not taken it
    holding[0] = False
    for coro, later in waiting:
        run_now(coro).chainDeferred(later)
    assert net.run(10, lambda: channel.idle)
    assert net.run(10, lambda: bool(b.of_kind("message")))
