"""Jinja2 environment and the page response every UI route returns."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
from fastapi.responses import HTMLResponse

from atryum.config import Config

WEB_DIR = Path(__file__).parent
STATIC_DIR = WEB_DIR / "static"
STATIC_PATH = "/ui/static"

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(WEB_DIR / "templates"),
    autoescape=jinja2.select_autoescape(["html"]),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def when(value: datetime | None) -> str:
    """A timestamp as operators read it: `2025-03-01 14:05 UTC`."""
    if value is None:
        return "—"
    return value.strftime("%Y-%m-%d %H:%M UTC")


def iso(value: datetime | None) -> str:
    return value.isoformat() if value else ""


_env.filters["when"] = when
_env.filters["iso"] = iso


def instance_name(config: Config) -> str:
    """The public host when one is configured, else the listen address."""
    host = urlsplit(config.server.public_base_url).netloc
    return host or config.server.listen_addr


def page(
    config: Config, template: str, *, title: str, nav: str, status: int = 200, **context: Any
) -> HTMLResponse:
    html = _env.get_template(template).render(
        title=title,
        nav=nav,
        instance=instance_name(config),
        vm_configured=config.backend.enabled,
        static=STATIC_PATH,
        **context,
    )
    return HTMLResponse(html, status_code=status)
