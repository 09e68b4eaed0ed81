"""Namespaces, aliases and persons (account links)."""

from __future__ import annotations

from typing import cast

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from gateway.aliases import plan_alias
from gateway.store import keys
from gateway.store.changes import announce
from gateway.store.connection import Scripts
from schema.addresses import split_address

_PERSON_PREFIX = keys.person_members("")


class AliasSpaceExhausted(RuntimeError):
    pass


class IdentityStore:
    def __init__(
        self, redis: Redis, scripts: Scripts, numeric_base: int, alias_domain: str
    ) -> None:
        self._redis = redis
        self._scripts = scripts
        self._numeric_base = numeric_base
        self._alias_domain = alias_domain

    async def owner(self, address: str) -> str | None:
        """Who a native id in its network stands for: the address itself when it is an
        account there, the aliased address when it is an alias, else None."""
        network, native = split_address(address)
        owner = cast(str | None, await self._redis.hget(keys.ns_owner(network), native))
        return owner

    async def alias(self, address: str, target_network: str) -> str:
        """The native id of ``address`` in ``target_network`` (allocated on first use)."""
        plan = plan_alias(address, target_network, self._numeric_base, self._alias_domain)
        try:
            alias: str = await self._scripts.allocate_alias(
                keys=[
                    keys.ns_owner(target_network),
                    keys.ns_alias_of(target_network),
                    keys.ns_seq(target_network),
                ],
                args=[
                    address,
                    len(plan.candidates),
                    *plan.candidates,
                    plan.prefix,
                    plan.suffix,
                    plan.base,
                    plan.maximum,
                ],
            )
        except ResponseError as exc:
            if "ALIASSPACE" in str(exc):
                raise AliasSpaceExhausted(str(exc)) from None
            raise
        return alias

    async def existing_alias(self, address: str, target_network: str) -> str | None:
        alias = cast(str | None, await self._redis.hget(keys.ns_alias_of(target_network), address))
        return alias

    async def aliases(self, address: str, networks: list[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for network in networks:
            alias = await self.existing_alias(address, network)
            if alias is not None:
                out[network] = alias
        return out

    async def allocate_registration(self, network: str, first: int, maximum: int) -> str:
        try:
            native: str = await self._scripts.allocate_registration(
                keys=[
                    keys.ns_owner(network),
                    keys.ns_accounts(network),
                    keys.ns_registration_seq(network),
                ],
                args=[network, first, maximum],
            )
        except ResponseError as exc:
            if "ALIASSPACE" in str(exc):
                raise AliasSpaceExhausted(str(exc)) from None
            raise
        return native

    # ---- persons

    async def link(self, addresses: list[str]) -> str:
        person: str = await self._scripts.link(
            keys=[keys.PERSON_OF, keys.PERSON_SEQ],
            args=[len(addresses), *addresses, _PERSON_PREFIX],
        )
        await announce(self._redis, "person", *addresses)
        return person

    async def unlink(self, address: str) -> str | None:
        person: str | None = await self._scripts.unlink(
            keys=[keys.PERSON_OF], args=[address, _PERSON_PREFIX]
        )
        await announce(self._redis, "person", address)
        return person or None

    async def person_of(self, address: str) -> str | None:
        person = cast(str | None, await self._redis.hget(keys.PERSON_OF, address))
        return person

    async def linked(self, address: str) -> list[str]:
        """Every address of the person owning ``address`` (just itself when unlinked)."""
        person = await self.person_of(address)
        if person is None:
            return [address]
        members = cast(set[str], await self._redis.smembers(keys.person_members(person)))
        return sorted(members) if members else [address]
