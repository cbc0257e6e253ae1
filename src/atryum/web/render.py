"""Jinja2 environment and the page response every UI route returns."""

from __future__ import annotations

import functools
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from fastapi.responses import HTMLResponse
from markupsafe import Markup

from atryum.config import Config
from atryum.context import AppContext
from atryum.db.types import utcnow
from atryum.gateway import store
from atryum.gateway.models import PENDING
from atryum.identity.login import LOGIN_PATH, login_blocks
from atryum.identity.operators import current_view
from atryum.identity.principal import Role

if TYPE_CHECKING:
    import jinja2

WEB_DIR = Path(__file__).parent
STATIC_DIR = WEB_DIR / "static"
STATIC_PATH = "/ui/static"


def when(value: datetime | None) -> str:
    """A timestamp as operators read it: `2025-03-01 14:05 UTC`."""
    if value is None:
        return "—"
    return value.strftime("%Y-%m-%d %H:%M UTC")


def moment(value: datetime | None) -> str:
    """A timestamp to the second, for event histories: `2025-03-01 14:05:09 UTC`."""
    if value is None:
        return "—"
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


def iso(value: datetime | None) -> str:
    return value.isoformat() if value else ""


@functools.cache
def _env() -> jinja2.Environment:
    """Made on the first page (Jinja2's imports are most of a second of start-up)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(WEB_DIR / "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(when=when, iso=iso, moment=moment)
    return env


def instance_name(config: Config) -> str:
    """The public host when one is configured, else the listen address."""
    host = urlsplit(config.server.public_base_url).netloc
    return host or config.server.listen_addr


def pending_count(ctx: AppContext) -> int:
    """Calls waiting for a human, for the header's badge: overdue ones are left out rather than
    expired here (the gateway runtime's sweeper expires them; a page render only reads)."""
    with ctx.engine.connect() as conn:
        pending = store.count_by_status(conn).get(PENDING, 0)
        return pending - len(store.overdue_pending(conn, utcnow()))


def page(
    ctx: AppContext, template: str, *, title: str, nav: str, status: int = 200, **context: Any
) -> HTMLResponse:
    config = ctx.config
    view = current_view()

    def can(role: Role) -> bool:
        """Whether the operator's role allows it (the server refuses it anyway)."""
        return view is not None and view.can(role)

    def needs(role: Role) -> Markup:
        """Attributes that hide a control the operator's role may not use."""
        return Markup("") if can(role) else Markup(f' hidden data-needs="{role}"')

    html = (
        _env()
        .get_template(template)
        .render(
            title=title,
            nav=nav,
            instance=instance_name(config),
            vm_configured=config.backend.enabled,
            static=STATIC_PATH,
            pending=pending_count(ctx) if view is not None else 0,
            operator=view,
            can=can,
            needs=needs,
            **context,
        )
    )
    return HTMLResponse(html, status_code=status)


def refusal_page(ctx: AppContext, *, status: int, message: str, next_path: str) -> HTMLResponse:
    """401 (with a login link per issuer that allows UI login) or 403, as a page."""
    logins = [
        (f"{LOGIN_PATH}?issuer={i}&next={next_path}", urlsplit(b.issuer).netloc or b.issuer)
        for i, b in login_blocks(ctx.config)
    ]
    title = "Log in" if status == 401 else "Not allowed"
    return page(
        ctx, "login.html", title=title, nav="", status=status, message=message, logins=logins
    )


def not_found(ctx: AppContext, message: str) -> HTMLResponse:
    return page(ctx, "error.html", title="Not found", nav="", status=404, message=message)


def render_fragment(template: str, **context: Any) -> HTMLResponse:
    """A piece of a page (no header), for pages that re-read part of themselves."""
    return HTMLResponse(_env().get_template(template).render(**context))
