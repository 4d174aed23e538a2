"""Experiments, reports and rollups take the funnel's paths from funnels.paths.

Each test reproduces a case where the app's own rule disagreed with the funnel's
graph before they all asked one module.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from analytics import experiments, reports, rollups
from tests.analytics.test_rollups import _clean, _write
from tests.funnels.test_paths import DOWN_LAST, PAGES_ONLY, TWO_DOWNS, _build

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PERIOD = reports.ReportFilters(date(2026, 3, 1), date(2026, 3, 31))


def _views(funnel, journeys: list[list]) -> None:
    """One visitor per journey, viewing its steps a minute apart."""
    events = []
    for journey in journeys:
        visitor = uuid.uuid4()
        for i, step in enumerate(journey):
            events.append(
                {
                    "visitor": visitor,
                    "step": step.pk,
                    "kind": "view",
                    "funnel": funnel.pk,
                    "at": T0 + timedelta(minutes=i),
                }
            )
    _write(events, funnel.workspace_id)
    rollups.rollups_update()


def test_split_test_of_a_thank_you_before_an_off_path_downsell(workspace):
    """The thank-you's split test measures the funnel's goal, not "reached the
    downsell" that merely sits after it by position (only the upsell's decline
    leads there)."""
    funnel, s = _build(workspace, DOWN_LAST)
    steps = list(funnel.steps.order_by("position", "id"))
    goal = experiments.step_goal(step=s["thanks"], steps=steps)
    assert (goal.key, goal.next_step) == ("funnel_goal", None)


def test_second_downsell_is_compared_with_the_first(workspace):
    """Only who declined the first downsell sees the second: 3 of the 6, not 3 of
    the 10 who saw the upsell."""
    _clean()
    funnel, s = _build(workspace, TWO_DOWNS)
    order, up, down1, down2, thanks = (
        s[k] for k in ("order", "up", "down1", "down2", "thanks")
    )
    _views(
        funnel,
        [[order, up, thanks]] * 4
        + [[order, up, down1, thanks]] * 3
        + [[order, up, down1, down2, thanks]] * 3,
    )
    report = reports.funnel_report(workspace=workspace, funnel=funnel, filters=PERIOD)
    by_name = {r.step.name: r for r in report.steps}
    assert by_name["down2"].previous_unique == 6
    assert by_name["down2"].parent == down1
    assert by_name["down1"].previous_unique == 10
    assert by_name["thanks"].previous_unique == 10  # where the branches split


def test_a_funnel_of_pages_has_a_goal(workspace):
    """With no order form and no opt-in, reaching the last step is the goal
    (before: nobody ever converted)."""
    _clean()
    funnel, s = _build(workspace, PAGES_ONLY)
    _views(funnel, [[s["a"], s["b"], s["c"]]] * 2 + [[s["a"]]] * 3)
    report = reports.funnel_report(workspace=workspace, funnel=funnel, filters=PERIOD)
    assert report.totals.entered == 5
    assert report.totals.reached_goal == 2
    assert report.totals.seconds_to_goal == 2 * 120
