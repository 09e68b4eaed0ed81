"""Canonical events: what every network's traffic is translated into and out of.

One discriminated union on ``kind``. Every event carries the envelope of RFC 3862
(message/cpim) in spirit: who from, who to, when, an id, a trace id that survives
every hop, and a hop count the router refuses to let grow past ``MAX_HOPS`` so that a
misconfigured loop between gateways dies out instead of echoing forever.
"""

from __future__ import annotations

import itertools
import os
import secrets
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from schema.addresses import Address
from schema.limits import MAX_STATUS_TEXT_CHARS, check_status_text

MAX_HOPS = 8
MAX_BODY_CHARS = 65536


_ID_PREFIX = secrets.token_hex(8)
_id_counter = itertools.count()


def _new_prefix() -> None:
    global _ID_PREFIX, _id_counter
    _ID_PREFIX = secrets.token_hex(8)
    _id_counter = itertools.count()


os.register_at_fork(after_in_child=_new_prefix)  # a forked child must not repeat ids


def new_id() -> str:
    """A process-unique random prefix and a counter: unique across processes and
    nodes (64 random bits per process) without a system call per event."""
    return f"{_ID_PREFIX}{next(_id_counter):x}"


def utc_now() -> datetime:
    return datetime.now(UTC)


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Style(StrEnum):
    BOLD = "bold"
    ITALIC = "italic"
    UNDERLINE = "underline"
    COLOR = "color"
    FONT = "font"
    SIZE = "size"


class FormatSpan(Frozen):
    """A style over ``body[start:end]`` (code points). Colour is ``#rrggbb``, font a
    family name, size a point size; bold/italic/underline carry no value."""

    start: int = Field(ge=0)
    end: int = Field(ge=0)
    style: Style
    value: str | None = Field(default=None, max_length=64)

    @model_validator(mode="after")
    def _check(self) -> FormatSpan:
        if self.end < self.start:
            raise ValueError("a span ends before it starts")
        valued = {Style.COLOR, Style.FONT, Style.SIZE}
        if (self.style in valued) != (self.value is not None):
            raise ValueError(f"style {self.style.value} value mismatch")
        if self.style is Style.COLOR and self.value is not None:
            v = self.value
            if len(v) != 7 or v[0] != "#" or any(c not in "0123456789abcdef" for c in v[1:]):
                raise ValueError("colour is #rrggbb in lower case")
        if self.style is Style.SIZE and self.value is not None and not self.value.isdigit():
            raise ValueError("size is a whole point size")
        return self


class Envelope(Frozen):
    id: str = Field(default_factory=new_id, min_length=1, max_length=64)
    sender: Address
    recipient: Address
    time: datetime = Field(default_factory=utc_now)
    hops: int = Field(default=0, ge=0, le=255)
    trace_id: str = Field(default_factory=new_id, min_length=1, max_length=64)

    def forwarded(self) -> Envelope:
        """The same event one hop further on."""
        return self.model_copy(update={"hops": self.hops + 1})


class Message(Envelope):
    kind: Literal["message"] = "message"
    body: str = Field(max_length=MAX_BODY_CHARS)
    spans: tuple[FormatSpan, ...] = ()

    @model_validator(mode="after")
    def _spans_inside(self) -> Message:
        for span in self.spans:
            if span.end > len(self.body):
                raise ValueError("a span reaches past the body")
        return self


class PresenceState(StrEnum):
    ONLINE = "online"
    AWAY = "away"
    BUSY = "busy"
    IDLE = "idle"
    INVISIBLE = "invisible"
    OFFLINE = "offline"


class Presence(Envelope):
    """``sender``'s presence as shown to ``recipient`` (the router fans one change out
    to every watcher, one event each)."""

    kind: Literal["presence"] = "presence"
    state: PresenceState
    status_text: Annotated[
        str,
        Field(
            max_length=MAX_STATUS_TEXT_CHARS,
            description="One line: no control character (U+0000-U+001F, U+007F-U+009F).",
        ),
        AfterValidator(check_status_text),
    ] = ""


class Typing(Envelope):
    kind: Literal["typing"] = "typing"
    active: bool


class ContactRequest(Envelope):
    """``sender`` asks to add ``recipient`` to their list and see their presence."""

    kind: Literal["contact_request"] = "contact_request"
    text: str = Field(default="", max_length=1024)


class Authorization(Envelope):
    """``sender``'s answer to a contact request that ``recipient`` sent."""

    kind: Literal["authorization"] = "authorization"
    granted: bool
    text: str = Field(default="", max_length=1024)


class DeliveryReceipt(Envelope):
    """``recipient``'s client has the message ``message_id`` (sent back to its sender)."""

    kind: Literal["delivery_receipt"] = "delivery_receipt"
    message_id: str = Field(min_length=1, max_length=64)


class FailureReason(StrEnum):
    UNKNOWN_RECIPIENT = "unknown_recipient"
    BLOCKED = "blocked"
    HOPS_EXHAUSTED = "hops_exhausted"
    DISABLED = "disabled"
    UNSUPPORTED = "unsupported"
    TOO_LARGE = "too_large"
    QUEUE_FULL = "queue_full"
    INTERNAL = "internal"
    SELF_ADDRESSED = "self_addressed"
    UNAVAILABLE = "unavailable"
    """The gateway could not reach its store: nothing was done, try later."""


class DeliveryFailure(Envelope):
    """The message ``message_id`` that ``recipient`` sent could not be delivered."""

    kind: Literal["delivery_failure"] = "delivery_failure"
    message_id: str = Field(min_length=1, max_length=64)
    reason: FailureReason
    detail: str = Field(default="", max_length=512)


CanonicalEvent = Annotated[
    Message
    | Presence
    | Typing
    | ContactRequest
    | Authorization
    | DeliveryReceipt
    | DeliveryFailure,
    Field(discriminator="kind"),
]

EVENT_ADAPTER: TypeAdapter[CanonicalEvent] = TypeAdapter(CanonicalEvent)


def event_to_json(event: CanonicalEvent) -> bytes:
    return EVENT_ADAPTER.dump_json(event)


def event_from_json(data: bytes | str) -> CanonicalEvent:
    return EVENT_ADAPTER.validate_json(data)
