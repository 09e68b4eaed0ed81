"""Translation: the HTML subset <-> formatting spans, charsets, status <-> presence."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.oscar import translate as T
from adapters.oscar.errors import OscarProtocolError
from schema.events import FormatSpan, PresenceState, Style


def span(start: int, end: int, style: Style, value: str | None = None) -> FormatSpan:
    return FormatSpan(start=start, end=end, style=style, value=value)


def test_libpurple_html_body_becomes_plain_text() -> None:
    """libpurple's <HTML><BODY>...</BODY></HTML> wrapper disappears."""
    assert T.html_to_text("<HTML><BODY>hello back from irc</BODY></HTML>") == (
        "hello back from irc",
        (),
    )


def test_bold_italic_font_and_entities_become_spans() -> None:
    """<B>, <I>, <FONT COLOR FACE SIZE>, <BR> and &amp; map onto the canonical body."""
    body, spans = T.html_to_text(
        '<html><body><b>bold</b> <i>it</i><br><font color="#FF0000" face="Arial"'
        ' size="4">red</font> &amp; done</body></html>'
    )
    assert body == "bold it\nred & done"
    assert spans == (
        span(0, 4, Style.BOLD),
        span(5, 7, Style.ITALIC),
        span(8, 11, Style.COLOR, "#ff0000"),
        span(8, 11, Style.FONT, "Arial"),
        span(8, 11, Style.SIZE, "14"),
    )


def test_unknown_tags_are_dropped_but_their_text_kept() -> None:
    """<A HREF> and unknown tags leave their text; unclosed tags close at the end."""
    body, spans = T.html_to_text('<a href="http://x">link</a> <blink><u>under')
    assert body == "link under"
    assert spans == (span(5, 10, Style.UNDERLINE),)


def test_named_and_short_colours() -> None:
    """Colour names and #rgb normalise to #rrggbb; junk colours are ignored."""
    assert T.html_to_text('<font color="red">a</font>')[1] == (span(0, 1, Style.COLOR, "#ff0000"),)
    assert T.html_to_text('<font color="#0f0">a</font>')[1] == (span(0, 1, Style.COLOR, "#00ff00"),)
    assert T.html_to_text('<font color="nope">a</font>')[1] == ()


def test_text_to_html_escapes_and_wraps() -> None:
    """Outgoing HTML is wrapped, escaped and newlines become <BR>."""
    assert T.text_to_html("a<b>&\nc") == "<HTML><BODY>a&lt;b&gt;&amp;<BR>c</BODY></HTML>"


def test_icq_senders_plain_text_is_not_parsed_as_html() -> None:
    """An ICQ user's '1 < 2' stays literal unless it opens with <HTML>."""
    assert T.plain_from_wire("1 < 2 <b>", sender_is_icq=True) == ("1 < 2 <b>", ())
    assert T.plain_from_wire("<HTML>x</HTML>", sender_is_icq=True) == ("x", ())


bodies = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\r"), max_size=40
)


@st.composite
def formatted(draw: st.DrawFn) -> tuple[str, tuple[FormatSpan, ...]]:
    body = draw(bodies)
    spans: list[FormatSpan] = []
    for style in Style:
        # At most one run per valued style, so "the later one wins" never applies.
        for _ in range(
            draw(st.integers(0, 1 if style in (Style.COLOR, Style.FONT, Style.SIZE) else 2))
        ):
            a = draw(st.integers(0, len(body)))
            b = draw(st.integers(a, len(body)))
            value = {
                Style.COLOR: draw(st.sampled_from(["#ff0000", "#00aa11", "#123abc"])),
                Style.FONT: draw(st.sampled_from(["Arial", "Times New Roman", "Comic & Co"])),
                Style.SIZE: draw(st.sampled_from(["8", "10", "12", "36"])),
            }.get(style)
            spans.append(span(a, b, style, value))
    return body, T.normalise_spans(spans)


@settings(max_examples=200, deadline=None)
@given(formatted())
def test_html_round_trip(case: tuple[str, tuple[FormatSpan, ...]]) -> None:
    """text -> AIM HTML -> text gives the same body and (normalised) spans."""
    body, spans = case
    assert T.html_to_text(T.text_to_html(body, spans)) == (body, spans)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_any_html_parses(garbage: str) -> None:
    """Arbitrary text never makes the HTML reader fail."""
    body, spans = T.html_to_text(garbage)
    assert all(s.end <= len(body) for s in spans)


@pytest.mark.parametrize(
    ("text", "charset"),
    [("plain", 0x0000), ("café", 0x0003), ("Привет ☃", 0x0002), ("emoji 😀", 0x0002)],
)
def test_narrowest_charset_is_chosen(text: str, charset: int) -> None:
    """ASCII, then ISO-8859-1, then UCS-2BE; decoding gives the text back."""
    got, raw = T.encode_charset(text)
    assert got == charset
    assert T.decode_charset(got, raw) == text


def test_ascii_claim_with_utf8_bytes_is_decoded_as_utf8() -> None:
    """Charset 0 holding UTF-8 (seen from some clients) still reads right."""
    assert T.decode_charset(0, "naïve".encode()) == "naïve"


def test_fragments_round_trip_and_missing_text_is_an_error() -> None:
    """Channel-1 fragments carry the text; without a text fragment it is malformed."""
    assert T.fragments_text(T.build_fragments("Grüße")) == "Grüße"
    with pytest.raises(OscarProtocolError):
        T.fragments_text(bytes.fromhex("05010001 01"))


def test_channel4_block_round_trip() -> None:
    """The little-endian ICQ block decodes to its fields and back."""
    block = T.IcqChannel4(1234567, T.ICQ_MSG_AUTH_REQUEST, 0, T.auth_request_fields("bob", "hi"))
    again = T.IcqChannel4.decode(block.encode())
    assert again == block
    assert T.auth_request_reason(again.fields) == "hi"


@pytest.mark.parametrize(
    ("status", "state"),
    [
        (0x0000, PresenceState.ONLINE),
        (0x0020, PresenceState.ONLINE),
        (0x0001, PresenceState.AWAY),
        (0x0005, PresenceState.IDLE),
        (0x0011, PresenceState.BUSY),
        (0x0013, PresenceState.BUSY),
        (0x0100, PresenceState.INVISIBLE),
        (0x10020000, PresenceState.ONLINE),
    ],
)
def test_icq_status_words(status: int, state: PresenceState) -> None:
    """ICQ status words map onto canonical presence."""
    assert T.presence_from_icq_status(status) is state


@pytest.mark.parametrize("state", [s for s in PresenceState if s is not PresenceState.OFFLINE])
def test_presence_survives_icq_status_round_trip(state: PresenceState) -> None:
    """Each canonical state has an ICQ word that reads back as itself."""
    assert T.presence_from_icq_status(T.icq_status_for(state)) is state


def test_aim_away_message_idle_and_deny_all() -> None:
    """An away message means away; idle time means idle; deny-all means invisible."""
    assert T.presence_from_self(T.SelfStatus(away_message="brb")) == (PresenceState.AWAY, "brb")
    assert T.presence_from_self(T.SelfStatus(idle_seconds=600))[0] is PresenceState.IDLE
    assert T.presence_from_self(T.SelfStatus(deny_all=True))[0] is PresenceState.INVISIBLE


def test_user_info_marks_away_users_and_icq_numbers() -> None:
    """User class: ICQ numbers get the ICQ flag, away users the away flag."""
    tlvs = T.user_info_tlvs("123456", PresenceState.AWAY, 0)
    assert tlvs[0].value == (T.CLASS_ICQ | T.CLASS_AIM | T.CLASS_AWAY).to_bytes(2, "big")
    assert T.user_info_tlvs("bob", PresenceState.ONLINE, 0)[0].value == b"\x00\x10"
