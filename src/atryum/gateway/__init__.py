"""Gateway: gated tool calls (invocations), rules, human approval, audit events, live updates."""
