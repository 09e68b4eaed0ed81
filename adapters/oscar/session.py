"""One OSCAR connection, server side, as a sans-IO state machine.

Theory of operation
-------------------
Authorization and BOS share one port; the first FLAP tells them apart. We send our
channel-1 hello at once; the client's channel-1 frame then carries either

* nothing but the version: a BUCP login follows (17/06 key request -> 17/07 key,
  17/02 digest -> the core checks it -> 17/03 with the BOS address and a cookie);
* TLV 1 and a roasted password TLV 2: the old ICQ login, answered on channel 4;
* TLV 6, a cookie: this is a BOS connection. A genuine, fresh, unused cookie names
  the user; we send 01/03 and the client negotiates (versions, rates, rights, its
  feedbag) until it sends 01/02 "client ready". Then the core opens the session and
  the user is online: messages, typing, presence and list edits flow both ways.

Every client SNAC on BOS first passes the rate meter. Anything that arrives in a
state where the table below has no entry for it is a protocol error: the client gets
a channel-4 sign-off naming the problem and the connection closes. Timers (login
deadline, idle timeout, our keepalive, the grace period after an auth reply, the hold
on ICQ offline messages) come from ``get_timer`` / ``handle_timer(now)``.

Requests to the core leave as :data:`CoreRequest` objects from ``receive_data`` and
the other entry points; answers come back through ``answer(token, result, now)``.
Bytes for the client accumulate and are collected with ``data_to_send()``.
"""

from __future__ import annotations

import hashlib
import itertools
import struct
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum, auto

from adapters.oscar import snac as S
from adapters.oscar import translate as T
from adapters.oscar.auth import CookieMint, new_bucp_key, roast
from adapters.oscar.codec import (
    FlapError,
    Keepalive,
    OscarCodec,
    Signoff,
    Signon,
    SnacEvent,
    WireEvent,
)
from adapters.oscar.errors import CookieRejected, OscarProtocolError
from adapters.oscar.feedbag import ContactChange, Feedbag, PutContact, RemoveContact
from adapters.oscar.rates import RateMeter, RateVerdict
from adapters.oscar.tlv import ByteReader, Tlv, Tlvs, find, has
from schema.addresses import AddressError, make_address, split_address
from schema.events import (
    Authorization,
    CanonicalEvent,
    ContactRequest,
    DeliveryFailure,
    FailureReason,
    FormatSpan,
    Message,
    Presence,
    PresenceState,
    Typing,
)
from schema.records import (
    AccountInfo,
    ContactEntry,
    KeyedMd5Proof,
    LoginOutcome,
    LoginProof,
    LoginResult,
    PlainPasswordProof,
)

NETWORK = "oscar"
FAMILY_VERSIONS: dict[int, int] = {
    S.OSERVICE: 4,
    S.LOCATE: 1,
    S.BUDDY: 1,
    S.ICBM: 1,
    S.PD: 1,
    S.FEEDBAG: 4,
    S.ICQ: 1,
}
OFFERED_FAMILIES = tuple(FAMILY_VERSIONS)
MAX_ICBM_TEXT = 7900
SENT_MESSAGES_KEPT = 256
PRE_AUTH_MAX_FRAME = 2048
SIGNOFF_PROTOCOL_ERROR = 0x0000
SIGNOFF_OTHER_LOGIN = 0x0001
# BUCP / channel-1 login error codes (TLV 8)
LOGIN_ERR_UNKNOWN_ACCOUNT = 0x0001
LOGIN_ERR_BAD_PASSWORD = 0x0005
LOGIN_ERR_SUSPENDED = 0x0011
LOGIN_ERR_UNAVAILABLE = 0x0014
LOGIN_ERR_TOO_FAST = 0x0018  # "rate limit exceeded (reconnecting too fast)": try later
ICQ_META_OFFLINE_REQUEST = 0x003C
ICQ_META_OFFLINE_DELETE = 0x003E
ICQ_META_OFFLINE_MESSAGE = 0x0041
ICQ_META_OFFLINE_DONE = 0x0042
ICQ_META_REQUEST = 0x07D0
ICQ_META_REPLY = 0x07DA
ICQ_SUCCESS = 0x0A
ICQ_FAILURE = 0x32


# ---------------------------------------------------------------- requests to the core


@dataclass(frozen=True, slots=True)
class CheckLogin:
    token: int
    address: str
    proof: LoginProof


@dataclass(frozen=True, slots=True)
class OpenSession:
    token: int
    address: str
    presence: PresenceState
    status_text: str


@dataclass(frozen=True, slots=True)
class CloseSession:
    session_id: str


@dataclass(frozen=True, slots=True)
class SetPresence:
    session_id: str
    presence: PresenceState
    status_text: str


@dataclass(frozen=True, slots=True)
class SubmitEvent:
    """Route ``event``. With a ``token``, answer :class:`Submitted` once the core has
    taken it (written to the recipient or durably queued): the 04/0C host ack the
    client asked for waits for that (docs/adr/0015-delivery-contract.md)."""

    event: CanonicalEvent
    token: int | None = None


@dataclass(frozen=True, slots=True)
class LoadContacts:
    token: int
    owner: str


@dataclass(frozen=True, slots=True)
class StoreContact:
    owner: str
    entry: ContactEntry


@dataclass(frozen=True, slots=True)
class DropContact:
    owner: str
    contact: str


@dataclass(frozen=True, slots=True)
class SaveExtras:
    owner: str
    items: tuple[S.FeedbagItem, ...]


@dataclass(frozen=True, slots=True)
class QueryPresence:
    token: int
    owner: str
    natives: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LookupAccounts:
    """Accounts matching an ICQ search: ``uin`` exactly, or ``text`` loosely."""

    token: int
    owner: str
    uin: int | None = None
    text: str = ""


CoreRequest = (
    CheckLogin
    | OpenSession
    | CloseSession
    | SetPresence
    | SubmitEvent
    | LoadContacts
    | StoreContact
    | DropContact
    | SaveExtras
    | QueryPresence
    | LookupAccounts
)

# ---------------------------------------------------------------- answers from the core


@dataclass(frozen=True, slots=True)
class SessionOpened:
    session_id: str
    offline: tuple[tuple[CanonicalEvent, str], ...] = ()  # (event, peer)


@dataclass(frozen=True, slots=True)
class ContactsLoaded:
    entries: tuple[ContactEntry, ...]
    extras: tuple[S.FeedbagItem, ...] = ()


@dataclass(frozen=True, slots=True)
class PresenceAnswer:
    states: tuple[tuple[str, PresenceState], ...]


@dataclass(frozen=True, slots=True)
class AccountMatch:
    native: str
    display_name: str
    online: bool


@dataclass(frozen=True, slots=True)
class AccountsFound:
    matches: tuple[AccountMatch, ...]


@dataclass(frozen=True, slots=True)
class Submitted:
    """The core took a submitted event (``accepted``), or could not (then the sender
    gets an ICBM error, "service unavailable", instead of the ack)."""

    accepted: bool = True


Answer = LoginResult | SessionOpened | ContactsLoaded | PresenceAnswer | AccountsFound | Submitted


# ---------------------------------------------------------------- the state table


class State(Enum):
    AWAIT_SIGNON = auto()
    AUTH_AWAIT_KEY = auto()
    AUTH_AWAIT_LOGIN = auto()
    AUTH_CHECKING = auto()
    AUTH_DONE = auto()
    BOS_SETUP = auto()
    BOS_OPENING = auto()
    ONLINE = auto()
    CLOSED = auto()


class Input(Enum):
    SIGNON_BARE = auto()
    SIGNON_ROASTED = auto()
    SIGNON_COOKIE = auto()
    BUCP_KEY_REQUEST = auto()
    BUCP_LOGIN = auto()
    AUTH_OTHER_SNAC = auto()
    LOGIN_CHECKED = auto()
    BOS_SNAC = auto()
    CLIENT_READY = auto()
    SESSION_OPENED = auto()
    KEEPALIVE = auto()
    SIGNOFF = auto()


_BOS_STATES = frozenset({State.BOS_SETUP, State.BOS_OPENING, State.ONLINE})
"""Where client SNACs pass the rate meter by their own class (``_rate_ok``)."""
_ALWAYS = {Input.KEEPALIVE: None, Input.SIGNOFF: State.CLOSED}
TRANSITIONS: dict[tuple[State, Input], State] = {
    (State.AWAIT_SIGNON, Input.SIGNON_BARE): State.AUTH_AWAIT_KEY,
    (State.AWAIT_SIGNON, Input.SIGNON_ROASTED): State.AUTH_CHECKING,
    (State.AWAIT_SIGNON, Input.SIGNON_COOKIE): State.BOS_SETUP,
    (State.AUTH_AWAIT_KEY, Input.BUCP_KEY_REQUEST): State.AUTH_AWAIT_LOGIN,
    (State.AUTH_AWAIT_KEY, Input.AUTH_OTHER_SNAC): State.AUTH_AWAIT_KEY,
    (State.AUTH_AWAIT_LOGIN, Input.BUCP_KEY_REQUEST): State.AUTH_AWAIT_LOGIN,
    (State.AUTH_AWAIT_LOGIN, Input.BUCP_LOGIN): State.AUTH_CHECKING,
    (State.AUTH_AWAIT_LOGIN, Input.AUTH_OTHER_SNAC): State.AUTH_AWAIT_LOGIN,
    (State.AUTH_CHECKING, Input.LOGIN_CHECKED): State.AUTH_DONE,
    (State.BOS_SETUP, Input.BOS_SNAC): State.BOS_SETUP,
    (State.BOS_SETUP, Input.CLIENT_READY): State.BOS_OPENING,
    (State.BOS_OPENING, Input.BOS_SNAC): State.BOS_OPENING,
    (State.BOS_OPENING, Input.SESSION_OPENED): State.ONLINE,
    (State.ONLINE, Input.BOS_SNAC): State.ONLINE,
    (State.ONLINE, Input.CLIENT_READY): State.ONLINE,
}
for _state in State:
    if _state is not State.CLOSED:
        for _input, _next in _ALWAYS.items():
            TRANSITIONS[(_state, _input)] = _next or _state


@dataclass(frozen=True, slots=True)
class SessionConfig:
    bos_address: str  # "host:port" handed out in login replies
    login_timeout: float = 60.0
    idle_timeout: float = 300.0
    keepalive_interval: float = 60.0
    auth_grace: float = 10.0
    offline_hold: float = 10.0
    max_frame: int = 16384
    motd: str = "Welcome to the gateway."


@dataclass(slots=True)
class _Pending:
    kind: str
    data: tuple[object, ...] = ()


@dataclass(slots=True)
class _Buddy:
    state: PresenceState
    text: str = ""
    signon: int = 0


@dataclass(slots=True)
class _HeldOffline:
    peer: str
    message: Message


@dataclass(slots=True)
class _Self:
    status: T.SelfStatus = field(default_factory=T.SelfStatus)
    profile: str = ""
    away_html: str = ""
    sent: tuple[PresenceState, str] | None = None


class OscarSession:
    """Server side of one TCP connection (auth or BOS)."""

    def __init__(
        self,
        config: SessionConfig,
        cookies: CookieMint,
        now: float,
        random_bytes: Callable[[int], bytes] | None = None,
        first_sequence: int = 0,
        bucp_key: Callable[[], bytes] = new_bucp_key,
    ) -> None:
        self.config = config
        self.state = State.AWAIT_SIGNON
        self.error: OscarProtocolError | None = None
        self.address = ""  # once known (login or cookie)
        self.session_id = ""
        self._cookies = cookies
        self._random = random_bytes
        self._bucp_key = bucp_key
        self._codec = OscarCodec(first_sequence, max_data=PRE_AUTH_MAX_FRAME)
        self._out = bytearray()
        self._requests: list[CoreRequest] = []
        self._tokens = itertools.count(1)
        self._pending: dict[int, _Pending] = {}
        self._reqids = itertools.count(0x80000001)
        self._start = now
        self._last_heard = now
        self._last_sent = now
        self._deadline: float | None = now + config.login_timeout
        self._rates: RateMeter | None = RateMeter(now)  # anew at BOS start
        self._key = b""
        self._login_name = ""
        self._login_was_roasted = False
        # BOS state
        self._self = _Self()
        self._feedbag: Feedbag | None = None
        self._feedbag_waiters: list[tuple[int, S.FeedbagQueryIfModified | None]] = []
        self._feedbag_active = False
        self._mtn = False
        self._buddies: dict[str, _Buddy] = {}
        self._sent: OrderedDict[str, int] = OrderedDict()  # message id -> request id
        self._offline_retrieve: int | None = None
        self._held: list[_HeldOffline] = []
        self._early: set[str] = set()  # ids written while the session was opening
        self._held_until: float | None = None
        self._offline_taken = False  # the client fetched them, or the hold ran out
        self._closing_after_send = False
        self._emit(Signon())

    # ------------------------------------------------------------ public surface

    @property
    def closed(self) -> bool:
        return self.state is State.CLOSED

    @property
    def is_icq(self) -> bool:
        return self.native.isdigit()

    @property
    def native(self) -> str:
        return self.address.partition(":")[2]

    def data_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    def receive_data(self, data: bytes, now: float) -> list[CoreRequest]:
        if self.closed:
            return self._take_requests()
        self._last_heard = now
        try:
            self._codec.feed(data)
            while not self.closed and (event := self._codec.next_event()) is not None:
                self._event(event, now)
        except OscarProtocolError as exc:
            self._fail(exc)
        return self._take_requests()

    def answer(self, token: int, result: Answer, now: float) -> list[CoreRequest]:
        """The core's answer to a request that carried ``token``."""
        pending = self._pending.pop(token, None)
        if pending is None or self.closed:
            return self._take_requests()
        try:
            self._answered(pending, result, now)
        except OscarProtocolError as exc:
            self._fail(exc)
        return self._take_requests()

    def deliver(self, event: CanonicalEvent, peer: str, now: float, offline: bool = False) -> bool:
        """Write a canonical event to the client; False when it cannot take it.
        ``offline``: it waited in the offline queue (the core says so: a live event may
        arrive while the session still opens, and must not be held as offline)."""
        if self.state not in (State.ONLINE, State.BOS_OPENING):
            return False
        if offline and self.state is State.BOS_OPENING:
            self._early.add(event.id)
        self._deliver(event, peer, now, offline=offline)
        return True

    def get_timer(self) -> float | None:
        if self.closed:
            return None
        candidates = [self._last_heard + self.config.idle_timeout]
        if self._deadline is not None:
            candidates.append(self._deadline)
        if self.state is State.ONLINE:
            candidates.append(self._last_sent + self.config.keepalive_interval)
        if self._held_until is not None:
            candidates.append(self._held_until)
        return min(candidates)

    def handle_timer(self, now: float) -> list[CoreRequest]:
        if self.closed:
            return self._take_requests()
        if self._deadline is not None and now >= self._deadline:
            if self.state is State.AUTH_DONE:
                self._enter_closed()
            else:
                self._fail(OscarProtocolError("login did not finish in time"))
            return self._take_requests()
        if now >= self._last_heard + self.config.idle_timeout:
            self._fail(OscarProtocolError("no data from the client for too long"))
            return self._take_requests()
        if self._held_until is not None and now >= self._held_until:
            self._flush_held(now)
        if self.state is State.ONLINE and now >= self._last_sent + self.config.keepalive_interval:
            self._emit(Keepalive(), now)
        return self._take_requests()

    def close(self, reason: str, code: int = SIGNOFF_PROTOCOL_ERROR) -> list[CoreRequest]:
        """We end the connection (server shutdown, another login): say goodbye."""
        if not self.closed:
            self._signoff(code, reason)
            self._enter_closed()
        return self._take_requests()

    def connection_lost(self) -> list[CoreRequest]:
        if not self.closed:
            self._enter_closed()
        return self._take_requests()

    # ------------------------------------------------------------ plumbing

    def _step(self, event: Input) -> None:
        nxt = TRANSITIONS.get((self.state, event))
        if nxt is None:
            raise OscarProtocolError(f"{event.name} is not allowed in state {self.state.name}")
        if nxt is State.CLOSED:
            self._enter_closed()
        else:
            self.state = nxt

    def _take_requests(self) -> list[CoreRequest]:
        out, self._requests = self._requests, []
        return out

    def _token(self, kind: str, *data: object) -> int:
        token = next(self._tokens)
        self._pending[token] = _Pending(kind, data)
        return token

    def _emit(self, event: WireEvent, now: float | None = None) -> None:
        self._out += self._codec.send(event)
        if now is not None:
            self._last_sent = now

    def _snac(
        self,
        body: S.SnacBody,
        request_id: int | None = None,
        flags: int = 0,
        now: float | None = None,
    ) -> None:
        reqid = next(self._reqids) & 0xFFFFFFFF if request_id is None else request_id
        self._emit(SnacEvent(S.Snac(body, reqid, flags)), now)

    def _error(self, family: int, code: int, request_id: int) -> None:
        self._snac(S.SnacError(family, code), request_id)

    def _signoff(self, code: int, reason: str) -> None:
        tlvs = (Tlv.u16(0x0009, code), Tlv(0x000B, reason.encode("ascii", "replace")[:200]))
        self._emit(Signoff(tlvs))

    def _fail(self, exc: OscarProtocolError) -> None:
        if self.closed:
            return
        self.error = exc
        self._signoff(SIGNOFF_PROTOCOL_ERROR, str(exc))
        self._enter_closed()

    def _enter_closed(self) -> None:
        self.state = State.CLOSED
        if self.session_id:
            self._requests.append(CloseSession(self.session_id))
            self.session_id = ""
        self._pending.clear()

    # ------------------------------------------------------------ frames

    def _event(self, event: WireEvent, now: float) -> None:
        if not isinstance(event, SnacEvent) or self.state not in _BOS_STATES:
            self._count_frame(now)
        if isinstance(event, Keepalive):
            self._step(Input.KEEPALIVE)
        elif isinstance(event, Signoff | FlapError):
            self._step(Input.SIGNOFF)
        elif isinstance(event, Signon):
            self._signon(event, now)
        else:
            self._data(event.snac, now)

    def _signon(self, event: Signon, now: float) -> None:
        if event.version != 1:
            raise OscarProtocolError(f"FLAP sign-on version {event.version}, not 1")
        tlvs = event.tlvs
        cookie = find(tlvs, 0x0006)
        if cookie is not None:
            self._step(Input.SIGNON_COOKIE)
            self._bos_start(cookie, now)
        elif has(tlvs, 0x0002):
            self._step(Input.SIGNON_ROASTED)
            self._roasted_login(tlvs)
        else:
            self._step(Input.SIGNON_BARE)

    def _data(self, packet: S.Snac, now: float) -> None:
        body = packet.body
        if self.state in _BOS_STATES:
            if isinstance(body, S.ClientOnline):
                self._step(Input.CLIENT_READY)
            else:
                self._step(Input.BOS_SNAC)
            if not self._rate_ok(packet, now):
                return
            self._bos_snac(packet, now)
        elif isinstance(body, S.BucpChallengeRequest):
            self._step(Input.BUCP_KEY_REQUEST)
            self._key_request(packet)
        elif isinstance(body, S.BucpLoginRequest):
            self._step(Input.BUCP_LOGIN)
            self._bucp_login(packet)
        elif packet.family == S.BUCP:
            self._step(Input.AUTH_OTHER_SNAC)
            self._error(S.BUCP, S.ERR_NOT_SUPPORTED_BY_HOST, packet.request_id)
        else:
            raise OscarProtocolError(
                f"SNAC {packet.family:02x}/{packet.subtype:02x} in state {self.state.name}"
            )

    # ------------------------------------------------------------ authorization

    def _key_request(self, packet: S.Snac) -> None:
        assert isinstance(packet.body, S.BucpChallengeRequest)
        name = find(packet.body.tlvs, 0x0001)
        if not name:
            raise OscarProtocolError("BUCP key request without a screen name")
        self._login_name = name.decode("latin-1")
        self._key = self._bucp_key()
        # Always hand out a key, known account or not: the reply must not tell
        # who exists.
        self._snac(S.BucpChallengeResponse(self._key), packet.request_id)

    def _bucp_login(self, packet: S.Snac) -> None:
        assert isinstance(packet.body, S.BucpLoginRequest)
        tlvs = packet.body.tlvs
        name = find(tlvs, 0x0001)
        digest = find(tlvs, 0x0025)
        if not name or digest is None:
            raise OscarProtocolError("BUCP login without screen name or digest")
        if len(digest) != 16:
            raise OscarProtocolError(f"BUCP digest of {len(digest)} bytes, not 16")
        self._login_name = name.decode("latin-1")
        proof = KeyedMd5Proof(key=self._key, digest=digest, prehashed=has(tlvs, 0x004C))
        self._check(proof, packet.request_id)

    def _roasted_login(self, tlvs: Tlvs) -> None:
        name = find(tlvs, 0x0001)
        roasted = find(tlvs, 0x0002)
        if not name or roasted is None:
            raise OscarProtocolError("channel-1 login without screen name or password")
        if len(roasted) > 64:
            raise OscarProtocolError("channel-1 password longer than 64 bytes")
        self._login_name = name.decode("latin-1")
        self._login_was_roasted = True
        password = roast(roasted).decode("latin-1")
        self._check(PlainPasswordProof(password), None)

    def _check(self, proof: LoginProof, request_id: int | None) -> None:
        try:
            address = make_address(NETWORK, self._login_name)
        except AddressError:
            self._step(Input.LOGIN_CHECKED)
            self._login_failed(LOGIN_ERR_UNKNOWN_ACCOUNT, request_id)
            return
        token = self._token("login", request_id)
        self._requests.append(CheckLogin(token, address, proof))

    def _login_checked(self, result: LoginResult, request_id: int | None, now: float) -> None:
        self._step(Input.LOGIN_CHECKED)
        if result.ok and result.account is not None:
            self.address = result.account.address
            cookie = self._cookies.mint(self.address, now)
            tlvs = (
                Tlv(0x0001, self._login_name.encode("latin-1")),
                Tlv(0x0005, self.config.bos_address.encode("ascii")),
                Tlv(0x0006, cookie),
            )
            self._auth_reply(tlvs, request_id, now)
            return
        code = {
            LoginOutcome.NO_SUCH_ACCOUNT: LOGIN_ERR_UNKNOWN_ACCOUNT,
            LoginOutcome.BAD_PASSWORD: LOGIN_ERR_BAD_PASSWORD,
            LoginOutcome.DISABLED: LOGIN_ERR_SUSPENDED,
            LoginOutcome.THROTTLED: LOGIN_ERR_TOO_FAST,
        }.get(result.outcome, LOGIN_ERR_UNAVAILABLE)
        self._login_failed(code, request_id)

    def _login_failed(self, code: int, request_id: int | None) -> None:
        tlvs = (
            Tlv(0x0001, self._login_name.encode("latin-1")),
            Tlv.u16(0x0008, code),
            Tlv(0x0004, b"http://localhost/login-help"),
        )
        self._auth_reply(tlvs, request_id, None)

    def _auth_reply(self, tlvs: Tlvs, request_id: int | None, now: float | None) -> None:
        if request_id is None:  # channel-1 login: answer on channel 4 and hang up
            self._emit(Signoff(tlvs))
            self._enter_closed()
            return
        self._snac(S.BucpLoginResponse(tlvs), request_id)
        self._deadline = (now if now is not None else self._last_heard) + self.config.auth_grace

    # ------------------------------------------------------------ BOS setup

    def _bos_start(self, cookie: bytes, now: float) -> None:
        try:
            grant = self._cookies.redeem(cookie, now)
        except CookieRejected as exc:
            raise OscarProtocolError(f"BOS cookie rejected: {exc}") from None
        self.address = grant.address
        self._codec.max_data = self.config.max_frame
        self._rates = RateMeter(now)
        self._requests.append(LoadContacts(self._token("contacts"), self.address))
        self._snac(S.HostOnline(OFFERED_FAMILIES), now=now)

    def _count_frame(self, now: float) -> None:
        """Frames outside the BOS rate classes (sign-on, keepalives, login SNACs,
        anything before BOS) count in class 1 too: a flood of them reaches the
        disconnect level like any other (docs/adr/0017-rates-and-admission.md)."""
        assert self._rates is not None
        verdict, _ = self._rates.record(0, 0, now)
        if verdict is RateVerdict.DISCONNECT:
            raise OscarProtocolError("rate limit: disconnect level reached")

    def _rate_ok(self, packet: S.Snac, now: float) -> bool:
        assert self._rates is not None
        verdict, rate = self._rates.record(packet.family, packet.subtype, now)
        if verdict is RateVerdict.OK:
            return True
        if verdict is RateVerdict.DISCONNECT:
            raise OscarProtocolError("rate limit: disconnect level reached")
        if verdict is RateVerdict.DROPPED:
            return False
        code = {RateVerdict.ALERT: 2, RateVerdict.LIMITED: 3, RateVerdict.CLEARED: 4}[verdict]
        self._snac(S.RateParamChange(code, rate), now=now)
        return verdict is not RateVerdict.LIMITED

    def _bos_snac(self, packet: S.Snac, now: float) -> None:
        body = packet.body
        handler = _HANDLERS.get(type(body))
        if handler is not None:
            handler(self, packet, now)
        elif isinstance(body, S.SnacError):
            return  # a client's error report: nothing to do
        elif packet.family in OFFERED_FAMILIES:
            self._error(packet.family, S.ERR_NOT_SUPPORTED_BY_HOST, packet.request_id)
        else:
            self._error(packet.family, S.ERR_SERVICE_NOT_DEFINED, packet.request_id)

    # OSERVICE -------------------------------------------------------------------

    def _on_client_versions(self, packet: S.Snac, now: float) -> None:
        assert isinstance(packet.body, S.ClientVersions)
        asked = dict(packet.body.pairs)
        pairs = tuple((f, asked.get(f, v)) for f, v in FAMILY_VERSIONS.items())
        self._snac(S.HostVersions(pairs), packet.request_id, now=now)
        self._snac(S.Motd(4, (Tlv(0x000B, self.config.motd.encode("ascii", "replace")),)))

    def _on_rate_query(self, packet: S.Snac, now: float) -> None:
        assert self._rates is not None
        classes, groups = self._rates.advertised(now)
        self._snac(S.RateParamsReply(classes, groups), packet.request_id, now=now)

    def _on_ignore(self, packet: S.Snac, now: float) -> None:
        return

    def _on_self_info(self, packet: S.Snac, now: float) -> None:
        self._snac(S.SelfInfoReply(self._self_info()), packet.request_id, now=now)

    def _self_info(self) -> S.UserInfo:
        state, _ = T.presence_from_self(self._self.status)
        tlvs = T.user_info_tlvs(self.native, state, int(self._start))
        if self.is_icq:
            # Show our own real ICQ status word (invisible included) to ourselves.
            tlvs = tuple(
                Tlv.u32(6, self._self.status.icq_status) if t.type == 6 else t for t in tlvs
            )
        return S.UserInfo(self.native, 0, tlvs)

    def _on_service_request(self, packet: S.Snac, now: float) -> None:
        # Chat navigation, alerts, icons... are not offered: say so, so no client
        # waits for a redirect that never comes.
        self._error(S.OSERVICE, S.ERR_SERVICE_UNAVAILABLE, packet.request_id)

    def _on_idle(self, packet: S.Snac, now: float) -> None:
        assert isinstance(packet.body, S.IdleNotification)
        self._update_self(idle_seconds=packet.body.value)

    def _on_user_info_fields(self, packet: S.Snac, now: float) -> None:
        assert isinstance(packet.body, S.SetUserInfoFields)
        status = T.parse_self_tlvs(packet.body.tlvs)
        if status is not None and status != self._self.status.icq_status:
            self._update_self(icq_status=status)
            self._snac(S.SelfInfoReply(self._self_info()), packet.request_id, now=now)

    def _on_client_ready(self, packet: S.Snac, now: float) -> None:
        if self.session_id or any(p.kind == "open" for p in self._pending.values()):
            return
        state, text = T.presence_from_self(self._self.status)
        self._self.sent = (state, text)
        self._requests.append(OpenSession(self._token("open"), self.address, state, text))
        self._deadline = now + self.config.login_timeout

    # LOCATE ---------------------------------------------------------------------

    def _on_locate_rights(self, packet: S.Snac, now: float) -> None:
        tlvs = (Tlv.u16(1, 1024), Tlv.u16(2, 16), Tlv.u16(3, 10), Tlv.u16(4, 4096))
        self._snac(S.LocateRightsReply(tlvs), packet.request_id, now=now)

    def _on_set_info(self, packet: S.Snac, now: float) -> None:
        assert isinstance(packet.body, S.LocateSetInfo)
        tlvs = packet.body.tlvs
        profile = find(tlvs, 0x0002)
        if profile is not None:
            encoding = find(tlvs, 0x0001) or b""
            self._self.profile = _decode_mime_text(encoding, profile)[:4096]
        away = find(tlvs, 0x0004)
        if away is not None:
            encoding = find(tlvs, 0x0003) or b""
            html = _decode_mime_text(encoding, away)[:4096]
            self._self.away_html = html
            text = T.html_to_text(html)[0].strip() if html else ""
            self._update_self(away_message=text)

    def _on_user_info_query(self, packet: S.Snac, now: float) -> None:
        body = packet.body
        if isinstance(body, S.LocateUserInfoQuery):
            name, want_away = body.screen_name, body.info_type == 3
            want_profile = body.info_type == 1
        else:
            assert isinstance(body, S.LocateUserInfoQuery2)
            name = body.screen_name
            want_away = bool(body.request_flags & 0x02)
            want_profile = bool(body.request_flags & 0x01)
        native = _native_or_none(name)
        if native is None:
            self._error(S.LOCATE, S.ERR_NOT_LOGGED_ON, packet.request_id)
            return
        tlvs: list[Tlv] = []
        if native == self.native:
            info = self._self_info()
            if want_profile:
                tlvs += _mime_tlvs(1, self._self.profile)
            if want_away and self._self.away_html:
                tlvs += _mime_tlvs(3, self._self.away_html)
        else:
            buddy = self._buddies.get(native)
            if buddy is None or buddy.state in (PresenceState.OFFLINE, PresenceState.INVISIBLE):
                self._error(S.LOCATE, S.ERR_NOT_LOGGED_ON, packet.request_id)
                return
            info = S.UserInfo(native, 0, T.user_info_tlvs(native, buddy.state, buddy.signon))
            if want_profile:
                tlvs += _mime_tlvs(1, "")
            if want_away and buddy.text:
                tlvs += _mime_tlvs(3, _escape_html(buddy.text))
        self._snac(S.LocateUserInfoReply(info, tuple(tlvs)), packet.request_id, now=now)

    def _on_dir_info(self, packet: S.Snac, now: float) -> None:
        self._error(S.LOCATE, S.ERR_NOT_SUPPORTED_BY_HOST, packet.request_id)

    # BUDDY ----------------------------------------------------------------------

    def _on_buddy_rights(self, packet: S.Snac, now: float) -> None:
        tlvs = (Tlv.u16(1, 1000), Tlv.u16(2, 3000), Tlv.u16(3, 512))
        self._snac(S.BuddyRightsReply(tlvs), packet.request_id, now=now)

    def _on_buddy_add(self, packet: S.Snac, now: float) -> None:
        assert isinstance(packet.body, S.BuddyAdd)
        natives = [n for n in map(_native_or_none, packet.body.names) if n]
        if self._feedbag is not None:
            for native in natives:
                self._contact_changes(self._feedbag.watch(native))
        self._watch(tuple(natives))

    def _on_buddy_del(self, packet: S.Snac, now: float) -> None:
        assert isinstance(packet.body, S.BuddyDel)
        if self._feedbag is None:
            return
        for native in filter(None, map(_native_or_none, packet.body.names)):
            self._contact_changes(self._feedbag.unwatch(native))

    def _watch(self, natives: tuple[str, ...]) -> None:
        if natives and self.state is State.ONLINE:
            token = self._token("presence")
            self._requests.append(QueryPresence(token, self.address, natives))

    # ICBM -----------------------------------------------------------------------

    def _on_icbm_params_query(self, packet: S.Snac, now: float) -> None:
        reply = S.IcbmParamsReply(2, 0x0000000B, 8000, 999, 999, 0)
        self._snac(reply, packet.request_id, now=now)

    def _on_icbm_set_params(self, packet: S.Snac, now: float) -> None:
        assert isinstance(packet.body, S.IcbmSetParams)
        self._mtn = bool(packet.body.icbm_flags & 0x08)

    def _on_offline_retrieve(self, packet: S.Snac, now: float) -> None:
        if self.state is State.ONLINE:
            self._snac(S.IcbmOfflineRetrieveDone(), packet.request_id, now=now)
        else:
            self._offline_retrieve = packet.request_id

    def _on_evil(self, packet: S.Snac, now: float) -> None:
        self._error(S.ICBM, S.ERR_REQUEST_DENIED, packet.request_id)  # warnings are off

    def _on_icbm(self, packet: S.Snac, now: float) -> None:
        body = packet.body
        assert isinstance(body, S.IcbmToHost)
        native = _native_or_none(body.screen_name)
        if native is None:
            self._error(S.ICBM, S.ERR_NOT_LOGGED_ON, packet.request_id)
            return
        event = self._icbm_event(body, native)
        if event is None:
            self._error(S.ICBM, S.ERR_NOT_SUPPORTED_BY_HOST, packet.request_id)
            return
        if isinstance(event, Message):
            self._sent[event.id] = packet.request_id
            while len(self._sent) > SENT_MESSAGES_KEPT:
                self._sent.popitem(last=False)
        if has(body.tlvs, 0x0003) and isinstance(event, Message):
            # The ack says "delivered": sent only when the core has taken the message.
            ack = S.IcbmHostAck(body.cookie, body.channel, body.screen_name)
            token = self._token("submitted", ack, packet.request_id, event.id)
            self._requests.append(SubmitEvent(event, token))
            return
        self._requests.append(SubmitEvent(event))
        if has(body.tlvs, 0x0003):
            ack = S.IcbmHostAck(body.cookie, body.channel, body.screen_name)
            self._snac(ack, packet.request_id, now=now)

    def _icbm_event(self, body: S.IcbmToHost, native: str) -> CanonicalEvent | None:
        recipient = f"{NETWORK}:{native}"
        if body.channel == 1:
            data = find(body.tlvs, 0x0002)
            if data is None:
                raise OscarProtocolError("channel-1 ICBM without message data")
            text = T.fragments_text(data)
            text_body, spans = T.plain_from_wire(text, self.is_icq)
            return _message(self.address, recipient, text_body, spans)
        if body.channel == 4:
            data = find(body.tlvs, 0x0005)
            if data is None:
                raise OscarProtocolError("channel-4 ICBM without message data")
            block = T.IcqChannel4.decode(data)
            return self._channel4_event(block, recipient)
        return None  # channel 2 rendezvous (files, voice...) is not relayed

    def _channel4_event(self, block: T.IcqChannel4, recipient: str) -> CanonicalEvent | None:
        fields = block.fields
        kind = block.msg_type
        if kind == T.ICQ_MSG_PLAIN:
            return _message(self.address, recipient, "\xfe".join(fields), ())
        if kind == T.ICQ_MSG_URL:
            text = "\n".join(f for f in fields if f)
            return _message(self.address, recipient, text, ())
        if kind == T.ICQ_MSG_AUTH_REQUEST:
            reason = T.auth_request_reason(fields)[:1024]
            return ContactRequest(sender=self.address, recipient=recipient, text=reason)
        if kind in (T.ICQ_MSG_AUTH_DENIED, T.ICQ_MSG_AUTH_GRANTED):
            granted = kind == T.ICQ_MSG_AUTH_GRANTED
            text = "\xfe".join(fields)[:1024]
            return Authorization(
                sender=self.address, recipient=recipient, granted=granted, text=text
            )
        return None

    def _on_typing(self, packet: S.Snac, now: float) -> None:
        assert isinstance(packet.body, S.IcbmClientEvent)
        native = _native_or_none(packet.body.screen_name)
        if native is None:
            return
        active = T.typing_active(packet.body.event)
        event = Typing(sender=self.address, recipient=f"{NETWORK}:{native}", active=active)
        self._requests.append(SubmitEvent(event))

    # PD -------------------------------------------------------------------------

    def _on_pd_rights(self, packet: S.Snac, now: float) -> None:
        self._snac(S.PdRightsReply((Tlv.u16(1, 200), Tlv.u16(2, 200))), packet.request_id, now=now)

    def _on_pd_deny(self, packet: S.Snac, now: float) -> None:
        body = packet.body
        assert isinstance(body, S.PdAddDeny | S.PdDelDeny)
        if self._feedbag is None:
            return
        blocked = isinstance(body, S.PdAddDeny)
        for native in filter(None, map(_native_or_none, body.names)):
            self._contact_changes(self._feedbag.set_blocked(native, blocked))

    # FEEDBAG --------------------------------------------------------------------

    def _on_feedbag_rights(self, packet: S.Snac, now: float) -> None:
        limits = [1000, 100, 200, 200, 1, 1, 0, 0, 0, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 1]
        value = b"".join(struct.pack(">H", n) for n in limits)
        tlvs = (Tlv(0x0004, value), Tlv.u16(0x0002, 254), Tlv.u16(0x0003, 500))
        self._snac(S.FeedbagRightsReply(tlvs), packet.request_id, now=now)

    def _on_feedbag_query(self, packet: S.Snac, now: float) -> None:
        body = packet.body
        query = body if isinstance(body, S.FeedbagQueryIfModified) else None
        if self._feedbag is None:
            self._feedbag_waiters.append((packet.request_id, query))
            return
        self._feedbag_reply(packet.request_id, query, now)

    def _feedbag_reply(
        self, request_id: int, query: S.FeedbagQueryIfModified | None, now: float
    ) -> None:
        assert self._feedbag is not None
        items = self._feedbag.items()
        stamp = self._feedbag.timestamp
        if query is not None and query.timestamp == stamp and query.count == len(items):
            self._snac(S.FeedbagReplyNotModified(stamp, len(items)), request_id, now=now)
            return
        chunks = [items[i : i + 100] for i in range(0, len(items), 100)] or [()]
        for i, chunk in enumerate(chunks):
            last = i == len(chunks) - 1
            body = S.FeedbagReply(0, chunk, stamp if last else 0)
            flags = 0 if last else S.FLAG_MORE_REPLIES
            self._snac(body, request_id, flags, now=now)

    def _on_feedbag_use(self, packet: S.Snac, now: float) -> None:
        self._feedbag_active = True

    def _on_feedbag_edit(self, packet: S.Snac, now: float) -> None:
        body = packet.body
        assert isinstance(body, S.ItemsBody)
        if self._feedbag is None:
            self._snac(S.FeedbagStatus(tuple(0x000A for _ in body.items)), packet.request_id)
            return
        apply = {
            S.FeedbagInsertItems: self._feedbag.insert,
            S.FeedbagUpdateItems: self._feedbag.update,
            S.FeedbagDeleteItems: self._feedbag.delete,
        }[type(body)]
        codes: list[int] = []
        added: list[str] = []
        extras_before = self._feedbag.extras()
        for item in body.items:
            code, changes = apply(item)
            codes.append(code)
            self._contact_changes(changes)
            if code == 0 and item.class_id == 0 and not isinstance(body, S.FeedbagDeleteItems):
                native = _native_or_none(item.name)
                if native:
                    added.append(native)
        self._snac(S.FeedbagStatus(tuple(codes)), packet.request_id, now=now)
        if self._feedbag.extras() != extras_before:
            self._requests.append(SaveExtras(self.address, self._feedbag.extras()))
            self._update_self(deny_all=self._feedbag.deny_all)
        self._watch(tuple(added))

    def _contact_changes(self, changes: list[ContactChange]) -> None:
        for change in changes:
            if isinstance(change, PutContact):
                self._requests.append(StoreContact(self.address, change.entry))
            elif isinstance(change, RemoveContact):
                self._requests.append(DropContact(self.address, change.contact))

    def _on_auth_request(self, packet: S.Snac, now: float) -> None:
        body = packet.body
        assert isinstance(body, S.FeedbagRequestAuthToHost)
        native = _native_or_none(body.screen_name)
        if native is None:
            return
        event = ContactRequest(
            sender=self.address, recipient=f"{NETWORK}:{native}", text=body.reason[:1024]
        )
        self._requests.append(SubmitEvent(event))

    def _on_auth_reply(self, packet: S.Snac, now: float) -> None:
        body = packet.body
        if isinstance(body, S.FeedbagRespondAuthToHost):
            granted, name, reason = bool(body.granted), body.screen_name, body.reason
        else:
            assert isinstance(body, S.FeedbagPreAuthorize)
            granted, name, reason = True, body.screen_name, body.reason
        native = _native_or_none(name)
        if native is None:
            return
        event = Authorization(
            sender=self.address,
            recipient=f"{NETWORK}:{native}",
            granted=granted,
            text=reason[:1024],
        )
        self._requests.append(SubmitEvent(event))

    # ICQ ------------------------------------------------------------------------

    def _on_icq(self, packet: S.Snac, now: float) -> None:
        assert isinstance(packet.body, S.IcqDbQuery)
        meta = packet.body.meta
        if not self.is_icq or meta.uin != int(self.native):
            self._error(S.ICQ, S.ERR_REQUEST_DENIED, packet.request_id)
            return
        if meta.type == ICQ_META_OFFLINE_REQUEST:
            self._icq_offline(packet.request_id, meta.seq, now)
        elif meta.type == ICQ_META_OFFLINE_DELETE:
            return
        elif meta.type == ICQ_META_REQUEST:
            self._icq_meta(packet.request_id, meta, now)
        else:
            self._error(S.ICQ, S.ERR_NOT_SUPPORTED_BY_HOST, packet.request_id)

    def _icq_reply(self, request_id: int, seq: int, type_: int, data: bytes, more: bool) -> None:
        meta = S.IcqMeta(int(self.native), type_, seq, data)
        flags = S.FLAG_MORE_REPLIES if more else 0
        self._snac(S.IcqDbReply(meta), request_id, flags)

    def _icq_offline(self, request_id: int, seq: int, now: float) -> None:
        held, self._held, self._held_until = self._held, [], None
        self._offline_taken = True  # later offline messages go live, with their time
        for item in held:
            msg = item.message
            t = msg.time
            text = T.encode_icq_text(msg.body)
            data = struct.pack(
                "<IHBBBBBBH",
                int(item.peer),
                t.year,
                t.month,
                t.day,
                t.hour,
                t.minute,
                T.ICQ_MSG_PLAIN,
                0,
                len(text),
            )
            self._icq_reply(request_id, seq, ICQ_META_OFFLINE_MESSAGE, data + text, True)
        self._icq_reply(request_id, seq, ICQ_META_OFFLINE_DONE, b"\x00", False)
        self._last_sent = now

    def _icq_meta(self, request_id: int, meta: S.IcqMeta, now: float) -> None:
        r = ByteReader(meta.data, "ICQ meta request")
        subtype = r.u16le()
        uin: int | None = None
        text = ""
        if subtype in (0x04BA, 0x04B2, 0x04D0, 0x0569):  # short/full info, search by UIN
            uin = r.u32le()
        elif subtype == 0x051F:  # search by UIN, TLV form
            _t, _len, uin = r.u16le(), r.u16le(), r.u32le()
        elif subtype == 0x0573:  # search by e-mail
            text = _lnts(r)
        elif subtype == 0x0529:  # search by e-mail, TLV form
            _t, _len = r.u16le(), r.u16le()
            text = _lnts(r)
        elif subtype in (0x0515, 0x055F, 0x0533):  # white pages: no directory here
            self._icq_search_done(request_id, meta.seq, ())
            return
        else:
            self._error(S.ICQ, S.ERR_NOT_SUPPORTED_BY_HOST, request_id)
            return
        token = self._token("lookup", request_id, meta.seq, subtype)
        self._requests.append(LookupAccounts(token, self.address, uin, text[:64]))

    def _icq_looked_up(
        self, request_id: int, seq: int, subtype: int, matches: tuple[AccountMatch, ...]
    ) -> None:
        if subtype in (0x04BA, 0x04B2, 0x04D0):
            match = matches[0] if matches else None
            if subtype == 0x04BA:
                data = struct.pack("<H", 0x0104) + _short_info(match)
                self._icq_reply(request_id, seq, ICQ_META_REPLY, data, False)
            else:
                data = struct.pack("<H", 0x00C8) + _basic_info(match)
                self._icq_reply(request_id, seq, ICQ_META_REPLY, data, True)
                tail = struct.pack("<HBBB", 0x00FA, ICQ_SUCCESS, 0, 0)
                self._icq_reply(request_id, seq, ICQ_META_REPLY, tail, False)
            return
        self._icq_search_done(request_id, seq, matches)

    def _icq_search_done(
        self, request_id: int, seq: int, matches: tuple[AccountMatch, ...]
    ) -> None:
        found = [m for m in matches if m.native.isdigit()][:20]
        if not found:
            data = struct.pack("<HB", 0x01AE, ICQ_FAILURE)
            self._icq_reply(request_id, seq, ICQ_META_REPLY, data, False)
            return
        for i, match in enumerate(found):
            last = i == len(found) - 1
            record = _search_record(match)
            data = struct.pack("<HB", 0x01AE if last else 0x01A4, ICQ_SUCCESS) + record
            if last:
                data += struct.pack("<I", 0)
            self._icq_reply(request_id, seq, ICQ_META_REPLY, data, not last)

    # ------------------------------------------------------------ answers

    def _answered(self, pending: _Pending, result: Answer, now: float) -> None:
        if pending.kind == "login":
            assert isinstance(result, LoginResult)
            request_id = pending.data[0]
            assert request_id is None or isinstance(request_id, int)
            self._login_checked(result, request_id, now)
        elif pending.kind == "contacts":
            assert isinstance(result, ContactsLoaded)
            self._contacts_loaded(result, now)
        elif pending.kind == "open":
            assert isinstance(result, SessionOpened)
            self._session_opened(result, now)
        elif pending.kind == "presence":
            assert isinstance(result, PresenceAnswer)
            for native, state in result.states:
                self._buddy_presence(native, state, "", now)
        elif pending.kind == "submitted":
            assert isinstance(result, Submitted)
            ack, request_id, message_id = pending.data
            assert isinstance(ack, S.IcbmHostAck) and isinstance(request_id, int)
            assert isinstance(message_id, str)
            if message_id not in self._sent:
                return  # it failed meanwhile: the sender already has the ICBM error
            if result.accepted:
                self._snac(ack, request_id, now=now)
            else:
                del self._sent[message_id]
                self._error(S.ICBM, S.ERR_SERVICE_UNAVAILABLE, request_id)
        elif pending.kind == "lookup":
            assert isinstance(result, AccountsFound)
            request_id, seq, subtype = pending.data
            assert isinstance(request_id, int) and isinstance(seq, int)
            assert isinstance(subtype, int)
            self._icq_looked_up(request_id, seq, subtype, result.matches)

    def _contacts_loaded(self, result: ContactsLoaded, now: float) -> None:
        self._feedbag = Feedbag(self.address, result.entries, result.extras, int(now))
        if self._feedbag.deny_all:
            self._update_self(deny_all=True)
        waiters, self._feedbag_waiters = self._feedbag_waiters, []
        for request_id, query in waiters:
            self._feedbag_reply(request_id, query, now)

    def _session_opened(self, result: SessionOpened, now: float) -> None:
        self._step(Input.SESSION_OPENED)
        self.session_id = result.session_id
        self._deadline = None
        for event, peer in result.offline:
            if event.id not in self._early:  # not yet written through deliver()
                self._deliver(event, peer, now, offline=True)
        self._early.clear()
        if self._offline_retrieve is not None:
            self._snac(S.IcbmOfflineRetrieveDone(), self._offline_retrieve, now=now)
            self._offline_retrieve = None
        if self._held:
            self._held_until = now + self.config.offline_hold
        # The presence the client set while we were opening may differ.
        self._update_self()
        watched = self._feedbag.buddies() if self._feedbag else ()
        self._watch(watched)

    # ------------------------------------------------------------ self presence

    def _update_self(
        self,
        icq_status: int | None = None,
        away_message: str | None = None,
        idle_seconds: int | None = None,
        deny_all: bool | None = None,
    ) -> None:
        old = self._self.status
        self._self.status = T.SelfStatus(
            icq_status=old.icq_status if icq_status is None else icq_status,
            away_message=old.away_message if away_message is None else away_message,
            idle_seconds=old.idle_seconds if idle_seconds is None else idle_seconds,
            deny_all=old.deny_all if deny_all is None else deny_all,
        )
        presence = T.presence_from_self(self._self.status)
        if self.session_id and presence != self._self.sent:
            self._self.sent = presence
            self._requests.append(SetPresence(self.session_id, *presence))

    # ------------------------------------------------------------ deliveries

    def _deliver(self, event: CanonicalEvent, peer: str, now: float, offline: bool) -> None:
        native = _native_or_none(peer)
        if native is None:
            return
        if isinstance(event, Message):
            if (
                offline
                and not self._offline_taken
                and self.is_icq
                and native.isdigit()
                and _fits_icq_store(event.body)
            ):
                # Kept for the client's offline-message request (ICQ shows these
                # apart), at most ``offline_hold`` seconds after the session opened.
                self._held.append(_HeldOffline(native, event))
                if self.state is State.ONLINE and self._held_until is None:
                    self._held_until = now + self.config.offline_hold
                return
            if self._held:
                self._flush_held(now)  # what waited offline goes first: order is kept
            # Text the ICQ offline store (cp1252) cannot carry goes as a live message
            # with its original time (TLV 0x16) instead, so nothing is replaced.
            self._send_message(event, native, now, offline)
        elif isinstance(event, Presence):
            self._buddy_presence(native, event.state, event.status_text, now)
        elif isinstance(event, Typing):
            if self._mtn:
                cookie = bytes(8)
                body = S.IcbmClientEvent(cookie, 1, native, T.typing_event(event.active))
                self._snac(body, now=now)
        elif isinstance(event, ContactRequest):
            self._send_contact_request(event, native, now)
        elif isinstance(event, Authorization):
            self._send_authorization(event, native, now)
        elif isinstance(event, DeliveryFailure):
            request_id = self._sent.pop(event.message_id, 0)
            self._error(S.ICBM, _failure_code(event.reason), request_id)

    def _sender_info(self, native: str) -> S.UserInfo:
        buddy = self._buddies.get(native)
        state = buddy.state if buddy else PresenceState.ONLINE
        if state in (PresenceState.OFFLINE, PresenceState.INVISIBLE):
            state = PresenceState.ONLINE
        signon = buddy.signon if buddy else int(self._start)
        return S.UserInfo(native, 0, T.user_info_tlvs(native, state, signon))

    def _send_message(self, msg: Message, native: str, now: float, offline: bool) -> None:
        cookie = hashlib.sha256(msg.id.encode()).digest()[:8]
        if self.is_icq:
            text = msg.body
        else:
            text = T.text_to_html(msg.body, msg.spans)
            if len(text.encode("utf-16-be")) > MAX_ICBM_TEXT:
                text = T.text_to_html(msg.body)
        fragments = T.build_fragments(_fit(text))
        tlvs = [Tlv(0x0002, fragments)]
        if self._mtn:
            tlvs.append(Tlv(0x000B))
        if offline:
            tlvs.append(Tlv.u32(0x0016, int(msg.time.timestamp()) & 0xFFFFFFFF))
        body = S.IcbmToClient(cookie, 1, self._sender_info(native), tuple(tlvs))
        self._snac(body, now=now)

    def _send_contact_request(self, event: ContactRequest, native: str, now: float) -> None:
        if self._feedbag_active or not native.isdigit() or not self.is_icq:
            self._snac(S.FeedbagRequestAuthToClient(native, event.text, b"\x00\x00"), now=now)
            return
        data = T.auth_request_fields(native, event.text)
        self._channel4(native, T.ICQ_MSG_AUTH_REQUEST, data, now)

    def _send_authorization(self, event: Authorization, native: str, now: float) -> None:
        if self._feedbag_active or not native.isdigit() or not self.is_icq:
            body = S.FeedbagRespondAuthToClient(native, int(event.granted), event.text)
            self._snac(body, now=now)
            return
        kind = T.ICQ_MSG_AUTH_GRANTED if event.granted else T.ICQ_MSG_AUTH_DENIED
        self._channel4(native, kind, T.encode_icq_text(event.text), now)

    def _channel4(self, native: str, kind: int, raw: bytes, now: float) -> None:
        block = T.IcqChannel4(int(native), kind, 0, raw)
        cookie = self._random(8) if self._random else bytes(8)
        body = S.IcbmToClient(cookie, 4, self._sender_info(native), (Tlv(5, block.encode()),))
        self._snac(body, now=now)

    def _flush_held(self, now: float) -> None:
        held, self._held, self._held_until = self._held, [], None
        self._offline_taken = True
        for item in held:
            self._send_message(item.message, item.peer, now, offline=True)

    def _buddy_presence(self, native: str, state: PresenceState, text: str, now: float) -> None:
        was = self._buddies.get(native)
        gone = state in (PresenceState.OFFLINE, PresenceState.INVISIBLE)
        if gone:
            self._buddies.pop(native, None)
            if was is not None and self.state is State.ONLINE:
                user = S.UserInfo(native, 0, (Tlv.u16(0x0001, T.CLASS_AIM),))
                self._snac(S.BuddyDeparted((user,)), now=now)
            return
        signon = was.signon if was else int(now)
        self._buddies[native] = _Buddy(state, text, signon)
        if self.state is State.ONLINE:
            info = S.UserInfo(native, 0, T.user_info_tlvs(native, state, signon))
            self._snac(S.BuddyArrived((info,)), now=now)


# ---------------------------------------------------------------- handler table

_Handler = Callable[[OscarSession, S.Snac, float], None]
_HANDLERS: dict[type[S.SnacBody], _Handler] = {
    S.ClientVersions: OscarSession._on_client_versions,
    S.RateParamsQuery: OscarSession._on_rate_query,
    S.RateParamsSubAdd: OscarSession._on_ignore,
    S.SelfInfoQuery: OscarSession._on_self_info,
    S.ServiceRequest: OscarSession._on_service_request,
    S.IdleNotification: OscarSession._on_idle,
    S.SetPrivacyFlags: OscarSession._on_ignore,
    S.Noop: OscarSession._on_ignore,
    S.SetUserInfoFields: OscarSession._on_user_info_fields,
    S.ClientOnline: OscarSession._on_client_ready,
    S.LocateRightsQuery: OscarSession._on_locate_rights,
    S.LocateSetInfo: OscarSession._on_set_info,
    S.LocateUserInfoQuery: OscarSession._on_user_info_query,
    S.LocateUserInfoQuery2: OscarSession._on_user_info_query,
    S.LocateGetDirInfo: OscarSession._on_dir_info,
    S.BuddyRightsQuery: OscarSession._on_buddy_rights,
    S.BuddyAdd: OscarSession._on_buddy_add,
    S.BuddyDel: OscarSession._on_buddy_del,
    S.IcbmParamsQuery: OscarSession._on_icbm_params_query,
    S.IcbmSetParams: OscarSession._on_icbm_set_params,
    S.IcbmToHost: OscarSession._on_icbm,
    S.IcbmClientEvent: OscarSession._on_typing,
    S.IcbmEvilRequest: OscarSession._on_evil,
    S.IcbmClientErr: OscarSession._on_ignore,
    S.IcbmOfflineRetrieve: OscarSession._on_offline_retrieve,
    S.PdRightsQuery: OscarSession._on_pd_rights,
    S.PdSetGroupPermitMask: OscarSession._on_ignore,
    S.PdAddPermit: OscarSession._on_ignore,
    S.PdDelPermit: OscarSession._on_ignore,
    S.PdAddDeny: OscarSession._on_pd_deny,
    S.PdDelDeny: OscarSession._on_pd_deny,
    S.FeedbagRightsQuery: OscarSession._on_feedbag_rights,
    S.FeedbagQuery: OscarSession._on_feedbag_query,
    S.FeedbagQueryIfModified: OscarSession._on_feedbag_query,
    S.FeedbagUse: OscarSession._on_feedbag_use,
    S.FeedbagInsertItems: OscarSession._on_feedbag_edit,
    S.FeedbagUpdateItems: OscarSession._on_feedbag_edit,
    S.FeedbagDeleteItems: OscarSession._on_feedbag_edit,
    S.FeedbagStartCluster: OscarSession._on_ignore,
    S.FeedbagEndCluster: OscarSession._on_ignore,
    S.FeedbagRequestAuthToHost: OscarSession._on_auth_request,
    S.FeedbagRespondAuthToHost: OscarSession._on_auth_reply,
    S.FeedbagPreAuthorize: OscarSession._on_auth_reply,
    S.IcqDbQuery: OscarSession._on_icq,
}


# ---------------------------------------------------------------- helpers


def _native_or_none(name: str) -> str | None:
    try:
        return split_address(make_address(NETWORK, name))[1]
    except AddressError:
        return None


def _message(
    sender: str, recipient: str, body: str, spans: tuple[FormatSpan, ...]
) -> Message | None:
    try:
        return Message(sender=sender, recipient=recipient, body=body, spans=spans)
    except ValueError:  # pydantic's ValidationError: an id or body the schema refuses
        return None


def _fit(text: str) -> str:
    """Cut text so its widest encoding fits one ICBM."""
    while len(T.encode_charset(text)[1]) > MAX_ICBM_TEXT:
        text = text[: len(text) * 9 // 10]
    return text


def _failure_code(reason: FailureReason) -> int:
    return {
        FailureReason.UNKNOWN_RECIPIENT: S.ERR_NOT_LOGGED_ON,
        FailureReason.DISABLED: S.ERR_NOT_LOGGED_ON,
        FailureReason.BLOCKED: S.ERR_IN_LOCAL_PERMIT_DENY,
        FailureReason.TOO_LARGE: S.ERR_REPLY_TOO_BIG,
        FailureReason.QUEUE_FULL: S.ERR_QUEUE_FULL,
        FailureReason.UNSUPPORTED: S.ERR_NOT_SUPPORTED_BY_CLIENT,
        FailureReason.UNAVAILABLE: S.ERR_SERVICE_UNAVAILABLE,
    }.get(reason, S.ERR_REQUEST_DENIED)


def _decode_mime_text(encoding: bytes, raw: bytes) -> str:
    enc = encoding.decode("latin-1").lower()
    if "unicode-2-0" in enc or "utf-16" in enc:
        return T.decode_charset(T.CHARSET_UCS2BE, raw)
    if "iso-8859-1" in enc:
        return T.decode_charset(T.CHARSET_LATIN1, raw)
    return T.decode_charset(T.CHARSET_ASCII, raw)


def _mime_tlvs(first_type: int, html: str) -> list[Tlv]:
    charset, raw = T.encode_charset(html)
    name = {T.CHARSET_ASCII: "us-ascii", T.CHARSET_LATIN1: "iso-8859-1"}.get(charset, "unicode-2-0")
    mime = f'text/aolrtf; charset="{name}"'.encode("ascii")
    return [Tlv(first_type, mime), Tlv(first_type + 1, raw)]


def _escape_html(text: str) -> str:
    return T.text_to_html(text)


def _lnts(r: ByteReader) -> str:
    raw = r.take(r.u16le())
    return T.decode_icq_text(raw)


def _put_lnts(text: str) -> bytes:
    raw = T.encode_icq_text(text)
    return struct.pack("<H", len(raw)) + raw


def _short_info(match: AccountMatch | None) -> bytes:
    if match is None:
        return bytes([ICQ_FAILURE])
    return (
        bytes([ICQ_SUCCESS])
        + _put_lnts(match.display_name)
        + _put_lnts("")
        + _put_lnts("")
        + _put_lnts("")
        + bytes([0, 0, 0])
    )


def _basic_info(match: AccountMatch | None) -> bytes:
    if match is None:
        return bytes([ICQ_FAILURE])
    strings = [match.display_name] + [""] * 10  # nick first last email city state ...
    return (
        bytes([ICQ_SUCCESS])
        + b"".join(_put_lnts(s) for s in strings)
        + struct.pack("<HBBBBB", 0, 0, 0, 0, 0, 0)
    )


def _search_record(match: AccountMatch) -> bytes:
    inner = (
        struct.pack("<I", int(match.native))
        + _put_lnts(match.display_name)
        + _put_lnts("")
        + _put_lnts("")
        + _put_lnts("")
        + struct.pack("<BHBH", 0, 1 if match.online else 0, 0, 0)
    )
    return struct.pack("<H", len(inner)) + inner


def account_match(info: AccountInfo, online: bool) -> AccountMatch:
    return AccountMatch(info.address.partition(":")[2], info.display_name, online)


def _fits_icq_store(text: str) -> bool:
    """Can the ICQ offline-message store (family 15, cp1252) carry ``text`` as is?"""
    try:
        text.encode("cp1252")
    except UnicodeEncodeError:
        return False
    return True
