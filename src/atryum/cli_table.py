"""Render a sync run as a readable plain-text table for the terminal."""

from __future__ import annotations

from typing import Any

COUNTS = (
    "fetched",
    "created",
    "updated",
    "unchanged",
    "restored",
    "retired",
    "kept_dependent",
    "skipped_invalid",
)


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]
    line = "  ".join("-" * w for w in widths)
    out = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)), line]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(out)


def render_run(run: dict[str, Any]) -> str:
    title = f"sync run {run['id']}  trigger={run['trigger']}  status={run['status'].upper()}"
    if run.get("dry_run"):
        title += "  (dry run: nothing was written)"
    parts = [title, "", table(["count", "value"], [[k, str(run.get(k, 0))] for k in COUNTS])]
    if run.get("error"):
        parts += ["", f"note: {run['error']}"]
    for warning in run.get("warnings") or []:
        parts.append(f"warning: {warning}")
    changes = run.get("changes") or []
    if changes:
        rows = [
            [c["action"], c.get("name") or "", c.get("vm_cuid") or "", c.get("reason") or ""]
            for c in changes
        ]
        parts += ["", table(["action", "agent", "vm_cuid", "reason"], rows)]
    more = int(run.get("changes_total") or 0) - len(changes)
    if more > 0:
        parts += [
            "",
            f"… and {more} more changes: atryum sync --all, or "
            f"GET /api/v1/agents/sync/runs/{run['id']}/changes",
        ]
    return "\n".join(parts)
