"""Two real shipper processes on one node's logs: either alone keeps shipping."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from django.conf import settings

from analytics import shipper
from analytics.models import Event
from tests import worker
from tests.analytics.test_shipper import live, view  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


def start_shipper() -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": worker.test_database_url(),
        "EDGE_ROOT": str(settings.EDGE_ROOT),
        "EDGE_NODE": "node-1",
    }
    return subprocess.Popen(
        [sys.executable, "manage.py", "ship_views", "--interval", "0.05"],
        cwd=worker.ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def append(lines: list[dict]) -> None:
    shipper.logs_dir().mkdir(parents=True, exist_ok=True)
    with (shipper.logs_dir() / "views.log").open("ab") as handle:
        handle.write(b"".join(json.dumps(x).encode() + b"\n" for x in lines))


def test_a_shipper_killed_mid_stream_costs_nothing_while_its_twin_runs(live):  # noqa: F811
    """Views keep arriving while one of two shippers is SIGKILLed: every view is
    stored exactly once, and the ones logged after the kill within seconds."""
    _, step, page = live
    twins = [start_shipper(), start_shipper()]
    try:
        sent = 0
        for _ in range(20):  # ~2 s of views, both shippers at work
            append([view(step, page) for _ in range(50)])
            sent += 50
            time.sleep(0.1)
        assert worker.wait_for(lambda: Event.objects.count() == sent, timeout=60)
        os.killpg(twins[0].pid, signal.SIGKILL)
        twins[0].wait()
        killed_at = time.time()
        for _ in range(20):
            append([view(step, page) for _ in range(50)])
            sent += 50
            time.sleep(0.1)
        assert worker.wait_for(lambda: Event.objects.count() == sent, timeout=30)
        stored_by = time.time() - killed_at
    finally:
        for proc in twins:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    assert Event.objects.values("id").distinct().count() == sent == 2000
    # The last views were logged ~2 s after the kill; stored within a few more.
    assert stored_by < 10
