"""`atryum run -config <Go config>` as its Dockerfile runs it (go-compat.md §1): every
configuration the Go original ships starts a real process that answers its probes, naming each
section it does not implement in one warning; a misspelt key still refuses to start, and an
enabled `[[auth]]` block is enforced (never run open).

Overrides, only where the Go file points at things that do not exist here: the listen address
(a free port, kept in Go's all-interfaces form `":port"`), and the Kubernetes file's PostgreSQL
host (`ATRYUM_DATABASE_URL`, the test database). `ATRYUM_ALLOW_UNAUTHENTICATED=true` is set
because identity.md §4 refuses a non-loopback listener without `[[auth]]` unless that is allowed
(the Go original served such a listener open).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx2
import pytest

from tests.e2e.go_original import GO_ORIGINAL, require_go_original
from tests.e2e.processes import AtryumProcess

OPEN = {"ATRYUM_ALLOW_UNAUTHENTICATED": "true"}
UNIMPLEMENTED = ("managed_agents", "otel", "plans", "auth_debug", "upstreams")


def kubernetes_config() -> str:
    """The `atryum.toml` embedded in the OpenShift manifest's Secret (a YAML block scalar)."""
    text = (GO_ORIGINAL / "examples" / "kubernetes" / "atryum-openshift.yaml").read_text()
    match = re.search(r"^  atryum\.toml: \|\n((?:    .*\n|\n)+)", text, re.MULTILINE)
    assert match, "no atryum.toml in the Kubernetes manifest"
    return "".join(line[4:] + "\n" for line in match.group(1).splitlines())


def go_configs() -> list[str]:
    require_go_original()
    return sorted(str(p.relative_to(GO_ORIGINAL)) for p in GO_ORIGINAL.rglob("*.toml"))


def warned(log: str) -> list[str]:
    return re.findall(r"level=WARNING .*\[(\w+)\] is accepted for compatibility", log)


@pytest.mark.parametrize("name", go_configs())
def test_each_go_toml_starts_as_shipped(tmp_path: Path, name: str) -> None:
    source = GO_ORIGINAL / name
    atryum = AtryumProcess(tmp_path, "go", config_path=source, env=OPEN).start()
    try:
        health = httpx2.get(f"{atryum.url}/healthz", timeout=5)
        assert health.json() == {"status": "ok", "database": "ok"}
        assert httpx2.get(f"{atryum.url}/readyz", timeout=5).status_code == 200
    finally:
        atryum.stop()
    log = atryum.log_path.read_text()
    assert f"Uvicorn running on http://0.0.0.0:{atryum.port}" in log  # ":port" = all interfaces
    present = [s for s in UNIMPLEMENTED if re.search(rf"^\[\[?{s}\]", source.read_text(), re.M)]
    assert warned(log) == present and present  # one warning each, in a stable order
    assert (tmp_path / "atryum.db").is_file()  # server.database_path, relative to the cwd


def test_the_kubernetes_config_starts(tmp_path: Path, db_url: str) -> None:
    path = tmp_path / "atryum.toml"
    path.write_text(kubernetes_config())
    env = {**OPEN, "ATRYUM_DATABASE_URL": db_url.replace("postgresql+psycopg", "postgresql")}
    atryum = AtryumProcess(tmp_path, "k8s", config_path=path, env=env).start()
    try:
        # the manifest's liveness and readiness probes both use /healthz
        assert httpx2.get(f"{atryum.url}/healthz", timeout=5).status_code == 200
        assert httpx2.get(f"{atryum.url}/readyz", timeout=5).status_code == 200
    finally:
        atryum.stop()
    assert warned(atryum.log_path.read_text()) == ["auth_debug"]


def test_log_level_sets_the_level(tmp_path: Path) -> None:
    path = tmp_path / "atryum.toml"
    path.write_text(kubernetes_config().replace('log_level = "info"', 'log_level = "warn"'))
    env = {**OPEN, "ATRYUM_DATABASE_URL": f"sqlite:///{tmp_path / 'a.db'}"}
    atryum = AtryumProcess(tmp_path, "quiet", config_path=path, env=env).start()
    atryum.stop()
    log = atryum.log_path.read_text()
    assert warned(log) == ["auth_debug"]
    assert "level=INFO" not in log and "atryum started" not in log


def run_refused(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "atryum.toml"
    path.write_text(text)
    return subprocess.run(
        [sys.executable, "-m", "atryum.cli", "run", f"-config={path}"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )


def test_a_misspelt_key_still_fails_naming_file_and_key(tmp_path: Path) -> None:
    example = (GO_ORIGINAL / "atryum.example.toml").read_text()
    assert 'log_level = "info"' in example
    done = run_refused(tmp_path, example.replace('log_level = "info"', 'log_levle = "info"'))
    assert done.returncode == 2
    assert "atryum.toml: server.log_levle: unknown key" in done.stderr
    done = run_refused(tmp_path, kubernetes_config().replace("[defaults]", "[default]"))
    assert done.returncode == 2 and "default: unknown key" in done.stderr


def test_an_enabled_auth_block_is_enforced(tmp_path: Path) -> None:
    """A Go config with an `[[auth]]` block: agent routes need a token, nothing runs open."""
    path = tmp_path / "atryum.toml"
    auth = '\n[[auth]]\nenabled = true\nissuer = "https://idp.invalid/realms/atryum"\n'
    path.write_text(kubernetes_config() + auth + 'audience = "atryum"\n')
    env = {"ATRYUM_DATABASE_URL": f"sqlite:///{tmp_path / 'a.db'}"}
    atryum = AtryumProcess(tmp_path, "auth", config_path=path, env=env).start()
    try:
        call = {"source": "claude-code", "tool": "Bash", "input": {}}
        r = httpx2.post(f"{atryum.url}/api/v1/external/invocations", json=call, timeout=10)
        assert r.status_code == 401 and "Bearer" in r.headers["www-authenticate"]
        assert httpx2.get(f"{atryum.url}/api/v1/rules", timeout=10).status_code == 401
    finally:
        atryum.stop()
