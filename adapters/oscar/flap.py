"""FLAP framing: ``2a channel:u8 sequence:u16 length:u16 data``.

Channels: 1 sign-on (hello, cookie or roasted login), 2 SNAC data, 3 FLAP-level
error, 4 sign-off, 5 keepalive. Each side numbers its own frames; a sender starts
anywhere and adds one per frame, wrapping from 0xFFFF to 0 (WIRE-NOTES). The
decoder checks the peer's numbering when ``check_sequence`` is on: a gap means a
frame was lost or forged, which OSCAR has no way to recover from.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from adapters.oscar.errors import OscarProtocolError

FLAP_START = 0x2A
FLAP_HEADER_LEN = 6
MAX_FLAP_DATA = 0xFFFF


class FlapChannel(IntEnum):
    SIGNON = 1
    DATA = 2
    ERROR = 3
    SIGNOFF = 4
    KEEPALIVE = 5


@dataclass(frozen=True, slots=True)
class FlapFrame:
    channel: FlapChannel
    sequence: int
    data: bytes = b""

    def __post_init__(self) -> None:
        if not 0 <= self.sequence <= 0xFFFF:
            raise ValueError("FLAP sequence out of range")
        if len(self.data) > MAX_FLAP_DATA:
            raise ValueError("FLAP data longer than 65535 bytes")

    def encode(self) -> bytes:
        header = struct.pack(">BBHH", FLAP_START, int(self.channel), self.sequence, len(self.data))
        return header + self.data


class FlapDecoder:
    """Bytes in, frames out. After a protocol error the decoder stays broken: the
    connection must be closed."""

    def __init__(self, max_data: int = MAX_FLAP_DATA, check_sequence: bool = True) -> None:
        self._buffer = bytearray()
        self._max_data = max_data
        self._check_sequence = check_sequence
        self._expected: int | None = None
        self._broken: OscarProtocolError | None = None

    @property
    def max_data(self) -> int:
        return self._max_data

    @max_data.setter
    def max_data(self, value: int) -> None:
        self._max_data = value

    def feed(self, data: bytes) -> None:
        if self._broken is not None:
            raise self._broken
        self._buffer += data

    def next_frame(self) -> FlapFrame | None:
        """The next complete frame, or None until more bytes arrive."""
        if self._broken is not None:
            raise self._broken
        try:
            return self._next_frame()
        except OscarProtocolError as exc:
            self._broken = exc
            raise

    def receive_data(self, data: bytes) -> list[FlapFrame]:
        self.feed(data)
        frames: list[FlapFrame] = []
        while (frame := self.next_frame()) is not None:
            frames.append(frame)
        return frames

    def _next_frame(self) -> FlapFrame | None:
        buf = self._buffer
        if not buf:
            return None
        if buf[0] != FLAP_START:
            raise OscarProtocolError(f"FLAP frame starts with 0x{buf[0]:02x}, not 0x2a")
        if len(buf) >= 2 and buf[1] not in FlapChannel._value2member_map_:
            raise OscarProtocolError(f"unknown FLAP channel {buf[1]}")
        if len(buf) < FLAP_HEADER_LEN:
            return None
        _, channel, sequence, length = struct.unpack_from(">BBHH", buf)
        if length > self._max_data:
            raise OscarProtocolError(
                f"FLAP frame of {length} bytes exceeds the limit of {self._max_data}"
            )
        if len(buf) < FLAP_HEADER_LEN + length:
            return None
        if self._check_sequence:
            if self._expected is not None and sequence != self._expected:
                raise OscarProtocolError(f"FLAP sequence {sequence} where {self._expected} was due")
            self._expected = (sequence + 1) & 0xFFFF
        data = bytes(buf[FLAP_HEADER_LEN : FLAP_HEADER_LEN + length])
        del buf[: FLAP_HEADER_LEN + length]
        return FlapFrame(FlapChannel(channel), sequence, data)


class FlapSequencer:
    """Numbers our outgoing frames: starts at ``first``, adds one, wraps at 0xFFFF."""

    def __init__(self, first: int) -> None:
        self._next = first & 0xFFFF

    def frame(self, channel: FlapChannel, data: bytes = b"") -> FlapFrame:
        frame = FlapFrame(channel, self._next, data)
        self._next = (self._next + 1) & 0xFFFF
        return frame
