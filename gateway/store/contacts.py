"""Contact lists (one hash per owner) and the reverse index of watchers."""

from __future__ import annotations

import dataclasses
import json
from typing import cast

from redis.asyncio import Redis

from gateway.store import keys
from gateway.store.changes import announce
from schema.records import ContactEntry

MAX_CONTACTS = 2000


class ContactListFull(ValueError):
    pass


def _encode(entry: ContactEntry) -> str:
    return json.dumps(dataclasses.asdict(entry), separators=(",", ":"), sort_keys=True)


def _decode(raw: str) -> ContactEntry:
    data = json.loads(raw)
    fields = {f.name for f in dataclasses.fields(ContactEntry)}
    return ContactEntry(**{k: v for k, v in data.items() if k in fields})


class ContactStore:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def entries(self, owner: str) -> list[ContactEntry]:
        raw = cast(dict[str, str], await self._redis.hgetall(keys.contacts(owner)))
        return [_decode(v) for _, v in sorted(raw.items())]

    async def get(self, owner: str, contact: str) -> ContactEntry | None:
        raw = cast(str | None, await self._redis.hget(keys.contacts(owner), contact))
        return None if raw is None else _decode(raw)

    async def put(self, owner: str, entry: ContactEntry) -> None:
        key = keys.contacts(owner)
        is_new = not await self._redis.hexists(key, entry.contact)
        if is_new and await self._redis.hlen(key) >= MAX_CONTACTS:
            raise ContactListFull(f"{owner} has {MAX_CONTACTS} contacts already")
        await self._redis.hset(key, entry.contact, _encode(entry))
        # The reverse index follows the list; written second, so a crash between the two
        # leaves at worst a watcher without the entry, which presence fan-out re-checks.
        await self._redis.sadd(keys.watchers(entry.contact), owner)
        await announce(self._redis, "contact", owner, entry.contact)

    async def remove(self, owner: str, contact: str) -> None:
        await self._redis.hdel(keys.contacts(owner), contact)
        await self._redis.srem(keys.watchers(contact), owner)
        await announce(self._redis, "contact", owner, contact)

    async def watchers(self, address: str) -> list[str]:
        members = cast(set[str], await self._redis.smembers(keys.watchers(address)))
        return sorted(members)
