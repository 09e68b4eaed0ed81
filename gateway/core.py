"""The core services: what adapters call (adapters.contract.CoreServices), carried out
against the store with the router's decisions, plus this node's delivery loops.

Runs on the asyncio loop shared with Twisted. Per sender, submissions are handled one
at a time in arrival order, so a conversation keeps its order end to end.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import inspect
import json
import os
import secrets
import socket
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar, cast

from twisted.logger import Logger

from adapters.contract import (
    ClientLink,
    CoreServices,
    Delivery,
    FlowControlled,
    LimitsBody,
    MeasuresBody,
    OpenedSession,
    ServiceUnavailable,
    ShowsTyping,
    TlsCertificate,
)
from gateway import bot, certificate, router
from gateway.config import BotSettings
from gateway.credentials import SealingKey, check_proof, dummy_check, fake_scram_salt
from gateway.facts import Facts
from gateway.login_guard import LoginGuard, LoginPolicy, VerifierBusy
from gateway.outage import OutageTracker, is_outage, next_delay
from gateway.outage import describe as describe_outage
from gateway.splitting import BodyLimit, split_message, split_text
from gateway.splitting import split_body as split_body  # re-exported: tests import it here
from gateway.store import Store
from gateway.store.bots import BotClaim, BotRegistry
from gateway.store.delivery import InboxEntry, SessionRow
from schema import limits, scram
from schema.addresses import AddressError, normalise_address, split_address
from schema.events import (
    MAX_BODY_CHARS,
    Authorization,
    CanonicalEvent,
    ContactRequest,
    DeliveryFailure,
    FailureReason,
    Message,
    Presence,
    PresenceState,
    Typing,
    event_from_json,
    event_to_json,
)
from schema.records import (
    AccountInfo,
    ContactEntry,
    LoginOutcome,
    LoginProof,
    LoginResult,
    PresencePolicy,
    ScramParameters,
    SessionInfo,
)

log = Logger()
MAX_DISPLAY_NAME = 256
"""Characters of a display name a user sets from their client."""
ACTIVE_EVERY = 30.0
"""Seconds between two writes of a session's last activity."""


OFFLINE_LOG_AT = 100
"""A replay of at least this many offline events is logged (one line)."""


class _Replay:
    """A session's offline replay in progress: live events parked behind it."""

    def __init__(self) -> None:
        self.in_flight = 0  # parks whose write to the offline stream has not returned
        self.parks = 0  # parks started, ever
        self.idle = asyncio.Event()
        self.idle.set()

    def park_started(self) -> None:
        self.in_flight += 1
        self.parks += 1
        self.idle.clear()

    def park_done(self) -> None:
        self.in_flight -= 1
        if self.in_flight == 0:
            self.idle.set()

    def closed(self) -> None:
        self.idle.set()


@dataclass
class LocalSession:
    info: SessionInfo
    link: ClientLink
    shows_typing: bool = False
    limit: BodyLimit | None = None
    """The link's capabilities, checked once at login (Protocol isinstance is slow)."""
    replay: _Replay | None = None
    """Set while the offline backlog is still being written to this session."""

    @classmethod
    def of(cls, info: SessionInfo, link: ClientLink) -> LocalSession:
        limited = isinstance(link, LimitsBody | MeasuresBody)
        return cls(
            info, link, isinstance(link, ShowsTyping), body_limit_of(link) if limited else None
        )


def encode_delivery(delivery: Delivery) -> str:
    return json.dumps(
        {
            "ev": event_to_json(delivery.event).decode("utf-8"),
            "peer": delivery.peer,
            "pd": delivery.peer_display,
        },
        separators=(",", ":"),
    )


def decode_delivery(payload: str) -> Delivery:
    data = json.loads(payload)
    return Delivery(event=event_from_json(data["ev"]), peer=data["peer"], peer_display=data["pd"])


def body_limit_of(link: ClientLink) -> BodyLimit:
    """What one message part may hold on ``link`` (docs/adr/0003-capabilities.md)."""
    max_chars = max(1, link.max_body_chars) if isinstance(link, LimitsBody) else None
    if isinstance(link, MeasuresBody):
        return BodyLimit(max_chars, max(1, link.max_body_size), link.body_size)
    return BodyLimit(max_chars)


class GatewayCore:
    """CoreServices for the adapters of one node."""

    def __init__(
        self,
        store: Store,
        sealing: SealingKey,
        node_id: str,
        *,
        allow_registration: Sequence[str] = (),
        registration_first_id: int = 700000,
        heartbeat_seconds: float = 5.0,
        dead_after_seconds: float = 20.0,
        bot_settings: BotSettings | None = None,
        networks: Sequence[str] = (),
        login_policy: LoginPolicy | None = None,
        tls_directory: Path | None = None,
    ) -> None:
        """``bot_settings``: the gateway bot (None: no bot); ``networks``: the networks
        this node serves, where it makes sure the bot's account exists;
        ``tls_directory``: where this node keeps its own TLS certificate."""
        self._tls_directory = tls_directory
        self._tls_lock = asyncio.Lock()
        self.store = store
        self.facts = Facts(store)
        self._sealing = sealing
        self._node_id = node_id
        self._allow_registration = frozenset(allow_registration)
        self._registration_first_id = registration_first_id
        self._heartbeat_seconds = heartbeat_seconds
        self._dead_after_ms = int(dead_after_seconds * 1000)
        self._fake_salt_secret = sealing.derive(b"fake-scram-salt")
        self.login_guard = LoginGuard(store.redis, login_policy)
        self._throttle_counts: dict[str, int] = {}
        self.local: dict[str, LocalSession] = {}
        self._local_by_address: dict[str, set[str]] = {}  # address -> local session ids
        self._touched: dict[str, float] = {}  # session id -> when "active" was last written
        self._sender_locks: dict[str, asyncio.Lock] = {}
        self._sender_waiting: dict[str, int] = {}
        self._alive_cache: dict[str, tuple[float, bool]] = {}
        self._epoch = 0  # this run's epoch (gateway/store/liveness.py)
        self._healthy_since: float | None = None  # lease renewed without a break since
        self._renewed = 0.0  # when the lease was last renewed (monotonic)
        self._lease_from = 0.0  # when the last successful renewal was sent (monotonic)
        self._fenced = False  # declared dead by another node: registering again
        self._rejoining = False  # ... and that was logged
        self._consumed: OrderedDict[str, None] = OrderedDict()  # inbox entries written
        self._loop_logged: dict[str, float] = {}
        self._unclosed: dict[str, str] = {}  # session id -> address: row left in an outage
        self.outage = OutageTracker()
        self._tasks: list[asyncio.Task[None]] = []
        self._replays: set[asyncio.Future[None]] = set()
        self._running = False
        self.started = time.time()
        self._bot_registry = BotRegistry(store.redis)
        self._bot_settings = bot_settings if bot_settings and bot_settings.enabled else None
        self._networks = tuple(networks)
        self._bots: dict[str, str] = {}  # network -> the bot's address, confirmed in Redis
        self._bot_maybe: set[str] = set()  # configured, served elsewhere: ask Redis

    # ---- identity of the node

    @property
    def node_id(self) -> str:
        return self._node_id

    @staticmethod
    def default_node_id() -> str:
        return f"{socket.gethostname()}-{os.getpid()}"

    # ---- accounts and login

    async def account(self, address: str) -> AccountInfo | None:
        return await self.store.accounts.info(address)

    async def check_login(self, address: str, proof: LoginProof, source: str = "") -> LoginResult:
        """``source``: the client's host as the adapter saw it (empty: unknown), for
        the per-source brake (gateway/login_guard.py)."""
        guard = self.login_guard
        if source and not guard.sources.take(source):
            return self._throttled("source", source)
        try:
            address = normalise_address(address)
        except AddressError:
            return LoginResult(LoginOutcome.NO_SUCH_ACCOUNT)
        if await guard.accounts.locked(address):
            return self._throttled("account", address)
        if await self._confirm_bot(address):
            return LoginResult(LoginOutcome.NO_SUCH_ACCOUNT)  # nobody logs in as the bot
        record = await self.store.accounts.get(address)
        try:
            if record is None:
                # The same work and the same count as a wrong password, so neither
                # timing nor a lock tells whether the account exists.
                await guard.verifier.run(partial(dummy_check, proof))
                await guard.accounts.failed(address)
                return LoginResult(LoginOutcome.NO_SUCH_ACCOUNT)
            if record.info.disabled:
                return LoginResult(LoginOutcome.DISABLED, record.info)
            checked = await guard.verifier.run(
                partial(check_proof, address, proof, record.verifiers, self._sealing)
            )
        except VerifierBusy:
            return self._throttled("verifier", "")
        if not checked.supported:
            return LoginResult(LoginOutcome.UNSUPPORTED, record.info)
        if not checked.ok:
            await guard.accounts.failed(address)
            return LoginResult(LoginOutcome.BAD_PASSWORD, record.info)
        await guard.accounts.succeeded(address)
        return LoginResult(LoginOutcome.OK, record.info, checked.server_signature)

    def _throttled(self, brake: str, who: str) -> LoginResult:
        """Count a refusal; log the first of each brake and every 1000th after, so a
        flood writes a few lines, not one per attempt."""
        count = self._throttle_counts.get(brake, 0) + 1
        self._throttle_counts[brake] = count
        if count == 1 or count % 1000 == 0:
            log.warn(
                "logins throttled ({brake}{who}): {count} refused so far",
                brake=brake,
                who=f" {who}" if who else "",
                count=count,
            )
        return LoginResult(LoginOutcome.THROTTLED)

    async def scram_parameters(self, address: str) -> ScramParameters:
        record = await self.store.accounts.get(address)
        if record is None or not record.verifiers.scram_salt:
            return ScramParameters(
                fake_scram_salt(address, self._fake_salt_secret), scram.DEFAULT_ITERATIONS
            )
        verifier = record.verifiers.scram()
        return ScramParameters(verifier.salt, verifier.iterations)

    async def tls_certificate(self, host_names: Sequence[str]) -> TlsCertificate:
        if self._tls_directory is None:
            raise LookupError("this node keeps no TLS certificate (no data directory)")
        async with self._tls_lock:  # adapters asking at once add their names in turn
            loaded = await asyncio.get_running_loop().run_in_executor(
                None, certificate.load_or_create, self._tls_directory, tuple(host_names)
            )
        log.info(
            "TLS certificate {path} ({kind}), SHA-256 fingerprint {fingerprint}",
            path=loaded.cert_path,
            kind=(
                ("self-signed, made now" if loaded.created else "self-signed")
                if loaded.self_made
                else "placed by the admin"
            ),
            fingerprint=loaded.sha256,
        )
        return loaded

    async def register_account(
        self, network: str, password: str, display_name: str
    ) -> AccountInfo | None:
        if network not in self._allow_registration:
            return None
        native = await self.store.identity.allocate_registration(
            network, self._registration_first_id, 0xFFFFFFFF
        )
        info = await self.store.accounts.create_claimed(
            f"{network}:{native}", password, limits.clean_display_name(display_name)
        )
        await self.store.audit.record(
            f"self:{info.address}", "account.register", address=info.address
        )
        return info

    async def find_accounts(
        self, network: str, text: str, limit: int = 20
    ) -> Sequence[AccountInfo]:
        text = limits.clean_text(text, limits.MAX_HANDLE_CHARS)
        return await self.store.accounts.search(network, text, max(1, min(limit, 100)))

    # ---- sessions

    async def open_session(
        self,
        address: str,
        link: ClientLink,
        presence: PresenceState = PresenceState.ONLINE,
        status_text: str = "",
    ) -> OpenedSession:
        address = normalise_address(address)
        network, _ = split_address(address)
        session_id = secrets.token_hex(12)
        info = SessionInfo(
            session_id=session_id,
            address=address,
            node_id=self._node_id,
            network=network,
            since=time.time(),
            presence=presence,
            status_text=limits.clean_status_text(status_text),
        )
        # The link is known here before its row exists in Redis: an event routed to the
        # session (this node or another) always finds it. Until the offline backlog is
        # written, live events to it are parked behind that backlog (``_hand``).
        local = LocalSession.of(info, link)
        local.replay = _Replay()
        self.local[session_id] = local
        self._local_by_address.setdefault(address, set()).add(session_id)
        self._touched[session_id] = time.monotonic()
        try:
            await self.store.delivery.open_session(info)
        except BaseException:
            self._forget_local(session_id)
            raise
        self._start_replay(session_id)
        await self._fan_out_presence(address)
        return OpenedSession(session_id=session_id)

    def _start_replay(self, session_id: str) -> None:
        task = asyncio.ensure_future(self._replay_offline(session_id))
        self._replays.add(task)
        task.add_done_callback(self._replays.discard)

    async def _replay_offline(self, session_id: str) -> None:
        """Stream what waited offline to a session that just opened: batches read from
        the offline stream in order, each written only when the link can take more
        (FlowControlled), each entry deleted once written. Live events parked meanwhile
        land at the end of the same stream, so they follow in order; the session goes
        live only after a read that saw the stream empty with no park in flight during
        it (docs/adr/0015-delivery-contract.md)."""
        local = self.local.get(session_id)
        if local is None or local.replay is None:
            return
        replay = local.replay
        address = local.info.address
        after = ""
        written = 0
        try:
            while self.local.get(session_id) is local:
                if not await self._until_writable(local.link):
                    continue  # still not writable: check the session is still here
                if self.local.get(session_id) is not local:
                    return
                if replay.in_flight:
                    await replay.idle.wait()
                    continue
                parks_before = replay.parks
                batch = await self.store.delivery.read_offline(address, after)
                if not batch:
                    if replay.in_flight == 0 and replay.parks == parks_before:
                        local.replay = None  # live from here: nothing can be behind us
                        return
                    continue
                done: list[str] = []
                for entry_id, payload in batch:
                    after = entry_id
                    try:
                        delivery = dataclasses.replace(decode_delivery(payload), offline=True)
                    except (ValueError, KeyError):
                        log.error(
                            "dropping unreadable offline entry {id} for {a}", id=entry_id, a=address
                        )
                        done.append(entry_id)
                        continue
                    if not self._write_local(session_id, delivery):
                        # The connection is gone: the rest stays queued for next time.
                        await self.store.delivery.ack_offline(address, done)
                        return
                    done.append(entry_id)
                await self.store.delivery.ack_offline(address, done)
                written += len(done)
        except asyncio.CancelledError:
            raise
        except Exception:
            # What was not written stays in the offline queue (it is only deleted after
            # the write); the session goes live so it is not stuck behind it.
            log.failure("offline replay for {a} stopped", a=address)
            if self.local.get(session_id) is local:
                local.replay = None
        finally:
            if written >= OFFLINE_LOG_AT:
                log.info("wrote {n} offline events to {a}", n=written, a=address)

    @staticmethod
    async def _until_writable(link: ClientLink, within: float = 1.0) -> bool:
        """Wait until a FlowControlled link can take more; False when it still cannot
        after ``within`` seconds (the caller checks the session is still open)."""
        if not isinstance(link, FlowControlled) or link.writable:
            return True
        ready = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not ready.done():
                ready.set_result(None)

        link.when_writable(wake)
        try:
            await asyncio.wait_for(ready, within)
        except TimeoutError:
            return False
        return True

    async def return_undelivered(self, session_id: str, deliveries: Sequence[Delivery]) -> None:
        local = self.local.get(session_id)
        for delivery in deliveries:
            event = delivery.event
            policy = router.policy(event)
            if not policy.queue_offline:
                continue
            plain = dataclasses.replace(delivery, offline=False)
            if not await self.store.delivery.queue_offline(event.recipient, encode_delivery(plain)):
                await self._refuse(event, FailureReason.QUEUE_FULL, policy.report_failure)
        if deliveries:
            log.info(
                "{n} undelivered event(s) of {a} back in the offline queue",
                n=len(deliveries),
                a=local.info.address if local else session_id,
            )

    def _forget_local(self, session_id: str) -> LocalSession | None:
        local = self.local.pop(session_id, None)
        if local is None:
            return None
        self._touched.pop(session_id, None)
        ids = self._local_by_address.get(local.info.address)
        if ids is not None:
            ids.discard(session_id)
            if not ids:
                del self._local_by_address[local.info.address]
        return local

    async def close_session(self, session_id: str) -> None:
        local = self._forget_local(session_id)
        if local is None:
            return
        if local.replay is not None:
            local.replay.closed()
        try:
            await self.store.delivery.close_session(local.info.address, session_id, self._node_id)
        except Exception as exc:
            if is_outage(exc):  # Redis away: the row goes when it is back
                self._unclosed[session_id] = local.info.address
            raise
        await self._fan_out_presence(local.info.address)

    async def set_presence(
        self, session_id: str, presence: PresenceState, status_text: str = ""
    ) -> None:
        local = self.local.get(session_id)
        if local is None:
            return
        local.info = SessionInfo(
            session_id=local.info.session_id,
            address=local.info.address,
            node_id=local.info.node_id,
            network=local.info.network,
            since=local.info.since,
            presence=presence,
            status_text=limits.clean_status_text(status_text),
        )
        await self.store.delivery.update_session(local.info, time.time())
        await self._fan_out_presence(local.info.address)

    # ---- contacts

    async def contacts(self, owner: str) -> Sequence[ContactEntry]:
        return await self.store.contacts.entries(owner)

    async def put_contact(self, owner: str, entry: ContactEntry) -> None:
        """Lists hold real addresses: an alias an adapter passes (``oscar:2000000001``)
        is stored as the user it stands for, so consent and the watcher index meet."""
        real = await self._real(entry.contact)
        # The nickname a client keeps for a contact: one line, bounded (schema/limits.py).
        display_name = limits.clean_display_name(entry.display_name)
        if (real, display_name) != (entry.contact, entry.display_name):
            entry = dataclasses.replace(entry, contact=real, display_name=display_name)
        old = await self.store.contacts.get(owner, real)
        await self.store.contacts.put(owner, entry)
        self.facts.forget_contact(owner, real)  # at once here; other nodes by announcement
        if old is None or (old.allowed, old.blocked) != (entry.allowed, entry.blocked):
            # Consent given or taken back, in whatever network's terms: the contact
            # sees the owner's presence, or sees them go offline, at once.
            await self._fan_out_presence(owner, only=real, revoked=True)

    async def remove_contact(self, owner: str, contact: str) -> None:
        real = await self._real(contact)
        old = await self.store.contacts.get(owner, real)
        await self.store.contacts.remove(owner, real)
        if real != contact:
            await self.store.contacts.remove(owner, contact)
        self.facts.forget_contact(owner, real)
        if old is not None and old.allowed:
            await self._fan_out_presence(owner, only=real, revoked=True)

    async def _real(self, address: str) -> str:
        """The real address behind ``address``; ``address`` itself when nobody owns it."""
        return await self.resolve(address) or address

    async def _record_consent(self, event: Authorization) -> None:
        """Granting authorization is consent on every network: the granter's entry for
        the requester becomes ``allowed`` (denying withdraws it), whatever the adapter
        stored, so ICQ, MSN and UIN grants all mean the same to presence."""
        try:
            owner = normalise_address(event.sender)
        except AddressError:
            return
        contact = await self.resolve(event.recipient)
        if contact is None or contact == owner:
            return
        old = await self.store.contacts.get(owner, contact)
        if old is None:
            if event.granted:
                entry = ContactEntry(contact=contact, subscribed=False, allowed=True)
                await self.store.contacts.put(owner, entry)
        elif old.allowed != event.granted:
            entry = dataclasses.replace(old, allowed=event.granted, pending=False)
            await self.store.contacts.put(owner, entry)
        self.facts.forget_contact(owner, contact)
        # Whether the adapter had stored the answer already or not: the requester sees
        # the granter now (or, denied, sees them offline).
        await self._fan_out_presence(owner, only=contact, revoked=not event.granted)

    async def watchers(self, address: str) -> Sequence[str]:
        return await self.store.contacts.watchers(address)

    # ---- adapter-private data (gateway/store/adapter_data.py)

    async def adapter_data(self, owner: str) -> Mapping[str, str]:
        return await self.store.adapter_data.get(owner)

    async def set_adapter_data(self, owner: str, values: Mapping[str, str | None]) -> None:
        await self.store.adapter_data.update(owner, values)

    async def presence_of(self, address: str, watcher: str) -> PresenceState:
        state, _ = await self.presence_with_text(await self._real(address), watcher)
        return state

    async def set_display_name(self, address: str, display_name: str) -> None:
        """The person renamed themselves in their own client: their account's display
        name, which every network shows them by, changes, and their followers see the
        new name at once (it travels with presence). Nothing else renames a person."""
        try:
            address = normalise_address(address)
        except AddressError:
            return
        name = "".join(c for c in display_name if c.isprintable()).strip()[:MAX_DISPLAY_NAME]
        info = await self.facts.info(address)
        if info is None or not name or info.display_name == name:
            return
        await self.store.accounts.set_display_name(address, name)
        self.facts.forget_accounts(address)
        await self._fan_out_presence(address)

    async def presence_for_writer(self, address: str, writer: str) -> PresenceState:
        """Whether ``writer`` may start a conversation with ``address`` now, as a
        presence: the person's real merged presence whatever consent says (anyone not
        blocked may write first, docs/adr/0009-first-contact.md), OFFLINE when any of
        their addresses blocks ``writer``. An invisible person shows offline here too
        (router.merged_presence): networks that must ask before the first message (MSN's
        CAL) refuse them; the others' messages are routed as usual."""
        real = await self._real(address)
        if await self._confirm_bot(real):
            return PresenceState.ONLINE
        linked = await self.facts.linked(real)
        for a in linked:
            entry = await self.facts.contact(a, writer)
            if entry is not None and entry.blocked:
                return PresenceState.OFFLINE
        states = []
        for a in linked:
            for row in await self._live_rows(a):
                states.append((row.info.presence, row.info.status_text))
        return router.merged_presence(states)[0]

    async def presence_with_text(self, address: str, watcher: str) -> tuple[PresenceState, str]:
        if await self._confirm_bot(address):
            return (PresenceState.ONLINE, bot.STATUS_TEXT)  # for everyone, no consent needed
        if not await self._consents(address, watcher):
            return (PresenceState.OFFLINE, "")
        states = []
        for linked in await self.facts.linked(address):
            for row in await self._live_rows(linked):
                states.append((row.info.presence, row.info.status_text))
        return router.merged_presence(states)

    async def _consents(self, address: str, watcher: str) -> bool:
        """Does ``address`` let ``watcher`` see its presence? A block on any linked
        address's list says no; an allow (authorization, allow list) on any says yes;
        else the person's policy decides (only the allowed, by default)."""
        linked = await self.facts.linked(address)
        entries = [await self.facts.contact(a, watcher) for a in linked]
        if any(e is not None and e.blocked for e in entries):
            return False
        if any(e is not None and e.allowed for e in entries):
            return True
        for a in linked:
            if await self.store.accounts.presence_policy(a) is PresencePolicy.EVERYONE:
                return True
        return False

    async def presence_policy(self, owner: str) -> PresencePolicy:
        return await self.store.accounts.presence_policy(owner)

    async def set_presence_policy(self, owner: str, policy: PresencePolicy) -> None:
        if await self.store.accounts.presence_policy(owner) is policy:
            return
        await self.store.accounts.set_presence_policy(owner, policy)
        await self._fan_out_presence(owner, revoked=True)

    # ---- identity

    async def resolve(self, address: str) -> str | None:
        try:
            address = normalise_address(address)
        except AddressError:
            return None
        owner = await self.facts.owner(address)
        if owner is None:
            return None
        if owner == address:
            return address if await self.facts.info(address) else None
        return owner

    async def present_as(self, address: str, network: str) -> str:
        own_network, native = split_address(address)
        if own_network == network:
            return native
        return await self.facts.alias(address, network)

    async def _display(self, address: str) -> str:
        """The person's own display name (empty when none): each adapter shows it by
        its network's naming rule (adapters.contract.Delivery.peer_display)."""
        info = await self.facts.info(address)
        return info.display_name if info else ""

    async def linked(self, address: str) -> Sequence[str]:
        """Every address of the person owning ``address`` (itself when unlinked)."""
        return await self.store.identity.linked(address)

    # ---- the gateway bot (gateway/bot.py; docs/adr/0005-gateway-bot.md)

    @property
    def bots(self) -> dict[str, str]:
        """network -> the bot's address, for the bots this node knows."""
        return dict(self._bots)

    def is_bot(self, address: str) -> bool:
        network, _, _ = address.partition(":")
        return self._bots.get(network) == address

    async def _confirm_bot(self, address: str) -> bool:
        """Is ``address`` a bot? Known ones from memory; a configured bot of a network
        this node does not serve is asked of Redis until another node has created it."""
        if self.is_bot(address):
            return True
        if address not in self._bot_maybe or not await self._bot_registry.is_bot(address):
            return False
        self._bot_maybe.discard(address)
        self._bots[address.partition(":")[0]] = address
        return True

    async def _claim_bots(self) -> None:
        """The bot's account exists on every network served here that has a bot id:
        claimed atomically (several nodes may start at once), never over a user's."""
        settings = self._bot_settings
        if settings is None:
            return
        for network, native in settings.ids.items():
            address = f"{network}:{native}"
            if network not in self._networks:
                self._bot_maybe.add(address)
                continue
            claim = await self._bot_registry.claim(network, native)
            if claim is BotClaim.TAKEN:
                log.error(
                    "bot: {address} already belongs to a user; no gateway bot on {network}",
                    address=address,
                    network=network,
                )
                continue
            info = await self.store.accounts.info(address)
            if info is None:
                # Nobody logs in as the bot: a random password, thrown away at once.
                await self.store.accounts.create_claimed(
                    address, secrets.token_urlsafe(32), settings.display_name
                )
            elif info.display_name != settings.display_name:
                await self.store.accounts.set_display_name(address, settings.display_name)
            self._bots[network] = address
            log.info(
                "gateway bot on {network}: add {native} (type help)", network=network, native=native
            )

    async def _bot_receives(self, event: CanonicalEvent, bot_address: str) -> None:
        """An event to the bot: a message gets an answer, a contact request is granted,
        everything else is dropped. The bot never answers a bot, nor a failure (no
        loops). The answer comes from the bot that was written to, so the sender sees
        it from the very contact (own id or alias) they wrote to."""
        if self.is_bot(event.sender):
            return
        replies: list[CanonicalEvent]
        if isinstance(event, ContactRequest):
            replies = [
                Authorization(
                    sender=bot_address,
                    recipient=event.sender,
                    granted=True,
                    trace_id=event.trace_id,
                )
            ]
        elif isinstance(event, Message):
            try:
                text = await bot.answer(self, event.sender, event.body)
            except Exception as exc:
                if is_outage(exc) or isinstance(exc, ServiceUnavailable):
                    raise  # the store is away: refused like any request, logged once
                log.failure("bot: answering {sender} failed", sender=event.sender)
                text = bot.FAILED
            # Never cut: an answer longer than one canonical message is several, in
            # order; each is split again for the sender's client like any message.
            replies = [
                Message(
                    sender=bot_address, recipient=event.sender, body=part, trace_id=event.trace_id
                )
                for part in split_text(text, MAX_BODY_CHARS)
            ]
        else:
            return
        for reply in replies:
            # A reply that cannot be delivered is not reported back to the bot.
            policy = dataclasses.replace(router.policy(reply), report_failure=False)
            await self._deliver(reply, policy)

    # ---- routing

    def _lock_for(self, sender: str) -> asyncio.Lock:
        lock = self._sender_locks.get(sender)
        if lock is None:
            lock = self._sender_locks[sender] = asyncio.Lock()
        return lock

    async def submit(self, event: CanonicalEvent) -> None:
        lock = self._lock_for(event.sender)
        self._sender_waiting[event.sender] = self._sender_waiting.get(event.sender, 0) + 1
        try:
            async with lock:
                if isinstance(event, Authorization):
                    await self._record_consent(event)
                elif isinstance(event, Message):
                    await self._mark_active(event.sender)
                await self._route(event)
        finally:
            left = self._sender_waiting[event.sender] - 1
            if left:
                self._sender_waiting[event.sender] = left
            else:
                del self._sender_waiting[event.sender]
                self._sender_locks.pop(event.sender, None)

    async def _mark_active(self, address: str) -> None:
        """Writing a message makes that session the most recently active (a linked
        person is reached where they last wrote). Written at most every
        ``ACTIVE_EVERY`` seconds per session: one Redis write, not one per message."""
        now = time.monotonic()
        for session_id in list(self._local_by_address.get(address, ())):
            if now - self._touched.get(session_id, 0.0) < ACTIVE_EVERY:
                continue
            self._touched[session_id] = now
            local = self.local.get(session_id)
            if local is not None:
                await self.store.delivery.update_session(local.info, time.time())

    async def _route(self, event: CanonicalEvent) -> None:
        policy = router.policy(event)
        reason = router.refusal(event)
        if reason is not None:
            await self._refuse(event, reason, policy.report_failure)
            return
        target = await self.resolve(event.recipient)
        if target is None:
            await self._refuse(event, FailureReason.UNKNOWN_RECIPIENT, policy.report_failure)
            return
        reason = router.self_addressed(event.sender, target)
        if reason is not None:
            # Refused from the sender's own address (what was really written to), so no
            # alias of an alias is ever allocated to spell the failure.
            own = event.model_copy(update={"recipient": target})
            await self._refuse(own, reason, policy.report_failure)
            return
        if await self._confirm_bot(target):
            await self._bot_receives(event, target)
            return
        target_info = await self.facts.info(target)
        if target_info is not None and target_info.disabled:
            await self._refuse(event, FailureReason.DISABLED, policy.report_failure)
            return
        blocked = await self.facts.contact(target, event.sender)
        if blocked is not None and blocked.blocked:
            await self._refuse(event, FailureReason.BLOCKED, policy.report_failure)
            return
        linked = await self.facts.linked(target)
        if len(linked) > 1:
            online = {}
            for address in linked:
                if address == event.sender:
                    continue  # a person writing to their other address: never an echo
                online[address] = [
                    router.LiveSession(r.info, r.active) for r in await self._live_rows(address)
                ]
            target = router.choose_address(target, online, exclude=event.sender)
        routed = event.model_copy(update={"recipient": target, "hops": event.hops + 1})
        await self._deliver(routed, policy)

    async def _refuse(self, event: CanonicalEvent, reason: FailureReason, report: bool) -> None:
        if not report or isinstance(event, DeliveryFailure):
            return
        failure = router.failure_for(event, reason)
        sender_network, _ = split_address(event.sender)
        network, native = split_address(event.recipient)
        peer = (
            native
            if network == sender_network
            else await self.present_as(event.recipient, sender_network)
        )
        delivery = Delivery(event=failure, peer=peer, peer_display=peer)
        await self._deliver_prepared(failure, delivery, router.policy(failure))

    async def _deliver(self, event: CanonicalEvent, policy: router.KindPolicy) -> None:
        recipient_network, _ = split_address(event.recipient)
        peer = await self.present_as(event.sender, recipient_network)
        delivery = Delivery(event=event, peer=peer, peer_display=await self._display(event.sender))
        await self._deliver_prepared(event, delivery, policy)

    async def _deliver_prepared(
        self, event: CanonicalEvent, delivery: Delivery, policy: router.KindPolicy
    ) -> None:
        payload = encode_delivery(delivery)
        outcome = await self.store.delivery.deliver_or_queue(
            event.recipient, event.id, payload, policy.queue_offline, policy.dedupe
        )
        if outcome.kind == "full":
            await self._refuse(event, FailureReason.QUEUE_FULL, policy.report_failure)
            return
        if outcome.kind != "online":
            return
        live = await self._live(list(outcome.sessions))
        chosen = router.choose_session([router.LiveSession(r.info, r.active) for r in live])
        if chosen is None:
            await self._after_reclaims(r.info.node_id for r in outcome.sessions)
            if policy.queue_offline and not await self.store.delivery.queue_offline(
                event.recipient, payload
            ):
                await self._refuse(event, FailureReason.QUEUE_FULL, policy.report_failure)
            return
        if chosen.info.node_id == self._node_id:
            if await self._hand(chosen.info.session_id, delivery, payload):
                return
            if policy.queue_offline and not await self.store.delivery.queue_offline(
                event.recipient, payload
            ):
                await self._refuse(event, FailureReason.QUEUE_FULL, policy.report_failure)
            return
        if not await self.store.delivery.send_to_node(
            chosen.info.node_id, chosen.info.session_id, event.recipient, payload
        ):
            # That node was just declared dead (its rows are going): route again.
            await self._reroute_one(delivery)

    async def _hand(self, session_id: str, delivery: Delivery, payload: str = "") -> bool:
        """Give a live event to a local session: written to its link, or, while the
        session's offline backlog is still being written, parked at the end of its
        offline stream (durably, behind the backlog: order kept). False when the session
        or its connection is gone, or the park found the stream full."""
        local = self.local.get(session_id)
        if local is None:
            return False
        replay = local.replay
        if replay is None or not router.policy(delivery.event).queue_offline:
            return self._write_local(session_id, delivery)
        replay.park_started()
        try:
            return await self.store.delivery.queue_offline(
                local.info.address, payload or encode_delivery(delivery)
            )
        finally:
            replay.park_done()

    def _write_local(self, session_id: str, delivery: Delivery) -> bool:
        """Hand an event to a local link; False when the session or connection is gone.
        Typing goes only to links that show it (others drop it: ephemeral)."""
        local = self.local.get(session_id)
        if local is None:
            return False
        link = local.link
        event = delivery.event
        try:
            if isinstance(event, Typing):
                if local.shows_typing:
                    cast(ShowsTyping, link).show_typing(delivery.peer, event)
                return True
            if isinstance(event, Message) and local.limit is not None:
                parts = split_message(event, local.limit)
                return all(
                    link.deliver(dataclasses.replace(delivery, event=part)) for part in parts
                )
            return link.deliver(delivery)
        except Exception:
            log.failure("link for session {sid} failed to take an event", sid=session_id)
            return False

    # ---- presence fan-out

    async def _fan_out_presence(
        self, address: str, only: str | None = None, revoked: bool = False
    ) -> None:
        """Tell everyone who follows this person (under any of their linked addresses)
        the merged presence, from the address each of them follows. ``only``: just that
        watcher. ``revoked``: consent may have been taken back, so a follower without
        it is told "offline" (otherwise followers without consent hear nothing)."""
        for followed in await self.facts.linked(address):
            watchers = await self.store.contacts.watchers(followed)
            for watcher in watchers if only is None else [w for w in watchers if w == only]:
                wants = await self.facts.contact(watcher, followed)
                if wants is None or not wants.subscribed:
                    continue  # the index names them, but they do not follow us
                if not await self._consents(followed, watcher):
                    if revoked:
                        gone = Presence(
                            sender=followed, recipient=watcher, state=PresenceState.OFFLINE
                        )
                        await self._deliver(gone, router.policy(gone))
                    continue
                state, text = await self.presence_with_text(followed, watcher)
                event = Presence(sender=followed, recipient=watcher, state=state, status_text=text)
                await self._deliver(event, router.policy(event))

    # ---- liveness (gateway/store/liveness.py; docs/adr/0014-liveness-and-outages.md)

    async def _node_alive(self, node_id: str) -> bool:
        if node_id == self._node_id:
            return self._running
        now = time.monotonic()
        cached = self._alive_cache.get(node_id)
        if cached is not None and now - cached[0] < 1.0:
            return cached[1]
        alive = await self.store.delivery.alive(node_id)
        self._alive_cache[node_id] = (now, alive)
        return alive

    async def _live(self, rows: list[SessionRow]) -> list[SessionRow]:
        out = []
        for row in rows:
            if row.info.node_id == self._node_id:
                if row.info.session_id in self.local:
                    out.append(row)
            elif await self._node_alive(row.info.node_id):
                out.append(row)
        return out

    async def _live_rows(self, address: str) -> list[SessionRow]:
        return await self._live(await self.store.delivery.sessions_of(address))

    # ---- node loops

    async def start(self) -> None:
        """Take a new epoch and lease, then finish what an earlier run under the same
        id left: its session rows go (those clients are gone) and every entry of its
        inbox, pending or unread, is routed again, before anything new is read."""
        self._running = True
        await self.facts.start()
        await self._claim_bots()
        leases = self.store.delivery.leases
        self._lease_from = time.monotonic()
        self._epoch = await leases.start(self._node_id, self._dead_after_ms)
        self._healthy_since = self._renewed = time.monotonic()
        await self._describe()
        await self.store.delivery.ensure_inbox(self._node_id)
        stale = await self.store.delivery.node_session_members(self._node_id)
        await self._finish_inbox(self._node_id)
        self._tasks = [
            asyncio.ensure_future(self._inbox_loop()),
            asyncio.ensure_future(self._heartbeat_loop()),
        ]
        if stale:
            self._tasks.append(asyncio.ensure_future(self._forget_stale(stale)))

    async def _forget_stale(self, stale: list[tuple[str, str]]) -> None:
        """The earlier run's session rows go one heartbeat after the start, not at
        once: until then senders append to our inbox, after what that run left, and
        the inbox loop queues it all offline in order; removed at once, a sender's
        next message would be queued before the ones still in the inbox."""
        await asyncio.sleep(self._heartbeat_seconds)
        try:
            for address, session_id in stale:
                await self.store.delivery.close_session(address, session_id, self._node_id)
            for address in sorted({address for address, _ in stale}):
                await self._fan_out_presence(address)
        except Exception as exc:
            if not is_outage(exc):
                raise
            self._unclosed.update({sid: address for address, sid in stale})

    async def stop(self) -> None:
        """Close local sessions, hand back what is still in our inbox, leave."""
        self._running = False
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        for replay in list(self._replays):
            replay.cancel()
        try:
            for session_id in list(self.local):
                await self.close_session(session_id)
            await self._finish_inbox(self._node_id)
            await self.store.delivery.forget_node_sessions(self._node_id)
            await self.store.delivery.forget_node(self._node_id)
        except Exception as exc:
            if not (is_outage(exc) or isinstance(exc, ServiceUnavailable)):
                raise
            # Left as a dead node's: the others reclaim it once Redis is back.
            log.warn(
                "stopping without Redis ({why}): the other nodes reclaim this one's work",
                why=describe_outage(exc),
            )
        await self.facts.stop()
        self.login_guard.close()

    async def _describe(self) -> None:
        await self.store.delivery.describe_node(
            self._node_id,
            {"host": socket.gethostname(), "pid": str(os.getpid()), "started": repr(self.started)},
        )

    async def _finish_inbox(self, node_id: str) -> int:
        """Claim every entry of ``node_id``'s inbox not yet acknowledged (pending with
        any consumer, or unread), route each again, acknowledge it. Each is put in an
        offline queue at most once, so a retry after a failure halfway duplicates
        nothing there. Returns how many were routed."""
        entries = await self.store.delivery.claim_all(node_id, self._node_id)
        await self._reroute(entries, wait=False)
        await self.store.delivery.ack_inbox(node_id, [e.entry_id for e in entries])
        return len(entries)

    async def _heartbeat_loop(self) -> None:
        """Renew the lease every ``heartbeat_seconds``; while Redis is away, retry from
        0.1 s doubling to 5 s (never longer than a heartbeat), telling the outage
        tracker rather than the log."""
        delay = 0.0
        while self._running:
            try:
                await self._heartbeat_once()
                await self._reclaim_dead_nodes()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._healthy_since = None
                self._loop_failed(exc, "heartbeat")
                delay = min(next_delay(delay), self._heartbeat_seconds)
                await asyncio.sleep(delay)
                continue
            delay = 0.0
            await asyncio.sleep(self._heartbeat_seconds)

    async def _heartbeat_once(self) -> None:
        leases = self.store.delivery.leases
        sent = time.monotonic()
        if await leases.renew(self._node_id, self._epoch, self._dead_after_ms):
            self._lease_from = sent
            if self._fenced:  # an earlier rejoin failed halfway: finish it
                await self._rejoin()
        else:
            await self._rejoin()
        self.outage.succeeded()
        now = time.monotonic()
        if self._healthy_since is None or (now - self._renewed) * 1000 > self._dead_after_ms:
            # Back from an outage, or a renewal that hung (Redis stopped, this loop
            # stalled): the others may have been cut off as long; give them time.
            self._healthy_since = now
        self._renewed = now
        await self._describe()
        await self._close_unclosed()

    async def _close_unclosed(self) -> None:
        """Remove the rows of sessions that ended while Redis was away."""
        for session_id, address in list(self._unclosed.items()):
            await self.store.delivery.close_session(address, session_id, self._node_id)
            del self._unclosed[session_id]
            await self._fan_out_presence(address)

    def _loop_failed(self, exc: BaseException, what: str) -> None:
        if is_outage(exc):
            self.outage.failed(exc)
            return
        now = time.monotonic()
        if now - self._loop_logged.get(what, -3600.0) >= 60.0:  # a bug: once a minute
            self._loop_logged[what] = now
            log.failure("{what} failed; retrying", what=what)

    async def _rejoin(self) -> None:
        """Our lease lapsed and another node declared us dead (we were cut off from
        Redis, or stalled, for longer than ``dead_after``): it removed our session rows
        and took our inbox. Wait until its reclaim is over, take a new epoch, and
        register every local session again; what was queued offline for them
        meanwhile is written to them now, so no live session stays unreachable.
        Fails (Redis away again)? The node stays fenced and the next heartbeat
        tries again."""
        self._fenced = True
        leases = self.store.delivery.leases
        if not self._rejoining:
            self._rejoining = True
            log.warn(
                "node {node}: declared dead while cut off (epoch {epoch}); registering "
                "its {n} sessions again",
                node=self._node_id,
                epoch=self._epoch,
                n=len(self.local),
            )
        waited = 0.0
        while await leases.reclaim_running(self._node_id) and waited < RECLAIM_LOCK_MS / 1000:
            await asyncio.sleep(0.2)
            waited += 0.2
        self._lease_from = time.monotonic()
        self._epoch = await leases.start(self._node_id, self._dead_after_ms)
        self._healthy_since = self._renewed = time.monotonic()
        await self.store.delivery.ensure_inbox(self._node_id)
        await self._finish_inbox(self._node_id)
        for session_id in list(self.local):
            await self._register_again(session_id)
        self._fenced = self._rejoining = False
        for address in list(self._local_by_address):
            await self._fan_out_presence(address)

    async def _register_again(self, session_id: str) -> None:
        """A fenced node's session registers again under its new epoch; what was queued
        offline for it meanwhile is streamed as at login (live events park behind it,
        so order holds). A replay already under way for it carries on instead."""
        local = self.local.get(session_id)
        if local is None:
            return
        replaying = local.replay is not None
        if not replaying:
            local.replay = _Replay()
        await self.store.delivery.open_session(local.info)
        if not replaying:
            self._start_replay(session_id)

    async def _inbox_loop(self) -> None:
        """Read this node's inbox. After a failed round, the entries this node had
        read and not acknowledged are finished first (XREADGROUP from 0), so nothing
        stays pending; only then are new ones read. Redis away: back off as the
        heartbeat does."""
        delay = 0.0
        own_pending = True
        while self._running:
            if self._fenced:
                await asyncio.sleep(0.2)
                own_pending = True
                continue
            epoch = self._epoch
            try:
                if own_pending:
                    entries = await self.store.delivery.read_own_pending(
                        self._node_id, self._node_id
                    )
                    own_pending = bool(entries)
                else:
                    entries = await self.store.delivery.read_inbox(
                        self._node_id, self._node_id, block_ms=1000
                    )
                if not await self._consume(entries, epoch):
                    own_pending = True
                self.outage.succeeded()
                delay = 0.0
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                own_pending = True
                if "NOGROUP" in str(exc):  # reclaimed while we were cut off: _rejoin
                    await asyncio.sleep(0.2)
                    continue
                self._loop_failed(exc, "inbox read")
                delay = next_delay(delay)
                await asyncio.sleep(delay)

    async def _lease_holds(self) -> bool:
        """Is our lease certainly still ours? Renewed less than half ``dead_after``
        ago (timed from before the renewal was sent): yes, nobody can have declared
        us dead. Else renew now; refused: we were declared dead (say this process
        was stopped), what we read was reclaimed by another node, and the heartbeat
        registers us again."""
        if (time.monotonic() - self._lease_from) * 2000 < self._dead_after_ms:
            return True
        sent = time.monotonic()
        if await self.store.delivery.leases.renew(self._node_id, self._epoch, self._dead_after_ms):
            self._lease_from = sent
            return True
        self._fenced = True
        return False

    async def _consume(self, entries: list[InboxEntry], epoch: int) -> bool:
        """Write inbox entries read under ``epoch`` to their sessions, then ack them.
        False when it stopped early: the entries are left pending (declared dead
        meanwhile, another node reclaimed them; or they are re-read later)."""
        if entries and not await self._lease_holds():
            return False  # reclaimed by the node that declared us dead: not ours
        acked = []
        finished = True
        for entry in entries:
            if self._fenced or epoch != self._epoch:
                finished = False  # read before we were declared dead: reclaimed
                break
            if entry.entry_id in self._consumed:  # written before a failed ack: once
                acked.append(entry.entry_id)
                continue
            try:
                delivery = decode_delivery(entry.payload)
            except ValueError:
                log.error("dropping unreadable inbox entry {id}", id=entry.entry_id)
                acked.append(entry.entry_id)
                continue
            event_key = f"{entry.session_id}|{delivery.event.id}"
            if event_key in self._consumed:  # sent again by a reclaim that was retried
                acked.append(entry.entry_id)
                continue
            if not await self._hand(entry.session_id, delivery, entry.payload):
                # The session went away meanwhile: route again from scratch.
                await self._reroute_one(delivery)
            self._consumed[entry.entry_id] = None
            self._consumed[event_key] = None
            while len(self._consumed) > CONSUMED_KEPT:
                self._consumed.popitem(last=False)
            acked.append(entry.entry_id)
        await self.store.delivery.ack_inbox(self._node_id, acked)
        return finished

    async def _reroute_one(self, delivery: Delivery, wait: bool = True) -> None:
        """Route an event again from scratch. ``wait``: before queueing it offline,
        wait for any reclaim of a node holding the recipient's rows (not for the
        reclaimer itself, routing that node's entries)."""
        event = delivery.event
        policy = router.policy(event)
        rows = await self.store.delivery.sessions_of(event.recipient)
        live = await self._live(rows)
        chosen = router.choose_session([router.LiveSession(r.info, r.active) for r in live])
        payload = encode_delivery(delivery)
        if chosen is not None and chosen.info.node_id != self._node_id:
            if await self.store.delivery.send_to_node(
                chosen.info.node_id, chosen.info.session_id, event.recipient, payload
            ):
                return
            if wait:
                await self._after_reclaims([chosen.info.node_id])
        elif chosen is not None and await self._hand(chosen.info.session_id, delivery, payload):
            return
        elif wait:
            await self._after_reclaims(r.info.node_id for r in rows)
        if policy.queue_offline and not await self.store.delivery.queue_offline_once(
            event.recipient, event.id, payload
        ):
            await self._refuse(event, FailureReason.QUEUE_FULL, policy.report_failure)

    async def _reroute(self, entries: list[InboxEntry], wait: bool = True) -> None:
        for entry in entries:
            try:
                await self._reroute_one(decode_delivery(entry.payload), wait)
            except ValueError:
                log.error("dropping unreadable inbox entry {id}", id=entry.entry_id)
        if entries:
            log.info("re-routed {n} undelivered entries", n=len(entries))

    async def _reclaim_dead_nodes(self) -> None:
        """Declare dead the nodes whose lease expired, and reclaim them; but only once
        this node has itself renewed its lease without a break for ``dead_after``:
        after an outage every lease has lapsed, and the others need that long to
        renew theirs (a node back from a partition proves first that it lives)."""
        if self._healthy_since is None:
            return
        if (time.monotonic() - self._healthy_since) * 1000 < self._dead_after_ms:
            return
        leases = self.store.delivery.leases
        for node_id in await self.store.delivery.nodes():
            if node_id == self._node_id:
                continue
            if not await leases.declare_dead(node_id, self._node_id, RECLAIM_LOCK_MS):
                continue
            try:
                await self._reclaim(node_id)
            finally:
                await leases.release(node_id, self._node_id)

    async def _reclaim(self, node_id: str) -> None:
        """A node declared dead: its session rows go, then every entry of its inbox
        (nothing more can arrive: it is fenced) is routed again exactly once."""
        self._alive_cache.pop(node_id, None)
        routed = await self._finish_inbox(node_id)
        # Rows last: while they exist, a sender finding the node dead waits for this
        # reclaim (_after_reclaims), so its later events queue after these.
        affected = await self.store.delivery.forget_node_sessions(node_id)
        await self.store.delivery.forget_node(node_id)
        log.warn(
            "node {node} stopped renewing its lease: declared dead; {sessions} sessions "
            "removed, {routed} undelivered entries routed again",
            node=node_id,
            sessions=len(affected),
            routed=routed,
        )
        for address in affected:
            await self._fan_out_presence(address)

    async def _after_reclaims(self, node_ids: Iterable[str]) -> None:
        """Wait until none of ``node_ids`` (holding the recipient's rows, not live) is
        being reclaimed by another node: what such a node had accepted is being put
        back into offline queues, and an event queued now must come after it, or a
        sender's order breaks. No wait unless a node is being reclaimed right now."""
        leases = self.store.delivery.leases
        for node_id in set(node_ids) - {self._node_id}:
            waited = 0.0
            while waited < RECLAIM_LOCK_MS / 1000 and await leases.reclaim_running(node_id):
                await asyncio.sleep(0.05)
                waited += 0.05

    def _report_unavailable(self, event: CanonicalEvent) -> None:
        """The store is unreachable while a local user submits: tell them through
        their own link, in their network's terms, without touching Redis."""
        if not router.policy(event).report_failure or isinstance(event, DeliveryFailure):
            return
        failure = router.failure_for(event, FailureReason.UNAVAILABLE)
        _, peer = split_address(event.recipient)
        for session_id in list(self._local_by_address.get(event.sender, ())):
            self._write_local(session_id, Delivery(event=failure, peer=peer, peer_display=peer))


RECLAIM_LOCK_MS = 60_000
"""How long a reclaimer holds a dead node's lock at most (it releases it when done)."""
CONSUMED_KEPT = 20_000
"""Inbox entries (and session|event ids) remembered as written, so an entry re-read
after a failed ack, or an event sent again by a retried reclaim, is not written twice."""

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _refusing_during_outages(
    method: Callable[Concatenate[GatewayCore, _P], Awaitable[_R]],
) -> Callable[Concatenate[GatewayCore, _P], Coroutine[Any, Any, _R]]:
    """A CoreServices method that, when Redis cannot be reached, raises
    ``ServiceUnavailable`` (the adapter answers "try later" and logs nothing) and
    counts the refusal; the outage itself is logged once by the tracker. A refused
    ``submit`` is also reported to the sender through their link."""

    async def call(self: GatewayCore, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return await method(self, *args, **kwargs)
        except ServiceUnavailable:  # from a service method the core called itself
            if method.__name__ == "submit" and args:
                self._report_unavailable(cast(CanonicalEvent, args[0]))
            raise
        except Exception as exc:
            if not is_outage(exc):
                raise
            self.outage.failed(exc)
            self.outage.refuse()
            if method.__name__ == "submit" and args:
                self._report_unavailable(cast(CanonicalEvent, args[0]))
            raise ServiceUnavailable(describe_outage(exc)) from None

    functools.update_wrapper(call, method)
    return call


def _core_service_methods() -> list[str]:
    """The coroutine methods adapters call: those of adapters.contract.CoreServices."""
    return sorted(
        name
        for name, value in vars(CoreServices).items()
        if not name.startswith("_") and inspect.iscoroutinefunction(value)
    )


for _name in _core_service_methods():
    setattr(GatewayCore, _name, _refusing_during_outages(getattr(GatewayCore, _name)))
