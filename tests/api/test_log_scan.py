"""No resident ID number and no token reaches a log (issue 8, defect 5).

Requests carrying ID numbers are driven through successes, refusals and a server error whose
database message quotes the failing row; everything logged at any level, by any logger (SQLAlchemy's
statement log included), is then scanned.
"""

from __future__ import annotations

import logging
import re

import pytest
import sqlalchemy as sa

from tests.support import World, register_guarantor, resident_id

ID_LIKE = re.compile(r"(?<![0-9])(?:[0-9]{17}[0-9Xx]|[0-9]{15})(?![0-9])")


async def _make_borrower_inserts_fail(world: World) -> None:
    """A constraint the next insert breaks; PostgreSQL's error then quotes the whole failing row."""
    async with world.engine.begin() as conn:
        if world.engine.dialect.name == "postgresql":
            await conn.execute(
                sa.text("ALTER TABLE borrowers ADD CONSTRAINT no_more CHECK (name = 'nobody') NOT VALID")
            )
        else:
            await conn.execute(
                sa.text(
                    "CREATE TRIGGER no_more BEFORE INSERT ON borrowers "
                    "BEGIN SELECT RAISE(ABORT, 'no more borrowers'); END"
                )
            )


async def _undo(world: World) -> None:
    async with world.engine.begin() as conn:
        if world.engine.dialect.name == "postgresql":
            await conn.execute(sa.text("ALTER TABLE borrowers DROP CONSTRAINT no_more"))
        else:
            await conn.execute(sa.text("DROP TRIGGER no_more"))


async def test_nothing_logged_holds_an_id_number_or_a_token(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")  # as an operator debugging with echo
    window = await world.caller("window", region="2301")
    admin = await world.caller("admin")
    numbers = [resident_id("19800101", female=False, seq=f"{i:02d}") for i in range(1, 5)]
    person = {"kind": "individual", "name": "P", "categories": ["registered_unemployed"]}

    assert (await window.post("/borrowers", {**person, "id_number": numbers[0]})).status_code == 201
    assert (await window.post("/borrowers", {**person, "id_number": numbers[0]})).status_code == 409
    assert (await window.get("/borrowers", {"id_number": numbers[0]})).status_code == 200
    wrong_check = numbers[1][:-1] + ("0" if numbers[1][-1] != "0" else "1")
    assert (await window.post("/borrowers", {**person, "id_number": wrong_check})).status_code == 422
    old_style = "230102800101011"
    assert (await window.post("/borrowers", {**person, "id_number": old_style})).status_code in (201, 422)
    await register_guarantor(window)
    await _make_borrower_inserts_fail(world)
    try:
        failed = await window.post("/borrowers", {**person, "id_number": numbers[2]})
        assert failed.status_code == 500, failed.text
        assert "nobody" not in failed.text and numbers[2] not in failed.text
        failed = await admin.post("/borrowers", {**person, "id_number": numbers[3], "region_code": "230100"})
        assert failed.status_code == 500, failed.text
    finally:
        await _undo(world)

    # httpx is the test's own client logging the URLs it calls; everything else is the server's.
    logged = "\n".join(caplog.handler.format(r) for r in caplog.records if not r.name.startswith("httpx"))
    assert "Traceback" in logged, "the server errors above must have been logged, or this test proves nothing"
    assert "INSERT INTO borrowers" in logged, "SQLAlchemy's statement log must have been captured"
    for secret in [*numbers, wrong_check, old_style, window.token, admin.token]:
        assert secret not in logged
    assert ID_LIKE.findall(logged) == []
    assert re.findall(r"lf_[A-Za-z0-9_-]{16,}", logged) == []
