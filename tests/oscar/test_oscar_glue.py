"""Twisted glue: StringTransport + MemoryReactorClock, a synchronous runner and the
in-memory double of our own CoreServices interface (tests/support/fake_core.py)."""

from __future__ import annotations

import asyncio

import pytest
from twisted.internet.testing import MemoryReactorClock, StringTransport

from adapters.contract import Delivery, LimitsBody, ShowsTyping
from adapters.oscar import session as M
from adapters.oscar import snac as S
from adapters.oscar.adapter import OscarAdapter, OscarSettings
from adapters.oscar.auth import CookieMint, bucp_digest
from adapters.oscar.codec import OscarCodec, Signoff, Signon, SnacEvent, WireEvent
from adapters.oscar.protocol import OscarFactory, OscarServerProtocol
from adapters.oscar.tlv import Tlv, find
from adapters.output_bound import OutputLimits
from schema.events import Message, Typing
from schema.records import ContactEntry
from tests.support.fake_core import FakeCore, run_now

CoreDouble = FakeCore  # the name tests/test_text.py imports


class Wire:
    """A client on a StringTransport."""

    def __init__(self, factory: OscarFactory) -> None:
        self.proto = factory.buildProtocol(None)
        self.transport = StringTransport(peerAddress=None)
        self.proto.makeConnection(self.transport)  # type: ignore[no-untyped-call]
        self.codec = OscarCodec(5)
        self.view = OscarCodec()

    def read(self) -> list[WireEvent]:
        data = self.transport.value()
        self.transport.clear()
        return self.view.receive_data(data)

    def send(self, event: WireEvent) -> list[WireEvent]:
        self.proto.dataReceived(self.codec.send(event))
        return self.read()

    def snac(self, body: S.SnacBody) -> list[S.SnacBody]:
        events = self.send(SnacEvent(S.Snac(body, 1)))
        return [e.snac.body for e in events if isinstance(e, SnacEvent)]


@pytest.fixture
def clock() -> MemoryReactorClock:
    return MemoryReactorClock()


@pytest.fixture
def core() -> FakeCore:
    """Two AIM accounts: alice (pw-a) and bob (pw-b)."""
    core = FakeCore()
    core.add("oscar:alice", "pw-a")
    core.add("oscar:bob", "pw-b")
    return core


@pytest.fixture
def factory(core: FakeCore, clock: MemoryReactorClock) -> OscarFactory:
    config = M.SessionConfig(bos_address="")
    return OscarFactory(
        core, clock, CookieMint(b"k" * 32), config, bos_host="gw.example", run=run_now
    )


def sign_in(factory: OscarFactory, name: str, password: str) -> Wire:
    auth = Wire(factory)
    assert auth.read() == [Signon()]
    auth.send(Signon())
    (key,) = auth.snac(S.BucpChallengeRequest((Tlv(1, name.encode()),)))
    assert isinstance(key, S.BucpChallengeResponse)
    digest = bucp_digest(key.key, password.encode(), prehashed=False)
    (reply,) = auth.snac(S.BucpLoginRequest((Tlv(1, name.encode()), Tlv(0x25, digest))))
    assert isinstance(reply, S.BucpLoginResponse)
    assert find(reply.tlvs, 5) == b"gw.example:12345"  # StringTransport's host port
    cookie = find(reply.tlvs, 6) or b""
    bos = Wire(factory)
    bos.read()
    bos.send(Signon((Tlv(6, cookie),)))
    bos.snac(S.FeedbagQuery())
    bos.snac(S.IcbmSetParams(0, 0x0B, 8000, 999, 999, 0))
    bos.snac(S.ClientOnline(()))
    return bos


def test_login_through_the_glue_registers_a_link_with_capabilities(
    factory: OscarFactory, core: FakeCore
) -> None:
    """BUCP then BOS over StringTransports: the core gets a typed, capable link."""
    sign_in(factory, "alice", "pw-a")
    link = core.links["oscar:alice"]
    assert isinstance(link, ShowsTyping) and isinstance(link, LimitsBody)
    assert link.max_body_chars == 1024


def test_delivery_and_typing_are_written_to_the_socket(
    factory: OscarFactory, core: FakeCore
) -> None:
    """The core's deliver() and show_typing() become 04/07 and 04/14 on the wire."""
    bos = sign_in(factory, "alice", "pw-a")
    link = core.links["oscar:alice"]
    assert link.deliver(
        Delivery(Message(sender="oscar:bob", recipient="oscar:alice", body="hi"), "bob")
    )
    assert isinstance(link, ShowsTyping)
    assert link.show_typing("bob", Typing(sender="oscar:bob", recipient="oscar:alice", active=True))
    kinds = [type(e.snac.body).__name__ for e in bos.read() if isinstance(e, SnacEvent)]
    assert kinds == ["IcbmToClient", "IcbmClientEvent"]


def test_messages_from_the_client_reach_core_submit(factory: OscarFactory, core: FakeCore) -> None:
    """An IM on the socket is submitted to the core."""
    from adapters.oscar.translate import build_fragments

    bos = sign_in(factory, "alice", "pw-a")
    bos.snac(S.IcbmToHost(bytes(8), 1, "bob", (Tlv(2, build_fragments("yo")),)))
    assert [getattr(e, "body", None) for e in core.submitted] == ["yo"]


def test_garbage_is_logged_once_and_closes_only_that_connection(
    factory: OscarFactory, core: FakeCore
) -> None:
    """A bad frame: sign-off written, connection lost, the core session closed, the
    other user untouched."""
    alice = sign_in(factory, "alice", "pw-a")
    bob = sign_in(factory, "bob", "pw-b")
    alice_session = core.session_id_of("oscar:alice")
    alice.proto.dataReceived(b"\x2bjunk")
    assert isinstance(alice.read()[-1], Signoff)
    assert alice.transport.disconnecting
    alice.proto.connectionLost()
    assert core.closed == [alice_session]
    assert not bob.transport.disconnecting
    assert core.links["oscar:bob"].deliver(
        Delivery(Message(sender="oscar:alice", recipient="oscar:bob", body="still here"), "alice")
    )


def test_delivery_after_disconnect_returns_false(factory: OscarFactory, core: FakeCore) -> None:
    """A gone connection tells the core to keep the event offline."""
    bos = sign_in(factory, "alice", "pw-a")
    bos.proto.connectionLost()
    assert not core.links["oscar:alice"].deliver(
        Delivery(Message(sender="oscar:bob", recipient="oscar:alice", body="late"), "bob")
    )


def test_a_client_that_stops_reading_is_disconnected_not_buffered(
    core: FakeCore, clock: MemoryReactorClock
) -> None:
    """Its socket full (the transport paused us), deliveries past the output limit abort
    that one connection; the core session closes; bob is untouched."""
    factory = OscarFactory(
        core,
        clock,
        CookieMint(b"k" * 32),
        M.SessionConfig(bos_address=""),
        bos_host="gw.example",
        run=run_now,
        output=OutputLimits(limit=8192, stall_seconds=60.0),
    )
    alice = sign_in(factory, "alice", "pw-a")
    bob = sign_in(factory, "bob", "pw-b")
    alice.read()
    alice_session = core.session_id_of("oscar:alice")
    producer = alice.transport.producer
    assert producer is not None
    producer.pauseProducing()  # what Twisted does when the socket buffer is full
    link = core.links["oscar:alice"]
    body = "x" * 1000
    results = [
        link.deliver(
            Delivery(Message(sender="oscar:bob", recipient="oscar:alice", body=body), "bob")
        )
        for _ in range(20)
    ]
    assert alice.transport.disconnecting
    assert False in results
    assert len(alice.transport.value()) < 8192 + 2 * 1100
    alice.proto.connectionLost()
    assert core.closed == [alice_session]
    assert not bob.transport.disconnecting


def test_timers_run_on_the_injected_clock(factory: OscarFactory, clock: MemoryReactorClock) -> None:
    """A stalled connection is signed off when the fake clock passes the deadline."""
    wire = Wire(factory)
    wire.read()
    clock.advance(59)
    assert not wire.transport.disconnecting
    clock.advance(2)
    assert isinstance(wire.read()[-1], Signoff) and wire.transport.disconnecting


def test_keepalive_is_sent_on_the_clock(factory: OscarFactory, clock: MemoryReactorClock) -> None:
    """Online and quiet for a minute: a channel-5 keepalive goes out."""
    bos = sign_in(factory, "alice", "pw-a")
    bos.read()
    clock.advance(61)
    assert [type(e).__name__ for e in bos.read()] == ["Keepalive"]


def test_second_login_signs_off_the_first(factory: OscarFactory) -> None:
    """The same user logging in again: the old connection gets sign-off code 1."""
    first = sign_in(factory, "alice", "pw-a")
    first.read()
    sign_in(factory, "alice", "pw-a")
    last = first.read()[-1]
    assert isinstance(last, Signoff) and find(last.tlvs, 9) == b"\x00\x01"


def test_contact_store_failure_still_answers_the_feedbag(
    factory: OscarFactory, core: FakeCore
) -> None:
    """If contacts cannot be loaded the client still gets a (empty) 13/06, no hang."""
    core.fail_contacts = True
    bos = sign_in(factory, "alice", "pw-a")
    assert bos.proto.session is not None and bos.proto.session.state is M.State.ONLINE


def test_foreign_contacts_are_shown_under_their_alias(
    factory: OscarFactory, core: FakeCore
) -> None:
    """A contact stored with its real MSN address appears as its OSCAR alias."""
    core.add("msn:carol@example.com", "pw-c")
    core.aliases["oscar:700123"] = "msn:carol@example.com"
    core.lists["oscar:alice"] = {"msn:carol@example.com": ContactEntry("msn:carol@example.com")}
    wire = sign_in(factory, "alice", "pw-a")
    assert isinstance(wire.proto, OscarServerProtocol)
    session = wire.proto.session
    assert session is not None and session._feedbag is not None
    assert session._feedbag.buddies() == ("700123",)


def test_settings_are_validated_strictly() -> None:
    """Unknown keys and bad ports are refused; defaults follow ARCHITECTURE.md."""
    assert OscarSettings().port == 5190
    with pytest.raises(ValueError):
        OscarSettings.model_validate({"port": 70000})
    with pytest.raises(ValueError):
        OscarSettings.model_validate({"colour": "blue"})


def test_adapter_listens_on_an_ephemeral_port_and_stops(core: FakeCore) -> None:
    """start() on port 0 reports the real port; stop() closes the listener."""
    reactor = MemoryReactorClock()

    async def scenario() -> None:
        adapter = OscarAdapter()
        settings = {"port": 0, "host": "127.0.0.1"}
        listeners = await adapter.start(core, reactor, settings)  # type: ignore[arg-type]
        (listener,) = listeners
        assert listener.description.startswith("oscar listening on 127.0.0.1:")
        assert reactor.tcpServers[0][0] == 0
        await adapter.stop()

    asyncio.run(scenario())
