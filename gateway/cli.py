"""Command line: ``python -m gateway run`` and the admin commands.

Admin commands talk to Redis directly through the same AdminService as the HTTP API:
the configured URL, else the embedded server of a running gateway (its URL is in the
data directory), else an embedded server started just for the command (holding the
data directory's lock meanwhile: gateway/datadir.py).
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
from gateway.exits import (
    EXIT_CONFIG,
    EXIT_ERROR,
    EXIT_IN_USE,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    exit_codes_text,
)

__all__ = ["EXIT_CONFIG", "EXIT_ERROR", "EXIT_IN_USE", "EXIT_OK", "EXIT_UNAVAILABLE", "main"]

URL_WAIT_SECONDS = 20.0
"""How long an admin command waits for a starting gateway to publish its Redis URL."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m gateway",
        description="IM gateway: OSCAR (ICQ/AIM), MSN and UIN clients talking to each other.",
        epilog=exit_codes_text(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--config", type=Path, default=None, help="TOML config file (default: built-in defaults)"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser(
        "run",
        help="run the gateway (embedded Redis unless redis.url is set)",
        epilog=exit_codes_text(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )

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
    token = sub.add_parser("admin-token", help="the admin API token").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    token.add_parser(
        "rotate",
        help="make a new admin API token, print it once; the old one stops working at once",
    )
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


class _Unavailable(Exception):
    pass


async def _running_url(data_dir: Path) -> tuple[str | None, Any]:
    """The Redis URL of the gateway holding ``data_dir`` (waiting while it starts), or
    (None, lock) when no gateway holds it: the lock is then ours until released."""
    from gateway.datadir import DataDirBusy, DataDirLock
    from gateway.runtime import REDIS_URL_FILE

    url_file = data_dir / REDIS_URL_FILE
    deadline = asyncio.get_running_loop().time() + URL_WAIT_SECONDS
    while True:
        try:
            return None, DataDirLock.acquire(data_dir)
        except DataDirBusy as busy:
            holder = busy.pid
        if url_file.exists():
            return url_file.read_text().strip(), None
        if asyncio.get_running_loop().time() > deadline:
            raise _Unavailable(
                f"the gateway holding {data_dir.resolve()} (pid {holder}) has not started"
                " its Redis yet"
            )
        await asyncio.sleep(0.1)


async def _admin(config: Config, args: argparse.Namespace) -> Any:
    from gateway.admin.service import AdminService
    from gateway.credentials import SealingKey
    from gateway.embedded import EmbeddedRedis
    from gateway.store import Store

    data_dir = config.node.data_dir
    url = config.redis.url
    embedded = None
    lock = None
    if not url and not config.redis.sentinels:
        found, lock = await _running_url(data_dir)
        if found is not None:
            url = found
        else:
            embedded = EmbeddedRedis(data_dir / "redis", inherit_fds=(lock.fileno(),))
            await asyncio.get_running_loop().run_in_executor(None, embedded.start)
            url = embedded.url
    try:
        sealing = SealingKey.load_or_create(
            config.security.secret_key_file or data_dir / "secret.key"
        )
        store = Store.configured(url, sealing, config)
        try:
            await store.redis.ping()
            if args.command == "admin-token":
                return {"token": await rotate_admin_token(store)}
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
    finally:
        if embedded is not None:
            await asyncio.get_running_loop().run_in_executor(None, embedded.stop)
        if lock is not None:
            lock.release()


async def rotate_admin_token(store: Any) -> str:
    """A new admin API token: stored as its hash, replacing the old one at once (the
    API reads the hash from Redis on every request), audited, returned once."""
    import secrets

    from gateway.admin.api import token_hash
    from gateway.store import keys as store_keys

    fresh = secrets.token_urlsafe(24)
    await store.redis.set(store_keys.ADMIN_TOKEN, token_hash(fresh))
    await store.audit.record(f"cli:{getpass.getuser()}", "admin-token.rotate")
    return fresh


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
    from gateway.credentials import CredentialError
    from gateway.datadir import DataDirBusy
    from gateway.embedded import EmbeddedRedisError
    from gateway.runtime import one_line, redis_location

    try:
        result = asyncio.run(_admin(config, args))
    except (AdminError, _Usage) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except CredentialError as exc:  # the sealing key file
        print(f"error: invalid configuration: {one_line(exc)}", file=sys.stderr)
        return EXIT_CONFIG
    except DataDirBusy as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_IN_USE
    except _Unavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except (RedisError, EmbeddedRedisError, OSError) as exc:
        if config.redis.sentinels:
            where = f"the primary {config.redis.master_name!r} via Sentinel"
        else:
            where = redis_location(config.redis.url) if config.redis.url else "the embedded Redis"
        print(f"error: cannot reach Redis at {where}: {one_line(exc)}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    if args.command == "admin-token":
        # Shown once, never logged; the rest of the output stays JSON-free on purpose:
        # a script reads the one line.
        print(result["token"])
        print(
            "admin API token replaced: the old one no longer works. Store this one now;"
            " it is kept only as a hash.",
            file=sys.stderr,
        )
        if config.admin.token:
            print(
                "note: admin.token is also set in the configuration; it stays valid"
                " until you remove it there.",
                file=sys.stderr,
            )
        return EXIT_OK
    print(json.dumps(result, indent=2, sort_keys=True, ensure_ascii=False))
    return EXIT_OK
