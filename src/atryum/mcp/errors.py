"""What an upstream's failure is, without the MCP SDK (the routes need it before any upstream
is used; the SDK is imported with the pool, on first use)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import mcp_types as types


class UpstreamFailure(Exception):
    """The upstream could not answer. The message names the server and is safe to show."""


class UpstreamTimeout(UpstreamFailure):
    pass


class UpstreamError(UpstreamFailure):
    """The upstream answered with a JSON-RPC error (relayed as it is)."""

    def __init__(self, server: str, error: types.ErrorData) -> None:
        super().__init__(f"MCP server {server!r}: {error.message}")
        self.error = error
