"""Invalid rows for ``bench propagate``: what lands in real training sets besides data.

Text: markup fragments, boilerplate, other-language text, encoded junk and near-empty rows.
Images: blank (constant) and noise images. Tabular rows: sensor glitches (constant readings,
out-of-range readings, dropped-out readings). Every kind varies (random words, numbers, bytes), so
no two rows need be copies and a rule must be learned, not matched. Labels are drawn at random.
"""

from __future__ import annotations

import base64

import numpy as np
import pandas as pd

TEXT_KINDS = ("markup", "boilerplate", "other_language", "encoded", "near_empty")
IMAGE_KINDS = ("blank", "noise")
TABULAR_KINDS = ("constant", "out_of_range", "dropout")

_MARKUP = ('<div class="{w}">{w} {w}</div>', '</td><td align="left">{n}</td><td>{w}</td>',
           '<a href="https://{w}.example/{w}?id={n}">{w}</a>', "{{{{#if {w}}}}}{w} {w}{{{{/if}}}}",
           "<br/><br/>&nbsp;{w}&nbsp;&amp;&nbsp;{w}", '<img src="/{w}/{n}.png" alt="{w}"/>',
           '<span style="color:#{h}">{w}</span>', "[quote={w}]{w} {w}[/quote]", '{{"{w}": {n}, "{w}": "{w}"}}')
_BOILERPLATE = ("Copyright {y} {W} Inc. All rights reserved.", "Click here to subscribe to our newsletter and get {n}% off!",
                "Terms of Service | Privacy Policy | Contact Us | {W}", "This review was posted on {d} by user{n}.",
                "Was this review helpful? Yes ({n}) No ({m})", "Page {n} of {m} - Next >>",
                "Sign in to see your {w} recommendations.", "Report abuse | Permalink | {n} comments",
                "Loading... please wait {n} seconds.", "Showing {n}-{m} of {k} reviews sorted by {w}")
_OTHER = {
    "de": "der die und nicht ist das sehr gut schlecht war ich wir haben mit für auf ein eine zu kann "
          "sich noch aber auch wieder immer Essen Handy Film Kellner leider wirklich".split(),
    "es": "el la que de no es muy bueno malo fue yo nosotros con para una por pero también siempre "
          "comida teléfono película camarero nunca realmente aquí todo".split(),
    "fr": "le la et ne pas est très bon mauvais était je nous avec pour une sur mais aussi toujours "
          "jamais repas téléphone film serveur vraiment ici tout".split(),
}
_EMPTY = (".", "-", "n/a", "...", "?", "x", "null", "--", ":)", "N/A.", "..", "!", "ok", "-.-")


def invalid_text(n: int, rng: np.random.Generator, vocabulary: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """``n`` invalid text rows (shape (n,), object) and their kinds (shape (n,)), the kinds in equal shares."""
    kinds = np.asarray(TEXT_KINDS, dtype=object)[rng.integers(0, len(TEXT_KINDS), n)]
    out = np.empty(n, dtype=object)

    def word() -> str:
        return str(vocabulary[rng.integers(0, len(vocabulary))])

    for i, kind in enumerate(kinds):
        if kind == "markup":
            parts = [_fill(_MARKUP[rng.integers(0, len(_MARKUP))], word, rng) for _ in range(rng.integers(1, 3))]
            out[i] = "".join(parts)
        elif kind == "boilerplate":
            out[i] = _fill(_BOILERPLATE[rng.integers(0, len(_BOILERPLATE))], word, rng)
        elif kind == "other_language":
            words = _OTHER[list(_OTHER)[rng.integers(0, len(_OTHER))]]
            text = " ".join(words[j] for j in rng.integers(0, len(words), rng.integers(5, 13)))
            out[i] = text[0].upper() + text[1:] + "."
        elif kind == "encoded":
            raw = rng.integers(0, 256, rng.integers(12, 40)).astype(np.uint8).tobytes()
            style = rng.integers(0, 4)
            out[i] = (base64.b64encode(raw).decode() if style == 0 else raw.hex() if style == 1
                      else "".join(f"%{b:02X}" for b in raw[:20]) if style == 2
                      else (word() + " " + word()).encode("utf-8").decode("latin-1") + "Ã©Ã¨â€™" + raw.hex()[:8])
        else:
            out[i] = _EMPTY[rng.integers(0, len(_EMPTY))]
    return out, kinds


def _fill(template: str, word: object, rng: np.random.Generator) -> str:
    return template.format(w=word(), W=str(word()).title(), n=int(rng.integers(1, 999)), m=int(rng.integers(1, 999)),
                           k=int(rng.integers(1000, 9999)), y=int(rng.integers(1995, 2025)), h=f"{rng.integers(0, 16**6):06x}",
                           d=f"{rng.integers(1, 29)}/{rng.integers(1, 13)}/{rng.integers(2005, 2016)}")


def invalid_images(n: int, rng: np.random.Generator, columns: list[str], high: float) -> tuple[pd.DataFrame, np.ndarray]:
    """``n`` invalid flat images over ``columns`` (values in [0, ``high``]): blank ones (one
    constant grey level) and noise (independent uniform pixels)."""
    kinds = np.asarray(IMAGE_KINDS, dtype=object)[rng.integers(0, len(IMAGE_KINDS), n)]
    level = rng.integers(0, int(high) + 1, n).astype(np.float64)
    noise = rng.integers(0, int(high) + 1, (n, len(columns))).astype(np.float64)
    pixels = np.where((kinds == "blank")[:, None], level[:, None], noise)
    return pd.DataFrame(pixels, columns=columns), kinds


def invalid_readings(n: int, rng: np.random.Generator, frame: pd.DataFrame,
                     numeric: list[str]) -> tuple[pd.DataFrame, np.ndarray]:
    """``n`` sensor glitches: rows of ``frame`` (resampled) whose ``numeric`` readings are stuck at
    one value, out of range (100x to 1000x the column's spread, either sign) or all missing."""
    kinds = np.asarray(TABULAR_KINDS, dtype=object)[rng.integers(0, len(TABULAR_KINDS), n)]
    rows = frame.iloc[rng.integers(0, len(frame), n)].reset_index(drop=True).copy()
    values = rows[numeric].to_numpy(dtype=np.float64)
    stuck = rng.choice(np.array([0.0, -1.0, 9999.0, -273.15]), n)
    spread = np.nanstd(frame[numeric].to_numpy(dtype=np.float64), axis=0)
    far = values + rng.choice([-1.0, 1.0], (n, len(numeric))) * spread * rng.uniform(100, 1000, (n, len(numeric)))
    values = np.where((kinds == "constant")[:, None], stuck[:, None],
                      np.where((kinds == "out_of_range")[:, None], far, np.where((kinds == "dropout")[:, None],
                                                                                  np.nan, values)))
    rows[numeric] = values
    return rows, kinds
