"""Key material: SCRAM auth message, session keys, cookies, registration DH."""

from __future__ import annotations

import random

import pytest

from adapters.uin import crypto
from adapters.uin.codec import Charset, Status
from schema import scram


def test_dh_prime_is_rfc3526_group_14_by_its_formula() -> None:
    """p = 2^2048 - 2^1984 - 1 + 2^64 * (floor(2^1918 pi) + 124476), pi by Machin."""

    def arctan_inv(x: int, one: int) -> int:
        total = term = one // x
        n, sign = 1, -1
        while term:
            term //= x * x
            total += sign * (term // (2 * n + 1))
            sign, n = -sign, n + 1
        return total

    bits = 2300
    one = 1 << bits
    pi = 4 * (4 * arctan_inv(5, one) - arctan_inv(239, one))
    p = 2**2048 - 2**1984 - 1 + 2**64 * ((pi >> (bits - 1918)) + 124476)
    assert p == crypto.DH_PRIME


def test_both_sides_agree_on_the_dh_secret_and_seal_round_trips() -> None:
    """Client and server derive the same keys; sealed data opens; a flipped bit does not."""
    rng = random.Random(1).randbytes
    x, xpub = crypto.dh_keypair(rng)
    y, ypub = crypto.dh_keypair(rng)
    assert crypto.dh_shared(x, ypub) == crypto.dh_shared(y, xpub)
    enc, mac = crypto.registration_keys(crypto.dh_shared(x, ypub), b"c" * 24, b"s" * 24)
    ct, tag = crypto.seal(enc, mac, 7, b"\x04pass\x04nick")
    assert ct != b"\x04pass\x04nick"
    assert crypto.open_sealed(enc, mac, 7, ct, tag) == b"\x04pass\x04nick"
    with pytest.raises(crypto.RegistrationCryptoError):
        crypto.open_sealed(enc, mac, 7, bytes([ct[0] ^ 1]) + ct[1:], tag)
    with pytest.raises(crypto.RegistrationCryptoError):
        crypto.open_sealed(enc, mac, 8, ct, tag)


def test_degenerate_dh_public_values_are_refused() -> None:
    """Public values 0, 1 and p-1 would leak the secret: refused."""
    x, _ = crypto.dh_keypair(random.Random(2).randbytes)
    for bad in (0, 1, crypto.DH_PRIME - 1):
        with pytest.raises(crypto.RegistrationCryptoError):
            crypto.dh_shared(x, bad.to_bytes(256, "big"))


def test_auth_message_has_rfc5802_shape() -> None:
    """AuthMessage is client-first-bare, server-first, client-final-without-proof."""
    binding = crypto.channel_binding(1, Charset.CP949, Status.ONLINE, 0)
    msg = crypto.auth_message(700123, b"\x00" * 24, b"\xff" * 24, b"salt", 4096, binding)
    parts = msg.decode().split(",")
    assert parts[0] == "n=700123" and parts[1].startswith("r=")
    assert parts[3] == "s=c2FsdA==" and parts[4] == "i=4096"
    assert parts[5].startswith("c=") and parts[6] == parts[2]


def test_session_keys_differ_by_direction_and_need_the_server_signature() -> None:
    """Two keys per login; an eavesdropper's guesses from public data do not match."""
    verifier = scram.make_verifier("pw", b"salt", 4096)
    sig = scram.server_signature(verifier, b"am")
    c2s, s2c = crypto.session_keys(sig)
    assert c2s != s2c and len(c2s) == 32
    assert crypto.session_keys(scram.server_signature(verifier, b"am2"))[0] != c2s


def test_cookie_binds_address_time_and_hello() -> None:
    """A cookie checks only for the same address, UIN, flags and nonce, for 60 s."""
    maker = crypto.CookieMaker(b"x" * 32)
    cookie = maker.issue("10.0.0.1", 5, 1000.0, 7, 0, b"n" * 24)
    assert maker.check(cookie, "10.0.0.1", 5, 1030.0, 7, 0, b"n" * 24)
    assert not maker.check(cookie, "10.0.0.1", 6, 1030.0, 7, 0, b"n" * 24)
    assert not maker.check(cookie, "10.0.0.1", 5, 1030.0, 8, 0, b"n" * 24)
    assert not maker.check(cookie, "10.0.0.1", 5, 1030.0, 7, 1, b"n" * 24)
    assert not maker.check(cookie, "10.0.0.1", 5, 1061.0, 7, 0, b"n" * 24)
    assert not crypto.CookieMaker(b"y" * 32).check(cookie, "10.0.0.1", 5, 1030.0, 7, 0, b"n" * 24)
