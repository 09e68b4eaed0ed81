"""MSN wire content <-> canonical events.

Switchboard ``MSG`` payloads are MIME-headed: ``text/plain; charset=UTF-8`` with an
optional ``X-MMS-IM-Format: FN=<font>; EF=<BIUS>; CO=<bbggrr>; CS=..; PF=..`` header
is a message, ``text/x-msmsgscontrol`` with ``TypingUser:`` is a typing notice, and
everything else (invitations, P2P, emoticons, nudges) has no canonical counterpart.

MSN formats a whole message at once, so canonical spans map to it only when they
cover the whole body; partial spans are dropped on the way to MSN. Colours on the
wire are blue-green-red and may lose leading zeros.

Contacts from other networks appear under their MSN alias with a display name that
names their network ("Ivan [ICQ/AIM]"): one rule, :func:`contact_name`, for every line.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, unquote

from adapters.msn.codec import SB_MAX_PAYLOAD, MsnProtocolError
from schema.addresses import split_address
from schema.events import FormatSpan, Message, PresenceState, Style, Typing
from schema.text import VISIBLE, cut_points, encode_visible

MAX_HEADERS = 32
MAX_NAME_ENCODED = 387  # longest friendly name the service accepted (hypothetic.org)

TEXT_TYPE = "text/plain; charset=UTF-8"
TYPING_TYPE = "text/x-msmsgscontrol"
PROFILE_TYPE = "text/x-msmsgsprofile; charset=UTF-8"

NETWORK_LABELS = {"oscar": "ICQ/AIM", "uin": "UIN", "msn": "MSN"}  # as the core labels them


@dataclass(frozen=True, slots=True)
class MimeMessage:
    """A parsed MSG payload: headers (lower-case names, in order) and body bytes."""

    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        for key, value in self.headers:
            if key == wanted:
                return value
        return None

    @property
    def content_type(self) -> str:
        return (self.header("content-type") or "text/plain").split(";")[0].strip().lower()


def parse_mime(payload: bytes) -> MimeMessage:
    """Split a MSG payload into headers and body; raises MsnProtocolError."""
    head, sep, body = payload.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = payload.partition(b"\n\n")
        if not sep:
            raise MsnProtocolError("MSG payload without a header block")
    headers: list[tuple[str, str]] = []
    for raw in head.replace(b"\r\n", b"\n").split(b"\n"):
        if not raw.strip():
            continue
        name, colon, value = raw.partition(b":")
        if not colon:
            raise MsnProtocolError("malformed MSG header")
        headers.append(
            (
                name.decode("ascii", "replace").strip().lower(),
                value.decode("utf-8", "replace").strip(),
            )
        )
        if len(headers) > MAX_HEADERS:
            raise MsnProtocolError("too many MSG headers")
    return MimeMessage(tuple(headers), body)


def build_mime(headers: list[tuple[str, str]], body: bytes) -> bytes:
    lines = "".join(f"{name}: {value}\r\n" for name, value in headers)
    return ("MIME-Version: 1.0\r\n" + lines + "\r\n").encode("utf-8") + body


# ---- formatting


@dataclass(frozen=True, slots=True)
class ImFormat:
    """The parts of X-MMS-IM-Format we translate."""

    font: str | None = None
    bold: bool = False
    italic: bool = False
    underline: bool = False
    colour: str | None = None  # "#rrggbb"


def parse_im_format(value: str) -> ImFormat:
    fields: dict[str, str] = {}
    for item in value.split(";"):
        name, sep, val = item.strip().partition("=")
        if sep:
            fields[name.strip().upper()] = val.strip()
    font = unquote(fields.get("FN", "")).strip() or None
    if font is not None and (len(font) > 64 or any(not c.isprintable() for c in font)):
        font = None
    effects = fields.get("EF", "").upper()
    return ImFormat(
        font=font,
        bold="B" in effects,
        italic="I" in effects,
        underline="U" in effects,
        colour=_bgr_to_rgb(fields.get("CO", "")),
    )


def format_im_format(fmt: ImFormat) -> str:
    effects = (
        ("B" if fmt.bold else "") + ("I" if fmt.italic else "") + ("U" if fmt.underline else "")
    )
    font = quote(fmt.font or "Arial", safe="")
    colour = _rgb_to_bgr(fmt.colour) if fmt.colour else "0"
    return f"FN={font}; EF={effects}; CO={colour}; CS=0; PF=22"


def _bgr_to_rgb(value: str) -> str | None:
    value = value.strip().lower()
    if not value or len(value) > 6 or any(c not in "0123456789abcdef" for c in value):
        return None
    bgr = value.rjust(6, "0")
    rgb = f"#{bgr[4:6]}{bgr[2:4]}{bgr[0:2]}"
    return None if rgb == "#000000" else rgb


def _rgb_to_bgr(value: str) -> str:
    rgb = value[1:]
    return f"{rgb[4:6]}{rgb[2:4]}{rgb[0:2]}".lstrip("0") or "0"


def spans_from_format(fmt: ImFormat, body: str) -> tuple[FormatSpan, ...]:
    if not body:
        return ()
    end = len(body)
    spans: list[FormatSpan] = []
    for on, style in (
        (fmt.bold, Style.BOLD),
        (fmt.italic, Style.ITALIC),
        (fmt.underline, Style.UNDERLINE),
    ):
        if on:
            spans.append(FormatSpan(start=0, end=end, style=style))
    if fmt.colour:
        spans.append(FormatSpan(start=0, end=end, style=Style.COLOR, value=fmt.colour))
    if fmt.font:
        spans.append(FormatSpan(start=0, end=end, style=Style.FONT, value=fmt.font))
    return tuple(spans)


def format_from_spans(spans: tuple[FormatSpan, ...], body: str) -> ImFormat:
    whole = [s for s in spans if s.start == 0 and s.end >= len(body)]
    styles = {s.style for s in whole}
    colour = next((s.value for s in whole if s.style is Style.COLOR), None)
    font = next((s.value for s in whole if s.style is Style.FONT), None)
    return ImFormat(
        font=font,
        bold=Style.BOLD in styles,
        italic=Style.ITALIC in styles,
        underline=Style.UNDERLINE in styles,
        colour=colour,
    )


# ---- switchboard payloads <-> canonical


@dataclass(frozen=True, slots=True)
class TextContent:
    body: str
    spans: tuple[FormatSpan, ...]


@dataclass(frozen=True, slots=True)
class TypingContent:
    handle: str


Content = TextContent | TypingContent | None


def content_from_payload(payload: bytes) -> Content:
    """What a client's MSG payload means; None for content without a canonical form."""
    mime = parse_mime(payload)
    kind = mime.content_type
    if kind == TYPING_TYPE:
        return TypingContent(handle=mime.header("typinguser") or "")
    if kind != "text/plain":
        return None
    body = mime.body.decode("utf-8", "replace").replace("\r\n", "\n")
    fmt_header = mime.header("x-mms-im-format")
    fmt = parse_im_format(fmt_header) if fmt_header else ImFormat()
    return TextContent(body=body, spans=spans_from_format(fmt, body))


def _text_headers(body: str, spans: tuple[FormatSpan, ...]) -> list[tuple[str, str]]:
    fmt = format_from_spans(spans, body)
    return [("Content-Type", TEXT_TYPE), ("X-MMS-IM-Format", format_im_format(fmt))]


def _wire_body(body: str) -> bytes:
    # UTF-8 carries every character; the visible handler only ever names a lone
    # surrogate (which UTF-8 cannot hold) instead of failing the whole message.
    return encode_visible(body.replace("\n", "\r\n"), "utf-8")


def text_payload_size(body: str, spans: tuple[FormatSpan, ...] = ()) -> int:
    """Bytes of the one MSG payload (MIME headers included) that carries ``body``
    with ``spans``: what the switchboard limit (1664) applies to."""
    return len(build_mime(_text_headers(body, spans), _wire_body(body)))


def text_payloads(message: Message, limit: int = SB_MAX_PAYLOAD) -> list[bytes]:
    """MSG payloads for a canonical message. The core already splits a message so
    each part fits (MsnLink is MeasuresBody); a body that still does not fit is cut
    here too, in order, never inside a character cluster (schema.text)."""
    headers = _text_headers(message.body, message.spans)
    room = limit - len(build_mime(headers, b""))
    body = message.body.replace("\n", "\r\n")
    allowed = cut_points(body)
    chunks: list[bytes] = []
    current = bytearray()
    start = 0
    for end in range(1, len(body) + 1):
        if not allowed[end]:
            continue
        cluster, start = body[start:end], end
        encoded = encode_visible(cluster, "utf-8")
        # A cluster larger than a whole payload is cut between its code points.
        pieces = (
            [encoded] if len(encoded) <= room else [c.encode("utf-8", VISIBLE) for c in cluster]
        )
        for piece in pieces:
            if current and len(current) + len(piece) > room:
                chunks.append(bytes(current))
                current = bytearray()
            current += piece
    if current or not chunks:
        chunks.append(bytes(current))
    return [build_mime(headers, chunk) for chunk in chunks]


def typing_payload(handle: str) -> bytes:
    return build_mime([("Content-Type", TYPING_TYPE), ("TypingUser", handle)], b"\r\n")


def message_event(sender: str, recipient: str, content: TextContent) -> Message:
    return Message(sender=sender, recipient=recipient, body=content.body, spans=content.spans)


def typing_event(sender: str, recipient: str) -> Typing:
    return Typing(sender=sender, recipient=recipient, active=True)


# ---- presence

_FROM_MSN = {
    "NLN": PresenceState.ONLINE,
    "BSY": PresenceState.BUSY,
    "PHN": PresenceState.BUSY,
    "IDL": PresenceState.IDLE,
    "BRB": PresenceState.AWAY,
    "AWY": PresenceState.AWAY,
    "LUN": PresenceState.AWAY,
    "HDN": PresenceState.INVISIBLE,
}
_TO_MSN = {
    PresenceState.ONLINE: "NLN",
    PresenceState.BUSY: "BSY",
    PresenceState.IDLE: "IDL",
    PresenceState.AWAY: "AWY",
    PresenceState.INVISIBLE: "HDN",
    PresenceState.OFFLINE: "FLN",
}
MSN_STATES = frozenset(_FROM_MSN)


def presence_from_msn(state: str) -> PresenceState | None:
    return _FROM_MSN.get(state)


def presence_to_msn(state: PresenceState) -> str:
    """The MSN status code; invisible contacts are shown offline by the caller."""
    return _TO_MSN[state]


# ---- names


def encode_name(name: str) -> str:
    """A friendly name as MSNP carries it (URL-encoded, at most 387 bytes)."""
    cleaned = "".join(c for c in name if c.isprintable()) or "?"
    encoded = quote(cleaned, safe="@._-~!*'()")
    while len(encoded) > MAX_NAME_ENCODED:
        cleaned = cleaned[:-1]
        encoded = quote(cleaned, safe="@._-~!*'()")
    return encoded


def decode_name(value: str) -> str:
    return unquote(value)[:256]


def contact_name(address: str, own_name: str) -> str:
    """The one name an MSN client sees for the person at ``address``, everywhere
    (LST/ADC, ILN, NLN, the reverse-list notice, RNG, JOI/IRO, MSG): their own
    display name as the core knows it (``own_name``: the account's), else their own
    id on their own network; a user of another network gets that network's label
    (``Ivan [ICQ/AIM]``, ``700123 [UIN]``). Never what some client typed for them.
    It changes only when that person changes their name (docs/protocols/msn.md, Names)."""
    network, native = split_address(address)
    shown = own_name or native
    if network == "msn":
        return shown
    label = NETWORK_LABELS.get(network, network.upper())
    suffix = f"[{label}]"
    return shown if shown.endswith(suffix) else f"{shown} {suffix}"
