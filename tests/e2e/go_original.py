"""The Go original's published clients and configs (read-only, Apache-2.0), used as they ship."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest


def _default_location() -> Path:
    """shared/go-original beside the checkout (as laid for sessions and CI), or beside the
    checkout this one was cloned from when that is a local directory (a clone in /tmp)."""
    repo = Path(__file__).resolve().parents[2]
    beside = repo.parent / "shared" / "go-original"
    if beside.is_dir():
        return beside
    origin = subprocess.run(
        ["git", "-C", str(repo), "config", "--get", "remote.origin.url"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    if origin and Path(origin).is_dir():
        return Path(origin).resolve().parent / "shared" / "go-original"
    return beside


# ATRYUM_GO_ORIGINAL overrides.
GO_ORIGINAL = Path(os.environ.get("ATRYUM_GO_ORIGINAL") or _default_location())
SHARED_HOOK = GO_ORIGINAL / "examples" / "shared-agent-hook" / "atryum-hook.mjs"


def require_go_original() -> Path:
    if not SHARED_HOOK.is_file():
        pytest.fail(
            f"the Go original's examples are not at {GO_ORIGINAL}; set ATRYUM_GO_ORIGINAL to a "
            "checkout of them (these tests run its clients unchanged and do not skip)"
        )
    return GO_ORIGINAL


class SharedHook:
    """`node atryum-hook.mjs`, configured by environment as its hook settings examples do."""

    def __init__(self, url: str, state_dir: Path, **env: str) -> None:
        require_go_original()
        self.env = {
            "PATH": os.environ["PATH"],
            "HOME": str(state_dir),
            "ATRYUM_URL": url,
            "ATRYUM_STATE_DIR": str(state_dir / "hook-state"),
            "ATRYUM_POLL_MS": "50",
            **env,
        }

    def _env(self, host: str, event: str, extra: dict[str, str]) -> dict[str, str]:
        return {**self.env, "ATRYUM_HOOK_HOST": host, "ATRYUM_HOOK_EVENT": event, **extra}

    def start(self, host: str, event: str, payload: dict[str, Any], **env: str) -> Any:
        proc = subprocess.Popen(
            ["node", str(SHARED_HOOK)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self._env(host, event, env),
            text=True,
        )
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(payload))
        proc.stdin.close()
        return proc

    @staticmethod
    def finish(proc: Any, timeout: float = 60) -> dict[str, Any]:
        """The hook's JSON answer; it always exits 0 (a failure is a printed deny)."""
        proc.wait(timeout)  # its stdin is closed already; the answer is one short line
        out, err = proc.stdout.read(), proc.stderr.read()
        proc.stdout.close()
        proc.stderr.close()
        assert proc.returncode == 0, err
        lines = [line for line in out.splitlines() if line.strip()]
        assert len(lines) == 1, (out, err)
        answer: dict[str, Any] = json.loads(lines[0])
        return answer

    def run(self, host: str, event: str, payload: dict[str, Any], **env: str) -> dict[str, Any]:
        return self.finish(self.start(host, event, payload, **env))
