"""Where a benchmark writes its homes and files: the folder a user keeps (``--keep``), else a temporary
folder removed however the run ends."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def bench_folder(keep: Path | None, prefix: str) -> Iterator[Path]:
    """Yield ``keep`` when given (nothing is removed: the user asked to keep it), else a fresh temporary
    folder named with ``prefix`` (:class:`tempfile.TemporaryDirectory`), removed when the block ends,
    by an error too. Raises nothing of its own."""
    if keep is not None:
        yield keep
        return
    with tempfile.TemporaryDirectory(prefix=prefix, ignore_cleanup_errors=True) as tmp:
        yield Path(tmp)
