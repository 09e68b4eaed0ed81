"""MSNP connection state machines (notification server and switchboard), sans-IO.

Theory of operation
-------------------
A :class:`NotificationSession` is one client's notification-server connection. It
is fed decoded commands (``receive(frame, now)``) and answers with a list of
actions: :class:`Send` a frame, :class:`Close` the connection, or a request the
glue must carry out against the core (check a password, load an account, go
online, sync lists, edit lists ...). The glue later reports results back with the
``login_accepted`` / ``login_refused`` methods. Time only enters as ``now``;
deadlines (login, challenge answer) are exposed by ``get_timer()`` and fired by
``handle_timer(now)``.

States::

    CONNECTED --VER--> VERSIONED --USR MD5 I--> MD5_SALTED ---USR MD5 S--+
                          |   \\--USR TWN I--> TWN_CHALLENGED --USR TWN S-+
                          |                                               v
                          |                                        AUTHENTICATING
                          |                          login_accepted /     \\ login_refused
                          v                                       v        v
                        (CVR, INF, PNG stay)               AUTHENTICATED  CLOSED
                                                                 |
                                                                CHG
                                                                 v
                                                               ONLINE (lists, CHG, XFR, QRY, UUX ...)

Every (state, input) pair is listed in ``NS_TRANSITIONS``; a pair that is missing
is a protocol error: the client gets a numeric error and the connection closes.
Inputs are the command verb, except ``USR`` which is ``USR <mechanism> <stage>``.
Commands we know but do not implement get error 502 and change nothing.

A :class:`SwitchboardSession` is the same for one switchboard connection: ``USR``
(after ``XFR SB``) or ``ANS`` (after ``RNG``) with a signed cookie, then ``CAL``,
``MSG`` and ``OUT``. The room itself (participants, queued messages) is
:mod:`adapters.msn.switchboard`.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from xml.sax.saxutils import unescape

from adapters.msn import challenge, lists, passport
from adapters.msn.codec import Command, ErrorReply, Frame, MsnProtocolError
from adapters.msn.tokens import TokenSigner
from adapters.msn.translate import decode_name, encode_name, presence_from_msn
from schema.addresses import AddressError, make_address
from schema.events import PresenceState
from schema.records import SaltedMd5Proof

MIN_VERSION = 2
MAX_VERSION = 12
LOGIN_TIMEOUT = 60.0
CHALLENGE_TIMEOUT = 60.0
IDLE_TIMEOUT = 900.0
TICKET_PURPOSE = "passport-ticket"
XFR_PURPOSE = "sb-xfr"
RNG_PURPOSE = "sb-rng"
COOKIE_LIFETIME = 120.0
MAX_STATUS_TEXT = 512

SUPPORTED_VERSIONS = tuple(range(MAX_VERSION, MIN_VERSION - 1, -1))
# Commands a client may send that the gateway answers with 502 ("command disabled")
# and otherwise ignores, keeping the connection: the directory search (FND; the
# service had retired it) and MSNP13+ commands no MSNP2-12 client sends
# (docs/protocols/msn.md, "Every command the notification server accepts").
UNSUPPORTED_VERBS = frozenset({"FND", "FQY", "ADL", "RML", "UUN", "UUM", "PUT", "NOT", "SDG"})
OWNER_PROPERTIES = frozenset({"MFN", "PHH", "PHW", "PHM", "MOB", "MBE", "WWE", "HSB"})
"""PRP properties (the user's own): friendly name, phones, mobile/direct flags."""
CONTACT_PROPERTIES = frozenset({"MFN", "PHH", "PHW", "PHM", "MOB", "MBE", "WWE", "HSB"})
"""SBP properties (a contact's, in the user's own cache)."""
MAX_PROPERTY_VALUE = 387  # URL-encoded, like a friendly name
URL_SERVICES = frozenset(
    {
        "PASSWORD", "INBOX", "COMPOSE", "MESSAGE", "FOLDERS", "PERSON", "MOBILE", "CHGMOB",
        "PROFILE", "N2PACCOUNT", "N2PFUND", "CHAT", "ADDRBOOK", "ADVSEARCH", "INTSEARCH",
    }
)  # fmt: skip
BLANK_URL = "about:blank"
"""What ``URL`` answers: the gateway has no web services behind those pages."""
SHIELDS_XML = (
    b'<?xml version="1.0" encoding="utf-8" ?><config><shield><cli maj="7" min="0" '
    b'minbld="0" maxbld="9999" deny=" " /></shield><block></block></config>'
)
"""``GCF Shields.xml``: no feature of any client version is blocked."""


# ---- actions


@dataclass(frozen=True, slots=True)
class Send:
    frame: Frame


@dataclass(frozen=True, slots=True)
class Close:
    """Close the connection after writing what came before. ``reason`` is for logs."""

    reason: str


@dataclass(frozen=True, slots=True)
class CheckPassword:
    address: str
    proof: SaltedMd5Proof


@dataclass(frozen=True, slots=True)
class LoadAccount:
    """The Passport ticket was valid: look the account up (and refuse if disabled)."""

    address: str


@dataclass(frozen=True, slots=True)
class GoOnline:
    """The first CHG: open the core session, then send ILN lines with ``trid``."""

    trid: int
    presence: PresenceState
    status_text: str


@dataclass(frozen=True, slots=True)
class ChangePresence:
    presence: PresenceState
    status_text: str


@dataclass(frozen=True, slots=True)
class SyncLists:
    trid: int


@dataclass(frozen=True, slots=True)
class EditLists:
    trid: int
    edit: lists.ListEdit


@dataclass(frozen=True, slots=True)
class SettingChanged:
    name: str  # "GTC" or "BLP"
    value: str


@dataclass(frozen=True, slots=True)
class PropertyChanged:
    """``PRP`` (``contact`` None: the user's own) or ``SBP`` (``contact``: the contact
    id the client sent, a GUID or a handle): keep it for the next ``SYN``. ``value``
    None clears it. Already answered: the glue only stores. The user's own ``MFN``
    (``PRP MFN``, ``REA`` of oneself) renames the person: the core's display name."""

    contact: str | None
    name: str
    value: str | None


@dataclass(frozen=True, slots=True)
class QueryList:
    """MSNP2-7 ``LST trid <list>`` / ``LSG trid``: send that part of the lists."""

    trid: int
    verb: str  # "LST" or "LSG"
    list_name: str = ""


Action = (
    Send
    | Close
    | CheckPassword
    | LoadAccount
    | GoOnline
    | ChangePresence
    | SyncLists
    | EditLists
    | SettingChanged
    | PropertyChanged
    | QueryList
)


class NsState(Enum):
    CONNECTED = "connected"
    VERSIONED = "versioned"
    MD5_SALTED = "md5-salted"
    TWN_CHALLENGED = "twn-challenged"
    AUTHENTICATING = "authenticating"
    AUTHENTICATED = "authenticated"
    ONLINE = "online"
    CLOSED = "closed"


_S = NsState
_LIVE_VERBS = (
    "SYN", "GTC", "BLP", "ADD", "ADC", "REM", "ADG", "RMG", "REG", "REA", "PRP", "UUX",
    "QRY", "XFR", "PNG", "SBP", "SBS", "URL", "SND", "SDC", "IMS", "GCF", "LST", "LSG",
)  # fmt: skip
NS_TRANSITIONS: dict[tuple[NsState, str], NsState] = {
    (_S.CONNECTED, "VER"): _S.VERSIONED,
    (_S.VERSIONED, "CVR"): _S.VERSIONED,
    (_S.VERSIONED, "INF"): _S.VERSIONED,
    (_S.VERSIONED, "PNG"): _S.VERSIONED,
    (_S.VERSIONED, "USR MD5 I"): _S.MD5_SALTED,
    (_S.VERSIONED, "USR TWN I"): _S.TWN_CHALLENGED,
    (_S.MD5_SALTED, "USR MD5 S"): _S.AUTHENTICATING,
    (_S.TWN_CHALLENGED, "USR TWN S"): _S.AUTHENTICATING,
    (_S.TWN_CHALLENGED, "PNG"): _S.TWN_CHALLENGED,
    (_S.AUTHENTICATING, "PNG"): _S.AUTHENTICATING,
    (_S.AUTHENTICATING, "login-accepted"): _S.AUTHENTICATED,
    (_S.AUTHENTICATING, "login-refused"): _S.CLOSED,
    (_S.AUTHENTICATED, "CHG"): _S.ONLINE,
    (_S.ONLINE, "CHG"): _S.ONLINE,
    **{(_S.AUTHENTICATED, verb): _S.AUTHENTICATED for verb in _LIVE_VERBS},
    **{(_S.ONLINE, verb): _S.ONLINE for verb in _LIVE_VERBS},
    **{(state, "OUT"): _S.CLOSED for state in NsState if state is not _S.CLOSED},
}


NsHandler = Callable[[Command, float], tuple[list[Action], bool]]
SbHandler = Callable[[Command, float], list["SbAction"]]


@dataclass(frozen=True, slots=True)
class NsConfig:
    signer: TokenSigner
    switchboard_address: str  # "host:port" clients connect to for switchboards
    redirect_to: str | None = None  # "host:port": answer USR I with XFR NS there
    login_timeout: float = LOGIN_TIMEOUT  # a connection not logged in by then is closed


def _email_address(handle: str) -> str | None:
    try:
        return make_address("msn", handle)
    except AddressError:
        return None


@dataclass
class NotificationSession:
    config: NsConfig
    now: float
    state: NsState = NsState.CONNECTED
    version: int = 0
    handle: str = ""
    display_name: str = ""
    presence: PresenceState = PresenceState.OFFLINE
    status_text: str = ""
    serial: int = 0
    accepts_switchboards: bool = True  # IMS OFF: nobody may ring this user
    _salt: str = ""
    _login_trid: int = 0
    _challenge: str | None = None
    _challenge_deadline: float | None = None
    _login_deadline: float | None = None
    _idle_deadline: float = 0.0
    _pending: list[Action] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._login_deadline = self.now + self.config.login_timeout
        self._idle_deadline = self.now + IDLE_TIMEOUT

    @property
    def address(self) -> str:
        return f"msn:{self.handle}"

    # ---- input

    def receive(self, frame: Frame, now: float) -> list[Action]:
        """Handle one client frame. Never raises for peer mistakes: they become
        an error reply and a Close."""
        if self.state is NsState.CLOSED:
            return []
        self._idle_deadline = now + IDLE_TIMEOUT
        if isinstance(frame, ErrorReply):
            return self._fail(lists.ERR_SYNTAX, None, "client sent an error line")
        key = self._input_key(frame)
        if (
            frame.verb in UNSUPPORTED_VERBS
            and (self.state, key) not in NS_TRANSITIONS
            and self.state in (NsState.AUTHENTICATED, NsState.ONLINE)
        ):
            return [Send(ErrorReply(lists.ERR_DISABLED, frame.trid))]
        target = NS_TRANSITIONS.get((self.state, key))
        if target is None:
            return self._fail(
                lists.ERR_NOT_EXPECTED if frame.verb.isalpha() else lists.ERR_SYNTAX,
                frame.trid,
                f"{key} not expected in state {self.state.value}",
            )
        handler: NsHandler = getattr(self, f"_on_{frame.verb.lower()}")
        try:
            actions, accepted = handler(frame, now)
        except MsnProtocolError as exc:
            return self._fail(exc.code, frame.trid, str(exc))
        if accepted:
            self.state = target
        return actions

    def _input_key(self, frame: Command) -> str:
        if frame.verb == "USR" and len(frame.args) >= 2:
            return f"USR {frame.args[0]} {frame.args[1]}"
        return frame.verb

    def _fail(self, code: int, trid: int | None, reason: str) -> list[Action]:
        self.state = NsState.CLOSED
        return [Send(ErrorReply(code, trid)), Close(reason)]

    # ---- handlers: each returns (actions, whether to take the table's transition)

    def _on_ver(self, cmd: Command, now: float) -> tuple[list[Action], bool]:
        offered = {a.upper() for a in cmd.args}
        chosen = next((v for v in SUPPORTED_VERSIONS if f"MSNP{v}" in offered), None)
        if chosen is None:
            self.state = NsState.CLOSED
            return [
                Send(Command("VER", cmd.trid, ("0",))),
                Close("no common protocol version"),
            ], False
        self.version = chosen
        args = (f"MSNP{chosen}",) + (("CVR0",) if "CVR0" in offered else ())
        return [Send(Command("VER", cmd.trid, args))], True

    def _on_cvr(self, cmd: Command, now: float) -> tuple[list[Action], bool]:
        version = cmd.args[5] if len(cmd.args) > 5 and cmd.args[5] else "1.0.0000"
        url = "http://messenger.msn.com"
        return [Send(Command("CVR", cmd.trid, (version, version, version, url, url)))], True

    def _on_inf(self, cmd: Command, now: float) -> tuple[list[Action], bool]:
        if self.version >= 8:
            return [Send(ErrorReply(lists.ERR_DISABLED, cmd.trid))], False
        return [Send(Command("INF", cmd.trid, ("MD5",)))], True

    def _on_png(self, cmd: Command, now: float) -> tuple[list[Action], bool]:
        return [Send(Command("QNG", None, ("50",) if self.version >= 9 else ()))], True

    def _on_out(self, cmd: Command, now: float) -> tuple[list[Action], bool]:
        return [Close("client signed out")], True

    def _on_usr(self, cmd: Command, now: float) -> tuple[list[Action], bool]:
        if len(cmd.args) != 3:
            raise MsnProtocolError("USR takes three arguments", lists.ERR_SYNTAX)
        mechanism, stage, value = cmd.args
        assert cmd.trid is not None
        if (mechanism == "MD5" and self.version >= 8) or (mechanism == "TWN" and self.version < 8):
            return [Send(ErrorReply(lists.ERR_DISABLED, cmd.trid))], False
        if stage == "I":
            address = _email_address(value)
            if address is None:
                raise MsnProtocolError("not an e-mail handle", lists.ERR_AUTH_FAILED)
            if self.config.redirect_to is not None:
                self.state = NsState.CLOSED
                target = self.config.redirect_to
                return [
                    Send(Command("XFR", cmd.trid, ("NS", target, "0", target))),
                    Close("redirected to another notification server"),
                ], False
            self.handle = address.split(":", 1)[1]
            if mechanism == "MD5":
                self._salt = f"{int(now)}.{secrets.randbelow(10**9):09d}"
                return [Send(Command("USR", cmd.trid, ("MD5", "S", self._salt)))], True
            return [Send(Command("USR", cmd.trid, ("TWN", "S", passport.TWN_POLICY)))], True
        self._login_trid = cmd.trid
        if mechanism == "MD5":
            digest = value.lower()
            if not re.fullmatch(r"[0-9a-f]{32}", digest):
                raise MsnProtocolError("malformed MD5 digest", lists.ERR_AUTH_FAILED)
            return [CheckPassword(self.address, SaltedMd5Proof(self._salt, digest))], True
        ticket = passport.ticket_from_usr(value)
        claims = self.config.signer.check(ticket, TICKET_PURPOSE, now)
        if claims is None or claims.subject != self.address:
            raise MsnProtocolError("bad or expired Passport ticket", lists.ERR_AUTH_FAILED)
        return [LoadAccount(self.address)], True

    # results of CheckPassword / LoadAccount

    def login_accepted(self, display_name: str, now: float) -> list[Action]:
        if (self.state, "login-accepted") not in NS_TRANSITIONS:
            return []
        self.state = NS_TRANSITIONS[(self.state, "login-accepted")]
        self._login_deadline = None
        self.display_name = display_name or self.handle
        args: tuple[str, ...] = ("OK", self.handle)
        if self.version < 10:
            args += (encode_name(self.display_name),)
        if self.version >= 8:
            args += ("1", "0")
        profile = _profile_payload(self.version, now)
        return [
            Send(Command("USR", self._login_trid, args)),
            Send(Command("MSG", None, ("Hotmail", "Hotmail"), profile)),
        ]

    def login_refused(self, now: float) -> list[Action]:
        if (self.state, "login-refused") not in NS_TRANSITIONS:
            return []
        return self._fail(lists.ERR_AUTH_FAILED, self._login_trid, "authentication failed")

    def _on_chg(self, cmd: Command, now: float) -> tuple[list[Action], bool]:
        assert cmd.trid is not None
        if not cmd.args:
            raise MsnProtocolError("CHG without a status", lists.ERR_SYNTAX)
        presence = presence_from_msn(cmd.args[0])
        if presence is None:
            return [Send(ErrorReply(lists.ERR_INVALID_PARAMETER, cmd.trid))], False
        first = self.state is NsState.AUTHENTICATED
        self.presence = presence
        actions: list[Action] = [Send(Command("CHG", cmd.trid, cmd.args[:3]))]
        if first:
            actions.append(GoOnline(cmd.trid, presence, self.status_text))
            self._challenge = "".join(str(secrets.randbelow(10)) for _ in range(20))
            self._challenge_deadline = now + CHALLENGE_TIMEOUT
            actions.append(Send(Command("CHL", 0, (self._challenge,))))
        else:
            actions.append(ChangePresence(presence, self.status_text))
        return actions, True

    def _on_syn(self, cmd: Command, now: float) -> tuple[list[Action], bool]:
        assert cmd.trid is not None
        self.serial = max(self.serial + 1, _client_serial(cmd.args) + 1)
        return [SyncLists(cmd.trid)], True

    def _on_gtc(self, cmd: Command, now: float) -> tuple[list[Action], bool]:
        return self._setting(cmd, "GTC", ("A", "N"))

    def _on_blp(self, cmd: Command, now: float) -> tuple[list[Action], bool]:
        return self._setting(cmd, "BLP", ("AL", "BL"))

    def _setting(
        self, cmd: Command, name: str, allowed: tuple[str, ...]
    ) -> tuple[list[Action], bool]:
        if len(cmd.args) != 1 or cmd.args[0] not in allowed:
            raise MsnProtocolError(f"bad {name} value", lists.ERR_INVALID_PARAMETER)
        value = cmd.args[0]
        args = (value,) if self.version >= 10 else (str(self.next_serial()), value)
        return [SettingChanged(name, value), Send(Command(name, cmd.trid, args))], True

    def next_serial(self) -> int:
        self.serial += 1
        return self.serial

    def _on_rea(self, cmd: Command, now: float) -> tuple[list[Action], bool]:
        if self.version >= 10:
            return [Send(ErrorReply(lists.ERR_DISABLED, cmd.trid))], False
        if len(cmd.args) != 2:
            raise MsnProtocolError("REA takes a handle and a name", lists.ERR_SYNTAX)
        args = (str(self.next_serial()), cmd.args[0], cmd.args[1])
        actions: list[Action] = [Send(Command("REA", cmd.trid, args))]
        if cmd.args[0].lower() == self.handle:  # renaming oneself (MSNP2-9)
            self.display_name = decode_name(cmd.args[1])
            actions.append(PropertyChanged(None, "MFN", cmd.args[1]))
        elif len(cmd.args[1]) <= MAX_PROPERTY_VALUE:  # a contact's name in my cache: SBP's ancestor
            actions.append(PropertyChanged(cmd.args[0].lower(), "MFN", cmd.args[1]))
        return actions, True

    def _on_prp(self, cmd: Command, now: float) -> tuple[list[Action], bool]:
        if not cmd.args or len(cmd.args) > 2:
            raise MsnProtocolError("PRP takes a property and a value", lists.ERR_SYNTAX)
        name = cmd.args[0]
        value = cmd.args[1] if len(cmd.args) == 2 else None
        if name not in OWNER_PROPERTIES or (value is not None and len(value) > MAX_PROPERTY_VALUE):
            return [Send(ErrorReply(lists.ERR_INVALID_PARAMETER, cmd.trid))], False
        if name == "MFN":
            if value is None:
                return [Send(ErrorReply(lists.ERR_INVALID_PARAMETER, cmd.trid))], False
            self.display_name = decode_name(value)
        args = cmd.args if self.version >= 10 else (str(self.next_serial()), *cmd.args)
        return [Send(Command("PRP", cmd.trid, args)), PropertyChanged(None, name, value)], True

    def _on_sbp(self, cmd: Command, now: float) -> tuple[list[Action], bool]:
        """MSNP10-12: a property of a contact in the user's own cache (msn-pecan sends
        ``SBP <guid> MFN <name>`` after ADC and whenever a contact's name changes)."""
        if self.version < 10:
            return [Send(ErrorReply(lists.ERR_DISABLED, cmd.trid))], False
        if not 3 <= len(cmd.args) <= 4:
            raise MsnProtocolError("SBP takes a contact, a property and a value", lists.ERR_SYNTAX)
        contact, name, value = cmd.args[0].lower(), cmd.args[1], cmd.args[2]
        if name not in CONTACT_PROPERTIES or len(value) > MAX_PROPERTY_VALUE or len(contact) > 129:
            return [Send(ErrorReply(lists.ERR_INVALID_PARAMETER, cmd.trid))], False
        return [
            Send(Command("SBP", cmd.trid, cmd.args)),
            PropertyChanged(contact, name, value),
        ], True

    def _on_sbs(self, cmd: Command, now: float) -> tuple[list[Action], bool]:
        # Server-sent in MSNP11 ("SBS 0 null"); a client that sends it is answered in kind.
        return [Send(Command("SBS", cmd.trid, cmd.args[:2]))], True

    def _on_url(self, cmd: Command, now: float) -> tuple[list[Action], bool]:
        if not 1 <= len(cmd.args) <= 2 or cmd.args[0].upper() not in URL_SERVICES:
            return [Send(ErrorReply(lists.ERR_INVALID_PARAMETER, cmd.trid))], False
        return [Send(Command("URL", cmd.trid, ("/", BLANK_URL, "2")))], True

    def _on_snd(self, cmd: Command, now: float) -> tuple[list[Action], bool]:
        # An e-mail invitation to the service: the gateway sends no e-mail.
        if not 1 <= len(cmd.args) <= 4:
            raise MsnProtocolError("bad SND", lists.ERR_SYNTAX)
        return [Send(Command("SND", cmd.trid, ("OK",)))], True

    def _on_sdc(self, cmd: Command, now: float) -> tuple[list[Action], bool]:
        # SND with the sender's name and a note (a payload): no e-mail either.
        if not 1 <= len(cmd.args) <= 8:
            raise MsnProtocolError("bad SDC", lists.ERR_SYNTAX)
        return [Send(Command("SDC", cmd.trid, ("OK",)))], True

    def _on_ims(self, cmd: Command, now: float) -> tuple[list[Action], bool]:
        if cmd.args not in (("ON",), ("OFF",)):
            raise MsnProtocolError("IMS takes ON or OFF", lists.ERR_SYNTAX)
        self.accepts_switchboards = cmd.args[0] == "ON"
        return [Send(Command("IMS", cmd.trid, ("0", cmd.args[0])))], True

    def _on_gcf(self, cmd: Command, now: float) -> tuple[list[Action], bool]:
        if self.version < 11 or len(cmd.args) != 1:
            return [Send(ErrorReply(lists.ERR_DISABLED, cmd.trid))], False
        return [Send(Command("GCF", cmd.trid, (cmd.args[0],), SHIELDS_XML))], True

    def _on_lst(self, cmd: Command, now: float) -> tuple[list[Action], bool]:
        # MSNP2-7 only: later clients get every list from SYN.
        if self.version >= 8:
            return [Send(ErrorReply(lists.ERR_DISABLED, cmd.trid))], False
        if len(cmd.args) != 1 or cmd.args[0] not in lists.LIST_BITS:
            raise MsnProtocolError("bad LST", lists.ERR_INVALID_PARAMETER)
        assert cmd.trid is not None
        return [QueryList(cmd.trid, "LST", cmd.args[0])], True

    def _on_lsg(self, cmd: Command, now: float) -> tuple[list[Action], bool]:
        if self.version >= 8 or self.version < 6:
            return [Send(ErrorReply(lists.ERR_DISABLED, cmd.trid))], False
        assert cmd.trid is not None
        return [QueryList(cmd.trid, "LSG")], True

    def _on_uux(self, cmd: Command, now: float) -> tuple[list[Action], bool]:
        if self.version < 11:
            return [Send(ErrorReply(lists.ERR_DISABLED, cmd.trid))], False
        text = (cmd.payload or b"").decode("utf-8", "replace")
        match = re.search(r"<PSM>(.*?)</PSM>", text, re.S)
        self.status_text = unescape(match.group(1))[:MAX_STATUS_TEXT] if match else ""
        actions: list[Action] = [Send(Command("UUX", cmd.trid, (), b""))]
        if self.state is NsState.ONLINE:
            actions.append(ChangePresence(self.presence, self.status_text))
        return actions, True

    def _on_qry(self, cmd: Command, now: float) -> tuple[list[Action], bool]:
        expected, self._challenge = self._challenge, None
        self._challenge_deadline = None
        if (
            expected is None
            or len(cmd.args) != 1
            or not challenge.check_answer(expected, cmd.args[0], cmd.payload or b"")
        ):
            raise MsnProtocolError("wrong challenge answer", lists.ERR_CHALLENGE)
        return [Send(Command("QRY", cmd.trid))], True

    def _on_xfr(self, cmd: Command, now: float) -> tuple[list[Action], bool]:
        if cmd.args != ("SB",):
            return [Send(ErrorReply(lists.ERR_INVALID_PARAMETER, cmd.trid))], False
        if self.state is not NsState.ONLINE or self.presence is PresenceState.INVISIBLE:
            return [Send(ErrorReply(lists.ERR_NOT_WHILE_HIDDEN, cmd.trid))], False
        cookie = self.config.signer.issue(
            XFR_PURPOSE, self.handle, now, COOKIE_LIFETIME, encode_name(self.display_name)
        )
        args = ("SB", self.config.switchboard_address, "CKI", cookie)
        return [Send(Command("XFR", cmd.trid, args))], True

    def ring(self, room_id: str, inviter: str, inviter_name: str, now: float) -> Command:
        """The RNG line inviting this client to switchboard ``room_id``."""
        cookie = self.config.signer.issue(
            RNG_PURPOSE,
            self.handle,
            now,
            COOKIE_LIFETIME,
            f"{room_id} {encode_name(self.display_name)}",
        )
        return Command(
            "RNG",
            None,
            (
                room_id,
                self.config.switchboard_address,
                "CKI",
                cookie,
                inviter,
                encode_name(inviter_name),
            ),
        )

    # list edits

    def _on_add(self, cmd: Command, now: float) -> tuple[list[Action], bool]:
        if self.version >= 10:
            return [Send(ErrorReply(lists.ERR_DISABLED, cmd.trid))], False
        args = cmd.args
        if len(args) < 2 or args[0] not in lists.EDITABLE_LISTS or len(args) > 4:
            raise MsnProtocolError("bad ADD", lists.ERR_INVALID_PARAMETER)
        return self._edit(cmd, _add_edit(args[0], args[1], args[2:]))

    def _on_adc(self, cmd: Command, now: float) -> tuple[list[Action], bool]:
        if self.version < 10:
            return [Send(ErrorReply(lists.ERR_DISABLED, cmd.trid))], False
        args = cmd.args
        if len(args) < 2 or args[0] not in lists.EDITABLE_LISTS or len(args) > 4:
            raise MsnProtocolError("bad ADC", lists.ERR_INVALID_PARAMETER)
        if args[1].startswith("C="):
            group = args[2] if len(args) > 2 else None
            edit = lists.AddToList(args[0], None, "", group, guid=args[1][2:].lower())
            return self._edit(cmd, edit)
        if not args[1].startswith("N="):
            raise MsnProtocolError("bad ADC", lists.ERR_INVALID_PARAMETER)
        name = next((a[2:] for a in args[2:] if a.startswith("F=")), "")
        group = next((a for a in args[2:] if not a.startswith(("F=", "C="))), None)
        rest = ((name,) if name else (args[1][2:],)) + ((group,) if group else ())
        return self._edit(cmd, _add_edit(args[0], args[1][2:], rest))

    def _on_rem(self, cmd: Command, now: float) -> tuple[list[Action], bool]:
        args = cmd.args
        if len(args) not in (2, 3) or args[0] not in lists.EDITABLE_LISTS:
            raise MsnProtocolError("bad REM", lists.ERR_INVALID_PARAMETER)
        group = args[2] if len(args) == 3 else None
        return self._edit(cmd, lists.RemoveFromList(args[0], args[1].lower(), group))

    def _on_adg(self, cmd: Command, now: float) -> tuple[list[Action], bool]:
        if not 1 <= len(cmd.args) <= 2:
            raise MsnProtocolError("bad ADG", lists.ERR_SYNTAX)
        return self._edit(cmd, lists.AddGroup(decode_name(cmd.args[0])))

    def _on_rmg(self, cmd: Command, now: float) -> tuple[list[Action], bool]:
        if len(cmd.args) != 1:
            raise MsnProtocolError("bad RMG", lists.ERR_SYNTAX)
        return self._edit(cmd, lists.RemoveGroup(cmd.args[0].lower()))

    def _on_reg(self, cmd: Command, now: float) -> tuple[list[Action], bool]:
        if not 2 <= len(cmd.args) <= 3:
            raise MsnProtocolError("bad REG", lists.ERR_SYNTAX)
        return self._edit(cmd, lists.RenameGroup(cmd.args[0].lower(), decode_name(cmd.args[1])))

    def _edit(self, cmd: Command, edit: lists.ListEdit) -> tuple[list[Action], bool]:
        assert cmd.trid is not None
        return [EditLists(cmd.trid, edit)], True

    # ---- timers

    def get_timer(self) -> float | None:
        if self.state is NsState.CLOSED:
            return None
        deadlines = [self._idle_deadline]
        if self._login_deadline is not None:
            deadlines.append(self._login_deadline)
        if self._challenge_deadline is not None:
            deadlines.append(self._challenge_deadline)
        return min(deadlines)

    def handle_timer(self, now: float) -> list[Action]:
        if self.state is NsState.CLOSED:
            return []
        if self._login_deadline is not None and now >= self._login_deadline:
            self.state = NsState.CLOSED
            return [Close("no login in time")]
        if self._challenge_deadline is not None and now >= self._challenge_deadline:
            return self._fail(lists.ERR_CHALLENGE, None, "challenge not answered in time")
        if now >= self._idle_deadline:
            self.state = NsState.CLOSED
            return [Send(Command("OUT", None, ("TO",))), Close("idle")]
        return []

    def closed(self) -> None:
        """The transport went away."""
        self.state = NsState.CLOSED


def _add_edit(list_name: str, handle: str, rest: tuple[str, ...]) -> lists.AddToList:
    if _email_address(handle) is None:
        raise MsnProtocolError("not an e-mail handle", lists.ERR_INVALID_PARAMETER)
    name = decode_name(rest[0]) if rest else ""
    group = rest[1].lower() if len(rest) > 1 and list_name == "FL" else None
    return lists.AddToList(list_name, handle.lower(), name, group)


def _client_serial(args: tuple[str, ...]) -> int:
    first = args[0] if args else "0"
    return int(first) if first.isdigit() and len(first) < 10 else 0


def _profile_payload(version: int, now: float) -> bytes:
    lines = [
        "MIME-Version: 1.0",
        "Content-Type: text/x-msmsgsprofile; charset=UTF-8",
        f"LoginTime: {int(now)}",
    ]
    if version >= 3:
        lines += [
            "EmailEnabled: 0",
            "MemberIdHigh: 0",
            "MemberIdLow: 0",
            "lang_preference: 1033",
            "preferredEmail: ",
            "country: ",
            "PostalCode: ",
            "Gender: ",
            "Kid: 0",
            "Age: ",
            "sid: 507",
            "kv: 5",
            "MSPAuth: gateway",
        ]
    if version >= 8:
        lines += ["ClientIP: 127.0.0.1", "ClientPort: 0"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


# ---- switchboard connection


class SbState(Enum):
    CONNECTED = "connected"
    JOINING = "joining"
    IN_ROOM = "in-room"
    CLOSED = "closed"


SB_TRANSITIONS: dict[tuple[SbState, str], SbState] = {
    (SbState.CONNECTED, "USR"): SbState.JOINING,
    (SbState.CONNECTED, "ANS"): SbState.JOINING,
    (SbState.JOINING, "joined"): SbState.IN_ROOM,
    (SbState.JOINING, "refused"): SbState.CLOSED,
    (SbState.IN_ROOM, "CAL"): SbState.IN_ROOM,
    (SbState.IN_ROOM, "MSG"): SbState.IN_ROOM,
    (SbState.CONNECTED, "OUT"): SbState.CLOSED,
    (SbState.JOINING, "OUT"): SbState.CLOSED,
    (SbState.IN_ROOM, "OUT"): SbState.CLOSED,
}

ACK_MODES = frozenset({"U", "N", "A", "D", "S"})


@dataclass(frozen=True, slots=True)
class OpenRoom:
    """``USR`` with a valid XFR cookie: create a room for this client."""

    trid: int
    handle: str
    display_name: str


@dataclass(frozen=True, slots=True)
class AnswerRing:
    """``ANS`` with a valid RNG cookie: join room ``room_id``."""

    trid: int
    handle: str
    display_name: str
    room_id: str


@dataclass(frozen=True, slots=True)
class Invite:
    trid: int
    handle: str


@dataclass(frozen=True, slots=True)
class Post:
    """A ``MSG`` from the client to everybody else in the room."""

    trid: int
    ack: str
    payload: bytes


SbAction = Send | Close | OpenRoom | AnswerRing | Invite | Post


@dataclass
class SwitchboardSession:
    signer: TokenSigner
    now: float
    state: SbState = SbState.CONNECTED
    handle: str = ""
    display_name: str = ""
    room_id: str = ""
    login_timeout: float = LOGIN_TIMEOUT  # no USR/ANS by then: closed
    _idle_deadline: float = 0.0

    def __post_init__(self) -> None:
        self._idle_deadline = self.now + self.login_timeout

    def receive(self, frame: Frame, now: float) -> list[SbAction]:
        if self.state is SbState.CLOSED:
            return []
        self._idle_deadline = now + IDLE_TIMEOUT
        if isinstance(frame, ErrorReply):
            return self._fail(lists.ERR_SYNTAX, None, "client sent an error line")
        target = SB_TRANSITIONS.get((self.state, frame.verb))
        if target is None:
            return self._fail(
                lists.ERR_NOT_EXPECTED, frame.trid, f"{frame.verb} not expected on a switchboard"
            )
        handler: SbHandler = getattr(self, f"_on_{frame.verb.lower()}")
        try:
            actions = handler(frame, now)
        except MsnProtocolError as exc:
            return self._fail(exc.code, frame.trid, str(exc))
        if not any(isinstance(a, Close) for a in actions):
            self.state = target
        return actions

    def _fail(self, code: int, trid: int | None, reason: str) -> list[SbAction]:
        self.state = SbState.CLOSED
        return [Send(ErrorReply(code, trid)), Close(reason)]

    def _on_usr(self, cmd: Command, now: float) -> list[SbAction]:
        if len(cmd.args) != 2 or cmd.trid is None:
            raise MsnProtocolError("USR takes a handle and a cookie", lists.ERR_SYNTAX)
        claims = self.signer.check(cmd.args[1], XFR_PURPOSE, now)
        if claims is None or claims.subject != cmd.args[0].lower():
            raise MsnProtocolError("bad switchboard cookie", lists.ERR_AUTH_FAILED)
        self.handle = claims.subject
        self.display_name = decode_name(claims.extra)
        return [OpenRoom(cmd.trid, self.handle, self.display_name)]

    def _on_ans(self, cmd: Command, now: float) -> list[SbAction]:
        if len(cmd.args) != 3 or cmd.trid is None:
            raise MsnProtocolError("ANS takes a handle, a cookie and a session", lists.ERR_SYNTAX)
        claims = self.signer.check(cmd.args[1], RNG_PURPOSE, now)
        if claims is None or claims.subject != cmd.args[0].lower():
            raise MsnProtocolError("bad switchboard cookie", lists.ERR_AUTH_FAILED)
        room_id, _, name = claims.extra.partition(" ")
        if room_id != cmd.args[2]:
            raise MsnProtocolError("cookie is for another session", lists.ERR_AUTH_FAILED)
        self.handle = claims.subject
        self.display_name = decode_name(name)
        self.room_id = room_id
        return [AnswerRing(cmd.trid, self.handle, self.display_name, room_id)]

    def joined(self, room_id: str) -> None:
        if (self.state, "joined") in SB_TRANSITIONS:
            self.state = SB_TRANSITIONS[(self.state, "joined")]
            self.room_id = room_id

    def refused(self, trid: int, code: int, reason: str) -> list[SbAction]:
        return self._fail(code, trid, reason)

    def _on_cal(self, cmd: Command, now: float) -> list[SbAction]:
        if len(cmd.args) != 1 or cmd.trid is None:
            raise MsnProtocolError("CAL takes a handle", lists.ERR_SYNTAX)
        handle = cmd.args[0].lower()
        if _email_address(handle) is None:
            return [Send(ErrorReply(lists.ERR_INVALID_USER, cmd.trid))]
        return [Invite(cmd.trid, handle)]

    def _on_msg(self, cmd: Command, now: float) -> list[SbAction]:
        if len(cmd.args) != 1 or cmd.args[0] not in ACK_MODES or cmd.trid is None:
            raise MsnProtocolError("bad MSG acknowledgement type", lists.ERR_SYNTAX)
        return [Post(cmd.trid, cmd.args[0], cmd.payload or b"")]

    def _on_out(self, cmd: Command, now: float) -> list[SbAction]:
        return [Close("client left the switchboard")]

    def get_timer(self) -> float | None:
        return None if self.state is SbState.CLOSED else self._idle_deadline

    def handle_timer(self, now: float) -> list[SbAction]:
        if self.state is not SbState.CLOSED and now >= self._idle_deadline:
            self.state = SbState.CLOSED
            return [Close("idle switchboard")]
        return []
