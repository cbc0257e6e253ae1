"""The demo's upstream MCP server (stdio, on the `mcp` SDK): a calculator and a notebook.

`atryum demo` registers it as the upstream `demo-tools`; Atryum starts it on first use.
Run alone with `python -m atryum.mcp.demo_server` (stdio) or `… http PORT` (streamable HTTP at
http://127.0.0.1:PORT/mcp; the benchmark uses both).
"""

from __future__ import annotations

import sys

from mcp.server import MCPServer

server = MCPServer("atryum-demo-tools", instructions="A calculator and a notebook.")
_notes: dict[str, str] = {}


@server.tool()
def add(a: float, b: float) -> float:
    """Add two numbers."""
    return a + b


@server.tool()
def read_note(title: str) -> str:
    """Read the note with this title."""
    return _notes.get(title, f"there is no note titled {title!r}")


@server.tool()
def write_note(title: str, text: str) -> str:
    """Write (or overwrite) the note with this title."""
    _notes[title] = text
    return f"saved note {title!r}"


@server.tool()
def delete_note(title: str) -> str:
    """Delete the note with this title."""
    return f"deleted note {title!r}" if _notes.pop(title, None) is not None else "no such note"


if __name__ == "__main__":
    if sys.argv[1:2] == ["http"]:
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run()
