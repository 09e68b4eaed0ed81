"""FLAP, SNAC and TLV codec: golden vectors from the Shutko/iserverd OSCAR pages and
the captured clients, both directions, fed whole, byte by byte and with trailing
bytes; hypothesis round trips, random splits and garbage."""

from __future__ import annotations

import contextlib
import dataclasses
import typing

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.oscar import snac as S
from adapters.oscar.codec import (
    FlapError,
    Keepalive,
    OscarCodec,
    Signoff,
    Signon,
    SnacEvent,
    WireEvent,
)
from adapters.oscar.errors import OscarProtocolError
from adapters.oscar.flap import FlapChannel, FlapDecoder, FlapFrame
from adapters.oscar.tlv import ByteReader, Tlv, decode_tlvs, encode_tlvs, find_u16

from .support import load_vector


def h(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


# (name, bytes as on the wire, the event they are). Shutko's per-SNAC example dumps.
GOLDEN: list[tuple[str, bytes, WireEvent]] = [
    (
        "01/03 families (snac_01_03)",
        h(
            "2A 02 3D FE 00 22 00 01 00 03 00 00 82 95 E5 7A 00 01 00 02 00 03 00 04"
            " 00 06 00 08 00 09 00 0A 00 0B 00 0C 00 13 00 15"
        ),
        SnacEvent(
            S.Snac(
                S.HostOnline((1, 2, 3, 4, 6, 8, 9, 10, 11, 12, 0x13, 0x15)),
                request_id=0x8295E57A,
            )
        ),
    ),
    (
        "01/0A rate warning with a 0x8000 preamble (snac_01_0a)",
        h(
            "2A 02 39 00 00 37 00 01 00 0A 80 00 85 1B 57 65 00 06 00 01 00 02 00 03"
            " 00 02 00 03 00 00 00 14 00 00 13 EC 00 00 13 88 00 00 0F A0 00 00 0B B8"
            " 00 00 13 17 00 00 17 70 00 00 00 00 00"
        ),
        SnacEvent(
            S.Snac(
                S.RateParamChange(2, S.RateClass(3, 20, 5100, 5000, 4000, 3000, 4887, 6000, 0, 0)),
                request_id=0x851B5765,
                flags=0x8000,
                preamble=(Tlv.u16(1, 3),),
            )
        ),
    ),
    (
        "17/06 key request (snac_17_06)",
        h(
            "2A 02 0A 46 00 1D 00 17 00 06 00 00 00 00 00 00 00 01 00 07 36 32 31 38"
            " 38 39 35 00 4B 00 00 00 5A 00 00"
        ),
        SnacEvent(S.Snac(S.BucpChallengeRequest((Tlv(1, b"6218895"), Tlv(0x4B), Tlv(0x5A))))),
    ),
    (
        "04/06 channel 1 (snac_04_06_ch1)",
        h(
            "2a 02 23 6c 00 47 00 04 00 06 00 00 00 01 00 06 67 c3 15 01 3d 3a 00 00"
            " 00 01 07 31 30 30 30 30 30 30 00 02 00 23 05 01 00 01 01 01 01 00 1a 00"
            " 00 ff ff 74 65 73 74 20 63 68 61 6e 6e 65 6c 20 31 20 6d 65 73 73 61 67"
            " 65 00 06 00 00"
        ),
        SnacEvent(
            S.Snac(
                S.IcbmToHost(
                    h("67 c3 15 01 3d 3a 00 00"),
                    1,
                    "1000000",
                    (
                        Tlv(
                            2,
                            h("05 01 00 01 01 01 01 00 1a 00 00 ff ff") + b"test channel 1 message",
                        ),
                        Tlv(6),
                    ),
                ),
                request_id=0x00010006,
            )
        ),
    ),
    (
        "04/14 typing (snac_04_14)",
        h(
            "2A 02 38 C2 00 1E 00 04 00 14 00 00 00 00 00 14 00 00 00 00 00 00 00 00"
            " 00 01 07 36 32 31 38 38 39 35 00 02"
        ),
        SnacEvent(S.Snac(S.IcbmClientEvent(bytes(8), 1, "6218895", 2), request_id=0x14)),
    ),
    (
        "03/0C departed (snac_03_0c)",
        h(
            "2A 02 3F 3A 00 1D 00 03 00 0C 00 00 82 99 4A AC 08 33 32 37 31 34 39 34"
            " 34 00 00 00 01 00 01 00 02 00 00"
        ),
        SnacEvent(
            S.Snac(
                S.BuddyDeparted((S.UserInfo("32714944", 0, (Tlv.u16(1, 0),)),)),
                request_id=0x82994AAC,
            )
        ),
    ),
    (
        "13/04 query (snac_13_04)",
        h("2A 02 22 96 00 0A 00 13 00 04 00 00 00 00 00 04"),
        SnacEvent(S.Snac(S.FeedbagQuery(), request_id=4)),
    ),
    (
        "13/0F not modified (snac_13_0f)",
        h("2A 02 38 C5 00 10 00 13 00 0F 00 00 00 01 00 05 3D E7 48 17 00 BB"),
        SnacEvent(S.Snac(S.FeedbagReplyNotModified(0x3DE74817, 0xBB), request_id=0x00010005)),
    ),
    (
        "02/03 locate rights (snac_02_03)",
        h(
            "2A 02 3E 03 00 22 00 02 00 03 00 00 00 00 00 02 00 01 00 02 04 00 00 02"
            " 00 02 00 10 00 03 00 02 00 0A 00 04 00 02 10 00"
        ),
        SnacEvent(
            S.Snac(
                S.LocateRightsReply(
                    (Tlv.u16(1, 0x400), Tlv.u16(2, 0x10), Tlv.u16(3, 0x0A), Tlv.u16(4, 0x1000))
                ),
                request_id=2,
            )
        ),
    ),
    (
        "15/03 end of offline messages (snac_15_03 0042)",
        h(
            "2A 02 CB 58 00 19 00 15 00 03 00 00 00 01 00 02 00 01 00 0B 09 00 8F E4"
            " 5E 00 42 00 02 00 00"
        ),
        SnacEvent(
            S.Snac(S.IcqDbReply(S.IcqMeta(0x005EE48F, 0x42, 2, b"\x00")), request_id=0x00010002)
        ),
    ),
    (
        "15/03 notes reply, flag 0x0001 (snac_15_03_07da_00e6)",
        h(
            "2A 02 5A AE 00 28 00 15 00 03 00 01 00 1F 00 02 00 01 00 1A 18 00 8F E4"
            " 5E 00 DA 07 33 00 E6 00 0A 0B 00 75 73 65 72 20 6E 6F 74 65 73 00"
        ),
        SnacEvent(
            S.Snac(
                S.IcqDbReply(
                    S.IcqMeta(0x005EE48F, 0x07DA, 0x33, h("E6 00 0A 0B 00") + b"user notes\x00")
                ),
                request_id=0x001F0002,
                flags=0x0001,
            )
        ),
    ),
    (
        "channel 4 cookie reply with a 256-byte cookie (srv_cookie)",
        h("2A 04 62 BF 01 21")
        + Tlv(1, b"777777").encode()
        + Tlv(5, b"10.10.10.9:5190").encode()
        + Tlv(
            6, b"7777779cdBcf9a2685cD2fN9fBaafBac1C16TcDf97D717aD0Df503E1c711eD" + b"A" * 194
        ).encode(),
        Signoff(
            (
                Tlv(1, b"777777"),
                Tlv(5, b"10.10.10.9:5190"),
                Tlv(
                    6,
                    b"7777779cdBcf9a2685cD2fN9fBaafBac1C16TcDf97D717aD0Df503E1c711eD" + b"A" * 194,
                ),
            )
        ),
    ),
    ("channel 1 hello (WIRE-NOTES)", h("2a 01 00 01 00 04 00 00 00 01"), Signon()),
    ("keepalive", h("2a 05 00 07 00 00"), Keepalive()),
]


def first_sequence(frame: bytes) -> int:
    return int.from_bytes(frame[2:4], "big")


@pytest.mark.parametrize(("name", "wire", "event"), GOLDEN, ids=[g[0] for g in GOLDEN])
def test_golden_vector_decodes(name: str, wire: bytes, event: WireEvent) -> None:
    """Each published dump decodes to its event, fed whole or byte by byte."""
    assert OscarCodec().receive_data(wire) == [event]
    codec = OscarCodec()
    got: list[WireEvent] = []
    for i in range(len(wire)):
        got += codec.receive_data(wire[i : i + 1])
    assert got == [event]


@pytest.mark.parametrize(("name", "wire", "event"), GOLDEN, ids=[g[0] for g in GOLDEN])
def test_golden_vector_encodes(name: str, wire: bytes, event: WireEvent) -> None:
    """Each event encodes to exactly the published bytes."""
    assert OscarCodec(first_sequence(wire)).send(event) == wire


@pytest.mark.parametrize(("name", "wire", "event"), GOLDEN, ids=[g[0] for g in GOLDEN])
def test_golden_vector_with_trailing_bytes(name: str, wire: bytes, event: WireEvent) -> None:
    """A partial next frame after a vector stays buffered, not misread."""
    codec = OscarCodec()
    assert codec.receive_data(wire + b"\x2a\x02") == [event]


def test_shutko_feedbag_reply_dump() -> None:
    """Shutko's 13/06 dump (an ICQ roster) decodes item by item and re-encodes."""
    wire = h(
        """2A 02 C1 12 00 E1 00 13 00 06 00 00 00 00 00 0d 00 00 08 00 07 36 32 31 38
        38 39 37 0A 1E 43 18 00 00 00 0A 01 31 00 06 46 75 6E 42 6F 6F 00 09 31 37
        36 33 33 33 30 37 38 17 B7 2A 18 00 00 00 09 01 31 00 05 45 2E 53 2E 56 00
        07 36 32 31 38 38 39 38 23 8C 12 A1 00 00 00 09 01 31 00 05 74 68 6F 72 64
        00 07 46 72 69 65 6E 64 73 7F ED 00 00 00 01 00 00 00 0A 43 6F 2D 57 6F 72
        6B 65 72 73 55 7F 00 00 00 01 00 00 00 07 36 32 31 38 38 39 35 23 8C 08 80
        00 00 00 0D 01 31 00 09 52 65 67 72 65 73 73 6F 72 00 07 36 32 35 31 37 32
        33 23 8C 05 83 00 00 00 0D 01 31 00 05 47 68 6F 73 74 00 66 00 00 00 07 36
        32 31 33 39 34 39 23 8C 26 9A 00 00 00 0D 01 31 00 05 6D 69 63 6B 79 00 66
        00 00 3B B7 4B 7D"""
    )
    (event,) = OscarCodec().receive_data(wire)
    assert isinstance(event, SnacEvent)
    body = event.snac.body
    assert isinstance(body, S.FeedbagReply)
    assert len(body.items) == 8
    assert body.items[0] == S.FeedbagItem("6218897", 0x0A1E, 0x4318, 0, (Tlv(0x0131, b"FunBoo"),))
    assert body.items[3] == S.FeedbagItem("Friends", 0x7FED, 0, 1)
    assert body.items[-1].tlvs == (Tlv(0x0131, b"micky"), Tlv(0x0066))
    assert body.timestamp == 0x3BB74B7D
    assert OscarCodec(0xC112).send(event) == wire


@pytest.mark.parametrize("name", ["libpurple-aim-session.txt", "bitlbee-native-aim-session.txt"])
def test_captured_client_frames_round_trip(name: str) -> None:
    """Every frame the real clients sent decodes and re-encodes byte for byte."""
    for connection in load_vector(name):
        codec = OscarCodec()
        for frame in connection:
            (event,) = codec.receive_data(frame)
            assert not isinstance(event, SnacEvent) or not isinstance(
                event.snac.body, S.UnknownBody
            )
            assert OscarCodec(first_sequence(frame)).send(event) == frame


# ---------------------------------------------------------------- malformed input


@pytest.mark.parametrize(
    ("wire", "why"),
    [
        (h("2b 01 00 00 00 00"), "not 0x2a"),
        (h("2a 09 00 00 00 00"), "unknown FLAP channel"),
        (h("2a 02 00 00 00 04 00 01 00 02"), "SNAC header"),
        (h("2a 02 00 00 00 0c 00 04 00 06 00 00 00 00 00 00 00 00"), "needs"),
        (h("2a 02 00 00 00 0e 00 01 00 06 00 00 00 00 00 00 00 00 00 00"), "trailing"),
        (h("2a 02 00 00 00 0f 00 13 00 05 00 00 00 00 00 00 00 00 00 00 00"), "needs"),
        (h("2a 02 00 00 00 0d 00 01 00 17 00 00 00 00 00 00 00 01 00"), "multiple of 4"),
    ],
)
def test_malformed_frames_raise_protocol_error(wire: bytes, why: str) -> None:
    """Bad start byte, unknown channel, short header, truncated or padded bodies."""
    with pytest.raises(OscarProtocolError, match=why):
        OscarCodec().receive_data(wire)


def test_oversized_frame_is_refused_before_its_body_arrives() -> None:
    """A header announcing more than the limit fails at once (no buffering)."""
    codec = OscarCodec(max_data=1024)
    with pytest.raises(OscarProtocolError, match="exceeds the limit"):
        codec.receive_data(h("2a 02 00 01 04 01"))


def test_sequence_gap_is_a_protocol_error() -> None:
    """A skipped FLAP sequence number means a lost or forged frame."""
    decoder = FlapDecoder()
    decoder.receive_data(FlapFrame(FlapChannel.KEEPALIVE, 0xFFFF).encode())
    decoder.receive_data(FlapFrame(FlapChannel.KEEPALIVE, 0).encode())  # wraps
    with pytest.raises(OscarProtocolError, match="sequence 5"):
        decoder.receive_data(FlapFrame(FlapChannel.KEEPALIVE, 5).encode())


def test_codec_stays_broken_after_an_error() -> None:
    """Once a stream is corrupt, later good bytes are refused too."""
    codec = OscarCodec()
    with pytest.raises(OscarProtocolError):
        codec.receive_data(b"\x00")
    with pytest.raises(OscarProtocolError):
        codec.receive_data(h("2a 05 00 00 00 00"))


def test_events_before_a_bad_frame_are_returned_one_by_one() -> None:
    """next_event hands out every good event before the malformed frame raises."""
    codec = OscarCodec()
    codec.feed(h("2a 05 00 00 00 00") + h("2a 02 00 01 00 01 00"))
    assert codec.next_event() == Keepalive()
    with pytest.raises(OscarProtocolError):
        codec.next_event()


def test_tlv_helpers_check_lengths() -> None:
    """A TLV whose length runs past the data, or a wrong-width integer, is refused."""
    with pytest.raises(OscarProtocolError):
        decode_tlvs(h("00 01 00 05 00"))
    with pytest.raises(OscarProtocolError, match="2 bytes"):
        find_u16((Tlv(1, b"\x00"),), 1)
    assert encode_tlvs((Tlv.u32(2, 7),)) == h("00 02 00 04 00 00 00 07")
    r = ByteReader(h("00 01 00 01 00 02 00 02"))
    assert r.tlv_block() == (Tlv.u16(1, 2),)


# ---------------------------------------------------------------- hypothesis

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
names = st.text(st.characters(min_codepoint=0x21, max_codepoint=0xFF), min_size=0, max_size=30)
blobs = st.binary(max_size=40)
tlvs = st.lists(st.builds(Tlv, u16, blobs), max_size=4).map(tuple)
user_infos = st.builds(S.UserInfo, names, u16, tlvs)
items = st.builds(S.FeedbagItem, st.text(max_size=20), u16, u16, u16, tlvs)
rate_classes = st.builds(S.RateClass, u16, u32, u32, u32, u32, u32, u32, u32, u32, u8)
rate_groups = st.builds(S.RateGroup, u16, st.lists(st.tuples(u16, u16), max_size=5).map(tuple))
tool_versions = st.builds(S.ToolVersion, u16, u16, u16, u16)
metas = st.builds(S.IcqMeta, u32, u16, u16, blobs)
cookies = st.binary(min_size=8, max_size=8)
tails = st.sampled_from([b"", b"\x00\x00"])

FIELD_STRATEGIES: dict[str, st.SearchStrategy[object]] = {
    "tlvs": tlvs,
    "names": st.lists(names, max_size=4).map(tuple),
    "values": st.lists(u16, max_size=6).map(tuple),
    "pairs": st.lists(st.tuples(u16, u16), max_size=6).map(tuple),
    "users": st.lists(user_infos, max_size=3).map(tuple),
    "items": st.lists(items, max_size=3).map(tuple),
    "entries": st.lists(tool_versions, max_size=4).map(tuple),
    "classes": st.lists(rate_classes, max_size=3).map(tuple),
    "groups": st.lists(rate_groups, max_size=3).map(tuple),
    "rate": rate_classes,
    "user": user_infos,
    "sender": user_infos,
    "meta": metas,
    "cookie": cookies,
    "key": blobs,
    "data": blobs,
    "screen_name": names,
    "reason": st.text(max_size=30),
    "tail": tails,
    "value": u32,
    "timestamp": u32,
    "request_flags": u32,
    "icbm_flags": u32,
    "min_interval": u32,
    "version": u8,
    "granted": u8,
}


def body_strategy(cls: type[S.SnacBody]) -> st.SearchStrategy[S.SnacBody]:
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        strategy = FIELD_STRATEGIES.get(f.name)
        if strategy is None:
            assert hints[f.name] is int, f"no strategy for {cls.__name__}.{f.name}"
            strategy = u16
        kwargs[f.name] = strategy
    return st.builds(cls, **kwargs)


REGISTERED = sorted(S.registered_bodies().items())
bodies = st.one_of(
    *(body_strategy(cls) for _, cls in REGISTERED),
    st.builds(S.SnacError, u16, u16, tlvs),
)
snacs = st.builds(
    lambda body, reqid, flags, preamble: S.Snac(
        body, reqid, flags | (0x8000 if preamble else 0), preamble
    ),
    bodies,
    u32,
    st.sampled_from([0, 1, 0x8000]),
    tlvs,
)
events = st.one_of(
    snacs.map(SnacEvent),
    st.builds(Signon, tlvs, u32),
    st.builds(Signoff, tlvs),
    st.builds(FlapError, blobs),
    st.builds(Keepalive, blobs),
)


@pytest.mark.parametrize(("key", "cls"), REGISTERED, ids=[c.__name__ for _, c in REGISTERED])
def test_every_registered_body_has_a_strategy(key: tuple[int, int], cls: type[S.SnacBody]) -> None:
    """Each typed body is covered by the round-trip property below."""
    assert key == (cls.FAMILY, cls.SUBTYPE)
    body_strategy(cls)


@settings(max_examples=200, deadline=None)
@given(st.lists(events, max_size=6), u16)
def test_decode_encode_round_trip(stream: list[WireEvent], first: int) -> None:
    """decode(encode(events)) == events for every event shape we model."""
    sender = OscarCodec(first)
    wire = b"".join(sender.send(e) for e in stream)
    assert OscarCodec().receive_data(wire) == stream


@settings(max_examples=150, deadline=None)
@given(st.lists(events, max_size=5), st.data())
def test_random_splits_give_the_same_events(stream: list[WireEvent], data: st.DataObject) -> None:
    """Whole, byte by byte or randomly split, the same events come out."""
    sender = OscarCodec(9)
    wire = b"".join(sender.send(e) for e in stream)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=8)))
    codec = OscarCodec()
    got: list[WireEvent] = []
    for a, b in zip([0, *cuts], [*cuts, len(wire)], strict=True):
        got += codec.receive_data(wire[a:b])
    assert got == stream


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_garbage_parses_or_raises_protocol_error(garbage: bytes) -> None:
    """Any bytes either decode or raise OscarProtocolError, nothing else."""
    with contextlib.suppress(OscarProtocolError):
        OscarCodec().receive_data(garbage)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 0x17), st.integers(0, 0x20), st.binary(max_size=80))
def test_garbage_snac_bodies_parse_or_raise(family: int, subtype: int, body: bytes) -> None:
    """Random bodies under real family/subtype pairs never escape as other errors."""
    with contextlib.suppress(OscarProtocolError):
        S.decode_body(family, subtype, body)
