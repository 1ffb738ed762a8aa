"""The prediction service: FastAPI on 127.0.0.1, serving the current champion, hot-swapped.

The server never opens the warehouse. It watches ``HOME/models/CHAMPION.json`` (written atomically
by :mod:`data_engine.ship.deploy`); when the pointer names a new model, the artifact is checked against
its sha256 and fully loaded *before* one reference swap makes it the served model. A request takes
that reference once, so it is answered by one model from start to end. A pointer to a missing or
corrupted artifact is refused (``GET /model`` shows why) and the previous champion keeps serving.

Request rows are validated by :mod:`data_engine.ship.request_rows`: a missing, extra or mistyped field
is a 422 naming it.

A champion of the user's trainer (``[model] trainer = "command"``) answers through a long-lived
worker of its ``predict`` (:mod:`data_engine.trainers.worker`), started before the swap that makes
it the served model and stopped once a newer champion replaced it. A worker that exited or ran
past ``[model] serve_timeout_s`` gives a 503 naming the cause (and is restarted by a later
request); a malformed answer from it is a 502.
"""

# No `from __future__ import annotations`: FastAPI resolves the endpoint annotations (local classes).
import logging
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from data_engine.errors import EngineError
from data_engine.ship.deploy import ChampionPointer, read_pointer
from data_engine.ship.registry import load_artifact
from data_engine.ship.renamed import read_renamed
from data_engine.ship.request_rows import (
    MAX_INTEGER_DIGITS,
    MAX_JSON_DEPTH,
    MAX_ROWS,
    has_overlong_integer,
    json_depth,
    resolve_image_rows,
    row_model,
    rows_frame,
    validation_errors,
    without_strings,
)
from data_engine.store.home import Home
from data_engine.tasks import Classification, Task, task_for
from data_engine.trainers.worker import WorkerDown, WorkerReplyError, serving_worker

HOST = "127.0.0.1"  # loopback only: the service has no authentication


# Swagger UI's files, served by the server itself (FastAPI's default loads them from a CDN: a blank
# /docs offline). FastAPI's "self-hosting JavaScript and CSS for docs" recipe.
DOCS_ASSETS = "/docs-assets"


DEFAULT_POLL_SECONDS = 1.0


log = logging.getLogger("data_engine.ship.serve")


@dataclass(frozen=True)
class LoadedModel:
    """A champion fully loaded and checked; replaced as a whole, never mutated."""

    pointer: ChampionPointer
    model: Any
    loaded_at: float
    # The long-lived worker answering for a model of the user's trainer (None for the engine's own).
    worker: Any = None


class ModelHolder:
    """Holds the served model; :meth:`refresh` swaps in a new champion when the pointer changes."""

    def __init__(self, home: Home, *, poll_seconds: float = DEFAULT_POLL_SECONDS) -> None:
        self.home = home
        self.poll_seconds = poll_seconds
        self.last_error: str | None = None
        self.swaps = 0
        self._current: LoadedModel | None = None
        # What was refused last: the pointer and its artifact's (mtime, size). Not retried until one changes.
        self._refused: tuple[Any, ...] | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def current(self) -> LoadedModel | None:
        """The model serving now (one atomic attribute read)."""
        return self._current

    def refresh(self) -> bool:
        """Load the champion the pointer names if it is new; return True when the served model changed."""
        with self._lock:  # one loader at a time; readers never wait on this lock
            try:
                pointer = read_pointer(self.home)
            except EngineError as exc:
                self.last_error = str(exc)
                return False
            if pointer is None:
                return False
            cur = self._current
            if cur is not None and (cur.pointer.version, cur.pointer.sha256, cur.pointer.renamed) == (
                    pointer.version, pointer.sha256, pointer.renamed):
                return False
            if self._refused == self._refusal_key(pointer):
                return False
            if cur is not None and pointer.input_schema != cur.pointer.input_schema:
                self._refuse(pointer, f"model v{pointer.version} reads different columns than the served "
                                      f"v{cur.pointer.version}; restart the server to serve it")
                return False
            try:
                model = load_artifact(pointer.artifact(self.home), pointer.sha256)
                # The user's trainer answers through its worker, ready before the swap.
                model, worker = serving_worker(model, timeout_s=self.home.config.model.serve_timeout_s,
                                               label=f"model v{pointer.version}")
                # A class renamed since training answers under its current name (data_engine.ship.renamed).
                model = read_renamed(model, pointer.renamed)
            except EngineError as exc:
                self._refuse(pointer, f"model v{pointer.version} refused: {exc}")
                return False
            self._current = LoadedModel(pointer, model, time.time(), worker)
            if cur is not None and cur.worker is not None:
                cur.worker.stop(f"replaced by model v{pointer.version}")
            self.swaps += 1
            self.last_error = None
            self._refused = None
            log.info("serving model v%s", pointer.version)
            return True

    def _refusal_key(self, pointer: ChampionPointer) -> tuple[Any, ...]:
        try:
            st = pointer.artifact(self.home).stat()
            stamp: tuple[Any, ...] = (st.st_mtime_ns, st.st_size)
        except OSError:
            stamp = (None, None)
        return (pointer.version, pointer.sha256, pointer.deployment_id, *stamp)

    def _refuse(self, pointer: ChampionPointer, message: str) -> None:
        self._refused = self._refusal_key(pointer)
        self.last_error = message
        log.error("%s", message)

    def start(self) -> None:
        """Watch the pointer in a daemon thread."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._watch, name="champion-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop watching."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def close(self) -> None:
        """Stop watching and stop the served model's worker, if it has one (the server is shutting down)."""
        self.stop()
        cur = self._current
        if cur is not None and cur.worker is not None:
            cur.worker.stop("stopped with the server")

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.refresh()
            except Exception as exc:  # the watcher must outlive any one bad pointer
                self.last_error = f"watcher: {type(exc).__name__}: {exc}"
                log.exception("champion watcher failed")


def predict_rows(loaded: LoadedModel, frame: pd.DataFrame, task: Task | None = None) -> dict[str, Any]:
    """The task's answer for each row of ``frame`` (N rows) by ``loaded`` (classification, the
    default: label and class probabilities); the response body."""
    task = task or Classification()
    classes = list(loaded.pointer.classes)
    pred = task.predict(loaded.model, frame, classes)  # (N, width)
    return {"model_version": loaded.pointer.version,
            "predictions": [task.predict_output(row, classes) for row in pred]}


def create_app(home: Home, *, poll_seconds: float = DEFAULT_POLL_SECONDS, holder: "ModelHolder | None" = None) -> Any:
    """The FastAPI app serving ``home``'s champion; raises :class:`EngineError` when none is deployed."""
    from fastapi import FastAPI, HTTPException, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from fastapi.routing import APIRoute
    from pydantic import BaseModel, Field, create_model

    holder = holder or ModelHolder(home, poll_seconds=poll_seconds)
    holder.refresh()
    first = holder.current
    if first is None:
        why = f" ({holder.last_error})" if holder.last_error else ""
        raise EngineError(f"no champion to serve{why}; run `data-engine train` and `data-engine deploy promote`")
    schema = dict(first.pointer.input_schema)
    has_images = "image" in schema.values()
    Row = row_model(schema)
    task = task_for(home.config.dataset)
    fields = task.predict_fields()

    class PredictRequest(BaseModel):
        rows: list[Row] = Field(..., min_length=1, max_length=MAX_ROWS)  # type: ignore[valid-type]

    # One answer as the task gives it (classification: label and probabilities).
    Prediction = create_model("Prediction", **{k: (t, ...) for k, t in fields.items()}) if fields else dict[str, Any]

    class PredictResponse(BaseModel):
        model_version: int
        predictions: list[Prediction]  # type: ignore[valid-type]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        """Watch the pointer while the server runs."""
        holder.start()
        try:
            yield
        finally:
            holder.close()

    app = FastAPI(title="data-engine model server", version="1", lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Predictions of the current champion model; hot-swapped on promotion.")
    app.state.holder = holder
    _offline_docs(app)

    class CheckedRoute(APIRoute):
        """Refuses JSON nested deeper than MAX_JSON_DEPTH, or with a number longer than Python's
        parser takes, with a 422 before FastAPI parses it."""

        def get_route_handler(self) -> Any:
            handler = super().get_route_handler()

            async def checked(request: Request) -> Any:
                bare = without_strings(await request.body()) if request.method == "POST" else b""
                if json_depth(bare) > MAX_JSON_DEPTH:
                    return JSONResponse(status_code=422, content={"detail": [{
                        "type": "json_too_deep", "loc": ["body"],
                        "msg": f"JSON nested deeper than {MAX_JSON_DEPTH} levels"}]})
                if has_overlong_integer(bare):
                    return JSONResponse(status_code=422, content={"detail": [{
                        "type": "number_too_long", "loc": ["body"],
                        "msg": f"a number with more than {MAX_INTEGER_DIGITS} digits"}]})
                return await handler(request)

            return checked

    app.router.route_class = CheckedRoute

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own handler echoes each rejected input, which fails to render for NaN (a 500)
        # and would echo a 100 kB field back whole.
        return JSONResponse(status_code=422, content={"detail": validation_errors(exc.errors())})

    @app.post("/predict", response_model=PredictResponse)
    def predict(request: PredictRequest) -> dict[str, Any]:
        """Label and class probabilities for each row, with the version of the model that answered."""
        loaded = holder.current  # one model for the whole request
        if loaded is None:  # pragma: no cover - create_app refuses to start without one
            raise HTTPException(status_code=503, detail="no champion loaded")
        frame = rows_frame(request.rows, schema)
        if has_images:
            errors = resolve_image_rows(home, frame, schema)
            if errors:
                return JSONResponse(status_code=422, content={"detail": errors})
        try:
            try:
                return predict_rows(loaded, frame, task)
            except WorkerDown as exc:
                # Its worker stopped because a newer champion took over after this request began: ask that one.
                if not (exc.retired and holder.current is not None and holder.current is not loaded):
                    raise
                return predict_rows(holder.current, frame, task)
        except WorkerDown as exc:  # the trainer's worker exited or hung: the service, not the request
            raise HTTPException(status_code=503, detail=str(exc)) from None
        except WorkerReplyError as exc:  # the trainer's worker answered wrongly
            raise HTTPException(status_code=502, detail=str(exc)) from None
        except EngineError as exc:  # e.g. a vector of the wrong length: the request's fault, said in one line
            raise HTTPException(status_code=422, detail=str(exc)) from None

    @app.get("/health")
    def health() -> dict[str, Any]:
        """Liveness, the version being served and, for the user's trainer, its worker's state."""
        loaded = holder.current
        worker = loaded.worker.status() if loaded and loaded.worker else None
        status = "ok" if loaded else "no model"
        if worker and worker["state"] != "running":
            status = "worker down"
        return {"status": status, "model_version": loaded.pointer.version if loaded else None,
                "last_error": holder.last_error, "worker": worker}

    @app.get("/model")
    def model_info() -> dict[str, Any]:
        """The served champion: version, spec, classes, input columns, sha256; and the last refused swap."""
        loaded = holder.current
        return {
            "model": asdict(loaded.pointer) if loaded else None,
            "loaded_at": loaded.loaded_at if loaded else None,
            "worker": loaded.worker.status() if loaded and loaded.worker else None,
            "swaps": holder.swaps,
            "last_error": holder.last_error,
            "poll_seconds": holder.poll_seconds,
        }

    return app


def _offline_docs(app: Any) -> None:
    """``/docs`` with Swagger UI's files from the ``swagger-ui-bundle`` package, nothing from another host."""
    from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
    from fastapi.staticfiles import StaticFiles
    from swagger_ui_bundle import swagger_ui_path

    app.mount(DOCS_ASSETS, StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")
    redirect = "/docs/oauth2-redirect"

    @app.get("/docs", include_in_schema=False)
    def docs() -> Any:
        # validatorUrl None: Swagger UI would otherwise send the spec to validator.swagger.io.
        return get_swagger_ui_html(
            openapi_url=app.openapi_url, title=f"{app.title} - docs", oauth2_redirect_url=redirect,
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js", swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png", swagger_ui_parameters={"validatorUrl": None})

    @app.get(redirect, include_in_schema=False)
    def oauth2_redirect() -> Any:
        return get_swagger_ui_oauth2_redirect_html()


def wait_for_version(port: int, version: int, *, timeout: float = 120.0, poll_seconds: float = 0.2) -> float:
    """Poll ``GET /health`` on 127.0.0.1:``port`` until it answers with model ``version``; return the seconds waited.

    Raises :class:`EngineError` after ``timeout`` seconds, with the server's last answer (or why none came).
    """
    import json
    import urllib.error
    import urllib.request

    url = f"http://{HOST}:{port}/health"
    started = time.monotonic()
    last = "no answer"
    while True:
        try:
            with urllib.request.urlopen(url, timeout=min(5.0, max(timeout, 0.1))) as resp:
                body = json.loads(resp.read().decode("utf-8"))
            if body.get("model_version") == version:
                return time.monotonic() - started
            last = f"serving v{body.get('model_version')}" + (f", {body['last_error']}" if body.get("last_error") else "")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            last = f"no answer ({getattr(exc, 'reason', exc)})"
        if time.monotonic() - started > timeout:
            raise EngineError(f"the server at {url} did not answer with model v{version} within {timeout:g} s "
                              f"(last: {last}); is `data-engine serve --port {port}` running? (--port names another server's port; "
                              "without --wait the promotion is kept and nothing waits)")
        time.sleep(poll_seconds)


def run_server(home: Home, *, port: int, poll_seconds: float = DEFAULT_POLL_SECONDS, wait: bool = False) -> None:
    """Serve on 127.0.0.1:``port`` until interrupted; with ``wait``, first wait for a champion to exist."""
    import uvicorn

    if not 1 <= port <= 65535:
        raise EngineError(f"--port {port}: must be between 1 and 65535")
    if poll_seconds <= 0:
        raise EngineError(f"--poll-seconds {poll_seconds}: must be positive")
    from threadpoolctl import threadpool_limits

    from data_engine.ship.fitting import NATIVE_THREADS

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # Process-wide: requests run in a thread pool, and per-request limits would race each other.
    threadpool_limits(limits=NATIVE_THREADS)
    holder = ModelHolder(home, poll_seconds=poll_seconds)
    if wait and not holder.refresh():
        print(f"waiting for a champion (watching {home.models / 'CHAMPION.json'})", flush=True)
        while holder.current is None:
            time.sleep(poll_seconds)
            holder.refresh()
    app = create_app(home, holder=holder)
    print(f"serving model v{app.state.holder.current.pointer.version} on http://{HOST}:{port} "
          "(OpenAPI docs at /docs)", flush=True)
    uvicorn.run(app, host=HOST, port=port, log_level="info", access_log=False)
