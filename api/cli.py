"""The `loanfund` command: database, clients, demo data, and serving the API."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Sequence
from datetime import date

from loanfund import clients
from loanfund.audit import Actor
from loanfund.clock import business_date, parse_date
from loanfund.config import Settings
from loanfund.db import create_engine
from loanfund.db.migrate import upgrade
from loanfund.errors import FutureDate, LoanfundError, ValidationFailed

CLI_ACTOR = Actor(client_id=None, request_id="cli")


def _settings() -> Settings:
    return Settings.from_env()


async def _add_client(args: argparse.Namespace) -> int:
    engine = create_engine(_settings().database_url)
    try:
        async with engine.begin() as conn:
            client, token = await clients.add_client(
                conn,
                CLI_ACTOR,
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
        async with engine.begin() as conn:
            await clients.revoke_client(conn, CLI_ACTOR, args.client_id)
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
                    "owed": len(jobs.pending_dates(job, last, today)) if last else 1,
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
            raise ValidationFailed([{"field": "date", "message": "give --date or --from/--to, not both"}])
        first = last = _parse_day(args.date, "date")
    else:
        # Without dates: the job's latest due date (yesterday for the jobs that run at the close).
        last = _parse_day(args.date_to, "to") if args.date_to else job.cadence.latest_due(today)
        first = _parse_day(args.date_from, "from") if args.date_from else last
    if last > today:
        raise FutureDate(f"{last.isoformat()} is after the business date {today.isoformat()}", field="date")
    if first > last:
        raise ValidationFailed([{"field": "from", "message": "must be on or before --to"}])
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
                if result.outcome == "failed":
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
    db.add_parser("upgrade", help="create or migrate the schema at LOANFUND_DATABASE_URL")

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

    commands.add_parser("scheduler", help="run the scheduled jobs alone, without the API")
    jobs_parser = commands.add_parser("jobs", help="scheduled jobs")
    job_commands = jobs_parser.add_subparsers(dest="jobs_command", required=True)
    job_commands.add_parser("list", help="each job, its cadence, last completed date and last run")
    run = job_commands.add_parser(
        "run", help="run a job by hand for a date or a range (default: its latest due date)"
    )
    run.add_argument("name")
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
            print(json.dumps({"database": "upgraded"}))
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
        if args.command == "scheduler":
            return asyncio.run(_scheduler(args))
        if args.command == "jobs":
            return asyncio.run(_jobs_list(args) if args.jobs_command == "list" else _jobs_run(args))
    except LoanfundError as exc:
        print(json.dumps({"error": exc.code, "detail": exc.detail}, ensure_ascii=False), file=sys.stderr)
        return 2
    return 1


if __name__ == "__main__":
    sys.exit(main())
