"""TLVs and the strict byte reader every OSCAR decoder uses.

A TLV is ``type:u16 length:u16 value``. OSCAR lists them three ways: a bare chain that
runs to the end of its container, a *block* prefixed by a u16 count, and an
*lblock* prefixed by a u16 byte length. Integers are big-endian except inside the
ICQ family's meta data, which is little-endian (hence the ``*_le`` helpers).

Every read is bounds-checked: a length that points past the data raises
:class:`OscarProtocolError`, never ``IndexError`` or ``struct.error``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass

from adapters.oscar.errors import OscarProtocolError


@dataclass(frozen=True, slots=True)
class Tlv:
    type: int
    value: bytes = b""

    def __post_init__(self) -> None:
        if not 0 <= self.type <= 0xFFFF:
            raise ValueError(f"TLV type out of range: {self.type}")
        if len(self.value) > 0xFFFF:
            raise ValueError("TLV value longer than 65535 bytes")

    def encode(self) -> bytes:
        return struct.pack(">HH", self.type, len(self.value)) + self.value

    @classmethod
    def u8(cls, type_: int, value: int) -> Tlv:
        return cls(type_, struct.pack(">B", value))

    @classmethod
    def u16(cls, type_: int, value: int) -> Tlv:
        return cls(type_, struct.pack(">H", value))

    @classmethod
    def u32(cls, type_: int, value: int) -> Tlv:
        return cls(type_, struct.pack(">I", value))


Tlvs = tuple[Tlv, ...]


class ByteReader:
    """Reads a bytes object front to back; every overrun is a protocol error."""

    __slots__ = ("_data", "_pos", "_what")

    def __init__(self, data: bytes, what: str = "data") -> None:
        self._data = data
        self._pos = 0
        self._what = what

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    def at_end(self) -> bool:
        return self._pos >= len(self._data)

    def take(self, n: int) -> bytes:
        if n < 0 or self._pos + n > len(self._data):
            raise OscarProtocolError(f"{self._what}: needs {n} more bytes, has {self.remaining}")
        chunk = self._data[self._pos : self._pos + n]
        self._pos += n
        return chunk

    def rest(self) -> bytes:
        return self.take(self.remaining)

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        value: int = struct.unpack(">H", self.take(2))[0]
        return value

    def u32(self) -> int:
        value: int = struct.unpack(">I", self.take(4))[0]
        return value

    def u16le(self) -> int:
        value: int = struct.unpack("<H", self.take(2))[0]
        return value

    def u32le(self) -> int:
        value: int = struct.unpack("<I", self.take(4))[0]
        return value

    def u8_string(self) -> bytes:
        """A byte string with a u8 length (screen names)."""
        return self.take(self.u8())

    def u16_string(self) -> bytes:
        return self.take(self.u16())

    def tlv(self) -> Tlv:
        type_ = self.u16()
        return Tlv(type_, self.take(self.u16()))

    def tlv_chain(self) -> Tlvs:
        """TLVs up to the end of the data."""
        out: list[Tlv] = []
        while not self.at_end():
            out.append(self.tlv())
        return tuple(out)

    def tlv_block(self) -> Tlvs:
        """A u16 count, then that many TLVs."""
        return tuple(self.tlv() for _ in range(self.u16()))

    def tlv_lblock(self) -> Tlvs:
        """A u16 byte length, then TLVs filling exactly that many bytes."""
        return ByteReader(self.u16_string(), self._what).tlv_chain()

    def expect_end(self) -> None:
        if not self.at_end():
            raise OscarProtocolError(f"{self._what}: {self.remaining} unexpected trailing bytes")


def u8_string(value: bytes) -> bytes:
    if len(value) > 0xFF:
        raise ValueError("string longer than 255 bytes")
    return bytes([len(value)]) + value


def u16_string(value: bytes) -> bytes:
    if len(value) > 0xFFFF:
        raise ValueError("string longer than 65535 bytes")
    return struct.pack(">H", len(value)) + value


def encode_tlvs(tlvs: Iterable[Tlv]) -> bytes:
    return b"".join(t.encode() for t in tlvs)


def encode_tlv_block(tlvs: Tlvs) -> bytes:
    return struct.pack(">H", len(tlvs)) + encode_tlvs(tlvs)


def encode_tlv_lblock(tlvs: Tlvs) -> bytes:
    return u16_string(encode_tlvs(tlvs))


def decode_tlvs(data: bytes, what: str = "TLV chain") -> Tlvs:
    return ByteReader(data, what).tlv_chain()


def find(tlvs: Iterable[Tlv], type_: int) -> bytes | None:
    """The value of the first TLV of ``type_``, or None."""
    for tlv in tlvs:
        if tlv.type == type_:
            return tlv.value
    return None


def has(tlvs: Iterable[Tlv], type_: int) -> bool:
    return any(t.type == type_ for t in tlvs)


def find_u16(tlvs: Iterable[Tlv], type_: int) -> int | None:
    value = find(tlvs, type_)
    if value is None:
        return None
    if len(value) != 2:
        raise OscarProtocolError(f"TLV 0x{type_:04x} must hold 2 bytes, holds {len(value)}")
    result: int = struct.unpack(">H", value)[0]
    return result


def find_u32(tlvs: Iterable[Tlv], type_: int) -> int | None:
    value = find(tlvs, type_)
    if value is None:
        return None
    if len(value) != 4:
        raise OscarProtocolError(f"TLV 0x{type_:04x} must hold 4 bytes, holds {len(value)}")
    result: int = struct.unpack(">I", value)[0]
    return result
