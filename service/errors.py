"""Service errors and the handlers that turn every failure into one JSON shape.

    ServiceBaseError                  root: every error the service package raises on purpose
    ├── payment.chain.ChainUnavailableError(RuntimeError)       the payment network's RPC failed
    ├── payment.inner.FacilitatorUnavailableError(RuntimeError) the remote facilitator gave no verdict
    ├── payment.ledger.LedgerError(RuntimeError)                the payment ledger's database failed
    ├── payment.layer.PaymentConfigError(model InputError)      payment settings that cannot work
    ├── payment.devchain.anvil.AnvilError(RuntimeError)         the dev chain's anvil would not run
    └── ServiceError(HTTPException)   answered as is: status, code, field, message (+ headers)
        ├── RequestTooLargeError      413  a body or upload over its byte limit (checked while streaming)
        ├── UnsupportedMediaTypeError 415  wrong Content-Type for the route
        ├── UnknownVoiceError         404  a voice id that is not stored
        ├── VoiceLimitError           409  the voice store is full
        ├── QueueFullError            503  + Retry-After: the request queue is saturated
        ├── NotReadyError             503  the model is not loaded (yet)
        └── RequestTimeoutError       504  not done within request_timeout_s (never charged: status >= 400)

    model.errors.InputError           its own status (4xx): a user mistake found by the text front end or runtime

Every error body is `{"error": {"code": ..., "message": ..., "field": ...}}`. ServiceError derives from
starlette's HTTPException so that it passes unchanged through FastAPI's body parsing (which re-raises
HTTPException but turns anything else into a generic 400). Anything that is not one of these is our bug: it
is logged with its traceback and answered with a 500 carrying the request id, never the traceback.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from model.errors import InputError

logger = logging.getLogger("smalltts.service")


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable code, '<field>_<problem>': 'text_too_long', 'audio_missing', 'queue_full'.")
    message: str = Field(description="What went wrong and the limit that applies.")
    field: str | None = Field(
        default=None, description="The input the error is about (e.g. 'text', 'audio', 'duration')."
    )


class ErrorResponse(BaseModel):
    error: ErrorDetail

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "error": {
                        "code": "text_too_long",
                        "message": "text has 1200 characters; the limit is 1000",
                        "field": "text",
                    }
                }
            ]
        }
    }


class ServiceBaseError(Exception):
    """The root of the service package's errors. Only ServiceError is answered as itself; the others are
    outages or startup failures that the payment layer and the CLI map where they happen."""


class ServiceError(ServiceBaseError, HTTPException):
    """A failure the service answers with a 4xx/5xx JSON body; `status_code` is the HTTP status."""

    status: int = 400
    default_code: str = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(status_code=self.status, detail=message, headers=dict(headers) if headers else None)
        self.message = message
        self.field = field
        self.code = code or self.default_code

    def __str__(self) -> str:
        return self.message


class RequestTooLargeError(ServiceError):
    status = 413
    default_code = "body_too_large"


class UnsupportedMediaTypeError(ServiceError):
    status = 415
    default_code = "content_type_unsupported"


class UnknownVoiceError(ServiceError):
    status = 404
    default_code = "voice_unknown"


class VoiceLimitError(ServiceError):
    status = 409
    default_code = "voice_limit_reached"


class QueueFullError(ServiceError):
    status = 503
    default_code = "queue_full"

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        self.retry_after_s = max(1, math.ceil(retry_after_s))
        super().__init__(message, headers={"Retry-After": str(self.retry_after_s)})


class NotReadyError(ServiceError):
    status = 503
    default_code = "not_ready"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"Retry-After": "5"})


class RequestTimeoutError(ServiceError):
    status = 504
    default_code = "timeout"


def error_response(
    status: int, code: str, message: str, field: str | None = None, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    body = ErrorResponse(error=ErrorDetail(code=code, message=message, field=field))
    return JSONResponse(body.model_dump(), status_code=status, headers=dict(headers) if headers else None)


# Responses every route documents in OpenAPI, so clients (and schemathesis) know the error shape.
def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    descriptions = {
        400: "Malformed request",
        404: "Unknown voice",
        409: "Voice store full",
        413: "Body, upload or text over its limit",
        415: "Wrong Content-Type",
        422: "Invalid input; `field` names it and the message states the limit",
        503: "Queue full or model not ready; retry after Retry-After seconds",
        504: "Not finished within request_timeout_s",
    }
    return {status: {"model": ErrorResponse, "description": descriptions[status]} for status in statuses}


def _field_from_loc(loc: Sequence[Any]) -> str | None:
    # ("body", "text") -> "text"; ("query", "duration") -> "duration"; ("body", 3) (JSON position) -> "body"
    parts = [str(part) for part in loc if part not in ("body", "query", "path", "header")]
    if not parts:
        return "body" if loc and loc[0] == "body" else None
    if loc and loc[0] == "body" and isinstance(loc[-1], int) and len(loc) == 2:
        return "body"
    return ".".join(parts)


def _validation_message(error: Mapping[str, Any], field: str | None) -> str:
    kind = str(error.get("type", ""))
    if kind == "missing":
        return f"{field or 'a required field'} is required"
    if kind == "json_invalid":
        return "the body is not valid JSON"
    if kind in ("model_attributes_type", "dict_type") and field == "body":
        return "the body must be a JSON object"
    message = str(error.get("msg", "invalid value"))
    return f"{field}: {message}" if field else message


async def handle_service_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    return error_response(exc.status_code, exc.code, exc.message, exc.field, exc.headers)


async def handle_input_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, InputError)
    status = exc.status if 400 <= exc.status < 500 else 422
    return error_response(status, exc.code, exc.message, exc.field)


async def handle_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    first: Mapping[str, Any] = errors[0] if errors else {}
    field = _field_from_loc(first.get("loc", ()))
    kind = str(first.get("type", "invalid"))
    if kind == "json_invalid":
        code = "body_invalid_json"
    else:
        code = f"{(field or 'request').replace('.', '_')}_{'missing' if kind == 'missing' else 'invalid'}"
    return error_response(422, code, _validation_message(first, field), field)


async def handle_http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    codes = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}
    message = exc.detail if isinstance(exc.detail, str) else "request failed"
    return error_response(exc.status_code, codes.get(exc.status_code, "http_error"), message, None, exc.headers)


async def handle_unexpected(request: Request, exc: Exception) -> JSONResponse:
    request_id = getattr(request.state, "request_id", "-")
    logger.error("unhandled error in request %s", request_id, exc_info=exc)
    return error_response(500, "internal", f"internal error (request id {request_id}); this is a bug on our side")


def install_error_handlers(app: FastAPI) -> None:
    """Maps every failure to the JSON error body; called once by create_app."""
    app.add_exception_handler(ServiceError, handle_service_error)
    app.add_exception_handler(InputError, handle_input_error)
    app.add_exception_handler(RequestValidationError, handle_validation_error)
    app.add_exception_handler(HTTPException, handle_http_exception)
    app.add_exception_handler(Exception, handle_unexpected)
