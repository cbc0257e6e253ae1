"""Threads of the gate's hot path only: hook submit/poll/report and the MCP proxy's decisions.

Every other blocking route shares Starlette's default thread pool; however many of its callers
wait (45 `sync?wait=true` during a slow ValidMind pull held a hook submission for 22.8 s, issue 14
row 5), none of them can take a thread of this pool, so the gate always has capacity.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

#: Concurrent blocking gate operations per process (each holds at most one database connection).
GATE_THREADS = 32
_POOL = ThreadPoolExecutor(GATE_THREADS, thread_name_prefix="atryum-gate")


async def on_gate(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run the blocking `fn` on a gate thread, with the caller's context variables."""
    call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(_POOL, call)
