"""SOAP login messages (adapters/msn/rst.py), sans-IO: what clients send, what they read."""

from __future__ import annotations

import contextlib
import datetime
import xml.etree.ElementTree as ElementTree

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.msn import rst
from tests.msn.pecan_https import pecan_rst, xml_escape

NOW = datetime.datetime(2026, 12, 4, 17, 0, tzinfo=datetime.UTC)


def body_of(request: bytes) -> bytes:
    return request.split(b"\r\n\r\n", 1)[1]


def test_msn_pecan_request_yields_credentials_and_services() -> None:
    """msn-pecan's RequestMultipleSecurityTokens: its three services in order, the
    password unescaped from XML."""
    asked = rst.parse_request(body_of(pecan_rst("a@example.com", xml_escape("p&<w>"))))
    assert asked.email == "a@example.com" and asked.password == "p&<w>"
    assert asked.services == (
        "http://Passport.NET/tb",
        "messenger.msn.com",
        "messengersecure.live.com",
    )
    assert "p&<w>" not in repr(asked)


def test_answer_has_the_literal_forms_msn_pecan_searches() -> None:
    """Compact1 holds ``t=...&amp;p=...``; wsu:Expires follows the messenger.msn.com
    address; one response per service asked for."""
    asked = rst.TokenRequest("a@example.com", "x", ("http://Passport.NET/tb", "messenger.msn.com"))
    text = rst.success_envelope(
        asked, "TICKET.abc", NOW, NOW + datetime.timedelta(minutes=5)
    ).decode()
    assert '<wsse:BinarySecurityToken Id="Compact1">t=TICKET.abc&amp;p=gateway<' in text
    after = text.split("<wsa:Address>messenger.msn.com</wsa:Address>", 1)[1]
    assert "<wsu:Expires>2026-12-04T17:05:00Z</wsu:Expires>" in after
    assert text.count("<wst:RequestSecurityTokenResponse>") == 2
    ElementTree.fromstring(text)  # well-formed


def test_oversize_body_is_refused_unparsed() -> None:
    """More than MAX_BODY bytes never reach the XML parser."""
    with pytest.raises(rst.RstError, match="too large"):
        rst.parse_request(b"<" * (rst.MAX_BODY + 1))


def test_entity_expansion_is_refused() -> None:
    """A DTD (billion laughs, external entities) is refused, not expanded."""
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]><Envelope>&b;</Envelope>'
    )
    with pytest.raises(rst.RstError):
        rst.parse_request(bomb)


@given(st.binary(max_size=512))
def test_any_bytes_parse_or_raise_rst_error(data: bytes) -> None:
    """Whatever a peer sends: a TokenRequest or RstError, never another exception."""
    with contextlib.suppress(rst.RstError):
        rst.parse_request(data)
