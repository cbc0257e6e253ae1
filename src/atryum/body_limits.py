"""Every request body is refused at the door when it is too big, nested too deep, or carries
NaN/Infinity (not JSON, and PostgreSQL's json type refuses them): 413/422 with a message.

Before this, a 100 MB hook submission was stored (the server grew from 330 MB to 1.1 GB), and a
hook input nested ~900 levels deep was stored too: afterwards every review list containing it
answered 500. One ASGI middleware covers every route, present and future (hook, MCP, API, UI),
so no route can forget it. It buffers the body (at most the cap), checks it, and replays it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from itertools import accumulate
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# A JSON string (escapes included): the unrolled form has no nested repeats, so it is linear.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}
_CONSTANTS = re.compile(rb"NaN|Infinity")


def _json_problem(raw: bytes, max_depth: int) -> str | None:
    bare = _STRING.sub(b'""', raw)  # what is left: structure, numbers, literals
    if _CONSTANTS.search(bare):
        return "the body contains NaN or Infinity, which are not JSON numbers; send null or text"
    brackets = bare.translate(None, _NOT_BRACKETS)
    depth = max(accumulate(map(_STEP.__getitem__, brackets)), default=0)
    if depth > max_depth:
        return f"the body's JSON is nested {depth} levels deep; at most {max_depth} are accepted"
    return None


def is_json(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            media = value.split(b";", 1)[0].strip().lower()
            return media == b"application/json" or media.endswith(b"+json")
    return False


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


class BodyLimits:
    """ASGI middleware: cap body size (413) and JSON depth/constants (422) on every request."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, max_depth: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_depth = max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        too_big = (
            f"the request body is larger than {self.max_bytes} bytes "
            "([limits] max_body_bytes); send less"
        )
        declared = _declared_length(scope)
        if declared is not None and declared > self.max_bytes:
            await _refuse(send, 413, too_big)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([], message, receive), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await _refuse(send, 413, too_big)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        problem = _json_problem(body, self.max_depth) if body and is_json(scope) else None
        if problem:
            await _refuse(send, 422, problem)
            return
        await self.app(scope, _replay([body], None, receive), send)


def _replay(bodies: Iterable[bytes], first: Message | None, receive: Receive) -> Receive:
    pending: list[Message] = [first] if first else []
    pending += [{"type": "http.request", "body": b, "more_body": False} for b in bodies]

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


async def _refuse(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": {"message": message}}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


# The deepest value a read shows: below the serialisers' own recursion limits (pydantic-core
# gives up near 255 levels), and the most `[limits] max_json_depth` may allow.
MAX_SHOWN_DEPTH = 200


def displayable(value: Any, *, max_depth: int = MAX_SHOWN_DEPTH) -> Any:
    """`value` as stored, or a note in its place when it cannot be shown as JSON (nested deeper
    than `max_depth`, or NaN/Infinity stored before the limits existed): a read never fails on
    what a write once let in."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return {"unreadable": "the stored value contains NaN or Infinity"}
        if isinstance(item, dict | list):
            if depth > max_depth:
                return {"unreadable": f"the stored value is nested deeper than {max_depth} levels"}
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return value
