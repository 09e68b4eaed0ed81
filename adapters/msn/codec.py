"""MSNP line codec: bytes <-> commands, sans-IO.

Every MSNP command is one line ``VERB [trid] arg arg ...`` ended by CRLF (some
clients end some lines with LF alone: we split on LF and strip one optional CR).
Payload commands (``MSG``, ``QRY``, ``UUX`` ...) carry the payload length as their
last argument; exactly that many bytes follow the line. Errors are lines whose verb
is a three-digit number: ``911 3``.

Whether a line carries a transaction id depends on who sent it. Client commands
always carry one except ``PNG`` and ``OUT``; server lines are irregular (``GTC A``
inside a sync but ``GTC 12 34 N`` as a reply), so the client-side reader (used by
our tests' own MSN client) decides per verb with :func:`server_line_has_trid`.

The reader is a buffer: ``receive_data`` returns every complete command and keeps
the rest. Over-long lines, over-long payloads, bad lengths and malformed verbs raise
:class:`MsnProtocolError` (the peer broke the protocol); the connection is then
closed by the caller.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

MAX_LINE = 2048
"""Longest command line we accept (bytes, without the line end)."""

DEFAULT_MAX_PAYLOAD = 8192
"""Longest payload on a notification connection; switchboards use 1664."""

SB_MAX_PAYLOAD = 1664
"""A switchboard MSG may be up to 1664 bytes (hypothetic.org, Switchboard/Messages)."""

CLIENT_PAYLOAD_VERBS = frozenset(
    {"MSG", "QRY", "UUX", "SDC", "ADL", "RML", "FQY", "UUN", "PUT", "NOT"}
)
SERVER_PAYLOAD_VERBS = frozenset(
    {"MSG", "UBX", "GCF", "NOT", "IPG", "ADL", "RML", "FQY", "UUX", "UBN", "NFY"}
)
CLIENT_VERBS_WITHOUT_TRID = frozenset({"PNG", "OUT"})

_VERB_RE = re.compile(rb"^[A-Z][A-Z0-9]{2}$")
_ERROR_RE = re.compile(rb"^[0-9]{3}$")
_MAX_TRID = 0xFFFFFFFF


class MsnProtocolError(Exception):
    """The peer broke MSNP. ``code`` is the numeric error to send before closing."""

    def __init__(self, message: str, code: int = 200) -> None:
        super().__init__(message)
        self.code = code


class Role(Enum):
    """Which end of the connection this codec sits on."""

    SERVER = "server"  # reads client commands, writes server commands
    CLIENT = "client"  # reads server commands, writes client commands


@dataclass(frozen=True, slots=True)
class Command:
    """One MSNP command. ``payload`` is None for commands that carry none."""

    verb: str
    trid: int | None
    args: tuple[str, ...] = ()
    payload: bytes | None = None


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """A numeric error line, ``code trid``."""

    code: int
    trid: int | None


Frame = Command | ErrorReply


def server_line_has_trid(verb: str, args: tuple[str, ...]) -> bool:
    """Whether a server line ``verb args...`` starts with a transaction id.

    ``args`` are the words after the verb (payload length removed). The rules follow
    the shapes MSNP2-12 servers send (hypothetic.org, the yellows111 MSNP wiki).
    """
    first_is_number = bool(args) and args[0].isdigit()
    if verb in {"GTC", "BLP"}:  # "GTC A" in a sync, "GTC 12 34 N" / "BLP 12 AL" as replies
        return len(args) >= 2 and first_is_number
    if verb == "LSG":  # MSNP2-7 "LSG trid ser i n id name 0"; MSNP8 "LSG id name 0"
        return len(args) >= 6 and first_is_number
    if verb in {"LST", "PRP"}:  # MSNP2-7 "LST trid FL ser ..."; MSNP8+ "LST handle name 11 0"
        return first_is_number and len(args) >= 2
    if verb in {"MSG", "JOI", "BYE", "NLN", "FLN", "UBX", "RNG", "BPR", "NOT", "IPG", "UBN"}:
        return False
    if verb in {"OUT", "QNG", "NFY", "GCF"}:
        return verb == "GCF" and first_is_number
    return first_is_number


class CommandCodec:
    """Sans-IO MSNP framing for one connection end."""

    def __init__(self, role: Role, max_payload: int = DEFAULT_MAX_PAYLOAD) -> None:
        self.role = role
        self.max_payload = max_payload
        self._buffer = bytearray()
        self._pending: tuple[str, int | None, tuple[str, ...], int] | None = None

    # ---- reading

    def receive_data(self, data: bytes) -> list[Frame]:
        """Feed bytes; return the frames they complete. Raises MsnProtocolError."""
        self._buffer += data
        frames: list[Frame] = []
        while True:
            frame = self._next_frame()
            if frame is None:
                break
            frames.append(frame)
        return frames

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a complete frame."""
        return len(self._buffer)

    def _next_frame(self) -> Frame | None:
        if self._pending is not None:
            verb, trid, args, length = self._pending
            if len(self._buffer) < length:
                return None
            payload = bytes(self._buffer[:length])
            del self._buffer[:length]
            self._pending = None
            return Command(verb, trid, args, payload)
        end = self._buffer.find(b"\n")
        if end < 0:
            if len(self._buffer) > MAX_LINE:
                raise MsnProtocolError("command line too long")
            return None
        if end > MAX_LINE + 1:
            raise MsnProtocolError("command line too long")
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 1]
        if line.endswith(b"\r"):
            line = line[:-1]
        return self._parse_line(line)

    def _parse_line(self, line: bytes) -> Frame | None:
        if not line:
            raise MsnProtocolError("empty command line")
        words = line.split(b" ")
        verb_bytes = words[0]
        if _ERROR_RE.match(verb_bytes):
            if self.role is Role.SERVER:
                raise MsnProtocolError("clients do not send numeric errors")
            return self._parse_error(words)
        if not _VERB_RE.match(verb_bytes):
            raise MsnProtocolError("malformed command verb")
        verb = verb_bytes.decode("ascii")
        try:
            # CVR may contain a double space (an empty field): keep empty words.
            args = tuple(word.decode("utf-8") for word in words[1:])
        except UnicodeDecodeError:
            raise MsnProtocolError("command line is not UTF-8") from None
        if any(("\t" in a or "\r" in a or "\0" in a) for a in args):
            raise MsnProtocolError("control character in a command line")
        payload_verbs = CLIENT_PAYLOAD_VERBS if self.role is Role.SERVER else SERVER_PAYLOAD_VERBS
        length: int | None = None
        if verb in payload_verbs:
            if not args:
                raise MsnProtocolError(f"{verb} without a payload length")
            length = _parse_number(args[-1], "payload length")
            if length > self.max_payload:
                raise MsnProtocolError(f"{verb} payload of {length} bytes is too large")
            args = args[:-1]
        if self.role is Role.SERVER:
            has_trid = verb not in CLIENT_VERBS_WITHOUT_TRID
        else:
            has_trid = server_line_has_trid(verb, args)
        trid: int | None = None
        if has_trid:
            if not args:
                raise MsnProtocolError(f"{verb} without a transaction id")
            trid = _parse_number(args[0], "transaction id")
            args = args[1:]
        if length is not None:
            self._pending = (verb, trid, args, length)
            return self._next_frame()
        return Command(verb, trid, args)

    @staticmethod
    def _parse_error(words: list[bytes]) -> ErrorReply:
        code = int(words[0])
        if len(words) > 2:
            raise MsnProtocolError("malformed error line")
        trid = (
            _parse_number(words[1].decode("ascii", "replace"), "transaction id")
            if len(words) == 2
            else None
        )
        return ErrorReply(code, trid)

    # ---- writing

    def send(self, frame: Frame) -> bytes:
        """The bytes of ``frame`` as this end writes it."""
        return encode(frame)


def encode(frame: Frame) -> bytes:
    """Serialise a frame; arguments must not contain spaces or line ends."""
    if isinstance(frame, ErrorReply):
        parts = [f"{frame.code:03d}"]
        if frame.trid is not None:
            parts.append(str(frame.trid))
        return (" ".join(parts) + "\r\n").encode("ascii")
    words = [frame.verb]
    if frame.trid is not None:
        words.append(str(frame.trid))
    for arg in frame.args:
        if any(c in arg for c in " \r\n"):
            raise ValueError(f"argument {arg!r} of {frame.verb} contains a separator")
        words.append(arg)
    if frame.payload is not None:
        words.append(str(len(frame.payload)))
    head = (" ".join(words) + "\r\n").encode("utf-8")
    return head + (frame.payload or b"")


def _parse_number(text: str, what: str) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > 10:
        raise MsnProtocolError(f"bad {what}")
    value = int(text)
    if value > _MAX_TRID:
        raise MsnProtocolError(f"bad {what}")
    return value
