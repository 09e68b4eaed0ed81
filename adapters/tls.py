"""TLS for listeners that legacy clients reach: Twisted's own TLS over pyOpenSSL.

``twisted.internet.ssl.CertificateOptions`` with two changes for clients of the
2003-2009 era (docs/adr/0008-https-login.md):

- TLS 1.0 and 1.1 are accepted besides 1.2 and 1.3. MSN Messenger 5.0-7.5 and Windows
  Live Messenger 8.x on Windows XP/7 reach the login service through SChannel/WinInet,
  which offers TLS 1.0 only (TLS 1.2 is off by default there).
- OpenSSL 3 refuses TLS 1.0/1.1 (their handshake signatures use MD5/SHA-1) at every
  security level above 0, so the cipher string ends in ``@SECLEVEL=0``; it names
  only RSA/ECDHE suites with AES or 3DES and no MD5, export, anonymous or null suites.
  Windows XP's SChannel has no AES: ``DES-CBC3-SHA`` is the one suite it shares with
  a current OpenSSL (RC4 is gone from OpenSSL 3's default provider). Modern clients
  (libpurple/GnuTLS/NSS, Python) still negotiate TLS 1.3 or 1.2 with ECDHE+AEAD,
  which come first in server preference.

Network-neutral: any adapter whose clients need TLS uses it.
"""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from OpenSSL import SSL
from twisted.internet.ssl import CertificateOptions, TLSVersion

from adapters.contract import TlsCertificate

LEGACY_CIPHERS = (
    "ECDHE+AESGCM:ECDHE+CHACHA20:ECDHE+AES:RSA+AESGCM:RSA+AES:RSA+3DES"
    ":!aNULL:!eNULL:!EXPORT:!MD5:!DSS:!RC4:@SECLEVEL=0"
)
"""Server preference, strongest first; ``@SECLEVEL=0`` only for TLS 1.0/1.1 clients."""


class CertificateFileError(ValueError):
    """A certificate or key file cannot be used; the message names it and says why."""


class LegacyServerOptions(CertificateOptions):
    """CertificateOptions whose context takes :data:`LEGACY_CIPHERS` (Twisted keeps a
    cipher list but drops OpenSSL directives such as ``@SECLEVEL``) and the
    certificate as ``cryptography`` objects (pyOpenSSL deprecates its own X509/PKey,
    which CertificateOptions would pass)."""

    _legacy_context: SSL.Context | None = None

    def __init__(self, chain: list[x509.Certificate], key: PrivateKey) -> None:
        super().__init__(insecurelyLowerMinimumTo=TLSVersion.TLSv1_0)
        self._chain = chain
        self._key = key

    def getContext(self) -> SSL.Context:
        if self._legacy_context is None:
            context = super().getContext()
            # Before any Connection uses it: pyOpenSSL freezes a context after that.
            context.use_certificate(self._chain[0])
            context.use_privatekey(self._key)
            for extra in self._chain[1:]:
                context.add_extra_chain_cert(extra)
            context.check_privatekey()
            context.set_cipher_list(LEGACY_CIPHERS.encode("ascii"))
            self._legacy_context = context
        return self._legacy_context


def _fingerprint(cert: x509.Certificate) -> str:
    return ":".join(f"{b:02X}" for b in cert.fingerprint(hashes.SHA256()))


PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def read_certificate(cert_path: str, key_path: str) -> tuple[list[x509.Certificate], PrivateKey]:
    """The certificate chain and private key in two PEM files, or CertificateFileError."""
    try:
        chain = x509.load_pem_x509_certificates(Path(cert_path).read_bytes())
    except OSError as exc:
        raise CertificateFileError(f"cannot read certificate {cert_path}: {exc.strerror}") from None
    except ValueError:
        raise CertificateFileError(f"{cert_path}: not a PEM certificate") from None
    try:
        key = serialization.load_pem_private_key(Path(key_path).read_bytes(), password=None)
    except OSError as exc:
        raise CertificateFileError(f"cannot read key {key_path}: {exc.strerror}") from None
    except (ValueError, TypeError):
        raise CertificateFileError(f"{key_path}: not an unencrypted PEM private key") from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise CertificateFileError(f"{key_path}: only RSA or EC keys are supported")
    if key.public_key() != chain[0].public_key():
        raise CertificateFileError(f"{key_path} is not the key of {cert_path}")
    return chain, key


def configured_certificate(cert_path: str, key_path: str) -> TlsCertificate:
    """A certificate the admin configured, checked usable, with its fingerprint."""
    chain, _ = read_certificate(cert_path, key_path)
    return TlsCertificate(cert_path, key_path, _fingerprint(chain[0]), self_made=False)


def server_options(certificate: TlsCertificate) -> LegacyServerOptions:
    """Server-side TLS options for ``certificate``: TLS 1.0 and up, legacy ciphers last."""
    chain, key = read_certificate(certificate.cert_path, certificate.key_path)
    return LegacyServerOptions(chain, key)
