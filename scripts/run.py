"""`make run`: local servers if needed, migrate, demo data, then the processes:
web, worker, beat and the view shipper.

Ctrl-C stops all of them (and the project-local PostgreSQL/Redis it started).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import devservices  # noqa: E402

PY = sys.executable
HOST = os.environ.get("HOST", "127.0.0.1")
PORT = os.environ.get("PORT", "8000")


def _stop_on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        services_env, started = devservices.ensure()
    except devservices.SetupError as exc:
        print(f"make run: {exc}", file=sys.stderr)
        return 1
    # Beat keeps its schedule in .data/ (CELERY_BEAT_SCHEDULE_FILENAME), which only
    # exists by now if we started local servers: with DATABASE_URL/REDIS_URL set on
    # a fresh clone beat would stop at once without it.
    devservices.DATA.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **services_env}
    env.setdefault("DEBUG", "true")
    env.setdefault("SITE_URL", f"http://{HOST}:{PORT}")
    # Published funnels: http://<workspace>.localhost:PORT/ (browsers resolve
    # every *.localhost name to this machine).
    env.setdefault("PUBLIC_DOMAIN", f"localhost:{PORT}")
    manage = [PY, str(ROOT / "manage.py")]
    try:
        subprocess.run([*manage, "migrate", "--no-input"], env=env, check=True)
        subprocess.run([*manage, "seed_demo"], env=env, check=True)
    except subprocess.CalledProcessError as exc:
        devservices.stop(started)
        return exc.returncode or 1

    celery = [PY, "-m", "celery", "-A", "config"]
    commands = {
        "web": [*manage, "runserver", f"{HOST}:{PORT}"],
        "worker": [*celery, "worker", "-l", "info", "--concurrency", "2"],
        "beat": [*celery, "beat", "-l", "info"],
        # Page views are lines in .data/edge/logs/: this stores them (and nginx's,
        # when an nginx runs the generated .data/edge/nginx.conf).
        "shipper": [*manage, "ship_views"],
    }
    procs = {
        name: subprocess.Popen(cmd, env=env, cwd=ROOT) for name, cmd in commands.items()
    }
    print(
        f"\n  OpenFunnels is running at http://{HOST}:{PORT}/\n"
        "  Demo login: demo@openfunnels.local / demo-funnels-2024\n"
        "  Press Ctrl-C to stop the web server, the worker, beat and the shipper.\n",
        flush=True,
    )
    code = 0
    try:
        while True:
            for name, proc in procs.items():
                if proc.poll() is not None:
                    print(
                        f"make run: {name} exited ({proc.returncode}); stopping",
                        file=sys.stderr,
                    )
                    code = proc.returncode or 1
                    raise KeyboardInterrupt
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        devservices.stop(started)
    return code


if __name__ == "__main__":
    sys.exit(main())
