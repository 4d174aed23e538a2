"""Reading settings from the environment, failing with one readable line."""

from __future__ import annotations

import os
import sys
from urllib.parse import urlsplit

import dj_database_url


class EnvError(Exception):
    """A setting in the environment is missing or malformed."""


def fail(message: str) -> None:
    """Stop start-up with one line on stderr instead of a traceback."""
    sys.stderr.write(f"OpenFunnels cannot start: {message}\n")
    raise SystemExit(2)


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise EnvError(f"{name}={raw!r} is not a boolean (use true or false)")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise EnvError(f"{name}={raw!r} is not a whole number") from None


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


def database_config(url: str) -> dict:
    scheme = urlsplit(url).scheme
    if scheme not in {"postgres", "postgresql", "pgsql"}:
        raise EnvError(
            f"DATABASE_URL must be a postgres:// URL, got scheme {scheme or 'none'!r}"
        )
    try:
        config = dj_database_url.parse(url, conn_max_age=600, conn_health_checks=True)
    except Exception as exc:  # dj-database-url raises several types
        raise EnvError(f"DATABASE_URL is malformed: {exc}") from None
    if not config.get("NAME"):
        raise EnvError("DATABASE_URL names no database (add /<name> at the end)")
    return config


def redis_urls(url: str) -> tuple[str, str]:
    """Return (redis-py URL, Celery broker URL) for a redis:// or unix:// URL."""
    parts = urlsplit(url)
    if parts.scheme in {"redis", "rediss"}:
        if not parts.hostname:
            raise EnvError(f"REDIS_URL={url!r} names no host")
        return url, url
    if parts.scheme == "unix":
        if not parts.path:
            raise EnvError(f"REDIS_URL={url!r} names no socket path")
        query = f"?{parts.query}" if parts.query else ""
        return url, f"redis+socket://{parts.path}{query}"
    raise EnvError(f"REDIS_URL must be redis://, rediss:// or unix://, got {url!r}")
