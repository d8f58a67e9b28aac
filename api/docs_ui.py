"""The browsable API docs at `/schema`, served wholly by the app: no CDN.

Government intranets often have no internet, and a docs page that loads its script from a CDN is blank
there. Swagger UI's files come from the `swagger-ui-py` package (which ships Swagger UI 5, the first
to read OpenAPI 3.1) and are served under `/schema/assets/`; the page embeds the OpenAPI document itself.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from litestar import Router
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.static_files import create_static_files_router

ASSETS_PATH = "/schema/assets"


def assets_directory() -> Path:
    return Path(str(files("swagger_ui") / "static"))


def docs_ui_plugin() -> SwaggerRenderPlugin:
    """Swagger UI at `/schema` (and `/schema/swagger`, where earlier versions had it)."""
    return SwaggerRenderPlugin(
        js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
        css_url=f"{ASSETS_PATH}/swagger-ui.css",
        standalone_preset_js_url=f"{ASSETS_PATH}/swagger-ui-standalone-preset.js",
        favicon=f"<link rel='icon' type='image/png' href='{ASSETS_PATH}/favicon-32x32.png'>",
        path=["/", "/swagger"],
    )


def docs_assets_router() -> Router:
    return create_static_files_router(
        path=ASSETS_PATH, directories=[assets_directory()], include_in_schema=False, name="docs_assets"
    )
