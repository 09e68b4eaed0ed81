"""Faithful text across networks: visible replacement of what a charset lacks
(schema/text.py), splitting that fits each adapter's real wire limit in bytes and never
cuts a character cluster (gateway/splitting.py), and each adapter's outgoing encoder.
The core test runs a real core in-process on the session's real Redis; adapter tests
drive the real Twisted glue over StringTransports / the UIN simulated network."""

from __future__ import annotations

import asyncio
import codecs
import itertools
import unicodedata
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.testing import MemoryReactorClock

from adapters.contract import Delivery, LimitsBody, MeasuresBody
from adapters.msn.codec import SB_MAX_PAYLOAD, Command
from adapters.msn.protocol import MsnService
from adapters.msn.translate import (
    TextContent,
    content_from_payload,
    text_payload_size,
    text_payloads,
)
from adapters.oscar import session as M
from adapters.oscar import snac as S
from adapters.oscar.codec import SnacEvent
from adapters.oscar.protocol import OscarFactory
from adapters.oscar.tlv import find
from adapters.oscar.translate import (
    CHARSET_ASCII,
    CHARSET_LATIN1,
    CHARSET_UCS2BE,
    build_fragments,
    decode_charset,
    encode_icq_text,
    fragments_text,
    html_to_text,
    icbm_text_size,
    normalise_spans,
    parse_fragments,
)
from adapters.uin.codec import Charset
from adapters.uin.translate import (
    MAX_FRAGMENTS,
    MAX_MESSAGE_BYTES,
    decode_text,
    encode_text,
    fragments,
    message_size,
)
from gateway.core import GatewayCore, body_limit_of
from gateway.credentials import SealingKey
from gateway.splitting import BodyLimit, spans_within, split_body, split_message
from gateway.store import Store
from schema.events import FormatSpan, Message, Style
from schema.text import VISIBLE, break_allowed, cut_points, encode_visible, shown_as
from tests.msn.msn_fakes import FakeCore as MsnFakeCore
from tests.msn.test_msn_glue import answer_ring, login
from tests.msn.test_msn_glue import world as world  # fixture
from tests.oscar.test_oscar_glue import CoreDouble, sign_in
from tests.oscar.test_oscar_glue import clock as clock  # fixture
from tests.oscar.test_oscar_glue import core as core  # fixture
from tests.oscar.test_oscar_glue import factory as factory  # fixture
from tests.uin.fakes import LossyNetwork, befriend

KOREAN = "안녕하세요 hello 😀"

# ---- the visible error handler


def test_emoji_is_named_in_a_legacy_charset() -> None:
    """😀 has no place in CP949, Latin-1 or cp1252: it reads [grinning face]."""
    for codec in ("cp949", "latin-1", "cp1252", "ascii"):
        assert "😀".encode(codec, VISIBLE) == b"[grinning face]"
        assert encode_visible("a😀b", codec) == b"a[grinning face]b"


def test_cjk_into_latin1_is_named_per_character() -> None:
    """Korean and Chinese into ISO-8859-1: each character by its Unicode name."""
    assert shown_as("中文", "latin-1") == "[cjk unified ideograph-4e2d][cjk unified ideograph-6587]"
    assert shown_as("안녕", "latin-1") == "[hangul syllable an][hangul syllable nyeong]"


def test_combining_marks_compose_where_they_can_and_are_named_where_not() -> None:
    """e + U+0301 reaches Latin-1 as é; q + U+0301 (no precomposed form) names the mark."""
    assert encode_visible("e\u0301", "latin-1") == "é".encode("latin-1")
    assert shown_as("q\u0301", "latin-1") == "q[combining acute accent]"
    assert encode_visible("e\u0301", "utf-8") == "e\u0301".encode()  # carried as it came


def test_decomposed_hangul_composes_for_cp949() -> None:
    """Conjoining jamo (NFD Hangul, as macOS sends it) become the CP949 syllable."""
    nfd = unicodedata.normalize("NFD", "한국")
    assert encode_visible(nfd, "cp949") == "한국".encode("cp949")


def test_code_points_without_a_name_show_their_number() -> None:
    """A C1 control or a lone surrogate has no name: [U+XXXX]."""
    assert shown_as("\x80", "cp949") == "[U+0080]"
    assert shown_as("\ud83d", "utf-8") == "[U+D83D]"
    assert shown_as("\U000e0fff", "latin-1") == "[U+E0FFF]"


def test_glyphless_joiners_and_selectors_are_left_out_but_skin_tones_named() -> None:
    """VS16 and ZWJ only shape neighbours: left out where unencodable; a skin tone is
    content and is named; in UTF-8 all of them are carried."""
    assert shown_as("\u2764\ufe0f", "cp1252") == "[heavy black heart]"
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    assert shown_as(family, "latin-1") == "[man][woman][girl]"
    assert shown_as("\U0001f44d\U0001f3fd", "cp949") == (
        "[thumbs up sign][emoji modifier fitzpatrick type-4]"
    )
    assert shown_as(family, "utf-8") == family


def test_the_handler_serves_only_encoding() -> None:
    """Decoding with the visible handler is refused (decoding keeps U+FFFD)."""
    with pytest.raises(UnicodeDecodeError):
        b"\xff".decode("utf-8", VISIBLE)
    assert codecs.lookup_error(VISIBLE) is not None


@settings(max_examples=200)
@given(st.text(max_size=40), st.sampled_from(["ascii", "latin-1", "cp1252", "cp949"]))
def test_each_character_is_carried_composed_or_named_in_ascii(text: str, codec: str) -> None:
    """Per character: carried as is (or its NFC form), else a bracketed ASCII stand-in
    (empty only for a glyphless joiner or selector); never a '?' that was not there."""
    for ch in text:
        shown = shown_as(ch, codec)
        if shown in (ch, unicodedata.normalize("NFC", ch)):
            continue
        assert shown.isascii() and "?" not in shown
        assert (shown.startswith("[") and shown.endswith("]")) or (
            shown == "" and unicodedata.category(ch) in ("Mn", "Cf")
        )


@settings(max_examples=200)
@given(st.text(max_size=30), st.text(max_size=30), st.sampled_from(["latin-1", "cp949"]))
def test_encoding_is_concatenative_at_allowed_cuts(a: str, b: str, codec: str) -> None:
    """Pieces cut where cut_points allows encode to the whole's bytes (splitters rely
    on it)."""
    if break_allowed(a + b, len(a)):
        assert encode_visible(a + b, codec) == encode_visible(a, codec) + encode_visible(b, codec)


@given(st.text(max_size=60))
def test_cut_points_agree_with_break_allowed(text: str) -> None:
    """The one-pass table and the single-index rule say the same."""
    assert cut_points(text) == [break_allowed(text, i) for i in range(len(text) + 1)]


@pytest.mark.parametrize(
    ("text", "inside"),
    [
        ("e\u0301", 1),  # before a combining mark
        ("\U0001f468\u200d\U0001f469", 1),  # before ZWJ
        ("\U0001f468\u200d\U0001f469", 2),  # after ZWJ
        ("\u2764\ufe0f", 1),  # before a variation selector
        ("\U0001f44d\U0001f3fd", 1),  # before a skin tone
        ("\U0001f1f0\U0001f1f7", 1),  # inside one flag
        ("\r\n", 1),
        ("\u1112\u1161\u11ab", 1),  # inside a jamo syllable
        ("\u1112\u1161\u11ab", 2),
    ],
)
def test_no_cut_inside_a_cluster(text: str, inside: int) -> None:
    """The places a cut would break a character apart are refused."""
    assert not break_allowed(text, inside)


def test_flags_pair_up() -> None:
    """Regional indicators pair from the left: a cut between two flags, not inside."""
    flags = "\U0001f1f0\U0001f1f7\U0001f1ef\U0001f1f5"
    assert [break_allowed(flags, i) for i in range(5)] == [True, False, True, False, True]


# ---- the splitter


def _message(body: str, spans: tuple[FormatSpan, ...] = ()) -> Message:
    return Message(sender="uin:1", recipient="uin:2", body=body, spans=spans)


@st.composite
def bodies_with_spans(draw: st.DrawFn) -> tuple[str, tuple[FormatSpan, ...]]:
    alphabet = st.sampled_from(
        [*"ab \n\r가é", "\u0301", "\u200d", "\ufe0f", "\U0001f600", "\U0001f1f0"]
    )
    body = draw(st.text(alphabet=alphabet, max_size=120) | st.text(max_size=80))
    spans = []
    for _ in range(draw(st.integers(0, 3))):
        start = draw(st.integers(0, len(body)))
        end = draw(st.integers(start, len(body)))
        spans.append(FormatSpan(start=start, end=end, style=Style.BOLD))
    return body, tuple(spans)


@settings(max_examples=300)
@given(
    bodies_with_spans(),
    st.dictionaries(st.characters(), st.integers(0, 9), max_size=20),
    st.integers(1, 9),
    st.integers(0, 4),
    st.integers(0, 40),
    st.one_of(st.none(), st.integers(1, 30)),
)
def test_split_parts_fit_keep_order_and_lose_nothing(
    case: tuple[str, tuple[FormatSpan, ...]],
    weights: dict[str, int],
    default: int,
    span_cost: int,
    slack: int,
    max_chars: int | None,
) -> None:
    """Any body under any monotone byte measure: parts concatenate to the body, in
    order, ids <id>.<n>, each part fits, spans re-based; no cut inside a cluster when
    every cluster fits."""
    body, spans = case

    def measure(text: str, part_spans: tuple[FormatSpan, ...]) -> int:
        return sum(weights.get(c, default) for c in text) + span_cost * len(part_spans)

    # Room for any one code point with all its spans: nothing is ever over the limit.
    limit = max([default, *weights.values()]) + span_cost * len(spans) + slack
    bound = BodyLimit(max_chars=max_chars, max_size=limit, measure=measure)
    message = _message(body, spans)
    parts = split_message(message, bound)
    assert "".join(p.body for p in parts) == body
    whole = parts == [message] and parts[0] is message  # fitted as it was
    if not whole:
        assert [p.id for p in parts] == [f"{message.id}.{n}" for n in range(len(parts))]
        assert all(p.body for p in parts)
    assert all(bound.fits(p.body, p.spans) for p in parts)
    start = 0
    for part in () if whole else parts:
        assert part.spans == spans_within(spans, start, start + len(part.body))
        start += len(part.body)
    allowed = cut_points(body)
    clusters_fit = all(
        bound.fits(body[a:b], spans_within(spans, a, b)) for a, b in _clusters(allowed)
    )
    if clusters_fit:
        offset = 0
        for part in parts[:-1]:
            offset += len(part.body)
            assert allowed[offset], (body, offset)


def _clusters(allowed: list[bool]) -> list[tuple[int, int]]:
    cuts = [i for i, ok in enumerate(allowed) if ok]
    return list(itertools.pairwise(cuts))


def test_split_prefers_whitespace_in_the_last_fifth() -> None:
    """A part ends after a space near its end rather than in the middle of a word."""
    parts = split_body(_message("aaaa aaaaaaaaa bbbbb"), 16)
    assert [p.body for p in parts] == ["aaaa aaaaaaaaa ", "bbbbb"]
    parts = split_body(_message("aaaa bbbbbbbbbbbbbbbbbbbb"), 16)
    assert [p.body for p in parts] == ["aaaa bbbbbbbbbbb", "bbbbbbbbb"]  # space too early


def test_split_moves_back_to_keep_a_cluster_whole() -> None:
    """A cut that would fall inside e + U+0301 or a ZWJ family moves before it."""
    parts = split_body(_message("abce\u0301"), 4)
    assert [p.body for p in parts] == ["abc", "e\u0301"]
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    parts = split_body(_message("ab" + family), 5)
    assert [p.body for p in parts] == ["ab", family]


def test_a_cluster_longer_than_a_part_is_cut_between_code_points() -> None:
    """Delivering beats refusing: 9 marks on one base with a limit of 4 chars."""
    zalgo = "a" + "\u0301" * 9
    parts = split_body(_message(zalgo), 4)
    assert "".join(p.body for p in parts) == zalgo and all(len(p.body) <= 4 for p in parts)


def test_spans_follow_their_text_into_each_part() -> None:
    """A bold span over characters 5..15 cut at 10 is bold 5..10 then 0..5."""
    spans = (
        FormatSpan(start=5, end=15, style=Style.BOLD),
        FormatSpan(start=0, end=20, style=Style.COLOR, value="#ff0000"),
    )
    parts = split_body(_message("x" * 20, spans), 10)
    assert [p.spans for p in parts] == [
        (
            FormatSpan(start=5, end=10, style=Style.BOLD),
            FormatSpan(start=0, end=10, style=Style.COLOR, value="#ff0000"),
        ),
        (
            FormatSpan(start=0, end=5, style=Style.BOLD),
            FormatSpan(start=0, end=10, style=Style.COLOR, value="#ff0000"),
        ),
    ]


# ---- each adapter's outgoing encoder, Korean + English + emoji


def test_uin_cp949_keeps_korean_and_names_the_emoji() -> None:
    """CP949 session: Korean as CP949 bytes, the emoji as [grinning face]."""
    wire = encode_text(KOREAN, Charset.CP949)
    assert wire == "안녕하세요 hello [grinning face]".encode("cp949")
    assert decode_text(wire, Charset.CP949) == "안녕하세요 hello [grinning face]"


def test_uin_utf8_session_keeps_everything() -> None:
    """A UTF-8 session gets the text intact."""
    assert encode_text(KOREAN, Charset.UTF8) == KOREAN.encode()


def test_iso_8859_1_names_korean_visibly() -> None:
    """ISO-8859-1 (OSCAR charset 3, AIM profiles) cannot hold Hangul: each syllable
    reads by name; the English stays."""
    assert shown_as(KOREAN, "iso-8859-1") == (
        "[hangul syllable an][hangul syllable nyeong][hangul syllable ha]"
        "[hangul syllable se][hangul syllable yo] hello [grinning face]"
    )


def test_oscar_channel1_picks_ascii_latin1_then_ucs2_with_surrogate_pairs() -> None:
    """ASCII when it can, ISO-8859-1 next, else UCS-2BE where 😀 is the UTF-16 pair
    D83D DE00 (libpurple/Miranda/BitlBee show the emoji; ADR 0006)."""
    for text, charset in (("hello", CHARSET_ASCII), ("café", CHARSET_LATIN1)):
        (part,) = parse_fragments(build_fragments(text))[1]
        assert part.charset == charset and decode_charset(charset, part.raw) == text
    (part,) = parse_fragments(build_fragments(KOREAN))[1]
    assert part.charset == CHARSET_UCS2BE
    assert part.raw.endswith(b"\xd8\x3d\xde\x00")
    assert fragments_text(build_fragments(KOREAN)) == KOREAN


def test_oscar_ucs2_odd_byte_shows_as_replacement_not_dropped() -> None:
    """A dangling odd byte of UCS-2BE text reads as U+FFFD instead of vanishing."""
    assert decode_charset(CHARSET_UCS2BE, b"\x00a\x00") == "a\ufffd"


def test_icq_cp1252_paths_name_what_cp1252_lacks() -> None:
    """Channel 4 and offline texts (cp1252): Korean and emoji by name, never '?'."""
    raw = encode_icq_text(KOREAN)
    assert raw.endswith(b"\0") and b"?" not in raw
    assert raw[:-1].decode("cp1252").endswith(" hello [grinning face]")
    assert raw.startswith(b"[hangul syllable an]")


def test_msn_utf8_keeps_everything() -> None:
    """MSN is UTF-8: the text arrives intact."""
    (payload,) = text_payloads(_message(KOREAN))
    content = content_from_payload(payload)
    assert isinstance(content, TextContent) and content.body == KOREAN
    assert text_payload_size(KOREAN) == len(payload)


# ---- a long message through each adapter's real limit

LONG_PIECES = [
    "안녕하세요 ",
    "hello world ",
    "😀 ",
    "\U0001f468\u200d\U0001f469\u200d\U0001f467",
    "e\u0301 ",
    "\U0001f1f0\U0001f1f7",
    "<b>&amp; ",
    "café\n",
    "\u2764\ufe0f ",
    "\U0001f44d\U0001f3fd",
]


def long_mixed_text(chars: int = 10_000) -> str:
    out: list[str] = []
    total, i = 0, 0
    while total < chars:
        piece = LONG_PIECES[(i * 7) % len(LONG_PIECES)]
        out.append(piece)
        total += len(piece)
        i += 1
    return "".join(out)


def test_long_message_fits_uin_in_every_charset() -> None:
    """10k mixed characters: every part is at most 32 fragments when really encoded."""
    text = long_mixed_text()
    for charset in (Charset.CP949, Charset.UTF8):

        def measure(body: str, _spans: tuple[FormatSpan, ...], c: Charset = charset) -> int:
            return message_size(body, c)

        bound = BodyLimit(max_chars=8000, max_size=MAX_MESSAGE_BYTES, measure=measure)
        parts = split_message(_message(text), bound)
        assert len(parts) > 1 and "".join(p.body for p in parts) == text
        for part in parts:
            frags = fragments(1, 1, part.body, charset)  # raises past 32 fragments
            assert len(frags) <= MAX_FRAGMENTS
        wire = b"".join(f.text for p in parts for f in fragments(1, 1, p.body, charset))
        assert wire == encode_text(text, charset)


def test_long_message_fits_msn_switchboard() -> None:
    """10k mixed characters with whole-message bold: each part is one MSG of at most
    1664 bytes (headers included), still bold, and they read back as the text."""
    text = long_mixed_text()
    spans = (FormatSpan(start=0, end=len(text), style=Style.BOLD),)
    bound = BodyLimit(max_size=SB_MAX_PAYLOAD, measure=text_payload_size)
    parts = split_message(_message(text, spans), bound)
    read = []
    for part in parts:
        (payload,) = text_payloads(part)
        assert len(payload) <= SB_MAX_PAYLOAD and b"EF=B" in payload
        content = content_from_payload(payload)
        assert isinstance(content, TextContent)
        read.append(content.body)
    assert "".join(read) == text.replace("\r\n", "\n")


@pytest.mark.parametrize("to_icq", [False, True])
def test_long_message_fits_one_icbm(to_icq: bool) -> None:
    """10k mixed characters (HTML-escaped for AIM, with partial spans): every part's
    channel-1 text is at most MAX_ICBM_TEXT bytes, so nothing is cut or unformatted."""
    text = long_mixed_text()
    spans = (
        FormatSpan(start=3, end=2500, style=Style.ITALIC),
        FormatSpan(start=4000, end=9000, style=Style.COLOR, value="#00ff00"),
    )
    bound = BodyLimit(
        max_chars=1024,
        max_size=M.MAX_ICBM_TEXT,
        measure=lambda body, part_spans: icbm_text_size(body, part_spans, to_icq),
    )
    parts = split_message(_message(text, spans), bound)
    assert "".join(p.body for p in parts) == text
    for part in parts:
        assert icbm_text_size(part.body, part.spans, to_icq) <= M.MAX_ICBM_TEXT


# ---- the real links: the glue measures what it writes


def _icbm_texts(wire_events: Sequence[object]) -> list[tuple[int, bytes]]:
    out = []
    for event in wire_events:
        if isinstance(event, SnacEvent) and isinstance(event.snac.body, S.IcbmToClient):
            data = find(event.snac.body.tlvs, 2)
            assert data is not None
            (part,) = parse_fragments(data)[1]
            out.append((part.charset, part.raw))
    return out


@pytest.mark.parametrize(("name", "password"), [("alice", "pw-a"), ("123456", "pw-i")])
def test_oscar_link_splits_to_what_it_really_writes(
    factory: OscarFactory, core: CoreDouble, name: str, password: str
) -> None:
    """An AIM and an ICQ client each get a long formatted message as 04/07 ICBMs whose
    text fits MAX_ICBM_TEXT, in order, with every character and the formatting."""
    core.passwords[f"oscar:{name}"] = password
    bos = sign_in(factory, name, password)
    link = core.links[f"oscar:{name}"]
    assert isinstance(link, MeasuresBody) and isinstance(link, LimitsBody)
    assert link.max_body_size == M.MAX_ICBM_TEXT
    text = long_mixed_text().replace("\r", "")
    spans = (FormatSpan(start=10, end=3000, style=Style.BOLD),)
    message = Message(sender="oscar:bob", recipient=f"oscar:{name}", body=text, spans=spans)
    parts = split_message(message, body_limit_of(link))
    assert len(parts) > 1
    bos.read()
    for part in parts:
        assert link.deliver(Delivery(part, "bob"))
    written = _icbm_texts(bos.read())
    assert len(written) == len(parts)
    bodies = []
    for (charset, raw), part in zip(written, parts, strict=True):
        assert len(raw) <= M.MAX_ICBM_TEXT
        assert len(raw) == link.body_size(part.body, part.spans)
        shown = decode_charset(charset, raw)
        if name.isdigit():
            bodies.append(shown)
        else:
            body, got_spans = html_to_text(shown)
            assert got_spans == normalise_spans(part.spans)
            bodies.append(body)
    assert "".join(bodies) == text


def test_msn_link_splits_to_what_it_really_writes(
    world: tuple[MsnFakeCore, MsnService, MemoryReactorClock],
) -> None:
    """An MSN client gets a long message as MSGs of at most 1664 bytes, in order."""
    fake_core, service, _ = world
    bob = login(service, "bob")
    link = next(s.link for s in fake_core.sessions.values() if s.address == "msn:bob@example.com")
    assert isinstance(link, LimitsBody) and isinstance(link, MeasuresBody)
    assert link.max_body_size == SB_MAX_PAYLOAD
    text = long_mixed_text(6000).replace("\r", "")
    message = Message(sender="msn:alice@example.com", recipient="msn:bob@example.com", body=text)
    parts = split_message(message, body_limit_of(link))
    assert 1 < len(parts) < 32  # one invitation queues up to 32
    for part in parts:
        assert link.deliver(Delivery(part, "alice@example.com", "Alice"))
    _, frames = answer_ring(service, bob, "bob")
    payloads = [f.payload for f in frames if isinstance(f, Command) and f.verb == "MSG"]
    assert len(payloads) == len(parts)
    read = []
    for payload in payloads:
        assert payload is not None and len(payload) <= SB_MAX_PAYLOAD
        content = content_from_payload(payload)
        assert isinstance(content, TextContent)
        read.append(content.body)
    assert "".join(read) == text


@pytest.mark.parametrize("want_utf8", [False, True])
def test_uin_link_splits_to_what_it_really_writes(want_utf8: bool) -> None:
    """A UIN client (CP949 or UTF-8) gets a long message in parts that each travel as
    one message; what it reads is the text (emoji named for CP949)."""
    net = LossyNetwork(seed=3)
    a_addr = net.core.add_account(700123, "pw-a")
    b_addr = net.core.add_account(700456, "pw-b")
    befriend(net.core, a_addr, b_addr)
    b = net.client(700456, "pw-b", want_utf8=want_utf8)
    net.login(b)
    link = next(s.link for s in net.core.sessions.values() if s.address == b_addr)
    assert isinstance(link, MeasuresBody) and link.max_body_size == MAX_MESSAGE_BYTES
    text = long_mixed_text(20_000).replace("\r", "")
    message = Message(sender=a_addr, recipient=b_addr, body=text)
    parts = split_message(message, body_limit_of(link))
    assert len(parts) > 1
    for part in parts:
        assert link.deliver(Delivery(part, "700123"))
    assert net.run(120, lambda: len(b.of_kind("message")) >= len(parts))
    got = "".join(str(m["text"]) for m in b.of_kind("message"))
    assert got == (text if want_utf8 else shown_as(text, "cp949"))


# ---- the core: a measuring link gets parts, in order (real Redis)


class MeasuringLink:
    """A link with a byte limit in UTF-8 (stands in for a client socket)."""

    max_body_size = 100

    def __init__(self) -> None:
        self.got: list[Delivery] = []

    def deliver(self, delivery: Delivery) -> bool:
        self.got.append(delivery)
        return True

    def body_size(self, body: str, spans: tuple[FormatSpan, ...] = ()) -> int:
        return len(body.encode("utf-8", "surrogatepass"))


def test_core_splits_for_a_measuring_link(redis_url: str) -> None:
    """The core cuts a message for a MeasuresBody link into parts that each measure
    within its limit, in order, keeping formatting re-based."""
    sealing = SealingKey(b"s" * 32)

    async def scenario() -> None:
        store = Store.open(redis_url, sealing)
        core = GatewayCore(store, sealing, "node-text")
        try:
            await core.start()
            await store.accounts.create("uin", "700001", "pw", "A")
            await store.accounts.create("uin", "700002", "pw", "B")
            link = MeasuringLink()
            await core.open_session("uin:700002", link)
            body = ("안녕하세요 hello 😀 " * 20).strip()
            spans = (FormatSpan(start=0, end=len(body), style=Style.BOLD),)
            await core.submit(
                Message(sender="uin:700001", recipient="uin:700002", body=body, spans=spans)
            )
            parts = [d.event for d in link.got if isinstance(d.event, Message)]
            assert len(parts) > 1 and "".join(p.body for p in parts) == body
            for part in parts:
                assert len(part.body.encode()) <= MeasuringLink.max_body_size
                assert part.spans == (FormatSpan(start=0, end=len(part.body), style=Style.BOLD),)
        finally:
            await core.stop()
            await store.close()

    asyncio.run(scenario())
