"""MSNP codec: golden vectors from real clients, splits, round trips, garbage, limits."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.msn.codec import (
    MAX_LINE,
    SB_MAX_PAYLOAD,
    Command,
    CommandCodec,
    ErrorReply,
    Frame,
    MsnProtocolError,
    Role,
    encode,
)
from tests.msn.msn_fakes import client_bytes, load_vector

MSNP8 = load_vector("msnp8-msnp.py-session.txt")
MSNP12 = load_vector("msnp12-msn-pecan-login.txt")
CLIENT_LINES = [
    line for line in MSNP8 + MSNP12 if line.side == "C" and line.channel in ("NS", "SB")
]


def feed(codec: CommandCodec, data: bytes, chunks: list[int] | None = None) -> list[Frame]:
    frames: list[Frame] = []
    if chunks is None:
        return codec.receive_data(data)
    start = 0
    for size in chunks:
        frames += codec.receive_data(data[start : start + size])
        start += size
    frames += codec.receive_data(data[start:])
    return frames


def wire(lines: list[str]) -> bytes:
    return b"".join(line.encode() + b"\r\n" for line in lines)


# ---- golden vectors, client -> server


def test_msnp8_vector_version_line_has_trid_zero() -> None:
    """msnp.py's `VER 0 MSNP8 CVR0` parses with transaction id 0."""
    frames = CommandCodec(Role.SERVER).receive_data(b"VER 0 MSNP8 CVR0\r\n")
    assert frames == [Command("VER", 0, ("MSNP8", "CVR0"))]


def test_cvr_double_space_keeps_an_empty_field() -> None:
    """msnp.py's CVR has a double space: the empty field survives and re-encodes byte-exact."""
    line = next(x for x in CLIENT_LINES if x.text.startswith("CVR 1"))
    (frame,) = CommandCodec(Role.SERVER).receive_data(client_bytes(line))
    assert isinstance(frame, Command)
    assert frame.args[-2:] == ("", "test1@example.com")
    assert encode(frame) == client_bytes(line)


def test_qry_ending_in_lf_alone_is_read() -> None:
    """msnp.py ends its QRY line with LF alone; the 32-byte payload still follows."""
    line = next(x for x in MSNP8 if x.text.startswith("QRY"))
    (frame,) = CommandCodec(Role.SERVER).receive_data(client_bytes(line, b"\n"))
    assert frame == Command("QRY", 6, ("msmsgs@msnmsgr.com",), b"d0c1178c689350104350d99f8c36ed9c")


@pytest.mark.parametrize("line", CLIENT_LINES, ids=lambda x: x.text[:24])
def test_every_captured_client_line_round_trips(line: object) -> None:
    """Each captured client command decodes and re-encodes to the same bytes."""
    data = client_bytes(line)  # type: ignore[arg-type]
    frames = CommandCodec(Role.SERVER).receive_data(data)
    assert len(frames) == 1
    assert encode(frames[0]) == data


def test_captured_session_whole_byte_by_byte_and_with_trailing_bytes() -> None:
    """The whole msnp.py session gives the same commands whole, byte by byte, or with a partial tail."""
    data = b"".join(client_bytes(x) for x in CLIENT_LINES)
    whole = CommandCodec(Role.SERVER).receive_data(data)
    bytewise = feed(CommandCodec(Role.SERVER), data, [1] * len(data))
    codec = CommandCodec(Role.SERVER)
    tail = codec.receive_data(data + b"MSG 9 N 40\r\nMIME")
    assert whole == bytewise == tail
    assert len(whole) == len(CLIENT_LINES)
    assert codec.buffered == 4


def test_switchboard_messages_from_the_vector() -> None:
    """msnp.py's typing and text MSGs parse with their acknowledgement types and payloads."""
    msgs = [x for x in CLIENT_LINES if x.text.startswith("MSG")]
    frames = CommandCodec(Role.SERVER, SB_MAX_PAYLOAD).receive_data(
        b"".join(client_bytes(x) for x in msgs)
    )
    # the capture holds the session twice
    assert [(f.trid, f.args) for f in frames if isinstance(f, Command)] == [
        (3, ("U",)),
        (4, ("N",)),
    ] * 2
    assert all(
        isinstance(f, Command) and f.payload and b"MIME-Version" in f.payload for f in frames
    )


def test_ping_and_out_have_no_trid() -> None:
    """PNG and OUT are the client commands without a transaction id."""
    frames = CommandCodec(Role.SERVER).receive_data(b"PNG\r\nOUT\r\n")
    assert frames == [Command("PNG", None), Command("OUT", None)]


# ---- server lines, as our own client reads them


SERVER_LINES = [
    ("VER 0 MSNP8 CVR0", Command("VER", 0, ("MSNP8", "CVR0"))),
    ("GTC A", Command("GTC", None, ("A",))),
    ("GTC 12 34 N", Command("GTC", 12, ("34", "N"))),
    ("BLP 5 AL", Command("BLP", 5, ("AL",))),
    ("LSG 0 Other%20Contacts 0", Command("LSG", None, ("0", "Other%20Contacts", "0"))),
    (
        "LSG 5 1 1 2 0 Other%20Contacts 0",
        Command("LSG", 5, ("1", "1", "2", "0", "Other%20Contacts", "0")),
    ),
    (
        "LST test2@example.com Test%20Two 11 0",
        Command("LST", None, ("test2@example.com", "Test%20Two", "11", "0")),
    ),
    ("LST 5 FL 1 1 1 a@b.com A 0", Command("LST", 5, ("FL", "1", "1", "1", "a@b.com", "A", "0"))),
    ("PRP MFN Me", Command("PRP", None, ("MFN", "Me"))),
    (
        "ILN 4 NLN test2@example.com Test%20Two 0",
        Command("ILN", 4, ("NLN", "test2@example.com", "Test%20Two", "0")),
    ),
    ("CHL 0 29409134351025259292", Command("CHL", 0, ("29409134351025259292",))),
    ("JOI test2@example.com Test%20Two", Command("JOI", None, ("test2@example.com", "Test%20Two"))),
    ("QNG 50", Command("QNG", None, ("50",))),
    ("OUT OTH", Command("OUT", None, ("OTH",))),
    (
        "RNG 11752013 127.0.0.1:1864 CKI c a@b.com A",
        Command("RNG", None, ("11752013", "127.0.0.1:1864", "CKI", "c", "a@b.com", "A")),
    ),
    ("911 3", ErrorReply(911, 3)),
]


@pytest.mark.parametrize(("text", "frame"), SERVER_LINES, ids=[t for t, _ in SERVER_LINES])
def test_server_lines_both_ways(text: str, frame: Frame) -> None:
    """Server lines decode on the client side and encode byte-exact on the server side."""
    data = text.encode() + b"\r\n"
    assert CommandCodec(Role.CLIENT).receive_data(data) == [frame]
    assert CommandCodec(Role.SERVER).send(frame) == data


def test_server_msg_from_hotmail_payload() -> None:
    """The profile MSG from the capture reads as a payload command without trid."""
    line = next(x for x in MSNP8 if x.side == "S" and x.text.startswith("MSG Hotmail"))
    data = client_bytes(line)
    (frame,) = CommandCodec(Role.CLIENT).receive_data(data)
    assert frame == Command("MSG", None, ("Hotmail", "Hotmail"), line.payload)


# ---- limits and errors


def test_overlong_line_is_a_protocol_error() -> None:
    """A line longer than the limit, even without its line end, is refused."""
    with pytest.raises(MsnProtocolError):
        CommandCodec(Role.SERVER).receive_data(b"CVR 1 " + b"x" * MAX_LINE)


def test_oversized_switchboard_payload_is_refused_before_it_arrives() -> None:
    """A MSG announcing more than 1664 bytes is refused on the switchboard."""
    with pytest.raises(MsnProtocolError):
        CommandCodec(Role.SERVER, SB_MAX_PAYLOAD).receive_data(b"MSG 1 N 1665\r\n")


@pytest.mark.parametrize(
    "data",
    [
        b"\r\n",
        b"ver 1 MSNP8\r\n",
        b"VER x MSNP8\r\n",
        b"MSG 1 N -5\r\n",
        b"500 1\r\n",
        b"VER\r\n",
        b"CVR 1 \xff\r\n",
    ],
)
def test_malformed_client_lines(data: bytes) -> None:
    """Empty lines, bad verbs, bad trids, bad lengths and numeric errors from clients are refused."""
    with pytest.raises(MsnProtocolError):
        CommandCodec(Role.SERVER).receive_data(data)


def test_encode_refuses_separators_in_arguments() -> None:
    """An argument with a space would break the line: that is our bug, a ValueError."""
    with pytest.raises(ValueError):
        encode(Command("CHG", 1, ("N LN",)))


# ---- hypothesis

_word = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=0x2FF, exclude_characters="\x7f"),
    min_size=1,
    max_size=12,
)
_client_verbs = st.sampled_from(
    ["VER", "CVR", "USR", "SYN", "CHG", "ADD", "REM", "XFR", "CAL", "ANS"]
)
_client_commands = (
    st.builds(
        Command,
        _client_verbs,
        st.integers(0, 0xFFFFFFFF),
        st.lists(_word, max_size=5).map(tuple),
        st.none(),
    )
    | st.builds(
        Command,
        st.sampled_from(["MSG", "QRY", "UUX"]),
        st.integers(0, 9999),
        st.lists(_word, max_size=2).map(tuple),
        st.binary(max_size=300),
    )
    | st.sampled_from([Command("PNG", None), Command("OUT", None)])
)


@settings(max_examples=150)
@given(st.lists(_client_commands, max_size=8), st.data())
def test_client_commands_round_trip_under_random_splits(
    commands: list[Command], data: st.DataObject
) -> None:
    """decode(encode(x)) == x for client commands, whatever the TCP segmentation."""
    stream = b"".join(encode(c) for c in commands)
    cuts = data.draw(st.lists(st.integers(1, 40), max_size=30))
    assert feed(CommandCodec(Role.SERVER), stream, cuts) == commands


_server_commands = (
    st.builds(
        Command,
        st.sampled_from(["USR", "SYN", "XFR", "CAL", "ANS", "IRO", "ACK", "NAK", "ILN", "ADD"]),
        st.integers(0, 0xFFFFFFFF),
        st.lists(_word, max_size=4).map(tuple),
        st.none(),
    )
    | st.builds(
        Command,
        st.sampled_from(["JOI", "BYE", "NLN", "FLN", "RNG"]),
        st.none(),
        st.lists(_word, max_size=4).map(tuple),
        st.none(),
    )
    | st.builds(
        Command,
        st.sampled_from(["MSG", "UBX"]),
        st.none(),
        st.lists(_word.filter(lambda w: not w.isdigit()), min_size=1, max_size=2).map(tuple),
        st.binary(max_size=200),
    )
    | st.builds(ErrorReply, st.integers(200, 999), st.integers(0, 9999) | st.none())
)


@settings(max_examples=150)
@given(st.lists(_server_commands, max_size=8), st.data())
def test_server_commands_round_trip_for_our_client(
    commands: list[Frame], data: st.DataObject
) -> None:
    """What the server writes, our client-side codec reads back identically."""
    stream = b"".join(encode(c) for c in commands)
    cuts = data.draw(st.lists(st.integers(1, 40), max_size=30))
    assert feed(CommandCodec(Role.CLIENT), stream, cuts) == commands


@settings(max_examples=200)
@given(st.binary(max_size=400), st.sampled_from(list(Role)))
def test_garbage_parses_or_raises_the_protocol_error(data: bytes, role: Role) -> None:
    """Any bytes either parse or raise MsnProtocolError, nothing else."""
    with contextlib.suppress(MsnProtocolError):
        CommandCodec(role).receive_data(data)
