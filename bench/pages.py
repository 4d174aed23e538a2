"""Lighthouse on every page of every funnel template, published and served like
production.

Run from the repository root with DATABASE_URL and REDIS_URL set:

    python bench/pages.py [TEMPLATE ...]

1. Creates a scratch workspace and, for each template (or the ones named),
   creates the funnel and publishes it (the page-speed budget is measured too).
2. Starts gunicorn with production settings (DEBUG off, config/gunicorn.py) on
   a free loopback port, uploaded images served in front of the app as a front
   server would (bench/_media_wsgi.py).
3. Installs Lighthouse 12.2.3 (the last major that runs on Node 20) with npm into
   a cache folder the first time, and runs it with Debian's Chromium against each
   published page: mobile form factor, simulated slow 4G, performance and
   accessibility categories. ``bytes`` is Lighthouse's total byte weight of the
   page load (everything the first view downloads).
4. Stops gunicorn, removes the workspace, its uploads and the reports.

The last line is ``bench pages: pages=… min_perf=… min_a11y=… max_bytes=…``
(targets: perf ≥ 0.95, a11y ≥ 0.95, max_bytes ≤ 250 KB).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
MEDIA = Path(tempfile.mkdtemp(prefix="of-bench-pages-media-"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


PORT = free_port()
BENCH_ENV = {
    "DJANGO_SETTINGS_MODULE": "config.settings",
    "DEBUG": "false",
    "SECRET_KEY": "bench-only-secret-key-0123456789-abcdefghijklmnop",
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    # Pages are served on <workspace>.localhost:PORT (Chromium resolves *.localhost).
    "PUBLIC_DOMAIN": f"localhost:{PORT}",
    "PUBLIC_SCHEME": "http",
    "SITE_URL": "http://127.0.0.1",
    # Pages are rendered at publish time by this process: no collected manifest.
    "STATIC_MANIFEST": "false",
    "SECURE_COOKIES": "false",
    "MEDIA_ROOT": str(MEDIA),
    "LOG_LEVEL": "WARNING",
}
for _key, _value in BENCH_ENV.items():
    os.environ.setdefault(_key, _value)

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402

from accounts import services as accounts_services  # noqa: E402
from accounts.models import Workspace  # noqa: E402
from funnels import services as funnel_services  # noqa: E402
from pages import selectors, services  # noqa: E402

LIGHTHOUSE = "12.2.3"
CACHE = (
    Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    / f"openfunnels-bench/lighthouse-{LIGHTHOUSE}"
)
CHROME = os.environ.get("CHROME_PATH", "/usr/bin/chromium")
BIN = Path(sys.executable).parent


def wait_for(url: str, host: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            request = urllib.request.Request(url, headers={"Host": host})
            with urllib.request.urlopen(request, timeout=2) as response:
                response.read()
                return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def lighthouse_bin() -> Path:
    """npm i -E lighthouse@12.2.3 into a cache folder, once."""
    binary = CACHE / "node_modules" / ".bin" / "lighthouse"
    if not binary.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        (CACHE / "package.json").write_text('{"private": true}\n')
        print(f"installing lighthouse@{LIGHTHOUSE} into {CACHE} ...", flush=True)
        subprocess.run(
            ["npm", "i", "-E", "--no-audit", "--no-fund", f"lighthouse@{LIGHTHOUSE}"],
            cwd=CACHE,
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return binary


def public_base(workspace: Workspace, port: int) -> tuple[str, str]:
    """The base URL of the workspace's published pages and the Host it needs."""
    host = workspace.public_host
    return f"http://{host}", host


def run_lighthouse(binary: Path, url: str, out: Path) -> dict:
    """One Lighthouse run; a run that fails (Chromium can time out on a loaded
    machine) is tried again, up to three times in all."""
    for attempt in range(3):
        try:
            return _lighthouse_once(binary, url, out)
        except subprocess.CalledProcessError:
            if attempt == 2:
                raise
            time.sleep(2)
    raise AssertionError("unreachable")


def _lighthouse_once(binary: Path, url: str, out: Path) -> dict:
    subprocess.run(
        [
            str(binary),
            url,
            "--quiet",
            "--output=json",
            f"--output-path={out}",
            "--only-categories=performance,accessibility",
            "--chrome-flags=--headless --no-sandbox --disable-gpu",
            "--max-wait-for-load=30000",
        ],
        env={**os.environ, "CHROME_PATH": CHROME},
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    report = json.loads(out.read_text())
    audits = report["audits"]
    return {
        "perf": report["categories"]["performance"]["score"],
        "a11y": report["categories"]["accessibility"]["score"],
        "bytes": int(audits["total-byte-weight"]["numericValue"]),
        "lcp_ms": audits["largest-contentful-paint"]["numericValue"],
        "failed": [
            a["id"]
            for a in audits.values()
            if a.get("score") is not None
            and a["score"] < 0.9
            and a.get("scoreDisplayMode") in ("binary", "numeric", "metricSavings")
        ][:6],
    }


def stock(funnel) -> None:
    """Give each selling step a product, as a marketer does before publishing
    (publish refuses a step that sells nothing)."""
    for step in funnel.steps.filter(kind__in=["order", "upsell", "downsell"]):
        product = funnel_services.product_save(
            workspace=funnel.workspace, name=step.name, price_minor=4700
        )
        funnel_services.step_offer_save(step=step, product=product)


def cleanup(workspace: Workspace) -> None:
    """The scratch workspace, and the page views Lighthouse's visits queued."""
    from analytics import ingest
    from analytics import services as analytics

    idle = 0
    while idle < 2:
        moved = analytics.events_flush(max_seconds=60, batch_size=20_000)
        idle = idle + 1 if not moved and not ingest.stream_pending() else 0
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM analytics_event WHERE workspace_id = %s", [workspace.pk]
        )
    accounts_services.workspace_delete(workspace=workspace)


def main() -> None:
    wanted = sys.argv[1:] or list(selectors.funnel_templates())
    workspace = Workspace.objects.create(name="Bench pages")
    gunicorn = None
    reports = Path(tempfile.mkdtemp(prefix="of-bench-pages-"))
    rows = []
    try:
        binary = lighthouse_bin()
        pages = []
        for key in wanted:
            funnel = services.funnel_create_from_template(
                workspace=workspace, user=None, template_key=key, name=f"Bench {key}"
            )
            stock(funnel)
            services.funnel_publish(funnel=funnel, user=None)
            for step in funnel.steps.order_by("position", "id"):
                pages.append((key, funnel, step))
        connection.close()
        port = PORT
        env = {**os.environ, **BENCH_ENV, "GUNICORN_LOG_LEVEL": "warning"}
        gunicorn = subprocess.Popen(
            [
                str(BIN / "gunicorn"),
                "--pythonpath",
                "bench",
                "_media_wsgi:application",
                "--config",
                "config/gunicorn.py",
                "--bind",
                f"127.0.0.1:{port}",
            ],
            cwd=ROOT,
            env=env,
            start_new_session=True,
        )
        base, host = public_base(workspace, port)
        first = pages[0]
        wait_for(f"http://127.0.0.1:{port}/{first[1].slug}/{first[2].slug}/", host)
        for i, (key, funnel, step) in enumerate(pages):
            url = f"{base}/{funnel.slug}/{step.slug}/"
            result = run_lighthouse(binary, url, reports / f"{i}.json")
            rows.append((key, step.slug, result))
            print(
                f"{key:20} {step.slug:16} perf={result['perf']:.2f} "
                f"a11y={result['a11y']:.2f} bytes={result['bytes']:>7} "
                f"lcp_ms={result['lcp_ms']:.0f}"
                + (
                    f" below 0.9: {','.join(result['failed'])}"
                    if result["failed"]
                    else ""
                ),
                flush=True,
            )
    finally:
        if gunicorn is not None:
            os.killpg(gunicorn.pid, signal.SIGTERM)
            gunicorn.wait(timeout=20)
        cleanup(workspace)
        shutil.rmtree(reports, ignore_errors=True)
        shutil.rmtree(MEDIA, ignore_errors=True)
    if not rows:
        sys.exit("bench pages: no page was measured")
    print(
        f"bench pages: pages={len(rows)} "
        f"min_perf={min(r['perf'] for _, _, r in rows):.2f} "
        f"min_a11y={min(r['a11y'] for _, _, r in rows):.2f} "
        f"max_bytes={max(r['bytes'] for _, _, r in rows)}"
    )


if __name__ == "__main__":
    main()
