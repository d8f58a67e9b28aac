"""Who is looking: the session cookie, CSRF tokens, the language, and the dashboard's transactions.

The dashboard lives outside `/api/v1`, so the API's unit-of-work middleware (bearer tokens) does not
wrap it: each handler opens its own connection here and, to change anything, a `Tx` (`new_tx`).
"""

from __future__ import annotations

import contextlib
import hmac
import secrets
from collections.abc import AsyncIterator, Mapping
from typing import Any

from litestar import Request
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from api.dashboard import i18n
from loanfund import uow
from loanfund.audit import Actor
from loanfund.errors import CsrfRejected
from loanfund.ids import new_id
from loanfund.users import service as users
from loanfund.users.queries import Session

SESSION_COOKIE = "lf_session"
LANG_COOKIE = "lf_lang"
# Before sign-in there is no session to bind a CSRF token to: the sign-in form's token is a
# double-submit cookie (the form's hidden field must equal the cookie, which other sites cannot read).
PRE_COOKIE = "lf_pre"
CSRF_FIELD = "_csrf"
PREFIX = "/dashboard"


class NotSignedIn(Exception):
    """No valid session: the handler answers with a redirect to the sign-in page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def engine_of(request: Request[Any, Any, Any]) -> AsyncEngine:
    engine: AsyncEngine = request.app.state.engine
    return engine


def language(request: Request[Any, Any, Any]) -> str:
    lang = request.cookies.get(LANG_COOKIE, i18n.DEFAULT)
    return lang if lang in i18n.LANGUAGES else i18n.DEFAULT


def is_tls(request: Request[Any, Any, Any]) -> bool:
    return request.url.scheme == "https"


def cookie_options(request: Request[Any, Any, Any]) -> dict[str, Any]:
    return {"httponly": True, "samesite": "lax", "secure": is_tls(request), "path": PREFIX}


async def current_session(conn: AsyncConnection, request: Request[Any, Any, Any]) -> Session:
    token = request.cookies.get(SESSION_COOKIE)
    found = await users.session(conn, token) if token else None
    if found is None:
        raise NotSignedIn(request.url.path)
    return found


@contextlib.asynccontextmanager
async def reading(request: Request[Any, Any, Any]) -> AsyncIterator[tuple[AsyncConnection, Session]]:
    """A connection for a page: the session first, then the page's reads; nothing is committed."""
    async with engine_of(request).connect() as conn:
        yield conn, await current_session(conn, request)


def check_csrf(expected: str, form: Mapping[str, Any]) -> None:
    sent = form.get(CSRF_FIELD)
    if not isinstance(sent, str) or not expected or not hmac.compare_digest(sent, expected):
        raise CsrfRejected("the form's security token is missing or wrong; reload the page")


def new_pre_token() -> str:
    return secrets.token_urlsafe(24)


def new_tx(conn: AsyncConnection, session: Session | None) -> uow.Tx:
    """The one place the dashboard makes a `Tx` (it is not under the API's middleware). Without a
    session (signing in) nobody is known to be acting: the actor is anonymous."""
    request_id = new_id("req")
    return uow.begin(conn, session.user.actor(request_id) if session else Actor(None, request_id))
