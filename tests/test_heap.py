"""A serving process's long-lived objects are frozen out of the collector's full collections."""

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
from atryum.sync import gc_hold
from tests.support import make_config
config = make_config(server={"database_url": "sqlite:///" + sys.argv[1]})
seen = {}
with TestClient(create_app(build_context(config), background=False)):
    seen["in_process"] = gc.get_freeze_count()  # an app a test runs: nothing frozen
app = create_app(build_context(config), background=False, settle_heap=True)
with TestClient(app):
    seen["started"] = [gc.get_freeze_count(), len(gc.get_objects())]
    app.state.mcp.pool  # the first use of the MCP proxy loads the SDK
    seen["mcp"] = gc.get_freeze_count()
    with gc_hold.held() as settle:  # a sync run: it unfreezes everything when it ends
        settle()
    seen["after_run"] = gc.get_freeze_count()
print(json.dumps(seen))
"""


def test_a_serving_process_freezes_start_up_the_mcp_sdk_and_again_after_a_run(
    tmp_path: Path,
) -> None:
    out = subprocess.run(
        [sys.executable, "-c", CODE, str(tmp_path / "atryum.db")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    seen = json.loads(out.strip().splitlines()[-1])
    assert seen["in_process"] == 0, seen
    frozen, tracked = seen["started"]
    # What a full collection still walks after start-up is a small part of what exists.
    assert frozen > 50_000 and tracked < frozen / 5, seen
    assert seen["mcp"] > frozen + 10_000, seen  # the SDK's modules joined them
    assert seen["after_run"] >= seen["mcp"] * 0.9, seen  # frozen again, not given back
