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


# Column sizes the values must fit (description and charter are unbounded text).
CUID_MAX = column_length(agents.c.vm_cuid)
ORG_NAME_MAX = column_length(agents.c.vm_organization_name)
# The name is indexed (the agent list's order): PostgreSQL refuses an index entry over about
# 2.7 kB, and one such record would fail every sync. Names are stored at most this long, as
# the API accepts them for manual agents.
NAME_MAX = 512


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


#: A record's source-owned content as staged for the apply: (cuid, name, description, charter,
#: source_hash); charter None keeps the previous charter.
Content = tuple[str, str, str, str | None, str]


class Normalizer:
    """Normalizes a pull page by page, as the pages arrive.

    `known` maps the cuid of each active, unflagged agent of the org to its stored source hash.
    A record whose fingerprint matches costs no write, so its content is not kept: the record is
    reduced to a fingerprint (cuid, name, hash) and `page` does not return it. Everything else
    comes back from `page` as `Content` for the caller to stage. Without `known`, records keep
    their content (`NormalizedPull.records` is then the whole pull)."""

    def __init__(
        self, *, charter_field_key: str, slug: str, known: dict[str, str | None] | None = None
    ) -> None:
        self.out = NormalizedPull()
        self._charter_key = charter_field_key
        self._slug = slug
        self._known = known
        self._index = 0
        self._org_set = False

    def set_org_name(self, org_name: str) -> None:
        if self._org_set:
            return
        self._org_set = True
        out = self.out
        out.org_name = _storable(org_name, "the organization name", [])
        if len(out.org_name) > ORG_NAME_MAX:
            out.warnings.append(
                f"the organization name is longer than {ORG_NAME_MAX} characters; stored shortened"
            )
            out.org_name = out.org_name[:ORG_NAME_MAX]

    def page(self, raw: list[dict[str, Any]]) -> list[Content]:
        """Normalize one page; returns the content to stage (see the class docstring)."""
        out, key, known, slug = self.out, self._charter_key, self._known, self._slug
        records = out.records
        staged: list[Content] = []
        for rec in raw:
            self._index += 1
            cuid, name, fields = rec.get("cuid"), rec.get("name"), rec.get("custom_fields")
            # The common, clean record takes this path: every check of `_normalize` passes.
            if type(cuid) is str and type(name) is str and type(fields) is dict:
                charter, description = fields.get(key), fields.get("description", "")
                name = name.strip()
                if (
                    type(charter) is str
                    and type(description) is str
                    and 0 < len(name) <= NAME_MAX
                    and 0 < len(cuid) <= CUID_MAX
                    and cuid.strip()
                    and "\x00" not in cuid
                    and "\x00" not in name
                    and "\x00" not in charter
                    and "\x00" not in description
                ):
                    digest = source_hash(
                        name=name,
                        description=description,
                        charter=charter,
                        org_name=out.org_name,
                        slug=slug,
                    )
                    if known is None:
                        records.append(PulledRecord(cuid, name, description, charter, digest))
                    else:
                        records.append(PulledRecord(cuid, name, "", None, digest))
                        if known.get(cuid, _UNKNOWN) != digest:
                            staged.append((cuid, name, description, charter, digest))
                    continue
            pulled = self._normalize(rec)
            if pulled is None:
                continue
            if known is None:
                records.append(pulled)
                continue
            # Fingerprint only: the content lives in the staging table (or nowhere, unchanged).
            records.append(PulledRecord(pulled.cuid, pulled.name, "", None, pulled.source_hash))
            if known.get(pulled.cuid, _UNKNOWN) != pulled.source_hash:
                staged.append(
                    (
                        pulled.cuid,
                        pulled.name,
                        pulled.description,
                        pulled.charter,
                        pulled.source_hash,
                    )
                )
        return staged

    def _normalize(self, rec: dict[str, Any]) -> PulledRecord | None:
        """Every rule, with its warning or problem; None when the record cannot be used."""
        out, key, index = self.out, self._charter_key, self._index
        cuid = rec.get("cuid")
        if not isinstance(cuid, str) or not cuid.strip():
            out.skipped_invalid += 1
            out.problems.append(f"record #{index} ({_short(rec.get('name'))}) has no cuid")
            return None
        if len(cuid) > CUID_MAX or "\x00" in cuid:
            # It cannot be stored, so it cannot count as present: nothing may be retired.
            out.skipped_invalid += 1
            out.problems.append(
                f"record #{index} ({_short(rec.get('name'))}) has a cuid Atryum cannot "
                f"store ({_short(cuid)}: more than {CUID_MAX} characters or a NUL "
                "character); skipped"
            )
            return None
        name = rec.get("name")
        if isinstance(name, str):
            name = _storable(name, f"record {cuid}: the name", out.warnings)
        if not isinstance(name, str) or not name.strip():
            out.warnings.append(f"record {cuid} has no name; using its cuid as the name")
            name = cuid
        fields = rec.get("custom_fields")
        if not isinstance(fields, dict):
            fields = {}
        raw_charter = charter_value(fields, key)
        charter: str | None
        if raw_charter is None:
            charter = ""
        elif isinstance(raw_charter, str):
            charter = raw_charter
        else:
            charter = None
            out.warnings.append(
                f"record {cuid} ({name}): charter field {key!r} is a "
                f"{type(raw_charter).__name__}, not text; the previous charter was kept"
            )
        if charter:
            charter = _storable(charter, f"record {cuid}: the charter", out.warnings)
        description = fields.get("description")
        description = description if isinstance(description, str) else ""
        description = _storable(description, f"record {cuid}: the description", out.warnings)
        name = name.strip()
        if len(name) > NAME_MAX:
            out.warnings.append(
                f"record {cuid}: the name is longer than {NAME_MAX} characters; stored shortened"
            )
            name = name[:NAME_MAX]
        digest = source_hash(
            name=name,
            description=description,
            charter=raw_charter if raw_charter is not None else "",
            org_name=out.org_name,
            slug=self._slug,
        )
        return PulledRecord(cuid, name, description, charter, digest)


_UNKNOWN = object()


def normalize(
    raw: list[dict[str, Any]], *, charter_field_key: str, org_name: str, slug: str
) -> NormalizedPull:
    """A whole pull at once, content kept (dry previews, tests)."""
    normalizer = Normalizer(charter_field_key=charter_field_key, slug=slug)
    normalizer.set_org_name(org_name)
    normalizer.page(raw)
    return normalizer.out
