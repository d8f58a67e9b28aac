"""Body size (authenticated first, refused while streaming) and per-client rate limits (issue 8)."""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncEngine

from api.app import create_app
from loanfund import clients, uow
from loanfund.config import Settings
from tests.servers import Server
from tests.support import SETUP, Api, World, assert_problem

PATH = "/api/v1/funds/HRB/contributions"


async def test_a_large_body_is_refused_after_the_token_and_before_the_handler(
    world: World, admin: Api
) -> None:
    big = b'{"reference": "' + b"x" * 1_100_000 + b'"}'
    anonymous = await world.http.post(PATH, content=big, headers={"content-type": "application/json"})
    assert_problem(anonymous, 401, "unauthenticated")
    body = assert_problem(await admin.post("/funds/HRB/contributions", content=big), 413, "payload_too_large")
    assert body["limit_bytes"] == 1_000_000
    # Just under the limit is read and judged as usual (here: no such fund).
    fits = b'{"reference": "' + b"x" * 990_000 + b'"}'
    assert_problem(await admin.post("/funds/HRB/contributions", content=fits), 404, "not_found")


@pytest.fixture
async def small_limits(
    engine: AsyncEngine, settings: Settings
) -> AsyncIterator[tuple[AsyncTestClient, str, str]]:
    async with uow.transaction(engine, SETUP) as tx:
        _, one = await clients.add_client(tx, role="admin", name="one", region_prefix=None)
        _, two = await clients.add_client(tx, role="admin", name="two", region_prefix=None)
    app = create_app(replace(settings, max_body_bytes=100, rate_limit="5/minute"))
    async with AsyncTestClient(app) as http:
        yield http, one, two


async def test_limits_are_settings(small_limits: tuple[AsyncTestClient, str, str]) -> None:
    http, one, two = small_limits
    headers = {"Authorization": f"Bearer {one}", "content-type": "application/json"}
    response = await http.post(
        "/api/v1/banks", content=b'{"code": "B1", "name": "' + b"n" * 100 + b'"}', headers=headers
    )
    assert_problem(response, 413, "payload_too_large")
    statuses = [(await http.get("/api/v1/banks", headers=headers)).status_code for _ in range(4)]
    assert statuses == [200] * 4, statuses  # the POST above counted too
    limited = await http.get("/api/v1/banks", headers=headers)
    assert_problem(limited, 429, "rate_limited")
    # Another client has its own budget; /health is not limited.
    assert (await http.get("/api/v1/banks", headers={"Authorization": f"Bearer {two}"})).status_code == 200
    assert (await http.get("/health")).status_code == 200


def test_rate_limit_setting_is_checked() -> None:
    from api.limits import rate_limit_middleware

    assert rate_limit_middleware(None) == []
    for bad in ("fast", "10/fortnight", "0/minute", "-1/second"):
        with pytest.raises(ValueError):
            rate_limit_middleware(bad)


def _raw_request(port: int, head: bytes, send_bytes: int, chunk: bytes) -> tuple[bytes, int]:
    """Sends `head`, then up to `send_bytes` of body in `chunk`s while nothing comes back; returns
    the response's first bytes and how much body was sent before it came."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head)
        sent = 0
        sock.setblocking(False)
        response = b""
        while sent < send_bytes:
            try:
                response = sock.recv(4096)
                if response:
                    break
            except BlockingIOError:
                pass
            try:
                sock.sendall(chunk)
                sent += len(chunk)
            except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                time.sleep(0.01)
        sock.setblocking(True)
        deadline = time.monotonic() + 20
        while not response and time.monotonic() < deadline:
            response = sock.recv(4096)
        return response, sent


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_real_server_answers_before_reading_a_huge_body(world: World, db_url: str) -> None:
    """The issue's reproduction: 200 MB announced (or streamed) at a real server."""
    admin = await world.caller("admin")
    with Server(db_url) as server:
        head = (
            b"POST " + PATH.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 200000000\r\n\r\n"
        )
        response, sent = _raw_request(server.port, head, 200_000_000, b"0" * 65536)
        assert response.startswith(b"HTTP/1.1 401"), response[:200]
        assert sent < 20_000_000, f"the server read {sent} bytes before refusing"

        auth = f"Authorization: Bearer {admin.token}\r\n".encode()
        response, sent = _raw_request(
            server.port, head.replace(b"Host: x\r\n", b"Host: x\r\n" + auth), 200_000_000, b"0" * 65536
        )
        assert response.startswith(b"HTTP/1.1 413"), response[:200]
        assert b"payload_too_large" in response

        chunked = (
            b"POST "
            + PATH.encode()
            + b" HTTP/1.1\r\nHost: x\r\n"
            + auth
            + b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        piece = b"10000\r\n" + b"0" * 65536 + b"\r\n"
        response, sent = _raw_request(server.port, chunked, 200_000_000, piece)
        assert response.startswith(b"HTTP/1.1 413"), response[:200]
        assert sent < 20_000_000, f"the server read {sent} bytes before refusing"
