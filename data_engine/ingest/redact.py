"""What a message may quote of a landed file: a short preview, with anything that looks like a secret masked.

A file that lands by mistake (a symbolic link to a token file, an export with an API key in a
column) must not have its content copied into the engine's own records: a batch's reason is
stored in ``batches``, printed by ``status`` and ``ingest`` and shown in the Dagster run's
metadata. Every text the ingest records or prints about a file (reason, notes, warnings, ignored
column names, the quarantine preview) goes through :func:`redact_text`; a value quoted from the file
goes through :func:`preview` (cut short, then masked).

No library recognises "a secret" in free text (secret scanners need a pattern per issuer and ship
as separate tools), so this is a small conservative rule of its own: long runs of letters and digits
mixed (API tokens, hex keys, base64), JSON Web Tokens, and the value after a word like ``token=``.
File paths stay readable (a missing image's name is what the user needs to see): a run holding '/'
that starts with '/' or ends in a file extension is judged part by part.
"""

from __future__ import annotations

import re

# What a masked secret reads as.
MASK = "[redacted]"
# A value quoted from a file is cut to this many characters.
PREVIEW_CHARS = 40
# A run of at least this many letters/digits (and + / =) holding both a letter and a digit reads as a
# key: Label Studio's legacy tokens are 40 hex digits, most API keys 32 or more. Engine ids stay
# readable: batch ids split at '-' and '_' into shorter runs (a stem and 12 hex digits).
_KEY_RUN = re.compile(r"[A-Za-z0-9+/=]{24,}")
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}(?:\.[A-Za-z0-9_-]*)?")
_NAMED = re.compile(r"(?i)\b(token|api[_-]?key|secret|password|passwd|authorization|bearer)(\s*[:=]\s*|\s+)"
                    r"(['\"]?)[^\s'\",;]{6,}")


# A file extension right after a run: what tells a path (``/tmp/run22/data/bad2.jsonl``) from a base64 key,
# whose alphabet holds '/' but never '.'.
_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,5}\b")


def _key_like(run: str) -> bool:
    has_letter = any(ch.isalpha() for ch in run)
    has_digit = any(ch.isdigit() for ch in run)
    return len(run) >= 24 and has_letter and has_digit


def _mask_run(match: re.Match[str]) -> str:
    run = match.group(0)
    if "/" in run and (run.startswith("/") or _EXTENSION.match(match.string, match.end())):
        # A file path (absolute, or ending in a file name with its extension): its names stay readable,
        # each part judged alone, so a key used as a folder or file name is still masked.
        return "/".join(MASK if _key_like(part) else part for part in run.split("/"))
    return MASK if _key_like(run) else run


def redact_text(text: str) -> str:
    """``text`` with every secret-looking part replaced by :data:`MASK` (see the module docstring);
    text without one is returned unchanged."""
    if not text:
        return text
    text = _JWT.sub(MASK, text)
    text = _NAMED.sub(lambda m: f"{m.group(1)}{m.group(2)}{m.group(3)}{MASK}", text)
    return _KEY_RUN.sub(_mask_run, text)


def preview(value: object, limit: int = PREVIEW_CHARS) -> str:
    """A value from a file as a message may quote it: masked (:func:`redact_text`), control
    characters shown as ``\\xNN`` escapes, and cut to ``limit`` characters with ``...`` after."""
    text = redact_text("" if value is None else str(value))
    text = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)
    return text if len(text) <= limit else text[:limit] + "..."
