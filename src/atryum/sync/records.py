"""Turn raw ValidMind agent records into planner input, with record-level warnings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import sqlalchemy as sa

from atryum.db.tables import agents
from atryum.sync.planner import PulledRecord, source_hash


def column_length(column: sa.Column[Any]) -> int:
    length = cast(sa.String, column.type).length
    assert length is not None, column
    return length


# Column sizes the values must fit (name, description and charter are unbounded text).
CUID_MAX = column_length(agents.c.vm_cuid)
ORG_NAME_MAX = column_length(agents.c.vm_organization_name)


@dataclass
class NormalizedPull:
    records: list[PulledRecord] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # make the pull incomplete
    skipped_invalid: int = 0
    org_name: str = ""  # as it can be stored


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _storable(value: str, what: str, warnings: list[str]) -> str:
    """Text PostgreSQL can store: NUL characters (which it refuses) are dropped, with a warning."""
    if "\x00" not in value:
        return value
    warnings.append(f"{what} contained NUL characters, which were removed")
    return value.replace("\x00", "")


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
    out = NormalizedPull(org_name=_storable(org_name, "the organization name", []))
    if len(out.org_name) > ORG_NAME_MAX:
        out.warnings.append(
            f"the organization name is longer than {ORG_NAME_MAX} characters; stored shortened"
        )
        out.org_name = out.org_name[:ORG_NAME_MAX]
    for index, rec in enumerate(raw):
        cuid = rec.get("cuid")
        if not isinstance(cuid, str) or not cuid.strip():
            out.skipped_invalid += 1
            out.problems.append(f"record #{index + 1} ({_short(rec.get('name'))}) has no cuid")
            continue
        if len(cuid) > CUID_MAX or "\x00" in cuid:
            # It cannot be stored, so it cannot count as present: nothing may be retired.
            out.skipped_invalid += 1
            out.problems.append(
                f"record #{index + 1} ({_short(rec.get('name'))}) has a cuid Atryum cannot store "
                f"({_short(cuid)}: more than {CUID_MAX} characters or a NUL character); skipped"
            )
            continue
        name = rec.get("name")
        if isinstance(name, str):
            name = _storable(name, f"record {cuid}: the name", out.warnings)
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
        if charter:
            charter = _storable(charter, f"record {cuid}: the charter", out.warnings)
        description = fields.get("description")
        description = description if isinstance(description, str) else ""
        description = _storable(description, f"record {cuid}: the description", out.warnings)
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
                    org_name=out.org_name,
                    slug=slug,
                ),
            )
        )
    return out
