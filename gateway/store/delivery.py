"""Sessions directory, offline queues, per-node delivery streams and node liveness.

Delivery between nodes goes through ``inbox:{node}`` streams with one consumer group:
an entry is acknowledged only after the event was written to the client (or stored
offline). When a node is declared dead (gateway/store/liveness.py), the node that
declared it claims its pending and unread entries, routes them again (the user may be
online elsewhere by now) or queues them offline, and clears the dead node's sessions
from the directory.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Literal, cast

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from gateway.store import keys
from gateway.store.connection import ReplicationTimeout, ScriptBatcher, Scripts
from gateway.store.liveness import NodeLeases
from schema.events import PresenceState
from schema.records import SessionInfo

OFFLINE_BATCH = 100
"""Offline entries read and written per step of a login's replay (flow-controlled)."""


def session_to_json(row: SessionInfo, active: float) -> str:
    return json.dumps(
        {
            "sid": row.session_id,
            "address": row.address,
            "node": row.node_id,
            "network": row.network,
            "since": row.since,
            "presence": row.presence.value,
            "text": row.status_text,
            "active": active,
        },
        separators=(",", ":"),
    )


@dataclass(frozen=True, slots=True)
class SessionRow:
    info: SessionInfo
    active: float


_parsed_rows: dict[str, SessionRow] = {}
_PARSED_MAX = 50_000


def session_from_json(raw: str) -> SessionRow:
    """A session row; the same text (the recipient's row, on every message to them) is
    parsed once. Rows are immutable, so sharing one is safe."""
    row = _parsed_rows.get(raw)
    if row is None:
        row = _parse_session(raw)
        if len(_parsed_rows) >= _PARSED_MAX:
            _parsed_rows.clear()
        _parsed_rows[raw] = row
    return row


def _parse_session(raw: str) -> SessionRow:
    data = json.loads(raw)
    return SessionRow(
        info=SessionInfo(
            session_id=data["sid"],
            address=data["address"],
            node_id=data["node"],
            network=data["network"],
            since=float(data["since"]),
            presence=PresenceState(data["presence"]),
            status_text=data.get("text", ""),
        ),
        active=float(data.get("active", data["since"])),
    )


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: Literal["dup", "online", "queued", "full", "dropped"]
    sessions: tuple[SessionRow, ...] = ()


@dataclass(frozen=True, slots=True)
class InboxEntry:
    entry_id: str
    session_id: str
    address: str
    payload: str  # JSON of the routed delivery (see gateway.core)


class DeliveryStore:
    def __init__(
        self,
        redis: Redis,
        scripts: Scripts,
        offline_max: int,
        dedupe_seconds: int,
        wait_replicas: int = 0,
        wait_ms: int = 1000,
    ):
        """``wait_replicas``: the writes that make a message durable (the offline queue,
        a node's inbox) return only once that many replicas hold them (``WAIT``), else
        they fail (ReplicationTimeout, a RedisError: the sender is refused); 0 for a
        single Redis. docs/adr/0016-redis-failover.md."""
        self._redis = redis
        self._scripts = scripts
        self._offline_max = offline_max
        self._dedupe_seconds = dedupe_seconds
        self._wait_replicas = wait_replicas
        self._wait_ms = wait_ms
        self._deliver_batch = ScriptBatcher(redis, scripts.deliver_or_queue, wait_replicas, wait_ms)
        self._queue_batch = ScriptBatcher(redis, scripts.queue_only, wait_replicas, wait_ms)
        self.leases = NodeLeases(redis)
        self._queue_once = redis.register_script(QUEUE_ONCE)

    # ---- sessions directory

    async def open_session(self, row: SessionInfo) -> None:
        """Register the session. Its node's index first: a row never exists that its
        node's reclaim would not find. What waited offline is read with
        :meth:`read_offline` (the core streams it, docs/adr/0015-delivery-contract.md)."""
        now = time.time()
        await self._redis.sadd(keys.node_sessions(row.node_id), f"{row.address}|{row.session_id}")
        await self._redis.hset(
            keys.sessions(row.address), row.session_id, session_to_json(row, now)
        )

    async def read_offline(
        self, address: str, after: str = "", count: int = OFFLINE_BATCH
    ) -> list[tuple[str, str]]:
        """Up to ``count`` offline entries (id, payload) after entry ``after`` (from the
        oldest when empty), oldest first."""
        start = f"({after}" if after else "-"
        reply = cast(
            list[tuple[str, dict[str, str]]],
            await self._redis.xrange(keys.offline(address), start, "+", count=count),
        )
        return [(entry_id, fields.get("e", "")) for entry_id, fields in reply]

    async def update_session(self, row: SessionInfo, active: float) -> None:
        key = keys.sessions(row.address)
        if await self._redis.hexists(key, row.session_id):
            await self._redis.hset(key, row.session_id, session_to_json(row, active))

    async def close_session(self, address: str, session_id: str, node_id: str) -> None:
        await self._redis.hdel(keys.sessions(address), session_id)
        await self._redis.srem(keys.node_sessions(node_id), f"{address}|{session_id}")

    async def sessions_of(self, address: str) -> list[SessionRow]:
        rows = cast(list[str], await self._redis.hvals(keys.sessions(address)))
        return [session_from_json(r) for r in rows]

    async def node_session_members(self, node_id: str) -> list[tuple[str, str]]:
        members = cast(set[str], await self._redis.smembers(keys.node_sessions(node_id)))
        out = []
        for member in members:
            address, _, sid = member.rpartition("|")
            out.append((address, sid))
        return out

    async def forget_node_sessions(self, node_id: str) -> list[str]:
        """Remove every session the node held; returns the affected addresses."""
        affected = []
        for address, sid in await self.node_session_members(node_id):
            await self._redis.hdel(keys.sessions(address), sid)
            affected.append(address)
        await self._redis.delete(keys.node_sessions(node_id))
        return sorted(set(affected))

    # ---- offline queue

    async def deliver_or_queue(
        self, address: str, message_id: str, payload: str, queue: bool, dedupe: bool
    ) -> Outcome:
        result = await self._deliver_batch(
            keys=[keys.sessions(address), keys.offline(address), keys.seen(address, message_id)],
            args=[
                "1" if queue else "0",
                self._dedupe_seconds,
                payload,
                self._offline_max,
                "1" if dedupe else "0",
            ],
        )
        kind = result[0]
        if kind == "online":
            return Outcome("online", tuple(session_from_json(r) for r in result[1:]))
        if kind in ("dup", "queued", "full", "dropped"):
            return Outcome(kind)
        raise RuntimeError(f"unexpected deliver_or_queue reply {kind!r}")

    async def queue_offline(self, address: str, payload: str) -> bool:
        entry = await self._queue_batch(
            keys=[keys.offline(address)], args=[payload, self._offline_max]
        )
        return bool(entry)

    async def queue_offline_once(self, address: str, event_id: str, payload: str) -> bool:
        """Queue an event offline unless this very event was queued for ``address``
        by an earlier attempt (a reclaim retried after its reclaimer died): True when
        it is in the queue now. Full queue: False."""
        script_keys = [keys.offline(address), keys.requeued(address, event_id)]
        args: list[str | int] = [payload, self._offline_max, self._dedupe_seconds]
        if not self._wait_replicas:
            return bool(await self._queue_once(keys=script_keys, args=args))
        pipe = self._redis.pipeline(transaction=False)
        await self._queue_once(keys=script_keys, args=args, client=pipe)
        pipe.execute_command("WAIT", self._wait_replicas, self._wait_ms)
        entry, acked = await pipe.execute()
        if entry:
            self._check_replicas(int(acked))
        return bool(entry)

    async def ack_offline(self, address: str, entry_ids: list[str]) -> None:
        if entry_ids:
            await self._redis.xdel(keys.offline(address), *entry_ids)

    async def offline_count(self, address: str) -> int:
        count: int = await self._redis.xlen(keys.offline(address))
        return count

    # ---- inbox streams

    async def ensure_inbox(self, node_id: str) -> None:
        try:
            await self._redis.xgroup_create(
                keys.inbox(node_id), keys.INBOX_GROUP, id="0", mkstream=True
            )
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def send_to_node(self, node_id: str, session_id: str, address: str, payload: str) -> bool:
        """Append to the node's inbox; False when that node was declared dead (route
        the event again: its sessions are being removed). With ``wait_replicas`` the
        append is reported only once that many replicas have it (docs/adr/0016)."""
        if not self._wait_replicas:
            return await self.leases.send(node_id, session_id, address, payload)
        sent, acked = await self.leases.send_and_wait(
            node_id, session_id, address, payload, self._wait_replicas, self._wait_ms
        )
        if sent:
            self._check_replicas(acked)
        return sent

    def _check_replicas(self, acked: int) -> None:
        """With ``wait_replicas``: a write fewer replicas acknowledged is refused
        (:class:`ReplicationTimeout`) rather than reported as one a failover keeps."""
        if self._wait_replicas and acked < self._wait_replicas:
            raise ReplicationTimeout(
                f"{acked} of {self._wait_replicas} replicas acknowledged in {self._wait_ms} ms"
            )

    async def read_own_pending(
        self, node_id: str, consumer: str, count: int = 200
    ) -> list[InboxEntry]:
        """Entries this consumer read earlier and has not acknowledged yet (oldest
        first): after a failed round, they are finished before anything new."""
        reply = await self._redis.xreadgroup(
            keys.INBOX_GROUP, consumer, {keys.inbox(node_id): "0"}, count=count
        )
        return _inbox_entries(reply)

    async def read_inbox(
        self, node_id: str, consumer: str, block_ms: int, count: int = 200
    ) -> list[InboxEntry]:
        reply = await self._redis.xreadgroup(
            keys.INBOX_GROUP,
            consumer,
            {keys.inbox(node_id): ">"},
            count=count,
            block=block_ms,
        )
        return _inbox_entries(reply)

    async def claim_all(self, node_id: str, consumer: str) -> list[InboxEntry]:
        """Every entry of a node's inbox not yet acknowledged: pending ones (read by a
        dead consumer) and unread ones."""
        await self.ensure_inbox(node_id)
        stream = keys.inbox(node_id)
        claimed: list[InboxEntry] = []
        start = "0-0"
        while True:
            reply = await self._redis.xautoclaim(
                stream, keys.INBOX_GROUP, consumer, min_idle_time=0, start_id=start, count=500
            )
            start, entries = reply[0], reply[1]
            claimed.extend(_entries(entries))
            if start == "0-0":
                break
        while True:
            unread = _inbox_entries(
                await self._redis.xreadgroup(keys.INBOX_GROUP, consumer, {stream: ">"}, count=500)
            )
            if not unread:
                break
            claimed.extend(unread)
        return claimed

    async def ack_inbox(self, node_id: str, entry_ids: list[str]) -> None:
        if entry_ids:
            stream = keys.inbox(node_id)
            await self._redis.xack(stream, keys.INBOX_GROUP, *entry_ids)
            await self._redis.xdel(stream, *entry_ids)

    # ---- node liveness

    async def describe_node(self, node_id: str, description: dict[str, str]) -> None:
        await self._redis.hset(keys.NODES, node_id, json.dumps(description, sort_keys=True))

    async def alive(self, node_id: str) -> bool:
        """Not declared dead (gateway/store/liveness.py)."""
        return await self.leases.alive(node_id)

    async def nodes(self) -> dict[str, dict[str, str]]:
        raw = cast(dict[str, str], await self._redis.hgetall(keys.NODES))
        return {k: json.loads(v) for k, v in raw.items()}

    async def forget_node(self, node_id: str) -> None:
        await self._redis.hdel(keys.NODES, node_id)
        await self._redis.delete(keys.inbox(node_id))
        await self.leases.forget(node_id)


# KEYS: offline:{A}, requeued:{A}:<event id>; ARGV: entry json, queue max, marker ttl.
QUEUE_ONCE = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 1 end
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[2]) then return false end
redis.call('SET', KEYS[2], '1', 'EX', tonumber(ARGV[3]))
return redis.call('XADD', KEYS[1], '*', 'e', ARGV[1])
"""


def _entries(entries: list[tuple[str, dict[str, str] | None]]) -> list[InboxEntry]:
    out = []
    for entry_id, fields in entries:
        if not fields:  # deleted while pending
            continue
        out.append(InboxEntry(entry_id, fields["s"], fields["a"], fields["p"]))
    return out


def _inbox_entries(reply: object) -> list[InboxEntry]:
    if not reply:
        return []
    out: list[InboxEntry] = []
    assert isinstance(reply, list)
    for _stream, entries in reply:
        out.extend(_entries(entries))
    return out
