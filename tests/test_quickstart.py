"""docs/quickstart.md runs as written: its marked shell blocks are run in order in one shell, and
what each prints is compared with the answer the page shows after it."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parent.parent / "docs" / "quickstart.md"
BLOCK = re.compile(r"<!-- quickstart-test: (run|output) -->\n```(\w+)\n(.*?)```", re.DOTALL)
MARK = "@@quickstart-block@@"


def blocks() -> list[tuple[str, str | None, str | None]]:
    """(commands, expected output, its language) for each block marked to run, in page order."""
    found: list[tuple[str, str | None, str | None]] = []
    for kind, language, body in BLOCK.findall(DOC.read_text()):
        if kind == "run":
            assert language == "sh"
            found.append((body, None, None))
        else:
            assert found and found[-1][1] is None, "an output block must follow a run block"
            found[-1] = (found[-1][0], body, language)
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def same(expected: str, language: str, actual: str) -> bool:
    if language == "json":
        return bool(json.loads(expected) == json.loads(actual))
    return expected.strip() == actual.strip()


def test_the_quickstart_runs_as_written(tmp_path: Path) -> None:
    steps = blocks()
    assert len(steps) >= 8 and sum(1 for _, out, _ in steps if out is not None) >= 6
    port = str(free_port())
    script = ["set -euo pipefail", "trap 'kill $(jobs -p) 2>/dev/null || true' EXIT"]
    for number, (commands, _, _) in enumerate(steps):
        script += [f"echo '{MARK}{number}'", commands.replace("8000", port)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOANFUND_")}
    # `loanfund` on the PATH, as activating the virtual environment puts it there.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    try:
        result = subprocess.run(
            ["bash", "-c", "\n".join(script)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    except subprocess.TimeoutExpired as exc:  # pragma: no cover - shows where it hung
        pytest.fail(f"quickstart hung: {exc.stdout!r} {(tmp_path / 'serve.log').read_text()}")
    log = (tmp_path / "serve.log").read_text() if (tmp_path / "serve.log").exists() else ""
    assert result.returncode == 0, (result.stdout, result.stderr, log)
    printed = result.stdout.split(MARK)[1:]
    assert len(printed) == len(steps)
    for number, (commands, expected, language) in enumerate(steps):
        output = printed[number].split("\n", 1)[1] if "\n" in printed[number] else ""
        if expected is None:
            assert output.strip() == "", (commands, output)
        else:
            assert language is not None
            assert same(expected, language, output), (commands, expected, output)
