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
        r = self.http.post(HOOK, json=payload)
        assert r.status_code in (200, 201), r.text
        result: dict[str, Any] = r.json()
        return result

    def poll(self, inv_id: str) -> dict[str, Any]:
        r = self.http.get(f"{HOOK}/{inv_id}")
        assert r.status_code == 200, r.text
        result: dict[str, Any] = r.json()
        return result

    def decide(self, inv_id: str, verb: str, reason: str = "") -> dict[str, Any]:
        r = self.http.post(f"{REVIEW}/{inv_id}/{verb}", json={"reason": reason})
        assert r.status_code == 200, r.text
        result: dict[str, Any] = r.json()
        return result

    def rules(self) -> list[dict[str, Any]]:
        r = self.http.get("/api/v1/rules")
        assert r.status_code == 200, r.text
        items: list[dict[str, Any]] = r.json()["items"]
        return items
