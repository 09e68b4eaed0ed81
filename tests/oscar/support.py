"""Test helpers: the captured client vectors, and a small in-memory stand-in for the
core that answers an :class:`OscarSession`'s requests synchronously."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from adapters.oscar import session as M
from adapters.oscar.auth import CookieMint
from adapters.oscar.codec import OscarCodec, Signon, SnacEvent, WireEvent
from adapters.oscar.flap import FlapDecoder
from adapters.oscar.snac import Snac
from adapters.oscar.tlv import Tlv
from schema.events import CanonicalEvent, PresenceState
from schema.records import (
    AccountInfo,
    ContactEntry,
    KeyedMd5Proof,
    LoginOutcome,
    LoginResult,
    PlainPasswordProof,
)

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "oscar"

STAND_IN_COOKIE = b"COOKIE:"


def load_vector(name: str) -> list[list[bytes]]:
    """The client's exact frames, one list per connection, in order."""
    connections: list[list[bytes]] = []
    for line in (VECTORS / name).read_text().splitlines():
        if line.startswith("# connection"):
            connections.append([])
        elif line.startswith("C "):
            connections[-1].append(bytes.fromhex(line[2:].strip()))
    return connections


def with_cookie(frame: bytes, cookie: bytes) -> bytes:
    """The client's BOS sign-on frame with its stand-in cookie TLV replaced by one our
    auth minted. Sequence number and every other byte stay as captured; TLV 6 keeps
    the captured length when the client sent a fixed 256 bytes."""
    decoder = FlapDecoder()
    (flap,) = decoder.receive_data(frame)
    assert flap.data[:4] == b"\x00\x00\x00\x01"
    assert flap.data[4:6] == b"\x00\x06"
    length = int.from_bytes(flap.data[6:8], "big")
    assert flap.data[8:].startswith(STAND_IN_COOKIE) and len(flap.data) == 8 + length
    data = flap.data[:4] + Tlv(6, cookie).encode()
    header = bytes([0x2A, 1]) + flap.sequence.to_bytes(2, "big") + len(data).to_bytes(2, "big")
    return header + data


@dataclass
class FakeCore:
    """Accounts, contact lists and presence in dicts; records what the session asks."""

    passwords: dict[str, str] = field(default_factory=dict)
    contacts: dict[str, list[ContactEntry]] = field(default_factory=dict)
    presence: dict[str, PresenceState] = field(default_factory=dict)
    submitted: list[CanonicalEvent] = field(default_factory=list)
    stored: list[tuple[str, ContactEntry]] = field(default_factory=list)
    dropped: list[tuple[str, str]] = field(default_factory=list)
    presence_sets: list[tuple[str, PresenceState, str]] = field(default_factory=list)
    opened: list[str] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)
    offline: dict[str, list[tuple[CanonicalEvent, str]]] = field(default_factory=dict)
    hold_answers: bool = False
    throttled: bool = False  # every login answered THROTTLED
    held: list[tuple[M.CoreRequest, M.Answer]] = field(default_factory=list)

    def check(self, address: str, proof: object) -> LoginResult:
        if self.throttled:
            return LoginResult(LoginOutcome.THROTTLED)
        password = self.passwords.get(address)
        if password is None:
            return LoginResult(LoginOutcome.NO_SUCH_ACCOUNT)
        if isinstance(proof, KeyedMd5Proof):
            secret = password.encode()
            if proof.prehashed:
                secret = hashlib.md5(secret).digest()
            expected = hashlib.md5(proof.key + secret + proof.suffix).digest()
            ok = hmac.compare_digest(expected, proof.digest)
        elif isinstance(proof, PlainPasswordProof):
            ok = proof.password == password
        else:
            ok = False
        if not ok:
            return LoginResult(LoginOutcome.BAD_PASSWORD)
        return LoginResult(LoginOutcome.OK, AccountInfo(address, address, False))

    def answer_for(self, request: M.CoreRequest) -> M.Answer | None:
        if isinstance(request, M.CheckLogin):
            return self.check(request.address, request.proof)
        if isinstance(request, M.OpenSession):
            sid = f"s{len(self.opened) + 1}"
            self.opened.append(request.address)
            self.presence[request.address] = request.presence
            return M.SessionOpened(sid, tuple(self.offline.pop(request.address, [])))
        if isinstance(request, M.LoadContacts):
            return M.ContactsLoaded(tuple(self.contacts.get(request.owner, [])))
        if isinstance(request, M.QueryPresence):
            states = tuple(
                (n, self.presence.get(f"oscar:{n}", PresenceState.OFFLINE)) for n in request.natives
            )
            return M.PresenceAnswer(states)
        if isinstance(request, M.LookupAccounts):
            matches = []
            if request.uin is not None and f"oscar:{request.uin}" in self.passwords:
                online = f"oscar:{request.uin}" in self.presence
                matches.append(M.AccountMatch(str(request.uin), f"user {request.uin}", online))
            return M.AccountsFound(tuple(matches))
        if isinstance(request, M.SubmitEvent):
            self.submitted.append(request.event)
            if request.token is not None:
                return M.Submitted()
        elif isinstance(request, M.StoreContact):
            self.stored.append((request.owner, request.entry))
        elif isinstance(request, M.DropContact):
            self.dropped.append((request.owner, request.contact))
        elif isinstance(request, M.SetPresence):
            self.presence_sets.append((request.session_id, request.presence, request.status_text))
        elif isinstance(request, M.CloseSession):
            self.closed.append(request.session_id)
        return None

    def run(self, session: M.OscarSession, requests: Iterable[M.CoreRequest], now: float) -> None:
        queue = list(requests)
        while queue:
            request = queue.pop(0)
            result = self.answer_for(request)
            if result is None:
                continue
            token = getattr(request, "token", None)
            assert isinstance(token, int)
            if self.hold_answers:
                self.held.append((request, result))
                continue
            queue.extend(session.answer(token, result, now))

    def release(self, session: M.OscarSession, now: float) -> None:
        held, self.held = self.held, []
        self.hold_answers = False
        for request, result in held:
            token = getattr(request, "token", None)
            assert isinstance(token, int)
            self.run(session, session.answer(token, result, now), now)


def new_session(
    mint: CookieMint, now: float = 1000.0, bos: str = "127.0.0.1:5190"
) -> M.OscarSession:
    config = M.SessionConfig(bos_address=bos)
    # The captured clients hashed their passwords with the key "1234567890".
    return M.OscarSession(
        config, mint, now, random_bytes=lambda n: bytes(n), bucp_key=lambda: b"1234567890"
    )


class ServerView:
    """Decodes what the server sent, as a client would."""

    def __init__(self) -> None:
        self.codec = OscarCodec()
        self.events: list[WireEvent] = []

    def feed(self, data: bytes) -> list[WireEvent]:
        new = self.codec.receive_data(data)
        self.events.extend(new)
        return new

    def snacs(self) -> list[Snac]:
        return [e.snac for e in self.events if isinstance(e, SnacEvent)]

    def pairs(self) -> list[tuple[int, int]]:
        return [(s.family, s.subtype) for s in self.snacs()]

    def first_signon(self) -> Signon:
        first = self.events[0]
        assert isinstance(first, Signon)
        return first
