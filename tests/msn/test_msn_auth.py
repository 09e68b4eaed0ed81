"""Challenge answers, login digests, Passport headers and signed tokens."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.msn import challenge, passport
from adapters.msn.tokens import TokenSigner
from tests.msn.msn_fakes import load_vector


def test_msnp8_qry_from_the_msnp_py_capture() -> None:
    """msnp.py answered CHL 29409134351025259292 with MD5(challenge + Q1P7W2E4J9R8U3S5)."""
    qry = next(x for x in load_vector("msnp8-msnp.py-session.txt") if x.text.startswith("QRY"))
    assert qry.payload is not None
    assert challenge.md5_answer("29409134351025259292", "Q1P7W2E4J9R8U3S5") == qry.payload.decode()
    assert challenge.check_answer("29409134351025259292", "msmsgs@msnmsgr.com", qry.payload)


def test_msnp11_challenge_golden_vector() -> None:
    """MSNP11 hash, PROD0090YUAUV{2B/YMM8C_H7KCQ2S_KL: a public client's spec vector."""
    answer = challenge.msnp11_answer("22210219642164014968", "PROD0090YUAUV{2B", "YMM8C_H7KCQ2S_KL")
    assert answer == "85ecb0db8f32113df79ce0892b9a102c"


def test_msnp15_product_with_the_msnp11_hash() -> None:
    """The same public spec's MSNP15 vector (PROD0113H11T8$X_) checks the hash generally."""
    answer = challenge.msnp11_answer("11533365622852247127", "PROD0113H11T8$X_", "RG@XY*28Q5QHS%Q5")
    assert answer == "f086d1ded067186deca8dba2231602cf"


def test_msnp11_product_is_checked_with_the_new_hash() -> None:
    """A QRY from PROD0090YUAUV{2B is checked with the MSNP11 hash, not plain MD5."""
    good = b"85ecb0db8f32113df79ce0892b9a102c"
    assert challenge.check_answer("22210219642164014968", "PROD0090YUAUV{2B", good)
    plain = challenge.md5_answer("22210219642164014968", "YMM8C_H7KCQ2S_KL").encode()
    assert not challenge.check_answer("22210219642164014968", "PROD0090YUAUV{2B", plain)


def test_unknown_product_fails() -> None:
    """A product id we have no key for cannot pass the challenge."""
    assert not challenge.check_answer("1", "someone@example.com", b"0" * 32)


@settings(max_examples=50)
@given(st.text(alphabet="0123456789", min_size=1, max_size=30))
def test_msnp11_answer_is_32_hex_digits(chl: str) -> None:
    """Any digit challenge gives a 32-digit lower-case hex answer."""
    answer = challenge.msnp11_answer(chl, "PROD0101{0RM?UBW", "CFHUR$52U_{VIX5T")
    assert len(answer) == 32 and int(answer, 16) >= 0 and answer == answer.lower()


def test_md5_login_digest_is_md5_of_salt_and_password() -> None:
    """MSNP2-7: the client sends hex MD5(salt + password) (draft-movva, hypothetic.org)."""
    salt = "1056561624.17795"
    assert (
        challenge.salted_md5(salt, "abcdefg1234567")
        == hashlib.md5(b"1056561624.17795abcdefg1234567").hexdigest()
    )


def test_authorization_header_from_msnp_py() -> None:
    """The captured Passport1.4 Authorization header yields the e-mail and password."""
    line = next(x for x in load_vector("msnp8-msnp.py-session.txt") if "login2.srf" in x.text)
    header = line.text.split("Authorization='", 1)[1].rstrip("'")
    sign_in = passport.parse_authorization(header)
    assert sign_in is not None
    assert (sign_in.email, sign_in.password) == ("test1@example.com", "123456")
    assert "123456" not in repr(sign_in)


@pytest.mark.parametrize(
    "header",
    ["Basic abc", "Passport1.4 OrgVerb=GET", "", "Passport1.4 sign-in=a%40b.com", "x" * 5000],
)
def test_bad_authorization_headers(header: str) -> None:
    """Headers without the scheme, the sign-in or the password give no credentials."""
    assert passport.parse_authorization(header) is None


def test_doubled_scheme_is_accepted() -> None:
    """Some clients write the scheme twice (yellows111 wiki example)."""
    sign_in = passport.parse_authorization("Passport1.4 Passport1.4 sign-in=a%40b.com,pwd=p%2Cw")
    assert sign_in is not None and sign_in.password == "p,w"


def test_ticket_from_usr_argument() -> None:
    """The USR TWN S argument is the from-PP value: t=<ticket>&p=<profile>."""
    assert passport.ticket_from_usr("t=abc.def&p=xyz") == "abc.def"
    assert "t=T1&p=" in passport.success_header("T1")


def test_tokens_check_purpose_subject_and_expiry() -> None:
    """A token is valid only for its purpose, before it expires, unmodified."""
    signer = TokenSigner(b"k" * 32)
    token = signer.issue("ticket", "msn:a@b.com", 100.0, 60.0, "x")
    claims = signer.check(token, "ticket", 150.0)
    assert claims is not None and claims.subject == "msn:a@b.com" and claims.extra == "x"
    assert signer.check(token, "cookie", 150.0) is None
    assert signer.check(token, "ticket", 161.0) is None
    assert TokenSigner(b"j" * 32).check(token, "ticket", 150.0) is None
    tampered = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    assert signer.check(tampered, "ticket", 150.0) is None
    assert all(c.isalnum() or c in "-_." for c in token)


@settings(max_examples=100)
@given(st.text(max_size=80))
def test_garbage_tokens_are_refused_quietly(text: str) -> None:
    """Any string either checks out or is None; nothing raises."""
    assert TokenSigner(b"k" * 32).check(text, "ticket", 0.0) is None
