"""The feedbag (server-stored buddy list, family 0x13) over the core's contact list.

Buddies, permits and denies live in the core as :class:`ContactEntry` rows (the SSI
group and item ids ride along in ``network_data`` as JSON, so a client's cached ids
stay stable). Groups are derived from the buddies' group names; the root group and
each group's member list (TLV 0xC8) are computed, never stored. Items the core has
no notion of (permit/deny settings, presence preferences, icons...) are kept by the
adapter as "extras" (its per-account adapter data in Redis) and handed in here.

Edits return the contact rows that changed, which the session hands to the core.
Pure: no I/O, no clock.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from adapters.oscar.snac import FeedbagItem
from adapters.oscar.tlv import Tlv, find, has
from schema.addresses import AddressError, make_address, split_address
from schema.records import ContactEntry

CLASS_BUDDY = 0x0000
CLASS_GROUP = 0x0001
CLASS_PERMIT = 0x0002
CLASS_DENY = 0x0003
CLASS_PD_INFO = 0x0004

TLV_MEMBERS = 0x00C8
TLV_PD_MODE = 0x00CA
TLV_ALIAS = 0x0131
TLV_AWAITING_AUTH = 0x0066

STATUS_OK = 0x0000
STATUS_NOT_FOUND = 0x0002
STATUS_EXISTS = 0x0003
STATUS_INVALID = 0x000A
STATUS_LIMIT = 0x000C

DEFAULT_GROUP = "Buddies"
MAX_ITEMS = 1000
NETWORK = "oscar"


@dataclass(frozen=True, slots=True)
class PutContact:
    entry: ContactEntry


@dataclass(frozen=True, slots=True)
class RemoveContact:
    contact: str


ContactChange = PutContact | RemoveContact


def _ids(entry: ContactEntry) -> dict[str, int]:
    if not entry.network_data:
        return {}
    try:
        data = json.loads(entry.network_data)
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, int) and 0 < v <= 0xFFFF}


def _with_ids(entry: ContactEntry, **ids: int | None) -> ContactEntry:
    current = _ids(entry)
    for key, value in ids.items():
        if value is None:
            current.pop(key, None)
        else:
            current[key] = value
    return replace(entry, network_data=json.dumps(current, sort_keys=True) if current else "")


class Feedbag:
    def __init__(
        self,
        owner: str,
        entries: Sequence[ContactEntry],
        extras: Iterable[FeedbagItem] = (),
        timestamp: int = 0,
    ) -> None:
        self.owner = owner
        self.timestamp = timestamp
        self._entries: dict[str, ContactEntry] = {}
        self._groups: dict[int, FeedbagItem] = {}
        self._buddies: dict[tuple[int, int], FeedbagItem] = {}
        self._permits: dict[int, FeedbagItem] = {}
        self._denies: dict[int, FeedbagItem] = {}
        self._extras: dict[tuple[int, int, int], FeedbagItem] = {}
        for item in extras:
            self._extras[(item.group_id, item.item_id, item.class_id)] = item
        for entry in entries:
            self._load(entry)

    # ------------------------------------------------------------ loading

    def _native(self, address: str) -> str | None:
        try:
            network, native = split_address(address)
        except AddressError:
            return None
        return native if network == NETWORK else None

    def _load(self, entry: ContactEntry) -> None:
        native = self._native(entry.contact)
        if native is None:
            return
        ids = _ids(entry)
        if entry.subscribed:
            gid = self._group_id(entry.group or DEFAULT_GROUP, ids.get("g"))
            bid = ids.get("b")
            if bid is None or (gid, bid) in self._buddies:
                bid = self._free_item_id(gid)
            self._buddies[(gid, bid)] = FeedbagItem(
                native, gid, bid, CLASS_BUDDY, self._buddy_tlvs(entry)
            )
            ids["g"], ids["b"] = gid, bid
        if entry.blocked:
            bid = ids.get("d")
            if bid is None or bid in self._denies:
                bid = self._free_item_id(0)
            self._denies[bid] = FeedbagItem(native, 0, bid, CLASS_DENY)
            ids["d"] = bid
        if "p" in ids and ids["p"] not in self._permits:
            self._permits[ids["p"]] = FeedbagItem(native, 0, ids["p"], CLASS_PERMIT)
        self._entries[entry.contact] = _with_ids(entry, **ids)

    @staticmethod
    def _buddy_tlvs(entry: ContactEntry) -> tuple[Tlv, ...]:
        tlvs: list[Tlv] = []
        if entry.display_name:
            tlvs.append(Tlv(TLV_ALIAS, entry.display_name.encode("utf-8")[:255]))
        if entry.pending:
            tlvs.append(Tlv(TLV_AWAITING_AUTH))
        return tuple(tlvs)

    def _group_id(self, name: str, wanted: int | None) -> int:
        for gid, group in self._groups.items():
            if group.name == name:
                return gid
        if wanted is None or wanted in self._groups:
            wanted = 1
            while wanted in self._groups:
                wanted += 1
        self._groups[wanted] = FeedbagItem(name, wanted, 0, CLASS_GROUP)
        return wanted

    def _used_item_ids(self, gid: int) -> set[int]:
        used = {b for g, b in self._buddies if g == gid}
        if gid == 0:
            used |= set(self._permits) | set(self._denies)
            used |= {b for g, b, _ in self._extras if g == 0}
        return used

    def _free_item_id(self, gid: int) -> int:
        used = self._used_item_ids(gid)
        candidate = 1
        while candidate in used:
            candidate += 1
        return candidate

    # ------------------------------------------------------------ reading

    def items(self) -> tuple[FeedbagItem, ...]:
        """Every item, root group first, as 13/06 sends them."""
        members_of: dict[int, list[int]] = {gid: [] for gid in self._groups}
        for gid, bid in sorted(self._buddies):
            members_of.setdefault(gid, []).append(bid)
        out = [FeedbagItem("", 0, 0, CLASS_GROUP, (_members(sorted(self._groups)),))]
        for gid, group in sorted(self._groups.items()):
            others = tuple(t for t in group.tlvs if t.type != TLV_MEMBERS)
            out.append(replace(group, tlvs=(_members(members_of.get(gid, [])), *others)))
        out.extend(self._buddies[k] for k in sorted(self._buddies))
        out.extend(self._permits[k] for k in sorted(self._permits))
        out.extend(self._denies[k] for k in sorted(self._denies))
        out.extend(self._extras[k] for k in sorted(self._extras))
        return tuple(out)

    def extras(self) -> tuple[FeedbagItem, ...]:
        return tuple(self._extras[k] for k in sorted(self._extras))

    def buddies(self) -> tuple[str, ...]:
        """Native ids on the buddy list (each once)."""
        return tuple(dict.fromkeys(item.name for item in self._buddies.values()))

    def entry(self, contact: str) -> ContactEntry | None:
        return self._entries.get(contact)

    @property
    def deny_all(self) -> bool:
        for item in self._extras.values():
            if item.class_id == CLASS_PD_INFO:
                mode = find(item.tlvs, TLV_PD_MODE)
                return mode == bytes([0x02])
        return False

    @property
    def uses_authorization(self) -> bool:
        return any(has(i.tlvs, TLV_AWAITING_AUTH) for i in self._buddies.values())

    # ------------------------------------------------------------ edits

    def insert(self, item: FeedbagItem) -> tuple[int, list[ContactChange]]:
        if len(self.items()) >= MAX_ITEMS:
            return STATUS_LIMIT, []
        if item.class_id == CLASS_GROUP:
            if item.group_id == 0:
                return STATUS_OK, []  # the root group always exists
            if item.group_id in self._groups:
                return STATUS_EXISTS, []
            self._groups[item.group_id] = item
            return STATUS_OK, []
        if item.class_id in (CLASS_BUDDY, CLASS_PERMIT, CLASS_DENY):
            return self._put_person(item, exists_is_error=True)
        self._extras[(item.group_id, item.item_id, item.class_id)] = item
        return STATUS_OK, []

    def update(self, item: FeedbagItem) -> tuple[int, list[ContactChange]]:
        if item.class_id == CLASS_GROUP:
            if item.group_id == 0:
                return STATUS_OK, []
            old = self._groups.get(item.group_id)
            self._groups[item.group_id] = item
            if old is None or old.name == item.name:
                return STATUS_OK, []
            return STATUS_OK, self._regroup(item.group_id, item.name)
        if item.class_id in (CLASS_BUDDY, CLASS_PERMIT, CLASS_DENY):
            return self._put_person(item, exists_is_error=False)
        self._extras[(item.group_id, item.item_id, item.class_id)] = item
        return STATUS_OK, []

    def delete(self, item: FeedbagItem) -> tuple[int, list[ContactChange]]:
        if item.class_id == CLASS_GROUP:
            if item.group_id == 0:
                return STATUS_OK, []
            if self._groups.pop(item.group_id, None) is None:
                return STATUS_NOT_FOUND, []
            changes: list[ContactChange] = []
            for key in [k for k in self._buddies if k[0] == item.group_id]:
                changes.extend(self._drop_buddy(key))
            return STATUS_OK, changes
        if item.class_id == CLASS_BUDDY:
            key = (item.group_id, item.item_id)
            if key not in self._buddies:
                return STATUS_NOT_FOUND, []
            return STATUS_OK, self._drop_buddy(key)
        if item.class_id in (CLASS_PERMIT, CLASS_DENY):
            table = self._permits if item.class_id == CLASS_PERMIT else self._denies
            old = table.pop(item.item_id, None)
            if old is None:
                return STATUS_NOT_FOUND, []
            address = self._address(old.name)
            if address is None:
                return STATUS_OK, []
            entry = self._entries.get(address)
            if entry is None:
                return STATUS_OK, []
            if item.class_id == CLASS_DENY:
                entry = _with_ids(replace(entry, blocked=False), d=None)
            else:
                entry = _with_ids(entry, p=None)
            return STATUS_OK, self._settle(entry)
        if self._extras.pop((item.group_id, item.item_id, item.class_id), None) is None:
            return STATUS_NOT_FOUND, []
        return STATUS_OK, []

    def _address(self, native: str) -> str | None:
        try:
            return make_address(NETWORK, native)
        except AddressError:
            return None

    def _put_person(
        self, item: FeedbagItem, exists_is_error: bool
    ) -> tuple[int, list[ContactChange]]:
        address = self._address(item.name)
        if address is None or address == self.owner:
            return STATUS_INVALID, []
        entry = self._entries.get(address) or ContactEntry(
            contact=address, subscribed=False, allowed=True
        )
        if item.class_id == CLASS_BUDDY:
            key = (item.group_id, item.item_id)
            if exists_is_error and key in self._buddies:
                return STATUS_EXISTS, []
            group = self._groups.get(item.group_id)
            if group is None:
                group = FeedbagItem(DEFAULT_GROUP, item.group_id, 0, CLASS_GROUP)
                self._groups[item.group_id] = group
            self._buddies[key] = item
            alias = find(item.tlvs, TLV_ALIAS)
            entry = _with_ids(
                replace(
                    entry,
                    subscribed=True,
                    group=group.name or DEFAULT_GROUP,
                    display_name=alias.decode("utf-8", "replace")[:128] if alias else "",
                    pending=has(item.tlvs, TLV_AWAITING_AUTH),
                ),
                g=item.group_id,
                b=item.item_id,
            )
        elif item.class_id == CLASS_DENY:
            if exists_is_error and item.item_id in self._denies:
                return STATUS_EXISTS, []
            self._denies[item.item_id] = item
            entry = _with_ids(replace(entry, blocked=True), d=item.item_id)
        else:
            if exists_is_error and item.item_id in self._permits:
                return STATUS_EXISTS, []
            self._permits[item.item_id] = item
            entry = _with_ids(replace(entry, allowed=True), p=item.item_id)
        return STATUS_OK, self._settle(entry)

    def _drop_buddy(self, key: tuple[int, int]) -> list[ContactChange]:
        item = self._buddies.pop(key)
        address = self._address(item.name)
        if address is None or address not in self._entries:
            return []
        if any(b.name == item.name for b in self._buddies.values()):
            return []  # still listed in another group
        entry = _with_ids(replace(self._entries[address], subscribed=False), g=None, b=None)
        return self._settle(entry)

    def _regroup(self, gid: int, name: str) -> list[ContactChange]:
        changes: list[ContactChange] = []
        for (g, _b), item in self._buddies.items():
            address = self._address(item.name)
            if g != gid or address is None or address not in self._entries:
                continue
            changes.extend(self._settle(replace(self._entries[address], group=name)))
        return changes

    def _settle(self, entry: ContactEntry) -> list[ContactChange]:
        ids = _ids(entry)
        if not entry.subscribed and not entry.blocked and "p" not in ids:
            self._entries.pop(entry.contact, None)
            return [RemoveContact(entry.contact)]
        self._entries[entry.contact] = entry
        return [PutContact(entry)]

    # ------------------------------------------------------------ client-side lists (03/04, 09/05-08)

    def watch(self, native: str) -> list[ContactChange]:
        """A client-side buddy list entry (03/04): kept in the core so presence flows."""
        address = self._address(native)
        if address is None or address == self.owner:
            return []
        existing = self._entries.get(address)
        if existing is not None and existing.subscribed:
            return []
        entry = (
            replace(existing, subscribed=True)
            if existing
            else ContactEntry(contact=address, group=DEFAULT_GROUP, subscribed=True, allowed=True)
        )
        self._entries[address] = entry
        return [PutContact(entry)]

    def unwatch(self, native: str) -> list[ContactChange]:
        address = self._address(native)
        entry = self._entries.get(address) if address else None
        if entry is None or "b" in _ids(entry):
            return []  # unknown, or also on the server-stored list
        return self._settle(replace(entry, subscribed=False))

    def set_blocked(self, native: str, blocked: bool) -> list[ContactChange]:
        """Client-side deny list (09/07, 09/08)."""
        address = self._address(native)
        if address is None or address == self.owner:
            return []
        entry = self._entries.get(address) or ContactEntry(
            contact=address, subscribed=False, allowed=True
        )
        if entry.blocked == blocked:
            return []
        return self._settle(replace(entry, blocked=blocked))


def _members(ids: Iterable[int]) -> Tlv:
    return Tlv(TLV_MEMBERS, b"".join(struct.pack(">H", i) for i in ids))
