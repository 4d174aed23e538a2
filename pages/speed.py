"""The page-speed budget: what a published page costs a visitor, measured at publish.

``measure`` reads the page's HTML as it will be served and adds up what a first
visit downloads: the HTML itself, its CSS (inline and linked), fonts, scripts
(head and footer code included), and images at the size the browser picks from
their ``srcset`` on a phone and on a desktop screen. It also lists outside
hosts the page would contact, images without dimensions (layout shift) and
render-blocking scripts, and turns all of that into a score out of 100 with the
fixes that would help most. Nothing is fetched from the network: local files
are measured on disk and outside resources are counted, not downloaded.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlparse

from django.conf import settings
from django.contrib.staticfiles import finders
from django.core.files.storage import default_storage

KB = 1024
# The viewports the budget is measured for (Lighthouse's phone and a laptop).
PHONE = (412, 1.75)
DESKTOP = (1350, 1.0)

_URL_IN_CSS = re.compile(r"url\(\s*['\"]?([^'\")]+)['\"]?\s*\)")


@dataclass
class Budget:
    """A workspace's limits (pages.models.SpeedBudget holds the stored values)."""

    mode: str = "warn"  # off | warn | block
    max_html_css_kb: int = 40
    max_first_view_image_kb: int = 200
    allow_blocking_scripts: bool = False


@dataclass
class Report:
    html_bytes: int = 0
    css_bytes: int = 0
    font_bytes: int = 0
    script_bytes: int = 0
    first_view_image_bytes: int = 0
    image_bytes: int = 0
    image_count: int = 0
    outside_hosts: list[str] = field(default_factory=list)
    images_without_size: int = 0
    render_blocking: list[str] = field(default_factory=list)
    score: int = 100
    fixes: list[str] = field(default_factory=list)
    over_budget: list[str] = field(default_factory=list)

    @property
    def html_css_bytes(self) -> int:
        return self.html_bytes + self.css_bytes

    @property
    def first_view_bytes(self) -> int:
        """Everything a visitor downloads before scrolling."""
        return (
            self.html_css_bytes
            + self.font_bytes
            + self.script_bytes
            + self.first_view_image_bytes
        )

    @property
    def grade(self) -> str:
        return "good" if self.score >= 90 else "fair" if self.score >= 50 else "poor"

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["first_view_bytes"] = self.first_view_bytes
        return data


# Local files ------------------------------------------------------------------


def _local_size(url: str) -> int | None:
    """Bytes of a /static/ or /media/ file on disk; None when not ours."""
    path = urlparse(url).path
    if path.startswith(settings.STATIC_URL):
        name = path[len(settings.STATIC_URL) :]
        found = finders.find(name)
        if found is None and settings.STATIC_ROOT:
            candidate = settings.STATIC_ROOT / name
            found = str(candidate) if candidate.exists() else None
        if found is None:
            # Hashed names (manifest storage) map back to the source file.
            found = finders.find(re.sub(r"\.[0-9a-f]{12}(\.\w+)$", r"\1", name))
        if isinstance(found, list):
            found = found[0] if found else None
        if found:
            with open(found, "rb") as fh:
                return len(fh.read())
        return 0
    if path.startswith(settings.MEDIA_URL):
        name = path[len(settings.MEDIA_URL) :]
        try:
            return default_storage.size(name)
        except (OSError, ValueError):
            return 0
    return None


def _is_outside(url: str) -> str:
    """The host of an absolute http(s) URL, or "" for our own and data: URLs."""
    parsed = urlparse(url.strip())
    if parsed.scheme in ("http", "https") or url.strip().startswith("//"):
        return (parsed.hostname or "").lower()
    return ""


# Responsive images ------------------------------------------------------------


def _slot_px(sizes: str, viewport: int) -> float:
    """The width (CSS px) the ``sizes`` attribute gives the image."""
    for entry in (sizes or "100vw").split(","):
        entry = entry.strip()
        m = re.match(r"\(\s*max-width:\s*(\d+)px\s*\)\s*(.+)$", entry)
        length = entry
        if m:
            if viewport > int(m.group(1)):
                continue
            length = m.group(2)
        length = length.strip()
        if length.endswith("vw"):
            return viewport * float(length[:-2]) / 100
        if length.endswith("px"):
            return float(length[:-2])
    return float(viewport)


def _pick(srcset: str, src: str, sizes: str, viewport: tuple[int, float]) -> str:
    candidates = []
    for part in (srcset or "").split(","):
        bits = part.strip().split()
        if len(bits) == 2 and bits[1].endswith("w") and bits[1][:-1].isdigit():
            candidates.append((int(bits[1][:-1]), bits[0]))
    if not candidates:
        return src
    needed = _slot_px(sizes, viewport[0]) * viewport[1]
    candidates.sort()
    return next((url for w, url in candidates if w >= needed), candidates[-1][1])


# The HTML walk ----------------------------------------------------------------


class _Walker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.in_head = True
        self.section = -1
        self.styles: list[str] = []
        self.stylesheets: list[str] = []
        self.scripts: list[tuple[str, bool, str]] = []  # (src, blocking, inline)
        self.images: list[dict[str, Any]] = []
        self.resources: list[str] = []  # every URL the page loads by itself
        self.backgrounds: list[tuple[str, int]] = []
        self._script: dict[str, Any] | None = None
        self._style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v or "") for k, v in attrs}
        if tag == "body":
            self.in_head = False
        elif tag == "section":
            self.section += 1
        if "style" in a:
            for url in _URL_IN_CSS.findall(a["style"]):
                self.backgrounds.append((url, self.section))
        if tag == "link" and "stylesheet" in a.get("rel", "").split():
            self.stylesheets.append(a.get("href", ""))
            self.resources.append(a.get("href", ""))
        elif tag == "link" and a.get("rel") in ("preload", "icon", "modulepreload"):
            if not a.get("href", "").startswith("data:"):
                self.resources.append(a.get("href", ""))
        elif tag == "script":
            src = a.get("src", "")
            blocking = (
                self.in_head
                and "async" not in a
                and "defer" not in a
                and a.get("type") != "module"
                and a.get("type", "text/javascript") in ("", "text/javascript")
            )
            self._script = {"src": src, "blocking": blocking and bool(src), "text": ""}
            if src:
                self.resources.append(src)
        elif tag == "style":
            self._style = True
            self.styles.append("")
        elif tag == "img":
            self.images.append(a)
            self.resources.append(a.get("src", ""))
            for part in a.get("srcset", "").split(","):
                if part.strip():
                    self.resources.append(part.strip().split()[0])
        elif tag in ("iframe", "video", "audio", "source", "embed") and a.get("src"):
            self.resources.append(a["src"])

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._script is not None:
            s = self._script
            self.scripts.append((s["src"], s["blocking"], s["text"]))
            self._script = None
        elif tag == "style":
            self._style = False
        elif tag == "head":
            self.in_head = False

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            self._script["text"] += data
        elif self._style:
            self.styles[-1] += data


def measure(html: str, budget: Budget | None = None) -> Report:
    budget = budget or Budget()
    walker = _Walker()
    walker.feed(html)
    walker.close()
    report = Report(html_bytes=len(html.encode()))

    outside: set[str] = set()
    for url in walker.resources:
        host = _is_outside(url)
        if host:
            outside.add(host)

    for href in walker.stylesheets:
        size = _local_size(href)
        report.css_bytes += size or 0
    fonts: set[str] = set()
    for css in walker.styles:
        for url in _URL_IN_CSS.findall(css):
            host = _is_outside(url)
            if host:
                outside.add(host)
            elif url.split("?")[0].endswith((".woff2", ".woff", ".ttf", ".otf")):
                fonts.add(url)
    report.font_bytes = sum(_local_size(url) or 0 for url in fonts)

    for src, blocking, text in walker.scripts:
        if src:
            report.script_bytes += _local_size(src) or 0
            if blocking:
                report.render_blocking.append(src)
        else:
            report.script_bytes += len(text.encode())

    seen: set[str] = set()
    first = {PHONE: 0, DESKTOP: 0}
    for img in walker.images:
        report.image_count += 1
        if not img.get("width") or not img.get("height"):
            report.images_without_size += 1
        eager = img.get("loading") != "lazy"
        for viewport in (PHONE, DESKTOP):
            url = _pick(
                img.get("srcset", ""),
                img.get("src", ""),
                img.get("sizes", ""),
                viewport,
            )
            size = _local_size(url) or 0
            if url not in seen:
                seen.add(url)
                report.image_bytes += size
            if eager:
                first[viewport] += size
    for url, section in walker.backgrounds:
        if _is_outside(url):
            continue
        size = _local_size(url) or 0
        report.image_bytes += size
        if section <= 0:
            first[PHONE] += size
            first[DESKTOP] += size
    # A visitor is on a phone or on a desktop: the budget takes the heavier.
    report.first_view_image_bytes = max(first.values())

    report.outside_hosts = sorted(outside)
    _score(report, budget)
    return report


def _score(report: Report, budget: Budget) -> None:
    """A score out of 100 and the fixes that would gain the most, largest first."""
    penalties: list[tuple[int, str]] = []
    limit = budget.max_html_css_kb * KB
    if report.html_css_bytes > limit:
        over = report.html_css_bytes - limit
        penalties.append(
            (
                min(30, 10 + over // (4 * KB)),
                f"HTML and CSS weigh {report.html_css_bytes / KB:.0f} KB, over the "
                f"{budget.max_html_css_kb} KB budget: shorten custom HTML and head "
                "code, "
                "or split the page.",
            )
        )
        report.over_budget.append("html_css")
    image_limit = budget.max_first_view_image_kb * KB
    if report.first_view_image_bytes > image_limit:
        over = report.first_view_image_bytes - image_limit
        penalties.append(
            (
                min(35, 10 + over // (20 * KB)),
                "Images above the fold weigh "
                f"{report.first_view_image_bytes / KB:.0f} KB "
                f"(budget {budget.max_first_view_image_kb} KB): use a smaller or "
                "simpler hero image, or move big images further down.",
            )
        )
        report.over_budget.append("images")
    if report.render_blocking:
        penalties.append(
            (
                15 * len(report.render_blocking),
                f"{len(report.render_blocking)} script(s) in the head block rendering "
                "(" + ", ".join(report.render_blocking[:2]) + "): add async or defer, "
                "or move them to the footer code.",
            )
        )
        if not budget.allow_blocking_scripts:
            report.over_budget.append("render_blocking")
    if report.outside_hosts:
        penalties.append(
            (
                min(20, 5 * len(report.outside_hosts)),
                f"The page contacts {len(report.outside_hosts)} outside host(s) ("
                + ", ".join(report.outside_hosts[:3])
                + "): each costs a connection and shares your visitors' data.",
            )
        )
    if report.images_without_size:
        penalties.append(
            (
                5 * report.images_without_size,
                f"{report.images_without_size} image(s) have no width and height: the "
                "page jumps while they load.",
            )
        )
    if report.font_bytes > 120 * KB:
        penalties.append(
            (
                5,
                f"Fonts weigh {report.font_bytes / KB:.0f} KB: a pair that uses one "
                "font "
                "for both headings and text loads half as much.",
            )
        )
    if report.script_bytes > 60 * KB:
        penalties.append(
            (
                min(15, report.script_bytes // (20 * KB)),
                f"Scripts weigh {report.script_bytes / KB:.0f} KB: remove tracking "
                "code you no longer use.",
            )
        )
    penalties.sort(key=lambda p: -p[0])
    report.score = max(0, 100 - sum(p for p, _ in penalties))
    report.fixes = [text for _, text in penalties[:4]]


def is_blocked(report: Report, budget: Budget) -> bool:
    return budget.mode == "block" and bool(report.over_budget)
