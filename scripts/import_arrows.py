"""Print the import arrows between the engine's packages and mark those against the declared layers.

The layers are read from pyproject.toml (the ``layers`` contract of ``[tool.importlinter]``, top
layer first; ``a | b`` are independent siblings), the imports from the source by grimp (the graph
library import-linter itself uses; imports inside functions count). Each line is one arrow
``importer -> imported`` with the number of module-level imports behind it; an arrow from a lower
layer to a higher one (or between independent siblings) is marked ``AGAINST``. Exit status 1 when
any arrow is against the order, so the check can be rerun by anyone:

    python scripts/import_arrows.py              # this repository's data_engine
    python scripts/import_arrows.py --pyproject PATH
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from collections import Counter
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]


def layers_contract(pyproject: Path) -> tuple[str, list[list[str]]]:
    """The container and its layers (top first, each a list of sibling names) of the first layers contract."""
    config = tomllib.loads(pyproject.read_text(encoding="utf-8"))["tool"]["importlinter"]
    for contract in config.get("contracts", []):
        if contract.get("type") == "layers":
            container = contract["containers"][0]
            # "a | b": independent siblings; "a : b": siblings that may import each other (counted
            # as independent here, which is stricter); "(a)": an optional layer.
            return container, [[n.strip().strip("()") for n in layer.replace(":", "|").split("|")]
                               for layer in contract["layers"]]
    raise SystemExit(f"{pyproject}: no layers contract in [tool.importlinter]")


def arrows(container: str) -> Counter[tuple[str, str]]:
    """Imports between the container's direct children, counted per (importer, imported) child."""
    graph = grimp.build_graph(container.split(".")[0], include_external_packages=False)
    depth = container.count(".") + 1

    def child(module: str) -> str | None:
        parts = module.split(".")
        return parts[depth] if module.startswith(container + ".") and len(parts) > depth else None

    counts: Counter[tuple[str, str]] = Counter()
    for importer in graph.modules:
        for imported in graph.find_modules_directly_imported_by(importer):
            a, b = child(importer), child(imported)
            if a and b and a != b:
                counts[(a, b)] += 1
    return counts


def main(argv: list[str] | None = None) -> int:
    """Print the arrows; return 1 when one runs against the layers (or a package has no layer)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pyproject", type=Path, default=ROOT / "pyproject.toml")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(args.pyproject.resolve().parent))
    container, layers = layers_contract(args.pyproject)
    level = {name: i for i, layer in enumerate(layers) for name in layer}
    counts = arrows(container)
    print(f"layers of {container}, top first: " + " > ".join(" | ".join(layer) for layer in layers))
    bad = 0
    width = max((len(f"{a} -> {b}") for a, b in counts), default=0)
    for (a, b), n in sorted(counts.items(), key=lambda kv: (level.get(kv[0][0], -1), level.get(kv[0][1], -1), kv[0])):
        if a not in level or b not in level:
            verdict = "NO LAYER"
        elif level[a] > level[b] or (level[a] == level[b] and a != b):
            verdict = "AGAINST"
        else:
            verdict = ""
        bad += bool(verdict)
        print(f"{f'{a} -> {b}':<{width}}  {n:4d}  {verdict}".rstrip())
    print(f"{len(counts)} arrows, {sum(counts.values())} imports; {bad} against the declared order")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
