"""The `loanfund` command: database, clients, demo data, and serving the API.

Every command but `db upgrade` needs a database that `loanfund db upgrade` has brought to this
version's schema; on any other it says so and exits with status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from loanfund import clients, uow
from loanfund.audit import Actor
from loanfund.clock import business_date, parse_date
from loanfund.config import DEFAULT_DATABASE_URL, Settings
from loanfund.db import create_engine
from loanfund.db.migrate import grant_runtime_role, require_current_schema, upgrade
from loanfund.errors import LoanfundError, invalid

CLI_ACTOR = Actor(client_id=None, request_id="cli")

ENVIRONMENT = f"""environment variables:
  LOANFUND_DATABASE_URL       SQLAlchemy URL of the database (default: {DEFAULT_DATABASE_URL});
                              sqlite:///path and postgresql://user@host/db work too
  LOANFUND_BUSINESS_DATE      pins "today" (YYYY-MM-DD) for rehearsals and tests
                              (default: today in Asia/Shanghai)
  LOANFUND_DB_POOL_SIZE       connections per process, PostgreSQL (default: 5)
  LOANFUND_IDEMPOTENCY_TIMEOUT          seconds before a crashed request's key may be taken over (default: 60)
  LOANFUND_IDEMPOTENCY_RETENTION_DAYS   days idempotency keys are kept, at least 7 (default: 8)
  LOANFUND_LOG_LEVEL          log level of this command (default: WARNING)

Exit status: 0 done; 2 a usage error (explained above the usage line) or a refusal, explained as one
JSON line on stderr, for example a database that `loanfund db upgrade` has not prepared."""


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows each option's default, and keeps the environment list as written."""


def _settings() -> Settings:
    return Settings.from_env()


def _ready_engine(settings: Settings | None = None) -> AsyncEngine:
    return create_engine((settings or _settings()).database_url)


async def _check_schema(settings: Settings) -> None:
    engine = _ready_engine(settings)
    try:
        await require_current_schema(engine)
    finally:
        await engine.dispose()


async def _add_client(args: argparse.Namespace) -> int:
    engine = _ready_engine()
    try:
        await require_current_schema(engine)
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
    engine = _ready_engine()
    try:
        await require_current_schema(engine)
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
    engine = _ready_engine()
    try:
        await require_current_schema(engine)
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
        raise invalid("password", "the two entries differ")
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
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from loanfund.demo import fill_demo

    engine = _ready_engine()
    try:
        await require_current_schema(engine)
        # The bar goes to stderr: stdout is the JSON with the tokens, for scripts to read.
        with Progress(
            TextColumn("replaying two years of lending"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            disable=args.quiet,
        ) as bar:
            task = bar.add_task("demo", total=None)

            def show(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            tokens = await fill_demo(engine, progress=show)
        tokens["dashboard"] = await _demo_people(engine)
    finally:
        await engine.dispose()
    print(json.dumps(tokens, ensure_ascii=False, indent=2))
    return 0


def _parse_day(text: str, field: str) -> date:
    return parse_date(text, field)


async def _jobs_list(args: argparse.Namespace) -> int:
    from loanfund import jobs
    from loanfund.jobs import queries as job_queries

    engine = create_engine(_settings().database_url)
    try:
        async with engine.connect() as conn:
            done = await job_queries.last_completed(conn)
            latest = await job_queries.latest_runs(conn)
    finally:
        await engine.dispose()
    today = business_date()
    for job in jobs.JOBS:
        run = latest.get(job.name)
        last = done.get(job.name)
        print(
            json.dumps(
                {
                    "name": job.name,
                    "cadence": job.cadence.name,
                    "description": job.description,
                    "last_completed": last.isoformat() if last else None,
                    "owed": len(jobs.pending_dates(job, last, today)),
                    "last_run": None
                    if run is None
                    else {
                        "business_date": run.business_date.isoformat(),
                        "outcome": run.outcome,
                        "ended_at": run.ended_at.isoformat(),
                        "error": run.error,
                    },
                },
                ensure_ascii=False,
            )
        )
    return 0


def _run_dates(args: argparse.Namespace) -> list[date]:
    from loanfund import jobs

    job = jobs.get(args.name)
    today = business_date()
    if args.date is not None:
        if args.date_from is not None or args.date_to is not None:
            raise invalid("date", "give --date or --from/--to, not both")
        first = last = _parse_day(args.date, "date")
    else:
        # Without dates: the job's latest due date (yesterday for the jobs that run at the close).
        last = _parse_day(args.date_to, "to") if args.date_to else job.cadence.latest_due(today)
        first = _parse_day(args.date_from, "from") if args.date_from else last
    jobs.refuse_undue(job, last, today)
    if first > last:
        raise invalid("from", "must be on or before --to")
    return job.cadence.dates(first, last)


async def _jobs_run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from loanfund import jobs

    job = jobs.get(args.name)
    days = _run_dates(args)
    engine = create_engine(_settings().database_url)
    totals: dict[str, int] = {}
    outcomes = {"ok": 0, "failed": 0}
    failed: jobs.RunResult | None = None
    try:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            disable=args.quiet,
        ) as progress:
            task = progress.add_task(job.name, total=len(days))
            for day in days:
                progress.update(task, description=f"{job.name} {day.isoformat()}")
                result = await jobs.run_job(engine, job, day, trigger="manual")
                outcomes[result.outcome] = outcomes.get(result.outcome, 0) + 1
                if result.outcome == "failed" or result.error is not None:  # failed, or must wait
                    failed = result
                    break
                for name, value in result.counts.items():
                    totals[name] = totals.get(name, 0) + value
                progress.advance(task)
    finally:
        await engine.dispose()
    summary = {
        "job": job.name,
        "from": days[0].isoformat() if days else None,
        "to": days[-1].isoformat() if days else None,
        "dates": len(days),
        **outcomes,
        "counts": totals,
    }
    if failed is not None:
        summary["failed_date"] = failed.business_date.isoformat()
        summary["error"] = failed.error
    print(json.dumps(summary, ensure_ascii=False))
    return 1 if failed is not None else 0


async def _scheduler(args: argparse.Namespace) -> int:
    import signal

    from loanfund import policy
    from scheduler.runner import SchedulerRunner

    settings = _settings()
    policy.load_editions()
    engine = create_engine(settings.database_url, pool_size=2)
    runner = SchedulerRunner(engine, settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await runner.start()
    print(json.dumps({"scheduler": "running", "pid": os.getpid()}), flush=True)
    try:
        await stop.wait()
    finally:
        await runner.stop()
        await engine.dispose()
    return 0


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from api.app import create_app

    settings = _settings()
    asyncio.run(_check_schema(settings))
    app = create_app(settings, run_scheduler=not args.no_scheduler)
    print(
        f"loanfund on http://{args.host}:{args.port}  (API docs: http://{args.host}:{args.port}/schema)",
        flush=True,
    )
    # No access log: query strings can carry ID numbers (GET /borrowers?id_number=…), never logged in full.
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="loanfund", description=__doc__, epilog=ENVIRONMENT, formatter_class=_HelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(
        parent: argparse._SubParsersAction[argparse.ArgumentParser], name: str, text: str
    ) -> argparse.ArgumentParser:
        return parent.add_parser(
            name, help=text, description=text, epilog=ENVIRONMENT, formatter_class=_HelpFormatter
        )

    db = command(commands, "db", "database schema").add_subparsers(
        dest="db_command", required=True, metavar="COMMAND"
    )
    db_upgrade = command(
        db, "upgrade", "create or migrate the schema at LOANFUND_DATABASE_URL (safe to run again)"
    )
    db_upgrade.add_argument(
        "--grant-to",
        metavar="ROLE",
        help="PostgreSQL: give ROLE (which owns nothing) what the service needs; run the service as ROLE",
    )

    client_parser = command(commands, "clients", "API clients and their tokens")
    client_commands = client_parser.add_subparsers(dest="clients_command", required=True, metavar="COMMAND")
    add = command(client_commands, "add", "create a client and print its token once, as one JSON line")
    add.add_argument("--role", required=True, choices=clients.ROLES, help="what the client may do")
    add.add_argument("--region", help="region-code prefix, e.g. 2301 (fund_manager, window, auditor)")
    add.add_argument("--bank", help="bank code (bank role)")
    add.add_argument("--name", required=True, help="who the client is, shown in the audit log")
    command(client_commands, "list", "list clients as JSON lines (never tokens)")
    revoke = command(client_commands, "revoke", "revoke a client's token")
    revoke.add_argument("client_id", help="the client_id printed by `clients add`")

    users_parser = command(commands, "users", "people who sign in to the dashboard")
    user_commands = users_parser.add_subparsers(dest="users_command", required=True, metavar="COMMAND")
    add_user = command(user_commands, "add", "create a dashboard user")
    add_user.add_argument(
        "--role", required=True, choices=("fund_manager", "auditor"), help="what they may do"
    )
    add_user.add_argument("--region", required=True, help="region-code prefix, as for API clients")
    add_user.add_argument("--name", required=True, help="the name they sign in with")
    for sub in (add_user, command(user_commands, "password", "set a new password")):
        if sub is not add_user:
            sub.add_argument("--name", required=True, help="the user's sign-in name")
        sub.add_argument(
            "--password-stdin",
            action="store_true",
            help="read the password from standard input (else prompt)",
        )
    command(user_commands, "disable", "disable a user and end their sessions").add_argument(
        "--name", required=True, help="the user's sign-in name"
    )
    command(user_commands, "list", "list users as JSON lines (never passwords)")

    demo = command(
        commands,
        "demo",
        "fill an empty, upgraded database with a demo province (two years of lending replayed up to the"
        " business date) and print one demo token per role and the dashboard users",
    )
    demo.add_argument("--quiet", action="store_true", help="no progress bar (on stderr)")

    serve = command(commands, "serve", "serve the API and its docs (/schema), and run the scheduled jobs")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    serve.add_argument("--port", type=int, default=8000, help="TCP port to listen on")
    serve.add_argument(
        "--no-scheduler",
        action="store_true",
        help="do not run scheduled jobs in this process (another process runs them)",
    )
    serve.add_argument(
        "--log-level",
        default="info",
        choices=("critical", "error", "warning", "info", "debug"),
        help="log level of the HTTP server (uvicorn)",
    )

    command(commands, "scheduler", "run the scheduled jobs alone, without the API (one leader per database)")
    jobs_parser = command(commands, "jobs", "scheduled jobs: list them, or run one by hand")
    job_commands = jobs_parser.add_subparsers(dest="jobs_command", required=True, metavar="COMMAND")
    command(job_commands, "list", "each job, its cadence, last completed date and last run")
    run = command(
        job_commands, "run", "run a job by hand for a date or a range (default: its latest due date)"
    )
    run.add_argument("name", help="the job's name, as `loanfund jobs list` shows it")
    run.add_argument("--date", help="one business date YYYY-MM-DD")
    run.add_argument("--from", dest="date_from", help="first business date YYYY-MM-DD")
    run.add_argument("--to", dest="date_to", help="last business date (default: the job's latest due date)")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
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
        if args.command == "scheduler":
            return asyncio.run(_scheduler(args))
        if args.command == "jobs":
            return asyncio.run(_jobs_list(args) if args.jobs_command == "list" else _jobs_run(args))
    except LoanfundError as exc:
        print(json.dumps({"error": exc.code, "detail": exc.detail}, ensure_ascii=False), file=sys.stderr)
        return 2
    except (DBAPIError, OSError) as exc:
        # An unreachable server or an unreadable file: one line that says where, not a traceback.
        where = make_url(_settings().database_url).render_as_string(hide_password=True)
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        detail = f"cannot use the database at {where}: {reason}"
        print(
            json.dumps({"error": "database_unavailable", "detail": detail}, ensure_ascii=False),
            file=sys.stderr,
        )
        return 2
    return 1


if __name__ == "__main__":
    sys.exit(main())
