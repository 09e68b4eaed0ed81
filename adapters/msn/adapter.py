"""The MSN adapter: settings, listeners (notification server, switchboard, Passport HTTPS).

The Passport endpoint (nexus, login2.srf, RST.srf) speaks TLS by default: every
MSNP8+ client fetches it over ``https://``. Without ``tls_cert``/``tls_key`` it uses
the node's own self-signed certificate (``CoreServices.tls_certificate``), asked for
the names MSN clients hard-code (:data:`PASSPORT_HOSTS`) and the configured hosts.
``http_tls = false`` keeps plain HTTP (a TLS-terminating proxy in front, tests).
See docs/adr/0008-https-login.md.
"""

from __future__ import annotations

from collections.abc import Coroutine, Mapping, Sequence
from typing import Any, cast
from typing import Protocol as Interface

from pydantic import BaseModel, ConfigDict, Field, model_validator
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IListeningPort, IReactorCore
from twisted.protocols.tls import TLSMemoryBIOFactory

from adapters import tls
from adapters.admission import DEFAULT_MAX_PER_SOURCE, Rate, SourceCap
from adapters.aio import as_deferred, wait_deferred
from adapters.contract import CoreServices, Listener, TlsCertificate
from adapters.msn.login_http import MAX_CONNECTION_SECONDS, PassportResource, PassportSite
from adapters.msn.protocol import (
    DEFAULT_RATES,
    Clock,
    MsnRates,
    MsnService,
    NotificationFactory,
    Runner,
    SwitchboardFactory,
)
from adapters.msn.session import LOGIN_TIMEOUT, NsConfig
from adapters.msn.tokens import TokenSigner
from adapters.output_bound import DEFAULT_LIMIT, DEFAULT_STALL_SECONDS, OutputLimits

WILDCARDS = ("0.0.0.0", "::", "")

PASSPORT_HOSTS = (
    "nexus.passport.com",
    "login.passport.com",
    "login.live.com",
    "loginnet.passport.com",
    "messenger.hotmail.com",
)
"""Host names MSN clients hard-code for the nexus, the login and the notification
server: the self-signed certificate names them so a client that checks names (after
a hosts-file entry points them at the gateway) accepts it."""


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

    def listenSSL(
        self,
        port: int,
        factory: object,
        contextFactory: object,
        backlog: int = 50,
        interface: str = "",
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
    """``host[:port]`` the nexus names in ``DALogin``; default: http_host (public_host
    when http_host is a wildcard) and the bound port (none for 443: msn-pecan always
    connects to 443)."""
    http_tls: bool = True
    """The Passport endpoint speaks HTTPS (every MSNP8+ client needs it); false: plain HTTP."""
    http_timeout: float = Field(default=30.0, gt=0, le=600)
    """Seconds a login connection may stay silent (also to finish its TLS handshake)."""
    http_max_seconds: float = Field(default=MAX_CONNECTION_SECONDS, gt=0, le=3600)
    """Longest a login connection may stay open at all (a client dribbling bytes)."""
    login_timeout: float = Field(default=LOGIN_TIMEOUT, gt=0, le=3600)
    """A notification or switchboard connection not logged in by then is closed."""
    max_connections_per_source: int = Field(default=DEFAULT_MAX_PER_SOURCE, ge=1)
    """Simultaneous connections one source address may hold on each listener (NS, SB, HTTP)."""
    command_rate: float = Field(default=DEFAULT_RATES.command.per_second, gt=0)
    command_burst: float = Field(default=DEFAULT_RATES.command.burst, ge=1)
    """Commands per second (and at once) a connection may send; past that it is closed."""
    change_rate: float = Field(default=DEFAULT_RATES.change.per_second, gt=0)
    change_burst: float = Field(default=DEFAULT_RATES.change.burst, ge=1)
    """CHG/REA/PRP/UUX per second (and at once); past that: error 800 and closed."""
    message_rate: float = Field(default=DEFAULT_RATES.message.per_second, gt=0)
    message_burst: float = Field(default=DEFAULT_RATES.message.burst, ge=1)
    """Switchboard MSGs per second (and at once); past that the switchboard is closed."""
    max_output_bytes: int = Field(default=DEFAULT_LIMIT, ge=4096)
    """What a client that stops reading may still be handed before it is disconnected."""
    output_stall_seconds: float = Field(default=DEFAULT_STALL_SECONDS, gt=0)
    """How long a client may leave its socket full before it is disconnected."""
    tls_cert: str | None = None
    """PEM certificate (chain) for the endpoint; default: the node's own self-signed one."""
    tls_key: str | None = None
    ticket_secret: str | None = Field(default=None, min_length=16, repr=False)
    """Shared HMAC key for Passport tickets, so any node accepts another's tickets."""
    redirect_ns: str | None = None
    """``host:port``: answer every login with ``XFR NS`` to this server."""

    @model_validator(mode="after")
    def _tls_pair(self) -> MsnSettings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together")
        if self.tls_cert is not None and not self.http_tls:
            raise ValueError("tls_cert is set but http_tls is false")
        return self

    def certificate_names(self) -> list[str]:
        """The names the self-signed certificate must carry for this adapter."""
        names = [self.public_host, self.http_host]
        if self.http_public:
            names.append(self.http_public.rpartition(":")[0] or self.http_public)
        return [*names, *PASSPORT_HOSTS]


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
        ns_config = NsConfig(
            signer=signer,
            switchboard_address="",
            redirect_to=config.redirect_ns,
            login_timeout=config.login_timeout,
        )
        service = MsnService(
            core=core,
            clock=clock,
            run=self._runner,
            signer=signer,
            ns_config=ns_config,
            output=OutputLimits(config.max_output_bytes, config.output_stall_seconds),
            rates=MsnRates(
                command=Rate(config.command_rate, config.command_burst),
                change=Rate(config.change_rate, config.change_burst),
                message=Rate(config.message_rate, config.message_burst),
            ),
        )
        self.service = service

        def capped(factory: Any, what: str) -> SourceCap:
            return SourceCap(factory, config.max_connections_per_source, clock, what)

        sb_port = tcp.listenTCP(
            config.switchboard_port,
            capped(SwitchboardFactory(service), "msn switchboard"),
            interface=config.host,
        )
        self._ports.append(sb_port)
        sb_address = f"{config.public_host}:{_port(sb_port).getHost().port}"
        service.ns_config = NsConfig(
            signer=signer,
            switchboard_address=sb_address,
            redirect_to=config.redirect_ns,
            login_timeout=config.login_timeout,
        )
        ns_port = tcp.listenTCP(
            config.port,
            capped(NotificationFactory(service), "msn notification server"),
            interface=config.host,
        )
        self._ports.append(ns_port)

        http_bound: list[int] = []

        def login_host() -> str:
            if config.http_public:
                return config.http_public
            port = http_bound[0] if http_bound else config.http_port
            host = config.public_host if config.http_host in WILDCARDS else config.http_host
            return host if port == 443 else f"{host}:{port}"

        site_type: Any = PassportSite  # twisted.web's Site is untyped
        site = site_type(PassportResource(service, login_host), timeout=config.http_timeout)
        site.max_seconds = config.http_max_seconds
        certificate: TlsCertificate | None = None
        if not config.http_tls:
            http_port = tcp.listenTCP(
                config.http_port, capped(site, "msn login endpoint"), interface=config.http_host
            )
        else:
            if config.tls_cert is not None and config.tls_key is not None:
                certificate = tls.configured_certificate(config.tls_cert, config.tls_key)
            else:
                certificate = await core.tls_certificate(config.certificate_names())
            options = tls.server_options(certificate)
            # listenSSL, with the cap outside TLS: a refused connection costs no handshake.
            tls_site = TLSMemoryBIOFactory(cast(Any, options), False, site)
            http_port = tcp.listenTCP(
                config.http_port, capped(tls_site, "msn login endpoint"), interface=config.http_host
            )
        self._ports.append(http_port)
        http_bound.append(_port(http_port).getHost().port)

        def where(port: IListeningPort) -> str:
            host = _port(port).getHost()
            return f"{host.host}:{host.port}"

        if certificate is None:
            login = f"msn passport nexus/login on http://{where(http_port)} (plain HTTP)"
        else:
            login = (
                f"msn passport nexus/login on https://{where(http_port)} "
                f"(certificate {certificate.cert_path}, SHA-256 {certificate.sha256})"
            )
        return [
            Listener(f"msn notification server on {where(ns_port)}", ns_port),
            Listener(f"msn switchboard on {where(sb_port)} (announced as {sb_address})", sb_port),
            Listener(login, http_port),
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
