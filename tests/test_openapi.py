"""Property test of the whole HTTP API from its OpenAPI schema (schemathesis, in-process ASGI).

Every documented operation is fuzzed with valid and invalid input, on SQLite and PostgreSQL. Bad
input must get a clear error — a 4xx with `{"error": {"message": "..."}}` — never a 500, and
responses must match the documented schema.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import schemathesis
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from atryum.app import build_context, create_app
from tests.support import make_config

# Held open by design: the review event stream (SSE).
SKIPPED_PATHS = ["/api/v1/review/invocations/stream"]
# ValidMind is not configured here: these answer 503 "not configured" (with a clear error body).
NEEDS_VALIDMIND = "^/api/v1/(vm/|validmind/events$|agents/sync$|model-configs$)"
CONFIG = schemathesis.Config.from_dict(
    {
        "operations": [
            {
                "include-path-regex": NEEDS_VALIDMIND,
                "checks": {"not_a_server_error": {"expected-statuses": ["2xx", "4xx", "503"]}},
            }
        ]
    }
)


def _app(engine: sa.Engine) -> FastAPI:
    # ValidMind is not configured: the routes that would call it answer 503 at once.
    config = make_config(api_key={"key": "k", "secret": "s"})
    return create_app(build_context(config, engine), background=False)


def _load_schema() -> Any:
    """The app's own `/openapi.json` (serving it needs no database and no lifespan).

    Loaded at import so that each operation is its own pytest test; the app under test is built
    per test from the `engine` fixture and passed to `call_and_validate(app=...)`.
    (`schemathesis.pytest.from_fixture` does not run under pytest 9.2: it sets `Node._nodeid`.)"""
    doc = TestClient(_app(sa.create_engine("sqlite://"))).get("/openapi.json").json()
    return schemathesis.openapi.from_dict(doc, config=CONFIG).exclude(path=SKIPPED_PATHS)


schema = _load_schema()


@pytest.fixture
def app(engine: sa.Engine) -> FastAPI:
    return _app(engine)


def error_body_is_clear(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> None:
    """Every 4xx/5xx answer is `{"error": {"message": <non-empty str>}}`."""
    if response.status_code < 400:
        return
    try:
        body = response.json()
    except ValueError as exc:
        raise AssertionError(f"{response.status_code} body is not JSON: {response.text!r}") from exc
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    assert isinstance(message, str) and message.strip(), (
        f'{response.status_code} body is not {{"error": {{"message": "..."}}}}: {body!r}'
    )


@schema.parametrize()
@settings(
    max_examples=25,
    derandomize=True,
    deadline=None,
    # One database per operation, shared by its examples on purpose: later examples meet the rows
    # earlier ones created.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
def test_api(case: schemathesis.Case, app: FastAPI) -> None:
    case.call_and_validate(
        app=app,
        checks=[not_a_server_error, error_body_is_clear, response_schema_conformance],
    )


def test_the_document_shows_the_error_shape_the_api_answers_with(engine: sa.Engine) -> None:
    with TestClient(_app(engine)) as client:
        doc = client.get("/openapi.json").json()
        assert "HTTPValidationError" not in doc["components"]["schemas"]
        invalid = [
            op["responses"]["422"]["content"]["application/json"]["schema"]["$ref"]
            for item in doc["paths"].values()
            for op in item.values()
            if "422" in op.get("responses", {})
        ]
        assert invalid and set(invalid) == {"#/components/schemas/ErrorResponse"}
        r = client.patch("/api/v1/agents/x", json={"enabled": "perhaps"})
        assert r.status_code == 422 and r.json()["error"]["message"].startswith("invalid request")
        assert client.get("/docs").status_code == 200


def test_the_docs_load_swagger_ui_from_the_package_not_a_cdn(engine: sa.Engine) -> None:
    with TestClient(_app(engine)) as client:
        page = client.get("/docs")
        assert page.status_code == 200
        urls = re.findall(r'(?:src|href)="([^"]+)"', page.text) + re.findall(
            r"url: '([^']+)'", page.text
        )
        assert urls and all(u.startswith("/") for u in urls), urls
        assert "cdn" not in page.text and "https://" not in page.text
        for url in urls:
            asset = client.get(url)
            assert asset.status_code == 200, url
        assert "SwaggerUIBundle" in client.get("/docs/assets/swagger-ui-bundle.js").text
        assert client.get("/redoc").status_code == 404  # ReDoc would load from a CDN
