"""Everything the gateway keeps, in Redis (see keys.py for the layout)."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from gateway.config import Config
from gateway.credentials import SealingKey
from gateway.store.accounts import AccountError, AccountStore
from gateway.store.adapter_data import AdapterDataStore
from gateway.store.audit import AuditLog
from gateway.store.connection import connect, register_scripts
from gateway.store.contacts import ContactStore
from gateway.store.delivery import DeliveryStore
from gateway.store.identity import IdentityStore


@dataclass(frozen=True)
class Store:
    redis: Redis
    accounts: AccountStore
    identity: IdentityStore
    contacts: ContactStore
    delivery: DeliveryStore
    audit: AuditLog
    adapter_data: AdapterDataStore

    @classmethod
    def open(
        cls,
        url: str,
        sealing: SealingKey,
        *,
        offline_max: int = 1000,
        dedupe_seconds: int = 86400,
        numeric_base: int = 2_000_000_000,
        alias_domain: str = "gateway.invalid",
        sentinels: list[str] | tuple[str, ...] = (),
        master_name: str = "",
        wait_replicas: int = 0,
        wait_ms: int = 1000,
    ) -> Store:
        """``sentinels``/``master_name``: find the primary through Redis Sentinel (and
        follow a failover); ``wait_replicas``: see DeliveryStore."""
        redis = connect(url, sentinels, master_name)
        scripts = register_scripts(redis)
        return cls(
            redis=redis,
            accounts=AccountStore(redis, scripts, sealing),
            identity=IdentityStore(redis, scripts, numeric_base, alias_domain),
            contacts=ContactStore(redis),
            delivery=DeliveryStore(
                redis, scripts, offline_max, dedupe_seconds, wait_replicas, wait_ms
            ),
            audit=AuditLog(redis),
            adapter_data=AdapterDataStore(redis),
        )

    @classmethod
    def configured(cls, url: str, sealing: SealingKey, config: Config) -> Store:
        """:meth:`open` with the ``[delivery]`` and ``[redis]`` settings of ``config``
        (the runtime and the admin CLI open the same store)."""
        return cls.open(
            url,
            sealing,
            offline_max=config.delivery.offline_queue_max,
            dedupe_seconds=config.delivery.dedupe_seconds,
            numeric_base=config.delivery.alias_numeric_base,
            alias_domain=config.delivery.alias_domain,
            sentinels=config.redis.sentinels,
            master_name=config.redis.master_name,
            wait_replicas=config.redis.wait_replicas,
            wait_ms=config.redis.wait_timeout_ms,
        )

    async def close(self) -> None:
        await self.redis.aclose()


__all__ = ["AccountError", "Store"]
