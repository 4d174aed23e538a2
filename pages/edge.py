"""The published artifact and the nginx edge that serves it.

Publishing writes each live step variant to a folder under ``EDGE_ROOT/sites/``:
``<step>/s/v/<page>-<version>/index.html`` for workspace subdomains and
``<step>/d/v/<page>-<version>/index.html`` for a custom domain (whose links lose the
funnel's prefix). Folders are immutable: a new version is a new name, written under a
temporary name and renamed, so nginx never sends half a page. The per-view part of a
page, its form token, is not in the bytes: forms carry ``EDGE_FORM_TOKEN`` and the
visitor gets the view's request id in a cookie instead (leads.spam checks it against
the logged view).

Which variant a request gets is decided by symbolic links next to them, swapped
atomically (a new link renamed over the old one), so weights change without touching
nginx's configuration:

- a step with one variant has none: the configuration names its folder;
- a split test: ``b/00`` … ``b/99``, one link per bucket, each to a variant, as many
  buckets per variant as its share of the weights (at least one when its weight is
  above 0); a weight change moves as few buckets as it can. nginx puts each visitor
  in a bucket per step (``split_clients`` on the visitor id and the step);
- ``p/<page>`` -> its variant while that variant is served (weight above 0): the
  ``ofp<step>`` cookie nginx sets with the page keeps a returning visitor on the
  variant they saw, whatever the weights became since (until it is paused).

nginx resolves the folder it served from (``$realpath_root``) to learn the variant:
that is what the view's log line and the page's CSP header name.

``edge_sync()`` runs after every change that bumps the serving generation (publish,
unpublish, rollback, variants, weights, domains) and from ``manage.py edge_sync``. It
writes the missing folders, the links, and a complete nginx configuration (core
modules only):

- ``map "$request_method $host$uri"`` routes a live page's GET/HEAD to its step,
  for workspace subdomains and custom domains alike; anything else (form posts,
  robots.txt, the app's 404s) goes to the app with ``proxy_pass``;
- ``userid`` sets the visitor cookie (``ofv``);
- ``try_files`` sends the file (sendfile: the bytes are never scanned);
- one JSON ``access_log`` line per view (``escape=json``, buffered, flushed every
  second) is the view's only record: the shipper (analytics.shipper) stores it.

The configuration is swapped safely: written to a temporary file, checked with
``nginx -t`` (when an nginx binary is at hand), renamed, then nginx is told to reload
(``EDGE_RELOAD``: ``signal`` sends SIGHUP to the pid in ``EDGE_ROOT/nginx.pid``;
``watch`` leaves it to a watcher next to nginx, as in compose). A reload is graceful:
requests in flight finish on the old workers. Changes to what is routed (a publish
that adds a step, a variant, a domain or a new version of a step's only variant;
unpublishing) change the configuration; on a split test, a new version of a
variant, weights, pausing and resuming a variant only swap links. The hash sizes
of the maps are computed from their keys (``hash_sizes``): host names of up to 253
characters load without nginx's warnings.
"""

from __future__ import annotations

import contextlib
import fcntl
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
    # Every step with a published variant; variants with weight 0 (paused) too:
    # they keep their folder, so resuming one needs no new configuration.
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
            archived_at__isnull=True,
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
    # A step nobody may see (every variant paused) is left to the app.
    steps = {k: v for k, v in steps.items() if any(w > 0 for *_, w in v.variants)}
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
BUCKETS = 100  # a split test's resolution: 1 % of the visitors


def artifact_name(page_id: int, version_id: int) -> str:
    return f"{page_id}-{version_id}"


def step_dir(step_id: int, kind: str) -> Path:
    return sites_dir() / str(step_id) / kind


def artifact_path(step_id: int, kind: str, page_id: int, version_id: int) -> Path:
    """The file nginx sends for a variant (kind "s": subdomain, "d": domain)."""
    name = artifact_name(page_id, version_id)
    return step_dir(step_id, kind) / "v" / name / "index.html"


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


def _atomic_link(path: Path, target: str) -> bool:
    """Point the symbolic link ``path`` at ``target``; True when it changed.

    A new link renamed over the old one: a request sees the old or the new
    target, never no file.
    """
    with contextlib.suppress(OSError):
        if os.readlink(path) == target:
            return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{path.name}-{os.getpid()}-{threading.get_ident()}")
    tmp.unlink(missing_ok=True)
    os.symlink(target, tmp)
    os.replace(tmp, path)
    return True


def artifact_html(version_id: int, kind: str, funnel_slug: str) -> str:
    html = version_html(version_id=version_id)
    if kind == "d":
        html = html.replace(f'"/{funnel_slug}/', '"/')
    return html.replace(FORM_TOKEN_PLACEHOLDER, EDGE_FORM_TOKEN)


def _kinds(snap: Snapshot) -> dict[int, list[str]]:
    kinds: dict[int, set[str]] = {}
    for entries in snap.routes.values():
        for _, step_id, kind in entries:
            kinds.setdefault(step_id, set()).add(kind)
    return {step_id: sorted(found) for step_id, found in kinds.items()}


def artifacts_write(snap: Snapshot) -> dict[tuple[int, str, str], str]:
    """Write the folders the snapshot serves; return each one's CSP.

    Keyed by (step, kind, artifact name). Existing folders are kept (immutable).
    """
    policies: dict[tuple[int, str, str], str] = {}
    for step_id, step_kinds in _kinds(snap).items():
        step = snap.steps[step_id]
        for page_id, version_id, _ in step.variants:
            name = artifact_name(page_id, version_id)
            for kind in step_kinds:
                folder = step_dir(step_id, kind) / "v" / name
                policy_path = folder / "policy.csp"
                if policy_path.exists():
                    # Immutable: written once, its policy last.
                    policies[(step_id, kind, name)] = policy_path.read_text()
                    continue
                html = artifact_html(version_id, kind, step.funnel_slug)
                policy = csp.version_policy(version_id, html)
                # Built beside, then renamed: the folder appears complete.
                folder.parent.mkdir(parents=True, exist_ok=True)
                tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".tmp-"))
                os.chmod(tmp, 0o755)
                _atomic_write(tmp / "index.html", html.encode())
                _atomic_write(tmp / "policy.csp", policy.encode())
                try:
                    os.rename(tmp, folder)
                except OSError:
                    shutil.rmtree(tmp, ignore_errors=True)  # written meanwhile
                policies[(step_id, kind, name)] = policy
    return policies


def buckets_assign(
    variants: list[tuple[int, int, int]], current: list[int | None]
) -> list[int]:
    """The page each of the BUCKETS buckets serves, for the variants' weights.

    Each served variant (weight above 0) gets its share of the buckets (largest
    remainders, at least one); buckets keep the page they had (``current``, by
    bucket) while that page still needs them, so a weight change moves only the
    visitors it must.
    """
    served = [(page, weight) for page, _, weight in variants if weight > 0]
    total = sum(weight for _, weight in served)
    exact = {page: BUCKETS * weight / total for page, weight in served}
    want = {page: max(1, int(share)) for page, share in exact.items()}
    by_remainder = sorted(served, key=lambda pw: (exact[pw[0]] % 1, -pw[0]))
    page: int | None  # None: a bucket of ``current`` with no page yet
    while sum(want.values()) < BUCKETS:
        page = by_remainder.pop()[0]
        want[page] += 1
    while sum(want.values()) > BUCKETS:  # the minimum of one overshot
        page = max(want, key=lambda p: (want[p] - exact[p], p))
        want[page] -= 1
    assigned: list[int | None] = []
    for page in current:
        if page in want and want[page] > 0:
            want[page] -= 1
            assigned.append(page)
        else:
            assigned.append(None)
    needy = [page for page, count in want.items() for _ in range(count)]
    return [page if page is not None else needy.pop(0) for page in assigned]


def _link_page(path: Path) -> int | None:
    try:
        return int(os.readlink(path).rsplit("/", 1)[-1].split("-", 1)[0])
    except (OSError, ValueError):
        return None


def links_write(snap: Snapshot) -> int:
    """Point each step's links at the variants to serve; return links changed."""
    changed = 0
    for step_id, step_kinds in _kinds(snap).items():
        step = snap.steps[step_id]
        names = {p: artifact_name(p, v) for p, v, _ in step.variants}
        for kind in step_kinds:
            base = step_dir(step_id, kind)
            if len(step.variants) == 1:
                continue  # the configuration names its folder
            bucket = [base / "b" / f"{n:02d}" for n in range(BUCKETS)]
            pages = buckets_assign(step.variants, [_link_page(b) for b in bucket])
            for path, page in zip(bucket, pages, strict=True):
                changed += _atomic_link(path, f"../v/{names[page]}")
            served = {p for p, _, w in step.variants if w > 0}
            for page, name in names.items():
                pin = base / "p" / str(page)
                if page in served:
                    changed += _atomic_link(pin, f"../v/{name}")
                elif pin.is_symlink():
                    pin.unlink()  # paused: its returning visitors get a bucket
                    changed += 1
            for pin in (base / "p").iterdir():
                if pin.name.isdigit() and int(pin.name) not in names:
                    pin.unlink()  # removed
                    changed += 1
    return changed


def artifacts_prune(snap: Snapshot, *, keep_seconds: float = 300.0) -> int:
    """Delete variant folders no longer served, once older than ``keep_seconds``.

    The grace period lets a page that was just swapped finish for visitors whose
    request started on the old links or configuration.
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
    # Files of the layout before variant folders (<step>/<kind>/<name>.html).
    for path in [*base.glob("*/*/*.html"), *base.glob("*/*/*.csp")]:
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
    for folder in base.glob("*/*/v/*"):
        step_name = folder.parent.parent.parent.name
        if (step_name, folder.name) in live:
            continue
        try:
            if folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder)
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


# nginx's hash tables (ngx_hash_init), as the map module builds them: a key's
# element takes a pointer + its length + 2 bytes, rounded to the pointer size; a
# bucket ends with a pointer; nginx tries table sizes upwards from a start derived
# from the number of keys (or max_size - 1000 for a large max_size) and warns when
# none up to max_size keeps every bucket within map_hash_bucket_size.
_PTR = 8
_CACHELINE = 64
_MAX_BUCKET = 65536 - _CACHELINE


def _elt_size(key: bytes) -> int:
    return _PTR + ((len(key) + 2 + _PTR - 1) & ~(_PTR - 1))


def _ngx_hash(key: bytes) -> int:
    value = 0
    for byte in key.lower():  # map keys are matched ignoring case
        value = (value * 31 + byte) & 0xFFFFFFFFFFFFFFFF
    return value


def _fits(hashed: list[tuple[int, int]], size: int, room: int) -> bool:
    fill = [0] * size
    for key, elt in hashed:
        at = key % size
        fill[at] += elt
        if fill[at] > room:
            return False
    return True


def _first_fit(
    hashed: list[tuple[int, int]], room: int, start: int, limit: int
) -> int | None:
    """The first table size from ``start`` that nginx would accept, as it searches.

    Sizes whose buckets together hold fewer bytes than the keys cannot work:
    they are skipped (nginx tries and rejects them).
    """
    size = max(start, sum(elt for _, elt in hashed) // room, 1)
    while size <= limit:
        if _fits(hashed, size, room):
            return size
        size += 1
    return None


def _nginx_start(count: int, room: int, max_size: int) -> int:
    start = count // (room // (2 * _PTR)) or 1
    if max_size > 10000 and count and max_size // count < 100:
        start = max_size - 1000
    return start


def hash_sizes(maps: list[list[bytes]]) -> tuple[int, int]:
    """(map_hash_bucket_size, map_hash_max_size) that build every map cleanly.

    nginx warns ("could not build optimal map_hash, you should increase …") or
    refuses to start when a key does not fit a bucket, or no table size up to the
    maximum spreads the keys; custom domains (up to 253 characters) make long
    keys. A bucket holds about 32 average keys and at least two of the longest
    (rounded up to the cache line, as nginx does); the maximum is checked the way
    nginx searches, for every map.
    """
    hashed = [[(_ngx_hash(k), _elt_size(k)) for k in keys] for keys in maps]
    elts = [elt for table in hashed for _, elt in table]
    longest = max(elts, default=64)
    average = sum(elts) // len(elts) if elts else 64
    bucket = max(32 * average, 2 * longest) + _PTR
    bucket = min(_MAX_BUCKET, (bucket + _CACHELINE - 1) // _CACHELINE * _CACHELINE)
    while True:
        room = bucket - _PTR
        needed = [
            _first_fit(table, room, 1, limit=8 * len(table) + 1024) for table in hashed
        ]
        if all(found is not None for found in needed):
            max_size = max([512, *(n for n in needed if n is not None)])
            for _ in range(16):
                if all(
                    _first_fit(
                        table, room, _nginx_start(len(table), room, max_size), max_size
                    )
                    for table in hashed
                    if table
                ):
                    return bucket, max_size
                max_size += 1000
        if bucket >= _MAX_BUCKET:
            raise EdgeError("the routes do not fit nginx's map hash")
        bucket = min(_MAX_BUCKET, bucket * 2)


def config_render(snap: Snapshot, policies: dict[tuple[int, str, str], str]) -> str:
    base = root()
    media = Path(settings.MEDIA_ROOT)
    sites = sites_dir()
    secure = " secure" if settings.PUBLIC_SCHEME == "https" else ""
    cookie_secure = "; Secure" if secure else ""
    log_json = ",".join(f'"{k}":"{v}"' for k, v in LOG_FIELDS.items())
    route_keys: list[bytes] = []
    route_lines: list[str] = []
    for host in sorted(snap.routes):
        for uri, step_id, kind in sorted(snap.routes[host]):
            for method in ("GET", "HEAD"):
                key = f"{method} {host}{uri}"
                route_keys.append(key.encode())
                route_lines.append(f"    {_q(key)} {step_id}/{kind};")
    used = sorted(
        {(step_id, kind) for e in snap.routes.values() for _, step_id, kind in e}
    )
    split = sorted(s for s, step in snap.steps.items() if len(step.variants) > 1)
    single = {
        s: artifact_name(*step.variants[0][:2])
        for s, step in sorted(snap.steps.items())
        if len(step.variants) == 1
    }
    policy_lines: list[str] = []
    policy_keys: list[bytes] = []
    for (step_id, kind, name), policy in sorted(policies.items()):
        try:
            policy_lines.append(f"    {_q(f'{step_id}/{kind}/{name}')} {_q(policy)};")
            policy_keys.append(f"{step_id}/{kind}/{name}".encode())
        except ValueError:
            logger.warning("edge: policy of %s not expressible; app serves it", name)
    steps_keys = [str(s).encode() for s in snap.steps]
    route_step_keys = [f"{s}/{k}".encode() for s, k in used]
    bucket_size, max_size = hash_sizes(
        [route_keys, route_step_keys, steps_keys, policy_keys]
    )
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
        # Keys are "<method> <host><path>": sized from the longest and the count.
        f"  map_hash_bucket_size {bucket_size}; map_hash_max_size {max_size};",
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
        *route_lines,
        "  }",
        "  map $edge_route $edge_step {",
        '    default "";',
        *[f"    {step_id}/{kind} {step_id};" for step_id, kind in used],
        "  }",
        "  map $edge_route $edge_kind {",
        '    default "";',
        *[f"    {step_id}/{kind} {kind};" for step_id, kind in used],
        "  }",
        # Split tests: the visitor's bucket of the step (the links say which
        # variant it serves), unless the visitor's pinned variant is still served.
        '  split_clients "${uid_got}${uid_set}:$edge_step" $edge_bucket {',
        *[f"    1% {n:02d};" for n in range(BUCKETS - 1)],
        f"    * {BUCKETS - 1:02d};",
        "  }",
        "  map $edge_step $edge_pin_cookie {",
        '    default "";',
        *[f"    {step_id} $cookie_ofp{step_id};" for step_id in split],
        "  }",
        "  map $edge_pin_cookie $edge_pin {",
        "    default -;",
        '    "~^[0-9]{1,18}$" $edge_pin_cookie;',
        "  }",
        # The first folder tried: the pinned variant on a split step, else the
        # step's only variant (named here: a new version is a reload).
        "  map $edge_step $edge_first {",
        '    default "";',
        *[f"    {step_id} p/$edge_pin;" for step_id in split],
        *[f"    {step_id} v/{name};" for step_id, name in single.items()],
        "  }",
        # What was served: the only variant, or on a split step the folder's real
        # path (".../v/<page>-<version>"; a realpath() only there).
        "  map $edge_step $edge_variant {",
        "    default $edge_served_path;",
        *[f"    {step_id} {name};" for step_id, name in single.items()],
        "  }",
        "  map $realpath_root $edge_served_path {",
        '    default "";',
        '    "~/v/(?<edge_served>[0-9]+-[0-9]+)$" $edge_served;',
        "  }",
        "  map $edge_variant $edge_page {",
        '    default "";',
        '    "~^(?<edge_served_page>[0-9]+)-" $edge_served_page;',
        "  }",
        "  map $edge_step $edge_pin_set {",
        '    default "";',
        *[
            f'    {step_id} "ofp{step_id}=$edge_page; Path=/; Max-Age=31536000;'
            f' HttpOnly; SameSite=Lax{cookie_secure}";'
            for step_id in split
        ],
        "  }",
        '  map "$edge_route/$edge_variant" $edge_csp {',
        '    default "";',
        *policy_lines,
        "  }",
        "  upstream of_app {",
        f"    server {settings.EDGE_UPSTREAM};",
        "    keepalive 32;",
        "  }",
        "  server {",
        f"    listen {settings.EDGE_LISTEN} default_server;",
        "    server_name _;",
        "    location / {",
        "      error_page 418 = @app;",
        '      if ($edge_route = "") { return 418; }',
        *_serving(f"{sites}/$edge_route/$edge_first", "@edge_bucket", secure),
        "    }",
        "    location @edge_bucket {",
        *_serving(f"{sites}/$edge_route/b/$edge_bucket", "@app", secure),
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


def _serving(folder: str, fallback: str, secure: str) -> list[str]:
    """A location that sends a variant's file from ``folder`` (or ``fallback``)."""
    cookie_secure = "; Secure" if secure else ""
    return [
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
        "      add_header Set-Cookie $edge_pin_set;",
        f"      root {folder};",
        f"      try_files /index.html {fallback};",
    ]


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
        # One writer at a time across processes too (web workers' publishes and
        # the edge_sync command): the bucket links are read, then rewritten.
        lock_fd = os.open(root() / ".sync.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            return _edge_sync(prune=prune)
        finally:
            os.close(lock_fd)  # releases the lock


def _edge_sync(*, prune: bool) -> bool:
    snap = snapshot()
    policies = artifacts_write(snap)
    links_write(snap)
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
