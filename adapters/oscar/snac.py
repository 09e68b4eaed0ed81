"""SNACs: ``family:u16 subtype:u16 flags:u16 request_id:u32 [preamble] body``.

Flag 0x8000 means a preamble follows the header: a u16 length and that many bytes of
TLVs (seen in rate-change notices). Flag 0x0001 means "more replies to this request
follow" (a feedbag or ICQ reply split over several SNACs).

Each SNAC we read or write has a typed, frozen body class registered under its
(family, subtype); ``decode_snac`` returns :class:`UnknownBody` for the rest, so the
session can answer them with an error rather than dropping the connection. Subtype 1
is the error reply of every family (:class:`SnacError`). Bodies decode strictly: a
length that runs past its container or bytes left over where the format ends is an
:class:`OscarProtocolError`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar, Self, TypeVar

from adapters.oscar.errors import OscarProtocolError
from adapters.oscar.tlv import (
    ByteReader,
    Tlv,
    Tlvs,
    encode_tlv_block,
    encode_tlv_lblock,
    encode_tlvs,
    u8_string,
    u16_string,
)

SNAC_HEADER_LEN = 10
FLAG_MORE_REPLIES = 0x0001
FLAG_PREAMBLE = 0x8000

# families
OSERVICE = 0x0001
LOCATE = 0x0002
BUDDY = 0x0003
ICBM = 0x0004
ADVERT = 0x0005
INVITE = 0x0006
ADMIN = 0x0007
POPUP = 0x0008
PD = 0x0009
USER_LOOKUP = 0x000A
STATS = 0x000B
TRANSLATE = 0x000C
CHAT_NAV = 0x000D
CHAT = 0x000E
ODIR = 0x000F
BART = 0x0010
FEEDBAG = 0x0013
ICQ = 0x0015
BUCP = 0x0017
ALERT = 0x0018

# error codes carried by xx/01
ERR_INVALID_SNAC = 0x0001
ERR_RATE_TO_HOST = 0x0002
ERR_NOT_LOGGED_ON = 0x0004
ERR_SERVICE_UNAVAILABLE = 0x0005
ERR_SERVICE_NOT_DEFINED = 0x0006
ERR_NOT_SUPPORTED_BY_HOST = 0x0008
ERR_NOT_SUPPORTED_BY_CLIENT = 0x0009
ERR_REPLY_TOO_BIG = 0x000B
ERR_REQUEST_DENIED = 0x000D
ERR_BAD_FORMAT = 0x000E
ERR_IN_LOCAL_PERMIT_DENY = 0x0010
ERR_QUEUE_FULL = 0x0017


def _sn(raw: bytes) -> str:
    # Screen names are ASCII on the wire; latin-1 keeps any byte round-trippable and
    # leaves validation to address normalisation.
    return raw.decode("latin-1")


def _sn_bytes(name: str) -> bytes:
    return name.encode("latin-1")


def _text(raw: bytes) -> str:
    # Feedbag names and reasons: UTF-8 from modern clients, anything from old ones;
    # surrogateescape keeps the exact bytes.
    return raw.decode("utf-8", "surrogateescape")


def _text_bytes(value: str) -> bytes:
    return value.encode("utf-8", "surrogateescape")


# ---------------------------------------------------------------- shared structures


@dataclass(frozen=True, slots=True)
class UserInfo:
    """The user-info block: screen name, warning level, a counted TLV block."""

    screen_name: str
    warning: int = 0
    tlvs: Tlvs = ()

    def encode(self) -> bytes:
        return (
            u8_string(_sn_bytes(self.screen_name))
            + struct.pack(">H", self.warning)
            + encode_tlv_block(self.tlvs)
        )

    @classmethod
    def read(cls, r: ByteReader) -> UserInfo:
        name = _sn(r.u8_string())
        warning = r.u16()
        return cls(name, warning, r.tlv_block())


@dataclass(frozen=True, slots=True)
class FeedbagItem:
    """One server-stored list item: ``class_id`` 0 buddy, 1 group, 2 permit, 3 deny,
    4 permit/deny settings, 5 presence preferences, others opaque."""

    name: str
    group_id: int
    item_id: int
    class_id: int
    tlvs: Tlvs = ()

    def encode(self) -> bytes:
        return (
            u16_string(_text_bytes(self.name))
            + struct.pack(">HHH", self.group_id, self.item_id, self.class_id)
            + encode_tlv_lblock(self.tlvs)
        )

    @classmethod
    def read(cls, r: ByteReader) -> FeedbagItem:
        name = _text(r.u16_string())
        group_id, item_id, class_id = r.u16(), r.u16(), r.u16()
        return cls(name, group_id, item_id, class_id, r.tlv_lblock())


@dataclass(frozen=True, slots=True)
class RateClass:
    """One rate class (levels are moving averages of the gap between SNACs, in ms)."""

    class_id: int
    window: int
    clear: int
    alert: int
    limit: int
    disconnect: int
    current: int
    max_level: int
    last_time: int = 0
    state: int = 0

    def encode(self) -> bytes:
        return struct.pack(
            ">HIIIIIIIIB",
            self.class_id,
            self.window,
            self.clear,
            self.alert,
            self.limit,
            self.disconnect,
            self.current,
            self.max_level,
            self.last_time,
            self.state,
        )

    @classmethod
    def read(cls, r: ByteReader) -> RateClass:
        fields = struct.unpack(">HIIIIIIIIB", r.take(35))
        return cls(*fields)


@dataclass(frozen=True, slots=True)
class RateGroup:
    class_id: int
    pairs: tuple[tuple[int, int], ...] = ()

    def encode(self) -> bytes:
        out = struct.pack(">HH", self.class_id, len(self.pairs))
        return out + b"".join(struct.pack(">HH", f, s) for f, s in self.pairs)

    @classmethod
    def read(cls, r: ByteReader) -> RateGroup:
        class_id, count = r.u16(), r.u16()
        return cls(class_id, tuple((r.u16(), r.u16()) for _ in range(count)))


@dataclass(frozen=True, slots=True)
class IcqMeta:
    """The little-endian envelope inside TLV 1 of ICQ 15/02 and 15/03."""

    uin: int
    type: int
    seq: int
    data: bytes = b""

    def encode(self) -> bytes:
        inner = struct.pack("<IHH", self.uin, self.type, self.seq) + self.data
        return Tlv(1, struct.pack("<H", len(inner)) + inner).encode()

    @classmethod
    def read(cls, r: ByteReader) -> IcqMeta:
        tlv = r.tlv()
        r.expect_end()
        if tlv.type != 1:
            raise OscarProtocolError(f"ICQ meta data in TLV 0x{tlv.type:04x}, not TLV 1")
        inner = ByteReader(tlv.value, "ICQ meta")
        size = inner.u16le()
        if size != inner.remaining:
            raise OscarProtocolError(f"ICQ meta size {size} but {inner.remaining} bytes follow")
        uin, type_, seq = inner.u32le(), inner.u16le(), inner.u16le()
        return cls(uin, type_, seq, inner.rest())


# ---------------------------------------------------------------- body base classes


class SnacBody:
    """Base of all bodies. Registered subclasses carry FAMILY/SUBTYPE."""

    __slots__ = ()
    FAMILY: ClassVar[int] = -1
    SUBTYPE: ClassVar[int] = -1

    @property
    def family(self) -> int:
        return self.FAMILY

    @property
    def subtype(self) -> int:
        return self.SUBTYPE

    def encode(self) -> bytes:
        raise NotImplementedError

    @classmethod
    def decode(cls, data: bytes) -> Self:
        raise NotImplementedError


_REGISTRY: dict[tuple[int, int], type[SnacBody]] = {}


_B = TypeVar("_B", bound=SnacBody)


def snac(family: int, subtype: int) -> Callable[[type[_B]], type[_B]]:
    """Class decorator: register a body under (family, subtype)."""

    def register(cls: type[_B]) -> type[_B]:
        cls.FAMILY = family
        cls.SUBTYPE = subtype
        key = (family, subtype)
        if key in _REGISTRY:
            raise RuntimeError(f"two bodies for SNAC {family:02x}/{subtype:02x}")
        _REGISTRY[key] = cls
        return cls

    return register


def registered_bodies() -> dict[tuple[int, int], type[SnacBody]]:
    return dict(_REGISTRY)


@dataclass(frozen=True, slots=True)
class EmptyBody(SnacBody):
    def encode(self) -> bytes:
        return b""

    @classmethod
    def decode(cls, data: bytes) -> Self:
        ByteReader(data, cls.__name__).expect_end()
        return cls()


@dataclass(frozen=True, slots=True)
class TlvsBody(SnacBody):
    tlvs: Tlvs = ()

    def encode(self) -> bytes:
        return encode_tlvs(self.tlvs)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        return cls(ByteReader(data, cls.__name__).tlv_chain())


@dataclass(frozen=True, slots=True)
class NamesBody(SnacBody):
    names: tuple[str, ...] = ()

    def encode(self) -> bytes:
        return b"".join(u8_string(_sn_bytes(n)) for n in self.names)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = ByteReader(data, cls.__name__)
        names: list[str] = []
        while not r.at_end():
            names.append(_sn(r.u8_string()))
        return cls(tuple(names))


@dataclass(frozen=True, slots=True)
class U16ListBody(SnacBody):
    values: tuple[int, ...] = ()

    def encode(self) -> bytes:
        return b"".join(struct.pack(">H", v) for v in self.values)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        if len(data) % 2:
            raise OscarProtocolError(f"{cls.__name__}: odd length {len(data)}")
        return cls(tuple(v for (v,) in struct.iter_unpack(">H", data)))


@dataclass(frozen=True, slots=True)
class VersionsBody(SnacBody):
    pairs: tuple[tuple[int, int], ...] = ()

    def encode(self) -> bytes:
        return b"".join(struct.pack(">HH", f, v) for f, v in self.pairs)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        if len(data) % 4:
            raise OscarProtocolError(f"{cls.__name__}: length {len(data)} not a multiple of 4")
        return cls(tuple(struct.iter_unpack(">HH", data)))


@dataclass(frozen=True, slots=True)
class U32Body(SnacBody):
    value: int = 0

    def encode(self) -> bytes:
        return struct.pack(">I", self.value)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = ByteReader(data, cls.__name__)
        value = r.u32()
        r.expect_end()
        return cls(value)


@dataclass(frozen=True, slots=True)
class ItemsBody(SnacBody):
    items: tuple[FeedbagItem, ...] = ()

    def encode(self) -> bytes:
        return b"".join(i.encode() for i in self.items)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = ByteReader(data, cls.__name__)
        items: list[FeedbagItem] = []
        while not r.at_end():
            items.append(FeedbagItem.read(r))
        return cls(tuple(items))


@dataclass(frozen=True, slots=True)
class UnknownBody(SnacBody):
    """A SNAC we do not model; kept whole so it can be answered or logged."""

    unknown_family: int = 0
    unknown_subtype: int = 0
    data: bytes = b""

    @property
    def family(self) -> int:
        return self.unknown_family

    @property
    def subtype(self) -> int:
        return self.unknown_subtype

    def encode(self) -> bytes:
        return self.data


@dataclass(frozen=True, slots=True)
class SnacError(SnacBody):
    """xx/01 of any family: an error code and optional TLVs."""

    error_family: int = OSERVICE
    code: int = ERR_INVALID_SNAC
    tlvs: Tlvs = ()

    @property
    def family(self) -> int:
        return self.error_family

    @property
    def subtype(self) -> int:
        return 0x0001

    def encode(self) -> bytes:
        return struct.pack(">H", self.code) + encode_tlvs(self.tlvs)

    @classmethod
    def read(cls, family: int, data: bytes) -> SnacError:
        r = ByteReader(data, "SnacError")
        code = r.u16()
        return cls(family, code, r.tlv_chain())


# ---------------------------------------------------------------- OSERVICE (0x01)


@dataclass(frozen=True, slots=True)
class ToolVersion:
    family: int
    version: int
    tool_id: int
    tool_version: int


@snac(OSERVICE, 0x02)
@dataclass(frozen=True, slots=True)
class ClientOnline(SnacBody):
    """01/02 client ready: per family its version and the client's tool id/version."""

    entries: tuple[ToolVersion, ...] = ()

    def encode(self) -> bytes:
        return b"".join(
            struct.pack(">HHHH", e.family, e.version, e.tool_id, e.tool_version)
            for e in self.entries
        )

    @classmethod
    def decode(cls, data: bytes) -> Self:
        if len(data) % 8:
            raise OscarProtocolError(f"ClientOnline: length {len(data)} not a multiple of 8")
        return cls(tuple(ToolVersion(*t) for t in struct.iter_unpack(">HHHH", data)))


@snac(OSERVICE, 0x03)
@dataclass(frozen=True, slots=True)
class HostOnline(U16ListBody):
    """01/03 the families this server offers."""


@snac(OSERVICE, 0x04)
@dataclass(frozen=True, slots=True)
class ServiceRequest(SnacBody):
    """01/04 the client asks for a connection to another service (family)."""

    service: int = 0
    tlvs: Tlvs = ()

    def encode(self) -> bytes:
        return struct.pack(">H", self.service) + encode_tlvs(self.tlvs)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = ByteReader(data, "ServiceRequest")
        service = r.u16()
        return cls(service, r.tlv_chain())


@snac(OSERVICE, 0x05)
@dataclass(frozen=True, slots=True)
class ServiceResponse(TlvsBody):
    """01/05 redirect to a service host (TLV 0x0D family, 5 address, 6 cookie)."""


@snac(OSERVICE, 0x06)
@dataclass(frozen=True, slots=True)
class RateParamsQuery(EmptyBody):
    """01/06."""


@snac(OSERVICE, 0x07)
@dataclass(frozen=True, slots=True)
class RateParamsReply(SnacBody):
    """01/07 rate classes, then which SNACs belong to each."""

    classes: tuple[RateClass, ...] = ()
    groups: tuple[RateGroup, ...] = ()

    def encode(self) -> bytes:
        return (
            struct.pack(">H", len(self.classes))
            + b"".join(c.encode() for c in self.classes)
            + b"".join(g.encode() for g in self.groups)
        )

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = ByteReader(data, "RateParamsReply")
        classes = tuple(RateClass.read(r) for _ in range(r.u16()))
        groups: list[RateGroup] = []
        while not r.at_end():
            groups.append(RateGroup.read(r))
        return cls(classes, tuple(groups))


@snac(OSERVICE, 0x08)
@dataclass(frozen=True, slots=True)
class RateParamsSubAdd(U16ListBody):
    """01/08 the client acknowledges (subscribes to) rate classes."""


@snac(OSERVICE, 0x0A)
@dataclass(frozen=True, slots=True)
class RateParamChange(SnacBody):
    """01/0A code 1 changed, 2 warning, 3 limited, 4 clear; then the class."""

    code: int = 1
    rate: RateClass = field(default_factory=lambda: RateClass(1, 0, 0, 0, 0, 0, 0, 0))

    def encode(self) -> bytes:
        return struct.pack(">H", self.code) + self.rate.encode()

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = ByteReader(data, "RateParamChange")
        code = r.u16()
        rate = RateClass.read(r)
        r.expect_end()
        return cls(code, rate)


@snac(OSERVICE, 0x0E)
@dataclass(frozen=True, slots=True)
class SelfInfoQuery(EmptyBody):
    """01/0E."""


@snac(OSERVICE, 0x0F)
@dataclass(frozen=True, slots=True)
class SelfInfoReply(SnacBody):
    """01/0F the client's own user info."""

    user: UserInfo = field(default_factory=lambda: UserInfo(""))

    def encode(self) -> bytes:
        return self.user.encode()

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = ByteReader(data, "SelfInfoReply")
        user = UserInfo.read(r)
        r.expect_end()
        return cls(user)


@snac(OSERVICE, 0x11)
@dataclass(frozen=True, slots=True)
class IdleNotification(U32Body):
    """01/11 seconds idle (0 = no longer idle)."""


@snac(OSERVICE, 0x13)
@dataclass(frozen=True, slots=True)
class Motd(SnacBody):
    """01/13 message of the day: a type and TLVs (0x0B text)."""

    motd_type: int = 4
    tlvs: Tlvs = ()

    def encode(self) -> bytes:
        return struct.pack(">H", self.motd_type) + encode_tlvs(self.tlvs)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = ByteReader(data, "Motd")
        motd_type = r.u16()
        return cls(motd_type, r.tlv_chain())


@snac(OSERVICE, 0x14)
@dataclass(frozen=True, slots=True)
class SetPrivacyFlags(U32Body):
    """01/14 bit 1: others may see idle time, bit 2: member-since."""


@snac(OSERVICE, 0x16)
@dataclass(frozen=True, slots=True)
class Noop(EmptyBody):
    """01/16."""


@snac(OSERVICE, 0x17)
@dataclass(frozen=True, slots=True)
class ClientVersions(VersionsBody):
    """01/17 family versions the client speaks."""


@snac(OSERVICE, 0x18)
@dataclass(frozen=True, slots=True)
class HostVersions(VersionsBody):
    """01/18 family versions the server speaks."""


@snac(OSERVICE, 0x1E)
@dataclass(frozen=True, slots=True)
class SetUserInfoFields(TlvsBody):
    """01/1E TLV 6 ICQ status, 0x1D extended status, 0x0C direct-connect info."""


# ---------------------------------------------------------------- LOCATE (0x02)


@snac(LOCATE, 0x02)
@dataclass(frozen=True, slots=True)
class LocateRightsQuery(TlvsBody):
    """02/02."""


@snac(LOCATE, 0x03)
@dataclass(frozen=True, slots=True)
class LocateRightsReply(TlvsBody):
    """02/03 TLV 1 max profile length, 2 max capabilities."""


@snac(LOCATE, 0x04)
@dataclass(frozen=True, slots=True)
class LocateSetInfo(TlvsBody):
    """02/04 TLV 1/2 profile mime/text, 3/4 away mime/text, 5 capabilities."""


@snac(LOCATE, 0x05)
@dataclass(frozen=True, slots=True)
class LocateUserInfoQuery(SnacBody):
    """02/05 info type (1 profile, 3 away message, 4 capabilities), screen name."""

    info_type: int = 1
    screen_name: str = ""

    def encode(self) -> bytes:
        return struct.pack(">H", self.info_type) + u8_string(_sn_bytes(self.screen_name))

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = ByteReader(data, "LocateUserInfoQuery")
        info_type = r.u16()
        name = _sn(r.u8_string())
        r.expect_end()
        return cls(info_type, name)


@snac(LOCATE, 0x06)
@dataclass(frozen=True, slots=True)
class LocateUserInfoReply(SnacBody):
    """02/06 user info block, then TLVs (1/2 profile, 3/4 away message, 5 caps)."""

    user: UserInfo = field(default_factory=lambda: UserInfo(""))
    tlvs: Tlvs = ()

    def encode(self) -> bytes:
        return self.user.encode() + encode_tlvs(self.tlvs)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = ByteReader(data, "LocateUserInfoReply")
        user = UserInfo.read(r)
        return cls(user, r.tlv_chain())


@snac(LOCATE, 0x0B)
@dataclass(frozen=True, slots=True)
class LocateGetDirInfo(SnacBody):
    """02/0B directory info query by screen name."""

    screen_name: str = ""

    def encode(self) -> bytes:
        return u8_string(_sn_bytes(self.screen_name))

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = ByteReader(data, "LocateGetDirInfo")
        name = _sn(r.u8_string())
        r.expect_end()
        return cls(name)


@snac(LOCATE, 0x15)
@dataclass(frozen=True, slots=True)
class LocateUserInfoQuery2(SnacBody):
    """02/15 flags (1 profile, 2 away message, 4 capabilities...), screen name."""

    request_flags: int = 0
    screen_name: str = ""

    def encode(self) -> bytes:
        return struct.pack(">I", self.request_flags) + u8_string(_sn_bytes(self.screen_name))

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = ByteReader(data, "LocateUserInfoQuery2")
        flags = r.u32()
        name = _sn(r.u8_string())
        r.expect_end()
        return cls(flags, name)


# ---------------------------------------------------------------- BUDDY (0x03)


@snac(BUDDY, 0x02)
@dataclass(frozen=True, slots=True)
class BuddyRightsQuery(TlvsBody):
    """03/02."""


@snac(BUDDY, 0x03)
@dataclass(frozen=True, slots=True)
class BuddyRightsReply(TlvsBody):
    """03/03 TLV 1 max buddies, 2 max watchers, 3 max online notifications."""


@snac(BUDDY, 0x04)
@dataclass(frozen=True, slots=True)
class BuddyAdd(NamesBody):
    """03/04 add names to the session's client-side buddy list."""


@snac(BUDDY, 0x05)
@dataclass(frozen=True, slots=True)
class BuddyDel(NamesBody):
    """03/05."""


@dataclass(frozen=True, slots=True)
class UsersBody(SnacBody):
    users: tuple[UserInfo, ...] = ()

    def encode(self) -> bytes:
        return b"".join(u.encode() for u in self.users)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = ByteReader(data, cls.__name__)
        users: list[UserInfo] = []
        while not r.at_end():
            users.append(UserInfo.read(r))
        return cls(tuple(users))


@snac(BUDDY, 0x0B)
@dataclass(frozen=True, slots=True)
class BuddyArrived(UsersBody):
    """03/0B a buddy is online (or changed status)."""


@snac(BUDDY, 0x0C)
@dataclass(frozen=True, slots=True)
class BuddyDeparted(UsersBody):
    """03/0C a buddy went offline."""


# ---------------------------------------------------------------- ICBM (0x04)


@dataclass(frozen=True, slots=True)
class IcbmParamsBody(SnacBody):
    channel: int = 0
    icbm_flags: int = 0
    max_message_len: int = 8000
    max_sender_warning: int = 999
    max_receiver_warning: int = 999
    min_interval: int = 0

    def encode(self) -> bytes:
        return struct.pack(
            ">HIHHHI",
            self.channel,
            self.icbm_flags,
            self.max_message_len,
            self.max_sender_warning,
            self.max_receiver_warning,
            self.min_interval,
        )

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = ByteReader(data, cls.__name__)
        values = struct.unpack(">HIHHHI", r.take(16))
        r.expect_end()
        return cls(*values)


@snac(ICBM, 0x02)
@dataclass(frozen=True, slots=True)
class IcbmSetParams(IcbmParamsBody):
    """04/02."""


@snac(ICBM, 0x04)
@dataclass(frozen=True, slots=True)
class IcbmParamsQuery(EmptyBody):
    """04/04."""


@snac(ICBM, 0x05)
@dataclass(frozen=True, slots=True)
class IcbmParamsReply(IcbmParamsBody):
    """04/05."""


def _cookie(r: ByteReader) -> bytes:
    return r.take(8)


def _check_cookie(cookie: bytes) -> None:
    if len(cookie) != 8:
        raise ValueError("an ICBM cookie is 8 bytes")


@snac(ICBM, 0x06)
@dataclass(frozen=True, slots=True)
class IcbmToHost(SnacBody):
    """04/06 a message from the client: cookie, channel, recipient, TLVs."""

    cookie: bytes = bytes(8)
    channel: int = 1
    screen_name: str = ""
    tlvs: Tlvs = ()

    def __post_init__(self) -> None:
        _check_cookie(self.cookie)

    def encode(self) -> bytes:
        return (
            self.cookie
            + struct.pack(">H", self.channel)
            + u8_string(_sn_bytes(self.screen_name))
            + encode_tlvs(self.tlvs)
        )

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = ByteReader(data, "IcbmToHost")
        cookie, channel = _cookie(r), r.u16()
        name = _sn(r.u8_string())
        return cls(cookie, channel, name, r.tlv_chain())


@snac(ICBM, 0x07)
@dataclass(frozen=True, slots=True)
class IcbmToClient(SnacBody):
    """04/07 a message to the client: cookie, channel, sender's user info, TLVs."""

    cookie: bytes = bytes(8)
    channel: int = 1
    sender: UserInfo = field(default_factory=lambda: UserInfo(""))
    tlvs: Tlvs = ()

    def __post_init__(self) -> None:
        _check_cookie(self.cookie)

    def encode(self) -> bytes:
        return (
            self.cookie
            + struct.pack(">H", self.channel)
            + self.sender.encode()
            + encode_tlvs(self.tlvs)
        )

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = ByteReader(data, "IcbmToClient")
        cookie, channel = _cookie(r), r.u16()
        sender = UserInfo.read(r)
        return cls(cookie, channel, sender, r.tlv_chain())


@snac(ICBM, 0x08)
@dataclass(frozen=True, slots=True)
class IcbmEvilRequest(SnacBody):
    """04/08 warn a user (1 = anonymously)."""

    anonymous: int = 0
    screen_name: str = ""

    def encode(self) -> bytes:
        return struct.pack(">H", self.anonymous) + u8_string(_sn_bytes(self.screen_name))

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = ByteReader(data, "IcbmEvilRequest")
        anonymous = r.u16()
        name = _sn(r.u8_string())
        r.expect_end()
        return cls(anonymous, name)


@snac(ICBM, 0x0B)
@dataclass(frozen=True, slots=True)
class IcbmClientErr(SnacBody):
    """04/0B a client's error or auto-response about a message it received."""

    cookie: bytes = bytes(8)
    channel: int = 1
    screen_name: str = ""
    code: int = 0
    data: bytes = b""

    def __post_init__(self) -> None:
        _check_cookie(self.cookie)

    def encode(self) -> bytes:
        return (
            self.cookie
            + struct.pack(">H", self.channel)
            + u8_string(_sn_bytes(self.screen_name))
            + struct.pack(">H", self.code)
            + self.data
        )

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = ByteReader(data, "IcbmClientErr")
        cookie, channel = _cookie(r), r.u16()
        name = _sn(r.u8_string())
        code = r.u16()
        return cls(cookie, channel, name, code, r.rest())


@snac(ICBM, 0x0C)
@dataclass(frozen=True, slots=True)
class IcbmHostAck(SnacBody):
    """04/0C the server accepted a message that asked for an ack (TLV 3)."""

    cookie: bytes = bytes(8)
    channel: int = 1
    screen_name: str = ""

    def __post_init__(self) -> None:
        _check_cookie(self.cookie)

    def encode(self) -> bytes:
        return (
            self.cookie + struct.pack(">H", self.channel) + u8_string(_sn_bytes(self.screen_name))
        )

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = ByteReader(data, "IcbmHostAck")
        cookie, channel = _cookie(r), r.u16()
        name = _sn(r.u8_string())
        r.expect_end()
        return cls(cookie, channel, name)


@snac(ICBM, 0x10)
@dataclass(frozen=True, slots=True)
class IcbmOfflineRetrieve(EmptyBody):
    """04/10 send me my stored (offline) messages."""


@snac(ICBM, 0x14)
@dataclass(frozen=True, slots=True)
class IcbmClientEvent(SnacBody):
    """04/14 mini typing notification: 0 stopped, 1 typed (paused), 2 typing."""

    cookie: bytes = bytes(8)
    channel: int = 1
    screen_name: str = ""
    event: int = 0

    def __post_init__(self) -> None:
        _check_cookie(self.cookie)

    def encode(self) -> bytes:
        return (
            self.cookie
            + struct.pack(">H", self.channel)
            + u8_string(_sn_bytes(self.screen_name))
            + struct.pack(">H", self.event)
        )

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = ByteReader(data, "IcbmClientEvent")
        cookie, channel = _cookie(r), r.u16()
        name = _sn(r.u8_string())
        event = r.u16()
        r.expect_end()
        return cls(cookie, channel, name, event)


@snac(ICBM, 0x17)
@dataclass(frozen=True, slots=True)
class IcbmOfflineRetrieveDone(EmptyBody):
    """04/17 no more stored messages."""


# ---------------------------------------------------------------- PD (0x09)


@snac(PD, 0x02)
@dataclass(frozen=True, slots=True)
class PdRightsQuery(EmptyBody):
    """09/02."""


@snac(PD, 0x03)
@dataclass(frozen=True, slots=True)
class PdRightsReply(TlvsBody):
    """09/03 TLV 1 max permits, 2 max denies."""


@snac(PD, 0x04)
@dataclass(frozen=True, slots=True)
class PdSetGroupPermitMask(U32Body):
    """09/04 which user classes may contact me."""


@snac(PD, 0x05)
@dataclass(frozen=True, slots=True)
class PdAddPermit(NamesBody):
    """09/05."""


@snac(PD, 0x06)
@dataclass(frozen=True, slots=True)
class PdDelPermit(NamesBody):
    """09/06."""


@snac(PD, 0x07)
@dataclass(frozen=True, slots=True)
class PdAddDeny(NamesBody):
    """09/07."""


@snac(PD, 0x08)
@dataclass(frozen=True, slots=True)
class PdDelDeny(NamesBody):
    """09/08."""


# ---------------------------------------------------------------- FEEDBAG (0x13)


@snac(FEEDBAG, 0x02)
@dataclass(frozen=True, slots=True)
class FeedbagRightsQuery(TlvsBody):
    """13/02."""


@snac(FEEDBAG, 0x03)
@dataclass(frozen=True, slots=True)
class FeedbagRightsReply(TlvsBody):
    """13/03 TLV 4: u16 maximum per item class."""


@snac(FEEDBAG, 0x04)
@dataclass(frozen=True, slots=True)
class FeedbagQuery(EmptyBody):
    """13/04."""


@snac(FEEDBAG, 0x05)
@dataclass(frozen=True, slots=True)
class FeedbagQueryIfModified(SnacBody):
    """13/05 the client's cached list time and item count."""

    timestamp: int = 0
    count: int = 0

    def encode(self) -> bytes:
        return struct.pack(">IH", self.timestamp, self.count)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = ByteReader(data, "FeedbagQueryIfModified")
        timestamp, count = r.u32(), r.u16()
        r.expect_end()
        return cls(timestamp, count)


@snac(FEEDBAG, 0x06)
@dataclass(frozen=True, slots=True)
class FeedbagReply(SnacBody):
    """13/06 version, items, last change time."""

    version: int = 0
    items: tuple[FeedbagItem, ...] = ()
    timestamp: int = 0

    def encode(self) -> bytes:
        return (
            struct.pack(">BH", self.version, len(self.items))
            + b"".join(i.encode() for i in self.items)
            + struct.pack(">I", self.timestamp)
        )

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = ByteReader(data, "FeedbagReply")
        version = r.u8()
        items = tuple(FeedbagItem.read(r) for _ in range(r.u16()))
        timestamp = r.u32()
        r.expect_end()
        return cls(version, items, timestamp)


@snac(FEEDBAG, 0x07)
@dataclass(frozen=True, slots=True)
class FeedbagUse(EmptyBody):
    """13/07 activate the list (presence starts)."""


@snac(FEEDBAG, 0x08)
@dataclass(frozen=True, slots=True)
class FeedbagInsertItems(ItemsBody):
    """13/08."""


@snac(FEEDBAG, 0x09)
@dataclass(frozen=True, slots=True)
class FeedbagUpdateItems(ItemsBody):
    """13/09."""


@snac(FEEDBAG, 0x0A)
@dataclass(frozen=True, slots=True)
class FeedbagDeleteItems(ItemsBody):
    """13/0A."""


@snac(FEEDBAG, 0x0E)
@dataclass(frozen=True, slots=True)
class FeedbagStatus(U16ListBody):
    """13/0E one result code per item of the edit (0 = done)."""


@snac(FEEDBAG, 0x0F)
@dataclass(frozen=True, slots=True)
class FeedbagReplyNotModified(SnacBody):
    """13/0F the client's copy is current."""

    timestamp: int = 0
    count: int = 0

    def encode(self) -> bytes:
        return struct.pack(">IH", self.timestamp, self.count)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = ByteReader(data, "FeedbagReplyNotModified")
        timestamp, count = r.u32(), r.u16()
        r.expect_end()
        return cls(timestamp, count)


@snac(FEEDBAG, 0x11)
@dataclass(frozen=True, slots=True)
class FeedbagStartCluster(SnacBody):
    """13/11 begin an edit transaction (optional import flags)."""

    data: bytes = b""

    def encode(self) -> bytes:
        return self.data

    @classmethod
    def decode(cls, data: bytes) -> Self:
        if len(data) > 64:
            raise OscarProtocolError("FeedbagStartCluster longer than 64 bytes")
        return cls(data)


@snac(FEEDBAG, 0x12)
@dataclass(frozen=True, slots=True)
class FeedbagEndCluster(EmptyBody):
    """13/12 end an edit transaction."""


@dataclass(frozen=True, slots=True)
class AuthTextBody(SnacBody):
    """Screen name, u16-length reason, an optional trailing u16 some clients add."""

    screen_name: str = ""
    reason: str = ""
    tail: bytes = b""

    def __post_init__(self) -> None:
        if len(self.tail) not in (0, 2):
            raise ValueError("tail is 0 or 2 bytes")

    def encode(self) -> bytes:
        return (
            u8_string(_sn_bytes(self.screen_name))
            + u16_string(_text_bytes(self.reason))
            + self.tail
        )

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = ByteReader(data, cls.__name__)
        name = _sn(r.u8_string())
        reason = _text(r.u16_string())
        tail = r.rest()
        if len(tail) not in (0, 2):
            raise OscarProtocolError(f"{cls.__name__}: {len(tail)} trailing bytes")
        return cls(name, reason, tail)


@dataclass(frozen=True, slots=True)
class AuthReplyBody(SnacBody):
    """Screen name, u8 granted flag, u16-length reason, optional trailing u16."""

    screen_name: str = ""
    granted: int = 1
    reason: str = ""
    tail: bytes = b""

    def __post_init__(self) -> None:
        if len(self.tail) not in (0, 2):
            raise ValueError("tail is 0 or 2 bytes")

    def encode(self) -> bytes:
        return (
            u8_string(_sn_bytes(self.screen_name))
            + bytes([self.granted])
            + u16_string(_text_bytes(self.reason))
            + self.tail
        )

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = ByteReader(data, cls.__name__)
        name = _sn(r.u8_string())
        granted = r.u8()
        reason = _text(r.u16_string())
        tail = r.rest()
        if len(tail) not in (0, 2):
            raise OscarProtocolError(f"{cls.__name__}: {len(tail)} trailing bytes")
        return cls(name, granted, reason, tail)


@snac(FEEDBAG, 0x14)
@dataclass(frozen=True, slots=True)
class FeedbagPreAuthorize(AuthTextBody):
    """13/14 grant authorization in advance."""


@snac(FEEDBAG, 0x18)
@dataclass(frozen=True, slots=True)
class FeedbagRequestAuthToHost(AuthTextBody):
    """13/18 ask a user for authorization."""


@snac(FEEDBAG, 0x19)
@dataclass(frozen=True, slots=True)
class FeedbagRequestAuthToClient(AuthTextBody):
    """13/19 someone asks you for authorization."""


@snac(FEEDBAG, 0x1A)
@dataclass(frozen=True, slots=True)
class FeedbagRespondAuthToHost(AuthReplyBody):
    """13/1A answer an authorization request."""


@snac(FEEDBAG, 0x1B)
@dataclass(frozen=True, slots=True)
class FeedbagRespondAuthToClient(AuthReplyBody):
    """13/1B the answer to your authorization request."""


@snac(FEEDBAG, 0x1C)
@dataclass(frozen=True, slots=True)
class FeedbagBuddyAdded(SnacBody):
    """13/1C someone added you to their list."""

    screen_name: str = ""

    def encode(self) -> bytes:
        return u8_string(_sn_bytes(self.screen_name))

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = ByteReader(data, "FeedbagBuddyAdded")
        name = _sn(r.u8_string())
        r.expect_end()
        return cls(name)


# ---------------------------------------------------------------- ICQ (0x15)


@snac(ICQ, 0x02)
@dataclass(frozen=True, slots=True)
class IcqDbQuery(SnacBody):
    """15/02 an ICQ meta request."""

    meta: IcqMeta = field(default_factory=lambda: IcqMeta(0, 0, 0))

    def encode(self) -> bytes:
        return self.meta.encode()

    @classmethod
    def decode(cls, data: bytes) -> Self:
        return cls(IcqMeta.read(ByteReader(data, "IcqDbQuery")))


@snac(ICQ, 0x03)
@dataclass(frozen=True, slots=True)
class IcqDbReply(SnacBody):
    """15/03 an ICQ meta reply."""

    meta: IcqMeta = field(default_factory=lambda: IcqMeta(0, 0, 0))

    def encode(self) -> bytes:
        return self.meta.encode()

    @classmethod
    def decode(cls, data: bytes) -> Self:
        return cls(IcqMeta.read(ByteReader(data, "IcqDbReply")))


# ---------------------------------------------------------------- BUCP (0x17)


@snac(BUCP, 0x02)
@dataclass(frozen=True, slots=True)
class BucpLoginRequest(TlvsBody):
    """17/02 TLV 1 screen name, 0x25 MD5 digest, 0x4C "password pre-hashed"."""


@snac(BUCP, 0x03)
@dataclass(frozen=True, slots=True)
class BucpLoginResponse(TlvsBody):
    """17/03 TLV 5 BOS address and 6 cookie, or 8 error code and 4 URL."""


@snac(BUCP, 0x06)
@dataclass(frozen=True, slots=True)
class BucpChallengeRequest(TlvsBody):
    """17/06 TLV 1 screen name."""


@snac(BUCP, 0x07)
@dataclass(frozen=True, slots=True)
class BucpChallengeResponse(SnacBody):
    """17/07 the key (u16 length) the client hashes its password with."""

    key: bytes = b""

    def encode(self) -> bytes:
        return u16_string(self.key)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = ByteReader(data, "BucpChallengeResponse")
        key = r.u16_string()
        r.expect_end()
        return cls(key)


# ---------------------------------------------------------------- the SNAC envelope


@dataclass(frozen=True, slots=True)
class Snac:
    body: SnacBody
    request_id: int = 0
    flags: int = 0
    preamble: Tlvs = ()

    def __post_init__(self) -> None:
        if self.preamble and not self.flags & FLAG_PREAMBLE:
            raise ValueError("a SNAC preamble needs flag 0x8000")

    @property
    def family(self) -> int:
        return self.body.family

    @property
    def subtype(self) -> int:
        return self.body.subtype

    def encode(self) -> bytes:
        header = struct.pack(
            ">HHHI", self.family, self.subtype, self.flags, self.request_id & 0xFFFFFFFF
        )
        if self.flags & FLAG_PREAMBLE:
            header += encode_tlv_lblock(self.preamble)
        return header + self.body.encode()


def decode_body(family: int, subtype: int, data: bytes) -> SnacBody:
    if subtype == 0x0001:
        return SnacError.read(family, data)
    cls = _REGISTRY.get((family, subtype))
    if cls is None:
        return UnknownBody(family, subtype, data)
    return cls.decode(data)


def decode_snac(data: bytes) -> Snac:
    r = ByteReader(data, "SNAC header")
    family, subtype, flags, request_id = r.u16(), r.u16(), r.u16(), r.u32()
    preamble: Tlvs = ()
    if flags & FLAG_PREAMBLE:
        preamble = r.tlv_lblock()
    return Snac(decode_body(family, subtype, r.rest()), request_id, flags, preamble)
