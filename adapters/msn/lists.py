"""MSN contact lists, per protocol version: rendering and edits, sans-IO.

MSN has four lists per user: forward (FL, whose presence I watch), allow (AL, who may
see me), block (BL) and reverse (RL, who watches me). They map onto the core's
contact entries: ``subscribed`` = FL, ``allowed`` = AL, ``blocked`` = BL, and the
core's ``watchers`` = RL. Groups are names on entries; MSN wants ids, so a group id
is derived from its name (a number up to MSNP9, a GUID from MSNP10), with group 0 /
the all-zero GUID for the core's default group.

Shapes (hypothetic.org for MSNP2-9, the yellows111 MSNP wiki and escargot's server
for MSNP10-12):

- MSNP2-5: ``LST trid FL ser item total handle name``; ``GTC trid ser A``.
- MSNP6-7: adds ``LSG trid ser item total id name 0`` and groups on FL lines.
- MSNP8-9: ``SYN trid ser contacts groups``, ``GTC A``, ``BLP AL``, ``LSG id name 0``,
  ``LST handle name bits groups``.
- MSNP10-12: ``SYN trid ts ts contacts groups``, ``PRP MFN name``, ``LSG name guid``,
  ``LST N=handle F=name C=guid bits [1] groups``; ``ADC`` replaces ``ADD``.
"""

from __future__ import annotations

import uuid
import zlib
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from adapters.msn.codec import Command
from adapters.msn.translate import encode_name
from schema.records import ContactEntry

DEFAULT_GROUP = "Contacts"
MAX_GROUP_NAME = 61
LIST_BITS = {"FL": 1, "AL": 2, "BL": 4, "RL": 8}
EDITABLE_LISTS = frozenset({"FL", "AL", "BL"})
_GROUP_NS = uuid.UUID("6f1f6a52-33a5-4c1e-8f56-1d0b4f3a9c11")
_CONTACT_NS = uuid.UUID("0b0b7a0c-6d53-4a43-9a57-9a6f9c2c0d21")
ZERO_GUID = "00000000-0000-0000-0000-000000000000"

# MSNP error numbers (hypothetic.org "Reference - Error List")
ERR_SYNTAX = 200
ERR_INVALID_PARAMETER = 201
ERR_INVALID_USER = 205
ERR_INVALID_USER_10 = 208
ERR_ALREADY_ON_LIST = 215
ERR_NOT_ON_LIST = 216
ERR_NOT_ONLINE = 217
ERR_ALREADY_IN_MODE = 218
ERR_INVALID_GROUP = 224
ERR_GROUP_EXISTS = 228
ERR_GROUP_NAME_TOO_LONG = 229
ERR_GROUP_ZERO = 230
ERR_INTERNAL = 500
ERR_DISABLED = 502
ERR_CHALLENGE = 540
ERR_NOT_EXPECTED = 715
ERR_AUTH_FAILED = 911
ERR_NOT_WHILE_HIDDEN = 913


@dataclass(frozen=True, slots=True)
class ListedContact:
    """One core contact entry as this MSN user sees it."""

    handle: str  # the MSN handle (native or alias)
    address: str  # the real address the entry names
    display: str
    forward: bool = False
    allow: bool = False
    block: bool = False
    reverse: bool = False
    group: str = DEFAULT_GROUP
    entry: ContactEntry | None = None  # the core's entry; None for reverse-only


@dataclass(frozen=True, slots=True)
class ListSnapshot:
    owner_handle: str
    owner_name: str
    contacts: tuple[ListedContact, ...]
    groups: tuple[str, ...] = (DEFAULT_GROUP,)
    gtc: str = "A"
    blp: str = "AL"
    group_aliases: tuple[tuple[str, str], ...] = ()  # (old id, current name) after renames
    owner_properties: tuple[tuple[str, str], ...] = ()  # PRP name -> value (not MFN)
    contact_properties: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()
    """SBP: contact id (GUID or handle, as the client sent it) -> (property, value)."""

    def properties_of(self, contact: ListedContact) -> tuple[tuple[str, str], ...]:
        """The SBP properties stored for ``contact`` (under its GUID or handle)."""
        keys = (contact_guid(contact.address), contact.handle)
        for ident, props in self.contact_properties:
            if ident in keys:
                return props
        return ()

    def find_group(self, version: int, ident: str) -> str | None:
        """The group a client's id names; ids of renamed groups still name them."""
        for old, name in self.group_aliases:
            if old == ident.lower() and name in self.groups:
                return name
        return find_group(version, ident, self.groups)

    def by_handle(self, handle: str) -> ListedContact | None:
        wanted = handle.lower()
        return next((c for c in self.contacts if c.handle == wanted), None)

    def by_guid(self, guid: str) -> ListedContact | None:
        return next((c for c in self.contacts if contact_guid(c.address) == guid.lower()), None)


def group_number(name: str) -> int:
    if name == DEFAULT_GROUP:
        return 0
    return zlib.crc32(name.encode("utf-8")) % 999_983 + 1


def group_guid(name: str) -> str:
    if name == DEFAULT_GROUP:
        return ZERO_GUID
    return str(uuid.uuid5(_GROUP_NS, name))


def group_id(version: int, name: str) -> str:
    return group_guid(name) if version >= 10 else str(group_number(name))


def find_group(version: int, ident: str, groups: tuple[str, ...]) -> str | None:
    for name in groups:
        if group_id(version, name) == ident.lower():
            return name
    return None


def contact_guid(address: str) -> str:
    return str(uuid.uuid5(_CONTACT_NS, address))


def list_bits(contact: ListedContact) -> int:
    bits = 0
    bits |= LIST_BITS["FL"] if contact.forward else 0
    bits |= LIST_BITS["AL"] if contact.allow else 0
    bits |= LIST_BITS["BL"] if contact.block else 0
    bits |= LIST_BITS["RL"] if contact.reverse else 0
    return bits


def sync_timestamp(now: float) -> str:
    stamp = datetime.fromtimestamp(now, UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.0-00:00")


def render_sync(
    version: int, trid: int, snapshot: ListSnapshot, serial: int, now: float
) -> list[Command]:
    """Every line answering ``SYN`` (the full lists: we never claim the client's cache is current)."""
    if version >= 10:
        return _sync_10(version, trid, snapshot, now)
    if version >= 8:
        return _sync_8(trid, snapshot, serial)
    return _sync_2(version, trid, snapshot, serial)


def _members(snapshot: ListSnapshot, name: str) -> list[ListedContact]:
    attr = {"FL": "forward", "AL": "allow", "BL": "block", "RL": "reverse"}[name]
    return [c for c in snapshot.contacts if getattr(c, attr)]


def _sync_2(version: int, trid: int, snapshot: ListSnapshot, serial: int) -> list[Command]:
    ser = str(serial)
    out = [Command("SYN", trid, (ser,))]
    out.append(Command("GTC", trid, (ser, snapshot.gtc)))
    out.append(Command("BLP", trid, (ser, snapshot.blp)))
    if version >= 6:
        total = str(len(snapshot.groups))
        for i, name in enumerate(snapshot.groups, 1):
            out.append(
                Command(
                    "LSG",
                    trid,
                    (ser, str(i), total, str(group_number(name)), encode_name(name), "0"),
                )
            )
    for list_name in ("FL", "AL", "BL", "RL"):
        members = _members(snapshot, list_name)
        if not members:
            out.append(Command("LST", trid, (list_name, ser, "0", "0")))
            continue
        for i, c in enumerate(members, 1):
            args: tuple[str, ...] = (list_name, ser, str(i), str(len(members)), c.handle)
            args += (encode_name(c.display),)
            if version >= 6 and list_name == "FL":
                args += (str(group_number(c.group)),)
            out.append(Command("LST", trid, args))
    return out


def _sync_8(trid: int, snapshot: ListSnapshot, serial: int) -> list[Command]:
    out = [
        Command("SYN", trid, (str(serial), str(len(snapshot.contacts)), str(len(snapshot.groups)))),
        Command("GTC", None, (snapshot.gtc,)),
        Command("BLP", None, (snapshot.blp,)),
    ]
    out += _owner_properties(snapshot)
    for name in snapshot.groups:
        out.append(Command("LSG", None, (str(group_number(name)), encode_name(name), "0")))
    for c in snapshot.contacts:
        args: tuple[str, ...] = (c.handle, encode_name(c.display), str(list_bits(c)))
        if c.forward:
            args += (str(group_number(c.group)),)
        out.append(Command("LST", None, args))
        out += _contact_properties(snapshot, c)
    return out


# Given back in SYN as real servers did (hypothetic.org "Notification - Synchronization":
# PRP lines after BLP, BPR lines after their contact's LST). MFN is not among them: the
# user's own name is its own PRP MFN line (MSNP10+) and a contact's name is F= / the LST
# name, which is always that person's display name (docs/protocols/msn.md, "Names").
_PHONE_PROPERTIES = ("PHH", "PHW", "PHM", "MOB", "MBE", "WWE", "HSB")


def _owner_properties(snapshot: ListSnapshot) -> list[Command]:
    stored = dict(snapshot.owner_properties)
    return [Command("PRP", None, (p, stored[p])) for p in _PHONE_PROPERTIES if p in stored]


def _contact_properties(snapshot: ListSnapshot, contact: ListedContact) -> list[Command]:
    stored = dict(snapshot.properties_of(contact))
    return [Command("BPR", None, (p, stored[p])) for p in _PHONE_PROPERTIES if p in stored]


def _sync_10(version: int, trid: int, snapshot: ListSnapshot, now: float) -> list[Command]:
    stamp = sync_timestamp(now)
    groups = [g for g in snapshot.groups if g != DEFAULT_GROUP]
    out = [
        Command("SYN", trid, (stamp, stamp, str(len(snapshot.contacts)), str(len(groups)))),
        Command("GTC", None, (snapshot.gtc,)),
        Command("BLP", None, (snapshot.blp,)),
        Command("PRP", None, ("MFN", encode_name(snapshot.owner_name))),
        *_owner_properties(snapshot),
    ]
    for name in groups:
        out.append(Command("LSG", None, (encode_name(name), group_guid(name))))
    for c in snapshot.contacts:
        args: tuple[str, ...] = (f"N={c.handle}",)
        if c.forward:
            args += (f"F={encode_name(c.display)}", f"C={contact_guid(c.address)}")
        args += (str(list_bits(c)),)
        if version >= 12:
            args += ("1",)
        if c.forward and c.group != DEFAULT_GROUP:
            args += (group_guid(c.group),)
        out.append(Command("LST", None, args))
        out += _contact_properties(snapshot, c)
    return out


def render_query(
    version: int, trid: int, snapshot: ListSnapshot, serial: int, verb: str, list_name: str
) -> list[Command]:
    """MSNP2-7 ``LST trid <list>`` / ``LSG trid``: those lines of a full sync."""
    lines = _sync_2(version, trid, snapshot, serial)
    if verb == "LSG":
        return [c for c in lines if c.verb == "LSG"]
    return [c for c in lines if c.verb == "LST" and c.args[0] == list_name]


def presence_lines(
    version: int,
    handle: str,
    display: str,
    state: str,
    status_text: str = "",
    trid: int | None = None,
) -> list[Command]:
    """``ILN`` (when ``trid`` is given) or ``NLN``/``FLN`` for one contact."""
    if state == "FLN":
        return [] if trid is not None else [Command("FLN", None, (handle,))]
    args: tuple[str, ...] = (state, handle, encode_name(display))
    if version >= 8:
        args += ("0",)  # client id: no capabilities advertised for gateway contacts
    out = [Command("ILN", trid, args) if trid is not None else Command("NLN", None, args)]
    if version >= 11:
        out.append(Command("UBX", None, (handle,), psm_payload(status_text)))
    return out


def psm_payload(text: str) -> bytes:
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return f"<Data><PSM>{escaped}</PSM><CurrentMedia></CurrentMedia></Data>".encode()


def reverse_add_lines(version: int, handle: str, display: str, serial: int) -> list[Command]:
    """Tell the client that ``handle`` added it (it lands on the reverse list)."""
    if version >= 10:
        return [Command("ADC", 0, ("RL", f"N={handle}", f"F={encode_name(display)}"))]
    return [Command("ADD", 0, ("RL", str(serial), handle, encode_name(display)))]


# ---- edits


@dataclass(frozen=True, slots=True)
class AddToList:
    list_name: str
    handle: str | None  # None when the contact is named by GUID (ADC FL C=...)
    name: str = ""
    group: str | None = None  # group id as the client sent it
    guid: str | None = None


@dataclass(frozen=True, slots=True)
class RemoveFromList:
    list_name: str
    ident: str  # handle, or a contact GUID for FL from MSNP10
    group: str | None = None


@dataclass(frozen=True, slots=True)
class AddGroup:
    name: str


@dataclass(frozen=True, slots=True)
class RemoveGroup:
    ident: str


@dataclass(frozen=True, slots=True)
class RenameGroup:
    ident: str
    name: str


ListEdit = AddToList | RemoveFromList | AddGroup | RemoveGroup | RenameGroup


@dataclass(frozen=True, slots=True)
class EditOutcome:
    """What an edit does: entries to write or drop, canonical effects, replies."""

    replies: tuple[Command, ...] = ()
    error: int | None = None
    put: tuple[ContactEntry, ...] = ()
    remove: tuple[str, ...] = ()
    request_from: str | None = None  # submit a ContactRequest to this address
    authorize: tuple[str, bool] | None = None  # submit an Authorization (to, granted)
    groups: tuple[str, ...] | None = None  # the new list of groups, when it changed
    group_aliases: tuple[tuple[str, str], ...] = ()  # (old id, name) after a rename
    new_contact: bool = False


def apply_edit(
    version: int,
    trid: int,
    snapshot: ListSnapshot,
    edit: ListEdit,
    serial: int,
    resolved: str | None = None,
    shown: str = "",
) -> EditOutcome:
    """The outcome of ``edit`` against ``snapshot``.

    ``resolved`` is the real address behind a handle that is not yet on any list
    (the caller asks the core); None means nobody owns it. ``shown`` is the added
    contact's name as every line shows it (translate.contact_name): the reply carries
    it, not the name the client typed (which is only kept with the entry).
    """
    if isinstance(edit, AddToList):
        return _add(version, trid, snapshot, edit, serial, resolved, shown)
    if isinstance(edit, RemoveFromList):
        return _remove(version, trid, snapshot, edit, serial)
    if isinstance(edit, AddGroup):
        return _add_group(version, trid, snapshot, edit, serial)
    if isinstance(edit, RemoveGroup):
        return _remove_group(version, trid, snapshot, edit, serial)
    return _rename_group(version, trid, snapshot, edit, serial)


def _unknown_user(version: int) -> EditOutcome:
    return EditOutcome(error=ERR_INVALID_USER_10 if version >= 10 else ERR_INVALID_USER)


def _add(
    version: int,
    trid: int,
    snapshot: ListSnapshot,
    edit: AddToList,
    serial: int,
    resolved: str | None,
    shown: str = "",
) -> EditOutcome:
    existing = (
        snapshot.by_handle(edit.handle)
        if edit.handle is not None
        else snapshot.by_guid(edit.guid or "")
    )
    if existing is None and edit.handle is None:
        return _unknown_user(version)
    group_name = DEFAULT_GROUP
    if edit.group is not None:
        found = snapshot.find_group(version, edit.group)
        if found is None:
            return EditOutcome(error=ERR_INVALID_GROUP)
        group_name = found
    if existing is not None and existing.entry is not None:
        entry = existing.entry
        address = existing.address
        handle = existing.handle
    else:
        address = existing.address if existing is not None else (resolved or "")
        if not address:
            return _unknown_user(version)
        handle = existing.handle if existing is not None else (edit.handle or "")
        entry = ContactEntry(
            contact=address, group=group_name, display_name=edit.name, subscribed=False
        )
    ser = str(serial)
    name = edit.name or entry.display_name or handle
    request_from: str | None = None
    authorize: tuple[str, bool] | None = None
    if edit.list_name == "FL":
        if entry.subscribed and edit.group is None:
            return EditOutcome(error=ERR_ALREADY_ON_LIST)
        updated = replace(entry, subscribed=True, group=group_name, display_name=name)
        if not entry.subscribed:
            request_from = address
    elif edit.list_name == "AL":
        if entry.allowed:
            return EditOutcome(error=ERR_ALREADY_ON_LIST)
        updated = replace(entry, allowed=True, blocked=False, pending=False)
        authorize = (address, True)
    else:
        if entry.blocked:
            return EditOutcome(error=ERR_ALREADY_ON_LIST)
        updated = replace(entry, blocked=True, allowed=False, pending=False)
        if existing is not None and existing.reverse and not entry.allowed:
            authorize = (address, False)
    if version >= 10:
        if edit.list_name == "FL" and edit.handle is None:
            reply = Command("ADC", trid, ("FL", f"C={contact_guid(address)}", edit.group or ""))
        elif edit.list_name == "FL":
            args: tuple[str, ...] = ("FL", f"N={handle}", f"F={encode_name(shown or name)}")
            args += (f"C={contact_guid(address)}",)
            if edit.group is not None:
                args += (edit.group,)
            reply = Command("ADC", trid, args)
        else:
            reply = Command("ADC", trid, (edit.list_name, f"N={handle}"))
    else:
        args = (edit.list_name, ser, handle, encode_name(shown or name))
        if edit.list_name == "FL":
            args += (edit.group or "0",)
        reply = Command("ADD", trid, args)
    return EditOutcome(
        replies=(reply,),
        put=(updated,),
        request_from=request_from,
        authorize=authorize,
        new_contact=existing is None,
    )


def _remove(
    version: int, trid: int, snapshot: ListSnapshot, edit: RemoveFromList, serial: int
) -> EditOutcome:
    if edit.list_name == "FL" and version >= 10:
        existing = snapshot.by_guid(edit.ident) or snapshot.by_handle(edit.ident)
    else:
        existing = snapshot.by_handle(edit.ident)
    if existing is None or existing.entry is None:
        return EditOutcome(error=ERR_NOT_ON_LIST)
    entry = existing.entry
    if edit.list_name == "FL":
        if not entry.subscribed:
            return EditOutcome(error=ERR_NOT_ON_LIST)
        if edit.group is not None:
            # Removing from a group moves the contact back to the default group.
            if snapshot.find_group(version, edit.group) != entry.group:
                return EditOutcome(error=ERR_INVALID_GROUP)
            updated = replace(entry, group=DEFAULT_GROUP)
        else:
            updated = replace(entry, subscribed=False)
    elif edit.list_name == "AL":
        if not entry.allowed:
            return EditOutcome(error=ERR_NOT_ON_LIST)
        updated = replace(entry, allowed=False)
    else:
        if not entry.blocked:
            return EditOutcome(error=ERR_NOT_ON_LIST)
        updated = replace(entry, blocked=False)
    args: tuple[str, ...] = (edit.list_name,)
    if version < 10:
        args += (str(serial),)
    args += (edit.ident,)
    if edit.group is not None:
        args += (edit.group,)
    reply = Command("REM", trid, args)
    if not (updated.subscribed or updated.allowed or updated.blocked):
        return EditOutcome(replies=(reply,), remove=(entry.contact,))
    return EditOutcome(replies=(reply,), put=(updated,))


def _add_group(
    version: int, trid: int, snapshot: ListSnapshot, edit: AddGroup, serial: int
) -> EditOutcome:
    if len(edit.name) > MAX_GROUP_NAME:
        return EditOutcome(error=ERR_GROUP_NAME_TOO_LONG)
    if edit.name in snapshot.groups or not edit.name.strip():
        return EditOutcome(error=ERR_GROUP_EXISTS)
    ident = group_id(version, edit.name)
    if version >= 10:
        reply = Command("ADG", trid, (encode_name(edit.name), ident))
    else:
        reply = Command("ADG", trid, (str(serial), encode_name(edit.name), ident, "0"))
    return EditOutcome(replies=(reply,), groups=(*snapshot.groups, edit.name))


def _remove_group(
    version: int, trid: int, snapshot: ListSnapshot, edit: RemoveGroup, serial: int
) -> EditOutcome:
    name = snapshot.find_group(version, edit.ident)
    if name == DEFAULT_GROUP:
        return EditOutcome(error=ERR_GROUP_ZERO)
    if name is None:
        return EditOutcome(error=ERR_INVALID_GROUP)
    moved = tuple(
        replace(c.entry, group=DEFAULT_GROUP)
        for c in snapshot.contacts
        if c.entry is not None and c.entry.group == name
    )
    args = (edit.ident,) if version >= 10 else (str(serial), edit.ident)
    return EditOutcome(
        replies=(Command("RMG", trid, args),),
        put=moved,
        groups=tuple(g for g in snapshot.groups if g != name),
    )


def _rename_group(
    version: int, trid: int, snapshot: ListSnapshot, edit: RenameGroup, serial: int
) -> EditOutcome:
    name = snapshot.find_group(version, edit.ident)
    if name is None:
        return EditOutcome(error=ERR_INVALID_GROUP)
    if name == DEFAULT_GROUP:
        return EditOutcome(error=ERR_GROUP_ZERO)
    if len(edit.name) > MAX_GROUP_NAME:
        return EditOutcome(error=ERR_GROUP_NAME_TOO_LONG)
    if edit.name in snapshot.groups:
        return EditOutcome(error=ERR_GROUP_EXISTS)
    moved = tuple(
        replace(c.entry, group=edit.name)
        for c in snapshot.contacts
        if c.entry is not None and c.entry.group == name
    )
    if version >= 10:
        reply = Command("REG", trid, (edit.ident, encode_name(edit.name)))
    else:
        reply = Command("REG", trid, (str(serial), edit.ident, encode_name(edit.name), "0"))
    return EditOutcome(
        replies=(reply,),
        put=moved,
        groups=tuple(edit.name if g == name else g for g in snapshot.groups),
        group_aliases=((edit.ident, edit.name),),
    )


@dataclass(slots=True)
class OwnerSettings:
    """Per-user MSN settings the core has no place for (the account's adapter data in
    Redis). BLP is not here: it is the account's presence policy, kept by the core."""

    gtc: str = "A"
    extra_groups: list[str] = field(default_factory=list)
    group_aliases: dict[str, str] = field(default_factory=dict)
    properties: dict[str, str] = field(default_factory=dict)  # PRP
    contact_properties: dict[str, dict[str, str]] = field(default_factory=dict)  # SBP
