"""Operator web UI: server-rendered pages under /ui/ with small hand-written JavaScript.

`router` holds the page routes (and the `/` → `/ui/` redirect); the static assets are served from
`STATIC_DIR` at `STATIC_PATH`.
"""

from atryum.web.render import STATIC_DIR, STATIC_PATH
from atryum.web.ui import router

__all__ = ["STATIC_DIR", "STATIC_PATH", "router"]
