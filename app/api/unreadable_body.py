"""A body that cannot even be parsed is a 422 on `body`, like any other invalid input.

The framework answers 400 with a bare sentence for a JSON body that is not UTF-8 ("There was an
error parsing the body") and for a broken multipart form ("Invalid multipart data."), while
malformed JSON in UTF-8 is already a 422 (json_invalid): the same mistake got two answers, one of
them undeclared. Nothing else here raises a 400, so every 400 is answered this way.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException


async def unreadable_body_or_http_error(request: Request, exc: HTTPException) -> Response:
    if exc.status_code != 400:
        return await http_exception_handler(request, exc)
    detail = [{"loc": ["body"], "msg": f"the body cannot be read: {exc.detail}", "type": "value_error"}]
    return JSONResponse({"detail": detail}, status_code=422)
