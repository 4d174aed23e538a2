"""Faults: page views and opt-ins through the edge while the machinery dies.

Run from the repository root with DATABASE_URL set (REDIS_URL is not used: the
bench starts its own redis-server on a free loopback port, without persistence,
so that it can restart it; the machine's shared Redis is never touched):

    python bench/faults.py [SECONDS] [--shippers N]

1. Creates a scratch workspace with a published opt-in funnel, writes the edge
   files and nginx configuration (pages/edge.py) into a temporary folder.
2. Starts the private redis-server, gunicorn (the app), nginx (the edge, with the
   generated configuration), the shippers (``manage.py ship_views``; two, as
   compose runs them, unless ``--shippers`` says otherwise) and a Celery worker,
   all on loopback ports picked freely.
3. Once the app, the edge and the shippers are up, 50 client threads for SECONDS
   (default 60): 40 ask for the opt-in page over
   and over (new visitors), 10 play people who read the page for 2.1 s and opt in
   with their own e-mail address (the cookie nginx set carries the form token).
   A view is "sent" when a 200 with the page came back, an opt-in when the app
   answered 302 (redirect to the next step).
4. Meanwhile: a shipper is SIGKILLed and restarted, twice (the first, then the
   last: with one shipper, the same one twice), Redis is killed and started again
   empty, the Celery worker is SIGKILLed and restarted.
5. Stops the clients and nginx (which writes out its log), lets a shipper run to
   the end of the logs, and counts what PostgreSQL holds for the workspace.

Last line: ``bench faults: views_sent=… views_stored=… optins_sent=…
optins_stored=… leads=… lost=… duplicates=… ship_p95_s=…`` (lost counts views and
opt-ins the clients were answered for that are not stored; ship_p95_s is the 95th
percentile of stored minus served time of the views shipped while the clients ran).
Cleans up everything it made.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
_args = argparse.ArgumentParser(description="Views and opt-ins under faults.")
_args.add_argument("seconds", type=int, nargs="?", default=60)
_args.add_argument("--shippers", type=int, default=2)
ARGS = _args.parse_args()
SECONDS = ARGS.seconds
VIEWERS, OPTERS = 40, 10
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def need(binary: str, package: str) -> str:
    found = shutil.which(binary) or (
        f"/usr/sbin/{binary}" if Path(f"/usr/sbin/{binary}").exists() else None
    )
    if found:
        return found
    if os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "-qq", package], check=False)
        found = shutil.which(binary)
    if not found:
        sys.exit(f"{binary} is missing: apt-get install -y {package}")
    return found


TMP = Path(tempfile.mkdtemp(prefix="of-bench-faults-"))
os.chmod(TMP, 0o755)
REDIS_PORT = free_port()
ENV = {
    "DJANGO_SETTINGS_MODULE": "config.settings",
    "DEBUG": "false",
    "SECRET_KEY": "bench-only-secret-key-0123456789-abcdefghijklmnop",
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    "SITE_URL": "http://127.0.0.1",
    "PUBLIC_DOMAIN": "localhost",
    "STATIC_MANIFEST": "false",
    "LOG_LEVEL": "ERROR",
    "REDIS_URL": f"redis://127.0.0.1:{REDIS_PORT}/0",
    "EDGE_ROOT": str(TMP / "edge"),
    "EDGE_WORKERS": "1",
    "EDGE_ENABLED": "true",
    # Every opt-in comes from 127.0.0.1 here: lift the per-IP limit for the run.
    "FORM_IP_LIMIT": "1000000",
    "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
}
os.environ.update(ENV)

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from accounts import services as accounts_services  # noqa: E402
from accounts.models import Workspace  # noqa: E402
from analytics import services, shipper  # noqa: E402
from pages import edge  # noqa: E402
from pages.services import funnel_create_from_template, funnel_publish  # noqa: E402


class Procs:
    """The processes of the run, by name, each in its own process group."""

    def __init__(self) -> None:
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, cmd: list[str]) -> None:
        self.procs[name] = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env={**os.environ, **ENV},
            stdout=open(TMP / f"{name}.out", "ab"),  # noqa: SIM115
            stderr=open(TMP / f"{name}.err", "ab"),  # noqa: SIM115
            start_new_session=True,
        )

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs.get(name)
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.kill(name, signal.SIGTERM)


def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def wait_file(path: Path, text: bytes, timeout: float = 60.0) -> None:
    """Until a process has said ``text`` on its output (it is ready)."""
    deadline = time.monotonic() + timeout
    while not (path.exists() and text in path.read_bytes()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path.name} never said {text!r}")
        time.sleep(0.1)


class Counts:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.views = 0
        self.optins = 0
        self.emails: list[str] = []
        self.errors: dict[str, int] = {}

    def add(self, views: int = 0, optin: str | None = None) -> None:
        with self.lock:
            self.views += views
            if optin:
                self.optins += 1
                self.emails.append(optin)

    def error(self, what: str) -> None:
        with self.lock:
            self.errors[what] = self.errors.get(what, 0) + 1


def _cookies(response: http.client.HTTPResponse) -> dict[str, str]:
    found = {}
    for value in response.headers.get_all("Set-Cookie") or []:
        name, _, rest = value.partition("=")
        found[name] = rest.split(";", 1)[0]
    return found


def client(
    port: int, host: str, path: str, form: str, opts_in: bool, n: int, stop, counts
):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    ua = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"
    i = 0
    while not stop.is_set():
        i += 1
        try:
            conn.request("GET", path, headers={"Host": host, "User-Agent": ua})
            response = conn.getresponse()
            body = response.read()
            cookies = _cookies(response)
            if response.status == 200 and b"<form" in body and cookies:
                counts.add(views=1)
            else:
                counts.error(f"view {response.status}")
                continue
            if not opts_in:
                continue
            if stop.wait(2.1):  # a person reads the page before sending the form
                break
            email = f"p{n}-{i}@faults.example"
            data = urllib.parse.urlencode(
                {"email": email, "consent": "yes", "consent_text": "ok", "_of": "edge"}
            )
            cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
            conn.request(
                "POST",
                form,
                body=data,
                headers={
                    "Host": host,
                    "User-Agent": ua,
                    "Cookie": cookie,
                    "Content-Type": "application/x-www-form-urlencoded",
                },
            )
            response = conn.getresponse()
            response.read()
            if response.status == 302:
                counts.add(optin=email)
            else:
                counts.error(f"optin {response.status}")
        except (OSError, http.client.HTTPException) as exc:
            counts.error(type(exc).__name__)
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
            time.sleep(0.05)
    conn.close()


def count(sql: str, params: list) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def main() -> None:
    redis_server = need("redis-server", "redis-server")
    nginx = need("nginx", "nginx-light")
    procs = Procs()
    redis_cmd = [
        redis_server,
        "--port",
        str(REDIS_PORT),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(TMP),
    ]
    procs.start("redis", redis_cmd)
    wait_port(REDIS_PORT)
    services.event_partitions_ensure()
    workspace = Workspace.objects.create(
        name="bench-faults (scratch)", slug=f"bench-faults-{os.getpid()}"
    )
    ws = workspace.pk
    app_port, edge_port = free_port(), free_port()
    settings.EDGE_LISTEN = f"127.0.0.1:{edge_port}"
    settings.EDGE_UPSTREAM = f"127.0.0.1:{app_port}"
    settings.EDGE_USER = "root" if os.geteuid() == 0 else ""
    stop = threading.Event()
    threads: list[threading.Thread] = []
    counts = Counts()
    faults: list[str] = []
    try:
        funnel = funnel_create_from_template(
            workspace=workspace,
            user=None,
            template_key="lead-magnet",
            name=f"bench faults {str(workspace.public_id)[:8]}",
        )
        funnel_publish(funnel=funnel, user=None)
        edge.edge_sync()
        step = funnel.steps.order_by("position").first()
        connection.close()
        manage = [sys.executable, "manage.py"]
        procs.start(
            "web",
            [
                str(BIN / "gunicorn"),
                "config.wsgi:application",
                "--config",
                "config/gunicorn.py",
                "--bind",
                f"127.0.0.1:{app_port}",
            ],
        )
        procs.start(
            "edge",
            [
                nginx,
                "-c",
                str(edge.conf_path()),
                "-p",
                str(TMP / "edge"),
                "-g",
                "daemon off;",
            ],
        )
        ship = [*manage, "ship_views"]
        shippers = [f"shipper{n}" for n in range(1, max(1, ARGS.shippers) + 1)]
        for name in shippers:
            procs.start(name, ship)
        celery = [sys.executable, "-m", "celery", "-A", "config", "worker"]
        worker_cmd = [*celery, "--pool", "solo", "-l", "error"]
        procs.start("worker", worker_cmd)
        wait_port(app_port)
        wait_port(edge_port)
        for name in shippers:  # set-up, not a fault: the clients wait for them
            wait_file(TMP / f"{name}.out", b"shipping")
        host = f"{workspace.slug}.localhost"
        path = f"/{funnel.slug}/"
        form = f"/{funnel.slug}/{step.slug}/optin/"
        for n in range(VIEWERS + OPTERS):
            thread = threading.Thread(
                target=client,
                args=(edge_port, host, path, form, n >= VIEWERS, n, stop, counts),
                daemon=True,
            )
            thread.start()
            threads.append(thread)
        started = time.monotonic()
        first, last = shippers[0], shippers[-1]

        def redis_restart() -> None:
            procs.kill("redis")
            procs.start("redis", redis_cmd)

        schedule = [
            (0.15, f"kill -9 {first}", lambda: procs.kill(first)),
            (0.20, f"start {first}", lambda: procs.start(first, ship)),
            (0.35, "restart redis (empty)", redis_restart),
            (0.50, "kill -9 worker", lambda: procs.kill("worker")),
            (0.60, "start worker", lambda: procs.start("worker", worker_cmd)),
            (0.70, f"kill -9 {last}", lambda: procs.kill(last)),
            (0.72, f"start {last}", lambda: procs.start(last, ship)),
        ]
        for at, what, action in schedule:
            delay = started + at * SECONDS - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            action()
            faults.append(f"{time.monotonic() - started:.1f}s {what}")
        time.sleep(max(0.0, started + SECONDS - time.monotonic()))
        stop.set()
        stopped_at = timezone.now()
        for thread in threads:
            thread.join(timeout=30)
        elapsed = time.monotonic() - started
        procs.kill("edge", signal.SIGQUIT)  # graceful: writes out the log buffer
        for name in shippers:
            procs.kill(name, signal.SIGTERM)
        latest = time.monotonic()
        while shipper.ship_once():  # the rest of the logs
            pass
        drain = time.monotonic() - latest
        views_stored = count(
            "SELECT count(*) FROM analytics_event WHERE workspace_id = %s "
            "AND kind = 'view'",
            [ws],
        )
        distinct = count(
            "SELECT count(DISTINCT id) FROM analytics_event WHERE workspace_id = %s",
            [ws],
        )
        total = count(
            "SELECT count(*) FROM analytics_event WHERE workspace_id = %s", [ws]
        )
        optins_stored = count(
            "SELECT count(*) FROM analytics_event WHERE workspace_id = %s "
            "AND kind = 'optin'",
            [ws],
        )
        leads = count("SELECT count(*) FROM leads_lead WHERE workspace_id = %s", [ws])
        # Shipping latency: stored (received_at) minus served (nginx's $msec), for
        # the views shipped while the clients ran (not the final drain).
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT percentile_cont(0.95) WITHIN GROUP (ORDER BY "
                "extract(epoch FROM received_at - occurred_at)) FROM analytics_event "
                "WHERE workspace_id = %s AND kind = 'view' AND received_at < %s",
                [ws, stopped_at],
            )
            p95 = cursor.fetchone()[0] or 0.0
        missing_leads = count(
            "SELECT count(*) FROM unnest(%s::text[]) e WHERE NOT EXISTS "
            "(SELECT 1 FROM leads_lead l WHERE l.workspace_id = %s AND l.email = e)",
            [counts.emails, ws],
        )
    finally:
        stop.set()
        procs.stop_all()
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM analytics_event WHERE workspace_id = %s", [ws])
        accounts_services.workspace_delete(workspace=workspace)
        shutil.rmtree(TMP, ignore_errors=True)

    lost = (
        max(0, counts.views - views_stored)
        + max(0, counts.optins - optins_stored)
        + missing_leads
    )
    print("faults: " + "; ".join(faults))
    print(
        f"clients: {VIEWERS + OPTERS} for {elapsed:.1f}s, errors {counts.errors or 0}; "
        f"shippers: {len(shippers)}; final shipping {drain:.2f}s"
    )
    print(
        f"bench faults: views_sent={counts.views} views_stored={views_stored} "
        f"optins_sent={counts.optins} optins_stored={optins_stored} leads={leads} "
        f"lost={lost} duplicates={total - distinct} ship_p95_s={p95:.2f}"
    )


if __name__ == "__main__":
    main()
