"""Long-lived objects out of the way of the cyclic garbage collector's full collections.

A full collection walks every tracked object. After start-up that is some 140 000 (the web
framework, SQLAlchemy, the models, the migrations), and 180 000 once the MCP SDK is loaded:
40-60 ms on these two cores, more on a slow day, every few seconds under load, and every request
in flight waits for it (the p99 of the gate and of the MCP proxy). `freeze` collects what is
garbage and moves everything else to the permanent generation, which collections skip; what is
created afterwards is collected as before. It is called once start-up is done and once more
after the MCP SDK's first (lazy) load.
"""

from __future__ import annotations

import gc


def freeze() -> None:
    gc.collect()
    gc.freeze()
