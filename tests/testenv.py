"""Loaded with `-p tests.testenv` before Django: safe defaults for the test settings.

DATABASE_URL and REDIS_URL are not defaulted here on purpose: `make test` provides
the machine's or the project-local servers.
"""

from __future__ import annotations

import os

os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production-0123456789")
os.environ.setdefault("ALLOWED_HOSTS", "*")
os.environ.setdefault("STATIC_MANIFEST", "false")
os.environ.setdefault("SECURE_COOKIES", "false")
os.environ.setdefault("SECURE_HSTS_SECONDS", "0")
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "true")
os.environ.setdefault("SITE_URL", "http://testserver")
os.environ.setdefault("PUBLIC_DOMAIN", "localhost")
os.environ.setdefault("PUBLIC_SCHEME", "http")
os.environ.setdefault("EDGE_ENABLED", "false")  # tests/pages/test_edge.py turns it on
# View logs and published files of this run only (a stale log would be shipped
# into the fresh test database).
if "EDGE_ROOT" not in os.environ:
    import tempfile

    os.environ["EDGE_ROOT"] = tempfile.mkdtemp(prefix="of-edge-test-")
