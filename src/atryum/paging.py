"""Paged lists: every list endpoint answers `{items, total, offset, limit}`, with a default and a
maximum `limit`, so no answer grows with the size of the deployment."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from atryum.limits import INT32_MAX

DEFAULT_LIMIT = 50
MAX_LIMIT = 500

Offset = Annotated[int, Query(ge=0, le=INT32_MAX, description="items to skip")]
Limit = Annotated[
    int, Query(ge=1, le=MAX_LIMIT, description=f"items per page (at most {MAX_LIMIT})")
]
