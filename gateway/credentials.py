"""Password verifiers for every legacy login scheme, and how they are protected.

Which verifier each scheme needs (see docs/adr/0002-password-verifiers.md):

| scheme | server must compute | stored as |
|---|---|---|
| MSN TWN, ICQ roasted, admin | compare a password given in clear | scrypt hash (not password-equivalent) |
| UIN SCRAM-SHA-256 | check a proof | SCRAM StoredKey/ServerKey (not password-equivalent) |
| OSCAR BUCP MD5 with TLV 0x4C | MD5(key + MD5(pw) + suffix) | derived from the sealed password |
| OSCAR BUCP MD5 without 0x4C | MD5(key + pw + suffix) | the sealed password |
| MSNP2-7 MD5 | MD5(salt + pw), server-chosen salt | the sealed password |

The last three need the password itself (or MD5(pw), which is just as good to an
attacker for that scheme): they are password-equivalent by the protocols' design. We
keep them sealed with AES-256-GCM under a key that never enters Redis (a file in the
data directory, mode 0600, or a configured path), with the account's address as
associated data so a sealed blob copied onto another account does not open. A Redis
dump alone reveals no password. Only networks whose schemes need it get a sealed copy.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from schema import scram
from schema.records import (
    KeyedMd5Proof,
    LoginProof,
    PlainPasswordProof,
    SaltedMd5Proof,
    ScramProof,
)

SEALED_NETWORKS = frozenset({"oscar", "msn"})
"""Networks with a login scheme that needs the password itself."""

_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1
MAX_PASSWORD_BYTES = 256


class CredentialError(ValueError):
    pass


def check_password_policy(password: str) -> None:
    if not password:
        raise CredentialError("the password is empty")
    if len(password.encode("utf-8")) > MAX_PASSWORD_BYTES:
        raise CredentialError(f"the password is longer than {MAX_PASSWORD_BYTES} bytes")
    if any(ord(c) < 32 for c in password):
        raise CredentialError("the password contains control characters")


class SealingKey:
    """AES-256-GCM key for password-equivalent verifiers."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise CredentialError("the sealing key must be 32 bytes")
        self._aead = AESGCM(key)
        self._key = key

    def __repr__(self) -> str:
        return "SealingKey(<hidden>)"

    @classmethod
    def load_or_create(cls, path: Path) -> SealingKey:
        """Read the key file, creating it (0600) with a random key the first time."""
        if path.exists():
            key = path.read_bytes()
            if len(key) != 32:
                raise CredentialError(f"{path} does not hold a 32-byte key")
            return cls(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_bytes(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(key)
        return cls(key)

    def derive(self, label: bytes) -> bytes:
        """A secret for another purpose, derived from the key (HMAC-SHA256)."""
        return hmac.new(self._key, label, hashlib.sha256).digest()

    def seal(self, address: str, password: str) -> str:
        nonce = secrets.token_bytes(12)
        blob = self._aead.encrypt(nonce, password.encode("utf-8"), address.encode("utf-8"))
        return base64.b64encode(nonce + blob).decode("ascii")

    def unseal(self, address: str, sealed: str) -> str:
        try:
            raw = base64.b64decode(sealed, validate=True)
            plain = self._aead.decrypt(raw[:12], raw[12:], address.encode("utf-8"))
        except (ValueError, InvalidTag):
            raise CredentialError("a sealed verifier does not open with this key") from None
        return plain.decode("utf-8")


def scrypt_hash(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32
    )
    return "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def scrypt_verify(password: str, stored: str) -> bool:
    try:
        tag, salt_b64, digest_b64 = stored.split("$")
        salt, digest = base64.b64decode(salt_b64), base64.b64decode(digest_b64)
    except ValueError:
        return False
    if tag != "scrypt":
        return False
    candidate = hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32
    )
    return hmac.compare_digest(candidate, digest)


@dataclass(frozen=True, slots=True)
class StoredVerifiers:
    """What an account keeps in Redis (field names as stored)."""

    scrypt: str
    scram_salt: str
    scram_iterations: int
    scram_stored_key: str
    scram_server_key: str
    sealed: str  # "" for networks that do not need it

    def as_fields(self) -> dict[str, str]:
        return {
            "v_scrypt": self.scrypt,
            "v_scram_salt": self.scram_salt,
            "v_scram_iter": str(self.scram_iterations),
            "v_scram_stored": self.scram_stored_key,
            "v_scram_server": self.scram_server_key,
            "v_sealed": self.sealed,
        }

    @classmethod
    def from_fields(cls, fields: dict[str, str]) -> StoredVerifiers:
        return cls(
            scrypt=fields.get("v_scrypt", ""),
            scram_salt=fields.get("v_scram_salt", ""),
            scram_iterations=int(fields.get("v_scram_iter", "0") or 0),
            scram_stored_key=fields.get("v_scram_stored", ""),
            scram_server_key=fields.get("v_scram_server", ""),
            sealed=fields.get("v_sealed", ""),
        )

    def scram(self) -> scram.ScramVerifier:
        return scram.ScramVerifier(
            salt=base64.b64decode(self.scram_salt),
            iterations=self.scram_iterations,
            stored_key=base64.b64decode(self.scram_stored_key),
            server_key=base64.b64decode(self.scram_server_key),
        )


def make_verifiers(address: str, password: str, key: SealingKey) -> StoredVerifiers:
    check_password_policy(password)
    network = address.partition(":")[0]
    salt = secrets.token_bytes(16)
    sv = scram.make_verifier(password, salt)
    return StoredVerifiers(
        scrypt=scrypt_hash(password),
        scram_salt=base64.b64encode(sv.salt).decode(),
        scram_iterations=sv.iterations,
        scram_stored_key=base64.b64encode(sv.stored_key).decode(),
        scram_server_key=base64.b64encode(sv.server_key).decode(),
        sealed=key.seal(address, password) if network in SEALED_NETWORKS else "",
    )


@dataclass(frozen=True, slots=True)
class ProofCheck:
    ok: bool
    supported: bool = True
    server_signature: bytes = b""


def check_proof(
    address: str, proof: LoginProof, stored: StoredVerifiers, key: SealingKey
) -> ProofCheck:
    """Does ``proof`` show knowledge of the password behind ``stored``?"""
    if isinstance(proof, PlainPasswordProof):
        return ProofCheck(ok=bool(stored.scrypt) and scrypt_verify(proof.password, stored.scrypt))
    if isinstance(proof, ScramProof):
        if not stored.scram_stored_key:
            return ProofCheck(ok=False, supported=False)
        verifier = stored.scram()
        if not scram.verify_proof(verifier, proof.auth_message, proof.client_proof):
            return ProofCheck(ok=False)
        return ProofCheck(
            ok=True, server_signature=scram.server_signature(verifier, proof.auth_message)
        )
    if not stored.sealed:
        return ProofCheck(ok=False, supported=False)
    password = key.unseal(address, stored.sealed).encode("utf-8")
    if isinstance(proof, KeyedMd5Proof):
        secret = hashlib.md5(password).digest() if proof.prehashed else password
        expected = hashlib.md5(proof.key + secret + proof.suffix).digest()
        return ProofCheck(ok=hmac.compare_digest(expected, proof.digest))
    if isinstance(proof, SaltedMd5Proof):
        expected_hex = hashlib.md5(proof.salt.encode("utf-8") + password).hexdigest()
        return ProofCheck(ok=hmac.compare_digest(expected_hex, proof.digest_hex.lower()))
    return ProofCheck(ok=False, supported=False)


_DUMMY_SCRYPT: list[str] = []


def dummy_check(proof: LoginProof) -> ProofCheck:
    """The work a real check of ``proof`` would cost, for an account that does not
    exist (a plain password is hashed against a throw-away verifier)."""
    if isinstance(proof, PlainPasswordProof):
        if not _DUMMY_SCRYPT:
            _DUMMY_SCRYPT.append(scrypt_hash(secrets.token_urlsafe(16)))
        scrypt_verify(proof.password, _DUMMY_SCRYPT[0])
    return ProofCheck(ok=False)


def fake_scram_salt(address: str, node_secret: bytes) -> bytes:
    """A stable salt for an address with no account, so a probe cannot tell which
    UINs exist by watching salts change."""
    return hmac.new(node_secret, b"fake-salt:" + address.encode(), hashlib.sha256).digest()[:16]
