"""The client's application model over a :class:`ClientSession`: contacts with
presence, chats, authorization requests, search. Pure: it turns user intents into
commands queued on the session and session events into UI events (plain dicts that
the terminal prints readably or as one JSON object per line).

Own messages: ``sent`` when queued, then ``delivered`` once the gateway acknowledged
the last fragment (spec section 6: it holds the message, delivers it or stores it
offline) or ``message_failed`` (MESSAGE_FAILED, or the session ended first). Nicknames
come from the contact list and search results; a message from a UIN with no known
nickname starts a quiet search for it (a ``nickname`` event when found)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from adapters.uin.client.session import (
    ClientEvent,
    ClientSession,
    Disconnected,
    LoggedIn,
    LoginFailed,
    ServerCommand,
)
from adapters.uin.codec import (
    ENTRY_ALLOWED,
    ENTRY_BLOCKED,
    ENTRY_PENDING,
    ENTRY_SUBSCRIBED,
    AuthReply,
    AuthRequest,
    Body,
    ContactAdd,
    ContactList,
    ContactListGet,
    ContactRemove,
    MessageFailed,
    MessageFragment,
    PresenceNotice,
    Search,
    SearchResult,
    Status,
    StatusSet,
    TypingNotice,
    UinProtocolError,
)
from adapters.uin.translate import (
    MAX_BODY_CHARS,
    MAX_REQUEST_BYTES,
    MAX_STATUS_BYTES,
    Reassembler,
    decode_text,
    encode_limited,
    fragments,
)

UiEvent = dict[str, object]


@dataclass(slots=True)
class Contact:
    uin: int
    nickname: str = ""
    status: Status = Status.OFFLINE
    status_text: str = ""
    subscribed: bool = False
    allowed: bool = False
    pending: bool = False
    blocked: bool = False

    def as_dict(self) -> UiEvent:
        return {
            "uin": self.uin,
            "nickname": self.nickname,
            "status": self.status.name.lower(),
            "status_text": self.status_text,
            "pending": self.pending,
            "allowed": self.allowed,
        }


@dataclass(slots=True)
class Outgoing:
    """One of our messages, until its fate is known (and a little after)."""

    to: int
    text: str
    time: int
    seqs: list[int] = field(default_factory=list)

    def event(self, kind: str, msg_id: int, **more: object) -> UiEvent:
        return {
            "event": kind,
            "to": self.to,
            "msg_id": msg_id,
            "text": self.text,
            "time": self.time,
            **more,
        }


RECENT = 256  # delivered messages kept to name them in a late MESSAGE_FAILED


class Messenger:
    def __init__(self, session: ClientSession) -> None:
        self.session = session
        self.names: dict[int, str] = {}  # nicknames learnt from lists and searches
        self.last_from: int | None = None  # who wrote last (the reply target)
        self._pending: dict[int, Outgoing] = {}
        self._recent: dict[int, Outgoing] = {}
        self._lookups: set[int] = set()  # quiet searches for a sender's nickname
        self.contacts: dict[int, Contact] = {}
        self._incoming_list: list[Contact] = []
        self._results: dict[int, list[UiEvent]] = {}
        self._reassembler = Reassembler()
        self._next_msg_id = 1
        self._next_search = 1
        self.status = Status.ONLINE

    # ---- intents ------------------------------------------------------------------

    def _text(self, text: str, limit: int) -> bytes:
        return encode_limited(text, self.session.charset, limit)

    def _send(self, *bodies: Body) -> bool:
        return all(self.session.send(b) for b in bodies)

    def name(self, uin: int) -> str:
        """The nickname we know for ``uin`` ("" if none)."""
        contact = self.contacts.get(uin)
        return (contact.nickname if contact else "") or self.names.get(uin, "")

    def replace_session(self, session: ClientSession) -> None:
        """Carry on over a new login (reconnect): contacts and names stay."""
        self.session = session
        self._reassembler = Reassembler()

    def send_message(self, uin: int, text: str) -> int | None:
        """Queue a message; its msg_id, or None when not online, empty or too long."""
        if not text or len(text) > MAX_BODY_CHARS:
            return None
        msg_id = self._next_msg_id
        now = int(time.time())
        try:
            parts = fragments(uin, msg_id, text, self.session.charset, time=now)
        except ValueError:
            return None
        seqs = [self.session.send(p) for p in parts]
        if not all(seqs):
            return None
        self._pending[msg_id] = Outgoing(uin, text, now, seqs)
        self._next_msg_id = self._next_msg_id % 0xFFFFFFFF + 1
        return msg_id

    def typing(self, uin: int, active: bool) -> bool:
        return self._send(TypingNotice(uin, active))

    def add_contact(self, uin: int, text: str = "") -> bool:
        return self._send(ContactAdd(uin, self._text(text, MAX_REQUEST_BYTES)))

    def remove_contact(self, uin: int) -> bool:
        return self._send(ContactRemove(uin))

    def authorize(self, uin: int, granted: bool = True, text: str = "") -> bool:
        return self._send(AuthReply(uin, granted, self._text(text, MAX_REQUEST_BYTES)))

    def set_status(self, status: Status, text: str = "") -> bool:
        self.status = status
        return self._send(StatusSet(status, self._text(text, MAX_STATUS_BYTES)))

    def request_contacts(self) -> bool:
        return self._send(ContactListGet())

    def _look_up(self, uin: int) -> None:
        if uin in self.names or self.name(uin):
            return
        self.names[uin] = ""  # asked once
        search_id = self.search(str(uin))
        if search_id is not None:
            self._lookups.add(search_id)

    def search(self, text: str) -> int | None:
        search_id = self._next_search
        if not self._send(Search(search_id, self._text(text, 255))):
            return None
        self._next_search = self._next_search % 0xFFFF + 1
        return search_id

    # ---- events -------------------------------------------------------------------

    def handle(self, events: list[ClientEvent]) -> list[UiEvent]:
        out: list[UiEvent] = []
        for event in events:
            if isinstance(event, LoggedIn):
                out.append(
                    {
                        "event": "logged_in",
                        "uin": self.session.uin,
                        "charset": event.charset.name.lower(),
                    }
                )
            elif isinstance(event, LoginFailed):
                out.append({"event": "login_failed", "error": event.error.name.lower()})
            elif isinstance(event, Disconnected):
                for msg_id, item in self._pending.items():
                    out.append(item.event("message_failed", msg_id, error="disconnected"))
                self._pending.clear()
                out.append({"event": "disconnected", "reason": event.reason.name.lower()})
            elif isinstance(event, ServerCommand):
                out.extend(self._command(event.body))
        out.extend(self._settle())
        return out

    def _settle(self) -> list[UiEvent]:
        """``delivered`` for each pending message whose fragments are all acked."""
        done = [
            msg_id
            for msg_id, item in self._pending.items()
            if all(self.session.acknowledged(seq) for seq in item.seqs)
        ]
        out: list[UiEvent] = []
        for msg_id in done:
            item = self._recent[msg_id] = self._pending.pop(msg_id)
            out.append(item.event("delivered", msg_id))
        while len(self._recent) > RECENT:
            del self._recent[next(iter(self._recent))]
        return out

    def _decode(self, data: bytes) -> str:
        return decode_text(data, self.session.charset)

    def _command(self, body: Body) -> list[UiEvent]:
        if isinstance(body, MessageFragment):
            try:
                whole = self._reassembler.feed(body)
            except UinProtocolError:
                self._reassembler = Reassembler()
                return [{"event": "error", "text": "garbled message dropped"}]
            if whole is None:
                return []
            self.last_from = whole.uin
            self._look_up(whole.uin)
            return [
                {
                    "event": "message",
                    "from": whole.uin,
                    "text": whole.text,
                    "offline": whole.offline,
                    "time": whole.time,
                }
            ]
        if isinstance(body, PresenceNotice):
            contact = self.contacts.setdefault(body.uin, Contact(body.uin))
            contact.status = body.presence
            contact.status_text = self._decode(body.text)
            return [
                {
                    "event": "presence",
                    "uin": body.uin,
                    "status": body.presence.name.lower(),
                    "text": contact.status_text,
                }
            ]
        if isinstance(body, ContactList):
            return self._contact_list(body)
        if isinstance(body, AuthRequest):
            return [{"event": "auth_request", "from": body.uin, "text": self._decode(body.text)}]
        if isinstance(body, AuthReply):
            return [
                {
                    "event": "auth_reply",
                    "from": body.uin,
                    "granted": body.granted,
                    "text": self._decode(body.text),
                }
            ]
        if isinstance(body, TypingNotice):
            return [{"event": "typing", "from": body.uin, "active": body.active}]
        if isinstance(body, MessageFailed):
            error = body.error.name.lower()
            item = self._pending.pop(body.msg_id, None) or self._recent.pop(body.msg_id, None)
            if item is not None and item.to == body.uin:
                return [item.event("message_failed", body.msg_id, error=error)]
            return [
                {"event": "message_failed", "to": body.uin, "msg_id": body.msg_id, "error": error}
            ]
        if isinstance(body, SearchResult):
            found = self._results.setdefault(body.search_id, [])
            found.extend({"uin": i.uin, "nickname": self._decode(i.nickname)} for i in body.items)
            for i in body.items:
                if not self.name(i.uin):
                    self.names[i.uin] = self._decode(i.nickname)
            if not body.last:
                return []
            if body.search_id in self._lookups:
                self._lookups.discard(body.search_id)
                rows = self._results.pop(body.search_id)
                return [{"event": "nickname", **row} for row in rows if row["nickname"]]
            return [
                {
                    "event": "search_result",
                    "id": body.search_id,
                    "results": self._results.pop(body.search_id),
                }
            ]
        return []

    def _contact_list(self, body: ContactList) -> list[UiEvent]:
        for item in body.items:
            old = self.contacts.get(item.uin)
            self._incoming_list.append(
                Contact(
                    item.uin,
                    self._decode(item.nickname),
                    item.presence,
                    old.status_text if old and item.presence is not Status.OFFLINE else "",
                    bool(item.flags & ENTRY_SUBSCRIBED),
                    bool(item.flags & ENTRY_ALLOWED),
                    bool(item.flags & ENTRY_PENDING),
                    bool(item.flags & ENTRY_BLOCKED),
                )
            )
        if not body.last:
            return []
        self.contacts = {c.uin: c for c in self._incoming_list}
        self._incoming_list = []
        return [
            {
                "event": "contacts",
                "contacts": [
                    c.as_dict() for c in sorted(self.contacts.values(), key=lambda c: c.uin)
                ],
            }
        ]
