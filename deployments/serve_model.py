"""Serving a registered learnware or solution over HTTP: MLflow's scoring app, with one-line errors.

Why not plain ``mlflow models serve``: it needs ``MLFLOW_TRACKING_URI`` and ``uvicorn`` on ``PATH`` set by hand
(the README's recipe failed as printed), and its errors carry multi-line messages and stack traces. Here the
tracking URI comes from the dock's settings, the same scoring endpoints (``/invocations``, ``/ping``) are served
by uvicorn in this process, and every 4xx/5xx answer is ``{"error_code", "message"}`` with a one-line message.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["one_line", "create_scoring_app", "serve_model"]

_SCHEMA = re.compile(r"Shape of input \(([^)]*)\) does not match expected shape \(([^)]*)\)")


def one_line(message: str) -> str:
    """The cause of an MLflow scoring error in one line (no repeated payload, no traceback)."""
    m = _SCHEMA.search(message)
    if m:
        return f"input of shape ({m.group(1)}) does not match the model's input shape ({m.group(2)})"
    lines = [ln.strip() for ln in message.splitlines() if ln.strip()]
    last = lines[-1] if lines else "the request could not be scored"
    last = re.sub(r"^Error:\s*", "", last)
    return last[:300]


def create_scoring_app(model_uri: str, tracking_uri: str) -> Any:
    """MLflow's scoring FastAPI app for ``model_uri``, its error answers rewritten to one line."""
    import mlflow
    from fastapi import Request
    from fastapi.responses import JSONResponse, Response
    from mlflow.pyfunc import scoring_server

    mlflow.set_tracking_uri(tracking_uri)
    app = scoring_server.init(mlflow.pyfunc.load_model(model_uri))

    @app.middleware("http")
    async def one_line_errors(request: Request, call_next: Any) -> Response:
        response = await call_next(request)
        if response.status_code < 400:
            return response
        body = b"".join([chunk async for chunk in response.body_iterator])
        try:
            payload = json.loads(body)
            message, code = str(payload.get("message", "")), str(payload.get("error_code", "BAD_REQUEST"))
        except (ValueError, AttributeError):
            message, code = body.decode(errors="replace"), "BAD_REQUEST"
        return JSONResponse({"error_code": code, "message": one_line(message)}, status_code=response.status_code)

    return app


def serve_model(model_uri: str, tracking_uri: str, *, host: str = "127.0.0.1", port: int = 5001) -> None:
    """Serve ``model_uri`` until interrupted (uvicorn handles SIGINT/SIGTERM)."""
    import uvicorn

    uvicorn.run(create_scoring_app(model_uri, tracking_uri), host=host, port=port, log_level="warning")
