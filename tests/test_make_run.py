"""`make run` on a fresh clone with DATABASE_URL / REDIS_URL set."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings

from tests import worker

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def _fresh_clone(target: Path) -> Path:
    """The tracked files of this checkout as they are now, without .data/."""
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    for name in filter(None, files):
        source = ROOT / name.decode()
        if source.is_file():
            (target / name.decode()).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name.decode())
    return target


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status
    except OSError:
        return None


def test_make_run_starts_web_worker_and_beat_on_a_fresh_clone(tmp_path):
    """With the URLs set no local servers start, so nothing made .data/ before beat
    needed it: run.py creates it, and web, worker and beat all keep running."""
    clone = _fresh_clone(tmp_path / "clone")
    assert not (clone / ".data").exists()
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": worker.test_database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "PORT": str(port),
        "DEBUG": "true",
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    log = (tmp_path / "run.log").open("w+")
    proc = subprocess.Popen(
        [sys.executable, "scripts/run.py"],
        cwd=clone,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if _get(f"http://127.0.0.1:{port}/login/") == 200:
                break
            time.sleep(0.5)
        # Beat starts with the others; give it time to open its schedule file.
        end = time.monotonic() + 8
        while time.monotonic() < end and proc.poll() is None:
            time.sleep(0.5)
        log.seek(0)
        output = log.read()
        assert proc.poll() is None, output[-3000:]
        assert _get(f"http://127.0.0.1:{port}/login/") == 200, output[-3000:]
        assert list((clone / ".data").glob("celerybeat-schedule*")), output[-3000:]
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()
    assert proc.returncode == 0
