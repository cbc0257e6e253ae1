"""ValidMind sync: fetch → plan → apply, the coordinator that runs it, and its run history."""
