"""The dashboard's pages and forms under /dashboard: session sign-in, six pages, exports, decisions."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from typing import Any
from urllib.parse import quote, urlencode

from litestar import Request, Response, Router, get, post
from litestar.exceptions import HTTPException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncConnection

from api.dashboard import i18n, pages
from api.dashboard.session import (
    LANG_COOKIE,
    PRE_COOKIE,
    PREFIX,
    SESSION_COOKIE,
    NotSignedIn,
    check_csrf,
    cookie_options,
    current_session,
    engine_of,
    language,
    new_pre_token,
    new_tx,
    reading,
)
from api.dashboard.tables import to_csv, to_xlsx
from api.errors import status_for
from api.limits import check_request_line, check_text_fields
from loanfund import idempotency
from loanfund.applications import queries as application_queries
from loanfund.applications import service as application_service
from loanfund.claims import queries as claim_queries
from loanfund.claims import service as claim_service
from loanfund.clock import business_date
from loanfund.errors import (
    CsrfRejected,
    Forbidden,
    LoanfundError,
    NotFound,
    RequestInProgress,
    SignInFailed,
    SignInLocked,
)
from loanfund.subsidies import queries as subsidy_queries
from loanfund.subsidies import service as subsidy_service
from loanfund.uow import Tx
from loanfund.users import service as users
from loanfund.users.queries import Session, User

log = logging.getLogger("loanfund.dashboard")

PAGES = ("overview", "leverage", "matching", "portfolio", "queues", "jobs", "audit")
# An abandoned decision (the browser closed mid-request) may be retried after this long.
CLAIM_TIMEOUT = timedelta(seconds=60)

Builder = Callable[[AsyncConnection, User, date, str | None], Awaitable[pages.Page]]
BUILDERS: dict[str, Builder] = {
    "overview": pages.overview_page,
    "leverage": pages.leverage_page,
    "matching": pages.matching_page,
    "portfolio": pages.portfolio_page,
    "queues": pages.queues_page,
    "jobs": pages.jobs_page,
}


def _render(
    request: Request[Any, Any, Any], name: str, context: dict[str, Any], *, status_code: int = 200
) -> Template:
    lang = language(request)
    base = {
        "lang": lang,
        "t": i18n.translator(lang),
        "prefix": PREFIX,
        "path": request.url.path,
        "query": request.url.query or "",
        "today": business_date(),
    }
    return Template(template_name=name, context={**base, **context}, status_code=status_code)


def _safe_next(value: str | None) -> str:
    # Only our own pages: an open redirect would let a link sign someone in and send them elsewhere.
    if value and value.startswith(PREFIX + "/") and "//" not in value and "\\" not in value:
        return value
    return f"{PREFIX}/overview"


# ---- sign-in ---------------------------------------------------------------------------------------


def _sign_in_page(
    request: Request[Any, Any, Any], error: str | None, status_code: int = 200, next_path: str | None = None
) -> Template:
    token = new_pre_token()
    page = _render(
        request,
        "login.html",
        {"csrf": token, "error": error, "next": next_path or request.query_params.get("next", "")},
        status_code=status_code,
    )
    page.set_cookie(PRE_COOKIE, token, max_age=3600, **cookie_options(request))
    return page


@get("/login", include_in_schema=False)
async def login_form(request: Request[Any, Any, Any]) -> Template:
    return _sign_in_page(request, None)


@post("/login", include_in_schema=False)
async def login(request: Request[Any, Any, Any]) -> Response[Any]:
    form = await _form(request)
    next_path = str(form.get("next") or "")
    try:
        check_csrf(request.cookies.get(PRE_COOKIE, ""), form)
    except CsrfRejected:
        return _sign_in_page(request, "csrf_rejected", 403, next_path)
    name, password = str(form.get("name") or ""), str(form.get("password") or "")
    async with engine_of(request).connect() as conn:
        tx = new_tx(conn, None)
        try:
            _, token = await users.sign_in(tx, name, password)
        except (SignInFailed, SignInLocked) as exc:
            await tx.commit()  # the failure count must stay counted
            return _sign_in_page(request, exc.code, status_for(exc.code), next_path)
        await tx.commit()
    response = Redirect(_safe_next(next_path), status_code=303)
    response.set_cookie(SESSION_COOKIE, token, max_age=users.SESSION_HOURS * 3600, **cookie_options(request))
    response.delete_cookie(PRE_COOKIE, path=PREFIX)
    return response


@post("/logout", include_in_schema=False)
async def logout(request: Request[Any, Any, Any]) -> Response[Any]:
    form = await _form(request)
    async with engine_of(request).connect() as conn:
        session = await current_session(conn, request)
        check_csrf(session.csrf_token, form)
        tx = new_tx(conn, session)
        await users.sign_out(tx, request.cookies[SESSION_COOKIE])
        await tx.commit()
    response = Redirect(f"{PREFIX}/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path=PREFIX)
    return response


@get("/lang/{lang:str}", include_in_schema=False)
async def set_language(
    request: Request[Any, Any, Any], lang: FromPath[str], next: FromQuery[str | None] = None
) -> Response[Any]:
    response = Redirect(_safe_next(next), status_code=303)
    if lang in i18n.LANGUAGES:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, **cookie_options(request))
    return response


@get("/", include_in_schema=False)
async def home() -> Redirect:
    return Redirect(f"{PREFIX}/overview", status_code=303)


# ---- pages and exports -----------------------------------------------------------------------------


async def _scoped_fund(conn: AsyncConnection, session: Session, fund: str | None) -> list[tuple[str, str]]:
    choices = await pages.fund_choices(conn, session.user)
    if fund and fund not in {code for code, _ in choices}:
        raise NotFound(f"fund {fund} not found")
    return choices


@get("/{page:str}", include_in_schema=False)
async def show_page(
    request: Request[Any, Any, Any],
    page: FromPath[str],
    fund: FromQuery[str | None] = None,
    entity_type: FromQuery[str | None] = None,
    entity_id: FromQuery[str | None] = None,
    done: FromQuery[str | None] = None,
    error: FromQuery[str | None] = None,
    subject: FromQuery[str | None] = None,
) -> Template:
    if page not in PAGES:
        raise NotFound("no such page")
    fund = fund or None
    async with reading(request) as (conn, session):
        choices = await _scoped_fund(conn, session, fund)
        if page == "audit":
            built = await pages.audit_page(conn, session.user, entity_type, entity_id)
        else:
            built = await BUILDERS[page](conn, session.user, business_date(), fund)
    export_query = urlencode(
        {k: v for k, v in (("fund", fund), ("entity_type", entity_type), ("entity_id", entity_id)) if v}
    )
    return _render(
        request,
        f"{page}.html",
        {
            "page": page,
            "pages": PAGES,
            "user": session.user,
            "csrf": session.csrf_token,
            "funds": choices,
            "fund": fund,
            "tables": built.tables,
            "export_query": export_query,
            "entity_type": entity_type or "",
            "entity_id": entity_id or "",
            "notice": done,
            "error": error,
            "subject": subject,
            "new_key": new_pre_token,
            **built.extra,
        },
    )


@get("/export/{page:str}/{table:str}/{fmt:str}", include_in_schema=False)
async def export_table(
    request: Request[Any, Any, Any],
    page: FromPath[str],
    table: FromPath[str],
    fmt: FromPath[str],
    fund: FromQuery[str | None] = None,
    entity_type: FromQuery[str | None] = None,
    entity_id: FromQuery[str | None] = None,
) -> Response[bytes]:
    if page not in PAGES or fmt not in ("csv", "xlsx"):
        raise NotFound("no such export")
    fund = fund or None
    async with reading(request) as (conn, session):
        await _scoped_fund(conn, session, fund)
        if page == "audit":
            built = await pages.audit_page(conn, session.user, entity_type, entity_id)
        else:
            built = await BUILDERS[page](conn, session.user, business_date(), fund)
    if table not in built.tables:
        raise NotFound("no such table")
    lang = language(request)
    filename = f"{page}-{table}{'-' + fund if fund else ''}-{business_date().isoformat()}.{fmt}"
    if fmt == "csv":
        body, media = to_csv(built.tables[table], lang), "text/csv; charset=utf-8"
    else:
        body = to_xlsx(built.tables[table], lang)
        media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return Response(
        body,
        media_type=media,
        headers={"content-disposition": f"attachment; filename*=UTF-8''{quote(filename)}"},
    )


# ---- decisions -------------------------------------------------------------------------------------


def _queue_url(fund: str | None, **params: str) -> str:
    query = {"fund": fund, **params} if fund else params
    return f"{PREFIX}/queues?{urlencode(query)}"


# Carries out one decision on one subject; raises NotFound for a subject outside the user's regions.
Act = Callable[[Tx, User, str, str], Awaitable[None]]


async def _decide(request: Request[Any, Any, Any], subject_id: str, done: str, act: Act) -> Response[Any]:
    """Decide through the same library services as the API, once per form (the form's one-time key
    makes a second click, a reload or a retry replay the first outcome)."""
    form = await _form(request)
    fund = str(form.get("fund") or "") or None
    async with engine_of(request).connect() as conn:
        session = await current_session(conn, request)
        check_csrf(session.csrf_token, form)
        user = session.user
        if not user.may_decide:
            raise Forbidden("auditors may only look")
        key = str(form.get("key") or "")
        if not 16 <= len(key) <= 128:
            raise CsrfRejected("the form has no one-time key; reload the page")
        reason = str(form.get("reason") or "").strip()
        fingerprint = idempotency.fingerprint("POST", request.url.path, reason.encode())
        claim = await idempotency.claim(
            conn, client_id=user.id, key=f"dashboard:{key}", fingerprint=fingerprint, timeout=CLAIM_TIMEOUT
        )
        if isinstance(claim, idempotency.StoredResponse):
            location = claim.headers.get("location", _queue_url(fund))
            return Redirect(location + "&replayed=1", status_code=303)
        tx = new_tx(conn, session)
        try:
            await act(tx, user, subject_id, reason)
            location = _queue_url(fund, done=done, subject=subject_id)
            await idempotency.complete(
                conn, claim, idempotency.StoredResponse(303, {"location": location}, b"")
            )
            await tx.commit()
        except LoanfundError as exc:
            await tx.rollback()
            location = _queue_url(fund, error=exc.code, subject=subject_id)
            await idempotency.complete(
                conn, claim, idempotency.StoredResponse(303, {"location": location}, b"")
            )
            await conn.commit()
        except BaseException:
            await tx.rollback()
            await idempotency.release(conn, claim)
            await conn.commit()
            raise
    return Redirect(location, status_code=303)


async def _application(tx: Tx, user: User, application_id: str) -> Any:
    app = await application_queries.lock_application(tx, application_id)
    if not user.sees_region(app.region_code):
        raise NotFound("application not found")
    return app


async def _approve_application(tx: Tx, user: User, application_id: str, reason: str) -> None:
    await application_service.approve(tx, await _application(tx, user, application_id))


async def _reject_application(tx: Tx, user: User, application_id: str, reason: str) -> None:
    await application_service.reject(tx, await _application(tx, user, application_id), reason=reason)


async def _compensation_in_scope(tx: Tx, user: User, claim_id: str) -> None:
    claim = await claim_queries.get_claim(tx.conn, claim_id)
    if not user.sees_region(claim.region_code):
        raise NotFound(f"compensation claim {claim_id} not found")


async def _approve_compensation(tx: Tx, user: User, claim_id: str, reason: str) -> None:
    await _compensation_in_scope(tx, user, claim_id)
    await claim_service.approve_claim(tx, claim_id)


async def _reject_compensation(tx: Tx, user: User, claim_id: str, reason: str) -> None:
    await _compensation_in_scope(tx, user, claim_id)
    await claim_service.reject_claim(tx, claim_id, reason=reason)


async def _subsidy_in_scope(tx: Tx, user: User, claim_id: str) -> None:
    claim = await subsidy_queries.get_claim(tx.conn, claim_id)
    if not user.sees_region(claim.region_code):
        raise NotFound(f"subsidy claim {claim_id} not found")


async def _approve_subsidy(tx: Tx, user: User, claim_id: str, reason: str) -> None:
    await _subsidy_in_scope(tx, user, claim_id)
    await subsidy_service.review_claim(tx, claim_id, [])  # approved as claimed: adjustments need the API


async def _pay_subsidy(tx: Tx, user: User, claim_id: str, reason: str) -> None:
    await _subsidy_in_scope(tx, user, claim_id)
    await subsidy_service.pay_claim(tx, claim_id)


@post("/applications/{application_id:str}/approve", include_in_schema=False)
async def approve(request: Request[Any, Any, Any], application_id: FromPath[str]) -> Response[Any]:
    return await _decide(request, application_id, "approve", _approve_application)


@post("/applications/{application_id:str}/reject", include_in_schema=False)
async def reject(request: Request[Any, Any, Any], application_id: FromPath[str]) -> Response[Any]:
    return await _decide(request, application_id, "reject", _reject_application)


@post("/compensation-claims/{claim_id:str}/approve", include_in_schema=False)
async def approve_compensation(request: Request[Any, Any, Any], claim_id: FromPath[str]) -> Response[Any]:
    return await _decide(request, claim_id, "claim_approved", _approve_compensation)


@post("/compensation-claims/{claim_id:str}/reject", include_in_schema=False)
async def reject_compensation(request: Request[Any, Any, Any], claim_id: FromPath[str]) -> Response[Any]:
    return await _decide(request, claim_id, "claim_rejected", _reject_compensation)


@post("/subsidy-claims/{claim_id:str}/approve", include_in_schema=False)
async def approve_subsidy(request: Request[Any, Any, Any], claim_id: FromPath[str]) -> Response[Any]:
    return await _decide(request, claim_id, "subsidy_approved", _approve_subsidy)


@post("/subsidy-claims/{claim_id:str}/pay", include_in_schema=False)
async def pay_subsidy(request: Request[Any, Any, Any], claim_id: FromPath[str]) -> Response[Any]:
    return await _decide(request, claim_id, "subsidy_paid", _pay_subsidy)


# ---- input -----------------------------------------------------------------------------------------


async def _refuse_control_characters(request: Request[Any, Any, Any]) -> None:
    """The dashboard's request line holds no control character (a NUL reaches PostgreSQL as an error,
    not as text): 422, as on the API."""
    check_request_line(request.scope)


async def _form(request: Request[Any, Any, Any]) -> Any:
    form = await request.form()
    check_text_fields(form.multi_items())
    return form


# ---- errors ----------------------------------------------------------------------------------------


def _not_signed_in(request: Request[Any, Any, Any], exc: NotSignedIn) -> Response[Any]:
    target = exc.next_path if request.method == "GET" else f"{PREFIX}/overview"
    return Redirect(f"{PREFIX}/login?{urlencode({'next': target})}", status_code=303)


def _refused(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if isinstance(exc, LoanfundError):
        status, code, detail = status_for(exc.code), exc.code, exc.detail
    elif isinstance(exc, HTTPException):
        status, code, detail = exc.status_code, "error", exc.detail
    else:
        log.exception("dashboard error in %s %s", request.method, request.url.path, exc_info=exc)
        status, code, detail = 500, "error", ""
    return _render(
        request, "error.html", {"code": code, "detail": detail, "status": status}, status_code=status
    )


router = Router(
    path=PREFIX,
    route_handlers=[
        login_form,
        login,
        logout,
        set_language,
        home,
        show_page,
        export_table,
        approve,
        reject,
        approve_compensation,
        reject_compensation,
        approve_subsidy,
        pay_subsidy,
    ],
    include_in_schema=False,
    before_request=_refuse_control_characters,
    exception_handlers={
        NotSignedIn: _not_signed_in,
        LoanfundError: _refused,
        HTTPException: _refused,
        RequestInProgress: _refused,
        Exception: _refused,
    },
    response_headers={
        # Figures of public money: no caching on shared machines, no framing (clickjacking on the
        # approve buttons), nothing loaded or posted anywhere but here.
        "Cache-Control": "no-store",
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "Content-Security-Policy": (
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'none'; "
            "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
        ),
    },
)
