"""A node's cache of the slow-changing facts every message needs: who owns an id,
account info, a person's linked addresses, aliases, and contact entries (blocks,
consent). Without it one message costs about ten Redis round trips
(docs/BENCHMARKS.md, profile-before); with it, the delivery script alone.

Correctness:
- Ids and aliases are never reused or reassigned (docs/adr/0004-aliases.md), so a known
  owner or alias is kept for good (bounded in number). "Nobody owns it" is never cached.
- Everything else is dropped when a change is announced (gateway/store/changes.py) —
  every write in the store announces, whichever process made it — and after
  ``ttl`` seconds at the latest.
- While the subscription is down nothing is cached (reads go to Redis); when it comes
  back everything is forgotten, since announcements may have been missed.
- A read that raced with an announcement does not store its (possibly stale) answer: a
  generation counter moves on every forget.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import TypeVar

from redis.exceptions import RedisError
from twisted.logger import Logger

from gateway.store import Store
from gateway.store.changes import CHANNEL, decode
from schema.records import AccountInfo, ContactEntry

log = Logger()
V = TypeVar("V")


class _Table:
    """key -> (expires, value), bounded: cleared whole when it grows past ``limit``."""

    def __init__(self, ttl: float | None, limit: int) -> None:
        self.ttl = ttl
        self.limit = limit
        self.rows: dict[Hashable, tuple[float, object]] = {}

    def get(self, key: Hashable, now: float) -> tuple[bool, object]:
        row = self.rows.get(key)
        if row is None:
            return False, None
        if row[0] < now:
            del self.rows[key]
            return False, None
        return True, row[1]

    def put(self, key: Hashable, value: object, now: float) -> None:
        if len(self.rows) >= self.limit:
            self.rows.clear()
        expires = float("inf") if self.ttl is None else now + self.ttl
        self.rows[key] = (expires, value)


class Facts:
    def __init__(self, store: Store, ttl: float = 30.0, limit: int = 200_000) -> None:
        self._store = store
        self._owner = _Table(None, limit)
        self._alias = _Table(None, limit)
        self._info = _Table(ttl, limit)
        self._linked = _Table(ttl, limit)
        self._contact = _Table(ttl, limit)
        self._generation = 0
        self._subscribed = False
        self._task: asyncio.Task[None] | None = None
        self.hits = 0
        self.misses = 0

    # ---- subscription

    async def start(self) -> None:
        self._task = asyncio.ensure_future(self._listen())

    async def stop(self) -> None:
        self._subscribed = False
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _listen(self) -> None:
        while True:
            pubsub = self._store.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(CHANNEL)
                self.forget_all()
                self._subscribed = True
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        self._apply(str(message["data"]))
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                if self._subscribed:
                    log.warn("fact cache: change feed lost ({err}); not caching", err=str(exc))
                self._subscribed = False
                self.forget_all()
                await asyncio.sleep(0.5)
            finally:
                self._subscribed = False
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    def _apply(self, raw: str) -> None:
        change = decode(raw)
        if change is None:
            return
        kind, subjects = change
        if kind == "account":
            self.forget_accounts(*subjects)
        elif kind == "person":
            self.forget_persons()
        elif kind == "contact" and len(subjects) == 2:
            self.forget_contact(subjects[0], subjects[1])
        else:
            self.forget_all()

    # ---- forgetting

    def forget_all(self) -> None:
        self._generation += 1
        for table in (self._info, self._linked, self._contact):
            table.rows.clear()

    def forget_accounts(self, *addresses: str) -> None:
        self._generation += 1
        for address in addresses:
            self._info.rows.pop(address, None)

    def forget_persons(self) -> None:
        # Links change rarely (an admin's act); one link touches every member's list.
        self._generation += 1
        self._linked.rows.clear()

    def forget_contact(self, owner: str, contact: str) -> None:
        self._generation += 1
        self._contact.rows.pop((owner, contact), None)

    # ---- reads

    async def _read(
        self,
        table: _Table,
        key: Hashable,
        load: Callable[[], Awaitable[V]],
        keep: Callable[[V], bool] = lambda _: True,
    ) -> V:
        now = time.monotonic()
        found, value = table.get(key, now)
        if found:
            self.hits += 1
            return value  # type: ignore[return-value]
        self.misses += 1
        generation = self._generation
        loaded = await load()
        if self._subscribed and generation == self._generation and keep(loaded):
            table.put(key, loaded, now)
        return loaded

    async def owner(self, address: str) -> str | None:
        return await self._read(
            self._owner,
            address,
            lambda: self._store.identity.owner(address),
            lambda owner: owner is not None,
        )

    async def info(self, address: str) -> AccountInfo | None:
        return await self._read(self._info, address, lambda: self._store.accounts.info(address))

    async def linked(self, address: str) -> list[str]:
        return await self._read(self._linked, address, lambda: self._store.identity.linked(address))

    async def alias(self, address: str, network: str) -> str:
        """``address``'s alias in ``network``, allocated on first use."""
        return await self._read(
            self._alias, (address, network), lambda: self._store.identity.alias(address, network)
        )

    async def contact(self, owner: str, contact: str) -> ContactEntry | None:
        return await self._read(
            self._contact, (owner, contact), lambda: self._store.contacts.get(owner, contact)
        )
