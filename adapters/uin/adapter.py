"""The UIN network adapter: settings, the UDP listener, start and stop."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Protocol, cast

from pydantic import BaseModel, ConfigDict, Field
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IListeningPort, IReactorCore

from adapters.aio import as_deferred
from adapters.contract import CoreServices, Listener
from adapters.uin.protocol import Clock, Limits, UinServer

DEFAULT_PORT = 4000


class UinSettings(BaseModel):
    """``[adapters.uin]`` in the gateway's TOML file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "0.0.0.0"
    port: int = Field(default=DEFAULT_PORT, ge=0, le=65535)
    allow_utf8: bool = True
    packets_per_second: float = Field(default=50.0, gt=0)
    packet_burst: float = Field(default=100.0, ge=1)
    hellos_per_second: float = Field(default=2.0, gt=0)
    hello_burst: float = Field(default=10.0, ge=1)
    registrations_per_second: float = Field(default=0.1, gt=0)
    registration_burst: float = Field(default=3.0, ge=1)
    max_sessions: int = Field(default=10_000, ge=1)
    max_sessions_per_host: int = Field(default=32, ge=1)

    def limits(self) -> Limits:
        return Limits(
            packets_per_second=self.packets_per_second,
            packet_burst=self.packet_burst,
            hellos_per_second=self.hellos_per_second,
            hello_burst=self.hello_burst,
            registrations_per_second=self.registrations_per_second,
            registration_burst=self.registration_burst,
            max_sessions=self.max_sessions,
            max_sessions_per_host=self.max_sessions_per_host,
        )


class _Port(Protocol):
    def getHost(self) -> object: ...

    def stopListening(self) -> Deferred[None] | None: ...


class _UdpReactor(Protocol):
    def listenUDP(
        self, port: int, protocol: UinServer, interface: str = "", maxPacketSize: int = 8192
    ) -> IListeningPort: ...


class UinAdapter:
    """``adapters.uin.adapter:UinAdapter``: the UIN messenger on 4000/udp."""

    network = "uin"

    def __init__(self) -> None:
        self.server: UinServer | None = None
        self._port: IListeningPort | None = None

    async def start(
        self, core: CoreServices, reactor: IReactorCore, settings: Mapping[str, object]
    ) -> Sequence[Listener]:
        config = UinSettings.model_validate(dict(settings))
        self.server = UinServer(
            core,
            cast(Clock, reactor),
            run=as_deferred,
            limits=config.limits(),
            allow_utf8=config.allow_utf8,
        )
        udp = cast(_UdpReactor, reactor)
        self._port = udp.listenUDP(config.port, self.server, interface=config.host)
        return [Listener("UIN messenger (udp)", self._port)]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
        if self._port is not None:
            port, self._port = cast(_Port, self._port), None
            result = port.stopListening()
            if isinstance(result, Deferred):
                await result.asFuture(asyncio.get_running_loop())
