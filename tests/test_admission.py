"""Admission (issue 13, "bounded everything"): per-connection command rates and the cap on
connections per source, as pure logic and as MSN glue over StringTransport with a
MemoryReactorClock (the real-socket floods are in tests/test_floods.py)."""

from __future__ import annotations

import ast
from pathlib import Path

from twisted.internet.address import IPv4Address
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import MemoryReactorClock, StringTransport

from adapters.admission import CommandBudget, Rate, SourceCap, TokenBucket
from adapters.msn.codec import Command, ErrorReply
from adapters.msn.protocol import (
    CHANGE,
    CHANGE_VERBS,
    COMMAND,
    DEFAULT_RATES,
    ERR_CHANGING_TOO_RAPIDLY,
    MsnService,
    SwitchboardFactory,
)
from tests.msn.test_msn_glue import ADDR, Client, login, world

__all__ = ["world"]  # the fixture, imported for the MSN glue tests below

VECTORS = Path(__file__).parent / "vectors" / "msn"


# ---- the buckets (pure)


def test_a_bucket_gives_its_burst_then_its_rate() -> None:
    """50 at once, the 51st refused; after 1 s at 10/s, 10 more and no more."""
    bucket = TokenBucket.full(Rate(10.0, 50.0), now=100.0)
    assert all(bucket.take(100.0) for _ in range(50))
    assert not bucket.take(100.0)
    assert sum(bucket.take(101.0) for _ in range(20)) == 10


def test_a_budget_counts_each_kind_apart() -> None:
    """Spending the change bucket leaves the command bucket whole; unknown kinds pass."""
    budget = CommandBudget({"command": Rate(1.0, 3.0), "change": Rate(1.0, 1.0)}, now=0.0)
    assert budget.take("change", 0.0) and not budget.take("change", 0.0)
    assert all(budget.take("command", 0.0) for _ in range(3))
    assert budget.take("other", 0.0)


def _client_verbs(vector: str) -> list[str]:
    verbs = []
    for line in (VECTORS / vector).read_text(encoding="utf-8").splitlines():
        if line.startswith("C [NS] "):
            rest = line.split("] ", 1)[1]
            data = ast.literal_eval(rest) if rest.startswith("b'") else rest.encode()
            for piece in data.split(b"\r\n"):
                word = piece[:3].decode("latin-1")
                if len(word) == 3 and word.isupper() and word.isalpha():
                    verbs.append(word)
    return verbs


def test_the_captured_client_sessions_fit_the_default_rates_all_at_once() -> None:
    """msn-pecan's and msnp.py's whole captured sessions, every command at the same
    instant, never exceed the default notification-server rates."""
    for vector in ("msnp12-msn-pecan-session.txt", "msnp8-msnp.py-session.txt"):
        verbs = _client_verbs(vector)
        assert len(verbs) >= 5
        budget = CommandBudget(DEFAULT_RATES.notification(), now=0.0)
        kinds = [CHANGE if v in CHANGE_VERBS else COMMAND for v in verbs]
        assert all(budget.take(kind, 0.0) for kind in kinds), vector


# ---- the cap on connections per source


class _Quiet(Protocol):
    lost = False

    def connectionLost(self, reason: object = None) -> None:
        self.lost = True


def _cap(limit: int) -> tuple[SourceCap, MemoryReactorClock, list[tuple[str, int]]]:
    clock = MemoryReactorClock()
    logged: list[tuple[str, int]] = []
    cap = SourceCap(
        Factory.forProtocol(_Quiet),
        limit,
        clock,
        "test",
        log_line=lambda what, source, lim, count: logged.append((source, count)),
    )
    return cap, clock, logged


def _connect(cap: SourceCap, host: str) -> tuple[object | None, StringTransport]:
    addr = IPv4Address("TCP", host, 50000)
    transport = StringTransport(peerAddress=addr)
    protocol = cap.buildProtocol(addr)
    if protocol is not None:
        protocol.makeConnection(transport)
    return protocol, transport


def test_connections_over_the_cap_are_refused_and_a_closed_one_frees_a_place() -> None:
    """Three from one host with a cap of 2: the third gets no protocol (Twisted then
    closes the socket at once); another host is not affected; closing one frees a place."""
    cap, _, _ = _cap(2)
    first, _ = _connect(cap, "10.0.0.1")
    second, _ = _connect(cap, "10.0.0.1")
    third, _ = _connect(cap, "10.0.0.1")
    assert first is not None and second is not None and third is None
    other, _ = _connect(cap, "10.0.0.2")
    assert other is not None
    first.connectionLost(None)  # type: ignore[attr-defined]
    again, _ = _connect(cap, "10.0.0.1")
    assert again is not None
    assert cap.open == {"10.0.0.1": 2, "10.0.0.2": 1}


def test_refusals_are_logged_once_per_source_per_minute_with_a_count() -> None:
    """1,000 refusals in a minute make one line; the next minute's line counts the rest."""
    cap, clock, logged = _cap(1)
    _connect(cap, "10.0.0.1")
    for _ in range(1000):
        _connect(cap, "10.0.0.1")
    assert logged == [("10.0.0.1", 1)]
    clock.advance(61)
    _connect(cap, "10.0.0.1")
    assert logged == [("10.0.0.1", 1), ("10.0.0.1", 1000)]
    assert cap.refused == 1001


# ---- MSN glue: what a client past its rate gets


def test_a_png_flood_is_answered_up_to_the_burst_then_out_and_closed(
    world: tuple[object, MsnService, MemoryReactorClock],
) -> None:
    """PNG past the command burst: OUT, the connection closes, nothing more is answered."""
    _, service, _ = world
    alice = login(service, "alice")
    alice.read()
    burst = int(DEFAULT_RATES.command.burst)
    alice.send_raw(b"PNG\r\n" * (burst * 3))
    verbs = alice.verbs()
    assert verbs.count("QNG") < burst
    assert verbs[-1] == "OUT" and alice.closed
    alice.send_raw(b"PNG\r\n")
    assert alice.verbs() == []


def test_a_chg_flood_gets_error_800_then_out(
    world: tuple[object, MsnService, MemoryReactorClock],
) -> None:
    """CHG past the change burst: 800 with its trid, then OUT and closed."""
    _, service, _ = world
    alice = login(service, "alice")
    alice.read()
    frames = []
    for i in range(int(DEFAULT_RATES.change.burst) * 2):
        alice.send("CHG", "AWY" if i % 2 else "NLN", "0")
        frames += alice.read()
        if alice.closed:
            break
    errors = [f for f in frames if isinstance(f, ErrorReply)]
    assert [e.code for e in errors] == [ERR_CHANGING_TOO_RAPIDLY]
    assert errors[0].trid == alice.trid
    assert isinstance(frames[-1], Command) and frames[-1].verb == "OUT" and alice.closed


def test_changes_within_the_rate_are_never_refused(
    world: tuple[object, MsnService, MemoryReactorClock],
) -> None:
    """One CHG a second for five minutes is a normal (if busy) client: never cut off."""
    _, service, clock = world
    alice = login(service, "alice")
    for i in range(300):
        clock.advance(1.0)
        alice.send("CHG", "AWY" if i % 2 else "NLN", "0")
        alice.send("PNG")
    assert not alice.closed
    assert "800" not in alice.verbs()


def test_a_switchboard_msg_flood_is_naked_and_the_switchboard_closed(
    world: tuple[object, MsnService, MemoryReactorClock],
) -> None:
    """MSG A past the message burst: that message is NAKed, the switchboard closes."""
    _, service, _ = world
    alice = login(service, "alice")
    alice.send("XFR", "SB")
    xfr = next(f for f in alice.read() if isinstance(f, Command) and f.verb == "XFR")
    sb = Client(SwitchboardFactory(service).buildProtocol(ADDR))
    sb.send("USR", "alice@example.com", xfr.args[3])
    sb.read()
    payload = b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\nhi"
    for _ in range(int(DEFAULT_RATES.message.burst) + 5):
        sb.send("MSG", "A", payload=payload)
        if sb.closed:
            break
    last = sb.read()[-1]
    assert isinstance(last, Command) and last.verb == "NAK" and last.trid == sb.trid
    assert sb.closed
