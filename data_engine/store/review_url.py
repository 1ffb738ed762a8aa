"""Is the review server on this machine? ``[review] url`` read as text, for the API key's sake.

A remote Label Studio receives the API key in every request, so a URL off this machine's
loopback needs ``[review] allow_remote = true`` (:func:`check_review_url`, run by the config's checks) and is
said once by each command that talks to it.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from data_engine.errors import ConfigError


def remote_review_host(url: str) -> str | None:
    """The host of ``url`` (``[review] url``) when it is not this machine's loopback (127.0.0.0/8, ::1, localhost), else None.

    Only the URL's text is read (no name lookup): a name other than ``localhost`` counts as remote.
    """
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return None
    try:
        return None if ipaddress.ip_address(host).is_loopback else host
    except ValueError:
        return host


def remote_review_notice(url: str, api_key_env: str) -> str | None:
    """The line a command that talks to the review server at ``url`` says first when it is remote
    (``api_key_env``: the name of the variable holding the key, never the key)."""
    host = remote_review_host(url)
    if host is None:
        return None
    return (f"note: review server {url} is on another machine ({host}); the API key ${api_key_env} "
            "is sent there ([review] allow_remote = true)")


def check_review_url(url: str, api_key_env: str, allow_remote: bool) -> None:
    """Raise :class:`ConfigError` naming ``review.url`` unless ``url`` is an http(s) URL with a host, on
    this machine's loopback or explicitly allowed off it (``allow_remote``)."""
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"review.url = {url!r}: must start with http:// or https://")
    try:
        host = urlsplit(url).hostname
    except ValueError as exc:  # e.g. an unclosed [ of an IPv6 address
        raise ConfigError(f"review.url = {url!r}: {exc}") from None
    if not host:
        raise ConfigError(f"review.url = {url!r}: names no host")
    if remote_review_host(url) and not allow_remote:
        raise ConfigError(
            f"review.url = {url!r}: {remote_review_host(url)} is not this machine, and the API key "
            f"(${api_key_env}) would be sent there with every request; set [review] allow_remote = true "
            "if that is intended")
