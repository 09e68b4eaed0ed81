"""TLS for the Passport HTTP endpoint using only the standard library's ``ssl``.

Twisted's own TLS needs pyOpenSSL, which this project does not depend on; a
memory-BIO wrapper around any server protocol is enough for the login endpoint.
"""

from __future__ import annotations

import contextlib
import ssl
from typing import Any, cast

from twisted.internet.interfaces import IProtocolFactory
from twisted.logger import Logger
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from twisted.python.failure import Failure

log = Logger(namespace="adapters.msn")

MAX_PENDING = 1 << 20


def server_context(cert_path: str, key_path: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    # Old clients (MSN Messenger 6/7, libpurple of its day) speak TLS 1.0/1.1 only.
    context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    context.load_cert_chain(cert_path, key_path)
    return context


def _raw(obj: object) -> Any:
    """Twisted's zope interfaces do not type-check as classes; call them untyped."""
    return obj


class TlsServerProtocol(ProtocolWrapper):
    """Decrypts into the wrapped protocol and encrypts what it writes."""

    def __init__(self, factory: TlsServerFactory, wrapped: object) -> None:
        _raw(ProtocolWrapper).__init__(self, factory, wrapped)
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = factory.context.wrap_bio(self._incoming, self._outgoing, server_side=True)
        self._ready = False
        self._pending = bytearray()
        self._closing = False

    def dataReceived(self, data: bytes) -> None:
        transport = _raw(self.transport)
        self._incoming.write(data)
        try:
            if not self._ready:
                self._tls.do_handshake()
                self._ready = True
                if self._pending:
                    pending, self._pending = bytes(self._pending), bytearray()
                    self._tls.write(pending)
            while True:
                chunk = self._tls.read(65536)
                if not chunk:
                    break
                _raw(self.wrappedProtocol).dataReceived(chunk)
        except ssl.SSLWantReadError:
            pass
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            self._flush()
            transport.loseConnection()
            return
        except ssl.SSLError as exc:
            log.info("msn: TLS failure on the login endpoint: {reason}", reason=exc.reason or "")
            self._flush()
            transport.abortConnection()
            return
        self._flush()
        if self._closing and self._ready:
            self.loseConnection()

    def write(self, data: bytes) -> None:
        if not self._ready:
            if len(self._pending) + len(data) > MAX_PENDING:
                _raw(self.transport).abortConnection()
                return
            self._pending += data
            return
        self._tls.write(data)
        self._flush()

    def writeSequence(self, data: list[bytes]) -> None:
        self.write(b"".join(data))

    def loseConnection(self) -> None:
        if not self._ready:
            self._closing = True
            return
        with contextlib.suppress(ssl.SSLError):
            self._tls.unwrap()
        self._flush()
        _raw(self.transport).loseConnection()

    def connectionLost(self, reason: Failure | None = None) -> None:
        _raw(ProtocolWrapper).connectionLost(self, reason)

    def _flush(self) -> None:
        out = self._outgoing.read()
        if out:
            _raw(self.transport).write(out)


class TlsServerFactory(WrappingFactory):
    protocol = cast(Any, TlsServerProtocol)

    def __init__(self, wrapped: IProtocolFactory, context: ssl.SSLContext) -> None:
        _raw(WrappingFactory).__init__(self, wrapped)
        self.context = context
