"""Text that a legacy charset cannot carry, shown visibly; where text may be cut.

Theory of operation
-------------------
The canonical body is Unicode and is the truth. On the way to a client whose charset
lacks a character (CP949, ISO-8859-1, Windows-1252...), the character is replaced by a
*visible, unambiguous* ASCII stand-in instead of ``?``: ``[<unicode name in lower
case>]`` (😀 -> ``[grinning face]``), or ``[U+XXXX]`` for a code point without a name
(controls, unassigned, lone surrogates). The stand-in is ASCII, so every
ASCII-compatible target can carry it.

Two kinds of code point have no glyph of their own and only change how their
neighbours are drawn: the variation selectors (U+FE00..U+FE0F, U+E0100..U+E01EF, e.g.
U+FE0F "emoji presentation") and U+200D ZERO WIDTH JOINER. Where the target cannot
carry them they are left out: the characters they decorate or join are themselves
kept or named, so nothing a reader could see is lost (``❤️`` into Latin-1 reads
``[heavy black heart]``, not ``[heavy black heart][variation selector-16]``). Skin-tone
modifiers (U+1F3FB..U+1F3FF) do carry meaning and are named like any character.

Before the error handler runs, :func:`encode_visible` composes (NFC) each cluster the
target cannot carry as it stands, so a decomposed ``e`` + U+0301 reaches a Latin-1
client as ``é``; only such clusters are touched, so text the target carries goes out
byte for byte as it came in.

Encoding is per code point after that step (every codec used here is stateless), so
``encode_visible(a + b) == encode_visible(a) + encode_visible(b)`` whenever ``a`` ends
on a :func:`break_allowed` boundary: splitters may encode piece by piece.

:func:`break_allowed` (and :func:`cut_points`, the same for every index in one
linear pass) is a small, conservative subset of Unicode's extended grapheme
cluster rules (UAX #29): never between CR and LF, before a combining or spacing mark,
a variation selector, ZWJ, an emoji modifier or a tag character, after ZWJ, inside a
pair of regional indicators (one flag), or inside a Hangul jamo syllable.

Pure: stdlib only.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from functools import lru_cache

VISIBLE = "visible"
"""The name of the codec error handler this module registers."""

ZWJ = "\u200d"


def _is_variation_selector(cp: int) -> bool:
    return 0xFE00 <= cp <= 0xFE0F or 0xE0100 <= cp <= 0xE01EF


def _no_glyph(ch: str) -> bool:
    """Code points that only shape their neighbours (left out when unencodable)."""
    return ch == ZWJ or _is_variation_selector(ord(ch))


def visible_replacement(ch: str) -> str:
    """The ASCII stand-in for one code point a target charset lacks."""
    if _no_glyph(ch):
        return ""
    name = unicodedata.name(ch, "")
    if name:
        return f"[{name.lower()}]"
    return f"[U+{ord(ch):04X}]"


def _visible_errors(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeEncodeError):
        raise error
    bad = error.object[error.start : error.end]
    return "".join(visible_replacement(ch) for ch in bad), error.end


codecs.register_error(VISIBLE, _visible_errors)


@lru_cache(maxsize=16)
def _codec_name(codec: str) -> str:
    return codecs.lookup(codec).name


def _encodable(text: str, codec: str) -> bool:
    try:
        text.encode(codec)
    except UnicodeEncodeError:
        return False
    return True


def fold_for(text: str, codec: str) -> str:
    """``text`` with every cluster ``codec`` cannot carry replaced by its NFC form
    (which the codec may carry: ``e`` + U+0301 -> ``é``); everything else as is.

    Only the runs of unencodable characters, widened to whole clusters, are looked at
    (found by a regular expression, so the cost stays in C for ordinary text)."""
    if _encodable(text, codec) or unicodedata.is_normalized("NFC", text):
        return text  # (NFC text: each of its clusters is NFC already)
    bad = sorted(ch for ch in set(text) if not _encodable(ch, codec))
    runs = re.compile("[" + "".join(re.escape(ch) for ch in bad) + "]+")
    out: list[str] = []
    done = 0
    for match in runs.finditer(text):
        start, end = max(match.start(), done), match.end()
        while start > done and not _pair_allowed(text[start - 1], text[start]):
            start -= 1
        while end < len(text) and not _pair_allowed(text[end - 1], text[end]):
            end += 1
        out.append(text[done:start])
        out.append(unicodedata.normalize("NFC", text[start:end]))
        done = end
    out.append(text[done:])
    return "".join(out)


def encode_visible(text: str, codec: str) -> bytes:
    """``text`` in ``codec``; what the codec lacks is replaced visibly (module doc)."""
    _codec_name(codec)  # LookupError early for an unknown codec
    return fold_for(text, codec).encode(codec, VISIBLE)


def shown_as(text: str, codec: str) -> str:
    """What a client of ``codec`` reads for ``text`` (the visible replacements in)."""
    return encode_visible(text, codec).decode(codec)


# ---- where text may be cut ----------------------------------------------------------

_EXTENDING_CATEGORIES = frozenset({"Mn", "Me", "Mc"})


def _extends(ch: str) -> bool:
    """Does ``ch`` attach to the character before it?"""
    cp = ord(ch)
    return (
        ch == ZWJ
        or _is_variation_selector(cp)
        or 0x1F3FB <= cp <= 0x1F3FF  # emoji modifiers (skin tones)
        or 0xE0020 <= cp <= 0xE007F  # tag characters (subdivision flags)
        or unicodedata.category(ch) in _EXTENDING_CATEGORIES
    )


def _regional(ch: str) -> bool:
    return 0x1F1E6 <= ord(ch) <= 0x1F1FF


def _jamo_kind(ch: str) -> str:
    cp = ord(ch)
    if 0x1100 <= cp <= 0x115F or 0xA960 <= cp <= 0xA97C:
        return "L"
    if 0x1160 <= cp <= 0x11A7 or 0xD7B0 <= cp <= 0xD7C6:
        return "V"
    if 0x11A8 <= cp <= 0x11FF or 0xD7CB <= cp <= 0xD7FB:
        return "T"
    if 0xAC00 <= cp <= 0xD7A3:
        return "S"  # a precomposed syllable (LV or LVT)
    return ""


def _pair_allowed(before: str, after: str) -> bool:
    """The rules that look at two neighbours only (regional indicators excepted)."""
    if before == "\r" and after == "\n":
        return False
    if before == ZWJ or _extends(after):
        return False
    if "\ud800" <= before <= "\udbff" and "\udc00" <= after <= "\udfff":
        return False  # a surrogate pair kept as two code points
    kind_before, kind_after = _jamo_kind(before), _jamo_kind(after)
    if kind_before == "L" and kind_after in ("L", "V", "S"):
        return False
    return not (kind_after in ("V", "T") and kind_before in ("L", "V", "T", "S"))


def cut_points(text: str) -> list[bool]:
    """``allowed[i]`` for ``i`` in ``0..len(text)``: may ``text`` be cut before index
    ``i``? (Both ends are always allowed.) One pass, linear in ``len(text)``."""
    allowed = [True] * (len(text) + 1)
    regional_run = 0  # regional indicators ending just before the current index
    for i in range(1, len(text)):
        before, after = text[i - 1], text[i]
        regional_run = regional_run + 1 if _regional(before) else 0
        if _regional(before) and _regional(after):
            allowed[i] = regional_run % 2 == 0
        else:
            allowed[i] = _pair_allowed(before, after)
    return allowed


def break_allowed(text: str, index: int) -> bool:
    """May ``text`` be cut between ``text[index - 1]`` and ``text[index]``?"""
    if index <= 0 or index >= len(text):
        return True
    before, after = text[index - 1], text[index]
    if _regional(before) and _regional(after):
        run = 0
        i = index - 1
        while i >= 0 and _regional(text[i]):
            run += 1
            i -= 1
        return run % 2 == 0
    return _pair_allowed(before, after)
