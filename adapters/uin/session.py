"""Server side of one UIN session: login by SCRAM challenge, then reliable commands.

Theory of operation
-------------------
The glue (protocol.py) creates a :class:`ServerSession` only for a HELLO that came
back with a valid stateless cookie, so the source address has been shown to receive
our datagrams. The session then walks this table (``TRANSITIONS``):

    NEW --PARAMETERS--> CHALLENGED --LOGIN--> VERIFYING --LOGIN_ACCEPTED--> OPENING
    OPENING --OPENED--> ONLINE --LOGOUT--> CLOSED
    VERIFYING --LOGIN_REJECTED--> CLOSED;  any state --CLOSE / EXPIRED--> CLOSED

EXPIRED is the handshake deadline (30 s) before login and a dead reliable channel
(retransmissions exhausted, or nothing heard for the idle timeout) after it.

* NEW: the glue is fetching the user's SCRAM salt and iterations from the core
  (``parameters``). CHALLENGED: CHALLENGE sent (re-sent on a repeated HELLO).
* VERIFYING: the client's proof is with the core (``LoginAttempted`` event); the
  glue answers with ``login_accepted(server_signature)`` or ``login_rejected``.
* OPENING: keys derived, LOGIN_OK sent, the core is opening the session; commands
  that arrive meanwhile are acked and held, then released by ``opened``.
* ONLINE: commands flow both ways through a :class:`ReliableChannel`.

Inputs are the names of :class:`Input`. A (state, input) pair missing from the table
raises :class:`UnexpectedInput` (a protocol error). Which errors end the session
depends on whether the datagram was authenticated: before login nothing is (a CRC
is no proof of origin), so a bad unauthenticated datagram is only dropped and a
spoofer cannot kill someone else's handshake; a protocol error inside a MAC-checked
datagram closes the session with GOODBYE(PROTOCOL_ERROR).

Time is an argument; ``get_timer`` / ``handle_timer`` drive the handshake deadline,
retransmissions and the idle timeout. ``datagrams_to_send`` returns encoded bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, auto

from adapters.uin import crypto
from adapters.uin.codec import (
    FROM_CLIENT,
    FROM_SERVER,
    MAX_DATAGRAM,
    MESSAGE_OFFLINE,
    Body,
    Challenge,
    Charset,
    Command,
    Datagram,
    ErrorCode,
    Goodbye,
    Hello,
    Login,
    LoginOk,
    Logout,
    MessageFragment,
    Ping,
    Reader,
    Refused,
    RegChallenge,
    Register,
    Registered,
    UinProtocolError,
    check,
    decode,
    encode,
    frame,
    parse,
    peek,
)
from adapters.uin.reliability import ReliabilityConfig, ReliableChannel

HANDSHAKE_TIMEOUT = 30.0
KEEPALIVE = 30
IDLE_TIMEOUT = 120


class State(Enum):
    NEW = auto()
    CHALLENGED = auto()
    VERIFYING = auto()
    OPENING = auto()
    ONLINE = auto()
    CLOSED = auto()


class Input(Enum):
    PARAMETERS = auto()
    HELLO = auto()
    LOGIN = auto()
    LOGIN_ACCEPTED = auto()
    LOGIN_REJECTED = auto()
    OPENED = auto()
    DATAGRAM = auto()
    LOGOUT = auto()
    TIMER = auto()
    EXPIRED = auto()
    CLOSE = auto()


S, I = State, Input  # noqa: E741 - table shorthand
TRANSITIONS: dict[tuple[State, Input], State] = {
    (S.NEW, I.PARAMETERS): S.CHALLENGED,
    (S.NEW, I.HELLO): S.NEW,
    (S.NEW, I.TIMER): S.NEW,
    (S.NEW, I.EXPIRED): S.CLOSED,
    (S.NEW, I.CLOSE): S.CLOSED,
    (S.CHALLENGED, I.HELLO): S.CHALLENGED,
    (S.CHALLENGED, I.LOGIN): S.VERIFYING,
    (S.CHALLENGED, I.TIMER): S.CHALLENGED,
    (S.CHALLENGED, I.EXPIRED): S.CLOSED,
    (S.CHALLENGED, I.CLOSE): S.CLOSED,
    (S.VERIFYING, I.HELLO): S.VERIFYING,
    (S.VERIFYING, I.LOGIN): S.VERIFYING,
    (S.VERIFYING, I.LOGIN_ACCEPTED): S.OPENING,
    (S.VERIFYING, I.LOGIN_REJECTED): S.CLOSED,
    (S.VERIFYING, I.TIMER): S.VERIFYING,
    (S.VERIFYING, I.EXPIRED): S.CLOSED,
    (S.VERIFYING, I.CLOSE): S.CLOSED,
    (S.OPENING, I.HELLO): S.OPENING,
    (S.OPENING, I.LOGIN): S.OPENING,
    (S.OPENING, I.OPENED): S.ONLINE,
    (S.OPENING, I.DATAGRAM): S.OPENING,
    (S.OPENING, I.LOGOUT): S.CLOSED,
    (S.OPENING, I.TIMER): S.OPENING,
    (S.OPENING, I.EXPIRED): S.CLOSED,
    (S.OPENING, I.CLOSE): S.CLOSED,
    (S.ONLINE, I.HELLO): S.ONLINE,
    (S.ONLINE, I.LOGIN): S.ONLINE,
    (S.ONLINE, I.DATAGRAM): S.ONLINE,
    (S.ONLINE, I.LOGOUT): S.CLOSED,
    (S.ONLINE, I.TIMER): S.ONLINE,
    (S.ONLINE, I.EXPIRED): S.CLOSED,
    (S.ONLINE, I.CLOSE): S.CLOSED,
    # Late answers from the core after the session ended are dropped.
    (S.CLOSED, I.PARAMETERS): S.CLOSED,
    (S.CLOSED, I.LOGIN_ACCEPTED): S.CLOSED,
    (S.CLOSED, I.LOGIN_REJECTED): S.CLOSED,
    (S.CLOSED, I.OPENED): S.CLOSED,
    (S.CLOSED, I.TIMER): S.CLOSED,
    (S.CLOSED, I.EXPIRED): S.CLOSED,
    (S.CLOSED, I.CLOSE): S.CLOSED,
}
del S, I


class UnexpectedInput(UinProtocolError):
    """An input the session table has no entry for in the current state."""


# Client commands that only exist before login, with a CRC trailer (section 4).
PRE_LOGIN = frozenset({Command.HELLO, Command.LOGIN, Command.REGISTER})


def _check_client_body(body: Body, charset: Charset) -> None:
    """What section 4 asks of a client command beyond its layout."""
    if isinstance(body, MessageFragment):
        if body.flags & MESSAGE_OFFLINE:
            raise UinProtocolError("a client set the OFFLINE flag (the server's flag)")
        if body.charset is not charset:
            raise UinProtocolError("message charset is not the session charset")


# ---- events the glue acts on --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoginAttempted:
    """Check this SCRAM proof with the core, then call login_accepted/rejected."""

    auth_message: bytes
    proof: bytes


@dataclass(frozen=True, slots=True)
class CommandReceived:
    """A client command, in order. ``seq``: its datagram's number; for a MESSAGE
    fragment the ack of that datagram is held until :meth:`UinSession.release` (the
    ack tells the client "the gateway took it", docs/adr/0015-delivery-contract.md)."""

    body: Body
    seq: int = 0


@dataclass(frozen=True, slots=True)
class SessionEnded:
    reason: ErrorCode


SessionEvent = LoginAttempted | CommandReceived | SessionEnded


class ServerSession:
    def __init__(
        self,
        *,
        session_id: int,
        hello: Hello,
        uin: int,
        now: float,
        charset: Charset,
        reliability: ReliabilityConfig | None = None,
    ) -> None:
        self.state = State.NEW
        self.session_id = session_id
        self.uin = uin
        self.hello = hello
        self.charset = charset
        self._config = reliability or ReliabilityConfig(idle_timeout=IDLE_TIMEOUT)
        self._deadline = now + HANDSHAKE_TIMEOUT
        self._challenge: bytes | None = None
        self._auth_message = b""
        self._proof = b""
        self._keys: tuple[bytes, bytes] | None = None
        self._channel: ReliableChannel | None = None
        self._held: list[tuple[int, Body]] = []
        self._outbox: list[bytes] = []

    # ---- the table ------------------------------------------------------------------

    def _step(self, what: Input) -> State:
        try:
            nxt = TRANSITIONS[(self.state, what)]
        except KeyError:
            raise UnexpectedInput(f"{what.name} in state {self.state.name}") from None
        self.state = nxt
        return nxt

    @property
    def keys(self) -> tuple[bytes, bytes] | None:
        return self._keys

    @property
    def channel(self) -> ReliableChannel | None:
        return self._channel

    def _unauthenticated(self, body: Body) -> bytes:
        return encode(Datagram(body, self.session_id, self.uin))

    # ---- inputs from the glue -------------------------------------------------------

    def parameters(self, salt: bytes, iterations: int, server_nonce: bytes, now: float) -> None:
        """The core's SCRAM parameters for this UIN: send CHALLENGE."""
        if self._step(Input.PARAMETERS) is State.CLOSED:
            return
        challenge = Challenge(self.charset, iterations, salt, server_nonce)
        self._challenge = self._unauthenticated(challenge)
        binding = crypto.channel_binding(
            self.session_id, self.charset, self.hello.presence, self.hello.flags
        )
        self._auth_message = crypto.auth_message(
            self.uin, self.hello.client_nonce, server_nonce, salt, iterations, binding
        )
        self._outbox.append(self._challenge)

    def hello_repeated(self) -> None:
        """The same HELLO again (our CHALLENGE was lost): repeat it."""
        self._step(Input.HELLO)
        if self.state is State.CHALLENGED and self._challenge is not None:
            self._outbox.append(self._challenge)

    def login_accepted(self, server_signature: bytes, now: float) -> None:
        if self._step(Input.LOGIN_ACCEPTED) is State.CLOSED:
            return
        self._keys = crypto.session_keys(server_signature)
        self._channel = ReliableChannel(now, self._config)
        self._outbox.append(self._login_ok())

    def login_rejected(self) -> list[SessionEvent]:
        if self.state is State.CLOSED:
            self._step(Input.LOGIN_REJECTED)
            return []
        self._step(Input.LOGIN_REJECTED)
        self._outbox.append(self._unauthenticated(Refused(ErrorCode.LOGIN_FAILED)))
        return [SessionEnded(ErrorCode.LOGIN_FAILED)]

    def opened(self) -> list[SessionEvent]:
        """The core session is open: release what the client sent meanwhile."""
        if self._step(Input.OPENED) is State.CLOSED:
            return []
        held, self._held = self._held, []
        return [CommandReceived(b, seq) for seq, b in held]

    @property
    def unacknowledged(self) -> int:
        """Commands to the client not yet acknowledged by it (0 before login)."""
        return self._channel.unacknowledged if self._channel is not None else 0

    def release(self, seq: int) -> None:
        """The datagram ``seq`` (a MESSAGE fragment) was dealt with: taken by the core,
        or refused with MESSAGE_FAILED. Its ack may go now."""
        if self._channel is not None:
            self._channel.release(seq)

    def close(self, reason: ErrorCode) -> list[SessionEvent]:
        """End the session from our side (shutdown, kick, core failure)."""
        was = self.state
        self._step(Input.CLOSE)
        if was is State.CLOSED:
            return []
        self._goodbye(reason)
        return [SessionEnded(reason)]

    def send(self, body: Body) -> bool:
        """Queue a reliable command to the client; False once the session is over."""
        if self.state not in (State.OPENING, State.ONLINE) or self._channel is None:
            return False
        if body.COMMAND not in FROM_SERVER:
            raise ValueError(f"{body.COMMAND.name} is a client command")
        self._channel.send(body)
        return True

    # ---- datagrams ------------------------------------------------------------------

    def receive(self, data: bytes, now: float) -> list[SessionEvent]:
        """One datagram addressed to this session (source address already checked).

        Raises UinProtocolError for anything that must be dropped without effect:
        framing errors, a bad CRC or MAC, and anything wrong in an unauthenticated
        datagram. Once a datagram's MAC verifies, whatever else is wrong with it
        (reserved bits, unknown command, payload, direction, state, seq, acks, limits)
        ends the session with GOODBYE(PROTOCOL_ERROR): section 3 and 9."""
        f = frame(data)
        if f.session_id != self.session_id or f.uin != self.uin:
            raise UinProtocolError("datagram for another session")
        if not f.authenticated:
            header = peek(data)
            if header.command is Command.LOGIN:
                return self._receive_login(data)
            raise UinProtocolError(f"unauthenticated {header.command.name} in a session")
        if self.state not in (State.OPENING, State.ONLINE):
            self._step(Input.DATAGRAM)  # raises: no other state takes one
        if self._keys is None:
            raise UinProtocolError("authenticated datagram before the keys")
        check(data, f, self._keys[0])  # IntegrityError: dropped by the glue
        try:
            datagram = parse(data, f)
            command = datagram.body.COMMAND
            if command not in FROM_CLIENT or command in PRE_LOGIN:
                raise UinProtocolError(f"{command.name} is not a client command after login")
            _check_client_body(datagram.body, self.charset)
            return self._receive_authenticated(datagram, now)
        except UinProtocolError:
            # The client proved who it is and then broke the protocol: end it.
            return self.close(ErrorCode.PROTOCOL_ERROR)

    def _receive_login(self, data: bytes) -> list[SessionEvent]:
        login = decode(data)
        assert isinstance(login.body, Login)
        before = self.state
        self._step(Input.LOGIN)
        if before is State.CHALLENGED:
            self._proof = login.body.proof
            return [LoginAttempted(self._auth_message, self._proof)]
        if login.body.proof == self._proof and before in (State.OPENING, State.ONLINE):
            self._outbox.append(self._login_ok())  # our LOGIN_OK was lost
        return []

    def _receive_authenticated(self, datagram: Datagram, now: float) -> list[SessionEvent]:
        assert self._channel is not None
        self._step(Input.DATAGRAM)
        events: list[SessionEvent] = []
        numbered = self._channel.receive_numbered(datagram.seq, datagram.ack, datagram.body, now)
        for seq, body in numbered:
            if isinstance(body, MessageFragment) and seq:
                self._channel.hold(seq)
            if isinstance(body, Logout):
                self._step(Input.LOGOUT)
                self._flush_channel(now)  # the ack of the LOGOUT
                events.append(SessionEnded(ErrorCode.LOGGED_OUT))
                break
            if isinstance(body, Ping):
                continue
            if self.state is State.OPENING:
                self._held.append((seq, body))
            else:
                events.append(CommandReceived(body, seq))
        return events

    def _login_ok(self) -> bytes:
        assert self._keys is not None
        body = LoginOk(self.charset, KEEPALIVE, IDLE_TIMEOUT, MAX_DATAGRAM)
        return encode(Datagram(body, self.session_id, self.uin), self._keys[1])

    def _goodbye(self, reason: ErrorCode) -> None:
        if self._keys is not None and self._channel is not None:
            ack = self._channel.received_up_to
            datagram = Datagram(Goodbye(reason), self.session_id, self.uin, 0, ack)
            self._outbox.append(encode(datagram, self._keys[1]))

    def _flush_channel(self, now: float) -> None:
        if self._keys is None or self._channel is None:
            return
        for seq, ack, body in self._channel.datagrams_to_send(now):
            datagram = Datagram(body, self.session_id, self.uin, seq, ack)
            self._outbox.append(encode(datagram, self._keys[1]))

    def datagrams_to_send(self, now: float) -> list[bytes]:
        if self.state in (State.OPENING, State.ONLINE):
            self._flush_channel(now)
        out, self._outbox = self._outbox, []
        return out

    # ---- time -----------------------------------------------------------------------

    def get_timer(self) -> float | None:
        if self.state is State.CLOSED:
            return None
        if self.state in (State.OPENING, State.ONLINE) and self._channel is not None:
            return self._channel.get_timer()
        return self._deadline

    def handle_timer(self, now: float) -> list[SessionEvent]:
        """EXPIRED when the handshake deadline passed (before login) or the reliable
        channel died (after); TIMER otherwise."""
        if self.state in (State.NEW, State.CHALLENGED, State.VERIFYING):
            if now >= self._deadline:
                self._step(Input.EXPIRED)
                return [SessionEnded(ErrorCode.TIMEOUT)]
        elif self.state is not State.CLOSED and self._channel is not None:
            self._channel.handle_timer(now)
            if self._channel.dead is not None:
                reason = self._channel.dead
                self._step(Input.EXPIRED)
                self._goodbye(reason)
                return [SessionEnded(reason)]
        self._step(Input.TIMER)
        return []


# ---- self-registration (server side) --------------------------------------------------


class RegistrationPhase(Enum):
    OFFERED = auto()
    REGISTERING = auto()
    DONE = auto()


@dataclass(frozen=True, slots=True)
class RegistrationRequested:
    """Ask the core for a new account; answer with ``ServerRegistration.result``."""

    password: str
    nickname: str


class ServerRegistration:
    """One self-registration exchange: REG_CHALLENGE out, one sealed REGISTER in, one
    REGISTERED or REFUSED out (repeated for retransmitted REGISTERs until it expires).

    Walks OFFERED --REGISTER--> REGISTERING --result--> DONE; expiry ends it anywhere."""

    def __init__(
        self, *, session_id: int, hello: Hello, charset: Charset, now: float, rng: crypto.Random
    ) -> None:
        self.phase = RegistrationPhase.OFFERED
        self.session_id = session_id
        self.charset = charset
        self.expires = now + HANDSHAKE_TIMEOUT
        self._client_nonce = hello.client_nonce
        self._server_nonce = crypto.new_nonce(rng)
        self._private, public = crypto.dh_keypair(rng)
        challenge = RegChallenge(charset, self._server_nonce, public)
        self._challenge = encode(Datagram(challenge, session_id))
        self._request = b""
        self._mac_key = b""
        self._answer = b""
        self._outbox = [self._challenge]

    def hello_repeated(self) -> None:
        if self.phase is RegistrationPhase.OFFERED:
            self._outbox.append(self._challenge)

    def receive(self, data: bytes) -> list[RegistrationRequested]:
        """A REGISTER datagram; UinProtocolError for anything to drop."""
        datagram = decode(data)
        body = datagram.body
        if not isinstance(body, Register) or datagram.session_id != self.session_id:
            raise UinProtocolError("not a REGISTER for this exchange")
        if self.phase is not RegistrationPhase.OFFERED:
            if body.tag == self._request and self._answer:
                self._outbox.append(self._answer)
            return []
        try:
            shared = crypto.dh_shared(self._private, body.dh_public)
            enc_key, mac_key = crypto.registration_keys(
                shared, self._client_nonce, self._server_nonce
            )
            plain = crypto.open_sealed(enc_key, mac_key, self.session_id, body.ciphertext, body.tag)
        except crypto.RegistrationCryptoError as exc:
            raise UinProtocolError(str(exc)) from None
        reader = Reader(plain)
        password_bytes = reader.short_bytes()
        nickname_bytes = reader.short_bytes()
        reader.end()
        try:
            password = password_bytes.decode("utf-8")
        except UnicodeDecodeError:
            raise UinProtocolError("password is not UTF-8") from None
        codec = "utf-8" if self.charset is Charset.UTF8 else "cp949"
        nickname = nickname_bytes.decode(codec, errors="replace").strip()
        if not password or not nickname:
            raise UinProtocolError("empty password or nickname")
        self._mac_key = mac_key
        self._request = body.tag
        self.phase = RegistrationPhase.REGISTERING
        return [RegistrationRequested(password, nickname)]

    def result(self, new_uin: int | None, error: ErrorCode = ErrorCode.REGISTRATION_CLOSED) -> None:
        if self.phase is not RegistrationPhase.REGISTERING:
            return
        self.phase = RegistrationPhase.DONE
        if new_uin is None:
            body: Body = Refused(error)
        else:
            body = Registered(
                new_uin, crypto.registered_tag(self._mac_key, self.session_id, new_uin)
            )
        self._answer = encode(Datagram(body, self.session_id, new_uin or 0))
        self._outbox.append(self._answer)

    def datagrams_to_send(self) -> list[bytes]:
        out, self._outbox = self._outbox, []
        return out
