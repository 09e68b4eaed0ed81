"""The adapter contract: what a network adapter implements and what the core offers it.

An adapter is a factory registered under the entry-point group ``gateway.adapters``
(name = network, value = ``module:callable``). The runtime calls it with no arguments
and gets an :class:`Adapter`; ``start`` receives the :class:`CoreServices` and the
adapter's own settings table from the config file (``[adapters.<network>]``), opens
its listeners and returns them so the runtime can log what listens where.

Each logged-in client connection is a :class:`ClientLink` that the adapter registers
with ``CoreServices.open_session``. The core delivers canonical events to it. Optional
capabilities are separate small protocols (:class:`ShowsTyping`, :class:`LimitsBody`,
:class:`MeasuresBody`); the core checks ``isinstance`` before it uses one and degrades
by the rules in docs/adr/0003-capabilities.md when a link lacks it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from twisted.internet.interfaces import IListeningPort, IReactorCore

from schema.events import CanonicalEvent, FormatSpan, PresenceState, Typing
from schema.records import (
    AccountInfo,
    ContactEntry,
    LoginProof,
    LoginResult,
    PresencePolicy,
    ScramParameters,
)

ENTRY_POINT_GROUP = "gateway.adapters"

# Bounds of CoreServices.set_adapter_data, per owner (gateway/store/adapter_data.py).
MAX_ADAPTER_DATA_KEYS = 64
MAX_ADAPTER_DATA_BYTES = 64 * 1024


class ServiceUnavailable(Exception):
    """The core cannot reach its store (Redis) right now: the call did nothing.

    The adapter answers "try later" in its network's terms and logs nothing (the core
    logs one line when an outage starts and one when it ends, with counts). From
    ``submit`` it needs no answer either: the core has already told the sender through
    their link (a ``DeliveryFailure`` with reason ``unavailable``)."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """A canonical event on its way to one client.

    ``peer`` is the other party as the recipient's network spells it: the native id
    when the sender is on the same network, else the sender's alias there.
    ``peer_display`` is the sender's own display name as the core knows it (empty
    when it has none); the adapter names the peer by its network's rule (MSN:
    adapters.msn.translate.contact_name, which adds the network label).
    """

    event: CanonicalEvent
    peer: str
    peer_display: str = ""
    offline: bool = False
    """It waited in the recipient's offline queue (the replay after login): networks
    that show offline messages differently (ICQ's offline store, a time stamp) do so."""


@dataclass(frozen=True, slots=True)
class OpenedSession:
    """What ``open_session`` returns: the session id. ``offline`` stays empty: the core
    streams what waited offline through ``link.deliver`` (``Delivery.offline`` set),
    oldest first, in batches paced by the link (:class:`FlowControlled`), and holds live
    events to the session behind that backlog until it is written, so none overtakes it
    (docs/adr/0015-delivery-contract.md). A link must accept events from the moment
    ``open_session`` is called."""

    session_id: str
    offline: Sequence[Delivery] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class TlsCertificate:
    """A certificate and key (PEM files) for an adapter's TLS listener.

    ``sha256`` is the certificate's fingerprint (colon-separated hex) for users to
    check; ``self_made``: the gateway made it (self-signed); ``created``: just now."""

    cert_path: str
    key_path: str
    sha256: str
    self_made: bool
    created: bool = False


@dataclass(frozen=True, slots=True)
class Listener:
    description: str
    port: IListeningPort


class ClientLink(Protocol):
    """One logged-in client connection as the core sees it."""

    def deliver(self, delivery: Delivery) -> bool:
        """Write the event to the client; False when the connection is gone (the core
        then keeps the event offline)."""
        ...


@runtime_checkable
class FlowControlled(Protocol):
    """A link that says when its client is not keeping up, so the core paces what it
    streams (the offline backlog at login) instead of piling it into memory.

    ``writable``: the link can take more now. ``when_writable(callback)``: call
    ``callback`` once, as soon as it can (at once if it already can), or when the
    connection is gone (then ``deliver`` returns False)."""

    @property
    def writable(self) -> bool: ...

    def when_writable(self, callback: Callable[[], None]) -> None: ...


@runtime_checkable
class ShowsTyping(Protocol):
    """A link whose network can show typing notifications."""

    def show_typing(self, peer: str, event: Typing) -> bool: ...


@runtime_checkable
class LimitsBody(Protocol):
    """A link whose network has a maximum message length (in characters)."""

    @property
    def max_body_chars(self) -> int: ...


@runtime_checkable
class MeasuresBody(Protocol):
    """A link whose network limits a message's size in its own wire units (bytes
    after charset encoding, visible replacement and markup escaping).

    ``body_size`` is what the link will really write for that body and those spans
    (one part of a message, spans re-based to it); the core splits a message so each
    part measures at most ``max_body_size``. A link may also be :class:`LimitsBody`:
    then a part meets both limits."""

    @property
    def max_body_size(self) -> int: ...

    def body_size(self, body: str, spans: tuple[FormatSpan, ...] = ()) -> int: ...


class CoreServices(Protocol):
    """What the core offers an adapter. Every method is a coroutine on the reactor's
    asyncio loop; wrap with ``Deferred.fromCoroutine`` in Twisted code. Any of them
    raises :class:`ServiceUnavailable` while the store cannot be reached."""

    @property
    def node_id(self) -> str: ...

    async def account(self, address: str) -> AccountInfo | None: ...

    async def check_login(self, address: str, proof: LoginProof, source: str = "") -> LoginResult:
        """Check a login. ``source`` is the client's host (its IP address as the
        adapter saw it; empty if unknown): logins are throttled per source and per
        account, and a refused one comes back as ``LoginOutcome.THROTTLED``, to be
        answered in the network's "try later" terms."""
        ...

    async def scram_parameters(self, address: str) -> ScramParameters: ...

    async def open_session(
        self,
        address: str,
        link: ClientLink,
        presence: PresenceState = PresenceState.ONLINE,
        status_text: str = "",
    ) -> OpenedSession: ...

    async def close_session(self, session_id: str) -> None: ...

    async def return_undelivered(self, session_id: str, deliveries: Sequence[Delivery]) -> None:
        """Events the core handed to ``session_id``'s link (``deliver`` returned True)
        that the link could not write after all (MSN: a ring nobody answered): back to
        the recipient's offline queue, in order, once; one that does not fit there goes
        back to its sender as a failure (docs/adr/0015-delivery-contract.md)."""
        ...

    async def set_presence(
        self, session_id: str, presence: PresenceState, status_text: str = ""
    ) -> None: ...

    async def submit(self, event: CanonicalEvent) -> None:
        """Route an event a local user produced. Failures come back to the sender as
        ``DeliveryFailure`` events through their link (also when the store is
        unreachable: then it raises :class:`ServiceUnavailable` as well, after the
        failure was written, so the adapter adds nothing)."""
        ...

    async def resolve(self, address: str) -> str | None:
        """The real address behind an address (itself for an account, the aliased
        user for an alias); None when nobody owns it."""
        ...

    async def present_as(self, address: str, network: str) -> str:
        """The native id under which ``address`` appears in ``network`` (its own id
        when it lives there, else its alias, allocated on first use)."""
        ...

    async def contacts(self, owner: str) -> Sequence[ContactEntry]: ...

    async def put_contact(self, owner: str, entry: ContactEntry) -> None: ...

    async def remove_contact(self, owner: str, contact: str) -> None: ...

    async def presence_of(self, address: str, watcher: str) -> PresenceState:
        """``address``'s presence as ``watcher`` may see it (offline without consent)."""
        ...

    async def set_display_name(self, address: str, display_name: str) -> None:
        """``address`` renamed themselves from their client (MSN ``PRP MFN``): the
        account's display name changes and their followers are told (with presence)."""
        ...

    async def presence_for_writer(self, address: str, writer: str) -> PresenceState:
        """``address``'s presence for deciding whether ``writer`` may start a
        conversation now: its real presence, consent or not (anyone not blocked may
        write first); OFFLINE when it blocks ``writer``, and (as to anyone) when it is
        invisible (docs/adr/0009-first-contact.md)."""
        ...

    async def presence_policy(self, owner: str) -> PresencePolicy:
        """Who besides the allowed contacts may see ``owner``'s presence."""
        ...

    async def set_presence_policy(self, owner: str, policy: PresencePolicy) -> None: ...

    async def watchers(self, address: str) -> Sequence[str]:
        """Who has ``address`` on their contact list (MSN's reverse list)."""
        ...

    async def adapter_data(self, owner: str) -> Mapping[str, str]:
        """What ``owner``'s own network adapter stored for them with
        :meth:`set_adapter_data` (settings the core does not model); empty when none.
        Kept in Redis, so it outlives the process and every node sees it."""
        ...

    async def set_adapter_data(self, owner: str, values: Mapping[str, str | None]) -> None:
        """Set fields of ``owner``'s adapter data (None deletes one), all or nothing.
        Values are opaque strings (encode them, e.g. as JSON). Bounded to
        ``MAX_ADAPTER_DATA_KEYS`` fields and ``MAX_ADAPTER_DATA_BYTES`` bytes (UTF-8
        lengths of names and values) per owner: a write that would exceed that, or
        for an account that does not exist, raises ``ValueError`` and changes nothing;
        the adapter answers with its network's error."""
        ...

    async def tls_certificate(self, host_names: Sequence[str]) -> TlsCertificate:
        """This node's own certificate for a TLS listener, valid for ``host_names`` (the
        names the adapter's clients connect to) besides 127.0.0.1 and localhost: made
        self-signed on first use, kept under the data directory, made again when a
        name is missing. For adapters whose clients need TLS and no certificate is
        configured (docs/adr/0008-https-login.md)."""
        ...

    async def register_account(
        self, network: str, password: str, display_name: str
    ) -> AccountInfo | None:
        """Self-registration: a new account with a freshly allocated numeric id, or
        None when the admin has not allowed it for ``network``."""
        ...

    async def find_accounts(
        self, network: str, text: str, limit: int = 20
    ) -> Sequence[AccountInfo]:
        """Accounts of ``network`` whose native id or display name matches ``text``."""
        ...


class Adapter(Protocol):
    """A network. ``network`` is the address prefix it owns (``oscar``, ``msn``...)."""

    network: str

    async def start(
        self, core: CoreServices, reactor: IReactorCore, settings: Mapping[str, object]
    ) -> Sequence[Listener]: ...

    async def stop(self) -> None:
        """Stop accepting, say goodbye to connected clients, close listeners."""
        ...
