"""A harness's side of the gateway over real HTTP: submit a call, poll it, decide it."""

from __future__ import annotations

from typing import Any

import httpx2

HOOK = "/api/v1/external/invocations"
REVIEW = "/api/v1/review/invocations"


class Hook:
    def __init__(self, url: str) -> None:
        self.http = httpx2.Client(base_url=url, timeout=20)

    def __enter__(self) -> Hook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def submit(self, tool: str = "Bash", **body: Any) -> dict[str, Any]:
        payload = {"source": "claude-code", "tool": tool, "input": {"command": "ls"}, **body}
        return _ok(self.http.post(HOOK, json=payload), 200, 201)

    def poll(self, inv_id: str) -> dict[str, Any]:
        return _ok(self.http.get(f"{HOOK}/{inv_id}"))

    def decide(self, inv_id: str, verb: str, reason: str = "") -> dict[str, Any]:
        return _ok(self.http.post(f"{REVIEW}/{inv_id}/{verb}", json={"reason": reason}))

    def rules(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = _ok(self.http.get("/api/v1/rules"))["items"]
        return items


def _ok(r: httpx2.Response, *statuses: int) -> dict[str, Any]:
    """The response's JSON body, after checking its status (200 unless others are named)."""
    assert r.status_code in (statuses or (200,)), r.text
    body: dict[str, Any] = r.json()
    return body
