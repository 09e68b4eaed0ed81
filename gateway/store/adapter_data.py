"""Adapter-private data: per account, one Redis hash of opaque strings that the
account's network adapter keeps for itself (MSN's GTC, groups and group aliases,
OSCAR's feedbag items the core does not model...).

The hash sits beside the account, under its address's hash tag (``adata:{A}``): it
belongs to the owner's network by construction (the address names it), and
``AccountStore.delete`` removes it with the account. Values are opaque to the core
(adapters encode them, JSON by habit).

A write is one script over that one slot: every change of a call applies together or
not at all, and only when the account exists and the result stays within
:data:`MAX_KEYS` fields and :data:`MAX_BYTES` bytes (the UTF-8 lengths of every field
name and value, summed). A refused write raises :class:`AdapterDataRefused` (a
``ValueError``), which the adapter turns into its network's error. The bounds keep one
hostile client from growing Redis without limit through its settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

from redis.asyncio import Redis

from gateway.store import keys
from schema.addresses import normalise_address

MAX_KEYS = 64
MAX_BYTES = 64 * 1024
MAX_FIELD_BYTES = 256

# KEYS: adapter data hash, account hash.
# ARGV: max keys, max bytes, number of sets n, then n (field, value) pairs, then the
# fields to delete. Returns 'ok', or why nothing was written: 'account', 'keys', 'bytes'.
UPDATE_ADAPTER_DATA = """
if redis.call('EXISTS', KEYS[2]) == 0 then return 'account' end
local data = {}
local current = redis.call('HGETALL', KEYS[1])
for i = 1, #current, 2 do data[current[i]] = current[i + 1] end
local nset = tonumber(ARGV[3])
local first_delete = 4 + 2 * nset
for i = 4, first_delete - 1, 2 do data[ARGV[i]] = ARGV[i + 1] end
for i = first_delete, #ARGV do data[ARGV[i]] = nil end
local count, size = 0, 0
for field, value in pairs(data) do
  count = count + 1
  size = size + #field + #value
end
if count > tonumber(ARGV[1]) then return 'keys' end
if size > tonumber(ARGV[2]) then return 'bytes' end
for i = 4, first_delete - 1, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
for i = first_delete, #ARGV do redis.call('HDEL', KEYS[1], ARGV[i]) end
return 'ok'
"""

_REASONS = {
    "account": "no such account",
    "keys": f"more than {MAX_KEYS} adapter data fields",
    "bytes": f"adapter data over {MAX_BYTES} bytes",
}


class AdapterDataRefused(ValueError):
    """A write that would exceed the bounds, or for an account that does not exist;
    nothing of it was written."""


def _utf8_size(text: str, what: str) -> int:
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise AdapterDataRefused(f"{what} is not encodable as UTF-8") from None


class AdapterDataStore:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._update = redis.register_script(UPDATE_ADAPTER_DATA)

    async def get(self, owner: str) -> dict[str, str]:
        """Every field the owner's adapter stored (empty when none)."""
        address = normalise_address(owner)
        return cast(dict[str, str], await self._redis.hgetall(keys.adapter_data(address)))

    async def update(self, owner: str, values: Mapping[str, str | None]) -> None:
        """Set each field to its value, deleting those mapped to None; all or nothing."""
        address = normalise_address(owner)
        sets: list[str] = []
        deletes: list[str] = []
        size = 0
        for field, value in values.items():
            field_size = _utf8_size(field, "a field name")
            if not 0 < field_size <= MAX_FIELD_BYTES:
                raise AdapterDataRefused(f"a field name is 1 to {MAX_FIELD_BYTES} bytes")
            if value is None:
                deletes.append(field)
                continue
            size += field_size + _utf8_size(value, "a value")
            sets += (field, value)
        # What is set alone already over a bound never needs a round trip; deletes of
        # fields that do not exist cost nothing, but bound the arguments all the same.
        if len(sets) // 2 > MAX_KEYS or len(deletes) > 2 * MAX_KEYS:
            raise AdapterDataRefused(_REASONS["keys"])
        if size > MAX_BYTES:
            raise AdapterDataRefused(_REASONS["bytes"])
        if not sets and not deletes:
            return
        answer = await self._update(
            keys=[keys.adapter_data(address), keys.account(address)],
            args=[MAX_KEYS, MAX_BYTES, len(sets) // 2, *sets, *deletes],
        )
        if answer != "ok":
            raise AdapterDataRefused(f"{address}: {_REASONS.get(str(answer), str(answer))}")
