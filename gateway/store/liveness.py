"""Node liveness with fencing (docs/adr/0014-liveness-and-outages.md).

Theory of operation. Each run of a node takes an epoch, a number from one counter
that only grows (``INCR``), and holds a lease: ``node:{N}:alive`` holds the epoch and
expires ``dead_after`` after the node last renewed it, in Redis's own clock. An
expired lease alone kills nobody: another node must *declare* the node dead, which is
one atomic step (a script) that succeeds only while the lease is absent and sets
``node:{N}:fenced`` to the node's epoch. From then on:

- the node's renewal fails (its epoch is fenced), so it learns it was declared dead
  and registers its sessions again under a new epoch, after the reclaim is done;
- nothing more is written into its inbox (``send`` refuses a fenced node), so the
  reclaimer's claim of the inbox is complete;
- whoever renews first wins: a late renewal before the declaration keeps the node
  alive, a declaration before the renewal fences it. Both are decided by Redis.

A node is alive for routing while its current epoch is not fenced, even if its lease
lapsed (say, all nodes lost Redis for a while): lapsed but not declared dead is the
state every node is in for a moment after an outage, and messages to its users
must still reach them. The reclaim lock (``node:{N}:reclaim``) is taken in the same
step as the declaration and released when the reclaim is done; a fenced node waits
for it before it registers its sessions again, so the reclaimer never removes rows
the node has just written back.
"""

from __future__ import annotations

from typing import cast

from redis.asyncio import Redis

from gateway.store import keys

EPOCHS = f"{keys.PREFIX}node-epochs"
"""The one counter every node's epoch comes from."""


def _epoch_key(node_id: str) -> str:
    return f"{keys.PREFIX}node:{{{node_id}}}:epoch"


def _fenced_key(node_id: str) -> str:
    return f"{keys.PREFIX}node:{{{node_id}}}:fenced"


# KEYS: lease, epoch; ARGV: epoch, ttl ms. A new run (or a fenced one coming back).
START = """
redis.call('SET', KEYS[2], ARGV[1])
redis.call('SET', KEYS[1], ARGV[1], 'PX', tonumber(ARGV[2]))
return 1
"""

# KEYS: lease, fenced, epoch; ARGV: epoch, ttl ms. 1: renewed; 0: this epoch is over
# (declared dead, or a newer run of the same id took over).
RENEW = """
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
  return 1
end
if cur then return 0 end
if tonumber(redis.call('GET', KEYS[2]) or '0') >= tonumber(ARGV[1]) then return 0 end
if redis.call('GET', KEYS[3]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', tonumber(ARGV[2]))
return 1
"""

# KEYS: lease, fenced, epoch, reclaim lock; ARGV: holder, lock ttl ms.
# 1: the node is declared dead and the caller holds its reclaim lock.
DECLARE_DEAD = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if not redis.call('SET', KEYS[4], ARGV[1], 'NX', 'PX', tonumber(ARGV[2])) then return 0 end
local epoch = tonumber(redis.call('GET', KEYS[3]) or '0')
if epoch > tonumber(redis.call('GET', KEYS[2]) or '0') then
  redis.call('SET', KEYS[2], tostring(epoch))
end
return 1
"""

# KEYS: reclaim lock; ARGV: holder.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS: epoch, fenced, inbox; ARGV: session id, address, payload.
# Appends to a node's inbox unless the node was declared dead (its reclaim claims
# everything up to the declaration, and nothing may come after it).
SEND = """
local epoch = tonumber(redis.call('GET', KEYS[1]) or '0')
if epoch == 0 or epoch <= tonumber(redis.call('GET', KEYS[2]) or '0') then return false end
return redis.call('XADD', KEYS[3], '*', 's', ARGV[1], 'a', ARGV[2], 'p', ARGV[3])
"""


class NodeLeases:
    """Epochs, leases and death declarations of the nodes sharing one Redis."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._start = redis.register_script(START)
        self._renew = redis.register_script(RENEW)
        self._declare = redis.register_script(DECLARE_DEAD)
        self._release = redis.register_script(RELEASE)
        self._send = redis.register_script(SEND)

    async def start(self, node_id: str, ttl_ms: int) -> int:
        """A new epoch for ``node_id``, and its lease; returns the epoch."""
        epoch = int(await self._redis.incr(EPOCHS))
        await self._start(
            keys=[keys.node_alive(node_id), _epoch_key(node_id)], args=[epoch, ttl_ms]
        )
        return epoch

    async def renew(self, node_id: str, epoch: int, ttl_ms: int) -> bool:
        """Renew the lease; False when this epoch was declared dead or replaced."""
        done = await self._renew(
            keys=[keys.node_alive(node_id), _fenced_key(node_id), _epoch_key(node_id)],
            args=[epoch, ttl_ms],
        )
        return bool(done)

    async def declare_dead(self, node_id: str, holder: str, lock_ms: int) -> bool:
        """Declare ``node_id`` dead if its lease has expired and nobody is reclaiming it;
        True: it is, and ``holder`` now holds its reclaim lock."""
        done = await self._declare(
            keys=[
                keys.node_alive(node_id),
                _fenced_key(node_id),
                _epoch_key(node_id),
                keys.node_reclaim_lock(node_id),
            ],
            args=[holder, lock_ms],
        )
        return bool(done)

    async def release(self, node_id: str, holder: str) -> None:
        await self._release(keys=[keys.node_reclaim_lock(node_id)], args=[holder])

    async def reclaim_running(self, node_id: str) -> bool:
        return bool(await self._redis.exists(keys.node_reclaim_lock(node_id)))

    async def alive(self, node_id: str) -> bool:
        """Not declared dead: the node's current epoch exists and is not fenced."""
        epoch, fenced = cast(
            list[str | None],
            await self._redis.mget([_epoch_key(node_id), _fenced_key(node_id)]),
        )
        return epoch is not None and int(epoch) > int(fenced or 0)

    async def lease_held(self, node_id: str) -> bool:
        return bool(await self._redis.exists(keys.node_alive(node_id)))

    async def send(self, node_id: str, session_id: str, address: str, payload: str) -> bool:
        """Append to the node's inbox; False when the node was declared dead."""
        entry = await self._send(keys=self._send_keys(node_id), args=[session_id, address, payload])
        return entry is not None and entry is not False

    async def send_and_wait(
        self, node_id: str, session_id: str, address: str, payload: str, wait: int, wait_ms: int
    ) -> tuple[bool, int]:
        """:meth:`send`, then ``WAIT wait wait_ms`` on the same connection (one
        pipeline, so it covers this very write): whether it was appended, and how many
        replicas acknowledged it."""
        pipe = self._redis.pipeline(transaction=False)
        await self._send(
            keys=self._send_keys(node_id), args=[session_id, address, payload], client=pipe
        )
        pipe.execute_command("WAIT", wait, wait_ms)
        entry, acked = await pipe.execute()
        return entry is not None and entry is not False, int(acked)

    @staticmethod
    def _send_keys(node_id: str) -> list[str]:
        return [_epoch_key(node_id), _fenced_key(node_id), keys.inbox(node_id)]

    async def forget(self, node_id: str) -> None:
        """A node that left (or was reclaimed): its lease and epoch go; the fence stays,
        so a run that was declared dead still learns it when it renews."""
        await self._redis.delete(keys.node_alive(node_id), _epoch_key(node_id))
