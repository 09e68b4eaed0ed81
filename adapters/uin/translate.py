"""UIN wire commands <-> canonical events (docs/protocols/uin.md, section 7).

Text on the wire is CP949 (the EUC-KR superset that Korean Windows calls code page
949) unless the session negotiated UTF-8. Python's ``cp949`` codec is the reference
mapping. Characters CP949 cannot hold are replaced *visibly* on the way to a CP949
client (😀 -> ``[grinning face]``, schema/text.py; never ``?``): the canonical body is
the truth, the legacy client sees what it can show. Bytes that are not valid in the
session charset decode to U+FFFD (visible) rather than killing a session over one
bad message.

A message body longer than one datagram travels as fragments (same msg_id, index
0..count-1), split on character boundaries; :class:`Reassembler` puts them back
together. The reliable channel already guarantees order, so a fragment out of
sequence is the peer's protocol error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from adapters.uin.codec import (
    HEADER_SIZE,
    MAC_SIZE,
    MAX_DATAGRAM,
    MAX_REQUEST_TEXT,
    MESSAGE_OFFLINE,
    Charset,
    ErrorCode,
    MessageFragment,
    Status,
    UinProtocolError,
)
from schema.events import FailureReason, PresenceState
from schema.text import VISIBLE, encode_visible, fold_for

# MESSAGE payload before the text: uin, msg_id, time (4 each), flags, charset,
# index, count (1 each), text length (2).
MESSAGE_OVERHEAD = 4 + 4 + 4 + 1 + 1 + 1 + 1 + 2
MAX_FRAGMENT_BYTES = MAX_DATAGRAM - HEADER_SIZE - MAC_SIZE - MESSAGE_OVERHEAD  # 1138
MAX_FRAGMENTS = 32
MAX_MESSAGE_BYTES = MAX_FRAGMENT_BYTES * MAX_FRAGMENTS  # 36416
# The longest body any client will get or may send: 4 UTF-8 bytes per character at
# worst, with room for splits that stop short of a full fragment.
MAX_BODY_CHARS = 8000
MAX_STATUS_BYTES = 255
MAX_NICK_BYTES = 255
MAX_REQUEST_BYTES = MAX_REQUEST_TEXT

_CODECS = {Charset.CP949: "cp949", Charset.UTF8: "utf-8"}


def encode_text(text: str, charset: Charset) -> bytes:
    """``text`` in the session charset, unencodable characters replaced visibly."""
    return encode_visible(text, _CODECS[charset])


def decode_text(data: bytes, charset: Charset) -> str:
    return data.decode(_CODECS[charset], errors="replace")


def _encoded_units(text: str, charset: Charset) -> list[bytes]:
    """``text`` encoded one code point at a time; their concatenation is
    :func:`encode_text` (every codec here is stateless, schema/text.py)."""
    codec = _CODECS[charset]
    return [ch.encode(codec, VISIBLE) for ch in fold_for(text, codec)]


def encode_limited(text: str, charset: Charset, limit: int) -> bytes:
    """``text`` encoded, cut on a character boundary to at most ``limit`` bytes (for
    fields with a byte limit of their own: nick, status, request texts)."""
    out = bytearray()
    for piece in _encoded_units(text, charset):
        if len(out) + len(piece) > limit:
            break
        out += piece
    return bytes(out)


def split_text(text: str, charset: Charset, max_bytes: int = MAX_FRAGMENT_BYTES) -> list[bytes]:
    """The encoded body cut into pieces of at most ``max_bytes``, never inside a
    character (each piece decodes on its own). An empty body is one empty piece."""
    return _cut_encoded(encode_text(text, charset), _CODECS[charset], max_bytes)


def _cut_encoded(data: bytes, codec: str, max_bytes: int) -> list[bytes]:
    # A cut is on a character boundary exactly when the bytes since the previous cut
    # decode strictly (the encoder's own output is valid; a cut inside a multibyte
    # character leaves an incomplete sequence). At most 3 steps back for UTF-8;
    # ``max_bytes`` of 4 or more always holds a whole character.
    pieces: list[bytes] = []
    start = 0
    while len(data) - start > max_bytes:
        cut = start + max_bytes
        while cut > start + 1 and not _decodes(data[start:cut], codec):
            cut -= 1
        pieces.append(data[start:cut])
        start = cut
    pieces.append(data[start:])
    return pieces


def _decodes(data: bytes, codec: str) -> bool:
    try:
        data.decode(codec)
    except UnicodeDecodeError:
        return False
    return True


def message_size(text: str, charset: Charset) -> int:
    """The room ``text`` takes in fragment space: every fragment but the last counts
    as full (:data:`MAX_FRAGMENT_BYTES`), so the size is at most
    :data:`MAX_MESSAGE_BYTES` exactly when :func:`fragments` can send it (at most
    :data:`MAX_FRAGMENTS` fragments). The UIN link's ``MeasuresBody.body_size``."""
    encoded = encode_text(text, charset)
    if len(encoded) <= MAX_FRAGMENT_BYTES:
        return len(encoded)
    pieces = _cut_encoded(encoded, _CODECS[charset], MAX_FRAGMENT_BYTES)
    return (len(pieces) - 1) * MAX_FRAGMENT_BYTES + len(pieces[-1])


def fragments(
    uin: int,
    msg_id: int,
    text: str,
    charset: Charset,
    *,
    time: int = 0,
    offline: bool = False,
    max_bytes: int = MAX_FRAGMENT_BYTES,
) -> list[MessageFragment]:
    """MESSAGE commands carrying ``text``; ValueError when it needs too many."""
    pieces = split_text(text, charset, max_bytes)
    if len(pieces) > MAX_FRAGMENTS:
        raise ValueError("message too long")
    flags = MESSAGE_OFFLINE if offline else 0
    n = len(pieces)
    return [
        MessageFragment(uin, msg_id, time, flags, charset, i, n, piece)
        for i, piece in enumerate(pieces)
    ]


@dataclass(frozen=True, slots=True)
class WholeMessage:
    uin: int
    msg_id: int
    time: int
    offline: bool
    text: str


@dataclass(slots=True)
class Reassembler:
    """Collects the fragments of one message at a time (the channel is in order)."""

    _parts: list[MessageFragment] = field(default_factory=list)

    def feed(self, fragment: MessageFragment) -> WholeMessage | None:
        if fragment.count > MAX_FRAGMENTS:
            raise UinProtocolError("message in too many fragments")
        if self._parts:
            first = self._parts[0]
            same = (first.uin, first.msg_id, first.count, first.charset) == (
                fragment.uin,
                fragment.msg_id,
                fragment.count,
                fragment.charset,
            )
            if not same or fragment.index != len(self._parts):
                raise UinProtocolError("fragment out of sequence")
        elif fragment.index != 0:
            raise UinProtocolError("message does not start with fragment 0")
        self._parts.append(fragment)
        if len(self._parts) < fragment.count:
            return None
        parts, self._parts = self._parts, []
        data = b"".join(p.text for p in parts)
        first = parts[0]
        return WholeMessage(
            first.uin,
            first.msg_id,
            first.time,
            bool(first.flags & MESSAGE_OFFLINE),
            decode_text(data, first.charset),
        )

    @property
    def pending(self) -> bool:
        return bool(self._parts)


# ---- presence -----------------------------------------------------------------------

_TO_CANONICAL = {
    Status.OFFLINE: PresenceState.OFFLINE,
    Status.ONLINE: PresenceState.ONLINE,
    Status.AWAY: PresenceState.AWAY,
    Status.BUSY: PresenceState.BUSY,
    Status.INVISIBLE: PresenceState.INVISIBLE,
    Status.IDLE: PresenceState.IDLE,
}
_FROM_CANONICAL = {v: k for k, v in _TO_CANONICAL.items()}


def presence_to_canonical(status: Status) -> PresenceState:
    return _TO_CANONICAL[status]


def presence_from_canonical(state: PresenceState) -> Status:
    return _FROM_CANONICAL[state]


_FAILURES = {
    FailureReason.UNKNOWN_RECIPIENT: ErrorCode.UNKNOWN_RECIPIENT,
    FailureReason.BLOCKED: ErrorCode.BLOCKED,
    FailureReason.HOPS_EXHAUSTED: ErrorCode.LOOP_DETECTED,
    FailureReason.DISABLED: ErrorCode.RECIPIENT_DISABLED,
    FailureReason.UNSUPPORTED: ErrorCode.UNSUPPORTED,
    FailureReason.TOO_LARGE: ErrorCode.TOO_LARGE,
    FailureReason.QUEUE_FULL: ErrorCode.QUEUE_FULL,
    FailureReason.INTERNAL: ErrorCode.INTERNAL,
    FailureReason.SELF_ADDRESSED: ErrorCode.SELF_ADDRESSED,
    FailureReason.UNAVAILABLE: ErrorCode.SERVER_BUSY,
}


def failure_code(reason: FailureReason) -> ErrorCode:
    return _FAILURES.get(reason, ErrorCode.INTERNAL)


def wire_time(when: datetime) -> int:
    """Seconds since the Unix epoch, clamped to u32."""
    return max(0, min(int(when.timestamp()), 0xFFFFFFFF))


def from_wire_time(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def native_uin(native: str) -> int | None:
    """A UIN network id as a number, or None if it is not one."""
    if not native.isdigit():
        return None
    value = int(native)
    return value if 1 <= value <= 0xFFFFFFFF else None
