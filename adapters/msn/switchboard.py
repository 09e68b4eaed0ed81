"""Switchboard rooms the adapter hosts, sans-IO (kept in memory, per process).

Theory of operation
-------------------
On MSN a conversation happens in a switchboard room. The gateway hosts every room
itself. A room has participants; each is either *connected* (a local MSN client
with a switchboard connection, named by an opaque connection key) or *virtual*
(somebody the room stands for: a user of another network, or an MSN user who has
not joined yet; their messages arrive through the core).

- ``XFR SB`` + ``USR``: a client opens a room and is its first participant.
- ``CAL x``: a local MSN user connected to this node is rung into the room at once
  (:meth:`Rooms.invite`; ``JOI`` to the others only when it answers, :meth:`Rooms.answer`);
  anyone else joins virtually (:meth:`Rooms.call`, ``JOI`` to everybody connected now).
- A client's ``MSG`` goes to the core once per other participant; when one of those
  is a local MSN user the core routes it back to that user's notification link,
  which looks for a room holding both (:meth:`Rooms.find`), else rings the user
  into the room the message came from, else opens a new room with the sender as a
  virtual participant. A rung user's messages wait in the invitation until it
  answers (``ANS``) or the invitation expires (:meth:`Rooms.expire`); what waits is
  bounded in bytes by the glue (never by a count: nothing is bounced for waiting), and
  an expired invitation's messages go back to the core's offline queue.
- ``OUT`` or a dropped connection: ``BYE`` to the others; a room with nobody
  connected is gone. The last one connected who leaves while someone is still rung
  stays virtually instead, so the rung user reads what waits and can answer.

Rooms are mutated only through methods that return ``(connection key, Command)``
pairs for the glue to write.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field

from adapters.msn.codec import Command
from adapters.msn.translate import encode_name

INVITE_TIMEOUT = 60.0
MAX_PARTICIPANTS = 16
ORIGIN_MEMORY = 4096

Key = Hashable
Outgoing = list[tuple[Key, Command]]


@dataclass
class Participant:
    handle: str
    display: str
    connection: Key | None = None


@dataclass
class Invitation:
    """A local user rung into a room; ``queue`` holds what waits for its ``ANS``."""

    handle: str
    deadline: float
    queue: list[object] = field(default_factory=list)
    size: int = 0
    """Bytes of what waits in ``queue`` (as the glue measured it)."""


@dataclass
class Room:
    room_id: str
    participants: dict[str, Participant] = field(default_factory=dict)
    invitations: dict[str, Invitation] = field(default_factory=dict)

    def connections(self, excluding: str | None = None) -> list[tuple[str, Key]]:
        return [
            (p.handle, p.connection)
            for p in self.participants.values()
            if p.connection is not None and p.handle != excluding
        ]

    def others(self, handle: str) -> list[Participant]:
        return [p for p in self.participants.values() if p.handle != handle]

    def connection_of(self, handle: str) -> Key | None:
        participant = self.participants.get(handle)
        return participant.connection if participant else None

    @property
    def empty(self) -> bool:
        return not any(p.connection is not None for p in self.participants.values())


@dataclass(frozen=True, slots=True)
class Expired:
    """An invitation nobody answered; ``queue`` is what could not be delivered."""

    room_id: str
    handle: str
    queue: tuple[object, ...]


class RoomError(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class Rooms:
    """Every room of this process."""

    def __init__(self) -> None:
        self._rooms: dict[str, Room] = {}
        self._origins: OrderedDict[str, str] = OrderedDict()  # event id -> room id
        # handle -> ids of rooms it joined, oldest first: a superset (rooms closed or
        # left are pruned when ``find`` meets them), so ``find`` does not scan every room.
        self._member_of: dict[str, dict[str, None]] = {}

    def _joined(self, handle: str, room_id: str) -> None:
        self._member_of.setdefault(handle, {})[room_id] = None

    def _left(self, handle: str, room_id: str) -> None:
        joined = self._member_of.get(handle)
        if joined is not None:
            joined.pop(room_id, None)
            if not joined:
                del self._member_of[handle]

    def _drop(self, room: Room) -> None:
        self._rooms.pop(room.room_id, None)
        for handle in room.participants:
            self._left(handle, room.room_id)

    def __len__(self) -> int:
        return len(self._rooms)

    def get(self, room_id: str) -> Room | None:
        return self._rooms.get(room_id)

    def open(self, handle: str, display: str, connection: Key) -> Room:
        room_id = self._new_id()
        room = Room(room_id)
        room.participants[handle] = Participant(handle, display, connection)
        self._rooms[room_id] = room
        self._joined(handle, room_id)
        return room

    def open_for(self, handle: str, peer: str, peer_display: str, now: float) -> Room:
        """A room for local ``handle`` (not yet connected) with virtual ``peer``."""
        room = Room(self._new_id())
        room.participants[peer] = Participant(peer, peer_display)
        room.invitations[handle] = Invitation(handle, now + INVITE_TIMEOUT)
        self._rooms[room.room_id] = room
        self._joined(peer, room.room_id)
        return room

    def _new_id(self) -> str:
        while True:
            room_id = str(secrets.randbelow(90_000_000) + 10_000_000)
            if room_id not in self._rooms:
                return room_id

    def call(self, room: Room, handle: str, display: str) -> Outgoing:
        """``handle`` joins ``room`` virtually; JOI to everybody connected."""
        if handle in room.participants:
            raise RoomError(215)
        if len(room.participants) >= MAX_PARTICIPANTS:
            raise RoomError(713)
        room.participants[handle] = Participant(handle, display)
        self._joined(handle, room.room_id)
        return [
            (key, Command("JOI", None, (handle, encode_name(display))))
            for _, key in room.connections()
        ]

    def invite(self, room: Room, handle: str, now: float) -> Invitation:
        """Ring local ``handle`` into ``room`` (it may already be there virtually)."""
        invitation = room.invitations.get(handle)
        if invitation is None:
            invitation = Invitation(handle, now + INVITE_TIMEOUT)
            room.invitations[handle] = invitation
        return invitation

    def answer(
        self, room: Room, handle: str, display: str, connection: Key, trid: int
    ) -> tuple[Outgoing, list[object]]:
        """``handle`` answered its RNG: IRO lines for it, JOI for the others, then its queue."""
        invitation = room.invitations.pop(handle, None)
        if invitation is None:
            raise RoomError(911)
        out: Outgoing = []
        others = room.others(handle)
        for i, p in enumerate(others, 1):
            out.append(
                (
                    connection,
                    Command(
                        "IRO", trid, (str(i), str(len(others)), p.handle, encode_name(p.display))
                    ),
                )
            )
        out.append((connection, Command("ANS", trid, ("OK",))))
        existing = room.participants.get(handle)
        if existing is None:
            joi = Command("JOI", None, (handle, encode_name(display)))
            out.extend((key, joi) for _, key in room.connections())
        room.participants[handle] = Participant(handle, display, connection)
        self._joined(handle, room.room_id)
        return out, invitation.queue

    def leave(self, room: Room, handle: str) -> Outgoing:
        """``handle``'s connection left: BYE to the others; drop the room when empty."""
        participant = room.participants.get(handle)
        if participant is None or participant.connection is None:
            return []
        if room.invitations and not room.connections(excluding=handle):
            # Someone rung has not answered and nobody else is here: stay in the room
            # virtually, so they still read what was written and their answer reaches
            # the one who left (rung back through the core).
            participant.connection = None
            return []
        del room.participants[handle]
        self._left(handle, room.room_id)
        out: Outgoing = [(key, Command("BYE", None, (handle,))) for _, key in room.connections()]
        if room.empty:
            self._drop(room)
        return out

    def waiting_bytes(self, handle: str) -> int:
        """Bytes of what waits for ``handle`` to answer a ring, in every room."""
        return sum(
            r.invitations[handle].size for r in self._rooms.values() if handle in r.invitations
        )

    def connections_of(self, handle: str) -> list[Key]:
        """The switchboard connections ``handle`` has in rooms it joined."""
        out = []
        for room_id in self._member_of.get(handle, {}):
            room = self._rooms.get(room_id)
            connection = room.connection_of(handle) if room is not None else None
            if connection is not None:
                out.append(connection)
        return out

    def find(self, handle: str, peer: str) -> Room | None:
        """A room where ``handle`` is connected or rung and ``peer`` takes part."""
        joined = self._member_of.get(peer)
        if not joined:
            return None
        for room_id in reversed(list(joined)):
            room = self._rooms.get(room_id)
            if room is None or peer not in room.participants:
                del joined[room_id]  # closed, or the peer left it
                continue
            if room.connection_of(handle) is not None or handle in room.invitations:
                return room
        if not joined:
            del self._member_of[peer]
        return None

    def remember_origin(self, event_id: str, room_id: str) -> None:
        self._origins[event_id] = room_id
        while len(self._origins) > ORIGIN_MEMORY:
            self._origins.popitem(last=False)

    def origin(self, event_id: str) -> Room | None:
        room_id = self._origins.get(event_id)
        return self._rooms.get(room_id) if room_id else None

    def expire(self, now: float) -> list[Expired]:
        expired: list[Expired] = []
        for room in list(self._rooms.values()):
            for handle, invitation in list(room.invitations.items()):
                if now >= invitation.deadline:
                    del room.invitations[handle]
                    expired.append(Expired(room.room_id, handle, tuple(invitation.queue)))
            if room.empty and not room.invitations:
                self._drop(room)
        return expired

    def withdraw(self, handle: str) -> list[Expired]:
        """``handle`` went offline: its invitations end now (as if expired)."""
        out: list[Expired] = []
        for room in list(self._rooms.values()):
            invitation = room.invitations.pop(handle, None)
            if invitation is not None:
                out.append(Expired(room.room_id, handle, tuple(invitation.queue)))
            if room.empty and not room.invitations:
                self._drop(room)
        return out

    def next_deadline(self) -> float | None:
        deadlines = [i.deadline for r in self._rooms.values() for i in r.invitations.values()]
        return min(deadlines) if deadlines else None
