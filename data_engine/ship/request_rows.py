"""What ``/predict`` accepts: request rows validated by a pydantic model generated from the champion's
input schema (the dataset's columns and their warehouse types), so a missing, extra or mistyped
field is a 422 naming it; bounded JSON depth and row count; text as ingest reads it (no lone
surrogates, never empty); image paths only under the allowed folders."""

# No `from __future__ import annotations`: FastAPI resolves the endpoint annotations (local classes).
import re
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd

from data_engine.errors import EngineError
from data_engine.store.home import Home
from data_engine.store.values import MAX_NUMBER, is_blank

# One request may carry at most this many rows (bounds memory and latency per request).
MAX_ROWS = 10_000


# JSON nested deeper than this is refused before parsing (a request is 3 levels deep; Python's
# parser would hit its recursion limit on a deep one and answer 400 or 500).
MAX_JSON_DEPTH = 32


# Longest vector a "vector" column may carry in a request (user embeddings are a few hundred to a few thousand).
MAX_VECTOR_LENGTH = 16_384


_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')


_SURROGATE = re.compile("[\ud800-\udfff]")


def without_strings(body: bytes) -> bytes:
    """JSON text ``body`` with every string literal emptied (``""``): what the structural checks
    below read, computed once per request."""
    return _JSON_STRING.sub(b'""', body) if body else b""


def json_depth(bare: bytes) -> int:
    """How deeply ``bare`` (JSON text from :func:`without_strings`) nests arrays and objects, counted without parsing it."""
    if not bare:
        return 0
    codes = np.frombuffer(bare, dtype=np.uint8)
    step = np.isin(codes, (ord("["), ord("{"))).astype(np.int64) - np.isin(codes, (ord("]"), ord("}")))
    return int(np.cumsum(step).max(initial=0))


# Python's JSON parser refuses an integer longer than this (sys.get_int_max_str_digits(), against
# quadratic-time conversion) and Starlette turns that into a bare 400; such a number is refused
# first, as the request's fault, with a 422 that says why.
MAX_INTEGER_DIGITS = 4300
_LONG_INTEGER = re.compile(rb"[0-9]{%d,}" % (MAX_INTEGER_DIGITS + 1))


def has_overlong_integer(bare: bytes) -> bool:
    """Whether ``bare`` (JSON text from :func:`without_strings`) holds a number with more than MAX_INTEGER_DIGITS digits."""
    return _LONG_INTEGER.search(bare) is not None


def _safe_input(value: Any) -> Any:
    """A rejected value as a 422 may echo it: short text, finite numbers; containers left out."""
    if isinstance(value, str):
        # backslashreplace: a lone surrogate echoed as \ud800 (UTF-8 cannot encode it; a 500 otherwise).
        short = value[:100].encode("utf-8", "backslashreplace").decode("utf-8")
        return short + ("..." if len(value) > 100 else "")
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10 ** 20:
        return f"{str(value)[:20]}... ({len(str(abs(value)))} digits)"
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return None


def validation_errors(errors: Any) -> list[dict[str, Any]]:
    """Pydantic's errors as JSON-safe 422 details (type, loc, msg; a short input when it is a scalar)."""
    out = []
    for err in errors:
        item = {"type": err.get("type"), "loc": list(err.get("loc", ())), "msg": str(err.get("msg", ""))}
        short = _safe_input(err.get("input"))
        if short is not None:
            item["input"] = short
        out.append(item)
    return out


def _unicode_text(value: Any) -> Any:
    """Refuse text with a lone surrogate (JSON allows ``"\\ud800"``; no model or response can hold it)
    or a NUL character (ingest quarantines a row holding one: data_engine.ingest.validate)."""
    if isinstance(value, str) and _SURROGATE.search(value):
        raise ValueError("not valid Unicode text: a lone surrogate (\\ud800-\\udfff) without its pair")
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("a NUL character (U+0000): no text holds one, and ingest quarantines rows with one")
    return value


def _present_text(value: Any) -> Any:
    """The text column's rule at ingest (``empty text`` is quarantined there) applied to requests."""
    if value is None or (isinstance(value, str) and is_blank(value)):
        raise ValueError("empty text: ingest quarantines rows with empty text, so no model has learnt from one")
    return value


def _lenient_str(value: Any) -> Any:
    """Accept numbers for a categorical column (``"07"`` and ``7`` are both sent by real clients)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return value


def row_model(input_schema: dict[str, str]) -> type:
    """A pydantic model of one request row: every input column required (null allowed), no extras.

    Columns are declared by alias, so any column name works and errors name the column itself.
    """
    from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, create_model

    number = Annotated[float, Field(allow_inf_nan=False, ge=-MAX_NUMBER, le=MAX_NUMBER)]
    category = Annotated[str, BeforeValidator(_lenient_str), AfterValidator(_unicode_text)]
    text = Annotated[str, BeforeValidator(_present_text), AfterValidator(_unicode_text)]
    # A "vector" column (the user's own embedding, as ingest accepts it) is a JSON array of numbers;
    # an image is sent as a path or file:// URI under the allowed folders (see resolve_image_rows).
    vector = Annotated[list[number], Field(min_length=1, max_length=MAX_VECTOR_LENGTH)]
    kinds: dict[str, Any] = {"numeric": number | None, "categorical": category | None, "text": text,
                             "vector": vector | None, "image": str | None}
    fields: dict[str, Any] = {}
    for i, (col, kind) in enumerate(input_schema.items()):
        if kind not in kinds:
            raise EngineError(f"input column {col!r} has type {kind!r}; cannot serve it")
        fields[f"f{i}"] = (kinds[kind], Field(..., alias=col))
    config = ConfigDict(extra="forbid", populate_by_name=False)
    return create_model("Row", __config__=config, **fields) if fields else BaseModel


def rows_frame(rows: list[Any], input_schema: dict[str, str]) -> pd.DataFrame:
    """Validated rows as the DataFrame the model reads: numeric float64 with NaN, others object with None."""
    records = [r.model_dump(by_alias=True) for r in rows]
    frame = pd.DataFrame.from_records(records, columns=list(input_schema))
    for col, kind in input_schema.items():
        if kind == "numeric":
            frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("float64")
        else:
            frame[col] = frame[col].astype(object).where(frame[col].notna(), None)
    return frame


def resolve_image_rows(home: Home, frame: pd.DataFrame, input_schema: dict[str, str]) -> list[dict[str, Any]]:
    """Replace each image reference in ``frame`` by the absolute path of a decodable image file.

    A reference is a path (relative to ``[dataset] image_root``, else ``HOME/landing``) or a
    ``file://`` URI; it must resolve inside ``image_root``, ``HOME/landing`` or ``HOME/images``
    (never outside: ``..`` and symbolic links are resolved first). Returns 422 details, one per
    rejected value (``frame`` is only valid when there are none).
    """
    from data_engine.ingest.images import ImageRejected, allowed_roots, check_image, resolve_reference

    image_root = home.config.dataset.image_root
    roots = allowed_roots(home.root, image_root, home.landing)
    base = Path(image_root).expanduser() if image_root else home.landing
    errors: list[dict[str, Any]] = []
    for col in [c for c, kind in input_schema.items() if kind == "image"]:
        resolved = []
        for i, value in enumerate(frame[col].tolist()):
            try:
                if value is None:
                    raise ImageRejected("an image path is required")
                path = resolve_reference(str(value), base=base, roots=roots)
                check_image(path)
                resolved.append(str(path))
            except ImageRejected as exc:
                errors.append({"type": "image", "loc": ["body", "rows", i, col], "msg": str(exc)})
                resolved.append(None)
        frame[col] = pd.Series(resolved, index=frame.index, dtype=object)
    return errors
