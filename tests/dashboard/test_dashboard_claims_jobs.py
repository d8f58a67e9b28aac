"""The queues' compensation and subsidy sections and the job-runs page, over HTTP on both databases."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from loanfund import jobs
from loanfund.db.tables import events
from tests.api.test_subsidies import example_1, file
from tests.claims_support import CLAIM_DAY, at, loan_on, overdue
from tests.dashboard.helpers import CSRF_RE, KEY_RE, add_person, sign_in
from tests.support import TODAY, Api, World, lending_setup


def claim_form(html: str, kind: str, claim_id: str, action: str) -> dict[str, str]:
    start = html.index(f'action="/dashboard/{kind}/{claim_id}/{action}"')
    chunk = html[start : html.index("</form>", start)]
    csrf, key = CSRF_RE.search(chunk), KEY_RE.search(chunk)
    assert csrf is not None and key is not None
    return {"_csrf": csrf.group(1), "key": key.group(1)}


def section(html: str, name: str) -> str:
    start = html.index(f'data-table="{name}"')
    return html[start : html.index("</table>", start)]


async def two_claims(
    world: World, admin: Api, monkeypatch: pytest.MonkeyPatch
) -> tuple[Api, dict[str, Any], dict[str, Any]]:
    """A submitted compensation claim in Harbin (HRB/ICBC) and one in Qiqihar (QQHR/ABCQ)."""
    at(monkeypatch, "2026-07-01")
    province = await world.caller("fund_manager", region="23")
    await lending_setup(admin, province, fund="HRB", bank="ICBC")
    await lending_setup(admin, province, fund="QQHR", bank="ABCQ", region_code="230200", cash="2000000")
    claims = []
    for seq, fund, bank_code, region in (("21", "HRB", "ICBC", "2301"), ("22", "QQHR", "ABCQ", "2302")):
        bank = await world.caller("bank", bank=bank_code)
        window = await world.caller("window", region=region)
        loan = await loan_on(
            world, province, bank, monkeypatch, seq=seq, fund=fund, bank_code=bank_code, window=window
        )
        at(monkeypatch, CLAIM_DAY)
        await overdue(bank, loan, "2026-07-27")
        filed = await bank.post("/compensation-claims", {"loan_id": loan["id"], "claimed_on": CLAIM_DAY})
        assert filed.status_code == 201, filed.text
        claims.append(filed.json())
    return province, claims[0], claims[1]


async def test_compensation_claims_are_decided_from_the_queue(
    world: World, engine: AsyncEngine, admin: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    province, hrb, qqhr = await two_claims(world, admin, monkeypatch)
    await add_person(engine, "哈尔滨", region="2301")
    await add_person(engine, "审计", role="auditor", region="23")
    await sign_in(world.http, "哈尔滨")
    page = (await world.http.get("/dashboard/queues")).text
    listed = section(page, "compensation_claims")
    # What the API lists as submitted in Harbin, and nothing of Qiqihar.
    in_scope = [
        c["id"]
        for c in (await province.get("/compensation-claims", {"status": "submitted"})).json()["items"]
        if c["fund_code"] == "HRB"
    ]
    assert in_scope == [hrb["id"]]
    assert re.findall(r'data-col="claim">([^<]+)<', listed) == in_scope
    assert "48,960.00" in listed and ">95<" in listed  # amount and days past due, as the API has them
    assert qqhr["id"] not in page and "QQHR" not in page
    csv = (await world.http.get("/dashboard/export/queues/compensation_claims/csv")).text
    assert hrb["id"] in csv and "48960.00" in csv and qqhr["id"] not in csv

    fields = claim_form(page, "compensation-claims", hrb["id"], "approve")
    url = f"/dashboard/compensation-claims/{hrb['id']}/approve"
    # Without its CSRF token the form changes nothing.
    refused = await world.http.post(url, data={"key": fields["key"]}, follow_redirects=False)
    assert refused.status_code == 403
    assert (await province.get(f"/compensation-claims/{hrb['id']}")).json()["status"] == "submitted"

    done = await world.http.post(url, data=fields, follow_redirects=False)
    assert done.status_code == 303
    assert done.headers["location"] == f"/dashboard/queues?done=claim_approved&subject={hrb['id']}"
    paid = (await province.get(f"/compensation-claims/{hrb['id']}")).json()
    assert (paid["status"], paid["amount"]) == ("paid", "48960.00")
    again = await world.http.post(url, data=fields, follow_redirects=False)
    assert again.headers["location"].endswith("&replayed=1")
    page = (await world.http.get("/dashboard/queues")).text
    assert hrb["id"] not in section(page, "compensation_claims")

    # Out of region: a 404 outcome, the claim untouched.
    other = await world.http.post(
        f"/dashboard/compensation-claims/{qqhr['id']}/reject",
        data={**fields, "key": "q" * 20, "reason": "不符合条件"},
        follow_redirects=False,
    )
    assert other.headers["location"] == f"/dashboard/queues?error=not_found&subject={qqhr['id']}"
    assert (await province.get(f"/compensation-claims/{qqhr['id']}")).json()["status"] == "submitted"

    # An auditor sees the province's claims but has no forms, and a forged one is refused.
    await sign_in(world.http, "审计")
    page = (await world.http.get("/dashboard/queues")).text
    assert qqhr["id"] in section(page, "compensation_claims") and "data-approve" not in page
    csrf = CSRF_RE.search(page)
    assert csrf is not None
    response = await world.http.post(
        f"/dashboard/compensation-claims/{qqhr['id']}/approve",
        data={"_csrf": csrf.group(1), "key": "a" * 24},
        follow_redirects=False,
    )
    assert response.status_code == 403
    assert (await province.get(f"/compensation-claims/{qqhr['id']}")).json()["status"] == "submitted"


async def test_reject_a_compensation_claim_needs_a_reason(
    world: World, engine: AsyncEngine, admin: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    province, _, qqhr = await two_claims(world, admin, monkeypatch)
    await add_person(engine, "省经理", region="23")
    await sign_in(world.http, "省经理")
    page = (await world.http.get("/dashboard/queues?fund=QQHR")).text
    url = f"/dashboard/compensation-claims/{qqhr['id']}/reject"
    fields = claim_form(page, "compensation-claims", qqhr["id"], "reject")
    empty = await world.http.post(url, data={**fields, "fund": "QQHR"}, follow_redirects=False)
    assert "error=validation_error" in empty.headers["location"]
    fields = claim_form(
        (await world.http.get("/dashboard/queues?fund=QQHR")).text,
        "compensation-claims",
        qqhr["id"],
        "reject",
    )
    done = await world.http.post(
        url, data={**fields, "fund": "QQHR", "reason": "逾期证明不全"}, follow_redirects=False
    )
    assert done.headers["location"] == f"/dashboard/queues?fund=QQHR&done=claim_rejected&subject={qqhr['id']}"
    rejected = (await province.get(f"/compensation-claims/{qqhr['id']}")).json()
    assert rejected["status"] == "rejected"


async def test_jobs_page_shows_runs_and_alerts_in_scope(
    world: World, engine: AsyncEngine, admin: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    await two_claims(world, admin, monkeypatch)
    day = date.fromisoformat("2026-07-27")
    result = await jobs.run_job(engine, jobs.get("overdue_loans"), day)
    assert result.outcome == "ok"
    async with engine.connect() as conn:
        alerts = (
            await conn.execute(
                sa.select(events.c.type, events.c.region_code, events.c.data).where(
                    events.c.type == "loan_overdue"
                )
            )
        ).all()
    regions = {row.region_code for row in alerts}
    assert regions == {"230100", "230200"}  # one overdue loan in each city

    await add_person(engine, "哈尔滨", region="2301")
    await sign_in(world.http, "哈尔滨")
    page = (await world.http.get("/dashboard/jobs")).text
    runs = section(page, "job_runs")
    assert 'data-col="job">overdue_loans<' in runs and "2026-07-27" not in runs  # Chinese dates by default
    assert "2026年7月27日" in runs
    shown = section(page, "alerts")
    assert shown.count('data-col="region">230100<') == 1 and "230200" not in shown
    assert "/dashboard/jobs" in page  # the tab
    for name in ("job_status", "job_runs", "alerts"):
        for fmt in ("csv", "xlsx"):
            response = await world.http.get(f"/dashboard/export/jobs/{name}/{fmt}")
            assert response.status_code == 200, (name, fmt)
    csv = (await world.http.get("/dashboard/export/jobs/alerts/csv")).text
    assert "230100" in csv and "230200" not in csv
    await world.http.get("/dashboard/lang/en")
    english = (await world.http.get("/dashboard/jobs")).text
    assert "Latest runs" in english and "loan overdue" in english and "2026-07-27" in english


async def test_subsidy_claims_are_approved_then_paid_from_the_queue(
    world: World, engine: AsyncEngine, admin: Api, manager: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup = await example_1(monkeypatch, world, admin, manager)
    filed = await file(monkeypatch, setup["bank_api"], "HRB", "2009Q1")
    assert filed.status_code == 201, filed.text
    claim = filed.json()
    await add_person(engine, "哈尔滨", region="2301")
    await add_person(engine, "齐齐哈尔", region="2302")
    await sign_in(world.http, "齐齐哈尔")
    assert claim["id"] not in (await world.http.get("/dashboard/queues")).text  # out of region

    await sign_in(world.http, "哈尔滨")
    page = (await world.http.get("/dashboard/queues")).text
    listed = [
        c["id"] for c in (await manager.get("/subsidy-claims", {"status": "submitted"})).json()["items"]
    ]
    assert (
        re.findall(r'data-col="claim">([^<]+)<', section(page, "subsidy_claims")) == listed == [claim["id"]]
    )
    fields = claim_form(page, "subsidy-claims", claim["id"], "approve")
    done = await world.http.post(
        f"/dashboard/subsidy-claims/{claim['id']}/approve", data=fields, follow_redirects=False
    )
    assert done.headers["location"] == f"/dashboard/queues?done=subsidy_approved&subject={claim['id']}"
    approved = (await manager.get(f"/subsidy-claims/{claim['id']}")).json()
    assert approved["status"] == "approved"

    # Awaiting payment now; with no budget the payment is refused and shown, nothing changed.
    page = (await world.http.get("/dashboard/queues")).text
    url = f"/dashboard/subsidy-claims/{claim['id']}/pay"
    short = await world.http.post(url, data=claim_form(page, "subsidy-claims", claim["id"], "pay"))
    assert "贴息预算不足" in short.text
    assert (await manager.get(f"/subsidy-claims/{claim['id']}")).json()["status"] == "approved"
    response = await manager.post(
        "/funds/HRB/subsidy-budget", {"amount": "1000", "received_on": TODAY, "reference": "S-1"}
    )
    assert response.status_code == 201, response.text
    page = (await world.http.get("/dashboard/queues")).text
    paid = await world.http.post(
        url, data=claim_form(page, "subsidy-claims", claim["id"], "pay"), follow_redirects=False
    )
    assert paid.headers["location"] == f"/dashboard/queues?done=subsidy_paid&subject={claim['id']}"
    assert (await manager.get(f"/subsidy-claims/{claim['id']}")).json()["status"] == "paid"
    assert claim["id"] not in (await world.http.get("/dashboard/queues")).text
