"""The core's offline replay at login (docs/adr/0015-delivery-contract.md), against the
test session's real Redis: streamed in batches paced by the link's flow control, live
events kept behind the backlog, nothing left queued."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from adapters.contract import Delivery
from gateway.core import GatewayCore
from gateway.credentials import SealingKey
from gateway.store import Store
from gateway.store.delivery import OFFLINE_BATCH
from schema.events import Message

SEALING = SealingKey(b"\x01" * 32)
ALICE, BOB = "oscar:123456", "msn:bob@example.com"


class PacedLink:
    """A FlowControlled link the test opens and closes like a socket that drains."""

    def __init__(self) -> None:
        self.got: list[Delivery] = []
        self.writable = True
        self._waiting: list[Callable[[], None]] = []

    def deliver(self, delivery: Delivery) -> bool:
        self.got.append(delivery)
        if len(self.got) % OFFLINE_BATCH == 0:
            self.writable = False  # the "socket" is full after each batch
        return True

    def when_writable(self, callback: Callable[[], None]) -> None:
        if self.writable:
            callback()
        else:
            self._waiting.append(callback)

    def drain(self) -> None:
        self.writable = True
        waiting, self._waiting = self._waiting, []
        for callback in waiting:
            callback()


async def _settle(link: PacedLink, count: int) -> None:
    for _ in range(300):
        if len(link.got) >= count:
            return
        await asyncio.sleep(0.01)


def test_backlog_is_streamed_paced_and_live_messages_come_after_it(redis_url: str) -> None:
    """350 waiting messages go out one batch per drain, never more; a message sent while
    they stream arrives after all of them; the queue ends empty."""

    async def scenario() -> None:
        store = Store.open(redis_url, SEALING, offline_max=5000)
        core = GatewayCore(store, SEALING, "node-1", heartbeat_seconds=0.05)
        await core.start()
        try:
            await store.accounts.create("oscar", "123456", "pw-a", "Alice")
            await store.accounts.create("msn", "bob@example.com", "pw-b", "Bob")
            for n in range(350):
                await core.submit(Message(sender=ALICE, recipient=BOB, body=f"m{n}"))
            assert await store.delivery.offline_count(BOB) == 350
            link = PacedLink()
            await core.open_session(BOB, link)
            await _settle(link, OFFLINE_BATCH)
            await asyncio.sleep(0.1)
            assert len(link.got) == OFFLINE_BATCH  # paused: the link is not writable
            await core.submit(Message(sender=ALICE, recipient=BOB, body="live"))
            assert len(link.got) == OFFLINE_BATCH  # parked behind the backlog
            for _ in range(5):
                link.drain()
                await _settle(link, min(351, len(link.got) + OFFLINE_BATCH))
            bodies = [d.event.body for d in link.got if isinstance(d.event, Message)]
            assert bodies == [f"m{n}" for n in range(350)] + ["live"]
            assert all(d.offline for d in link.got)  # all came through the queue
            assert await store.delivery.offline_count(BOB) == 0
            await core.submit(Message(sender=ALICE, recipient=BOB, body="after"))
            assert link.got[-1].event.body == "after" and not link.got[-1].offline  # type: ignore[union-attr]
        finally:
            await core.stop()
            await store.close()

    asyncio.run(scenario())
