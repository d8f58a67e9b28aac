"""The `loanfund` command: database, clients, demo data, and serving the API."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Sequence

from loanfund import clients, uow
from loanfund.audit import Actor
from loanfund.config import Settings
from loanfund.db import create_engine
from loanfund.db.migrate import grant_runtime_role, upgrade
from loanfund.errors import LoanfundError

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


async def _demo(args: argparse.Namespace) -> int:
    from loanfund.demo import fill_demo

    engine = create_engine(_settings().database_url)
    try:
        tokens = await fill_demo(engine)
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
