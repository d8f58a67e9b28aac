"""The fund manager's dashboard: server-rendered pages under /dashboard for people who sign in.

`DashboardPlugin` adds the routes, the templates (Jinja2 through Litestar's template engine) and the
static files (served by the app itself: government intranets have no internet).
"""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from litestar.config.app import AppConfig
from litestar.plugins import InitPlugin
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from api.dashboard import i18n, tables
from api.dashboard.routes import router
from api.dashboard.session import PREFIX

HERE = Path(__file__).parent


def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True, undefined=StrictUndefined)
    env.filters["yuan"] = i18n.yuan
    env.filters["wan"] = i18n.wan
    env.filters["ratio"] = i18n.ratio
    env.globals["cell"] = tables.cell_html
    env.globals["format_date"] = i18n.format_date
    return env


class DashboardPlugin(InitPlugin):
    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.template_config = TemplateConfig(
            instance=JinjaTemplateEngine.from_environment(environment())
        )
        app_config.route_handlers.extend(
            [
                router,
                create_static_files_router(
                    path=f"{PREFIX}/static", directories=[HERE / "static"], include_in_schema=False
                ),
            ]
        )
        return app_config
