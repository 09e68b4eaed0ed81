"""TLS for legacy clients (adapters/tls.py): which clients complete a handshake.

Both ends are pyOpenSSL connections over memory BIOs: the server uses exactly the
context the listeners use, the clients pin the versions and suites of the clients
named in docs/adr/0008-https-login.md. No sockets, no reactor.
"""

from __future__ import annotations

import contextlib
import datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from OpenSSL import SSL

from adapters import tls
from gateway import certificate


def handshake(server_ctx: SSL.Context, client_ctx: SSL.Context) -> tuple[str, str]:
    """Run a handshake between memory-BIO connections; (version, cipher) or SSL.Error."""
    server = SSL.Connection(server_ctx, None)
    server.set_accept_state()
    client = SSL.Connection(client_ctx, None)
    client.set_connect_state()
    for _ in range(20):
        for side in (client, server):
            with contextlib.suppress(SSL.WantReadError):
                side.do_handshake()
        for source, sink in ((client, server), (server, client)):
            try:
                data = source.bio_read(65536)
            except SSL.WantReadError:
                continue
            sink.bio_write(data)
        try:
            client.do_handshake()
            server.do_handshake()
        except SSL.WantReadError:
            continue
        return str(server.get_protocol_version_name()), str(server.get_cipher_name())
    raise AssertionError("handshake did not finish")


@pytest.fixture(scope="module")
def server_ctx(tmp_path_factory: pytest.TempPathFactory) -> SSL.Context:
    made = certificate.load_or_create(tmp_path_factory.mktemp("tls"), ["login.passport.com"])
    return tls.server_options(made).getContext()


def client(version: int, ciphers: bytes | None = None) -> SSL.Context:
    context = SSL.Context(SSL.TLS_METHOD)
    context.set_min_proto_version(version)
    context.set_max_proto_version(version)
    if ciphers is not None:
        context.set_cipher_list(ciphers)
    return context


def test_modern_clients_get_tls_1_3(server_ctx: SSL.Context) -> None:
    """libpurple (GnuTLS/NSS) and Python clients of today negotiate TLS 1.3."""
    version, _ = handshake(server_ctx, client(SSL.TLS1_3_VERSION))
    assert version == "TLSv1.3"


def test_tls_1_2_prefers_forward_secret_aead(server_ctx: SSL.Context) -> None:
    """A TLS 1.2 client offering everything gets ECDHE with AES-GCM (server order)."""
    _, cipher = handshake(server_ctx, client(SSL.TLS1_2_VERSION, b"ALL:@SECLEVEL=0"))
    assert cipher.startswith("ECDHE-RSA-AES") and "GCM" in cipher


def test_tls_1_0_with_rsa_aes_cbc_completes(server_ctx: SSL.Context) -> None:
    """Windows Vista/7 SChannel as MSN Messenger 7.5 / WLM 8 use it: TLS 1.0 with
    AES128-SHA only. OpenSSL refuses this above security level 0."""
    version, cipher = handshake(
        server_ctx, client(SSL.TLS1_VERSION, b"AES128-SHA:AES256-SHA:@SECLEVEL=0")
    )
    assert version == "TLSv1" and cipher in ("AES128-SHA", "AES256-SHA")


def test_no_export_null_or_anonymous_suites(server_ctx: SSL.Context) -> None:
    """Lowering the level lets no broken suite in: a client offering only those fails."""
    with pytest.raises(SSL.Error):
        handshake(server_ctx, client(SSL.TLS1_VERSION, b"aNULL:eNULL:EXPORT:@SECLEVEL=0"))


def test_a_configured_pair_that_does_not_match_is_a_clear_error(tmp_path: Path) -> None:
    """tls_cert with another certificate's key: CertificateFileError naming both."""
    now = datetime.datetime.now(datetime.UTC)
    cert, _ = certificate.make_self_signed(["a.example"], now)
    _, other_key = certificate.make_self_signed(["b.example"], now)
    cert_path, key_path = tmp_path / "c.pem", tmp_path / "k.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        other_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(tls.CertificateFileError, match="is not the key of"):
        tls.configured_certificate(str(cert_path), str(key_path))
    with pytest.raises(tls.CertificateFileError, match="cannot read"):
        tls.configured_certificate(str(tmp_path / "missing.pem"), str(key_path))
    with pytest.raises(tls.CertificateFileError, match="not an unencrypted PEM private key"):
        tls.configured_certificate(str(cert_path), str(cert_path))
