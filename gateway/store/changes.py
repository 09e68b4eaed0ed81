"""Change announcements: every write to a fact that nodes cache (accounts, persons,
contact entries) is announced on one pub/sub channel, so each node's cache
(gateway/facts.py) forgets it within milliseconds, whichever process wrote it (a node,
the admin API, the CLI).

An announcement is best effort: it follows the write, and a node that misses one (its
subscription was down) clears its whole cache when it subscribes again and does not
cache at all meanwhile. Kinds: ``account`` (addresses), ``person`` (addresses whose
links changed), ``contact`` (owner, contact).
"""

from __future__ import annotations

import json

from redis.asyncio import Redis
from redis.exceptions import RedisError

CHANNEL = "gw:changes"


def encode(kind: str, *subjects: str) -> str:
    return json.dumps([kind, *subjects], separators=(",", ":"))


def decode(raw: str) -> tuple[str, tuple[str, ...]] | None:
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, list) or not data or not all(isinstance(x, str) for x in data):
        return None
    return data[0], tuple(data[1:])


async def announce(redis: Redis, kind: str, *subjects: str) -> bool:
    """Publish a change; False when Redis failed right after the write itself had
    succeeded (then caches hold the old value until their time limit, 30 s)."""
    try:
        await redis.publish(CHANNEL, encode(kind, *subjects))
    except RedisError:
        return False
    return True
