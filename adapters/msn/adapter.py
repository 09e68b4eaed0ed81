"""The MSN adapter: settings, listeners (notification server, switchboard, Passport HTTP)."""

from __future__ import annotations

from collections.abc import Coroutine, Mapping, Sequence
from typing import Any, cast
from typing import Protocol as Interface

from pydantic import BaseModel, ConfigDict, Field, model_validator
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IListeningPort, IProtocolFactory, IReactorCore
from twisted.web.server import Site

from adapters.aio import as_deferred, wait_deferred
from adapters.contract import CoreServices, Listener
from adapters.msn.login_http import PassportResource
from adapters.msn.protocol import (
    Clock,
    MsnService,
    NotificationFactory,
    Runner,
    SwitchboardFactory,
)
from adapters.msn.session import NsConfig
from adapters.msn.tls import TlsServerFactory, server_context
from adapters.msn.tokens import TokenSigner


class _Address(Interface):
    host: str
    port: int


class _Port(Interface):
    def getHost(self) -> _Address: ...

    def stopListening(self) -> Deferred[None] | None: ...


class _TcpReactor(Interface):
    def listenTCP(
        self, port: int, factory: object, backlog: int = 50, interface: str = ""
    ) -> IListeningPort: ...


def _port(port: IListeningPort) -> _Port:
    return cast(_Port, port)


class MsnSettings(BaseModel):
    """``[adapters.msn]`` in the config file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "0.0.0.0"
    port: int = Field(default=1863, ge=0, le=65535)
    switchboard_port: int = Field(default=1864, ge=0, le=65535)
    public_host: str = "127.0.0.1"
    """The host clients are told to connect to for switchboards (XFR SB, RNG)."""
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8443, ge=0, le=65535)
    http_public: str | None = None
    """``host:port`` the nexus names in ``DALogin``; default: http_host and the bound port."""
    tls_cert: str | None = None
    tls_key: str | None = None
    ticket_secret: str | None = Field(default=None, min_length=16, repr=False)
    """Shared HMAC key for Passport tickets, so any node accepts another's tickets."""
    redirect_ns: str | None = None
    """``host:port``: answer every login with ``XFR NS`` to this server."""

    @model_validator(mode="after")
    def _tls_pair(self) -> MsnSettings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together")
        return self


def _run_on_loop(coro: Coroutine[Any, Any, Any]) -> Deferred[Any]:
    return as_deferred(coro)


class MsnAdapter:
    network = "msn"

    def __init__(self, runner: Runner[Any] | None = None) -> None:
        self._runner: Runner[Any] = runner or _run_on_loop
        self._ports: list[IListeningPort] = []
        self.service: MsnService | None = None

    async def start(
        self, core: CoreServices, reactor: IReactorCore, settings: Mapping[str, object]
    ) -> Sequence[Listener]:
        config = MsnSettings.model_validate(dict(settings))
        tcp = cast(_TcpReactor, reactor)
        clock = cast(Clock, reactor)
        signer = (
            TokenSigner(config.ticket_secret.encode("utf-8"))
            if config.ticket_secret
            else TokenSigner.random()
        )
        ns_config = NsConfig(signer=signer, switchboard_address="", redirect_to=config.redirect_ns)
        service = MsnService(
            core=core, clock=clock, run=self._runner, signer=signer, ns_config=ns_config
        )
        self.service = service

        sb_port = tcp.listenTCP(
            config.switchboard_port, SwitchboardFactory(service), interface=config.host
        )
        self._ports.append(sb_port)
        sb_address = f"{config.public_host}:{_port(sb_port).getHost().port}"
        service.ns_config = NsConfig(
            signer=signer, switchboard_address=sb_address, redirect_to=config.redirect_ns
        )
        ns_port = tcp.listenTCP(config.port, NotificationFactory(service), interface=config.host)
        self._ports.append(ns_port)

        http_bound: list[int] = []

        def login_host() -> str:
            if config.http_public:
                return config.http_public
            return f"{config.http_host}:{http_bound[0] if http_bound else config.http_port}"

        site = Site(PassportResource(service, login_host))
        site.displayTracebacks = False
        factory: object = site
        if config.tls_cert is not None:
            context = server_context(config.tls_cert, cast(str, config.tls_key))
            factory = TlsServerFactory(cast(IProtocolFactory, site), context)
        http_port = tcp.listenTCP(config.http_port, factory, interface=config.http_host)
        self._ports.append(http_port)
        http_bound.append(_port(http_port).getHost().port)
        scheme = "https" if config.tls_cert else "http"

        def where(port: IListeningPort) -> str:
            host = _port(port).getHost()
            return f"{host.host}:{host.port}"

        return [
            Listener(f"msn notification server on {where(ns_port)}", ns_port),
            Listener(f"msn switchboard on {where(sb_port)} (announced as {sb_address})", sb_port),
            Listener(f"msn passport nexus/login on {scheme}://{where(http_port)}", http_port),
        ]

    async def stop(self) -> None:
        ports, self._ports = self._ports, []
        for port in ports:
            result = _port(port).stopListening()
            if isinstance(result, Deferred):
                await wait_deferred(result)
        service = self.service
        if service is not None:
            for links in list(service.links.values()):
                for link in list(links):
                    link.say_goodbye()
