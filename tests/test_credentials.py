"""Login proofs for every legacy scheme, checked against stored verifiers."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from gateway.credentials import (
    CredentialError,
    SealingKey,
    check_proof,
    make_verifiers,
    scrypt_verify,
)
from schema import scram
from schema.records import KeyedMd5Proof, PlainPasswordProof, SaltedMd5Proof, ScramProof

KEY = SealingKey(b"k" * 32)


def test_oscar_md5_with_0x4c_matches_libpurple_vector() -> None:
    """WIRE-NOTES vector: key '1234567890', password 'secretpw', TLV 0x4C -> f67c566d..."""
    stored = make_verifiers("oscar:tester123", "secretpw", KEY)
    proof = KeyedMd5Proof(
        key=b"1234567890",
        digest=bytes.fromhex("f67c566d84614fd8b1f21e4bdf751358"),
        prehashed=True,
    )
    assert check_proof("oscar:tester123", proof, stored, KEY).ok


def test_oscar_md5_without_0x4c_uses_the_password_itself() -> None:
    """Variant 2: MD5(key + password + suffix) is accepted, and a wrong one refused."""
    stored = make_verifiers("oscar:tester123", "secretpw", KEY)
    digest = hashlib.md5(b"abc" + b"secretpw" + b"AOL Instant Messenger (SM)").digest()
    assert check_proof("oscar:tester123", KeyedMd5Proof(b"abc", digest, False), stored, KEY).ok
    assert not check_proof("oscar:tester123", KeyedMd5Proof(b"abd", digest, False), stored, KEY).ok


def test_msn_md5_and_plain_password() -> None:
    """MSNP2-7 MD5(salt+pw) and a clear password (TWN) both check out."""
    stored = make_verifiers("msn:a@b.cd", "123456", KEY)
    digest = hashlib.md5(b"1013928519.693957190" + b"123456").hexdigest()
    assert check_proof("msn:a@b.cd", SaltedMd5Proof("1013928519.693957190", digest), stored, KEY).ok
    assert check_proof("msn:a@b.cd", PlainPasswordProof("123456"), stored, KEY).ok
    assert not check_proof("msn:a@b.cd", PlainPasswordProof("1234567"), stored, KEY).ok


def test_uin_scram_needs_no_password_equivalent() -> None:
    """UIN accounts keep no sealed password; SCRAM proofs verify and sign back."""
    stored = make_verifiers("uin:700123", "비밀번호", KEY)
    assert stored.sealed == ""
    auth = b"n=700123,r=abc,s=xyz"
    proof = scram.client_proof("비밀번호", stored.scram().salt, stored.scram_iterations, auth)
    checked = check_proof("uin:700123", ScramProof(auth, proof), stored, KEY)
    assert checked.ok
    assert checked.server_signature == scram.expected_server_signature(
        "비밀번호", stored.scram().salt, stored.scram_iterations, auth
    )
    wrong = scram.client_proof("wrong", stored.scram().salt, stored.scram_iterations, auth)
    assert not check_proof("uin:700123", ScramProof(auth, wrong), stored, KEY).ok
    md5 = KeyedMd5Proof(b"k", b"0" * 16, False)
    assert not check_proof("uin:700123", md5, stored, KEY).supported


def test_sealed_password_is_bound_to_its_account() -> None:
    """A sealed blob copied to another account does not open; nor under another key."""
    sealed = KEY.seal("oscar:1", "pw")
    assert KEY.unseal("oscar:1", sealed) == "pw"
    with pytest.raises(CredentialError):
        KEY.unseal("oscar:2", sealed)
    with pytest.raises(CredentialError):
        SealingKey(b"x" * 32).unseal("oscar:1", sealed)
    assert "pw" not in sealed


def test_stored_fields_hold_no_clear_password() -> None:
    """Nothing stored in Redis contains the password in clear."""
    fields = make_verifiers("oscar:1", "hunter2-secret", KEY).as_fields()
    assert all("hunter2-secret" not in v for v in fields.values())
    assert scrypt_verify("hunter2-secret", fields["v_scrypt"])


def test_key_file_is_created_private(tmp_path: Path) -> None:
    """The sealing key file is created once with mode 0600 and reused."""
    path = tmp_path / "secret.key"
    first = SealingKey.load_or_create(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert SealingKey.load_or_create(path).unseal("a:b", first.seal("a:b", "x")) == "x"


@pytest.mark.parametrize("bad", ["", "x" * 300, "tab\there"])
def test_password_policy(bad: str) -> None:
    """Empty, oversized or control-character passwords are refused."""
    with pytest.raises(CredentialError):
        make_verifiers("oscar:1", bad, KEY)
