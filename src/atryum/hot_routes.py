"""The gate's hot routes (hook submit and report, the MCP endpoint), served without FastAPI's
routing and dependency solving.

A profile of one process deciding 300 hook calls/s put half of its CPU in the HTTP stack, most
of it in FastAPI: walking the nested routers to the route, solving a dozen small dependencies,
parsing the body with `json` and then validating the objects. A hot route is declared once
(`HotPaths.route`): as a FastAPI route, which gives the OpenAPI document and serves whatever the
shortcut does not take, and as an entry of `HotRoutes`, the innermost middleware, which serves
the requests it matches itself. Every middleware in front of it still runs (Host check,
security headers, operator gate, body limits), then the app-wide checks (`APP_CHECKS`). An
endpoint reads its body and parameters with `body` and `param`, which refuse what FastAPI would
refuse, and every error is answered by `http_errors.response_for`, as the app's handlers answer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from atryum.auth import check_machine_key
from atryum.body_limits import is_json
from atryum.http_errors import HANDLED, response_for
from atryum.limits import refuse_nul_params

Endpoint = Callable[[Request], Awaitable[Response]]
E = TypeVar("E", bound=Endpoint)
M = TypeVar("M", bound=BaseModel)

#: What every route checks before its own work (FastAPI runs them as app-wide dependencies).
APP_CHECKS = (check_machine_key, refuse_nul_params)


@dataclass(frozen=True)
class Param:
    """A header, query or path parameter of a hot route: documented and checked from here."""

    where: Literal["header", "query", "path"]
    name: str
    description: str
    max_length: int | None = None

    def doc(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "string"}
        if self.max_length is not None:
            schema["maxLength"] = self.max_length
        return {
            "name": self.name,
            "in": self.where,
            "required": self.where == "path",
            "description": self.description,
            "schema": schema,
        }


def _invalid(loc: tuple[str | int, ...], kind: str, message: str) -> RequestValidationError:
    return RequestValidationError([{"type": kind, "loc": loc, "msg": message}])


def param(request: Request, spec: Param) -> str | None:
    """A header or query parameter, checked (a path parameter is `request.path_params[name]`)."""
    assert spec.where != "path"
    source = request.headers if spec.where == "header" else request.query_params
    value = source.get(spec.name)
    if value is not None and spec.max_length is not None and len(value) > spec.max_length:
        raise _invalid(
            (spec.where, spec.name),
            "string_too_long",
            f"String should have at most {spec.max_length} characters",
        )
    return value


async def body(request: Request, model: type[M]) -> M:
    """The JSON body as `model`, parsed and validated in one pass (no intermediate objects)."""
    raw = await request.body()
    if not raw:
        raise _invalid(("body",), "missing", "Field required")
    if not is_json(request.scope):
        message = "send the body as JSON (Content-Type: application/json)"
        raise _invalid(("body",), "model_attributes_type", message)
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False, include_context=False)
        raise RequestValidationError(
            [{**err, "loc": ("body", *err["loc"])} for err in errors]
        ) from None


class HotPaths:
    """The hot routes of one router."""

    def __init__(self, router: APIRouter) -> None:
        self.router = router
        self.routes: list[Route] = []

    def route(
        self,
        method: str,
        path: str,
        *,
        body: type[BaseModel] | None = None,
        params: Sequence[Param] = (),
        responses: dict[int | str, dict[str, Any]] | None = None,
        **api: Any,
    ) -> Callable[[E], E]:
        extra: dict[str, Any] = {}
        if params:
            extra["parameters"] = [p.doc() for p in params]
        if body is not None:
            schema = body.model_json_schema()
            assert "$defs" not in schema, "a hot route's body has no nested models"
            extra["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": schema}},
            }
        documented = dict(responses or {})
        if extra:
            documented.setdefault(422, {"description": "invalid request"})

        def register(endpoint: E) -> E:
            self.router.add_api_route(
                path,
                endpoint,
                methods=[method],
                openapi_extra=extra or None,
                responses=documented,
                **api,
            )
            self.routes.append(Route(self.router.prefix + path, endpoint, methods=[method]))
            return endpoint

        return register


class HotRoutes:
    """ASGI middleware (the innermost): serves the hot routes' requests, passes on the rest."""

    def __init__(self, app: ASGIApp, *, routes: Sequence[Route]) -> None:
        self.app = app
        self.routes = tuple(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for route in self.routes:
                match, child = route.matches(scope)
                if match is Match.FULL:
                    await _serve(route.endpoint, {**scope, **child}, receive, send)
                    return
        await self.app(scope, receive, send)


async def _serve(endpoint: Endpoint, scope: Scope, receive: Receive, send: Send) -> None:
    request = Request(scope, receive)
    try:
        for check in APP_CHECKS:
            await check(request)
        response: Response | None = await endpoint(request)
    except HANDLED as exc:  # anything else is a bug: the server-error middleware answers 500
        response = response_for(exc)
    assert response is not None
    await response(scope, receive, send)
