"""A Redis restart loses no account, link or alias (AOF on, as the embedded default)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from gateway.credentials import SealingKey
from gateway.embedded import EmbeddedRedis
from gateway.store import Store
from schema.records import PlainPasswordProof

KEY = SealingKey(b"r" * 32)


async def _write(url: str) -> dict[str, str]:
    store = Store.open(url, KEY)
    try:
        await store.accounts.create("oscar", "12345", "pw-oscar", "Alice")
        await store.accounts.create("msn", "bob@example.com", "pw-msn")
        await store.accounts.create("uin", "700123", "pw-uin")
        await store.identity.link(["oscar:12345", "msn:bob@example.com"])
        return {
            "uin": await store.identity.alias("oscar:12345", "uin"),
            "msn": await store.identity.alias("uin:700123", "msn"),
        }
    finally:
        await store.close()


async def _read(url: str) -> tuple[list[str], list[str], dict[str, str | None], bool]:
    store = Store.open(url, KEY)
    try:
        accounts = [
            a.address for n in ("oscar", "msn", "uin") for a in await store.accounts.list_all(n)
        ]
        linked = await store.identity.linked("oscar:12345")
        aliases = {
            "uin": await store.identity.existing_alias("oscar:12345", "uin"),
            "msn": await store.identity.existing_alias("uin:700123", "msn"),
        }
        record = await store.accounts.get("oscar:12345")
        from gateway.credentials import check_proof

        assert record is not None
        ok = check_proof("oscar:12345", PlainPasswordProof("pw-oscar"), record.verifiers, KEY).ok
        return accounts, linked, aliases, ok
    finally:
        await store.close()


def _restart_keeps_everything(tmp_path: Path, crash: bool) -> None:
    server = EmbeddedRedis(tmp_path / "redis")
    server.start()
    try:
        aliases = asyncio.run(_write(server.url))
        if crash:
            import time

            time.sleep(1.5)  # appendfsync everysec: what a crash may lose is the last second
            server.kill()
        else:
            server.stop()
        server.start()
        accounts, linked, stored_aliases, password_ok = asyncio.run(_read(server.url))
    finally:
        server.stop()
    assert sorted(accounts) == ["msn:bob@example.com", "oscar:12345", "uin:700123"]
    assert linked == ["msn:bob@example.com", "oscar:12345"]
    assert stored_aliases == aliases
    assert password_ok


def test_clean_restart_loses_nothing(tmp_path: Path) -> None:
    """SIGTERM and start again: accounts, links, aliases and verifiers are all there."""
    _restart_keeps_everything(tmp_path, crash=False)


def test_crash_restart_loses_nothing_older_than_a_second(tmp_path: Path) -> None:
    """SIGKILL after the AOF's one-second fsync window: nothing is lost either."""
    _restart_keeps_everything(tmp_path, crash=True)
