"""Operators in the browser (identity.md §2-3, §5.4), in Chromium against the real oidc-provider:
log in, approve a pending call and find your name on it; a page of another origin that
auto-posts approve/deny (and frames the UI) changes nothing; an approver cannot edit rules;
logout ends the session on the server."""

from __future__ import annotations

import http.server
import re
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import httpx2
import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from atryum.agents import service as agents
from atryum.db.tables import operator_sessions
from atryum.identity import api_tokens
from atryum.identity.operators import COOKIE
from atryum.identity.principal import CLI
from tests.identity.conftest import auth_config, bearer
from tests.idp.fixtures import Idp, run_idp
from tests.support import LiveServer, free_port
from tests.web.driver import UI

pytestmark = pytest.mark.browser
HOOK = "/api/v1/external/invocations"


@pytest.fixture(scope="module")
def login_idp() -> Iterator[Idp]:
    with run_idp(redirect_paths=("/ui/auth/callback",)) as provider:
        yield provider


@pytest.fixture
def secured(
    sqlite_engine: sa.Engine, login_idp: Idp, live_atryum: Callable[..., LiveServer]
) -> Iterator[LiveServer]:
    agents.create_manual_agent(sqlite_engine, name="Coder", agent_ids=["agent-rs"])
    with live_atryum(auth_config(login_idp), sqlite_engine) as server:
        yield server


def pending_call(server: LiveServer, idp: Idp, tool: str = "Bash") -> str:
    resp = httpx2.post(
        server.url + HOOK,
        json={"source": "claude-code", "tool": tool, "input": {"command": "ls"}},
        headers=bearer(idp.mint("agent-rs")),
        timeout=30,  # the first call fetches the provider's keys: slow on a loaded machine
    )
    assert resp.status_code == 201, resp.text
    inv_id: str = resp.json()["invocation_id"]
    return inv_id


def status_of(server: LiveServer, engine: sa.Engine, inv_id: str) -> str:
    _, admin = api_tokens.create_token(
        engine, name="checker", role="viewer", expires_in=timedelta(minutes=5), actor=CLI
    )
    resp = httpx2.get(
        f"{server.url}/api/v1/review/invocations/{inv_id}", headers=bearer(admin), timeout=30
    )
    status: str = resp.json()["status"]
    return status


def log_in(ui: UI, idp: Idp, user: str, path: str) -> None:
    """From a page that asks for a login, through the provider's login form, back to `path`."""
    ui.allow_console_error(r"401")  # the login page itself answers 401
    ui.allow_console_error(re.escape(idp.issuer))  # the provider's own development pages
    ui.goto(path)
    ui.follow(ui.page.get_by_role("link", name=re.compile(r"^Log in with ")))
    ui.page.locator("input[name=login]").fill(user)
    ui.page.locator("input[name=password]").fill("any")
    ui.page.locator("button[type=submit]").click()
    ui.page.wait_for_url(re.compile(re.escape(ui.base_url + path) + "$"))


def test_log_in_approve_and_find_your_name_on_the_call(
    secured: LiveServer, login_idp: Idp, open_ui: Callable[[LiveServer], UI]
) -> None:
    inv_id = pending_call(secured, login_idp)
    ui = open_ui(secured)
    log_in(ui, login_idp, "alice", f"/ui/invocations/{inv_id}")
    page = ui.page
    expect(page.locator("#whoami")).to_contain_text("Alice Admin")
    expect(page.locator("#whoami-role")).to_have_text("admin")
    ui.shoot("operator-logged-in")
    page.get_by_label("Reason (optional)").fill("checked by Alice")
    page.get_by_role("button", name="Approve").click()
    expect(page.locator("#invocation-status")).to_have_text("approved")
    page.reload()
    who = f"Alice Admin <{login_idp.issuer}#alice>"
    expect(page.locator("#approval-actor")).to_have_text(who)
    approved = page.locator("tr[data-event='approved']")
    expect(approved.locator("td[data-label='Who']")).to_have_text(who)

    # a change of her own is on the Audit page under her name
    ui.goto("/ui/rules/new")
    page.get_by_label("Tools").fill("rm")
    page.get_by_role("button", name="Create rule").click()
    page.wait_for_url(re.compile(r"/ui/rules\?notice=created"))
    ui.nav("Audit")
    row = page.locator("#audit-table tr[data-entity='rule']").first
    expect(row.locator(".audit-actor")).to_contain_text("Alice Admin")
    expect(row).to_contain_text("create")
    ui.shoot("audit")


class _Attacker(http.server.BaseHTTPRequestHandler):
    html = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(self.html)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def attacker() -> Iterator[Callable[[bytes], str]]:
    """A page on another origin (another port of 127.0.0.1: same site, so the Lax session
    cookie does travel with its requests)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), _Attacker)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def serve(html: bytes) -> str:
        _Attacker.html = html
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield serve
    server.shutdown()
    thread.join(10)
    server.server_close()


def test_a_page_of_another_origin_cannot_decide(
    secured: LiveServer,
    login_idp: Idp,
    open_ui: Callable[[LiveServer], UI],
    attacker: Callable[[bytes], str],
    sqlite_engine: sa.Engine,
) -> None:
    approve_me, deny_me = pending_call(secured, login_idp), pending_call(secured, login_idp)
    ui = open_ui(secured)
    log_in(ui, login_idp, "alice", "/ui/invocations")
    review = f"{secured.url}/api/v1/review/invocations"
    url = attacker(
        f"""<!doctype html><html><body>
<iframe id="framed" src="{secured.url}/ui/invocations/{approve_me}"></iframe>
<form id="f" method="post" action="{review}/{approve_me}/approve"></form>
<script>
  fetch("{review}/{deny_me}/deny", {{method: "POST", credentials: "include", mode: "no-cors",
    headers: {{"Content-Type": "text/plain"}}, body: "{{}}"}})
    .finally(() => {{ document.title = "fetched"; document.getElementById("f").submit(); }});
</script></body></html>""".encode()
    )
    page: Page = ui.page.context.new_page()
    page.on("console", lambda _msg: None)
    page.goto(url)
    # the form's post navigates the page to Atryum's answer: the refusal
    page.wait_for_url(re.compile(re.escape(f"{review}/{approve_me}/approve")))
    assert "cross-site request refused" in page.content()
    assert status_of(secured, sqlite_engine, approve_me) == "pending_approval"
    assert status_of(secured, sqlite_engine, deny_me) == "pending_approval"
    page.close()


def test_an_approver_cannot_edit_rules(
    secured: LiveServer, login_idp: Idp, open_ui: Callable[[LiveServer], UI]
) -> None:
    ui = open_ui(secured)
    log_in(ui, login_idp, "april", "/ui/rules")
    page = ui.page
    expect(page.locator("#whoami-role")).to_have_text("approver")
    expect(page.get_by_role("link", name="New rule")).to_be_hidden()
    expect(page.get_by_role("button", name="Save default policy")).to_be_hidden()
    ui.allow_console_error(r"403")
    refused = page.evaluate(
        """() => window.atryum.api("POST", "/api/v1/rules", {action: "auto_approve"})
             .then(() => "created", (err) => err.message)"""
    )
    assert refused == "April Approver has the role approver; this needs admin"
    ui.goto("/ui/rules")
    expect(page.locator("tbody tr[data-rule-id]")).to_have_count(0)


def test_logout_ends_the_session_on_the_server(
    secured: LiveServer,
    login_idp: Idp,
    open_ui: Callable[[LiveServer], UI],
    sqlite_engine: sa.Engine,
) -> None:
    ui = open_ui(secured)
    log_in(ui, login_idp, "victor", "/ui/")
    cookie = next(c for c in ui.page.context.cookies() if c["name"] == COOKIE)
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    ui.page.get_by_role("button", name="Log out").click()
    expect(ui.page.get_by_role("link", name=re.compile(r"^Log in with "))).to_be_visible()
    with sqlite_engine.connect() as conn:
        ended = conn.execute(sa.select(operator_sessions.c.ended_at)).scalars().all()
    assert ended and all(e is not None for e in ended)
    replay = httpx2.get(f"{secured.url}/api/v1/operator", cookies={COOKIE: cookie["value"]})
    assert replay.status_code == 401
