"""The framework's 413 in the API's own shape: JSON, as OpenAPI declares it.

Starlette's body limit (FastAPI's `max_body_size`, set in app.main) refuses an oversized body with a
plain-text "Content Too Large": the one response the API sent outside its declared JSON (issue 29).
This middleware, outside it, swaps that answer for `{"detail": ...}` saying what the limit is.
"""

from __future__ import annotations

import json

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class JsonBodyLimitError:
    def __init__(self, app: ASGIApp, max_body_size: int):
        self.app = app
        self.body = json.dumps({
            "detail": f"the request body is over this service's limit of {max_body_size} bytes "
                      "(LABELMIX_MAX_UPLOAD_BYTES, with room for a form's own fields)"
        }).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        replacing = False

        async def send_json_413(message: Message) -> None:
            nonlocal replacing
            if message["type"] == "http.response.start" and message["status"] == 413:
                if Headers(raw=message["headers"]).get("content-type", "").startswith("text/plain"):
                    replacing = True
                    await send({"type": "http.response.start", "status": 413, "headers": [
                        (b"content-type", b"application/json"), (b"content-length", str(len(self.body)).encode())]})
                    return
            if replacing and message["type"] == "http.response.body":
                if not message.get("more_body", False):
                    await send({"type": "http.response.body", "body": self.body})
                return
            await send(message)

        await self.app(scope, receive, send_json_413)
