"""Signed, expiring tokens: Passport tickets and switchboard cookies.

A token names a user, a purpose and an expiry time, and carries an HMAC-SHA256 over
all three, so the notification server can check a ticket the HTTP login endpoint
issued (and a switchboard can check a cookie the notification server issued)
without shared state. Tokens use only ``[A-Za-z0-9_-.]`` so they survive MSNP
command lines, ``from-PP='t=...&p=...'`` and cookies. They are secrets: never log
them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

MAX_TOKEN = 512


@dataclass(frozen=True, slots=True)
class TokenClaims:
    purpose: str
    subject: str
    expires: int
    extra: str


class TokenSigner:
    """Issues and checks tokens with one secret key."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("token key too short")
        self._key = key

    @classmethod
    def random(cls) -> TokenSigner:
        return cls(secrets.token_bytes(32))

    def issue(
        self, purpose: str, subject: str, now: float, lifetime: float, extra: str = ""
    ) -> str:
        expires = int(now + lifetime)
        nonce = secrets.token_hex(6)
        body = "\n".join((purpose, subject, str(expires), extra, nonce)).encode("utf-8")
        tag = hmac.new(self._key, body, hashlib.sha256).digest()[:18]
        return f"{_b64(body)}.{_b64(tag)}"

    def check(self, token: str, purpose: str, now: float) -> TokenClaims | None:
        """The claims of a valid, unexpired token for ``purpose``; None otherwise."""
        if len(token) > MAX_TOKEN or token.count(".") != 1:
            return None
        body_text, tag_text = token.split(".")
        try:
            body = _unb64(body_text)
            tag = _unb64(tag_text)
        except ValueError:
            return None
        expected = hmac.new(self._key, body, hashlib.sha256).digest()[:18]
        if not hmac.compare_digest(tag, expected):
            return None
        fields = body.decode("utf-8", "replace").split("\n")
        if len(fields) != 5 or fields[0] != purpose or not fields[2].isdigit():
            return None
        expires = int(fields[2])
        if now > expires:
            return None
        return TokenClaims(purpose=fields[0], subject=fields[1], expires=expires, extra=fields[3])


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if not text or any(c not in _ALPHABET for c in text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
