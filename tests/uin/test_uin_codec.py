"""UIN codec: golden byte vectors both ways, and hypothesis properties."""

from __future__ import annotations

import contextlib
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.uin.codec import (
    BODIES,
    HELLO_WANT_UTF8,
    MAX_DATAGRAM,
    MIN_HELLO,
    Ack,
    AuthReply,
    AuthRequest,
    Body,
    Challenge,
    Charset,
    ContactAdd,
    ContactItem,
    ContactList,
    ContactListGet,
    ContactRemove,
    Datagram,
    ErrorCode,
    Goodbye,
    Hello,
    HelloVerify,
    IntegrityError,
    Login,
    LoginOk,
    Logout,
    MessageFailed,
    MessageFragment,
    Ping,
    PresenceNotice,
    Refused,
    RegChallenge,
    Register,
    Registered,
    Search,
    SearchItem,
    SearchResult,
    Status,
    StatusSet,
    TypingNotice,
    UinProtocolError,
    decode,
    encode,
    peek,
)

K = b"k" * 32
SID = 0x0102030405060708
ME = 700123

# (name, datagram, key, exact bytes). The worked examples in docs/protocols/uin.md
# section 13 are LOGIN and MESSAGE below.
GOLDEN: list[tuple[str, Datagram, bytes | None, str]] = [
    (
        "login",
        Datagram(Login(b"\x11" * 32), SID, ME),
        None,
        "55490100000400000000000000000102030405060708000aaedb0020" + "11" * 32 + "e2f3d7a0",
    ),
    (
        "hello_verify",
        Datagram(HelloVerify(b"\xc0" * 20), 0, ME),
        None,
        "55490100000200000000000000000000000000000000000aaedb001514" + "c0" * 20 + "e4610883",
    ),
    (
        "challenge",
        Datagram(Challenge(Charset.CP949, 4096, b"\x5a" * 16, b"\x33" * 24), SID, ME),
        None,
        "55490100000300000000000000000102030405060708000aaedb002e"
        "0000001000105a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a" + "33" * 24 + "dbfc1721",
    ),
    (
        "refused",
        Datagram(Refused(ErrorCode.LOGIN_FAILED), SID, ME),
        None,
        "55490100000600000000000000000102030405060708000aaedb0002000273239799",
    ),
    (
        "login_ok",
        Datagram(LoginOk(Charset.UTF8, 30, 120, 1200), SID, ME),
        K,
        "55490101000500000000000000000102030405060708000aaedb000701001e007804b0"
        "0070d6faf603f3069ae9655d4b2c6048",
    ),
    (
        "ack",
        Datagram(Ack(0b101), SID, ME, 0, 7),
        K,
        "55490101001000000000000000070102030405060708000aaedb000400000005"
        "3313965490b47444c06c7943a5eade27",
    ),
    (
        "ping",
        Datagram(Ping(), SID, ME, 3, 2),
        K,
        "55490101001100000003000000020102030405060708000aaedb000079d7ebc9b56266be422043c30aa26e89",
    ),
    (
        "goodbye",
        Datagram(Goodbye(ErrorCode.SERVER_SHUTDOWN), SID, ME, 0, 9),
        K,
        "55490101001300000000000000090102030405060708000aaedb00020022"
        "0f685194f4afa33746ea459795a26d9d",
    ),
    (
        "message_cp949",
        Datagram(
            MessageFragment(700456, 1, 1700000000, 0, Charset.CP949, 0, 1, "안녕".encode("cp949")),
            SID,
            ME,
            1,
            0,
        ),
        K,
        "55490101004000000001000000000102030405060708000aaedb0016"
        "000ab028000000016553f100000000010004bec8b3e7"
        "f2d89b81ee9ee76969949e8667f3f127",
    ),
    (
        "presence_away",
        Datagram(PresenceNotice(700456, Status.AWAY, "점심".encode("cp949")), SID, ME, 4, 1),
        K,
        "55490101003100000004000000010102030405060708000aaedb000a000ab0280204c1a1bdc9"
        "e99d3c6ec96c5a7275ca4c01e2b41e5c",
    ),
    (
        "contact_list",
        Datagram(
            ContactList(True, (ContactItem(700456, 3, Status.ONLINE, "영희".encode("cp949")),)),
            SID,
            ME,
            2,
            1,
        ),
        K,
        "55490101002300000002000000010102030405060708000aaedb000d0101000ab028030104bfb5c8f1"
        "eea9c4e3b906e32481b58799936596e6",
    ),
    (
        "typing",
        Datagram(TypingNotice(700456, True), SID, ME, 5, 1),
        K,
        "55490101004100000005000000010102030405060708000aaedb0005000ab02801"
        "14e201f1948f151732754e5c25063c41",
    ),
]


@pytest.mark.parametrize(("name", "datagram", "key", "hexed"), GOLDEN, ids=[g[0] for g in GOLDEN])
def test_golden_vector_decodes_and_encodes_byte_exact(
    name: str, datagram: Datagram, key: bytes | None, hexed: str
) -> None:
    """Each golden datagram decodes to its value and re-encodes to the same bytes."""
    data = bytes.fromhex(hexed)
    assert decode(data, key) == datagram
    assert encode(datagram, key) == data


@pytest.mark.parametrize(("name", "datagram", "key", "hexed"), GOLDEN, ids=[g[0] for g in GOLDEN])
def test_golden_vector_with_trailing_or_missing_bytes_is_refused(
    name: str, datagram: Datagram, key: bytes | None, hexed: str
) -> None:
    """A golden datagram with one byte more, or any byte fewer, is a protocol error."""
    data = bytes.fromhex(hexed)
    with pytest.raises(UinProtocolError):
        decode(data + b"\x00", key)
    for cut in range(len(data)):
        with pytest.raises(UinProtocolError):
            decode(data[:cut], key)


def test_crc_trailer_is_ieee_crc32_of_header_and_payload() -> None:
    """The CRC trailer is zlib's CRC-32 over everything before it, big-endian."""
    data = bytes.fromhex(GOLDEN[0][3])
    assert data[-4:] == zlib.crc32(data[:-4]).to_bytes(4, "big")


def test_hello_is_padded_to_512_bytes_with_zeros() -> None:
    """A HELLO datagram is exactly 512 bytes, its padding zeros, its layout as documented."""
    data = encode(Datagram(Hello(HELLO_WANT_UTF8, Status.ONLINE, bytes(range(24))), 0, ME))
    assert len(data) == MIN_HELLO
    assert data[:28].hex() == "55490100000100000000000000000000000000000000000aaedb01e0"
    assert data[28:30] == b"\x01\x01" and data[30:54] == bytes(range(24)) and data[54] == 0
    assert not any(data[55:-4])


def test_short_hello_is_refused() -> None:
    """A HELLO under 512 bytes (padding stripped) is a protocol error."""
    body = b"\x00\x01" + bytes(24) + b"\x00"
    head = bytes.fromhex("554901000001" + "00" * 8 + "00" * 8 + "000aaedb") + len(body).to_bytes(
        2, "big"
    )
    data = head + body
    data += zlib.crc32(data).to_bytes(4, "big")
    with pytest.raises(UinProtocolError, match="512"):
        decode(data)


def test_nonzero_hello_padding_is_refused() -> None:
    """HELLO padding must be zero bytes."""
    data = bytearray(encode(Datagram(Hello(0, Status.ONLINE, bytes(24)), 0, ME)))
    data[100] = 1
    data[-4:] = zlib.crc32(bytes(data[:-4])).to_bytes(4, "big")
    with pytest.raises(UinProtocolError):
        decode(bytes(data))


def test_mac_datagram_needs_the_right_key() -> None:
    """An authenticated datagram fails its integrity check without the key or with another."""
    data = bytes.fromhex(GOLDEN[4][3])
    with pytest.raises(IntegrityError):
        decode(data)
    with pytest.raises(IntegrityError):
        decode(data, b"x" * 32)


def test_unknown_command_version_and_flags_are_refused() -> None:
    """Unknown command codes, other versions and reserved flag bits are protocol errors."""
    good = bytearray(bytes.fromhex(GOLDEN[3][3]))
    for offset, value in ((5, 0x99), (2, 2), (3, 0x02), (0, 0x41)):
        bad = bytearray(good)
        bad[offset] = value
        with pytest.raises(UinProtocolError):
            peek(bytes(bad))


def test_oversized_datagram_is_refused() -> None:
    """Anything over 1200 bytes is refused before parsing."""
    with pytest.raises(UinProtocolError, match="1200"):
        peek(b"UI\x01" + bytes(MAX_DATAGRAM))


def test_every_command_has_a_body_class() -> None:
    """The command table is complete: every Command code has a payload class."""
    from adapters.uin.codec import Command

    assert set(BODIES) == set(Command)


# ---- hypothesis ------------------------------------------------------------------

u32 = st.integers(0, 0xFFFFFFFF)
u16 = st.integers(0, 0xFFFF)
small = st.binary(max_size=40)
statuses = st.sampled_from(Status)
charsets = st.sampled_from(Charset)
errors = st.sampled_from(ErrorCode)

BODY_STRATEGIES: list[st.SearchStrategy[Body]] = [
    st.builds(
        Hello,
        st.integers(0, 3),
        statuses,
        st.binary(min_size=24, max_size=24),
        st.binary(max_size=32),
    ),
    st.builds(HelloVerify, st.binary(min_size=1, max_size=32)),
    st.builds(
        Challenge,
        charsets,
        u32,
        st.binary(min_size=1, max_size=64),
        st.binary(min_size=24, max_size=24),
    ),
    st.builds(Login, st.binary(min_size=32, max_size=32)),
    st.builds(LoginOk, charsets, u16, u16, u16),
    st.builds(Refused, errors),
    st.builds(
        RegChallenge,
        charsets,
        st.binary(min_size=24, max_size=24),
        st.binary(min_size=256, max_size=256),
    ),
    st.builds(
        Register,
        st.binary(min_size=256, max_size=256),
        st.binary(max_size=300),
        st.binary(min_size=16, max_size=16),
    ),
    st.builds(Registered, u32, st.binary(min_size=16, max_size=16)),
    st.builds(Ack, u32),
    st.just(Ping()),
    st.just(Logout()),
    st.builds(Goodbye, errors),
    st.builds(ContactAdd, u32, small),
    st.builds(ContactRemove, u32),
    st.just(ContactListGet()),
    st.builds(
        ContactList,
        st.booleans(),
        st.lists(st.builds(ContactItem, u32, st.integers(0, 15), statuses, small), max_size=8).map(
            tuple
        ),
    ),
    st.builds(AuthRequest, u32, small),
    st.builds(AuthReply, u32, st.booleans(), small),
    st.builds(StatusSet, statuses, small),
    st.builds(PresenceNotice, u32, statuses, small),
    st.integers(1, 32).flatmap(
        lambda n: st.builds(
            MessageFragment,
            u32,
            u32,
            u32,
            st.integers(0, 1),
            charsets,
            st.integers(0, n - 1),
            st.just(n),
            st.binary(max_size=200),
        )
    ),
    st.builds(TypingNotice, u32, st.booleans()),
    st.builds(MessageFailed, u32, u32, errors),
    st.builds(Search, u16, small),
    st.builds(
        SearchResult,
        u16,
        st.booleans(),
        st.lists(st.builds(SearchItem, u32, small), max_size=8).map(tuple),
    ),
]
datagrams = st.builds(
    Datagram,
    st.one_of(BODY_STRATEGIES),
    st.integers(0, 2**64 - 1),
    u32,
    u32,
    u32,
)
keys = st.one_of(st.none(), st.binary(min_size=32, max_size=32))


@settings(max_examples=200)
@given(datagrams, keys)
def test_decode_inverts_encode(datagram: Datagram, key: bytes | None) -> None:
    """decode(encode(x)) == x for every command, with and without a MAC."""
    assert decode(encode(datagram, key), key) == datagram


@settings(max_examples=200)
@given(st.binary(max_size=1300), keys)
def test_any_bytes_parse_or_raise_protocol_error(data: bytes, key: bytes | None) -> None:
    """Arbitrary bytes either decode or raise UinProtocolError, nothing else."""
    with contextlib.suppress(UinProtocolError):
        decode(data, key)


@settings(max_examples=200)
@given(datagrams, st.binary(min_size=32, max_size=32), st.data())
def test_any_corruption_of_an_authenticated_datagram_is_detected(
    datagram: Datagram, key: bytes, data: st.DataObject
) -> None:
    """Flipping any bit of a MACed datagram makes it fail, never decode to something else."""
    raw = bytearray(encode(datagram, key))
    index = data.draw(st.integers(0, len(raw) - 1))
    raw[index] ^= 1 << data.draw(st.integers(0, 7))
    with pytest.raises(UinProtocolError):
        decode(bytes(raw), key)


@settings(max_examples=100)
@given(st.binary(min_size=28, max_size=1200))
def test_garbage_with_a_valid_header_shape_never_escapes(payload: bytes) -> None:
    """Random payloads behind a plausible header and correct CRC parse or raise cleanly."""
    for command in (0x0001, 0x0003, 0x0023, 0x0040, 0x0051):
        body = payload[:1100]
        head = b"UI\x01\x00" + command.to_bytes(2, "big") + bytes(20) + len(body).to_bytes(2, "big")
        data = head + body
        data += zlib.crc32(data).to_bytes(4, "big")
        with contextlib.suppress(UinProtocolError):
            decode(data)
