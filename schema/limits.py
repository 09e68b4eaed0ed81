"""Limits on what people type: display names, status texts, handles.

Theory of operation
-------------------
Names and status texts travel to every network and end up on screens, in logs and in
the admin's terminal, so they are one line of printable text of a bounded length.
Message bodies are not limited here (they keep their line breaks and are split, never
cut: gateway/splitting.py).

Two ways to apply a limit, by who typed the value:
- ``check_*`` refuses (:class:`LimitError`, a ValueError fit for the person): for what
  an admin types (CLI, HTTP API), where a refusal can be shown and corrected.
- ``clean_*`` makes the value conform: control characters become spaces and the text
  is cut at the limit, never inside a character cluster. For what a legacy client
  sends in passing (a status text, a nickname it keeps for a contact, the nickname of a
  self-registration), where its network has no error to answer with; the client then
  sees the cleaned value like any other user would.
The canonical ``Presence`` event refuses a status text that breaks a limit
(schema/events.py): after the core cleaned it, none can reach another network.

Control characters are C0 (U+0000..U+001F), DEL (U+007F) and C1 (U+0080..U+009F).

:func:`shown` is how any error message quotes what someone typed: one printable line,
at most ``ECHO_CHARS`` characters with ``...`` after a cut, so an error never sends
100 000 characters back.

Pure: stdlib only.
"""

from __future__ import annotations

import re

from schema.text import cut_points

MAX_DISPLAY_NAME_CHARS = 128
"""A display name (MSN's friendly name is at most 129 characters: 387 bytes of URL
encoding; ICQ nicknames and AIM screen names are shorter)."""
MAX_STATUS_TEXT_CHARS = 512
"""A status / away / personal message."""
MAX_HANDLE_CHARS = 128
"""A native id as typed, before it is normalised (the longest valid one, an MSN
e-mail address, is shorter)."""
ECHO_CHARS = 64
"""The most of someone's input an error message quotes."""

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_CONTROL_RUN = re.compile("[\x00-\x1f\x7f-\x9f]+")


class LimitError(ValueError):
    """A value that breaks a limit; the message names the field, never the whole value."""


def control_character(text: str) -> str | None:
    """The first control character in ``text``, or None."""
    found = _CONTROL.search(text)
    return None if found is None else found.group()


def check_text(text: str, what: str, max_chars: int) -> str:
    """``text`` if it is at most ``max_chars`` long and has no control character."""
    if len(text) > max_chars:
        raise LimitError(f"{what} is longer than {max_chars} characters ({len(text)})")
    bad = control_character(text)
    if bad is not None:
        raise LimitError(f"{what} has a control character (U+{ord(bad):04X})")
    return text


def check_display_name(text: str) -> str:
    return check_text(text, "display name", MAX_DISPLAY_NAME_CHARS)


def check_status_text(text: str) -> str:
    return check_text(text, "status text", MAX_STATUS_TEXT_CHARS)


def clean_text(text: str, max_chars: int) -> str:
    """``text`` on one line (each run of control characters becomes one space), cut
    to ``max_chars`` at a place :func:`schema.text.cut_points` allows."""
    flat = _CONTROL_RUN.sub(" ", text) if _CONTROL.search(text) else text
    if len(flat) <= max_chars:
        return flat
    allowed = cut_points(flat[: max_chars + 1])
    end = max_chars
    while end > 0 and not allowed[end]:
        end -= 1
    return flat[: end or max_chars]


def clean_display_name(text: str) -> str:
    return clean_text(text, MAX_DISPLAY_NAME_CHARS)


def clean_status_text(text: str) -> str:
    return clean_text(text, MAX_STATUS_TEXT_CHARS)


def shown(text: str, max_chars: int = ECHO_CHARS) -> str:
    """Someone's input as an error message quotes it: ``repr`` (so controls and quotes
    are visible), of at most ``max_chars`` characters of the input, ``...`` after a cut."""
    if len(text) <= max_chars:
        return repr(text)
    return repr(text[:max_chars]) + "..."
