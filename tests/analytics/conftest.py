from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from analytics import ingest
from tests.worker import test_database_url

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _clean_stream(settings):
    """Each test starts with an empty event stream and no cached Redis state."""
    settings.ANALYTICS_REDIS_URL = None
    ingest.redis_reset()
    ingest.partitions_forget()
    client = ingest.redis_client()
    client.delete(ingest.STREAM_KEY)
    yield
    ingest.redis_reset()
    ingest.partitions_forget()
    client.delete(ingest.STREAM_KEY)


@pytest.fixture
def redis_down(settings):
    """Point the analytics Redis client at a closed port."""
    settings.ANALYTICS_REDIS_URL = "redis://127.0.0.1:1/0"
    ingest.redis_reset()
    yield
    settings.ANALYTICS_REDIS_URL = None
    ingest.redis_reset()


def _database_url() -> str:
    return test_database_url()


@pytest.fixture
def celery_worker(transactional_db, tmp_path):
    """A real Celery worker process on a private queue, against the test database.

    Yields the queue name; send tasks with ``apply_async(queue=...)``. Needs
    ``transaction=True`` tests so that the worker sees committed rows. The worker's
    output goes to ``worker.log`` in the test's tmp_path.
    """
    from config.celery import app

    queue = f"test-{uuid.uuid4().hex[:8]}"
    log = (tmp_path / "worker.log").open("w")
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "PYTHONPATH": str(ROOT),
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
            "-Q",
            queue,
            "-n",
            f"{queue}@%h",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-l",
            "WARNING",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = False
    try:
        yield queue
    finally:
        app.conf.task_always_eager = eager
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
