"""Gateway configuration: `[policy]` and `[approvals]` sections, read with safe defaults.

The database's `gateway_policy` row (set through `PUT /api/v1/policy`) overrides these; a NULL
there means "use the configuration file".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from atryum.gateway.models import MANUAL_APPROVAL


class PolicyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    provider: Literal["manual_approval", "always_approve", "always_deny"] = "manual_approval"


class ApprovalsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    timeout_seconds: int = Field(default=3600, ge=1)
    sweep_interval_seconds: float = Field(default=5.0, gt=0)


@dataclass(frozen=True)
class GatewayDefaults:
    provider: str = MANUAL_APPROVAL
    approval_timeout_seconds: int = 3600
    sweep_interval_seconds: float = 5.0


def defaults_from(config: Any) -> GatewayDefaults:
    """Defaults from the Atryum config (its `policy`/`approvals` sections when it has them)."""
    policy = getattr(config, "policy", None)
    approvals = getattr(config, "approvals", None)
    policy = policy if isinstance(policy, PolicyConfig) else PolicyConfig()
    approvals = approvals if isinstance(approvals, ApprovalsConfig) else ApprovalsConfig()
    return GatewayDefaults(
        provider=policy.provider,
        approval_timeout_seconds=approvals.timeout_seconds,
        sweep_interval_seconds=approvals.sweep_interval_seconds,
    )
