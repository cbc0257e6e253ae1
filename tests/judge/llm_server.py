"""A local LLM server for the judge tests: OpenAI chat completions and Anthropic messages.

A real HTTP server on a free port. Each test scripts what it answers, one step per request
(`script(...)`), or gives a `responder` that picks a step from the request; every request is
captured (path, headers, JSON body) so a test can assert on exactly what the judge sent.

    OpenAI / OpenAI-compatible: base_url = server.openai_url  (POST /v1/chat/completions)
    Anthropic:                  base_url = server.url         (POST /v1/messages)
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support import free_port


@dataclass(frozen=True)
class Step:
    """What to answer one request with."""

    kind: str  # answer | text | refusal | status | raw
    verdict: Any = None
    confidence: Any = 0.9
    reason: str = "scripted"
    text: str = ""
    status: int = 200
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    usage: tuple[int, int] = (120, 30)


def answer(verdict: Any, confidence: Any = 0.9, reason: str = "scripted", **kw: Any) -> Step:
    return Step("answer", verdict=verdict, confidence=confidence, reason=reason, **kw)


def text(content: str, **kw: Any) -> Step:
    """The model's message is this text (prose, truncated JSON, empty…)."""
    return Step("text", text=content, **kw)


def refusal(**kw: Any) -> Step:
    return Step("refusal", **kw)


def status(code: int, body: str = '{"error": {"message": "scripted failure"}}', **kw: Any) -> Step:
    return Step("status", status=code, text=body, **kw)


def raw(body: str, **kw: Any) -> Step:
    """A 200 whose body is exactly this (not the provider's shape)."""
    return Step("raw", text=body, **kw)


@dataclass
class Captured:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def system(self) -> str:
        """The system instructions as sent (either wire format)."""
        if "system" in self.body:
            return str(self.body["system"])
        return "\n".join(
            str(m["content"]) for m in self.body.get("messages", []) if m.get("role") == "system"
        )

    @property
    def user(self) -> str:
        return "\n".join(
            str(m["content"]) for m in self.body.get("messages", []) if m.get("role") == "user"
        )


Responder = Callable[[Captured], Step]


class LlmServer:
    def __init__(self, responder: Responder | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.openai_url = f"{self.url}/v1"
        self.requests: list[Captured] = []
        self.responder = responder
        self._steps: deque[Step] = deque()
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> LlmServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(10)

    def script(self, *steps: Step) -> None:
        with self._lock:
            self._steps.extend(steps)

    @property
    def calls(self) -> int:
        with self._lock:
            return len(self.requests)

    def _next(self, captured: Captured) -> Step:
        with self._lock:
            self.requests.append(captured)
            if self._steps:
                return self._steps.popleft()
        if self.responder is not None:
            return self.responder(captured)
        return status(500, '{"error": {"message": "the test scripted no answer"}}')

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                headers = {k.lower(): v for k, v in self.headers.items()}
                captured = Captured(self.path, headers, body)
                step = server._next(captured)
                if step.delay and server._closing.wait(step.delay):
                    return
                anthropic = self.path.endswith("/messages")
                code, payload = _render(step, body, anthropic=anthropic)
                data = payload.encode()
                self.send_response(code)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for k, v in step.headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        return Handler


def _render(step: Step, request: dict[str, Any], *, anthropic: bool) -> tuple[int, str]:
    if step.kind == "status":
        return step.status, step.text
    if step.kind == "raw":
        return 200, step.text
    model = str(request.get("model", "scripted"))
    verdict = {"verdict": step.verdict, "confidence": step.confidence, "reason": step.reason}
    inp, out = step.usage
    if anthropic:
        content: list[dict[str, Any]] = []
        stop = "tool_use"
        if step.kind == "answer":
            content = [
                {"type": "tool_use", "id": "tu_1", "name": "record_verdict", "input": verdict}
            ]
        elif step.kind == "text":
            content = [{"type": "text", "text": step.text}] if step.text else []
            stop = "end_turn"
        else:
            stop = "refusal"
        return 200, json.dumps(
            {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": content,
                "stop_reason": stop,
                "usage": {"input_tokens": inp, "output_tokens": out},
            }
        )
    message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None}
    if step.kind == "answer":
        message["content"] = json.dumps(verdict)
    elif step.kind == "text":
        message["content"] = step.text
    else:
        message["refusal"] = "I can't help with that."
    return 200, json.dumps(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": inp, "completion_tokens": out, "total_tokens": inp + out},
        }
    )
