"""The bench's accounts, contact entries and aliases, built once and cached.

Accounts are created with the gateway's own store code (``AccountStore.create``:
scrypt, SCRAM and sealed verifiers, never weakened), ``cpu_count`` worker processes
in parallel, against a scratch Redis. Contacts and aliases follow through the same
store. The result is saved as an RDB file plus the sealing key under
``bench/.cache/<key>/``; the key names the account counts and a hash of the code that
defines what is stored, so a change there rebuilds it.

Who is who (P = ``msn_pairs``):
- OSCAR: ICQ numbers ``10000000 + i`` for i < ``oscar_users``. Users 0..P-1 receive
  from the MSN senders; the rest form the pool of idle users, senders and receivers.
- MSN: ``bench<i>@example.com``; 0..P-1 send, P..2P-1 receive.
- Consent: OSCAR user i and MSN receiver i list MSN sender i as allowed (MSN's CAL
  only reaches a contact that lets the caller see it online).
- Aliases: each OSCAR receiver's MSN alias, each MSN receiver's OSCAR alias.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import multiprocessing
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import redis

from gateway.credentials import SealingKey
from gateway.embedded import EmbeddedRedis
from gateway.store import Store
from schema.records import ContactEntry

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CACHE = REPO / "bench" / ".cache"
PASSWORD = "bench-Secret-9"
OSCAR_BASE = 10_000_000

# The files that define what a cached data set holds; a change to one rebuilds it.
# (Delivery, sessions and audit code are left out: they do not shape stored accounts.)
_VERSIONED = (
    "gateway/store/keys.py",
    "gateway/store/accounts.py",
    "gateway/store/identity.py",
    "gateway/store/contacts.py",
    "gateway/credentials.py",
    "gateway/aliases.py",
    "schema/records.py",
    "schema/scram.py",
    "schema/addresses.py",
    "bench/dataset.py",
)


def oscar_name(i: int) -> str:
    return str(OSCAR_BASE + i)


def msn_email(i: int) -> str:
    return f"bench{i}@example.com"


def code_version() -> str:
    digest = hashlib.sha256()
    for name in _VERSIONED:
        path = REPO / name
        digest.update(name.encode())
        digest.update(path.read_bytes() if path.exists() else b"-")
    return digest.hexdigest()[:12]


@dataclass(frozen=True)
class DatasetSpec:
    oscar_users: int
    msn_pairs: int

    @property
    def msn_users(self) -> int:
        return 2 * self.msn_pairs

    def key(self) -> str:
        return f"o{self.oscar_users}-m{self.msn_users}-{code_version()}"


@dataclass(frozen=True)
class Dataset:
    spec: DatasetSpec
    rdb: Path
    sealing_key: Path
    msn_alias_of_oscar: dict[str, str]  # OSCAR receiver name -> its MSN alias
    oscar_alias_of_msn: dict[str, str]  # MSN receiver email -> its OSCAR alias
    build_seconds: float
    cached: bool


def _create_slice(url: str, key_path: str, items: list[tuple[str, str]]) -> None:
    async def run() -> None:
        store = Store.open(url, SealingKey.load_or_create(Path(key_path)))
        try:
            for network, native in items:
                await store.accounts.create(network, native, PASSWORD, f"Bench {native}")
        finally:
            await store.close()

    asyncio.run(run())


async def _link_up(
    url: str, key_path: Path, spec: DatasetSpec
) -> tuple[dict[str, str], dict[str, str]]:
    store = Store.open(url, SealingKey.load_or_create(key_path))
    msn_alias: dict[str, str] = {}
    oscar_alias: dict[str, str] = {}
    try:
        for i in range(spec.msn_pairs):
            sender = f"msn:{msn_email(i)}"
            receiver = msn_email(spec.msn_pairs + i)
            oscar = oscar_name(i)
            for owner in (f"oscar:{oscar}", f"msn:{receiver}"):
                await store.contacts.put(owner, ContactEntry(contact=sender, allowed=True))
            msn_alias[oscar] = await store.identity.alias(f"oscar:{oscar}", "msn")
            oscar_alias[receiver] = await store.identity.alias(f"msn:{receiver}", "oscar")
    finally:
        await store.close()
    return msn_alias, oscar_alias


def build(spec: DatasetSpec, directory: Path, log: bool = True) -> Dataset:
    """Create every account of ``spec`` in a scratch Redis; save RDB and key."""
    started = time.perf_counter()
    scratch = directory / "scratch"
    shutil.rmtree(scratch, ignore_errors=True)
    server = EmbeddedRedis(scratch, appendonly=False)
    server.start()
    key_path = directory / "secret.key"
    key_path.unlink(missing_ok=True)
    SealingKey.load_or_create(key_path)
    try:
        items = [("oscar", oscar_name(i)) for i in range(spec.oscar_users)]
        items += [("msn", msn_email(i)) for i in range(spec.msn_users)]
        workers = max(1, min(os.cpu_count() or 1, len(items)))
        slices = [items[w::workers] for w in range(workers)]
        if log:
            print(
                f"bench: creating {len(items)} accounts in {workers} processes "
                "(scrypt verifiers, cached afterwards)...",
                flush=True,
            )
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(workers) as pool:
            pool.starmap(_create_slice, [(server.url, str(key_path), s) for s in slices])
        msn_alias, oscar_alias = asyncio.run(_link_up(server.url, key_path, spec))
        client = redis.Redis.from_url(server.url)
        client.save()
        client.close()
    finally:
        server.stop()
    rdb = directory / "dump.rdb"
    (scratch / "dump.rdb").replace(rdb)
    shutil.rmtree(scratch, ignore_errors=True)
    seconds = time.perf_counter() - started
    manifest = {
        "spec": asdict(spec),
        "msn_alias_of_oscar": msn_alias,
        "oscar_alias_of_msn": oscar_alias,
        "build_seconds": seconds,
    }
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return Dataset(spec, rdb, key_path, msn_alias, oscar_alias, seconds, cached=False)


def ensure(spec: DatasetSpec, cache: Path = DEFAULT_CACHE, log: bool = True) -> Dataset:
    """The cached data set for ``spec``, built first when missing."""
    directory = cache / spec.key()
    manifest_path = directory / "manifest.json"
    if manifest_path.exists() and (directory / "dump.rdb").exists():
        manifest = json.loads(manifest_path.read_text())
        return Dataset(
            spec,
            directory / "dump.rdb",
            directory / "secret.key",
            dict(manifest["msn_alias_of_oscar"]),
            dict(manifest["oscar_alias_of_msn"]),
            float(manifest["build_seconds"]),
            cached=True,
        )
    # Sets of the same size built for older code are stale: drop them.
    prefix = spec.key().rsplit("-", 1)[0] + "-"
    for stale in cache.glob(prefix + "*"):
        if stale != directory and stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
    directory.mkdir(parents=True, exist_ok=True)
    manifest_path.unlink(missing_ok=True)
    return build(spec, directory, log)


def start_redis(dataset: Dataset, directory: Path) -> EmbeddedRedis:
    """A Redis loaded from the data set's RDB, then switched to AOF (everysec), as
    the gateway's embedded Redis runs in production."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(dataset.rdb, directory / "dump.rdb")
    server = EmbeddedRedis(directory, appendonly=False)
    server.start()
    client = redis.Redis.from_url(server.url)
    try:
        client.config_set("appendonly", "yes")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            info = client.info("persistence")
            rewriting = info.get("aof_rewrite_in_progress") or info.get("aof_rewrite_scheduled")
            if info.get("aof_enabled") == 1 and not rewriting:
                break
            time.sleep(0.05)
    finally:
        client.close()
    return server


def install_sealing_key(dataset: Dataset, data_dir: Path) -> None:
    """The gateway reads ``<data_dir>/secret.key``: the key the accounts were sealed with."""
    data_dir.mkdir(parents=True, exist_ok=True)
    target = data_dir / "secret.key"
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(dataset.sealing_key.read_bytes())
