"""A call the MCP proxy claimed and whose Atryum process died is recorded failed, outcome
unknown, once its server's timeout (+ grace) has passed; a live call, and a hook's `running`
report, are left alone."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from atryum.db.types import utcnow
from atryum.gateway import rules
from atryum.gateway import service as gateway
from atryum.gateway.settings import defaults_from
from atryum.identity.principal import CLI
from atryum.mcp import service
from atryum.mcp.calls import EXECUTOR
from atryum.mcp.stale import GRACE, STOPPED, fail_stale
from tests.support import make_config


def _call(engine: sa.Engine, n: int, executor: str | None) -> str:
    request = gateway.CallRequest(source="calc", tool="add", input={"n": n}, request_id=f"r{n}")
    inv, _ = gateway.submit(
        engine,
        request=request,
        caller=None,
        defaults=defaults_from(make_config()),
        executor=executor,
    )
    return inv.id


def test_a_call_left_executing_by_a_dead_process_fails_after_its_timeout(
    engine: sa.Engine,
) -> None:
    service.create_server(
        engine, spec=service.ServerSpec(name="calc", command="calc", timeout_seconds=5), actor=CLI
    )
    rules.create_rule(engine, spec=rules.RuleSpec(action="auto_approve"), actor=CLI)
    orphan = _call(engine, 1, EXECUTOR)  # claimed by the proxy: executing
    hook_run = _call(engine, 2, None)  # approved; the hook reports it running
    gateway.report_outcome(engine, invocation_id=hook_run, execution_status="running")
    for inv_id in (orphan, hook_run):
        assert gateway.get_invocation(engine, invocation_id=inv_id).status == "executing"

    assert fail_stale(engine, now=utcnow() + timedelta(seconds=5 + GRACE - 2)) == 0  # may run
    later = utcnow() + timedelta(seconds=5 + GRACE + 1)
    assert fail_stale(engine, now=later) == 1
    failed = gateway.get_invocation(engine, invocation_id=orphan)
    assert failed.status == "failed" and failed.error == STOPPED
    assert gateway.get_invocation(engine, invocation_id=hook_run).status == "executing"
    assert fail_stale(engine, now=later) == 0  # recorded once
