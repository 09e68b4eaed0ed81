"""Sans-IO OSCAR codec: bytes <-> wire events, for either end of a connection.

``receive_data(bytes)`` returns the events that the bytes complete (FLAP framing,
then SNAC decoding on channel 2); ``send(event)`` returns the bytes for one event,
numbering frames with this side's FLAP sequence. The server session and our own test
client both use it. Any malformed input raises :class:`OscarProtocolError`, and the
codec stays broken afterwards.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from adapters.oscar.errors import OscarProtocolError
from adapters.oscar.flap import MAX_FLAP_DATA, FlapChannel, FlapDecoder, FlapSequencer
from adapters.oscar.snac import Snac, decode_snac
from adapters.oscar.tlv import ByteReader, Tlvs, encode_tlvs


@dataclass(frozen=True, slots=True)
class Signon:
    """Channel 1: protocol version and TLVs (cookie, or a roasted login)."""

    tlvs: Tlvs = ()
    version: int = 1


@dataclass(frozen=True, slots=True)
class SnacEvent:
    """Channel 2."""

    snac: Snac


@dataclass(frozen=True, slots=True)
class FlapError:
    """Channel 3 (rare; carries opaque data)."""

    data: bytes = b""


@dataclass(frozen=True, slots=True)
class Signoff:
    """Channel 4: goodbye, or the answer to a channel-1 login."""

    tlvs: Tlvs = ()


@dataclass(frozen=True, slots=True)
class Keepalive:
    """Channel 5."""

    data: bytes = b""


WireEvent = Signon | SnacEvent | FlapError | Signoff | Keepalive


def encode_payload(event: WireEvent) -> tuple[FlapChannel, bytes]:
    if isinstance(event, SnacEvent):
        return FlapChannel.DATA, event.snac.encode()
    if isinstance(event, Signon):
        return FlapChannel.SIGNON, struct.pack(">I", event.version) + encode_tlvs(event.tlvs)
    if isinstance(event, Signoff):
        return FlapChannel.SIGNOFF, encode_tlvs(event.tlvs)
    if isinstance(event, FlapError):
        return FlapChannel.ERROR, event.data
    return FlapChannel.KEEPALIVE, event.data


def decode_payload(channel: FlapChannel, data: bytes) -> WireEvent:
    if channel is FlapChannel.DATA:
        return SnacEvent(decode_snac(data))
    if channel is FlapChannel.SIGNON:
        r = ByteReader(data, "FLAP sign-on")
        version = r.u32()
        return Signon(r.tlv_chain(), version)
    if channel is FlapChannel.SIGNOFF:
        return Signoff(ByteReader(data, "FLAP sign-off").tlv_chain())
    if channel is FlapChannel.ERROR:
        return FlapError(data)
    return Keepalive(data)


class OscarCodec:
    def __init__(
        self,
        first_sequence: int = 0,
        max_data: int = MAX_FLAP_DATA,
        check_sequence: bool = True,
    ) -> None:
        self._decoder = FlapDecoder(max_data=max_data, check_sequence=check_sequence)
        self._sequencer = FlapSequencer(first_sequence)
        self._broken: OscarProtocolError | None = None

    @property
    def max_data(self) -> int:
        return self._decoder.max_data

    @max_data.setter
    def max_data(self, value: int) -> None:
        self._decoder.max_data = value

    def feed(self, data: bytes) -> None:
        if self._broken is not None:
            raise self._broken
        self._decoder.feed(data)

    def next_event(self) -> WireEvent | None:
        """The next complete event, or None until more bytes arrive. A malformed
        frame raises here, after every event before it has been returned."""
        if self._broken is not None:
            raise self._broken
        try:
            frame = self._decoder.next_frame()
            return None if frame is None else decode_payload(frame.channel, frame.data)
        except OscarProtocolError as exc:
            self._broken = exc
            raise

    def receive_data(self, data: bytes) -> list[WireEvent]:
        self.feed(data)
        events: list[WireEvent] = []
        while (event := self.next_event()) is not None:
            events.append(event)
        return events

    def send(self, event: WireEvent) -> bytes:
        channel, payload = encode_payload(event)
        if len(payload) > MAX_FLAP_DATA:
            raise ValueError("event does not fit one FLAP frame")
        return self._sequencer.frame(channel, payload).encode()
