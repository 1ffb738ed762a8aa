"""Generated multi-label data for the tests: support tickets with tags, and sklearn's
``make_multilabel_classification`` as a table, each with injected tag errors (one tag of an
example added or removed) and the true tag sets as an ``oracle.jsonl``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

TICKET_TAGS = {
    "account": ["password reset", "cannot log in", "two-factor code", "delete my account", "username", "locked out"],
    "billing": ["invoice", "charged twice", "refund", "payment failed", "billing address", "credit card"],
    "bug": ["crashes", "error 500", "button does nothing", "page is blank", "stack trace", "broken link"],
    "feature": ["would be nice", "please add", "feature request", "dark mode", "export to excel", "integration with"],
    "urgent": ["asap", "production is down", "immediately", "urgent", "critical", "right now"],
}
FILLER = ["hello team", "thanks", "regards", "hi", "see attached", "as discussed", "my order", "the app",
          "yesterday", "again", "please help", "since monday"]


@dataclass
class TagData:
    """Rows to land (``frame``: id, inputs, ``tags`` as written in the file), the tags, the true tag
    sets by id and the ids whose tags were changed."""

    frame: pd.DataFrame
    tags: list[str]
    truth: dict[str, list[str]]
    noisy: set[str]

    def write(self, home_root: Path, name: str = "data.csv") -> Path:
        """Write the rows to ``landing/name`` (tags as ``a|b``, ``[]`` for none) and ``oracle.jsonl``."""
        path = home_root / "landing" / name
        self._csv(path)
        (home_root / "oracle.jsonl").write_text(
            "".join(json.dumps({"id": i, "label": t}) + "\n" for i, t in self.truth.items()), encoding="utf-8")
        return path

    def write_gold(self, home_root: Path) -> Path:
        """Write the rows as gold data, ``landing/gold/gold.csv`` (ids prefixed ``g``; no oracle)."""
        path = home_root / "landing" / "gold" / "gold.csv"
        path.parent.mkdir(exist_ok=True)
        TagData(self.frame.assign(id=["g" + i for i in self.frame["id"]]), self.tags, {}, set())._csv(path)
        return path

    def _csv(self, path: Path) -> None:
        self.frame.assign(tags=["|".join(t) if t else "[]" for t in self.frame["tags"]]).to_csv(path, index=False)


def _inject(rows: list[list[str]], tags: list[str], share: float, rng: np.random.Generator) -> tuple[list[list[str]], np.ndarray]:
    """Flip one random tag (add or remove) in ``share`` of the rows; returns the rows and the flipped indices."""
    n = len(rows)
    flipped = rng.choice(n, int(round(share * n)), replace=False)
    out = [list(r) for r in rows]
    for i in flipped:
        out[i] = sorted(set(out[i]) ^ {str(rng.choice(tags))})
    return out, flipped


def tickets(n: int = 400, *, noise: float = 0.1, seed: int = 0, words_per_tag: int = 2) -> TagData:
    """Support tickets: each tag present contributes ``words_per_tag`` of its phrases, plus filler."""
    rng = np.random.default_rng(seed)
    names = sorted(TICKET_TAGS)
    truth_rows, texts = [], []
    for _ in range(n):
        k = int(rng.choice([0, 1, 2, 3], p=[0.1, 0.45, 0.35, 0.1]))
        tags = sorted(str(t) for t in rng.choice(names, size=k, replace=False))
        words = [str(w) for t in tags for w in rng.choice(TICKET_TAGS[t], size=words_per_tag, replace=False)]
        words += [str(w) for w in rng.choice(FILLER, size=3)]
        rng.shuffle(words)
        truth_rows.append(tags)
        texts.append(" ".join(words))
    given, flipped = _inject(truth_rows, names, noise, rng)
    ids = [f"t{i}" for i in range(n)]
    frame = pd.DataFrame({"id": ids, "text": texts, "tags": given})
    return TagData(frame, names, dict(zip(ids, truth_rows)), {ids[i] for i in flipped})


def table(n: int = 600, *, n_tags: int = 5, noise: float = 0.1, seed: int = 0) -> TagData:
    """scikit-learn's ``make_multilabel_classification`` (20 numeric features) as a table."""
    from sklearn.datasets import make_multilabel_classification

    X, Y = make_multilabel_classification(n_samples=n, n_features=20, n_classes=n_tags, n_labels=2,
                                          random_state=seed)
    names = [f"tag{k}" for k in range(n_tags)]
    truth_rows = [[names[k] for k in np.flatnonzero(row)] for row in Y]
    given, flipped = _inject(truth_rows, names, noise, np.random.default_rng(seed + 1))
    ids = [f"r{i}" for i in range(n)]
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(X.shape[1])])
    frame.insert(0, "id", ids)
    frame["tags"] = given
    return TagData(frame, names, dict(zip(ids, truth_rows)), {ids[i] for i in flipped})


# The breast-cancer table's tags: the diagnosis and three measurements above a quantile; the
# measurement a tag is cut from is left out of the inputs, so the tag is learnt from the others.
CANCER_TAGS = {"large": ("mean area", 0.75), "rough": ("mean texture", 0.6), "concave": ("mean concave points", 0.5)}
# Other bundled tables turned into tags by the same rule (a tag: a column above a quantile, the
# column left out of the inputs), each with its own class or target tag. Chosen before any run of
# the loop on them and never changed after: they are the held-out sets of the tags loop.
WINE_TAGS = {"strong": ("alcohol", 0.5), "dark": ("color_intensity", 0.6), "phenolic": ("total_phenols", 0.5)}
DIABETES_TAGS = {"heavy": ("bmi", 0.7), "high_pressure": ("bp", 0.6), "older": ("age", 0.5)}
DIGIT_QUADRANT_TAGS = {"top_ink": ("top", 0.5), "left_ink": ("left", 0.5)}


def _tag_table(X: pd.DataFrame, on: dict[str, np.ndarray], *, noise: float, seed: int,
               n_gold: int) -> tuple[TagData, TagData]:
    """Rows of ``X`` with the tags ``on`` (tag -> bool per row): (training rows with ``noise`` of
    the tag sets given one wrong tag, ``n_gold`` clean gold rows), split at random by ``seed``."""
    names = sorted(on)
    X = X.rename(columns=lambda c: str(c).replace(" ", "_").replace("/", "_"))
    truth_rows = [[t for t in names if on[t][i]] for i in range(len(X))]
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(X))
    gold_rows, train_rows = order[:n_gold], order[n_gold:]

    def part(rows: np.ndarray, prefix: str, share: float) -> TagData:
        truth = [truth_rows[i] for i in rows]
        given, flipped = _inject(truth, names, share, rng)
        ids = [f"{prefix}{i}" for i in rows]
        frame = X.iloc[rows].reset_index(drop=True)
        frame.insert(0, "id", ids)
        frame["tags"] = given
        return TagData(frame, names, dict(zip(ids, truth)), {ids[i] for i in flipped})

    return part(train_rows, "c", noise), part(gold_rows, "c", 0.0)


def _quantile_tags(X: pd.DataFrame, rules: dict[str, tuple[str, float]]) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Each rule's tag (its column above its quantile) and ``X`` without those columns."""
    on = {tag: (X[col] > X[col].quantile(q)).to_numpy() for tag, (col, q) in rules.items()}
    return X.drop(columns=[col for col, _ in rules.values()]), on


def cancer_tags(*, noise: float = 0.2, seed: int = 0, n_gold: int = 100) -> tuple[TagData, TagData]:
    """scikit-learn's bundled breast-cancer table (569 rows, no download) as tags: ``malignant``
    and :data:`CANCER_TAGS`; 27 numeric inputs. Returns (training rows with ``noise`` of the tag
    sets given one wrong tag, ``n_gold`` clean gold rows), split at random by ``seed``."""
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer(as_frame=True)
    X, on = _quantile_tags(bunch.frame.drop(columns="target"), CANCER_TAGS)
    on["malignant"] = (bunch.frame["target"] == 0).to_numpy()
    return _tag_table(X, on, noise=noise, seed=seed, n_gold=n_gold)


SENTENCE_SITES = ("amazon", "imdb", "yelp")


def sentence_tags(*, noise: float = 0.2, seed: int = 0) -> tuple[TagData, TagData]:
    """The Sentiment Labelled Sentences (Kotzias et al., KDD 2015: 1,000 review sentences from each
    of amazon.com, imdb.com and yelp.com, half positive), read by the engine's own reader
    (:func:`data_engine.bench.datasets.load_sentiment_dataset`, the folder in
    ``$DATA_ENGINE_SENTIMENT_DIR``), as text with tags: ``positive`` (the file's score 1) and the site
    the sentence came from, both given by the data, none derived by a rule of ours. A fifth of the
    rows (rounded) kept as clean gold. Raises EngineError when the folder is not found."""
    from data_engine.bench.datasets import load_sentiment_dataset

    data = load_sentiment_dataset()
    on = {"positive": data.labels == "pos"} | {site: data.groups == site for site in SENTENCE_SITES}
    return _tag_table(data.frame[["sentence"]], on, noise=noise, seed=seed, n_gold=round(len(data.frame) / 5))


def bundled_tags(name: str, *, noise: float = 0.2, seed: int = 0) -> tuple[TagData, TagData]:
    """A bundled scikit-learn set (no download) as tags, about a fifth kept as clean gold:
    ``cancer`` (:func:`cancer_tags`); ``wine`` (178 rows: ``cultivar_<k>`` of the three cultivars
    and :data:`WINE_TAGS`); ``diabetes`` (442 rows: ``progressed``, the disease measure a year
    later above its median, and :data:`DIABETES_TAGS`); ``digits`` (1,797 rows of 8x8 pixels:
    ``round`` for 0, 6, 8, 9 and :data:`DIGIT_QUADRANT_TAGS`, more ink than the median in the top
    half or left half, whose pixels stay in the inputs); ``sentences`` (:func:`sentence_tags`: text,
    read from outside the repository); ``generated`` (scikit-learn's
    ``make_multilabel_classification``: 2,000 rows, 20 numbers, 5 tags, 400 gold). Raises
    ``KeyError`` for another name."""
    from sklearn import datasets

    if name == "cancer":
        return cancer_tags(noise=noise, seed=seed)
    if name == "wine":
        bunch = datasets.load_wine(as_frame=True)
        X, on = _quantile_tags(bunch.data, WINE_TAGS)
        on |= {f"cultivar_{k}": (bunch.target == k).to_numpy() for k in range(3)}
        return _tag_table(X, on, noise=noise, seed=seed, n_gold=40)
    if name == "diabetes":
        bunch = datasets.load_diabetes(as_frame=True)
        X, on = _quantile_tags(bunch.data, DIABETES_TAGS)
        on["progressed"] = (bunch.target > bunch.target.median()).to_numpy()
        return _tag_table(X, on, noise=noise, seed=seed, n_gold=90)
    if name == "digits":
        bunch = datasets.load_digits(as_frame=True)
        pixels = bunch.data.to_numpy().reshape(-1, 8, 8)
        ink = pd.DataFrame({"top": pixels[:, :4].sum(axis=(1, 2)), "left": pixels[:, :, :4].sum(axis=(1, 2))})
        _, on = _quantile_tags(ink, DIGIT_QUADRANT_TAGS)
        on["round"] = np.isin(bunch.target, [0, 6, 8, 9])
        return _tag_table(bunch.data, on, noise=noise, seed=seed, n_gold=360)
    if name == "sentences":
        return sentence_tags(noise=noise, seed=seed)
    if name == "generated":
        from sklearn.datasets import make_multilabel_classification

        # The data fixed (random_state=21, chosen before any run); the seed draws the errors and gold split.
        X, Y = make_multilabel_classification(n_samples=2000, n_features=20, n_classes=5, n_labels=2,
                                              random_state=21)
        on = {f"tag{k}": Y[:, k].astype(bool) for k in range(Y.shape[1])}
        return _tag_table(pd.DataFrame(X, columns=[f"x{j}" for j in range(X.shape[1])]), on, noise=noise,
                          seed=seed, n_gold=400)
    raise KeyError(f"no bundled tag set {name!r} (cancer, wine, diabetes, digits, sentences, generated)")
