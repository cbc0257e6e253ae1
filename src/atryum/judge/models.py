"""Judge records as the rest of the code sees them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

PROVIDERS = ("openai", "anthropic", "openai_compatible")
DEFAULT_TIMEOUT_SECONDS = 20.0


@dataclass(frozen=True)
class LlmConfig:
    """A local judge: which model at which provider. `api_key` never leaves Atryum's answers
    unmasked (the API shows "***"), and `repr` leaves it out."""

    id: str
    name: str
    provider: str
    model: str
    base_url: str
    enabled: bool
    timeout_seconds: float
    created_at: datetime
    updated_at: datetime
    api_key: str | None = None

    def __repr__(self) -> str:
        return (
            f"LlmConfig(id={self.id!r}, name={self.name!r}, provider={self.provider!r}, "
            f"model={self.model!r}, enabled={self.enabled})"
        )


@dataclass(frozen=True)
class AgentContext:
    """What ValidMind's `/evaluate` needs to know about the calling agent."""

    vm_cuid: str | None
    org_cuid: str
    tags: list[str]
    charter_field_key: str
