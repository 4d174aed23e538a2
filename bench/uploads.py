"""A burst of large image uploads against page serving, under gunicorn.

Run from the repository root with DATABASE_URL and REDIS_URL set:

    python bench/uploads.py [UPLOADS] [WIDTHxHEIGHT]

1. Creates a scratch workspace with a published opt-in funnel (the Lead magnet
   template), a user and a session, and draws a WIDTHxHEIGHT PNG (default
   10000x8000; under the 10 MB upload limit: flat colour bands compress well).
2. Starts gunicorn with production settings (DEBUG off, config/gunicorn.py: two
   workers of four threads) on a free loopback port, media in a temporary folder.
3. Sends UPLOADS (default 8) uploads of that PNG to the page builder's image block
   at once, while one client asks for the published page every 100 ms.
4. Reports each upload's status and time, the page's worst and median latency
   while the uploads ran, and the peak resident memory (VmHWM) of each gunicorn
   worker.

Removes the workspace, the user, the media and the temporary files at the end. The
last line is ``bench uploads: uploads=… ok=… refused=… upload_max_s=…
page_p50_ms=… page_max_ms=… peak_rss_mb=…``.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("LOG_LEVEL", "WARNING")

import requests  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.auth import (  # noqa: E402
    BACKEND_SESSION_KEY,
    HASH_SESSION_KEY,
    SESSION_KEY,
)
from django.contrib.sessions.backends.cached_db import SessionStore  # noqa: E402
from django.db import connection  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402
from serve import free_port, start_gunicorn, stop, wait_for  # noqa: E402

from accounts import services as accounts_services  # noqa: E402
from accounts.models import Membership, Role, User, Workspace  # noqa: E402
from pages.models import Page  # noqa: E402
from pages.services import funnel_create_from_template, funnel_publish  # noqa: E402

UPLOADS = int(sys.argv[1]) if len(sys.argv) > 1 else 8
WIDTH, HEIGHT = (
    (int(n) for n in sys.argv[2].split("x")) if len(sys.argv) > 2 else (10_000, 8_000)
)


def big_png() -> bytes:
    image = Image.new("RGB", (WIDTH, HEIGHT), (240, 240, 250))
    draw = ImageDraw.Draw(image)
    for x in range(0, WIDTH, 500):
        draw.rectangle([x, 0, x + 250, HEIGHT], fill=(x % 255, 100, 200))
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


def session_for(user: User) -> str:
    store = SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store["workspace_id"] = Membership.objects.get(user=user).workspace_id
    store.save()
    return store.session_key or ""


def image_block(page: Page) -> str:
    for section in page.document["sections"]:
        for row in section["rows"]:
            for column in row["columns"]:
                for block in column["blocks"]:
                    if block["type"] == "image":
                        return block["id"]
    raise SystemExit("the Lead magnet template has no image block")


def peak_rss_mb(master_pid: int) -> list[float]:
    """VmHWM (peak resident set) of each gunicorn worker, in MB."""
    peaks = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        ppid = re.search(r"^PPid:\s+(\d+)", text, re.M)
        hwm = re.search(r"^VmHWM:\s+(\d+) kB", text, re.M)
        if ppid and hwm and int(ppid[1]) == master_pid:
            peaks.append(int(hwm[1]) / 1024)
    return sorted(peaks, reverse=True)


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="of-bench-uploads-"))
    workspace = Workspace.objects.create(
        name="bench-uploads (scratch)", slug=f"bench-uploads-{os.getpid()}"
    )
    public = {"Host": f"{workspace.slug}.localhost"}  # pages live on the workspace host
    user = User.objects.create_user(
        email=f"bench-uploads-{workspace.public_id}@example.test",
        password="bench-uploads-password-1",
    )
    Membership.objects.create(user=user, workspace=workspace, role=Role.OWNER)
    gunicorn = None
    try:
        funnel = funnel_create_from_template(
            workspace=workspace,
            user=None,
            template_key="lead-magnet",
            name=f"bench uploads {str(workspace.public_id)[:8]}",
        )
        funnel_publish(funnel=funnel, user=None)
        step = funnel.steps.order_by("position").first()
        page = Page.objects.filter(step=step).order_by("pk").first()
        block_id = image_block(page)
        cookie = session_for(user)
        png = big_png()
        print(f"image: {WIDTH}x{HEIGHT} PNG, {len(png) / 1e6:.2f} MB", flush=True)
        connection.close()
        port = free_port()
        gunicorn = start_gunicorn(port, MEDIA_ROOT=str(tmp / "media"))
        base = f"http://127.0.0.1:{port}"
        page_url = f"{base}/{funnel.slug}/{step.slug}/"
        wait_for(page_url, host=public["Host"])
        csrf = "b" * 32
        cookies = {
            settings.SESSION_COOKIE_NAME: cookie,
            settings.CSRF_COOKIE_NAME: csrf,
        }
        upload_url = f"{base}/pages/{page.pk}/images/"
        results: list[tuple[int, float, str]] = []
        done = threading.Event()
        latencies: list[float] = []
        page_statuses: list[int] = []

        def upload(n: int) -> None:
            started = time.monotonic()
            response = requests.post(
                upload_url,
                data={"block_id": block_id},
                files={"image": (f"big-{n}.png", png, "image/png")},
                cookies=cookies,
                headers={"X-CSRFToken": csrf, "HX-Request": "true"},
                timeout=300,
            )
            message = re.sub(r"<[^>]+>|\s+", " ", response.text)[:90].strip()
            results.append((response.status_code, time.monotonic() - started, message))

        def watch_page() -> None:
            session = requests.Session()
            while not done.is_set():
                started = time.monotonic()
                response = session.get(page_url, headers=public, timeout=300)
                page_statuses.append(response.status_code)
                latencies.append((time.monotonic() - started) * 1000)
                time.sleep(0.1)

        watcher = threading.Thread(target=watch_page)
        watcher.start()
        time.sleep(0.5)
        threads = [threading.Thread(target=upload, args=(n,)) for n in range(UPLOADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        done.set()
        watcher.join()
        peaks = peak_rss_mb(gunicorn.pid)
    finally:
        stop(gunicorn)
        connection.close()
        accounts_services.workspace_delete(workspace=workspace)
        user.delete()
        shutil.rmtree(tmp, ignore_errors=True)

    for status, seconds, message in sorted(results, key=lambda r: r[1]):
        print(f"upload: HTTP {status} in {seconds:6.2f} s  {message}")
    ok = sum(1 for status, _, _ in results if status == 200)
    codes = ",".join(str(status) for status, _, _ in sorted(results))
    print(
        f"page during uploads: {len(latencies)} requests, "
        f"{sum(1 for c in page_statuses if c != 200)} not 200"
    )
    print(f"gunicorn workers' peak RSS (MB): {', '.join(f'{p:.0f}' for p in peaks)}")
    print(
        f"bench uploads: size={WIDTH}x{HEIGHT} uploads={UPLOADS} ok={ok} "
        f"refused={UPLOADS - ok} codes={codes} "
        f"upload_max_s={max(r[1] for r in results):.2f} "
        f"page_p50_ms={statistics.median(latencies):.1f} "
        f"page_max_ms={max(latencies):.1f} peak_rss_mb={max(peaks):.0f}"
    )


if __name__ == "__main__":
    main()
