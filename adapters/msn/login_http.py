"""The Passport HTTP endpoint of the MSN adapter: nexus and Passport 1.4 login.

Twisted glue around the sans-IO :mod:`adapters.msn.passport`: the nexus names the
login URL, the login URL checks the credentials with the core and answers a ticket
the notification server accepts in ``USR n TWN S``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from adapters.msn import passport
from adapters.msn.protocol import MsnService
from adapters.msn.session import TICKET_PURPOSE
from schema.addresses import AddressError, make_address
from schema.records import PlainPasswordProof

log = Logger(namespace="adapters.msn")

TICKET_LIFETIME = 300.0


def _log_failure(failure: Failure, what: str) -> None:
    log.failure("msn: " + what, failure)


class PassportResource(Resource):
    """The nexus and login endpoints: any GET without credentials is the nexus."""

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
        address: str | None = None
        if sign_in is not None:
            try:
                address = make_address("msn", sign_in.email)
            except AddressError:
                address = None
        if sign_in is None or address is None:
            return self._refuse(request)
        proof = PlainPasswordProof(sign_in.password)
        d = self.service.run(self.service.core.check_login(address, proof))

        def checked(result: Any) -> None:
            if result.ok and result.account is not None and not result.account.disabled:
                ticket = self.service.signer.issue(
                    TICKET_PURPOSE, address, self.service.now(), TICKET_LIFETIME
                )
                request.setHeader(b"Authentication-Info", passport.success_header(ticket).encode())
            else:
                log.info(
                    "msn: passport sign-in refused for {address}: {outcome}",
                    address=address,
                    outcome=str(result.outcome),
                )
                self._refuse(request)
            request.finish()

        def failed(failure: Failure) -> None:
            _log_failure(failure, "passport sign-in")
            request.setResponseCode(500)
            request.finish()

        d.addCallbacks(checked, failed)
        return NOT_DONE_YET

    def _refuse(self, request: Request) -> bytes:
        request.setResponseCode(401)
        request.setHeader(b"WWW-Authenticate", passport.failure_header().encode())
        return b""
