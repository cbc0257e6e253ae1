"""Gateway configuration: `[policy]` and `[approvals]` sections, read with safe defaults.

The database's `gateway_policy` row (set through `PUT /api/v1/policy`) overrides these; a NULL
there means "use the configuration file".
"""

from __future__ import annotations

from dataclasses import dataclass

from atryum.config import Config
from atryum.gateway.models import MANUAL_APPROVAL


@dataclass(frozen=True)
class GatewayDefaults:
    provider: str = MANUAL_APPROVAL
    approval_timeout_seconds: int = 3600
    sweep_interval_seconds: float = 5.0
    unregistered_agents: str = "global_rules"  # or "deny" (resolve.py)


def defaults_from(config: Config) -> GatewayDefaults:
    """Defaults from the `[policy]` and `[approvals]` sections of the Atryum config."""
    return GatewayDefaults(
        provider=config.policy.provider,
        approval_timeout_seconds=config.approvals.timeout_seconds,
        sweep_interval_seconds=config.approvals.sweep_interval_seconds,
        unregistered_agents=config.policy.unregistered_agents,
    )
