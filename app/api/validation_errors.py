"""422 bodies that can always be written: FastAPI's own, with non-finite numbers spelled as text.

A 422 quotes each rejected input back. JSON as Python reads it accepts NaN and Infinity, and a
budget of NaN is rightly refused, but quoting the NaN back made the response itself unwritable
(JSON has no NaN): the refusal became a 500. Here such a value is quoted as "NaN" or "Infinity".
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse


def _writable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {key: _writable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_writable(item) for item in value]
    return value


async def request_validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    return JSONResponse({"detail": _writable(jsonable_encoder(exc.errors()))}, status_code=422)
