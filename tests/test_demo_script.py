"""`./scripts/demo` says what it does as each step starts, lets pip show its progress, and does not
reinstall when nothing changed. Run on a copy with stand-ins for Python and `loanfund` that record
how they were called, so no network and no real install are needed."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

FAKE_PYTHON = """#!/usr/bin/env bash
echo "python $*" >>"$CALLS"
case "$*" in
  "-m venv .venv") mkdir -p .venv/bin && cp "$0" .venv/bin/python ;;
  "-c import sys; print(sys.version)") echo "3.11.7 (fake)" ;;
  *"pip install"*) echo "Downloading litestar (pip's own progress)"; cp "$FAKE_LOANFUND" .venv/bin/loanfund ;;
esac
"""

FAKE_LOANFUND = """#!/usr/bin/env bash
echo "loanfund $*" >>"$CALLS"
[ "$1" = demo ] && echo '{"admin": "token"}'
exit 0
"""


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    root = tmp_path / "clone"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "demo", root / "scripts" / "demo")
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    for name, text in (("python3", FAKE_PYTHON), ("loanfund", FAKE_LOANFUND)):
        path = tmp_path / name
        path.write_text(text)
        path.chmod(0o755)
    return root


def run_demo(clone: Path) -> tuple[str, list[str]]:
    calls = clone.parent / "calls.log"
    calls.unlink(missing_ok=True)
    env = {
        **os.environ,
        "PYTHON": str(clone.parent / "python3"),
        "FAKE_LOANFUND": str(clone.parent / "loanfund"),
        "CALLS": str(calls),
        "LOANFUND_DATABASE_URL": f"sqlite:///{clone}/loanfund-demo.db",
    }
    result = subprocess.run(
        ["bash", "scripts/demo", "--port", "8123"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, (result.stdout, result.stderr)
    return result.stdout, calls.read_text().splitlines()


def steps(output: str) -> list[str]:
    return [line.removeprefix("==> ") for line in output.splitlines() if line.startswith("==> ")]


def test_first_run_shows_each_step_and_pip_progress(clone: Path) -> None:
    output, calls = run_demo(clone)
    assert output.lstrip().startswith("==> Creating a virtual environment in .venv")
    assert steps(output) == [
        "Creating a virtual environment in .venv",
        "Installing loanfund and its dependencies into .venv (the first time takes a minute or two)",
        "Creating a fresh demo database",
        "Replaying two years of lending in the demo province",
        "Starting the server (Ctrl-C stops it)",
    ]
    assert "Downloading litestar (pip's own progress)" in output  # pip's output is not hidden
    assert '{"admin": "token"}' in output and "http://127.0.0.1:8123/schema" in output
    assert [c for c in calls if "pip install" in c] == [
        "python -m pip install --disable-pip-version-check -e ."
    ]
    assert calls[-3:] == [
        "loanfund db upgrade",
        "loanfund demo",
        "loanfund serve --host 127.0.0.1 --port 8123",
    ]


def test_second_run_skips_the_install_until_pyproject_changes(clone: Path) -> None:
    run_demo(clone)
    output, calls = run_demo(clone)
    assert steps(output)[0] == "Dependencies unchanged since the last run: not reinstalling"
    assert not [c for c in calls if "pip" in c or "venv" in c]
    with (clone / "pyproject.toml").open("a") as file:
        file.write("\n# a new dependency\n")
    output, calls = run_demo(clone)
    assert steps(output)[0].startswith("Installing loanfund")
    assert [c for c in calls if "pip install" in c]


def test_a_failed_install_is_not_remembered(clone: Path) -> None:
    fake = clone.parent / "python3"
    fake.write_text(FAKE_PYTHON.replace('*"pip install"*) echo', '*"pip install"*) exit 1; echo'))
    calls = clone.parent / "calls.log"
    env = {
        **os.environ,
        "PYTHON": str(fake),
        "FAKE_LOANFUND": str(clone.parent / "loanfund"),
        "CALLS": str(calls),
    }
    result = subprocess.run(
        ["bash", "scripts/demo"], cwd=clone, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert "installing dependencies failed" in result.stderr
    assert not (clone / ".venv" / ".loanfund-installed").exists()
