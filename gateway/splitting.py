"""Splitting a message for a target that cannot take it whole.

Theory of operation
-------------------
A target link states its limits (adapters/contract.py): a number of characters
(``LimitsBody``) and/or a size in its own wire units with a function that measures a
body and its formatting spans the way the adapter will really write them
(``MeasuresBody``: bytes after charset encoding, visible replacement and markup
escaping). :func:`split_message` cuts the body, in order, into parts that each fit
every stated limit; the parts' bodies concatenate to the original body exactly: no
character is dropped, added or reordered (a message is never truncated).

Each cut is the longest prefix that fits (found by galloping from the previous part's
length, then bisecting: a measure runs O(log n) times per part, on about a part's worth
of text), moved back:
1. to just after whitespace, if there is such a place in the last fifth of the part;
2. else to the last place :func:`schema.text.cut_points` allows (never before a
   combining mark, variation selector, ZWJ, skin-tone modifier, inside a ZWJ sequence,
   a flag, a Hangul jamo syllable or a CRLF);
3. else, when one such cluster is longer than a whole part, at the code point that
   still fits (the cluster could not be delivered otherwise).
A single code point that does not fit on its own becomes a part of its own (over the
limit: no real adapter limit is that small, and dropping it would lose text).

The measure is assumed monotone: a prefix of a body never measures more than the
body (true of every encoder here: more text never means fewer bytes).

Parts get ids ``<id>.<n>`` (n from 0) and keep their share of every formatting span,
re-based to the part (a span over characters 5..15 cut at 10 becomes 5..10 on the
first part and 0..5 on the second). A message that fits is returned as is.

Pure: schema and stdlib only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from schema.events import FormatSpan, Message
from schema.text import cut_points

Measure = Callable[[str, tuple[FormatSpan, ...]], int]
"""The size of a body with its spans, in the target's own units."""


@dataclass(frozen=True, slots=True)
class BodyLimit:
    """What one part may hold; ``None`` means no limit of that kind."""

    max_chars: int | None = None
    max_size: int | None = None
    measure: Measure | None = None

    def fits(self, body: str, spans: tuple[FormatSpan, ...]) -> bool:
        if self.max_chars is not None and len(body) > self.max_chars:
            return False
        if self.max_size is not None and self.measure is not None:
            return self.measure(body, spans) <= self.max_size
        return True


def spans_within(spans: tuple[FormatSpan, ...], start: int, end: int) -> tuple[FormatSpan, ...]:
    """The share of ``spans`` that falls in ``[start, end)``, re-based to ``start``."""
    out: list[FormatSpan] = []
    for span in spans:
        lo, hi = max(span.start, start), min(span.end, end)
        if hi > lo:
            out.append(span.model_copy(update={"start": lo - start, "end": hi - start}))
    return tuple(out)


def split_message(message: Message, limit: BodyLimit) -> list[Message]:
    """``message`` as parts that each fit ``limit`` (module doc)."""
    body, spans = message.body, message.spans
    if not body or limit.fits(body, spans):
        return [message]
    parts: list[Message] = []
    start = 0
    for n, end in enumerate(_cuts(body, spans, limit)):
        update = {
            "id": f"{message.id}.{n}",
            "body": body[start:end],
            "spans": spans_within(spans, start, end),
        }
        parts.append(message.model_copy(update=update))
        start = end
    return parts


def split_text(text: str, max_chars: int) -> list[str]:
    """``text`` in pieces of at most ``max_chars`` characters, cut where
    :func:`split_message` would cut; they concatenate to ``text``. For text longer than
    a canonical message may be (the bot's long answers): each piece becomes a message
    of its own, split again for its target like any other."""
    if len(text) <= max_chars:
        return [text]
    start = 0
    pieces = []
    for end in _cuts(text, (), BodyLimit(max_chars=max(1, max_chars))):
        pieces.append(text[start:end])
        start = end
    return pieces


def _cuts(body: str, spans: tuple[FormatSpan, ...], limit: BodyLimit) -> list[int]:
    """The end of every part, in order (module doc)."""
    allowed = cut_points(body)
    cuts: list[int] = []
    start = 0
    hint: int | None = None
    while start < len(body):
        end = _longest_fitting(body, spans, start, limit, hint)
        hint = end - start
        if end < len(body):
            end = _cut_before(body, allowed, start, end)
        cuts.append(end)
        start = end
    return cuts


def split_body(message: Message, limit: int) -> list[Message]:
    """Split by characters only (``LimitsBody``): parts of at most ``limit``."""
    return split_message(message, BodyLimit(max_chars=max(1, limit)))


def _longest_fitting(
    body: str, spans: tuple[FormatSpan, ...], start: int, limit: BodyLimit, hint: int | None
) -> int:
    """The largest ``end`` such that ``body[start:end]`` fits; at least ``start + 1``.

    Gallops from a guess (the previous part's length: parts of one message are alike)
    to bracket the answer, then bisects, so a measure runs a few times per part and
    never over much more than a part's worth of text."""
    cap = len(body) if limit.max_chars is None else min(len(body), start + limit.max_chars)

    def fits(end: int) -> bool:
        return limit.fits(body[start:end], spans_within(spans, start, end))

    guess = start if hint is None else min(cap, start + hint)
    if guess == start or fits(guess):
        lo, step = guess, 1  # body[start:lo] fits (the empty prefix does)
        while True:
            probe = lo + step
            if probe >= cap:
                if fits(cap):
                    return cap
                hi = cap
                break
            if not fits(probe):
                hi = probe
                break
            lo, step = probe, step * 2
    else:
        hi, step = guess, 1  # body[start:hi] does not fit
        while True:
            probe = hi - step
            if probe <= start:
                lo = start
                break
            if fits(probe):
                lo = probe
                break
            hi, step = probe, step * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid
    return max(lo, start + 1)


def _cut_before(body: str, allowed: list[bool], start: int, end: int) -> int:
    """Where to cut a part that may reach ``end`` (rules 1-3 of the module doc)."""
    floor = start + (end - start) * 4 // 5
    last_allowed = None
    for at in range(end, start, -1):
        if not allowed[at]:
            continue
        if at >= floor and body[at - 1].isspace():
            return at
        if last_allowed is None:
            last_allowed = at
            if at < floor:
                return at
        elif at < floor:
            break
    return last_allowed if last_allowed is not None else end
