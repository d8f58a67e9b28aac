"""`/schema` works without internet: the page and every file it references come from the app itself."""

from __future__ import annotations

import re
import socket
from html.parser import HTMLParser
from typing import Any

import pytest

from tests.support import World


class _References(HTMLParser):
    """Every URL the page makes a browser load: scripts, stylesheets, icons, images, frames."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value and (name == "src" or (name == "href" and tag == "link")):
                self.urls.append(value)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a socket to the outside fails the test (the app runs in-process)."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"network access attempted: {args[:1]}")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.mark.parametrize("page", ["/schema", "/schema/swagger"])
async def test_docs_page_and_every_asset_load_from_the_app(world: World, no_network: None, page: str) -> None:
    response = await world.http.get(page)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    parser = _References()
    parser.feed(html)
    urls = parser.urls
    assert any(url.endswith(".js") for url in urls) and any(url.endswith(".css") for url in urls), urls
    # Nothing outside the app: no scheme, no host, no protocol-relative URL, anywhere in the page.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html), html[:2000]
    for url in urls:
        assert url.startswith("/schema/"), url
        asset = await world.http.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 1000, url
        if url.endswith(".css"):
            # Stylesheets may pull in more files; only inline data is allowed.
            for target in re.findall(r"url\(\s*['\"]?([^'\")]+)", asset.text):
                assert target.startswith("data:"), (url, target[:80])
    # The spec is embedded in the page, so the UI needs no further request to show the API.
    assert '"openapi":"3.1.0"' in html and '"/api/v1/funds"' in html


async def test_asset_paths_do_not_reach_outside_the_assets(world: World) -> None:
    for path in ("/schema/assets/../../pyproject.toml", "/schema/assets/%2e%2e/%2e%2e/pyproject.toml"):
        response = await world.http.get(path)
        assert response.status_code == 404, path
