"""Write tests/heavy_tests.txt: the tests that take the most time, left out of `make test-fast`.

Reads pytest's ``--durations=0`` report (setup, call and teardown lines) on standard input, adds up
each test's three phases and adds the tests at or above ``--seconds`` (default 1.0 s, as measured
on a 2-core machine under the load of other work) to the list; an entry is removed by hand. `make test` still runs them all;
tests/conftest.py marks the listed ones ``heavy``. Refresh it after a suite run:

    scripts/test.sh --fast -q --durations=0 | .venv/bin/python scripts/heavy_tests.py

With ``--files`` it writes tests/file_seconds.txt instead: each test file's seconds (its tests'
phases added up) from a whole run's report, the order `make test`'s workers start the files in
(tests/suite_order.py). Refresh it after a whole run:

    scripts/test.sh -q --durations=0 | .venv/bin/python scripts/heavy_tests.py --files
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import defaultdict
from pathlib import Path

LINE = re.compile(r"^(\d+(?:\.\d+)?)s (setup|call|teardown)\s+(\S+)$")
OUT = Path(__file__).resolve().parent.parent / "tests" / "heavy_tests.txt"
FILES_OUT = OUT.parent / "file_seconds.txt"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="list tests at or above this many seconds")
    parser.add_argument("--files", action="store_true",
                        help=f"write each file's seconds to {FILES_OUT.name} (from a whole run's report)")
    args = parser.parse_args()
    total: dict[str, float] = defaultdict(float)
    for line in sys.stdin:
        if m := LINE.match(line.strip()):
            total[m.group(3)] += float(m.group(1))
    if not total:
        print("heavy_tests: no duration lines on standard input (run pytest with --durations=0)", file=sys.stderr)
        return 1
    if args.files:
        return write_file_seconds(total)
    # A listed test is left out of the fast run, so its new report has no line for it: keep it.
    listed = [ln.strip() for ln in OUT.read_text().splitlines() if ln.strip() and not ln.startswith("#")] \
        if OUT.exists() else []
    found = sorted((t for t, s in total.items() if s >= args.seconds), key=lambda t: -total[t])
    heavy = list(dict.fromkeys([*listed, *found]))
    OUT.write_text("# Tests left out of `make test-fast` (scripts/heavy_tests.py; `make test` runs them).\n"
                   + "".join(f"{t}\n" for t in heavy))
    print(f"{len(found)} tests at or above {args.seconds:g} s in this report "
          f"({sum(total[t] for t in found):.0f} of {sum(total.values()):.0f} s); {len(heavy)} listed -> {OUT}")
    return 0


def write_file_seconds(total: dict[str, float]) -> int:
    """Write every file's seconds (its tests added up), longest first, to tests/file_seconds.txt."""
    per_file: dict[str, float] = defaultdict(float)
    for test, seconds in total.items():
        per_file[test.partition("::")[0]] += seconds
    ranked = sorted(per_file.items(), key=lambda pair: -pair[1])
    FILES_OUT.write_text("# Seconds per test file in a measured whole run (scripts/heavy_tests.py --files); "
                         "`make test`'s workers start the longest first.\n"
                         + "".join(f"{seconds:.1f} {path}\n" for path, seconds in ranked))
    print(f"{len(ranked)} files, {sum(per_file.values()):.0f} s in all -> {FILES_OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
