"""Login arithmetic and BOS cookies.

Two logins reach the same proof types in schema.records:

* BUCP (family 0x17): the server hands out a random key; the client answers with
  ``MD5(key + P + "AOL Instant Messenger (SM)")`` where P is MD5(password) when the
  request carries TLV 0x4C and the password itself when it does not. The core checks
  it (``KeyedMd5Proof``); this module only builds keys and, for our own test client,
  digests.
* The old channel-1 login sends the password "roasted": XOR with a fixed 16-byte
  table, repeated. Un-roasting gives the plain password (``PlainPasswordProof``).

After either login the client is sent to the BOS service with a cookie. A cookie is
exactly 256 bytes (one client always sends 256 bytes whatever it was given), signed
with HMAC-SHA256 under a per-process key (or the configured ``cookie_secret``), valid
for ``lifetime`` seconds and good for one BOS login: its nonce is remembered until it
expires, in a bounded table that refuses new cookies rather than forget a live one.

Layout: ``version:u8 nonce:16 expires_ms:u64 addr_len:u8 address zero-padding``
(224 bytes) then the 32-byte MAC over those 224 bytes.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass

from adapters.oscar.errors import CookieRejected
from schema.records import OSCAR_MD5_SUFFIX

ROAST_TABLE = bytes.fromhex("f32681c43986db9271a3b9e6537a957c")
COOKIE_LEN = 256
_MAC_LEN = 32
_BODY_LEN = COOKIE_LEN - _MAC_LEN
_VERSION = 1
_NONCE_LEN = 16
_HEADER = struct.Struct(">B16sQB")
MAX_COOKIE_ADDRESS = _BODY_LEN - _HEADER.size
BUCP_KEY_LEN = 10


def roast(password: bytes) -> bytes:
    """Roast (or un-roast: XOR is its own inverse) a channel-1 password."""
    return bytes(b ^ ROAST_TABLE[i % len(ROAST_TABLE)] for i, b in enumerate(password))


def bucp_digest(key: bytes, password: bytes, prehashed: bool) -> bytes:
    """The digest a client puts in TLV 0x25 (used by our test client)."""
    secret = hashlib.md5(password).digest() if prehashed else password
    return hashlib.md5(key + secret + OSCAR_MD5_SUFFIX).digest()


def new_bucp_key(random_bytes: Callable[[int], bytes] = os.urandom) -> bytes:
    """A printable key: some clients treat it as a C string."""
    return random_bytes(BUCP_KEY_LEN).hex().encode("ascii")[:BUCP_KEY_LEN]


@dataclass(frozen=True, slots=True)
class CookieGrant:
    """What a verified cookie vouches for."""

    address: str
    expires: float


class CookieMint:
    """Mints and redeems BOS cookies. Pure: time is an argument."""

    def __init__(
        self,
        secret: bytes | None = None,
        lifetime: float = 120.0,
        max_live: int = 65536,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self._key = secret if secret else random_bytes(32)
        self._lifetime = lifetime
        self._max_live = max_live
        self._random = random_bytes
        self._redeemed: dict[bytes, float] = {}

    def mint(self, address: str, now: float) -> bytes:
        raw = address.encode("utf-8")
        if not raw or len(raw) > MAX_COOKIE_ADDRESS:
            raise ValueError("address does not fit a cookie")
        expires_ms = int((now + self._lifetime) * 1000)
        body = _HEADER.pack(_VERSION, self._random(_NONCE_LEN), expires_ms, len(raw)) + raw
        body = body.ljust(_BODY_LEN, b"\0")
        return body + hmac.new(self._key, body, hashlib.sha256).digest()

    def redeem(self, cookie: bytes, now: float) -> CookieGrant:
        """The grant inside a genuine, unexpired, unused cookie; else CookieRejected."""
        if len(cookie) != COOKIE_LEN:
            raise CookieRejected(f"cookie of {len(cookie)} bytes, not {COOKIE_LEN}")
        body, mac = cookie[:_BODY_LEN], cookie[_BODY_LEN:]
        if not hmac.compare_digest(hmac.new(self._key, body, hashlib.sha256).digest(), mac):
            raise CookieRejected("cookie signature does not verify")
        version, nonce, expires_ms, length = _HEADER.unpack_from(body)
        if version != _VERSION or length == 0 or length > MAX_COOKIE_ADDRESS:
            raise CookieRejected("cookie layout not understood")
        end = _HEADER.size + length
        if any(body[end:]):
            raise CookieRejected("cookie padding is not zero")
        expires = expires_ms / 1000.0
        if now > expires:
            raise CookieRejected("cookie expired")
        self._forget_expired(now)
        if nonce in self._redeemed:
            raise CookieRejected("cookie already used")
        if len(self._redeemed) >= self._max_live:
            raise CookieRejected("too many live cookies; try again later")
        self._redeemed[nonce] = expires
        try:
            address = body[_HEADER.size : end].decode("utf-8")
        except UnicodeDecodeError:
            raise CookieRejected("cookie address is not UTF-8") from None
        return CookieGrant(address, expires)

    @property
    def live_redeemed(self) -> int:
        return len(self._redeemed)

    def _forget_expired(self, now: float) -> None:
        # Insertion order is expiry order (fixed lifetime, monotonic clock), so the
        # stale entries are at the front.
        while self._redeemed:
            nonce, expires = next(iter(self._redeemed.items()))
            if expires >= now:
                return
            del self._redeemed[nonce]
