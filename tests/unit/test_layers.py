"""The layers keep to their side: `api/` and `scheduler/` write no ledger entry, audit record or event
themselves (the library's services do, through the unit of work), and `loanfund/` imports neither."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WRITERS = {
    "ledger": {"post", "reverse", "write_postings"},
    "entries": {"post", "reverse", "write_postings"},
    "audit": {"record", "record_all"},
    "events": {"emit", "write_all"},
    "tx": {"audit", "emit", "post_last", "settle", "flush"},
}
WRITTEN_TABLES = {"journal_entries", "postings", "ledger_accounts", "audit_log", "events"}


def sources(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def offences(path: Path) -> list[str]:
    found = []
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", None)
            if name in WRITERS and node.func.attr in WRITERS[name]:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} calls {name}.{node.func.attr}")
        if isinstance(node, ast.ImportFrom) and node.module == "loanfund.db.tables":
            for alias in node.names:
                if alias.name in WRITTEN_TABLES:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} imports table {alias.name}")
    return found


def test_api_and_scheduler_write_no_ledger_audit_or_event() -> None:
    problems = [
        problem for folder in ("api", "scheduler") for path in sources(folder) for problem in offences(path)
    ]
    assert problems == []


def test_the_check_finds_what_it_looks_for(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from loanfund.db.tables import postings\n"
        "async def handler(ctx):\n"
        "    await ledger.post(ctx.tx, lines=[])\n"
        "    ctx.tx.audit('x', 'y', 'z', {})\n"
        "    await events.emit(ctx.conn, 't')\n",
        encoding="utf-8",
    )
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        assert len(offences(bad)) == 4
    finally:
        ROOT = saved


def test_the_library_imports_neither_api_nor_scheduler() -> None:
    for path in sources("loanfund"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            assert not any(name.split(".")[0] in ("api", "scheduler") for name in names), path
