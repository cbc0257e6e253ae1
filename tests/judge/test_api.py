"""`/api/v1/llm-configs`, the rules' judge fields, the sample call and `/api/v1/model-configs`."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.judge.conftest import SECRET_KEY, Judged
from tests.judge.llm_server import answer, text

CONFIGS = "/api/v1/llm-configs"


def _ok(r: Any, code: int = 200) -> Any:
    assert r.status_code == code, r.text
    return r.json() if r.content else None


def test_configs_are_created_read_patched_and_deleted_with_the_key_write_only(
    client: TestClient,
) -> None:
    created = _ok(
        client.post(
            CONFIGS,
            json={"name": "GPT", "provider": "openai", "model": "gpt-4o-mini", "api_key": "k-1"},
        ),
        201,
    )
    assert created["api_key"] == "***"
    assert created["timeout_seconds"] == 20
    assert created["enabled"] is True
    url = f"{CONFIGS}/{created['id']}"

    kept = _ok(client.patch(url, json={"api_key": "***", "name": "GPT mini"}))
    assert kept["api_key"] == "***" and kept["name"] == "GPT mini"
    cleared = _ok(client.patch(url, json={"api_key": ""}))
    assert cleared["api_key"] is None
    disabled = _ok(client.patch(url, json={"enabled": False}))
    assert disabled["enabled"] is False
    assert [c["id"] for c in _ok(client.get(CONFIGS))["items"]] == [created["id"]]
    _ok(client.delete(url), 204)
    assert client.get(url).status_code == 404
    assert client.delete(url).status_code == 404


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"provider": "openai_compatible", "model": "llama3"}, "base_url is required"),
        ({"provider": "gemini", "model": "x"}, "provider"),
        ({"provider": "openai", "model": ""}, "model"),
        ({"provider": "openai", "model": "m", "base_url": "ftp://x"}, "http(s) URL"),
        (
            {"provider": "openai", "model": "m", "base_url": "http://u:p@host/v1"},
            "must not carry credentials",
        ),
        ({"provider": "openai", "model": "m", "timeout_seconds": 0}, "timeout_seconds"),
        ({"provider": "openai", "model": "m", "extra": 1}, "extra"),
    ],
)
def test_bad_configs_are_refused_with_a_message(
    client: TestClient, body: dict[str, Any], message: str
) -> None:
    r = client.post(CONFIGS, json={"name": "n", **body})
    assert r.status_code in (400, 422), r.text
    assert message in r.json()["error"]["message"]


def test_patching_into_an_invalid_config_is_refused(client: TestClient) -> None:
    created = _ok(client.post(CONFIGS, json={"name": "n", "provider": "openai", "model": "m"}), 201)
    r = client.patch(f"{CONFIGS}/{created['id']}", json={"provider": "openai_compatible"})
    assert r.status_code == 400
    assert "base_url is required" in r.json()["error"]["message"]


def test_rules_carry_their_judge_fields_and_flag_what_cannot_judge(client: TestClient) -> None:
    config = _ok(client.post(CONFIGS, json={"name": "n", "provider": "openai", "model": "m"}), 201)

    def post(**body: Any) -> Any:
        return client.post("/api/v1/rules", json={"action": "ai_evaluation", **body})

    rule = _ok(post(atryum_llm_config_id=config["id"], min_confidence=0.7, shadow=True), 201)
    assert (rule["atryum_llm_config_id"], rule["min_confidence"], rule["shadow"]) == (
        config["id"],
        0.7,
        True,
    )
    assert rule["judge_problem"] is None
    assert _ok(client.get(f"{CONFIGS}/{config['id']}"))["rule_ids"] == [rule["id"]]
    unknown = _ok(post(atryum_llm_config_id="nope"), 201)  # accepted, as in Go, and flagged
    assert "does not exist" in unknown["judge_problem"]
    both = _ok(post(atryum_llm_config_id=config["id"], model_config_cuid="mc-sim-default"), 201)
    assert "names both" in both["judge_problem"]
    assert post(min_confidence=1.5).status_code == 422


def test_a_put_without_the_judge_tuning_keeps_it(client: TestClient) -> None:
    """A Go client knows neither `shadow` nor `min_confidence`: editing a rule must not turn a
    shadow rule into a deciding one."""
    rule = _ok(
        client.post(
            "/api/v1/rules",
            json={"action": "ai_evaluation", "shadow": True, "min_confidence": 0.9},
        ),
        201,
    )
    body = {"action": "ai_evaluation", "description": "edited by a Go client"}
    kept = _ok(client.put(f"/api/v1/rules/{rule['id']}", json=body))
    assert (kept["shadow"], kept["min_confidence"]) == (True, 0.9)
    changed = _ok(client.put(f"/api/v1/rules/{rule['id']}", json={**body, "shadow": False}))
    assert changed["shadow"] is False


def test_model_configs_need_validmind(client: TestClient) -> None:
    r = client.get("/api/v1/model-configs")
    assert r.status_code == 503
    assert "ValidMind is not configured" in r.json()["error"]["message"]


def test_the_sample_call_reports_what_the_model_answered(judged: Judged) -> None:
    config = judged.config("anthropic")
    judged.llm.script(answer("approved", 0.9, "reading a PR is allowed"), text("rambling"))
    url = f"{CONFIGS}/{config['id']}/test"

    ok = judged.api.ok(judged.api.http.post(url))
    bad = judged.api.ok(judged.api.http.post(url, json={"tool": "merge_pull_request"}))

    assert ok["ok"] is True and ok["verdict"] == "approved" and ok["confidence"] == 0.9
    assert ok["model"] == "judge-model-1" and ok["input_tokens"] == 120
    assert bad["ok"] is False and bad["error"] == "unparseable"
    assert "merge_pull_request" in judged.llm.requests[1].user
    assert SECRET_KEY not in str(ok) + str(bad)


def test_config_changes_are_audited_without_the_key(client: TestClient) -> None:
    body = {"name": "n", "provider": "openai", "model": "m", "api_key": "sk-audit-SECRET"}
    created = _ok(client.post(CONFIGS, json=body), 201)
    _ok(client.patch(f"{CONFIGS}/{created['id']}", json={"enabled": False}))
    _ok(client.delete(f"{CONFIGS}/{created['id']}"), 204)

    answer_ = client.get("/api/v1/audit", params={"entity": "llm_config"})
    entries = [e for e in _ok(answer_)["items"] if e["entity"] == "llm_config"]
    assert sorted(e["action"] for e in entries) == ["create", "delete", "update"]
    assert "sk-audit-SECRET" not in answer_.text
    (update,) = [e for e in entries if e["action"] == "update"]
    assert (update["before"]["enabled"], update["after"]["enabled"]) == (True, False)
    assert update["after"]["api_key"] == "***"
