"""Turning errors into 4xx answers whose message names the field and what was expected."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from monitor.config import MAX_DEPTH
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
        name = part if isinstance(part, int) or len(str(part)) <= 80 else f"{str(part)[:80]}..."
        out += f"[{name}]" if isinstance(name, int) else (f".{name}" if out else str(name))
    return out or "body"


def _describe(err: Mapping[str, Any]) -> dict[str, str]:
    message = err["msg"].removeprefix("Value error, ")
    if err["type"] == "finite_number":
        message = "expected a finite number, got NaN or infinity"
    elif "input" in err and err["type"] not in ("missing", "json_invalid", "value_error"):
        shown = repr(err["input"])
        message = f"{message} (got {shown[:80] + '...' if len(shown) > 80 else shown})"
    return {"field": field_path(err["loc"]), "message": message}


def invalid_body(raw: Sequence[Mapping[str, Any]]) -> tuple[int, str, str, list[dict[str, str]]]:
    """The status, error name, message and field errors that answer a body pydantic refused with ``raw``.

    The API answers with them; ``mlwatch consume`` puts the message on a dead letter.
    """
    if any(e["type"] == "json_invalid" for e in raw):
        detail = next(e for e in raw if e["type"] == "json_invalid").get("ctx", {}).get("error", "")
        if detail.startswith("recursion limit exceeded"):  # valid JSON, nested deeper than any body may be
            where = detail.removeprefix("recursion limit exceeded").strip()
            message = f"expected JSON nested at most {MAX_DEPTH} levels deep, got deeper {where}".rstrip()
            return 422, "invalid_request", f"body: {message}", [{"field": "body", "message": message}]
        return 400, "malformed_json", f"the body is not valid JSON: {detail}".rstrip(": "), []
    errors = [_describe(e) for e in raw[:50]]
    summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
    more = f" (and {len(raw) - 5} more)" if len(raw) > 5 else ""
    return 422, "invalid_request", summary + more, errors


async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
    return error_response(*invalid_body(list(exc.errors())))


async def _mlwatch(request: Request, exc: MlwatchError) -> JSONResponse:
    message = public_message(exc, f"{request.method} {request.url.path}")
    if isinstance(exc, AuthError):
        return error_response(exc.status, "unauthorized" if exc.status == 401 else "forbidden", message)
    if isinstance(exc, NotFound):
        return error_response(404, "not_found", message)
    if isinstance(exc, Conflict):
        return error_response(409, "conflict", message)
    if isinstance(exc, ValidationFailed):
        detail = public_message(exc, "", text=exc.message) if message != str(exc) else exc.message
        return error_response(422, "invalid_request", message, [{"field": exc.field, "message": detail}])
    if isinstance(exc, Unavailable):
        answer = error_response(503, "unavailable", message)
        answer.headers["Retry-After"] = "30"
        return answer
    return error_response(400, "bad_request", message)


_OWN_MODULES = ("monitor", "retrain", "builtins")
"""Exceptions raised here or by Python itself (``ValueError`` of our own checks); any other
module is another library, whose message may hold its internals (SQL, paths, versions)."""


def public_message(exc: MlwatchError, where: str, *, text: str | None = None) -> str:
    """``str(exc)`` (or ``text``) without the message of another library's exception it was raised from.

    ``raise ValidationFailed(f"...: {exc}") from exc`` is handy where the error happens, but
    MLflow's or a database driver's text is no answer to give a client: it is logged here
    and replaced by a pointer to the log.
    """
    message = str(exc) if text is None else text
    cause = exc.__cause__ or exc.__context__
    for _ in range(10):  # a chain is short; a cycle of contexts must not hang the answer
        if cause is None or isinstance(cause, MlwatchError):
            break
        detail = str(cause)
        if len(detail) >= 4 and detail in message and type(cause).__module__.partition(".")[0] not in _OWN_MODULES:
            if where:
                log.warning("%s: %s from %s: %s", where, type(exc).__name__, type(cause).__name__, detail)
            message = message.replace(detail, "an error of a library mlwatch uses (details in the server log)")
        cause = cause.__cause__ or cause.__context__
    return message


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
