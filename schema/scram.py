"""SCRAM-SHA-256 arithmetic (RFC 5802 / RFC 7677), shared by the core, which checks
proofs against a stored verifier, and by clients (the UIN client), which make them.

The verifier (salt, iterations, StoredKey, ServerKey) is not password-equivalent: a
copy of it lets nobody log in as the user without first inverting SHA-256.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

DEFAULT_ITERATIONS = 4096


def _hmac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def salted_password(password: str, salt: bytes, iterations: int) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)


@dataclass(frozen=True, slots=True)
class ScramVerifier:
    salt: bytes
    iterations: int
    stored_key: bytes
    server_key: bytes


def make_verifier(
    password: str, salt: bytes, iterations: int = DEFAULT_ITERATIONS
) -> ScramVerifier:
    salted = salted_password(password, salt, iterations)
    client_key = _hmac(salted, b"Client Key")
    return ScramVerifier(
        salt=salt,
        iterations=iterations,
        stored_key=hashlib.sha256(client_key).digest(),
        server_key=_hmac(salted, b"Server Key"),
    )


def client_proof(password: str, salt: bytes, iterations: int, auth_message: bytes) -> bytes:
    """What a client sends: ClientKey XOR HMAC(StoredKey, AuthMessage)."""
    salted = salted_password(password, salt, iterations)
    client_key = _hmac(salted, b"Client Key")
    stored_key = hashlib.sha256(client_key).digest()
    return _xor(client_key, _hmac(stored_key, auth_message))


def verify_proof(verifier: ScramVerifier, auth_message: bytes, proof: bytes) -> bool:
    if len(proof) != 32:
        return False
    client_key = _xor(proof, _hmac(verifier.stored_key, auth_message))
    return hmac.compare_digest(hashlib.sha256(client_key).digest(), verifier.stored_key)


def server_signature(verifier: ScramVerifier, auth_message: bytes) -> bytes:
    """What the server proves back: HMAC(ServerKey, AuthMessage)."""
    return _hmac(verifier.server_key, auth_message)


def expected_server_signature(
    password: str, salt: bytes, iterations: int, auth_message: bytes
) -> bytes:
    """The client's check of the server's signature."""
    salted = salted_password(password, salt, iterations)
    return _hmac(_hmac(salted, b"Server Key"), auth_message)
