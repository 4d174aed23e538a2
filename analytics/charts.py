"""Server-rendered SVG charts: a funnel with drop-off, trend lines, sparklines, bars.

Pure functions returning SVG markup (safe: every label is escaped), so dashboards need
no chart library and no outside host.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from django.utils.safestring import SafeString, mark_safe

PALETTE = ["#4f46e5", "#0ea5e9", "#10b981", "#f59e0b", "#ef4444", "#8b5cf6"]


@dataclass(frozen=True)
class FunnelBar:
    label: str
    value: int
    note: str = ""  # e.g. "42.0 % of Sales page"
    # Index of the bar this one is compared with (its comparison parent in the
    # funnel's graph); None: the previous bar, or none for the first.
    parent: int | None = None
    branch: bool = False  # off the main path (an upsell's decline branch)
    notes: tuple[str, ...] = ()  # more lines, e.g. where the visitors came from


def _fmt(n: float) -> str:
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f}M"
    if n >= 10_000:
        return f"{n / 1000:.0f}k"
    if n >= 1000:
        return f"{n / 1000:.1f}k"
    return f"{n:,.0f}"


def funnel_svg(
    bars: list[FunnelBar], *, width: int = 760, height: int | None = None
) -> SafeString:
    """Vertical bars per step, each with its share of the step it is compared
    with: a shaded drop-off from the bar before it, or an arc from a step further
    back (a decline branch from its upsell; the step where branches rejoin from
    where they split). Branch steps are drawn in another colour."""
    if not bars:
        return mark_safe("")
    lines = max(len(b.notes) + (1 if b.note else 0) for b in bars)
    pad_x, pad_top, pad_bottom = 16, 40, 40 + 15 * max(lines, 1)
    height = height or 226 + pad_bottom
    top = max(b.value for b in bars) or 1
    slot = (width - 2 * pad_x) / len(bars)
    bar_w = min(96.0, slot * 0.56)
    plot_h = height - pad_top - pad_bottom
    parts = [
        f'<svg class="chart chart-funnel" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="Funnel: visitors per step" '
        f'xmlns="http://www.w3.org/2000/svg">'
    ]
    tops: list[tuple[float, float]] = []
    for i, bar in enumerate(bars):
        h = plot_h * bar.value / top
        x = pad_x + slot * i + (slot - bar_w) / 2
        y = pad_top + plot_h - h
        parent = bar.parent if bar.parent is not None else (i - 1 if i else None)
        if parent is not None and parent == i - 1 and not bar.branch:
            # Compared with the bar just before: the shaded drop-off between them.
            px, py = tops[parent]
            parts.append(
                f'<path d="M{px + bar_w:.1f},{py:.1f} L{x:.1f},{y:.1f} '
                f"L{x:.1f},{pad_top + plot_h:.1f} L{px + bar_w:.1f},"
                f'{pad_top + plot_h:.1f} Z" fill="#eef0ff"/>'
            )
        elif parent is not None and parent < len(tops):
            # Compared with a step further back (a branch, or where branches
            # rejoin): an arc from that step over the bars in between.
            px, py = tops[parent]
            lift = min(py, y) - 18
            parts.append(
                f'<path class="parent-link" d="M{px + bar_w / 2:.1f},{py - 2:.1f} '
                f"C{px + bar_w / 2:.1f},{lift:.1f} {x + bar_w / 2:.1f},{lift:.1f} "
                f'{x + bar_w / 2:.1f},{y - 20:.1f}" fill="none" stroke="#a5b4fc" '
                f'stroke-width="1.5" stroke-dasharray="4 3"/>'
            )
        colour = PALETTE[3] if bar.branch else PALETTE[0]
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" '
            f'height="{max(h, 1):.1f}" '
            f'rx="6" fill="{colour}"><title>{escape(bar.label)}: '
            f"{bar.value:,}"
            + (f" ({escape(bar.note)})" if bar.note else "")
            + "</title></rect>"
        )
        parts.append(
            f'<text x="{x + bar_w / 2:.1f}" y="{y - 8:.1f}" text-anchor="middle" '
            f'class="v">{_fmt(bar.value)}</text>'
        )
        parts.append(
            f'<text x="{x + bar_w / 2:.1f}" y="{height - pad_bottom + 22}" '
            f'text-anchor="middle" class="l">{escape(bar.label[:22])}</text>'
        )
        for k, note in enumerate((bar.note, *bar.notes) if bar.note else bar.notes):
            ny = height - pad_bottom + 40 + 15 * k
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{ny}" text-anchor="middle" '
                f'class="n">{escape(note[:26])}</text>'
            )
        tops.append((x, y))
    parts.append("</svg>")
    return mark_safe("".join(parts))


def line_svg(
    series: list[tuple[str, list[float]]],
    labels: list[str],
    *,
    width: int = 760,
    height: int = 220,
) -> SafeString:
    """One line per series over shared x labels (days), with a light grid."""
    if not labels or not series:
        return mark_safe("")
    top = max((max(values) if values else 0) for _, values in series) or 1
    pad_l, pad_r, pad_t, pad_b = 44, 12, 14, 28
    plot_w, plot_h = width - pad_l - pad_r, height - pad_t - pad_b
    n = len(labels)

    def px(i: int) -> float:
        return pad_l + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def py(v: float) -> float:
        return pad_t + plot_h - plot_h * v / top

    parts = [
        f'<svg class="chart chart-line" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="Trend per day" xmlns="http://www.w3.org/2000/svg">'
    ]
    for k in range(5):
        v = top * k / 4
        y = py(v)
        parts.append(
            f'<line x1="{pad_l}" x2="{width - pad_r}" y1="{y:.1f}" y2="{y:.1f}" '
            f'class="grid"/><text x="{pad_l - 6}" y="{y + 4:.1f}" text-anchor="end" '
            f'class="a">{_fmt(v)}</text>'
        )
    step = max(1, n // 8)
    for i in range(0, n, step):
        parts.append(
            f'<text x="{px(i):.1f}" y="{height - 8}" text-anchor="middle" class="a">'
            f"{escape(labels[i])}</text>"
        )
    for s, (name, values) in enumerate(series):
        color = PALETTE[s % len(PALETTE)]
        points = " ".join(f"{px(i):.1f},{py(v):.1f}" for i, v in enumerate(values))
        parts.append(
            f'<polyline points="{points}" fill="none" stroke="{color}" '
            f'stroke-width="2.2" stroke-linejoin="round"><title>{escape(name)}'
            f"</title></polyline>"
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))


def sparkline_svg(
    values: list[float], *, width: int = 120, height: int = 32
) -> SafeString:
    if not values:
        return mark_safe("")
    top = max(values) or 1
    n = len(values)
    pts = " ".join(
        f"{(width - 2) * i / max(n - 1, 1) + 1:.1f},"
        f"{height - 2 - (height - 4) * v / top:.1f}"
        for i, v in enumerate(values)
    )
    return mark_safe(
        f'<svg class="sparkline" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" aria-hidden="true" xmlns="http://www.w3.org/2000/svg">'
        f'<polyline points="{pts}" fill="none" stroke="{PALETTE[0]}" '
        f'stroke-width="1.8"/></svg>'
    )


def hbar_svg(rows: list[tuple[str, float]], *, width: int = 360) -> SafeString:
    """Horizontal bars, e.g. visitors per traffic source."""
    if not rows:
        return mark_safe("")
    top = max(v for _, v in rows) or 1
    row_h, label_w = 28, 110
    height = row_h * len(rows)
    parts = [
        f'<svg class="chart chart-hbar" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="Traffic sources" xmlns="http://www.w3.org/2000/svg">'
    ]
    for i, (label, value) in enumerate(rows):
        y = i * row_h
        w = (width - label_w - 60) * value / top
        parts.append(
            f'<text x="0" y="{y + 18}" class="l">{escape(label[:16])}</text>'
            f'<rect x="{label_w}" y="{y + 6}" width="{max(w, 1):.1f}" height="16" '
            f'rx="4" fill="{PALETTE[(i + 1) % len(PALETTE)]}"/>'
            f'<text x="{label_w + w + 6:.1f}" y="{y + 18}" class="v">'
            f"{_fmt(value)}</text>"
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))


def interval_svg(
    rows: list[tuple[str, float, float, float]], *, width: int = 560
) -> SafeString:
    """Conversion rate per variant with its 95 % interval: a bar from the low to
    the high end and a dot at the observed rate, on one shared scale from 0."""
    if not rows:
        return mark_safe("")
    high = max(hi for _, _, _, hi in rows) or 0.01
    # A round axis: four ticks of 0.5 to 25 percentage points each.
    tick = next(
        t
        for t in (0.005, 0.01, 0.025, 0.05, 0.1, 0.125, 0.15, 0.2, 0.25)
        if 4 * t >= high
    )
    top = 4 * tick
    label_w, pad_r, row_h, axis_h = 120, 64, 34, 22
    plot_w = width - label_w - pad_r
    height = row_h * len(rows) + axis_h

    def px(v: float) -> float:
        return label_w + plot_w * v / top

    parts = [
        f'<svg class="chart chart-interval" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="Conversion rate per variant with 95 % interval" '
        f'xmlns="http://www.w3.org/2000/svg">'
    ]
    for k in range(5):
        v = top * k / 4
        x = px(v)
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="0" y2="{height - axis_h}" '
            f'class="grid"/><text x="{x:.1f}" y="{height - 6}" text-anchor="middle" '
            f'class="a">{v * 100:g} %</text>'
        )
    for i, (label, rate, lo, hi) in enumerate(rows):
        y = i * row_h + row_h / 2
        color = PALETTE[i % len(PALETTE)]
        parts.append(
            f'<text x="0" y="{y + 4:.1f}" class="l">{escape(label[:18])}</text>'
            f'<rect x="{px(lo):.1f}" y="{y - 5:.1f}" '
            f'width="{max(px(hi) - px(lo), 2):.1f}" height="10" rx="5" '
            f'fill="{color}" fill-opacity="0.25"><title>{escape(label)}: '
            f"{lo * 100:.1f} %–{hi * 100:.1f} %</title></rect>"
            f'<circle cx="{px(rate):.1f}" cy="{y:.1f}" r="5" fill="{color}"/>'
            f'<text x="{px(hi) + 8:.1f}" y="{y + 4:.1f}" class="v">'
            f"{rate * 100:.1f} %</text>"
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))


@dataclass(frozen=True)
class SankeyNode:
    key: int
    label: str
    value: int  # arrivals
    exits: int = 0
    lane: int = 0  # 0 main path, 1 off the main path (a decline branch)


@dataclass(frozen=True)
class SankeyLink:
    source: int | None  # None: entering the funnel
    target: int | None  # None: leaving it
    value: int
    kind: str  # next / accept / decline / skip / back / entry / exit
    title: str


LINK_COLOURS = {
    "next": "#6366f1",
    "accept": "#10b981",
    "decline": "#f59e0b",
    "skip": "#94a3b8",
    "back": "#a855f7",
    "entry": "#6366f1",
    "exit": "#ef4444",
    "more": "#94a3b8",
}


def sankey_svg(
    nodes: list[SankeyNode],
    links: list[SankeyLink],
    *,
    label: str,
    width: int = 980,
    height: int = 360,
) -> SafeString:
    """Steps as columns (position order, branch steps lower), flows as bands whose
    width is the number of moves; moves back arc under the steps, exits drop down
    in red. Every band and node carries a <title> with its numbers."""
    if not nodes:
        return mark_safe("")
    top = max([n.value for n in nodes] + [1])
    pad_x, pad_top, node_w = 24, 36, 16
    band_h = 150.0
    lanes_y = {0: pad_top, 1: pad_top + band_h + 70}
    scale = band_h / top
    # The last column's exits drop to its right: keep room for the whole band.
    exit_room = 24 + nodes[-1].exits * scale / 2 if nodes[-1].exits else 0
    col_w = (width - 2 * pad_x - node_w - exit_room) / max(len(nodes) - 1, 1)
    box: dict[int, tuple[float, float, float]] = {}  # key → x, y, h
    for i, node in enumerate(nodes):
        x = pad_x + col_w * i
        h = max(node.value * scale, 2.0)
        box[node.key] = (x, lanes_y[node.lane], h)
    out_off = dict.fromkeys(box, 0.0)
    in_off = dict.fromkeys(box, 0.0)
    parts = [
        f'<svg class="chart chart-sankey" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{escape(label)}" '
        f'xmlns="http://www.w3.org/2000/svg">'
    ]
    bands: list[str] = []
    for link in sorted(links, key=lambda lk: -lk.value):
        w = max(link.value * scale, 1.0)
        colour = LINK_COLOURS.get(link.kind, "#94a3b8")
        title = f"<title>{escape(link.title)}</title>"
        if link.source is None and link.target in box:
            x, y, _h = box[link.target]
            y0 = y + in_off[link.target] + w / 2
            in_off[link.target] += w
            bands.append(
                f'<path d="M{x - 20:.1f},{y0:.1f} L{x:.1f},{y0:.1f}" '
                f'stroke="{colour}" stroke-width="{w:.1f}" stroke-opacity=".35" '
                f'fill="none">{title}</path>'
            )
            continue
        if link.source not in box:
            continue
        sx, sy, sh = box[link.source]
        y1 = sy + out_off[link.source] + w / 2
        out_off[link.source] += w
        if link.target is None or link.target not in box:
            # Leaving the funnel here: a short drop under the step.
            x1 = sx + node_w
            bands.append(
                f'<path d="M{x1:.1f},{y1:.1f} C{x1 + 24:.1f},{y1:.1f} '
                f'{x1 + 24:.1f},{sy + sh + 26:.1f} {x1 + 24:.1f},{sy + sh + 34:.1f}" '
                f'stroke="{colour}" stroke-width="{w:.1f}" stroke-opacity=".28" '
                f'fill="none" class="exit">{title}</path>'
            )
            continue
        tx, ty, _th = box[link.target]
        y2 = ty + in_off[link.target] + w / 2
        in_off[link.target] += w
        x1, x2 = sx + node_w, tx
        if x2 > x1:
            mid = (x1 + x2) / 2
            d = (
                f"M{x1:.1f},{y1:.1f} C{mid:.1f},{y1:.1f} {mid:.1f},{y2:.1f} "
                f"{x2:.1f},{y2:.1f}"
            )
        else:
            # Back (or to itself): under the steps, from the source's right edge
            # round to the target's left edge.
            low = max(sy + sh, ty) + 40 + w
            d = (
                f"M{x1:.1f},{y1:.1f} C{x1 + 40:.1f},{y1:.1f} {x1 + 40:.1f},{low:.1f} "
                f"{(x1 + x2) / 2:.1f},{low:.1f} S{x2 - 40:.1f},{y2:.1f} "
                f"{x2:.1f},{y2:.1f}"
            )
        dash = ' stroke-dasharray="6 4"' if link.kind in ("skip", "back") else ""
        bands.append(
            f'<path d="{d}" stroke="{colour}" stroke-width="{w:.1f}" '
            f'stroke-opacity=".4" fill="none"{dash}>{title}</path>'
        )
    parts.extend(bands)
    for node in nodes:
        x, y, h = box[node.key]
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{node_w}" height="{h:.1f}" rx="3" '
            f'fill="{PALETTE[0] if node.lane == 0 else PALETTE[3]}">'
            f"<title>{escape(node.label)}: {node.value:,} arrivals, "
            f"{node.exits:,} left here</title></rect>"
        )
        anchor = "start" if x < width / 2 else "end"
        tx = x if anchor == "start" else x + node_w
        parts.append(
            f'<text x="{tx:.1f}" y="{y - 18:.1f}" text-anchor="{anchor}" class="l">'
            f"{escape(node.label[:24])}</text>"
            f'<text x="{tx:.1f}" y="{y - 5:.1f}" text-anchor="{anchor}" class="v">'
            f"{_fmt(node.value)}</text>"
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))
