"""Judge routes: /api/v1/llm-configs (Go-compatible), /api/v1/model-configs (ValidMind's)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, ConfigDict, Field

from atryum.errors import UpstreamError
from atryum.gateway.deps import Ctx, Operator, Runtime
from atryum.judge import service
from atryum.judge.judge import Result
from atryum.judge.models import LlmConfig
from atryum.judge.verdict import Answer
from atryum.limits import Text
from atryum.validmind.client import ValidMindError

router = APIRouter(tags=["judge"])

Provider = Literal["openai", "anthropic", "openai_compatible"]


class LlmConfigIn(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())
    name: Text = Field(min_length=1, max_length=256)
    provider: Provider
    model: Text = Field(min_length=1, max_length=256)
    api_key: Text | None = Field(default=None, max_length=4096, description="write-only")
    base_url: Text = Field(default="", max_length=2048)
    enabled: bool = Field(default=True, strict=True)
    timeout_seconds: float = Field(default=20, gt=0, le=300, strict=True)


class LlmConfigPatch(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())
    name: Text | None = Field(default=None, min_length=1, max_length=256)
    provider: Provider | None = None
    model: Text | None = Field(default=None, min_length=1, max_length=256)
    api_key: Text | None = Field(
        default=None, max_length=4096, description='write-only; "" clears it, "***" keeps it'
    )
    base_url: Text | None = Field(default=None, max_length=2048)
    enabled: bool | None = Field(default=None, strict=True)
    timeout_seconds: float | None = Field(default=None, gt=0, le=300, strict=True)


class LlmConfigOut(BaseModel):
    model_config = ConfigDict(protected_namespaces=())
    id: str
    name: str
    provider: str
    model: str
    base_url: str
    api_key: str | None = Field(description='"***" when a key is set, else null')
    enabled: bool
    timeout_seconds: float
    created_at: datetime
    updated_at: datetime
    rule_ids: list[str] = Field(default_factory=list, description="rules judged by it")

    @classmethod
    def of(cls, c: LlmConfig, rule_ids: list[str] | None = None) -> LlmConfigOut:
        return cls(**service.public_fields(c), rule_ids=rule_ids or [])


class LlmConfigList(BaseModel):
    items: list[LlmConfigOut]


class TestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    charter: Text = Field(default=service.SAMPLE_CHARTER, min_length=1, max_length=100_000)
    source: Text = Field(default=service.SAMPLE_SOURCE, min_length=1, max_length=256)
    tool: Text = Field(default=service.SAMPLE_TOOL, min_length=1, max_length=512)
    arguments: dict[str, Any] | None = None


class TestOut(BaseModel):
    model_config = ConfigDict(protected_namespaces=())
    ok: bool
    verdict: str | None
    confidence: float | None
    reason: str
    error: str | None
    model: str
    latency_ms: int
    input_tokens: int | None
    output_tokens: int | None

    @classmethod
    def of(cls, r: Result) -> TestOut:
        a = r.result
        answered = isinstance(a, Answer)
        return cls(
            ok=answered,
            verdict=a.verdict if isinstance(a, Answer) else None,
            confidence=a.confidence if isinstance(a, Answer) else None,
            reason=a.reason if isinstance(a, Answer) else a.message,
            error=None if isinstance(a, Answer) else a.kind,
            model=r.model,
            latency_ms=r.latency_ms,
            input_tokens=r.input_tokens,
            output_tokens=r.output_tokens,
        )


class ModelConfigOut(BaseModel):
    cuid: str
    name: str


class ModelConfigList(BaseModel):
    items: list[ModelConfigOut]


def _spec(body: LlmConfigIn | LlmConfigPatch) -> service.ConfigSpec:
    return service.ConfigSpec(**body.model_dump(exclude_unset=isinstance(body, LlmConfigPatch)))


@router.get("/api/v1/llm-configs", response_model=LlmConfigList)
def list_configs(ctx: Ctx) -> LlmConfigList:
    return LlmConfigList(items=[LlmConfigOut.of(c) for c in service.list_configs(ctx.engine)])


@router.post("/api/v1/llm-configs", response_model=LlmConfigOut, status_code=201)
def create_config(body: LlmConfigIn, ctx: Ctx, operator: Operator) -> LlmConfigOut:
    return LlmConfigOut.of(service.create_config(ctx.engine, spec=_spec(body), actor=operator))


@router.get("/api/v1/llm-configs/{config_id}", response_model=LlmConfigOut)
def get_config(config_id: str, ctx: Ctx) -> LlmConfigOut:
    config = service.get_config(ctx.engine, config_id=config_id)
    return LlmConfigOut.of(config, service.rules_using(ctx.engine, config_id=config_id))


@router.patch("/api/v1/llm-configs/{config_id}", response_model=LlmConfigOut)
def patch_config(
    config_id: str, body: LlmConfigPatch, ctx: Ctx, operator: Operator
) -> LlmConfigOut:
    config = service.update_config(
        ctx.engine, config_id=config_id, spec=_spec(body), actor=operator
    )
    return LlmConfigOut.of(config, service.rules_using(ctx.engine, config_id=config_id))


@router.delete("/api/v1/llm-configs/{config_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_config(config_id: str, ctx: Ctx, operator: Operator) -> Response:
    service.delete_config(ctx.engine, config_id=config_id, actor=operator)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/api/v1/llm-configs/{config_id}/test", response_model=TestOut)
def test_config(config_id: str, ctx: Ctx, rt: Runtime, body: TestIn | None = None) -> TestOut:
    """One sample call to the model (not cached, not recorded as an evaluation)."""
    body = body or TestIn()
    _, result = service.test_config(
        ctx.engine,
        config_id=config_id,
        judge=rt.judge,
        charter=body.charter,
        source=body.source,
        tool=body.tool,
        arguments=body.arguments,
    )
    return TestOut.of(result)


@router.get("/api/v1/model-configs", response_model=ModelConfigList)
def model_configs(ctx: Ctx) -> ModelConfigList:
    """ValidMind's model configs, for rules with `model_config_cuid`."""
    try:
        with ctx.validmind() as client:
            items = client.model_configs()
    except ValidMindError as exc:
        raise UpstreamError(str(exc)) from exc
    return ModelConfigList(
        items=[
            ModelConfigOut(cuid=str(i.get("cuid", "")), name=str(i.get("name", ""))) for i in items
        ]
    )
