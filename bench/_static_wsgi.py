"""A WSGI app that only returns one file: gunicorn's own ceiling for bench/serve.py.

Not a benchmark itself (make bench skips files starting with an underscore).
"""

from __future__ import annotations

import os
from pathlib import Path

BODY = Path(os.environ["BENCH_STATIC_FILE"]).read_bytes()
HEADERS = [
    ("Content-Type", "text/html; charset=utf-8"),
    ("Content-Length", str(len(BODY))),
]


def app(environ, start_response):
    start_response("200 OK", HEADERS)
    return [BODY]
