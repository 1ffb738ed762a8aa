"""The error of a file that cannot be read at all (its own module: every reader raises it, and the
readers call one another)."""

from __future__ import annotations

from data_engine.errors import EngineError
from data_engine.ingest.redact import redact_text


class UnreadableFile(EngineError):
    """The file cannot be read at all; the whole batch is rejected with this reason (secret-looking
    parts of the message masked: it is stored and shown, see :mod:`data_engine.ingest.redact`)."""

    def __init__(self, message: str) -> None:
        super().__init__(redact_text(message))
