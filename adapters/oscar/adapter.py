"""The OSCAR adapter: settings, the listener, shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any, cast

from pydantic import BaseModel, ConfigDict, Field
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IListeningPort, IReactorCore, IReactorTCP, IReactorTime

from adapters.admission import DEFAULT_MAX_PER_SOURCE, SourceCap
from adapters.contract import CoreServices, Listener
from adapters.oscar.auth import CookieMint
from adapters.oscar.protocol import Clock, OscarFactory
from adapters.oscar.session import SessionConfig
from adapters.output_bound import DEFAULT_LIMIT, DEFAULT_STALL_SECONDS, OutputLimits


class OscarSettings(BaseModel):
    """``[adapters.oscar]`` in the config file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "0.0.0.0"
    port: int = Field(default=5190, ge=0, le=65535)
    # What clients are told to connect to for BOS (default: the address they used).
    bos_host: str | None = None
    bos_port: int | None = Field(default=None, ge=1, le=65535)
    # HMAC key for BOS cookies; random per process when unset (single node).
    cookie_secret: str | None = Field(default=None, min_length=16, repr=False)
    cookie_lifetime: float = Field(default=120.0, gt=0, le=3600)
    login_timeout: float = Field(default=60.0, gt=0)
    idle_timeout: float = Field(default=300.0, gt=0)
    keepalive_interval: float = Field(default=60.0, gt=0)
    max_frame: int = Field(default=16384, ge=1024, le=65535)
    motd: str = Field(default="Welcome to the gateway.", max_length=200)
    max_output_bytes: int = Field(default=DEFAULT_LIMIT, ge=4096)
    """What a client that stops reading may still be handed before it is disconnected."""
    output_stall_seconds: float = Field(default=DEFAULT_STALL_SECONDS, gt=0)
    """How long a client may leave its socket full before it is disconnected."""
    max_connections_per_source: int = Field(default=DEFAULT_MAX_PER_SOURCE, ge=1)
    """Simultaneous connections one source address may hold (login and BOS together)."""


class OscarAdapter:
    network = "oscar"

    def __init__(self) -> None:
        self._factory: OscarFactory | None = None
        self._port: IListeningPort | None = None

    async def start(
        self, core: CoreServices, reactor: IReactorCore, settings: Mapping[str, object]
    ) -> Sequence[Listener]:
        cfg = OscarSettings.model_validate(dict(settings))
        if not (IReactorTCP.providedBy(reactor) and IReactorTime.providedBy(reactor)):
            raise TypeError("the OSCAR adapter needs a reactor with TCP and time")
        secret = cfg.cookie_secret.encode("utf-8") if cfg.cookie_secret else None
        session = SessionConfig(
            bos_address="",
            login_timeout=cfg.login_timeout,
            idle_timeout=cfg.idle_timeout,
            keepalive_interval=cfg.keepalive_interval,
            max_frame=cfg.max_frame,
            motd=cfg.motd,
        )
        self._factory = OscarFactory(
            core,
            cast(Clock, reactor),
            CookieMint(secret, lifetime=cfg.cookie_lifetime),
            session,
            bos_host=cfg.bos_host,
            bos_port=cfg.bos_port,
            output=OutputLimits(cfg.max_output_bytes, cfg.output_stall_seconds),
        )
        port = cast(
            IListeningPort,
            cast(Any, reactor).listenTCP(
                cfg.port,
                SourceCap(self._factory, cfg.max_connections_per_source, reactor, "oscar"),
                interface=cfg.host,
            ),
        )
        self._port = port
        real = cast(Any, port).getHost()
        return [Listener(f"oscar listening on {cfg.host}:{real.port}", port)]

    async def stop(self) -> None:
        if self._factory is not None:
            self._factory.close_all("the server is shutting down")
        if self._port is not None:
            port, self._port = self._port, None
            stopped = cast(Any, port).stopListening()
            if isinstance(stopped, Deferred):
                # start/stop run as asyncio tasks (see adapters.aio).
                await stopped.asFuture(asyncio.get_running_loop())
