"""Test doubles for the MSN glue: an in-memory CoreServices and a synchronous runner.

A double of our own adapter contract (never of the real core), for unit tests of the
Twisted glue; end-to-end tests use the real gateway.
"""

from __future__ import annotations

import ast
import hashlib
import hmac
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from twisted.internet.defer import Deferred, fail, succeed

from adapters.contract import ClientLink, Delivery, OpenedSession, ShowsTyping
from schema.addresses import split_address
from schema.events import CanonicalEvent, Message, Presence, PresenceState, Typing
from schema.records import (
    AccountInfo,
    ContactEntry,
    LoginOutcome,
    LoginProof,
    LoginResult,
    PlainPasswordProof,
    PresencePolicy,
    SaltedMd5Proof,
    ScramParameters,
)

T = TypeVar("T")
VECTORS = Path("/work/shared/vectors/msn")


def run_sync(coro: Coroutine[Any, Any, T]) -> Deferred[T]:
    """Run a coroutine that never suspends; its result as a fired Deferred."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return succeed(stop.value)
    except Exception:
        return fail()
    coro.close()
    raise RuntimeError("the fake core suspended")


@dataclass
class FakeSession:
    address: str
    link: ClientLink
    presence: PresenceState
    status_text: str


@dataclass
class FakeCore:
    accounts: dict[str, tuple[str, str]] = field(default_factory=dict)  # address -> (pw, name)
    aliases: dict[str, str] = field(default_factory=dict)  # alias address -> real address
    sessions: dict[str, FakeSession] = field(default_factory=dict)
    policies: dict[str, PresencePolicy] = field(default_factory=dict)
    contact_lists: dict[str, list[ContactEntry]] = field(default_factory=dict)
    submitted: list[CanonicalEvent] = field(default_factory=list)
    offline: dict[str, list[Delivery]] = field(default_factory=dict)
    counter: int = 0

    @property
    def node_id(self) -> str:
        return "test-node"

    def add(self, address: str, password: str, name: str) -> None:
        self.accounts[address] = (password, name)

    async def account(self, address: str) -> AccountInfo | None:
        real = self.aliases.get(address, address)
        if real not in self.accounts:
            return None
        return AccountInfo(real, self.accounts[real][1], False)

    async def check_login(self, address: str, proof: LoginProof) -> LoginResult:
        if address not in self.accounts:
            return LoginResult(LoginOutcome.NO_SUCH_ACCOUNT)
        password, name = self.accounts[address]
        if isinstance(proof, PlainPasswordProof):
            ok = proof.password == password
        elif isinstance(proof, SaltedMd5Proof):
            expected = hashlib.md5((proof.salt + password).encode()).hexdigest()
            ok = hmac.compare_digest(expected, proof.digest_hex)
        else:
            return LoginResult(LoginOutcome.UNSUPPORTED)
        if not ok:
            return LoginResult(LoginOutcome.BAD_PASSWORD)
        return LoginResult(LoginOutcome.OK, AccountInfo(address, name, False))

    async def scram_parameters(self, address: str) -> ScramParameters:
        raise NotImplementedError

    async def open_session(
        self,
        address: str,
        link: ClientLink,
        presence: PresenceState = PresenceState.ONLINE,
        status_text: str = "",
    ) -> OpenedSession:
        self.counter += 1
        session_id = f"s{self.counter}"
        self.sessions[session_id] = FakeSession(address, link, presence, status_text)
        waiting = tuple(self.offline.pop(address, []))
        await self._fan_out(address)
        return OpenedSession(session_id, waiting)

    async def close_session(self, session_id: str) -> None:
        session = self.sessions.pop(session_id, None)
        if session is not None:
            await self._fan_out(session.address)

    async def set_presence(
        self, session_id: str, presence: PresenceState, status_text: str = ""
    ) -> None:
        session = self.sessions[session_id]
        session.presence = presence
        session.status_text = status_text
        await self._fan_out(session.address)

    async def _fan_out(self, address: str) -> None:
        for watcher in await self.watchers(address):
            state = await self.presence_of(address, watcher)
            for s in self._sessions_of(watcher):
                event = Presence(sender=address, recipient=watcher, state=state)
                s.link.deliver(
                    Delivery(event, await self.present_as(address, "msn"), self._name(address))
                )

    def _sessions_of(self, address: str) -> list[FakeSession]:
        return [s for s in self.sessions.values() if s.address == address]

    def _name(self, address: str) -> str:
        return self.accounts.get(address, ("", address))[1]

    async def submit(self, event: CanonicalEvent) -> None:
        self.submitted.append(event)
        recipient = self.aliases.get(event.recipient, event.recipient)
        targets = self._sessions_of(recipient)
        peer = await self.present_as(event.sender, split_address(recipient)[0])
        delivery = Delivery(event, peer, self._name(event.sender))
        if not targets and isinstance(event, Message):
            self.offline.setdefault(recipient, []).append(delivery)
        for s in targets:
            if isinstance(event, Typing):
                if isinstance(s.link, ShowsTyping):
                    s.link.show_typing(peer, event)
            else:
                s.link.deliver(delivery)

    async def resolve(self, address: str) -> str | None:
        real = self.aliases.get(address, address)
        return real if real in self.accounts else None

    async def present_as(self, address: str, network: str) -> str:
        for alias, real in self.aliases.items():
            if real == address and alias.startswith(network + ":"):
                return alias.split(":", 1)[1]
        return address.split(":", 1)[1]

    async def contacts(self, owner: str) -> Sequence[ContactEntry]:
        return list(self.contact_lists.get(owner, []))

    async def put_contact(self, owner: str, entry: ContactEntry) -> None:
        entries = [e for e in self.contact_lists.get(owner, []) if e.contact != entry.contact]
        self.contact_lists[owner] = [*entries, entry]

    async def remove_contact(self, owner: str, contact: str) -> None:
        self.contact_lists[owner] = [
            e for e in self.contact_lists.get(owner, []) if e.contact != contact
        ]

    async def presence_of(self, address: str, watcher: str) -> PresenceState:
        sessions = self._sessions_of(address)
        return sessions[-1].presence if sessions else PresenceState.OFFLINE

    async def presence_policy(self, owner: str) -> PresencePolicy:
        return self.policies.get(owner, PresencePolicy.ALLOWED)

    async def set_presence_policy(self, owner: str, policy: PresencePolicy) -> None:
        self.policies[owner] = policy

    async def watchers(self, address: str) -> Sequence[str]:
        return [
            owner
            for owner, entries in self.contact_lists.items()
            if any(e.contact == address and e.subscribed for e in entries)
        ]

    async def register_account(
        self, network: str, password: str, display_name: str
    ) -> AccountInfo | None:
        return None

    async def find_accounts(
        self, network: str, text: str, limit: int = 20
    ) -> Sequence[AccountInfo]:
        return []

    def befriend(self, a: str, b: str) -> None:
        """a and b have each other on their lists, with consent."""
        for owner, other in ((a, b), (b, a)):
            entry = ContactEntry(contact=other, display_name=self._name(other), allowed=True)
            self.contact_lists.setdefault(owner, []).append(replace(entry))


@dataclass(frozen=True)
class VectorLine:
    side: str  # "C" or "S"
    channel: str  # "NS", "SB", "HTTP"
    text: str
    payload: bytes | None = None


def load_vector(name: str) -> list[VectorLine]:
    """The lines of a WIRE-NOTES capture; payload bytes attach to their command."""
    lines: list[VectorLine] = []
    for raw in (VECTORS / name).read_text(encoding="utf-8").splitlines():
        if raw.startswith("P "):
            payload = ast.literal_eval(raw[2:])
            assert isinstance(payload, bytes)
            last = lines.pop()
            lines.append(VectorLine(last.side, last.channel, last.text, payload))
        elif raw[:2] in ("C ", "S "):
            channel, _, text = raw[2:].partition(" ")
            lines.append(VectorLine(raw[0], channel.strip("[]"), text))
    return lines


def client_bytes(line: VectorLine, line_end: bytes = b"\r\n") -> bytes:
    """What the client put on the wire for a captured 'C' line."""
    return line.text.encode("utf-8") + line_end + (line.payload or b"")
