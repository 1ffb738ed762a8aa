"""The order the test files start in when the suite runs on several workers (pytest-xdist).

`make test` hands whole files to the workers (``--dist loadfile``) in collection order
(``--no-loadscope-reorder``; xdist's default order is by number of tests, which starts the long
end-to-end files, a few tests each, last, on one worker, alone). ``tests/file_seconds.txt`` holds the
seconds each file took in a measured whole run (written by ``scripts/heavy_tests.py --files``);
the longest files go first, so the other worker works through the short files meanwhile.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

FILE_SECONDS_PATH = Path(__file__).parent / "file_seconds.txt"


def read_file_seconds(path: Path = FILE_SECONDS_PATH) -> dict[str, float]:
    """``{test file path: seconds}`` from lines ``<seconds> <path>`` (``#`` comments); ``{}`` if absent.

    Raises:
        ValueError: a line that is not ``<seconds> <path>``, naming the file and line number.
    """
    if not path.exists():
        return {}
    seconds: dict[str, float] = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        value, _, name = line.partition(" ")
        try:
            seconds[name.strip()] = float(value)
        except ValueError:
            raise ValueError(f"{path}:{number}: expected '<seconds> <test file>', got {line!r}") from None
    return seconds


def longest_files_first(nodeids: Sequence[str], seconds: dict[str, float]) -> list[int]:
    """Positions of ``nodeids`` (pytest node ids) reordered so the files with the most ``seconds`` come first.

    The sort is stable: a file's tests keep their order and stay together (every test of a file has
    the file's key), and files without a figure keep their collection order after the measured ones.
    """
    def file_seconds(position: int) -> float:
        return seconds.get(nodeids[position].partition("::")[0], 0.0)

    return sorted(range(len(nodeids)), key=lambda position: -file_seconds(position))
