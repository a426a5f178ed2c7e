"""`lwdock api`: the market as a small HTTP JSON service (FastAPI + uvicorn), over one warm market snapshot.

Reads (``/search``, ``/learnwares``, ``/learnwares/{ref}``) answer from a :class:`lwlib.market.MarketSnapshot`
kept in memory and re-opened only when the catalog's change stamp moves (two ``stat`` calls per request).
Writes start the dock's Prefect deployments (``POST /submissions``) or delete through the dock
(``DELETE /learnwares/{ref}``) and need the operator's bearer token; reads are open unless ``protect_reads``.
Errors are JSON ``{"error": message, "code": code}`` with a proper status, the same messages as the CLI.

:func:`create_app` is the factory; another module can ``app.include_router(...)`` more routes (the browser
upload page does), and reuse :func:`start_submission` to trigger the submission deployment.
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, Optional

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger(__name__)

__all__ = ["ApiConfig", "ApiError", "create_app", "serve", "create_token", "start_submission", "TOKEN_ENV",
           "TOKEN_FILE", "SUBMIT_DEPLOYMENT"]

TOKEN_ENV = "LWDOCK_API_TOKEN"
PROTECT_READS_ENV = "LWDOCK_API_PROTECT_READS"
TOKEN_FILE = "api-token"
SUBMIT_DEPLOYMENT = "submit-from-ui/submit"
MAX_BODY_BYTES = 64 * 1024 * 1024
_STATUS_OF_CODE = {"not_found": 404, "ambiguous_id": 409, "catalog_missing": 404, "catalog_locked": 503,
                   "busy": 503}


class ApiError(Exception):
    """An error answered as ``{"error": message, "code": code}`` with ``status``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class ApiConfig:
    """Who may do what. ``token`` None means writes are refused (no token configured)."""

    token: Optional[str] = None
    protect_reads: bool = False
    submit_deployment: str = SUBMIT_DEPLOYMENT

    @classmethod
    def from_home(cls, home: Path, *, protect_reads: bool = False) -> ApiConfig:
        """Token from ``$LWDOCK_API_TOKEN``, else ``<home>/api-token``; reads protected by flag or env."""
        token = os.environ.get(TOKEN_ENV, "").strip() or None
        path = Path(home) / TOKEN_FILE
        if token is None and path.is_file():
            token = path.read_text().strip() or None
        protect = protect_reads or os.environ.get(PROTECT_READS_ENV, "").lower() in ("1", "true", "yes")
        return cls(token=token, protect_reads=protect)


def create_token(home: Path, *, rotate: bool = False) -> tuple[Path, str]:
    """Write a random bearer token to ``<home>/api-token`` (mode 600) unless one exists; returns (path, token)."""
    path = Path(home) / TOKEN_FILE
    if path.is_file() and not rotate:
        return path, path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    return path, token


# ---------------------------------------------------------------------------------------------------- bodies
class SearchBody(BaseModel):
    """A requirement: your rows (``data``) or your RKME, and/or a semantic query; labels are optional."""

    model_config = ConfigDict(extra="forbid")

    data: Optional[list[list[float]]] = Field(None, description="Unlabelled rows, shape (n_samples, n_features)")
    rkme: Optional[dict[str, Any]] = Field(None, description="Your RKME in the reference JSON format, instead of data")
    semantic: Optional[dict[str, Any]] = Field(None, description="Semantic requirement (reference format)")
    labelled_data: Optional[list[list[float]]] = Field(None, description="A few labelled rows (X): refine the ranking")
    labels: Optional[list[Any]] = Field(None, description="Their labels (y), one per labelled row")
    top_k: int = Field(10, ge=1, le=1000)
    max_mixture: int = Field(5, ge=0, le=10)


class SubmitBody(BaseModel):
    """A learnware zip already on the dock's storage (or an https:// / file:// URL) and an optional semantic spec."""

    model_config = ConfigDict(extra="forbid")

    zip_location: str = Field(..., min_length=1, max_length=4096)
    semantic: Optional[dict[str, Any]] = Field(None, description="Semantic form fields (see the Prefect form)")


# ---------------------------------------------------------------------------------------------------- state
class _Market:
    """One warm snapshot, re-opened when the catalog changes (checked per request, under a lock)."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self._lock = threading.Lock()
        self._snap: Any = None

    def get(self) -> Any:
        from lwlib.market import MarketSnapshot

        with self._lock:
            if self._snap is None:
                self._snap = MarketSnapshot.open(self.home)
                self._snap.columns  # noqa: B018 - names and semantic filters answer from memory
            elif self._snap.refresh_if_changed():
                self._snap.columns  # noqa: B018
            return self._snap


def _status_for(exc: Any) -> int:
    code = str(getattr(exc, "code", ""))
    if code in _STATUS_OF_CODE:
        return _STATUS_OF_CODE[code]
    if code.endswith("_not_found"):
        return 404
    if code.startswith(("catalog", "registry", "runtime", "migration", "model_")):
        return 503
    return 400


def start_submission(config: ApiConfig, zip_location: str, semantic: dict[str, Any] | None) -> dict[str, Any]:
    """Start the submission deployment on the Prefect server; returns the flow run's id and name.

    Raises
    ------
    ApiError
        503 when no Prefect server is configured, it is unreachable, or the deployment is not served.
    """
    api_url = os.environ.get("PREFECT_API_URL")
    if not api_url:
        raise ApiError(503, "prefect_not_configured", "no Prefect server is configured for submissions: start one "
                       "and serve the deployments with `lwdock serve` (PREFECT_API_URL must be set)")
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound

    params: dict[str, Any] = {"request": {"zip_location": zip_location}}
    if semantic is not None:
        params["request"]["semantic"] = semantic
    try:
        run = run_deployment(name=config.submit_deployment, parameters=params, timeout=0)
    except ObjectNotFound as exc:
        raise ApiError(503, "deployment_not_served", f"deployment {config.submit_deployment} is not served on "
                       f"{api_url}: run `lwdock serve` against that server") from exc
    except Exception as exc:  # noqa: BLE001 - httpx/prefect connection errors vary by version
        raise ApiError(503, "prefect_unreachable", f"cannot start the submission on {api_url} "
                       f"({type(exc).__name__}: {str(exc)[:200]}); is the Prefect server running?") from exc
    return {"flow_run_id": str(run.id), "flow_run_name": run.name, "deployment": config.submit_deployment,
            "state": run.state.name if run.state else None}


def _record_json(r: Any) -> dict[str, Any]:
    d = asdict(r)
    d["status"] = r.status.value
    d["scenarios"] = list(r.scenarios)
    for k in ("created_at", "updated_at"):
        d[k] = d[k].isoformat() if d.get(k) is not None else None
    return d


# ---------------------------------------------------------------------------------------------------- app
def create_app(settings: Any = None, config: ApiConfig | None = None) -> FastAPI:
    """The dock's FastAPI application for the home of ``settings`` (a Settings, a path, or None = env)."""
    from lwlib.errors import LwdockError
    from lwlib.market.snapshot import _home

    home = _home(settings)
    cfg = config or ApiConfig.from_home(home)
    market = _Market(home)
    app = FastAPI(title="Learnware Dock", version="1", description=(
        "Search the learnware market, list and show learnwares (open unless the operator protects reads), "
        "submit and delete (bearer token). Errors: `{\"error\": message, \"code\": code}`."))
    app.state.home, app.state.config, app.state.market = home, cfg, market

    def _check(request: Request, *, write: bool) -> None:
        if write and cfg.token is None:
            raise ApiError(403, "writes_disabled", f"this dock has no API token, so writes are refused: set "
                           f"{TOKEN_ENV} or run `lwdock api token --home {home}` and restart `lwdock api`")
        if not write and not cfg.protect_reads:
            return
        auth = request.headers.get("authorization", "")
        given = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        if cfg.token is None or not given or not hmac.compare_digest(given.encode(), cfg.token.encode()):
            raise ApiError(401, "unauthorized", "missing or wrong bearer token (Authorization: Bearer <token>)")

    def reader(request: Request) -> None:
        _check(request, write=False)

    def writer(request: Request) -> None:
        _check(request, write=True)

    @app.middleware("http")
    async def _limit_body(request: Request, call_next: Any) -> Any:
        size = request.headers.get("content-length")
        if size is not None and size.isdigit() and int(size) > MAX_BODY_BYTES:
            return JSONResponse({"error": f"request body of {size} bytes is over the {MAX_BODY_BYTES} byte limit; "
                                          "send an RKME instead of raw rows", "code": "body_too_large"}, 413)
        return await call_next(request)

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse({"error": exc.message, "code": exc.code}, exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        e = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in e.get("loc", ()) if p != "body")
        return JSONResponse({"error": f"{where or 'request'}: {e.get('msg')}", "code": "invalid_request"}, 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail), "code": f"http_{exc.status_code}"}, exc.status_code)

    @app.exception_handler(LwdockError)
    async def _dock_error(_: Request, exc: LwdockError) -> JSONResponse:
        return JSONResponse({"error": exc.message, "code": exc.code}, _status_for(exc))

    @app.exception_handler(Exception)
    async def _other(_: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error in the API")
        return JSONResponse({"error": f"internal error ({type(exc).__name__}); see the server log",
                             "code": "internal"}, 500)

    @app.get("/health", summary="Liveness and market size")
    def health() -> dict[str, Any]:
        snap = market.get()
        return {"status": "ok", "searchable": len(snap), "writes": cfg.token is not None,
                "reads_protected": cfg.protect_reads}

    @app.get("/learnwares", dependencies=[Depends(reader)], summary="List learnwares (market order)")
    def list_learnwares(status: Optional[Literal["USABLE", "NONUSABLE", "INVALID"]] = None,
                        limit: int = Query(50, ge=1, le=1000), offset: int = Query(0, ge=0)) -> dict[str, Any]:
        from lwlib.market.scan import open_read_only, page_ids

        if not (home / "catalog.duckdb").exists():
            return {"total": 0, "learnwares": []}
        with open_read_only(home / "catalog.duckdb") as cat:
            total, ids = page_ids(cat, status=status, limit=limit, offset=offset)
            rows = [cat.get(i) for i in ids]
        return {"total": total, "offset": offset, "learnwares": [_record_json(r) for r in rows if r is not None]}

    @app.get("/learnwares/{ref}", dependencies=[Depends(reader)], summary="One learnware and its check history")
    def show_learnware(ref: str) -> dict[str, Any]:
        from lwlib.market.scan import open_read_only

        lid = _resolve(home, ref)
        with open_read_only(home / "catalog.duckdb") as cat:
            rec, history = cat.get(lid), cat.history(lid)
        if rec is None:
            raise ApiError(404, "not_found", f"learnware {ref} was deleted")
        hist = [{**asdict(c), "status": c.status.value,
                 "created_at": c.created_at.isoformat() if c.created_at else None} for c in history]
        return {**_record_json(rec), "history": hist}

    @app.post("/search", dependencies=[Depends(reader)], summary="Search the market for a requirement")
    def search(body: SearchBody) -> dict[str, Any]:
        from lwlib.market._pure import pure_search_module
        from lwlib.market.userspec import rkme_from_dict

        if body.data is None and body.rkme is None and body.semantic is None:
            raise ApiError(400, "invalid_request", "give data (your rows), rkme or semantic: nothing to search for")
        if body.data is not None and body.rkme is not None:
            raise ApiError(400, "invalid_request", "give either data or rkme, not both")
        if (body.labels is None) != (body.labelled_data is None):
            raise ApiError(400, "invalid_request", "labels need labelled_data (their rows), and the other way round")
        req = pure_search_module("requirement").Requirement(
            semantic=body.semantic, X=body.data, rkme=rkme_from_dict(body.rkme) if body.rkme is not None else None,
            X_labels=body.labelled_data, y_labels=body.labels)
        snap = market.get()
        if req.n_labels:  # labels refine the ranking (label-aware specs): the deploying stage's search, torch
            from lwlib.deployment import search_market

            result = search_market(snap, req, top_k=body.top_k, max_mixture=body.max_mixture)
        else:
            result = snap.search(req, top_k=body.top_k, max_mixture=body.max_mixture)
        ids = [m.learnware_id for m in result.singles] + [i for m in result.mixtures for i in m.learnware_ids]
        ids += [m.learnware_id for m in result.semantic[:body.top_k]]
        return {**result.to_dict(), "names": snap.names(list(dict.fromkeys(ids)))}

    @app.post("/submissions", status_code=202, dependencies=[Depends(writer)],
              summary="Start the submission deployment; returns the Prefect flow run id")
    def submit(body: SubmitBody) -> dict[str, Any]:
        loc = body.zip_location
        if "://" not in loc and not Path(os.path.expanduser(loc)).is_file():
            raise ApiError(400, "zip_not_found", f"zip_location {loc} is not a file on the dock's storage")
        return start_submission(cfg, loc, body.semantic)

    @app.delete("/learnwares/{ref}", dependencies=[Depends(writer)], summary="Delete a learnware everywhere")
    def delete(ref: str) -> dict[str, Any]:
        from deployments.cli.writes import delete_learnware

        lid = _resolve(home, ref)
        name = delete_learnware(home, lid)
        return {"deleted": lid, "name": name}

    from deployments.web import upload_router  # the browser pages: /, /upload (deployments/web imports this module)
    app.include_router(upload_router(home, cfg))
    return app


def _resolve(home: Path, ref: str) -> str:
    from lwlib.market.scan import open_read_only, resolve_ids

    if not (home / "catalog.duckdb").exists():
        raise ApiError(404, "not_found", f"no learnware {ref}: the market is empty")
    with open_read_only(home / "catalog.duckdb") as cat:
        ids = resolve_ids(cat, ref)
    if not ids:
        raise ApiError(404, "not_found", f"no learnware matches {ref} (an id, an id prefix or a name)")
    if len(ids) > 1:
        raise ApiError(409, "ambiguous_id", f"{ref} matches {len(ids)} learnwares; give more characters of the id")
    return ids[0]


def serve(home: Path, *, host: str = "127.0.0.1", port: int = 8800, config: ApiConfig | None = None) -> None:
    """Run the API with uvicorn until SIGINT/SIGTERM."""
    import uvicorn

    cfg = config or ApiConfig.from_home(home)
    if cfg.token is None:
        logger.warning("no API token (%s or %s): writes will be refused", TOKEN_ENV, Path(home) / TOKEN_FILE)
    uvicorn.run(create_app(home, cfg), host=host, port=port, log_level="warning", access_log=False)


if __name__ == "__main__":  # python -m deployments.api --home DIR --port N (tests, operators without the CLI)
    import argparse

    ap = argparse.ArgumentParser(prog="python -m deployments.api")
    ap.add_argument("--home", type=Path, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8800)
    ap.add_argument("--protect-reads", action="store_true")
    a = ap.parse_args()
    serve(a.home.resolve(), host=a.host, port=a.port, config=ApiConfig.from_home(a.home, protect_reads=a.protect_reads))
