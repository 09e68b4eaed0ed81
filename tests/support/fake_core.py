"""One in-memory double of our own adapter contract, :class:`adapters.contract.CoreServices`,
for the adapters' glue tests (never a double of the real core: end-to-end tests run the
real gateway), and :func:`run_now`, the runner that drives its coroutines synchronously.

What it models, the way gateway/core.py does:
- Accounts: ``passwords`` (address -> password; an address there is an account) and
  ``names`` (display names, the native id by default). Every proof the adapters send
  is checked against the password: plain, salted MD5 (MSN), keyed MD5 with and
  without the pre-hash (OSCAR), SCRAM (UIN); ``proofs`` records them.
- Aliases: ``aliases`` (alias address -> real address); ``resolve`` and ``present_as``
  follow them, lists keep the real address.
- Sessions: ``open_session`` writes the waiting offline events through ``link.deliver``
  before it returns them (so an adapter must not show them twice), then tells the
  watchers. ``links`` keeps each address's latest link, also after it closed;
  ``closed`` records every session id an adapter closed.
- Routing: ``submit`` records the event in ``submitted``, resolves the recipient, sends
  a message or contact request for nobody back as ``unknown_recipient``, gives typing
  only to links that show it, and queues in ``offline`` what the router's policy keeps
  when the recipient has no session or the link refuses it. Every live session of
  the recipient gets the event (the real core picks one).
- Consent: ``presence_of`` is offline unless the address allows the watcher (an
  allowed entry, or the EVERYONE policy) and does not block them. An
  ``Authorization`` records the granter's consent, as the real core does, and shows the
  granter to the requester at once; presence changes reach the watchers who follow
  the address and have consent. ``put_contact`` only stores (the real core also
  announces a consent change made that way).
- Adapter data, with the contract's bounds and ValueError.
- TLS: ``tls_certificate`` records the names asked for in ``tls_names`` and returns
  ``tls`` (set it to a certificate a test made), or raises LookupError as a node
  without a data directory does.
Not modelled: nodes, linked persons, the bot, dedupe, splitting long messages, hops.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from twisted.internet.defer import Deferred, fail, succeed

from adapters.contract import (
    MAX_ADAPTER_DATA_BYTES,
    MAX_ADAPTER_DATA_KEYS,
    ClientLink,
    CoreServices,
    Delivery,
    OpenedSession,
    ShowsTyping,
    TlsCertificate,
)
from gateway import router
from schema import scram
from schema.events import (
    Authorization,
    CanonicalEvent,
    FailureReason,
    Presence,
    PresenceState,
    Typing,
)
from schema.records import (
    AccountInfo,
    ContactEntry,
    KeyedMd5Proof,
    LoginOutcome,
    LoginProof,
    LoginResult,
    PlainPasswordProof,
    PresencePolicy,
    SaltedMd5Proof,
    ScramParameters,
    ScramProof,
)

T = TypeVar("T")
SCRAM_ITERATIONS = 4096


def run_now(coro: Coroutine[Any, Any, T]) -> Deferred[T]:
    """Run a coroutine that never suspends (the fake core never does); its result, or
    its exception, as a fired Deferred."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return succeed(stop.value)
    except Exception:
        return fail()
    coro.close()
    raise AssertionError("the fake core suspended")


def _native(address: str) -> str:
    return address.partition(":")[2]


def _network(address: str) -> str:
    return address.partition(":")[0]


@dataclass
class FakeSession:
    address: str
    link: ClientLink
    presence: PresenceState
    status_text: str


@dataclass
class FakeCore:
    node_id: str = "test-node"
    passwords: dict[str, str] = field(default_factory=dict)  # the accounts
    names: dict[str, str] = field(default_factory=dict)  # address -> display name
    aliases: dict[str, str] = field(default_factory=dict)  # alias address -> real address
    sessions: dict[str, FakeSession] = field(default_factory=dict)
    links: dict[str, ClientLink] = field(default_factory=dict)  # address -> latest link
    lists: dict[str, dict[str, ContactEntry]] = field(default_factory=dict)
    policies: dict[str, PresencePolicy] = field(default_factory=dict)
    offline: dict[str, list[Delivery]] = field(default_factory=dict)
    data: dict[str, dict[str, str]] = field(default_factory=dict)  # adapter data
    submitted: list[CanonicalEvent] = field(default_factory=list)
    proofs: list[LoginProof] = field(default_factory=list)
    login_sources: list[str] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)
    allow_registration: bool = True
    next_uin: int = 800000
    fail_contacts: bool = False  # contacts() raises, as with the store down
    tls: TlsCertificate | None = None
    tls_names: list[str] = field(default_factory=list)
    _counter: int = 0
    _verifiers: dict[str, scram.ScramVerifier] = field(default_factory=dict)

    # ---- set-up helpers for tests

    def add(self, address: str, password: str, name: str = "") -> str:
        self.passwords[address] = password
        self.names[address] = name or _native(address)
        return address

    def add_account(self, uin: int, password: str, nickname: str = "") -> str:
        """A UIN account (the UIN suite's shorthand for :meth:`add`)."""
        return self.add(f"uin:{uin}", password, nickname)

    def befriend(self, a: str, b: str) -> None:
        """a and b follow each other, with consent both ways."""
        for owner, other in ((a, b), (b, a)):
            entry = ContactEntry(contact=other, display_name=self._name(other), allowed=True)
            self.lists.setdefault(owner, {})[other] = entry

    def session_id_of(self, address: str) -> str:
        """The id of ``address``'s latest open session."""
        return [sid for sid, s in self.sessions.items() if s.address == address][-1]

    # ---- accounts and login

    def _name(self, address: str) -> str:
        return self.names.get(address) or _native(address)

    def _info(self, address: str) -> AccountInfo:
        return AccountInfo(address, self._name(address), False)

    def _verifier(self, address: str) -> scram.ScramVerifier:
        verifier = self._verifiers.get(address)
        if verifier is None:
            salt = hashlib.sha256(address.encode()).digest()[:16]
            verifier = scram.make_verifier(self.passwords[address], salt, SCRAM_ITERATIONS)
            self._verifiers[address] = verifier
        return verifier

    async def account(self, address: str) -> AccountInfo | None:
        return self._info(address) if address in self.passwords else None

    async def check_login(self, address: str, proof: LoginProof, source: str = "") -> LoginResult:
        self.proofs.append(proof)
        self.login_sources.append(source)
        password = self.passwords.get(address)
        if password is None:
            return LoginResult(LoginOutcome.NO_SUCH_ACCOUNT)
        signature = b""
        if isinstance(proof, PlainPasswordProof):
            ok = hmac.compare_digest(proof.password.encode(), password.encode())
        elif isinstance(proof, SaltedMd5Proof):
            expected = hashlib.md5((proof.salt + password).encode()).hexdigest()
            ok = hmac.compare_digest(expected, proof.digest_hex)
        elif isinstance(proof, KeyedMd5Proof):
            secret = (
                hashlib.md5(password.encode()).digest() if proof.prehashed else password.encode()
            )
            expected_digest = hashlib.md5(proof.key + secret + proof.suffix).digest()
            ok = hmac.compare_digest(expected_digest, proof.digest)
        elif isinstance(proof, ScramProof):
            verifier = self._verifier(address)
            ok = scram.verify_proof(verifier, proof.auth_message, proof.client_proof)
            signature = scram.server_signature(verifier, proof.auth_message) if ok else b""
        else:
            return LoginResult(LoginOutcome.UNSUPPORTED, self._info(address))
        if not ok:
            return LoginResult(LoginOutcome.BAD_PASSWORD, self._info(address))
        return LoginResult(LoginOutcome.OK, self._info(address), signature)

    async def scram_parameters(self, address: str) -> ScramParameters:
        if address not in self.passwords:  # plausible parameters for nobody, like the core
            fake = hmac.new(b"node", address.encode(), hashlib.sha256).digest()[:16]
            return ScramParameters(fake, SCRAM_ITERATIONS)
        verifier = self._verifier(address)
        return ScramParameters(verifier.salt, verifier.iterations)

    async def tls_certificate(self, host_names: Sequence[str]) -> TlsCertificate:
        self.tls_names.extend(host_names)
        if self.tls is None:
            raise LookupError("no TLS certificate in this test")
        return self.tls

    async def register_account(
        self, network: str, password: str, display_name: str
    ) -> AccountInfo | None:
        if not self.allow_registration:
            return None
        address = self.add(f"{network}:{self.next_uin}", password, display_name)
        self.next_uin += 1
        return self._info(address)

    async def find_accounts(
        self, network: str, text: str, limit: int = 20
    ) -> Sequence[AccountInfo]:
        found = [
            self._info(address)
            for address in self.passwords
            if _network(address) == network
            and (text in _native(address) or text.lower() in self._name(address).lower())
        ]
        return found[:limit]

    # ---- sessions

    def _sessions_of(self, address: str) -> list[FakeSession]:
        return [s for s in self.sessions.values() if s.address == address]

    async def open_session(
        self,
        address: str,
        link: ClientLink,
        presence: PresenceState = PresenceState.ONLINE,
        status_text: str = "",
    ) -> OpenedSession:
        self._counter += 1
        session_id = f"s{self._counter}"
        self.sessions[session_id] = FakeSession(address, link, presence, status_text)
        self.links[address] = link
        # Like the real core: the waiting events go through the link (marked offline),
        # before any live event; none is returned (the real core streams them).
        waiting = self.offline.pop(address, [])
        for i, delivery in enumerate(waiting):
            if not link.deliver(replace(delivery, offline=True)):
                self.offline[address] = waiting[i:]
                break
        await self._fan_out(address)
        return OpenedSession(session_id)

    async def return_undelivered(self, session_id: str, deliveries: Sequence[Delivery]) -> None:
        for delivery in deliveries:
            if router.policy(delivery.event).queue_offline:
                self.offline.setdefault(delivery.event.recipient, []).append(delivery)

    async def close_session(self, session_id: str) -> None:
        self.closed.append(session_id)
        session = self.sessions.pop(session_id, None)
        if session is not None:
            await self._fan_out(session.address)

    async def set_presence(
        self, session_id: str, presence: PresenceState, status_text: str = ""
    ) -> None:
        session = self.sessions.get(session_id)
        if session is None:
            return
        session.presence, session.status_text = presence, status_text
        await self._fan_out(session.address)

    # ---- routing

    async def submit(self, event: CanonicalEvent) -> None:
        self.submitted.append(event)
        if isinstance(event, Authorization):
            await self._record_consent(event)
        target = await self.resolve(event.recipient)
        if target is None:
            if router.policy(event).report_failure:
                await self._deliver(router.failure_for(event, FailureReason.UNKNOWN_RECIPIENT))
            return
        if target != event.recipient:
            event = event.model_copy(update={"recipient": target})
        await self._deliver(event)

    async def _deliver(self, event: CanonicalEvent) -> None:
        policy = router.policy(event)
        peer = await self.present_as(event.sender, _network(event.recipient))
        delivery = Delivery(event, peer, self._name(event.sender))
        taken = False
        for session in self._sessions_of(event.recipient):
            if isinstance(event, Typing):
                if isinstance(session.link, ShowsTyping):
                    session.link.show_typing(peer, event)
                taken = True  # ephemeral: a link without typing just does not show it
            elif session.link.deliver(delivery):
                taken = True
        if not taken and policy.queue_offline:
            self.offline.setdefault(event.recipient, []).append(delivery)

    async def resolve(self, address: str) -> str | None:
        real = self.aliases.get(address, address)
        return real if real in self.passwords else None

    async def present_as(self, address: str, network: str) -> str:
        if _network(address) != network:
            for alias, real in self.aliases.items():
                if real == address and _network(alias) == network:
                    return _native(alias)
        return _native(address)

    # ---- contacts and consent

    async def contacts(self, owner: str) -> Sequence[ContactEntry]:
        if self.fail_contacts:
            raise RuntimeError("store down")
        return list(self.lists.get(owner, {}).values())

    async def put_contact(self, owner: str, entry: ContactEntry) -> None:
        real = await self.resolve(entry.contact) or entry.contact
        self.lists.setdefault(owner, {})[real] = replace(entry, contact=real)

    async def remove_contact(self, owner: str, contact: str) -> None:
        entries = self.lists.get(owner, {})
        entries.pop(await self.resolve(contact) or contact, None)
        entries.pop(contact, None)

    async def watchers(self, address: str) -> Sequence[str]:
        return [owner for owner, entries in self.lists.items() if address in entries]

    def _consents(self, address: str, watcher: str) -> bool:
        entry = self.lists.get(address, {}).get(watcher)
        if entry is not None and entry.blocked:
            return False
        if entry is not None and entry.allowed:
            return True
        return self.policies.get(address) is PresencePolicy.EVERYONE

    def _presence(self, address: str) -> tuple[PresenceState, str]:
        return router.merged_presence(
            (s.presence, s.status_text) for s in self._sessions_of(address)
        )

    async def presence_of(self, address: str, watcher: str) -> PresenceState:
        real = await self.resolve(address) or address
        if not self._consents(real, watcher):
            return PresenceState.OFFLINE
        return self._presence(real)[0]

    async def set_display_name(self, address: str, display_name: str) -> None:
        if address in self.passwords and display_name and self.names.get(address) != display_name:
            self.names[address] = display_name
            await self._fan_out(address)

    async def presence_for_writer(self, address: str, writer: str) -> PresenceState:
        real = await self.resolve(address) or address
        entry = self.lists.get(real, {}).get(writer)
        if entry is not None and entry.blocked:
            return PresenceState.OFFLINE
        return self._presence(real)[0]

    async def presence_policy(self, owner: str) -> PresencePolicy:
        return self.policies.get(owner, PresencePolicy.ALLOWED)

    async def set_presence_policy(self, owner: str, policy: PresencePolicy) -> None:
        self.policies[owner] = policy
        await self._fan_out(owner)

    async def _record_consent(self, event: Authorization) -> None:
        owner, contact = event.sender, await self.resolve(event.recipient)
        if contact is None or contact == owner:
            return
        entries = self.lists.setdefault(owner, {})
        old = entries.get(contact)
        if old is None:
            if event.granted:
                entries[contact] = ContactEntry(contact=contact, subscribed=False, allowed=True)
        elif old.allowed != event.granted:
            entries[contact] = replace(old, allowed=event.granted, pending=False)
        await self._fan_out(owner, only=contact)

    async def _fan_out(self, address: str, only: str | None = None) -> None:
        """Tell the watchers who follow ``address`` and have its consent its presence."""
        for watcher in await self.watchers(address):
            if only is not None and watcher != only:
                continue
            follows = self.lists[watcher][address].subscribed
            if not follows or not self._consents(address, watcher):
                continue
            state, text = self._presence(address)
            await self._deliver(
                Presence(sender=address, recipient=watcher, state=state, status_text=text)
            )

    # ---- adapter data

    async def adapter_data(self, owner: str) -> Mapping[str, str]:
        return dict(self.data.get(owner, {}))

    async def set_adapter_data(self, owner: str, values: Mapping[str, str | None]) -> None:
        if owner not in self.passwords:
            raise ValueError("no such account")
        data = dict(self.data.get(owner, {}))
        for key, value in values.items():
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value
        size = sum(len(k.encode()) + len(v.encode()) for k, v in data.items())
        if len(data) > MAX_ADAPTER_DATA_KEYS or size > MAX_ADAPTER_DATA_BYTES:
            raise ValueError("adapter data over its bounds")
        self.data[owner] = data


# Checked by mypy: the double implements the whole contract.
_CONTRACT: type[CoreServices] = FakeCore
