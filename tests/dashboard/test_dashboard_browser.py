"""The dashboard in a real browser: Debian's headless Chromium driven by Playwright (no browser
download), against the demo province served by uvicorn.

One demo, one server and one browser for the module. The demo runs on SQLite here (it fills in a
fifth of the time it takes on PostgreSQL); every dashboard behaviour also runs on both databases in
test_dashboard_http.py, and bench/dashboard.py measures the pages on PostgreSQL. Set
LOANFUND_BROWSER_POSTGRES=1 to run these on PostgreSQL too. Each page's screenshot is saved under
docs/screenshots/ (or $LOANFUND_SCREENSHOTS), which docs/manager-guide.md shows.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from loanfund.config import Settings
from loanfund.db import create_engine
from loanfund.db.migrate import upgrade
from loanfund.money import format_display, format_wan, parse_yuan
from tests.conftest import admin_statement, postgres_url
from tests.dashboard.helpers import PASSWORD
from tests.support import SETUP, TODAY

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None and os.environ.get("LOANFUND_REQUIRE_BROWSER") != "1":
    pytest.skip("Chromium is not installed (apt-get install chromium)", allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api")

SHOTS = Path(os.environ.get("LOANFUND_SCREENSHOTS", Path(__file__).parents[2] / "docs" / "screenshots"))
PAGES = ("overview", "leverage", "matching", "portfolio", "queues", "audit")
OTHER_CITIES = ("QQHR", "MDJ", "齐齐哈尔", "牡丹江")


class Demo:
    def __init__(self, base: str, tokens: dict[str, Any]) -> None:
        self.base = base
        self.tokens = tokens

    def api(self, path: str) -> Any:
        token = self.tokens["fund_manager"]["token"]
        response = httpx.get(f"{self.base}/api/v1{path}", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, response.text
        return response.json()


def _run(coroutine: Any) -> Any:
    """Run a coroutine to the end on a thread of its own: Playwright's sync API keeps an event loop
    running on this one."""
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(asyncio.run(coroutine)))
    thread.start()
    thread.join()
    assert result, "the coroutine failed (see the log above)"
    return result[0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _fill(url: str) -> dict[str, Any]:
    from loanfund import uow
    from loanfund.demo import fill_demo
    from loanfund.users import service as users

    engine = create_engine(url)
    try:
        tokens = await fill_demo(engine)
        async with uow.transaction(engine, SETUP) as tx:
            await users.add_user(
                tx, name="省经理", role="fund_manager", region_prefix="23", password=PASSWORD
            )
            await users.add_user(tx, name="哈尔滨", role="auditor", region_prefix="2301", password=PASSWORD)
    finally:
        await engine.dispose()
    return dict(tokens)


async def _upgrade(url: str) -> None:
    await asyncio.to_thread(upgrade, url)  # Alembic runs its own event loop


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    import uvicorn

    from api.app import create_app

    base = postgres_url() if os.environ.get("LOANFUND_BROWSER_POSTGRES") == "1" else None
    name = f"loanfund_browser_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    if base is not None:
        _run(admin_statement(base, f'CREATE DATABASE "{name}"'))
        url = make_url(base).set(database=name).render_as_string(hide_password=False)
    else:
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('browser') / 'demo.db'}"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("LOANFUND_BUSINESS_DATE", TODAY)
        _run(_upgrade(url))
        tokens = _run(_fill(url))
        port = _free_port()
        settings = Settings(
            url, pool_size=5, idempotency_claim_timeout_seconds=60, idempotency_retention_days=8
        )
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
            )
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
        try:
            yield Demo(f"http://127.0.0.1:{port}", tokens)
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            if base is not None:
                _run(admin_statement(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


def _signed_in(browser: Any, demo: Demo, name: str, **options: Any) -> Any:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True, **options)
    page = context.new_page()
    page.goto(f"{demo.base}/dashboard/overview")
    assert page.url.startswith(f"{demo.base}/dashboard/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{demo.base}/dashboard/overview")
    return page


def _cell(page: Any, table: str, row_text: str, column: str) -> str:
    row = page.locator(f"table[data-table={table}] tbody tr", has_text=row_text).first
    return str(row.locator(f"td[data-col={column}]").inner_text()).strip()


def test_every_page_shows_the_api_figures(browser: Any, demo: Demo) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = _signed_in(browser, demo, "省经理")
    for name in PAGES:
        page.goto(f"{demo.base}/dashboard/{name}")
        assert page.title().endswith("管理看板") or "管理看板" in page.title()
        page.screenshot(path=str(SHOTS / f"{name}.png"))

    # Overview: the cash card is the sum of the funds' cash in the API, to the fen.
    cash = sum(parse_yuan(demo.api(f"/funds/{f}")["position"]["cash"]) for f in ("HRB", "QQHR", "MDJ"))
    page.goto(f"{demo.base}/dashboard/overview")
    assert page.locator("[data-card=cash] .value").inner_text() == format_display(cash)

    # Leverage: every HRB bank's row equals GET /funds/HRB/leverage (万元, half-up).
    page.goto(f"{demo.base}/dashboard/leverage?fund=HRB")
    items = demo.api("/funds/HRB/leverage")["items"]
    assert page.locator("table[data-table=banks] tbody tr").count() == len(items)
    near = 0
    for item in items:
        capacity = item["capacity"]
        row = page.locator("table[data-table=banks] tbody tr").nth(items.index(item))
        bank_name = row.locator("td[data-col=bank]").inner_text()
        for column, field in (
            ("deposit", "deposit"),
            ("headroom", "headroom"),
            ("outstanding", "outstanding"),
        ):
            assert _cell(page, "banks", bank_name, column) == format_wan(parse_yuan(capacity[field]))
        assert _cell(page, "banks", bank_name, "ratio") == f"{float(capacity['leverage_ratio']):.2f}"
        near += "flag-near" in (row.get_attribute("class") or "")
    assert near == 1  # the demo's near-limit bank stands out
    assert page.locator("svg.bars .bar").count() == len(items)
    assert page.locator("svg.lines polyline").count() == len(items)

    # Matching: HRB's shortfall total equals the API's.
    page.goto(f"{demo.base}/dashboard/matching?fund=HRB")
    totals = demo.api("/funds/HRB/matching")["totals"]
    footer = page.locator("table[data-table=allocations] tfoot td[data-col=shortfall]").inner_text()
    assert footer == format_display(parse_yuan(totals["shortfall"]))


def test_approve_an_application_and_download_an_export(browser: Any, demo: Demo) -> None:
    page = _signed_in(browser, demo, "省经理")
    page.goto(f"{demo.base}/dashboard/queues?fund=HRB")
    button = page.locator("button[data-approve]").first
    application_id = button.get_attribute("data-approve")
    before = demo.api(f"/applications/{application_id}")
    assert before["status"] == "submitted"
    button.click()
    page.wait_for_url("**/dashboard/queues?*done=approve*")
    assert application_id in page.locator("[data-testid=notice]").inner_text()
    assert page.locator(f"button[data-approve='{application_id}']").count() == 0
    after = demo.api(f"/applications/{application_id}")
    assert after["status"] == "guarantee_approved" and after["guarantee"]["amount"] == before["amount"]
    page.screenshot(path=str(SHOTS / "queues-approved.png"))

    page.goto(f"{demo.base}/dashboard/leverage")
    with page.expect_download() as info:
        page.click("a[data-export=banks-csv]")
    download = info.value
    assert download.suggested_filename == f"leverage-banks-{TODAY}.csv"
    text = Path(download.path()).read_bytes().decode("utf-8-sig")
    bank = after["bank_code"]
    agreement = next(i for i in demo.api("/funds/HRB/leverage")["items"] if i["bank_code"] == bank)
    assert agreement["capacity"]["headroom"] in text  # the export carries the API's yuan, to the fen
    with page.expect_download() as info:
        page.click("a[data-export=banks-xlsx]")
    assert Path(info.value.path()).read_bytes()[:2] == b"PK"


def test_out_of_region_never_shown_and_forms_need_their_token(browser: Any, demo: Demo) -> None:
    page = _signed_in(browser, demo, "哈尔滨")
    for name in PAGES:
        page.goto(f"{demo.base}/dashboard/{name}")
        text = page.locator("body").inner_text()
        for other in OTHER_CITIES:
            assert other not in text, (name, other)
    page.goto(f"{demo.base}/dashboard/overview")
    assert page.locator("table[data-table=funds] tbody tr").all_inner_texts()[0].startswith("HRB")
    assert page.locator("table[data-table=funds] tbody tr").count() == 1  # Harbin's fund only
    page.goto(f"{demo.base}/dashboard/leverage?fund=QQHR")
    assert "未找到" in page.locator("h1").inner_text()

    # A form stripped of its CSRF token is refused, and nothing happens.
    manager = _signed_in(browser, demo, "省经理")
    manager.goto(f"{demo.base}/dashboard/queues")
    button = manager.locator("button[data-approve]").first
    application_id = button.get_attribute("data-approve")
    manager.evaluate(
        "id => document.querySelector(`button[data-approve='${id}']`)"
        ".form.querySelector('[name=_csrf]').remove()",
        application_id,
    )
    with manager.expect_navigation():
        button.click()
    assert "表单已失效" in manager.locator("h1").inner_text()
    assert demo.api(f"/applications/{application_id}")["status"] == "submitted"

    # English, for the guide.
    manager.goto(f"{demo.base}/dashboard/lang/en?next=/dashboard/leverage")
    assert manager.locator("h1").inner_text() == "Leverage"
    manager.screenshot(path=str(SHOTS / "leverage-en.png"))


def test_claims_are_decided_in_the_browser(browser: Any, demo: Demo) -> None:
    """The claim queues' forms as a manager uses them: a rejection needs its reason (the browser
    will not send the form without it), a subsidy claim is approved, then paid."""
    page = _signed_in(browser, demo, "省经理")
    page.goto(f"{demo.base}/dashboard/queues")
    form = page.locator("form[action*='/compensation-claims/'][action$='/reject']").first
    claim_id = form.locator("button").get_attribute("data-reject")
    assert claim_id is not None
    assert demo.api(f"/compensation-claims/{claim_id}")["status"] == "submitted"
    form.locator("button").click()  # no reason: the browser keeps the form
    assert "done=" not in page.url and "error=" not in page.url
    assert demo.api(f"/compensation-claims/{claim_id}")["status"] == "submitted"
    form.locator("input[name=reason]").fill("材料不全")
    form.locator("button").click()
    page.wait_for_url("**/dashboard/queues?*done=claim_rejected*")
    assert claim_id in page.locator("[data-testid=notice]").inner_text()
    rejected = demo.api(f"/compensation-claims/{claim_id}")
    assert rejected["status"] == "rejected"
    assert "材料不全" in str(rejected)

    page.goto(f"{demo.base}/dashboard/queues?fund=HRB")
    approve = page.locator("form[action*='/subsidy-claims/'][action$='/approve'] button").first
    subsidy_id = approve.get_attribute("data-approve")
    assert demo.api(f"/subsidy-claims/{subsidy_id}")["status"] == "submitted"
    approve.click()
    page.wait_for_url("**/dashboard/queues?*done=subsidy_approved*")
    assert demo.api(f"/subsidy-claims/{subsidy_id}")["status"] == "approved"
    page.locator(f"button[data-pay='{subsidy_id}']").click()
    page.wait_for_url("**/dashboard/queues?*done=subsidy_paid*")
    assert subsidy_id in page.locator("[data-testid=notice]").inner_text()
    assert demo.api(f"/subsidy-claims/{subsidy_id}")["status"] == "paid"
    assert page.locator(f"button[data-pay='{subsidy_id}']").count() == 0
