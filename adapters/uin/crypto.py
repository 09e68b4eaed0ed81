"""UIN key material (docs/protocols/uin.md, section 5): the SCRAM auth message, the
per-session integrity keys, stateless handshake cookies, and the ephemeral
Diffie-Hellman that protects a self-registration password.

Pure functions over bytes, stdlib only. Randomness comes in as ``rng(n) -> bytes``
so tests are deterministic.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
from collections.abc import Callable

from adapters.uin.codec import NONCE_SIZE, TAG_SIZE, VERSION, Charset, Status

Random = Callable[[int], bytes]

MIN_ITERATIONS = 4096
MAX_ITERATIONS = 1_000_000
COOKIE_LIFETIME = 60


def _hmac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# ---- login -------------------------------------------------------------------------


def channel_binding(session_id: int, charset: Charset, presence: Status, hello_flags: int) -> bytes:
    """The session parameters both sides saw in clear, bound into the proof so that
    an on-path attacker cannot change them without breaking the login."""
    return b"uin" + bytes([VERSION, charset, presence, hello_flags]) + session_id.to_bytes(8, "big")


def auth_message(
    uin: int,
    client_nonce: bytes,
    server_nonce: bytes,
    salt: bytes,
    iterations: int,
    binding: bytes,
) -> bytes:
    """RFC 5802's AuthMessage, with the UIN as the user name and ``binding`` as the
    channel-binding data: client-first-bare "," server-first "," client-final-without-proof."""
    nonce = _b64(client_nonce) + _b64(server_nonce)
    return ",".join(
        (
            f"n={uin},r={_b64(client_nonce)}",
            f"r={nonce},s={_b64(salt)},i={iterations}",
            f"c={_b64(binding)},r={nonce}",
        )
    ).encode("ascii")


def session_keys(server_signature: bytes) -> tuple[bytes, bytes]:
    """(client-to-server key, server-to-client key) from the SCRAM ServerSignature.

    ServerSignature = HMAC(ServerKey, AuthMessage) is known to the server (it holds
    ServerKey) and to the client (it derives ServerKey from the password), fresh per
    login (AuthMessage holds both nonces), and never sent on the wire. Two keys, one
    per direction, so a datagram can never be reflected back at its sender."""
    return (
        _hmac(server_signature, b"uin/1 key client-to-server"),
        _hmac(server_signature, b"uin/1 key server-to-client"),
    )


# ---- cookies -----------------------------------------------------------------------


def _address_bytes(host: str, port: int) -> bytes:
    try:
        packed = ipaddress.ip_address(host).packed
    except ValueError:
        packed = host.encode("utf-8", "replace")
    return packed + port.to_bytes(2, "big")


class CookieMaker:
    """Stateless HelloVerify cookies (RFC 6347 4.2.1 in spirit): ``ts(4) || HMAC(secret,
    address || ts || uin || hello flags || client nonce)[:16]``. The server keeps no
    state for a hello until it comes back with a cookie for the same source."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("cookie secret too short")
        self._secret = secret

    def _tag(self, host: str, port: int, ts: int, uin: int, flags: int, nonce: bytes) -> bytes:
        data = (
            b"uin cookie"
            + _address_bytes(host, port)
            + ts.to_bytes(4, "big")
            + uin.to_bytes(4, "big")
            + bytes([flags])
            + nonce
        )
        return _hmac(self._secret, data)[:16]

    def issue(self, host: str, port: int, now: float, uin: int, flags: int, nonce: bytes) -> bytes:
        ts = int(now) & 0xFFFFFFFF
        return ts.to_bytes(4, "big") + self._tag(host, port, ts, uin, flags, nonce)

    def check(
        self, cookie: bytes, host: str, port: int, now: float, uin: int, flags: int, nonce: bytes
    ) -> bool:
        if len(cookie) != 20:
            return False
        ts = int.from_bytes(cookie[:4], "big")
        age = int(now) - ts
        if not 0 <= age <= COOKIE_LIFETIME:
            return False
        return hmac.compare_digest(cookie[4:], self._tag(host, port, ts, uin, flags, nonce))


# ---- registration: ephemeral finite-field Diffie-Hellman ---------------------------

# RFC 3526 group 14 (2048-bit MODP), generator 2. The prime is the RFC's formula
# 2^2048 - 2^1984 - 1 + 2^64 * (floor(2^1918 pi) + 124476); a test recomputes it.
DH_PRIME = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22"
    "514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6"
    "F44C42E9A637ED6B0BFF5CB6F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3D"
    "C2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB"
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3BE39E772C180E8603"
    "9B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA956AE515D2261898FA0510"
    "15728E5A8AACAA68FFFFFFFFFFFFFFFF",
    16,
)
DH_GENERATOR = 2
DH_SIZE = 256


class RegistrationCryptoError(ValueError):
    """A registration key or ciphertext that does not check."""


def dh_keypair(rng: Random) -> tuple[int, bytes]:
    """(private exponent, public value as 256 big-endian bytes)."""
    private = int.from_bytes(rng(32), "big") | (1 << 255)
    public = pow(DH_GENERATOR, private, DH_PRIME)
    return private, public.to_bytes(DH_SIZE, "big")


def dh_shared(private: int, peer_public: bytes) -> bytes:
    y = int.from_bytes(peer_public, "big")
    if len(peer_public) != DH_SIZE or not 2 <= y <= DH_PRIME - 2:
        raise RegistrationCryptoError("peer public value out of range")
    return pow(y, private, DH_PRIME).to_bytes(DH_SIZE, "big")


def registration_keys(
    shared: bytes, client_nonce: bytes, server_nonce: bytes
) -> tuple[bytes, bytes]:
    """(encryption key, MAC key): HKDF-style extract over both nonces, then expand."""
    prk = _hmac(client_nonce + server_nonce, shared)
    return _hmac(prk, b"uin/1 reg enc"), _hmac(prk, b"uin/1 reg mac")


def _keystream(key: bytes, n: int) -> bytes:
    out = bytearray()
    block = 0
    while len(out) < n:
        out += _hmac(key, block.to_bytes(4, "big"))
        block += 1
    return bytes(out[:n])


def seal(enc_key: bytes, mac_key: bytes, session_id: int, plaintext: bytes) -> tuple[bytes, bytes]:
    """Encrypt-then-MAC: (ciphertext, tag). HMAC-SHA256 in counter mode as the stream;
    each key pair is used for exactly one message."""
    ciphertext = bytes(
        a ^ b for a, b in zip(plaintext, _keystream(enc_key, len(plaintext)), strict=True)
    )
    tag = _hmac(mac_key, b"uin/1 register" + session_id.to_bytes(8, "big") + ciphertext)[:TAG_SIZE]
    return ciphertext, tag


def open_sealed(
    enc_key: bytes, mac_key: bytes, session_id: int, ciphertext: bytes, tag: bytes
) -> bytes:
    expected = _hmac(mac_key, b"uin/1 register" + session_id.to_bytes(8, "big") + ciphertext)
    if not hmac.compare_digest(expected[:TAG_SIZE], tag):
        raise RegistrationCryptoError("registration tag does not check")
    return bytes(
        a ^ b for a, b in zip(ciphertext, _keystream(enc_key, len(ciphertext)), strict=True)
    )


def registered_tag(mac_key: bytes, session_id: int, new_uin: int) -> bytes:
    """Proves REGISTERED comes from the party that decrypted the REGISTER."""
    data = b"uin/1 registered" + session_id.to_bytes(8, "big") + new_uin.to_bytes(4, "big")
    return _hmac(mac_key, data)[:TAG_SIZE]


def new_nonce(rng: Random) -> bytes:
    return rng(NONCE_SIZE)
