from __future__ import annotations

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
