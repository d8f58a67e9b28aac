"""Display forms (money, 万元, dates), the `loanfund users` command, and the users library."""

from __future__ import annotations

import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.cli import main
from api.dashboard.i18n import format_date
from loanfund.money import MAX_FEN, format_display, format_fen, format_wan

LOANFUND = Path(sys.executable).parent / "loanfund"


def test_money_as_people_write_it() -> None:
    assert format_display(123_456_789) == "¥1,234,567.89"
    assert format_display(-1_230) == "-¥12.30"
    assert format_display(0) == "¥0.00"
    assert format_wan(123_456_789) == "123.46"  # 1,234,567.89 yuan = 123.456789 万元
    assert format_wan(5_000) == "0.01"  # 50 yuan = 0.005 万元, half-up
    assert format_wan(4_999) == "0.00"
    assert format_wan(1_000_000_000_000) == "1,000,000.00"
    with pytest.raises(TypeError):
        format_display(1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        format_wan(True)


@given(st.integers(min_value=-MAX_FEN, max_value=MAX_FEN))
def test_display_forms_agree_with_the_api_form(fen: int) -> None:
    shown = format_display(fen)
    assert shown.replace("¥", "").replace(",", "") == format_fen(fen)
    wan = Decimal(format_wan(fen).replace(",", ""))
    exact = Decimal(fen) / 1_000_000
    expected = abs(exact).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    assert abs(wan) == expected and (wan <= 0) == (fen <= 0 or expected == 0)


def test_dates_in_chinese_and_english() -> None:
    assert format_date(date(2026, 12, 1), "zh") == "2026年12月1日"
    assert format_date(date(2026, 12, 1), "en") == "2026-12-01"
    # Timestamps are shown in Beijing time.
    assert format_date(datetime(2026, 11, 30, 16, 30, tzinfo=UTC), "zh") == "2026年12月1日 00:30"
    assert format_date(None, "zh") == ""


def _run(db: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LOANFUND_DATABASE_URL": f"sqlite:///{db}"}
    return subprocess.run(
        [str(LOANFUND), *args], env=env, input=stdin, capture_output=True, text=True, timeout=60
    )


def test_users_command(
    tmp_path: Path, sqlite_template: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "users.db"
    shutil.copy(sqlite_template, db)
    added = _run(
        db, "users", "add", "--role", "auditor", "--region", "2301", "--name", "李审计", "--password-stdin",
        stdin="a long enough password\n",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    user = json.loads(added.stdout)
    assert user["name"] == "李审计" and user["user_id"].startswith("usr_")
    with sqlite3.connect(db) as conn:
        stored = conn.execute("SELECT role, region_prefix, password_hash FROM users").fetchone()
    assert stored[:2] == ("auditor", "2301")
    assert stored[2].startswith("$argon2id$") and "a long enough password" not in stored[2]

    # The refusals and the other subcommands run in this process (a subprocess costs seconds each).
    monkeypatch.setenv("LOANFUND_DATABASE_URL", f"sqlite:///{db}")

    def cli(*args: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    add = ("users", "add", "--password-stdin", "--region", "23")
    code, _, err = cli(*add, "--role", "auditor", "--name", "李审计", stdin="another long password\n")
    assert code == 2 and json.loads(err)["error"] == "duplicate"
    code, _, err = cli(*add, "--role", "fund_manager", "--name", "x", stdin="short\n")
    assert code == 2 and json.loads(err)["error"] == "validation_error"
    with pytest.raises(SystemExit):
        cli(*add, "--role", "admin", "--name", "y")  # argparse refuses the role
    capsys.readouterr()
    assert (
        cli("users", "password", "--name", "李审计", "--password-stdin", stdin="a new password!!\n")[0] == 0
    )
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT password_hash FROM users").fetchone()[0] != stored[2]
    assert cli("users", "disable", "--name", "李审计")[0] == 0
    code, out, _ = cli("users", "list")
    listed = [json.loads(line) for line in out.splitlines()]
    assert listed == [
        {
            "user_id": user["user_id"],
            "name": "李审计",
            "role": "auditor",
            "region_prefix": "2301",
            "disabled": True,
        }
    ]
