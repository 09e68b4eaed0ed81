"""Hosted accounts: one hash per address, claimed in the network's namespace."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

from redis.asyncio import Redis

from gateway.credentials import SealingKey, StoredVerifiers, make_verifiers
from gateway.store import keys
from gateway.store.changes import announce
from gateway.store.connection import Scripts
from schema.addresses import make_address, split_address
from schema.records import AccountInfo, PresencePolicy

_Field = bytes | bytearray | memoryview | str | int | float


def _mapping(fields: dict[str, str]) -> Mapping[_Field, _Field]:
    return cast(Mapping[_Field, _Field], fields)


class AccountError(ValueError):
    """An admin request about accounts that cannot be carried out (message for people)."""


@dataclass(frozen=True, slots=True)
class AccountRecord:
    info: AccountInfo
    created: float
    verifiers: StoredVerifiers


class AccountStore:
    def __init__(self, redis: Redis, scripts: Scripts, sealing: SealingKey) -> None:
        self._redis = redis
        self._scripts = scripts
        self._sealing = sealing

    async def create(
        self, network: str, native: str, password: str, display_name: str = ""
    ) -> AccountInfo:
        address = make_address(network, native)
        _, canonical_native = split_address(address)
        existing = await self._redis.exists(keys.account(address))
        if existing:
            raise AccountError(f"{address} already exists")
        owner = await self._scripts.claim_account(
            keys=[keys.ns_owner(network), keys.ns_accounts(network)],
            args=[canonical_native, address],
        )
        if owner != address:
            raise AccountError(f"{address} is taken: it is the alias of {owner}")
        return await self._write(address, password, display_name)

    async def create_claimed(self, address: str, password: str, display_name: str) -> AccountInfo:
        """Write an account whose native id was already claimed (self-registration)."""
        return await self._write(address, password, display_name)

    async def _write(self, address: str, password: str, display_name: str) -> AccountInfo:
        verifiers = make_verifiers(address, password, self._sealing)
        _, native = split_address(address)
        fields = {
            "address": address,
            "display": display_name or native,
            "disabled": "0",
            "created": repr(time.time()),
            **verifiers.as_fields(),
        }
        await self._redis.hset(keys.account(address), mapping=_mapping(fields))
        await announce(self._redis, "account", address)
        return AccountInfo(address=address, display_name=fields["display"], disabled=False)

    async def get(self, address: str) -> AccountRecord | None:
        fields = cast(dict[str, str], await self._redis.hgetall(keys.account(address)))
        if not fields:
            return None
        info = AccountInfo(
            address=fields["address"],
            display_name=fields.get("display", ""),
            disabled=fields.get("disabled") == "1",
        )
        return AccountRecord(
            info=info,
            created=float(fields.get("created", "0")),
            verifiers=StoredVerifiers.from_fields(fields),
        )

    async def info(self, address: str) -> AccountInfo | None:
        record = await self.get(address)
        return None if record is None else record.info

    async def _require(self, address: str) -> None:
        if not await self._redis.exists(keys.account(address)):
            raise AccountError(f"no account {address}")

    async def set_password(self, address: str, password: str) -> None:
        await self._require(address)
        verifiers = make_verifiers(address, password, self._sealing)
        await self._redis.hset(keys.account(address), mapping=_mapping(verifiers.as_fields()))

    async def set_disabled(self, address: str, disabled: bool) -> None:
        await self._require(address)
        await self._redis.hset(keys.account(address), "disabled", "1" if disabled else "0")
        await announce(self._redis, "account", address)

    async def presence_policy(self, address: str) -> PresencePolicy:
        raw = cast(str | None, await self._redis.hget(keys.account(address), "visible"))
        try:
            return PresencePolicy(raw) if raw else PresencePolicy.ALLOWED
        except ValueError:
            return PresencePolicy.ALLOWED

    async def set_presence_policy(self, address: str, policy: PresencePolicy) -> None:
        await self._require(address)
        await self._redis.hset(keys.account(address), "visible", policy.value)

    async def set_display_name(self, address: str, display_name: str) -> None:
        await self._require(address)
        await self._redis.hset(keys.account(address), "display", display_name)
        await announce(self._redis, "account", address)

    async def delete(self, address: str) -> None:
        """Remove the account and its private data. Its native id stays claimed by the
        same address (so it is never handed to an alias), and aliases of it in other
        networks stay allocated (never reused)."""
        await self._require(address)
        network, _ = split_address(address)
        await self._redis.delete(
            keys.account(address),
            keys.contacts(address),
            keys.offline(address),
            keys.adapter_data(address),
        )
        await self._redis.srem(keys.ns_accounts(network), address)
        await announce(self._redis, "account", address)

    async def list_all(self, network: str) -> list[AccountInfo]:
        addresses = cast(set[str], await self._redis.smembers(keys.ns_accounts(network)))
        out = []
        for address in sorted(addresses):
            info = await self.info(address)
            if info is not None:
                out.append(info)
        return out

    async def search(self, network: str, text: str, limit: int) -> list[AccountInfo]:
        needle = text.strip().lower()
        if not needle:
            return []
        found: list[AccountInfo] = []
        async for address in self._redis.sscan_iter(keys.ns_accounts(network), count=500):
            info = await self.info(address)
            if info is None or info.disabled:
                continue
            native = address.partition(":")[2]
            if needle == native or needle in info.display_name.lower():
                found.append(info)
                if len(found) >= limit:
                    break
        return found
