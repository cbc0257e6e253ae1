"""UI sessions and the browser guards (identity.md §2-3, §5.4): the OIDC login over HTTP against
the real provider, session expiry and logout, CSRF and same-origin, Host allow-list, headers."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from atryum import cli
from atryum.agents import service as agents
from atryum.db.tables import operator_logins, operator_sessions
from atryum.db.types import utcnow
from atryum.identity import sessions
from atryum.identity.operators import COOKIE, SECURE_COOKIE
from tests.identity.conftest import PUBLIC, auth_config, http_login
from tests.identity.test_operators import RULE, submit
from tests.idp.fixtures import Idp
from tests.support import make_config

SAME_ORIGIN = {"Origin": "http://testserver"}


def _csrf(client: TestClient) -> str:
    page = client.get("/ui/rules", headers={"Accept": "text/html"})
    assert page.status_code == 200, page.text
    return page.text.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]


def _login_client(op_idp: Idp, make_client: Any, **operator: Any) -> TestClient:
    config = auth_config(op_idp, server={"public_base_url": PUBLIC}, operator=operator)
    client: TestClient = make_client(config)
    return client


def test_login_gives_an_opaque_session_with_the_role_from_the_claim(
    op_idp: Idp, make_client: Any, engine: sa.Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = _login_client(op_idp, make_client)
    done = http_login(op_idp, client, "april")
    assert done.status_code == 303 and done.headers["location"] == "/ui/rules"
    cookie = done.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "SameSite=lax" in cookie
    value = client.cookies[COOKIE]
    assert "." not in value  # not a JWT: the tokens stayed on the server
    me = client.get("/api/v1/operator").json()
    assert me == {
        "issuer": op_idp.issuer,
        "subject": "april",
        "name": "April Approver",
        "method": "session",
        "role": "approver",
    }
    page = client.get("/ui/rules", headers={"Accept": "text/html"}).text
    assert "April Approver" in page and 'id="whoami-role">approver<' in page
    with engine.connect() as conn:
        stored = conn.execute(sa.select(operator_sessions.c.id_hash)).scalars().all()
        assert conn.execute(sa.select(sa.func.count()).select_from(operator_logins)).scalar() == 0
    assert value not in stored and len(stored) == 1
    code = parse_qs(urlsplit(str(done.request.url)).query)["code"][0]
    csrf_token = _csrf(client)
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("atryum"))
    assert "ui login" in ours
    for secret in (value, code, csrf_token, op_idp.login_client.client_secret):
        assert secret not in ours
        assert secret not in client.get("/metrics").text


def test_a_person_without_a_role_gets_no_session(op_idp: Idp, make_client: Any) -> None:
    client = _login_client(op_idp, make_client)
    done = http_login(op_idp, client, "nora")
    assert done.status_code == 403
    assert "has no Atryum role" in done.text
    assert COOKIE not in client.cookies
    assert client.get("/api/v1/operator").status_code == 401


def test_a_replayed_or_forged_callback_is_refused(op_idp: Idp, make_client: Any) -> None:
    client = _login_client(op_idp, make_client)
    done = http_login(op_idp, client, "alice")
    assert done.status_code == 303
    again = client.get(str(done.request.url))
    assert again.status_code == 400 and "unknown or expired" in again.text
    assert client.get("/ui/auth/callback?code=x&state=made-up").status_code == 400
    assert client.get("/ui/auth/callback?error=access_denied").status_code == 401


def test_cookie_changes_need_the_csrf_token_and_the_same_origin(
    op_idp: Idp, make_client: Any, engine: sa.Engine
) -> None:
    client = _login_client(op_idp, make_client)
    http_login(op_idp, client, "alice")
    token = _csrf(client)
    assert client.post("/api/v1/rules", json=RULE, headers=SAME_ORIGIN).status_code == 403
    wrong = {**SAME_ORIGIN, "X-CSRF-Token": "nope"}
    assert client.post("/api/v1/rules", json=RULE, headers=wrong).status_code == 403
    no_origin = {"X-CSRF-Token": token}
    assert client.post("/api/v1/rules", json=RULE, headers=no_origin).status_code == 403
    evil = {"Origin": "http://evil.example", "X-CSRF-Token": token}
    resp = client.post("/api/v1/rules", json=RULE, headers=evil)
    assert resp.status_code == 403 and "cross-site" in resp.json()["error"]["message"]
    site = {"Sec-Fetch-Site": "cross-site", "X-CSRF-Token": token}
    assert client.post("/api/v1/rules", json=RULE, headers=site).status_code == 403
    assert client.get("/api/v1/rules").json()["items"] == []
    ok = client.post("/api/v1/rules", json=RULE, headers={**SAME_ORIGIN, "X-CSRF-Token": token})
    assert ok.status_code == 201, ok.text
    fetch = {"Sec-Fetch-Site": "same-origin", "X-CSRF-Token": token}
    assert client.post("/api/v1/rules", json=RULE, headers=fetch).status_code == 201


def test_logout_ends_the_session_on_the_server(op_idp: Idp, make_client: Any) -> None:
    client = _login_client(op_idp, make_client)
    http_login(op_idp, client, "alice")
    value = client.cookies[COOKIE]
    token = _csrf(client)
    assert client.post("/ui/auth/logout", headers=SAME_ORIGIN).status_code == 403  # no token
    assert (
        client.post("/ui/auth/logout", headers={"Origin": "http://evil.example"}).status_code == 403
    )
    out = client.post("/ui/auth/logout", headers={**SAME_ORIGIN, "X-CSRF-Token": token})
    assert out.status_code == 204
    # the old cookie, replayed, no longer works: the session ended on the server
    replay = TestClient(client.app, cookies={COOKIE: value})
    assert replay.get("/api/v1/operator").status_code == 401


def test_sessions_expire_when_idle_and_after_their_lifetime(
    op_idp: Idp, make_client: Any, engine: sa.Engine
) -> None:
    client = _login_client(op_idp, make_client, session_idle_minutes=30)
    http_login(op_idp, client, "victor")
    assert client.get("/api/v1/rules").status_code == 200
    with engine.begin() as conn:
        conn.execute(
            operator_sessions.update().values(last_seen_at=utcnow() - timedelta(minutes=31))
        )
    assert client.get("/api/v1/rules").status_code == 401
    http_login(op_idp, client, "victor")
    with engine.begin() as conn:
        conn.execute(
            operator_sessions.update()
            .where(operator_sessions.c.ended_at.is_(None))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    assert client.get("/api/v1/rules").status_code == 401


def test_an_admin_ends_a_persons_sessions(
    op_idp: Idp, make_client: Any, db_url: str, tmp_path: Any
) -> None:
    client = _login_client(op_idp, make_client)
    http_login(op_idp, client, "victor")
    assert client.get("/api/v1/rules").status_code == 200
    path = tmp_path / "atryum.toml"
    path.write_text(f'[server]\ndatabase_url = "{db_url}"\n')
    args = ["session", "end", "--subject", "victor", "--issuer", op_idp.issuer, "-c", str(path)]
    result = CliRunner().invoke(cli.app, args)
    assert result.exit_code == 0 and "ended 1 session(s) of victor" in result.output
    assert client.get("/api/v1/rules").status_code == 401


def test_over_https_the_cookie_is_host_prefixed(op_idp: Idp, engine: sa.Engine) -> None:
    config = auth_config(op_idp)
    session_id = sessions.create_session(
        engine,
        issuer=op_idp.issuer,
        subject="alice",
        name="Alice",
        role="admin",
        settings=config.operator,
    )
    from atryum.app import build_context, create_app

    app = create_app(build_context(config, engine), background=False)
    with TestClient(app, base_url="https://testserver") as secure:
        secure.cookies.set(COOKIE, session_id)
        assert secure.get("/api/v1/operator").status_code == 401  # plain name: not over https
        secure.cookies.clear()
        secure.cookies.set(SECURE_COOKIE, session_id)
        assert secure.get("/api/v1/operator").json()["name"] == "Alice"


def test_other_host_names_are_refused(make_client: Any) -> None:
    client = make_client(make_config())
    for host in ("evil.example", "evil.example:8080", "127.0.0.1.evil.example"):
        resp = client.get("/api/v1/rules", headers={"Host": host})
        assert resp.status_code == 400, host
        assert "allowed_hosts" in resp.json()["error"]["message"]
    for host in ("127.0.0.1:8080", "localhost:8080", "[::1]:8080", "testserver"):
        assert client.get("/api/v1/rules", headers={"Host": host}).status_code == 200, host
    assert client.get("/healthz", headers={"Host": "10.1.2.3:8080"}).status_code == 200


def test_pages_send_the_security_headers(make_client: Any) -> None:
    client = make_client(make_config())
    for path in ("/ui/", "/ui/rules", "/api/v1/rules", "/ui/static/app.js"):
        headers = client.get(path).headers
        csp = headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp, path
        assert "unsafe-inline" not in csp
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "same-origin"
        assert headers["x-frame-options"] == "DENY"


def test_cross_site_changes_are_refused_even_without_auth(
    make_client: Any, engine: sa.Engine
) -> None:
    client = make_client(make_config())
    agents.create_manual_agent(engine, name="Coder", agent_ids=["coder"])
    inv = submit(client, "coder")["invocation_id"]
    for headers in (
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
    ):
        resp = client.post(f"/api/v1/review/invocations/{inv}/approve", headers=headers)
        assert resp.status_code == 403, headers
    assert client.get(f"/api/v1/review/invocations/{inv}").json()["status"] == "pending_approval"
    # a script on the machine (no browser headers) and the UI itself still work
    ok = client.post(f"/api/v1/review/invocations/{inv}/approve", headers=SAME_ORIGIN)
    assert ok.status_code == 200
