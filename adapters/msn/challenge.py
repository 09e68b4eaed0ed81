"""CHL/QRY challenge answers and the MD5 login digest.

MSNP8-10 clients answer ``CHL 0 <challenge>`` with ``QRY n <product id> 32`` and
the lower-case hex ``MD5(challenge + product key)``. MSNP11 and later clients use a
product id of the form ``PROD....`` and a different hash (the "MSNP11 challenge":
an MD5 of challenge + key, a 64-bit key mixed from challenge + product id with the
constant 0x0E79A9C1, XORed back into the MD5). Product id/key pairs come from the
public references listed in docs/protocols/msn.md.
"""

from __future__ import annotations

import hashlib
import hmac
import struct

_MAGIC = 0x0E79A9C1
_MASK31 = 0x7FFFFFFF

# product id -> (product key, uses the MSNP11 hash)
PRODUCTS: dict[str, tuple[str, bool]] = {
    "msmsgs@msnmsgr.com": ("Q1P7W2E4J9R8U3S5", False),  # MSNP6-9 (MSN Messenger 4.x-6.x)
    "PROD0038W!61ZTF9": ("VT6PX?UQTM4WM%YR", False),  # MSN Messenger 6.1
    "PROD0058#7IL2{QD": ("QHDCY@7R1TB6W?5B", False),  # MSN Messenger 6.2
    "PROD0061VRRZH@4F": ("JXQ6J@TUOGYV@N0M", False),  # MSN Messenger 7.0 beta
    "PROD00504RLUG%WL": ("I2EBK%PYNLZL5_J4", False),
    "PROD0076ENE8*@AW": ("CEQJ8}OE0!WTSWII", False),
    "PROD0090YUAUV{2B": ("YMM8C_H7KCQ2S_KL", True),  # MSNP11 (MSN Messenger 7.0)
    "PROD0101{0RM?UBW": ("CFHUR$52U_{VIX5T", True),  # MSNP12 (MSN Messenger 7.5)
}

MSNP11_FIRST_VERSION = 11


def md5_answer(challenge: str, key: str) -> str:
    """MSNP8-10: hex MD5 of challenge + product key."""
    return hashlib.md5((challenge + key).encode("ascii")).hexdigest()


def msnp11_answer(challenge: str, product_id: str, key: str) -> str:
    """MSNP11+: the challenge answer for ``product_id``/``key``."""
    digest = hashlib.md5((challenge + key).encode("ascii")).digest()
    parts = [p & _MASK31 for p in struct.unpack("<4I", digest)]
    text = (challenge + product_id).encode("ascii")
    text += b"0" * (-len(text) % 8)
    words = struct.unpack(f"<{len(text) // 4}I", text)
    high = 0
    low = 0
    for i in range(0, len(words), 2):
        temp = (_MAGIC * words[i]) % _MASK31
        temp = (parts[0] * (temp + high) + parts[1]) % _MASK31
        high = (parts[2] * ((words[i + 1] + temp) % _MASK31) + parts[3]) % _MASK31
        low = low + high + temp
    high = (high + parts[1]) % _MASK31
    low = (low + parts[3]) % _MASK31
    mixed = struct.unpack("<4I", digest)
    out = struct.pack("<4I", mixed[0] ^ high, mixed[1] ^ low, mixed[2] ^ high, mixed[3] ^ low)
    return out.hex()


def expected_answer(challenge: str, product_id: str) -> str | None:
    """The answer a client with ``product_id`` must give, None for unknown products."""
    known = PRODUCTS.get(product_id)
    if known is None:
        return None
    key, new_hash = known
    if new_hash:
        return msnp11_answer(challenge, product_id, key)
    return md5_answer(challenge, key)


def check_answer(challenge: str, product_id: str, answer: bytes) -> bool:
    """Whether ``answer`` (the QRY payload) is right for ``challenge``."""
    expected = expected_answer(challenge, product_id)
    if expected is None:
        return False
    return hmac.compare_digest(expected.encode("ascii"), answer.strip().lower())


def default_product(version: int) -> str:
    """The product id our own client uses at ``version``."""
    return "PROD0090YUAUV{2B" if version >= MSNP11_FIRST_VERSION else "msmsgs@msnmsgr.com"


def salted_md5(salt: str, password: str) -> str:
    """MSNP2-7 MD5 login: hex MD5(salt + password) (what the client sends)."""
    return hashlib.md5((salt + password).encode("utf-8")).hexdigest()
