"""A serving process's long-lived objects out of the way of full garbage collections.

A full collection walks every tracked object. After start-up that is some 140 000 (the web
framework, SQLAlchemy, the models, the migrations), and 180 000 once the MCP SDK is loaded:
40-60 ms on these two cores, more on a slow day, every few seconds under load, and every request
in flight waits for it (the p99 of the gate and of the MCP proxy). `settle` collects what is
garbage and moves everything else to the permanent generation, which collections skip; what is
created afterwards is collected as before. A serving process settles once start-up is done
(`create_app(settle_heap=True)`: `atryum run`, its workers, the demo; never an app a test runs
in its own process), and `resettle` does it again after the MCP SDK's first (lazy) load and after
a sync run, whose `sync.gc_hold` gives everything frozen back to the collector when it ends.
"""

from __future__ import annotations

import gc

_settled = False


def settle() -> None:
    global _settled
    _settled = True
    gc.collect()
    gc.freeze()


def resettle() -> None:
    """`settle` again, in a process that settled."""
    if _settled:
        settle()
