"""The published artifact and the nginx edge that serves it.

Publishing writes each live step variant to a file under ``EDGE_ROOT/sites/``:
``<step>/s/<page>-<version>.html`` for workspace subdomains and
``<step>/d/<page>-<version>.html`` for a custom domain (whose links lose the funnel's
prefix). Files are immutable: a new version is a new name, written to a temporary
file and renamed, so nginx never sends half a page. The per-view part of a page,
its form token, is not in the bytes: forms carry ``EDGE_FORM_TOKEN`` and the visitor
gets the view's request id in a cookie instead (leads.spam checks it against the
logged view).

``edge_sync()`` runs after every change that bumps the serving generation (publish,
unpublish, rollback, variants, weights, domains) and from ``manage.py edge_sync``. It
writes the missing files and a complete nginx configuration (core modules only):

- ``map "$request_method $host$uri"`` routes a live page's GET/HEAD to its step,
  for workspace subdomains and custom domains alike; anything else (form posts,
  robots.txt, the app's 404s) goes to the app with ``proxy_pass``;
- ``userid`` sets the visitor cookie (``ofv``), ``split_clients`` on the visitor id
  picks a sticky weighted variant per step;
- ``try_files`` sends the file (sendfile: the bytes are never scanned);
- one JSON ``access_log`` line per view (``escape=json``, buffered, flushed every
  second) is the view's only record: the shipper (analytics.shipper) stores it.

The configuration is swapped safely: written to a temporary file, checked with
``nginx -t`` (when an nginx binary is at hand), renamed, then nginx is told to reload
(``EDGE_RELOAD``: ``signal`` sends SIGHUP to the pid in ``EDGE_ROOT/nginx.pid``;
``watch`` leaves it to a watcher next to nginx, as in compose). A reload is graceful:
requests in flight finish on the old workers. Weight changes rewrite the
``split_clients`` blocks, so they take a reload too.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from funnels.public_forms import (
    EDGE_FORM_TOKEN,
    EDGE_TOKEN_COOKIE_PREFIX,
    FORM_TOKEN_PLACEHOLDER,
)

from .models import Domain, Page
from .public import csp
from .public.hosts import public_domain_name
from .selectors import version_html

logger = logging.getLogger(__name__)

VISITOR_COOKIE = "ofv"  # analytics.services.EDGE_COOKIE reads it
TOKEN_COOKIE_PREFIX = EDGE_TOKEN_COOKIE_PREFIX
__all__ = ["EDGE_FORM_TOKEN", "edge_sync"]
LOG_FORMAT_NAME = "ofview"
# The fields of one view line, in the order nginx writes them (JSON keys).
LOG_FIELDS = {
    "t": "$msec",
    "id": "$request_id",
    "v": "$uid_got$uid_set",
    "s": "$edge_step",
    "p": "$edge_variant",
    "k": "$edge_kind",
    "m": "$request_method",
    "st": "$status",
    "q": "$args",
    "r": "$http_referer",
    "ua": "$http_user_agent",
    "pf": "$http_sec_purpose$http_purpose$http_x_purpose$http_x_moz",
    "ip": "$remote_addr",
}
_lock = threading.Lock()


class EdgeError(Exception):
    """The generated configuration was refused (nginx -t); the old one stays."""


@dataclass
class Step:
    id: int
    funnel_id: int
    workspace_id: int
    funnel_slug: str
    step_slug: str
    first: bool
    variants: list[tuple[int, int, int]] = field(default_factory=list)


@dataclass
class Snapshot:
    steps: dict[int, Step]
    # host -> [(uri, step id, kind "s" | "d")]
    routes: dict[str, list[tuple[str, int, str]]]


def root() -> Path:
    return Path(settings.EDGE_ROOT)


def sites_dir() -> Path:
    return root() / "sites"


def log_path() -> Path:
    return root() / "logs" / "views.log"


def conf_path() -> Path:
    return root() / "nginx.conf"


# ------------------------------------------------------------------ snapshot
def snapshot() -> Snapshot:
    """Every live step with its variants and the host + path each answers at."""
    rows = (
        Page.objects.filter(
            step__funnel__published_at__isnull=False,
            step__funnel__archived_at__isnull=True,
            published_version__isnull=False,
            weight__gt=0,
        )
        .order_by("workspace_id", "step__funnel_id", "step__position", "step_id", "id")
        .values_list(
            "id",
            "published_version_id",
            "weight",
            "step_id",
            "step__slug",
            "step__funnel_id",
            "step__funnel__slug",
            "workspace_id",
            "workspace__slug",
        )
    )
    steps: dict[int, Step] = {}
    first_of: dict[int, int] = {}
    slugs: dict[int, str] = {}
    for page, version, weight, step_id, step_slug, funnel_id, fslug, ws, wslug in rows:
        entry = steps.get(step_id)
        if entry is None:
            is_first = funnel_id not in first_of
            if is_first:
                first_of[funnel_id] = step_id
            entry = steps[step_id] = Step(
                step_id, funnel_id, ws, fslug, step_slug, is_first
            )
            slugs[ws] = wslug
        entry.variants.append((page, version, weight))
    public = public_domain_name()
    routes: dict[str, list[tuple[str, int, str]]] = {}
    for step in steps.values():
        host = f"{slugs[step.workspace_id]}.{public}"
        paths = [f"/{step.funnel_slug}/{step.step_slug}/"]
        if step.first:
            paths.append(f"/{step.funnel_slug}/")
        routes.setdefault(host, []).extend((p, step.id, "s") for p in paths)
    for host, funnel_id in Domain.objects.values_list("host", "funnel_id"):
        for step in steps.values():
            if step.funnel_id != funnel_id:
                continue
            paths = [f"/{step.step_slug}/"]
            if step.first:
                paths.append("/")
            routes.setdefault(host, []).extend((p, step.id, "d") for p in paths)
    return Snapshot(steps=steps, routes=routes)


# ------------------------------------------------------------------ artifacts
def artifact_name(page_id: int, version_id: int) -> str:
    return f"{page_id}-{version_id}"


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def artifact_html(version_id: int, kind: str, funnel_slug: str) -> str:
    html = version_html(version_id=version_id)
    if kind == "d":
        html = html.replace(f'"/{funnel_slug}/', '"/')
    return html.replace(FORM_TOKEN_PLACEHOLDER, EDGE_FORM_TOKEN)


def artifacts_write(snap: Snapshot) -> dict[tuple[int, str, str], str]:
    """Write the files the snapshot serves; return each one's CSP.

    Keyed by (step, kind, artifact name). Existing files are kept (immutable).
    """
    kinds: dict[int, set[str]] = {}
    for entries in snap.routes.values():
        for _, step_id, kind in entries:
            kinds.setdefault(step_id, set()).add(kind)
    policies: dict[tuple[int, str, str], str] = {}
    for step_id, step_kinds in kinds.items():
        step = snap.steps[step_id]
        for page_id, version_id, _ in step.variants:
            name = artifact_name(page_id, version_id)
            for kind in sorted(step_kinds):
                path = sites_dir() / str(step_id) / kind / f"{name}.html"
                policy_path = path.with_suffix(".csp")
                if path.exists() and policy_path.exists():
                    # Immutable: written once, with its policy beside it.
                    policies[(step_id, kind, name)] = policy_path.read_text()
                    continue
                html = artifact_html(version_id, kind, step.funnel_slug)
                policy = csp.version_policy(version_id, html)
                _atomic_write(policy_path, policy.encode())
                _atomic_write(path, html.encode())
                policies[(step_id, kind, name)] = policy
    return policies


def artifacts_prune(snap: Snapshot, *, keep_seconds: float = 300.0) -> int:
    """Delete files no longer served, once older than ``keep_seconds``.

    The grace period lets a page that was just swapped finish for visitors whose
    request started on the old configuration.
    """
    live = {
        (str(step_id), artifact_name(p, v))
        for step_id, step in snap.steps.items()
        for p, v, _ in step.variants
    }
    removed = 0
    base = sites_dir()
    if not base.exists():
        return 0
    cutoff = time.time() - keep_seconds
    for path in [*base.glob("*/*/*.html"), *base.glob("*/*/*.csp")]:
        step_dir = path.parent.parent.name
        if (step_dir, path.stem) in live:
            continue
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            pass
    return removed


# ------------------------------------------------------------------ config
def _q(value: str) -> str:
    """A string for nginx's configuration: double-quoted, escaped."""
    if "$" in value or "\n" in value or "\r" in value:
        raise ValueError(f"cannot put {value!r} in the nginx configuration")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _percentages(weights: list[int]) -> list[str]:
    """split_clients percentages for weights (two decimals, summing below 100)."""
    total = sum(weights)
    shares = [w * 10000 // total for w in weights]
    return [f"{s // 100}.{s % 100:02d}%" for s in shares]


def config_render(snap: Snapshot, policies: dict[tuple[int, str, str], str]) -> str:
    base = root()
    media = Path(settings.MEDIA_ROOT)
    secure = " secure" if settings.PUBLIC_SCHEME == "https" else ""
    cookie_secure = "; Secure" if secure else ""
    log_json = ",".join(f'"{k}":"{v}"' for k, v in LOG_FIELDS.items())
    lines = [
        "# Generated by pages/edge.py (manage.py edge_sync): do not edit by hand.",
        *([f"user {settings.EDGE_USER};"] if settings.EDGE_USER else []),
        f"worker_processes {settings.EDGE_WORKERS};",
        f"pid {base}/nginx.pid;",
        f"error_log {base}/logs/error.log warn;",
        "events { worker_connections 4096; }",
        "http {",
        "  types { text/html html; image/webp webp; image/png png; image/jpeg jpg;"
        " image/gif gif; image/svg+xml svg; text/css css;"
        " application/javascript js; }",
        "  default_type application/octet-stream;",
        "  sendfile on; tcp_nopush on; keepalive_timeout 30; server_tokens off;",
        "  charset utf-8;",
        # Keys are "<method> <host><path>": room for long host names and paths.
        "  map_hash_bucket_size 512; map_hash_max_size 1048576;",
        f"  client_body_temp_path {base}/tmp/body;",
        f"  proxy_temp_path {base}/tmp/proxy;",
        f"  fastcgi_temp_path {base}/tmp/fastcgi;",
        f"  uwsgi_temp_path {base}/tmp/uwsgi;",
        f"  scgi_temp_path {base}/tmp/scgi;",
        "  client_max_body_size 25m;",
        "  access_log off;",
        f"  log_format {LOG_FORMAT_NAME} escape=json '{{{log_json}}}';",
        # The visitor's address behind a trusted proxy (Caddy): realip, as the app's
        # TRUSTED_PROXIES says.
        *[f"  set_real_ip_from {net};" for net in settings.TRUSTED_PROXIES],
        *(
            ["  real_ip_header X-Forwarded-For;", "  real_ip_recursive on;"]
            if settings.TRUSTED_PROXIES
            else []
        ),
        "  map $http_x_forwarded_proto $edge_proto {",
        '    "" $scheme;',
        "    default $http_x_forwarded_proto;",
        "  }",
        '  map "$request_method $host$uri" $edge_route {',
        '    default "";',
    ]
    for host in sorted(snap.routes):
        for uri, step_id, kind in sorted(snap.routes[host]):
            for method in ("GET", "HEAD"):
                lines.append(f"    {_q(f'{method} {host}{uri}')} {step_id}/{kind};")
    lines.append("  }")
    used = sorted(
        {(step_id, kind) for e in snap.routes.values() for _, step_id, kind in e}
    )
    lines += ["  map $edge_route $edge_step {", '    default "";']
    lines += [f"    {step_id}/{kind} {step_id};" for step_id, kind in used]
    lines += ["  }", "  map $edge_route $edge_kind {", '    default "";']
    lines += [f"    {step_id}/{kind} {kind};" for step_id, kind in used]
    lines.append("  }")
    variant_map = ["  map $edge_step $edge_variant {", '    default "";']
    for step_id, step in sorted(snap.steps.items()):
        names = [artifact_name(p, v) for p, v, _ in step.variants]
        if len(names) == 1:
            variant_map.append(f"    {step_id} {names[0]};")
            continue
        shares = _percentages([w for _, _, w in step.variants])
        lines.append(
            f'  split_clients "${{uid_got}}${{uid_set}}:{step_id}" $edge_v{step_id} {{'
        )
        for share, name in zip(shares[:-1], names[:-1], strict=True):
            lines.append(f"    {share} {name};")
        lines.append(f"    * {names[-1]};")
        lines.append("  }")
        variant_map.append(f"    {step_id} $edge_v{step_id};")
    variant_map.append("  }")
    lines += variant_map
    lines.append('  map "$edge_route/$edge_variant" $edge_csp {')
    lines.append('    default "";')
    for (step_id, kind, name), policy in sorted(policies.items()):
        try:
            lines.append(f"    {_q(f'{step_id}/{kind}/{name}')} {_q(policy)};")
        except ValueError:
            logger.warning("edge: policy of %s not expressible; app serves it", name)
    lines += [
        "  }",
        "  upstream of_app {",
        f"    server {settings.EDGE_UPSTREAM};",
        "    keepalive 32;",
        "  }",
        "  server {",
        f"    listen {settings.EDGE_LISTEN} default_server;",
        "    server_name _;",
        f"    root {sites_dir()};",
        "    location / {",
        "      error_page 418 = @app;",
        '      if ($edge_route = "") { return 418; }',
        "      userid on;",
        f"      userid_name {VISITOR_COOKIE};",
        "      userid_path /;",
        "      userid_expires 365d;",
        f"      userid_flags httponly samesite=lax{secure};",
        f"      access_log {log_path()} {LOG_FORMAT_NAME} buffer=64k flush=1s;",
        "      default_type text/html;",
        '      add_header Cache-Control "private, no-cache" always;',
        "      add_header Content-Security-Policy $edge_csp always;",
        "      add_header X-Content-Type-Options nosniff always;",
        '      add_header Referrer-Policy "strict-origin-when-cross-origin" always;',
        f'      add_header Set-Cookie "{TOKEN_COOKIE_PREFIX}$edge_step=$request_id;'
        f' Path=/; Max-Age=86400; HttpOnly; SameSite=Lax{cookie_secure}";',
        "      try_files /$edge_route/$edge_variant.html @app;",
        "    }",
        "    location ^~ /media/ {",
        f"      alias {media}/;",
        '      add_header Cache-Control "public, max-age=31536000, immutable";',
        "      add_header X-Content-Type-Options nosniff;",
        "    }",
        "    location @app {",
        "      proxy_pass http://of_app;",
        "      proxy_http_version 1.1;",
        '      proxy_set_header Connection "";',
        "      proxy_set_header Host $http_host;",
        "      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "      proxy_set_header X-Forwarded-Proto $edge_proto;",
        "      proxy_set_header X-Request-Id $request_id;",
        "    }",
        "  }",
        "}",
        "",
    ]
    return "\n".join(lines)


def _dirs() -> None:
    for sub in ("sites", "logs", "tmp"):
        (root() / sub).mkdir(parents=True, exist_ok=True)


def nginx_binary() -> str | None:
    return settings.EDGE_NGINX or shutil.which("nginx")


def config_test(path: Path) -> None:
    binary = nginx_binary()
    if not binary:
        return  # compose: the watcher next to nginx tests before it reloads
    result = subprocess.run(
        [binary, "-t", "-q", "-c", str(path), "-p", str(root())],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if result.returncode != 0:
        raise EdgeError(result.stderr.strip() or "nginx -t failed")


def nginx_reload() -> bool:
    """Tell a running nginx to load the new configuration; False if none runs."""
    if settings.EDGE_RELOAD != "signal":
        return False
    try:
        pid = int((root() / "nginx.pid").read_text().strip())
        os.kill(pid, signal.SIGHUP)
    except (FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
        return False
    return True


def edge_sync(*, prune: bool = True) -> bool:
    """Bring the files and nginx's configuration in line with what is live.

    Returns True when the configuration changed (and nginx was asked to reload).
    Raises EdgeError when nginx refuses the new configuration (the old one stays).
    """
    if not settings.EDGE_ENABLED:
        return False
    with _lock:
        _dirs()
        snap = snapshot()
        policies = artifacts_write(snap)
        text = config_render(snap, policies)
        path = conf_path()
        old = path.read_text() if path.exists() else None
        changed = old != text
        if changed:
            digest = hashlib.sha256(text.encode()).hexdigest()[:12]
            tmp = path.with_name(f".nginx-{digest}.conf")
            tmp.write_text(text)
            try:
                config_test(tmp)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            os.replace(tmp, path)
            nginx_reload()
        if prune:
            artifacts_prune(snap)
        return changed


def edge_sync_quietly() -> None:
    """edge_sync for on_commit hooks: a refused config is logged, never raised."""
    try:
        edge_sync()
    except Exception:
        logger.exception("edge: could not update the published files")
