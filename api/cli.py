"""The `loanfund` command: database, clients, demo data, and serving the API."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from loanfund import clients, uow
from loanfund.audit import Actor
from loanfund.config import Settings
from loanfund.db import create_engine
from loanfund.db.migrate import grant_runtime_role, upgrade
from loanfund.errors import LoanfundError, ValidationFailed

CLI_ACTOR = Actor(client_id=None, request_id="cli")


def _settings() -> Settings:
    return Settings.from_env()


async def _add_client(args: argparse.Namespace) -> int:
    engine = create_engine(_settings().database_url)
    try:
        async with uow.transaction(engine, CLI_ACTOR) as tx:
            client, token = await clients.add_client(
                tx,
                role=args.role,
                name=args.name,
                region_prefix=args.region,
                bank_code=args.bank,
            )
    finally:
        await engine.dispose()
    print(json.dumps({"client_id": client.id, "token": token}))
    return 0


async def _list_clients(args: argparse.Namespace) -> int:
    engine = create_engine(_settings().database_url)
    try:
        async with engine.connect() as conn:
            for client, row in await clients.list_clients(conn):
                print(
                    json.dumps(
                        {
                            "client_id": client.id,
                            "name": client.name,
                            "role": client.role,
                            "region_prefix": client.region_prefix,
                            "bank_code": client.bank_code,
                            "revoked": row.revoked_at is not None,
                        },
                        ensure_ascii=False,
                    )
                )
    finally:
        await engine.dispose()
    return 0


async def _revoke_client(args: argparse.Namespace) -> int:
    engine = create_engine(_settings().database_url)
    try:
        async with uow.transaction(engine, CLI_ACTOR) as tx:
            await clients.revoke_client(tx, args.client_id)
    finally:
        await engine.dispose()
    print(json.dumps({"client_id": args.client_id, "revoked": True}))
    return 0


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    import getpass

    first = getpass.getpass("password: ")
    if first != getpass.getpass("again: "):
        raise ValidationFailed([{"field": "password", "message": "the two entries differ"}])
    return first


async def _users(args: argparse.Namespace) -> int:
    from loanfund.users import queries as user_queries
    from loanfund.users import service as users

    engine = create_engine(_settings().database_url)
    out: list[str] = []  # printed once the transaction has committed
    try:
        async with uow.transaction(engine, CLI_ACTOR) as tx:
            if args.users_command == "add":
                password = _read_password(args)
                user = await users.add_user(
                    tx,
                    name=args.name,
                    role=args.role,
                    region_prefix=args.region,
                    password=password,
                )
                out.append(json.dumps({"user_id": user.id, "name": user.name}, ensure_ascii=False))
            elif args.users_command == "password":
                await users.set_password(tx, args.name, _read_password(args))
                out.append(json.dumps({"name": args.name, "password": "set"}, ensure_ascii=False))
            elif args.users_command == "disable":
                await users.disable(tx, args.name)
                out.append(json.dumps({"name": args.name, "disabled": True}, ensure_ascii=False))
            else:
                for row in await user_queries.list_users(tx.conn):
                    out.append(
                        json.dumps(
                            {
                                "user_id": row.id,
                                "name": row.name,
                                "role": row.role,
                                "region_prefix": row.region_prefix,
                                "disabled": row.disabled_at is not None,
                            },
                            ensure_ascii=False,
                        )
                    )
    finally:
        await engine.dispose()
    for line in out:
        print(line)
    return 0


async def _demo_people(engine: Any) -> list[dict[str, str]]:
    """Two dashboard users for the demo province, with passwords printed once."""
    import secrets

    from loanfund.users import service as users

    people = []
    async with uow.transaction(engine, CLI_ACTOR) as tx:
        for role, name in (("fund_manager", "demo-manager"), ("auditor", "demo-auditor")):
            password = secrets.token_urlsafe(12)
            await users.add_user(tx, name=name, role=role, region_prefix="23", password=password)
            people.append({"role": role, "name": name, "password": password, "region": "23"})
    return people


async def _demo(args: argparse.Namespace) -> int:
    from loanfund.demo import fill_demo

    engine = create_engine(_settings().database_url)
    try:
        tokens = await fill_demo(engine)
        tokens["dashboard"] = await _demo_people(engine)
    finally:
        await engine.dispose()
    print(json.dumps(tokens, ensure_ascii=False, indent=2))
    return 0


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from api.app import create_app

    settings = _settings()
    app = create_app(settings, run_scheduler=not args.no_scheduler)
    print(
        f"loanfund on http://{args.host}:{args.port}  (API docs: http://{args.host}:{args.port}/schema)",
        flush=True,
    )
    # No access log: query strings can carry ID numbers (GET /borrowers?id_number=…), never logged in full.
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="loanfund", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    db = commands.add_parser("db", help="database schema").add_subparsers(dest="db_command", required=True)
    db_upgrade = db.add_parser("upgrade", help="create or migrate the schema at LOANFUND_DATABASE_URL")
    db_upgrade.add_argument(
        "--grant-to",
        metavar="ROLE",
        help="PostgreSQL: give ROLE (which owns nothing) what the service needs; run the service as ROLE",
    )

    client_parser = commands.add_parser("clients", help="API clients")
    client_commands = client_parser.add_subparsers(dest="clients_command", required=True)
    add = client_commands.add_parser("add", help="create a client and print its token once")
    add.add_argument("--role", required=True, choices=clients.ROLES)
    add.add_argument("--region", help="region-code prefix (fund_manager, window, auditor)")
    add.add_argument("--bank", help="bank code (bank role)")
    add.add_argument("--name", required=True)
    client_commands.add_parser("list", help="list clients (never tokens)")
    revoke = client_commands.add_parser("revoke", help="revoke a client's token")
    revoke.add_argument("client_id")

    users_parser = commands.add_parser("users", help="people who sign in to the dashboard")
    user_commands = users_parser.add_subparsers(dest="users_command", required=True)
    add_user = user_commands.add_parser("add", help="create a dashboard user")
    add_user.add_argument("--role", required=True, choices=("fund_manager", "auditor"))
    add_user.add_argument("--region", required=True, help="region-code prefix, as for API clients")
    add_user.add_argument("--name", required=True, help="the name they sign in with")
    for sub in (add_user, user_commands.add_parser("password", help="set a new password")):
        if sub is not add_user:
            sub.add_argument("--name", required=True)
        sub.add_argument(
            "--password-stdin",
            action="store_true",
            help="read the password from standard input (else prompt)",
        )
    user_commands.add_parser("disable", help="disable a user and end their sessions").add_argument(
        "--name", required=True
    )
    user_commands.add_parser("list", help="list users (never passwords)")

    commands.add_parser("demo", help="fill an empty database with a demo province and print demo tokens")

    serve = commands.add_parser("serve", help="serve the API (and run the scheduler)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--no-scheduler", action="store_true", help="do not run scheduled jobs in this process"
    )
    serve.add_argument("--log-level", default="info")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=os.environ.get("LOANFUND_LOG_LEVEL", "WARNING"))
    args = build_parser().parse_args(argv)
    try:
        if args.command == "db":
            upgrade(_settings().database_url)
            if args.grant_to:
                try:
                    asyncio.run(grant_runtime_role(_settings().database_url, args.grant_to))
                except ValueError as exc:
                    print(json.dumps({"error": "invalid_role", "detail": str(exc)}), file=sys.stderr)
                    return 2
            print(
                json.dumps(
                    {"database": "upgraded", **({"granted_to": args.grant_to} if args.grant_to else {})}
                )
            )
            return 0
        if args.command == "clients":
            handler = {"add": _add_client, "list": _list_clients, "revoke": _revoke_client}[
                args.clients_command
            ]
            return asyncio.run(handler(args))
        if args.command == "users":
            return asyncio.run(_users(args))
        if args.command == "demo":
            return asyncio.run(_demo(args))
        if args.command == "serve":
            return _serve(args)
    except LoanfundError as exc:
        print(json.dumps({"error": exc.code, "detail": exc.detail}, ensure_ascii=False), file=sys.stderr)
        return 2
    return 1


if __name__ == "__main__":
    sys.exit(main())
