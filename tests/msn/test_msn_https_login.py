"""End to end: real MSNP8+ clients' login over HTTPS (nexus, login2.srf, RST.srf).

A real gateway process with its default settings, a TLS client on 127.0.0.1 that
checks the gateway's own certificate for the host names clients hard-code, and the
exact bytes msn-pecan writes: 0.1.1's versionless nexus request and Passport 1.4 GET
(its nexus.c), >= 0.1.2's SOAP ``POST /RST.srf`` (its pn_auth.c), then the NS
``USR n TWN S`` with the ticket.
"""

from __future__ import annotations

import contextlib
import re
import socket
import ssl
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from adapters.msn.codec import Command, CommandCodec, Role
from tests.msn.pecan_https import PECAN_NEXUS, pecan_login2, pecan_rst, xml_escape
from tests.support.node import GatewayNode

pytestmark = pytest.mark.slow

MSN = {"factory": "adapters.msn.adapter:MsnAdapter", "switchboard_port": 0, "http_port": 0}
VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "msn"
EMAIL, PASSWORD = "test1@example.com", "s3cret&<pw>"


def start(gateway_node: Callable[..., GatewayNode], **settings: object) -> GatewayNode:
    node = gateway_node(["msn"], adapter_settings={"msn": {**MSN, **settings}})
    node.add_account("msn", EMAIL, PASSWORD, "Test One")
    return node


def tls_to(node: GatewayNode, server_name: str, cafile: Path | None = None) -> ssl.SSLSocket:
    """A TLS connection that trusts only the gateway's own certificate (or ``cafile``)
    and checks ``server_name`` against it, as a client with SSL_CERT_FILE set does."""
    context = ssl.create_default_context(
        cafile=str(cafile or node.data_dir / "tls" / "gateway.crt")
    )
    raw = socket.create_connection(("127.0.0.1", node.port("msn", 2)), timeout=10)
    return context.wrap_socket(raw, server_hostname=server_name)


def read_response(sock: socket.socket) -> bytes:
    """One HTTP response: the head, then Content-Length bytes (or up to the close)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    match = re.search(rb"\r\nContent-Length: (\d+)", head, re.IGNORECASE)
    if match is None:
        while chunk := sock.recv(65536):
            body += chunk
        return head + b"\r\n\r\n" + body
    while len(body) < int(match.group(1)):
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


class Ns:
    """The notification server side of msn-pecan's login (its captured lines)."""

    def __init__(self, node: GatewayNode) -> None:
        self.sock = socket.create_connection(("127.0.0.1", node.port("msn", 0)), timeout=10)
        self.codec = CommandCodec(Role.CLIENT)
        self.frames: list[object] = []

    def send_line(self, line: str) -> None:
        self.sock.sendall(line.encode() + b"\r\n")

    def expect(self, verb: str) -> Command:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for i, frame in enumerate(self.frames):
                if isinstance(frame, Command) and frame.verb == verb:
                    del self.frames[: i + 1]
                    return frame
            data = self.sock.recv(65536)
            assert data, f"NS closed waiting for {verb}: {self.frames}"
            self.frames += self.codec.receive_data(data)
        raise TimeoutError(verb)

    def open_login(self) -> Command:
        """VER, CVR, USR TWN I exactly as msn-pecan sent them; the policy reply."""
        vector = (VECTORS / "msnp12-msn-pecan-login.txt").read_text(encoding="utf-8")
        lines = [line[7:] for line in vector.splitlines() if line.startswith("C [NS] ")]
        for line, answer in zip(lines[:3], ("VER", "CVR", "USR"), strict=True):
            self.send_line(line)
            reply = self.expect(answer)
        return reply

    def finish_login(self, t: str, p: str) -> Command:
        self.send_line(f"USR 4 TWN S t={t}&p={p}")
        return self.expect("USR")


def test_login_endpoint_speaks_https_by_default(
    gateway_node: Callable[..., GatewayNode],
) -> None:
    """Default settings: the nexus/login port speaks TLS with a self-signed certificate
    under <data_dir>/tls valid for the hard-coded hosts; its fingerprint is in the log."""
    node = start(gateway_node)
    for name in ("nexus.passport.com", "login.passport.com", "login.live.com", "localhost"):
        with tls_to(node, name) as sock:
            sock.sendall(b"GET /rdr/pprdr.asp HTTP/1.1\r\nHost: " + name.encode() + b"\r\n\r\n")
            assert read_response(sock).startswith(b"HTTP/1.1 200 ")
    cert = ssl.PEM_cert_to_DER_cert((node.data_dir / "tls" / "gateway.crt").read_text())
    import hashlib

    fingerprint = ":".join(f"{b:02X}" for b in hashlib.sha256(cert).digest())
    assert fingerprint in node.log()
    assert "https://" in node.log()


def test_msn_pecan_0_1_1_logs_in_over_https(gateway_node: Callable[..., GatewayNode]) -> None:
    """msn-pecan 0.1.1's bytes: versionless nexus request, case-exact PassportURLs,
    Passport 1.4 GET, HTTP/1.1 200 with Authentication-Info, then USR TWN S -> OK."""
    node = start(gateway_node)
    ns = Ns(node)
    policy = ns.open_login()
    assert policy.args[:2] == ("TWN", "S")
    with tls_to(node, "nexus.passport.com") as sock:
        sock.sendall(PECAN_NEXUS)
        nexus = read_response(sock)
    assert nexus.startswith(b"HTTP/1.1 200 OK\r\n"), nexus
    assert b"\r\nPassportURLs: DARealm=Passport.Net,DALogin=" in nexus
    da_login = nexus.split(b"DALogin=", 1)[1].split(b",", 1)[0].decode()
    host, _, path = da_login.partition("/")
    with tls_to(node, "login.passport.com") as sock:
        sock.sendall(pecan_login2("/" + path, host, PASSWORD))
        answer = read_response(sock)
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n"), answer
    assert b"\r\nAuthentication-Info: Passport1.4 da-status=success," in answer
    params = answer.split(b"from-PP='", 1)[1].split(b"'", 1)[0].decode()
    t, p = (part[2:] for part in params.split("&", 1))
    ok = ns.finish_login(t, p)
    assert ok.args[0] == "OK" and ok.args[1] == EMAIL
    assert PASSWORD not in node.log() and t not in node.log()


def test_msn_pecan_soap_login_over_https(gateway_node: Callable[..., GatewayNode]) -> None:
    """msn-pecan >= 0.1.2: POST /RST.srf (WS-Trust); the PPToken1 answer splits on
    ``&amp;`` into t= and p= as pn_auth.c does, and USR TWN S with it succeeds."""
    node = start(gateway_node)
    ns = Ns(node)
    ns.open_login()
    with tls_to(node, "login.live.com") as sock:
        sock.sendall(pecan_rst(EMAIL, xml_escape(PASSWORD)))
        answer = read_response(sock)
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n"), answer
    body = answer.split(b"\r\n\r\n", 1)[1].decode()
    # pn_auth.c: the first of these two literal tags, then the text up to "<".
    tags = ('<wsse:BinarySecurityToken Id="PPToken1">', '<wsse:BinarySecurityToken Id="Compact1">')
    start_tag = next(tag for tag in tags if tag in body)
    token = body.split(start_tag, 1)[1].split("<", 1)[0]
    t, p = (part[2:] for part in token.split("&amp;", 1))
    assert "<wsa:Address>messenger.msn.com</wsa:Address>" in body
    assert "<wsu:Expires>" in body.split("<wsa:Address>messenger.msn.com</wsa:Address>", 1)[1]
    ok = ns.finish_login(t, p)
    assert ok.args[0] == "OK"
    assert PASSWORD not in node.log()


def test_wrong_password_is_refused_in_each_clients_terms(
    gateway_node: Callable[..., GatewayNode],
) -> None:
    """Passport 1.4: 401 with WWW-Authenticate da-status=failed; SOAP: a
    wsse:FailedAuthentication fault; the password is never logged."""
    node = start(gateway_node)
    with tls_to(node, "login.passport.com") as sock:
        sock.sendall(pecan_login2("/login2.srf", "login.passport.com", "wrong-pw"))
        answer = read_response(sock)
    assert answer.startswith(b"HTTP/1.1 401 Unauthorized\r\n"), answer
    assert b"\r\nWWW-Authenticate: Passport1.4 da-status=failed," in answer
    with tls_to(node, "login.live.com") as sock:
        sock.sendall(pecan_rst(EMAIL, "wrong-pw"))
        fault = read_response(sock)
    assert b"<faultcode>wsse:FailedAuthentication</faultcode>" in fault
    assert b"BinarySecurityToken" not in fault
    assert "wrong-pw" not in node.log()


def test_hostile_connections_are_refused_one_by_one(
    gateway_node: Callable[..., GatewayNode],
) -> None:
    """Plain HTTP or garbage on the TLS port, a silent client and an oversize body are
    each closed and logged once, without a traceback; the endpoint keeps serving."""
    node = start(gateway_node, http_timeout=1)
    port = node.port("msn", 2)
    for junk in (b"GET /rdr/pprdr.asp HTTP/1.1\r\n\r\n", b"\x00\xff" * 300):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            raw.sendall(junk)
            with contextlib.suppress(ConnectionResetError):  # a reset is a refusal too
                while raw.recv(65536):
                    pass
    with socket.create_connection(("127.0.0.1", port), timeout=10) as silent:
        started = time.monotonic()
        with contextlib.suppress(ConnectionResetError):
            while silent.recv(65536):
                pass
        assert time.monotonic() - started < 8
    with tls_to(node, "login.live.com") as sock:
        sock.sendall(b"POST /RST.srf HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n")
        assert read_response(sock).startswith(b"HTTP/1.1 413 ")
    with tls_to(node, "nexus.passport.com") as sock:
        sock.sendall(PECAN_NEXUS)
        assert b"\r\nPassportURLs: " in read_response(sock)
    log = node.log()
    assert "Traceback" not in log
    assert log.count("TLS handshake with 127.0.0.1 on the login endpoint failed") == 2
    assert log.count("request body too large") == 1


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1 is deprecated:DeprecationWarning")
def test_a_tls_1_0_client_reaches_the_nexus(gateway_node: Callable[..., GatewayNode]) -> None:
    """A client limited to TLS 1.0 and RSA AES-CBC (Windows Vista/7 SChannel, as MSN
    Messenger 7.5 uses it) fetches the nexus."""
    node = start(gateway_node)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(str(node.data_dir / "tls" / "gateway.crt"))
    context.set_ciphers("AES128-SHA:AES256-SHA:@SECLEVEL=0")
    context.minimum_version = ssl.TLSVersion.TLSv1
    context.maximum_version = ssl.TLSVersion.TLSv1
    raw = socket.create_connection(("127.0.0.1", node.port("msn", 2)), timeout=10)
    with context.wrap_socket(raw, server_hostname="nexus.passport.com") as sock:
        assert sock.version() == "TLSv1"
        sock.sendall(PECAN_NEXUS)
        assert b"\r\nPassportURLs: " in read_response(sock)


def test_plain_http_on_request(gateway_node: Callable[..., GatewayNode]) -> None:
    """``http_tls = false``: the same endpoint over plain HTTP, no certificate made."""
    node = start(gateway_node, http_tls=False)
    with socket.create_connection(("127.0.0.1", node.port("msn", 2)), timeout=10) as sock:
        sock.sendall(PECAN_NEXUS)
        assert b"\r\nPassportURLs: " in read_response(sock)
    assert not (node.data_dir / "tls" / "gateway.crt").exists()


def test_configured_certificate_serves_msn_pecan(
    gateway_node: Callable[..., GatewayNode], tmp_path: Path
) -> None:
    """With tls_cert/tls_key the versionless nexus request gets its PassportURLs (the
    old memory-BIO TLS wrapper raised AttributeError here and answered nothing)."""
    from gateway import certificate

    made = certificate.load_or_create(tmp_path / "own", ["login.example.net"])
    node = start(gateway_node, tls_cert=made.cert_path, tls_key=made.key_path)
    with tls_to(node, "login.example.net", Path(made.cert_path)) as sock:
        sock.sendall(PECAN_NEXUS)
        nexus = read_response(sock)
    assert b"\r\nPassportURLs: DARealm=Passport.Net," in nexus
    assert made.sha256 in node.log()
    assert not (node.data_dir / "tls").exists()
