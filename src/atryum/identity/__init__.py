"""Identity: who is calling (agents' bearer tokens, [[auth]]) and who may decide (operators:
login, sessions, API tokens, roles; `atryum.identity.operators`).

`AgentIdentity` is a verified agent caller; `same_agent` is the four-eyes check of a decision.
"""

from atryum.identity.four_eyes import same_agent
from atryum.identity.tokens import AgentIdentity

__all__ = ["AgentIdentity", "same_agent"]
