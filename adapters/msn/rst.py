"""Passport SOAP login (``POST /RST.srf``, WS-Trust RequestSecurityToken), sans-IO.

msn-pecan >= 0.1.2 and MSNP13+ clients (Windows Live Messenger 8.x) get their ticket
this way instead of Passport 1.4's two GETs:

- Request: a SOAP 1.1 envelope; ``Header/Security/UsernameToken`` carries
  ``Username`` and ``Password``; the body is one ``RequestSecurityToken`` or a
  ``RequestMultipleSecurityTokens`` of several, each naming the service it is for in
  ``AppliesTo/EndpointReference/Address`` (``http://Passport.NET/tb``,
  ``messenger.msn.com``, ``messengersecure.live.com``, ``contacts.msn.com``...) and
  ``Id="RST<n>"``.
- Answer: ``RequestSecurityTokenResponseCollection`` with one
  ``RequestSecurityTokenResponse`` per token asked for, in order, each with its
  ``AppliesTo`` address, a ``LifeTime`` (``wsu:Created``/``wsu:Expires``) and a
  ``wsse:BinarySecurityToken`` whose text is ``t=<ticket>&amp;p=<profile>``. msn-pecan
  finds it by the literal ``<wsse:BinarySecurityToken Id="PPToken1">`` or ``Compact1``
  (the number is the request's ``RST<n>``) and splits the text on ``&amp;``; the
  expiry by the literal ``<wsa:Address>messenger.msn.com</wsa:Address>`` followed by
  ``<wsu:Expires>``. So the prefixes and the escaping here are fixed, not an XML
  serialiser's choice.
- Refusal: a SOAP fault with ``faultcode`` ``wsse:FailedAuthentication`` and the
  ``psf:pp`` header with ``reqstatus`` 0x80048821 (bad credentials): libpurple and
  Miranda look for that fault code.

Facts: yellows111 MSNP wiki (services/rst), msn-pecan pn_auth.c, libpurple's msn
nexus.c and soap.c, Miranda's MSN plugin. The password is never logged or repeated.

The body is parsed with defusedxml: no DTD, no entity expansion, no external
resources; bodies over :data:`MAX_BODY` bytes never reach the parser.
"""

from __future__ import annotations

import datetime
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

MAX_BODY = 64 * 1024
MAX_TOKENS = 16
PASSPORT_TB = "http://Passport.NET/tb"


@dataclass(frozen=True, slots=True)
class TokenRequest:
    """What a RequestSecurityToken(s) envelope asks for."""

    email: str
    password: str = field(repr=False)
    services: tuple[str, ...] = ()  # AppliesTo addresses, in request order


class RstError(ValueError):
    """The body is not a usable RequestSecurityToken envelope (the peer's fault)."""


def _local(tag: object) -> str:
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def _first(root: ElementTree.Element, name: str) -> ElementTree.Element | None:
    for element in root.iter():
        if _local(element.tag) == name:
            return element
    return None


def parse_request(body: bytes) -> TokenRequest:
    """The credentials and services of an RST.srf body, or RstError."""
    if len(body) > MAX_BODY:
        raise RstError("request too large")
    try:
        root = fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (ElementTree.ParseError, DefusedXmlException, ValueError) as exc:
        raise RstError(f"not XML: {type(exc).__name__}") from None
    if _local(root.tag) != "Envelope":
        raise RstError("not a SOAP envelope")
    token = _first(root, "UsernameToken")
    if token is None:
        raise RstError("no UsernameToken")
    username = _first(token, "Username")
    password = _first(token, "Password")
    if username is None or password is None or not (username.text or "").strip():
        raise RstError("UsernameToken without Username or Password")
    services: list[str] = []
    for element in root.iter():
        if _local(element.tag) == "RequestSecurityToken":
            address = _first(element, "Address")
            services.append((address.text or "").strip() if address is not None else "")
    if not services:
        raise RstError("no RequestSecurityToken")
    if len(services) > MAX_TOKENS:
        raise RstError("too many tokens asked for")
    return TokenRequest(
        email=(username.text or "").strip(),
        password=password.text or "",
        services=tuple(services),
    )


def _time(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_NAMESPACES = (
    'xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"'
    ' xmlns:wst="http://schemas.xmlsoap.org/ws/2004/04/trust"'
    ' xmlns:wsse="http://schemas.xmlsoap.org/ws/2003/06/secext"'
    ' xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"'
    ' xmlns:wsp="http://schemas.xmlsoap.org/ws/2002/12/policy"'
    ' xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/03/addressing"'
    ' xmlns:psf="http://schemas.microsoft.com/Passport/SoapServices/SOAPFault"'
)


def _pp_header(reqstatus: str) -> str:
    return (
        "<S:Header><psf:pp><psf:serverVersion>1</psf:serverVersion>"
        f"<psf:authstate>0x48803</psf:authstate><psf:reqstatus>{reqstatus}</psf:reqstatus>"
        "</psf:pp></S:Header>"
    )


def success_envelope(
    request: TokenRequest,
    ticket: str,
    created: datetime.datetime,
    expires: datetime.datetime,
    profile: str = "gateway",
) -> bytes:
    """The RequestSecurityTokenResponseCollection: one compact token per service asked
    for, each ``t=<ticket>&amp;p=<profile>`` (the same ticket Passport 1.4 gives)."""
    compact = f"t={escape(ticket)}&amp;p={escape(profile)}"
    lifetime = (
        f"<wst:LifeTime><wsu:Created>{_time(created)}</wsu:Created>"
        f"<wsu:Expires>{_time(expires)}</wsu:Expires></wst:LifeTime>"
    )
    responses = []
    for index, service in enumerate(request.services):
        legacy = service == PASSPORT_TB
        token_id = "BinaryDAToken0" if legacy else f"Compact{index}"
        responses.append(
            "<wst:RequestSecurityTokenResponse>"
            f"<wst:TokenType>urn:passport:{'legacy' if legacy else 'compact'}</wst:TokenType>"
            "<wsp:AppliesTo><wsa:EndpointReference>"
            f"<wsa:Address>{escape(service)}</wsa:Address>"
            "</wsa:EndpointReference></wsp:AppliesTo>"
            f"{lifetime}"
            "<wst:RequestedSecurityToken>"
            f'<wsse:BinarySecurityToken Id="{token_id}">{compact}</wsse:BinarySecurityToken>'
            "</wst:RequestedSecurityToken>"
            "<wst:RequestedTokenReference>"
            '<wsse:KeyIdentifier ValueType="urn:passport:compact"></wsse:KeyIdentifier>'
            f'<wsse:Reference URI="#{token_id}"></wsse:Reference>'
            "</wst:RequestedTokenReference>"
            "</wst:RequestSecurityTokenResponse>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8" ?>'
        f"<S:Envelope {_NAMESPACES}>{_pp_header('0x0')}<S:Body>"
        "<wst:RequestSecurityTokenResponseCollection>"
        + "".join(responses)
        + "</wst:RequestSecurityTokenResponseCollection></S:Body></S:Envelope>"
    ).encode("utf-8")


def fault_envelope(
    code: str = "wsse:FailedAuthentication", text: str = "Authentication Failure"
) -> bytes:
    """A refusal the clients understand (``wsse:FailedAuthentication`` for bad
    credentials, ``wsse:InvalidSecurity`` for a request we cannot read)."""
    reqstatus = "0x80048821" if code == "wsse:FailedAuthentication" else "0x80048820"
    return (
        '<?xml version="1.0" encoding="utf-8" ?>'
        f"<S:Envelope {_NAMESPACES}>{_pp_header(reqstatus)}<S:Body><S:Fault>"
        f"<faultcode>{escape(code)}</faultcode><faultstring>{escape(text)}</faultstring>"
        "</S:Fault></S:Body></S:Envelope>"
    ).encode()
