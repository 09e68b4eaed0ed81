"""The node's own TLS certificate (gateway/certificate.py): made once, kept, renewed."""

from __future__ import annotations

import datetime
import hashlib
import stat
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway import certificate

MSN_NAMES = ("gw.example.net", "nexus.passport.com", "login.passport.com")


def _load(path: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(Path(path).read_bytes())


def test_first_use_makes_a_self_signed_rsa_2048_certificate(tmp_path: Path) -> None:
    """No files: an RSA 2048 certificate for the asked names, 127.0.0.1 and localhost,
    key file 0600, fingerprint = SHA-256 of the DER bytes."""
    made = certificate.load_or_create(tmp_path / "tls", MSN_NAMES)
    assert made.self_made and made.created
    cert = _load(made.cert_path)
    assert certificate.names_of(cert) == {"127.0.0.1", "localhost", *MSN_NAMES}
    common = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    assert [attr.value for attr in common] == ["gw.example.net"]
    key = cert.public_key()
    assert isinstance(key, rsa.RSAPublicKey) and key.key_size == 2048
    assert stat.S_IMODE(Path(made.key_path).stat().st_mode) == 0o600
    der = cert.public_bytes(encoding=certificate.serialization.Encoding.DER)
    assert made.sha256 == ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert x509.IPAddress(certificate.ipaddress.ip_address("127.0.0.1")) in san


def test_second_start_keeps_the_certificate(tmp_path: Path) -> None:
    """The same names again: the same certificate, not made anew."""
    first = certificate.load_or_create(tmp_path, MSN_NAMES)
    again = certificate.load_or_create(tmp_path, ["login.passport.com"])
    assert again.sha256 == first.sha256 and not again.created


def test_a_missing_name_makes_it_again_keeping_the_old_names(tmp_path: Path) -> None:
    """Another adapter asks for a name the certificate lacks: a new one with both lists."""
    first = certificate.load_or_create(tmp_path, MSN_NAMES)
    second = certificate.load_or_create(tmp_path, ["login.yahoo.com"])
    assert second.created and second.sha256 != first.sha256
    assert {"login.yahoo.com", *MSN_NAMES} <= certificate.names_of(_load(second.cert_path))


def test_an_expiring_certificate_is_renewed(tmp_path: Path) -> None:
    """Within RENEW_BEFORE of its end the certificate is made again."""
    first = certificate.load_or_create(tmp_path, MSN_NAMES)
    later = datetime.datetime.now(datetime.UTC) + certificate.VALIDITY - datetime.timedelta(days=1)
    renewed = certificate.load_or_create(tmp_path, MSN_NAMES, now=later)
    assert renewed.created and renewed.sha256 != first.sha256


def test_a_certificate_the_admin_placed_is_used_as_it_is(tmp_path: Path) -> None:
    """Files under tls/ that the gateway did not make are never replaced."""
    cert, key = certificate.make_self_signed(["own.example"], datetime.datetime.now(datetime.UTC))
    # Same files, another subject: as if the admin copied a CA-issued pair there.
    placed = x509.CertificateBuilder(
        issuer_name=x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "CA")]),
        subject_name=x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "own.example")]),
        public_key=key.public_key(),
        serial_number=1,
        not_valid_before=cert.not_valid_before_utc,
        not_valid_after=cert.not_valid_after_utc,
    ).sign(key, certificate.hashes.SHA256())
    directory = tmp_path / "tls"
    directory.mkdir()
    (directory / certificate.CERT_FILE).write_bytes(
        placed.public_bytes(certificate.serialization.Encoding.PEM)
    )
    (directory / certificate.KEY_FILE).write_bytes(
        key.private_bytes(
            certificate.serialization.Encoding.PEM,
            certificate.serialization.PrivateFormat.PKCS8,
            certificate.serialization.NoEncryption(),
        )
    )
    used = certificate.load_or_create(directory, MSN_NAMES)
    assert not used.self_made and not used.created
    assert used.sha256 == certificate.fingerprint(placed)


def test_unreadable_files_are_made_again(tmp_path: Path) -> None:
    """A damaged certificate file does not stop the start: a fresh one replaces it."""
    (tmp_path / certificate.CERT_FILE).write_text("not a certificate")
    (tmp_path / certificate.KEY_FILE).write_text("nor a key")
    made = certificate.load_or_create(tmp_path, MSN_NAMES)
    assert made.created and _load(made.cert_path)
