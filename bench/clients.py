"""Client connections of the load generator: OSCAR, MSN and the raw relay, on asyncio
protocols (non-blocking sockets, one event loop for thousands of users).

Framing, SNACs, TLVs, login digests and MSN commands all come from the project's own
codecs (adapters.oscar.*, adapters.msn.codec), as the end-to-end tests' clients do;
the login sequences follow tests/oscar/oscar_client.py (libpurple's BOS order) and
tests/msn/msn_client.py (MSNP8 with a Tweener ticket from the gateway's nexus).

A connection has two modes. While logging in, events queue up and coroutines
``expect`` the one they need. Once the user is ready, a handler sees every event as
it is decoded; message texts go to the :class:`~bench.ledger.Ledger`, stamped with
the time the bytes were read (before decoding, so the reader's own parsing does not
count as latency).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import struct
import time
from collections.abc import Callable
from typing import TypeVar, cast

from adapters.msn import challenge
from adapters.msn.codec import Command, CommandCodec, ErrorReply, MsnProtocolError, Role
from adapters.oscar import snac as S
from adapters.oscar.auth import bucp_digest
from adapters.oscar.codec import Keepalive, OscarCodec, Signoff, Signon, SnacEvent, WireEvent
from adapters.oscar.errors import OscarProtocolError
from adapters.oscar.tlv import Tlv, find
from adapters.oscar.translate import build_fragments, fragments_text
from bench.ledger import Ledger

E = TypeVar("E")

LOGIN_TIMEOUT = 60.0
_cookies = itertools.count(1)


class ClientError(RuntimeError):
    """A benchmark client could not do what it had to (login refused, closed...)."""


class _Queued(asyncio.Protocol):
    """Events queue up until a handler is installed; ``expect`` waits for one."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._pending: list[object] = []
        self._waiter: asyncio.Future[None] | None = None
        self.handler: Callable[[object, int], None] | None = None
        self.lost: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = str(exc) if exc else "closed by the server"
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _events(self, events: list[object], now_ns: int) -> None:
        handler = self.handler
        if handler is not None:
            for event in events:
                handler(event, now_ns)
        elif events:
            self._pending.extend(events)
            self._wake()

    def fail(self, reason: str) -> None:
        self.lost = reason
        if self.transport is not None:
            self.transport.abort()
        self._wake()

    async def expect(
        self, match: Callable[[object], bool], timeout: float = LOGIN_TIMEOUT
    ) -> object:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for i, event in enumerate(self._pending):
                if match(event):
                    del self._pending[i]
                    return event
            if self.lost is not None:
                raise ClientError(f"connection lost while waiting: {self.lost}")
            left = deadline - loop.time()
            if left <= 0:
                raise ClientError(f"timed out; pending: {self._pending!r}"[:500])
            self._waiter = loop.create_future()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._waiter, left)
            self._waiter = None

    def take_pending(self) -> list[object]:
        pending, self._pending = self._pending, []
        return pending

    def write(self, data: bytes) -> None:
        if self.transport is None or self.lost is not None:
            raise ClientError(f"write on a closed connection: {self.lost}")
        self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


# ---------------------------------------------------------------- OSCAR


class OscarConnection(_Queued):
    def __init__(self) -> None:
        super().__init__()
        self.codec = OscarCodec(0x2000)
        self.reqid = 0

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter_ns()
        try:
            events = self.codec.receive_data(data)
        except OscarProtocolError as exc:
            self.fail(f"OSCAR protocol error from the server: {exc}")
            return
        self._events(cast(list[object], events), now)

    def send(self, event: WireEvent) -> None:
        self.write(self.codec.send(event))

    def snac(self, body: S.SnacBody) -> int:
        self.reqid = (self.reqid + 1) & 0xFFFFFFFF
        self.send(SnacEvent(S.Snac(body, self.reqid)))
        return self.reqid

    async def expect_snac(self, cls: type[E]) -> E:
        event = await self.expect(
            lambda e: isinstance(e, SnacEvent) and isinstance(e.snac.body, cls)
        )
        assert isinstance(event, SnacEvent)
        return cast(E, event.snac.body)


class RateReplica:
    """The client's copy of the server's rate meter for one class (the moving average
    of the gap between SNACs, in ms, from the advertised 01/07 numbers). A polite
    client sends only while the level stays at or above ``alert``: then the server
    never warns, limits or disconnects it."""

    def __init__(self, rate: S.RateClass, now: float) -> None:
        self.window = max(1, rate.window)
        self.alert = rate.alert
        self.max_level = rate.max_level
        self.level = float(min(rate.current or rate.max_level, rate.max_level))
        self.last = now

    def _after(self, now: float) -> float:
        gap_ms = max(0.0, (now - self.last) * 1000.0)
        return min(float(self.max_level), (self.level * (self.window - 1) + gap_ms) / self.window)

    def allows(self, now: float) -> bool:
        return self._after(now) >= self.alert

    def record(self, now: float) -> None:
        self.level = self._after(now)
        self.last = now


async def _connect(factory: Callable[[], E], host: str, port: int) -> E:
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_connection(
        cast(Callable[[], asyncio.Protocol], factory), host, port
    )
    return cast(E, protocol)


class OscarUser:
    """One ICQ/AIM user: BUCP login, then BOS in libpurple's order."""

    def __init__(self, name: str, ledger: Ledger) -> None:
        self.name = name
        self.ledger = ledger
        self.bos: OscarConnection | None = None
        self.replica: RateReplica | None = None

    async def login(self, host: str, port: int, password: str) -> None:
        auth = await _connect(OscarConnection, host, port)
        try:
            await auth.expect(lambda e: isinstance(e, Signon))
            auth.send(Signon())
            auth.snac(S.BucpChallengeRequest((Tlv(1, self.name.encode()), Tlv(0x4B), Tlv(0x5A))))
            key = await auth.expect_snac(S.BucpChallengeResponse)
            auth.snac(
                S.BucpLoginRequest(
                    (
                        Tlv(1, self.name.encode()),
                        Tlv(0x25, bucp_digest(key.key, password.encode(), True)),
                        Tlv(3, b"gateway bench client"),
                        Tlv(0x4C),
                    )
                )
            )
            reply = await auth.expect_snac(S.BucpLoginResponse)
        finally:
            with contextlib.suppress(ClientError):
                auth.send(Signoff())
            auth.close()
        address, cookie = find(reply.tlvs, 5), find(reply.tlvs, 6)
        if address is None or cookie is None:
            raise ClientError(f"login of {self.name} refused")
        bos_host, _, bos_port = address.decode().rpartition(":")
        bos = await _connect(OscarConnection, bos_host or host, int(bos_port))
        self.bos = bos
        await bos.expect(lambda e: isinstance(e, Signon))
        bos.send(Signon((Tlv(6, cookie),)))
        await bos.expect_snac(S.HostOnline)
        bos.snac(S.ClientVersions(((1, 3), (0x13, 4), (2, 1), (3, 1), (4, 1), (9, 1))))
        bos.snac(S.RateParamsQuery())
        rates = await bos.expect_snac(S.RateParamsReply)
        bos.snac(S.RateParamsSubAdd(tuple(c.class_id for c in rates.classes)))
        bos.snac(S.SelfInfoQuery())
        bos.snac(S.FeedbagRightsQuery())
        bos.snac(S.FeedbagQuery())
        bos.snac(S.LocateRightsQuery())
        bos.snac(S.BuddyRightsQuery())
        bos.snac(S.IcbmParamsQuery())
        bos.snac(S.PdRightsQuery())
        await bos.expect_snac(S.PdRightsReply)
        await bos.expect_snac(S.FeedbagReply)
        bos.snac(S.FeedbagUse())
        bos.snac(S.IcbmSetParams(0, 0x0B, 8000, 999, 999, 0))
        bos.snac(S.ClientOnline((S.ToolVersion(1, 3, 0x0110, 0x0629),)))
        # 04/17 answers 04/10 only once the core has opened the session: logged in.
        bos.snac(S.IcbmOfflineRetrieve())
        await bos.expect_snac(S.IcbmOfflineRetrieveDone)
        icbm_class = self._icbm_class(rates)
        self.replica = RateReplica(icbm_class, time.monotonic()) if icbm_class else None
        for event in bos.take_pending():
            self._on_event(event, time.perf_counter_ns())
        bos.handler = self._on_event

    @staticmethod
    def _icbm_class(rates: S.RateParamsReply) -> S.RateClass | None:
        for group in rates.groups:
            if (S.ICBM, 0x06) in group.pairs:
                return next((c for c in rates.classes if c.class_id == group.class_id), None)
        return None

    def _on_event(self, event: object, now_ns: int) -> None:
        if not isinstance(event, SnacEvent):
            if isinstance(event, Signoff):
                self.ledger.error("oscar-signoff")
            return
        body = event.snac.body
        if isinstance(body, S.IcbmToClient):
            data = find(body.tlvs, 2)
            if data is not None:
                try:
                    self.ledger.receive_text(fragments_text(data), now_ns)
                except OscarProtocolError:
                    self.ledger.error("oscar-bad-fragments")
        elif isinstance(body, S.RateParamChange):
            self.ledger.error(f"oscar-rate-code-{body.code}")
        elif isinstance(body, S.SnacError) and body.family == S.ICBM:
            self.ledger.error(f"oscar-icbm-error-{body.code}")

    def send_text(self, to: str, text: str) -> None:
        assert self.bos is not None
        cookie = struct.pack(">Q", next(_cookies))
        self.bos.snac(S.IcbmToHost(cookie, 1, to, (Tlv(2, build_fragments(text)),)))

    def keepalive(self) -> None:
        if self.bos is not None and self.bos.lost is None:
            self.bos.send(Keepalive())

    @property
    def online(self) -> bool:
        return self.bos is not None and self.bos.lost is None

    def close(self) -> None:
        if self.bos is not None:
            with contextlib.suppress(ClientError):
                self.bos.send(Signoff())
            self.bos.close()


# ---------------------------------------------------------------- MSN


class MsnConnection(_Queued):
    def __init__(self) -> None:
        super().__init__()
        self.codec = CommandCodec(Role.CLIENT)
        self.trid = 0

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter_ns()
        try:
            frames = self.codec.receive_data(data)
        except MsnProtocolError as exc:
            self.fail(f"MSN protocol error from the server: {exc}")
            return
        self._events(cast(list[object], frames), now)

    def send(self, verb: str, *args: str, payload: bytes | None = None) -> int:
        self.trid += 1
        self.write(self.codec.send(Command(verb, self.trid, args, payload)))
        return self.trid

    def send_untracked(self, verb: str) -> None:
        self.write(self.codec.send(Command(verb, None)))

    async def expect_verb(self, verb: str, trid: int | None = None) -> Command:
        def match(e: object) -> bool:
            if isinstance(e, ErrorReply) and (trid is None or e.trid == trid):
                return True
            return isinstance(e, Command) and e.verb == verb and (trid is None or e.trid == trid)

        found = await self.expect(match)
        if isinstance(found, ErrorReply):
            raise ClientError(f"MSN error {found.code} while waiting for {verb}")
        assert isinstance(found, Command)
        return found


def text_payload(body: str) -> bytes:
    return (
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n"
        "X-MMS-IM-Format: FN=Arial; EF=; CO=0; CS=0; PF=22\r\n\r\n" + body
    ).encode()


async def _http_get(host: str, port: int, path: str, headers: dict[str, str]) -> dict[str, str]:
    """A one-shot HTTP/1.0 GET; the response headers (lower-case names)."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        lines = [f"GET {path} HTTP/1.0", f"Host: {host}:{port}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        raw = await asyncio.wait_for(reader.read(), LOGIN_TIMEOUT)
    finally:
        writer.close()
    head = raw.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    out = {"status": head[0] if head else ""}
    for line in head[1:]:
        name, _, value = line.partition(":")
        out[name.strip().lower()] = value.strip()
    return out


async def passport_ticket(host: str, http_port: int, email: str, password: str) -> str:
    """The two Tweener HTTP steps against the gateway: nexus, then the login URL."""
    nexus = await _http_get(host, http_port, "/rdr/pprdr.asp", {})
    urls = nexus.get("passporturls", "")
    da_login = next((p.split("=", 1)[1] for p in urls.split(",") if p.startswith("DALogin=")), "")
    where, _, path = da_login.partition("/")
    login_host, _, login_port = where.rpartition(":")
    header = (
        "Passport1.4 OrgVerb=GET,OrgURL=http%3A%2F%2Fmessenger%2Emsn%2Ecom,"
        f"sign-in={email.replace('@', '%40')},pwd={password},lc=1033,id=507"
    )
    answer = await _http_get(
        login_host or host, int(login_port or http_port), "/" + path, {"Authorization": header}
    )
    info = answer.get("authentication-info", "")
    if "from-PP='t=" not in info:
        raise ClientError(f"passport sign-in of {email} refused ({answer.get('status')})")
    return info.split("from-PP='t=", 1)[1].split("&", 1)[0]


class MsnUser:
    """One MSN user (MSNP8, TWN): the notification connection, the switchboards it
    opened (as a sender) and those it was rung into (as a receiver)."""

    VERSION = 8

    def __init__(self, email: str, ledger: Ledger) -> None:
        self.email = email
        self.ledger = ledger
        self.ns: MsnConnection | None = None
        self.switchboards: list[MsnConnection] = []
        self._answering: set[asyncio.Task[None]] = set()

    async def login(self, host: str, ns_port: int, http_port: int, password: str) -> None:
        ns = await _connect(MsnConnection, host, ns_port)
        self.ns = ns
        ns.send("VER", f"MSNP{self.VERSION}", "CVR0")
        await ns.expect_verb("VER")
        ns.send("USR", "TWN", "I", self.email)
        await ns.expect_verb("USR")
        ticket = await passport_ticket(host, http_port, self.email, password)
        ns.send("USR", "TWN", "S", f"t={ticket}&p=x")
        ok = await ns.expect_verb("USR")
        if not ok.args or ok.args[0] != "OK":
            raise ClientError(f"MSN login of {self.email} refused: {ok}")
        ns.send("CHG", "NLN", "0")
        chl = await ns.expect_verb("CHL")
        self._answer_challenge(chl)
        for frame in ns.take_pending():
            self._on_ns(frame, time.perf_counter_ns())
        ns.handler = self._on_ns

    def _answer_challenge(self, chl: Command) -> None:
        assert self.ns is not None
        product = challenge.default_product(self.VERSION)
        answer = challenge.expected_answer(chl.args[0], product) if chl.args else None
        if answer is None:
            raise ClientError("cannot answer the MSN challenge")
        self.ns.send("QRY", product, payload=answer.encode())

    def _on_ns(self, frame: object, now_ns: int) -> None:
        if not isinstance(frame, Command):
            return
        if frame.verb == "RNG":
            task = asyncio.ensure_future(self._answer_ring(frame))
            self._answering.add(task)
            task.add_done_callback(self._answering.discard)
        elif frame.verb == "CHL":
            self._answer_challenge(frame)
        elif frame.verb == "OUT":
            self.ledger.error("msn-out")

    async def _answer_ring(self, rng: Command) -> None:
        try:
            host, _, port = rng.args[1].partition(":")
            sb = await _connect(MsnConnection, host, int(port))
            self.switchboards.append(sb)
            sb.handler = self._on_sb
            sb.send("ANS", self.email, rng.args[3], rng.args[0])
        except (OSError, ClientError, IndexError, ValueError):
            self.ledger.error("msn-answer-failed")

    def _on_sb(self, frame: object, now_ns: int) -> None:
        if isinstance(frame, ErrorReply):
            self.ledger.error(f"msn-error-{frame.code}")
        elif isinstance(frame, Command):
            if frame.verb == "MSG" and frame.payload is not None:
                head, _, body = frame.payload.partition(b"\r\n\r\n")
                if b"text/plain" in head:
                    self.ledger.receive_text(body.decode("utf-8", "replace"), now_ns)
            elif frame.verb == "NAK":
                self.ledger.error("msn-nak")

    async def open_switchboard(self, host: str, invite: str) -> MsnConnection:
        """XFR SB, USR on the switchboard, CAL ``invite``: a room ready for MSG."""
        assert self.ns is not None
        ns = self.ns
        ns.handler = None  # collect the XFR answer
        try:
            trid = ns.send("XFR", "SB")
            xfr = await ns.expect_verb("XFR", trid)
        finally:
            for frame in ns.take_pending():
                self._on_ns(frame, time.perf_counter_ns())
            ns.handler = self._on_ns
        sb_host, _, sb_port = xfr.args[1].partition(":")
        sb = await _connect(MsnConnection, sb_host or host, int(sb_port))
        self.switchboards.append(sb)
        sb.send("USR", self.email, xfr.args[3])
        await sb.expect_verb("USR")
        trid = sb.send("CAL", invite)
        await sb.expect_verb("CAL", trid)
        await sb.expect_verb("JOI")
        for frame in sb.take_pending():
            self._on_sb(frame, time.perf_counter_ns())
        sb.handler = self._on_sb
        return sb

    def keepalive(self) -> None:
        if self.ns is not None and self.ns.lost is None:
            self.ns.send_untracked("PNG")

    def close(self) -> None:
        for sb in self.switchboards:
            sb.close()
        if self.ns is not None:
            with contextlib.suppress(ClientError):
                self.ns.send_untracked("OUT")
            self.ns.close()


# ---------------------------------------------------------------- relay baseline


class RelayConnection(_Queued):
    """One end of a pair on the raw relay. The sender writes the very FLAP frames an
    OSCAR sender writes (ICBM 04/06); the receiver decodes them with the OSCAR codec
    and reads the text, so both ends cost the load generator what they cost it
    against the gateway."""

    def __init__(self, ledger: Ledger) -> None:
        super().__init__()
        self.ledger = ledger
        self.codec = OscarCodec(0x2000)

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter_ns()
        try:
            events = self.codec.receive_data(data)
        except OscarProtocolError as exc:
            self.fail(f"bad frame from the relay: {exc}")
            return
        for event in events:
            if isinstance(event, SnacEvent) and isinstance(event.snac.body, S.IcbmToHost):
                data_tlv = find(event.snac.body.tlvs, 2)
                if data_tlv is not None:
                    self.ledger.receive_text(fragments_text(data_tlv), now)

    def send_text(self, to: str, text: str) -> None:
        cookie = struct.pack(">Q", next(_cookies))
        body = S.IcbmToHost(cookie, 1, to, (Tlv(2, build_fragments(text)),))
        self.write(self.codec.send(SnacEvent(S.Snac(body, 0))))


async def relay_pair(
    host: str, port: int, pair: int, ledger: Ledger
) -> tuple[RelayConnection, RelayConnection]:
    """Two connections the relay joins by the 4-byte pair id each sends first."""
    ends = []
    for _ in range(2):
        conn = await _connect(lambda: RelayConnection(ledger), host, port)
        conn.write(struct.pack(">I", pair))
        ends.append(conn)
    return ends[0], ends[1]
