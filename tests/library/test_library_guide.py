"""docs/library.md's example runs as printed, and prints what its comments say."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def example() -> str:
    text = (ROOT / "docs" / "library.md").read_text(encoding="utf-8")
    return re.search(r"```python\n(.*?)```", text, re.S).group(1)  # type: ignore[union-attr]


def test_the_library_guide_example_runs(tmp_path: Path) -> None:
    code = example()
    expected = [
        line.split("# ", 1)[1].strip() for line in code.splitlines() if "print(" in line and "# " in line
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("LOANFUND_BUSINESS_DATE", None)  # the example gives its units of work their own date
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == expected
