"""Running the user's trainer command: a :data:`Runner` (the CLI's :func:`subprocess_runner`, or the
one the Dagster assets set for a run, through Dagster Pipes) and the error naming its stderr tail.

Kept apart from :mod:`data_engine.trainers.command` (which needs scikit-learn for its estimator
classes) so that Dagster's definitions, loaded by every run process, the code server and the
daemon, set the runner without importing scikit-learn: 1.2-2.4 s of each such process start
(``import definitions`` 3.5-5.1 s -> 2.1-2.7 s on the 2-core machine under load).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence

from data_engine.errors import EngineError

# Lines of the trainer's stderr an error quotes: enough for a Python traceback's end.
STDERR_TAIL_LINES = 20

# Runs ``argv`` with a timeout in seconds; returns (exit code, stderr text) or raises
# subprocess.TimeoutExpired.
Runner = Callable[[Sequence[str], float], tuple[int, str]]


def subprocess_runner(argv: Sequence[str], timeout_s: float) -> tuple[int, str]:
    """Run ``argv`` without a shell; its stdout goes to the engine's stdout, its stderr is returned."""
    try:
        done = subprocess.run(list(argv), stdout=None, stderr=subprocess.PIPE, text=True, timeout=timeout_s,
                              check=False)
    except FileNotFoundError:
        raise EngineError(f"model.command: program {argv[0]!r} not found") from None
    except PermissionError:
        raise EngineError(f"model.command: program {argv[0]!r} is not executable") from None
    return done.returncode, done.stderr or ""


# The runner used when none is given (the Dagster assets set their own for the duration of a run).
_runner: list[Runner] = [subprocess_runner]


def set_runner(runner: Runner | None) -> Runner:
    """Make ``runner`` (None: :func:`subprocess_runner`) run trainer commands; return the previous one."""
    previous = _runner[0]
    _runner[0] = runner or subprocess_runner
    return previous


def stderr_tail(stderr: str) -> str:
    """The last :data:`STDERR_TAIL_LINES` non-blank lines of ``stderr``, or "(no stderr)"."""
    lines = [ln for ln in stderr.splitlines() if ln.strip()][-STDERR_TAIL_LINES:]
    return "\n".join(lines) if lines else "(no stderr)"


def run_trainer(command: Sequence[str], args: Sequence[str], timeout_s: float, *, runner: Runner | None = None) -> None:
    """Run ``command + args``; raise :class:`EngineError` with the stderr tail on exit ≠ 0 or timeout."""
    argv = [*command, *args]
    what = f"trainer `{args[0]}`"
    try:
        code, stderr = (runner or _runner[0])(argv, timeout_s)
    except subprocess.TimeoutExpired as exc:
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        raise EngineError(f"{what} ran past model.timeout_s = {timeout_s:g} s and was stopped; "
                          f"last stderr lines:\n{stderr_tail(err)}") from None
    if code != 0:
        raise EngineError(f"{what} exited with status {code}; last stderr lines:\n{stderr_tail(stderr)}")
