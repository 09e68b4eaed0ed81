"""The gateway bot (command parsing, replies, its accounts) and loop/echo safety in
routing. Core tests run real cores in-process against the session's real Redis; a
recording link stands in for a client connection."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

import pytest
import redis as sync_redis
from twisted.logger import ILogObserver, LogLevel, globalLogPublisher
from zope.interface import provider

from adapters.contract import Delivery
from gateway import bot
from gateway.config import BotSettings, load_config
from gateway.core import GatewayCore
from gateway.credentials import SealingKey
from gateway.store import Store
from schema.events import (
    Authorization,
    ContactRequest,
    DeliveryFailure,
    DeliveryReceipt,
    FailureReason,
    Message,
    Presence,
    PresenceState,
    Typing,
)
from schema.records import AccountInfo, LoginOutcome, PlainPasswordProof

REPO = Path(__file__).resolve().parents[1]
SEALING = SealingKey(b"b" * 32)
NETWORKS = ("oscar", "msn", "uin")
ALICE = "oscar:123456"
BOB = "msn:bob@example.com"
BOB_UIN = "uin:700123"
ICQ_BOT, MSN_BOT, UIN_BOT = "oscar:10000", "msn:gateway@gateway.invalid", "uin:10000"


# ---- parsing and wording (pure)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("help", bot.HelpCommand()),
        ("  HeLp  ", bot.HelpCommand()),
        ("?", bot.HelpCommand()),
        ("/help", bot.HelpCommand()),
        ("", bot.HelpCommand()),
        (" \t\r\n ", bot.HelpCommand()),
        ("find msn bob@example.com", bot.FindCommand("msn", "bob@example.com")),
        ("FIND ICQ  123456 ", bot.FindCommand("oscar", "123456")),
        ("find aim Cool Kid", bot.FindCommand("oscar", "Cool Kid")),
        ("find oscar x", bot.FindCommand("oscar", "x")),
        ("find\tuin\n700123", bot.FindCommand("uin", "700123")),
        ("find msn", bot.UsageProblem(bot.FIND_USAGE)),
        ("find", bot.UsageProblem(bot.FIND_USAGE)),
        ("whois 2000000001", bot.WhoisCommand("2000000001")),
        ("Whois bob.msn@gateway.invalid", bot.WhoisCommand("bob.msn@gateway.invalid")),
        ("whois msn bob@example.com", bot.WhoisCommand("bob@example.com", "msn")),
        ("whois ICQ 42", bot.WhoisCommand("42", "oscar")),
        ("whois cool kid", bot.WhoisCommand("cool kid")),
        ("whois msn", bot.WhoisCommand("msn")),
        ("whois", bot.UsageProblem(bot.WHOIS_USAGE)),
        ("hello there", bot.HelpCommand(unknown="hello there")),
        ("findx msn a", bot.HelpCommand(unknown="findx msn a")),
    ],
)
def test_commands_parse(body: str, expected: bot.Command) -> None:
    """Keywords are case-insensitive, whitespace is trimmed, network names map to networks."""
    assert bot.parse_command(body) == expected


def test_unknown_network_names_the_known_ones() -> None:
    """find with a network nobody knows says which names exist."""
    problem = bot.parse_command("find yahoo someone")
    assert isinstance(problem, bot.UsageProblem)
    assert '"yahoo"' in problem.message
    assert all(name in problem.message for name in ("icq", "aim", "oscar", "msn", "uin"))


@pytest.mark.parametrize("junk", ["\x00\x01\x1b[2J", "x" * 5000, "😀 " * 100, "a\r\nb\tc"])
def test_junk_is_an_unknown_command_quoted_short_and_printable(junk: str) -> None:
    """Any other text answers with help; the quoted text is one printable, short line."""
    command = bot.parse_command(junk)
    assert isinstance(command, bot.HelpCommand) and command.unknown
    assert len(command.unknown) <= 40 and command.unknown.isprintable()
    assert "\n" not in command.unknown


def test_help_lists_commands_and_networks_in_ascii() -> None:
    """help names every command and network name, in ASCII (readable in any charset)."""
    text = bot.help_text()
    for word in ("find", "whois", "help", "icq", "aim", "oscar", "msn", "uin"):
        assert word in text
    assert text.isascii()
    assert bot.help_text("xyz").startswith('Unknown command "xyz".')


def test_found_line_spells_each_network() -> None:
    """A hit shows display name with network, the id as its network spells it, the alias."""
    info = AccountInfo(address=BOB, display_name="Bob", disabled=False)
    assert bot.found_line(info, "2000000001") == (
        "Bob [MSN] - msn bob@example.com - add 2000000001 to your contacts"
    )
    assert bot.spelled("oscar:123456") == "icq 123456"
    assert bot.spelled("oscar:coolkid") == "aim coolkid"
    assert bot.spelled(BOB_UIN) == "uin 700123"


def test_example_config_documents_the_bot_defaults() -> None:
    """deploy/gateway.example.toml carries the bot section with the defaults."""
    config = load_config(REPO / "deploy" / "gateway.example.toml", environ={})
    assert config.bot == BotSettings()
    assert config.bot.ids == {"oscar": "10000", "uin": "10000", "msn": "gateway@gateway.invalid"}


def test_bot_ids_are_validated_and_numbers_accepted() -> None:
    """A bot id that is not a valid native id is a config error; numbers are taken."""
    assert BotSettings.model_validate({"ids": {"uin": 10000}}).ids == {"uin": "10000"}
    with pytest.raises(ValueError):
        BotSettings.model_validate({"ids": {"msn": "not-a-handle"}})


# ---- in-process cores on the real Redis


class RecordingLink:
    """A client link that keeps what the core writes to it (stands in for a socket)."""

    def __init__(self) -> None:
        self.got: list[Delivery] = []

    def deliver(self, delivery: Delivery) -> bool:
        self.got.append(delivery)
        return True


@contextlib.asynccontextmanager
async def running_core(
    redis_url: str,
    node_id: str = "node-1",
    settings: BotSettings | None = None,
    networks: Sequence[str] = NETWORKS,
) -> AsyncIterator[GatewayCore]:
    store = Store.open(redis_url, SEALING)
    core = GatewayCore(
        store,
        SEALING,
        node_id,
        bot_settings=BotSettings() if settings is None else settings,
        networks=networks,
        # A heartbeat under way when the test stops the core is waited for: keep it short.
        heartbeat_seconds=0.05,
    )
    try:
        await core.start()
        yield core
    finally:
        await core.stop()
        await store.close()


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(scenario())


async def online(core: GatewayCore, address: str) -> RecordingLink:
    link = RecordingLink()
    await core.open_session(address, link)
    return link


async def people(core: GatewayCore) -> None:
    """alice on ICQ; bob on MSN, linked with his UIN account; a disabled MSN account."""
    accounts = core.store.accounts
    await accounts.create("oscar", "123456", "pw-alice", "Alice")
    await accounts.create("msn", "bob@example.com", "pw-bob", "Bob")
    await accounts.create("uin", "700123", "pw-bob", "Bobby")
    await accounts.create("msn", "bobsled@example.com", "pw-x", "Bobsled")
    await accounts.set_disabled("msn:bobsled@example.com", True)
    await core.store.identity.link([BOB, BOB_UIN])


async def ask(core: GatewayCore, link: RecordingLink, sender: str, to: str, body: str) -> Delivery:
    """Send ``body`` to the bot at ``to``; the one delivery that comes back."""
    before = len(link.got)
    await core.submit(Message(sender=sender, recipient=to, body=body))
    assert len(link.got) == before + 1
    return link.got[-1]


def _redis(url: str) -> Any:
    return sync_redis.Redis.from_url(url, decode_responses=True)


def test_bot_accounts_are_created_once_by_concurrent_nodes(redis_url: str) -> None:
    """Four nodes starting at once: one bot account per network, every node knows it."""

    async def scenario() -> None:
        stores = [Store.open(redis_url, SEALING) for _ in range(4)]
        cores = [
            GatewayCore(
                s,
                SEALING,
                f"n{i}",
                bot_settings=BotSettings(),
                networks=NETWORKS,
                heartbeat_seconds=0.05,
            )
            for i, s in enumerate(stores)
        ]
        try:
            await asyncio.gather(*(core.start() for core in cores))
            expected = {"oscar": ICQ_BOT, "msn": MSN_BOT, "uin": UIN_BOT}
            assert all(core.bots == expected for core in cores)
            info = await cores[0].account(ICQ_BOT)
            assert info == AccountInfo(ICQ_BOT, "Gateway", False)
        finally:
            for core, store in zip(cores, stores, strict=True):
                await core.stop()
                await store.close()

    run(scenario)
    client = _redis(redis_url)
    for network, address in (("oscar", ICQ_BOT), ("msn", MSN_BOT), ("uin", UIN_BOT)):
        assert client.smembers(f"gw:ns:{{{network}}}:bots") == {address}
        assert client.smembers(f"gw:ns:{{{network}}}:accounts") == {address}
        assert client.hvals(f"gw:ns:{{{network}}}:owner") == [address]
    assert len(client.keys("gw:acct:*")) == 3
    client.close()


def test_restart_keeps_the_bot_and_follows_the_display_name(redis_url: str) -> None:
    """A node restarting finds its bot (not a user's account) and renames it if told."""

    async def scenario() -> None:
        async with running_core(redis_url):
            pass
        async with running_core(redis_url, settings=BotSettings(display_name="Robot")) as core:
            assert core.bots["uin"] == UIN_BOT
            assert (await core.account(UIN_BOT)) == AccountInfo(UIN_BOT, "Robot", False)

    run(scenario)


def test_a_users_account_on_the_bot_id_is_never_taken_over(redis_url: str) -> None:
    """A user already on oscar:10000 keeps it: one error logged, no bot on oscar."""
    errors: list[str] = []

    @provider(ILogObserver)
    def observe(event: dict[str, Any]) -> None:
        if event.get("log_level") is LogLevel.error:
            errors.append(str(event.get("log_format", "")))

    async def scenario() -> None:
        store = Store.open(redis_url, SEALING)
        await store.accounts.create("oscar", "10000", "pw-user", "Early User")
        await store.close()
        async with running_core(redis_url) as core:
            assert "oscar" not in core.bots and core.bots["msn"] == MSN_BOT
            login = await core.check_login(ICQ_BOT, PlainPasswordProof("pw-user"))
            assert login.outcome is LoginOutcome.OK
            assert (await core.account(ICQ_BOT)) == AccountInfo(ICQ_BOT, "Early User", False)

    globalLogPublisher.addObserver(observe)
    try:
        run(scenario)
    finally:
        globalLogPublisher.removeObserver(observe)
    assert len([e for e in errors if "bot" in e]) == 1
    client = _redis(redis_url)
    assert client.smembers("gw:ns:{oscar}:bots") == set()
    client.close()


def test_nobody_logs_in_as_the_bot(redis_url: str) -> None:
    """Login as any bot address is refused as no_such_account."""

    async def scenario() -> None:
        async with running_core(redis_url) as core:
            for address in (ICQ_BOT, MSN_BOT, UIN_BOT, "uin:010000"):
                result = await core.check_login(address, PlainPasswordProof("guess"))
                assert result.outcome is LoginOutcome.NO_SUCH_ACCOUNT
                assert result.account is None

    run(scenario)


def test_bot_is_online_for_everyone(redis_url: str) -> None:
    """The bot shows online with "type help" to anyone, without any consent."""

    async def scenario() -> None:
        async with running_core(redis_url) as core:
            assert await core.presence_of(MSN_BOT, "msn:stranger@example.com") is (
                PresenceState.ONLINE
            )
            assert await core.presence_with_text(ICQ_BOT, ALICE) == (
                PresenceState.ONLINE,
                "type help",
            )

    run(scenario)


def test_no_bot_when_disabled(redis_url: str) -> None:
    """[bot] enabled = false: no bot account anywhere, nothing claimed."""

    async def scenario() -> None:
        async with running_core(redis_url, settings=BotSettings(enabled=False)) as core:
            assert core.bots == {}
            assert await core.account(UIN_BOT) is None

    run(scenario)


def test_find_by_exact_id_gives_the_alias_present_as_gives(redis_url: str) -> None:
    """find msn bob@example.com from ICQ: one line with the alias alice adds."""

    async def scenario() -> None:
        async with running_core(redis_url) as core:
            await people(core)
            alice = await online(core, ALICE)
            reply = await ask(core, alice, ALICE, ICQ_BOT, "FIND MSN Bob@Example.com")
            alias = await core.present_as(BOB, "oscar")
            assert int(alias) > 2_000_000_000
            assert isinstance(reply.event, Message)
            assert reply.event.body == (
                f"Bob [MSN] - msn bob@example.com - add {alias} to your contacts"
            )
            assert (reply.event.sender, reply.event.recipient) == (ICQ_BOT, ALICE)
            assert reply.peer == "10000"

    run(scenario)


def test_find_searches_names_never_listing_disabled_or_bots(redis_url: str) -> None:
    """find by name lists matching accounts, without disabled ones or the bot."""

    async def scenario() -> None:
        async with running_core(redis_url) as core:
            await people(core)
            alice = await online(core, ALICE)
            found = await ask(core, alice, ALICE, ICQ_BOT, "find msn bob")
            assert isinstance(found.event, Message)
            assert found.event.body.splitlines() == [
                bot.found_line(AccountInfo(BOB, "Bob", False), await core.present_as(BOB, "oscar"))
            ]
            for body in ("find msn gateway", "find msn bobsled@example.com", "find uin zzz"):
                reply = await ask(core, alice, ALICE, ICQ_BOT, body)
                assert isinstance(reply.event, Message)
                assert reply.event.body == bot.NOBODY_FOUND, body

    run(scenario)


def test_whois_an_alias_names_the_person_and_their_other_address(redis_url: str) -> None:
    """whois <alias> from ICQ names bob on MSN and his linked UIN, each as alice adds it."""

    async def scenario() -> None:
        async with running_core(redis_url) as core:
            await people(core)
            alice = await online(core, ALICE)
            bob_alias = await core.present_as(BOB, "oscar")
            uin_alias = await core.present_as(BOB_UIN, "oscar")
            reply = await ask(core, alice, ALICE, ICQ_BOT, f"whois {bob_alias}")
            assert isinstance(reply.event, Message)
            assert reply.event.body.splitlines() == [
                f"Bob [MSN] - msn bob@example.com - add {bob_alias} to your contacts",
                f"same person: Bobby [UIN] - uin 700123 - add {uin_alias} to your contacts",
            ]
            same = await ask(core, alice, ALICE, ICQ_BOT, "whois msn BOB@example.com")
            assert isinstance(same.event, Message) and same.event.body == reply.event.body
            for body, expected in (
                ("whois 99", bot.NOBODY_HAS_THAT_ID),
                ("whois not an id !", bot.NOBODY_HAS_THAT_ID),
                ("whois msn bobsled@example.com", bot.NOBODY_HAS_THAT_ID),
                ("whois 10000", bot.ITS_ME),
            ):
                answer = await ask(core, alice, ALICE, ICQ_BOT, body)
                assert isinstance(answer.event, Message) and answer.event.body == expected

    run(scenario)


def test_whois_reads_the_id_in_the_senders_namespace(redis_url: str) -> None:
    """From MSN, whois of alice's MSN alias names alice on ICQ."""

    async def scenario() -> None:
        async with running_core(redis_url) as core:
            await people(core)
            bob = await online(core, BOB)
            alias = await core.present_as(ALICE, "msn")
            reply = await ask(core, bob, BOB, MSN_BOT, f"whois {alias}")
            assert isinstance(reply.event, Message)
            assert (
                reply.event.body == f"Alice [ICQ/AIM] - icq 123456 - add {alias} to your contacts"
            )
            assert reply.peer == "gateway@gateway.invalid"

    run(scenario)


def test_unknown_command_answers_with_help(redis_url: str) -> None:
    """Text that is no command gets "unknown command" and the help."""

    async def scenario() -> None:
        async with running_core(redis_url) as core:
            await people(core)
            bob = await online(core, BOB_UIN)
            reply = await ask(core, bob, BOB_UIN, UIN_BOT, "hi bot")
            assert isinstance(reply.event, Message)
            assert reply.event.body == bot.help_text("hi bot")

    run(scenario)


def test_contact_request_to_the_bot_is_granted(redis_url: str) -> None:
    """Adding the bot: an authorization granted comes back from the bot."""

    async def scenario() -> None:
        async with running_core(redis_url) as core:
            await people(core)
            alice = await online(core, ALICE)
            request = ContactRequest(sender=ALICE, recipient=ICQ_BOT, text="may I?")
            await core.submit(request)
            [granted] = alice.got
            assert isinstance(granted.event, Authorization) and granted.event.granted
            assert (granted.event.sender, granted.event.recipient) == (ICQ_BOT, ALICE)
            assert granted.event.trace_id == request.trace_id and granted.peer == "10000"

    run(scenario)


def test_reply_comes_from_the_bot_contact_written_to(redis_url: str) -> None:
    """Writing to the ICQ bot through its MSN alias: the answer comes from that alias."""

    async def scenario() -> None:
        async with running_core(redis_url) as core:
            await people(core)
            bob = await online(core, BOB)
            alias = await core.present_as(ICQ_BOT, "msn")
            reply = await ask(core, bob, BOB, f"msn:{alias}", "help")
            assert reply.peer == alias and reply.event.sender == ICQ_BOT

    run(scenario)


def test_bot_served_by_another_node_answers_here(redis_url: str) -> None:
    """A node without MSN learns of the MSN bot another node created later."""

    async def scenario() -> None:
        async with running_core(redis_url, "icq-node", networks=("oscar",)) as icq_node:
            await people(icq_node)
            async with running_core(redis_url, "msn-node", networks=("msn",)):
                alice = await online(icq_node, ALICE)
                alias = await icq_node.present_as(MSN_BOT, "oscar")
                reply = await ask(icq_node, alice, ALICE, f"oscar:{alias}", "help")
                assert reply.event.sender == MSN_BOT and reply.peer == alias
                assert icq_node.bots == {"oscar": ICQ_BOT, "msn": MSN_BOT}

    run(scenario)


def test_bot_drops_failures_and_other_events_without_a_loop(redis_url: str) -> None:
    """Failures, receipts, typing, presence and authorizations to the bot get nothing back,
    and nothing piles up in the bot's offline queue."""

    async def scenario() -> None:
        async with running_core(redis_url) as core:
            await people(core)
            alice = await online(core, ALICE)
            for event in (
                DeliveryFailure(
                    sender=ALICE, recipient=ICQ_BOT, message_id="m1", reason=FailureReason.INTERNAL
                ),
                DeliveryReceipt(sender=ALICE, recipient=ICQ_BOT, message_id="m2"),
                Typing(sender=ALICE, recipient=ICQ_BOT, active=True),
                Presence(sender=ALICE, recipient=ICQ_BOT, state=PresenceState.AWAY),
                Authorization(sender=ALICE, recipient=ICQ_BOT, granted=True),
            ):
                await core.submit(event)
            assert alice.got == []
            # The bot does not answer another bot either.
            await core.submit(Message(sender=MSN_BOT, recipient=ICQ_BOT, body="help"))
            assert alice.got == []

    run(scenario)
    client = _redis(redis_url)
    for address in (ICQ_BOT, MSN_BOT):
        assert client.xlen(f"gw:offline:{{{address}}}") == 0
    client.close()


def test_message_to_ones_own_alias_is_refused_self_addressed(redis_url: str) -> None:
    """Writing to oneself, directly or through one's own alias, never echoes: refused."""

    async def scenario() -> None:
        async with running_core(redis_url) as core:
            await people(core)
            alice = await online(core, ALICE)
            own_alias = await core.present_as(ALICE, "msn")
            for recipient in (f"msn:{own_alias}", ALICE):
                sent = Message(sender=ALICE, recipient=recipient, body="me?")
                await core.submit(sent)
                failure = alice.got.pop()
                assert alice.got == []
                assert isinstance(failure.event, DeliveryFailure)
                assert failure.event.reason is FailureReason.SELF_ADDRESSED
                assert failure.event.message_id == sent.id and failure.peer == "123456"
            assert await core.store.identity.existing_alias(f"msn:{own_alias}", "oscar") is None

    run(scenario)


def test_linked_person_never_gets_their_own_message_back(redis_url: str) -> None:
    """bob, online on UIN, writes to his own MSN address: it waits for MSN, not echoed."""

    async def scenario() -> None:
        async with running_core(redis_url) as core:
            await people(core)
            bob_uin = await online(core, BOB_UIN)
            msn_alias = await core.present_as(BOB, "uin")
            note = Message(sender=BOB_UIN, recipient=f"uin:{msn_alias}", body="note to self")
            await core.submit(note)
            assert bob_uin.got == []
            bob_msn = RecordingLink()
            await core.open_session(BOB, bob_msn)
            for _ in range(100):  # the core streams what waited offline
                if bob_msn.got:
                    break
                await asyncio.sleep(0.01)
            [waiting] = bob_msn.got
            assert isinstance(waiting.event, Message) and waiting.offline
            assert waiting.event.body == "note to self" and waiting.event.recipient == BOB

    run(scenario)
