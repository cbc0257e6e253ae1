"""Four eyes (identity.md §3, §5.2): `same_agent` says whether a deciding principal is the
call's own identity or another identity of the same registry agent."""

from __future__ import annotations

import sqlalchemy as sa

from atryum.gateway import service
from atryum.gateway.models import Invocation
from atryum.identity import AgentIdentity, same_agent
from tests.gateway.helpers import DEFAULTS, agent, call, retire, set_default_agent

IDP = "https://idp.example"
OTHER = "https://other-idp.example"


def submit(engine: sa.Engine, caller: AgentIdentity | None, **req: str) -> Invocation:
    inv, _ = service.submit(engine, request=call(**req), caller=caller, defaults=DEFAULTS)
    return inv


def same(engine: sa.Engine, principal: AgentIdentity, inv: Invocation) -> bool:
    with engine.connect() as conn:
        return same_agent(conn, principal, inv)


def test_the_calls_own_identity_may_not_decide(engine: sa.Engine) -> None:
    agent(engine, "Bot", "bot")
    inv = submit(engine, AgentIdentity(IDP, "bot"))
    assert same(engine, AgentIdentity(IDP, "bot"), inv)


def test_nor_any_identity_bound_to_the_same_agent(engine: sa.Engine) -> None:
    agent(engine, "Bot", "bot", f"{IDP}#bot-admin")
    agent(engine, "Other", "other")
    inv = submit(engine, AgentIdentity(IDP, "bot"))
    assert same(engine, AgentIdentity(IDP, "bot-admin"), inv)
    assert same(engine, AgentIdentity(OTHER, "bot"), inv)  # a plain entry: any issuer
    assert not same(engine, AgentIdentity(OTHER, "bot-admin"), inv)  # qualified: IDP only
    assert not same(engine, AgentIdentity(IDP, "other"), inv)
    assert not same(engine, AgentIdentity(IDP, "alice@example.com"), inv)


def test_an_unregistered_callers_own_identity_still_counts(engine: sa.Engine) -> None:
    default = agent(engine, "Default", "default-runtime")
    set_default_agent(engine, default.id)
    inv = submit(engine, AgentIdentity(IDP, "stray"))
    assert inv.agent_record_id == default.id
    assert same(engine, AgentIdentity(IDP, "stray"), inv)
    assert not same(engine, AgentIdentity(OTHER, "stray"), inv)  # another issuer's stray
    # falling back to the default agent is no binding: other strays are not "the same agent"
    assert not same(engine, AgentIdentity(IDP, "another-stray"), inv)
    assert same(engine, AgentIdentity(IDP, "default-runtime"), inv)


def test_a_hinted_agent_id_counts_without_auth(engine: sa.Engine) -> None:
    agent(engine, "Bot", "bot")
    inv = submit(engine, None, agent_id="bot")
    assert inv.caller is None
    assert same(engine, AgentIdentity(IDP, "bot"), inv)
    assert not same(engine, AgentIdentity(IDP, "alice"), inv)


def test_a_retired_agents_identities_still_count(engine: sa.Engine) -> None:
    bot = agent(engine, "Bot", "bot", "bot-2")
    retire(engine, bot.id)
    inv = submit(engine, AgentIdentity(IDP, "bot-2"))
    assert inv.status == "denied" and inv.agent_record_id == bot.id
    assert same(engine, AgentIdentity(IDP, "bot"), inv)
