"""Secrets never leave the process: masks for what gets logged, printed or reported.

Tracking URIs may carry credentials (user:password@host, ?token=...), and
config sections may hold secret-named keys; both are masked before they reach
MLflow params, progress lines, results or reports.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

SECRET_WORDS = ("password", "secret", "token", "apikey", "api_key", "credential")
NOT_SECRET = ("tokenizer",)  # names that contain a secret word but hold none (data.tokenizer is a file path)


def is_secret_key(key: str) -> bool:
    name = key.lower()
    for word in NOT_SECRET:
        name = name.replace(word, "")
    return any(w in name for w in SECRET_WORDS)


def redact_uri(uri: str | None) -> str | None:
    """user:password@host -> user:***@host; query values named like secrets -> ***."""
    if not uri or "://" not in uri:
        return uri
    parts = urlsplit(uri)
    secret_query = any(any(w in k.lower() for w in SECRET_WORDS) for k, _ in parse_qsl(parts.query))
    if "@" not in parts.netloc and not secret_query:
        return uri  # nothing to mask; and urlunsplit would drop the slashes of sqlite:////abs/path
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{host}" if ":" in userinfo else f"***@{host}"
    query = "&".join(
        f"{k}=***" if any(w in k.lower() for w in SECRET_WORDS) else f"{k}={v}"
        for k, v in parse_qsl(parts.query)
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact(value: Any, key: str = "") -> Any:
    """A config-like structure safe to log: secret-named keys and URI credentials masked."""
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact(v, key) for v in value)
    if isinstance(value, str):
        if is_secret_key(key):
            return "***"
        return redact_uri(value) if "://" in value else value
    return value
