"""Public page serving: the edge (nginx + published files) and the app under
gunicorn, against plain nginx serving the same HTML file.

Run from the repository root with DATABASE_URL and REDIS_URL set:

    python bench/serve.py [SECONDS]

1. Creates a scratch workspace with a published opt-in funnel (the Lead magnet
   template) and fetches its opt-in page once.
2. Starts gunicorn with production settings (DEBUG off, config/gunicorn.py) and
   nginx (a project-local process with its own temporary config) serving that HTML
   as a static file, each on a free loopback port.
3. Loads each in turn with wrk on loopback (2 threads, 16 keep-alive connections):
   nginx for SECONDS (default 10); the app with real page views for SECONDS, then
   one more second of the same page asked for by a bot, which is not tracked, so no
   counted view is in flight when wrk stops. ``sent`` is the number of responses
   that set the visitor cookie (tracked views) wrk received.
4. Stops both servers, flushes the analytics stream to Postgres and counts the view
   events stored for the scratch workspace (after subtracting the warm-up's).

5. The edge: the nginx configuration the app generates (pages/edge.py: userid
   cookie, split_clients, host map, try_files, the JSON view log) in front of the
   same gunicorn, one worker like the plain nginx, loaded the same way (its bot
   tail asks for /robots.txt, which the app answers, so no view is in flight at
   the end), between two runs of the plain nginx: ``nginx_rps`` is their mean (the
   load of a shared machine drifts; the app's ``ratio`` uses step 3's run). Then
   nginx stops (flushing its log), the shipper ships the log and the stored views
   are counted: ``sent`` (views wrk got) must equal ``stored``.

Removes the workspace, its events and the temporary files at the end. The last line
is ``bench serve: edge_rps=… nginx_rps=… edge_ratio=… sent=… stored=… app_rps=…
ratio=… app_p99_ms=… app_sent=… app_stored=… gunicorn_floor_rps=…``.
"""

from __future__ import annotations

import contextlib
import os
import re
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
BENCH_ENV = {
    "DJANGO_SETTINGS_MODULE": "config.settings",
    "DEBUG": "false",
    "SECRET_KEY": "bench-only-secret-key-0123456789-abcdefghijklmnop",
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    "SITE_URL": "http://127.0.0.1",
    # Pages are served on <workspace>.localhost: wrk sends that Host to 127.0.0.1.
    "PUBLIC_DOMAIN": "localhost",
    # Pages are rendered at publish time by this process: no collected manifest here.
    "STATIC_MANIFEST": "false",
    "LOG_LEVEL": "WARNING",
}
for _key, _value in BENCH_ENV.items():
    os.environ.setdefault(_key, _value)

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402

from accounts import services as accounts_services  # noqa: E402
from accounts.models import Workspace  # noqa: E402
from analytics import ingest, services  # noqa: E402
from pages import edge  # noqa: E402
from pages.services import funnel_create_from_template, funnel_publish  # noqa: E402

SECONDS = int(sys.argv[1]) if len(sys.argv) > 1 else 10
TAIL_SECONDS = 1
THREADS = 2
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "16"))
BIN = Path(sys.executable).parent

# A wrk script: real page views for PHASE seconds, then the same page asked for by a
# bot (untracked: bots are not counted) until wrk stops, so that no counted view is
# still in flight when the run ends. A response that sets the visitor cookie is a
# tracked view; views/s is over the time from a thread's first request to its last
# view.
VIEWS_LUA = """
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } of_timespec;
int clock_gettime(int clk_id, of_timespec *tp);
]]
local ts = ffi.new("of_timespec")
local function now()
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9
end
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args)
  phase = tonumber(args[1]); got = 0; bad = 0; t0 = 0; last = 0
  page = wrk.format("GET", wrk.path)
  bot = wrk.format("GET", args[2] or wrk.path,
    {["User-Agent"] = "bench-bot/1.0", ["Host"] = wrk.headers["Host"]})
end
function request()
  local t = now()
  if t0 == 0 then t0 = t end
  if t - t0 < phase then return page end
  return bot
end
function response(status, headers, body)
  if status ~= 200 then bad = bad + 1 end
  if headers["Set-Cookie"] then
    got = got + 1
    last = now() - t0
  end
end
function done(summary, latency, requests)
  local views, errors, span = 0, 0, 0
  for _, t in ipairs(threads) do
    views = views + t:get("got"); errors = errors + t:get("bad")
    if t:get("last") > span then span = t:get("last") end
  end
  io.write(string.format("BENCH views=%d bad=%d seconds=%.4f\\n", views, errors, span))
end
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, timeout: float = 20.0, host: str | None = None) -> None:
    deadline = time.monotonic() + timeout
    request = urllib.request.Request(url, headers={"Host": host} if host else {})
    while True:
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                response.read()
                return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def wrk(url: str, *args: str, script_args: tuple[str, ...] = ()) -> dict:
    out = subprocess.run(
        [
            "wrk",
            f"-t{THREADS}",
            f"-c{CONNECTIONS}",
            "--latency",
            "--timeout",
            "5s",
            *args,
            url,
            *(("--", *script_args) if script_args else ()),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])
    done = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m|h),", out)
    seconds_f = (
        float(done[2]) * {"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}[done[3]]
    )
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99[2]]
    views = re.search(r"BENCH views=(\d+) bad=(\d+) seconds=([\d.]+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": rps,
        "requests": int(done[1]),
        "seconds": seconds_f,
        "p99_ms": float(p99[1]) * scale,
        "views": int(views[1]) if views else None,
        "bad": int(views[2]) if views else 0,
        "view_seconds": float(views[3]) if views else None,
        "non2xx": int(errors[1]) if errors else 0,
        "socket_errors": socket_errors[1] if socket_errors else "",
    }


def start_gunicorn(
    port: int, app: str = "config.wsgi:application", **extra_env: str
) -> subprocess.Popen:
    env = {**os.environ, **BENCH_ENV, "GUNICORN_LOG_LEVEL": "warning", **extra_env}
    return subprocess.Popen(
        [
            str(BIN / "gunicorn"),
            "--pythonpath",
            "bench",
            app,
            "--config",
            "config/gunicorn.py",
            "--bind",
            f"127.0.0.1:{port}",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )


def start_nginx(tmp: Path, port: int, html: bytes) -> subprocess.Popen:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        sys.exit("nginx is missing: sudo apt-get install -y nginx-light")
    (tmp / "www").mkdir()
    (tmp / "www" / "index.html").write_bytes(html)
    conf = tmp / "nginx.conf"
    conf.write_text(
        f"""
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {tmp}; proxy_temp_path {tmp}; fastcgi_temp_path {tmp};
  uwsgi_temp_path {tmp}; scgi_temp_path {tmp};
  sendfile on; tcp_nopush on; keepalive_requests 1000000;
  server {{
    listen 127.0.0.1:{port};
    root {tmp}/www;
    location / {{ default_type text/html; try_files /index.html =404; }}
  }}
}}
"""
    )
    return subprocess.Popen(
        [nginx, "-c", str(conf), "-p", str(tmp)], start_new_session=True
    )


def start_edge(port: int, app_port: int) -> subprocess.Popen:
    """nginx with the configuration the app generated for what is published."""
    settings.EDGE_LISTEN = f"127.0.0.1:{port}"
    settings.EDGE_UPSTREAM = f"127.0.0.1:{app_port}"
    edge.edge_sync()
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    return subprocess.Popen(
        [
            nginx,
            "-c",
            str(edge.conf_path()),
            "-p",
            str(settings.EDGE_ROOT),
            "-g",
            "daemon off;",
        ],
        start_new_session=True,
    )


def stop(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def views_stored(workspace_id: int) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM analytics_event WHERE workspace_id = %s "
            "AND kind = 'view'",
            [workspace_id],
        )
        return cursor.fetchone()[0]


def flush_all() -> None:
    """Store everything queued (the Celery beat job's work, done here)."""
    idle = 0
    while idle < 2:
        moved = services.events_flush(max_seconds=60, batch_size=20_000)
        idle = idle + 1 if not moved and not ingest.stream_pending() else 0


def cleanup(workspace: Workspace) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM analytics_event WHERE workspace_id = %s", [workspace.pk]
        )
    accounts_services.workspace_delete(workspace=workspace)


def need(binary: str, package: str) -> None:
    """Install a missing tool (apt, when root), else say how."""
    if shutil.which(binary) or Path(f"/usr/sbin/{binary}").exists():
        return
    if os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "-qq", package], check=False)
    if not (shutil.which(binary) or Path(f"/usr/sbin/{binary}").exists()):
        sys.exit(f"{binary} is missing: apt-get install -y {package}")


def main() -> None:
    need("wrk", "wrk")
    need("nginx", "nginx-light")
    tmp = Path(tempfile.mkdtemp(prefix="of-bench-serve-"))
    os.chmod(tmp, 0o755)  # nginx's workers read the files
    # The edge's files, config and view logs (the app's too) live in tmp.
    settings.EDGE_ROOT = tmp / "edge"
    settings.EDGE_WORKERS = "1"
    settings.EDGE_ENABLED = True
    os.environ["EDGE_ROOT"] = str(tmp / "edge")
    services.event_partitions_ensure()
    ingest.redis_client().ping()
    flush_all()  # leftovers of earlier runs are not ours to count
    workspace = Workspace.objects.create(
        name="bench-serve (scratch)", slug=f"bench-serve-{os.getpid()}"
    )
    host = ["-H", f"Host: {workspace.slug}.localhost"]
    gunicorn = nginx = floor = edge_nginx = None
    try:
        funnel = funnel_create_from_template(
            workspace=workspace,
            user=None,
            template_key="lead-magnet",
            name=f"bench serve {str(workspace.public_id)[:8]}",
        )
        funnel_publish(funnel=funnel, user=None)
        connection.close()  # gunicorn's workers get their own connections
        app_port, nginx_port = free_port(), free_port()
        gunicorn = start_gunicorn(app_port)
        page_url = f"http://127.0.0.1:{app_port}/{funnel.slug}/"
        wait_for(page_url, host=host[1][6:])
        request = urllib.request.Request(page_url, headers={"Host": host[1][6:]})
        with urllib.request.urlopen(request) as response:
            html = response.read()
            assert response.status == 200 and b"<form" in html, "no opt-in page"
        # Plain nginx serves the very file the edge serves (the published artifact).
        snap = edge.snapshot()
        route = next(
            r
            for r in snap.routes[f"{workspace.slug}.localhost"]
            if r[0] == f"/{funnel.slug}/"
        )
        page_id, version_id, _ = snap.steps[route[1]].variants[0]
        artifact = edge.artifact_path(route[1], "s", page_id, version_id)
        html = artifact.read_bytes()
        nginx = start_nginx(tmp, nginx_port, html)
        nginx_url = f"http://127.0.0.1:{nginx_port}/index.html"
        wait_for(nginx_url)
        # gunicorn's own ceiling: the same config serving the same bytes, no work.
        floor_port = free_port()
        floor = start_gunicorn(
            floor_port,
            "_static_wsgi:app",
            BENCH_STATIC_FILE=str(tmp / "www" / "index.html"),
        )
        floor_url = f"http://127.0.0.1:{floor_port}/"
        wait_for(floor_url)
        wrk(floor_url, "-d2s")
        bare = wrk(floor_url, f"-d{SECONDS}s")
        stop(floor)

        wrk(page_url, "-d2s", *host)  # warm-up: imports, caches, connections
        wrk(nginx_url, "-d2s")
        flush_all()
        before = views_stored(workspace.pk)

        static = wrk(nginx_url, f"-d{SECONDS}s")
        lua = tmp / "views.lua"
        lua.write_text(VIEWS_LUA)
        app = wrk(
            page_url,
            f"-d{SECONDS + TAIL_SECONDS}s",
            *host,
            "-s",
            str(lua),
            script_args=(str(SECONDS),),
        )
        flush_all()
        app_stored = views_stored(workspace.pk) - before

        # The edge: nginx + files, views in its log, shipped.
        edge_port = free_port()
        edge_nginx = start_edge(edge_port, app_port)
        edge_url = f"http://127.0.0.1:{edge_port}/{funnel.slug}/"
        wait_for(edge_url, host=host[1][6:])
        wrk(edge_url, "-d2s", *host)
        time.sleep(1.5)  # the log's flush interval
        flush_all()
        before = views_stored(workspace.pk)
        # Plain nginx right before and right after the edge: the machine's load
        # drifts (other work shares its cores), so the edge is compared with the
        # mean of the two, not with a run a minute earlier.
        static_before = wrk(nginx_url, f"-d{SECONDS}s")
        edged = wrk(
            edge_url,
            f"-d{SECONDS + TAIL_SECONDS}s",
            *host,
            "-s",
            str(lua),
            script_args=(str(SECONDS), "/robots.txt"),
        )
        static_after = wrk(nginx_url, f"-d{SECONDS}s")
        stop(edge_nginx)  # a graceful stop writes out the log's buffer
        stop(gunicorn)
        stop(nginx)
        shipped_at = time.monotonic()
        flush_all()
        ship_seconds = time.monotonic() - shipped_at
        stored = views_stored(workspace.pk) - before
    finally:
        stop(edge_nginx)
        stop(gunicorn)
        stop(nginx)
        stop(floor)
        shutil.rmtree(tmp, ignore_errors=True)
        cleanup(workspace)

    app_sent = app["views"]
    app_rps = app_sent / app["view_seconds"]
    sent = edged["views"]
    edge_rps = sent / edged["view_seconds"]
    nginx_rps = (static_before["rps"] + static_after["rps"]) / 2
    print(
        f"nginx: {static['requests']} requests in {static['seconds']:.2f}s, "
        f"{static['rps']:.0f} req/s, p99 {static['p99_ms']:.2f} ms, "
        f"{len(html)} bytes"
    )
    print(
        f"app: {app_sent} tracked page views in {app['view_seconds']:.2f}s "
        f"(+{app['requests'] - app_sent} untracked bot views after), {app_rps:.0f} "
        f"views/s, p99 {app['p99_ms']:.2f} ms, non-200 {app['bad']}, "
        f"socket errors: {app['socket_errors'] or 'none'}"
    )
    print(
        f"gunicorn ceiling (same config, a WSGI app returning the file, no work): "
        f"{bare['rps']:.0f} req/s = {bare['rps'] / static['rps']:.3f} of nginx"
    )
    print(
        f"edge: {sent} tracked page views in {edged['view_seconds']:.2f}s, "
        f"{edge_rps:.0f} views/s, p99 {edged['p99_ms']:.2f} ms, non-200 "
        f"{edged['bad']}, socket errors: {edged['socket_errors'] or 'none'}; "
        f"{stored} stored, shipping the whole log took {ship_seconds:.2f}s; "
        f"plain nginx just before {static_before['rps']:.0f} req/s, just after "
        f"{static_after['rps']:.0f} req/s"
    )
    print(
        f"bench serve: edge_rps={edge_rps:.0f} nginx_rps={nginx_rps:.0f} "
        f"edge_ratio={edge_rps / nginx_rps:.3f} sent={sent} stored={stored} "
        f"app_rps={app_rps:.0f} ratio={app_rps / static['rps']:.3f} "
        f"app_p99_ms={app['p99_ms']:.2f} app_sent={app_sent} "
        f"app_stored={app_stored} gunicorn_floor_rps={bare['rps']:.0f}"
    )


if __name__ == "__main__":
    main()
