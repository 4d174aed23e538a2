"""The compose stack's proxy (config/Caddyfile), run for real with Debian's caddy in
front of the live server: uploaded images come straight from the media folder with a
year of caching, everything else reaches the app with the visitor's Host."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from pages.services import funnel_create_from_template, funnel_publish

ROOT = Path(__file__).resolve().parents[1]
CADDY = shutil.which("caddy")

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        CADDY is None, reason="caddy is not installed (apt-get install caddy)"
    ),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str, host: str) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, headers={"Host": host})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


@pytest.fixture
def proxy(live_server, tmp_path):
    port = _free_port()
    media = tmp_path / "media"
    (media / "images").mkdir(parents=True)
    env = {
        **os.environ,
        "UPSTREAM": live_server.url.split("//", 1)[1],
        # The edge (nginx) has its own test (tests/pages/test_edge.py).
        "PAGES_UPSTREAM": live_server.url.split("//", 1)[1],
        "MEDIA_DIR": str(media),
        "APP_HOST": "app.test",
        "PROXY_HTTP_PORT": str(port),
        "PROXY_HTTPS_PORT": str(_free_port()),
        # No certificates on a test machine: plain HTTP only.
        "PROXY_OPTIONS": "auto_https off",
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }
    process = subprocess.Popen(
        [
            CADDY,
            "run",
            "--config",
            str(ROOT / "config/Caddyfile"),
            "--adapter",
            "caddyfile",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail("caddy did not start")
            time.sleep(0.1)
    yield base, media
    process.terminate()
    process.wait(timeout=10)


def test_proxy_serves_media_from_the_volume_and_pages_from_the_app(
    proxy, settings, workspace, owner
):
    base, media = proxy
    settings.SERVE_MEDIA = False  # so only the proxy can answer /media/
    (media / "images" / "hero.webp").write_bytes(b"RIFF\x00\x00\x00\x00WEBPVP8 ")
    funnel = funnel_create_from_template(
        workspace=workspace, user=owner, template_key="lead-magnet", name="Guide"
    )
    funnel_publish(funnel=funnel, user=owner)

    status, headers, body = _get(f"{base}/media/images/hero.webp", "acme.localhost")
    assert status == 200 and body.startswith(b"RIFF")
    assert headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert _get(f"{base}/media/images/nope.webp", "acme.localhost")[0] == 404

    status, headers, body = _get(f"{base}/{funnel.slug}/", "acme.localhost")
    assert status == 200 and b"<form" in body
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    # The app host through the proxy: no funnel page there.
    assert _get(f"{base}/{funnel.slug}/", "127.0.0.1")[0] == 404
