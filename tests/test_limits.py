"""Limits on what people type (schema/limits.py): names, status texts and handles are
bounded and one line; errors quote at most a short piece of the input; the bot's long
answers arrive whole, split into messages, never cut."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.contract import Delivery
from gateway import bot
from gateway.admin.service import AdminError, AdminService
from gateway.core import GatewayCore
from gateway.splitting import split_text
from gateway.store import Store
from gateway.store import accounts as accounts_module
from schema import limits
from schema.addresses import AddressError, make_address, normalise_address
from schema.events import MAX_BODY_CHARS, Message, Presence, PresenceState
from schema.records import ContactEntry
from tests.test_admin import _cli
from tests.test_bot import ALICE, ICQ_BOT, SEALING, RecordingLink, online, run, running_core

HUGE = "x" * 100_000
ESCAPE = "\x1b[2J\x1b]0;pwned\x07"


class LimitedLink(RecordingLink):
    """A client link whose network takes at most 2,000 characters per message."""

    max_body_chars = 2000


# ---- the limits themselves (pure)


@pytest.mark.parametrize(
    ("check", "text", "problem"),
    [
        (limits.check_display_name, "B" * 129, "longer than 128"),
        (limits.check_display_name, "Bob" + ESCAPE, "control character (U+001B)"),
        (limits.check_display_name, "Bob\u0085", "control character (U+0085)"),
        (limits.check_status_text, "s" * 513, "longer than 512"),
        (limits.check_status_text, "away\r\nback soon", "control character (U+000D)"),
    ],
)
def test_checks_refuse_long_text_and_control_characters(
    check: object, text: str, problem: str
) -> None:
    """Display names over 128, status texts over 512 characters, or with a C0/C1
    control character, are refused with a message that does not quote them."""
    assert callable(check)
    with pytest.raises(limits.LimitError) as refused:
        check(text)
    assert problem in str(refused.value) and len(str(refused.value)) < 100


def test_clean_makes_one_bounded_line_without_cutting_a_cluster() -> None:
    """clean_*: control runs become one space, the text is cut at the limit but never
    between a letter and its combining mark."""
    assert limits.clean_status_text("away\r\n\tback" + ESCAPE) == "away back [2J ]0;pwned "
    assert len(limits.clean_status_text(HUGE)) == limits.MAX_STATUS_TEXT_CHARS
    name = "e\u0301" * 100  # 200 code points, 100 clusters
    cleaned = limits.clean_display_name(name)
    assert len(cleaned) == 128 and cleaned.endswith("e\u0301")


def test_presence_events_refuse_a_status_text_that_breaks_the_limits() -> None:
    """No canonical Presence carries a control character or more than 512 characters."""
    for text in ("a\x1bb", "s" * 513, "line\nline"):
        with pytest.raises(ValueError, match="status_text"):
            Presence(sender=ALICE, recipient=ICQ_BOT, state=PresenceState.AWAY, status_text=text)
    assert Presence(sender=ALICE, recipient=ICQ_BOT, state=PresenceState.AWAY, status_text="s" * 512)


def test_address_errors_quote_at_most_64_characters() -> None:
    """A 100,000-character handle or address is refused with a short message."""
    for attempt in (
        lambda: make_address("msn", HUGE),
        lambda: make_address("oscar", "!" + "y" * 100),
        lambda: normalise_address(HUGE),
        lambda: make_address("x" * 1000, "1"),
        lambda: make_address("jsonline", "bob" + ESCAPE),
    ):
        with pytest.raises(AddressError) as refused:
            attempt()
        assert len(str(refused.value)) < 200, str(refused.value)[:300]
        assert "\x1b" not in str(refused.value)


# ---- admin input


def test_admin_refuses_bad_display_names_and_quotes_little(redis_url: str) -> None:
    """account add: a display name too long or with controls is refused (400); a
    huge handle or network name is refused with a short message."""

    async def scenario() -> None:
        store = Store.open(redis_url, SEALING)
        service = AdminService(store)
        try:
            for name in ("N" * 129, "Eve" + ESCAPE):
                with pytest.raises(AdminError) as refused:
                    await service.add_account("t", "oscar", "123456", "pw", name)
                assert refused.value.status == 400 and "display name" in str(refused.value)
            for network, handle in (("msn", HUGE), (HUGE, "1")):
                with pytest.raises(AdminError) as refused:
                    await service.add_account("t", network, handle, "pw")
                assert len(str(refused.value)) < 200
            assert await store.accounts.info("oscar:123456") is None
            ok = await service.add_account("t", "oscar", "123456", "pw", "N" * 128)
            assert ok["display_name"] == "N" * 128
        finally:
            await store.close()

    run(scenario)


def test_cli_error_for_a_100000_character_handle_is_one_short_line(tmp_path: Path) -> None:
    """A real CLI process: 100,000 characters in, one short error line out (exit 1)."""
    cfg = tmp_path / "c.toml"
    cfg.write_text(f"[node]\ndata_dir = '{tmp_path / 'var'}'\n")
    result = _cli(cfg, "account", "add", "msn", HUGE, "--password", "pw")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith("error: not a native id: longer than 128") and len(line) < 200


# ---- what clients send in passing: the core cleans it


def test_status_texts_reach_watchers_as_one_bounded_line(redis_url: str) -> None:
    """A status text with terminal escapes and 100,000 characters, at login and on a
    change, reaches a watcher cleaned: one line of at most 512 characters."""

    async def scenario() -> None:
        async with running_core(redis_url) as core:
            bob = "oscar:654321"
            await core.store.accounts.create("oscar", "123456", "pw", "Alice")
            await core.store.accounts.create("oscar", "654321", "pw", "Bob")
            await core.put_contact(bob, ContactEntry(contact=ALICE, subscribed=True))
            await core.put_contact(ALICE, ContactEntry(contact=bob, allowed=True))
            watcher = await online(core, bob)
            opened = await core.open_session(ALICE, RecordingLink(), status_text=ESCAPE + HUGE)
            await core.set_presence(opened.session_id, PresenceState.AWAY, "brb" + ESCAPE)
            texts = [d.event.status_text for d in watcher.got if isinstance(d.event, Presence)]
            assert len(texts) == 2
            assert len(texts[0]) == 512 and texts[0].startswith(" [2J ]0;pwned xxx")
            assert texts[1] == "brb [2J ]0;pwned "
            assert all(limits.control_character(t) is None for t in texts)

    run(scenario)


def test_contact_nicknames_and_registration_names_are_cleaned(redis_url: str) -> None:
    """A nickname a client stores for a contact, and a self-registered account's name,
    are kept as one line of at most 128 characters."""

    async def scenario() -> None:
        store = Store.open(redis_url, SEALING)
        core = GatewayCore(store, SEALING, "n1", allow_registration=["uin"])
        try:
            await core.start()
            info = await core.register_account("uin", "pw-x", "Mallory" + ESCAPE + HUGE)
            assert info is not None and len(info.display_name) == 128
            assert limits.control_character(info.display_name) is None
            assert (await core.account(info.address)) == info
            await core.put_contact(
                info.address, ContactEntry(contact="uin:700999", display_name="Pal\x00" + HUGE)
            )
            [entry] = await core.contacts(info.address)
            assert entry.display_name.startswith("Pal x") and len(entry.display_name) == 128
        finally:
            await core.stop()
            await store.close()

    run(scenario)


# ---- the bot's long answers


def test_split_text_keeps_every_character_in_order() -> None:
    """split_text cuts into pieces of at most the limit that concatenate to the text."""
    text = ("word " * 30_000) + "e\u0301" * 10
    pieces = split_text(text, MAX_BODY_CHARS)
    assert "".join(pieces) == text and len(pieces) == 3
    assert all(len(p) <= MAX_BODY_CHARS for p in pieces)
    assert split_text("short", 10) == ["short"]


def test_a_bot_answer_longer_than_a_message_arrives_whole(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """whois of a person with 400 linked addresses: an answer of over 65,536 characters
    reaches a client whose network takes 2,000 characters as many messages of at most
    that, and a client without a limit as two messages; never cut."""
    # Nobody logs in here: one set of password verifiers serves all 400 accounts (each
    # costs ~60 ms of key stretching).
    verifiers = accounts_module.make_verifiers("uin:800000", "pw", SEALING)
    monkeypatch.setattr(accounts_module, "make_verifiers", lambda *_: verifiers)

    async def scenario() -> None:
        async with running_core(redis_url) as core:
            accounts = core.store.accounts
            carol = "oscar:111111"
            await accounts.create("oscar", "123456", "pw", "Alice")
            await accounts.create("oscar", "111111", "pw", "Carol")
            linked = []
            for n in range(400):
                info = await accounts.create("uin", str(800000 + n), "pw", f"{n:03d}" + "N" * 125)
                linked.append(info.address)
            await core.store.identity.link(linked)
            question = "whois uin 800000"
            expected = await bot.answer(core, ALICE, question)
            assert len(expected) > MAX_BODY_CHARS

            limited = LimitedLink()
            await core.open_session(ALICE, limited)
            await core.submit(Message(sender=ALICE, recipient=ICQ_BOT, body=question))
            bodies = [_body(d) for d in limited.got]
            assert "".join(bodies) == expected
            assert len(bodies) > len(expected) // 2000 and max(map(len, bodies)) <= 2000

            unlimited = await online(core, carol)
            await core.submit(Message(sender=carol, recipient=ICQ_BOT, body=question))
            assert [_body(d) for d in unlimited.got] == split_text(expected, MAX_BODY_CHARS)
            assert len(unlimited.got) == 2

    run(scenario)


def _body(delivery: Delivery) -> str:
    assert isinstance(delivery.event, Message)
    return delivery.event.body
