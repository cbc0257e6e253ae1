"""The OpenAPI document as the API really answers: every error is `{"error": {"message": …}}`.

FastAPI documents its own validation body (`{"detail": [...]}`) for 422; Atryum's handlers answer
with the same error shape as every other status, so the document says so.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

ERROR_SCHEMA: dict[str, Any] = {
    "title": "ErrorResponse",
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message"],
            "properties": {
                "message": {"type": "string", "description": "what went wrong and what to do"}
            },
        }
    },
}
_ERROR_REF = {"$ref": "#/components/schemas/ErrorResponse"}
_FASTAPI_ONLY = ("HTTPValidationError", "ValidationError")


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            for operation in (op for item in doc.get("paths", {}).values() for op in item.values()):
                invalid = operation.get("responses", {}).get("422")
                if invalid is not None:
                    invalid["content"] = {"application/json": {"schema": _ERROR_REF}}
            schemas = doc.setdefault("components", {}).setdefault("schemas", {})
            for name in _FASTAPI_ONLY:
                schemas.pop(name, None)
            schemas["ErrorResponse"] = ERROR_SCHEMA
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
