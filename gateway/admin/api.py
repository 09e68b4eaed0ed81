"""The admin HTTP API (twisted.web): bearer-token auth, JSON in and out.

The token is compared by its SHA-256 against the configured token or the hash stored
in Redis; it is never logged. Handlers run the shared AdminService coroutines on the
asyncio loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

from twisted.logger import Logger
from twisted.web import resource, server

from gateway.admin.openapi import DOCUMENT
from gateway.admin.service import AdminError, AdminService
from gateway.login_guard import SourceBuckets
from schema.limits import shown

log = Logger()
MAX_BODY = 64 * 1024

Handler = Callable[[AdminService, str, dict[str, Any], tuple[str, ...]], Awaitable[Any]]


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _field(body: dict[str, Any], name: str, kind: type = str) -> Any:
    value = body.get(name)
    if not isinstance(value, kind):
        raise AdminError(f"field {name!r} must be a {kind.__name__}")
    return value


async def _status(s: AdminService, actor: str, b: dict[str, Any], p: tuple[str, ...]) -> Any:
    return await s.status()


async def _add(s: AdminService, actor: str, b: dict[str, Any], p: tuple[str, ...]) -> Any:
    display = b.get("display_name", "")
    if not isinstance(display, str):
        raise AdminError("field 'display_name' must be a str")
    return await s.add_account(
        actor, _field(b, "network"), _field(b, "handle"), _field(b, "password"), display
    )


async def _list(s: AdminService, actor: str, b: dict[str, Any], p: tuple[str, ...]) -> Any:
    return await s.list_accounts(p[0])


async def _delete(s: AdminService, actor: str, b: dict[str, Any], p: tuple[str, ...]) -> Any:
    await s.delete_account(actor, p[0])
    return {"deleted": p[0]}


async def _disable(s: AdminService, actor: str, b: dict[str, Any], p: tuple[str, ...]) -> Any:
    await s.set_disabled(actor, p[0], True)
    return {"disabled": p[0]}


async def _enable(s: AdminService, actor: str, b: dict[str, Any], p: tuple[str, ...]) -> Any:
    await s.set_disabled(actor, p[0], False)
    return {"enabled": p[0]}


async def _passwd(s: AdminService, actor: str, b: dict[str, Any], p: tuple[str, ...]) -> Any:
    await s.set_password(actor, p[0], _field(b, "password"))
    return {"password_set": p[0]}


async def _link(s: AdminService, actor: str, b: dict[str, Any], p: tuple[str, ...]) -> Any:
    addresses = _field(b, "addresses", list)
    if not all(isinstance(a, str) for a in addresses):
        raise AdminError("field 'addresses' must be a list of strings")
    return await s.link(actor, addresses)


async def _unlink(s: AdminService, actor: str, b: dict[str, Any], p: tuple[str, ...]) -> Any:
    await s.unlink(actor, p[0])
    return {"unlinked": p[0]}


async def _whois(s: AdminService, actor: str, b: dict[str, Any], p: tuple[str, ...]) -> Any:
    return await s.whois(p[0])


async def _sessions(s: AdminService, actor: str, b: dict[str, Any], p: tuple[str, ...]) -> Any:
    return await s.sessions()


async def _audit(s: AdminService, actor: str, b: dict[str, Any], p: tuple[str, ...]) -> Any:
    return await s.audit()


_SEG = r"([^/]+)"
ROUTES: list[tuple[bytes, re.Pattern[str], Handler]] = [
    (b"GET", re.compile(r"/v1/status"), _status),
    (b"POST", re.compile(r"/v1/accounts"), _add),
    (b"GET", re.compile(rf"/v1/accounts/{_SEG}"), _list),
    (b"DELETE", re.compile(rf"/v1/account/{_SEG}"), _delete),
    (b"POST", re.compile(rf"/v1/account/{_SEG}/disable"), _disable),
    (b"POST", re.compile(rf"/v1/account/{_SEG}/enable"), _enable),
    (b"PUT", re.compile(rf"/v1/account/{_SEG}/password"), _passwd),
    (b"POST", re.compile(r"/v1/links"), _link),
    (b"DELETE", re.compile(rf"/v1/links/{_SEG}"), _unlink),
    (b"GET", re.compile(rf"/v1/whois/{_SEG}"), _whois),
    (b"GET", re.compile(r"/v1/sessions"), _sessions),
    (b"GET", re.compile(r"/v1/audit"), _audit),
]


class AdminApi(resource.Resource):
    isLeaf = True

    def __init__(
        self, service: AdminService, token_hashes: Callable[[], Awaitable[list[str]]]
    ) -> None:
        resource.Resource.__init__(self)
        self._service = service
        self._token_hashes = token_hashes
        # Wrong tokens per client address: 10 at once, then one a second.
        self._wrong_tokens = SourceBuckets(
            rate=1.0, burst=10, max_sources=4096, clock=time.monotonic
        )

    def render(self, request: server.Request) -> bytes | int:
        path = (request.path or b"/").decode("utf-8", "replace")
        if request.method == b"GET" and path == "/openapi.json":
            return self._json(request, 200, DOCUMENT)
        future = asyncio.ensure_future(self._handle(request, path))
        future.add_done_callback(lambda f: f.exception())  # never "exception never retrieved"
        return server.NOT_DONE_YET

    async def _handle(self, request: server.Request, path: str) -> None:
        try:
            status, payload = await self._dispatch(request, path)
        except Exception:
            log.failure("admin request {path} failed", path=path)
            status, payload = 500, {"error": "internal error"}
        self._json(request, status, payload, finish=True)

    async def _dispatch(self, request: server.Request, path: str) -> tuple[int, Any]:
        header = request.getHeader(b"authorization") or b""
        scheme, _, token = header.decode("latin-1").partition(" ")
        source = str(getattr(request.getClientAddress(), "host", ""))
        if not self._wrong_tokens.allows(source):
            # Guessing the token: refused without looking at it (ADR 0013).
            request.setHeader(b"Retry-After", b"1")
            return 429, {"error": "too many wrong tokens from this address; try again later"}
        if scheme.lower() != "bearer" or not await self._token_ok(token.strip()):
            self._wrong_tokens.take(source)
            return 401, {"error": "missing or wrong bearer token"}
        matches = [(m, r) for m, r, _ in ROUTES if r.fullmatch(path)]
        if not matches:
            return 404, {"error": f"no such endpoint {shown(path)}"}
        for method, pattern, handler in ROUTES:
            match = pattern.fullmatch(path)
            if match is None or method != request.method:
                continue
            params = tuple(unquote(g) for g in match.groups())
            try:
                body = self._body(request) if method in (b"POST", b"PUT") else {}
                return 200, await handler(self._service, "api", body, params)
            except AdminError as exc:
                return exc.status, {"error": str(exc)}
        return 405, {"error": "method not allowed"}

    async def _token_ok(self, token: str) -> bool:
        if not token:
            return False
        candidate = token_hash(token)
        return any(hmac.compare_digest(candidate, h) for h in await self._token_hashes())

    @staticmethod
    def _body(request: server.Request) -> dict[str, Any]:
        content = request.content.read(MAX_BODY + 1) if request.content else b""
        if len(content) > MAX_BODY:
            raise AdminError("request body too large", status=413)
        if not content:
            return {}
        try:
            body = json.loads(content)
        except (ValueError, UnicodeDecodeError):
            raise AdminError("request body is not JSON") from None
        if not isinstance(body, dict):
            raise AdminError("request body must be a JSON object")
        return body

    @staticmethod
    def _json(request: server.Request, status: int, payload: Any, finish: bool = False) -> bytes:
        data = json.dumps(payload, indent=1, sort_keys=True).encode("utf-8") + b"\n"
        request.setResponseCode(status)
        request.setHeader(b"content-type", b"application/json")
        if finish and not request._disconnected:
            request.write(data)
            request.finish()
        return data
