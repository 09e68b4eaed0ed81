"""Twisted glue with StringTransport, MemoryReactorClock and an in-memory core double."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.web.test.requesthelper import DummyRequest

from adapters.admission import Rate
from adapters.msn import challenge
from adapters.msn.codec import Command, CommandCodec, ErrorReply, Frame, Role
from adapters.msn.login_http import PassportResource
from adapters.msn.protocol import (
    MsnRates,
    MsnService,
    NotificationFactory,
    SwitchboardFactory,
)
from schema.events import DeliveryFailure, Message, Typing
from tests.msn.msn_fakes import service_for
from tests.support.fake_core import FakeCore, run_now

ADDR = IPv4Address("TCP", "127.0.0.1", 40000)


class Client:
    """One side of a connection driven by our client-side codec."""

    def __init__(self, protocol: object) -> None:
        self.protocol = protocol
        self.transport = StringTransport()
        protocol.makeConnection(self.transport)  # type: ignore[attr-defined]
        self.codec = CommandCodec(Role.CLIENT)
        self.trid = 0

    def send_raw(self, data: bytes) -> None:
        self.protocol.dataReceived(data)  # type: ignore[attr-defined]

    def send(self, verb: str, *args: str, payload: bytes | None = None) -> int:
        self.trid += 1
        self.send_raw(CommandCodec(Role.CLIENT).send(Command(verb, self.trid, args, payload)))
        return self.trid

    def read(self) -> list[Frame]:
        data = self.transport.value()
        self.transport.clear()
        return self.codec.receive_data(data)

    def verbs(self) -> list[str]:
        return [f.verb if isinstance(f, Command) else str(f.code) for f in self.read()]

    @property
    def closed(self) -> bool:
        return self.transport.disconnecting


@pytest.fixture
def world() -> Iterator[tuple[FakeCore, MsnService, MemoryReactorClock]]:
    core = FakeCore()
    for handle, name in (("alice", "Alice"), ("bob", "Bob"), ("carol", "Carol")):
        core.add(f"msn:{handle}@example.com", "secret", name)
    clock = MemoryReactorClock()
    clock.advance(1_000_000)
    yield core, service_for(core, clock), clock


def passport_ticket(service: MsnService, email: str, password: str) -> tuple[int, str]:
    resource = PassportResource(service, lambda: "127.0.0.1:8443")
    request = DummyRequest([b"login2.srf"])
    request.requestHeaders.addRawHeader(
        b"Authorization",
        f"Passport1.4 OrgVerb=GET,OrgURL=http%3A%2F%2Fmessenger%2Emsn%2Ecom,sign-in={email.replace('@', '%40')},pwd={password},lc=1033".encode(),
    )
    resource.render_GET(request)
    assert request.finished
    info = request.responseHeaders.getRawHeaders(b"authentication-info")
    if info is None:
        return request.responseCode or 200, ""
    value = info[0].decode()
    return 200, value.split("from-PP='t=", 1)[1].split("&", 1)[0]


def login(service: MsnService, handle: str, version: int = 8, online: bool = True) -> Client:
    ns = Client(NotificationFactory(service).buildProtocol(ADDR))
    email = f"{handle}@example.com"
    ns.send("VER", f"MSNP{version}", "CVR0")
    if version >= 8:
        ns.send("USR", "TWN", "I", email)
        _, ticket = passport_ticket(service, email, "secret")
        ns.send("USR", "TWN", "S", f"t={ticket}&p=x")
    else:
        ns.send("USR", "MD5", "I", email)
        salt = [f for f in ns.read() if isinstance(f, Command) and f.verb == "USR"][-1].args[2]
        ns.send("USR", "MD5", "S", hashlib.md5((salt + "secret").encode()).hexdigest())
    frames = ns.read()
    assert any(isinstance(f, Command) and f.verb == "USR" and f.args[0] == "OK" for f in frames), (
        frames
    )
    if online:
        ns.send("CHG", "NLN", "0")
        frames = ns.read()
        chl = next(f for f in frames if isinstance(f, Command) and f.verb == "CHL")
        answer = challenge.md5_answer(chl.args[0], "Q1P7W2E4J9R8U3S5").encode()
        ns.send("QRY", "msmsgs@msnmsgr.com", payload=answer)
        assert ns.verbs() == ["QRY"]
    return ns


def switchboard(service: MsnService, ns: Client, handle: str) -> Client:
    ns.read()
    ns.send("XFR", "SB")
    (xfr,) = ns.read()
    assert isinstance(xfr, Command) and xfr.verb == "XFR"
    sb = Client(SwitchboardFactory(service).buildProtocol(ADDR))
    sb.send("USR", f"{handle}@example.com", xfr.args[3])
    (ok,) = sb.read()
    assert isinstance(ok, Command) and ok.args[0] == "OK"
    return sb


def answer_ring(service: MsnService, ns: Client, handle: str) -> tuple[Client, list[Frame]]:
    rng = next(f for f in ns.read() if isinstance(f, Command) and f.verb == "RNG")
    sb = Client(SwitchboardFactory(service).buildProtocol(ADDR))
    sb.send("ANS", f"{handle}@example.com", rng.args[3], rng.args[0])
    return sb, sb.read()


TEXT = b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\nX-MMS-IM-Format: FN=Arial; EF=B; CO=ff; CS=0; PF=22\r\n\r\n"


def test_nexus_names_the_login_endpoint(
    world: tuple[FakeCore, MsnService, MemoryReactorClock],
) -> None:
    """A GET without credentials (any path) is the nexus: PassportURLs with DALogin."""
    _, service, _ = world
    request = DummyRequest([b"rdr", b"pprdr.asp"])
    PassportResource(service, lambda: "gw.example:8443").render_GET(request)
    (urls,) = request.responseHeaders.getRawHeaders(b"passporturls")
    assert b"DALogin=gw.example:8443/login2.srf" in urls


def test_wrong_password_is_401(world: tuple[FakeCore, MsnService, MemoryReactorClock]) -> None:
    """A wrong password is a 401 with a Passport1.4 failure challenge."""
    _, service, _ = world
    code, ticket = passport_ticket(service, "alice@example.com", "wrong")
    assert (code, ticket) == (401, "")


def test_twn_login_sync_and_presence(
    world: tuple[FakeCore, MsnService, MemoryReactorClock],
) -> None:
    """MSNP8 TWN login through the HTTP endpoint; SYN lists a friend; ILN/NLN/FLN follow presence."""
    core, service, _ = world
    core.befriend("msn:alice@example.com", "msn:bob@example.com")
    bob = login(service, "bob")
    alice = Client(NotificationFactory(service).buildProtocol(ADDR))
    alice.send("VER", "MSNP8", "CVR0")
    alice.send("USR", "TWN", "I", "alice@example.com")
    _, ticket = passport_ticket(service, "alice@example.com", "secret")
    alice.send("USR", "TWN", "S", f"t={ticket}&p=x")
    frames = alice.read()
    assert Command("USR", 3, ("OK", "alice@example.com", "Alice", "1", "0")) in frames
    assert any(
        isinstance(f, Command) and f.verb == "MSG" and f.args == ("Hotmail", "Hotmail")
        for f in frames
    )
    trid = alice.send("CHG", "NLN", "0")
    frames = alice.read()
    assert Command("ILN", trid, ("NLN", "bob@example.com", "Bob", "0")) in frames
    alice.send("SYN", "0")
    frames = alice.read()
    assert Command("LST", None, ("bob@example.com", "Bob", "11", "0")) in frames
    assert Command("GTC", None, ("A",)) in frames
    bob.send("CHG", "AWY", "0")
    assert Command("NLN", None, ("AWY", "bob@example.com", "Bob", "0")) in alice.read()
    bob.protocol.connectionLost()  # type: ignore[attr-defined]
    assert Command("FLN", None, ("bob@example.com",)) in alice.read()


def test_md5_login_msnp7(world: tuple[FakeCore, MsnService, MemoryReactorClock]) -> None:
    """MSNP7 clients log in with MD5(salt + password)."""
    _, service, _ = world
    login(service, "alice", version=7, online=False)


def test_md5_wrong_password(world: tuple[FakeCore, MsnService, MemoryReactorClock]) -> None:
    """A wrong MD5 digest is 911 and the connection closes."""
    _, service, _ = world
    ns = Client(NotificationFactory(service).buildProtocol(ADDR))
    ns.send("VER", "MSNP7")
    ns.send("USR", "MD5", "I", "alice@example.com")
    ns.send("USR", "MD5", "S", "0" * 32)
    assert ns.read()[-1] == ErrorReply(911, 3)
    assert ns.closed


def test_two_users_chat_on_switchboards(
    world: tuple[FakeCore, MsnService, MemoryReactorClock],
) -> None:
    """Alice CALs Bob: he is rung at once, her MSG reaches him through the core, and
    she sees him join (JOI) when he answers, as on a real server."""
    core, service, _ = world
    core.befriend("msn:alice@example.com", "msn:bob@example.com")
    alice, bob = login(service, "alice"), login(service, "bob")
    bob.read()
    sb_a = switchboard(service, alice, "alice")
    trid = sb_a.send("CAL", "bob@example.com")
    frames = sb_a.read()
    assert frames == [Command("CAL", trid, ("RINGING", frames[0].args[1]))]  # type: ignore[union-attr]
    rng = bob.transport.value()
    assert rng.startswith(b"RNG ") and b" alice@example.com Alice\r\n" in rng
    sb_a.send(
        "MSG",
        "U",
        payload=b"MIME-Version: 1.0\r\nContent-Type: text/x-msmsgscontrol\r\nTypingUser: alice@example.com\r\n\r\n\r\n",
    )
    trid = sb_a.send("MSG", "A", payload=TEXT + b"hello bob")
    assert sb_a.read() == [Command("ACK", trid)]
    message = next(e for e in core.submitted if isinstance(e, Message))
    assert (message.sender, message.recipient, message.body) == (
        "msn:alice@example.com",
        "msn:bob@example.com",
        "hello bob",
    )
    assert any(isinstance(e, Typing) for e in core.submitted)
    sb_b, frames = answer_ring(service, bob, "bob")
    assert frames[0] == Command("IRO", 1, ("1", "1", "alice@example.com", "Alice"))
    assert frames[1] == Command("ANS", 1, ("OK",))
    msg = frames[2]
    assert isinstance(msg, Command) and msg.args == ("alice@example.com", "Alice")
    assert msg.payload is not None and msg.payload.endswith(b"hello bob") and b"EF=B" in msg.payload
    assert sb_a.read() == [Command("JOI", None, ("bob@example.com", "Bob"))]
    sb_b.send("MSG", "N", payload=TEXT + b"hi alice")
    (back,) = sb_a.read()
    assert isinstance(back, Command) and back.args == ("bob@example.com", "Bob")
    assert back.payload is not None and back.payload.endswith(b"hi alice")
    sb_b.send_raw(b"OUT\r\n")
    assert sb_b.closed
    sb_b.protocol.connectionLost()  # type: ignore[attr-defined]
    assert sb_a.read() == [Command("BYE", None, ("bob@example.com",))]


def test_msnp8_client_chats_with_msnp12_client(
    world: tuple[FakeCore, MsnService, MemoryReactorClock],
) -> None:
    """An MSNP8 and an MSNP12 client (answering CHL with the MSNP11 hash) talk."""
    core, service, _ = world
    core.befriend("msn:alice@example.com", "msn:bob@example.com")
    alice = login(service, "alice", version=8)
    bob = Client(NotificationFactory(service).buildProtocol(ADDR))
    bob.send("VER", "MSNP12")
    bob.send(
        "CVR", "0x0409", "winnt", "5.1", "i386", "MSNMSGR", "7.5.0324", "MSMSGS", "bob@example.com"
    )
    bob.send("USR", "TWN", "I", "bob@example.com")
    _, ticket = passport_ticket(service, "bob@example.com", "secret")
    bob.send("USR", "TWN", "S", f"t={ticket}&p=x")
    frames = bob.read()
    assert Command("USR", 4, ("OK", "bob@example.com", "1", "0")) in frames
    bob.send("CHG", "NLN", "0")
    frames = bob.read()
    assert any(isinstance(f, Command) and f.verb == "UBX" for f in frames)
    chl = next(f for f in frames if isinstance(f, Command) and f.verb == "CHL")
    answer = challenge.msnp11_answer(chl.args[0], "PROD0101{0RM?UBW", "CFHUR$52U_{VIX5T").encode()
    bob.send("QRY", "PROD0101{0RM?UBW", payload=answer)
    assert bob.verbs() == ["QRY"]
    bob.send("SYN", "2005-01-01T00:00:00.0-00:00", "2005-01-01T00:00:00.0-00:00")
    frames = bob.read()
    lst = next(f for f in frames if isinstance(f, Command) and f.verb == "LST")
    assert lst.args[0] == "N=alice@example.com" and lst.args[-2:] == ("11", "1")
    sb_b = switchboard(service, bob, "bob")
    sb_b.send("CAL", "alice@example.com")
    sb_b.read()
    sb_b.send("MSG", "N", payload=TEXT + b"from msnp12")
    _sb_a, frames = answer_ring(service, alice, "alice")
    assert frames[-1].payload.endswith(b"from msnp12")  # type: ignore[union-attr]


def test_three_party_switchboard(world: tuple[FakeCore, MsnService, MemoryReactorClock]) -> None:
    """Alice calls Bob and Carol; each message reaches both others, in one shared room."""
    core, service, _ = world
    core.befriend("msn:alice@example.com", "msn:bob@example.com")
    core.befriend("msn:alice@example.com", "msn:carol@example.com")
    alice, bob, carol = (login(service, h) for h in ("alice", "bob", "carol"))
    sb_a = switchboard(service, alice, "alice")
    sb_a.send("CAL", "bob@example.com")
    sb_a.send("CAL", "carol@example.com")
    assert sb_a.verbs() == ["CAL", "CAL"]  # JOI only when each answers
    sb_a.send("MSG", "N", payload=TEXT + b"hello both")
    assert len([e for e in core.submitted if isinstance(e, Message)]) == 2
    sb_b, frames_b = answer_ring(service, bob, "bob")
    assert sb_a.read() == [Command("JOI", None, ("bob@example.com", "Bob"))]
    sb_c, frames_c = answer_ring(service, carol, "carol")
    assert [f.verb for f in frames_b if isinstance(f, Command)] == ["IRO", "ANS", "MSG"]
    assert {f.args[2] for f in frames_c if isinstance(f, Command) and f.verb == "IRO"} == {
        "alice@example.com",
        "bob@example.com",
    }
    assert frames_c[-1].payload.endswith(b"hello both")  # type: ignore[union-attr]
    assert sb_a.read() == [Command("JOI", None, ("carol@example.com", "Carol"))]
    assert sb_b.read() == [Command("JOI", None, ("carol@example.com", "Carol"))]
    sb_b.send("MSG", "N", payload=TEXT + b"bob here")
    (to_alice,) = sb_a.read()
    (to_carol,) = sb_c.read()
    for frame in (to_alice, to_carol):
        assert isinstance(frame, Command) and frame.args[0] == "bob@example.com"
        assert frame.payload is not None and frame.payload.endswith(b"bob here")
    assert len(service.rooms) == 1


def test_unanswered_ring_puts_the_messages_back_offline(
    world: tuple[FakeCore, MsnService, MemoryReactorClock],
) -> None:
    """If the rung client never answers, what waited goes back to the offline queue, once."""
    core, service, clock = world
    core.befriend("msn:alice@example.com", "msn:bob@example.com")
    alice, bob = login(service, "alice"), login(service, "bob")
    sb_a = switchboard(service, alice, "alice")
    sb_a.send("CAL", "bob@example.com")
    sb_a.send("MSG", "A", payload=TEXT + b"anyone?")
    assert any(isinstance(f, Command) and f.verb == "RNG" for f in bob.read())
    clock.advance(61)
    original = next(e for e in core.submitted if isinstance(e, Message))
    assert [d.event.id for d in core.offline["msn:bob@example.com"]] == [original.id]
    assert not any(isinstance(e, DeliveryFailure) for e in core.submitted)
    assert not any(isinstance(f, Command) and f.verb == "NAK" for f in sb_a.read())
    clock.advance(61)
    assert len(core.offline["msn:bob@example.com"]) == 1


def test_cal_unknown_or_offline(world: tuple[FakeCore, MsnService, MemoryReactorClock]) -> None:
    """CAL of an unknown handle is 205; of an offline user 217."""
    _, service, _ = world
    alice = login(service, "alice")
    sb = switchboard(service, alice, "alice")
    t1 = sb.send("CAL", "nobody@example.com")
    t2 = sb.send("CAL", "bob@example.com")
    assert sb.read() == [ErrorReply(205, t1), ErrorReply(217, t2)]


def test_add_to_forward_list_requests_consent(
    world: tuple[FakeCore, MsnService, MemoryReactorClock],
) -> None:
    """ADD FL stores a subscribed contact and asks the other side; Bob sees ADD RL, and
    his AL consent shows him online to Alice."""
    core, service, _ = world
    alice, bob = login(service, "alice"), login(service, "bob")
    trid = alice.send("ADD", "FL", "bob@example.com", "Bobby", "0")
    frames = alice.read()
    # The reply names Bob by his own name, not what Alice typed (one name per contact).
    assert frames[0] == Command(
        "ADD", trid, ("FL", frames[0].args[1], "bob@example.com", "Bob", "0")
    )  # type: ignore[union-attr]
    (entry,) = core.lists["msn:alice@example.com"].values()
    assert entry.subscribed and entry.contact == "msn:bob@example.com"
    (rl,) = bob.read()
    assert (
        isinstance(rl, Command)
        and rl.verb == "ADD"
        and rl.args[0] == "RL"
        and rl.args[2] == "alice@example.com"
    )
    trid = bob.send("ADD", "AL", "alice@example.com", "alice@example.com")
    assert bob.verbs() == ["ADD"]
    # Bob's consent shows him to Alice at once (she follows him).
    assert alice.read() == [Command("NLN", None, ("NLN", "bob@example.com", "Bob", "0"))]
    again = alice.send("ADD", "FL", "bob@example.com", "Bobby")
    assert alice.read() == [ErrorReply(215, again)]
    t = alice.send("ADD", "FL", "ghost@example.com", "Ghost")
    assert alice.read() == [ErrorReply(205, t)]


def test_groups_msnp10(world: tuple[FakeCore, MsnService, MemoryReactorClock]) -> None:
    """ADG/REG/RMG with GUIDs on MSNP10+; the group shows in SYN until removed."""
    _, service, _ = world
    alice = Client(NotificationFactory(service).buildProtocol(ADDR))
    alice.send("VER", "MSNP10")
    alice.send("USR", "TWN", "I", "alice@example.com")
    _, ticket = passport_ticket(service, "alice@example.com", "secret")
    alice.send("USR", "TWN", "S", f"t={ticket}&p=x")
    alice.read()
    alice.send("ADG", "Friends", "0")
    (adg,) = alice.read()
    assert isinstance(adg, Command) and adg.verb == "ADG" and adg.args[0] == "Friends"
    guid = adg.args[1]
    alice.send("SYN", "0", "0")
    assert Command("LSG", None, ("Friends", guid)) in alice.read()
    alice.send("REG", guid, "Pals")
    assert alice.verbs() == ["REG"]
    t = alice.send("RMG", guid)
    assert alice.read() == [Command("RMG", t, (guid,))]
    t = alice.send("RMG", "00000000-0000-0000-0000-000000000000")
    assert alice.read() == [ErrorReply(230, t)]


def test_garbage_closes_only_that_connection(
    world: tuple[FakeCore, MsnService, MemoryReactorClock],
) -> None:
    """Malformed bytes close the offending connection with an error; others carry on."""
    _, service, _ = world
    alice = login(service, "alice")
    rogue = Client(NotificationFactory(service).buildProtocol(ADDR))
    rogue.send_raw(b"\x00\x01garbage\r\n")
    assert rogue.read() == [ErrorReply(200, None)]
    assert rogue.closed and not alice.closed
    alice.send_raw(b"PNG\r\n")
    assert alice.verbs() == ["QNG"]


def test_oversized_switchboard_message_closes(
    world: tuple[FakeCore, MsnService, MemoryReactorClock],
) -> None:
    """A MSG over 1664 bytes closes the switchboard connection."""
    _, service, _ = world
    alice = login(service, "alice")
    sb = switchboard(service, alice, "alice")
    sb.send_raw(b"MSG 5 N 5000\r\n")
    assert sb.closed


def test_offline_messages_ring_after_login(
    world: tuple[FakeCore, MsnService, MemoryReactorClock],
) -> None:
    """Messages that waited offline ring the client as soon as it goes online."""
    core, service, _ = world
    core.befriend("msn:alice@example.com", "msn:bob@example.com")
    alice = login(service, "alice")
    sb_a = switchboard(service, alice, "alice")
    core.offline["msn:bob@example.com"] = []
    sb_a.send("CAL", "bob@example.com")  # bob offline
    assert sb_a.read()[0] == ErrorReply(217, sb_a.trid)
    run_now(
        core.submit(
            Message(sender="msn:alice@example.com", recipient="msn:bob@example.com", body="later")
        )
    )
    bob = Client(NotificationFactory(service).buildProtocol(ADDR))
    bob.send("VER", "MSNP8")
    bob.send("USR", "TWN", "I", "bob@example.com")
    _, ticket = passport_ticket(service, "bob@example.com", "secret")
    bob.send("USR", "TWN", "S", f"t={ticket}&p=x")
    bob.send("CHG", "NLN")
    _sb_b, frames = answer_ring(service, bob, "bob")
    assert frames[-1].payload.endswith(b"later")  # type: ignore[union-attr]


def test_messages_before_the_callee_answers_wait_bounded_in_bytes(
    world: tuple[FakeCore, MsnService, MemoryReactorClock],
) -> None:
    """Messages written before a rung MSN user answers all wait for the ANS (no count
    limit, nothing bounced); past the byte bound the link takes no more, so the core
    keeps the rest offline, and it is not writable past the soft bound."""
    core, service, _ = world
    # 800 messages at one instant of the fake clock: lift the flood rates (ADR 0017),
    # this test is about the byte bound of the ring wait.
    service.rates = MsnRates(command=Rate(1e6, 1e6), message=Rate(1e6, 1e6))
    core.befriend("msn:alice@example.com", "msn:bob@example.com")
    alice, bob = login(service, "alice"), login(service, "bob")
    sb_a = switchboard(service, alice, "alice")
    sb_a.send("CAL", "bob@example.com")
    sb_a.read()
    for i in range(200):
        sb_a.send("MSG", "A", payload=TEXT + f"m{i}".encode())
    replies = [f.verb for f in sb_a.read() if isinstance(f, Command)]
    assert replies.count("ACK") == 200 and "NAK" not in replies
    assert bob.protocol.writable  # type: ignore[attr-defined]
    big = "x" * 1000
    for _ in range(600):
        sb_a.send("MSG", "A", payload=TEXT + big.encode())
    assert not bob.protocol.writable  # type: ignore[attr-defined]
    assert len(core.offline.get("msn:bob@example.com", [])) > 0  # kept, not bounced
    assert not any(isinstance(e, DeliveryFailure) for e in core.submitted)
    _sb_b, frames = answer_ring(service, bob, "bob")
    shown = [f for f in frames if isinstance(f, Command) and f.verb == "MSG"]
    assert shown[0].payload.endswith(b"m0")  # type: ignore[union-attr]
    assert shown[199].payload.endswith(b"m199")  # type: ignore[union-attr]
    assert bob.protocol.writable  # type: ignore[attr-defined]


def test_ims_off_means_nobody_can_ring_you(
    world: tuple[FakeCore, MsnService, MemoryReactorClock],
) -> None:
    """A user who sent IMS OFF is not rung: a CAL of them is 217 (not online to you),
    and a message for them from outside any room comes back as a failure."""
    core, service, _ = world
    core.befriend("msn:alice@example.com", "msn:bob@example.com")
    alice, bob = login(service, "alice"), login(service, "bob")
    bob.send("IMS", "OFF")
    assert bob.verbs() == ["IMS"]
    sb_a = switchboard(service, alice, "alice")
    trid = sb_a.send("CAL", "bob@example.com")
    assert sb_a.read() == [ErrorReply(217, trid)]
    run_now(
        core.submit(
            Message(sender="msn:carol@example.com", recipient="msn:bob@example.com", body="hi")
        )
    )
    assert bob.read() == []  # not rung for a message either: it goes back as a failure
    failure = next(e for e in core.submitted if isinstance(e, DeliveryFailure))
    assert failure.recipient == "msn:carol@example.com"


def test_stranger_may_call_and_write_first(
    world: tuple[FakeCore, MsnService, MemoryReactorClock],
) -> None:
    """Nobody authorized Alice, yet her CAL of online Bob rings him (consent is about
    presence, not about writing first); once Bob blocks her it is 217."""
    _, service, _ = world
    alice, bob = login(service, "alice"), login(service, "bob")
    sb_a = switchboard(service, alice, "alice")
    trid = sb_a.send("CAL", "bob@example.com")
    assert sb_a.read() == [Command("CAL", trid, ("RINGING", sb_a.protocol.room.room_id))]  # type: ignore[attr-defined]
    assert any(isinstance(f, Command) and f.verb == "RNG" for f in bob.read())
    bob.send("ADD", "BL", "alice@example.com", "alice@example.com")
    bob.read()
    sb_2 = switchboard(service, alice, "alice")
    trid = sb_2.send("CAL", "bob@example.com")
    assert sb_2.read() == [ErrorReply(217, trid)]


def test_renaming_oneself_renames_the_person_everywhere(
    world: tuple[FakeCore, MsnService, MemoryReactorClock],
) -> None:
    """PRP MFN (REA of oneself below MSNP10) is the person renaming themselves: the
    core's display name changes and followers get NLN with the new name at once."""
    core, service, _ = world
    core.befriend("msn:alice@example.com", "msn:bob@example.com")
    alice, bob = login(service, "alice"), login(service, "bob", version=8)
    alice.read()
    trid = bob.send("REA", "bob@example.com", "Bobby%20B")
    assert bob.read()[0] == Command("REA", trid, ("1", "bob@example.com", "Bobby%20B"))
    assert core.names["msn:bob@example.com"] == "Bobby B"
    assert alice.read() == [Command("NLN", None, ("NLN", "bob@example.com", "Bobby%20B", "0"))]
    bob.send("REA", "alice@example.com", "Ally")  # a name for a contact: no rename
    assert core.names["msn:alice@example.com"] == "Alice"


def test_message_to_an_empty_room_is_not_acknowledged(
    world: tuple[FakeCore, MsnService, MemoryReactorClock],
) -> None:
    """When the one rung never answered (the invitation expired), a later MSG has nobody
    to reach: NAK, never an ACK for a message that went nowhere."""
    core, service, clock = world
    core.befriend("msn:alice@example.com", "msn:bob@example.com")
    alice, _ = login(service, "alice"), login(service, "bob")
    sb_a = switchboard(service, alice, "alice")
    sb_a.send("CAL", "bob@example.com")
    sb_a.read()
    clock.advance(61)
    trid = sb_a.send("MSG", "A", payload=TEXT + b"still there?")
    assert sb_a.read() == [Command("NAK", trid)]
    assert not any(isinstance(e, Message) for e in core.submitted)


def test_caller_who_leaves_before_the_answer_is_still_reached(
    world: tuple[FakeCore, MsnService, MemoryReactorClock],
) -> None:
    """Alice CALs Bob, writes and closes her switchboard before he answers: Bob still
    reads her message (she stays in the room virtually), and his reply rings her."""
    core, service, _ = world
    core.befriend("msn:alice@example.com", "msn:bob@example.com")
    alice, bob = login(service, "alice"), login(service, "bob")
    sb_a = switchboard(service, alice, "alice")
    sb_a.send("CAL", "bob@example.com")
    sb_a.send("MSG", "N", payload=TEXT + b"call me back")
    sb_a.protocol.connectionLost()  # type: ignore[attr-defined]
    sb_b, frames = answer_ring(service, bob, "bob")
    assert frames[0] == Command("IRO", 1, ("1", "1", "alice@example.com", "Alice"))
    assert frames[-1].payload.endswith(b"call me back")  # type: ignore[union-attr]
    sb_b.send("MSG", "N", payload=TEXT + b"here I am")
    _sb_a2, back = answer_ring(service, alice, "alice")
    assert back[-1].payload.endswith(b"here I am")  # type: ignore[union-attr]


def test_a_message_refused_while_submitted_gets_nak_and_no_ack(
    world: tuple[FakeCore, MsnService, MemoryReactorClock],
) -> None:
    """A message the core refuses at once (here: the recipient's account is gone) is
    answered NAK only: never ACK as well, which would say "delivered"."""
    core, service, _ = world
    core.befriend("msn:alice@example.com", "msn:bob@example.com")
    alice, _ = login(service, "alice"), login(service, "bob")
    sb_a = switchboard(service, alice, "alice")
    sb_a.send("CAL", "bob@example.com")
    sb_a.read()
    del core.passwords["msn:bob@example.com"]
    trid = sb_a.send("MSG", "A", payload=TEXT + b"anyone?")
    assert sb_a.read() == [Command("NAK", trid)]


def test_messages_waiting_for_a_user_who_signs_out_go_back_offline_at_once(
    world: tuple[FakeCore, MsnService, MemoryReactorClock],
) -> None:
    """A rung user who signs out before answering: what waited for them is back in their
    offline queue at once (their next login replays it), not held until the ring expires."""
    core, service, _ = world
    core.befriend("msn:alice@example.com", "msn:bob@example.com")
    alice, bob = login(service, "alice"), login(service, "bob")
    sb_a = switchboard(service, alice, "alice")
    sb_a.send("CAL", "bob@example.com")
    sb_a.send("MSG", "A", payload=TEXT + b"wait for me")
    assert any(isinstance(f, Command) and f.verb == "RNG" for f in bob.read())
    bob.protocol.connectionLost(Failure(ConnectionDone()))  # type: ignore[attr-defined]
    waiting = core.offline.get("msn:bob@example.com", [])
    assert [d.event.body for d in waiting] == ["wait for me"]  # type: ignore[union-attr]
    assert not any(isinstance(e, DeliveryFailure) for e in core.submitted)
