"""Helpers for tests over real HTTP: a hook-speaking client and an SSE reader thread."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import httpx2

from tests.support import wait_until

HOOK = "/api/v1/external/invocations"
REVIEW = "/api/v1/review/invocations"


class Api:
    def __init__(self, url: str) -> None:
        self.http = httpx2.Client(base_url=url, timeout=40)

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def ok(self, r: httpx2.Response, *codes: int) -> Any:
        assert r.status_code in (codes or (200,)), r.text
        return r.json() if r.content else None

    def submit(self, tool: str = "Bash", **body: Any) -> dict[str, Any]:
        payload = {"source": "claude-code", "tool": tool, "input": {"cmd": "x"}, **body}
        result: dict[str, Any] = self.ok(self.http.post(HOOK, json=payload), 200, 201)
        return result

    def poll(self, inv_id: str, wait: float = 0) -> dict[str, Any]:
        params = {"wait": wait} if wait else {}
        result: dict[str, Any] = self.ok(self.http.get(f"{HOOK}/{inv_id}", params=params))
        return result

    def decide(self, inv_id: str, verb: str, reason: str = "") -> dict[str, Any]:
        r = self.http.post(f"{REVIEW}/{inv_id}/{verb}", json={"reason": reason})
        result: dict[str, Any] = self.ok(r)
        return result

    def rule(self, action: str, **body: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.ok(
            self.http.post("/api/v1/rules", json={"action": action, **body}), 201
        )
        return result


class Poller:
    """A harness long-polling one invocation in a thread; the dict fills in when it answers."""

    def __init__(self, api: Api, inv_id: str, wait: float = 30) -> None:
        self.answer: dict[str, Any] = {}
        self.thread = threading.Thread(
            target=lambda: self.answer.update(api.poll(inv_id, wait=wait)), daemon=True
        )

    def __enter__(self) -> dict[str, Any]:
        self.thread.start()
        return self.answer

    def __exit__(self, *exc: object) -> None:
        self.thread.join(40)


class SSEReader:
    """Reads `/api/v1/review/invocations/stream` in a thread until `done(events)` holds."""

    def __init__(self, url: str, done: Callable[[list[dict[str, Any]]], bool]) -> None:
        self.url = url
        self.done = done
        self.events: list[dict[str, Any]] = []
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> SSEReader:
        self.thread.start()
        wait_until(lambda: self.error or any(e["event"] == "ready" for e in self.events))
        assert self.error is None, self.error
        return self

    def __exit__(self, *exc: object) -> None:
        self.thread.join(30)

    def _run(self) -> None:
        try:
            with (
                httpx2.Client(base_url=self.url, timeout=30) as client,
                client.stream("GET", f"{REVIEW}/stream") as r,
            ):
                event: dict[str, Any] = {}
                for line in r.iter_lines():
                    if line.startswith("event:"):
                        event["event"] = line.split(":", 1)[1].strip()
                    elif line.startswith("data:"):
                        event["data"] = json.loads(line.split(":", 1)[1].strip() or "null")
                    elif line == "" and "event" in event:
                        self.events.append(event)
                        event = {}
                        if self.done(self.events):
                            return
        except BaseException as exc:
            self.error = exc

    def statuses(self, inv_id: str) -> list[str]:
        return [
            e["data"]["status"]
            for e in self.events
            if e["event"] == "invocation" and e["data"]["invocation_id"] == inv_id
        ]
