"""The `loanfund` command (api.md "Operations tooling"), run as operators run it: a subprocess."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from api.app import create_app
from loanfund.config import DEFAULT_DATABASE_URL, Settings, normalise_database_url

LOANFUND = Path(sys.executable).parent / "loanfund"


def run(db: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LOANFUND_DATABASE_URL": f"sqlite:///{db}"}
    result = subprocess.run(
        [str(LOANFUND), *args], env=env, capture_output=True, text=True, timeout=60, cwd=db.parent
    )
    if check:
        assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result


def rows(db: Path, query: str) -> list[Any]:
    with sqlite3.connect(db) as conn:
        return list(conn.execute(query).fetchall())


@pytest.fixture
def db(tmp_path: Path, sqlite_template: Path) -> Path:
    """A database made by `loanfund db upgrade` (the session's template; upgrade is tested below)."""
    path = tmp_path / "x.db"
    shutil.copy(sqlite_template, path)
    return path


def test_db_upgrade_creates_the_schema_and_can_run_again(tmp_path: Path) -> None:
    path = tmp_path / "fresh.db"
    first = run(path, "db", "upgrade")
    assert json.loads(first.stdout) == {"database": "upgraded"}
    tables = {name for (name,) in rows(path, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"funds", "journal_entries", "postings", "ledger_accounts", "clients", "audit_log"} <= tables
    assert {"idempotency_keys", "allocations", "contributions", "reference_rate_fixings"} <= tables
    triggers = {name for (name,) in rows(path, "SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    assert "postings_apply_balance" in triggers
    seeded = rows(path, "SELECT count(*) FROM reference_rate_fixings")[0][0]
    assert seeded > 0
    run(path, "db", "upgrade")  # again: nothing to do, nothing duplicated
    assert rows(path, "SELECT count(*) FROM reference_rate_fixings")[0][0] == seeded
    version = rows(path, "SELECT version_num FROM alembic_version")
    assert len(version) == 1


async def test_clients_add_prints_one_json_line_with_a_working_token(db: Path) -> None:
    result = run(db, "clients", "add", "--role", "fund_manager", "--region", "2301", "--name", "X")
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    created = json.loads(lines[0])
    assert set(created) == {"client_id", "token"}
    token = created["token"]

    # Stored only as a hash: the token itself is nowhere in the database files.
    stored = rows(db, "SELECT id, role, region_prefix, token_hash FROM clients")
    assert stored == [
        (created["client_id"], "fund_manager", "2301", hashlib.sha256(token.encode()).hexdigest())
    ]
    raw = b"".join(p.read_bytes() for p in db.parent.iterdir() if p.name.startswith(db.name))
    assert token.encode() not in raw

    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{db}",
        pool_size=1,
        idempotency_claim_timeout_seconds=60,
        idempotency_retention_days=8,
    )
    async with AsyncTestClient(create_app(settings)) as http:
        ok = await http.get("/api/v1/funds", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200, ok.text
        assert ok.json() == {"items": [], "next_cursor": None}
        denied = await http.get("/api/v1/clients", headers={"Authorization": f"Bearer {token}"})
        assert denied.status_code == 403

        run(db, "clients", "revoke", created["client_id"])
        revoked = await http.get("/api/v1/funds", headers={"Authorization": f"Bearer {token}"})
        assert revoked.status_code == 401


def test_each_token_is_new(db: Path) -> None:
    tokens = {
        json.loads(run(db, "clients", "add", "--role", "admin", "--name", f"a{i}").stdout)["token"]
        for i in range(2)
    }
    assert len(tokens) == 2
    assert all(len(token) >= 40 for token in tokens)


@pytest.mark.parametrize(
    "args",
    [
        ["--role", "emperor", "--name", "X"],
        ["--role", "fund_manager", "--name", "X"],  # needs a region
        ["--role", "fund_manager", "--region", "23x1", "--name", "X"],
        ["--role", "admin", "--region", "2301", "--name", "X"],
        ["--role", "bank", "--name", "X"],  # needs a bank
        ["--role", "bank", "--bank", "NOBANK", "--name", "X"],  # an unknown bank
        ["--role", "window", "--region", "2301"],  # needs a name
        ["--role", "auditor", "--region", "2301", "--name", " "],
    ],
)
def test_invalid_clients_are_refused(db: Path, args: list[str]) -> None:
    result = run(db, "clients", "add", *args, check=False)
    assert result.returncode != 0
    assert result.stdout == ""
    assert rows(db, "SELECT count(*) FROM clients") == [(0,)]


def test_a_refusal_is_explained_on_stderr(db: Path) -> None:
    result = run(db, "clients", "add", "--role", "fund_manager", "--name", "X", check=False)
    assert result.returncode == 2
    problem = json.loads(result.stderr.strip().splitlines()[-1])
    assert problem["error"] == "validation_error"
    assert "region" in problem["detail"]


def test_clients_list_and_revoke(db: Path) -> None:
    window = json.loads(
        run(db, "clients", "add", "--role", "window", "--region", "23", "--name", "窗口").stdout
    )
    admin = json.loads(run(db, "clients", "add", "--role", "admin", "--name", "ops").stdout)
    listing = [json.loads(line) for line in run(db, "clients", "list").stdout.splitlines()]
    assert [item["client_id"] for item in listing] == [window["client_id"], admin["client_id"]]
    assert listing[0] == {
        "client_id": window["client_id"],
        "name": "窗口",
        "role": "window",
        "region_prefix": "23",
        "bank_code": None,
        "revoked": False,
    }
    assert all("token" not in json.dumps(item) for item in listing)

    revoked = run(db, "clients", "revoke", window["client_id"])
    assert json.loads(revoked.stdout) == {"client_id": window["client_id"], "revoked": True}
    listing = {
        json.loads(line)["client_id"]: json.loads(line)
        for line in run(db, "clients", "list").stdout.splitlines()
    }
    assert listing[window["client_id"]]["revoked"] is True
    assert listing[admin["client_id"]]["revoked"] is False
    actions = rows(db, "SELECT action, entity_id FROM audit_log ORDER BY id")
    assert ("client.revoked", window["client_id"]) in actions

    unknown = run(db, "clients", "revoke", "cli_nope", check=False)
    assert unknown.returncode != 0
    assert json.loads(unknown.stderr.strip().splitlines()[-1])["error"] == "not_found"


def test_no_command_or_unknown_command_fails(db: Path) -> None:
    assert run(db, check=False).returncode != 0
    assert run(db, "launch-rockets", check=False).returncode != 0


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (
            "postgresql://user:pw@db.example:5432/loanfund",
            "postgresql+asyncpg://user:pw@db.example:5432/loanfund",
        ),
        ("postgresql://postgres@127.0.0.1/test", "postgresql+asyncpg://postgres@127.0.0.1/test"),
        ("postgres://u@h/d", "postgresql+asyncpg://u@h/d"),
        ("postgresql+asyncpg://u@h/d", "postgresql+asyncpg://u@h/d"),
        ("sqlite:///relative.db", "sqlite+aiosqlite:///relative.db"),
        ("sqlite:////abs/path.db", "sqlite+aiosqlite:////abs/path.db"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite:///x.db"),
    ],
)
def test_plain_urls_map_to_the_async_drivers(given: str, expected: str) -> None:
    assert normalise_database_url(given) == expected


def test_settings_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOANFUND_DATABASE_URL", raising=False)
    assert Settings.from_env().database_url == DEFAULT_DATABASE_URL
    monkeypatch.setenv("LOANFUND_DATABASE_URL", "postgresql://u@h/d")
    monkeypatch.setenv("LOANFUND_IDEMPOTENCY_TIMEOUT", "5")
    settings = Settings.from_env()
    assert settings.database_url == "postgresql+asyncpg://u@h/d"
    assert settings.idempotency_claim_timeout_seconds == 5


# ---- a database that was never upgraded, and --help (issue 9) -------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["clients", "add", "--role", "admin", "--name", "ops"],
        ["clients", "list"],
        ["clients", "revoke", "cli_x"],
        ["demo"],
        ["serve", "--port", "1"],
    ],
)
def test_a_database_never_upgraded_is_explained_not_a_traceback(
    tmp_path: Path, args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from api.cli import main

    monkeypatch.setenv("LOANFUND_DATABASE_URL", f"sqlite:///{tmp_path / 'never.db'}")
    assert main(args) == 2
    out, err = capsys.readouterr()
    refusal = json.loads(err.strip().splitlines()[-1])
    assert refusal["error"] == "schema_out_of_date"
    assert refusal["detail"].endswith("has no loanfund schema yet: run `loanfund db upgrade` first")
    assert out == ""


def test_the_command_itself_says_so_and_exits_2(tmp_path: Path) -> None:
    result = run(tmp_path / "never.db", "demo", check=False)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert "run `loanfund db upgrade` first" in json.loads(result.stderr)["detail"]


def test_a_database_behind_this_version_is_explained(tmp_path: Path) -> None:
    from loanfund.db.migrate import head_revision, upgrade

    path = tmp_path / "old.db"
    upgrade(f"sqlite:///{path}", "0001")
    result = run(path, "clients", "list", check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    detail = json.loads(result.stderr)["detail"]
    assert f"is at schema revision 0001, this loanfund needs {head_revision()}" in detail
    run(path, "db", "upgrade")
    assert run(path, "clients", "list").returncode == 0


def test_an_unreachable_database_is_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "LOANFUND_DATABASE_URL": "postgresql://ops:secret@127.0.0.1:1/nothing"}
    result = subprocess.run(
        [str(LOANFUND), "clients", "list"], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    refusal = json.loads(result.stderr)
    assert refusal["error"] == "database_unavailable"
    assert "127.0.0.1:1" in refusal["detail"] and "secret" not in refusal["detail"]


ENV_VARS = (
    "LOANFUND_DATABASE_URL",
    "LOANFUND_BUSINESS_DATE",
    "LOANFUND_DB_POOL_SIZE",
    "LOANFUND_IDEMPOTENCY_TIMEOUT",
    "LOANFUND_IDEMPOTENCY_RETENTION_DAYS",
    "LOANFUND_LOG_LEVEL",
)


@pytest.mark.parametrize("command", [["serve"], ["demo"], ["clients", "add"], ["db", "upgrade"], []])
def test_help_lists_every_option_its_default_and_the_environment(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    from api.cli import build_parser, main

    with pytest.raises(SystemExit) as done:
        main([*command, "--help"])
    assert done.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines wherever the terminal ends
    parser = build_parser()
    for name in command:
        parser = next(
            action.choices[name]
            for action in parser._actions
            if isinstance(action, argparse._SubParsersAction)
        )
    for action in parser._actions:
        if not action.option_strings or action.help == argparse.SUPPRESS or "-h" in action.option_strings:
            continue
        assert action.option_strings[-1] in text, action
        assert action.help and action.help.split("(")[0].strip() in text, action
        if action.default not in (None, False):
            assert f"(default: {action.default})" in text, action
    for variable in ENV_VARS:
        assert variable in text, variable
    assert "default: sqlite+aiosqlite:///loanfund.db" in text
    assert "(default: 127.0.0.1)" in text or command != ["serve"]
