"""The LLM judges' wire formats: OpenAI chat completions and Anthropic messages, over httpx2.

One thin client, no SDK: a call is one POST (retried once on 429 or 5xx while the config's
timeout allows), at temperature 0, asking for structured output where the provider has it
(OpenAI: a strict JSON schema; OpenAI-compatible servers: JSON mode; Anthropic: a forced tool
whose input is the verdict). Failures come back as a `verdict.Failure` naming their kind. The
API key goes into one request header and nowhere else: never into an error, a log line or a
result.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx2

from atryum.judge.models import LlmConfig
from atryum.judge.prompt import ANSWER_SCHEMA, Prompt
from atryum.judge.verdict import Answer, Failure, parse_answer

log = logging.getLogger("atryum.judge")

OPENAI_URL = "https://api.openai.com/v1"
ANTHROPIC_URL = "https://api.anthropic.com"
ANTHROPIC_VERSION = "2023-06-01"
MAX_OUTPUT_TOKENS = 400
RETRY_PAUSE_SECONDS = 0.25


@dataclass(frozen=True)
class Reply:
    result: Answer | Failure
    model: str
    input_tokens: int | None = None
    output_tokens: int | None = None


def new_client() -> httpx2.Client:
    """The HTTP client of the LLM judges, shared by their calls (creating one costs ~0.2 s)."""
    return httpx2.Client(follow_redirects=False, headers={"User-Agent": "atryum"})


def complete(http: httpx2.Client, config: LlmConfig, prompt: Prompt) -> Reply:
    """Ask the configured model; never raises for anything the provider or network does."""
    build, read = _FORMATS[config.provider]
    url, headers, body = build(config, prompt)
    deadline = time.monotonic() + config.timeout_seconds
    try:
        response = _post(http, url, headers, body, deadline)
    except httpx2.TimeoutException:
        return Reply(
            Failure("timeout", f"no answer within {config.timeout_seconds:g} s"), config.model
        )
    except httpx2.TransportError as exc:
        return Reply(
            Failure("transport", f"{type(exc).__name__}: {_safe(exc, config)}"), config.model
        )
    if response.status_code >= 400:
        kind = "http_5xx" if response.status_code >= 500 else "http_4xx"
        excerpt = _redact(response.text[:300], config)
        return Reply(Failure(kind, f"HTTP {response.status_code}: {excerpt}"), config.model)
    try:
        data = response.json()
    except ValueError:
        return Reply(Failure("unparseable", "the provider's response is not JSON"), config.model)
    if not isinstance(data, dict):
        return Reply(
            Failure("unparseable", "the provider's response is not an object"), config.model
        )
    return read(config, data)


def _post(
    http: httpx2.Client, url: str, headers: dict[str, str], body: dict[str, Any], deadline: float
) -> httpx2.Response:
    """POST, and once more after a 429 or 5xx if time is left."""
    response = http.post(url, headers=headers, json=body, timeout=_left(deadline))
    if response.status_code == 429 or response.status_code >= 500:
        pause = min(_retry_after(response), max(_left(deadline) - 0.05, 0))
        if _left(deadline) - pause > 0.05:
            log.info("judge retry status=%d wait_seconds=%.2f", response.status_code, pause)
            time.sleep(pause)
            response = http.post(url, headers=headers, json=body, timeout=_left(deadline))
    return response


def _left(deadline: float) -> float:
    return max(deadline - time.monotonic(), 0.001)


def _retry_after(response: httpx2.Response) -> float:
    try:
        return min(float(response.headers.get("retry-after", "")), 5.0)
    except ValueError:
        return RETRY_PAUSE_SECONDS


def _redact(text: str, config: LlmConfig) -> str:
    return text.replace(config.api_key, "***") if config.api_key else text


def _safe(exc: Exception, config: LlmConfig) -> str:
    return _redact(str(exc), config)[:200]


# -- OpenAI chat completions (also vLLM, Ollama, llama.cpp, LM Studio) -------------------------


def _openai_request(
    config: LlmConfig, prompt: Prompt
) -> tuple[str, dict[str, str], dict[str, Any]]:
    base = (config.base_url or OPENAI_URL).rstrip("/")
    headers = {"Content-Type": "application/json"}
    if config.api_key:
        headers["Authorization"] = f"Bearer {config.api_key}"
    response_format: dict[str, Any]
    if config.provider == "openai":
        response_format = {
            "type": "json_schema",
            "json_schema": {"name": "verdict", "schema": ANSWER_SCHEMA, "strict": True},
        }
    else:  # JSON mode is what OpenAI-compatible servers have in common
        response_format = {"type": "json_object"}
    body = {
        "model": config.model,
        "messages": [
            {"role": "system", "content": prompt.system},
            {"role": "user", "content": prompt.user},
        ],
        "temperature": 0,
        "max_tokens": MAX_OUTPUT_TOKENS,
        "response_format": response_format,
    }
    return f"{base}/chat/completions", headers, body


def _openai_reply(config: LlmConfig, data: dict[str, Any]) -> Reply:
    usage = as_object(data.get("usage"))
    model = str(data.get("model") or config.model)
    tokens = as_int(usage.get("prompt_tokens")), as_int(usage.get("completion_tokens"))
    choices = data.get("choices")
    message = choices[0].get("message") if isinstance(choices, list) and choices else None
    if not isinstance(message, dict):
        return Reply(Failure("empty", "the provider returned no message"), model, *tokens)
    if message.get("refusal"):
        return Reply(Failure("refusal", f"the model refused: {message['refusal']}"), model, *tokens)
    content = message.get("content")
    return Reply(parse_answer(content if isinstance(content, str) else None), model, *tokens)


# -- Anthropic messages -----------------------------------------------------------------------

_VERDICT_TOOL = "record_verdict"


def _anthropic_request(
    config: LlmConfig, prompt: Prompt
) -> tuple[str, dict[str, str], dict[str, Any]]:
    base = (config.base_url or ANTHROPIC_URL).rstrip("/")
    headers = {"Content-Type": "application/json", "anthropic-version": ANTHROPIC_VERSION}
    if config.api_key:
        headers["x-api-key"] = config.api_key
    body = {
        "model": config.model,
        "system": prompt.system,
        "messages": [{"role": "user", "content": prompt.user}],
        "temperature": 0,
        "max_tokens": MAX_OUTPUT_TOKENS,
        "tools": [
            {
                "name": _VERDICT_TOOL,
                "description": "Record the verdict on the tool call.",
                "input_schema": ANSWER_SCHEMA,
            }
        ],
        "tool_choice": {"type": "tool", "name": _VERDICT_TOOL},
    }
    return f"{base}/v1/messages", headers, body


def _anthropic_reply(config: LlmConfig, data: dict[str, Any]) -> Reply:
    usage = as_object(data.get("usage"))
    model = str(data.get("model") or config.model)
    tokens = as_int(usage.get("input_tokens")), as_int(usage.get("output_tokens"))
    if data.get("stop_reason") == "refusal":
        return Reply(Failure("refusal", "the model refused to answer"), model, *tokens)
    content = data.get("content")
    blocks: list[Any] = content if isinstance(content, list) else []
    for block in blocks:
        if isinstance(block, dict) and block.get("type") == "tool_use":
            payload = block.get("input")
            result = parse_answer(payload if isinstance(payload, dict) else None)
            return Reply(result, model, *tokens)
    text = "".join(
        str(b.get("text", "")) for b in blocks if isinstance(b, dict) and b.get("type") == "text"
    )
    return Reply(parse_answer(text), model, *tokens)


def as_object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


_Build = Callable[[LlmConfig, Prompt], tuple[str, dict[str, str], dict[str, Any]]]
_Read = Callable[[LlmConfig, dict[str, Any]], Reply]
_FORMATS: dict[str, tuple[_Build, _Read]] = {
    "openai": (_openai_request, _openai_reply),
    "openai_compatible": (_openai_request, _openai_reply),
    "anthropic": (_anthropic_request, _anthropic_reply),
}
