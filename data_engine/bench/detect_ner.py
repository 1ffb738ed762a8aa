"""``bench detect --dataset ner``: span-error detection on a generated NER set, engine vs cleanlab.

Templated sentences with person, place and organisation names (:mod:`data_engine.demo.entities`;
no download) get span errors injected at a seed in about ``noise`` of the texts holding an entity
(an entity dropped, given the wrong type, or its boundary shifted by a word or, in
:data:`INSIDE_WORDS` of the shifts, by 1-2 characters to inside a word as a slipped drag leaves it),
are ingested into a
fresh engine home with ``[dataset] task = "ner"`` and mined. The engine's label flags and its
queue's first k (k = the number of corrupted texts) are scored against the corrupted texts, beside
cleanlab's own call on the same stored out-of-fold predictions:
``cleanlab.token_classification.filter.find_label_issues`` on the per-token probabilities, its
texts ranked by ``cleanlab.token_classification.rank.get_label_quality_scores``.

The set is easy (names from short lists, a dozen templates): the figures say the plumbing finds what
cleanlab finds, not how a tagger does on real text.

An ``external`` arm does the same with a user's tagger's predictions landed the user's way: per text
a JSONL row ``{"example_id", "tokens", "probs"}`` (the tagger's tokens as text and its IO
probabilities: the true tag at 0.6-0.99, the rest spread evenly, and one token in twenty given
to a wrong tag by the tagger), read back by the engine's reader
(:func:`data_engine.mine.external.read_external` with the NER task) and checked by the task, beside
cleanlab's own call on the tagger's arrays as generated.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from data_engine.bench.folders import bench_folder
from data_engine.bench.scores import detection_scores, flag_line

NER_DATASETS = ("ner",)
# The share of the injected boundary shifts that leave a boundary inside a word ("Pari" of "Paris").
INSIDE_WORDS = 0.5
KINDS = ("dropped", "wrong_type", "shifted", "shifted_in_word")


def _cleanlab_call(labels: list[str], probs: np.ndarray, types: list[str], ids: list[str]) -> tuple[set[str], list[str]]:
    """cleanlab's token-classification flags (text ids) and its texts ranked by label quality score."""
    from cleanlab.token_classification.filter import find_label_issues
    from cleanlab.token_classification.rank import get_label_quality_scores

    from data_engine.tasks.ner_issues import token_arrays

    _, given, token_probs = token_arrays(labels, probs, types)
    keep = [i for i, g in enumerate(given) if len(g)]
    issues = find_label_issues([given[i].tolist() for i in keep], [token_probs[i] for i in keep], n_jobs=1)
    scores, _ = get_label_quality_scores([given[i].tolist() for i in keep], [token_probs[i] for i in keep])
    flagged = {ids[keep[i]] for i, _ in issues}
    ranked = [ids[keep[i]] for i in np.argsort(np.asarray(scores), kind="stable")]
    return flagged, ranked


def _tagger(examples: list, types: list[str], seed: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A user's tagger's IO probabilities per text (tokens, probs (m, 1 + K)) from the true spans (module docstring)."""
    from data_engine.tasks import tokens as tk

    rng = np.random.default_rng(seed)
    offs, probs = [], []
    for e in examples:
        off = tk.offsets(e.text)
        tags = tk.spans_to_tags(e.true_spans, off, types)
        p = np.zeros((len(off), len(types) + 1))
        for j, tag in enumerate(tags):
            if rng.random() < 0.05:
                tag = int(rng.choice([t for t in range(len(types) + 1) if t != tag]))
            top = rng.uniform(0.6, 0.99)
            p[j] = (1.0 - top) / len(types)
            p[j, tag] = top
        offs.append(off)
        probs.append(p)
    return offs, probs


def _external_arm(ds: Any, examples: list, ids: list[str], types: list[str], truth: pd.Series,
                  seed: int) -> dict[str, Any]:
    """The engine's check of a user's tagger's JSONL rows beside cleanlab's own call on its arrays."""
    from cleanlab.token_classification.filter import find_label_issues
    from cleanlab.token_classification.rank import get_label_quality_scores

    from data_engine.mine.external import read_external
    from data_engine.tasks import tokens as tk
    from data_engine.tasks.ner import NER

    offs, probs = _tagger(examples, types, seed)
    with tempfile.TemporaryDirectory(prefix="bench-ner-tagger-") as tmp:
        rows = [{"example_id": i, "tokens": [e.text[s:t] for s, t in off.tolist()], "probs": p.round(6).tolist()}
                for i, e, off, p in zip(ids, examples, offs, probs)]
        (Path(tmp) / "tagger.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        frame = pd.DataFrame({"example_id": ids, ds.text_column: [e.text for e in examples]})
        table, _ = read_external(Path(tmp), types, NER(ds), examples=frame, sources={})
    task = NER(ds)
    issues = task.label_issues(task.encode([e.given_label for e in examples], types),
                               table.reindex(ids).to_numpy(dtype=float), types, frame)
    engine = detection_scores(truth, {ids[i] for i in np.flatnonzero(issues.is_issue)},
                              [ids[i] for i in np.argsort(issues.scores, kind="stable")])
    given = [tk.spans_to_tags(e.given_spans, off, types).tolist() for e, off in zip(examples, offs)]
    keep = [i for i, g in enumerate(given) if g]
    found = find_label_issues([given[i] for i in keep], [probs[i] for i in keep], n_jobs=1)
    scores, _ = get_label_quality_scores([given[i] for i in keep], [probs[i] for i in keep])
    cleanlab = detection_scores(truth, {ids[keep[i]] for i, _ in found},
                                [ids[keep[i]] for i in np.argsort(np.asarray(scores), kind="stable")])
    return {"engine": engine, "cleanlab_same_predictions": cleanlab}


def run_ner_detect_benchmark(*, rows: int = 1000, noise: float = 0.1, seed: int = 0,
                             keep: Path | None = None, corpus: Path | None = None) -> dict[str, Any]:
    """Run the benchmark; return its figures as a JSON-able dict (see :func:`format_ner_result`).
    ``corpus``: a CoNLL/BIO file whose first ``rows`` sentences replace the generated texts
    (:func:`data_engine.bench.ner_corpus.corpus_texts`; the types are the ones it uses)."""
    from data_engine.bench.ner_corpus import corpus_texts
    from data_engine.demo.entities import TYPES as GENERATED_TYPES
    from data_engine.demo.entities import inject_errors, make_texts
    from data_engine.errors import EngineError
    from data_engine.ingest.batch import ingest_file
    from data_engine.mine.run import run_mining
    from data_engine.store.home import Home
    from data_engine.store.warehouse import open_warehouse

    with bench_folder(keep, "bench-ner-") as workdir:
        root = keep or workdir / "home"
        texts = make_texts(rows, seed=seed) if corpus is None else corpus_texts(corpus)[:rows]
        types = GENERATED_TYPES if corpus is None else tuple(sorted({s.label for _, spans in texts for s in spans}))
        examples = inject_errors(texts, rate=noise, seed=seed + 1, inside_words=INSIDE_WORDS, types=types)
        ids = [f"ex{i}" for i in range(len(examples))]
        home = Home(root.resolve())
        home.make_dirs()
        home.config_path.write_text(
            '[dataset]\nname = "ner-bench"\nmodality = "text"\ntask = "ner"\nid_column = "id"\n'
            f'label_column = "spans"\ntext_column = "text"\nclasses = {json.dumps(list(types))}\n\n'
            f'[mining]\nembedding = "tfidf"\nseed = {seed}\n\n[review]\nbudget = {max(1, sum(bool(e.error) for e in examples))}\n'
            '\n[gate]\nmetric = "f1"\n', encoding="utf-8")
        path = home.landing / "texts.jsonl"
        path.write_text("".join(json.dumps({"id": i, "text": e.text, "spans": json.loads(e.given_label)}) + "\n"
                                for i, e in zip(ids, examples)), encoding="utf-8")
        with open_warehouse(home) as con:
            ingested = ingest_file(con, home.config.dataset, path)
            if ingested.status != "ingested" or ingested.rows_ok != len(examples):
                raise EngineError(f"benchmark batch not fully ingested: {ingested.status} {ingested.reason or ''}")
            summary = run_mining(con, home.config, home=home)
            flags = set(con.execute("SELECT example_id FROM issues WHERE run_id = ? AND issue_type = 'label' "
                                    "AND is_issue", [summary.run_id]).fetchdf()["example_id"])
            queue = con.execute("SELECT example_id FROM review_queue WHERE run_id = ? ORDER BY rank",
                                [summary.run_id]).fetchdf()["example_id"].tolist()
            stored = con.execute("SELECT p.example_id, p.probs, e.spans FROM predictions p JOIN current_examples e "
                                 "ON e.example_id = p.example_id AND e.version = p.example_version "
                                 "WHERE p.kind = 'oof' ORDER BY p.example_id").fetchall()
        truth = pd.Series([bool(e.error) for e in examples], index=ids)
        engine = detection_scores(truth, flags, queue)
        engine["model_spec"] = summary.model_spec
        s_ids = [r[0] for r in stored]
        probs = np.asarray([r[1] for r in stored], dtype=float)
        c_flags, c_ranked = _cleanlab_call([str(r[2]) for r in stored], probs, list(types), s_ids)
        cleanlab = detection_scores(truth, c_flags, c_ranked)
        external = _external_arm(home.config.dataset, examples, ids, list(types), truth, seed + 2)
        kinds = {k: sum(e.error == k for e in examples) for k in KINDS}
        found = {k: sum(e.error == k and i in flags for i, e in zip(ids, examples)) for k in kinds}
    return {"dataset": "ner" if corpus is None else f"ner-conll ({corpus.name})", "rows": len(examples),
            "types": list(types), "noise": noise, "seed": seed,
            "corrupted": int(truth.sum()), "errors_by_kind": kinds, "engine_flagged_by_kind": found,
            "engine": engine, "cleanlab_same_predictions": cleanlab, "external": external}


def format_ner_result(r: dict[str, Any]) -> str:
    """The benchmark's figures as a few lines of text."""
    kinds = ", ".join(f"{k} {r['engine_flagged_by_kind'][k]}/{n}" for k, n in r["errors_by_kind"].items())
    return "\n".join([
        f"bench detect --dataset {r['dataset']}: {r['rows']} texts ({', '.join(r['types'])}), {r['corrupted']} with a span error "
        f"(seed {r['seed']})",
        flag_line("engine (label flags, queue)", r["engine"]),
        flag_line("cleanlab, same predictions", r["cleanlab_same_predictions"]),
        f"engine flags by error kind: {kinds}",
        "a user's tagger's predictions (JSONL tokens and probabilities, read by the engine):",
        flag_line("engine", r["external"]["engine"]),
        flag_line("cleanlab, same predictions", r["external"]["cleanlab_same_predictions"]),
    ])
