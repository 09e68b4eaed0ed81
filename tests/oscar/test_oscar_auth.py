"""Login arithmetic and BOS cookies."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.oscar.auth import (
    COOKIE_LEN,
    CookieMint,
    bucp_digest,
    new_bucp_key,
    roast,
)
from adapters.oscar.errors import CookieRejected


def test_bucp_digest_variant_with_tlv_4c_matches_libpurple_capture() -> None:
    """MD5(key + MD5(pw) + suffix): the digest libpurple sent for key 1234567890."""
    digest = bucp_digest(b"1234567890", b"secretpw", prehashed=True)
    assert digest.hex() == "f67c566d84614fd8b1f21e4bdf751358"


def test_bucp_digest_variant_without_tlv_4c_matches_bitlbee_capture() -> None:
    """MD5(key + pw + suffix): the digest BitlBee sent for key 1234567890."""
    digest = bucp_digest(b"1234567890", b"secretpw", prehashed=False)
    assert digest.hex() == "79ab24a02ab44d695c8aca42d5fd3439"


def test_roast_uses_the_published_table_and_is_its_own_inverse() -> None:
    """XOR with F3 26 81 C4 39 86 DB 92 ...; roasting twice gives the password back."""
    assert roast(b"\x00\x00\x00") == bytes.fromhex("f32681")
    assert roast(roast(b"a longer password than sixteen")) == b"a longer password than sixteen"


def test_bucp_key_is_printable() -> None:
    """Keys are printable ASCII (clients may treat them as C strings)."""
    key = new_bucp_key()
    assert len(key) == 10 and key.isascii() and key.isalnum()


def mint(lifetime: float = 60.0, max_live: int = 100) -> CookieMint:
    counter = itertools.count()
    return CookieMint(
        b"k" * 32,
        lifetime=lifetime,
        max_live=max_live,
        random_bytes=lambda n: next(counter).to_bytes(n, "big"),
    )


def test_cookie_is_exactly_256_bytes_and_names_the_user() -> None:
    """A minted cookie is 256 bytes and redeems to the address it was minted for."""
    m = mint()
    cookie = m.mint("oscar:tester123", now=10.0)
    assert len(cookie) == COOKIE_LEN == 256
    assert m.redeem(cookie, now=11.0).address == "oscar:tester123"


def test_cookie_is_single_use() -> None:
    """The second BOS login with one cookie is refused."""
    m = mint()
    cookie = m.mint("oscar:123456", now=0.0)
    m.redeem(cookie, now=1.0)
    with pytest.raises(CookieRejected, match="already used"):
        m.redeem(cookie, now=2.0)


def test_cookie_expires() -> None:
    """A cookie presented after its lifetime is refused."""
    m = mint(lifetime=30.0)
    cookie = m.mint("oscar:123456", now=0.0)
    with pytest.raises(CookieRejected, match="expired"):
        m.redeem(cookie, now=31.0)


def test_cookie_from_another_key_is_refused() -> None:
    """Another process's (or a forger's) key does not verify."""
    cookie = CookieMint(b"a" * 32).mint("oscar:123456", now=0.0)
    with pytest.raises(CookieRejected, match="signature"):
        CookieMint(b"b" * 32).redeem(cookie, now=0.0)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 255), st.integers(1, 255))
def test_any_flipped_bit_is_refused(position: int, flip: int) -> None:
    """Changing any byte of a cookie breaks it."""
    m = mint()
    cookie = bytearray(m.mint("oscar:tester123", now=0.0))
    cookie[position] ^= flip
    with pytest.raises(CookieRejected):
        m.redeem(bytes(cookie), now=0.0)


def test_wrong_length_and_stand_in_cookies_are_refused() -> None:
    """The vectors' stand-in 'COOKIE:tester123' is not a cookie of ours."""
    m = mint()
    with pytest.raises(CookieRejected, match="16 bytes"):
        m.redeem(b"COOKIE:tester123", now=0.0)
    with pytest.raises(CookieRejected, match="signature"):
        m.redeem(b"COOKIE:tester123".ljust(256, b"\0"), now=0.0)


def test_redeemed_table_is_bounded_and_forgets_expired_nonces() -> None:
    """Full of live cookies it refuses more; expired entries make room again."""
    m = mint(lifetime=10.0, max_live=2)
    for i in range(2):
        m.redeem(m.mint(f"oscar:user{i}x", now=0.0), now=0.0)
    with pytest.raises(CookieRejected, match="too many"):
        m.redeem(m.mint("oscar:user9x", now=0.0), now=1.0)
    m.redeem(m.mint("oscar:late1x", now=20.0), now=20.0)
    assert m.live_redeemed == 1


def test_cookie_secret_from_settings_lets_two_mints_agree() -> None:
    """Two processes with the same cookie_secret accept each other's cookies."""
    cookie = CookieMint(b"shared-secret-123").mint("oscar:123456", now=0.0)
    assert CookieMint(b"shared-secret-123").redeem(cookie, now=1.0).address == "oscar:123456"
