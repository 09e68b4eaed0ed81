"""Client side of a UIN session, sans-IO: login, reliable commands, logout; and the
separate self-registration exchange.

Theory of operation
-------------------
:class:`ClientSession` walks this table (``TRANSITIONS``):

    IDLE --START--> HELLO_SENT --HELLO_VERIFY--> HELLO_SENT (HELLO again, with cookie)
    HELLO_SENT --CHALLENGE--> LOGIN_SENT --AUTHENTICATED--> ONLINE
    LOGIN_SENT --REFUSED--> CLOSED;  ONLINE --LOGOUT--> CLOSING --ACKED--> CLOSED
    ONLINE --GOODBYE--> CLOSED;  any --fatal TIMER--> CLOSED

The password never leaves this object: on CHALLENGE it computes the SCRAM proof and,
from the same salted password, the ServerSignature it expects and the two session
keys. The first datagram that verifies under the server-to-client key proves the
server knew ServerKey (mutual authentication); LOGIN_OK is normally that datagram,
but any authenticated one will do if LOGIN_OK was lost. Until then HELLO and LOGIN
are retransmitted on a doubling timer.

An unauthenticated datagram after login, a datagram for another session, or
garbage raises UinProtocolError from ``receive``: the caller drops it. A protocol
error inside an authenticated datagram ends the session.

:class:`RegistrationClient` runs HELLO(register) -> [HELLO_VERIFY] -> REG_CHALLENGE ->
REGISTER -> REGISTERED|REFUSED, sealing the password under an ephemeral
Diffie-Hellman key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass
from enum import Enum, auto

from adapters.uin import crypto
from adapters.uin.codec import (
    FROM_SERVER,
    HELLO_REGISTER,
    HELLO_WANT_UTF8,
    Body,
    Challenge,
    Charset,
    Command,
    Datagram,
    ErrorCode,
    Goodbye,
    Hello,
    HelloVerify,
    Login,
    LoginOk,
    Logout,
    Refused,
    RegChallenge,
    Register,
    Registered,
    Status,
    UinProtocolError,
    check,
    decode,
    encode,
    frame,
    parse,
    peek,
)
from adapters.uin.reliability import ReliabilityConfig, ReliableChannel
from schema import scram

HANDSHAKE_RTO = 0.5
HANDSHAKE_MAX_RTO = 2.0
HANDSHAKE_TRIES = 15
LOGOUT_LINGER = 5.0


class ClientState(Enum):
    IDLE = auto()
    HELLO_SENT = auto()
    LOGIN_SENT = auto()
    ONLINE = auto()
    CLOSING = auto()
    CLOSED = auto()


class ClientInput(Enum):
    START = auto()
    HELLO_VERIFY = auto()
    CHALLENGE = auto()
    AUTHENTICATED = auto()
    REFUSED = auto()
    DATAGRAM = auto()
    GOODBYE = auto()
    LOGOUT = auto()
    ACKED = auto()
    TIMER = auto()
    EXPIRED = auto()


S, I = ClientState, ClientInput  # noqa: E741 - table shorthand
TRANSITIONS: dict[tuple[ClientState, ClientInput], ClientState] = {
    (S.IDLE, I.START): S.HELLO_SENT,
    (S.HELLO_SENT, I.HELLO_VERIFY): S.HELLO_SENT,
    (S.HELLO_SENT, I.CHALLENGE): S.LOGIN_SENT,
    (S.HELLO_SENT, I.REFUSED): S.CLOSED,
    (S.HELLO_SENT, I.TIMER): S.HELLO_SENT,
    (S.HELLO_SENT, I.EXPIRED): S.CLOSED,
    (S.HELLO_SENT, I.LOGOUT): S.CLOSED,
    (S.LOGIN_SENT, I.HELLO_VERIFY): S.LOGIN_SENT,
    (S.LOGIN_SENT, I.CHALLENGE): S.LOGIN_SENT,
    (S.LOGIN_SENT, I.AUTHENTICATED): S.ONLINE,
    (S.LOGIN_SENT, I.REFUSED): S.CLOSED,
    (S.LOGIN_SENT, I.TIMER): S.LOGIN_SENT,
    (S.LOGIN_SENT, I.EXPIRED): S.CLOSED,
    (S.LOGIN_SENT, I.LOGOUT): S.CLOSED,
    (S.ONLINE, I.HELLO_VERIFY): S.ONLINE,
    (S.ONLINE, I.CHALLENGE): S.ONLINE,
    (S.ONLINE, I.DATAGRAM): S.ONLINE,
    (S.ONLINE, I.GOODBYE): S.CLOSED,
    (S.ONLINE, I.LOGOUT): S.CLOSING,
    (S.ONLINE, I.TIMER): S.ONLINE,
    (S.ONLINE, I.EXPIRED): S.CLOSED,
    (S.CLOSING, I.DATAGRAM): S.CLOSING,
    (S.CLOSING, I.GOODBYE): S.CLOSED,
    (S.CLOSING, I.ACKED): S.CLOSED,
    (S.CLOSING, I.TIMER): S.CLOSING,
    (S.CLOSING, I.EXPIRED): S.CLOSED,
    (S.CLOSING, I.LOGOUT): S.CLOSING,
    (S.CLOSED, I.TIMER): S.CLOSED,
    (S.CLOSED, I.LOGOUT): S.CLOSED,
}
del S, I


class UnexpectedClientInput(UinProtocolError):
    pass


@dataclass(frozen=True, slots=True)
class LoggedIn:
    charset: Charset


@dataclass(frozen=True, slots=True)
class LoginFailed:
    error: ErrorCode


@dataclass(frozen=True, slots=True)
class ServerCommand:
    body: Body


@dataclass(frozen=True, slots=True)
class Disconnected:
    reason: ErrorCode


ClientEvent = LoggedIn | LoginFailed | ServerCommand | Disconnected


class ClientSession:
    def __init__(
        self,
        uin: int,
        password: str,
        *,
        want_utf8: bool = False,
        presence: Status = Status.ONLINE,
        rng: crypto.Random = os.urandom,
        reliability: ReliabilityConfig | None = None,
    ) -> None:
        self.state = ClientState.IDLE
        self.uin = uin
        self._password = password
        self._flags = HELLO_WANT_UTF8 if want_utf8 else 0
        self._presence = presence
        self._rng = rng
        self._config = reliability or ReliabilityConfig(keepalive=30.0, idle_timeout=120.0)
        self._nonce = crypto.new_nonce(rng)
        self._cookie = b""
        self.session_id = 0
        self.charset = Charset.CP949
        self._login: bytes = b""
        self._keys: tuple[bytes, bytes] | None = None
        self._channel: ReliableChannel | None = None
        self._outbox: list[bytes] = []
        self._retry_at: float | None = None
        self._tries = 0
        self._linger_until = 0.0
        self.server_params: LoginOk | None = None

    def _step(self, what: ClientInput) -> ClientState:
        try:
            nxt = TRANSITIONS[(self.state, what)]
        except KeyError:
            raise UnexpectedClientInput(f"{what.name} in state {self.state.name}") from None
        self.state = nxt
        return nxt

    @property
    def channel(self) -> ReliableChannel | None:
        return self._channel

    # ---- handshake --------------------------------------------------------------------

    def _hello(self) -> bytes:
        body = Hello(self._flags, self._presence, self._nonce, self._cookie)
        return encode(Datagram(body, 0, self.uin))

    def _arm(self, now: float) -> None:
        self._tries += 1
        self._retry_at = now + min(HANDSHAKE_RTO * 2 ** (self._tries - 1), HANDSHAKE_MAX_RTO)

    def start(self, now: float) -> None:
        self._step(ClientInput.START)
        self._outbox.append(self._hello())
        self._tries = 0
        self._arm(now)

    def _on_challenge(self, datagram: Datagram, challenge: Challenge, now: float) -> None:
        if not crypto.MIN_ITERATIONS <= challenge.iterations <= crypto.MAX_ITERATIONS:
            raise UinProtocolError("iteration count outside the accepted range")
        if challenge.charset is Charset.UTF8 and not self._flags & HELLO_WANT_UTF8:
            raise UinProtocolError("server chose UTF-8 unasked")
        if datagram.session_id == 0:
            raise UinProtocolError("challenge without a session id")
        self.session_id = datagram.session_id
        self.charset = challenge.charset
        binding = crypto.channel_binding(self.session_id, self.charset, self._presence, self._flags)
        message = crypto.auth_message(
            self.uin,
            self._nonce,
            challenge.server_nonce,
            challenge.salt,
            challenge.iterations,
            binding,
        )
        salted = scram.salted_password(self._password, challenge.salt, challenge.iterations)
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        stored_key = hashlib.sha256(client_key).digest()
        signature = hmac.new(stored_key, message, hashlib.sha256).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
        server_signature = hmac.new(server_key, message, hashlib.sha256).digest()
        self._keys = crypto.session_keys(server_signature)
        self._login = encode(Datagram(Login(proof), self.session_id, self.uin))
        self._outbox.append(self._login)
        self._tries = 0
        self._arm(now)

    # ---- datagrams ----------------------------------------------------------------------

    def receive(self, data: bytes, now: float) -> list[ClientEvent]:
        if self.state in (ClientState.IDLE, ClientState.CLOSED):
            raise UinProtocolError(f"datagram in state {self.state.name}")  # late or stray
        f = frame(data)
        if f.uin != self.uin:
            raise UinProtocolError("datagram for another UIN")
        if f.authenticated:
            if self._keys is None or f.session_id != self.session_id:
                raise UinProtocolError("authenticated datagram for no session of ours")
            check(data, f, self._keys[1])  # IntegrityError: dropped
            # The server proved who it is: anything wrong from here on ends the session
            # (spec section 3, second stage).
            try:
                datagram = parse(data, f)
                if datagram.body.COMMAND not in FROM_SERVER:
                    raise UinProtocolError(f"{datagram.body.COMMAND.name} from the server")
                return self._authenticated(datagram, now)
            except UinProtocolError:
                self.state = ClientState.CLOSED
                self._channel = None
                return [Disconnected(ErrorCode.PROTOCOL_ERROR)]
        if peek(data).command not in FROM_SERVER:
            raise UinProtocolError("not a server command")
        datagram = decode(data)
        body = datagram.body
        if isinstance(body, HelloVerify):
            self._step(ClientInput.HELLO_VERIFY)
            if self.state is ClientState.HELLO_SENT:
                self._cookie = body.cookie
                self._outbox.append(self._hello())
                self._tries = 0  # progress: the backoff starts again
                self._arm(now)
            return []
        if isinstance(body, Challenge):
            before = self.state
            self._step(ClientInput.CHALLENGE)
            if before is ClientState.HELLO_SENT:
                self._on_challenge(datagram, body, now)
            return []
        if isinstance(body, Refused):
            if datagram.session_id not in (0, self.session_id):
                raise UinProtocolError("refusal for another session")
            self._step(ClientInput.REFUSED)
            self._retry_at = None
            return [LoginFailed(body.error)]
        raise UinProtocolError(f"unauthenticated {body.COMMAND.name}")

    def _authenticated(self, datagram: Datagram, now: float) -> list[ClientEvent]:
        events: list[ClientEvent] = []
        if self.state is ClientState.LOGIN_SENT:
            self._step(ClientInput.AUTHENTICATED)
            self._retry_at = None
            self._channel = ReliableChannel(now, self._config)
            events.append(LoggedIn(self.charset))
        body = datagram.body
        if isinstance(body, LoginOk):
            if self.state not in (ClientState.ONLINE, ClientState.CLOSING):
                raise UnexpectedClientInput("LOGIN_OK in state " + self.state.name)
            self.server_params = body
            return events
        if isinstance(body, Goodbye):
            self._step(ClientInput.GOODBYE)
            self._channel = None
            return [*events, Disconnected(body.error)]
        self._step(ClientInput.DATAGRAM)
        assert self._channel is not None
        for item in self._channel.receive(datagram.seq, datagram.ack, body, now):
            events.append(ServerCommand(item))
        if self.state is ClientState.CLOSING and self._channel.idle:
            self._step(ClientInput.ACKED)
            events.append(Disconnected(ErrorCode.LOGGED_OUT))
        return events

    def send(self, body: Body) -> int:
        """Queue a reliable command: its sequence number, or 0 when not online."""
        if body.COMMAND is Command.LOGOUT:
            raise ValueError("use logout()")
        if self.state is not ClientState.ONLINE or self._channel is None:
            return 0
        return self._channel.send(body)

    def acknowledged(self, seq: int) -> bool:
        """The server acknowledged our datagram ``seq`` (it holds that command)."""
        return self._channel is not None and self._channel.acknowledged(seq)

    def logout(self, now: float) -> list[ClientEvent]:
        before = self.state
        self._step(ClientInput.LOGOUT)
        if before is ClientState.ONLINE and self._channel is not None:
            self._channel.send(Logout())
            self._linger_until = now + LOGOUT_LINGER
            return []
        if before is ClientState.CLOSING:
            return []
        self._retry_at = None
        return [] if before is ClientState.CLOSED else [Disconnected(ErrorCode.LOGGED_OUT)]

    def datagrams_to_send(self, now: float) -> list[bytes]:
        out, self._outbox = self._outbox, []
        if self._channel is not None and self._keys is not None:
            for seq, ack, body in self._channel.datagrams_to_send(now):
                datagram = Datagram(body, self.session_id, self.uin, seq, ack)
                out.append(encode(datagram, self._keys[0]))
        return out

    # ---- time ----------------------------------------------------------------------------

    def get_timer(self) -> float | None:
        if self.state in (ClientState.HELLO_SENT, ClientState.LOGIN_SENT):
            return self._retry_at
        if self._channel is None:
            return None
        timer = self._channel.get_timer()
        if self.state is ClientState.CLOSING:
            timer = self._linger_until if timer is None else min(timer, self._linger_until)
        return timer

    def handle_timer(self, now: float) -> list[ClientEvent]:
        state = self.state
        if state in (ClientState.HELLO_SENT, ClientState.LOGIN_SENT):
            if self._retry_at is None or now < self._retry_at:
                self._step(ClientInput.TIMER)
                return []
            if self._tries >= HANDSHAKE_TRIES:
                self._step(ClientInput.EXPIRED)
                return [LoginFailed(ErrorCode.TIMEOUT)]
            self._step(ClientInput.TIMER)
            self._outbox.append(self._hello() if state is ClientState.HELLO_SENT else self._login)
            self._arm(now)
            return []
        if state is ClientState.CLOSING and now >= self._linger_until:
            self._step(ClientInput.EXPIRED)
            self._channel = None
            return [Disconnected(ErrorCode.LOGGED_OUT)]
        if self._channel is not None and state in (ClientState.ONLINE, ClientState.CLOSING):
            self._channel.handle_timer(now)
            if self._channel.dead is not None:
                reason = self._channel.dead
                self._step(ClientInput.EXPIRED)
                self._channel = None
                return [Disconnected(reason)]
        self._step(ClientInput.TIMER)
        return []


# ---- registration ---------------------------------------------------------------------


class RegistrationState(Enum):
    IDLE = auto()
    HELLO_SENT = auto()
    REGISTER_SENT = auto()
    DONE = auto()


@dataclass(frozen=True, slots=True)
class RegistrationDone:
    uin: int | None  # None: refused (see error)
    error: ErrorCode = ErrorCode.NONE


class RegistrationClient:
    """Ask the server for a new UIN for ``password`` and ``nickname``."""

    def __init__(
        self,
        password: str,
        nickname: str,
        *,
        want_utf8: bool = False,
        rng: crypto.Random = os.urandom,
    ) -> None:
        self.state = RegistrationState.IDLE
        self._password = password
        self._nickname = nickname
        self._flags = HELLO_REGISTER | (HELLO_WANT_UTF8 if want_utf8 else 0)
        self._rng = rng
        self._nonce = crypto.new_nonce(rng)
        self._cookie = b""
        self._outbox: list[bytes] = []
        self._retry_at: float | None = None
        self._tries = 0
        self._register = b""
        self._mac_key = b""
        self._session_id = 0

    def _hello(self) -> bytes:
        return encode(Datagram(Hello(self._flags, Status.OFFLINE, self._nonce, self._cookie)))

    def _arm(self, now: float) -> None:
        self._tries += 1
        self._retry_at = now + min(HANDSHAKE_RTO * 2 ** (self._tries - 1), HANDSHAKE_MAX_RTO)

    def start(self, now: float) -> None:
        if self.state is not RegistrationState.IDLE:
            raise UinProtocolError("registration already started")
        self.state = RegistrationState.HELLO_SENT
        self._outbox.append(self._hello())
        self._arm(now)

    def receive(self, data: bytes, now: float) -> list[RegistrationDone]:
        datagram = decode(data)
        body = datagram.body
        if self.state is RegistrationState.HELLO_SENT and isinstance(body, HelloVerify):
            self._cookie = body.cookie
            self._outbox.append(self._hello())
            self._arm(now)
            return []
        if self.state is RegistrationState.HELLO_SENT and isinstance(body, RegChallenge):
            self._on_challenge(datagram.session_id, body, now)
            return []
        if (
            self.state is RegistrationState.REGISTER_SENT
            and datagram.session_id == self._session_id
        ) and isinstance(body, Registered):
            tag = crypto.registered_tag(self._mac_key, self._session_id, body.new_uin)
            if not hmac.compare_digest(tag, body.tag):
                raise UinProtocolError("REGISTERED tag does not check")
            self.state = RegistrationState.DONE
            return [RegistrationDone(body.new_uin)]
        if self.state is not RegistrationState.DONE and isinstance(body, Refused):
            self.state = RegistrationState.DONE
            return [RegistrationDone(None, body.error)]
        if self.state in (RegistrationState.REGISTER_SENT, RegistrationState.DONE):
            return []  # late duplicates
        raise UinProtocolError(f"unexpected {body.COMMAND.name} during registration")

    def _on_challenge(self, session_id: int, body: RegChallenge, now: float) -> None:
        if session_id == 0:
            raise UinProtocolError("registration challenge without a session id")
        if body.charset is Charset.UTF8 and not self._flags & HELLO_WANT_UTF8:
            raise UinProtocolError("server chose UTF-8 unasked")
        private, public = crypto.dh_keypair(self._rng)
        shared = crypto.dh_shared(private, body.dh_public)
        enc_key, self._mac_key = crypto.registration_keys(shared, self._nonce, body.server_nonce)
        codec = "utf-8" if body.charset is Charset.UTF8 else "cp949"
        password = self._password.encode("utf-8")
        nickname = self._nickname.encode(codec, errors="replace")
        if len(password) > 255 or len(nickname) > 255:
            raise ValueError("password or nickname too long")
        plaintext = bytes([len(password)]) + password + bytes([len(nickname)]) + nickname
        ciphertext, tag = crypto.seal(enc_key, self._mac_key, session_id, plaintext)
        self._session_id = session_id
        self._register = encode(Datagram(Register(public, ciphertext, tag), session_id))
        self._outbox.append(self._register)
        self.state = RegistrationState.REGISTER_SENT
        self._tries = 0
        self._arm(now)

    def datagrams_to_send(self) -> list[bytes]:
        out, self._outbox = self._outbox, []
        return out

    def get_timer(self) -> float | None:
        return None if self.state is RegistrationState.DONE else self._retry_at

    def handle_timer(self, now: float) -> list[RegistrationDone]:
        if self.state is RegistrationState.DONE or self._retry_at is None or now < self._retry_at:
            return []
        if self._tries >= HANDSHAKE_TRIES:
            self.state = RegistrationState.DONE
            return [RegistrationDone(None, ErrorCode.TIMEOUT)]
        hello = self.state is RegistrationState.HELLO_SENT
        self._outbox.append(self._hello() if hello else self._register)
        self._arm(now)
        return []
