"""Twisted glue for UIN: one DatagramProtocol for the whole UDP port.

Thin on purpose. It rate-limits by source host, answers a HELLO without a valid
cookie statelessly (HELLO_VERIFY), creates a :class:`ServerSession` only for a
HELLO that returns with its cookie, finds sessions by session id and drops any
datagram whose source address is not the one the session was created for, then
lets the sans-IO session decide. Core calls go through an injectable ``run``
(``adapters.aio.as_deferred`` in production, a synchronous runner in unit tests);
time comes from an injected IReactorTime.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, TypeVar, cast

from twisted.internet.defer import Deferred, DeferredLock
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from adapters.contract import CoreServices, Delivery, ServiceUnavailable
from adapters.uin import crypto
from adapters.uin.codec import (
    ENTRY_ALLOWED,
    ENTRY_BLOCKED,
    ENTRY_PENDING,
    ENTRY_SUBSCRIBED,
    HELLO_REGISTER,
    HELLO_WANT_UTF8,
    MAX_PAYLOAD,
    NONCE_SIZE,
    AuthReply,
    AuthRequest,
    Body,
    Charset,
    Command,
    ContactAdd,
    ContactItem,
    ContactList,
    ContactListGet,
    ContactRemove,
    Datagram,
    ErrorCode,
    Hello,
    HelloVerify,
    MessageFailed,
    MessageFragment,
    PresenceNotice,
    Refused,
    Search,
    SearchItem,
    SearchResult,
    Status,
    StatusSet,
    TypingNotice,
    UinProtocolError,
    decode,
    encode,
    frame,
)
from adapters.uin.session import (
    CommandReceived,
    LoginAttempted,
    RegistrationPhase,
    ServerRegistration,
    ServerSession,
    SessionEnded,
    SessionEvent,
    State,
)
from adapters.uin.translate import (
    MAX_BODY_CHARS,
    MAX_MESSAGE_BYTES,
    MAX_NICK_BYTES,
    MAX_STATUS_BYTES,
    Reassembler,
    decode_text,
    encode_limited,
    failure_code,
    fragments,
    message_size,
    native_uin,
    presence_from_canonical,
    presence_to_canonical,
    wire_time,
)
from schema.addresses import AddressError, make_address, split_address
from schema.events import (
    Authorization,
    ContactRequest,
    DeliveryFailure,
    DeliveryReceipt,
    FormatSpan,
    Message,
    Presence,
    PresenceState,
    Typing,
)
from schema.records import ContactEntry, ScramProof

T = TypeVar("T")
X = TypeVar("X")
NETWORK = "uin"
Address = tuple[str, int]


class DelayedCall(Protocol):
    def active(self) -> bool: ...

    def cancel(self) -> None: ...


class Clock(Protocol):
    """The part of IReactorTime the glue uses (typed for mypy without zope)."""

    def seconds(self) -> float: ...

    def callLater(
        self, delay: float, callable: Callable[..., object], *args: object, **kw: object
    ) -> DelayedCall: ...


class UdpTransport(Protocol):
    def write(self, packet: bytes, addr: tuple[str, int]) -> None: ...


class CoreRunner(Protocol):
    """Runs a core coroutine and gives its result as a Deferred."""

    def __call__(self, coro: Coroutine[Any, Any, T], /) -> Deferred[T]: ...


@dataclass(frozen=True, slots=True)
class Limits:
    packets_per_second: float = 50.0
    packet_burst: float = 100.0
    hellos_per_second: float = 2.0
    hello_burst: float = 10.0
    registrations_per_second: float = 0.1
    registration_burst: float = 3.0
    max_sessions: int = 10_000
    max_sessions_per_host: int = 32
    max_tracked_hosts: int = 65_536


@dataclass(slots=True)
class TokenBucket:
    rate: float
    burst: float
    tokens: float
    stamp: float

    def take(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class HostLimiter:
    """One token bucket per source host, forgetting hosts when the table is full."""

    def __init__(self, rate: float, burst: float, max_hosts: int) -> None:
        self._rate, self._burst, self._max = rate, burst, max_hosts
        self._buckets: dict[str, TokenBucket] = {}

    def allow(self, host: str, now: float) -> bool:
        bucket = self._buckets.get(host)
        if bucket is None:
            if len(self._buckets) >= self._max:
                self._buckets.clear()  # crude but bounded: everyone starts afresh
            bucket = self._buckets[host] = TokenBucket(self._rate, self._burst, self._burst, now)
        return bucket.take(now)


@dataclass(eq=False)
class Connection:
    """Everything the glue keeps for one session."""

    session: ServerSession
    address: Address
    owner: str
    nonce_key: tuple[Address, bytes]
    timer: DelayedCall | None = None
    core_session: str | None = None
    link: UinLink | None = None
    reassembler: Reassembler = field(default_factory=Reassembler)
    next_msg_id: int = 1
    sent_ids: dict[str, tuple[int, int]] = field(default_factory=dict)  # canonical -> wire
    offline_replay: bool = False
    fragment_seqs: list[int] = field(default_factory=list)
    """Datagrams of the message being reassembled: their acks wait for the core."""
    replayed: set[str] = field(default_factory=set)  # event ids written during the replay
    closed: bool = False
    commands: DeferredLock = field(default_factory=DeferredLock)  # one command at a time


@dataclass(eq=False)
class PendingRegistration:
    registration: ServerRegistration
    address: Address
    nonce_key: tuple[Address, bytes]
    timer: DelayedCall | None = None


UNACKED_PAUSE = 128
"""Unacknowledged commands to a client past which its link says it is not writable
(four reliable windows): the core's offline replay waits, so a backlog is never all
queued in memory."""
WRITABLE_POLL = 0.05
"""Seconds between two checks of a link that is not writable."""


class UinLink:
    """The core's handle on one logged-in UIN client."""

    def __init__(self, server: UinServer, conn: Connection) -> None:
        self._server = server
        self._conn = conn

    @property
    def max_body_chars(self) -> int:
        return MAX_BODY_CHARS

    @property
    def max_body_size(self) -> int:
        return MAX_MESSAGE_BYTES

    def body_size(self, body: str, spans: tuple[FormatSpan, ...] = ()) -> int:
        return message_size(body, self._conn.session.charset)  # formatting is dropped

    def deliver(self, delivery: Delivery) -> bool:
        return self._server.deliver(self._conn, delivery)

    @property
    def writable(self) -> bool:
        """FlowControlled: the client acknowledges as fast as the core writes (what waits
        unacknowledged stays under ``UNACKED_PAUSE`` commands)."""
        return self._conn.closed or self._conn.session.unacknowledged < UNACKED_PAUSE

    def when_writable(self, callback: Callable[[], None]) -> None:
        if self.writable:
            callback()
        else:
            self._server.clock.callLater(WRITABLE_POLL, self.when_writable, callback)

    def show_typing(self, peer: str, event: Typing) -> bool:
        uin = native_uin(peer)
        if uin is None:
            return False
        return self._server.send(self._conn, TypingNotice(uin, event.active))


class UinServer(DatagramProtocol):
    log = Logger()

    def __init__(
        self,
        core: CoreServices,
        clock: Clock,
        *,
        run: CoreRunner,
        rng: crypto.Random = os.urandom,
        cookie_secret: bytes | None = None,
        limits: Limits | None = None,
        allow_utf8: bool = True,
    ) -> None:
        self.core = core
        self.clock = clock
        self._run = run
        self._rng = rng
        self._cookies = crypto.CookieMaker(cookie_secret or rng(32))
        self.limits = limits or Limits()
        self._allow_utf8 = allow_utf8
        lim = self.limits
        self._packets = HostLimiter(lim.packets_per_second, lim.packet_burst, lim.max_tracked_hosts)
        self._hellos = HostLimiter(lim.hellos_per_second, lim.hello_burst, lim.max_tracked_hosts)
        self._registrations = HostLimiter(
            lim.registrations_per_second, lim.registration_burst, lim.max_tracked_hosts
        )
        self.connections: dict[int, Connection] = {}
        self.pending_registrations: dict[int, PendingRegistration] = {}
        self._by_nonce: dict[tuple[Address, bytes], int] = {}
        self._per_host: dict[str, int] = {}
        self.dropped = 0
        self._last_drop_log = -1e9

    # ---- datagram entry -------------------------------------------------------------

    def datagramReceived(self, datagram: bytes, addr: object) -> None:
        host, port = cast(tuple[str, int], addr)[:2]
        address: Address = (str(host), int(port))
        now = self.clock.seconds()
        if not self._packets.allow(address[0], now):
            self._drop(address, "rate limited")
            return
        try:
            header = frame(datagram)  # framing only: the session checks the rest
        except UinProtocolError as exc:
            self._drop(address, str(exc))
            return
        if header.session_id == 0:
            if header.command == Command.HELLO:
                self._hello(datagram, address, now)
            else:
                self._drop(address, f"command {header.command:#06x} without a session")
            return
        conn = self.connections.get(header.session_id)
        if conn is not None:
            if conn.address != address:
                self._drop(address, "session used from another address")
                return
            try:
                events = conn.session.receive(datagram, now)
            except UinProtocolError as exc:
                self._drop(address, str(exc))
                return
            self._handle(conn, events)
            return
        pending = self.pending_registrations.get(header.session_id)
        if pending is not None and pending.address == address:
            self._register(pending, datagram)
            return
        self._drop(address, "unknown session")

    def _drop(self, address: Address, why: str) -> None:
        """Count a dropped datagram; log at most one line per minute about them."""
        self.dropped += 1
        now = self.clock.seconds()
        if now - self._last_drop_log >= 60.0:
            self._last_drop_log = now
            self.log.info(
                "uin: dropped datagram from {host}: {why} ({count} dropped so far)",
                host=address[0],
                why=why,
                count=self.dropped,
            )

    def _write(self, data: bytes, address: Address) -> None:
        if self.transport is not None:
            cast(UdpTransport, self.transport).write(data, address)

    # ---- handshake ------------------------------------------------------------------

    def _hello(self, data: bytes, address: Address, now: float) -> None:
        if not self._hellos.allow(address[0], now):
            self._drop(address, "hello rate limited")
            return
        try:
            datagram = decode(data)
        except UinProtocolError as exc:
            self._drop(address, str(exc))
            return
        hello = datagram.body
        assert isinstance(hello, Hello)
        register = bool(hello.flags & HELLO_REGISTER)
        uin = datagram.uin
        if register == (uin != 0):
            self._drop(address, "hello names a UIN and registration, or neither")
            return
        args = (address[0], address[1], now, uin, hello.flags, hello.client_nonce)
        if not hello.cookie or not self._cookies.check(hello.cookie, *args):
            cookie = self._cookies.issue(*args)
            self._write(encode(Datagram(HelloVerify(cookie), 0, uin)), address)
            return
        nonce_key = (address, hello.client_nonce)
        known = self._by_nonce.get(nonce_key)
        if known is not None:
            self._hello_again(known)
            return
        charset = (
            Charset.UTF8 if hello.flags & HELLO_WANT_UTF8 and self._allow_utf8 else Charset.CP949
        )
        if (
            len(self.connections) + len(self.pending_registrations) >= self.limits.max_sessions
            or self._per_host.get(address[0], 0) >= self.limits.max_sessions_per_host
        ):
            self._write(encode(Datagram(Refused(ErrorCode.SERVER_BUSY), 0, uin)), address)
            return
        session_id = self._new_session_id()
        if register:
            self._start_registration(session_id, hello, charset, address, nonce_key, now)
            return
        try:
            owner = make_address(NETWORK, str(uin))
        except AddressError:
            self._drop(address, "hello for an impossible UIN")
            return
        session = ServerSession(
            session_id=session_id, hello=hello, uin=uin, now=now, charset=charset
        )
        conn = Connection(session, address, owner, nonce_key)
        self.connections[session_id] = conn
        self._by_nonce[nonce_key] = session_id
        self._per_host[address[0]] = self._per_host.get(address[0], 0) + 1
        self._arm(conn)
        d = self._run(self.core.scram_parameters(owner))
        d.addCallback(lambda params: self._parameters(conn, params.salt, params.iterations))
        d.addErrback(self._core_failed, conn)

    def _hello_again(self, session_id: int) -> None:
        conn = self.connections.get(session_id)
        if conn is not None:
            try:
                conn.session.hello_repeated()
            except UinProtocolError:
                return
            self._flush(conn)
            return
        pending = self.pending_registrations.get(session_id)
        if pending is not None:
            pending.registration.hello_repeated()
            self._flush_registration(pending)

    def _new_session_id(self) -> int:
        while True:
            sid = int.from_bytes(self._rng(8), "big")
            if sid and sid not in self.connections and sid not in self.pending_registrations:
                return sid

    def _parameters(self, conn: Connection, salt: bytes, iterations: int) -> None:
        nonce = self._rng(NONCE_SIZE)
        conn.session.parameters(salt, iterations, nonce, self.clock.seconds())
        self._flush(conn)

    def _core_failed(self, failure: Failure, conn: Connection) -> None:
        if not failure.check(ServiceUnavailable):  # an outage is logged once, by the core
            self.log.failure("uin: core call failed for {owner}", failure, owner=conn.owner)
        if not conn.closed:
            self._handle(conn, conn.session.close(ErrorCode.INTERNAL))

    # ---- session events -------------------------------------------------------------

    def _handle(self, conn: Connection, events: Sequence[SessionEvent]) -> None:
        for event in events:
            if isinstance(event, LoginAttempted):
                proof = ScramProof(event.auth_message, event.proof)
                d = self._run(self.core.check_login(conn.owner, proof, conn.address[0]))
                d.addCallback(
                    lambda result: self._login_checked(conn, result.ok, result.server_signature)
                )
                d.addErrback(self._core_failed, conn)
            elif isinstance(event, CommandReceived):
                self._command(conn, event.body, event.seq)
            elif isinstance(event, SessionEnded):
                self._ended(conn, event.reason)
        self._flush(conn)

    def _login_checked(self, conn: Connection, ok: bool, signature: bytes) -> None:
        if not ok or not signature:
            self.log.info("uin: login refused for {owner}", owner=conn.owner)
            self._handle(conn, conn.session.login_rejected())
            return
        conn.session.login_accepted(signature, self.clock.seconds())
        self._flush(conn)
        if conn.session.state is not State.OPENING:
            return
        self._take_over(conn)
        conn.link = UinLink(self, conn)
        presence = presence_to_canonical(conn.session.hello.presence)
        if presence is PresenceState.OFFLINE:
            presence = PresenceState.ONLINE
        # The core may write the waiting (offline) events through the link while
        # open_session runs, and also returns them: both count as the offline replay.
        conn.offline_replay = True
        d = self._run(self.core.open_session(conn.owner, conn.link, presence, ""))
        d.addCallback(lambda opened: self._opened(conn, opened.session_id, opened.offline))
        d.addErrback(self._core_failed, conn)

    def _opened(self, conn: Connection, core_session: str, offline: Sequence[Delivery]) -> None:
        conn.core_session = core_session
        if conn.closed:
            self._run(self.core.close_session(core_session)).addErrback(self._logged)
            return
        self.log.info("uin: {owner} logged in from {host}", owner=conn.owner, host=conn.address[0])
        for delivery in offline:
            if delivery.event.id not in conn.replayed:
                self.deliver(conn, delivery)
        conn.offline_replay = False
        conn.replayed.clear()
        self._handle(conn, conn.session.opened())
        self._push_contacts(conn)

    def _take_over(self, conn: Connection) -> None:
        """One logged-in session per UIN on this node (spec section 6, "Two logins"):
        the newer login wins, the older one is told GOODBYE(LOGGED_IN_ELSEWHERE)."""
        for other in list(self.connections.values()):
            if (
                other is not conn
                and other.owner == conn.owner
                and other.session.state in (State.OPENING, State.ONLINE)
            ):
                self.log.info(
                    "uin: {owner} logged in again from {host}: the older session ends",
                    owner=conn.owner,
                    host=conn.address[0],
                )
                self._handle(other, other.session.close(ErrorCode.LOGGED_IN_ELSEWHERE))

    def _ended(self, conn: Connection, reason: ErrorCode) -> None:
        if conn.closed:
            return
        conn.closed = True
        self._flush(conn)
        self.connections.pop(conn.session.session_id, None)
        self._by_nonce.pop(conn.nonce_key, None)
        left = self._per_host.get(conn.address[0], 1) - 1
        if left > 0:
            self._per_host[conn.address[0]] = left
        else:
            self._per_host.pop(conn.address[0], None)
        if conn.timer is not None and conn.timer.active():
            conn.timer.cancel()
        conn.timer = None
        if conn.core_session is not None:
            self._run(self.core.close_session(conn.core_session)).addErrback(self._logged)
        if reason not in (ErrorCode.LOGGED_OUT, ErrorCode.LOGIN_FAILED):
            self.log.info(
                "uin: session of {owner} ended: {reason}", owner=conn.owner, reason=reason.name
            )

    def _logged(self, failure: Failure) -> None:
        if not failure.check(ServiceUnavailable):  # an outage is logged once, by the core
            self.log.failure("uin: core call failed", failure)

    def _flush(self, conn: Connection) -> None:
        now = self.clock.seconds()
        for data in conn.session.datagrams_to_send(now):
            self._write(data, conn.address)
        if conn.closed:
            return
        if conn.timer is not None and conn.timer.active():
            conn.timer.cancel()
        conn.timer = None
        self._arm(conn)

    def _arm(self, conn: Connection) -> None:
        when = conn.session.get_timer()
        if when is not None:
            delay = max(0.0, when - self.clock.seconds())
            conn.timer = self.clock.callLater(delay, self._timer_fired, conn)

    def _timer_fired(self, conn: Connection) -> None:
        conn.timer = None
        if conn.closed:
            return
        self._handle(conn, conn.session.handle_timer(self.clock.seconds()))

    def send(self, conn: Connection, body: Body) -> bool:
        """Queue a command to the client and transmit."""
        if conn.closed or not conn.session.send(body):
            return False
        self._flush(conn)
        return True

    # ---- commands from the client ---------------------------------------------------

    def _text(self, conn: Connection, data: bytes) -> str:
        return decode_text(data, conn.session.charset)

    def _wire_text(self, conn: Connection, text: str, limit: int) -> bytes:
        return encode_limited(text, conn.session.charset, limit)

    def _command(self, conn: Connection, body: Body, seq: int = 0) -> None:
        if isinstance(body, MessageFragment):
            if seq:
                conn.fragment_seqs.append(seq)
            try:
                whole = conn.reassembler.feed(body)
            except UinProtocolError:
                self._handle(conn, conn.session.close(ErrorCode.PROTOCOL_ERROR))
                return
            if whole is None:
                return
            seqs, conn.fragment_seqs = conn.fragment_seqs, []
            if not whole.text:
                # Section 7.2: empty messages are not sent; refused, the session goes on.
                self.send(conn, MessageFailed(whole.uin, whole.msg_id, ErrorCode.BAD_REQUEST))
                self._release(conn, seqs)
            else:
                self._submit_message(conn, whole.uin, whole.msg_id, whole.text, seqs)
        elif isinstance(body, TypingNotice):
            self._guarded(conn, self._typing(conn, body.uin, body.active))
        elif isinstance(body, ContactAdd):
            self._guarded(conn, self._contact_add(conn, body.uin, self._text(conn, body.text)))
        elif isinstance(body, ContactRemove):
            self._guarded(conn, self._contact_remove(conn, body.uin))
        elif isinstance(body, ContactListGet):
            self._push_contacts(conn)
        elif isinstance(body, AuthReply):
            text = self._text(conn, body.text)
            self._guarded(conn, self._auth_reply(conn, body.uin, body.granted, text))
        elif isinstance(body, StatusSet):
            self._guarded(conn, self._status(conn, body.presence, self._text(conn, body.text)))
        elif isinstance(body, Search):
            self._guarded(conn, self._search(conn, body.search_id, self._text(conn, body.text)))
        else:  # the session only hands up client commands
            raise AssertionError(f"unhandled {body.COMMAND.name}")

    def _guarded(self, conn: Connection, coro: Coroutine[Any, Any, None]) -> None:
        """Run one client command against the core, after the connection's earlier
        ones: each reads and rewrites the contact list, so two must not interleave."""
        conn.commands.run(lambda: self._run(coro)).addErrback(self._core_failed, conn)

    def _peer(self, uin: int) -> str | None:
        try:
            return make_address(NETWORK, str(uin))
        except AddressError:
            return None

    def _submit_message(
        self, conn: Connection, uin: int, msg_id: int, text: str, seqs: Sequence[int] = ()
    ) -> None:
        """Submit a whole message; the acks of its datagrams (``seqs``) go only once the
        core has taken it (written to the recipient or durably queued), or together
        with the MESSAGE_FAILED that refuses it."""
        recipient = self._peer(uin)
        if recipient is None or len(text) > MAX_BODY_CHARS:
            code = ErrorCode.UNKNOWN_RECIPIENT if recipient is None else ErrorCode.TOO_LARGE
            self.send(conn, MessageFailed(uin, msg_id, code))
            self._release(conn, seqs)
            return
        message = Message(sender=conn.owner, recipient=recipient, body=text)
        conn.sent_ids[message.id] = (uin, msg_id)
        while len(conn.sent_ids) > 512:
            del conn.sent_ids[next(iter(conn.sent_ids))]
        d = self._run(self.core.submit(message))
        d.addErrback(self._submit_failed, conn, uin, msg_id)
        d.addBoth(lambda _: self._release(conn, seqs))

    def _release(self, conn: Connection, seqs: Sequence[int]) -> None:
        if not seqs or conn.closed:
            return
        for seq in seqs:
            conn.session.release(seq)
        self._flush(conn)

    def _submit_failed(self, failure: Failure, conn: Connection, uin: int, msg_id: int) -> None:
        if failure.check(ServiceUnavailable):
            return  # the core's DeliveryFailure (unavailable) answered it: SERVER_BUSY
        self.log.failure("uin: submit failed for {owner}", failure, owner=conn.owner)
        self.send(conn, MessageFailed(uin, msg_id, ErrorCode.INTERNAL))

    async def _typing(self, conn: Connection, uin: int, active: bool) -> None:
        recipient = self._peer(uin)
        if recipient is not None:
            await self.core.submit(Typing(sender=conn.owner, recipient=recipient, active=active))

    async def _contact_add(self, conn: Connection, uin: int, text: str) -> None:
        contact = self._peer(uin)
        if contact is None or contact == conn.owner:
            return
        entries = {e.contact: e for e in await self.core.contacts(conn.owner)}
        old = entries.get(await self.core.resolve(contact) or contact)
        entry = (
            replace(old, subscribed=True, pending=not old.allowed or old.pending)
            if old
            else ContactEntry(contact=contact, subscribed=True, pending=True)
        )
        await self.core.put_contact(conn.owner, entry)
        await self.core.submit(ContactRequest(sender=conn.owner, recipient=contact, text=text))
        await self._contacts(conn)

    async def _contact_remove(self, conn: Connection, uin: int) -> None:
        contact = self._peer(uin)
        if contact is not None:
            await self.core.remove_contact(conn.owner, contact)
        await self._contacts(conn)

    async def _auth_reply(self, conn: Connection, uin: int, granted: bool, text: str) -> None:
        contact = self._peer(uin)
        if contact is None:
            return
        if granted:
            entries = {e.contact: e for e in await self.core.contacts(conn.owner)}
            old = entries.get(await self.core.resolve(contact) or contact)
            entry = (
                replace(old, allowed=True)
                if old
                else ContactEntry(contact=contact, subscribed=False, allowed=True)
            )
            await self.core.put_contact(conn.owner, entry)
        event = Authorization(sender=conn.owner, recipient=contact, granted=granted, text=text)
        await self.core.submit(event)
        await self._contacts(conn)

    async def _status(self, conn: Connection, status: Status, text: str) -> None:
        if conn.core_session is not None:
            state = presence_to_canonical(status)
            await self.core.set_presence(conn.core_session, state, text)

    async def _search(self, conn: Connection, search_id: int, text: str) -> None:
        found = await self.core.find_accounts(NETWORK, text.strip(), 20) if text.strip() else []
        items: list[SearchItem] = []
        for account in found:
            uin = native_uin(split_address(account.address)[1])
            if uin is not None and not account.disabled:
                nick = self._wire_text(conn, account.display_name, MAX_NICK_BYTES)
                items.append(SearchItem(uin, nick))
        for chunk, last in _chunks(items, lambda i: 5 + len(i.nickname), MAX_PAYLOAD - 4):
            self.send(conn, SearchResult(search_id, last, tuple(chunk)))

    def _push_contacts(self, conn: Connection) -> None:
        self._guarded(conn, self._contacts(conn))

    async def _contacts(self, conn: Connection) -> None:
        items: list[ContactItem] = []
        for entry in await self.core.contacts(conn.owner):
            network, native = split_address(entry.contact)
            if network != NETWORK:
                native = await self.core.present_as(entry.contact, NETWORK)
            uin = native_uin(native)
            if uin is None:
                continue
            state = await self.core.presence_of(entry.contact, conn.owner)
            name = entry.display_name
            if not name:
                account = await self.core.account(entry.contact)
                name = account.display_name if account else ""
            flags = (
                (ENTRY_SUBSCRIBED if entry.subscribed else 0)
                | (ENTRY_ALLOWED if entry.allowed else 0)
                | (ENTRY_PENDING if entry.pending else 0)
                | (ENTRY_BLOCKED if entry.blocked else 0)
            )
            nick = self._wire_text(conn, name, MAX_NICK_BYTES)
            items.append(ContactItem(uin, flags, presence_from_canonical(state), nick))
        for chunk, last in _chunks(items, lambda i: 7 + len(i.nickname), MAX_PAYLOAD - 2):
            self.send(conn, ContactList(last, tuple(chunk)))

    # ---- events from the core -------------------------------------------------------

    def deliver(self, conn: Connection, delivery: Delivery) -> bool:
        if conn.closed:
            return False
        event = delivery.event
        uin = native_uin(delivery.peer)
        if uin is None:
            self.log.warn("uin: cannot show peer {peer!r} as a UIN", peer=delivery.peer)
            return True  # undeliverable here forever: do not keep it offline
        charset = conn.session.charset
        bodies: list[Body]
        offline = conn.offline_replay or delivery.offline
        if conn.offline_replay:
            conn.replayed.add(event.id)
        if isinstance(event, Message) and not event.body:
            return True  # section 7.2: no empty MESSAGE is ever sent (nothing to show)
        if isinstance(event, Message):
            msg_id = conn.next_msg_id
            conn.next_msg_id = conn.next_msg_id % 0xFFFFFFFF + 1
            try:
                bodies = list(
                    fragments(
                        uin,
                        msg_id,
                        event.body,
                        charset,
                        time=wire_time(event.time),
                        offline=offline,
                    )
                )
            except ValueError:
                bodies = list(fragments(uin, msg_id, event.body[:MAX_BODY_CHARS], charset))
        elif isinstance(event, Presence):
            text = encode_limited(event.status_text, charset, MAX_STATUS_BYTES)
            bodies = [PresenceNotice(uin, presence_from_canonical(event.state), text)]
        elif isinstance(event, Typing):
            bodies = [TypingNotice(uin, event.active)]
        elif isinstance(event, ContactRequest):
            bodies = [AuthRequest(uin, encode_limited(event.text, charset, 1000))]
        elif isinstance(event, Authorization):
            text = encode_limited(event.text, charset, 1000)
            bodies = [AuthReply(uin, event.granted, text)]
            self._guarded(conn, self._authorized(conn, delivery.peer, event.granted))
        elif isinstance(event, DeliveryFailure):
            wire = conn.sent_ids.get(event.message_id, (uin, 0))
            bodies = [MessageFailed(wire[0], wire[1], failure_code(event.reason))]
        elif isinstance(event, DeliveryReceipt):
            return True
        else:
            return True
        if conn.session.state not in (State.OPENING, State.ONLINE):
            return False
        for body in bodies:
            if not conn.session.send(body):
                return False
        self._flush(conn)
        return True

    async def _authorized(self, conn: Connection, peer: str, granted: bool) -> None:
        """The contact answered our request: it is no longer pending (or gone)."""
        contact = self._peer(native_uin(peer) or 0)
        if contact is None:
            return
        entries = {e.contact: e for e in await self.core.contacts(conn.owner)}
        old = entries.get(await self.core.resolve(contact) or contact)
        if old is None:
            return
        if granted:
            await self.core.put_contact(conn.owner, replace(old, pending=False))
        else:
            await self.core.remove_contact(conn.owner, contact)
        await self._contacts(conn)

    # ---- registration ---------------------------------------------------------------

    def _start_registration(
        self,
        session_id: int,
        hello: Hello,
        charset: Charset,
        address: Address,
        nonce_key: tuple[Address, bytes],
        now: float,
    ) -> None:
        if not self._registrations.allow(address[0], now):
            self._write(encode(Datagram(Refused(ErrorCode.RATE_LIMITED))), address)
            return
        registration = ServerRegistration(
            session_id=session_id, hello=hello, charset=charset, now=now, rng=self._rng
        )
        pending = PendingRegistration(registration, address, nonce_key)
        self.pending_registrations[session_id] = pending
        self._by_nonce[nonce_key] = session_id
        pending.timer = self.clock.callLater(
            max(0.0, registration.expires - now), self._registration_expired, pending
        )
        self._flush_registration(pending)

    def _register(self, pending: PendingRegistration, data: bytes) -> None:
        try:
            requests = pending.registration.receive(data)
        except UinProtocolError as exc:
            self._drop(pending.address, str(exc))
            return
        self._flush_registration(pending)
        for request in requests:
            d = self._run(self.core.register_account(NETWORK, request.password, request.nickname))
            d.addCallback(self._registered, pending)
            d.addErrback(self._registration_failed, pending)

    def _registered(self, account: object, pending: PendingRegistration) -> None:
        address = getattr(account, "address", None)
        uin = native_uin(split_address(address)[1]) if isinstance(address, str) else None
        if account is not None and uin is None:
            self.log.warn("uin: registration gave a non-UIN account")
        pending.registration.result(uin)
        if uin is not None:
            self.log.info("uin: registered new UIN {uin}", uin=uin)
        self._flush_registration(pending)

    def _registration_failed(self, failure: Failure, pending: PendingRegistration) -> None:
        self.log.failure("uin: registration failed", failure)
        pending.registration.result(None, ErrorCode.REGISTRATION_FAILED)
        self._flush_registration(pending)

    def _registration_expired(self, pending: PendingRegistration) -> None:
        pending.timer = None
        self.pending_registrations.pop(pending.registration.session_id, None)
        self._by_nonce.pop(pending.nonce_key, None)

    def _flush_registration(self, pending: PendingRegistration) -> None:
        for data in pending.registration.datagrams_to_send():
            self._write(data, pending.address)

    # ---- shutdown -------------------------------------------------------------------

    def shutdown(self) -> None:
        """Say GOODBYE to every client and close every core session."""
        for conn in list(self.connections.values()):
            self._handle(conn, conn.session.close(ErrorCode.SERVER_SHUTDOWN))
        for pending in list(self.pending_registrations.values()):
            if pending.timer is not None and pending.timer.active():
                pending.timer.cancel()
            self._registration_expired(pending)

    @property
    def registration_phases(self) -> list[RegistrationPhase]:
        return [p.registration.phase for p in self.pending_registrations.values()]


def _chunks(
    items: Sequence[X], size: Callable[[X], int], budget: int
) -> list[tuple[list[X], bool]]:
    """Items packed into groups of at most 255 whose sizes fit ``budget``; the last
    group is flagged (an empty list is one empty, last group)."""
    groups: list[list[X]] = [[]]
    used = 0
    for item in items:
        n = size(item)
        if groups[-1] and (used + n > budget or len(groups[-1]) == 255):
            groups.append([])
            used = 0
        groups[-1].append(item)
        used += n
    return [(g, i == len(groups) - 1) for i, g in enumerate(groups)]
