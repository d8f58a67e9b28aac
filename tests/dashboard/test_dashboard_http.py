"""The dashboard over HTTP, on SQLite and PostgreSQL: sign-in, sessions, CSRF, scope, decisions, exports."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import date

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from loanfund.db.tables import audit_log, users
from tests.dashboard.helpers import PASSWORD, add_person, form_tokens, sign_in, two_cities
from tests.support import Api, World

PAGES = ("overview", "leverage", "matching", "portfolio", "queues", "audit")


def read_csv(body: bytes) -> list[list[str]]:
    assert body.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(body[3:].decode())))


async def test_pages_need_a_session_and_sign_in_sets_a_safe_cookie(world: World, engine: AsyncEngine) -> None:
    await add_person(engine, "王经理")
    for page in PAGES:
        response = await world.http.get(f"/dashboard/{page}", follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"] == f"/dashboard/login?next=%2Fdashboard%2F{page}"
    assert (
        await world.http.get("/dashboard/export/overview/funds/csv", follow_redirects=False)
    ).status_code == 303

    refused = await sign_in(world.http, "王经理", "wrong password!")
    assert refused.status_code == 401 and "用户名或密码错误" in refused.text
    unknown = await sign_in(world.http, "nobody", PASSWORD)
    assert unknown.status_code == 401 and "用户名或密码错误" in unknown.text  # the same answer

    response = await sign_in(world.http, "王经理")
    assert response.status_code == 303 and response.headers["location"] == "/dashboard/overview"
    cookie = next(v for k, v in response.headers.multi_items() if k == "set-cookie" and "lf_session=" in v)
    assert "HttpOnly" in cookie and "samesite=lax" in cookie.lower() and "Path=/dashboard" in cookie
    assert "Secure" not in cookie  # plain HTTP here; see the TLS test
    for page in PAGES:
        response = await world.http.get(f"/dashboard/{page}")
        assert response.status_code == 200, (page, response.text)
        assert response.headers["content-type"].startswith("text/html")
        assert "王经理" in response.text
        assert response.headers["cache-control"] == "no-store"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert (await world.http.get("/dashboard/nope")).status_code == 404
    assert (await world.http.get("/dashboard/static/dashboard.css")).status_code == 200
    # The API is untouched: no session cookie opens it.
    assert (await world.http.get("/api/v1/funds")).status_code == 401


async def test_session_cookie_is_secure_over_tls(world: World, engine: AsyncEngine) -> None:
    await add_person(engine, "tls")
    response = await sign_in(world.http, "tls", base="https://testserver")
    assert response.status_code == 303
    cookie = next(v for k, v in response.headers.multi_items() if k == "set-cookie" and "lf_session=" in v)
    assert "Secure" in cookie and "HttpOnly" in cookie


async def test_failed_sign_ins_lock_the_user(world: World, engine: AsyncEngine) -> None:
    await add_person(engine, "guessed")
    for _ in range(5):
        assert (await sign_in(world.http, "guessed", "not the password")).status_code == 401
    # A further guess answers as for a name that does not exist: the lock tells no guesser which
    # names do. The right password, while locked, learns of the lock.
    assert (await sign_in(world.http, "guessed", "still not it")).status_code == 401
    assert (await sign_in(world.http, "nobody", "not the password")).status_code == 401
    locked = await sign_in(world.http, "guessed")
    assert locked.status_code == 429 and "登录失败次数过多" in locked.text
    async with engine.connect() as conn:
        row = (await conn.execute(sa.select(users).where(users.c.name == "guessed"))).one()
        assert row.locked_until is not None
        failures = await conn.scalar(
            sa.select(sa.func.count())
            .select_from(audit_log)
            .where(audit_log.c.action == "user.sign_in_failed")
        )
        assert failures == 5
        # The lock ends: set it in the past, as time would.
        await conn.execute(users.update().where(users.c.id == row.id).values(locked_until=row.created_at))
        await conn.commit()
    assert (await sign_in(world.http, "guessed")).status_code == 303


async def test_forms_without_their_csrf_token_are_refused(
    world: World, engine: AsyncEngine, admin: Api, manager: Api
) -> None:
    cities = await two_cities(world, admin, manager)
    await add_person(engine, "王经理")
    form = await world.http.get("/dashboard/login")
    # Sign-in: the form's token must equal the pre-session cookie.
    response = await world.http.post(
        "/dashboard/login", data={"name": "王经理", "password": PASSWORD}, follow_redirects=False
    )
    assert response.status_code == 403 and "表单已失效" in response.text
    response = await world.http.post(
        "/dashboard/login",
        data={"_csrf": "forged", "name": "王经理", "password": PASSWORD},
        follow_redirects=False,
    )
    assert response.status_code == 403
    assert form.status_code == 200

    assert (await sign_in(world.http, "王经理")).status_code == 303
    page = (await world.http.get("/dashboard/queues")).text
    fields = form_tokens(page, cities.hrb_application, "approve")
    for data in ({"key": fields["key"]}, {"key": fields["key"], "_csrf": "not-the-token"}):
        response = await world.http.post(
            f"/dashboard/applications/{cities.hrb_application}/approve", data=data, follow_redirects=False
        )
        assert response.status_code == 403, response.text
    response = await world.http.post("/dashboard/logout", data={}, follow_redirects=False)
    assert response.status_code == 403
    application = (await manager.get(f"/applications/{cities.hrb_application}")).json()
    assert application["status"] == "submitted"  # nothing happened


async def test_approve_and_reject_like_the_api(
    world: World, engine: AsyncEngine, admin: Api, manager: Api
) -> None:
    cities = await two_cities(world, admin, manager)
    user_id = await add_person(engine, "王经理")
    await sign_in(world.http, "王经理")
    page = (await world.http.get("/dashboard/queues")).text
    assert cities.hrb_application in page
    fields = form_tokens(page, cities.hrb_application, "approve")
    url = f"/dashboard/applications/{cities.hrb_application}/approve"
    response = await world.http.post(url, data=fields, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == f"/dashboard/queues?done=approve&subject={cities.hrb_application}"

    approved = (await manager.get(f"/applications/{cities.hrb_application}")).json()
    assert approved["status"] == "guarantee_approved"
    assert approved["history"][-1]["client_id"] == user_id  # the person is the actor
    capacity = (await manager.get(f"/agreements/{cities.hrb_agreement['id']}")).json()["capacity"]
    assert capacity["reserved"] == "50000.00"

    # The same form again (a double click, a reload): replayed, nothing reserved twice.
    again = await world.http.post(url, data=fields, follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"].endswith("&replayed=1")
    capacity = (await manager.get(f"/agreements/{cities.hrb_agreement['id']}")).json()["capacity"]
    assert capacity["reserved"] == "50000.00"
    # A fresh form on an approved application: refused by the library, shown on the page.
    page = (await world.http.get("/dashboard/queues")).text
    assert cities.hrb_application not in page
    async with engine.connect() as conn:
        actions = (
            await conn.execute(
                sa.select(audit_log.c.action, audit_log.c.client_id).where(
                    audit_log.c.entity_id == cities.hrb_application
                )
            )
        ).all()
    assert ("application.approved", user_id) in [tuple(a) for a in actions]
    trail = await world.http.get(
        "/dashboard/audit", params={"entity_type": "application", "entity_id": cities.hrb_application}
    )
    assert "application.approved" in trail.text and "application.submitted" in trail.text
    # Newest first, as on the unfiltered page (a long trail shows its latest 200).
    assert trail.text.index("application.approved") < trail.text.index("application.submitted")
    assert 'data-col="actor">王经理</td>' in trail.text  # people and clients by name, not id

    # Out of scope: the Qiqihar application is not shown and cannot be decided from Harbin.
    assert cities.qqhr_application not in page
    response = await world.http.post(
        f"/dashboard/applications/{cities.qqhr_application}/approve",
        data={**fields, "key": "k" * 20},
        follow_redirects=False,
    )
    assert (
        response.headers["location"] == f"/dashboard/queues?error=not_found&subject={cities.qqhr_application}"
    )
    province = await world.caller("fund_manager", region="23")
    assert (await province.get(f"/applications/{cities.qqhr_application}")).json()["status"] == "submitted"


async def test_reject_needs_a_reason_and_auditors_only_look(
    world: World, engine: AsyncEngine, admin: Api, manager: Api
) -> None:
    cities = await two_cities(world, admin, manager)
    await add_person(engine, "省经理", region="23")
    await add_person(engine, "审计", role="auditor", region="23")
    await sign_in(world.http, "审计")
    page = (await world.http.get("/dashboard/queues")).text
    assert cities.qqhr_application in page and "data-approve" not in page  # no forms for an auditor
    await sign_in(world.http, "省经理")
    page = (await world.http.get("/dashboard/queues?fund=QQHR")).text
    fields = form_tokens(page, cities.qqhr_application, "reject")
    url = f"/dashboard/applications/{cities.qqhr_application}/reject"
    empty = await world.http.post(url, data={**fields, "fund": "QQHR"}, follow_redirects=False)
    assert "error=validation_error" in empty.headers["location"]
    fields = form_tokens(
        (await world.http.get("/dashboard/queues?fund=QQHR")).text, cities.qqhr_application, "reject"
    )
    done = await world.http.post(
        url, data={**fields, "fund": "QQHR", "reason": "收入证明不全"}, follow_redirects=False
    )
    assert (
        done.headers["location"]
        == f"/dashboard/queues?fund=QQHR&done=reject&subject={cities.qqhr_application}"
    )
    rejected = (await cities.province.get(f"/applications/{cities.qqhr_application}")).json()
    assert rejected["status"] == "rejected" and rejected["history"][-1]["reason"] == "收入证明不全"

    # An auditor's session cannot decide even with a well-formed form.
    auditor_http = world.http
    await sign_in(auditor_http, "审计")
    page = (await auditor_http.get("/dashboard/overview")).text
    csrf = page.split('name="_csrf" value="')[1].split('"')[0]
    response = await auditor_http.post(
        f"/dashboard/applications/{cities.hrb_application}/approve",
        data={"_csrf": csrf, "key": "a" * 24},
        follow_redirects=False,
    )
    assert response.status_code == 403
    assert (await manager.get(f"/applications/{cities.hrb_application}")).json()["status"] == "submitted"


async def test_out_of_region_data_never_shown(
    world: World, engine: AsyncEngine, admin: Api, manager: Api
) -> None:
    cities = await two_cities(world, admin, manager)
    await add_person(engine, "哈尔滨", region="2301")
    await sign_in(world.http, "哈尔滨")
    for page in PAGES:
        html = (await world.http.get(f"/dashboard/{page}")).text
        assert "QQHR" not in html and "ABCQ" not in html and cities.qqhr_application not in html, page
        assert "77,777.77" not in html
    exports = {
        "overview": ("funds", "sources"),
        "leverage": ("banks", "history"),
        "matching": ("allocations",),
        "portfolio": ("status", "delinquency", "categories", "outcomes"),
        "queues": ("applications", "compensation_claims", "subsidy_claims"),
        "jobs": ("job_status", "job_runs", "alerts"),
        "audit": ("records",),
    }
    for page, names in exports.items():
        for name in names:
            for fmt in ("csv", "xlsx"):
                response = await world.http.get(f"/dashboard/export/{page}/{name}/{fmt}")
                assert response.status_code == 200, (page, name, fmt)
                text = response.content.decode() if fmt == "csv" else _xlsx_text(response.content)
                assert "QQHR" not in text and "ABCQ" not in text and "77777.77" not in text, (page, name, fmt)
    # Asking for the other city's fund by name is a 404, on pages and exports.
    assert (await world.http.get("/dashboard/leverage?fund=QQHR")).status_code == 404
    assert (await world.http.get("/dashboard/export/leverage/banks/csv?fund=QQHR")).status_code == 404
    # The audit trail of an out-of-scope entity is empty.
    trail = await world.http.get(
        "/dashboard/audit", params={"entity_type": "application", "entity_id": cities.qqhr_application}
    )
    assert "application.submitted" not in trail.text


def _xlsx_text(body: bytes) -> str:
    with zipfile.ZipFile(io.BytesIO(body)) as book:
        return "".join(book.read(name).decode() for name in book.namelist() if name.endswith(".xml"))


async def test_exports_carry_the_api_figures(
    world: World, engine: AsyncEngine, admin: Api, manager: Api
) -> None:
    cities = await two_cities(world, admin, manager)
    await add_person(engine, "省经理", region="23")
    await sign_in(world.http, "省经理")
    approve = form_tokens((await world.http.get("/dashboard/queues")).text, cities.hrb_application, "approve")
    await world.http.post(f"/dashboard/applications/{cities.hrb_application}/approve", data=approve)

    response = await world.http.get("/dashboard/export/leverage/banks/csv")
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = read_csv(response.content)
    header, lines = rows[0], {row[0]: dict(zip(rows[0], row, strict=True)) for row in rows[1:]}
    assert header[:3] == ["基金代码", "合作银行", "协议状态"]
    for fund in ("HRB", "QQHR"):
        api = await cities.province.get(f"/funds/{fund}/leverage")
        item = api.json()["items"][0]["capacity"]
        line = lines[fund]
        assert line["存款 (¥)"] == item["deposit"]
        assert line["担保额度 (¥)"] == item["capacity"]
        assert line["在保余额 (¥)"] == item["outstanding"]
        assert line["已预留 (¥)"] == item["reserved"]
        assert line["可用额度 (¥)"] == item["headroom"]
        assert line["实际放大倍数"] == item["leverage_ratio"]
    assert lines["HRB"]["已预留 (¥)"] == "50000.00"

    position = (await cities.province.get("/funds/QQHR")).json()["position"]
    rows = read_csv((await world.http.get("/dashboard/export/overview/funds/csv?fund=QQHR")).content)
    assert [r[0] for r in rows[1:]] == ["QQHR", "total"]
    line = dict(zip(rows[0], rows[1], strict=True))
    assert (line["现金 (¥)"], line["合作银行存款 (¥)"]) == (position["cash"], position["deposited"])

    xlsx = await world.http.get("/dashboard/export/leverage/banks/xlsx")
    assert xlsx.headers["content-type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    with zipfile.ZipFile(io.BytesIO(xlsx.content)) as book:
        assert "xl/worksheets/sheet1.xml" in book.namelist()
    text = _xlsx_text(xlsx.content)
    assert "合作银行" in text and "ICBC" in text
    assert "<v>50000</v>" in text  # HRB's reservation, a number in the sheet (yuan)

    # English headers when the person chose English.
    await world.http.get("/dashboard/lang/en?next=/dashboard/leverage")
    rows = read_csv((await world.http.get("/dashboard/export/leverage/banks/csv")).content)
    assert rows[0][:3] == ["Fund code", "Bank", "Agreement"]


async def test_language_dates_and_money_as_people_write_them(
    world: World, engine: AsyncEngine, admin: Api, manager: Api
) -> None:
    await two_cities(world, admin, manager)
    await add_person(engine, "省经理", region="23")
    await sign_in(world.http, "省经理")
    html = (await world.http.get("/dashboard/overview")).text
    assert 'lang="zh-CN"' in html and "截至 2026年11月27日" in html
    assert "¥" in html and "万元" in html
    response = await world.http.get("/dashboard/lang/en?next=/dashboard/overview", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/dashboard/overview"
    html = (await world.http.get("/dashboard/overview")).text
    assert 'lang="en"' in html and "As of 2026-11-27" in html and "Fund overview" in html
    # An open redirect is not offered.
    response = await world.http.get("/dashboard/lang/zh?next=https://evil.example/", follow_redirects=False)
    assert response.headers["location"] == "/dashboard/overview"


async def test_leverage_history_is_the_ledger_at_month_ends(
    world: World, engine: AsyncEngine, admin: Api, manager: Api
) -> None:
    from loanfund.agreements.capacity import capacity_from_ledger
    from loanfund.reports import leverage

    cities = await two_cities(world, admin, manager)
    province = await world.caller("fund_manager", region="23")
    # Money moves in several months: a deposit in March, a withdrawal in June, a reservation today.
    for amount, on, kind in (("200000", "2026-03-15", "deposits"), ("150000", "2026-06-30", "withdrawals")):
        day_field = "deposited_on" if kind == "deposits" else "withdrawn_on"
        response = await province.post(
            f"/agreements/{cities.hrb_agreement['id']}/{kind}",
            {"amount": amount, day_field: on, "reference": on},
        )
        assert response.status_code == 201, response.text
    assert (await province.post(f"/applications/{cities.hrb_application}/approve")).status_code == 200
    today = date(2026, 11, 27)
    async with engine.connect() as conn:
        pairs = await leverage.pair_leverage(conn, "23", today)
        histories = await leverage.leverage_history(conn, "23", today, pairs, months=12)
        assert len(histories) == 2
        for history in histories:
            assert len(history.points) == 13 and history.points[-1].on == today
            for point in history.points:
                if point.on < date(2026, 1, 1):  # before the agreements: nothing there yet
                    assert (point.deposit_fen, point.outstanding_fen, point.reserved_fen) == (0, 0, 0)
                    continue
                expected = await capacity_from_ledger(
                    conn, history.fund_code, history.bank_code, as_of=point.on
                )
                assert (point.deposit_fen, point.outstanding_fen, point.reserved_fen) == (
                    expected.deposit_fen,
                    expected.outstanding_fen,
                    expected.reserved_fen,
                ), (history.bank_code, point.on)
        hrb = next(h for h in histories if h.fund_code == "HRB")
        by_day = {p.on: p for p in hrb.points}
        assert by_day[date(2026, 2, 28)].deposit_fen == 100_000_000
        assert by_day[date(2026, 3, 31)].deposit_fen == 120_000_000
        assert by_day[date(2026, 6, 30)].deposit_fen == 105_000_000
        assert by_day[today].reserved_fen == 5_000_000
        live = next(p for p in pairs if p.fund_code == "HRB").capacity
        assert (live.deposit_fen, live.reserved_fen) == (
            by_day[today].deposit_fen,
            by_day[today].reserved_fen,
        )


async def test_scope_wide_matching_equals_each_funds_matching(
    world: World, engine: AsyncEngine, admin: Api, manager: Api
) -> None:
    from loanfund.funds import service as fund_service

    cities = await two_cities(world, admin, manager)
    allocation = (await cities.province.get("/funds/HRB")).json()
    listed = await cities.province.post(
        "/funds/HRB/allocations",
        {
            "amount": "1000000",
            "received_on": "2026-02-01",
            "reference": "P-2",
            "match_ratio_pct": "50",
            "match_due_on": "2026-06-30",
        },
    )
    assert listed.status_code == 201 and allocation["code"] == "HRB"
    for amount, reference in (("120000.50", "L-1"), ("30000", "L-2")):
        response = await cities.province.post(
            "/funds/HRB/contributions",
            {
                "source": "local_match",
                "amount": amount,
                "received_on": "2026-03-01",
                "reference": reference,
                "allocation_id": listed.json()["id"],
            },
        )
        assert response.status_code == 201, response.text
    reversed_ = await cities.province.post(
        f"/funds/HRB/contributions/{response.json()['id']}/reverse", {"reason": "entered twice"}
    )
    assert reversed_.status_code == 201, reversed_.text
    today = date(2026, 11, 27)
    async with engine.connect() as conn:
        for prefix, fund in (("23", None), ("23", "HRB"), ("2302", None)):
            wide = await fund_service.matching_in_scope(conn, today, region_prefix=prefix, fund_code=fund)
            expected = [
                (code, m)
                for code in ("HRB", "QQHR")
                if (fund in (None, code)) and ("230100" if code == "HRB" else "230200").startswith(prefix)
                for m in await fund_service.matching(conn, code, today)
            ]
            assert wide == expected, (prefix, fund)
        wide = await fund_service.matching_in_scope(conn, today, region_prefix="23")
        hrb = [m for code, m in wide if m.reference == "P-2"]
        assert (hrb[0].required_fen, hrb[0].matched_fen, hrb[0].status) == (50_000_000, 12_000_050, "overdue")


async def test_bad_requests_get_4xx_pages_never_500(
    world: World, engine: AsyncEngine, admin: Api, manager: Api
) -> None:
    cities = await two_cities(world, admin, manager)
    await add_person(engine, "省经理", region="23")
    await sign_in(world.http, "省经理")
    for path in (
        "/dashboard/nope",
        "/dashboard/export/leverage/banks/pdf",
        "/dashboard/export/leverage/nope/csv",
        "/dashboard/export/nope/banks/csv",
        "/dashboard/overview?fund=NOPE",
    ):
        response = await world.http.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"].startswith("text/html"), path
    csrf = (await world.http.get("/dashboard/queues")).text.split('name="_csrf" value="')[1].split('"')[0]
    url = f"/dashboard/applications/{cities.hrb_application}/approve"
    # JSON instead of a form, a missing or short one-time key, an unknown application.
    assert (await world.http.post(url, json={"_csrf": csrf, "key": "k" * 20})).status_code == 403
    assert (await world.http.post(url, data={"_csrf": csrf})).status_code == 403
    assert (await world.http.post(url, data={"_csrf": csrf, "key": "short"})).status_code == 403
    unknown = await world.http.post(
        "/dashboard/applications/app_nope/approve",
        data={"_csrf": csrf, "key": "u" * 20},
        follow_redirects=False,
    )
    assert unknown.status_code == 303 and "error=not_found" in unknown.headers["location"]
    # The same one-time key for a different request is refused, not replayed.
    first = await world.http.post(
        f"/dashboard/applications/{cities.hrb_application}/reject",
        data={"_csrf": csrf, "key": "r" * 20, "reason": "one"},
        follow_redirects=False,
    )
    assert first.status_code == 303
    other = await world.http.post(
        f"/dashboard/applications/{cities.hrb_application}/reject",
        data={"_csrf": csrf, "key": "r" * 20, "reason": "two"},
    )
    assert other.status_code == 422
    assert (
        await world.http.post("/dashboard/login", content=b"\xff\xfe", headers={"content-type": "x/y"})
    ).status_code == 403
    assert (await cities.province.get(f"/applications/{cities.hrb_application}")).json()[
        "status"
    ] == "rejected"
    # A NUL (or another control character) anywhere a person can type: 422, never 500 on PostgreSQL.
    for path in (
        "/dashboard/audit?entity_id=%00",
        "/dashboard/audit?entity_type=a%00b",
        "/dashboard/export/audit/records/csv?entity_id=%00",
        "/dashboard/overview?fund=%01",
        "/dashboard/over%00view",
    ):
        response = await world.http.get(path)
        assert response.status_code == 422, (path, response.status_code)
        assert response.headers["content-type"].startswith("text/html"), path
    nul_reason = await world.http.post(
        f"/dashboard/applications/{cities.hrb_application}/reject",
        data={"_csrf": csrf, "key": "n" * 20, "reason": "bad\x00reason"},
    )
    assert nul_reason.status_code == 422
    lines = await world.http.post(
        f"/dashboard/applications/{cities.qqhr_application}/reject",
        data={"_csrf": csrf, "key": "m" * 20, "reason": "two lines:\r\nand a\ttab"},
        follow_redirects=False,
    )
    assert lines.status_code == 303, lines.text
    form = (await world.http.get("/dashboard/login")).text
    token = form.split('name="_csrf" value="')[1].split('"')[0]
    nul_name = await world.http.post(
        "/dashboard/login", data={"_csrf": token, "name": "a\x00b", "password": "x", "next": ""}
    )
    assert nul_name.status_code == 422
