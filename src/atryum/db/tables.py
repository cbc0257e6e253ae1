"""Table definitions (SQLAlchemy Core). The migrations create exactly these."""

from __future__ import annotations

import sqlalchemy as sa

from atryum.db.types import UTCDateTime

metadata = sa.MetaData()

agents = sa.Table(
    "agents",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("vm_organization_cuid", sa.String(128), nullable=False, server_default=""),
    sa.Column("vm_organization_name", sa.String(512), nullable=False, server_default=""),
    sa.Column("vm_record_type_slug", sa.String(128), nullable=False, server_default=""),
    sa.Column("vm_cuid", sa.String(128), nullable=True),
    sa.Column("name", sa.Text, nullable=False),
    # The lists' sort key (0012): a generated column, so an index on it serves a page alone.
    sa.Column("name_key", sa.Text, sa.Computed("lower(name)")),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("charter", sa.Text, nullable=False, server_default=""),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("tags", sa.JSON, nullable=False),
    sa.Column("source_hash", sa.String(64), nullable=True),
    sa.Column("synced_at", UTCDateTime, nullable=True),
    sa.Column("removed_at", UTCDateTime, nullable=True),
    sa.Column("removal_reason", sa.String(32), nullable=True),
    sa.Column("source_missing_since", UTCDateTime, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.CheckConstraint("source IN ('validmind', 'manual')", name="ck_agents_source"),
    sa.CheckConstraint(
        "(source = 'manual' AND vm_cuid IS NULL) OR (source = 'validmind' AND vm_cuid IS NOT NULL)",
        name="ck_agents_vm_cuid",
    ),
    sa.Index("uq_agents_vm_cuid", "vm_cuid", unique=True),
    sa.Index("ix_agents_org", "source", "vm_organization_cuid"),
    # A sync's "did the org change while I fetched?" check reads only this index (0006).
    sa.Index("ix_agents_org_updated", "source", "vm_organization_cuid", "updated_at"),
)

# Agent lists are agents in name order, paged, counted (0006; on name_key since 0012).
sa.Index("ix_agents_key", agents.c.removed_at, agents.c.name_key, agents.c.id)
# … every page of agents in every state walks this one (0013) …
sa.Index(
    "ix_agents_all_key",
    agents.c.name_key,
    agents.c.id,
    agents.c.removed_at,
    postgresql_include=["vm_cuid"],
)
# … and every page of active agents this one (0012; 0007 had it on lower(name)). Both carry the
# cuid on PostgreSQL: a picker search counts its matches from them alone (0014).
sa.Index(
    "ix_agents_active_key",
    agents.c.name_key,
    agents.c.id,
    postgresql_where=agents.c.removed_at.is_(None),
    sqlite_where=agents.c.removed_at.is_(None),
    postgresql_include=["vm_cuid"],
)

# A runtime id (JWT client id, harness agent id) belongs to at most one agent: the primary key
# enforces it in the database. The API shows them as the agent's `agent_ids` list.
agent_runtime_ids = sa.Table(
    "agent_runtime_ids",
    metadata,
    sa.Column("runtime_id", sa.String(256), primary_key=True),
    sa.Column(
        "agent_id",
        sa.String(36),
        sa.ForeignKey("agents.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("position", sa.Integer, nullable=False),
)

agent_sync_settings = sa.Table(
    "agent_sync_settings",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("org_cuid", sa.String(128), nullable=False, server_default=""),
    sa.Column("org_name", sa.String(512), nullable=False, server_default=""),
    sa.Column("agent_record_type_slug", sa.String(128), nullable=False, server_default=""),
    sa.Column("charter_field_key", sa.String(128), nullable=False, server_default="charter"),
    sa.Column("default_agent_id", sa.String(36), nullable=True),
    sa.Column("interval_seconds", sa.Integer, nullable=True),
    sa.Column("max_removals", sa.Integer, nullable=True),
    sa.Column("max_removal_ratio", sa.Float, nullable=True),
    # When the last complete, fully applied pull of `confirmed_org_cuid` confirmed every active
    # agent of the scope present: one write instead of touching every unchanged row.
    sa.Column("confirmed_org_cuid", sa.String(128), nullable=True),
    sa.Column("confirmed_at", UTCDateTime, nullable=True),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.CheckConstraint("id = 1", name="ck_agent_sync_settings_single_row"),
)

managed_agent_bindings = sa.Table(
    "managed_agent_bindings",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column(
        "agent_id",
        sa.String(36),
        sa.ForeignKey("agents.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("account", sa.String(128), nullable=False, server_default="default"),
    sa.Column("external_agent_id", sa.String(256), nullable=False),
    sa.Column("external_agent_name", sa.String(512), nullable=False, server_default=""),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("account", "external_agent_id", name="uq_bindings_account_external"),
)

agent_sync_runs = sa.Table(
    "agent_sync_runs",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("trigger", sa.String(16), nullable=False),
    sa.Column("requested_by", sa.String(256), nullable=False, server_default=""),
    sa.Column("dry_run", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("allow_removals", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime, nullable=True),
    sa.Column("fetched", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created", sa.Integer, nullable=False, server_default="0"),
    sa.Column("updated", sa.Integer, nullable=False, server_default="0"),
    sa.Column("unchanged", sa.Integer, nullable=False, server_default="0"),
    sa.Column("retired", sa.Integer, nullable=False, server_default="0"),
    sa.Column("restored", sa.Integer, nullable=False, server_default="0"),
    sa.Column("kept_dependent", sa.Integer, nullable=False, server_default="0"),
    sa.Column("skipped_invalid", sa.Integer, nullable=False, server_default="0"),
    sa.Column("error", sa.Text, nullable=False, server_default=""),
    sa.Column("warnings", sa.JSON, nullable=False),
    # Every trigger folded into the run, e.g. ["webhook", "webhook", "schedule"] (0003).
    sa.Column("triggers", sa.JSON, nullable=True),
    # Summaries of the changes, which live in agent_sync_run_changes (0006).
    sa.Column("held", sa.Integer, nullable=False, server_default="0"),
    sa.Column("changes_total", sa.Integer, nullable=False, server_default="0"),
    sa.Index("ix_agent_sync_runs_started_at", "started_at"),
)

# One row per agent a run changed (or would change, or held), in the order the run listed them;
# the name is a snapshot so the history stays readable after the agent is gone (0006).
agent_sync_run_changes = sa.Table(
    "agent_sync_run_changes",
    metadata,
    sa.Column("id", sa.Integer, sa.Identity(), primary_key=True),
    sa.Column(
        "run_id",
        sa.String(36),
        sa.ForeignKey(
            "agent_sync_runs.id", ondelete="CASCADE", name="fk_agent_sync_run_changes_run"
        ),
        nullable=False,
    ),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("agent_id", sa.String(36), nullable=True),
    sa.Column("vm_cuid", sa.String(128), nullable=True),
    sa.Column("name", sa.Text, nullable=False, server_default=""),
    sa.Column("reason", sa.Text, nullable=False, server_default=""),
    sa.Index("ix_agent_sync_run_changes_run", "run_id", "action", "id"),
)

# Signed change events received from ValidMind (agent-sync.md §5); the primary key is the
# replay guard, shared by every replica and kept across restarts.
validmind_events = sa.Table(
    "validmind_events",
    metadata,
    sa.Column("id", sa.String(128), primary_key=True),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("org_cuid", sa.String(128), nullable=False),
    sa.Column("record_cuid", sa.String(128), nullable=False),
    sa.Column("occurred_at", UTCDateTime, nullable=True),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Column("sync_run_id", sa.String(36), nullable=True),
    sa.Index("ix_validmind_events_received_at", "received_at"),
)


# ---------------------------------------------------------------------------------------------
# Gateway (migration 0002): invocations, their events, approvals, rules and the default policy.
# ---------------------------------------------------------------------------------------------

INVOCATION_STATUSES = (
    "received",
    "pending_approval",
    "approved",
    "denied",
    "expired",
    "executing",
    "succeeded",
    "failed",
    "cancelled",
)
APPROVAL_STATUSES = (
    "pending",
    "ai_escalated",
    "auto_approved",
    "auto_denied",
    "approved",
    "denied",
    "expired",
    "cancelled",
)
RULE_ACTIONS = ("auto_approve", "auto_deny", "human_approval", "ai_evaluation")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


invocations = sa.Table(
    "invocations",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("source", sa.String(256), nullable=False),
    sa.Column("tool", sa.String(512), nullable=False),
    sa.Column("input", sa.JSON, nullable=False),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("request_id", sa.String(256), nullable=True),
    sa.Column("idempotency_key", sa.String(256), nullable=True),
    # sha256 of (caller or presented agent id, idempotency key or source + request id): a repeated
    # submission finds the first one; NULL when the call carries neither key.
    sa.Column("dedupe_key", sa.String(64), nullable=True),
    sa.Column("thread_id", sa.String(256), nullable=True),
    sa.Column("agent_id", sa.String(256), nullable=True),
    sa.Column("agent_record_id", sa.String(36), nullable=True),
    sa.Column("agent_name", sa.Text, nullable=True),
    sa.Column("caller", sa.String(256), nullable=True),
    sa.Column("client_session_id", sa.String(256), nullable=True),
    sa.Column("client_name", sa.String(256), nullable=True),
    sa.Column("client_version", sa.String(128), nullable=True),
    sa.Column("status", sa.String(24), nullable=False),
    sa.Column("matched_rule_id", sa.String(36), nullable=True),
    sa.Column("result", sa.JSON, nullable=True),
    # Any JSON value: the Go original's hooks report the tool's response object (0008).
    sa.Column("error", sa.JSON, nullable=True),
    sa.Column("submitted_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("completed_at", UTCDateTime, nullable=True),
    sa.CheckConstraint(_in("status", INVOCATION_STATUSES), name="ck_invocations_status"),
    sa.Index("uq_invocations_dedupe_key", "dedupe_key", unique=True),
    sa.Index("ix_invocations_status", "status"),
    sa.Index("ix_invocations_page", "submitted_at", "id"),
    sa.Index("ix_invocations_agent_record_id", "agent_record_id"),
    sa.Index("ix_invocations_session", "agent_id", "client_session_id", "submitted_at"),
)

# Every status change of an invocation appends one row here, in the same transaction. On SQLite
# the table also has `n INTEGER PRIMARY KEY AUTOINCREMENT` (0015; `id` is unique there), the
# order workers follow events in (gateway.listener.EventFeed); nothing here writes or reads it.
invocation_events = sa.Table(
    "invocation_events",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column(
        "invocation_id",
        sa.String(36),
        sa.ForeignKey("invocations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("from_status", sa.String(24), nullable=True),
    sa.Column("status", sa.String(24), nullable=False),
    sa.Column("actor", sa.String(256), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("data", sa.JSON, nullable=False),
    sa.UniqueConstraint("invocation_id", "seq", name="uq_invocation_events_seq"),
)

# The decision on an invocation (one row per invocation, written with its first decision).
approvals = sa.Table(
    "approvals",
    metadata,
    sa.Column(
        "invocation_id",
        sa.String(36),
        sa.ForeignKey("invocations.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text, nullable=False, server_default=""),
    sa.Column("actor_id", sa.String(256), nullable=True),
    sa.Column("requested_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=True),
    sa.Column("decision_at", UTCDateTime, nullable=True),
    sa.CheckConstraint(_in("status", APPROVAL_STATUSES), name="ck_approvals_status"),
    sa.Index("ix_approvals_status_expires_at", "status", "expires_at"),
)

approval_rules = sa.Table(
    "approval_rules",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("action", sa.String(24), nullable=False),
    sa.Column("server_patterns", sa.JSON, nullable=False),
    sa.Column("tool_patterns", sa.JSON, nullable=False),
    sa.Column("agent_cuids", sa.JSON, nullable=False),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    # Which judge an ai_evaluation rule asks (judge.md; Go field names, migration 0008).
    sa.Column("atryum_llm_config_id", sa.String(64), nullable=True),
    sa.Column("model_config_cuid", sa.String(128), nullable=True),
    # Ours in addition (0005_judge): an approval's least confidence, and record-only rules.
    sa.Column("min_confidence", sa.Float, nullable=False, server_default="0"),
    sa.Column("shadow", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.CheckConstraint(_in("action", RULE_ACTIONS), name="ck_approval_rules_action"),
    sa.Index("ix_approval_rules_position", "position"),
)

# Single row: the default policy when no rule matches and the approval timeout. NULL columns fall
# back to the configuration file's defaults. Rule edits lock this row to serialise reordering.
gateway_policy = sa.Table(
    "gateway_policy",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("provider", sa.String(32), nullable=True),
    sa.Column("approval_timeout_seconds", sa.Integer, nullable=True),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    # Bumped with every write to approval_rules (store.py): the key of the rules cache.
    sa.Column("rules_version", sa.Integer, nullable=False, server_default="0"),
    sa.CheckConstraint("id = 1", name="ck_gateway_policy_single_row"),
)

# Upstream MCP servers behind /mcp/{server} (mcp-proxy.md §1). `auth_token`, header values and
# env values are secrets: stored to reach the upstream, never shown (the API masks them).
mcp_servers = sa.Table(
    "mcp_servers",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("name", sa.String(256), nullable=False, unique=True),
    sa.Column("endpoint_slug", sa.String(256), nullable=False, unique=True),
    sa.Column("mode", sa.String(8), nullable=False),
    sa.Column("base_url", sa.Text, nullable=False, server_default=""),
    sa.Column("command", sa.Text, nullable=False, server_default=""),
    sa.Column("args", sa.JSON, nullable=False),
    sa.Column("env", sa.JSON, nullable=False),
    sa.Column("auth_token", sa.Text, nullable=True),
    sa.Column("headers", sa.JSON, nullable=False),
    sa.Column("timeout_seconds", sa.Integer, nullable=False, server_default="30"),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("connection_status", sa.String(16), nullable=False, server_default="unknown"),
    sa.Column("last_checked_at", UTCDateTime, nullable=True),
    sa.Column("last_error_summary", sa.Text, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.CheckConstraint("mode IN ('stdio', 'http')", name="ck_mcp_servers_mode"),
)

# ---------------------------------------------------------------------------------------------
# Identity (migration 0003_identity): who changed what, operator sessions and API tokens.
# ---------------------------------------------------------------------------------------------

# One row per operator change (rules, policy, settings, agents, servers, LLM configs, tokens),
# written by `atryum.audit.record_change` in the transaction of the change itself.
audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("actor", sa.String(512), nullable=False),
    sa.Column("actor_name", sa.String(512), nullable=False, server_default=""),
    sa.Column("actor_method", sa.String(16), nullable=False, server_default=""),
    sa.Column("entity", sa.String(64), nullable=False),
    sa.Column("entity_id", sa.String(256), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("before", sa.JSON, nullable=True),
    sa.Column("after", sa.JSON, nullable=True),
    sa.Index("ix_audit_log_at", "at"),
    sa.Index("ix_audit_log_entity", "entity", "entity_id"),
)

# Server-side UI sessions. The browser holds only the session id; the table keeps its SHA-256.
operator_sessions = sa.Table(
    "operator_sessions",
    metadata,
    sa.Column("id_hash", sa.String(64), primary_key=True),
    sa.Column("issuer", sa.String(512), nullable=False),
    sa.Column("subject", sa.String(512), nullable=False),
    sa.Column("name", sa.String(512), nullable=False, server_default=""),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("csrf_token", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("last_seen_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("ended_at", UTCDateTime, nullable=True),
    sa.Index("ix_operator_sessions_subject", "issuer", "subject"),
)

# A UI login under way (authorization code flow): state → nonce and PKCE verifier, single use.
operator_logins = sa.Table(
    "operator_logins",
    metadata,
    sa.Column("state_hash", sa.String(64), primary_key=True),
    sa.Column("issuer", sa.String(512), nullable=False),
    sa.Column("nonce", sa.String(128), nullable=False),
    sa.Column("code_verifier", sa.String(128), nullable=False),
    sa.Column("return_to", sa.String(2048), nullable=False, server_default="/ui/"),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

# Operator API tokens issued by Atryum: shown once, kept as SHA-256, always expiring.
operator_api_tokens = sa.Table(
    "operator_api_tokens",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False),
    sa.Column("created_by", sa.String(512), nullable=False, server_default=""),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("last_used_at", UTCDateTime, nullable=True),
    sa.Column("revoked_at", UTCDateTime, nullable=True),
    sa.Index("uq_operator_api_tokens_hash", "token_hash", unique=True),
)


# ---------------------------------------------------------------------------------------------
# Charter judge (migration 0005_judge): LLM configs and external client sessions.
# ---------------------------------------------------------------------------------------------

LLM_PROVIDERS = ("openai", "anthropic", "openai_compatible")

# A local judge. `api_key` is write-only in the API; no foreign key from rules, so a deleted
# config leaves its rules in place, sending calls to a human and flagged.
llm_configs = sa.Table(
    "llm_configs",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("provider", sa.String(32), nullable=False),
    sa.Column("model", sa.String(256), nullable=False),
    sa.Column("api_key", sa.Text, nullable=True),
    sa.Column("base_url", sa.String(2048), nullable=False, server_default=""),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("timeout_seconds", sa.Float, nullable=False, server_default="20"),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.CheckConstraint(_in("provider", LLM_PROVIDERS), name="ck_llm_configs_provider"),
)

# A harness session per agent identity (`client_session_id`), kept while it is used: a session
# unseen for 7 days starts afresh, so the judge's history never reaches back further.
client_sessions = sa.Table(
    "client_sessions",
    metadata,
    sa.Column("agent_key", sa.String(256), primary_key=True),
    sa.Column("client_session_id", sa.String(256), primary_key=True),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("last_seen_at", UTCDateTime, nullable=False),
    sa.Index("ix_client_sessions_last_seen_at", "last_seen_at"),
)
