"""Published pages as files, served by a real nginx with the configuration the app
writes (pages.edge): one nginx for the whole module, in front of the live server."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
from django.test import override_settings

from pages import edge
from pages.models import Page
from pages.services import (
    domain_add,
    funnel_create_from_template,
    funnel_publish,
    funnel_unpublish,
    page_for_step,
    variant_add,
    variant_weights_set,
)

NGINX = shutil.which("nginx")

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(NGINX is None, reason="nginx is not installed"),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Edge:
    def __init__(self, root: Path, port: int) -> None:
        self.root = root
        self.port = port
        self.base = f"http://127.0.0.1:{port}"

    def get(
        self, path: str, host: str, cookie: str = "", method: str = "GET", data=None
    ):
        headers = {"Host": host, "User-Agent": "Mozilla/5.0 (X11; Linux) Firefox/120"}
        if cookie:
            headers["Cookie"] = cookie
        request = urllib.request.Request(
            self.base + path, headers=headers, method=method, data=data
        )
        opener = urllib.request.build_opener(_NoRedirect)
        try:
            with opener.open(request, timeout=10) as response:
                return response.status, response.headers, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers, exc.read()

    def _workers(self) -> int:
        pid = int((self.root / "nginx.pid").read_text())
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return len(children)

    def wait_reloaded(self, probe) -> None:
        """nginx reloads in the background: wait until the old worker is gone
        (it answers with the old configuration until then) and ``probe()`` holds."""
        deadline = time.monotonic() + 10
        while not (self._workers() == 1 and probe() and self._workers() == 1):
            if time.monotonic() > deadline:
                pytest.fail("nginx did not pick up the new configuration")
            time.sleep(0.05)

    def log_lines(self) -> list[dict]:
        # The log is buffered (flush=1s): reopen it to make nginx write it out.
        subprocess.run([NGINX, "-c", str(edge.conf_path()), "-s", "reopen"], check=True)
        time.sleep(0.3)
        path = edge.log_path()
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines()]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


@pytest.fixture(scope="module")
def nginx_edge(live_server, tmp_path_factory, django_db_blocker):
    root = tmp_path_factory.mktemp("edge")
    port = _free_port()
    with override_settings(
        EDGE_ENABLED=True,
        EDGE_ROOT=root,
        EDGE_LISTEN=f"127.0.0.1:{port}",
        EDGE_UPSTREAM=live_server.url.split("//", 1)[1],
        EDGE_WORKERS="1",
        EDGE_RELOAD="signal",
        # Workers read files under pytest's private temporary folder.
        EDGE_USER="root" if os.geteuid() == 0 else "",
    ):
        with django_db_blocker.unblock():
            edge.edge_sync()
        process = subprocess.Popen(
            [NGINX, "-c", str(edge.conf_path()), "-p", str(root), "-g", "daemon off;"],
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    process.kill()
                    pytest.fail("nginx did not start")
                time.sleep(0.05)
        yield Edge(root, port)
        process.terminate()
        process.wait(timeout=10)


def _from_edge(response) -> bool:
    """Answered by nginx from a file (the app sets no form-token cookie)."""
    status, headers, _ = response
    cookies = headers.get_all("Set-Cookie") or []
    return status == 200 and any(
        c.startswith(edge.TOKEN_COOKIE_PREFIX) for c in cookies
    )


def _visitor(headers) -> str:
    for value in headers.get_all("Set-Cookie") or []:
        if value.startswith(f"{edge.VISITOR_COOKIE}="):
            return value.split(";", 1)[0]
    return ""


def test_publish_writes_files_that_nginx_serves_with_a_visitor_cookie_and_a_log_line(
    nginx_edge, workspace, owner
):
    """A published step is a file; nginx sends it byte for byte, sets the visitor
    cookie and the form-token cookie, and writes the view's log line."""
    funnel = funnel_create_from_template(
        workspace=workspace, user=owner, template_key="lead-magnet", name="Guide"
    )
    funnel_publish(funnel=funnel, user=owner)
    step = funnel.steps.order_by("position").first()
    page = page_for_step(step=step)
    page.refresh_from_db()
    host = f"{workspace.slug}.localhost"
    artifact = edge.artifact_path(step.pk, "s", page.pk, page.published_version_id)
    nginx_edge.wait_reloaded(
        lambda: _from_edge(nginx_edge.get(f"/{funnel.slug}/", host))
    )
    assert artifact.exists()
    assert "__OF_FORM_TOKEN__" not in artifact.read_text()

    status, headers, body = nginx_edge.get(f"/{funnel.slug}/?utm_source=ads", host)
    assert status == 200
    assert body == artifact.read_bytes()
    assert headers["Cache-Control"] == "private, no-cache"
    assert "script-src" in headers["Content-Security-Policy"]
    assert _visitor(headers).startswith("ofv=")
    cookies = headers.get_all("Set-Cookie")
    assert any(c.startswith(f"oft_{step.pk}=") for c in cookies)

    lines = [line for line in nginx_edge.log_lines() if line["q"] == "utm_source=ads"]
    assert len(lines) == 1
    line = lines[0]
    assert line["s"] == str(step.pk)
    assert line["p"] == edge.artifact_name(page.pk, page.published_version_id)
    assert line["m"] == "GET" and line["st"] == "200" and line["k"] == "s"
    assert len(line["id"]) == 32 and line["v"].startswith("ofv=")

    # Form posts and unknown paths go to the app.
    status, _, _ = nginx_edge.get(f"/{funnel.slug}/nope/", host)
    assert status == 404
    status, _, _ = nginx_edge.get(
        f"/{funnel.slug}/{step.slug}/optin/", host, method="POST", data=b"email=x"
    )
    assert status in {303, 400, 403}
    # A stranger's host serves nothing of this workspace.
    assert nginx_edge.get(f"/{funnel.slug}/", "other.localhost")[0] == 404

    funnel_unpublish(funnel=funnel)
    nginx_edge.wait_reloaded(lambda: nginx_edge.get(f"/{funnel.slug}/", host)[0] == 404)


def _worker_pids(edge_: Edge) -> list[str]:
    pid = int((edge_.root / "nginx.pid").read_text())
    return Path(f"/proc/{pid}/task/{pid}/children").read_text().split()


def test_split_test_is_sticky_per_visitor_and_follows_the_weights(
    nginx_edge, workspace, owner
):
    """Two variants at 50/50 both get visitors; a returning visitor keeps theirs.
    New weights apply at once to new visitors WITHOUT a reload (same nginx
    worker, same configuration) while returning visitors keep their variant;
    weight 0 moves that variant's returning visitors to the other."""
    funnel = funnel_create_from_template(
        workspace=workspace, user=owner, template_key="lead-magnet", name="Split"
    )
    step = funnel.steps.order_by("position").first()
    control = page_for_step(step=step)
    challenger = variant_add(page=control)
    funnel_publish(funnel=funnel, user=owner)
    host = f"{workspace.slug}.localhost"
    path = f"/{funnel.slug}/"
    nginx_edge.wait_reloaded(lambda: _from_edge(nginx_edge.get(path, host)))
    bodies = {}
    for page in Page.objects.filter(pk__in=[control.pk, challenger.pk]):
        artifact = edge.artifact_path(step.pk, "s", page.pk, page.published_version_id)
        bodies[artifact.read_bytes()] = page.pk

    def visit(cookie: str = "") -> tuple[str, int]:
        status, headers, body = nginx_edge.get(path, host, cookie=cookie)
        assert status == 200
        page_id = bodies[body]
        # The pin cookie names the variant that was sent.
        sent = [c.split(";", 1)[0] for c in headers.get_all("Set-Cookie") or []]
        assert f"ofp{step.pk}={page_id}" in sent
        return cookie or _cookies(headers), page_id

    visitors = [visit() for _ in range(60)]
    seen = Counter(page_id for _, page_id in visitors)
    assert seen[control.pk] >= 15 and seen[challenger.pk] >= 15
    for cookie, page_id in visitors[:10]:
        for _ in range(3):
            assert visit(cookie)[1] == page_id

    workers = _worker_pids(nginx_edge)
    config = edge.conf_path().read_text()
    variant_weights_set(step=step, weights={control.pk: 5, challenger.pk: 95})
    newcomers = Counter(visit()[1] for _ in range(100))
    assert newcomers[challenger.pk] >= 85, newcomers
    for cookie, page_id in visitors:
        assert visit(cookie)[1] == page_id  # returning: their variant, both served
    assert edge.conf_path().read_text() == config
    assert _worker_pids(nginx_edge) == workers  # no reload

    variant_weights_set(step=step, weights={control.pk: 0, challenger.pk: 100})
    for cookie, _ in visitors:
        assert visit(cookie)[1] == challenger.pk  # control is paused
    assert Counter(visit()[1] for _ in range(20)) == {challenger.pk: 20}
    assert _worker_pids(nginx_edge) == workers
    lines = nginx_edge.log_lines()
    served = {line["p"] for line in lines if line["s"] == str(step.pk)}
    assert served == {
        edge.artifact_name(p.pk, p.published_version_id)
        for p in Page.objects.filter(pk__in=[control.pk, challenger.pk])
    }


# Longer than nginx's default map bucket (64 bytes) with method and path.
DOMAIN = "shop-of-a-customer-with-a-rather-long-name.example.org"


def test_custom_domain_serves_the_funnel_at_its_root(nginx_edge, workspace, owner):
    """A connected domain answers at / with the page whose links lost the prefix."""
    funnel = funnel_create_from_template(
        workspace=workspace, user=owner, template_key="lead-magnet", name="Dom"
    )
    funnel_publish(funnel=funnel, user=owner)
    domain_add(workspace=workspace, host=DOMAIN, funnel=funnel)
    nginx_edge.wait_reloaded(lambda: _from_edge(nginx_edge.get("/", DOMAIN)))
    body = nginx_edge.get("/", DOMAIN)[2].decode()
    assert f'"/{funnel.slug}/' not in body
    # Its second step at /<step>/.
    second = funnel.steps.order_by("position")[1]
    assert _from_edge(nginx_edge.get(f"/{second.slug}/", DOMAIN))


def test_a_refused_configuration_keeps_the_old_one(nginx_edge, settings):
    """nginx -t runs before the swap: a broken config never replaces a good one."""
    before = edge.conf_path().read_text()
    settings.EDGE_LISTEN = "127.0.0.1:not-a-port"
    settings.EDGE_ENABLED = True
    with pytest.raises(edge.EdgeError):
        edge.edge_sync()
    assert edge.conf_path().read_text() == before


def _cookies(headers) -> str:
    return "; ".join(c.split(";", 1)[0] for c in headers.get_all("Set-Cookie") or [])


def test_an_opt_in_on_a_page_nginx_served_is_checked_against_its_logged_view(
    nginx_edge, workspace, owner
):
    """No Python ran for the view: the form's token is the view's request id (a
    cookie nginx set), valid once its view is logged and 2 s old, once."""
    from analytics.models import Event
    from analytics.services import edge_cookie_read
    from leads.models import Lead, Submission

    funnel = funnel_create_from_template(
        workspace=workspace, user=owner, template_key="lead-magnet", name="Optin"
    )
    funnel_publish(funnel=funnel, user=owner)
    step = funnel.steps.order_by("position").first()
    host = f"{workspace.slug}.localhost"
    page_path = f"/{funnel.slug}/"
    nginx_edge.wait_reloaded(lambda: _from_edge(nginx_edge.get(page_path, host)))
    status, headers, body = nginx_edge.get(page_path, host)
    assert b'name="_of" value="edge"' in body
    cookie = _cookies(headers)
    form = f"/{funnel.slug}/{step.slug}/optin/"
    fields = b"email=ann%40example.com&consent=yes&consent_text=ok&_of=edge"

    # Too quick: a person takes longer than 2 s.
    status, _, body = nginx_edge.get(
        form, host, cookie=cookie, method="POST", data=fields
    )
    assert status == 400 and b"quick" in body
    time.sleep(2.1)
    # A made-up request id was never a logged view.
    forged = cookie.replace(cookie.split(f"oft_{step.pk}=")[1].split(";")[0], "0" * 32)
    status, _, _ = nginx_edge.get(form, host, cookie=forged, method="POST", data=fields)
    assert status == 400
    status, headers, _ = nginx_edge.get(
        form, host, cookie=cookie, method="POST", data=fields
    )
    assert status == 302
    lead = Lead.objects.get(email="ann@example.com")
    visitor = edge_cookie_read(cookie.split("ofv=")[1].split(";")[0])
    optin = Event.objects.get(kind="optin")
    assert optin.visitor_id == visitor
    # The view nginx logged, once shipped, is this visitor's (the opt-in may be
    # accepted from the log's tail before the shipper has stored it).
    from analytics import shipper

    deadline = time.monotonic() + 10
    while not Event.objects.filter(kind="view", visitor_id=visitor).exists():
        assert time.monotonic() < deadline, "the view was never shipped"
        shipper.ship_once()
        time.sleep(0.2)
    assert Event.objects.filter(kind="view", visitor_id=visitor).count() == 1
    # The same token again: one submission.
    nginx_edge.get(form, host, cookie=cookie, method="POST", data=fields)
    assert Submission.objects.filter(lead=lead).count() == 1


def _long_host(n: int) -> str:
    """A host name of the longest legal length (253), numbered."""
    labels = [f"{n:06d}" + "a" * 57, "b" * 63, "c" * 63, "d" * 61]
    host = ".".join(labels)
    assert len(host) == 253
    return host


def test_routes_with_the_longest_host_names_load_without_a_warning(tmp_path, settings):
    """5,000 custom domains of 253 characters with 80-character step slugs (20,000
    route keys up to 342 bytes): the map hash sizes are computed from the keys, so
    `nginx -t` is silent (no "could not build optimal map_hash" warning)."""
    settings.EDGE_ROOT = tmp_path
    slug = "s" * 80
    steps = {
        n: edge.Step(n, n, 1, "f", slug, True, [(n, n, 100)]) for n in range(1, 5001)
    }
    routes = {_long_host(n): [("/", n, "d"), (f"/{slug}/", n, "d")] for n in steps}
    policies = {(n, "d", edge.artifact_name(n, n)): "default-src 'self'" for n in steps}
    text = edge.config_render(edge.Snapshot(steps=steps, routes=routes), policies)
    for sub in ("logs", "tmp", "sites"):
        (tmp_path / sub).mkdir()
    conf = tmp_path / "nginx.conf"
    conf.write_text(text)
    result = subprocess.run(
        [NGINX, "-t", "-c", str(conf), "-p", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "[warn]" not in result.stderr and "[emerg]" not in result.stderr, (
        result.stderr
    )
