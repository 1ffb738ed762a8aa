"""The engine home of a benchmark run: one place writes every benchmark's home config."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from data_engine.store.home import Home


def make_home(root: Path, data: Any, *, model: str, n_jobs: int, budget: int, embedding: str = "auto",
              task: str = "classification", classes: list[str] | None = None, label_column: str = "label",
              seed: int | None = None) -> Home:
    """A fresh engine home at ``root`` whose config describes ``data`` (a BenchDataset): every
    benchmark's home config is written here.

    ``task``: the ``[dataset] task`` (written unless the default, classification); ``classes``: the
    class or tag names (default ``data.classes``; none for a regression, whose labels are numbers);
    ``label_column``: the landed file's label column; ``seed``: ``[mining] seed`` (the default, 0,
    when None). ``budget``: ``[review] budget``, examples.
    """
    features = [c for c, k in data.schema.items() if k not in ("text", "image")]
    lines = [
        "[dataset]", f'name = "{data.name}"', f'modality = "{data.modality}"', 'id_column = "id"',
        f"label_column = {json.dumps(label_column)}", f"feature_columns = {json.dumps(features)}",
    ]
    if task != "classification":
        lines.append(f"task = {json.dumps(task)}")
    if task != "regression":
        lines.append(f"classes = {json.dumps(data.classes if classes is None else classes)}")
    image = [c for c, k in data.schema.items() if k == "image"]
    if image:
        lines += [f"image_column = {json.dumps(image[0])}", f"image_root = {json.dumps(str(data.image_root))}"]
    if data.text_column:
        lines.append(f'text_column = "{data.text_column}"')
    col_types = {c: k for c, k in data.schema.items() if k == "categorical"}
    if col_types:
        lines.append("column_types = {" + ", ".join(f'{c} = "{k}"' for c, k in col_types.items()) + "}")
    lines += ["", "[mining]", f'model = "{model}"', f'embedding = "{embedding}"', f"n_jobs = {n_jobs}"]
    if seed is not None:
        lines.append(f"seed = {seed}")
    lines += ["", "[review]", f"budget = {budget}", ""]
    home = Home(root.resolve())
    home.make_dirs()
    home.config_path.write_text("\n".join(lines), encoding="utf-8")
    return home
