"""Admin operations, shared by the HTTP API and the CLI. Every change is audited."""

from __future__ import annotations

import time
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from gateway.credentials import CredentialError, check_password_policy
from gateway.store import AccountError, Store
from gateway.store.identity import AliasSpaceExhausted
from schema.addresses import AddressError, check_network, make_address, normalise_address
from schema.limits import LimitError, check_display_name, shown

KNOWN_NETWORKS = ("oscar", "msn", "uin")


class AdminError(ValueError):
    """A request that cannot be carried out; the message is fit for the admin.
    ``status`` is the HTTP status the API answers with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def iso_time(seconds: float) -> str:
    """A Unix time as ISO 8601 UTC to the second: ``2026-12-04T17:15:00Z``."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso_field(value: object) -> object:
    """A stored time (seconds, maybe as text) as ISO 8601; anything else unchanged."""
    try:
        return iso_time(float(str(value)))
    except (TypeError, ValueError, OverflowError, OSError):
        return value


def _address(value: str) -> str:
    try:
        return normalise_address(value)
    except AddressError as exc:
        raise AdminError(str(exc)) from None


class AdminService:
    def __init__(self, store: Store, networks: tuple[str, ...] = KNOWN_NETWORKS) -> None:
        self._store = store
        self._networks = networks

    def _network(self, network: str) -> str:
        try:
            check_network(network)
        except AddressError as exc:
            raise AdminError(str(exc)) from None
        if network not in self._networks:
            known = ", ".join(self._networks)
            raise AdminError(f"unknown network {shown(network)} (known: {known})")
        return network

    async def add_account(
        self, actor: str, network: str, handle: str, password: str, display_name: str = ""
    ) -> dict[str, Any]:
        network = self._network(network)
        try:
            make_address(network, handle)
            check_display_name(display_name)
            check_password_policy(password)
            info = await self._store.accounts.create(network, handle, password, display_name)
        except (AddressError, CredentialError, LimitError) as exc:
            raise AdminError(str(exc)) from None
        except AccountError as exc:
            raise AdminError(str(exc), status=409) from None
        await self._store.audit.record(actor, "account.add", address=info.address)
        return asdict(info)

    async def list_accounts(self, network: str) -> list[dict[str, Any]]:
        network = self._network(network)
        return [asdict(a) for a in await self._store.accounts.list_all(network)]

    async def set_disabled(self, actor: str, address: str, disabled: bool) -> None:
        address = _address(address)
        try:
            await self._store.accounts.set_disabled(address, disabled)
        except AccountError as exc:
            raise AdminError(str(exc), status=404) from None
        await self._store.audit.record(
            actor, "account.disable" if disabled else "account.enable", address=address
        )

    async def delete_account(self, actor: str, address: str) -> None:
        address = _address(address)
        try:
            await self._store.accounts.delete(address)
        except AccountError as exc:
            raise AdminError(str(exc), status=404) from None
        await self._store.identity.unlink(address)
        await self._store.audit.record(actor, "account.delete", address=address)

    async def set_password(self, actor: str, address: str, password: str) -> None:
        address = _address(address)
        try:
            check_password_policy(password)
            await self._store.accounts.set_password(address, password)
        except CredentialError as exc:
            raise AdminError(str(exc)) from None
        except AccountError as exc:
            raise AdminError(str(exc), status=404) from None
        await self._store.audit.record(actor, "account.passwd", address=address)

    async def link(self, actor: str, addresses: list[str]) -> dict[str, Any]:
        normalised = sorted({_address(a) for a in addresses})
        if len(normalised) < 2:
            raise AdminError("link needs at least two different addresses")
        for address in normalised:
            self._network(address.partition(":")[0])
            if await self._store.accounts.info(address) is None:
                raise AdminError(f"no account {address}", status=404)
        person = await self._store.identity.link(normalised)
        await self._store.audit.record(actor, "link", person=person, addresses=",".join(normalised))
        return {"person": person, "addresses": await self._store.identity.linked(normalised[0])}

    async def unlink(self, actor: str, address: str) -> None:
        address = _address(address)
        person = await self._store.identity.unlink(address)
        if person is None:
            raise AdminError(f"{address} is not linked", status=404)
        await self._store.audit.record(actor, "unlink", person=person, address=address)

    async def whois(self, address: str, allocate: bool = False) -> dict[str, Any]:
        address = _address(address)
        owner = await self._store.identity.owner(address)
        real = owner if owner is not None else address
        info = await self._store.accounts.info(real)
        if info is None and owner is None:
            raise AdminError(f"nobody is {address}", status=404)
        aliases: dict[str, str] = {}
        for network in self._networks:
            if network == real.partition(":")[0]:
                continue
            try:
                alias = (
                    await self._store.identity.alias(real, network)
                    if allocate
                    else await self._store.identity.existing_alias(real, network)
                )
            except AliasSpaceExhausted as exc:
                raise AdminError(str(exc), status=507) from None
            if alias is not None:
                aliases[network] = alias
        online = []
        for linked in await self._store.identity.linked(real):
            for row in await self._store.delivery.sessions_of(linked):
                online.append(
                    {
                        "address": linked,
                        "node": row.info.node_id,
                        "session": row.info.session_id,
                        "presence": row.info.presence.value,
                        "since": iso_time(row.info.since),
                    }
                )
        return {
            "address": real,
            "queried": address,
            "is_alias": owner is not None and owner != address,
            "account": asdict(info) if info else None,
            "person": await self._store.identity.person_of(real),
            "linked": await self._store.identity.linked(real),
            "aliases": aliases,
            "online": online,
            "offline_queued": await self._store.delivery.offline_count(real),
        }

    async def sessions(self) -> list[dict[str, Any]]:
        out = []
        nodes = await self._store.delivery.nodes()
        for node_id in sorted(nodes):
            alive = await self._store.delivery.alive(node_id)
            for address, sid in sorted(await self._store.delivery.node_session_members(node_id)):
                out.append({"node": node_id, "alive": alive, "address": address, "session": sid})
        return out

    async def status(self) -> dict[str, Any]:
        nodes = await self._store.delivery.nodes()
        described = []
        for node_id, info in sorted(nodes.items()):
            described.append(
                {
                    "node": node_id,
                    "alive": await self._store.delivery.alive(node_id),
                    "sessions": len(await self._store.delivery.node_session_members(node_id)),
                    **info,
                    **({"started": _iso_field(info["started"])} if "started" in info else {}),
                }
            )
        counts = {}
        for network in self._networks:
            counts[network] = len(await self._store.accounts.list_all(network))
        return {"time": iso_time(time.time()), "nodes": described, "accounts": counts}

    async def audit(self, count: int = 50) -> list[dict[str, Any]]:
        """The most recent changes, newest first; ``time`` in ISO 8601 UTC."""
        entries = await self._store.audit.recent(max(1, min(count, 1000)))
        return [{**asdict(e), "time": iso_time(e.time)} for e in entries]
