"""The OpenAPI document tells the truth about errors and auth, for every operation, present or future.

Litestar documents each handler's success and its own validation shape; this completes the document
once the routes are known (at startup): every `/api/v1` operation gets the bearer security scheme and
a problem+json response for each status it can answer, listing the stable codes behind that status.
Which refusals apply is decided here by what every request passes through (the middleware, scope and
role checks, body decoding), so a new route is covered without anyone writing its errors by hand.
"""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.openapi.spec import (
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Reference,
    Schema,
    SecurityScheme,
)

from api.errors import HTTP_CODES, PROBLEM_MEDIA_TYPE, status_for
from loanfund.errors import LoanfundError

API_PREFIX = "/api/v1"
SECURITY = "bearer"

TITLES = {
    400: "Malformed request: not JSON, nested too deep, unknown field, missing or invalid Idempotency-Key",
    401: "Missing, unknown or revoked bearer token",
    403: "The caller's role may not do this",
    404: "Not found, or outside the caller's scope (never revealed)",
    405: "Method not allowed on this path",
    409: "Refused in the current state (business rules, duplicates, a request still running)",
    413: "Request body larger than LOANFUND_MAX_BODY_BYTES",
    415: "Unsupported media type",
    422: "Invalid input (`errors` names each field) or a business rule on valid input",
    429: "Too many requests from this client (LOANFUND_RATE_LIMIT)",
    500: "The server failed; nothing was changed",
}

# What any operation can answer, and what only operations that change something can.
EVERY_OPERATION = (400, 401, 403, 404, 405, 422, 429, 500)
WRITES = (409, 413, 415)


def _codes_by_status() -> dict[int, list[str]]:
    codes: set[str] = set()
    pending: list[type[LoanfundError]] = [LoanfundError]
    while pending:
        cls = pending.pop()
        codes.add(cls.code)
        pending.extend(cls.__subclasses__())
    by_status: dict[int, set[str]] = {}
    for code in codes:
        by_status.setdefault(status_for(code), set()).add(code)
    for status, code in HTTP_CODES.items():
        by_status.setdefault(status, set()).add(code)
    by_status.setdefault(405, set()).add("method_not_allowed")
    by_status.setdefault(500, set()).add("internal_error")
    return {status: sorted(found) for status, found in by_status.items()}


def problem_schema() -> Schema:
    string = Schema(type=OpenAPIType.STRING)
    return Schema(
        type=OpenAPIType.OBJECT,
        description="RFC 9457 problem details; `code` is stable (docs/, api.md error codes).",
        required=["type", "title", "status", "detail", "code"],
        properties={
            "type": string,
            "title": string,
            "status": Schema(type=OpenAPIType.INTEGER),
            "detail": string,
            "code": string,
            "field": string,
            "errors": Schema(
                type=OpenAPIType.ARRAY,
                items=Schema(
                    type=OpenAPIType.OBJECT,
                    required=["field", "message"],
                    properties={"field": string, "message": string},
                ),
            ),
        },
        additional_properties=True,  # business refusals add their facts (e.g. `headroom`)
    )


def _response(status: int, codes: list[str]) -> OpenAPIResponse:
    listed = ", ".join(f"`{code}`" for code in codes)
    headers: dict[str, OpenAPIHeader | Reference] | None = None
    if status == 401:
        headers = {"WWW-Authenticate": OpenAPIHeader(schema=Schema(type=OpenAPIType.STRING))}
    return OpenAPIResponse(
        description=f"{TITLES.get(status, 'Refused')}. Codes: {listed}.",
        headers=headers,
        content={
            PROBLEM_MEDIA_TYPE: OpenAPIMediaType(
                schema=Schema(
                    all_of=[
                        Reference(ref="#/components/schemas/Problem"),
                        Schema(
                            type=OpenAPIType.OBJECT,
                            properties={"code": Schema(type=OpenAPIType.STRING, enum=list(codes))},
                        ),
                    ]
                )
            )
        },
    )


def complete(openapi: Any) -> None:
    """Add the security scheme and the problem responses to a built `OpenAPI` object (in place)."""
    codes = _codes_by_status()
    components = openapi.components
    components.schemas = {**(components.schemas or {}), "Problem": problem_schema()}
    components.security_schemes = {
        SECURITY: SecurityScheme(
            type="http",
            scheme="bearer",
            description="`Authorization: Bearer <token>`; tokens come from `loanfund clients add`.",
        )
    }
    for path, item in (openapi.paths or {}).items():
        for method in ("get", "put", "post", "delete", "patch"):
            operation = getattr(item, method, None)
            if operation is None:
                continue
            if not path.startswith(API_PREFIX):
                operation.security = []  # /health needs no token
                if path == "/health" and operation.responses is not None:
                    operation.responses["503"] = OpenAPIResponse(
                        description="The database does not answer: `{status: degraded, database: error}`.",
                        content={
                            "application/json": OpenAPIMediaType(schema=Schema(type=OpenAPIType.OBJECT))
                        },
                    )
                continue
            operation.security = [{SECURITY: []}]
            statuses = EVERY_OPERATION + (WRITES if method != "get" else ())
            responses = dict(operation.responses or {})
            for status in statuses:
                responses[str(status)] = _response(status, codes.get(status, []))
            operation.responses = dict(sorted(responses.items()))


def on_startup(app: Litestar) -> None:
    """Completes the document once every route is registered (startup hook of `create_app`)."""
    complete(app.openapi_schema)  # the built object the served document is rendered from, once
