"""Domain errors to RFC 9457 problem+json. The only place that knows which code is which status."""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.plugins.problem_details import ProblemDetailsException

from loanfund.errors import LoanfundError, ValidationFailed
from loanfund.money import Amount, format_fen

log = logging.getLogger("loanfund.api")

STATUS_BY_CODE = {
    "unauthenticated": 401,
    "forbidden": 403,
    "same_maker_checker": 403,
    "not_found": 404,
    "malformed_request": 400,
    "unknown_field": 400,
    "idempotency_key_required": 400,
    "validation_error": 422,
    "future_date": 422,
    "invalid_id_number": 422,
    "ineligible": 422,
    "unknown_policy_edition": 422,
    "leverage_multiple_too_high": 422,
    "principal_exceeds_guarantee": 422,
    "term_too_long": 422,
    "rate_above_ceiling": 422,
    "overpayment": 422,
    "idempotency_key_reused": 422,
    # State and business refusals.
    "invalid_state": 409,
    "duplicate": 409,
    "request_in_progress": 409,
    "no_agreement": 409,
    "agreement_suspended": 409,
    "leverage_exceeded": 409,
    "insufficient_fund_cash": 409,
    "insufficient_deposit": 409,
    "guarantor_limit_exceeded": 409,
    "not_approved": 409,
    "guarantee_lapsed": 409,
    "extension_not_allowed": 409,
    "claim_too_early": 409,
    "missing_reference_rate": 409,
    "period_not_closed": 409,
    "insufficient_subsidy_budget": 409,
    "payload_too_large": 413,
    "rate_limited": 429,
    "sign_in_failed": 401,
    "sign_in_locked": 429,
    "csrf_rejected": 403,
    "schema_out_of_date": 503,
}
# Every code of `loanfund.errors` has its status here (tests/unit/test_error_codes.py checks it).

PROBLEM_MEDIA_TYPE = "application/problem+json"


def status_for(code: str) -> int:
    return STATUS_BY_CODE[code]


def _jsonable(value: Any) -> Any:
    if isinstance(value, Amount):
        return format_fen(value.fen)
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def problem_body(exc: LoanfundError) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": f"urn:loanfund:problem:{exc.code}",
        "title": exc.title,
        "status": status_for(exc.code),
        "detail": exc.detail,
        "code": exc.code,
    }
    if isinstance(exc, ValidationFailed):
        body["errors"] = exc.errors
    for key, value in exc.facts.items():
        body.setdefault(key, _jsonable(value))
    return body


def to_problem(exc: LoanfundError) -> ProblemDetailsException:
    body = problem_body(exc)
    status = body.pop("status")
    return ProblemDetailsException(
        status_code=status,
        type_=body.pop("type"),
        title=body.pop("title"),
        detail=body.pop("detail"),
        extra=body,
        headers={"WWW-Authenticate": "Bearer"} if status == 401 else None,
    )


HTTP_CODES = {
    400: "malformed_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


# Query parameters whose Python names differ from their names on the wire (`from` is a keyword);
# Litestar reports the Python name, the client must see the one it sent.
QUERY_ALIASES = {"date_from": "from", "date_to": "to"}


def _wire_name(key: str) -> str:
    return QUERY_ALIASES.get(key, key)


def http_exception_to_problem(exc: HTTPException) -> ProblemDetailsException:
    """Litestar's own refusals (unknown route, wrong method, bad query type) in the same shape."""
    if isinstance(exc, ProblemDetailsException):
        return exc
    status = exc.status_code
    extra: dict[str, Any] = {}
    detail = str(exc.detail)
    if status == 400 and isinstance(exc.extra, list) and exc.extra:
        # Query and path parameters that failed Litestar's own parsing.
        status = 422
        code = "validation_error"
        extra["errors"] = [
            {"field": _wire_name(str(item.get("key", ""))), "message": str(item.get("message", ""))}
            for item in exc.extra
            if isinstance(item, dict)
        ]
        # Litestar's detail repeats the whole URL, query string included, which may carry an ID number.
        detail = "Invalid parameter: " + ", ".join(error["field"] for error in extra["errors"])
    else:
        code = HTTP_CODES.get(status, "internal_error" if status >= 500 else "invalid_state")
    extra["code"] = code
    return ProblemDetailsException(
        status_code=status,
        type_=f"urn:loanfund:problem:{code}",
        title=code.replace("_", " ").capitalize(),
        detail=detail,
        extra=extra,
        headers=exc.headers,
    )


INTERNAL_ERROR: dict[str, Any] = {
    "type": "urn:loanfund:problem:internal_error",
    "title": "Internal error",
    "status": 500,
    "detail": "The server failed; nothing was changed. The error is logged.",
    "code": "internal_error",
}


def internal_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return Response(INTERNAL_ERROR, status_code=500, media_type=PROBLEM_MEDIA_TYPE)
