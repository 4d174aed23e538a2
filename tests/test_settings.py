from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _start(**env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG"}}
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); print('started')"],
        cwd=ROOT,
        env={**base, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_refuses_default_secret_with_debug_off():
    """With DEBUG off and no SECRET_KEY the app stops with one readable line."""
    result = _start(DEBUG="false")
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("OpenFunnels cannot start: SECRET_KEY must be set")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://root@localhost/x", "DATABASE_URL must be a postgres:// URL"),
        ("postgres://user@host:notaport/db", "DATABASE_URL is malformed"),
        ("postgres://localhost", "DATABASE_URL names no database"),
    ],
)
def test_malformed_database_url_is_one_line(url, message):
    """A malformed DATABASE_URL stops start-up with one line, not a traceback."""
    result = _start(DEBUG="true", DATABASE_URL=url)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0]


def test_production_settings_turn_on_security():
    """With DEBUG off and a real secret, cookies are secure and headers are set."""
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS, "
        "s.SECURE_CONTENT_TYPE_NOSNIFF, s.X_FRAME_OPTIONS, s.SESSION_COOKIE_NAME, "
        "s.CSRF_COOKIE_NAME)"
    )
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in {"SECURE_COOKIES", "SECURE_HSTS_SECONDS"}
    }
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={
            **base,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DEBUG": "false",
            "SECRET_KEY": "x" * 50,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.split() == [
        "True",
        "True",
        "31536000",
        "True",
        "DENY",
        "__Host-sessionid",
        "__Host-csrftoken",
    ]


def test_public_domain_is_required_with_debug_off():
    """Without PUBLIC_DOMAIN the app would not know where funnels live: one line."""
    base = {k: v for k, v in os.environ.items() if k != "PUBLIC_DOMAIN"}
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env={
            **base,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DEBUG": "false",
            "SECRET_KEY": "x" * 50,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "PUBLIC_DOMAIN must be set when DEBUG is off" in result.stderr


def test_malformed_trusted_proxies_is_one_line():
    """A TRUSTED_PROXIES entry that is no address or range stops start-up clearly."""
    result = _start(DEBUG="true", TRUSTED_PROXIES="10.0.0.0/8, proxy.local")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert (
        "TRUSTED_PROXIES: 'proxy.local' is not an IP address or CIDR range"
        in (lines[0])
    )
