"""Records the core hands to adapters: accounts, contact entries, login proofs.

These are plain frozen dataclasses (not wire events): they never leave the process,
and some carry bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from schema.events import PresenceState

OSCAR_MD5_SUFFIX = b"AOL Instant Messenger (SM)"


@dataclass(frozen=True, slots=True)
class AccountInfo:
    """A hosted account as an adapter may see it (never any secret)."""

    address: str
    display_name: str
    disabled: bool


class PresencePolicy(StrEnum):
    """Who may see an account's presence, besides the contacts it allowed one by one.

    ``allowed`` (the default): only contacts the owner authorized or allow-listed.
    ``everyone``: everyone the owner has not blocked (MSN's ``BLP AL``).
    """

    ALLOWED = "allowed"
    EVERYONE = "everyone"


@dataclass(frozen=True, slots=True)
class ContactEntry:
    """One line of ``owner``'s contact list.

    ``subscribed``: the owner wants to see the contact's presence.
    ``allowed``: the owner lets the contact see the owner's presence (consent).
    ``blocked``: nothing from the contact reaches the owner.
    """

    contact: str
    group: str = "Contacts"
    display_name: str = ""
    subscribed: bool = True
    allowed: bool = False
    blocked: bool = False
    pending: bool = False
    network_data: str = ""  # opaque to the core: the owner's adapter keeps e.g. SSI ids here


# ---- login proofs: what a client proved, checked by the core, which alone holds secrets


@dataclass(frozen=True, slots=True)
class KeyedMd5Proof:
    """OSCAR BUCP: ``MD5(key + P + suffix)`` where P is MD5(password) when
    ``prehashed`` (TLV 0x4C present) and the password itself otherwise."""

    key: bytes
    digest: bytes
    prehashed: bool
    suffix: bytes = OSCAR_MD5_SUFFIX


@dataclass(frozen=True, slots=True)
class SaltedMd5Proof:
    """MSNP2-7 MD5 login: lower-case hex ``MD5(salt + password)``."""

    salt: str
    digest_hex: str


@dataclass(frozen=True, slots=True)
class PlainPasswordProof:
    """The client sent the password itself (MSN TWN to our login endpoint, ICQ's
    roasted channel-1 login after un-roasting)."""

    password: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class ScramProof:
    """SCRAM-SHA-256 style proof (UIN): ``client_proof`` over ``auth_message``."""

    auth_message: bytes
    client_proof: bytes


LoginProof = KeyedMd5Proof | SaltedMd5Proof | PlainPasswordProof | ScramProof


class LoginOutcome(StrEnum):
    OK = "ok"
    NO_SUCH_ACCOUNT = "no_such_account"
    DISABLED = "disabled"
    BAD_PASSWORD = "bad_password"
    UNSUPPORTED = "unsupported"
    THROTTLED = "throttled"
    """Too many attempts (from this source, or at this account), or every password
    check is busy: refused without looking at the password; try later."""


@dataclass(frozen=True, slots=True)
class LoginResult:
    outcome: LoginOutcome
    account: AccountInfo | None = None
    server_signature: bytes = b""  # SCRAM only

    @property
    def ok(self) -> bool:
        return self.outcome is LoginOutcome.OK


@dataclass(frozen=True, slots=True)
class ScramParameters:
    salt: bytes
    iterations: int


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """A row of the sessions directory."""

    session_id: str
    address: str
    node_id: str
    network: str
    since: float
    presence: PresenceState
    status_text: str = ""
