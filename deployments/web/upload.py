"""The browser upload page of `lwdock api`: a learnware zip and its semantic spec from the user's disk to a Prefect run.

Routes (mounted by :func:`deployments.api.create_app` with ``app.include_router(upload_router(home, cfg))``):

- ``GET /`` and ``GET /upload``: the pages (no build step, no CDN: the HTML, script and style are in ``static/``);
- ``POST /upload/check``: body = the semantic JSON (or empty); checks the token, the spec and that the submit
  deployment is served, so the page can refuse in one line before it sends a large zip;
- ``POST /upload?filename=NAME``: body = the semantic JSON's ``X-Semantic-Length`` bytes, then the zip
  (``curl --data-binary @model.zip -H "Authorization: Bearer $T" "$URL/upload?filename=model.zip"`` with no spec).
  In order: token (401, nothing read), spec (400), deployment served (503), zip streamed into the store under the
  size cap (413), run started; any refusal leaves nothing stored. Answers 202 with the run's id, name and UI link;
- ``GET /upload/runs/{id}``: the run's state and submission result, for the page to follow.

Why raw bytes rather than multipart: the body streams straight into the store with a running size check, and the
dock needs no multipart parser.
"""

from __future__ import annotations

import functools
import hmac
import html
from pathlib import Path
from string import Template
from typing import Any, AsyncIterator, Awaitable, Callable

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from deployments.api import MAX_BODY_BYTES, TOKEN_ENV, ApiConfig, ApiError, start_submission
from deployments.web import intake, runs
from deployments.web.semantic_input import SemanticInput, parse_semantic
from lwlib.constants import SEMANTIC_MAX_BYTES
from lwlib.errors import SemanticSpecError
from lwlib.semantic import VOCABULARIES

__all__ = ["upload_router", "SEMANTIC_LENGTH_HEADER"]

STATIC = Path(__file__).with_name("static")
SEMANTIC_LENGTH_HEADER = "X-Semantic-Length"
_ASSETS = {"upload.js": "text/javascript", "upload.css": "text/css", "favicon.svg": "image/svg+xml"}
_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                               "img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store",
}
_FORM_DEFAULTS = {"Data": "Table", "Task": "Classification", "Library": "Scikit-learn", "License": "Apache-2.0"}


def _options(key: str) -> str:
    return "".join(f'<option value="{html.escape(v)}"{" selected" if v == _FORM_DEFAULTS[key] else ""}>'
                   f"{html.escape(v)}</option>" for v in VOCABULARIES[key])


def _checkboxes(key: str) -> str:
    return "".join(f'<label><input type="checkbox" name="scenario" value="{html.escape(v)}"> {html.escape(v)}</label>'
                   for v in VOCABULARIES[key])


def _page(name: str, **values: str) -> HTMLResponse:
    text = Template((STATIC / name).read_text(encoding="utf-8")).substitute(values)
    return HTMLResponse(text, headers=_SECURITY_HEADERS)


def upload_router(home: Path, config: ApiConfig, *, max_bytes: int = MAX_BODY_BYTES) -> APIRouter:
    """The upload page's routes for the dock at ``home``, with the API's token rules (``config``).

    ``max_bytes`` caps a zip; it cannot usefully exceed the API's request-body cap (``MAX_BODY_BYTES``).
    """
    home = Path(home)
    packages_dir = home / "learnwares"  # Settings.packages_dir of this home
    router = APIRouter(include_in_schema=False)

    def authorize(request: Request, *, write: bool) -> None:
        if write and config.token is None:
            raise ApiError(403, "writes_disabled", f"this dock has no API token, so uploads are refused: set "
                           f"{TOKEN_ENV} or run `lwdock api token --home {home}` and restart `lwdock api`")
        if not write and not config.protect_reads:
            return
        auth = request.headers.get("authorization", "")
        given = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        if config.token is None or not given or not hmac.compare_digest(given.encode(), config.token.encode()):
            raise ApiError(401, "unauthorized", "missing or wrong token: paste the dock's API token "
                           "(`lwdock api token` prints it)")

    @router.get("/", response_class=HTMLResponse)
    async def index() -> HTMLResponse:
        ui = runs.ui_url()
        prefect = (f'<li><a href="{html.escape(ui)}">Prefect UI</a>: runs, their steps and results</li>'
                   if ui else "<li>Prefect UI: not configured (PREFECT_API_URL is not set)</li>")
        return _page("index.html", prefect_item=prefect)

    @router.get("/upload", response_class=HTMLResponse)
    async def page() -> HTMLResponse:
        return _page("upload.html", max_bytes=str(max_bytes), max_mib=f"{max_bytes / 2**20:.0f}",
                     semantic_max=str(SEMANTIC_MAX_BYTES), data_options=_options("Data"),
                     task_options=_options("Task"), library_options=_options("Library"),
                     scenario_options=_checkboxes("Scenario"), license_options=_options("License"))

    @router.get("/upload/assets/{name}")
    @_json_errors
    async def asset(name: str) -> FileResponse:
        if name not in _ASSETS:
            raise ApiError(404, "not_found", f"no asset {name}")
        return FileResponse(STATIC / name, media_type=_ASSETS[name], headers=_SECURITY_HEADERS)

    @router.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> FileResponse:
        return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")

    @router.post("/upload/check")
    @_json_errors
    async def check(request: Request) -> dict[str, Any]:
        authorize(request, write=True)
        raw = await _read_capped(request.stream(), SEMANTIC_MAX_BYTES)
        semantic = _semantic(raw)
        await runs.check_served(config.submit_deployment)
        return {"ok": True, "semantic": semantic.form if semantic else None,
                "dropped": semantic.dropped if semantic else [], "max_bytes": max_bytes}

    @router.post("/upload", status_code=202)
    @_json_errors
    async def upload(request: Request, filename: str = Query("upload.zip", max_length=1000)) -> JSONResponse:
        authorize(request, write=True)
        length = request.headers.get("content-length")
        if length is None or not length.isdigit():
            raise ApiError(411, "length_required", "send the zip with a Content-Length header")
        sem_len = _semantic_length(request, int(length))
        if int(length) - sem_len > max_bytes:  # refused before a byte is read or stored
            raise ApiError(413, "upload_too_large", f"the zip is {int(length) - sem_len} bytes; the upload limit "
                           f"is {max_bytes}")
        stream = request.stream()
        try:
            head = await _read_exactly(stream, sem_len)
            semantic = _semantic(head[:sem_len])
            await runs.check_served(config.submit_deployment)
        except ApiError:
            await _drain(stream, max_bytes)  # so the browser reads the one-line answer, not a reset connection
            raise
        name = intake.safe_file_name(filename)
        intake.sweep(home)
        try:
            up = await intake.receive(stream, home=home, packages_dir=packages_dir, file_name=name,
                                      max_bytes=max_bytes, first=head[sem_len:])
        except intake.UploadTooLarge as exc:
            raise ApiError(413, "upload_too_large", f"{name} is over the {max_bytes} byte upload limit") from exc
        except intake.EmptyUpload as exc:
            raise ApiError(400, "upload_empty", "no file came: choose a learnware zip") from exc
        try:
            run = await run_in_threadpool(start_submission, config, str(up.link), semantic.form if semantic else None)
        except BaseException:
            intake.forget(up, packages_dir)
            raise
        body = {**run, "run_url": runs.run_url(run["flow_run_id"]), "file": name, "learnware_id": up.stored.id,
                "size": up.size, "dropped": semantic.dropped if semantic else []}
        return JSONResponse(body, 202)

    @router.get("/upload/runs/{flow_run_id}")
    @_json_errors
    async def run_state(request: Request, flow_run_id: str) -> dict[str, Any]:
        authorize(request, write=False)
        return await runs.run_outcome(flow_run_id)

    return router


def _json_errors(route: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """Answer :class:`ApiError` as the API does (``{"error", "code"}``) from the route itself.

    Why not leave it to the app's handler: under ``python -m deployments.api`` the app's module is ``__main__``,
    whose ``ApiError`` is another class than the one imported here, and the error would come out as a 500.
    """
    @functools.wraps(route)
    async def answer(*args: Any, **kwargs: Any) -> Any:
        try:
            return await route(*args, **kwargs)
        except ApiError as exc:
            headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
            return JSONResponse({"error": exc.message, "code": exc.code}, exc.status, headers=headers)

    return answer


def _semantic_length(request: Request, content_length: int) -> int:
    raw = request.headers.get(SEMANTIC_LENGTH_HEADER, "0").strip() or "0"
    if not raw.isdigit() or int(raw) > min(SEMANTIC_MAX_BYTES, content_length):
        raise ApiError(400, "semantic_too_large", f"{SEMANTIC_LENGTH_HEADER} must be a byte count of at most "
                       f"{SEMANTIC_MAX_BYTES} and within the body")
    return int(raw)


def _semantic(raw: bytes) -> SemanticInput | None:
    """The checked spec, or None for an empty body ("the zip ships semantic_specification.json")."""
    if not raw.strip():
        return None
    try:
        return parse_semantic(raw)
    except SemanticSpecError as exc:
        said = "semantic specification" in exc.message.lower()
        raise ApiError(400, exc.code, exc.message if said else f"semantic specification: {exc.message}") from exc


async def _read_exactly(stream: AsyncIterator[bytes], n: int) -> bytes:
    """At least ``n`` bytes from the body (the semantic part; the rest of the last chunk begins the zip)."""
    buf = bytearray()
    while len(buf) < n:
        try:
            buf += await stream.__anext__()
        except StopAsyncIteration:
            raise ApiError(400, "upload_truncated", f"the body ended inside the semantic part ({len(buf)} of "
                           f"{n} bytes)") from None
    return bytes(buf)


async def _read_capped(stream: AsyncIterator[bytes], cap: int) -> bytes:
    buf = bytearray()
    async for chunk in stream:
        buf += chunk
        if len(buf) > cap:
            raise ApiError(413, "semantic_too_large", f"the semantic specification is over {cap} bytes")
    return bytes(buf)


async def _drain(stream: AsyncIterator[bytes], cap: int) -> None:
    seen = 0
    try:
        async for chunk in stream:
            seen += len(chunk)
            if seen > cap:
                return
    except Exception:  # noqa: BLE001 - the client went away; the answer is already decided
        return
