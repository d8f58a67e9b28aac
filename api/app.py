"""The Litestar application: `create_app()` wires routes, errors, OpenAPI and the database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy as sa
from litestar import Litestar, Request, Response, Router, get
from litestar.di import Provide
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.plugins.problem_details import ProblemDetailsConfig, ProblemDetailsPlugin
from sqlalchemy.ext.asyncio import AsyncEngine

from api import limits, openapi, redact
from api.context import UnitOfWorkMiddleware, request_context
from api.dashboard import DashboardPlugin
from api.docs_ui import docs_assets_router, docs_ui_plugin
from api.errors import http_exception_to_problem, internal_error_handler, to_problem
from api.routes import (
    admin,
    agreements,
    applications,
    borrower_facts,
    borrowers,
    claims,
    delinquency,
    events,
    fund_ledger,
    funds,
    jobs,
    loans,
    money_in,
    reports,
    subsidies,
)
from loanfund import policy
from loanfund.config import Settings
from loanfund.db import create_engine
from loanfund.errors import LoanfundError
from scheduler.runner import SchedulerRunner

API_PREFIX = "/api/v1"


@get("/health")
async def health(request: Request[Any, Any, Any]) -> Response[dict[str, str]]:
    engine: AsyncEngine = request.app.state.engine
    try:
        async with engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))
    except Exception:
        return Response({"status": "degraded", "database": "error"}, status_code=503)
    return Response({"status": "ok", "database": "ok"})


def create_app(
    settings: Settings | None = None, *, engine: AsyncEngine | None = None, run_scheduler: bool = False
) -> Litestar:
    settings = settings or Settings.from_env()
    redact.install()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        own_engine = engine is None
        policy.load_editions()  # a broken or incomplete policy file stops the service here, not mid-request
        app.state.engine = engine or create_engine(settings.database_url, pool_size=settings.pool_size)
        app.state.settings = settings
        runner = SchedulerRunner(app.state.engine, settings) if run_scheduler else None
        if runner is not None:
            await runner.start()
        try:
            yield
        finally:
            if runner is not None:
                await runner.stop()
            if own_engine:
                await app.state.engine.dispose()

    api_router = Router(
        path=API_PREFIX,
        route_handlers=[
            funds.router,
            money_in.router,
            fund_ledger.router,
            agreements.router,
            borrowers.router,
            borrower_facts.router,
            applications.router,
            loans.router,
            events.router,
            claims.router,
            delinquency.router,
            reports.router,
            admin.router,
            subsidies.router,
            jobs.router,
        ],
        middleware=[*limits.rate_limit_middleware(settings.rate_limit), UnitOfWorkMiddleware],
        dependencies={"ctx": Provide(request_context, sync_to_thread=False)},
    )
    return Litestar(
        route_handlers=[health, api_router, docs_assets_router()],
        lifespan=[lifespan],
        on_startup=[openapi.on_startup],
        plugins=[
            ProblemDetailsPlugin(
                ProblemDetailsConfig(
                    enable_for_all_http_exceptions=True,
                    exception_to_problem_detail_map={
                        LoanfundError: to_problem,
                        HTTPException: http_exception_to_problem,
                    },
                )
            ),
            DashboardPlugin(),
        ],
        exception_handlers={Exception: internal_error_handler},
        openapi_config=OpenAPIConfig(
            title="loanfund",
            version="1",
            description="Micro-loan guarantee fund (创业担保贷款) API. See docs/ for guides.",
            path="/schema",
            render_plugins=[docs_ui_plugin()],
        ),
        debug=False,
        # Logging is the host's to configure (the `loanfund` command does); no INFO chatter by default.
        logging_config=None,
    )
