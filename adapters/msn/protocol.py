"""Twisted glue for MSN: notification server and switchboard.

The Passport HTTP endpoint (nexus and login) lives in :mod:`adapters.msn.login_http`.

Thin by design: bytes go through :mod:`codec`, decisions through :mod:`session`,
:mod:`lists` and :mod:`switchboard`, content through :mod:`translate`; this module
only moves bytes, runs core coroutines (through an injectable runner, so unit tests
need no event loop) and arms one timer per connection on an injected clock.

Delivery choice (see docs/protocols/msn.md): a message for a user who has no
switchboard with the sender rings the user (``RNG``) and waits in the invitation
until the answer (``ANS``); ``deliver`` returns True once it waits there. What waits
is bounded in bytes, never by a count: past ``RING_WAIT_SOFT`` bytes the link says it
is not writable (the core pauses the offline replay), past ``RING_WAIT_HARD`` it
returns False (the core keeps the message offline). If the client never answers,
what waited goes back to the core's offline queue, once (``return_undelivered``),
and that is logged once (docs/adr/0015-delivery-contract.md).

Per-user settings the core does not model (GTC, groups, renamed groups' old ids) live
in the core's adapter data (``CoreServices.adapter_data``, in Redis), read afresh for
every SYN and list edit, so they survive restarts and every node sees the same. A
connection's list reads and edits run one after another in arrival order, each seeing
what the one before wrote.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar, cast
from typing import Protocol as Interface

from twisted.internet.defer import Deferred, succeed
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure

from adapters import timers
from adapters.admission import CommandBudget, Rate
from adapters.contract import CoreServices, Delivery, ServiceUnavailable
from adapters.msn import lists
from adapters.msn.codec import (
    SB_MAX_PAYLOAD,
    Command,
    CommandCodec,
    ErrorReply,
    Frame,
    MsnProtocolError,
    Role,
)
from adapters.msn.session import (
    AnswerRing,
    ChangePresence,
    CheckPassword,
    Close,
    EditLists,
    GoOnline,
    Invite,
    LoadAccount,
    NotificationSession,
    NsConfig,
    NsState,
    OpenRoom,
    Post,
    PropertyChanged,
    QueryList,
    SbAction,
    Send,
    SettingChanged,
    SwitchboardSession,
    SyncLists,
)
from adapters.msn.switchboard import MAX_PARTICIPANTS, Expired, Room, RoomError, Rooms
from adapters.msn.tokens import TokenSigner
from adapters.msn.translate import (
    TextContent,
    TypingContent,
    contact_name,
    content_from_payload,
    decode_name,
    encode_name,
    presence_to_msn,
    text_payload_size,
    text_payloads,
    typing_payload,
)
from adapters.output_bound import DEFAULT_OUTPUT, OutputBound, OutputLimits
from schema.addresses import AddressError, make_address
from schema.events import (
    Authorization,
    ContactRequest,
    DeliveryFailure,
    FailureReason,
    FormatSpan,
    Message,
    Presence,
    PresenceState,
    Typing,
)
from schema.records import PresencePolicy

T = TypeVar("T")
Runner = Callable[[Coroutine[Any, Any, T]], "Deferred[T]"]


class DelayedCall(Interface):
    def active(self) -> bool: ...

    def cancel(self) -> None: ...

    def getTime(self) -> float: ...


class Clock(Interface):
    """The part of IReactorTime the glue uses (typed for mypy without zope)."""

    def seconds(self) -> float: ...

    def callLater(
        self, delay: float, callable: Callable[..., object], *args: object, **kw: object
    ) -> DelayedCall: ...


class Transport(Interface):
    def write(self, data: bytes) -> None: ...

    def loseConnection(self) -> None: ...


def _transport(protocol: Protocol) -> Transport | None:
    return cast(Transport | None, protocol.transport)


log = Logger(namespace="adapters.msn")

# Command kinds counted apart (adapters/admission.py, docs/adr/0017-rates-and-admission.md).
COMMAND = "command"  # anything a client sends, on either connection
CHANGE = "change"  # presence, name and personal-message changes (NS)
MESSAGE = "message"  # MSG on a switchboard
CHANGE_VERBS = frozenset({"CHG", "REA", "PRP", "UUX"})
ERR_CHANGING_TOO_RAPIDLY = 800  # libpurple msn/error.c: "Friendly name changes too rapidly"


COMMAND_RATE = Rate(10.0, 200.0)
CHANGE_RATE = Rate(1.0, 20.0)
MESSAGE_RATE = Rate(50.0, 500.0)


@dataclass(frozen=True, slots=True)
class MsnRates:
    """Per-connection command rates: what msn-pecan and msnp.py send in normal use fits
    with room to spare (docs/adr/0017-rates-and-admission.md has the figures)."""

    command: Rate = COMMAND_RATE
    change: Rate = CHANGE_RATE
    message: Rate = MESSAGE_RATE

    def notification(self) -> dict[str, Rate]:
        return {COMMAND: self.command, CHANGE: self.change}

    def switchboard(self) -> dict[str, Rate]:
        return {COMMAND: self.command, MESSAGE: self.message}


DEFAULT_RATES = MsnRates()

MAX_BODY_CHARS = 4096
RING_WAIT_SOFT = 128 * 1024
"""Bytes waiting for a user's ring answers past which its link is not writable."""
RING_WAIT_HARD = 512 * 1024
"""Bytes waiting for a user's ring answers past which its link takes no more messages
(they stay in the core's offline queue); under the switchboard's output bound, so the
answer's flush of what waited is never cut off."""
RING_WAIT_OVERHEAD = 160
"""Bytes counted per waiting message besides its text (the MSG line and headers)."""
WRITABLE_POLL = 0.05
"""Seconds between two checks of a link that is not writable (flow control)."""
ERR_TOO_MANY_GROUPS = 223  # "cannot create more groups" (ADG)
ERR_ROOM_FULL = 713  # the switchboard is full (CAL)

# The user's adapter data fields (opaque to the core).
GTC_FIELD = "gtc"
GROUPS_FIELD = "groups"  # JSON list of group names
GROUP_ALIASES_FIELD = "group_aliases"  # JSON object: a renamed group's old id -> its name
PROPERTIES_FIELD = "prp"  # JSON object: PRP property -> value (the user's own)
CONTACT_PROPERTIES_FIELD = "sbp"  # JSON object: contact id -> {SBP property -> value}
MAX_GROUP_ALIASES = 64
MAX_CONTACT_PROPERTIES = 256  # contacts with stored SBP properties (newest kept)


def _json_field(data: Mapping[str, str], name: str) -> object:
    raw = data.get(name)
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        log.warn("msn: ignoring unreadable stored {name}", name=name)
        return None


def settings_from_data(data: Mapping[str, str]) -> lists.OwnerSettings:
    """A user's settings from their adapter data. Whatever is missing or unreadable
    keeps its default: stored data never becomes an error for the client."""
    settings = lists.OwnerSettings()
    gtc = data.get(GTC_FIELD)
    if gtc in ("A", "N"):
        settings.gtc = gtc
    groups = _json_field(data, GROUPS_FIELD)
    if isinstance(groups, list):
        for name in groups:
            if (
                isinstance(name, str)
                and 0 < len(name) <= lists.MAX_GROUP_NAME
                and name != lists.DEFAULT_GROUP
                and name not in settings.extra_groups
            ):
                settings.extra_groups.append(name)
    aliases = _json_field(data, GROUP_ALIASES_FIELD)
    if isinstance(aliases, dict):
        settings.group_aliases = {
            k: v for k, v in aliases.items() if isinstance(k, str) and isinstance(v, str)
        }
    settings.properties = _string_map(_json_field(data, PROPERTIES_FIELD))
    contacts = _json_field(data, CONTACT_PROPERTIES_FIELD)
    if isinstance(contacts, dict):
        settings.contact_properties = {
            k: _string_map(v) for k, v in contacts.items() if isinstance(k, str)
        }
    return settings


def _string_map(value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, str)}


def property_changes(
    settings: lists.OwnerSettings, contact: str | None, name: str, value: str | None
) -> dict[str, str | None]:
    """The adapter data fields a PRP (``contact`` None) or SBP changes. SBP keeps the
    newest ``MAX_CONTACT_PROPERTIES`` contacts, so a client cannot grow it without end."""
    if contact is None:
        props = dict(settings.properties)
        if value is None:
            props.pop(name, None)
        else:
            props[name] = value
        encoded = json.dumps(props, separators=(",", ":")) if props else None
        return {PROPERTIES_FIELD: encoded}
    table = dict(settings.contact_properties)
    entry = dict(table.pop(contact, {}))  # re-inserted last: the newest
    entry[name] = value or ""
    table[contact] = entry
    kept = dict(list(table.items())[-MAX_CONTACT_PROPERTIES:])
    return {CONTACT_PROPERTIES_FIELD: json.dumps(kept, separators=(",", ":"))}


def group_changes(
    settings: lists.OwnerSettings, outcome: lists.EditOutcome
) -> dict[str, str | None]:
    """The adapter data fields an edit changes (empty when it touches no group).
    Old ids are kept only for groups that still exist, the newest
    ``MAX_GROUP_ALIASES`` of them, so renames cannot grow the data without end."""
    if outcome.groups is None and not outcome.group_aliases:
        return {}
    groups = settings.extra_groups
    if outcome.groups is not None:
        groups = [g for g in outcome.groups if g != lists.DEFAULT_GROUP]
    aliases = dict(settings.group_aliases)
    for ident, name in outcome.group_aliases:
        aliases.pop(ident, None)  # a re-used id moves to the end: it is the newest
        aliases[ident] = name
    kept = [(k, v) for k, v in aliases.items() if v in groups][-MAX_GROUP_ALIASES:]
    changes: dict[str, str | None] = {
        GROUPS_FIELD: json.dumps(groups, separators=(",", ":")) if groups else None,
        GROUP_ALIASES_FIELD: json.dumps(dict(kept), separators=(",", ":")) if kept else None,
    }
    return changes


@dataclass(frozen=True, slots=True)
class Sent:
    """What a client's switchboard MSG became, kept to NAK it if it fails later."""

    connection: SwitchboardProtocol
    trid: int
    ack: str


@dataclass
class MsnService:
    """State shared by every MSN connection of this process."""

    core: CoreServices
    clock: Clock
    run: Runner[Any]
    signer: TokenSigner
    ns_config: NsConfig
    rooms: Rooms = field(default_factory=Rooms)
    output: OutputLimits = DEFAULT_OUTPUT
    rates: MsnRates = DEFAULT_RATES
    links: dict[str, list[NotificationProtocol]] = field(default_factory=dict)
    sent: dict[str, Sent] = field(default_factory=dict)
    _expiry: DelayedCall | None = None

    def now(self) -> float:
        return self.clock.seconds()

    def link_for(self, handle: str) -> NotificationProtocol | None:
        live = [p for p in self.links.get(handle, []) if p.session.state is NsState.ONLINE]
        return live[-1] if live else None

    def arm_expiry(self) -> None:
        deadline = self.rooms.next_deadline()
        if self._expiry is not None and self._expiry.active():
            self._expiry.cancel()
        self._expiry = None
        if deadline is not None:
            delay = max(0.0, deadline - self.now())
            self._expiry = self.clock.callLater(delay, self._expire)

    def _expire(self) -> None:
        self._expiry = None
        self._return_waiting(self.rooms.expire(self.now()))
        self.arm_expiry()

    def withdraw(self, handle: str) -> None:
        """``handle`` has no notification connection left: what waited for its ring
        answers goes back to its offline queue now, not at the invitations' expiry (a
        new login would not be rung for them)."""
        self._return_waiting(self.rooms.withdraw(handle))
        self.arm_expiry()

    def _return_waiting(self, expired_list: list[Expired]) -> None:
        for expired in expired_list:
            messages = [d for d in expired.queue if isinstance(d, Delivery)]
            log.info(
                "msn: {handle} did not answer switchboard {room}; {n} message(s) back offline",
                handle=expired.handle,
                room=expired.room_id,
                n=len(messages),
            )
            if messages:
                link = self.link_for(expired.handle)
                session_id = (link.session_id if link is not None else None) or ""
                self.run(self.core.return_undelivered(session_id, messages)).addErrback(
                    _log_failure, "returning unanswered messages to the offline queue"
                )

    def return_failure(
        self, delivery: Delivery, handle: str, reason: FailureReason, detail: str
    ) -> None:
        event = delivery.event
        if not isinstance(event, Message):
            return
        failure = DeliveryFailure(
            sender=f"msn:{handle}",
            recipient=event.sender,
            message_id=event.id,
            reason=reason,
            detail=detail,
            trace_id=event.trace_id,
        )
        self.run(self.core.submit(failure)).addErrback(_log_failure, "returning a failed delivery")

    def remember_sent(self, event_id: str, sent: Sent) -> None:
        self.sent[event_id] = sent
        while len(self.sent) > 4096:
            del self.sent[next(iter(self.sent))]


def _log_failure(failure: Failure, what: str) -> None:
    if failure.check(ServiceUnavailable):
        return  # Redis is away: the core logs the outage once, not each call
    log.failure("msn: " + what, failure)


def _ignore(_: object) -> None:
    return None


# ---------------------------------------------------------------- notification server


class _Timed(Interface):
    """What both connection kinds' sessions offer the glue (adapters/msn/session.py)."""

    def receive(self, frame: Frame, now: float) -> Sequence[Any]: ...

    def get_timer(self) -> float | None: ...

    def handle_timer(self, now: float) -> Sequence[Any]: ...


class _Connection(Protocol):
    """What notification and switchboard connections share: frames go through the
    session, whose actions ``_perform`` carries out; one idle timer; writes stop once
    the connection is gone; a protocol error is answered and closes that connection."""

    kind = "msn"
    session: _Timed

    def __init__(self, service: MsnService, codec: CommandCodec, rates: dict[str, Rate]) -> None:
        self.service = service
        self.codec = codec
        self._timer: timers.Timer | None = None
        self._gone = False
        self._out: OutputBound | None = None
        self._budget = CommandBudget(rates, service.now())
        self._rates = rates

    def _kind_of(self, frame: Frame) -> str:
        return COMMAND

    def _over_rate(self, frame: Frame, kind: str) -> None:
        """The client sent ``frame`` past its rate: say so in MSN terms and close."""
        raise NotImplementedError

    def _perform(self, actions: Sequence[Any]) -> None:
        raise NotImplementedError

    def connectionMade(self) -> None:
        self._out = OutputBound(
            self.transport, self.service.clock, self._overflowed, self.service.output
        )
        self._arm()

    def _source(self) -> str:
        """The client's host, for the core's per-source login brake."""
        transport = cast(Any, self.transport)
        return str(getattr(transport.getPeer(), "host", "")) if transport is not None else ""

    def _overflowed(self, why: str) -> None:
        log.info("msn: {kind} connection disconnected: {why}", kind=self.kind, why=why)

    @property
    def stalled(self) -> bool:
        """Aborted because its client stopped reading: takes nothing more."""
        return self._out is not None and self._out.aborted

    def dataReceived(self, data: bytes) -> None:
        if self._gone:
            return
        try:
            frames = self.codec.receive_data(data)
        except MsnProtocolError as exc:
            self._protocol_error(exc)
            return
        for frame in frames:
            if self._gone:
                return
            now = self.service.now()
            kind = self._kind_of(frame)
            if not self._budget.take(kind, now):
                rate = self._rates[kind]
                log.info(
                    "msn: closing {conn} connection from {source}: more than {burst:g} "
                    "{kind} commands at once or {rate:g}/s",
                    conn=self.kind,
                    source=self._source(),
                    burst=rate.burst,
                    kind=kind,
                    rate=rate.per_second,
                )
                self._over_rate(frame, kind)
                self._close()
                self._gone = True  # nothing more is read or written
                return
            self._perform(self.session.receive(frame, now))
        self._arm()

    def _connection_gone(self) -> None:
        self._gone = True
        if self._timer is not None and self._timer.active():
            self._timer.cancel()

    def _protocol_error(self, exc: MsnProtocolError) -> None:
        log.info("msn: closing {kind} connection: {reason}", kind=self.kind, reason=str(exc))
        self.write(ErrorReply(exc.code, None))
        self._close()

    def write(self, frame: Frame) -> None:
        transport = _transport(self)
        if self._gone or transport is None:
            return
        if self._out is not None:
            self._out.write(self.codec.send(frame))
        else:
            transport.write(self.codec.send(frame))

    def _close(self) -> None:
        transport = _transport(self)
        if transport is not None:
            transport.loseConnection()

    def _arm(self) -> None:
        self._timer = timers.aim(
            self._timer,
            None if self._gone else self.session.get_timer(),
            self.service.clock,
            self._fire,
        )

    def _fire(self) -> None:
        self._timer = None
        self._perform(self.session.handle_timer(self.service.now()))
        self._arm()


class NotificationProtocol(_Connection):
    """One client's notification connection; also its ClientLink once online."""

    kind = "notification"

    def __init__(self, service: MsnService) -> None:
        super().__init__(service, CommandCodec(Role.SERVER), service.rates.notification())
        self.session: NotificationSession = NotificationSession(service.ns_config, service.now())
        self.session_id: str | None = None
        self._early: set[str] | None = set()  # ids delivered while the session opened
        self._lists_tail: Deferred[None] = succeed(None)  # list reads/edits, in order

    # -- transport

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._connection_gone()
        self.session.closed()
        handle = self.session.handle
        if handle and self in self.service.links.get(handle, []):
            self.service.links[handle].remove(self)
            if not self.service.links[handle]:
                del self.service.links[handle]
                self.service.withdraw(handle)
        if self.session_id is not None:
            session_id, self.session_id = self.session_id, None
            self.service.run(self.service.core.close_session(session_id)).addErrback(
                _log_failure, "closing a session"
            )

    def _kind_of(self, frame: Frame) -> str:
        if isinstance(frame, Command) and frame.verb in CHANGE_VERBS:
            return CHANGE
        return COMMAND

    def _over_rate(self, frame: Frame, kind: str) -> None:
        # Too many changes: the error real servers gave for changing too rapidly. Any
        # flood: the server's own sign-off, OUT (no reason fits: OTH/SSD/MIG/TOU/RCT
        # mean other things, and SSD would make the client reconnect at once).
        if kind == CHANGE and isinstance(frame, Command):
            self.write(ErrorReply(ERR_CHANGING_TOO_RAPIDLY, frame.trid))
        self.write(Command("OUT", None, ()))

    def say_goodbye(self) -> None:
        """The gateway is shutting down: ``OUT SSD`` and close."""
        self.write(Command("OUT", None, ("SSD",)))
        self._close()

    def _close(self) -> None:
        self.session.closed()
        super()._close()

    # -- actions

    def _perform(self, actions: Sequence[object]) -> None:
        for action in actions:
            if isinstance(action, Send):
                self.write(action.frame)
            elif isinstance(action, Close):
                log.info("msn: closing notification connection: {reason}", reason=action.reason)
                self._close()
            elif isinstance(action, CheckPassword):
                self._call(
                    self.service.core.check_login(action.address, action.proof, self._source()),
                    self._checked,
                )
            elif isinstance(action, LoadAccount):
                self._call(self.service.core.account(action.address), self._account_loaded)
            elif isinstance(action, GoOnline):
                self._go_online(action)
            elif isinstance(action, ChangePresence):
                if self.session_id is not None:
                    self._call(
                        self.service.core.set_presence(
                            self.session_id, action.presence, action.status_text
                        ),
                        lambda _: None,
                    )
            elif isinstance(action, SyncLists):
                self._call_in_order(self._sync_snapshot, partial(self._synced, action.trid))
            elif isinstance(action, EditLists):
                self._call_in_order(partial(self._edit, action), _ignore)
            elif isinstance(action, PropertyChanged):
                self._call_in_order(partial(self._save_property, action), _ignore)
            elif isinstance(action, QueryList):
                self._call_in_order(self._sync_snapshot, partial(self._queried, action))
            elif isinstance(action, SettingChanged):
                if action.name == "GTC":
                    self._call_in_order(partial(self._save_gtc, action.value), _ignore)
                else:
                    # BLP is the account's presence policy, kept by the core for every
                    # network: AL = everyone not blocked, BL = only the allow list.
                    policy = (
                        PresencePolicy.EVERYONE if action.value == "AL" else PresencePolicy.ALLOWED
                    )
                    self._call_in_order(
                        partial(
                            self.service.core.set_presence_policy, self.session.address, policy
                        ),
                        _ignore,
                    )

    def _call(self, coro: Coroutine[Any, Any, T], then: Callable[[T], None]) -> Deferred[None]:
        """Run a core call; ``then`` gets its result unless the connection is gone. A
        failure answers 500 and closes. Fires (None) once all of that is done."""
        d: Deferred[T] = self.service.run(coro)

        def ok(result: T) -> None:
            if not self._gone:
                then(result)
                self._arm()

        def failed(failure: Failure) -> None:
            _log_failure(failure, "core call failed")
            if not self._gone:
                self.write(ErrorReply(lists.ERR_INTERNAL, None))
                self._close()

        return d.addCallback(ok).addErrback(failed)

    def _call_in_order(
        self, start: Callable[[], Coroutine[Any, Any, T]], then: Callable[[T], None]
    ) -> None:
        """Like :meth:`_call`, but the call starts only when the previous list read or
        edit of this connection has finished, so each sees what the one before wrote."""

        def run(_: object) -> Deferred[None] | None:
            return None if self._gone else self._call(start(), then)

        self._lists_tail = self._lists_tail.addCallback(run)

    def _checked(self, result: Any) -> None:
        if result.ok and result.account is not None and not result.account.disabled:
            self._accepted(result.account.display_name)
        else:
            log.info(
                "msn: login refused for {address}: {outcome}",
                address=self.session.address,
                outcome=str(result.outcome),
            )
            self._perform(self.session.login_refused(self.service.now()))

    def _account_loaded(self, account: Any) -> None:
        if account is None or account.disabled:
            log.info("msn: login refused for {address}", address=self.session.address)
            self._perform(self.session.login_refused(self.service.now()))
        else:
            self._accepted(account.display_name)

    def _accepted(self, display_name: str) -> None:
        self._perform(self.session.login_accepted(display_name, self.service.now()))
        self.service.links.setdefault(self.session.handle, []).append(self)

    def _go_online(self, action: GoOnline) -> None:
        core = self.service.core

        async def open_and_list() -> tuple[Any, list[Command]]:
            opened = await core.open_session(
                self.session.address, self, action.presence, action.status_text
            )
            if self._gone:
                # The client left while its session opened: nobody else will close it
                # (connectionLost saw no session id), and its row would stay for good.
                await core.close_session(opened.session_id)
                return opened, []
            self.session_id = opened.session_id  # from here connectionLost closes it
            lines: list[Command] = []
            for entry in await core.contacts(self.session.address):
                if not entry.subscribed or entry.blocked:
                    continue
                state = await core.presence_of(entry.contact, self.session.address)
                if state in (PresenceState.OFFLINE, PresenceState.INVISIBLE):
                    continue
                handle = await core.present_as(entry.contact, "msn")
                display = await self._name_of(entry.contact)
                lines += lists.presence_lines(
                    self.session.version, handle, display, presence_to_msn(state), "", action.trid
                )
            return opened, lines

        def opened(result: tuple[Any, list[Command]]) -> None:
            session, lines = result
            self.session_id = session.session_id
            for line in lines:
                self.write(line)
            # The core wrote these through deliver() while opening (the contract);
            # only a core that did not gets them here.
            early, self._early = self._early, None
            for delivery in session.offline:
                if early is None or delivery.event.id not in early:
                    self.deliver(delivery)

        self._call(open_and_list(), opened)

    # -- lists

    async def _settings(self) -> lists.OwnerSettings:
        return settings_from_data(await self.service.core.adapter_data(self.session.address))

    async def _save_gtc(self, value: str) -> None:
        try:
            await self.service.core.set_adapter_data(self.session.address, {GTC_FIELD: value})
        except ValueError as exc:
            # GTC was already answered (the session replies at once): keep the old one.
            log.info(
                "msn: GTC of {handle} not saved: {reason}",
                handle=self.session.handle,
                reason=str(exc),
            )

    async def _save_property(self, action: PropertyChanged) -> None:
        if action.contact is None and action.name == "MFN":
            await self.service.core.set_display_name(
                self.session.address, decode_name(action.value or "")
            )
            return
        settings = await self._settings()
        changes = property_changes(settings, action.contact, action.name, action.value)
        try:
            await self.service.core.set_adapter_data(self.session.address, changes)
        except ValueError as exc:
            # Answered already (as a real server did, at once): the old value stays.
            log.info(
                "msn: {verb} of {handle} not saved: {reason}",
                verb="PRP" if action.contact is None else "SBP",
                handle=self.session.handle,
                reason=str(exc),
            )

    def _queried(self, action: QueryList, snapshot: lists.ListSnapshot) -> None:
        for line in lists.render_query(
            self.session.version,
            action.trid,
            snapshot,
            self.session.serial,
            action.verb,
            action.list_name,
        ):
            self.write(line)

    async def _sync_snapshot(self) -> lists.ListSnapshot:
        return await self._snapshot(await self._settings())

    async def _name_of(self, address: str) -> str:
        """The one name this client sees for ``address`` (translate.contact_name)."""
        account = await self.service.core.account(address)
        return contact_name(address, account.display_name if account else "")

    async def _snapshot(
        self, settings: lists.OwnerSettings, names: bool = True
    ) -> lists.ListSnapshot:
        """The user's lists. ``names``: look every contact's name up (for SYN); list
        edits skip that and name only the contact they touch."""
        core = self.service.core
        owner = self.session.address
        policy = await core.presence_policy(owner)
        entries = await core.contacts(owner)
        watchers = set(await core.watchers(owner))
        contacts: list[lists.ListedContact] = []
        seen: set[str] = set()
        groups = [lists.DEFAULT_GROUP]
        for entry in entries:
            handle = await core.present_as(entry.contact, "msn")
            seen.add(entry.contact)
            if entry.group not in groups:
                groups.append(entry.group)
            contacts.append(
                lists.ListedContact(
                    handle=handle,
                    address=entry.contact,
                    display=await self._name_of(entry.contact) if names else "",
                    forward=entry.subscribed,
                    allow=entry.allowed,
                    block=entry.blocked,
                    reverse=entry.contact in watchers,
                    group=entry.group,
                    entry=entry,
                )
            )
        for watcher in sorted(watchers - seen):
            handle = await core.present_as(watcher, "msn")
            contacts.append(
                lists.ListedContact(
                    handle=handle,
                    address=watcher,
                    display=await self._name_of(watcher) if names else "",
                    reverse=True,
                )
            )
        for extra in settings.extra_groups:
            if extra not in groups:
                groups.append(extra)
        return lists.ListSnapshot(
            owner_handle=self.session.handle,
            owner_name=self.session.display_name,
            contacts=tuple(contacts),
            groups=tuple(groups),
            gtc=settings.gtc,
            blp="AL" if policy is PresencePolicy.EVERYONE else "BL",
            group_aliases=tuple(settings.group_aliases.items()),
            owner_properties=tuple(settings.properties.items()),
            contact_properties=tuple(
                (ident, tuple(props.items()))
                for ident, props in settings.contact_properties.items()
            ),
        )

    def _synced(self, trid: int, snapshot: lists.ListSnapshot) -> None:
        for line in lists.render_sync(
            self.session.version, trid, snapshot, self.session.serial, self.service.now()
        ):
            self.write(line)

    async def _edit(self, action: EditLists) -> None:
        core = self.service.core
        settings = await self._settings()
        edit = action.edit
        snapshot = await self._snapshot(settings, names=False)
        resolved: str | None = None
        if (
            isinstance(edit, lists.AddToList)
            and edit.handle is not None
            and snapshot.by_handle(edit.handle) is None
        ):
            resolved = await core.resolve(make_address("msn", edit.handle))
            if resolved == self.session.address:
                resolved = None
        shown = ""
        if isinstance(edit, lists.AddToList):
            target = (
                snapshot.by_handle(edit.handle)
                if edit.handle is not None
                else snapshot.by_guid(edit.guid or "")
            )
            address = target.address if target is not None else resolved
            if address:
                shown = await self._name_of(address)
        outcome = lists.apply_edit(
            self.session.version,
            action.trid,
            snapshot,
            edit,
            self.session.next_serial(),
            resolved,
            shown,
        )
        if outcome.error is not None:
            self.write(ErrorReply(outcome.error, action.trid))
            return
        changes = group_changes(settings, outcome)
        if changes:
            # Written before the contacts move, so a refusal leaves everything as it was.
            try:
                await core.set_adapter_data(self.session.address, changes)
            except ValueError as exc:
                log.info(
                    "msn: group edit of {handle} refused: {reason}",
                    handle=self.session.handle,
                    reason=str(exc),
                )
                self.write(ErrorReply(ERR_TOO_MANY_GROUPS, action.trid))
                return
        for entry in outcome.put:
            await core.put_contact(self.session.address, entry)
        for contact in outcome.remove:
            await core.remove_contact(self.session.address, contact)
        for reply in outcome.replies:
            self.write(reply)
        if outcome.request_from is not None:
            await core.submit(
                ContactRequest(sender=self.session.address, recipient=outcome.request_from)
            )
        if outcome.authorize is not None:
            to, granted = outcome.authorize
            await core.submit(
                Authorization(sender=self.session.address, recipient=to, granted=granted)
            )
        if (
            isinstance(edit, lists.AddToList)
            and edit.list_name == "FL"
            and outcome.request_from is not None
        ):
            state = await core.presence_of(outcome.request_from, self.session.address)
            if state not in (PresenceState.OFFLINE, PresenceState.INVISIBLE):
                handle = await core.present_as(outcome.request_from, "msn")
                name = await self._name_of(outcome.request_from)
                for line in lists.presence_lines(
                    self.session.version, handle, name, presence_to_msn(state)
                ):
                    self.write(line)

    # -- ClientLink

    def deliver(self, delivery: Delivery) -> bool:
        if self._gone or self.stalled or self.session.state is NsState.CLOSED:
            return False
        event = delivery.event
        if self._early is not None and self.session_id is None:
            self._early.add(event.id)
        version = self.session.version
        if isinstance(event, Presence):
            state = event.state
            code = (
                "FLN"
                if state in (PresenceState.OFFLINE, PresenceState.INVISIBLE)
                else presence_to_msn(state)
            )
            display = contact_name(event.sender, delivery.peer_display)
            for line in lists.presence_lines(
                version, delivery.peer, display, code, event.status_text
            ):
                self.write(line)
        elif isinstance(event, ContactRequest):
            # The RL line goes out whatever GTC says: GTC only tells the client whether to prompt.
            display = contact_name(event.sender, delivery.peer_display)
            for line in lists.reverse_add_lines(
                version, delivery.peer, display, self.session.next_serial()
            ):
                self.write(line)
        elif isinstance(event, Message):
            return self._deliver_message(delivery, event)
        elif isinstance(event, DeliveryFailure):
            sent = self.service.sent.pop(event.message_id, None)
            if sent is not None and sent.ack in ("A", "N"):
                sent.connection.write(Command("NAK", sent.trid))
            if event.reason is not FailureReason.UNAVAILABLE:  # an outage: logged once
                log.info(
                    "msn: delivery to {peer} failed: {reason}",
                    peer=delivery.peer,
                    reason=event.reason.value,
                )
        return True

    @property
    def writable(self) -> bool:
        """FlowControlled: the client keeps up (notification and switchboard outputs
        not paused) and what waits for its ring answers is under ``RING_WAIT_SOFT``."""
        if self._gone or self.stalled or (self._out is not None and self._out.paused):
            return False
        rooms = self.service.rooms
        for connection in rooms.connections_of(self.session.handle):
            out = getattr(connection, "_out", None)
            if isinstance(out, OutputBound) and out.paused:
                return False
        return rooms.waiting_bytes(self.session.handle) < RING_WAIT_SOFT

    def when_writable(self, callback: Callable[[], None]) -> None:
        """Checked every ``WRITABLE_POLL`` seconds on the service's clock (the things
        that make the link writable again are several: a drained socket, an ANS, an
        expired ring); called at once when the connection is gone."""
        if self.writable or self._gone or self.stalled:
            callback()
            return
        self.service.clock.callLater(WRITABLE_POLL, self.when_writable, callback)

    def _deliver_message(self, delivery: Delivery, event: Message) -> bool:
        rooms = self.service.rooms
        handle = self.session.handle
        peer = delivery.peer
        display = contact_name(event.sender, delivery.peer_display)
        room = rooms.find(handle, peer)
        if room is None:
            origin = rooms.origin(event.id)
            if (
                origin is not None
                and handle in origin.participants
                and origin.connection_of(handle) is None
            ):
                room = origin
        now = self.service.now()
        connection = room.connection_of(handle) if room is not None else None
        if room is not None and isinstance(connection, SwitchboardProtocol):
            shown = room.participants[peer].display if peer in room.participants else display
            connection.show_message(peer, shown, event)
            return not connection.stalled
        size = len(event.body.encode("utf-8")) + RING_WAIT_OVERHEAD
        if rooms.waiting_bytes(handle) + size > RING_WAIT_HARD:
            return False  # not taken: the core keeps it offline; nothing is bounced
        if room is None:
            room = rooms.open_for(handle, peer, display, now)
            ringing = False
        else:
            ringing = handle in room.invitations
        if not ringing and not self.session.accepts_switchboards:
            # IMS OFF: this user takes no new conversations (nobody may ring them).
            self.service.return_failure(
                delivery, handle, FailureReason.UNSUPPORTED, "recipient takes no conversations"
            )
            return True
        invitation = rooms.invite(room, handle, now)
        invitation.queue.append(delivery)
        invitation.size += size
        if not ringing:
            inviter_name = room.participants[peer].display if peer in room.participants else display
            self.write(self.session.ring(room.room_id, peer, inviter_name, now))
            self.service.arm_expiry()
        return True

    def show_typing(self, peer: str, event: Typing) -> bool:
        if self._gone or not event.active:
            return not self._gone
        room = self.service.rooms.find(self.session.handle, peer)
        if room is not None:
            connection = room.connection_of(self.session.handle)
            if isinstance(connection, SwitchboardProtocol):
                display = room.participants[peer].display if peer in room.participants else peer
                connection.write(Command("MSG", None, (peer, _name(display)), typing_payload(peer)))
        return True

    @property
    def max_body_chars(self) -> int:
        return MAX_BODY_CHARS

    @property
    def max_body_size(self) -> int:
        return SB_MAX_PAYLOAD

    def body_size(self, body: str, spans: tuple[FormatSpan, ...] = ()) -> int:
        return text_payload_size(body, spans)


def _name(display: str) -> str:
    return encode_name(display)


class NotificationFactory(Factory):
    def __init__(self, service: MsnService) -> None:
        self.service = service

    def buildProtocol(self, addr: object) -> NotificationProtocol:
        return NotificationProtocol(self.service)


# ---------------------------------------------------------------- switchboard


class SwitchboardProtocol(_Connection):
    kind = "switchboard"

    def __init__(self, service: MsnService) -> None:
        super().__init__(
            service,
            CommandCodec(Role.SERVER, max_payload=SB_MAX_PAYLOAD),
            service.rates.switchboard(),
        )
        self.session: SwitchboardSession = SwitchboardSession(
            service.signer, service.now(), login_timeout=service.ns_config.login_timeout
        )
        self.room: Room | None = None

    def _kind_of(self, frame: Frame) -> str:
        return MESSAGE if isinstance(frame, Command) and frame.verb == "MSG" else COMMAND

    def _over_rate(self, frame: Frame, kind: str) -> None:
        # A message past the rate is not delivered: an acknowledged one is NAKed, as
        # any undelivered message is; then the switchboard closes (clients open another).
        if kind == MESSAGE and isinstance(frame, Command) and frame.args[:1] in (("A",), ("N",)):
            self.write(Command("NAK", frame.trid))

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._connection_gone()
        if self.room is not None:
            room, self.room = self.room, None
            self._dispatch(self.service.rooms.leave(room, self.session.handle))

    def _dispatch(self, outgoing: list[tuple[object, Command]]) -> None:
        for key, command in outgoing:
            if isinstance(key, SwitchboardProtocol):
                key.write(command)

    def _perform(self, actions: Sequence[SbAction]) -> None:
        for action in actions:
            if isinstance(action, Send):
                self.write(action.frame)
            elif isinstance(action, Close):
                log.info("msn: closing switchboard connection: {reason}", reason=action.reason)
                self._close()
            elif isinstance(action, OpenRoom):
                self.room = self.service.rooms.open(action.handle, action.display_name, self)
                self.session.joined(self.room.room_id)
                self.write(
                    Command("USR", action.trid, ("OK", action.handle, _name(action.display_name)))
                )
            elif isinstance(action, AnswerRing):
                self._answer(action)
            elif isinstance(action, Invite):
                self._invite(action)
            elif isinstance(action, Post):
                self._post(action)

    def _answer(self, action: AnswerRing) -> None:
        room = self.service.rooms.get(action.room_id)
        try:
            if room is None:
                raise RoomError(lists.ERR_AUTH_FAILED)
            outgoing, queue = self.service.rooms.answer(
                room, action.handle, action.display_name, self, action.trid
            )
        except RoomError as exc:
            self._perform(self.session.refused(action.trid, exc.code, "no such invitation"))
            return
        self.room = room
        self.session.joined(room.room_id)
        self._dispatch(outgoing)
        for delivery in queue:
            if isinstance(delivery, Delivery) and isinstance(delivery.event, Message):
                peer = delivery.peer
                display = room.participants[peer].display if peer in room.participants else peer
                self.show_message(peer, display, delivery.event)

    def _invite(self, action: Invite) -> None:
        """``CAL``. A connected MSN user of this node is rung at once (``RNG``) and
        joins when they answer (``JOI`` then); anyone else joins virtually at once
        (``JOI`` now), their messages going through the core. Anyone not blocking
        the caller may be called: consent is about presence, not about writing
        first (docs/adr/0009-first-contact.md)."""
        room = self.room
        if room is None:
            return
        core = self.service.core
        me = f"msn:{self.session.handle}"

        async def look_up() -> tuple[int | None, str, str]:
            if action.handle == self.session.handle:
                return lists.ERR_INVALID_USER, "", ""
            try:
                address = make_address("msn", action.handle)
            except AddressError:
                return lists.ERR_INVALID_USER, "", ""
            real = await core.resolve(address)
            if real is None:
                return lists.ERR_INVALID_USER, "", ""
            if await core.presence_for_writer(real, me) in (
                PresenceState.OFFLINE,
                PresenceState.INVISIBLE,
            ):
                return lists.ERR_NOT_ONLINE, "", ""
            account = await core.account(real)
            return None, contact_name(real, account.display_name if account else ""), real

        def found(result: tuple[int | None, str, str]) -> None:
            error, display, real = result
            if error is not None:
                self.write(ErrorReply(error, action.trid))
                return
            callee = self.service.link_for(action.handle) if real.startswith("msn:") else None
            try:
                if callee is not None:
                    if not callee.session.accepts_switchboards:  # IMS OFF
                        raise RoomError(lists.ERR_NOT_ONLINE)
                    self._ring(room, callee)
                    joins: list[tuple[object, Command]] = []
                else:
                    joins = self.service.rooms.call(room, action.handle, display)
            except RoomError as exc:
                self.write(ErrorReply(exc.code, action.trid))
                return
            self.write(Command("CAL", action.trid, ("RINGING", room.room_id)))
            self._dispatch(joins)

        def failed(failure: Failure) -> None:
            _log_failure(failure, "looking up a CAL")
            self.write(ErrorReply(lists.ERR_INTERNAL, action.trid))

        self.service.run(look_up()).addCallbacks(found, failed)

    def _ring(self, room: Room, callee: NotificationProtocol) -> None:
        """Ring a connected MSN user into ``room`` now, as a real server does on CAL."""
        handle = callee.session.handle
        if handle in room.participants or handle in room.invitations:
            raise RoomError(lists.ERR_ALREADY_ON_LIST)
        if len(room.participants) + len(room.invitations) >= MAX_PARTICIPANTS:
            raise RoomError(ERR_ROOM_FULL)
        now = self.service.now()
        self.service.rooms.invite(room, handle, now)
        callee.write(
            callee.session.ring(room.room_id, self.session.handle, self.session.display_name, now)
        )
        self.service.arm_expiry()

    def _post(self, action: Post) -> None:
        room = self.room
        if room is None:
            return
        try:
            content = content_from_payload(action.payload)
        except MsnProtocolError as exc:
            log.info("msn: closing switchboard connection: {reason}", reason=str(exc))
            self.write(ErrorReply(exc.code, action.trid))
            self._close()
            return
        me = f"msn:{self.session.handle}"
        # Everyone in the room, and everyone rung who has not answered yet: their
        # messages wait (bounded) in the invitation until they answer (ANS) or it
        # expires, and come back to the caller as NAK then.
        others = [p.handle for p in room.others(self.session.handle)]
        others += [h for h in room.invitations if h not in room.participants and h not in others]
        events: list[Message | Typing] = []
        for other in others:
            try:
                recipient = make_address("msn", other)
            except AddressError:
                continue
            if isinstance(content, TextContent):
                events.append(
                    Message(sender=me, recipient=recipient, body=content.body, spans=content.spans)
                )
            elif isinstance(content, TypingContent):
                events.append(Typing(sender=me, recipient=recipient, active=True))
        for event in events:
            self.service.rooms.remember_origin(event.id, room.room_id)
            if isinstance(event, Message):
                self.service.remember_sent(event.id, Sent(self, action.trid, action.ack))

        if not others and isinstance(content, TextContent):
            # Nobody left to read it (everybody left, or the one rung never answered):
            # not delivered, and said so in MSN terms.
            if action.ack in ("A", "N"):
                self.write(Command("NAK", action.trid))
            return

        async def submit_all() -> None:
            for event in events:
                await self.service.core.submit(event)

        def done(_: None) -> None:
            # A message refused meanwhile was NAKed (its Sent entry taken): no ACK then.
            refused = any(e.id not in self.service.sent for e in events if isinstance(e, Message))
            if refused:
                return
            if action.ack in ("A", "S", "D") and isinstance(content, TextContent | None):
                self.write(Command("ACK", action.trid))

        def failed(failure: Failure) -> None:
            if failure.check(ServiceUnavailable):
                return  # the core's DeliveryFailure (unavailable) has NAKed it already
            _log_failure(failure, "submitting a message")
            if action.ack in ("A", "N"):
                self.write(Command("NAK", action.trid))

        self.service.run(submit_all()).addCallbacks(done, failed)

    def show_message(self, peer: str, display: str, event: Message) -> None:
        for payload in text_payloads(event):
            self.write(Command("MSG", None, (peer, _name(display)), payload))


class SwitchboardFactory(Factory):
    def __init__(self, service: MsnService) -> None:
        self.service = service

    def buildProtocol(self, addr: object) -> SwitchboardProtocol:
        return SwitchboardProtocol(self.service)
