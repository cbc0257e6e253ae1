"""In-memory state of the ValidMind simulator: organizations, record types, custom fields,
inventory records, active faults and change listeners. Every method is thread-safe."""

from __future__ import annotations

import copy
import logging
import secrets
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

log = logging.getLogger(__name__)

#: Endpoint names that faults can target (`endpoints` fault option); "*" targets all of them.
ENDPOINTS: tuple[str, ...] = (
    "connection",
    "organizations",
    "primary-record-types",
    "custom-fields",
    "agents",
    "charter-preview",
    "evaluate",
    "model-configs",
)

#: The model configurations the simulator's judge offers (`GET /model-configs`).
MODEL_CONFIGS: tuple[dict[str, str], ...] = (
    {"cuid": "mc-sim-default", "name": "Simulated judge (deterministic)"},
    {"cuid": "mc-sim-strict", "name": "Simulated judge, strict (deterministic)"},
)

RecordStatus = Literal["active", "archived", "deleted"]
ChangeType = Literal["record.created", "record.updated", "record.archived", "record.deleted"]


class SimNotFoundError(LookupError):
    """An organization, record type or record does not exist."""


class SimConflictError(ValueError):
    """The change conflicts with the current state (e.g. a duplicate cuid)."""


@dataclass(frozen=True)
class Change:
    """One record change, handed to listeners (the notifier) after the state lock is released."""

    type: ChangeType
    org_cuid: str
    record_cuid: str
    occurred_at: datetime = field(default_factory=lambda: datetime.now(UTC))


Listener = Callable[[Change], None]


class Faults(BaseModel):
    """Fault injection options; all combinable. They persist until cleared, or for the next
    `times` matching requests. A request matches when its endpoint is in `endpoints`."""

    model_config = ConfigDict(extra="forbid")

    status: int | None = Field(default=None, ge=100, le=599)
    body: str | dict[str, Any] | None = None
    endpoints: list[str] = Field(default_factory=lambda: ["agents"])
    delay_seconds: float | None = Field(default=None, ge=0, le=300)
    truncate_after_page: int | None = Field(default=None, ge=0)
    truncate_pages: int | None = Field(default=None, ge=1)
    empty_answer: bool = False
    wrong_org: bool = False
    malformed_json: bool = False
    ignore_paging: bool = False
    retry_after: int | None = Field(default=None, ge=0)
    drop_cuid: bool = False
    times: int | None = Field(default=None, ge=1)

    @field_validator("endpoints")
    @classmethod
    def _known_endpoints(cls, value: list[str]) -> list[str]:
        unknown = [e for e in value if e != "*" and e not in ENDPOINTS]
        if unknown:
            raise ValueError(f"unknown endpoint(s) {unknown}; use any of {list(ENDPOINTS)} or '*'")
        return value


def validate_faults(faults: dict[str, Any]) -> dict[str, Any]:
    """Normalize a faults dict (raises ValueError with a readable message when invalid)."""
    if not faults:
        return {}
    try:
        model = Faults.model_validate(faults)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'faults'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ValueError(f"invalid faults: {problems}") from None
    data = model.model_dump(exclude_none=True)
    return {k: v for k, v in data.items() if v is not False}


def _now() -> str:
    return datetime.now(UTC).isoformat()


def new_cuid() -> str:
    return "c" + uuid.uuid4().hex[:24]


class SimState:
    """The simulated ValidMind inventory."""

    def __init__(
        self,
        *,
        machine_key: str = "sim-machine-key",
        machine_secret: str = "sim-machine-secret",
        api_key: str | None = None,
        api_secret: str | None = None,
        api_key_org: str | None = None,
    ) -> None:
        if bool(api_key) != bool(api_secret):
            missing = "api_secret" if api_key else "api_key"
            raise ValueError(f"API key credentials need both api_key and api_secret ({missing})")
        self.machine_key = machine_key
        self.machine_secret = machine_secret
        self.api_key = api_key
        self.api_secret = api_secret
        self._api_key_org = api_key_org
        self.machine_user_cuid = "mu-sim-" + uuid.uuid5(uuid.NAMESPACE_URL, machine_key).hex[:12]
        self._lock = threading.RLock()
        self._orgs: dict[str, dict[str, Any]] = {}
        self._record_types: dict[tuple[str, str], dict[str, Any]] = {}
        self._fields: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        self._records: dict[str, dict[str, Any]] = {}
        # records per (org, slug), in creation order; plus a cache of the active ones
        self._by_type: dict[tuple[str, str], dict[str, None]] = {}
        self._active_cache: dict[tuple[str, str], list[str]] = {}
        self._faults: dict[str, Any] = {}
        self._listeners: list[Listener] = []

    # ------------------------------------------------------------------ seeding
    @classmethod
    def from_seed(cls, seed: dict[str, Any], **kw: Any) -> SimState:
        """Build a state from a seed dict:
        `{"orgs": [{"cuid", "name", "record_types": [{"slug", "name", "cuid"?,
        "custom_fields": [{"key", "name", "field_type"}],
        "records": [{"cuid"?, "name", "custom_fields": {...}, "status"?}]}]}]}`."""
        state = cls(**kw)
        for org in seed.get("orgs", []):
            state.add_org(org["cuid"], org["name"])
            for rt in org.get("record_types", []):
                state.add_record_type(org["cuid"], rt["slug"], rt["name"], rt.get("cuid"))
                for cf in rt.get("custom_fields", []):
                    state.add_custom_field(
                        org["cuid"], rt["slug"], cf["key"], cf["name"], cf["field_type"]
                    )
                for rec in rt.get("records", []):
                    created = state.create_record(
                        org["cuid"],
                        rt["slug"],
                        name=rec["name"],
                        custom_fields=rec.get("custom_fields") or {},
                        cuid=rec.get("cuid"),
                    )
                    status = rec.get("status", "active")
                    if status == "archived":
                        state.archive_record(created["cuid"])
                    elif status == "deleted":
                        state.delete_record(created["cuid"])
                    elif status != "active":
                        raise ValueError(f"seed record {rec['name']!r}: unknown status {status!r}")
        return state

    # ------------------------------------------------------------------ listeners
    def add_listener(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def _emit(self, changes: Iterable[Change]) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for change in changes:
            for listener in listeners:
                try:
                    listener(change)
                except Exception:
                    log.exception("sim listener failed for %s %s", change.type, change.record_cuid)

    # ------------------------------------------------------------------ credentials
    @property
    def api_key_org(self) -> str | None:
        """The org the API key is bound to (default: the first organization)."""
        with self._lock:
            if self._api_key_org is not None:
                return self._api_key_org
            return next(iter(self._orgs), None)

    def check_machine(self, key: str, secret: str) -> bool:
        return secrets.compare_digest(
            key.encode(), self.machine_key.encode()
        ) & secrets.compare_digest(secret.encode(), self.machine_secret.encode())

    def check_api_key(self, key: str, secret: str) -> bool:
        if not self.api_key or not self.api_secret:
            return False
        return secrets.compare_digest(key.encode(), self.api_key.encode()) & (
            secrets.compare_digest(secret.encode(), self.api_secret.encode())
        )

    # ------------------------------------------------------------------ schema
    def add_org(self, cuid: str, name: str) -> None:
        if not cuid:
            raise ValueError("organization cuid must not be empty")
        with self._lock:
            self._orgs[cuid] = {"cuid": cuid, "name": name}

    def add_record_type(self, org_cuid: str, slug: str, name: str, cuid: str | None = None) -> None:
        if not slug:
            raise ValueError("record type slug must not be empty")
        with self._lock:
            self._require_org(org_cuid)
            key = (org_cuid, slug)
            existing = self._record_types.get(key)
            self._record_types[key] = {
                "cuid": cuid or (existing["cuid"] if existing else new_cuid()),
                "slug": slug,
                "name": name,
            }
            self._fields.setdefault(key, {})
            self._by_type.setdefault(key, {})

    def add_custom_field(
        self, org_cuid: str, slug: str, key: str, name: str, field_type: str
    ) -> None:
        if not key:
            raise ValueError("custom field key must not be empty")
        with self._lock:
            self._require_record_type(org_cuid, slug)
            self._fields[(org_cuid, slug)][key] = {
                "key": key,
                "name": name,
                "field_type": field_type,
            }

    # ------------------------------------------------------------------ records
    def create_record(
        self,
        org_cuid: str,
        slug: str,
        *,
        name: str,
        custom_fields: dict[str, Any] | None = None,
        cuid: str | None = None,
    ) -> dict[str, Any]:
        if custom_fields is not None and not isinstance(custom_fields, dict):
            raise ValueError("custom_fields must be an object")
        with self._lock:
            record = self._insert(org_cuid, slug, name, custom_fields or {}, cuid)
            result = self._public(record)
        self._emit([Change("record.created", org_cuid, record["cuid"])])
        return result

    def bulk_create(
        self,
        org_cuid: str,
        slug: str,
        *,
        count: int,
        name_prefix: str = "Bulk agent",
        charter_bytes: int = 600,
        charter_field_key: str = "charter",
    ) -> list[str]:
        """Create `count` records at once (benchmarks). Listeners hear one change: the last."""
        if count < 0:
            raise ValueError("count must be >= 0")
        charter_text = bulk_charter(charter_bytes)
        cuids: list[str] = []
        with self._lock:
            self._require_record_type(org_cuid, slug)
            start = len(self._by_type[(org_cuid, slug)])
            for i in range(count):
                record = self._insert(
                    org_cuid,
                    slug,
                    f"{name_prefix} {start + i + 1:06d}",
                    {charter_field_key: charter_text, "description": f"{name_prefix} #{i + 1}"},
                    None,
                )
                cuids.append(record["cuid"])
        if cuids:
            self._emit([Change("record.created", org_cuid, cuids[-1])])
        return cuids

    def update_record(
        self,
        cuid: str,
        *,
        name: str | None = None,
        custom_fields: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Change the name and/or merge `custom_fields` into the record's fields."""
        if custom_fields is not None and not isinstance(custom_fields, dict):
            raise ValueError("custom_fields must be an object")
        with self._lock:
            record = self._live_record(cuid)
            if name is not None:
                record["name"] = name
            if custom_fields:
                record["custom_fields"].update(copy.deepcopy(custom_fields))
            record["updated_at"] = _now()
            result = self._public(record)
        self._emit([Change("record.updated", record["org_cuid"], cuid)])
        return result

    def archive_record(self, cuid: str) -> None:
        self._set_status(cuid, "archived", "record.archived")

    def unarchive_record(self, cuid: str) -> None:
        self._set_status(cuid, "active", "record.created")

    def delete_record(self, cuid: str) -> None:
        self._set_status(cuid, "deleted", "record.deleted")

    def get_record(self, cuid: str) -> dict[str, Any]:
        """A copy of a record, whatever its status (raises SimNotFoundError)."""
        with self._lock:
            record = self._records.get(cuid)
            if record is None:
                raise SimNotFoundError(f"record {cuid!r} not found")
            return self._public(record)

    # ------------------------------------------------------------------ faults
    def set_faults(self, **faults: Any) -> None:
        """Replace the active faults (validated; no arguments clears them)."""
        normalized = validate_faults(faults)
        with self._lock:
            self._faults = normalized

    def clear_faults(self) -> None:
        with self._lock:
            self._faults = {}

    @property
    def faults(self) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._faults)

    def take_faults(self, endpoint: str) -> dict[str, Any]:
        """The faults that apply to one request to `endpoint` ({} if none). Counts the request
        against `times`; the faults clear themselves once used up."""
        with self._lock:
            faults = self._faults
            if not faults:
                return {}
            targets = faults.get("endpoints", ["agents"])
            if "*" not in targets and endpoint not in targets:
                return {}
            taken = copy.deepcopy(faults)
            if "times" in faults:
                faults["times"] -= 1
                if faults["times"] <= 0:
                    self._faults = {}
            return taken

    # ------------------------------------------------------------------ reads
    def org(self, cuid: str) -> dict[str, Any]:
        with self._lock:
            return dict(self._require_org(cuid))

    def orgs(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(o) for o in self._orgs.values()]

    def record_types(self, org_cuid: str) -> list[dict[str, Any]]:
        with self._lock:
            self._require_org(org_cuid)
            return [dict(rt) for (org, _), rt in self._record_types.items() if org == org_cuid]

    def custom_fields(self, org_cuid: str, slug: str) -> list[dict[str, Any]]:
        with self._lock:
            self._require_record_type(org_cuid, slug)
            return [dict(f) for f in self._fields[(org_cuid, slug)].values()]

    def active_records(
        self, org_cuid: str, slug: str, *, offset: int = 0, limit: int | None = None
    ) -> tuple[list[dict[str, Any]], int]:
        """A slice of the active records of one org and record type, and their total."""
        with self._lock:
            self._require_record_type(org_cuid, slug)
            key = (org_cuid, slug)
            active = self._active_cache.get(key)
            if active is None:
                active = [c for c in self._by_type[key] if self._records[c]["status"] == "active"]
                self._active_cache[key] = active
            end = len(active) if limit is None else offset + limit
            page = [
                {
                    "cuid": self._records[c]["cuid"],
                    "name": self._records[c]["name"],
                    "custom_fields": copy.deepcopy(self._records[c]["custom_fields"]),
                }
                for c in active[offset:end]
            ]
            return page, len(active)

    def dump(self) -> dict[str, Any]:
        """Everything, for `GET /admin/state`."""
        with self._lock:
            return {
                "orgs": [dict(o) for o in self._orgs.values()],
                "record_types": [
                    {"org_cuid": org, **rt} for (org, _), rt in self._record_types.items()
                ],
                "custom_fields": [
                    {"org_cuid": org, "record_type_slug": slug, **f}
                    for (org, slug), fields in self._fields.items()
                    for f in fields.values()
                ],
                "records": [self._public(r) for r in self._records.values()],
                "faults": copy.deepcopy(self._faults),
            }

    # ------------------------------------------------------------------ internals
    def _require_org(self, org_cuid: str) -> dict[str, Any]:
        org = self._orgs.get(org_cuid)
        if org is None:
            raise SimNotFoundError(f"organization {org_cuid!r} not found")
        return org

    def _require_record_type(self, org_cuid: str, slug: str) -> dict[str, Any]:
        self._require_org(org_cuid)
        rt = self._record_types.get((org_cuid, slug))
        if rt is None:
            raise SimNotFoundError(f"record type {slug!r} not found in organization {org_cuid!r}")
        return rt

    def _live_record(self, cuid: str) -> dict[str, Any]:
        record = self._records.get(cuid)
        if record is None or record["status"] == "deleted":
            raise SimNotFoundError(f"record {cuid!r} not found")
        return record

    def _insert(
        self,
        org_cuid: str,
        slug: str,
        name: str,
        custom_fields: dict[str, Any],
        cuid: str | None,
    ) -> dict[str, Any]:
        self._require_record_type(org_cuid, slug)
        cuid = cuid or new_cuid()
        old = self._records.get(cuid)
        if old is not None:
            if old["status"] != "deleted":
                raise SimConflictError(f"record {cuid!r} already exists")
            # a deleted record's cuid may be reused: the old one goes for good
            del self._records[cuid]
            self._by_type[(old["org_cuid"], old["record_type_slug"])].pop(cuid, None)
            self._active_cache.pop((old["org_cuid"], old["record_type_slug"]), None)
        now = _now()
        record = {
            "cuid": cuid,
            "org_cuid": org_cuid,
            "record_type_slug": slug,
            "name": name,
            "custom_fields": copy.deepcopy(custom_fields),
            "status": "active",
            "created_at": now,
            "updated_at": now,
        }
        self._records[cuid] = record
        self._by_type[(org_cuid, slug)][cuid] = None
        self._active_cache.pop((org_cuid, slug), None)
        return record

    def _set_status(self, cuid: str, status: RecordStatus, change: ChangeType) -> None:
        with self._lock:
            record = self._live_record(cuid)
            if record["status"] == status:
                return  # already there: no change, no notification
            record["status"] = status
            record["updated_at"] = _now()
            self._active_cache.pop((record["org_cuid"], record["record_type_slug"]), None)
            org_cuid = record["org_cuid"]
        self._emit([Change(change, org_cuid, cuid)])

    @staticmethod
    def _public(record: dict[str, Any]) -> dict[str, Any]:
        return copy.deepcopy(record)


_CHARTER_SENTENCES = (
    "May read the records assigned to its queue and summarise them for the owning team.",
    "May draft replies and notes, which a person reviews before anything leaves the bank.",
    "May not move money, change limits or close accounts.",
    "May not export customer data outside approved systems.",
    "Anything irreversible or affecting more than one customer needs a human approval.",
)


def bulk_charter(size: int) -> str:
    """A charter of exactly `size` characters made of plausible sentences."""
    if size <= 0:
        return ""
    text = " ".join(_CHARTER_SENTENCES)
    while len(text) < size:
        text = f"{text} {text}"
    return text[:size]
