"""The app's start-up loads only what every process needs (bench/startup.py measures it)."""

from __future__ import annotations

import json
import subprocess
import sys

#: Loaded on first use: the MCP proxy's SDK, migrations, bearer tokens, UI pages, PostgreSQL.
LAZY = ("mcp", "mcp_types", "alembic", "jwt", "cryptography", "jinja2", "psycopg")


def test_building_the_app_loads_none_of_the_first_use_packages() -> None:
    code = (
        "import json, sys\n"
        "from atryum.app import build_context, create_app\n"
        "from tests.support import make_config\n"
        "create_app(build_context(make_config(server={'database_url': 'sqlite://'})))\n"
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({LAZY!r}))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out.strip().splitlines()[-1]) == []
