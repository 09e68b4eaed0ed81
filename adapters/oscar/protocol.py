"""Twisted glue: sockets in and out, the clock, and calls into the core.

Thin by design. Each TCP connection gets an :class:`OscarSession`; bytes go in with
``receive_data``, bytes come out with ``data_to_send``. The session's requests are
turned into core coroutine calls (through an injectable runner, ``as_deferred`` in
production) whose results are handed back with ``answer``. Timers are one
``callLater`` per connection, re-aimed at ``session.get_timer()`` after every step.

Feedbag items the core does not model ("extras": permit/deny settings, presence
preferences, icons...) are kept in the core's adapter data (``CoreServices.adapter_data``,
in Redis), so a restart or another node hands the client back what it stored. A
connection's saves run one after another, so the last edit is the one that stays.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import replace
from typing import Any, TypeVar, cast
from typing import Protocol as TypingProtocol

from twisted.internet.defer import Deferred, succeed
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from adapters import timers
from adapters.aio import as_deferred
from adapters.contract import CoreServices, Delivery, OpenedSession, ServiceUnavailable
from adapters.oscar import session as M
from adapters.oscar.auth import CookieMint
from adapters.oscar.snac import FeedbagItem
from adapters.oscar.tlv import Tlv
from adapters.oscar.translate import icbm_text_size
from adapters.output_bound import DEFAULT_OUTPUT, OutputBound, OutputLimits
from schema.addresses import AddressError, make_address, split_address
from schema.events import CanonicalEvent, FormatSpan, PresenceState, Typing
from schema.records import AccountInfo, ContactEntry, LoginOutcome, LoginResult

T = TypeVar("T")


class Clock(TypingProtocol):
    """The part of IReactorTime we use (zope interfaces do not type-check)."""

    def seconds(self) -> float: ...

    def callLater(
        self, delay: float, callable: Callable[..., object], *args: object, **kw: object
    ) -> object: ...


class _Transport(TypingProtocol):
    def write(self, data: bytes) -> None: ...

    def loseConnection(self) -> None: ...

    def getHost(self) -> Any: ...

    def getPeer(self) -> Any: ...


Runner = Callable[[Coroutine[Any, Any, Any]], "Deferred[Any]"]
MAX_BODY_CHARS = 1024
EXTRAS_FIELD = "feedbag.extras"  # the owner's adapter data field: JSON list of items

log = Logger(namespace="gateway.oscar")


def extras_to_data(items: Sequence[FeedbagItem]) -> str:
    """Feedbag items as JSON: ``[name, group id, item id, class, [[type, base64]...]]``."""
    return json.dumps(
        [
            [
                item.name,
                item.group_id,
                item.item_id,
                item.class_id,
                [[t.type, base64.b64encode(t.value).decode("ascii")] for t in item.tlvs],
            ]
            for item in items
        ],
        separators=(",", ":"),
    )


def _u16(value: object) -> int:
    if type(value) is not int or not 0 <= value <= 0xFFFF:
        raise ValueError("not a u16")
    return value


def _extra_item(raw: object) -> FeedbagItem:
    if not isinstance(raw, list) or len(raw) != 5:
        raise ValueError("not an item")
    name, group_id, item_id, class_id, tlvs = raw
    if not isinstance(name, str) or not isinstance(tlvs, list):
        raise ValueError("not an item")
    values: list[Tlv] = []
    for pair in tlvs:
        if not isinstance(pair, list) or len(pair) != 2 or not isinstance(pair[1], str):
            raise ValueError("not a TLV")
        values.append(Tlv(_u16(pair[0]), base64.b64decode(pair[1], validate=True)))
    return FeedbagItem(name, _u16(group_id), _u16(item_id), _u16(class_id), tuple(values))


def extras_from_data(data: Mapping[str, str]) -> tuple[FeedbagItem, ...]:
    """The stored extras; unreadable ones are left out (and logged), never an error
    for the client."""
    raw = data.get(EXTRAS_FIELD)
    if raw is None:
        return ()
    try:
        listed = json.loads(raw)
    except ValueError:
        listed = None
    if not isinstance(listed, list):
        log.warn("oscar: ignoring unreadable stored feedbag extras")
        return ()
    items: list[FeedbagItem] = []
    for entry in listed:
        try:
            items.append(_extra_item(entry))
        except (ValueError, binascii.Error):
            log.warn("oscar: ignoring an unreadable stored feedbag item")
    return tuple(items)


class OscarFactory(Factory):
    """Shared by every connection on one listening port."""

    def __init__(
        self,
        core: CoreServices,
        clock: Clock,
        cookies: CookieMint,
        config: M.SessionConfig,
        bos_host: str | None = None,
        bos_port: int | None = None,
        run: Runner = as_deferred,
        output: OutputLimits = DEFAULT_OUTPUT,
    ) -> None:
        self.core = core
        self.clock = clock
        self.cookies = cookies
        self.config = config
        self.bos_host = bos_host
        self.bos_port = bos_port
        self.run = run
        self.output = output
        self.connections: set[OscarServerProtocol] = set()
        self.online: dict[str, OscarServerProtocol] = {}

    def buildProtocol(self, addr: object) -> OscarServerProtocol:
        return OscarServerProtocol(self)

    def close_all(self, reason: str) -> None:
        for conn in list(self.connections):
            conn.close(reason)


class OscarLink:
    """What the core sees of one logged-in OSCAR client (ClientLink, ShowsTyping,
    LimitsBody, MeasuresBody, FlowControlled)."""

    def __init__(self, conn: OscarServerProtocol) -> None:
        self._conn = conn

    def deliver(self, delivery: Delivery) -> bool:
        return self._conn.deliver(delivery.event, delivery.peer, delivery.offline)

    @property
    def writable(self) -> bool:
        out = self._conn.output
        return out is None or not (out.paused or out.aborted)

    def when_writable(self, callback: Callable[[], None]) -> None:
        out = self._conn.output
        if out is None:
            callback()
        else:
            out.when_resumed(callback)

    def show_typing(self, peer: str, event: Typing) -> bool:
        return self._conn.deliver(event, peer)

    @property
    def max_body_chars(self) -> int:
        return MAX_BODY_CHARS

    @property
    def max_body_size(self) -> int:
        return M.MAX_ICBM_TEXT

    def body_size(self, body: str, spans: tuple[FormatSpan, ...] = ()) -> int:
        session = self._conn.session
        return icbm_text_size(body, spans, session is not None and session.is_icq)


class OscarServerProtocol(Protocol):
    def __init__(self, factory: OscarFactory) -> None:
        self.factory = factory
        self.session: M.OscarSession | None = None
        self.link = OscarLink(self)
        self._timer: timers.Timer | None = None
        self._peer = "?"
        self._source = ""  # the client's host, for the core's per-source login brake
        self._gone = False
        self._saves: Deferred[None] = succeed(None)  # extras saves, one at a time

    @property
    def _transport(self) -> _Transport:
        return cast(_Transport, self.transport)

    # ------------------------------------------------------------ Twisted events

    def connectionMade(self) -> None:
        f = self.factory
        host = self._transport.getHost()
        peer = self._transport.getPeer()
        self._peer = f"{getattr(peer, 'host', '?')}:{getattr(peer, 'port', '?')}"
        self._source = str(getattr(peer, "host", ""))
        bos = f"{f.bos_host or getattr(host, 'host', '127.0.0.1')}:{f.bos_port or host.port}"
        config = M.SessionConfig(
            bos_address=bos,
            login_timeout=f.config.login_timeout,
            idle_timeout=f.config.idle_timeout,
            keepalive_interval=f.config.keepalive_interval,
            auth_grace=f.config.auth_grace,
            offline_hold=f.config.offline_hold,
            max_frame=f.config.max_frame,
            motd=f.config.motd,
        )
        self.session = M.OscarSession(config, f.cookies, f.clock.seconds())
        self._out = OutputBound(self.transport, f.clock, self._overflowed, f.output)
        f.connections.add(self)
        self._after([])

    def dataReceived(self, data: bytes) -> None:
        if self.session is None or self._gone:
            return
        self._after(self.session.receive_data(data, self.factory.clock.seconds()))

    def connectionLost(self, reason: Failure = Failure(ConnectionError())) -> None:  # noqa: B008
        self._gone = True
        self._cancel_timer()
        self.factory.connections.discard(self)
        if self.session is None:
            return
        address = self.session.address
        if address and self.factory.online.get(address) is self:
            del self.factory.online[address]
        self._handle(self.session.connection_lost())

    # ------------------------------------------------------------ from the core

    @property
    def output(self) -> OutputBound | None:
        return getattr(self, "_out", None)

    def deliver(self, event: CanonicalEvent, peer: str, offline: bool = False) -> bool:
        if self.session is None or self._gone or self._out.aborted:
            return False
        ok = self.session.deliver(event, peer, self.factory.clock.seconds(), offline)
        self._after([])
        # Not handed over if the client stopped reading: the core keeps it (offline).
        return ok and not self._out.aborted

    def close(self, reason: str, code: int = M.SIGNOFF_PROTOCOL_ERROR) -> None:
        if self.session is not None and not self._gone:
            self._after(self.session.close(reason, code))

    # ------------------------------------------------------------ plumbing

    def _after(self, requests: list[M.CoreRequest]) -> None:
        """Write what the session produced, then act on its requests."""
        session = self.session
        assert session is not None
        out = session.data_to_send()
        if out and not self._gone:
            self._out.write(out)
        if session.closed:
            self._cancel_timer()
            if session.error is not None:
                log.info("oscar {peer}: closing: {reason}", peer=self._peer, reason=session.error)
            if not self._gone:
                self._transport.loseConnection()
        else:
            self._aim_timer()
        self._handle(requests)

    def _overflowed(self, why: str) -> None:
        log.info("oscar {peer}: disconnected: {why}", peer=self._peer, why=why)

    def _aim_timer(self) -> None:
        assert self.session is not None
        self._timer = timers.aim(
            self._timer, self.session.get_timer(), self.factory.clock, self._on_timer
        )

    def _cancel_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _on_timer(self) -> None:
        self._timer = None
        if self.session is not None and not self._gone:
            self._after(self.session.handle_timer(self.factory.clock.seconds()))

    def _handle(self, requests: Sequence[M.CoreRequest]) -> None:
        for request in requests:
            self._dispatch(request)

    def _dispatch(self, request: M.CoreRequest) -> None:
        core = self.factory.core
        token = getattr(request, "token", None)
        if isinstance(request, M.CheckLogin):
            self._ask(
                token,
                core.check_login(request.address, request.proof, self._source),
                _login_failed,
            )
        elif isinstance(request, M.OpenSession):
            self._ask(token, self._open(request), None)
        elif isinstance(request, M.CloseSession):
            self._fire(core.close_session(request.session_id))
        elif isinstance(request, M.SetPresence):
            self._fire(core.set_presence(request.session_id, request.presence, request.status_text))
        elif isinstance(request, M.SubmitEvent):
            if request.token is None:
                self._fire(core.submit(request.event))
            else:
                self._ask(request.token, self._submit(request.event), M.Submitted(False))
        elif isinstance(request, M.LoadContacts):
            self._ask(token, self._contacts(request.owner), M.ContactsLoaded(()))
        elif isinstance(request, M.StoreContact):
            self._fire(core.put_contact(request.owner, request.entry))
        elif isinstance(request, M.DropContact):
            self._fire(core.remove_contact(request.owner, request.contact))
        elif isinstance(request, M.SaveExtras):
            self._save_in_order(request)
        elif isinstance(request, M.QueryPresence):
            self._ask(token, self._presence(request), M.PresenceAnswer(()))
        elif isinstance(request, M.LookupAccounts):
            self._ask(token, self._lookup(request), M.AccountsFound(()))

    def _fire(self, coro: Coroutine[Any, Any, object]) -> None:
        d = self.factory.run(coro)
        d.addErrback(self._core_failed)

    def _save_in_order(self, request: M.SaveExtras) -> None:
        """Store the extras after the previous save of this connection has finished.
        A refused save (over the adapter data bounds, or the account is gone) leaves
        the client's list ahead of the stored one, which the feedbag status it already
        got cannot take back: sign it off, so it reloads what is really stored."""

        def saved(refusal: str | None) -> None:
            if refusal is not None:
                log.info(
                    "oscar {peer}: feedbag extras refused: {why}", peer=self._peer, why=refusal
                )
                self.close("the server-stored list could not be saved")

        def start(_: object) -> Deferred[None]:
            d: Deferred[str | None] = self.factory.run(
                self._save_extras(request.owner, request.items)
            )
            return d.addCallbacks(saved, self._core_failed)

        self._saves = self._saves.addCallback(start)

    async def _save_extras(self, owner: str, items: tuple[FeedbagItem, ...]) -> str | None:
        value = extras_to_data(items) if items else None
        try:
            await self.factory.core.set_adapter_data(owner, {EXTRAS_FIELD: value})
        except ValueError as exc:
            return str(exc)
        return None

    def _core_failed(self, failure: Failure) -> None:
        if failure.check(ServiceUnavailable):
            return  # Redis is away: the core logs the outage once, not each call
        log.failure("oscar {peer}: core call failed", failure, peer=self._peer)

    def _ask(
        self,
        token: int | None,
        coro: Coroutine[Any, Any, M.Answer],
        fallback: M.Answer | None,
    ) -> None:
        assert token is not None
        d = self.factory.run(coro)

        def answered(result: M.Answer) -> None:
            if self.session is not None and not self._gone:
                self._after(self.session.answer(token, result, self.factory.clock.seconds()))
            elif isinstance(result, M.SessionOpened):
                # The client left while its session opened: the session machine never
                # learnt the id, so close it here or its row stays in the directory.
                self._fire(self.factory.core.close_session(result.session_id))

        def failed(failure: Failure) -> None:
            self._core_failed(failure)
            if fallback is _login_failed and failure.check(ServiceUnavailable):
                answered(_login_later)  # "try later", as the login brakes answer
            elif fallback is not None:
                answered(fallback)
            else:
                self.close("the service is unavailable")

        d.addCallbacks(answered, failed)

    # ------------------------------------------------------------ core conversations

    async def _submit(self, event: CanonicalEvent) -> M.Answer:
        await self.factory.core.submit(event)
        return M.Submitted()

    async def _open(self, request: M.OpenSession) -> M.SessionOpened:
        old = self.factory.online.get(request.address)
        if old is not None and old is not self:
            old.close("signed on from another location", M.SIGNOFF_OTHER_LOGIN)
        self.factory.online[request.address] = self
        opened: OpenedSession = await self.factory.core.open_session(
            request.address, self.link, request.presence, request.status_text
        )
        return M.SessionOpened(opened.session_id, tuple((d.event, d.peer) for d in opened.offline))

    async def _contacts(self, owner: str) -> M.ContactsLoaded:
        core = self.factory.core
        entries: list[ContactEntry] = []
        for entry in await core.contacts(owner):
            network, _ = split_address(entry.contact)
            if network != "oscar":
                # The core kept the real address; the client must see its alias here.
                native = await core.present_as(entry.contact, "oscar")
                try:
                    entry = _replace_contact(entry, make_address("oscar", native))
                except AddressError:
                    continue
            entries.append(entry)
        extras = extras_from_data(await core.adapter_data(owner))
        return M.ContactsLoaded(tuple(entries), extras)

    async def _presence(self, request: M.QueryPresence) -> M.PresenceAnswer:
        core = self.factory.core
        states: list[tuple[str, PresenceState]] = []
        for native in request.natives:
            state = await core.presence_of(f"oscar:{native}", request.owner)
            states.append((native, state))
        return M.PresenceAnswer(tuple(states))

    async def _lookup(self, request: M.LookupAccounts) -> M.AccountsFound:
        core = self.factory.core
        infos: list[AccountInfo] = []
        if request.uin is not None:
            info = await core.account(f"oscar:{request.uin}")
            if info is not None and not info.disabled:
                infos.append(info)
        elif request.text:
            infos.extend(await core.find_accounts("oscar", request.text, 20))
        matches = []
        for info in infos:
            state = await core.presence_of(info.address, request.owner)
            matches.append(M.account_match(info, state is not PresenceState.OFFLINE))
        return M.AccountsFound(tuple(matches))


_login_failed = LoginResult(LoginOutcome.UNSUPPORTED)
_login_later = LoginResult(LoginOutcome.THROTTLED)


def _replace_contact(entry: ContactEntry, contact: str) -> ContactEntry:
    return replace(entry, contact=contact)
