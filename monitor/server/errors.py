"""Turning errors into 4xx answers whose message names the field and what was expected."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from monitor.errors import AuthError, Conflict, MlwatchError, NotFound, Unavailable, ValidationFailed

log = logging.getLogger(__name__)


def error_response(status: int, error: str, message: str, errors: Sequence[dict[str, str]] = ()) -> JSONResponse:
    """The JSON body every error answer has."""
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": error, "message": message, "errors": list(errors)}, status, headers=headers)


def field_path(loc: Sequence[Any]) -> str:
    """``("body", "records", 3, "latency_ms")`` → ``records[3].latency_ms``."""
    out = ""
    for part in loc[1:] if loc and loc[0] in ("body", "query", "path") else loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def _describe(err: dict[str, Any]) -> dict[str, str]:
    message = err["msg"].removeprefix("Value error, ")
    if err["type"] == "finite_number":
        message = "expected a finite number, got NaN or infinity"
    elif "input" in err and err["type"] not in ("missing", "json_invalid", "value_error"):
        shown = repr(err["input"])
        message = f"{message} (got {shown[:80] + '...' if len(shown) > 80 else shown})"
    return {"field": field_path(err["loc"]), "message": message}


async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
    raw = list(exc.errors())
    if any(e["type"] == "json_invalid" for e in raw):
        detail = next(e for e in raw if e["type"] == "json_invalid").get("ctx", {}).get("error", "")
        return error_response(400, "malformed_json", f"the body is not valid JSON: {detail}".rstrip(": "))
    errors = [_describe(e) for e in raw[:50]]
    summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
    more = f" (and {len(raw) - 5} more)" if len(raw) > 5 else ""
    return error_response(422, "invalid_request", summary + more, errors)


async def _mlwatch(_: Request, exc: MlwatchError) -> JSONResponse:
    if isinstance(exc, AuthError):
        return error_response(exc.status, "unauthorized" if exc.status == 401 else "forbidden", str(exc))
    if isinstance(exc, NotFound):
        return error_response(404, "not_found", str(exc))
    if isinstance(exc, Conflict):
        return error_response(409, "conflict", str(exc))
    if isinstance(exc, ValidationFailed):
        return error_response(422, "invalid_request", str(exc), [{"field": exc.field, "message": exc.message}])
    if isinstance(exc, Unavailable):
        answer = error_response(503, "unavailable", str(exc))
        answer.headers["Retry-After"] = "30"
        return answer
    return error_response(400, "bad_request", str(exc))


async def _http(_: Request, exc: HTTPException) -> JSONResponse:
    names = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}
    return error_response(exc.status_code, names.get(exc.status_code, "http_error"), str(exc.detail))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(
        500, "internal_error", f"internal error ({type(exc).__name__}); this is a bug, please report it"
    )


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    app.add_exception_handler(RequestValidationError, _validation)  # type: ignore[arg-type]
    app.add_exception_handler(MlwatchError, _mlwatch)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _http)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected)
