"""Canonical model: addresses, events, JSON round trips and the exported JSON Schema."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from schema import export
from schema.addresses import AddressError, make_address, normalise_address
from schema.events import (
    EVENT_ADAPTER,
    DeliveryFailure,
    FailureReason,
    FormatSpan,
    Message,
    Presence,
    PresenceState,
    Style,
    Typing,
    event_from_json,
    event_to_json,
)


@pytest.mark.parametrize(
    ("given_", "expected"),
    [
        ("oscar:Cool Kid 99", "oscar:coolkid99"),
        ("oscar:012345", "oscar:12345"),
        ("msn:Bob@Example.COM", "msn:bob@example.com"),
        ("uin:0700123", "uin:700123"),
    ],
)
def test_addresses_normalise_per_network(given_: str, expected: str) -> None:
    """AIM names ignore case and spaces, MSN handles case, numbers leading zeros."""
    assert normalise_address(given_) == expected


@pytest.mark.parametrize(
    "bad", ["oscar", "OSCAR:1", "msn:not-an-email", "uin:abc", "uin:99999999999", "oscar:a\r\nb"]
)
def test_bad_addresses_are_refused(bad: str) -> None:
    """Malformed addresses raise AddressError, never pass through."""
    with pytest.raises(AddressError):
        normalise_address(bad)


def test_event_addresses_are_validated() -> None:
    """An event cannot be built with an address that names nobody."""
    with pytest.raises(ValidationError):
        Message(sender="uin:x", recipient="uin:1", body="hi")
    assert Message(sender="uin:01", recipient="msn:A@b.cd", body="").recipient == "msn:a@b.cd"


def test_spans_must_fit_the_body_and_carry_values() -> None:
    """Spans outside the body, valueless colours or bad colours are refused."""
    with pytest.raises(ValidationError):
        Message(
            sender="uin:1",
            recipient="uin:2",
            body="ab",
            spans=(FormatSpan(start=0, end=3, style=Style.BOLD),),
        )
    with pytest.raises(ValidationError):
        FormatSpan(start=0, end=1, style=Style.COLOR)
    with pytest.raises(ValidationError):
        FormatSpan(start=0, end=1, style=Style.COLOR, value="red")
    with pytest.raises(ValidationError):
        FormatSpan(start=0, end=1, style=Style.BOLD, value="x")


def test_events_are_frozen_and_strict() -> None:
    """Events cannot be changed after creation nor carry unknown fields."""
    message = Message(sender="uin:1", recipient="uin:2", body="hi")
    with pytest.raises(ValidationError):
        message.body = "changed"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        EVENT_ADAPTER.validate_python({**message.model_dump(), "extra": 1})


addresses = st.sampled_from(["uin:700123", "oscar:12345", "oscar:coolkid", "msn:bob@example.com"])


@st.composite
def messages(draw: st.DrawFn) -> Message:
    body = draw(st.text(max_size=40))
    spans = []
    for _ in range(draw(st.integers(0, 3))):
        start = draw(st.integers(0, len(body)))
        end = draw(st.integers(start, len(body)))
        style = draw(st.sampled_from([Style.BOLD, Style.ITALIC, Style.COLOR, Style.SIZE]))
        value = {"color": "#ff00aa", "size": "12"}.get(style.value)
        spans.append(FormatSpan(start=start, end=end, style=style, value=value))
    return Message(
        sender=draw(addresses),
        recipient=draw(addresses),
        body=body,
        spans=tuple(spans),
        hops=draw(st.integers(0, 8)),
    )


events = st.one_of(
    messages(),
    st.builds(
        Presence,
        sender=addresses,
        recipient=addresses,
        state=st.sampled_from(PresenceState),
        status_text=st.text(st.characters(exclude_categories=("Cc",)), max_size=20),
    ),
    st.builds(Typing, sender=addresses, recipient=addresses, active=st.booleans()),
    st.builds(
        DeliveryFailure,
        sender=addresses,
        recipient=addresses,
        message_id=st.just("m1"),
        reason=st.sampled_from(FailureReason),
    ),
)


@settings(max_examples=150)
@given(events)
def test_json_round_trip(event: Message) -> None:
    """Any canonical event survives JSON serialisation unchanged (kind picks the type)."""
    assert event_from_json(event_to_json(event)) == event


def test_exported_json_schema_is_current() -> None:
    """schema/canonical-events.schema.json matches the models (run python -m schema.export)."""
    assert export.SCHEMA_FILE.read_text(encoding="utf-8") == export.render()


def test_make_address_round_trip() -> None:
    """make_address normalises the native id."""
    assert make_address("oscar", "Some One") == "oscar:someone"
