"""`evaluate --file` and `predict FILE` read stored embedding vectors by content hash: a file scored
twice is embedded once, and content already embedded by training is not embedded again."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pandas as pd
import pytest

from data_engine.mine.embedders.base import EMBEDDERS, Embedder
from data_engine.ship.files import evaluate_file, predict_file
from data_engine.ship.training import train_candidate
from data_engine.ingest.batch import ingest_file
from data_engine.store.home import Home
from data_engine.store.warehouse import open_warehouse

EMBEDDED: list[int] = []


class CountingEmbedder(Embedder):
    """A per-row embedder that counts the rows it embeds (word lengths and a sentiment cue)."""

    name = "counting-test"
    modalities = ("text",)
    version = "1"
    normalised = False

    def embed(self, frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
        EMBEDDED.append(len(frame))
        text = frame[list(columns)[0]].astype(str)
        return np.stack([text.str.len().to_numpy(float), text.str.contains("good").to_numpy(float)], axis=1)


@pytest.fixture()
def home(make_home: Callable[..., Home], monkeypatch: pytest.MonkeyPatch) -> Iterator[Home]:
    # Registered for this test only (the registry's own table, restored afterwards).
    monkeypatch.setitem(EMBEDDERS._builtins, CountingEmbedder.name, CountingEmbedder)
    config = ('[dataset]\nname = "notes"\nmodality = "text"\nid_column = "id"\nlabel_column = "label"\n'
              'text_column = "note"\n[mining]\nembedding = "counting-test"\n[retrain]\nmodel = "embedding"\n')
    home = make_home(config)
    notes = [f"{'good' if i % 2 else 'bad'} film number {i}" for i in range(40)]
    path = home.landing / "train.csv"
    pd.DataFrame({"id": range(40), "note": notes, "label": ["pos" if i % 2 else "neg" for i in range(40)]}
                 ).to_csv(path, index=False)
    with open_warehouse(home) as con:
        ingest_file(con, home.config.dataset, path)
        train_candidate(con, home)
    EMBEDDED.clear()
    yield home
    EMBEDDED.clear()


def test_a_file_is_embedded_once_and_known_content_never(home: Home, tmp_path) -> None:
    path = tmp_path / "heldout.csv"
    # Ten new notes, and five the training set already holds (their vectors are stored).
    notes = [f"{'good' if i % 2 else 'bad'} new note {i}" for i in range(10)] + [
        f"{'good' if i % 2 else 'bad'} film number {i}" for i in range(5)]
    pd.DataFrame({"id": range(100, 115), "note": notes,
                  "label": ["pos" if "good" in n else "neg" for n in notes]}).to_csv(path, index=False)
    first = evaluate_file(home, path, 1)
    assert sum(EMBEDDED) == 10  # only the new content
    second = evaluate_file(home, path, 1)
    assert sum(EMBEDDED) == 10  # nothing embedded again
    assert second.evaluation == first.evaluation
    predicted, _, _ = predict_file(home, path, 1)
    assert sum(EMBEDDED) == 10 and len(predicted) == 15


def test_predict_names_content_ids_without_an_id_column(make_home: Callable[..., Home], monkeypatch, tmp_path) -> None:
    # A new user's trial: without [dataset] id_column, `predict` wrote a first column with no name.
    monkeypatch.setitem(EMBEDDERS._builtins, CountingEmbedder.name, CountingEmbedder)
    home = make_home('[dataset]\nname = "notes"\nmodality = "text"\nlabel_column = "label"\ntext_column = "note"\n'
                     '[mining]\nembedding = "counting-test"\n[retrain]\nmodel = "embedding"\n')
    path = home.landing / "train.csv"
    pd.DataFrame({"note": [f"{'good' if i % 2 else 'bad'} film {i}" for i in range(40)],
                  "label": ["pos" if i % 2 else "neg" for i in range(40)]}).to_csv(path, index=False)
    with open_warehouse(home) as con:
        ingest_file(con, home.config.dataset, path)
        train_candidate(con, home)
    new = tmp_path / "new.csv"
    pd.DataFrame({"note": ["good new film", "bad new film"]}).to_csv(new, index=False)
    frame, _, _ = predict_file(home, new, version=1)
    assert list(frame.columns[:2]) == ["example_id", "predicted_label"] and frame["example_id"].notna().all()
