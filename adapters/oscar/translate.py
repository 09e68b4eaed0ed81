"""OSCAR wire content <-> canonical events.

* Text: channel-1 ICBMs carry fragments (0x05 features, 0x0101 text with a charset:
  0 ASCII, 2 UCS-2BE, 3 ISO-8859-1). AIM clients send an HTML subset; we map
  ``<B> <I> <U> <FONT COLOR FACE SIZE|ABSZ> <BR> <A>`` and entities to the canonical
  body plus formatting spans and back. ICQ clients send plain text (channel 1) or
  a little-endian channel-4 block with 0xFE-separated fields in the local codepage.
  Charsets and sizes out: docs/protocols/text.md (nothing becomes ``?``).
* Status: the ICQ status word of TLV 6 and AIM's away message, idle time and
  visibility settings <-> :class:`PresenceState`.
* ICQ authorization: feedbag 13/18, 13/1A, 13/14 and channel-4 types 6/7/8 <->
  :class:`ContactRequest` / :class:`Authorization`.

Pure: stdlib, schema and the OSCAR codec modules only.
"""

from __future__ import annotations

import itertools
import struct
from dataclasses import dataclass
from html import escape
from html.parser import HTMLParser

from adapters.oscar.errors import OscarProtocolError
from adapters.oscar.tlv import ByteReader, Tlv, find
from schema.events import FormatSpan, PresenceState, Style
from schema.text import encode_visible

# ---------------------------------------------------------------- charsets

CHARSET_ASCII = 0x0000
CHARSET_UCS2BE = 0x0002
CHARSET_LATIN1 = 0x0003


def decode_charset(charset: int, raw: bytes) -> str:
    if charset == CHARSET_UCS2BE:
        # UTF-16BE, so the surrogate pairs of libpurple & co. read back as one
        # character; a dangling odd byte or lone surrogate shows as U+FFFD.
        return raw.decode("utf-16-be", "replace")
    if charset == CHARSET_LATIN1:
        return raw.decode("latin-1")
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError:
        pass
    try:
        # Clients that claim ASCII but send UTF-8 (libpurple under some locales).
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def encode_charset(text: str) -> tuple[int, bytes]:
    """The narrowest charset that carries ``text``: ASCII, else ISO-8859-1, else
    UCS-2BE, where a character beyond the BMP travels as a UTF-16 surrogate pair
    (docs/adr/0006-text-fidelity.md). Nothing is ever replaced on this path."""
    try:
        return CHARSET_ASCII, text.encode("ascii")
    except UnicodeEncodeError:
        pass
    try:
        return CHARSET_LATIN1, text.encode("latin-1")
    except UnicodeEncodeError:
        return CHARSET_UCS2BE, text.encode("utf-16-be", "surrogatepass")


def decode_icq_text(raw: bytes) -> str:
    """Channel-4 and offline text: the sender's Windows codepage, NUL-terminated
    (what follows the terminator is not text). The five bytes cp1252 leaves
    undefined read as U+FFFD, visibly."""
    raw = raw.split(b"\0", 1)[0]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", "replace")


ICQ_CODEPAGE = "cp1252"


def encode_icq_text(text: str) -> bytes:
    """Channel-4 and offline (family 15) text in cp1252, NUL-terminated; what cp1252
    lacks is replaced visibly (``[grinning face]``, schema/text.py), never ``?``."""
    return encode_visible(text, ICQ_CODEPAGE) + b"\0"


# ---------------------------------------------------------------- channel-1 fragments

FRAGMENT_FEATURES = 0x05
FRAGMENT_TEXT = 0x01
DEFAULT_FEATURES = b"\x01"


@dataclass(frozen=True, slots=True)
class TextPart:
    charset: int
    subset: int
    raw: bytes


def parse_fragments(data: bytes) -> tuple[bytes, tuple[TextPart, ...]]:
    """(features, text parts) of a channel-1 TLV 2."""
    r = ByteReader(data, "ICBM message data")
    features = b""
    parts: list[TextPart] = []
    while not r.at_end():
        ident, _version = r.u8(), r.u8()
        body = ByteReader(r.u16_string(), "ICBM fragment")
        if ident == FRAGMENT_FEATURES:
            features = body.rest()
        elif ident == FRAGMENT_TEXT:
            charset, subset = body.u16(), body.u16()
            parts.append(TextPart(charset, subset, body.rest()))
    if not parts:
        raise OscarProtocolError("channel-1 message without a text fragment")
    return features, tuple(parts)


def build_fragments(text: str, features: bytes = DEFAULT_FEATURES) -> bytes:
    charset, raw = encode_charset(text)
    feature = struct.pack(">BBH", FRAGMENT_FEATURES, 1, len(features)) + features
    body = struct.pack(">HH", charset, 0) + raw
    return feature + struct.pack(">BBH", FRAGMENT_TEXT, 1, len(body)) + body


def fragments_text(data: bytes) -> str:
    _features, parts = parse_fragments(data)
    return "".join(decode_charset(p.charset, p.raw) for p in parts)


# ---------------------------------------------------------------- channel 4 (ICQ)

ICQ_MSG_PLAIN = 0x01
ICQ_MSG_URL = 0x04
ICQ_MSG_AUTH_REQUEST = 0x06
ICQ_MSG_AUTH_DENIED = 0x07
ICQ_MSG_AUTH_GRANTED = 0x08
ICQ_MSG_ADDED = 0x0C


@dataclass(frozen=True, slots=True)
class IcqChannel4:
    uin: int
    msg_type: int
    msg_flags: int
    raw: bytes

    def encode(self) -> bytes:
        return struct.pack("<IBBH", self.uin, self.msg_type, self.msg_flags, len(self.raw)) + (
            self.raw
        )

    @classmethod
    def decode(cls, data: bytes) -> IcqChannel4:
        r = ByteReader(data, "ICQ channel-4 data")
        uin, msg_type, msg_flags = r.u32le(), r.u8(), r.u8()
        raw = r.take(r.u16le())
        r.expect_end()
        return cls(uin, msg_type, msg_flags, raw)

    @property
    def fields(self) -> list[str]:
        return decode_icq_text(self.raw).split("\xfe")


# ---------------------------------------------------------------- HTML subset

_HTML_POINTS = {1: 8, 2: 10, 3: 12, 4: 14, 5: 18, 6: 24, 7: 36}
_NAMED_COLOURS = {
    "black": "#000000",
    "white": "#ffffff",
    "red": "#ff0000",
    "green": "#008000",
    "lime": "#00ff00",
    "blue": "#0000ff",
    "yellow": "#ffff00",
    "navy": "#000080",
    "maroon": "#800000",
    "purple": "#800080",
    "gray": "#808080",
    "grey": "#808080",
    "silver": "#c0c0c0",
    "teal": "#008080",
    "olive": "#808000",
    "aqua": "#00ffff",
    "fuchsia": "#ff00ff",
    "orange": "#ffa500",
}
_SIMPLE = {"b": Style.BOLD, "strong": Style.BOLD, "i": Style.ITALIC, "em": Style.ITALIC}
_SIMPLE.update({"u": Style.UNDERLINE})
_MAX_SPANS = 512


def _colour(value: str) -> str | None:
    v = value.strip().lower()
    if v in _NAMED_COLOURS:
        return _NAMED_COLOURS[v]
    if v.startswith("#"):
        v = v[1:]
    if len(v) == 3:
        v = "".join(c * 2 for c in v)
    if len(v) == 6 and all(c in "0123456789abcdef" for c in v):
        return "#" + v
    return None


def _points(size: str | None, absz: str | None) -> str | None:
    if absz and absz.strip().isdigit() and 1 <= int(absz) <= 999:
        return str(int(absz))
    if size and size.strip().isdigit() and int(size) in _HTML_POINTS:
        return str(_HTML_POINTS[int(size)])
    return None


class _SubsetParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.length = 0
        self.spans: list[FormatSpan] = []
        self._open: list[tuple[str, list[tuple[Style, str | None, int]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self._append("\n")
            return
        styles: list[tuple[Style, str | None]] = []
        if tag in _SIMPLE:
            styles.append((_SIMPLE[tag], None))
        elif tag == "font":
            a = {k: v for k, v in attrs if v is not None}
            colour = _colour(a["color"]) if "color" in a else None
            if colour:
                styles.append((Style.COLOR, colour))
            face = a.get("face", "").strip()[:64]
            if face:
                styles.append((Style.FONT, face))
            size = _points(a.get("size"), a.get("absz"))
            if size:
                styles.append((Style.SIZE, size))
        elif tag not in ("a", "span", "p", "div"):
            return
        if tag in ("p", "div") and self.length:
            self._append("\n")
        self._open.append((tag, [(s, v, self.length) for s, v in styles]))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self._append("\n")

    def handle_endtag(self, tag: str) -> None:
        if not any(t == tag for t, _ in self._open):
            return
        while self._open:
            open_tag, styles = self._open.pop()
            self._close(styles)
            if open_tag == tag:
                return

    def handle_data(self, data: str) -> None:
        self._append(data)

    def _append(self, data: str) -> None:
        self.text.append(data)
        self.length += len(data)

    def _close(self, styles: list[tuple[Style, str | None, int]]) -> None:
        for style, value, start in styles:
            if self.length > start and len(self.spans) < _MAX_SPANS:
                self.spans.append(
                    FormatSpan(start=start, end=self.length, style=style, value=value)
                )

    def finish(self) -> tuple[str, tuple[FormatSpan, ...]]:
        self.close()
        while self._open:
            self._close(self._open.pop()[1])
        return "".join(self.text), normalise_spans(self.spans)


def looks_like_html(text: str) -> bool:
    head = text.lstrip()[:6].lower()
    return head.startswith("<html") or head.startswith("<body")


def html_to_text(html: str) -> tuple[str, tuple[FormatSpan, ...]]:
    """Body and spans of an AIM HTML message (unknown tags dropped, text kept)."""
    parser = _SubsetParser()
    parser.feed(html)
    return parser.finish()


def normalise_spans(spans: list[FormatSpan] | tuple[FormatSpan, ...]) -> tuple[FormatSpan, ...]:
    """Merge touching or overlapping spans of the same style and value; drop empty
    ones; sort. Two spellings of the same formatting normalise alike."""
    by_key: dict[tuple[Style, str | None], list[tuple[int, int]]] = {}
    for s in spans:
        if s.end > s.start:
            by_key.setdefault((s.style, s.value), []).append((s.start, s.end))
    out: list[FormatSpan] = []
    for (style, value), ranges in by_key.items():
        ranges.sort()
        cur_start, cur_end = ranges[0]
        for start, end in ranges[1:]:
            if start <= cur_end:
                cur_end = max(cur_end, end)
            else:
                out.append(FormatSpan(start=cur_start, end=cur_end, style=style, value=value))
                cur_start, cur_end = start, end
        out.append(FormatSpan(start=cur_start, end=cur_end, style=style, value=value))
    out.sort(key=lambda s: (s.start, s.end, s.style.value, s.value or ""))
    return tuple(out)


def _escape_segment(text: str) -> str:
    return escape(text, quote=False).replace("\r\n", "\n").replace("\n", "<BR>")


def text_to_html(body: str, spans: tuple[FormatSpan, ...] = ()) -> str:
    """AIM HTML for a body and its spans. Tags are closed and reopened at every span
    boundary, so nesting is always valid; where two spans of one valued style
    overlap, the later one wins."""
    points = sorted({0, len(body), *(s.start for s in spans), *(s.end for s in spans)})
    out = ["<HTML><BODY>"]
    for a, b in itertools.pairwise(points):
        if a >= b:
            continue
        active = [s for s in spans if s.start <= a and s.end >= b]
        font: dict[str, str] = {}
        simple: list[str] = []
        for s in active:
            if s.style is Style.COLOR and s.value:
                font["COLOR"] = s.value
            elif s.style is Style.FONT and s.value:
                font["FACE"] = s.value
            elif s.style is Style.SIZE and s.value:
                font["ABSZ"] = s.value
                font["SIZE"] = str(_nearest_html_size(int(s.value)))
            elif s.style is Style.BOLD and "B" not in simple:
                simple.append("B")
            elif s.style is Style.ITALIC and "I" not in simple:
                simple.append("I")
            elif s.style is Style.UNDERLINE and "U" not in simple:
                simple.append("U")
        opening = ""
        closing = ""
        if font:
            attrs = " ".join(f'{k}="{escape(v, quote=True)}"' for k, v in sorted(font.items()))
            opening += f"<FONT {attrs}>"
            closing = "</FONT>" + closing
        for tag in simple:
            opening += f"<{tag}>"
            closing = f"</{tag}>" + closing
        out.append(opening + _escape_segment(body[a:b]) + closing)
    out.append("</BODY></HTML>")
    return "".join(out)


def _nearest_html_size(points: int) -> int:
    return min(_HTML_POINTS, key=lambda k: (abs(_HTML_POINTS[k] - points), k))


def icbm_text_size(body: str, spans: tuple[FormatSpan, ...], to_icq: bool) -> int:
    """Bytes of the channel-1 text a client gets for ``body`` (session.py
    ``_send_message``): plain text for ICQ clients, AIM HTML (escaped, with the
    spans' tags) otherwise, in the charset :func:`encode_charset` picks. With spans
    the UCS-2 size counts, because the session drops the tags of a message whose
    UCS-2 HTML would not fit; measured so, a part that fits keeps its formatting."""
    if to_icq:
        return len(encode_charset(body)[1])
    html = text_to_html(body, spans)
    if spans:
        return len(html.encode("utf-16-be", "surrogatepass"))
    return len(encode_charset(html)[1])


def plain_from_wire(text: str, sender_is_icq: bool) -> tuple[str, tuple[FormatSpan, ...]]:
    """Canonical body and spans of a channel-1 text: HTML from AIM senders or
    whenever it opens with <HTML>, plain text otherwise."""
    if looks_like_html(text) or not sender_is_icq:
        return html_to_text(text)
    return text, ()


# ---------------------------------------------------------------- status

ICQ_STATUS_ONLINE = 0x0000
ICQ_STATUS_AWAY = 0x0001
ICQ_STATUS_DND = 0x0002
ICQ_STATUS_NA = 0x0004
ICQ_STATUS_OCCUPIED = 0x0010
ICQ_STATUS_FFC = 0x0020
ICQ_STATUS_INVISIBLE = 0x0100

CLASS_UNCONFIRMED = 0x0001
CLASS_AIM = 0x0010
CLASS_AWAY = 0x0020
CLASS_ICQ = 0x0040

PD_MODE_DENY_ALL = 0x02


def presence_from_icq_status(status: int) -> PresenceState:
    word = status & 0xFFFF
    if word & ICQ_STATUS_INVISIBLE:
        return PresenceState.INVISIBLE
    if word & (ICQ_STATUS_DND | ICQ_STATUS_OCCUPIED):
        return PresenceState.BUSY
    if word & ICQ_STATUS_NA:
        return PresenceState.IDLE
    if word & ICQ_STATUS_AWAY:
        return PresenceState.AWAY
    return PresenceState.ONLINE


def icq_status_for(state: PresenceState) -> int:
    return {
        PresenceState.ONLINE: ICQ_STATUS_ONLINE,
        PresenceState.AWAY: ICQ_STATUS_AWAY,
        PresenceState.BUSY: ICQ_STATUS_OCCUPIED | ICQ_STATUS_AWAY,
        PresenceState.IDLE: ICQ_STATUS_NA | ICQ_STATUS_AWAY,
        PresenceState.INVISIBLE: ICQ_STATUS_INVISIBLE,
        PresenceState.OFFLINE: ICQ_STATUS_ONLINE,
    }[state]


@dataclass(frozen=True, slots=True)
class SelfStatus:
    """What a client has said about itself, in OSCAR's terms."""

    icq_status: int = ICQ_STATUS_ONLINE
    away_message: str = ""  # plain text; non-empty means away (AIM)
    idle_seconds: int = 0
    deny_all: bool = False  # feedbag/PD visibility "block everyone"


def presence_from_self(status: SelfStatus) -> tuple[PresenceState, str]:
    state = presence_from_icq_status(status.icq_status)
    if status.deny_all:
        state = PresenceState.INVISIBLE
    if state is PresenceState.ONLINE and status.away_message:
        state = PresenceState.AWAY
    if state is PresenceState.ONLINE and status.idle_seconds > 0:
        state = PresenceState.IDLE
    text = status.away_message if state in (PresenceState.AWAY, PresenceState.BUSY) else ""
    return state, text[:512]


def is_icq_id(native: str) -> bool:
    return native.isdigit()


def user_info_tlvs(
    native: str, state: PresenceState, signon: int, idle_minutes: int = 0
) -> tuple[Tlv, ...]:
    """TLVs of a user-info block for a user seen in ``state``."""
    user_class = (CLASS_ICQ | CLASS_AIM) if is_icq_id(native) else CLASS_AIM
    if state in (PresenceState.AWAY, PresenceState.BUSY):
        user_class |= CLASS_AWAY
    tlvs = [Tlv.u16(0x0001, user_class), Tlv.u32(0x0003, signon & 0xFFFFFFFF)]
    tlvs.append(Tlv.u32(0x0006, icq_status_for(state)))
    if state is PresenceState.IDLE or idle_minutes:
        tlvs.append(Tlv.u16(0x0004, min(max(idle_minutes, 1), 0xFFFF)))
    return tuple(tlvs)


def parse_self_tlvs(tlvs: tuple[Tlv, ...]) -> int | None:
    """The ICQ status word of a 01/1E (TLV 6: flags:u16 status:u16), if present."""
    value = find(tlvs, 0x0006)
    if value is None:
        return None
    if len(value) != 4:
        raise OscarProtocolError(f"status TLV 6 of {len(value)} bytes, not 4")
    flags_status: int = struct.unpack(">I", value)[0]
    return flags_status & 0xFFFF


# ---------------------------------------------------------------- typing

TYPING_STOPPED = 0x0000
TYPING_PAUSED = 0x0001
TYPING_ACTIVE = 0x0002


def typing_active(event: int) -> bool:
    return event == TYPING_ACTIVE


def typing_event(active: bool) -> int:
    return TYPING_ACTIVE if active else TYPING_STOPPED


# ---------------------------------------------------------------- ICQ authorization text


def auth_request_fields(nick: str, reason: str) -> bytes:
    """Channel-4 type 6 text: nick, first, last, email, auth flag, reason."""
    return encode_icq_text("\xfe".join([nick, "", "", "", "1", reason]))


def auth_request_reason(fields: list[str]) -> str:
    return fields[-1] if fields else ""
