"""Days past due, buckets and their history as of any date; missed instalments cured only when paid."""

from __future__ import annotations

import itertools
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loanfund.loans import delinquency
from loanfund.loans.delinquency import LoanArrears, Spell
from tests.claims_support import at, bank_with_loan, overdue, repay
from tests.support import Api, World, assert_problem


async def arrears(bank: Api, loan: dict[str, object], as_of: str) -> dict[str, object]:
    response = await bank.get(f"/loans/{loan['id']}/delinquency", {"as_of": as_of})
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_interest_instalment_is_cured_only_when_its_interest_is_paid(
    world: World, admin: Api, manager: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    bank, loan = await bank_with_loan(world, admin, manager, monkeypatch)
    at(monkeypatch, "2026-08-10")
    await overdue(bank, loan, "2026-08-01", overdue_interest="300")
    assert_problem(
        await bank.post(
            f"/loans/{loan['id']}/overdue",
            {"overdue_since": "2026-08-01", "overdue_principal": "0", "overdue_interest": "-1"},
        ),
        422,
        "validation_error",
    )
    # A repayment of part of the missed interest does not cure it (it used to).
    after = await repay(bank, loan, "0", "100", "2026-08-10")
    assert (after["status"], after["days_past_due"], after["overdue_since"]) == ("overdue", 10, "2026-08-01")
    at(monkeypatch, "2026-08-20")
    after = await repay(bank, loan, "0", "200", "2026-08-20")
    assert (after["status"], after["days_past_due"], after["overdue_since"]) == ("active", 0, None)

    # A missed instalment of principal, never paid: it moves through every bucket.
    at(monkeypatch, "2026-12-01")
    await overdue(bank, loan, "2026-09-01", principal="1000")
    view = await arrears(bank, loan, "2026-12-01")
    assert (view["days_past_due"], view["bucket"]) == (92, "90+")
    assert [(m["on"], m["bucket"], m["days_past_due"]) for m in view["history"]] == [
        ("2026-07-01", "current", 0),
        ("2026-08-01", "1-30", 1),
        ("2026-08-20", "current", 0),
        ("2026-09-01", "1-30", 1),
        ("2026-10-01", "31-60", 31),
        ("2026-10-31", "61-90", 61),
        ("2026-11-30", "90+", 91),
    ]
    earlier = await arrears(bank, loan, "2026-08-15")
    assert (earlier["days_past_due"], earlier["bucket"], earlier["history"][-1]["on"]) == (
        15,
        "1-30",
        "2026-08-01",
    )
    assert [(i["interest"], i["paid_interest"], i["cured_on"]) for i in view["missed_instalments"]] == [
        ("300.00", "300.00", "2026-08-20"),
        ("0.00", "0.00", None),
    ]
    other = await world.caller("bank", bank="ABC")
    assert_problem(await other.get(f"/loans/{loan['id']}/delinquency"), 404, "not_found")
    assert_problem(
        await bank.get(f"/loans/{loan['id']}/delinquency", {"as_of": "2026-02-30"}), 422, "validation_error"
    )
    # Paying the principal cures it; the loan is current again.
    cured = await repay(bank, loan, "1000", "0", "2026-12-01")
    assert (cured["status"], cured["days_past_due"]) == ("active", 0)
    assert (await arrears(bank, loan, "2026-12-01"))["bucket"] == "current"


# ---- the arithmetic, over random spells ----------------------------------------------------------

START = date(2026, 1, 1)


@st.composite
def loan_arrears(draw: st.DrawFn) -> LoanArrears:
    spells = []
    for _ in range(draw(st.integers(0, 4))):
        start = START + timedelta(days=draw(st.integers(1, 400)))
        length = draw(st.one_of(st.none(), st.integers(1, 200)))
        spells.append(Spell(start, None if length is None else start + timedelta(days=length)))
    closed = draw(st.one_of(st.none(), st.integers(1, 500)))
    return LoanArrears(START, tuple(spells), None if closed is None else START + timedelta(days=closed))


@given(loan_arrears(), st.integers(0, 520))
def test_history_agrees_with_days_past_due_on_every_day(arrears: LoanArrears, horizon: int) -> None:
    as_of = START + timedelta(days=horizon)
    moves = delinquency.history(arrears, as_of)
    assert moves[0].on == START and moves[0].bucket == "current"
    assert all(a.bucket != b.bucket and a.on < b.on for a, b in itertools.pairwise(moves))
    # Replaying the moves gives, on every day, the bucket that days past due says.
    day, index = START, 0
    while day <= as_of:
        while index + 1 < len(moves) and moves[index + 1].on <= day:
            index += 1
        dpd = delinquency.days_past_due(arrears, day)
        assert moves[index].bucket == delinquency.bucket_of(dpd), day
        if dpd:
            assert delinquency.days_past_due(arrears, day - timedelta(days=1)) in (0, dpd - 1) or any(
                s.end == day for s in arrears.spells
            )
        day += timedelta(days=1)


def test_bucket_edges() -> None:
    assert [delinquency.bucket_of(d) for d in (0, 1, 30, 31, 60, 61, 90, 91, 4000)] == [
        "current",
        "1-30",
        "1-30",
        "31-60",
        "31-60",
        "61-90",
        "61-90",
        "90+",
        "90+",
    ]
