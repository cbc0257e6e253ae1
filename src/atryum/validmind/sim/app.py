"""The simulator's HTTP surface: the ValidMind API Atryum uses (validmind-api.md) under
`/api/atryum/unstable`, and an unauthenticated `/admin` API to drive it."""

from __future__ import annotations

import html
import json
import logging
import re
import socket
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import httpx2
import uvicorn
from fastapi import Body, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from atryum.validmind.sim.notify import Notifier, NotifyConfig
from atryum.validmind.sim.state import (
    MODEL_CONFIGS,
    SimConflictError,
    SimNotFoundError,
    SimState,
)

log = logging.getLogger(__name__)

API_PREFIX = "/api/atryum/unstable"
SERVICE_NAME = "ValidMind simulator"
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MALFORMED_BODY = '{"org_cuid": "org", "results": [{"cuid": "c1", "name": "trunc'


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message}}, status_code=status, headers=headers)


@dataclass(frozen=True)
class Caller:
    mode: Literal["machine", "api_key"]
    org: str | None  # the org an API key is bound to


# ---------------------------------------------------------------------- request bodies
class CharterPreviewBody(BaseModel):
    agent_vm_cuid: str = Field(min_length=1)
    charter_field_key: str = "charter"


class EvaluateBody(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    model_config_cuid: str = Field(min_length=1)
    org_cuid: str | None = None
    agent_vm_cuid: str | None = None
    agent_tags: list[str] = Field(default_factory=list)
    charter_field_key: str | None = None
    server_name: str
    tool_name: str = Field(min_length=1)
    tool_args: dict[str, Any] | None = None
    context: Any = None


class _Admin(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OrgBody(_Admin):
    cuid: str = Field(min_length=1)
    name: str


class RecordTypeBody(_Admin):
    org_cuid: str
    slug: str = Field(min_length=1)
    name: str
    cuid: str | None = None


class CustomFieldBody(_Admin):
    org_cuid: str
    slug: str
    key: str = Field(min_length=1)
    name: str
    field_type: str = "text"


class RecordBody(_Admin):
    org_cuid: str
    slug: str
    name: str
    custom_fields: dict[str, Any] = Field(default_factory=dict)
    cuid: str | None = None


class RecordPatch(_Admin):
    name: str | None = None
    custom_fields: dict[str, Any] | None = None


class BulkBody(_Admin):
    org_cuid: str
    slug: str
    count: int = Field(ge=0, le=1_000_000)
    charter_bytes: int = Field(default=600, ge=0, le=1_000_000)
    name_prefix: str = "Bulk agent"
    charter_field_key: str = "charter"


class NotifyBody(_Admin):
    atryum_url: str = ""
    mode: Literal["none", "sync", "event"] = "none"
    api_key: str | None = None
    api_secret: str | None = None
    webhook_secret: str | None = None


# ---------------------------------------------------------------------- charters and verdicts
_TAG = re.compile(r"<[^>]+>")
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")


def charter_text(custom_fields: dict[str, Any], key: str) -> str | None:
    """`custom_fields[key]`, else `custom_fields.model[key]`, when it is a string."""
    value = custom_fields.get(key)
    if not isinstance(value, str):
        model = custom_fields.get("model")
        value = model.get(key) if isinstance(model, dict) else None
    return value if isinstance(value, str) else None


def _plain(text: str) -> str:
    text = re.sub(r"</(p|li|div|h\d)>|<br\s*/?>", "\n", text, flags=re.IGNORECASE)
    return html.unescape(_TAG.sub("", text))


_KINDS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("prohibited", "Must not", ("may not", "must not", "never", "not allowed", "prohibited")),
    ("requires_approval", "Needs a human", ("human", "approval", "approve", "sign-off")),
    ("allowed", "May", ("may ", "may:", "can ", "allowed", "is permitted")),
)


_LABEL = re.compile(r"^([A-Z][A-Za-z ,'-]{0,40}):\s*(.*)$", re.DOTALL)
_DEFAULT_HEADERS = {"context": "Context", **{kind: header for kind, header, _ in _KINDS}}


def _classify(sentence: str) -> str:
    lowered = sentence.lower()
    for kind, _, words in _KINDS:
        if any(w in lowered for w in words):
            return kind
    return "context"


def charter_segments(text: str) -> list[dict[str, str]]:
    """Split a charter into what the agent may do, must not do, and what needs a human. A
    sentence starting with a label ("May not: ...") gives its segment that header."""
    segments: dict[str, dict[str, Any]] = {}
    for sentence in (s.strip() for s in _SENTENCE.split(_plain(text))):
        if not sentence:
            continue
        kind = _classify(sentence)
        label = _LABEL.match(sentence)
        body = label.group(2).strip() if label else sentence
        if kind not in segments:
            header = label.group(1).strip() if label else _DEFAULT_HEADERS[kind]
            segments[kind] = {"kind": kind, "header": header, "parts": []}
        if body:
            segments[kind]["parts"].append(body)
    return [
        {"kind": s["kind"], "header": s["header"], "text": " ".join(s["parts"])}
        for s in segments.values()
    ]


def _tool_tokens(tool_name: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", tool_name)
    return [t for t in re.split(r"[^a-z0-9]+", spaced.lower()) if t]


def judge(tool_name: str, *, strict: bool = False) -> tuple[str, str, float]:
    """The deterministic verdict: destructive tools are denied, deployments need a human."""
    lowered = tool_name.lower()
    tokens = _tool_tokens(tool_name)
    if "delete" in lowered or {"rm", "drop", "destroy", "purge"} & set(tokens):
        return "denied", "it deletes or destroys data, which the charter does not allow", 0.97
    if "deploy" in lowered:
        return "human_approval", "deployments change production and need a human", 0.9
    readonly = {"get", "list", "read", "search", "describe", "fetch", "view", "query"}
    if strict and not readonly & set(tokens):
        return "human_approval", "the strict judge sends every non-read action to a human", 0.8
    return "approved", "it is within what the charter allows", 0.92


# ---------------------------------------------------------------------- the app
def create_sim_app(state: SimState, *, notifier: Notifier | None = None) -> FastAPI:
    """The simulator app over `state`. Record changes are sent to Atryum by `notifier` once
    `PUT /admin/notify` configures it."""
    notifier = notifier or Notifier()
    state.add_listener(notifier)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        notifier.close()

    app = FastAPI(title="ValidMind simulator", version="0.1.0", lifespan=lifespan)
    app.state.sim_state = state
    app.state.notifier = notifier

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.message, exc.headers)

    @app.exception_handler(SimNotFoundError)
    async def _not_found(_: Request, exc: SimNotFoundError) -> JSONResponse:
        return _error(404, str(exc))

    @app.exception_handler(SimConflictError)
    async def _conflict(_: Request, exc: SimConflictError) -> JSONResponse:
        return _error(409, str(exc))

    @app.exception_handler(ValueError)
    async def _invalid(_: Request, exc: ValueError) -> JSONResponse:
        return _error(422, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg', 'invalid')}"
            for err in exc.errors()
        )
        return _error(422, f"invalid request: {problems}")

    # ------------------------------------------------------------------ helpers
    def caller(request: Request) -> Caller:
        h = request.headers
        mk, ms = h.get("x-machine-key"), h.get("x-machine-secret")
        if mk is not None or ms is not None:
            if state.check_machine(mk or "", ms or ""):
                return Caller("machine", None)
            raise ApiError(401, "invalid machine user credentials (X-MACHINE-KEY/X-MACHINE-SECRET)")
        ak, asec = h.get("x-api-key"), h.get("x-api-secret")
        if ak is not None or asec is not None:
            if state.check_api_key(ak or "", asec or ""):
                return Caller("api_key", state.api_key_org)
            raise ApiError(401, "invalid API key credentials (X-API-KEY/X-API-SECRET)")
        raise ApiError(
            401,
            "authentication required: send X-MACHINE-KEY and X-MACHINE-SECRET, "
            "or X-API-KEY and X-API-SECRET",
        )

    def check_org_access(who: Caller, org_cuid: str) -> dict[str, Any]:
        if who.mode == "api_key" and org_cuid != who.org:
            raise ApiError(
                403, f"this API key is bound to organization {who.org!r}, not {org_cuid!r}"
            )
        return state.org(org_cuid)

    def resolve_org(request: Request, who: Caller, org_cuid: str | None) -> dict[str, Any]:
        cuid = org_cuid or request.headers.get("x-org-cuid") or who.org
        if not cuid:
            raise ApiError(400, "org_cuid is required (query parameter or X-Org-CUID header)")
        return check_org_access(who, cuid)

    def faults_for(endpoint: str) -> dict[str, Any]:
        """Take the faults for this request; wait out a delay; raise an injected status."""
        faults = state.take_faults(endpoint)
        if not faults:
            return faults
        delay = faults.get("delay_seconds")
        if delay:
            time.sleep(delay)
        status = faults.get("status")
        if status is not None:
            headers = {}
            if "retry_after" in faults:
                headers["Retry-After"] = str(faults["retry_after"])
            raise _FaultResponse(status, faults.get("body"), headers)
        return faults

    def respond(payload: dict[str, Any], faults: dict[str, Any], status: int = 200) -> Response:
        if faults.get("malformed_json"):
            return Response(MALFORMED_BODY, status_code=200, media_type="application/json")
        return JSONResponse(payload, status_code=status)

    @app.exception_handler(_FaultResponse)
    async def _fault(_: Request, exc: _FaultResponse) -> Response:
        if isinstance(exc.body, str):
            return PlainTextResponse(exc.body, status_code=exc.status, headers=exc.headers)
        body = exc.body or {"error": {"message": f"simulated fault: HTTP {exc.status}"}}
        return JSONResponse(body, status_code=exc.status, headers=exc.headers)

    # ------------------------------------------------------------------ ValidMind API
    @app.get(API_PREFIX + "/connection")
    def connection(request: Request) -> Response:
        who = caller(request)
        header_org = request.headers.get("x-org-cuid")
        org = resolve_org(request, who, None) if (who.org or header_org) else None
        faults = faults_for("connection")
        return respond(
            {
                "ok": True,
                "auth_mode": who.mode,
                "machine_user_cuid": state.machine_user_cuid if who.mode == "machine" else None,
                "service_name": SERVICE_NAME,
                "org_cuid": org["cuid"] if org else None,
                "org_name": org["name"] if org else None,
            },
            faults,
        )

    @app.get(API_PREFIX + "/organizations")
    def organizations(request: Request) -> Response:
        who = caller(request)
        faults = faults_for("organizations")
        orgs = state.orgs()
        if who.mode == "api_key":
            orgs = [o for o in orgs if o["cuid"] == who.org]
        return respond(
            {
                "items": orgs,
                "total": len(orgs),
                "auth_mode": who.mode,
                "single_org": who.mode == "api_key",
            },
            faults,
        )

    @app.get(API_PREFIX + "/primary-record-types")
    def primary_record_types(request: Request, org_cuid: str | None = None) -> Response:
        who = caller(request)
        org = resolve_org(request, who, org_cuid)
        faults = faults_for("primary-record-types")
        items = state.record_types(org["cuid"])
        return respond({"items": items, "total": len(items)}, faults)

    @app.get(API_PREFIX + "/custom-fields")
    def custom_fields(
        request: Request,
        primary_record_type_slug: Annotated[str, Query(min_length=1)],
        org_cuid: str | None = None,
    ) -> Response:
        who = caller(request)
        org = resolve_org(request, who, org_cuid)
        faults = faults_for("custom-fields")
        items = state.custom_fields(org["cuid"], primary_record_type_slug)
        return respond({"items": items, "total": len(items)}, faults)

    @app.get(API_PREFIX + "/agents")
    def agents(
        request: Request,
        primary_record_type_slug: Annotated[str, Query(min_length=1)],
        org_cuid: str | None = None,
        page: Annotated[int, Query(ge=1)] = 1,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    ) -> Response:
        who = caller(request)
        org = resolve_org(request, who, org_cuid)
        faults = faults_for("agents")
        slug = primary_record_type_slug
        out_org = org
        if faults.get("wrong_org"):
            others = [o for o in state.orgs() if o["cuid"] != org["cuid"]]
            out_org = others[0] if others else {"cuid": org["cuid"] + "-other", "name": "Other"}
        if faults.get("empty_answer"):
            state.custom_fields(org["cuid"], slug)  # an unknown record type is still a 404
            payload: dict[str, Any] = {
                "org_cuid": out_org["cuid"],
                "org_name": out_org["name"],
                "results": [],
                "total": 0,
                "page": page,
                "limit": limit,
                "next_page": None,
            }
            return respond(payload, faults)
        served_page = 1 if faults.get("ignore_paging") else page
        offset = (served_page - 1) * limit
        results, total = state.active_records(org["cuid"], slug, offset=offset, limit=limit)
        last_page = max(1, -(-total // limit))
        cutoffs = []
        if "truncate_after_page" in faults:
            cutoffs.append(faults["truncate_after_page"])
        if "truncate_pages" in faults:
            cutoffs.append(max(0, last_page - faults["truncate_pages"]))
        if cutoffs and served_page > min(cutoffs):
            results = []
        if faults.get("drop_cuid") and offset == 0 and results:
            results[0]["cuid"] = ""
        payload = {
            "org_cuid": out_org["cuid"],
            "org_name": out_org["name"],
            "results": results,
            "total": total,
        }
        if not faults.get("ignore_paging"):  # a server that ignores paging knows nothing of it
            payload["page"] = page
            payload["limit"] = limit
            payload["next_page"] = page + 1 if offset + limit < total else None
        return respond(payload, faults)

    @app.post(API_PREFIX + "/charter-preview")
    def charter_preview(request: Request, body: CharterPreviewBody) -> Response:
        who = caller(request)
        record = _readable_record(state, who, body.agent_vm_cuid)
        faults = faults_for("charter-preview")
        text = charter_text(record["custom_fields"], body.charter_field_key) or ""
        segments = charter_segments(text)
        combined = "\n\n".join(f"{s['header']}:\n{s['text']}" for s in segments)
        return respond({"segments": segments, "combined": combined}, faults)

    @app.post(API_PREFIX + "/evaluate")
    def evaluate(request: Request, body: EvaluateBody) -> Response:
        started = time.monotonic()
        who = caller(request)
        configs = {c["cuid"]: c for c in MODEL_CONFIGS}
        config = configs.get(body.model_config_cuid)
        if config is None:
            raise ApiError(404, f"model config {body.model_config_cuid!r} not found")
        if body.org_cuid:
            check_org_access(who, body.org_cuid)
        charter = ""
        subject = "the agent"
        if body.agent_vm_cuid:
            record = _readable_record(state, who, body.agent_vm_cuid)
            subject = repr(record["name"])
            charter = charter_text(record["custom_fields"], body.charter_field_key or "") or ""
        faults = faults_for("evaluate")
        verdict, why, confidence = judge(body.tool_name, strict=config["cuid"] == "mc-sim-strict")
        reason = (
            f"{verdict}: tool {body.tool_name!r} on server {body.server_name!r} for {subject} — "
            f"{why}."
        )
        prompt_size = len(json.dumps(body.model_dump(), default=str)) + len(charter)
        return respond(
            {
                "verdict": verdict,
                "reason": reason,
                "confidence": confidence,
                "model": config["name"],
                "usage": {"input_tokens": prompt_size // 4 + 1, "output_tokens": len(reason) // 4},
                "latency_ms": int((time.monotonic() - started) * 1000),
            },
            faults,
        )

    @app.get(API_PREFIX + "/model-configs")
    def model_configs(request: Request) -> Response:
        caller(request)
        faults = faults_for("model-configs")
        items = [dict(c) for c in MODEL_CONFIGS]
        return respond({"items": items, "total": len(items)}, faults)

    # ------------------------------------------------------------------ admin API
    @app.get("/admin/health")
    def admin_health() -> dict[str, Any]:
        return {"ok": True}

    @app.get("/admin/state")
    def admin_state() -> dict[str, Any]:
        return {**state.dump(), "notify": notifier.status()}

    @app.post("/admin/orgs", status_code=201)
    def admin_add_org(body: OrgBody) -> dict[str, Any]:
        state.add_org(body.cuid, body.name)
        return state.org(body.cuid)

    @app.post("/admin/record-types", status_code=201)
    def admin_add_record_type(body: RecordTypeBody) -> dict[str, Any]:
        state.add_record_type(body.org_cuid, body.slug, body.name, body.cuid)
        return next(rt for rt in state.record_types(body.org_cuid) if rt["slug"] == body.slug)

    @app.post("/admin/custom-fields", status_code=201)
    def admin_add_custom_field(body: CustomFieldBody) -> dict[str, Any]:
        state.add_custom_field(body.org_cuid, body.slug, body.key, body.name, body.field_type)
        return {"org_cuid": body.org_cuid, "record_type_slug": body.slug, **body.model_dump()}

    @app.post("/admin/records", status_code=201)
    def admin_create_record(body: RecordBody) -> dict[str, Any]:
        return state.create_record(
            body.org_cuid,
            body.slug,
            name=body.name,
            custom_fields=body.custom_fields,
            cuid=body.cuid,
        )

    @app.post("/admin/records/bulk", status_code=201)
    def admin_bulk(body: BulkBody) -> dict[str, Any]:
        cuids = state.bulk_create(
            body.org_cuid,
            body.slug,
            count=body.count,
            name_prefix=body.name_prefix,
            charter_bytes=body.charter_bytes,
            charter_field_key=body.charter_field_key,
        )
        return {"created": len(cuids), "cuids": cuids}

    @app.get("/admin/records/{cuid}")
    def admin_get_record(cuid: str) -> dict[str, Any]:
        return state.get_record(cuid)

    @app.patch("/admin/records/{cuid}")
    def admin_update_record(cuid: str, body: RecordPatch) -> dict[str, Any]:
        return state.update_record(cuid, name=body.name, custom_fields=body.custom_fields)

    @app.post("/admin/records/{cuid}/archive")
    def admin_archive(cuid: str) -> dict[str, Any]:
        state.archive_record(cuid)
        return state.get_record(cuid)

    @app.post("/admin/records/{cuid}/unarchive")
    def admin_unarchive(cuid: str) -> dict[str, Any]:
        state.unarchive_record(cuid)
        return state.get_record(cuid)

    @app.delete("/admin/records/{cuid}")
    def admin_delete(cuid: str) -> dict[str, Any]:
        state.delete_record(cuid)
        return state.get_record(cuid)

    @app.get("/admin/faults")
    def admin_get_faults() -> dict[str, Any]:
        return {"faults": state.faults}

    @app.put("/admin/faults")
    def admin_set_faults(body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
        state.set_faults(**body)
        return {"faults": state.faults}

    @app.delete("/admin/faults")
    def admin_clear_faults() -> dict[str, Any]:
        state.clear_faults()
        return {"faults": {}}

    @app.get("/admin/notify")
    def admin_get_notify() -> dict[str, Any]:
        return notifier.status()

    @app.put("/admin/notify")
    def admin_set_notify(body: NotifyBody) -> dict[str, Any]:
        notifier.configure(NotifyConfig(**body.model_dump()))
        return notifier.status()

    return app


class _FaultResponse(Exception):
    def __init__(
        self, status: int, body: str | dict[str, Any] | None, headers: dict[str, str]
    ) -> None:
        super().__init__(f"simulated fault: HTTP {status}")
        self.status = status
        self.body = body
        self.headers = headers


def _readable_record(state: SimState, who: Caller, cuid: str) -> dict[str, Any]:
    """A record the caller may read (not deleted; in the API key's org), else 404."""
    try:
        record = state.get_record(cuid)
    except SimNotFoundError:
        record = None
    if (
        record is None
        or record["status"] == "deleted"
        or (who.mode == "api_key" and record["org_cuid"] != who.org)
    ):
        raise ApiError(404, f"record {cuid!r} not found")
    return record


# ---------------------------------------------------------------------- serving
def serve(state: SimState, host: str, port: int, notify: NotifyConfig | None = None) -> None:
    """Serve the simulator until interrupted (blocking). `notify`, when given, configures the
    notifier at start-up (as `PUT /admin/notify` would)."""
    notifier = Notifier()
    if notify is not None:
        notifier.configure(notify)
    uvicorn.run(create_sim_app(state, notifier=notifier), host=host, port=port, log_level="info")


class SimServer:
    """The simulator on a real port in a background thread (tests, `atryum demo`).

    `port=0` picks a free port; `url` is the base URL to give Atryum (the API lives under
    `url + "/api/atryum/unstable"`). `notifier` replaces the default one (e.g. shorter backoff)."""

    def __init__(
        self,
        state: SimState,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        notifier: Notifier | None = None,
    ) -> None:
        self.state = state
        self.host = host
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._sock.bind((host, port))
        except OSError:
            self._sock.close()
            raise
        self.port: int = self._sock.getsockname()[1]
        shown = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
        self.url = (
            f"http://[{shown}]:{self.port}" if ":" in shown else f"http://{shown}:{self.port}"
        )
        self.api_url = self.url + API_PREFIX
        self.notifier = notifier or Notifier()
        self.app = create_sim_app(state, notifier=self.notifier)
        config = uvicorn.Config(
            self.app, log_level="warning", ws="none", timeout_graceful_shutdown=5
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 20.0) -> SimServer:
        if self._thread is not None:
            return self
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._sock]},
            name=f"validmind-sim:{self.port}",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        ready = threading.Event()
        while not ready.is_set():
            if not self._thread.is_alive():
                self.stop()
                raise RuntimeError(f"the ValidMind simulator failed to start on {self.url}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the ValidMind simulator did not answer within {timeout} s")
            if self._server.started and self._answers():
                ready.set()
            else:
                ready.wait(0.01)
        return self

    def _answers(self) -> bool:
        try:
            return httpx2.get(self.url + "/admin/health", timeout=2).status_code == 200
        except httpx2.HTTPError:
            return False

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._server.should_exit = True
            thread.join(20)
            if thread.is_alive():
                self._server.force_exit = True
                thread.join(5)
        self._sock.close()
        self.state.remove_listener(self.notifier)
        self.notifier.close()

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
