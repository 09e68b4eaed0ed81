"""UIN test helpers: a simulated lossy UDP network on a fake clock between real client
sessions and the real glue, over the shared core double (tests/support/fake_core.py)."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from twisted.internet.testing import MemoryReactorClock

from adapters.uin.client.messenger import Messenger, UiEvent
from adapters.uin.client.session import ClientSession
from adapters.uin.codec import Status
from adapters.uin.protocol import UinServer
from schema.records import ContactEntry
from tests.support.fake_core import FakeCore, run_now

SERVER = ("10.0.0.1", 4000)


def befriend(core: FakeCore, a: str, b: str) -> None:
    """Both on each other's list with consent both ways."""
    core.befriend(a, b)


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
