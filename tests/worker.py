"""Start a real Celery worker process against the test database and Redis."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[1]


def test_database_url() -> str:
    """The URL of the database pytest-django created, for another process."""
    cfg = connection.settings_dict
    host = cfg.get("HOST") or ""
    if host.startswith("/"):
        host = quote(host, safe="")
    user = quote(cfg.get("USER") or "postgres", safe="")
    password = cfg.get("PASSWORD") or ""
    auth = f"{user}:{quote(password, safe='')}" if password else user
    port = f":{cfg['PORT']}" if cfg.get("PORT") else ""
    return f"postgres://{auth}@{host}{port}/{cfg['NAME']}"


@contextmanager
def celery_worker(
    *, queues: str = "celery", env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen]:
    """A worker process; ``env`` adds to (or overrides) its environment, e.g. an
    SMTP backend pointed at a local receiver."""
    extra = env or {}
    env = {
        **os.environ,
        "DATABASE_URL": test_database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend",
        **extra,
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool",
            "solo",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "-Q",
            queues,
            "-l",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def wait_for(predicate, *, timeout: float = 30.0, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
