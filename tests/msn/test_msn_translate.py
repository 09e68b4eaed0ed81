"""MSN content <-> canonical events: X-MMS-IM-Format, typing, splitting, names, presence."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.msn.codec import SB_MAX_PAYLOAD, MsnProtocolError
from adapters.msn.translate import (
    ImFormat,
    TextContent,
    TypingContent,
    contact_name,
    content_from_payload,
    decode_name,
    encode_name,
    format_im_format,
    parse_im_format,
    parse_mime,
    presence_from_msn,
    presence_to_msn,
    text_payloads,
    typing_payload,
)
from schema.events import FormatSpan, Message, PresenceState, Style
from tests.msn.msn_fakes import load_vector

VECTOR = load_vector("msnp8-msnp.py-session.txt")


def test_text_from_msnp_py() -> None:
    """msnp.py's text MSG (charset=utf-8 in lower case) is a message without formatting."""
    line = next(x for x in VECTOR if x.text.startswith("MSG 4 N"))
    assert line.payload is not None
    assert content_from_payload(line.payload) == TextContent("hello from msnp.py", ())


def test_typing_from_msnp_py() -> None:
    """msnp.py's text/x-msmsgscontrol MSG is a typing notice naming the typist."""
    line = next(x for x in VECTOR if x.text.startswith("MSG 3 U"))
    assert line.payload is not None
    assert content_from_payload(line.payload) == TypingContent("test1@example.com")


def test_formatted_text_from_the_capture() -> None:
    """X-MMS-IM-Format FN=Arial; EF=; CO=0 gives a whole-body font span and nothing else."""
    line = next(x for x in VECTOR if x.payload and b"hello back" in x.payload)
    assert line.payload is not None
    content = content_from_payload(line.payload)
    assert content == TextContent(
        "hello back", (FormatSpan(start=0, end=10, style=Style.FONT, value="Arial"),)
    )


def test_format_effects_and_bgr_colour() -> None:
    """EF=BIU and CO=bbggrr (leading zeros dropped) map to styles and #rrggbb."""
    fmt = parse_im_format("FN=MS%20Sans%20Serif; EF=BIU; CO=ff; CS=0; PF=0")
    assert fmt == ImFormat("MS Sans Serif", True, True, True, "#ff0000")
    assert format_im_format(fmt) == "FN=MS%20Sans%20Serif; EF=BIU; CO=ff; CS=0; PF=22"


def test_partial_spans_are_dropped_whole_spans_kept() -> None:
    """MSN formats whole messages: only spans over the whole body cross."""
    message = Message(
        sender="msn:a@b.com",
        recipient="msn:c@d.com",
        body="hi there",
        spans=(
            FormatSpan(start=0, end=2, style=Style.ITALIC),
            FormatSpan(start=0, end=8, style=Style.BOLD),
            FormatSpan(start=0, end=8, style=Style.COLOR, value="#00ff00"),
        ),
    )
    (payload,) = text_payloads(message)
    assert b"X-MMS-IM-Format: FN=Arial; EF=B; CO=ff00; CS=0; PF=22\r\n" in payload
    content = content_from_payload(payload)
    assert isinstance(content, TextContent) and content.body == "hi there"
    assert {s.style for s in content.spans} == {Style.BOLD, Style.COLOR, Style.FONT}


def test_long_messages_split_to_fit_the_switchboard() -> None:
    """A body larger than one MSG becomes several payloads of at most 1664 bytes."""
    body = "é" * 3000
    message = Message(sender="msn:a@b.com", recipient="msn:c@d.com", body=body)
    payloads = text_payloads(message)
    assert len(payloads) > 1 and all(len(p) <= SB_MAX_PAYLOAD for p in payloads)
    texts = [content_from_payload(p) for p in payloads]
    assert "".join(t.body for t in texts if isinstance(t, TextContent)) == body


@settings(max_examples=100)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=900))
def test_message_bodies_round_trip(body: str) -> None:
    """Any body survives translation to MSG payloads and back (line ends as LF)."""
    body = body.replace("\r", "")
    message = Message(sender="msn:a@b.com", recipient="msn:c@d.com", body=body)
    texts = [content_from_payload(p) for p in text_payloads(message)]
    assert "".join(t.body for t in texts if isinstance(t, TextContent)) == body


def test_typing_payload_reads_back() -> None:
    """Our typing payload is what msnp.py sends."""
    assert content_from_payload(typing_payload("a@b.com")) == TypingContent("a@b.com")


def test_other_content_types_have_no_canonical_form() -> None:
    """Invitations and P2P data are not messages."""
    payload = b"MIME-Version: 1.0\r\nContent-Type: text/x-msmsgsinvite; charset=UTF-8\r\n\r\nx"
    assert content_from_payload(payload) is None


def test_payload_without_headers_is_a_protocol_error() -> None:
    """A MSG payload with no header block is refused."""
    with pytest.raises(MsnProtocolError):
        parse_mime(b"just text")


@settings(max_examples=100)
@given(st.binary(max_size=300))
def test_garbage_payloads(data: bytes) -> None:
    """Any payload parses or raises MsnProtocolError."""
    with contextlib.suppress(MsnProtocolError):
        content_from_payload(data)


def test_names_are_url_encoded_and_bounded() -> None:
    """Friendly names travel URL-encoded, at most 387 bytes, and decode back."""
    assert encode_name("Test One") == "Test%20One"
    assert decode_name(encode_name("100% ünïcode")) == "100% ünïcode"
    assert len(encode_name("ü" * 500)) <= 387


def test_other_networks_show_in_display_names() -> None:
    """A contact from another network says so in its display name."""
    assert contact_name("oscar:12345", "Bob") == "Bob [ICQ/AIM]"
    assert contact_name("oscar:12345", "Bob [ICQ/AIM]") == "Bob [ICQ/AIM]"
    assert contact_name("uin:700123", "") == "700123 [UIN]"
    assert contact_name("msn:a@b.com", "Al") == "Al"


@pytest.mark.parametrize(
    ("code", "state"),
    [
        ("NLN", PresenceState.ONLINE),
        ("BSY", PresenceState.BUSY),
        ("AWY", PresenceState.AWAY),
        ("BRB", PresenceState.AWAY),
        ("IDL", PresenceState.IDLE),
        ("HDN", PresenceState.INVISIBLE),
    ],
)
def test_presence_codes(code: str, state: PresenceState) -> None:
    """MSN status codes map to canonical presence states."""
    assert presence_from_msn(code) is state


def test_presence_back_to_msn() -> None:
    """Canonical states map back to MSN codes; FLN is not a state a client may set."""
    assert presence_to_msn(PresenceState.OFFLINE) == "FLN"
    assert presence_to_msn(PresenceState.AWAY) == "AWY"
    assert presence_from_msn("FLN") is None
