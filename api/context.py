"""One unit of work per API request: authenticate, claim the idempotency key, run the handler in a
`loanfund.uow.Tx`, and commit the effect together with the stored response — or roll it all back.
The handlers' services write through the Tx; committing it writes their deferred parts (audit, events,
the hot postings) after the stored response, so nothing here writes to the ledger or the audit log.

Refused requests (4xx) change nothing: their transaction rolls back, and only the response is kept
for the idempotency key. Server errors (5xx) release the key so that a retry runs again.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import msgspec
from litestar import Request
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from api import limits
from api.errors import INTERNAL_ERROR, PROBLEM_MEDIA_TYPE, problem_body
from loanfund import clients, idempotency, uow
from loanfund.audit import Actor
from loanfund.clients import Client
from loanfund.config import Settings
from loanfund.errors import LoanfundError, MalformedRequest, RequestInProgress, Unauthenticated
from loanfund.ids import new_id

log = logging.getLogger("loanfund.api")

KEY_RE = re.compile(r"[\x21-\x7e]{1,128}")
READ_METHODS = {"GET", "HEAD", "OPTIONS"}


@dataclass(frozen=True)
class RequestContext:
    conn: AsyncConnection
    client: Client
    # The request's unit of work: services write through it, the middleware commits it.
    tx: uow.Tx
    request_id: str
    method: str
    has_idempotency_key: bool
    # A malformed Idempotency-Key is refused (400) by `api.auth.authorize`, after scope (404) and role
    # (403) as the contract orders refusals; the middleware refuses it too if a handler did not.
    idempotency_key_invalid: bool = False

    @property
    def today(self) -> date:
        """The business date, fixed when the request starts."""
        return self.tx.today


def request_context(request: Request[Any, Any, Any]) -> RequestContext:
    ctx: RequestContext = request.scope["state"]["loanfund_ctx"]
    return ctx


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


async def _send_buffered(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _send_problem(send: Send, exc: LoanfundError, request_id: str) -> None:
    body = problem_body(exc)
    headers = [(b"content-type", PROBLEM_MEDIA_TYPE.encode()), (b"x-request-id", request_id.encode())]
    if body["status"] == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await _send_buffered(send, body["status"], headers, msgspec.json.encode(body))


async def _end_autocommit(conn: AsyncConnection) -> bool:
    """Back to transactions at the default isolation level (see `UnitOfWorkMiddleware`); returns False."""
    await conn.commit()  # ends SQLAlchemy's own bookkeeping: in autocommit mode nothing is sent
    level = conn.default_isolation_level
    if level is not None:
        await conn.execution_options(isolation_level=level)
    return False


def _bearer_token(scope: Scope) -> str:
    """The token of `Authorization: Bearer …`; refused before anything is read or looked up."""
    authorization = _header(scope, b"authorization") or ""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("send Authorization: Bearer <token>")
    return token.strip()


def _known(client: Client | None) -> Client:
    # Without autocommit (SQLite) the lookup's transaction stays open: the idempotency claim (or,
    # without a key, the handler) continues it, which saves a ROLLBACK and a BEGIN per request.
    if client is None:
        raise Unauthenticated("the token is unknown or revoked")
    return client


def invalid_key_error() -> MalformedRequest:
    return MalformedRequest("Idempotency-Key must be 1–128 printable ASCII characters")


class UnitOfWorkMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        litestar_app = scope["litestar_app"]
        engine: AsyncEngine = litestar_app.state.engine
        settings: Settings = litestar_app.state.settings
        request_id = _header(scope, b"x-request-id") or new_id("req")
        if not re.fullmatch(r"[\x21-\x7e]{1,64}", request_id):
            request_id = new_id("req")
        method = scope["method"]

        replayed = False

        async def replay_receive() -> Message:
            nonlocal replayed
            if replayed:
                return {"type": "http.disconnect"}
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        key = _header(scope, b"idempotency-key")
        key_invalid = key is not None and method not in READ_METHODS and not KEY_RE.fullmatch(key)
        keyed = key is not None and method not in READ_METHODS and not key_invalid
        # A keyed write on PostgreSQL whose declared body fits the limit: its body is read first, with no
        # connection held (a slow or unauthenticated client ties up none), then one statement looks up
        # the token and claims a new key. Refusals keep their order: if the body or the request line is
        # refused, the token is looked up first, so that a bad token still answers 401.
        length = limits.declared_length(scope)
        body_first = (
            engine.dialect.name == "postgresql"
            and keyed
            and length is not None
            and length <= settings.max_body_bytes
            and _header(scope, b"authorization") is not None
        )
        body_refused: LoanfundError | None = None
        if body_first:
            try:
                body = await limits.read_request(scope, receive, settings.max_body_bytes)
            except LoanfundError as exc:
                body_refused = exc
            except limits.Disconnected:
                return

        async with engine.connect() as conn:
            # On PostgreSQL the token lookup and the claim of a new key are single statements that need
            # no transaction of their own: in autocommit mode each is one round trip, with no BEGIN or
            # COMMIT around it. The pool restores the isolation level if this request ends early.
            autocommit = conn.dialect.name == "postgresql"
            if autocommit:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
            try:
                token = _bearer_token(scope)
                claim = None
                outcome: idempotency.Claim | idempotency.StoredResponse | None = None
                fingerprint = ""
                if body_first:
                    assert key is not None
                    if body_refused is not None:
                        _known(await clients.authenticate(conn, token))
                        raise body_refused
                    fingerprint = idempotency.fingerprint(method, scope["path"], body)
                    found, outcome = await clients.authenticate_and_claim(
                        conn, token, key=key, fingerprint=fingerprint
                    )
                    client = _known(found)
                    autocommit = await _end_autocommit(conn)
                else:
                    client = _known(await clients.authenticate(conn, token))
                    body = await limits.read_request(
                        scope, receive, settings.max_body_bytes, on_wait=limits.release_while_waiting(conn)
                    )
                if keyed:
                    assert key is not None
                    fingerprint = fingerprint or idempotency.fingerprint(method, scope["path"], body)
                    if autocommit:
                        outcome = await idempotency.claim_new(
                            conn, client_id=client.id, key=key, fingerprint=fingerprint
                        )
                        autocommit = await _end_autocommit(conn)
                    if outcome is None:  # a key seen before (or SQLite): decided under the key's row lock
                        outcome = await idempotency.claim(
                            conn,
                            client_id=client.id,
                            key=key,
                            fingerprint=fingerprint,
                            timeout=timedelta(seconds=settings.idempotency_claim_timeout_seconds),
                        )
                    if isinstance(outcome, idempotency.StoredResponse):
                        headers = [(k.encode(), v.encode()) for k, v in outcome.headers.items()]
                        headers.append((b"idempotent-replayed", b"true"))
                        headers.append((b"x-request-id", request_id.encode()))
                        await _send_buffered(send, outcome.status, headers, outcome.body)
                        return
                    claim = outcome
            except LoanfundError as exc:
                await _send_problem(send, exc, request_id)
                return
            except limits.Disconnected:
                return
            if autocommit:
                autocommit = await _end_autocommit(conn)

            actor = Actor(client.id, request_id)
            ctx = RequestContext(
                conn=conn,
                client=client,
                request_id=request_id,
                method=method,
                has_idempotency_key=key is not None,
                idempotency_key_invalid=key_invalid,
                tx=uow.begin(conn, actor),
            )
            scope.setdefault("state", {})["loanfund_ctx"] = ctx
            status, headers, response_body = await self._run(scope, replay_receive, conn)
            tx = ctx.tx
            if key_invalid and status < 400:
                await tx.rollback()
                await _send_problem(send, invalid_key_error(), request_id)
                return
            headers.append((b"x-request-id", request_id.encode()))
            try:
                if method in READ_METHODS or status >= 400:
                    await tx.rollback()
                    if claim is not None:
                        await self._settle_refused(conn, claim, status, headers, response_body)
                else:
                    stored = _stored(status, headers, response_body)
                    if not await tx.commit(key=None if claim is None else uow.KeyCompletion(claim, stored)):
                        # A retry took the claim over after the timeout; its effect is the one that counts.
                        taken = RequestInProgress(
                            "this request's key was taken over by a retry; nothing was changed"
                        )
                        await _send_problem(send, taken, request_id)
                        return
            except Exception:
                log.exception("commit failed for %s %s", method, scope["path"])
                await tx.rollback()
                if claim is not None:
                    await idempotency.release(conn, claim)
                    await conn.commit()
                status, headers, response_body = _internal_error(request_id)
            await _send_buffered(send, status, headers, response_body)

    async def _run(
        self, scope: Scope, receive: Receive, conn: AsyncConnection
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        captured: dict[str, Any] = {"status": 500, "headers": [], "body": []}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
                captured["headers"] = list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                captured["body"].append(message.get("body", b""))

        if not conn.in_transaction():
            await conn.begin()
        try:
            await self.app(scope, receive, capture)
        except Exception:
            log.exception("unhandled error in %s %s", scope["method"], scope["path"])
            await conn.rollback()
            return _internal_error(_header(scope, b"x-request-id") or "")
        return captured["status"], captured["headers"], b"".join(captured["body"])

    async def _settle_refused(
        self,
        conn: AsyncConnection,
        claim: idempotency.Claim,
        status: int,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
    ) -> None:
        await conn.begin()
        if status >= 500:
            await idempotency.release(conn, claim)
        else:
            await idempotency.complete(conn, claim, _stored(status, headers, body))
        await conn.commit()


KEPT_HEADERS = {b"content-type", b"location"}


def _stored(status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> idempotency.StoredResponse:
    kept = {k.decode("latin-1"): v.decode("latin-1") for k, v in headers if k.lower() in KEPT_HEADERS}
    return idempotency.StoredResponse(status, kept, body)


def _internal_error(request_id: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    return 500, [(b"content-type", PROBLEM_MEDIA_TYPE.encode())], msgspec.json.encode(INTERNAL_ERROR)
