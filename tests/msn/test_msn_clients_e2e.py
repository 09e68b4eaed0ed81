"""Real clients' sessions against a real gateway process (real sockets, real Redis):
captured client bytes replayed, and MSN semantics real clients rely on."""

from __future__ import annotations

import ast
import re
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from adapters.msn import challenge
from adapters.msn.codec import Command, CommandCodec, ErrorReply, Frame, Role
from tests.msn.msn_client import MsnClient, login, open_switchboard, passport_ticket, text
from tests.support.node import GatewayNode

pytestmark = pytest.mark.slow

MSN = {"factory": "adapters.msn.adapter:MsnAdapter", "switchboard_port": 0, "http_port": 0}
VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "msn"


def client_segments(name: str) -> list[bytes]:
    """The client's TCP segments of a capture ('C [NS] b"..."' lines), in order."""
    out = []
    for raw in (VECTORS / name).read_text(encoding="utf-8").splitlines():
        if raw.startswith("C [NS] "):
            segment = ast.literal_eval(raw[len("C [NS] ") :])
            assert isinstance(segment, bytes)
            out.append(segment)
    return out


class Wire:
    """A raw socket plus our client-side codec: every frame the server sent is kept."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.codec = CommandCodec(Role.CLIENT)
        self.frames: list[Frame] = []
        self.closed = False

    def read_until(self, done: Callable[[], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise TimeoutError(f"server sent only {self.frames}")
            data = self.sock.recv(65536)
            if not data:
                self.closed = True
                return
            self.frames += self.codec.receive_data(data)

    def answered(self, trid: int) -> bool:
        return any(getattr(f, "trid", None) == trid for f in self.frames)


def test_msn_pecan_session_replayed_is_never_signed_off(
    gateway_node: Callable[..., GatewayNode],
) -> None:
    """msn-pecan's whole captured MSNP12 session (ADG, ADC N=/C=, SBP ... MFN) replayed
    byte for byte gets an answer to every command and never an error or a close."""
    node = gateway_node(["msn"], adapter_settings={"msn": MSN})
    node.add_account("msn", "carol@example.com", "secret", "Carol")
    ns_port, http_port = node.port("msn", 0), node.port("msn", 2)
    wire = Wire(ns_port)
    for segment in client_segments("msnp12-msn-pecan-session.txt"):
        if segment.startswith(b"USR 4 TWN S "):  # a fresh Passport ticket for this gateway
            ticket = passport_ticket(http_port, "carol@example.com", "secret")
            segment = re.sub(rb"t=[^&]*&", b"t=" + ticket.encode() + b"&", segment)
        if b"QRY 9 " in segment:  # the answer to this gateway's challenge
            chl = next(f for f in wire.frames if isinstance(f, Command) and f.verb == "CHL")
            answer = challenge.expected_answer(chl.args[0], "PROD0101{0RM?UBW")
            assert answer is not None
            segment = segment[: -len(answer)] + answer.encode()
        commands = CommandCodec(Role.SERVER).receive_data(segment)
        wire.sock.sendall(segment)
        last = commands[-1]
        assert isinstance(last, Command)
        if last.trid is None:  # OUT: the server closes
            wire.read_until(lambda: wire.closed)
        else:
            trid = last.trid
            wire.read_until(lambda t=trid: wire.answered(t) or wire.closed)  # type: ignore[misc]
        errors = [f for f in wire.frames if isinstance(f, ErrorReply)]
        assert errors == [], f"answered {segment!r} with {errors}"
        assert not wire.closed or last.verb == "OUT", f"closed after {segment!r}"
    sbp = [f for f in wire.frames if isinstance(f, Command) and f.verb == "SBP"]
    assert len(sbp) == 1 and sbp[0].args[1:] == ("MFN", "gateway@gateway.invalid")


def test_commands_msnp8_to_12_clients_send_are_answered(
    gateway_node: Callable[..., GatewayNode],
) -> None:
    """URL, SND, SDC (with its note), IMS, GCF, PRP phones and SBP get their real-server
    answers over a real socket, and a later SYN gives the PRP/SBP values back."""
    node = gateway_node(["msn"], adapter_settings={"msn": MSN})
    for handle, name in (("alice", "Alice"), ("bob", "Bob")):
        node.add_account("msn", f"{handle}@example.com", "secret", name)
    ns_port, http_port = node.port("msn", 0), node.port("msn", 2)
    alice = login(ns_port, http_port, "alice@example.com", "secret", version=12)
    trid = alice.send("ADC", "FL", "N=bob@example.com", "F=Bob")
    guid = next(a[2:] for a in alice.expect("ADC", trid).args if a.startswith("C="))
    asked: list[tuple[tuple[str, ...], bytes | None, tuple[str, ...]]] = [
        (("URL", "INBOX"), None, ("/", "about:blank", "2")),
        (("SND", "someone@example.org", "0x0409", "MSMSGS", "MSMSGS"), None, ("OK",)),
        (("SDC", "x@example.org", "0x0409", "MSMSGS", "WindowsMessenger", "X", "X", "Alice"),
         b"Hi there", ("OK",)),
        (("IMS", "ON"), None, ("0", "ON")),
        (("GCF", "Shields.xml"), None, ("Shields.xml",)),
        (("PRP", "PHH", "555%20123"), None, ("PHH", "555%20123")),
        (("SBP", guid, "PHM", "tel:+15554444333", "1"), None, (guid, "PHM", "tel:+15554444333", "1")),
        (("SBP", guid, "MFN", "Bobby"), None, (guid, "MFN", "Bobby")),
    ]  # fmt: skip
    for words, payload, expected in asked:
        trid = alice.send(*words, payload=payload)
        reply = alice.expect(words[0], trid)
        assert reply.args == expected, reply
    trid = alice.send("SYN", "0", "0")
    alice.expect("SYN", trid)
    assert alice.expect("PRP").args == ("MFN", "Alice")
    assert alice.expect("PRP").args == ("PHH", "555%20123")
    lst = alice.expect("LST")
    assert lst.args[0] == "N=bob@example.com" and "F=Bob" in lst.args  # the person's own name
    assert alice.expect("BPR").args == ("PHM", "tel:+15554444333")
    alice.close()


def test_cal_of_an_msn_user_rings_at_once_and_joi_follows_ans(
    gateway_node: Callable[..., GatewayNode],
) -> None:
    """CAL of a connected MSN user: RNG reaches them at once (before any message), the
    caller gets JOI only when they answer, and a message written before that waits."""
    node = gateway_node(["msn"], adapter_settings={"msn": MSN})
    for handle, name in (("alice", "Alice"), ("bob", "Bob")):
        node.add_account("msn", f"{handle}@example.com", "secret", name)
    ns_port, http_port = node.port("msn", 0), node.port("msn", 2)
    alice = login(ns_port, http_port, "alice@example.com", "secret")
    bob = login(ns_port, http_port, "bob@example.com", "secret")
    sb_a = open_switchboard(alice, "alice@example.com")
    trid = sb_a.send("CAL", "bob@example.com")
    assert sb_a.expect("CAL", trid).args[0] == "RINGING"
    rng = bob.expect("RNG")  # no message yet: the ring comes from the CAL
    assert rng.args[4:] == ("alice@example.com", "Alice")
    sb_a.sock.settimeout(0.5)
    with pytest.raises(TimeoutError):
        sb_a.take("JOI")  # not before Bob answers
    sb_a.sock.settimeout(10)
    early = sb_a.send("MSG", "A", payload=text("are you there?"))
    host, _, port = rng.args[1].partition(":")
    sb_b = MsnClient(int(port), host)
    sb_b.send("ANS", "bob@example.com", rng.args[3], rng.args[0])
    iro = sb_b.take("IRO")
    assert iro.args[2:] == ("alice@example.com", "Alice")
    sb_b.take("ANS")
    assert sb_a.take("JOI").args == ("bob@example.com", "Bob")
    sb_a.take("ACK", early)
    msg = sb_b.take("MSG")
    assert msg.payload is not None and msg.payload.endswith(b"are you there?")
    for client in (sb_a, sb_b, alice, bob):
        client.close()
