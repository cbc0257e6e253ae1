"""Page routes of the charter judge: LLM configs (list, add, edit, disable, test) and the
judges a rule form offers. Changes go through `/api/v1/llm-configs` from the pages' JavaScript."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse

from atryum.context import AppContext, get_ctx
from atryum.errors import NotFound
from atryum.judge import service
from atryum.judge.models import PROVIDERS
from atryum.validmind.client import ValidMindError
from atryum.web.render import not_found, page

router = APIRouter(include_in_schema=False)
Ctx = Annotated[AppContext, Depends(get_ctx)]

PROVIDER_LABELS = {
    "openai": "OpenAI",
    "anthropic": "Anthropic",
    "openai_compatible": "OpenAI-compatible (vLLM, Ollama, llama.cpp, LM Studio)",
}
assert set(PROVIDER_LABELS) == set(PROVIDERS)


@dataclass(frozen=True)
class JudgeChoice:
    value: str  # "llm:<id>" | "vm:<cuid>"
    label: str
    selected: bool


@dataclass(frozen=True)
class JudgeChoices:
    llm: list[JudgeChoice]
    validmind: list[JudgeChoice]
    validmind_note: str  # why ValidMind's judges are not offered, if they are not


def judge_choices(ctx: AppContext, llm_id: str | None, cuid: str | None) -> JudgeChoices:
    """The judges a rule can use: the LLM configs, and ValidMind's model configs when it is
    configured and answers. A rule's current judge is offered even if it is gone."""
    llm = [
        JudgeChoice(
            f"llm:{c.id}",
            f"{c.name} ({c.model})" + ("" if c.enabled else " — disabled"),
            c.id == llm_id,
        )
        for c in service.list_configs(ctx.engine)
    ]
    if llm_id and not any(c.selected for c in llm):
        llm.append(JudgeChoice(f"llm:{llm_id}", f"deleted LLM config {llm_id}", True))
    vm: list[JudgeChoice] = []
    note = ""
    if not ctx.config.backend.enabled:
        note = "ValidMind is not configured, so its judges are not offered."
    else:
        try:
            with ctx.validmind() as client:
                items = client.model_configs()
            vm = [
                JudgeChoice(f"vm:{i.get('cuid')}", str(i.get("name") or i.get("cuid")), False)
                for i in items
            ]
        except ValidMindError as exc:
            note = f"ValidMind's judges could not be listed: {exc}"
    vm = [JudgeChoice(c.value, c.label, c.value == f"vm:{cuid}") for c in vm]
    if cuid and not any(c.selected for c in vm):
        vm.append(JudgeChoice(f"vm:{cuid}", f"ValidMind model config {cuid}", True))
    return JudgeChoices(llm, vm, note)


@router.get("/ui/llm-configs")
def llm_configs_page(ctx: Ctx, notice: str = "") -> HTMLResponse:
    notices = {
        "created": "LLM config created.",
        "saved": "LLM config saved.",
        "deleted": "LLM config deleted.",
    }
    return page(
        ctx,
        "llm_configs.html",
        title="LLM judges",
        nav="judges",
        configs=service.list_configs(ctx.engine),
        providers=PROVIDER_LABELS,
        notice=notices.get(notice, ""),
    )


@router.get("/ui/llm-configs/new")
def new_llm_config_page(ctx: Ctx) -> HTMLResponse:
    return page(
        ctx,
        "llm_config.html",
        title="New LLM judge",
        nav="judges",
        config=None,
        rule_ids=[],
        providers=PROVIDER_LABELS,
    )


@router.get("/ui/llm-configs/{config_id}")
def llm_config_page(config_id: str, ctx: Ctx) -> HTMLResponse:
    try:
        config = service.get_config(ctx.engine, config_id=config_id)
    except NotFound as exc:
        return not_found(ctx, exc.message)
    return page(
        ctx,
        "llm_config.html",
        title=f"{config.name} · LLM judge",
        nav="judges",
        config=config,
        rule_ids=service.rules_using(ctx.engine, config_id=config_id),
        providers=PROVIDER_LABELS,
    )
