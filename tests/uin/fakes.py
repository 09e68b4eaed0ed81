"""Test doubles for the UIN glue: an in-memory CoreServices (our own interface), a
synchronous core runner, and a simulated lossy UDP network on a fake clock."""

from __future__ import annotations

import hashlib
import hmac
import random
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.testing import MemoryReactorClock

from adapters.contract import ClientLink, Delivery, OpenedSession
from adapters.uin.client.messenger import Messenger, UiEvent
from adapters.uin.client.session import ClientSession
from adapters.uin.codec import Status
from adapters.uin.protocol import UinServer
from schema import scram
from schema.addresses import split_address
from schema.events import (
    Authorization,
    CanonicalEvent,
    ContactRequest,
    DeliveryFailure,
    FailureReason,
    Message,
    Presence,
    PresenceState,
)
from schema.records import (
    AccountInfo,
    ContactEntry,
    LoginOutcome,
    LoginProof,
    LoginResult,
    ScramParameters,
    ScramProof,
)

T = TypeVar("T")
SERVER = ("10.0.0.1", 4000)
ITERATIONS = 4096


def run_now(coro: Coroutine[Any, Any, T]) -> Deferred[T]:
    """Run a coroutine that never suspends (the fake core never does)."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return succeed(stop.value)
    except BaseException:
        return fail()
    coro.close()
    raise AssertionError("core coroutine suspended")


@dataclass
class _Account:
    info: AccountInfo
    verifier: scram.ScramVerifier


@dataclass
class _Session:
    address: str
    link: ClientLink
    presence: PresenceState
    text: str


@dataclass
class FakeCore:
    """Just enough of the core for UIN users to talk to each other."""

    node_id: str = "test-node"
    accounts: dict[str, _Account] = field(default_factory=dict)
    sessions: dict[str, _Session] = field(default_factory=dict)
    offline: dict[str, list[CanonicalEvent]] = field(default_factory=dict)
    lists: dict[str, dict[str, ContactEntry]] = field(default_factory=dict)
    submitted: list[CanonicalEvent] = field(default_factory=list)
    proofs: list[LoginProof] = field(default_factory=list)
    allow_registration: bool = True
    next_uin: int = 800000
    _next_session: int = 1

    def add_account(self, uin: int, password: str, nickname: str = "") -> str:
        address = f"uin:{uin}"
        salt = hashlib.sha256(address.encode()).digest()[:16]
        self.accounts[address] = _Account(
            AccountInfo(address, nickname or str(uin), False),
            scram.make_verifier(password, salt, ITERATIONS),
        )
        return address

    async def account(self, address: str) -> AccountInfo | None:
        acct = self.accounts.get(address)
        return acct.info if acct else None

    async def scram_parameters(self, address: str) -> ScramParameters:
        acct = self.accounts.get(address)
        if acct is None:
            fake = hmac.new(b"node", address.encode(), hashlib.sha256).digest()[:16]
            return ScramParameters(fake, ITERATIONS)
        return ScramParameters(acct.verifier.salt, acct.verifier.iterations)

    async def check_login(self, address: str, proof: LoginProof) -> LoginResult:
        self.proofs.append(proof)
        acct = self.accounts.get(address)
        if acct is None:
            return LoginResult(LoginOutcome.NO_SUCH_ACCOUNT)
        assert isinstance(proof, ScramProof)
        if not scram.verify_proof(acct.verifier, proof.auth_message, proof.client_proof):
            return LoginResult(LoginOutcome.BAD_PASSWORD)
        signature = scram.server_signature(acct.verifier, proof.auth_message)
        return LoginResult(LoginOutcome.OK, acct.info, signature)

    def _peer(self, address: str) -> str:
        return split_address(address)[1]

    def online(self, address: str) -> list[_Session]:
        return [s for s in self.sessions.values() if s.address == address]

    async def open_session(
        self,
        address: str,
        link: ClientLink,
        presence: PresenceState = PresenceState.ONLINE,
        status_text: str = "",
    ) -> OpenedSession:
        sid = f"s{self._next_session}"
        self._next_session += 1
        self.sessions[sid] = _Session(address, link, presence, status_text)
        waiting = self.offline.pop(address, [])
        deliveries = tuple(Delivery(e, self._peer(e.sender)) for e in waiting)
        # Like the real core: write the waiting events through the link now, and
        # also return them (the adapter must not show them twice).
        for delivery in deliveries:
            link.deliver(delivery)
        await self._fan_out(address)
        return OpenedSession(sid, deliveries)

    async def close_session(self, session_id: str) -> None:
        session = self.sessions.pop(session_id, None)
        if session is not None:
            await self._fan_out(session.address)

    async def set_presence(
        self, session_id: str, presence: PresenceState, status_text: str = ""
    ) -> None:
        session = self.sessions[session_id]
        session.presence, session.text = presence, status_text
        await self._fan_out(session.address)

    async def _fan_out(self, address: str) -> None:
        live = self.online(address)
        state = live[0].presence if live else PresenceState.OFFLINE
        text = live[0].text if live else ""
        if state is PresenceState.INVISIBLE:
            state = PresenceState.OFFLINE
        for owner, entries in self.lists.items():
            if address in entries and self.lists.get(address, {}).get(owner, _NO).allowed:
                event = Presence(sender=address, recipient=owner, state=state, status_text=text)
                for session in self.online(owner):
                    session.link.deliver(Delivery(event, self._peer(address)))

    async def submit(self, event: CanonicalEvent) -> None:
        self.submitted.append(event)
        if isinstance(event, Authorization) and event.granted:
            await self._fan_out(event.sender)
        live = self.online(event.recipient)
        if not live:
            if event.recipient not in self.accounts:
                if isinstance(event, Message):
                    failure = DeliveryFailure(
                        sender=event.recipient,
                        recipient=event.sender,
                        message_id=event.id,
                        reason=FailureReason.UNKNOWN_RECIPIENT,
                    )
                    for session in self.online(event.sender):
                        session.link.deliver(Delivery(failure, self._peer(event.recipient)))
                return
            if isinstance(event, Message | ContactRequest | Authorization):
                self.offline.setdefault(event.recipient, []).append(event)
            return
        for session in live:
            delivered = session.link.deliver(Delivery(event, self._peer(event.sender)))
            if not delivered and isinstance(event, Message):
                self.offline.setdefault(event.recipient, []).append(event)

    async def resolve(self, address: str) -> str | None:
        return address if address in self.accounts else None

    async def present_as(self, address: str, network: str) -> str:
        return self._peer(address)

    async def contacts(self, owner: str) -> Sequence[ContactEntry]:
        return list(self.lists.get(owner, {}).values())

    async def put_contact(self, owner: str, entry: ContactEntry) -> None:
        self.lists.setdefault(owner, {})[entry.contact] = entry

    async def remove_contact(self, owner: str, contact: str) -> None:
        self.lists.get(owner, {}).pop(contact, None)

    async def presence_of(self, address: str, watcher: str) -> PresenceState:
        if not self.lists.get(address, {}).get(watcher, _NO).allowed:
            return PresenceState.OFFLINE
        live = self.online(address)
        if not live or live[0].presence is PresenceState.INVISIBLE:
            return PresenceState.OFFLINE
        return live[0].presence

    async def watchers(self, address: str) -> Sequence[str]:
        return [o for o, e in self.lists.items() if address in e]

    async def register_account(
        self, network: str, password: str, display_name: str
    ) -> AccountInfo | None:
        if not self.allow_registration:
            return None
        uin = self.next_uin
        self.next_uin += 1
        self.add_account(uin, password, display_name)
        return self.accounts[f"uin:{uin}"].info

    async def find_accounts(
        self, network: str, text: str, limit: int = 20
    ) -> Sequence[AccountInfo]:
        found = [
            a.info
            for a in self.accounts.values()
            if text in a.info.address.partition(":")[2]
            or text.lower() in a.info.display_name.lower()
        ]
        return found[:limit]


_NO = ContactEntry(contact="uin:1", allowed=False)


def befriend(core: FakeCore, a: str, b: str) -> None:
    """Both on each other's list with consent both ways."""
    core.lists.setdefault(a, {})[b] = ContactEntry(contact=b, allowed=True)
    core.lists.setdefault(b, {})[a] = ContactEntry(contact=a, allowed=True)


# ---- simulated network -------------------------------------------------------------


class _ServerTransport:
    def __init__(self, net: LossyNetwork) -> None:
        self._net = net

    def write(self, packet: bytes, addr: tuple[str, int]) -> None:
        self._net.post(packet, SERVER, addr)


class SimClient:
    """A client session plus messenger, wired to the simulated network."""

    def __init__(self, net: LossyNetwork, address: tuple[str, int], session: ClientSession) -> None:
        self.net = net
        self.address = address
        self.session = session
        self.messenger = Messenger(session)
        self.events: list[UiEvent] = []
        self._timer: Any = None

    def start(self) -> None:
        self.session.start(self.net.clock.seconds())
        self.flush()

    def receive(self, data: bytes) -> None:
        try:
            events = self.session.receive(data, self.net.clock.seconds())
        except Exception as exc:
            self.net.client_drops.append(exc)
            return
        self.events.extend(self.messenger.handle(events))
        self.flush()

    def flush(self) -> None:
        now = self.net.clock.seconds()
        for data in self.session.datagrams_to_send(now):
            self.net.post(data, self.address, SERVER)
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        when = self.session.get_timer()
        if when is not None:
            self._timer = self.net.clock.callLater(max(0.0, when - now), self._fire)

    def _fire(self) -> None:
        self._timer = None
        self.events.extend(
            self.messenger.handle(self.session.handle_timer(self.net.clock.seconds()))
        )
        self.flush()

    def do(self, action: Callable[[Messenger], object]) -> object:
        result = action(self.messenger)
        self.flush()
        return result

    def of_kind(self, kind: str) -> list[UiEvent]:
        return [e for e in self.events if e["event"] == kind]


class LossyNetwork:
    """Datagrams between simulated clients and a real UinServer, with seeded loss,
    duplication and reordering (random delivery delay) in both directions."""

    def __init__(
        self,
        seed: int = 1,
        *,
        loss: float = 0.0,
        duplicate: float = 0.0,
        max_delay: float = 0.05,
        core: FakeCore | None = None,
    ) -> None:
        self.rng = random.Random(seed)
        self.loss, self.duplicate, self.max_delay = loss, duplicate, max_delay
        self.clock = MemoryReactorClock()
        self.clock.advance(1_700_000_000)
        self.core = core or FakeCore()
        server_rng = random.Random(seed + 1)
        self.server = UinServer(
            self.core, self.clock, run=run_now, rng=server_rng.randbytes, cookie_secret=b"k" * 32
        )
        self.server.transport = _ServerTransport(self)  # type: ignore[assignment]
        self.clients: dict[tuple[str, int], SimClient] = {}
        self.client_drops: list[Exception] = []
        self.sent = 0
        self.lost = 0
        self.wire: list[tuple[tuple[str, int], tuple[str, int], bytes]] = []

    def client(
        self, uin: int, password: str, *, host: str = "10.0.0.2", port: int = 0, **kw: Any
    ) -> SimClient:
        address = (host, port or 40000 + len(self.clients))
        rng = random.Random(uin * 7 + len(self.clients))
        session = ClientSession(uin, password, rng=rng.randbytes, **kw)
        sim = SimClient(self, address, session)
        self.clients[address] = sim
        return sim

    def post(self, data: bytes, src: tuple[str, int], dst: tuple[str, int]) -> None:
        self.sent += 1
        self.wire.append((src, dst, data))
        if self.rng.random() < self.loss:
            self.lost += 1
            return
        copies = 2 if self.rng.random() < self.duplicate else 1
        for _ in range(copies):
            delay = self.rng.uniform(0.001, self.max_delay)
            self.clock.callLater(delay, self._arrive, data, src, dst)

    def _arrive(self, data: bytes, src: tuple[str, int], dst: tuple[str, int]) -> None:
        if dst == SERVER:
            self.server.datagramReceived(data, src)
        elif dst in self.clients:
            self.clients[dst].receive(data)

    def run(
        self, seconds: float, until: Callable[[], bool] | None = None, step: float = 0.01
    ) -> bool:
        """Advance the fake clock; True as soon as ``until`` holds."""
        end = self.clock.seconds() + seconds
        while self.clock.seconds() < end:
            if until is not None and until():
                return True
            self.clock.advance(step)
        return until() if until is not None else True

    def login(self, *clients: SimClient, seconds: float = 60.0) -> None:
        for c in clients:
            c.start()
        # The server sends the contact list right after login: wait for that too.
        ok = self.run(seconds, lambda: all(c.of_kind("contacts") for c in clients))
        assert ok, [c.events for c in clients]


def status_of(sim: SimClient, uin: int) -> Status | None:
    contact = sim.messenger.contacts.get(uin)
    return contact.status if contact else None


def with_entry(core: FakeCore, owner: str, contact: str, **changes: object) -> None:
    entry = core.lists.setdefault(owner, {}).get(contact, ContactEntry(contact=contact))
    core.lists[owner][contact] = replace(entry, **changes)  # type: ignore[arg-type]
