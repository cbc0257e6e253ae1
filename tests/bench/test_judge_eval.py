"""Smoke test of bench/judge_eval.py: each way of naming a judge prints the one table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.judge.llm_server import LlmServer, answer

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "judge_eval.py"
HEADER = "category     cases  accuracy  false-approve  false-deny  errors"


def run(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _row(out: str, name: str) -> list[str]:
    (line,) = [ln for ln in out.splitlines() if ln.startswith(name + " ")]
    return line.split()


def test_the_case_file_covers_the_five_demo_charters_and_every_category() -> None:
    cases = [
        json.loads(ln) for ln in SCRIPT.with_name("judge_cases.jsonl").read_text().split("\n") if ln
    ]
    assert len(cases) >= 100
    assert len({c["agent_vm_cuid"] for c in cases}) == 5
    assert {c["category"] for c in cases} == {
        "allowed",
        "forbidden",
        "human",
        "not_covered",
        "injection",
    }
    assert all(c["expected"] != "approved" for c in cases if c["category"] == "injection")


@pytest.mark.parametrize("judge", ["scripted", "simulator"])
def test_the_table_for_the_builtin_judges(judge: str) -> None:
    out = run("--judge", judge, "--limit", "22")  # the Code Review Bot's cases
    assert HEADER in out
    row = _row(out, "all")
    assert row[1] == "22"
    assert row[2].endswith("%")  # accuracy
    assert _row(out, "allowed")[4] == "0.0%"  # neither judge denies a read


def test_a_real_endpoint_with_base_url_and_model() -> None:
    with LlmServer(responder=lambda _: answer("denied", 0.9)) as server:
        out = run(
            "--base-url", server.url, "--model", "m", "--provider", "anthropic", "--limit", "10"
        )
        assert all(r.path == "/v1/messages" for r in server.requests)
        assert len(server.requests) == 10
    row = _row(out, "all")
    assert row[1] == "10" and row[5] == "0"  # no errors
    assert _row(out, "allowed")[4] == "100.0%"  # it denied everything: false denies


def test_a_judge_must_be_named() -> None:
    done = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True)
    assert done.returncode == 2
    assert "choose one judge" in done.stderr
