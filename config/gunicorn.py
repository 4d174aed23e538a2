"""gunicorn settings for production (Dockerfile, docker-compose) and bench/serve.py.

gthread workers keep HTTP connections alive between requests (sync workers close
each one), which is what lets a page view cost a fraction of a millisecond; see
README "Speed" for the measurements behind these defaults. Every knob can be set
from the environment.
"""

from __future__ import annotations

import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
# One process per core; a few threads each so keep-alive connections and the odd
# slow request (a Postgres write, Stripe) do not block the others.
workers = int(os.environ.get("WEB_CONCURRENCY", os.cpu_count() or 2))
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gthread")
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "30"))
worker_connections = 1000
timeout = 30
graceful_timeout = 20
# Recycle workers now and then (jittered) so that no leak grows without bound.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "0"))
max_requests_jitter = max_requests // 10
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
control_socket_disable = True
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# The scheme a proxy forwards is judged by the app (TRUSTED_PROXIES, config/proxies.py),
# not by gunicorn, so one setting decides whom to believe.
secure_scheme_headers: dict[str, str] = {}
