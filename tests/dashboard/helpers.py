"""Helpers for the dashboard's tests: people, sign-in, and a small world of two funds in two cities."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from loanfund import uow
from loanfund.users import service as users
from tests.support import SETUP, Api, World, application_body, lending_setup, register_person

PASSWORD = "correct-horse-battery"
CSRF_RE = re.compile(r'name="_csrf" value="([^"]+)"')
KEY_RE = re.compile(r'name="key" value="([^"]+)"')


async def add_person(engine: AsyncEngine, name: str, role: str = "fund_manager", region: str = "2301") -> str:
    async with uow.transaction(engine, SETUP) as tx:
        user = await users.add_user(tx, name=name, role=role, region_prefix=region, password=PASSWORD)
    return user.id


async def sign_in(http: Any, name: str, password: str = PASSWORD, *, base: str = "") -> Any:
    form = await http.get(f"{base}/dashboard/login")
    assert form.status_code == 200, form.text
    token = CSRF_RE.search(form.text)
    assert token is not None
    return await http.post(
        f"{base}/dashboard/login",
        data={"_csrf": token.group(1), "name": name, "password": password, "next": ""},
        follow_redirects=False,
    )


def form_tokens(html: str, application_id: str, action: str) -> dict[str, str]:
    """The hidden fields of one decision form on the queue page."""
    start = html.index(f'action="/dashboard/applications/{application_id}/{action}"')
    chunk = html[start : html.index("</form>", start)]
    csrf, key = CSRF_RE.search(chunk), KEY_RE.search(chunk)
    assert csrf is not None and key is not None
    return {"_csrf": csrf.group(1), "key": key.group(1)}


@dataclass
class TwoCities:
    """HRB (Harbin, 230100) with ICBC and a submitted application; QQHR (Qiqihar, 230200) with ABC and
    a submitted application of its own, outside a Harbin person's scope."""

    hrb_agreement: dict[str, Any]
    qqhr_agreement: dict[str, Any]
    hrb_application: str
    qqhr_application: str
    province: Api  # an API fund manager of the whole province


async def two_cities(world: World, admin: Api, manager: Api) -> TwoCities:
    province = await world.caller("fund_manager", region="23")
    hrb = await lending_setup(admin, province, fund="HRB", bank="ICBC", deposit="1000000")
    qqhr = await lending_setup(
        admin, province, fund="QQHR", bank="ABCQ", deposit="700000", region_code="230200", cash="2000000"
    )
    window = await world.caller("window", region="23")
    first = await register_person(window, seq="11")
    second = await register_person(window, seq="12", female=True)
    submitted = []
    for person, fund, bank, amount in ((first, "HRB", "ICBC", "50000"), (second, "QQHR", "ABCQ", "77777.77")):
        response = await window.post(
            "/applications", application_body(person["id"], fund=fund, bank=bank, amount=amount)
        )
        assert response.status_code == 201, response.text
        submitted.append(response.json()["id"])
    return TwoCities(hrb, qqhr, submitted[0], submitted[1], province)
