"""Agent registry: synced (ValidMind) and manual agents, runtime ids and managed-agent bindings."""
