"""Command line: ``python -m gateway run`` and the admin commands.

Admin commands talk to Redis directly through the same AdminService as the HTTP API:
the configured URL, else the embedded server of a running gateway (its URL is in the
data directory), else an embedded server started just for the command.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from gateway import __version__
from gateway.config import Config, ConfigError, load_config

EXIT_OK, EXIT_ERROR, EXIT_CONFIG, EXIT_UNAVAILABLE = 0, 1, 2, 3


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m gateway",
        description="IM gateway: OSCAR (ICQ/AIM), MSN and UIN clients talking to each other.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--config", type=Path, default=None, help="TOML config file (default: built-in defaults)"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("run", help="run the gateway (embedded Redis unless redis.url is set)")

    account = sub.add_parser("account", help="hosted accounts").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    add = account.add_parser("add", help="create an account: account add NETWORK HANDLE")
    add.add_argument("network", help="oscar, msn or uin")
    add.add_argument("handle", help="ICQ number / AIM screen name, MSN e-mail, UIN number")
    _password_args(add)
    add.add_argument("--display-name", default="", help="name shown to contacts")
    listing = account.add_parser("list", help="list a network's accounts")
    listing.add_argument("network")
    for name, text in (
        ("disable", "refuse logins and messages for an account"),
        ("enable", "undo disable"),
        ("delete", "delete an account (its ids and aliases are never reused)"),
    ):
        account.add_parser(name, help=text).add_argument("address", help="network:handle")
    passwd = account.add_parser("passwd", help="set an account's password")
    passwd.add_argument("address")
    _password_args(passwd)

    link = sub.add_parser("link", help="link addresses of one person")
    link.add_argument("addresses", nargs="+", metavar="ADDRESS")
    unlink = sub.add_parser("unlink", help="remove an address from its person")
    unlink.add_argument("address")
    whois = sub.add_parser("whois", help="person, aliases and sessions of an address")
    whois.add_argument("address")
    whois.add_argument(
        "--allocate", action="store_true", help="allocate missing aliases in every network"
    )
    sub.add_parser("status", help="nodes, liveness, sessions and account counts")
    sub.add_parser("sessions", help="every session in the directory")
    audit = sub.add_parser("audit", help="recent admin changes")
    audit.add_argument("--count", type=int, default=50)
    return parser


def _password_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--password", help="the password (else asked for, or --password-stdin)")
    group.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )


def _password(args: argparse.Namespace) -> str:
    if args.password:
        return str(args.password)
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if sys.stdin.isatty():
        return getpass.getpass("password: ")
    raise _Usage("give --password or --password-stdin")


class _Usage(Exception):
    pass


async def _admin(config: Config, args: argparse.Namespace) -> Any:
    from gateway.admin.service import AdminService
    from gateway.credentials import SealingKey
    from gateway.embedded import EmbeddedRedis
    from gateway.runtime import REDIS_URL_FILE
    from gateway.store import Store

    data_dir = config.node.data_dir
    sealing = SealingKey.load_or_create(config.security.secret_key_file or data_dir / "secret.key")
    url = config.redis.url
    embedded = None
    if not url:
        url_file = data_dir / REDIS_URL_FILE
        if url_file.exists():
            url = url_file.read_text().strip()
        else:
            embedded = EmbeddedRedis(data_dir / "redis")
            embedded.start()
            url = embedded.url
    store = Store.open(
        url,
        sealing,
        numeric_base=config.delivery.alias_numeric_base,
        alias_domain=config.delivery.alias_domain,
    )
    try:
        await store.redis.ping()
        from gateway.runtime import admin_networks

        service = AdminService(store, admin_networks(config))
        actor = f"cli:{getpass.getuser()}"
        handlers: dict[tuple[str, str | None], Callable[[], Awaitable[Any]]] = {
            ("account", "add"): lambda: service.add_account(
                actor, args.network, args.handle, _password(args), args.display_name
            ),
            ("account", "list"): lambda: service.list_accounts(args.network),
            ("account", "disable"): lambda: service.set_disabled(actor, args.address, True),
            ("account", "enable"): lambda: service.set_disabled(actor, args.address, False),
            ("account", "delete"): lambda: service.delete_account(actor, args.address),
            ("account", "passwd"): lambda: service.set_password(
                actor, args.address, _password(args)
            ),
            ("link", None): lambda: service.link(actor, args.addresses),
            ("unlink", None): lambda: service.unlink(actor, args.address),
            ("whois", None): lambda: service.whois(args.address, allocate=args.allocate),
            ("status", None): service.status,
            ("sessions", None): service.sessions,
            ("audit", None): lambda: service.audit(args.count),
        }
        result = await handlers[(args.command, getattr(args, "action", None))]()
        return {"ok": True} if result is None else result
    finally:
        await store.close()
        if embedded is not None:
            embedded.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.command == "run":
        from gateway.runtime import run

        return run(config)

    from redis.exceptions import RedisError

    from gateway.admin.service import AdminError
    from gateway.embedded import EmbeddedRedisError

    try:
        result = asyncio.run(_admin(config, args))
    except AdminError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except _Usage as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except (RedisError, EmbeddedRedisError, OSError) as exc:
        print(f"error: cannot reach Redis: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    print(json.dumps(result, indent=2, sort_keys=True, ensure_ascii=False))
    return EXIT_OK
