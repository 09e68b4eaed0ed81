"""UIN wire codec: datagram bytes <-> frozen dataclasses (docs/protocols/uin.md, section 3).

Sans-IO. One UDP datagram is one UIN datagram: a fixed 28-byte header, a payload
whose layout depends on the command, and an integrity trailer (CRC-32 before login,
a truncated HMAC-SHA256 under the session key after). ``encode`` and ``decode`` are
exact inverses; any input that is not a well-formed datagram raises
:class:`UinProtocolError` (or its subclass :class:`IntegrityError` when only the
trailer is wrong), never anything else.

Text fields are carried as raw bytes here; their charset (CP949 or UTF-8) is a
session property that translate.py applies.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
import zlib
from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar, Self, TypeVar

E = TypeVar("E", bound=IntEnum)

MAGIC = b"UI"
VERSION = 1
HEADER = struct.Struct(">2sBBHIIQIH")
HEADER_SIZE = HEADER.size  # 28
CRC_SIZE = 4
MAC_SIZE = 16
MAX_DATAGRAM = 1200
MAX_PAYLOAD = MAX_DATAGRAM - HEADER_SIZE - MAC_SIZE  # 1156
MIN_HELLO = 512
NONCE_SIZE = 24
PROOF_SIZE = 32
DH_PUBLIC_SIZE = 256
TAG_SIZE = 16
MAX_COOKIE = 32
MAX_SALT = 64
MAX_U32 = 0xFFFFFFFF
MAX_REQUEST_TEXT = 1000  # CONTACT_ADD, AUTH_REQUEST, AUTH_REPLY texts (section 4.12)

FLAG_MAC = 0x01
HELLO_WANT_UTF8 = 0x01
HELLO_REGISTER = 0x02
LIST_LAST = 0x01
MESSAGE_OFFLINE = 0x01
ENTRY_SUBSCRIBED = 0x01
ENTRY_ALLOWED = 0x02
ENTRY_PENDING = 0x04
ENTRY_BLOCKED = 0x08


class UinProtocolError(Exception):
    """The peer sent something that is not a valid UIN datagram."""


class IntegrityError(UinProtocolError):
    """The datagram is well-formed but its CRC-32 or HMAC does not check."""


class Command(IntEnum):
    HELLO = 0x0001
    HELLO_VERIFY = 0x0002
    CHALLENGE = 0x0003
    LOGIN = 0x0004
    LOGIN_OK = 0x0005
    REFUSED = 0x0006
    REG_CHALLENGE = 0x0007
    REGISTER = 0x0008
    REGISTERED = 0x0009
    ACK = 0x0010
    PING = 0x0011
    LOGOUT = 0x0012
    GOODBYE = 0x0013
    CONTACT_ADD = 0x0020
    CONTACT_REMOVE = 0x0021
    CONTACT_LIST_GET = 0x0022
    CONTACT_LIST = 0x0023
    AUTH_REQUEST = 0x0024
    AUTH_REPLY = 0x0025
    STATUS_SET = 0x0030
    PRESENCE = 0x0031
    MESSAGE = 0x0040
    TYPING = 0x0041
    MESSAGE_FAILED = 0x0042
    SEARCH = 0x0050
    SEARCH_RESULT = 0x0051


class ErrorCode(IntEnum):
    NONE = 0x0000
    UNSUPPORTED_VERSION = 0x0001
    LOGIN_FAILED = 0x0002
    RATE_LIMITED = 0x0003
    SERVER_BUSY = 0x0004
    REGISTRATION_CLOSED = 0x0005
    REGISTRATION_FAILED = 0x0006
    UNKNOWN_RECIPIENT = 0x0010
    BLOCKED = 0x0011
    TOO_LARGE = 0x0012
    UNSUPPORTED = 0x0013
    RECIPIENT_DISABLED = 0x0014
    QUEUE_FULL = 0x0015
    LOOP_DETECTED = 0x0016
    INTERNAL = 0x0017
    BAD_REQUEST = 0x0018
    SELF_ADDRESSED = 0x0019
    PROTOCOL_ERROR = 0x0020
    TIMEOUT = 0x0021
    SERVER_SHUTDOWN = 0x0022
    LOGGED_OUT = 0x0023
    LOGGED_IN_ELSEWHERE = 0x0024


class Status(IntEnum):
    OFFLINE = 0
    ONLINE = 1
    AWAY = 2
    BUSY = 3
    INVISIBLE = 4
    IDLE = 5


class Charset(IntEnum):
    CP949 = 0
    UTF8 = 1


# ---- byte reading ----------------------------------------------------------------


class Reader:
    """Reads a payload front to back; any overrun is the peer's protocol error."""

    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self._pos + n > len(self._data):
            raise UinProtocolError("payload truncated")
        chunk = self._data[self._pos : self._pos + n]
        self._pos += n
        return chunk

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int.from_bytes(self.take(2), "big")

    def u32(self) -> int:
        return int.from_bytes(self.take(4), "big")

    def short_bytes(self) -> bytes:
        return self.take(self.u8())

    def long_bytes(self) -> bytes:
        return self.take(self.u16())

    def rest(self) -> bytes:
        return self.take(len(self._data) - self._pos)

    def end(self) -> None:
        if self._pos != len(self._data):
            raise UinProtocolError("trailing bytes in payload")


def _u8(v: int) -> bytes:
    return v.to_bytes(1, "big")


def _u16(v: int) -> bytes:
    return v.to_bytes(2, "big")


def _u32(v: int) -> bytes:
    return v.to_bytes(4, "big")


def _short(b: bytes) -> bytes:
    if len(b) > 0xFF:
        raise ValueError("field longer than 255 bytes")
    return _u8(len(b)) + b


def _long(b: bytes) -> bytes:
    if len(b) > 0xFFFF:
        raise ValueError("field longer than 65535 bytes")
    return _u16(len(b)) + b


def _enum(kind: type[E], value: int) -> E:
    try:
        return kind(value)
    except ValueError:
        raise UinProtocolError(f"unknown {kind.__name__} {value}") from None


def _flag(value: int) -> bool:
    if value > 1:
        raise UinProtocolError(f"boolean field is {value}")
    return value == 1


def _request_text(r: Reader) -> bytes:
    text = r.long_bytes()
    if len(text) > MAX_REQUEST_TEXT:
        raise UinProtocolError("request text longer than 1000 bytes")
    return text


def _check_u32(v: int, name: str) -> None:
    if not 0 <= v <= MAX_U32:
        raise ValueError(f"{name} out of range")


# ---- payloads ----------------------------------------------------------------------


class Body:
    """A command payload. Subclasses are frozen dataclasses with a ``COMMAND``."""

    COMMAND: ClassVar[Command]

    def encode_payload(self) -> bytes:
        raise NotImplementedError

    @classmethod
    def decode_payload(cls, r: Reader) -> Self:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class Hello(Body):
    COMMAND: ClassVar[Command] = Command.HELLO
    flags: int
    presence: Status
    client_nonce: bytes
    cookie: bytes = b""

    def encode_payload(self) -> bytes:
        if self.flags & ~(HELLO_WANT_UTF8 | HELLO_REGISTER):
            raise ValueError("unknown hello flag")
        if len(self.client_nonce) != NONCE_SIZE or len(self.cookie) > MAX_COOKIE:
            raise ValueError("bad nonce or cookie size")
        body = _u8(self.flags) + _u8(self.presence) + self.client_nonce + _short(self.cookie)
        # Anti-amplification: pad so the whole datagram is at least MIN_HELLO bytes.
        pad = MIN_HELLO - HEADER_SIZE - CRC_SIZE - len(body)
        return body + bytes(max(pad, 0))

    @classmethod
    def decode_payload(cls, r: Reader) -> Self:
        flags = r.u8()
        if flags & ~(HELLO_WANT_UTF8 | HELLO_REGISTER):
            raise UinProtocolError("unknown hello flag")
        presence = _enum(Status, r.u8())
        nonce = r.take(NONCE_SIZE)
        cookie = r.short_bytes()
        if len(cookie) > MAX_COOKIE:
            raise UinProtocolError("cookie too long")
        if any(r.rest()):
            raise UinProtocolError("hello padding is not zero")
        return cls(flags, presence, nonce, cookie)


@dataclass(frozen=True, slots=True)
class HelloVerify(Body):
    COMMAND: ClassVar[Command] = Command.HELLO_VERIFY
    cookie: bytes

    def encode_payload(self) -> bytes:
        return _short(self.cookie)

    @classmethod
    def decode_payload(cls, r: Reader) -> Self:
        cookie = r.short_bytes()
        if not 1 <= len(cookie) <= MAX_COOKIE:
            raise UinProtocolError("bad cookie size")
        return cls(cookie)


@dataclass(frozen=True, slots=True)
class Challenge(Body):
    COMMAND: ClassVar[Command] = Command.CHALLENGE
    charset: Charset
    iterations: int
    salt: bytes
    server_nonce: bytes

    def encode_payload(self) -> bytes:
        return _u8(self.charset) + _u32(self.iterations) + _short(self.salt) + self.server_nonce

    @classmethod
    def decode_payload(cls, r: Reader) -> Self:
        charset = _enum(Charset, r.u8())
        iterations = r.u32()
        salt = r.short_bytes()
        if not 1 <= len(salt) <= MAX_SALT:
            raise UinProtocolError("bad salt size")
        return cls(charset, iterations, salt, r.take(NONCE_SIZE))


@dataclass(frozen=True, slots=True)
class Login(Body):
    COMMAND: ClassVar[Command] = Command.LOGIN
    proof: bytes

    def encode_payload(self) -> bytes:
        if len(self.proof) != PROOF_SIZE:
            raise ValueError("proof is 32 bytes")
        return self.proof

    @classmethod
    def decode_payload(cls, r: Reader) -> Self:
        return cls(r.take(PROOF_SIZE))


@dataclass(frozen=True, slots=True)
class LoginOk(Body):
    COMMAND: ClassVar[Command] = Command.LOGIN_OK
    charset: Charset
    keepalive: int
    timeout: int
    max_datagram: int

    def encode_payload(self) -> bytes:
        return (
            _u8(self.charset) + _u16(self.keepalive) + _u16(self.timeout) + _u16(self.max_datagram)
        )

    @classmethod
    def decode_payload(cls, r: Reader) -> Self:
        return cls(_enum(Charset, r.u8()), r.u16(), r.u16(), r.u16())


@dataclass(frozen=True, slots=True)
class Refused(Body):
    COMMAND: ClassVar[Command] = Command.REFUSED
    error: ErrorCode

    def encode_payload(self) -> bytes:
        return _u16(self.error)

    @classmethod
    def decode_payload(cls, r: Reader) -> Self:
        return cls(_enum(ErrorCode, r.u16()))


@dataclass(frozen=True, slots=True)
class RegChallenge(Body):
    COMMAND: ClassVar[Command] = Command.REG_CHALLENGE
    charset: Charset
    server_nonce: bytes
    dh_public: bytes

    def encode_payload(self) -> bytes:
        if len(self.server_nonce) != NONCE_SIZE or len(self.dh_public) != DH_PUBLIC_SIZE:
            raise ValueError("bad nonce or public key size")
        return _u8(self.charset) + self.server_nonce + self.dh_public

    @classmethod
    def decode_payload(cls, r: Reader) -> Self:
        return cls(_enum(Charset, r.u8()), r.take(NONCE_SIZE), r.take(DH_PUBLIC_SIZE))


@dataclass(frozen=True, slots=True)
class Register(Body):
    COMMAND: ClassVar[Command] = Command.REGISTER
    dh_public: bytes
    ciphertext: bytes
    tag: bytes

    def encode_payload(self) -> bytes:
        if len(self.dh_public) != DH_PUBLIC_SIZE or len(self.tag) != TAG_SIZE:
            raise ValueError("bad public key or tag size")
        return self.dh_public + _long(self.ciphertext) + self.tag

    @classmethod
    def decode_payload(cls, r: Reader) -> Self:
        return cls(r.take(DH_PUBLIC_SIZE), r.long_bytes(), r.take(TAG_SIZE))


@dataclass(frozen=True, slots=True)
class Registered(Body):
    COMMAND: ClassVar[Command] = Command.REGISTERED
    new_uin: int
    tag: bytes

    def encode_payload(self) -> bytes:
        if len(self.tag) != TAG_SIZE:
            raise ValueError("tag is 16 bytes")
        return _u32(self.new_uin) + self.tag

    @classmethod
    def decode_payload(cls, r: Reader) -> Self:
        return cls(r.u32(), r.take(TAG_SIZE))


@dataclass(frozen=True, slots=True)
class Ack(Body):
    COMMAND: ClassVar[Command] = Command.ACK
    selective: int = 0  # bit i set: seq (header ack + 2 + i) has arrived

    def encode_payload(self) -> bytes:
        return _u32(self.selective)

    @classmethod
    def decode_payload(cls, r: Reader) -> Self:
        return cls(r.u32())


@dataclass(frozen=True, slots=True)
class Ping(Body):
    COMMAND: ClassVar[Command] = Command.PING

    def encode_payload(self) -> bytes:
        return b""

    @classmethod
    def decode_payload(cls, r: Reader) -> Self:
        return cls()


@dataclass(frozen=True, slots=True)
class Logout(Body):
    COMMAND: ClassVar[Command] = Command.LOGOUT

    def encode_payload(self) -> bytes:
        return b""

    @classmethod
    def decode_payload(cls, r: Reader) -> Self:
        return cls()


@dataclass(frozen=True, slots=True)
class Goodbye(Body):
    COMMAND: ClassVar[Command] = Command.GOODBYE
    error: ErrorCode

    def encode_payload(self) -> bytes:
        return _u16(self.error)

    @classmethod
    def decode_payload(cls, r: Reader) -> Self:
        return cls(_enum(ErrorCode, r.u16()))


@dataclass(frozen=True, slots=True)
class ContactAdd(Body):
    COMMAND: ClassVar[Command] = Command.CONTACT_ADD
    uin: int
    text: bytes = b""

    def encode_payload(self) -> bytes:
        return _u32(self.uin) + _long(self.text)

    @classmethod
    def decode_payload(cls, r: Reader) -> Self:
        return cls(r.u32(), _request_text(r))


@dataclass(frozen=True, slots=True)
class ContactRemove(Body):
    COMMAND: ClassVar[Command] = Command.CONTACT_REMOVE
    uin: int

    def encode_payload(self) -> bytes:
        return _u32(self.uin)

    @classmethod
    def decode_payload(cls, r: Reader) -> Self:
        return cls(r.u32())


@dataclass(frozen=True, slots=True)
class ContactListGet(Body):
    COMMAND: ClassVar[Command] = Command.CONTACT_LIST_GET

    def encode_payload(self) -> bytes:
        return b""

    @classmethod
    def decode_payload(cls, r: Reader) -> Self:
        return cls()


@dataclass(frozen=True, slots=True)
class ContactItem:
    uin: int
    flags: int
    presence: Status
    nickname: bytes

    def encode(self) -> bytes:
        return _u32(self.uin) + _u8(self.flags) + _u8(self.presence) + _short(self.nickname)

    @classmethod
    def decode(cls, r: Reader) -> ContactItem:
        uin, flags = r.u32(), r.u8()
        if flags & 0xF0:
            raise UinProtocolError("unknown contact flag")
        return cls(uin, flags, _enum(Status, r.u8()), r.short_bytes())


@dataclass(frozen=True, slots=True)
class ContactList(Body):
    COMMAND: ClassVar[Command] = Command.CONTACT_LIST
    last: bool
    items: tuple[ContactItem, ...]

    def encode_payload(self) -> bytes:
        if len(self.items) > 0xFF:
            raise ValueError("at most 255 items per datagram")
        head = _u8(LIST_LAST if self.last else 0) + _u8(len(self.items))
        return head + b"".join(i.encode() for i in self.items)

    @classmethod
    def decode_payload(cls, r: Reader) -> Self:
        last = _flag(r.u8())
        count = r.u8()
        return cls(last, tuple(ContactItem.decode(r) for _ in range(count)))


@dataclass(frozen=True, slots=True)
class AuthRequest(Body):
    COMMAND: ClassVar[Command] = Command.AUTH_REQUEST
    uin: int
    text: bytes = b""

    def encode_payload(self) -> bytes:
        return _u32(self.uin) + _long(self.text)

    @classmethod
    def decode_payload(cls, r: Reader) -> Self:
        return cls(r.u32(), _request_text(r))


@dataclass(frozen=True, slots=True)
class AuthReply(Body):
    COMMAND: ClassVar[Command] = Command.AUTH_REPLY
    uin: int
    granted: bool
    text: bytes = b""

    def encode_payload(self) -> bytes:
        return _u32(self.uin) + _u8(int(self.granted)) + _long(self.text)

    @classmethod
    def decode_payload(cls, r: Reader) -> Self:
        return cls(r.u32(), _flag(r.u8()), _request_text(r))


@dataclass(frozen=True, slots=True)
class StatusSet(Body):
    COMMAND: ClassVar[Command] = Command.STATUS_SET
    presence: Status
    text: bytes = b""

    def encode_payload(self) -> bytes:
        return _u8(self.presence) + _short(self.text)

    @classmethod
    def decode_payload(cls, r: Reader) -> Self:
        return cls(_enum(Status, r.u8()), r.short_bytes())


@dataclass(frozen=True, slots=True)
class PresenceNotice(Body):
    COMMAND: ClassVar[Command] = Command.PRESENCE
    uin: int
    presence: Status
    text: bytes = b""

    def encode_payload(self) -> bytes:
        return _u32(self.uin) + _u8(self.presence) + _short(self.text)

    @classmethod
    def decode_payload(cls, r: Reader) -> Self:
        return cls(r.u32(), _enum(Status, r.u8()), r.short_bytes())


@dataclass(frozen=True, slots=True)
class MessageFragment(Body):
    COMMAND: ClassVar[Command] = Command.MESSAGE
    uin: int
    msg_id: int
    time: int
    flags: int
    charset: Charset
    index: int
    count: int
    text: bytes

    def encode_payload(self) -> bytes:
        return (
            _u32(self.uin)
            + _u32(self.msg_id)
            + _u32(self.time)
            + _u8(self.flags)
            + _u8(self.charset)
            + _u8(self.index)
            + _u8(self.count)
            + _long(self.text)
        )

    @classmethod
    def decode_payload(cls, r: Reader) -> Self:
        uin, msg_id, time, flags = r.u32(), r.u32(), r.u32(), r.u8()
        if flags & ~MESSAGE_OFFLINE:
            raise UinProtocolError("unknown message flag")
        charset = _enum(Charset, r.u8())
        index, count = r.u8(), r.u8()
        if count == 0 or index >= count:
            raise UinProtocolError("fragment index outside its count")
        return cls(uin, msg_id, time, flags, charset, index, count, r.long_bytes())


@dataclass(frozen=True, slots=True)
class TypingNotice(Body):
    COMMAND: ClassVar[Command] = Command.TYPING
    uin: int
    active: bool

    def encode_payload(self) -> bytes:
        return _u32(self.uin) + _u8(int(self.active))

    @classmethod
    def decode_payload(cls, r: Reader) -> Self:
        return cls(r.u32(), _flag(r.u8()))


@dataclass(frozen=True, slots=True)
class MessageFailed(Body):
    COMMAND: ClassVar[Command] = Command.MESSAGE_FAILED
    uin: int
    msg_id: int
    error: ErrorCode

    def encode_payload(self) -> bytes:
        return _u32(self.uin) + _u32(self.msg_id) + _u16(self.error)

    @classmethod
    def decode_payload(cls, r: Reader) -> Self:
        return cls(r.u32(), r.u32(), _enum(ErrorCode, r.u16()))


@dataclass(frozen=True, slots=True)
class Search(Body):
    COMMAND: ClassVar[Command] = Command.SEARCH
    search_id: int
    text: bytes

    def encode_payload(self) -> bytes:
        return _u16(self.search_id) + _short(self.text)

    @classmethod
    def decode_payload(cls, r: Reader) -> Self:
        return cls(r.u16(), r.short_bytes())


@dataclass(frozen=True, slots=True)
class SearchItem:
    uin: int
    nickname: bytes

    def encode(self) -> bytes:
        return _u32(self.uin) + _short(self.nickname)

    @classmethod
    def decode(cls, r: Reader) -> SearchItem:
        return cls(r.u32(), r.short_bytes())


@dataclass(frozen=True, slots=True)
class SearchResult(Body):
    COMMAND: ClassVar[Command] = Command.SEARCH_RESULT
    search_id: int
    last: bool
    items: tuple[SearchItem, ...]

    def encode_payload(self) -> bytes:
        if len(self.items) > 0xFF:
            raise ValueError("at most 255 items per datagram")
        head = _u16(self.search_id) + _u8(LIST_LAST if self.last else 0) + _u8(len(self.items))
        return head + b"".join(i.encode() for i in self.items)

    @classmethod
    def decode_payload(cls, r: Reader) -> Self:
        search_id = r.u16()
        last = _flag(r.u8())
        count = r.u8()
        return cls(search_id, last, tuple(SearchItem.decode(r) for _ in range(count)))


BODIES: dict[Command, type[Body]] = {
    cls.COMMAND: cls
    for cls in (
        Hello,
        HelloVerify,
        Challenge,
        Login,
        LoginOk,
        Refused,
        RegChallenge,
        Register,
        Registered,
        Ack,
        Ping,
        Logout,
        Goodbye,
        ContactAdd,
        ContactRemove,
        ContactListGet,
        ContactList,
        AuthRequest,
        AuthReply,
        StatusSet,
        PresenceNotice,
        MessageFragment,
        TypingNotice,
        MessageFailed,
        Search,
        SearchResult,
    )
}

# Who may send what (the other direction is the peer's protocol error).
FROM_CLIENT: frozenset[Command] = frozenset(
    {
        Command.HELLO,
        Command.LOGIN,
        Command.REGISTER,
        Command.ACK,
        Command.PING,
        Command.LOGOUT,
        Command.CONTACT_ADD,
        Command.CONTACT_REMOVE,
        Command.CONTACT_LIST_GET,
        Command.AUTH_REPLY,
        Command.STATUS_SET,
        Command.MESSAGE,
        Command.TYPING,
        Command.SEARCH,
    }
)
FROM_SERVER: frozenset[Command] = frozenset(
    {
        Command.HELLO_VERIFY,
        Command.CHALLENGE,
        Command.LOGIN_OK,
        Command.REFUSED,
        Command.REG_CHALLENGE,
        Command.REGISTERED,
        Command.ACK,
        Command.GOODBYE,
        Command.CONTACT_LIST,
        Command.AUTH_REQUEST,
        Command.AUTH_REPLY,
        Command.PRESENCE,
        Command.MESSAGE,
        Command.TYPING,
        Command.MESSAGE_FAILED,
        Command.SEARCH_RESULT,
    }
)
# Sent with seq 0 and never retransmitted by the reliability layer.
UNSEQUENCED: frozenset[Command] = frozenset(
    {
        Command.HELLO,
        Command.HELLO_VERIFY,
        Command.CHALLENGE,
        Command.LOGIN,
        Command.LOGIN_OK,
        Command.REFUSED,
        Command.REG_CHALLENGE,
        Command.REGISTER,
        Command.REGISTERED,
        Command.ACK,
        Command.GOODBYE,
    }
)


# ---- datagrams ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Header:
    flags: int
    command: Command
    seq: int
    ack: int
    session_id: int
    uin: int
    length: int

    @property
    def authenticated(self) -> bool:
        return bool(self.flags & FLAG_MAC)


@dataclass(frozen=True, slots=True)
class Datagram:
    body: Body
    session_id: int = 0
    uin: int = 0
    seq: int = 0
    ack: int = 0


def mac(key: bytes, data: bytes) -> bytes:
    """The truncated HMAC-SHA256 trailer of an authenticated datagram."""
    return hmac.new(key, data, hashlib.sha256).digest()[:MAC_SIZE]


@dataclass(frozen=True, slots=True)
class Frame:
    """A datagram's header as raw numbers: only what is needed to find its session and
    check its trailer (section 3). Nothing in it is trusted before the check."""

    flags: int
    command: int
    seq: int
    ack: int
    session_id: int
    uin: int
    length: int

    @property
    def authenticated(self) -> bool:
        return bool(self.flags & FLAG_MAC)


def frame(data: bytes) -> Frame:
    """The framing checks of section 3 (size, magic, version, length against the
    trailer that flags bit 0 announces). A datagram failing them is always dropped."""
    if len(data) > MAX_DATAGRAM:
        raise UinProtocolError("datagram larger than 1200 bytes")
    if len(data) < HEADER_SIZE + CRC_SIZE:
        raise UinProtocolError("datagram shorter than a header")
    magic, version, flags, command, seq, ack, session_id, uin, length = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise UinProtocolError("bad magic")
    if version != VERSION:
        raise UinProtocolError(f"unsupported version {version}")
    trailer = MAC_SIZE if flags & FLAG_MAC else CRC_SIZE
    if HEADER_SIZE + length + trailer != len(data):
        raise UinProtocolError("length field disagrees with the datagram size")
    return Frame(flags, command, seq, ack, session_id, uin, length)


def _header(f: Frame) -> Header:
    if f.flags & ~FLAG_MAC:
        raise UinProtocolError("reserved header flag set")
    return Header(f.flags, _enum(Command, f.command), f.seq, f.ack, f.session_id, f.uin, f.length)


def peek(data: bytes) -> Header:
    """The header of ``data`` with its sizes, flags and command checked, before any
    integrity check."""
    return _header(frame(data))


def check(data: bytes, f: Frame, key: bytes | None = None) -> None:
    """Verify the trailer of a framed datagram: the HMAC under ``key`` (which an
    authenticated datagram needs) or the CRC-32. IntegrityError if it does not check."""
    body_end = HEADER_SIZE + f.length
    signed, trailer = data[:body_end], data[body_end:]
    if f.authenticated:
        if key is None or not hmac.compare_digest(mac(key, signed), trailer):
            raise IntegrityError("bad datagram MAC")
    elif zlib.crc32(signed).to_bytes(4, "big") != trailer:
        raise IntegrityError("bad datagram CRC")


def parse(data: bytes, f: Frame) -> Datagram:
    """Everything section 3 asks after the check: reserved flags, a known command, a
    payload that parses with nothing left over, HELLO's size. For a datagram whose
    MAC verified, failing here is the authenticated peer's protocol error."""
    header = _header(f)
    reader = Reader(data[HEADER_SIZE : HEADER_SIZE + f.length])
    body = BODIES[header.command].decode_payload(reader)
    reader.end()
    if header.command is Command.HELLO and len(data) < MIN_HELLO:
        raise UinProtocolError("hello shorter than 512 bytes")
    return Datagram(body, header.session_id, header.uin, header.seq, header.ack)


def encode(datagram: Datagram, key: bytes | None = None) -> bytes:
    """The bytes of ``datagram``: HMAC trailer under ``key``, CRC-32 without one."""
    for name in ("uin", "seq", "ack"):
        _check_u32(getattr(datagram, name), name)
    if not 0 <= datagram.session_id <= 0xFFFFFFFFFFFFFFFF:
        raise ValueError("session id out of range")
    payload = datagram.body.encode_payload()
    flags = FLAG_MAC if key is not None else 0
    head = HEADER.pack(
        MAGIC,
        VERSION,
        flags,
        datagram.body.COMMAND,
        datagram.seq,
        datagram.ack,
        datagram.session_id,
        datagram.uin,
        len(payload),
    )
    data = head + payload
    trailer = mac(key, data) if key is not None else zlib.crc32(data).to_bytes(4, "big")
    if len(data) + len(trailer) > MAX_DATAGRAM:
        raise ValueError("datagram larger than 1200 bytes")
    return data + trailer


def decode(data: bytes, key: bytes | None = None) -> Datagram:
    """Parse and verify one datagram. An authenticated datagram needs ``key``; an
    unauthenticated one is accepted whatever ``key`` is (the caller decides whether
    its state allows an unauthenticated command)."""
    f = frame(data)
    _header(f)  # an unknown command or flag is reported before a bad trailer
    check(data, f, key)
    return parse(data, f)
