"""Errors a user can act on.

Every failure caused by the user's input or environment (a bad config key, an unreadable file,
a locked warehouse, an unreachable Label Studio) is raised as an :class:`EngineError` whose
message names the problem; the CLI prints it as one line and exits non-zero, without a traceback.
"""

from __future__ import annotations


class EngineError(Exception):
    """A problem the user can fix; its message is shown as-is."""


class ConfigError(EngineError):
    """``engine.toml`` is missing, malformed, or has an invalid key or value."""


class WarehouseBusyError(EngineError):
    """The DuckDB warehouse is locked by another process for longer than we waited."""


class ReviewServiceError(EngineError):
    """Label Studio is unreachable, refused the token, timed out or answered with an error."""
