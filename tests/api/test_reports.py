"""Portfolio reports per fund and per bank as of a date, in JSON, CSV and XLSX."""

from __future__ import annotations

import csv
import io
import zipfile

import pytest

from tests.claims_support import CLAIM_DAY, at, loan_on, overdue
from tests.support import Api, World, assert_problem, lending_setup, make_agreement


async def portfolio_world(world: World, admin: Api, manager: Api, monkeypatch: pytest.MonkeyPatch) -> Api:
    """Five loans at ICBC disbursed 2026-07-01; on 2026-10-29 one compensated with a recovery, one
    repaid, one 40 days overdue, one current, one compensated and written off. ABC has no loans."""
    at(monkeypatch, "2026-07-01")
    await lending_setup(admin, manager)
    await admin.post("/banks", {"code": "ABC", "name": "Bank ABC"})
    await make_agreement(manager, bank="ABC", compensation_suspend_pct="100")
    bank = await world.caller("bank", bank="ICBC")
    window = await world.caller("window", region="2301")
    made = {}
    for seq, principal, person in (
        ("01", "60000", {"birth": "19800101", "female": True}),  # 4050: a woman of 46
        ("02", "60000", None),
        ("03", "30000", None),
        ("04", "20000", None),
        ("05", "40000", None),
    ):
        made[seq] = await loan_on(
            world, manager, bank, monkeypatch, seq=seq, principal=principal, window=window, person=person
        )
    at(monkeypatch, CLAIM_DAY)
    for seq in ("01", "05"):
        await overdue(bank, made[seq], "2026-07-27")
        claim = (
            await bank.post("/compensation-claims", {"loan_id": made[seq]["id"], "claimed_on": CLAIM_DAY})
        ).json()
        assert (await manager.post(f"/compensation-claims/{claim['id']}/approve")).status_code == 200
    await bank.post(f"/loans/{made['01']['id']}/recoveries", {"amount": "10000", "recovered_on": CLAIM_DAY})
    await manager.post(f"/loans/{made['05']['id']}/write-off", {"reason": "nothing left"})
    await bank.post(
        f"/loans/{made['02']['id']}/repayments", {"principal": "60000", "interest": "0", "paid_on": CLAIM_DAY}
    )
    await overdue(bank, made["03"], "2026-09-20")
    return bank


def line(loans: int, principal: str, outstanding: str) -> dict[str, object]:
    return {"loans": loans, "principal": principal, "outstanding": outstanding}


async def test_fund_and_bank_portfolio(
    world: World, admin: Api, manager: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    bank = await portfolio_world(world, admin, manager, monkeypatch)
    response = await manager.get("/reports/portfolio", {"fund_code": "HRB", "as_of": CLAIM_DAY})
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["by_status"] == {
        "active": line(1, "20000.00", "20000.00"),
        "overdue": line(1, "30000.00", "30000.00"),
        "repaid": line(1, "60000.00", "0.00"),
        "compensated": line(1, "60000.00", "0.00"),
        "written_off": line(1, "40000.00", "0.00"),
    }
    assert report["by_bucket"] == {
        "current": line(1, "20000.00", "20000.00"),
        "1-30": line(0, "0.00", "0.00"),
        "31-60": line(1, "30000.00", "30000.00"),
        "61-90": line(0, "0.00", "0.00"),
        "90+": line(0, "0.00", "0.00"),
    }
    # 48,960.00 + 80% × (40,000.00 + 800.00 interest) = 48,960.00 + 32,640.00.
    assert report["guarantees"] == {
        "issued": {"loans": 5, "amount": "210000.00"},
        "repaid": {"loans": 1, "amount": "60000.00"},
        "compensated": {"loans": 2, "amount": "81600.00"},
        "recovered": {"fund_part": "8000.00", "bank_part": "2000.00", "total": "10000.00"},
        "written_off": {"loans": 1, "amount": "32640.00"},
    }
    # 81,600.00 ÷ (60,000.00 repaid + 60,000.00 + 40,000.00 compensated) = 51%; 8,000 ÷ 81,600.
    assert report["compensation_rate"]["compensation_rate_pct"] == "51"
    assert (report["recovery_rate_pct"], report["red_flag"]) == ("9.8039", True)
    assert (report["borrowers_4050"], report["jobs_created"]) == (1, 10)
    assert [part["bank_code"] for part in report["banks"]] == ["ABC", "ICBC"]
    icbc = report["banks"][1]
    assert (icbc["by_status"], icbc["guarantees"], icbc["red_flag"]) == (
        report["by_status"],
        report["guarantees"],
        None,
    )
    assert report["banks"][0]["guarantees"]["issued"] == {"loans": 0, "amount": "0.00"}

    # As of an earlier day: nothing compensated or repaid yet, and the buckets of that day.
    earlier = (await manager.get("/reports/portfolio", {"fund_code": "HRB", "as_of": "2026-10-01"})).json()
    assert earlier["by_status"]["active"] == line(2, "80000.00", "80000.00")
    assert earlier["by_status"]["overdue"] == line(3, "130000.00", "130000.00")
    assert earlier["by_status"]["compensated"]["loans"] == 0
    assert (earlier["by_bucket"]["1-30"]["loans"], earlier["by_bucket"]["61-90"]["loans"]) == (1, 2)
    assert earlier["guarantees"]["compensated"] == {"loans": 0, "amount": "0.00"}
    assert earlier["recovery_rate_pct"] is None

    # A bank sees its own part only.
    own = (await bank.get("/reports/portfolio", {"fund_code": "HRB", "as_of": CLAIM_DAY})).json()
    assert (own["bank_code"], own["guarantees"], own["banks"]) == ("ICBC", report["guarantees"], [])
    assert_problem(
        await bank.get("/reports/portfolio", {"fund_code": "HRB", "bank_code": "ABC"}), 404, "not_found"
    )
    window = await world.caller("window", region="2301")
    assert_problem(await window.get("/reports/portfolio", {"fund_code": "HRB"}), 403, "forbidden")
    elsewhere = await world.caller("fund_manager", region="2302")
    assert_problem(await elsewhere.get("/reports/portfolio", {"fund_code": "HRB"}), 404, "not_found")
    assert_problem(await manager.get("/reports/portfolio", {"fund_code": "NOPE"}), 404, "not_found")
    assert_problem(
        await manager.get("/reports/portfolio", {"fund_code": "HRB", "format": "pdf"}),
        422,
        "validation_error",
    )
    assert_problem(await manager.get("/reports/portfolio", {}), 422, "validation_error")
    assert_problem(
        await manager.get("/reports/portfolio", {"fund_code": "HRB", "as_of": "2026-02-30"}),
        422,
        "validation_error",
    )


async def test_csv_and_xlsx_have_chinese_headings(
    world: World, admin: Api, manager: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    await portfolio_world(world, admin, manager, monkeypatch)
    params = {"fund_code": "HRB", "as_of": CLAIM_DAY, "bank_code": "ICBC"}
    response = await manager.get("/reports/portfolio", {**params, "format": "csv"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    text = response.content.decode("utf-8-sig")
    table = list(csv.reader(io.StringIO(text)))
    assert table[0] == [
        "基金",
        "合作银行",
        "统计日",
        "类别",
        "项目",
        "笔数",
        "金额(元)",
        "在贷余额(元)",
        "比率(%)",
    ]
    by_item = {row[4]: row for row in table[1:]}
    assert by_item["代偿"][5:7] == ["2", "81600.00"]
    assert by_item["已核销"][5:8] == ["1", "40000.00", "0.00"]
    assert by_item["逾期31–60天"][5:8] == ["1", "30000.00", "30000.00"]
    assert by_item["代偿率(近12个月)"][8] == "51"
    assert by_item["追偿(基金部分)"][6] == "8000.00"
    assert by_item["4050人员"][5] == "1"

    response = await manager.get("/reports/portfolio", {**params, "format": "xlsx"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/vnd.openxmlformats")
    with zipfile.ZipFile(io.BytesIO(response.content)) as book:
        strings = book.read("xl/sharedStrings.xml").decode("utf-8")
        workbook = book.read("xl/workbook.xml").decode("utf-8")
        sheet = book.read("xl/worksheets/sheet1.xml").decode("utf-8")
    assert "担保贷款组合报表" in workbook
    assert all(heading in strings for heading in ("基金", "在贷余额(元)", "代偿率(近12个月)", "带动就业人数"))
    assert "<v>81600</v>" in sheet  # the amount compensated, a number in yuan
