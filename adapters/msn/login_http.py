"""The Passport HTTP endpoint of the MSN adapter: nexus, Passport 1.4 and SOAP login.

Twisted glue around the sans-IO :mod:`adapters.msn.passport` (Passport 1.4) and
:mod:`adapters.msn.rst` (SOAP ``RST.srf``): the nexus names the login URL, the login
URL checks the credentials with the core and answers a ticket the notification
server accepts in ``USR n TWN S``. Both logins check the same credentials the same
way and give the same ticket.

Real clients' bytes (docs/protocols/msn.md, "Login over HTTPS"):

- msn-pecan 0.1.1 asks the nexus with ``GET /rdr/pprdr.asp`` and no HTTP version
  (an HTTP/0.9 request line) and finds the answer only by the exact bytes
  ``PassportURLs: ``. :class:`PassportChannel` reads a versionless GET as HTTP/1.1
  with ``Connection: close`` and answers ``HTTP/1.1 200 OK`` as the real nexus did,
  and writes header names in the case real servers used (Twisted's header name
  normalisation would send ``Passporturls``).
- Its Passport 1.4 reader tests the status line literally (``HTTP/1.1 200 OK``,
  ``HTTP/1.1 401 Unauthorized``) and the header ``Authentication-Info: ``.

Hostile input is refused per connection without a traceback: request line and
headers over 16 KiB (Twisted's 400), a body over :data:`rst.MAX_BODY` (413), a
chunked body (411), a client that stays silent or never finishes its TLS handshake
(closed after ``timeout`` seconds), a failed TLS handshake (logged once). ``timeout``
is an idle bound (each byte restarts it), so a client dribbling a byte at a time is
also cut once its connection is :data:`MAX_CONNECTION_SECONDS` old (logged once).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any, cast
from typing import Protocol as Interface

from OpenSSL import SSL
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.http import HTTPChannel
from twisted.web.http_headers import Headers
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request, Site

from adapters.msn import passport, rst
from adapters.msn.protocol import MsnService
from adapters.msn.session import TICKET_PURPOSE
from schema.addresses import AddressError, make_address
from schema.records import PlainPasswordProof

log = Logger(namespace="adapters.msn")

TICKET_LIFETIME = 300.0
RST_PATH = b"/rst.srf"  # compared case-insensitively: IIS paths are
HEADER_CASE = {b"Passporturls": b"PassportURLs"}
"""Header names as real servers wrote them, where Twisted's capitalisation differs
(``Authentication-Info`` and ``WWW-Authenticate`` already come out right)."""
ABORT_AFTER_CLOSE = 2
MAX_CONNECTION_SECONDS = 120.0
"""Longest a login connection may stay open at all (nexus and login take a second)."""
"""Seconds a timed-out peer gets to take the close (a TLS shutdown) before the cut."""


_Channel: Any = HTTPChannel  # Twisted's HTTP code is untyped: call its methods untyped


class _Peer(Interface):
    host: str


class _Transport(Interface):
    def getPeer(self) -> _Peer: ...

    def write(self, data: bytes) -> None: ...

    def writeSequence(self, data: list[bytes]) -> None: ...


def _log_failure(failure: Failure, what: str) -> None:
    log.failure("msn: " + what, failure)


class PassportChannel(HTTPChannel):
    """HTTPChannel with the old clients' request form, exact header names and limits."""

    abortTimeout = ABORT_AFTER_CLOSE

    max_seconds = MAX_CONNECTION_SECONDS  # set by PassportSite

    def __init__(self) -> None:
        _Channel.__init__(self)
        self._at_request_line = True
        self._refused = False
        self._body_bytes = 0
        self._lifetime: Any = None

    def connectionMade(self) -> None:
        _Channel.connectionMade(self)
        self._lifetime = cast(Any, self).callLater(self.max_seconds, self._too_old)

    def _too_old(self) -> None:
        self._lifetime = None
        log.info(
            "msn: login endpoint closed a connection from {peer} open for {n:g} s",
            peer=self._peer(),
            n=self.max_seconds,
        )
        self._refused = True
        transport = cast(Any, self.transport)
        if transport is not None:
            transport.abortConnection()

    def dataReceived(self, data: bytes) -> None:
        if not self._refused:
            _Channel.dataReceived(self, data)

    def lineReceived(self, line: bytes) -> None:
        if self._refused:
            return
        if self._at_request_line and line:
            self._at_request_line = False
            parts = line.split()
            if len(parts) == 2 and parts[0] == b"GET":
                # HTTP/0.9's form (msn-pecan 0.1.1's nexus request): read it as a
                # one-shot HTTP/1.1 request, answered with headers, then closed.
                _Channel.lineReceived(self, line + b" HTTP/1.1")
                _Channel.lineReceived(self, b"Connection: close")
                return
        _Channel.lineReceived(self, line)

    def headerReceived(self, line: bytes) -> bool:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length" and value.strip().isdigit():
            if int(value.strip()) > rst.MAX_BODY:
                self._refuse(b"413 Request Entity Too Large", "request body too large")
                return False
        elif name == b"transfer-encoding" and value.strip().lower() != b"identity":
            self._refuse(b"411 Length Required", "chunked request body")
            return False
        return bool(_Channel.headerReceived(self, line))

    def rawDataReceived(self, data: bytes) -> None:
        self._body_bytes += len(data)
        if self._body_bytes > rst.MAX_BODY + 65536:  # the body plus pipelined requests
            self._refuse(b"413 Request Entity Too Large", "request body too large")
            return
        _Channel.rawDataReceived(self, data)

    def allContentReceived(self) -> None:
        self._at_request_line = True
        self._body_bytes = 0
        _Channel.allContentReceived(self)

    def writeHeaders(
        self, version: bytes, code: bytes, reason: bytes, headers: Headers | Any
    ) -> None:
        if not isinstance(headers, Headers):
            _Channel.writeHeaders(self, version, code, reason, headers)
            return
        # Twisted's writer with one change: names as real servers spelled them.
        sequence = [version, b" ", code, b" ", reason, b"\r\n"]
        for name, values in headers.getAllRawHeaders():
            spelled = HEADER_CASE.get(name, name)
            for value in values:
                sequence.extend((spelled, b": ", value, b"\r\n"))
        sequence.append(b"\r\n")
        self._transport().writeSequence(sequence)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self._lifetime is not None and self._lifetime.active():
            self._lifetime.cancel()
        self._lifetime = None
        if reason.check(SSL.Error) and not self._refused:
            log.info(
                "msn: TLS handshake with {peer} on the login endpoint failed: {why}",
                peer=self._peer(),
                why=_tls_reason(reason),
            )
        _Channel.connectionLost(self, reason)

    def _transport(self) -> _Transport:
        return cast(_Transport, self.transport)

    def _peer(self) -> str:
        if self.transport is None:
            return "?"
        return str(getattr(self._transport().getPeer(), "host", "?"))

    def _refuse(self, status: bytes, why: str) -> None:
        self._refused = True
        log.info(
            "msn: login endpoint refused a request from {peer}: {why}", peer=self._peer(), why=why
        )
        if self.transport is not None:
            self._transport().write(
                b"HTTP/1.1 " + status + b"\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
            )
        _Channel.loseConnection(self)


def _tls_reason(failure: Failure) -> str:
    value = failure.value
    args = getattr(value, "args", ())
    details = args[0] if args else []
    if isinstance(details, list) and details and isinstance(details[0], tuple):
        return str(details[0][-1]) or "TLS error"
    return type(value).__name__


class PassportSite(Site):
    """The Site for :class:`PassportResource`: our channel, no tracebacks, quiet."""

    protocol = PassportChannel  # type: ignore[assignment]
    displayTracebacks = False
    noisy = False
    max_seconds = MAX_CONNECTION_SECONDS

    def buildProtocol(self, addr: Any) -> Any:
        channel = Site.buildProtocol(self, addr)
        if isinstance(channel, PassportChannel):
            channel.max_seconds = self.max_seconds
        return channel


def _finish(request: Request, body: bytes) -> None:
    """Answer with a Content-Length, never chunked: msn-pecan reads the body by its
    Content-Length, and the real servers sent one (0 for the Passport 1.4 answers)."""
    request.setHeader(b"Content-Length", str(len(body)).encode("ascii"))
    if body:
        request.write(body)
    request.finish()


class PassportResource(Resource):
    """The nexus and both logins: a GET with a Passport1.4 Authorization header is the
    Passport 1.4 login, any other GET the nexus, a POST to /RST.srf the SOAP login."""

    isLeaf = True

    def __init__(self, service: MsnService, login_host: Callable[[], str]) -> None:
        Resource.__init__(self)
        self.service = service
        self.login_host = login_host

    def render_GET(self, request: Request) -> bytes | int:
        request.setHeader(b"Cache-Control", b"private")
        request.setHeader(b"Content-Type", b"text/html")
        header = request.getHeader(b"authorization")
        if header is None:
            request.setHeader(b"PassportURLs", passport.nexus_header(self.login_host()).encode())
            return b""
        sign_in = passport.parse_authorization(header.decode("utf-8", "replace"))
        if sign_in is None:
            return self._refuse(request)

        def answer(ticket: str | None) -> None:
            if ticket is None:
                self._refuse(request)
            else:
                request.setHeader(b"Authentication-Info", passport.success_header(ticket).encode())
            _finish(request, b"")

        self._sign_in(request, sign_in.email, sign_in.password, answer)
        return NOT_DONE_YET

    def render_POST(self, request: Request) -> bytes | int:
        request.setHeader(b"Cache-Control", b"no-cache")
        if (request.path or b"").lower() != RST_PATH:
            request.setResponseCode(404)
            return b""
        request.setHeader(b"Content-Type", b"text/xml; charset=utf-8")
        content = request.content
        body = content.read(rst.MAX_BODY + 1) if content is not None else b""
        try:
            asked = rst.parse_request(body)
        except rst.RstError as exc:
            log.info("msn: unreadable RST.srf request: {why}", why=str(exc))
            request.setResponseCode(400)
            return rst.fault_envelope("wsse:InvalidSecurity", "Invalid request")

        def answer(ticket: str | None) -> None:
            if ticket is None:
                # Real servers answered a refused sign-in with a fault in a 200: the
                # clients read the body whatever the status.
                _finish(request, rst.fault_envelope())
            else:
                now = datetime.datetime.fromtimestamp(self.service.now(), datetime.UTC)
                expires = now + datetime.timedelta(seconds=TICKET_LIFETIME)
                _finish(request, rst.success_envelope(asked, ticket, now, expires))

        self._sign_in(request, asked.email, asked.password, answer)
        return NOT_DONE_YET

    def _sign_in(
        self,
        request: Request,
        email: str,
        password: str,
        answer: Callable[[str | None], None],
    ) -> None:
        """Check the credentials with the core; ``answer`` gets a ticket or None."""
        try:
            address = make_address("msn", email)
        except AddressError:
            log.info("msn: passport sign-in refused: not an MSN address")
            answer(None)
            return
        proof = PlainPasswordProof(password)
        source = str(getattr(request.getClientAddress(), "host", ""))
        d = self.service.run(self.service.core.check_login(address, proof, source))
        finished = request.notifyFinish()
        gone: list[bool] = []
        finished.addErrback(lambda _: gone.append(True))

        def checked(result: Any) -> None:
            if gone:
                return
            if result.ok and result.account is not None and not result.account.disabled:
                answer(
                    self.service.signer.issue(
                        TICKET_PURPOSE, address, self.service.now(), TICKET_LIFETIME
                    )
                )
                return
            log.info(
                "msn: passport sign-in refused for {address}: {outcome}",
                address=address,
                outcome=str(result.outcome),
            )
            answer(None)

        def failed(failure: Failure) -> None:
            _log_failure(failure, "passport sign-in")
            if not gone:
                request.setResponseCode(500)
                _finish(request, b"")

        d.addCallbacks(checked, failed)

    def _refuse(self, request: Request) -> bytes:
        request.setResponseCode(401)
        request.setHeader(b"WWW-Authenticate", passport.failure_header().encode())
        return b""
