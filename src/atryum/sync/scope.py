"""Check a sync scope against ValidMind before it is saved: a typo in the organization, record
type or charter field would otherwise sync nothing (or retire everything) without saying why."""

from __future__ import annotations

from atryum.validmind.client import ValidMindClient

LONG_TEXT = "long-text"


def _listed(values: list[str]) -> str:
    return ", ".join(sorted(values)) or "none"


def scope_problem(
    client: ValidMindClient, *, org_cuid: str, record_type: str, charter_field: str
) -> str | None:
    """What is wrong with the scope as ValidMind sees it, or None when it exists."""
    orgs = {o["cuid"]: o.get("name", "") for o in client.organizations()}
    if org_cuid not in orgs:
        return (
            f"ValidMind has no organization {org_cuid!r} for these credentials "
            f"(available: {_listed(list(orgs))})"
        )
    slugs = [t["slug"] for t in client.record_types(org_cuid)]
    if record_type not in slugs:
        return (
            f"organization {org_cuid} has no record type {record_type!r} "
            f"(available: {_listed(slugs)})"
        )
    fields = client.custom_fields(org_cuid, record_type)
    if charter_field not in {f["key"] for f in fields}:
        long_text = [f["key"] for f in fields if f.get("field_type") == LONG_TEXT]
        return (
            f"record type {record_type} has no custom field {charter_field!r} "
            f"(long-text fields: {_listed(long_text)})"
        )
    return None
