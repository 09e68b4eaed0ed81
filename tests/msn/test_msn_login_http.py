"""The Passport endpoint's HTTP glue (adapters/msn/login_http.py) byte for byte:
StringTransport, MemoryReactorClock and the in-memory core double."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.testing import (
    MemoryReactorClock,
    StringTransport,
    StringTransportWithDisconnection,
)
from twisted.protocols.tls import TLSMemoryBIOFactory

from adapters.msn.adapter import PASSPORT_HOSTS, MsnSettings
from adapters.msn.login_http import PassportResource, PassportSite
from adapters.msn.protocol import MsnService
from adapters.msn.session import TICKET_PURPOSE
from gateway import certificate
from tests.msn.msn_fakes import service_for
from tests.support.fake_core import FakeCore, run_now

PEER = IPv4Address("TCP", "127.0.0.1", 40000)
NEXUS_VALUE = (
    b"DARealm=Passport.Net,DALogin=gw.example/login2.srf,DAReg=,Properties=,Privacy=,"
    b"GeneralRedir=,Help=,ConfigVersion=15"
)


@pytest.fixture
def world() -> Iterator[tuple[FakeCore, MsnService, PassportSite]]:
    core = FakeCore()
    core.add("msn:alice@example.com", "secret", "Alice")
    clock = MemoryReactorClock()
    clock.advance(1_000_000)
    service = service_for(core, clock)
    site = PassportSite(PassportResource(service, lambda: "gw.example"), timeout=30)
    site.reactor = clock  # type: ignore[attr-defined]
    site.callLater = clock.callLater  # type: ignore[attr-defined]
    yield core, service, site


def exchange(site: PassportSite, *chunks: bytes) -> tuple[bytes, StringTransport]:
    """Feed ``chunks`` to a fresh connection; what it wrote back."""
    channel = site.buildProtocol(PEER)
    transport = StringTransport(peerAddress=PEER)
    channel.makeConnection(transport)
    for chunk in chunks:
        channel.dataReceived(chunk)
    return transport.value(), transport


def test_versionless_nexus_request_gets_http_1_1_with_exact_passporturls(
    world: tuple[FakeCore, MsnService, PassportSite],
) -> None:
    """msn-pecan 0.1.1's ``GET /rdr/pprdr.asp`` (no version) is answered
    ``HTTP/1.1 200 OK`` with the header spelled ``PassportURLs: `` and the
    connection closed."""
    _, _, site = world
    answer, transport = exchange(site, b"GET /rdr/pprdr.asp\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n"), answer
    assert b"\r\nPassportURLs: " + NEXUS_VALUE + b"\r\n" in answer
    assert b"Passporturls" not in answer
    assert b"\r\nConnection: close\r\n" in answer
    assert transport.disconnecting


def test_versionless_request_split_byte_by_byte(
    world: tuple[FakeCore, MsnService, PassportSite],
) -> None:
    """The same request arriving one byte at a time gets the same answer."""
    _, _, site = world
    request = b"GET /rdr/pprdr.asp\r\n\r\n"
    answer, _ = exchange(site, *(request[i : i + 1] for i in range(len(request))))
    assert b"\r\nPassportURLs: " + NEXUS_VALUE + b"\r\n" in answer


def test_passport14_answers_keep_the_header_names_real_servers_used(
    world: tuple[FakeCore, MsnService, PassportSite],
) -> None:
    """login2.srf: ``HTTP/1.1 200 OK`` + ``Authentication-Info: `` with a ticket the NS
    accepts; a wrong password ``HTTP/1.1 401 Unauthorized`` + ``WWW-Authenticate: ``."""
    _, service, site = world
    request = (
        b"GET /login2.srf HTTP/1.1\r\nAuthorization: Passport1.4 OrgVerb=GET,"
        b"OrgURL=http%3A%2F%2Fmessenger%2Emsn%2Ecom,sign-in=alice%40example.com,pwd=%s,"
        b"lc=1033,id=507\r\nHost: login.passport.com\r\n\r\n"
    )
    answer, _ = exchange(site, request.replace(b"%s", b"secret"))
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n"), answer
    assert b"\r\nContent-Length: 0\r\n" in answer and b"chunked" not in answer
    assert b"\r\nAuthentication-Info: Passport1.4 da-status=success," in answer
    ticket = answer.split(b"from-PP='t=", 1)[1].split(b"&", 1)[0].decode()
    claims = service.signer.check(ticket, TICKET_PURPOSE, service.now())
    assert claims is not None and claims.subject == "msn:alice@example.com"
    refused, _ = exchange(site, request.replace(b"%s", b"wrong"))
    assert refused.startswith(b"HTTP/1.1 401 Unauthorized\r\n"), refused
    assert b"\r\nWWW-Authenticate: Passport1.4 da-status=failed," in refused


def rst_request(body: bytes, length: bytes | None = None) -> bytes:
    size = str(len(body)).encode() if length is None else length
    return (
        b"POST /RST.srf HTTP/1.1\r\nContent-Type: text/xml; charset=utf-8\r\n"
        b"Content-Length: " + size + b"\r\nHost: login.live.com\r\n\r\n" + body
    )


RST_BODY = (
    b'<?xml version="1.0" encoding="utf-8"?>'
    b'<Envelope xmlns="http://schemas.xmlsoap.org/soap/envelope/"'
    b' xmlns:wsse="http://schemas.xmlsoap.org/ws/2003/06/secext"'
    b' xmlns:wsp="http://schemas.xmlsoap.org/ws/2002/12/policy"'
    b' xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/03/addressing"'
    b' xmlns:wst="http://schemas.xmlsoap.org/ws/2004/04/trust">'
    b'<Header><wsse:Security><wsse:UsernameToken Id="user">'
    b"<wsse:Username>alice@example.com</wsse:Username><wsse:Password>%s</wsse:Password>"
    b"</wsse:UsernameToken></wsse:Security></Header><Body>"
    b'<wst:RequestSecurityToken Id="RST0"><wsp:AppliesTo><wsa:EndpointReference>'
    b"<wsa:Address>http://Passport.NET/tb</wsa:Address></wsa:EndpointReference>"
    b"</wsp:AppliesTo></wst:RequestSecurityToken>"
    b'<wst:RequestSecurityToken Id="RST1"><wsp:AppliesTo><wsa:EndpointReference>'
    b"<wsa:Address>messenger.msn.com</wsa:Address></wsa:EndpointReference>"
    b"</wsp:AppliesTo></wst:RequestSecurityToken></Body></Envelope>"
)


def test_rst_srf_gives_the_same_ticket_as_passport14(
    world: tuple[FakeCore, MsnService, PassportSite],
) -> None:
    """POST /RST.srf with the right password: Compact1 holds ``t=<ticket>&amp;p=...``,
    a ticket the NS accepts for the same address."""
    _, service, site = world
    answer, _ = exchange(site, rst_request(RST_BODY.replace(b"%s", b"secret")))
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n"), answer
    assert b"\r\nContent-Type: text/xml; charset=utf-8\r\n" in answer
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.endswith(b"\r\nContent-Length: %d" % len(body))
    token = answer.split(b'<wsse:BinarySecurityToken Id="Compact1">', 1)[1].split(b"<", 1)[0]
    t, p = token.split(b"&amp;")
    assert t.startswith(b"t=") and p.startswith(b"p=")
    claims = service.signer.check(t[2:].decode(), TICKET_PURPOSE, service.now())
    assert claims is not None and claims.subject == "msn:alice@example.com"
    assert b'Id="BinaryDAToken0"' in answer


def test_rst_srf_wrong_password_is_a_failed_authentication_fault(
    world: tuple[FakeCore, MsnService, PassportSite],
) -> None:
    """A refused SOAP login is a ``wsse:FailedAuthentication`` fault without a token."""
    _, _, site = world
    answer, _ = exchange(site, rst_request(RST_BODY.replace(b"%s", b"nope")))
    assert b"<faultcode>wsse:FailedAuthentication</faultcode>" in answer
    assert b"BinarySecurityToken" not in answer and b"nope" not in answer


@pytest.mark.parametrize(
    "body",
    [
        b"not xml at all",
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><Envelope>&a;</Envelope>',
        b"<Envelope><Body/></Envelope>",
    ],
)
def test_unreadable_rst_bodies_are_a_400_fault(
    world: tuple[FakeCore, MsnService, PassportSite], body: bytes
) -> None:
    """Garbage, a DTD with entities, or no UsernameToken: 400 with a SOAP fault."""
    _, _, site = world
    answer, _ = exchange(site, rst_request(body))
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n"), answer
    assert b"<faultcode>wsse:InvalidSecurity</faultcode>" in answer


def test_oversize_body_is_refused_before_it_is_read(
    world: tuple[FakeCore, MsnService, PassportSite],
) -> None:
    """A Content-Length over 64 KiB: 413 and the connection closes, nothing parsed."""
    _, _, site = world
    answer, transport = exchange(site, rst_request(b"", length=b"10000000"))
    assert answer.startswith(b"HTTP/1.1 413 "), answer
    assert transport.disconnecting


def test_chunked_body_is_refused(world: tuple[FakeCore, MsnService, PassportSite]) -> None:
    """Transfer-Encoding: chunked (no client sends it here): 411 and closed."""
    _, _, site = world
    answer, transport = exchange(
        site, b"POST /RST.srf HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
    )
    assert answer.startswith(b"HTTP/1.1 411 "), answer
    assert transport.disconnecting


def test_a_silent_client_is_closed_after_the_timeout(
    world: tuple[FakeCore, MsnService, PassportSite],
) -> None:
    """A connection that sends nothing (or never finishes its TLS handshake, which
    reaches the channel as silence) is closed after the site's timeout."""
    _, _, site = world
    clock = site.reactor  # type: ignore[attr-defined]
    channel = site.buildProtocol(PEER)
    channel.callLater = clock.callLater
    transport = StringTransport(peerAddress=PEER)
    channel.makeConnection(transport)
    clock.advance(29)
    assert not transport.disconnecting
    clock.advance(2)
    assert transport.disconnecting


def _adapter_start(core: FakeCore, settings: dict[str, object]) -> tuple[object, list[str]]:
    from twisted.internet.testing import MemoryReactor

    from adapters.msn.adapter import MsnAdapter

    reactor = MemoryReactor()
    adapter = MsnAdapter(runner=run_now)
    started = run_now(adapter.start(core, reactor, settings))  # type: ignore[arg-type]
    listeners: list[str] = []
    started.addCallback(lambda found: listeners.extend(item.description for item in found))
    return reactor, listeners


def test_adapter_asks_the_core_for_a_certificate_with_its_names(tmp_path: Path) -> None:
    """Default settings: the adapter asks the core for a certificate naming the hosts
    MSN clients hard-code and its public host, listens with TLS and shows the
    fingerprint in its listener description."""
    core = FakeCore()
    core.tls = certificate.load_or_create(tmp_path, ["x.example"])
    reactor, listeners = _adapter_start(core, {"public_host": "gw.example.net"})
    assert set(PASSPORT_HOSTS) | {"gw.example.net"} <= set(core.tls_names)
    # listenSSL's own wiring, with the per-source cap outside TLS (adapters/admission.py)
    wrapped = [getattr(t[1], "wrappedFactory", None) for t in reactor.tcpServers]  # type: ignore[attr-defined]
    assert sum(isinstance(f, TLSMemoryBIOFactory) for f in wrapped) == 1
    assert any(core.tls.sha256 in text and "https://" in text for text in listeners)


def test_adapter_keeps_plain_http_on_request(tmp_path: Path) -> None:
    """``http_tls = false``: no certificate asked for, a plain TCP listener."""
    core = FakeCore()
    reactor, listeners = _adapter_start(core, {"http_tls": False})
    assert core.tls_names == []
    assert reactor.sslServers == []  # type: ignore[attr-defined]
    wrapped = [getattr(t[1], "wrappedFactory", None) for t in reactor.tcpServers]  # type: ignore[attr-defined]
    assert not any(isinstance(f, TLSMemoryBIOFactory) for f in wrapped)
    assert any("http://" in text for text in listeners)


def test_tls_cert_without_tls_is_a_config_error() -> None:
    """A certificate configured while ``http_tls = false`` is refused at start."""
    with pytest.raises(ValueError):
        MsnSettings.model_validate({"http_tls": False, "tls_cert": "a", "tls_key": "b"})


def test_nexus_names_a_reachable_host_without_port_443() -> None:
    """Bound to 0.0.0.0:443, DALogin names public_host without a port (msn-pecan
    connects to 443 whatever DALogin says)."""
    from twisted.internet.testing import MemoryReactor

    from adapters.msn.adapter import MsnAdapter

    core = FakeCore()
    reactor = MemoryReactor()
    adapter = MsnAdapter(runner=run_now)
    settings = {"http_tls": False, "http_host": "0.0.0.0", "http_port": 443}
    run_now(adapter.start(core, reactor, {**settings, "public_host": "gw.example.net"}))  # type: ignore[arg-type]
    site = reactor.tcpServers[-1][1]
    answer, _ = exchange(site, b"GET /rdr/pprdr.asp\r\n\r\n")
    assert b"DALogin=gw.example.net/login2.srf," in answer


def test_a_client_dribbling_bytes_is_cut_when_its_connection_is_too_old(
    world: tuple[FakeCore, MsnService, PassportSite],
) -> None:
    """A byte every 20 s keeps the idle timeout (30 s) away, but the connection is
    aborted once it is 120 s old (issue 13: pre-login time is bounded)."""
    _, _, site = world
    clock = site.reactor  # type: ignore[attr-defined]
    channel = site.buildProtocol(PEER)
    channel.callLater = clock.callLater
    transport = StringTransportWithDisconnection(peerAddress=PEER)
    transport.protocol = channel
    channel.makeConnection(transport)
    for byte in b"GET /rdr/pprd":
        clock.advance(20)
        if not transport.connected:
            break
        channel.dataReceived(bytes([byte]))
    assert not transport.connected and clock.seconds() <= 1_000_000 + 120 + 20
