"""MCP proxy: /mcp/{server}, the upstream pool (stdio, streamable HTTP), the servers registry."""
