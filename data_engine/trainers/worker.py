"""A long-lived worker of the user's ``predict`` for ``data-engine serve``: ``COMMAND serve --model MODEL_DIR``.

``COMMAND predict`` per request would start the user's interpreter and load the model each time
(seconds for a network); the worker loads it once. The protocol (docs/own-model.md), one JSON object
per line:

- the worker loads the model, then writes ``{"ready": true}`` on its stdout;
- the engine writes ``{"id": N, "input": ".../INPUT.parquet", "out": ".../PRED.parquet"}`` on its
  stdin; the worker writes ``PRED.parquet`` as ``predict`` does and answers ``{"id": N}`` (or
  ``{"id": N, "error": "..."}``);
- the worker exits when its stdin closes.

Other stdout lines are the trainer's own output and go to the log, as its stderr does (the last
lines of which are kept for the error that says why the worker is down).

Written by hand: the worker runs in the user's environment (another interpreter, other libraries),
so the engine can neither import its code (a ``multiprocessing`` pool) nor expect any RPC library
there; the requests are the ``predict`` contract's Parquet files, so a worker reuses its ``predict``.
"""

from __future__ import annotations

import json
import logging
import queue
import subprocess
import tempfile
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from data_engine.errors import EngineError
from data_engine.trainers.command import STDERR_TAIL_LINES, CommandModel

log = logging.getLogger("data_engine.trainers.worker")

# After a failed start, requests get the 503 at once for this long before the next start is tried
# (a worker that cannot start is not restarted on every request).
RESTART_BACKOFF_S = 5.0
# Seconds a stopped worker has to exit after its stdin closes before it is killed.
STOP_GRACE_S = 5.0


class WorkerDown(EngineError):
    """The worker is not running; the message says why (exit status and last stderr lines, a timeout,
    a replacement). ``retired``: stopped because a newer model replaced it."""

    def __init__(self, message: str, *, retired: bool = False) -> None:
        super().__init__(message)
        self.retired = retired


class WorkerReplyError(EngineError):
    """The worker answered a request with an error or with malformed predictions."""


class PredictWorker:
    """``model`` (a fitted :class:`CommandModel`: the trainer's classifier or regressor) served by one
    long-lived ``COMMAND serve`` process; a model itself (``classes_``, ``predict_proba``, ``predict``).

    ``timeout_s``: seconds the worker may take to say it is ready or to answer one request; past it
    the worker is stopped. A worker found down is restarted by the next request (at most once per
    :data:`RESTART_BACKOFF_S`). Requests are answered one at a time (one process, one pipe).
    """

    def __init__(self, model: CommandModel, *, timeout_s: float, label: str = "the model") -> None:
        self.model = model
        self.timeout_s = float(timeout_s)
        self.label = label
        self.starts = 0
        self.answered = 0
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[str] | None = None
        self._replies: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._stderr: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
        self._threads: list[threading.Thread] = []
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._cause: str | None = "not started"
        self._retired = False
        self._attempted = float("-inf")
        self._next_id = 0

    @property
    def classes_(self) -> np.ndarray:
        """The classes of the served model, in the order of :meth:`predict_proba`'s columns."""
        return self.model.classes_

    def start(self) -> "PredictWorker":
        """Start the worker and wait until it says ready; raise :class:`WorkerDown` naming why it could not."""
        with self._lock:
            self._start()
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """The worker's answer for ``X``'s n rows: for a classifier the probabilities, shape
        (n, len(classes_)) (for tags, per tag); for numbers the values, shape (n,) (the model's
        ``read_predictions``).

        Raises :class:`WorkerDown` (not running, exited, past ``timeout_s``) or
        :class:`WorkerReplyError` (an error answer, or predictions the ``predict`` contract refuses).
        """
        ids = self.model.input_ids(X)
        with self._lock:
            if self._retired:
                raise WorkerDown(self._cause or "stopped", retired=True)
            if not self._running():
                if self._cause is None:  # it exited between two requests
                    self._cause = self._exited()
                wait = RESTART_BACKOFF_S - (time.monotonic() - self._attempted)
                if wait > 0:
                    raise WorkerDown(f"{self._cause}\n(the next start is tried in {wait:.0f} s)")
                self._start()
            assert self._proc is not None and self._proc.stdin is not None and self._tmp is not None
            self._next_id += 1
            n = self._next_id
            inp, out = Path(self._tmp.name) / f"input-{n}.parquet", Path(self._tmp.name) / f"pred-{n}.parquet"
            try:
                frame = self.model.input_frame(X, ids)
                frame.to_parquet(inp, index=False)
                try:
                    self._proc.stdin.write(json.dumps({"id": n, "input": str(inp), "out": str(out)}) + "\n")
                    self._proc.stdin.flush()
                except OSError:  # the worker closed its stdin: it is exiting
                    self._fail(self._exited(wait=True))
                reply = self._wait_for(lambda r: r.get("id") == n, "answer a request")
                if reply.get("error"):
                    raise WorkerReplyError(f"the trainer's serve worker for {self.label} failed on this request: "
                                           f"{reply['error']}")
                try:
                    probs = self.model.read_answer(out, ids, frame)
                except EngineError as exc:
                    raise WorkerReplyError(f"the trainer's serve worker for {self.label}: {exc}") from None
            finally:
                inp.unlink(missing_ok=True)
                out.unlink(missing_ok=True)
            self.answered += 1
            return probs

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Shape (n,): the model's decision on the worker's answer for ``X`` (the most probable class,
        the tag set, or for numbers the value; the model's ``decide``)."""
        return self.model.decide(self.predict_proba(X))

    def stop(self, reason: str = "stopped") -> None:
        """Close the worker's stdin (it exits), after the request in progress; kill it if it lingers."""
        self._retired = True
        got = self._lock.acquire(timeout=self.timeout_s + STOP_GRACE_S)
        try:
            self._cause = f"the trainer's serve worker for {self.label} was {reason}"
            self._close(graceful=True)
        finally:
            if got:
                self._lock.release()

    def status(self) -> dict[str, Any]:
        """``state`` ("running" or "down"), ``pid``, ``starts``, ``answered`` and the ``cause`` when down."""
        running = self._running()
        return {"state": "running" if running else "down", "pid": self._proc.pid if running and self._proc else None,
                "starts": self.starts, "answered": self.answered,
                "cause": None if running else (self._cause or self._exited())}

    # -- the process ----------------------------------------------------------------------------------

    def _running(self) -> bool:
        return self._cause is None and self._proc is not None and self._proc.poll() is None

    def _start(self) -> None:
        self._close(graceful=False)
        self._attempted = time.monotonic()
        self._tmp = tempfile.TemporaryDirectory(prefix="trainer-serve-")
        model_dir = self.model.unpack_model(Path(self._tmp.name) / "model")
        argv = [*self.model.command, "serve", "--model", str(model_dir)]
        self._replies, self._stderr = queue.Queue(), deque(maxlen=STDERR_TAIL_LINES)
        try:
            self._proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                          text=True, bufsize=1)
        except (FileNotFoundError, PermissionError) as exc:
            self._proc = None
            self._cause = f"the trainer's serve worker for {self.label} could not start: {argv[0]!r}: {exc.strerror}"
            raise WorkerDown(self._cause) from None
        self._threads = [threading.Thread(target=_read_replies, args=(self._proc, self._replies), daemon=True),
                         threading.Thread(target=_read_stderr, args=(self._proc, self._stderr), daemon=True)]
        for t in self._threads:
            t.start()
        self._cause = None
        self._wait_for(lambda r: bool(r.get("ready")), "say it was ready",
                       hint=" (`COMMAND serve --model MODEL_DIR` is the worker: docs/own-model.md)")
        self.starts += 1
        log.info("the trainer's serve worker for %s is ready (pid %s)", self.label, self._proc.pid)

    def _wait_for(self, match: Any, what: str, hint: str = "") -> dict[str, Any]:
        """The worker's next reply that ``match``es; :meth:`_fail` on its exit or after ``timeout_s``."""
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                reply = self._replies.get(timeout=max(deadline - time.monotonic(), 0.0))
            except queue.Empty:
                self._fail(f"the trainer's serve worker for {self.label} did not {what} within "
                           f"model.serve_timeout_s = {self.timeout_s:g} s and was stopped")
            if reply is None:
                self._fail(self._exited(wait=True) + hint)
            if match(reply):
                return reply

    def _exited(self, *, wait: bool = False) -> str:
        code = None
        if self._proc is not None:
            try:
                code = self._proc.wait(timeout=STOP_GRACE_S) if wait else self._proc.poll()
            except subprocess.TimeoutExpired:
                code = None
        return f"the trainer's serve worker for {self.label} exited with status {code}"

    def _fail(self, message: str) -> None:
        self._close(graceful=False)  # kills it if it still runs; the stderr readers finish
        self._cause = f"{message}; last stderr lines:\n" + ("\n".join(self._stderr) or "(no stderr)")
        log.error("%s", self._cause)
        raise WorkerDown(self._cause)

    def _close(self, *, graceful: bool) -> None:
        """End the process (``graceful``: close its stdin and give it :data:`STOP_GRACE_S` to exit; else
        kill it), wait for the pipe readers, remove the unpacked model."""
        proc, self._proc = self._proc, None
        if proc is not None:
            try:
                if proc.stdin is not None:
                    proc.stdin.close()
            except OSError:
                pass
            try:
                proc.wait(timeout=STOP_GRACE_S if graceful else 0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            self._proc = proc  # keep it for its exit status
        for t in self._threads:
            t.join(timeout=2)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def _read_replies(proc: subprocess.Popen[str], replies: queue.Queue[dict[str, Any] | None]) -> None:
    """Protocol lines of the worker's stdout into ``replies`` (None at its end); other lines to the log."""
    assert proc.stdout is not None
    for line in proc.stdout:
        text = line.strip()
        try:
            obj = json.loads(text)
        except ValueError:
            obj = None
        if isinstance(obj, dict) and ("ready" in obj or "id" in obj):
            replies.put(obj)
        elif text:
            log.info("trainer serve worker: %s", text)
    replies.put(None)


def _read_stderr(proc: subprocess.Popen[str], tail: deque[str]) -> None:
    """The worker's stderr lines into the log and ``tail`` (the last :data:`STDERR_TAIL_LINES`)."""
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.strip():
            tail.append(line.rstrip("\n"))
            log.info("trainer serve worker stderr: %s", line.rstrip())


def serving_worker(model: Any, *, timeout_s: float, label: str) -> tuple[Any, PredictWorker | None]:
    """``model`` as served, and its started :class:`PredictWorker` when it is (or, for numbers, wraps
    as ``estimator_`` in the interval wrapper) the user's trainer: the worker answers in its place.
    ``(model, None)`` for the engine's own models. Raises :class:`WorkerDown` when the worker cannot start."""
    if isinstance(model, CommandModel):
        worker = PredictWorker(model, timeout_s=timeout_s, label=label).start()
        return worker, worker
    inner = getattr(model, "estimator_", None)
    if isinstance(inner, CommandModel):
        import copy

        worker = PredictWorker(inner, timeout_s=timeout_s, label=label).start()
        served = copy.copy(model)  # the loaded artifact's wrapper, its fitted model swapped for the worker
        served.estimator_ = worker
        return served, worker
    return model, None
