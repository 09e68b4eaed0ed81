"""The core's side of first contact and names (docs/adr/0009-first-contact.md), on the
test session's real Redis: who may write first, and renaming oneself."""

from __future__ import annotations

from schema.events import Presence, PresenceState
from schema.records import ContactEntry
from tests.test_bot import online, run, running_core

IVAN = "oscar:123456"
EVE = "msn:eve@example.com"
BOB = "msn:bob@example.com"


def test_writing_first_needs_no_consent_only_no_block(redis_url: str) -> None:
    """A stranger sees Ivan offline (no consent) but may write to him: presence_for_writer
    is his real presence; a block makes it offline; invisible shows offline, as to anyone."""

    async def scenario() -> None:
        async with running_core(redis_url) as core:
            await core.store.accounts.create("oscar", "123456", "pw", "Ivan")
            await core.store.accounts.create("msn", "eve@example.com", "pw", "Eve")
            await online(core, IVAN)
            assert await core.presence_of(IVAN, EVE) is PresenceState.OFFLINE  # consent as before
            assert await core.presence_for_writer(IVAN, EVE) is PresenceState.ONLINE
            await core.put_contact(IVAN, ContactEntry(contact=EVE, blocked=True))
            assert await core.presence_for_writer(IVAN, EVE) is PresenceState.OFFLINE
            await core.remove_contact(IVAN, EVE)
            (session_id,) = core.local
            await core.set_presence(session_id, PresenceState.INVISIBLE)
            assert await core.presence_for_writer(IVAN, EVE) is PresenceState.OFFLINE
            await core.set_presence(session_id, PresenceState.AWAY)
            assert await core.presence_for_writer(IVAN, EVE) is PresenceState.AWAY
            await core.close_session(session_id)
            assert await core.presence_for_writer(IVAN, EVE) is PresenceState.OFFLINE

    run(scenario)


def test_renaming_oneself_reaches_followers_with_the_new_name(redis_url: str) -> None:
    """set_display_name changes the account's name (control characters dropped) and the
    followers who may see the person get presence carrying it; no change, no event."""

    async def scenario() -> None:
        async with running_core(redis_url) as core:
            await core.store.accounts.create("msn", "bob@example.com", "pw", "Bob")
            await core.store.accounts.create("msn", "eve@example.com", "pw", "Eve")
            await core.put_contact(EVE, ContactEntry(contact=BOB, subscribed=True))
            await core.put_contact(BOB, ContactEntry(contact=EVE, allowed=True))
            await online(core, BOB)
            eve = await online(core, EVE)
            eve.got.clear()
            await core.set_display_name(BOB, " Bobby\r\n ")
            info = await core.account(BOB)
            assert info is not None and info.display_name == "Bobby"
            (told,) = eve.got
            assert isinstance(told.event, Presence) and told.peer_display == "Bobby"
            await core.set_display_name(BOB, "Bobby")
            assert len(eve.got) == 1

    run(scenario)
