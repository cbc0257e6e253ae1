"""Turn raw ValidMind agent records into planner input, with record-level warnings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from atryum.sync.planner import PulledRecord, source_hash


@dataclass
class NormalizedPull:
    records: list[PulledRecord] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # make the pull incomplete
    skipped_invalid: int = 0


def charter_value(custom_fields: dict[str, Any], key: str) -> Any:
    """`custom_fields[key]`, else `custom_fields.model[key]`; None when absent."""
    if key in custom_fields and custom_fields[key] is not None:
        return custom_fields[key]
    model = custom_fields.get("model")
    if isinstance(model, dict) and model.get(key) is not None:
        return model[key]
    return None


def normalize(
    raw: list[dict[str, Any]], *, charter_field_key: str, org_name: str, slug: str
) -> NormalizedPull:
    out = NormalizedPull()
    for index, rec in enumerate(raw):
        cuid = rec.get("cuid")
        if not isinstance(cuid, str) or not cuid.strip():
            out.skipped_invalid += 1
            out.problems.append(f"record #{index + 1} ({rec.get('name')!r}) has no cuid")
            continue
        name = rec.get("name")
        if not isinstance(name, str) or not name.strip():
            out.warnings.append(f"record {cuid} has no name; using its cuid as the name")
            name = cuid
        fields = rec.get("custom_fields")
        if not isinstance(fields, dict):
            fields = {}
        raw_charter = charter_value(fields, charter_field_key)
        charter: str | None
        if raw_charter is None:
            charter = ""
        elif isinstance(raw_charter, str):
            charter = raw_charter
        else:
            charter = None
            out.warnings.append(
                f"record {cuid} ({name}): charter field {charter_field_key!r} is a "
                f"{type(raw_charter).__name__}, not text; the previous charter was kept"
            )
        description = fields.get("description")
        description = description if isinstance(description, str) else ""
        out.records.append(
            PulledRecord(
                cuid=cuid,
                name=name.strip(),
                description=description,
                charter=charter,
                source_hash=source_hash(
                    name=name.strip(),
                    description=description,
                    charter=raw_charter if raw_charter is not None else "",
                    org_name=org_name,
                    slug=slug,
                ),
            )
        )
    return out
