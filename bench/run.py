"""Load test of the hot write paths against a raw-asyncpg baseline, on PostgreSQL (docs/performance.md).

    .venv/bin/python -m bench.run [--driver wrk] [--rounds 3] [--concurrency 32] [--approvals 2000]
                                  [--repayments 2000]

1. Recreates the database `loanfund_bench` and migrates it.
2. Seeds through the library (not measured): a cn-2020 fund with cash, 8 banks with an agreement and a
   deposit each, one borrower and one submitted application per approval, and the API clients.
3. Starts the API (one uvicorn worker) and the baseline app (one worker) on 127.0.0.1, warms both up,
   and drives rounds of: baseline, approve (fund manager), baseline, disburse (bank), baseline, repay
   (bank), baseline — each with C concurrent connections, an Idempotency-Key per API POST, a bounded
   request count and a time limit. The load generator is wrk (bench/wrk.lua sends each request once),
   which costs almost no CPU beside the server; `--driver httpx` drives it from Python instead. A
   phase's ratio is to the baselines just before and after it, since the speed of a shared machine
   drifts; a kind's ratio is the mean over the rounds.
4. Verifies: no over-reservation of any fund × bank pair, a balanced trial balance, one guarantee per
   200 approval, and capacity rebuilt from the ledger equal to the live capacity.
5. Prints a table and writes bench/results/latest.json. The servers are stopped in any case.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python")
RESULTS = ROOT / "bench" / "results"
TODAY = "2026-11-27"
MATURITY = "2028-11-27"
FUND = "BENCH"
REGION = "230100"
BANKS = tuple(f"BK{i}" for i in range(8))
APPLICATION_YUAN = 50_000
LOAN_YUAN = 40_000
HOST = "127.0.0.1"


@dataclass
class Phase:
    name: str
    requests: int
    concurrency: int
    seconds: float
    statuses: dict[str, int]
    latencies_ms: list[float] = field(repr=False)
    errors: list[str] = field(default_factory=list)
    timed_out: bool = False
    server_cpu_s: float = 0.0
    loadgen_cpu_s: float = 0.0
    db_cpu_s: float = 0.0
    machine_busy: float = 0.0
    machine_pct: dict[str, float] = field(default_factory=dict)
    # Percentiles reported by the load generator itself (wrk), when it does not hand over each latency.
    reported_ms: dict[int, float] = field(default_factory=dict)

    @property
    def ok(self) -> int:
        return sum(count for status, count in self.statuses.items() if status.startswith("2"))

    @property
    def failed(self) -> int:
        return self.requests - self.ok

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, pct: float) -> float:
        if int(pct) in self.reported_ms:
            return self.reported_ms[int(pct)]
        if not self.latencies_ms:
            return 0.0
        ordered = sorted(self.latencies_ms)
        index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
        return ordered[index]

    def summary(self, baseline_rps: float | None) -> dict[str, Any]:
        return {
            "phase": self.name,
            "requests": self.requests,
            "concurrency": self.concurrency,
            "seconds": round(self.seconds, 3),
            "rps": round(self.rps, 1),
            "p50_ms": round(self.percentile(50), 2),
            "p99_ms": round(self.percentile(99), 2),
            "errors": self.failed,
            "statuses": self.statuses,
            "timed_out": self.timed_out,
            "server_cpu_ms_per_request": round(1000 * self.server_cpu_s / max(self.requests, 1), 2),
            "loadgen_cpu_ms_per_request": round(1000 * self.loadgen_cpu_s / max(self.requests, 1), 2),
            "postgres_cpu_ms_per_request": round(1000 * self.db_cpu_s / max(self.requests, 1), 2),
            "machine_busy_pct": round(100 * self.machine_busy, 1),
            "machine_cpu_pct": self.machine_pct,
            "ratio_to_baseline": round(self.rps / baseline_rps, 3) if baseline_rps else None,
            "error_samples": self.errors[:5],
        }


# ---- database and seed ----------------------------------------------------------------------------


def database_urls(server: str, name: str) -> tuple[str, str]:
    """(asyncpg DSN, SQLAlchemy URL) of database `name` on `server` (host:port)."""
    dsn = f"postgresql://postgres@{server}/{name}"
    return dsn, dsn.replace("postgresql://", "postgresql+asyncpg://", 1)


async def recreate_database(server: str, name: str) -> None:
    conn = await asyncpg.connect(f"postgresql://postgres@{server}/postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def resident_ids(count: int) -> Iterator[str]:
    """Distinct valid resident IDs of men born 1976–1998 (district 230102)."""
    from stdnum.cn import ric

    start = date(1976, 1, 1)
    for i in range(count):
        birth = (start + timedelta(days=i % 8000)).strftime("%Y%m%d")
        body = f"230102{birth}{1 + i // 8000:02d}1"
        yield body + ric.calc_check_digit(body + "0")


@dataclass
class Seed:
    application_ids: list[str]
    manager_token: str
    bank_tokens: dict[str, str]
    application_bank: dict[str, str]


async def seed(engine: AsyncEngine, count: int) -> Seed:
    """Everything the phases need, through the library, in a few transactions."""
    from loanfund import banks, clients, uow
    from loanfund.agreements import service as agreements_service
    from loanfund.applications import service as application_service
    from loanfund.audit import Actor
    from loanfund.borrowers import queries as borrower_queries
    from loanfund.borrowers import service as borrower_service
    from loanfund.eligibility.service import ApplicationRequest, GuaranteeRequest
    from loanfund.funds import service as funds_service

    setup = Actor(client_id=None, request_id="bench-seed")
    today = date.fromisoformat(TODAY)
    per_bank = -(-count // len(BANKS))
    # Reserved at 50,000 each and the multiple 5: deposit a fifth of what a bank takes, plus a margin.
    deposit_fen = (per_bank * APPLICATION_YUAN * 100) // 5 + 10_000_000
    async with uow.transaction(engine, setup, today) as tx:
        await funds_service.create_fund(
            tx, code=FUND, name="Bench fund", region_code=REGION, policy_edition="cn-2020"
        )
        await funds_service.record_contribution(
            tx,
            fund_code=FUND,
            source="central",
            amount_fen=deposit_fen * len(BANKS),
            received_on=date(2026, 1, 5),
            reference="bench-cash",
        )
        bank_tokens = {}
        for bank in BANKS:
            await banks.create_bank(tx, code=bank, name=f"Bank {bank}")
            agreement_id = await agreements_service.create_agreement(
                tx,
                fund_code=FUND,
                bank_code=bank,
                leverage_multiple=Decimal(5),
                fund_loss_share_pct=Decimal(80),
                claim_after_days=90,
                claim_covers_interest=True,
                effective_from=date(2026, 1, 1),
                effective_to=None,
            )
            await agreements_service.deposit(
                tx,
                agreement_id,
                amount_fen=deposit_fen,
                deposited_on=date(2026, 2, 1),
                reference=f"bench-deposit-{bank}",
            )
            _, bank_tokens[bank] = await clients.add_client(
                tx, role="bank", name=f"bench bank {bank}", bank_code=bank
            )
        window, _ = await clients.add_client(tx, role="window", name="bench window", region_prefix="2301")
        _, manager_token = await clients.add_client(
            tx, role="fund_manager", name="bench manager", region_prefix="2301"
        )

    submitter = Actor(client_id=window.id, request_id="bench-seed")
    ids = list(resident_ids(count))

    async def submit_batch(indexes: range) -> list[tuple[str, str]]:
        made = []
        async with uow.transaction(engine, submitter, today) as tx:
            conn = tx.conn
            for i in indexes:
                borrower_id = await borrower_service.register_individual(
                    tx,
                    id_number=ids[i],
                    name=f"Borrower {i}",
                    phone=None,
                    categories=["registered_unemployed"],
                    certificates=[],
                    credit_community=False,
                    syb_trained=False,
                    region_code=REGION,
                )
                borrower = await borrower_queries.get_borrower(conn, borrower_id)
                bank = BANKS[i % len(BANKS)]
                request = ApplicationRequest(
                    fund_code=FUND,
                    bank_code=bank,
                    borrower_id=borrower_id,
                    amount_fen=APPLICATION_YUAN * 100,
                    term_months=24,
                    applied_on=today,
                    guarantee=GuaranteeRequest(kind="collateral", collateral_description="shop equipment"),
                )
                application_id, _ = await application_service.submit(
                    tx,
                    request,
                    borrower=borrower,
                    purpose="a noodle shop",
                    micro_profit=True,
                    jobs_created=2,
                    region_prefix="2301",
                )
                made.append((application_id, bank))
        return made

    batch = 250
    made: list[tuple[str, str]] = []
    for results in await asyncio.gather(
        *(submit_batch(range(start, min(count, start + batch))) for start in range(0, count, batch))
    ):
        made.extend(results)
    return Seed(
        application_ids=[application_id for application_id, _ in made],
        manager_token=manager_token,
        bank_tokens=bank_tokens,
        application_bank=dict(made),
    )


# ---- servers --------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class Server:
    """One uvicorn worker in its own process group, stopped by `stop()` whatever happened."""

    def __init__(self, name: str, target: list[str], env: dict[str, str]) -> None:
        self.name = name
        self.port = free_port()
        self.log = RESULTS / f"{name}.log"
        self.command = [
            PYTHON,
            "-m",
            "uvicorn",
            *target,
            "--host",
            HOST,
            "--port",
            str(self.port),
            "--no-access-log",
            "--log-level",
            "warning",
        ]
        self.env = {**os.environ, **env}
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    async def start(self, ready_path: str, timeout: float = 30) -> None:
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                self.command,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(base_url=self.url, timeout=2) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"{self.name} exited with {self.process.returncode}; see {self.log}")
                try:
                    await client.get(ready_path)
                    return
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
        raise RuntimeError(f"{self.name} did not start within {timeout}s; see {self.log}")

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        except ProcessLookupError:
            pass


def _stat_cpu_seconds(stat: str) -> float:
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    return _stat_cpu_seconds(Path(f"/proc/{pid}/stat").read_text())


def postgres_cpu_seconds() -> dict[int, float]:
    """CPU time of every live `postgres` process by pid (the server and its backends; Linux /proc)."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        if "(postgres)" in text:
            found[int(stat.parent.name)] = _stat_cpu_seconds(text)
    return found


STAT_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def machine_cpu_seconds() -> dict[str, float]:
    """CPU seconds of the whole machine so far, all cores, by kind (Linux /proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    tick = os.sysconf("SC_CLK_TCK")
    return {name: value / tick for name, value in zip(STAT_FIELDS, values, strict=True)}


class CpuMeter:
    """CPU used by the server, this load generator and the whole machine while a phase runs."""

    def __init__(self, server_pid: int | None) -> None:
        self.server_pid = server_pid

    def __enter__(self) -> CpuMeter:
        self.server0 = process_cpu_seconds(self.server_pid) if self.server_pid else 0.0
        self.self0 = process_cpu_seconds(os.getpid())
        self.db0 = postgres_cpu_seconds()
        self.machine0 = machine_cpu_seconds()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server = (process_cpu_seconds(self.server_pid) if self.server_pid else 0.0) - self.server0
        self.loadgen = process_cpu_seconds(os.getpid()) - self.self0
        # Processes that ended meanwhile (an autovacuum worker) are left out: a lower bound.
        self.db = sum(cpu - self.db0.get(pid, 0.0) for pid, cpu in postgres_cpu_seconds().items())
        machine = machine_cpu_seconds()
        spent = {name: machine[name] - self.machine0[name] for name in STAT_FIELDS}
        total = max(sum(spent.values()), 1e-9)
        self.machine = {name: round(100 * value / total, 1) for name, value in spent.items()}
        self.machine_busy = 1 - (spent["idle"] + spent["iowait"]) / total


class Profiler:
    """py-spy sampling the server during a phase (`--profile`), if py-spy is installed."""

    def __init__(self, pid: int | None, name: str) -> None:
        self.command = None
        py_spy = Path(PYTHON).parent / "py-spy"
        if pid is not None and py_spy.exists():
            output = RESULTS / f"profile-{name}.txt"
            self.command = [
                str(py_spy),
                "record",
                "-p",
                str(pid),
                "-o",
                str(output),
                "-f",
                "raw",
                "-r",
                "200",
            ]
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Profiler:
        if self.command:
            self.process = subprocess.Popen(
                self.command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
            )
            time.sleep(0.5)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)


# ---- load generator -------------------------------------------------------------------------------

Request = tuple[str, dict[str, Any] | None, dict[str, str]]  # path, JSON body, headers


async def drive(
    name: str,
    base_url: str,
    requests: list[Request],
    concurrency: int,
    time_limit: float,
    *,
    server_pid: int | None = None,
    profile: bool = False,
) -> tuple[Phase, list[tuple[int, Any]]]:
    """POST every request with `concurrency` clients; latencies and statuses, and each response."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    errors: list[str] = []
    responses: list[tuple[int, Any]] = [(0, None)] * len(requests)
    queue = iter(enumerate(requests))
    deadline = time.monotonic() + time_limit
    timed_out = False

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal timed_out
        for index, (path, body, headers) in queue:
            if time.monotonic() > deadline:
                timed_out = True
                return
            started = time.perf_counter()
            try:
                response = await client.post(path, json=body, headers=headers)
            except httpx.HTTPError as exc:
                latencies.append((time.perf_counter() - started) * 1000)
                statuses["transport_error"] += 1
                errors.append(f"{path}: {exc!r}")
                continue
            latencies.append((time.perf_counter() - started) * 1000)
            statuses[str(response.status_code)] += 1
            if response.status_code >= 300:
                errors.append(f"{path}: {response.status_code} {response.text[:300]}")
            responses[index] = (response.status_code, response.content)

    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60) as client:
        with Profiler(server_pid if profile else None, name), CpuMeter(server_pid) as cpu:
            started = time.perf_counter()
            await asyncio.gather(*(worker(client) for _ in range(concurrency)))
            seconds = time.perf_counter() - started
    phase = Phase(name, len(latencies), concurrency, seconds, dict(statuses), latencies, errors, timed_out)
    phase.server_cpu_s, phase.loadgen_cpu_s, phase.db_cpu_s = cpu.server, cpu.loadgen, cpu.db
    phase.machine_busy, phase.machine_pct = cpu.machine_busy, cpu.machine
    return phase, responses


WRK_SCRIPT = ROOT / "bench" / "wrk.lua"


def wrk_binary() -> str:
    """wrk (Debian package `wrk`), installed with apt-get when missing."""
    found = shutil.which("wrk")
    if found:
        return found
    print("installing wrk (apt-get install wrk) …", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=False, stdout=subprocess.DEVNULL)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "wrk"],
        check=True,
        stdout=subprocess.DEVNULL,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("wrk is not installed and apt-get could not install it")
    return found


# What each kind of phase leaves in the database: its requests are done when this count has grown by
# their number (bench/wrk.lua cannot tell, since wrk does not hand each response to the script).
EFFECT_COUNTS = {
    "baseline": "SELECT coalesce(max(id), 0) FROM baseline_moves",
    "approve": "SELECT count(*) FROM guarantees",
    "disburse": "SELECT count(*) FROM loans",
    "repay": "SELECT count(*) FROM loan_repayments",
}


async def drive_wrk(
    name: str,
    base_url: str,
    requests: list[Request],
    concurrency: int,
    time_limit: float,
    *,
    server_pid: int | None = None,
    profile: bool = False,
    dsn: str = "",
) -> tuple[Phase, list[tuple[int, Any]]]:
    """POST every request once with wrk (C connections on two threads). The phase lasts from wrk's
    start until the database holds the effect of every request (polled every 20 ms on a connection of
    its own); a request refused (4xx) leaves no effect, so a phase with refusals runs to its time
    limit and is reported as timed out. Responses are not handed back: callers read the database."""
    threads = min(2, concurrency)
    work = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
    lines = []
    for path, body, headers in requests:
        header_text = "|".join(f"{key}: {value}" for key, value in headers.items())
        payload = json.dumps(body, separators=(",", ":")) if body is not None else ""
        lines.append(f"POST\t{path}\t{header_text}\t{payload}")
    request_file = work / "requests.tsv"
    request_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    command = [
        wrk_binary(),
        "-t",
        str(threads),
        "-c",
        str(concurrency),
        "-d",
        f"{int(time_limit) + 30}s",
        "--timeout",
        "60s",
        "-s",
        str(WRK_SCRIPT),
        base_url,
        "--",
        str(request_file),
        str(threads),
    ]
    counter = await asyncpg.connect(dsn)
    count_sql = EFFECT_COUNTS[name.split("_")[0]]
    try:
        before = int(await counter.fetchval(count_sql))
        target = before + len(requests)
        timed_out = False
        with Profiler(server_pid if profile else None, name), CpuMeter(server_pid) as cpu:
            started = time.perf_counter()
            process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            while True:
                await asyncio.sleep(0.02)
                now = int(await counter.fetchval(count_sql))
                if now >= target or process.poll() is not None:
                    break
                if time.perf_counter() - started > time_limit:
                    timed_out = True
                    break
            seconds = time.perf_counter() - started
            wrk_cpu = process_cpu_seconds(process.pid) if process.poll() is None else 0.0
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        await counter.close()
        shutil.rmtree(work, ignore_errors=True)
    statuses: dict[str, int] = {}
    reported: dict[int, float] = {}
    errors: list[str] = []
    for line in out.splitlines():
        if line.startswith("STATUS"):
            for item in line.split()[1:]:
                code, count = item.split("=")
                statuses[code] = int(count)
        elif line.startswith("P") and " " in line:
            pct, value = line[1:].split()
            reported[int(pct)] = float(value)
    done = now - before
    ok = sum(count for code, count in statuses.items() if code.startswith("2"))
    if done < len(requests):
        errors.append(f"{len(requests) - done} of {len(requests)} requests left no effect")
        statuses["no_effect"] = len(requests) - done
    refused = {code: count for code, count in statuses.items() if code[0] in "45"}
    if refused:
        errors.append(f"refused: {refused}")
    if not statuses and err.strip():
        errors.append(f"wrk: {err.strip()[:300]}")
    phase = Phase(name, done, concurrency, seconds, {"2xx": min(ok, done), **refused}, [], errors, timed_out)
    phase.reported_ms = reported
    phase.server_cpu_s, phase.loadgen_cpu_s, phase.db_cpu_s = cpu.server, wrk_cpu, cpu.db
    phase.machine_busy, phase.machine_pct = cpu.machine_busy, cpu.machine
    return phase, []


def post_headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex}


# ---- verification ---------------------------------------------------------------------------------


async def verify(engine: AsyncEngine, approvals_ok: int) -> dict[str, Any]:
    from loanfund.agreements.reservations import capacity_from_ledger, pair_capacity
    from loanfund.db.tables import funds, guarantees
    from loanfund.ledger.queries import trial_balance

    today = date.fromisoformat(TODAY)
    problems: list[str] = []
    pairs = []
    async with engine.connect() as conn:
        fund_codes = list((await conn.scalars(sa.select(funds.c.code))).all())
        for fund_code in fund_codes:
            tb = await trial_balance(conn, fund_code)
            if tb.total_debit_fen != tb.total_credit_fen:
                problems.append(
                    f"fund {fund_code}: debit {tb.total_debit_fen} != credit {tb.total_credit_fen}"
                )
        for bank in BANKS:
            live = await pair_capacity(conn, FUND, bank, today=today)
            rebuilt = await capacity_from_ledger(conn, FUND, bank, as_of=today)
            pairs.append(
                {
                    "bank": bank,
                    "capacity_fen": live.capacity_fen,
                    "outstanding_fen": live.outstanding_fen,
                    "reserved_fen": live.reserved_fen,
                    "headroom_fen": live.headroom_fen,
                }
            )
            if live.outstanding_fen + live.reserved_fen > live.capacity_fen:
                problems.append(f"pair {FUND}×{bank} over-reserved: {live}")
            if live != rebuilt:
                problems.append(f"pair {FUND}×{bank}: live {live} != from ledger {rebuilt}")
        guarantee_count = int(await conn.scalar(sa.select(sa.func.count()).select_from(guarantees)) or 0)
    if guarantee_count != approvals_ok:
        problems.append(f"{guarantee_count} guarantees but {approvals_ok} approvals answered 200")
    return {
        "ok": not problems,
        "problems": problems,
        "funds": len(fund_codes),
        "guarantees": guarantee_count,
        "approvals_ok": approvals_ok,
        "pairs": pairs,
    }


# ---- the run --------------------------------------------------------------------------------------


def print_table(rows: list[dict[str, Any]]) -> None:
    header = ("phase", "requests", "conc", "seconds", "req/s", "p50 ms", "p99 ms", "errors", "ratio")
    print(" | ".join(f"{h:>9}" for h in header))
    for row in rows:
        ratio = "" if row["ratio_to_baseline"] is None else f"{row['ratio_to_baseline']:.3f}"
        values = (
            row["phase"],
            row["requests"],
            row["concurrency"],
            f"{row['seconds']:.2f}",
            f"{row['rps']:.1f}",
            f"{row['p50_ms']:.1f}",
            f"{row['p99_ms']:.1f}",
            row["errors"],
            ratio,
        )
        print(" | ".join(f"{v!s:>9}" for v in values))


async def run(args: argparse.Namespace) -> int:
    from loanfund.db import create_engine
    from loanfund.db.migrate import upgrade_async

    RESULTS.mkdir(parents=True, exist_ok=True)
    os.environ["LOANFUND_BUSINESS_DATE"] = TODAY
    dsn, url = database_urls(args.server, args.database)
    args.dsn = dsn
    concurrency = args.concurrency
    warmup = min(2 * concurrency, 64)
    started = time.perf_counter()
    print(f"recreating {args.database} and migrating …", flush=True)
    await recreate_database(args.server, args.database)
    await upgrade_async(url)
    engine = create_engine(url, pool_size=8)
    try:
        total = warmup + args.rounds * args.approvals
        print(f"seeding {total} applications …", flush=True)
        t0 = time.perf_counter()
        seeded = await seed(engine, total)
        print(f"seeded in {time.perf_counter() - t0:.1f}s", flush=True)
        app_env = {"LOANFUND_DATABASE_URL": dsn, "LOANFUND_BUSINESS_DATE": TODAY}
        if args.api_pool_size is not None:  # else the app's default (5, and as many again on demand)
            app_env["LOANFUND_DB_POOL_SIZE"] = str(args.api_pool_size)
        api = Server("api", ["--factory", "api.app:create_app"], app_env)
        baseline = Server("baseline", ["bench.baseline_app:app"], {"BENCH_DSN": dsn})
        phases: dict[str, Phase] = {}
        try:
            await api.start("/health")
            await baseline.start("/")
            phases.update(await drive_api(api, baseline, seeded, args, warmup, dsn))
        finally:
            api.stop()
            baseline.stop()
        approvals_ok = sum(
            phase.statuses.get("200", phase.statuses.get("2xx", 0))
            for name, phase in phases.items()
            if name.startswith("approve")
        )
        verification = await verify(engine, approvals_ok)
    finally:
        await engine.dispose()

    # The machine's speed drifts: each phase is compared with the baseline runs just before and after
    # it, and each kind's line sums up its rounds (its ratio is the mean of the rounds' ratios).
    around = {"approve": ("a", "b"), "disburse": ("b", "c"), "repay": ("c", "d")}
    rows = []
    per_round = []
    for kind, (before, after) in around.items():
        ratios = []
        for r in range(1, args.rounds + 1):
            reference = (phases[f"baseline_{r}{before}"].rps + phases[f"baseline_{r}{after}"].rps) / 2
            row = phases[f"{kind}_{r}"].summary(reference)
            per_round.append(row)
            ratios.append(row["ratio_to_baseline"] or 0.0)
        merged = merge_phases(kind, [phases[f"{kind}_{r}"] for r in range(1, args.rounds + 1)])
        line = merged.summary(None)
        line["ratio_to_baseline"] = round(sum(ratios) / len(ratios), 3)
        rows.append(line)
    baselines = [phases[name] for name in phases if name.startswith("baseline_") and name[-1] in "abcd"]
    rows.append(merge_phases("baseline", baselines).summary(None))
    print()
    print_table(rows + per_round)
    print()
    for row in rows:
        for sample in row["error_samples"]:
            print(f"  {row['phase']} error: {sample}")
    print("verification:", "OK" if verification["ok"] else "FAILED", json.dumps(verification["problems"]))
    result = {
        "command": " ".join([".venv/bin/python -m bench.run", *sys.argv[1:]]),
        "machine": {"nproc": os.cpu_count(), "python": platform.python_version()},
        "driver": args.driver,
        "business_date": TODAY,
        "api_pool_size": args.api_pool_size,
        "phases": rows,
        "rounds": per_round,
        "ratio_note": "each phase against the mean of the baseline runs just before and after it; "
        "a kind's ratio is the mean over its rounds",
        "target_met": all((row["ratio_to_baseline"] or 0) >= 0.5 for row in rows if row["phase"] in around),
        "verification": verification,
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    (RESULTS / "latest.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS / 'latest.json'}")
    clean = verification["ok"] and all(row["errors"] == 0 for row in rows)
    return 0 if clean else 1


PhaseRunner = Callable[[str, list["Request"]], Awaitable[tuple[Phase, list[tuple[int, Any]]]]]


def phase_runner(server: Server, args: argparse.Namespace) -> PhaseRunner:
    """`run(name, requests)`: one phase against `server` with the run's concurrency and time limit."""
    pid = server.process.pid if server.process is not None else None

    async def run_phase(name: str, requests: list[Request]) -> tuple[Phase, list[tuple[int, Any]]]:
        profile = args.profile and not name.endswith("_warmup")
        if args.driver == "wrk":
            return await drive_wrk(
                name,
                server.url,
                requests,
                args.concurrency,
                args.time_limit,
                server_pid=pid,
                profile=profile,
                dsn=args.dsn,
            )
        return await drive(
            name, server.url, requests, args.concurrency, args.time_limit, server_pid=pid, profile=profile
        )

    return run_phase


def merge_phases(name: str, parts: list[Phase]) -> Phase:
    """Several runs of one kind as one: their requests over their summed time."""
    statuses: Counter[str] = Counter()
    for part in parts:
        statuses.update(part.statuses)
    merged = Phase(
        name,
        sum(p.requests for p in parts),
        parts[0].concurrency,
        sum(p.seconds for p in parts),
        dict(statuses),
        [latency for p in parts for latency in p.latencies_ms],
        [error for p in parts for error in p.errors],
        any(p.timed_out for p in parts),
    )
    merged.server_cpu_s = sum(p.server_cpu_s for p in parts)
    merged.loadgen_cpu_s = sum(p.loadgen_cpu_s for p in parts)
    merged.db_cpu_s = sum(p.db_cpu_s for p in parts)
    merged.machine_busy = sum(p.machine_busy * p.seconds for p in parts) / max(merged.seconds, 1e-9)
    if all(p.reported_ms for p in parts):
        # wrk reports percentiles, not latencies: the merged line shows the worst round's.
        merged.reported_ms = {pct: max(p.reported_ms[pct] for p in parts) for pct in parts[0].reported_ms}
    return merged


async def drive_api(
    server: Server, baseline: Server, seeded: Seed, args: argparse.Namespace, warmup: int, dsn: str
) -> dict[str, Phase]:
    """Rounds of approve, disburse and repay, each phase between two baseline runs."""
    manager = seeded.manager_token
    phases: dict[str, Phase] = {}
    run_phase = phase_runner(server, args)
    run_baseline = phase_runner(baseline, args)

    def moves(n: int) -> list[Request]:
        return [(f"/baseline/{k % 8}", None, {}) for k in range(n)]

    async def baseline_phase(name: str) -> None:
        print(f"  {name}: {args.approvals} requests", flush=True)
        phases[name], _ = await run_baseline(name, moves(args.approvals))

    def approvals(ids: list[str]) -> list[Request]:
        return [(f"/api/v1/applications/{i}/approve", None, post_headers(manager)) for i in ids]

    def loan_request(application_id: str) -> Request:
        body = {
            "application_id": application_id,
            "loan_number": f"LN-{application_id}",
            "principal": str(LOAN_YUAN),
            "annual_rate_pct": "3",
            "disbursed_on": TODAY,
            "maturity_on": MATURITY,
        }
        bank = seeded.application_bank[application_id]
        return ("/api/v1/loans", body, post_headers(seeded.bank_tokens[bank]))

    def repayments(loans: list[tuple[str, str]], count: int) -> list[Request]:
        made: list[Request] = []
        for n in range(count):
            loan_id, bank = loans[n % len(loans)]
            body = {"principal": "100", "interest": "10.50", "paid_on": TODAY}
            made.append((f"/api/v1/loans/{loan_id}/repayments", body, post_headers(seeded.bank_tokens[bank])))
        return made

    async def loans_of(application_ids: list[str]) -> list[tuple[str, str]]:
        conn = await asyncpg.connect(dsn)
        try:
            rows = await conn.fetch(
                "SELECT id, bank_code FROM loans WHERE application_id = ANY($1::text[]) ORDER BY id",
                application_ids,
            )
        finally:
            await conn.close()
        return [(row["id"], row["bank_code"]) for row in rows]

    # Warm both servers (connections, caches, the JIT of nothing): not measured.
    warm_ids = seeded.application_ids[:warmup]
    await run_baseline("baseline_warmup", moves(warmup))
    phases["approve_warmup"], _ = await run_phase("approve_warmup", approvals(warm_ids))
    phases["disburse_warmup"], _ = await run_phase("disburse_warmup", [loan_request(i) for i in warm_ids])
    warm_loans = await loans_of(warm_ids)
    phases["repay_warmup"], _ = await run_phase("repay_warmup", repayments(warm_loans, warmup))

    for r in range(1, args.rounds + 1):
        print(
            f"round {r} of {args.rounds} (concurrency {args.concurrency}, driver {args.driver})", flush=True
        )
        start = warmup + (r - 1) * args.approvals
        ids = seeded.application_ids[start : start + args.approvals]
        await baseline_phase(f"baseline_{r}a")
        print(f"  approve_{r}: {len(ids)} requests", flush=True)
        phases[f"approve_{r}"], _ = await run_phase(f"approve_{r}", approvals(ids))
        await baseline_phase(f"baseline_{r}b")
        print(f"  disburse_{r}: {len(ids)} requests", flush=True)
        phases[f"disburse_{r}"], _ = await run_phase(f"disburse_{r}", [loan_request(i) for i in ids])
        loans = await loans_of(ids)
        if not loans:
            raise RuntimeError("no loan was disbursed; see the disburse errors")
        await baseline_phase(f"baseline_{r}c")
        print(f"  repay_{r}: {args.repayments} requests", flush=True)
        phases[f"repay_{r}"], _ = await run_phase(f"repay_{r}", repayments(loans, args.repayments))
        await baseline_phase(f"baseline_{r}d")
    return phases


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--approvals", type=int, default=2000, help="approvals (and loans) per round")
    parser.add_argument("--repayments", type=int, default=2000, help="repayments per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of approve, disburse, repay")
    parser.add_argument(
        "--driver",
        choices=("wrk", "httpx"),
        default="wrk",
        help="load generator: wrk (C, nearly no CPU; Debian package, installed if missing) or httpx",
    )
    parser.add_argument("--time-limit", type=float, default=300, help="seconds per phase at most")
    parser.add_argument("--server", default="127.0.0.1:5432", help="PostgreSQL host:port (trust auth)")
    parser.add_argument("--database", default="loanfund_bench")
    parser.add_argument(
        "--api-pool-size",
        type=int,
        default=None,
        help="LOANFUND_DB_POOL_SIZE for the API (at most twice as many connections); 5 gives it the "
        "baseline's 10 connections. Default: the app's own default",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample each server with py-spy into bench/results/profile-*.txt",
    )
    args = parser.parse_args(argv)
    if (
        not 1 <= args.concurrency <= 256
        or not 1 <= args.approvals <= 100_000
        or not 1 <= args.repayments <= 100_000
        or not 1 <= args.rounds <= 10
    ):
        parser.error("concurrency 1–256, approvals and repayments 1–100000, rounds 1–10")
    return asyncio.run(run(args))


if __name__ == "__main__":
    raise SystemExit(main())
