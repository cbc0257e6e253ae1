"""Long-lived objects are frozen out of the garbage collector's full collections."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

# In a process of its own: freezing is for the whole process.
CODE = """
import gc, json, sys
from fastapi.testclient import TestClient
from atryum.app import build_context, create_app
from tests.support import make_config
config = make_config(server={"database_url": "sqlite:///" + sys.argv[1]})
app = create_app(build_context(config), background=False)
with TestClient(app):
    started = [gc.get_freeze_count(), len(gc.get_objects())]
    app.state.mcp.pool  # the first use of the MCP proxy loads the SDK
    print(json.dumps({"started": started, "mcp": gc.get_freeze_count()}))
"""


def test_start_up_and_the_mcp_sdk_are_frozen(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", CODE, str(tmp_path / "atryum.db")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    seen = json.loads(out.strip().splitlines()[-1])
    frozen, tracked = seen["started"]
    # What a full collection still walks after start-up is a small part of what exists.
    assert frozen > 50_000 and tracked < frozen / 5, seen
    assert seen["mcp"] > frozen + 10_000, seen  # the SDK's modules joined them
