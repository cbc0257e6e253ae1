"""A test upstream MCP server on the `mcp` SDK, over stdio or streamable HTTP.

    python -m tests.mcp.upstream stdio
    python -m tests.mcp.upstream http PORT

Every tool run appends a line to the file named by $RUN_LOG, so tests can count executions.
$UPSTREAM_SECRET is a secret the server knows (tests check it never leaks); `leak_to_stderr`
prints it to stderr.
"""

from __future__ import annotations

import asyncio
import os
import sys

from mcp.server import MCPServer
from mcp.server.mcpserver import Context

server = MCPServer("atryum-test-upstream")


def _ran(tool: str, detail: str = "") -> None:
    path = os.environ.get("RUN_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(f"{tool} {detail}\n")


@server.tool()
def add(a: float, b: float) -> float:
    """Add two numbers."""
    _ran("add", f"{a} {b}")
    return a + b


@server.tool()
def write_note(title: str, text: str) -> str:
    """Write a note."""
    _ran("write_note", title)
    return f"saved {title}"


@server.tool()
def delete_note(title: str) -> str:
    """Delete a note."""
    _ran("delete_note", title)
    return f"deleted {title}"


@server.tool()
def crash() -> str:
    """Exit the server process in the middle of the call."""
    _ran("crash")
    os._exit(3)


@server.tool()
async def hang(seconds: float = 3600) -> str:
    """Never answer (within any sane timeout)."""
    _ran("hang")
    await asyncio.sleep(seconds)
    return "woke up"


@server.tool()
async def change_tools(ctx: Context) -> str:
    """Tell the client the tool list changed (`notifications/tools/list_changed`)."""
    _ran("change_tools")
    await ctx.session.send_tool_list_changed()
    return "announced"


@server.tool()
def leak_to_stderr() -> str:
    """Print the server's secret to stderr (which must never reach a client)."""
    _ran("leak_to_stderr")
    print(f"debug: token={os.environ.get('UPSTREAM_SECRET', '')}", file=sys.stderr, flush=True)
    return "printed"


@server.resource("note://{title}")
def note(title: str) -> str:
    """A note as a resource."""
    return f"the note {title}"


@server.prompt()
def greet(name: str) -> str:
    """A greeting prompt."""
    return f"Say hello to {name}."


if __name__ == "__main__":
    if sys.argv[1] == "http":
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run()
