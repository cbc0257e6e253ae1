"""Who changed what: one door for every operator change and its record (identity.md §3).

`record_change` writes one `audit_log` row inside the caller's transaction, so a change that
commits has its record and a change that rolls back leaves none. Rules, policy, settings, agents,
MCP servers, LLM configs and operator tokens all call it from their service functions.
"""

from atryum.audit.store import (
    AuditEntry,
    AuditFilter,
    list_changes,
    record_change,
    record_entity_change,
)

__all__ = ["AuditEntry", "AuditFilter", "list_changes", "record_change", "record_entity_change"]
