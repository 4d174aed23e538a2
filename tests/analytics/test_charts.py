from __future__ import annotations

import re

from analytics import charts


def test_funnel_svg_has_a_bar_per_step_and_escapes_labels():
    svg = charts.funnel_svg(
        [
            charts.FunnelBar("Opt-in", 1000),
            charts.FunnelBar("<script>", 100, "10.0 %"),
        ]
    )
    assert svg.count("<rect") == 2
    assert "&lt;script&gt;" in svg and "<script>" not in svg
    assert ">1.0k<" in svg and ">100<" in svg and "10.0 %" in svg


def test_line_and_sparkline_render_points():
    svg = charts.line_svg([("Views", [1, 5, 3])], ["Mon", "Tue", "Wed"])
    assert svg.count("<polyline") == 1 and "Tue" in svg
    assert charts.sparkline_svg([0, 2, 1]).count(",") == 3
    assert charts.line_svg([], []) == ""


def test_sankey_keeps_the_last_steps_exits_inside_the_picture():
    """Everyone leaves after the thank-you page: that band drops to the right of
    the last column and must fit in the viewBox, not be cut at its edge."""
    nodes = [
        charts.SankeyNode(1, "Opt-in", 10, exits=0),
        charts.SankeyNode(2, "Thanks", 10, exits=10),
    ]
    links = [
        charts.SankeyLink(None, 1, 10, "entry", "in"),
        charts.SankeyLink(1, 2, 10, "next", "on"),
        charts.SankeyLink(2, None, 10, "exit", "left"),
    ]
    svg = str(charts.sankey_svg(nodes, links, label="Flow", width=600))
    exit_path = re.search(
        r'<path d="([^"]+)" stroke="[^"]+" stroke-width="([\d.]+)"'
        r'[^>]*class="exit"',
        svg,
    )
    assert exit_path is not None
    xs = [float(x) for x in re.findall(r"([\d.]+),", exit_path.group(1))]
    assert max(xs) + float(exit_path.group(2)) / 2 <= 600
