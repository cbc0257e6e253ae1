"""Identity: who is calling (agents, identity.md §1) and who may decide (operators, §2-4)."""
