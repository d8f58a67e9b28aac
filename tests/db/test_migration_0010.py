"""Migration 0010 (eligibility facts): the schema it makes is the one the code declares, and the
partnerships filed before it become member rows, so they count in each member's record."""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from loanfund.db.migrate import upgrade
from loanfund.db.tables import metadata

NEW_TABLES = {"application_partners", "application_other_loans"}


def test_upgrade_backfills_partners_and_matches_the_declared_tables(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    upgrade(f"sqlite:///{path}", "0005")
    engine = sa.create_engine(f"sqlite:///{path}")
    application = {
        "fund_code": "HRB",
        "bank_code": "ICBC",
        "region_code": "230100",
        "amount_fen": 1,
        "term_months": 12,
        "purpose": "p",
        "guarantee_kind": "collateral",
        "joint_borrower_ids": "[]",
        "jobs_created": 0,
        "applied_on": "2020-01-01",
        "policy_edition": "cn-2016",
        "eligibility": "{}",
        "status": "submitted",
        "submitted_at": "2020-01-01 00:00:00",
    }
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO funds (code, name, region_code, currency, created_at)"
                " VALUES ('HRB', 'F', '230100', 'CNY', '2020-01-01')"
            )
        )
        conn.execute(sa.text("INSERT INTO banks (code, name, created_at) VALUES ('ICBC', 'B', '2020-01-01')"))
        insert = sa.text(
            "INSERT INTO applications (id, borrower_id, partner_borrower_ids, "
            + ", ".join(application)
            + ") VALUES (:id, :borrower_id, :partners, "
            + ", ".join(f":{key}" for key in application)
            + ")"
        )
        for borrower_id in ("b1", "b2", "b3", "b4"):
            conn.execute(
                sa.text(
                    "INSERT INTO borrowers (id, kind, id_number, name, categories, certificates, region_code,"
                    " created_at) VALUES (:id, 'individual', :id, 'X', '[]', '[]', '230100', '2020-01-01')"
                ),
                {"id": borrower_id},
            )
        partners = json.dumps(["b2", "b3"])
        conn.execute(insert, {"id": "app_1", "borrower_id": "b1", "partners": partners, **application})
        conn.execute(insert, {"id": "app_2", "borrower_id": "b4", "partners": None, **application})
    engine.dispose()
    upgrade(f"sqlite:///{path}")
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT application_id, borrower_id FROM application_partners")).all()
        assert sorted(map(tuple, rows)) == [("app_1", "b2"), ("app_1", "b3")]
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
    touching = [d for d in differences if NEW_TABLES & set(map(str, _names(d)))]
    assert touching == []
    engine.dispose()


def _names(difference: object) -> list[object]:
    """Table names an autogenerate difference mentions, however deeply it nests them."""
    if isinstance(difference, list):
        return [name for item in difference for name in _names(item)]
    if isinstance(difference, tuple):
        return [name for item in difference for name in _names(item)]
    if isinstance(difference, sa.Table):
        return [difference.name]
    if isinstance(difference, sa.Column | sa.Index) and difference.table is not None:
        return [difference.table.name]
    return [difference] if isinstance(difference, str) else []
