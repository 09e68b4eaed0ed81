"""Charsets, splitting and reassembly, presence and failure mapping."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.uin.codec import Charset, MessageFragment, Status, UinProtocolError
from adapters.uin.translate import (
    MAX_FRAGMENT_BYTES,
    Reassembler,
    decode_text,
    encode_limited,
    encode_text,
    failure_code,
    fragments,
    presence_from_canonical,
    presence_to_canonical,
    split_text,
)
from schema.events import FailureReason, PresenceState

hangul = st.text(alphabet=st.characters(min_codepoint=0xAC00, max_codepoint=0xD7A3), max_size=300)
cp949_text = st.text(
    alphabet=st.sampled_from("가나다라마바사아자차카타파하 abcXYZ0123!?,.한국어ㅋㅎ"), max_size=400
)


def test_korean_is_cp949_bytes() -> None:
    """'안녕' is be c8 b3 e7 in CP949, as in KS X 1001 / EUC-KR."""
    assert encode_text("안녕", Charset.CP949) == bytes.fromhex("bec8b3e7")
    assert decode_text(bytes.fromhex("bec8b3e7"), Charset.CP949) == "안녕"


def test_cp949_covers_hangul_beyond_euc_kr() -> None:
    """CP949 (not plain EUC-KR) encodes every modern Hangul syllable, e.g. '똠'."""
    assert decode_text(encode_text("똠방각하", Charset.CP949), Charset.CP949) == "똠방각하"


def test_unencodable_characters_are_named_and_bad_bytes_replacement() -> None:
    """Emoji cannot be CP949: shown by name; invalid CP949 bytes decode to U+FFFD."""
    assert encode_text("좋아 😀", Charset.CP949) == "좋아 [grinning face]".encode("cp949")
    assert "\ufffd" in decode_text(b"\xff\xfe", Charset.CP949)


def test_encode_limited_never_cuts_a_character() -> None:
    """Limiting to 5 bytes keeps two 2-byte syllables, never half of the third."""
    assert encode_limited("가나다", Charset.CP949, 5) == "가나".encode("cp949")
    assert encode_limited("가나다", Charset.UTF8, 7) == "가나".encode()


@settings(max_examples=150)
@given(st.one_of(hangul, cp949_text), st.sampled_from(Charset), st.integers(4, 1200))
def test_split_then_join_gives_back_the_text(text: str, charset: Charset, size: int) -> None:
    """Any text split at any size rejoins to itself; each piece decodes alone and fits."""
    pieces = split_text(text, charset, size)
    assert all(len(p) <= size for p in pieces)
    assert "".join(decode_text(p, charset) for p in pieces) == text
    assert b"".join(pieces) == encode_text(text, charset)


@settings(max_examples=150)
@given(st.one_of(hangul, cp949_text), st.sampled_from(Charset), st.integers(4, 600))
def test_fragments_reassemble_to_the_same_message(text: str, charset: Charset, size: int) -> None:
    """MESSAGE fragments fed in order produce exactly one whole message, the original."""
    parts = fragments(700456, 9, text, charset, time=5, max_bytes=size)
    if len(parts) > 32:
        return
    r = Reassembler()
    results = [r.feed(p) for p in parts]
    assert all(x is None for x in results[:-1])
    whole = results[-1]
    assert whole is not None and whole.text == text and whole.msg_id == 9 and whole.uin == 700456
    assert not r.pending


def test_too_long_message_is_refused_when_split() -> None:
    """More than 32 fragments' worth of text is a ValueError for the sender."""
    with pytest.raises(ValueError):
        fragments(1, 1, "가" * (MAX_FRAGMENT_BYTES * 17), Charset.CP949)


def test_fragment_out_of_order_is_a_protocol_error() -> None:
    """A fragment that does not continue the current message breaks the protocol."""
    r = Reassembler()
    with pytest.raises(UinProtocolError):
        r.feed(MessageFragment(1, 1, 0, 0, Charset.CP949, 1, 2, b"x"))
    r.feed(MessageFragment(1, 1, 0, 0, Charset.CP949, 0, 2, b"x"))
    with pytest.raises(UinProtocolError):
        r.feed(MessageFragment(1, 2, 0, 0, Charset.CP949, 1, 2, b"x"))


def test_presence_maps_both_ways() -> None:
    """Every wire status maps to a canonical presence and back."""
    for status in Status:
        assert presence_from_canonical(presence_to_canonical(status)) is status
    assert presence_to_canonical(Status.BUSY) is PresenceState.BUSY


def test_every_failure_reason_has_a_wire_code() -> None:
    """Each canonical failure reason has its own UIN error code."""
    codes = {failure_code(r) for r in FailureReason}
    assert len(codes) == len(FailureReason)
