"""The node's own TLS certificate: load it, or make a self-signed one, under the data dir.

Legacy clients reach some login endpoints only over HTTPS (MSN's Passport nexus and
login URL). Out of the box the gateway serves them with a self-signed certificate it
makes on first start: ``<data_dir>/tls/gateway.crt`` and ``gateway.key`` (RSA 2048,
key file mode 0600). Its subject alternative names are 127.0.0.1, localhost, and the
host names the adapters ask for (their public hosts and the names their clients
hard-code). The gateway names no network: the list comes from the adapters.

A certificate this module made is recognised by its subject organisation
(:data:`SELF_MADE_ORG`) and made again when a name an adapter asks for is missing,
when it expires within :data:`RENEW_BEFORE`, or when the files cannot be read; a new
one keeps every name of the old one, so several adapters can ask in turn. A file the
admin put there (another subject) is used as it is. See docs/adr/0008-https-login.md.

Blocking (RSA key generation, file I/O): call it off the event loop.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from adapters.contract import TlsCertificate

CERT_FILE = "gateway.crt"
KEY_FILE = "gateway.key"
SELF_MADE_ORG = "imgateway self-signed"
ALWAYS_NAMES = ("127.0.0.1", "localhost")
KEY_BITS = 2048
VALIDITY = datetime.timedelta(days=825)  # the longest some TLS stacks accept for a leaf
RENEW_BEFORE = datetime.timedelta(days=30)


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the DER certificate as colon-separated hex (what browsers and
    ``openssl x509 -fingerprint -sha256`` show)."""
    return ":".join(f"{b:02X}" for b in cert.fingerprint(hashes.SHA256()))


def _clean_names(names: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for name in (*names, *ALWAYS_NAMES):  # the first name asked for becomes the CN
        name = name.strip().lower().rstrip(".")
        if name and name not in ("0.0.0.0", "::"):
            seen.setdefault(name, None)
    return list(seen)


def _san(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def names_of(cert: x509.Certificate) -> set[str]:
    """The subject alternative names of ``cert`` (DNS names lower-cased, IPs as text)."""
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    found = {n.lower() for n in ext.get_values_for_type(x509.DNSName)}
    found |= {str(ip) for ip in ext.get_values_for_type(x509.IPAddress)}
    return found


def _self_made(cert: x509.Certificate) -> bool:
    orgs = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    return any(attr.value == SELF_MADE_ORG for attr in orgs)


def _write_private(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def make_self_signed(
    names: Sequence[str], now: datetime.datetime
) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    """A self-signed RSA 2048 certificate for ``names`` (plus 127.0.0.1 and localhost).

    It is its own CA (basicConstraints CA:TRUE), so a client can trust exactly this
    certificate as an anchor (``SSL_CERT_FILE``, a Windows root store, NSS)."""
    all_names = _clean_names(names)
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, SELF_MADE_ORG),
            x509.NameAttribute(NameOID.COMMON_NAME, all_names[0]),
        ]
    )
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName([_san(n) for n in all_names]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _read(cert_path: Path) -> x509.Certificate | None:
    try:
        return x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (OSError, ValueError):
        return None


def load_or_create(
    directory: Path, names: Sequence[str], now: datetime.datetime | None = None
) -> TlsCertificate:
    """The certificate in ``directory`` if it serves ``names``, else a new self-signed one
    (written there) that serves them and every name the old self-made one had."""
    now = now or datetime.datetime.now(datetime.UTC)
    cert_path, key_path = directory / CERT_FILE, directory / KEY_FILE
    wanted = set(_clean_names(names))
    old = _read(cert_path) if key_path.exists() else None
    if old is not None and not _self_made(old):
        return TlsCertificate(str(cert_path), str(key_path), fingerprint(old), self_made=False)
    if old is not None and wanted <= names_of(old) and old.not_valid_after_utc - RENEW_BEFORE > now:
        return TlsCertificate(str(cert_path), str(key_path), fingerprint(old), self_made=True)
    keep = sorted(names_of(old)) if old is not None else []
    cert, key = make_self_signed([*names, *keep], now)
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_private(key_path, key_pem, 0o600)
    _write_private(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return TlsCertificate(
        str(cert_path), str(key_path), fingerprint(cert), self_made=True, created=True
    )
