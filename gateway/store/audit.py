"""The audit log of admin changes: a capped Redis stream (who, what, when)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import cast

from redis.asyncio import Redis

from gateway.store import keys

AUDIT_MAX = 100_000


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: str
    time: float
    actor: str
    action: str
    detail: dict[str, str]


class AuditLog:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def record(self, actor: str, action: str, **detail: str) -> None:
        await self._redis.xadd(
            keys.AUDIT,
            {
                "time": repr(time.time()),
                "actor": actor,
                "action": action,
                "detail": json.dumps(detail, sort_keys=True),
            },
            maxlen=AUDIT_MAX,
            approximate=True,
        )

    async def recent(self, count: int = 50) -> list[AuditEntry]:
        rows = cast(
            list[tuple[str, dict[str, str]]], await self._redis.xrevrange(keys.AUDIT, count=count)
        )
        return [
            AuditEntry(
                id=entry_id,
                time=float(fields["time"]),
                actor=fields["actor"],
                action=fields["action"],
                detail=json.loads(fields["detail"]),
            )
            for entry_id, fields in rows
        ]
