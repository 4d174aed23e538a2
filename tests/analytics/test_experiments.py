"""Split-test results equal a direct recount from the raw events."""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from analytics import experiments, stats
from analytics.experiments import VariantSpec
from tests.factories import FunnelFactory, StepFactory
from tests.pages.splits import AMOUNTS, event, record

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
SIGN = {"order": 1, "bump": 1, "upsell_accept": 1, "refund": -1}


@pytest.fixture
def funnel(workspace):
    funnel = FunnelFactory(workspace=workspace, name="Split funnel")
    kinds = ["optin", "sales", "order", "upsell", "thankyou"]
    funnel.s = [
        StepFactory(funnel=funnel, kind=k, name=k.title(), position=i)
        for i, k in enumerate(kinds)
    ]
    return funnel


def _script(funnel, variants: dict[int, list[int]], n: int, seed: int) -> list[dict]:
    """Random journeys: each visitor may stop at any step; tested steps get a
    variant id per visitor (weighted), some see a second variant later, some have
    events before the window, a few views carry no variant id."""
    rng = random.Random(seed)
    optin, sales, order, upsell, thanks = funnel.s
    events: list[dict] = []
    for i in range(n):
        v = uuid.uuid4()
        at = T0 + timedelta(minutes=i)
        if i % 17 == 0:
            at -= timedelta(days=3)

        def add(step, kind, _v=v, _i=i):
            nonlocal at
            at += timedelta(seconds=rng.randint(1, 90))
            variant = None
            if kind == "view" and step.pk in variants:
                ids, weights = zip(*variants[step.pk], strict=True)
                variant = rng.choices(ids, weights)[0] if _i % 23 else None
            events.append(event(funnel, step, _v, kind, at, variant_id=variant))

        add(optin, "view")
        if rng.random() < 0.3:
            continue
        add(optin, "optin")
        if rng.random() < 0.2:
            add(optin, "optin")  # a lead re-submitting is one opt-in
        add(sales, "view")
        if rng.random() < 0.15:
            add(sales, "view")  # back again; a second variant id maybe
        if rng.random() < 0.4:
            continue
        add(order, "view")
        if rng.random() < 0.5:
            continue
        add(order, "order")
        if rng.random() < 0.3:
            add(order, "bump")
        add(upsell, "view")
        if rng.random() < 0.45:
            add(upsell, "upsell_accept")
        else:
            add(upsell, "upsell_decline")
        if rng.random() < 0.1:
            add(order, "refund")
        add(thanks, "view")
    return events


def _recount(events, funnel, step, goal, start, end):
    """docs/metrics.md split-test numbers straight from the raw events."""
    ids = [s.pk for s in funnel.s]
    later = set(ids[ids.index(step.pk) :])
    by_visitor = defaultdict(list)
    for e in events:
        by_visitor[e["visitor_id"]].append(e)
    out: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])
    for evs in by_visitor.values():
        evs.sort(key=lambda e: e["occurred_at"])
        views = [e for e in evs if e["step_id"] == step.pk and e["kind"] == "view"]
        if not views or not (start <= views[0]["occurred_at"] < end):
            continue
        variant = views[0]["variant_id"] or 0
        mine = [e for e in evs if e["step_id"] == step.pk]
        if goal == "funnel_goal":  # the funnel has an order form: an order
            converted = any(e["kind"] == "order" for e in evs)
        elif goal == "next_step":
            nxt = ids[ids.index(step.pk) + 1]
            converted = any(e["step_id"] == nxt and e["kind"] == "view" for e in evs)
        else:
            kind = {"optin": "optin", "order": "order", "accept": "upsell_accept"}[goal]
            converted = any(e["kind"] == kind for e in mine)
        revenue = sum(
            SIGN.get(e["kind"], 0) * AMOUNTS.get(e["kind"], 0)
            for e in evs
            if e["step_id"] in later
        )
        row = out[variant]
        row[0] += 1
        row[1] += int(converted)
        row[2] += revenue
    return out


@pytest.mark.parametrize(
    ("index", "goal"),
    [(0, "optin"), (1, "next_step"), (2, "order"), (3, "accept"), (4, "funnel_goal")],
)
def test_results_equal_a_recount_from_raw_events(funnel, index, goal):
    """Visitors, conversions of the step's goal and revenue to the end of the
    funnel per variant are exactly the recount; so are the statistics."""
    step = funnel.s[index]
    # Variant ids are page ids in production; any ids work for the analytics.
    specs = [
        VariantSpec(page_id=9001, label="Variant A", weight=50),
        VariantSpec(page_id=9002, label="Variant B", weight=30),
        VariantSpec(page_id=9003, label="Variant C", weight=20),
    ]
    events = _script(
        funnel, {step.pk: [(s.page_id, s.weight) for s in specs]}, n=400, seed=index
    )
    record(events)
    start, end = T0 - timedelta(hours=1), T0 + timedelta(hours=5)
    report = experiments.experiment_report(
        step=step, variants=specs, start=start, end=end
    )
    expected = _recount(events, funnel, step, goal, start, end)
    assert report.goal.key == goal
    got = {
        r.spec.page_id: [r.visitors, r.conversions, r.revenue_minor]
        for r in report.rows
    }
    assert got == {s.page_id: expected[s.page_id] for s in specs}
    assert report.unattributed == expected[0][0] > 0
    assert sum(v[0] for v in got.values()) > 30
    direct = stats.analyse(
        [
            stats.VariantInput(
                s.label, s.label, *expected[s.page_id][:3], weight=s.weight
            )
            for s in specs
        ]
    )
    for row, ref in zip(report.rows, direct.variants, strict=True):
        assert row.result.prob_beat_control == ref.prob_beat_control
        assert row.result.expected_loss == ref.expected_loss
        assert row.result.p_value == ref.p_value
        assert row.result.interval == ref.interval
        assert row.result.revenue_per_visitor_minor == ref.revenue_per_visitor_minor
    if goal in ("order", "accept"):
        assert any(r.revenue_minor for r in report.rows)


def test_window_counts_visitors_by_their_first_view(funnel):
    """A visitor whose first view of the step is before the window is not counted,
    even if they come back during it; their first variant is their assignment."""
    step = funnel.s[0]
    a, b = uuid.uuid4(), uuid.uuid4()
    record(
        [
            event(funnel, step, a, "view", T0 - timedelta(days=1), variant_id=1),
            event(funnel, step, a, "view", T0 + timedelta(minutes=1), variant_id=2),
            event(funnel, step, b, "view", T0 + timedelta(minutes=1), variant_id=1),
            event(funnel, step, b, "view", T0 + timedelta(minutes=2), variant_id=2),
            event(funnel, step, b, "optin", T0 + timedelta(minutes=3)),
        ]
    )
    specs = [VariantSpec(1, "A", 50), VariantSpec(2, "B", 50)]
    report = experiments.experiment_report(
        step=step, variants=specs, start=T0, end=T0 + timedelta(hours=1)
    )
    assert [(r.visitors, r.conversions) for r in report.rows] == [(1, 1), (0, 0)]


def _views(funnel, step, counts: dict[int, tuple[int, int]]) -> None:
    events = []
    for variant, (n, converted) in counts.items():
        for i in range(n):
            v = uuid.uuid4()
            at = T0 + timedelta(seconds=i)
            events.append(event(funnel, step, v, "view", at, variant_id=variant))
            if i < converted:
                events.append(event(funnel, step, v, "optin", at))
    record(events)


def test_srm_warning_on_a_broken_split(funnel):
    """50/50 weights but 300 vs 150 visitors: chi-square p ≈ 1.5e-12 < 0.001."""
    step = funnel.s[0]
    _views(funnel, step, {1: (300, 30), 2: (150, 20)})
    specs = [VariantSpec(1, "A", 50), VariantSpec(2, "B", 50)]
    report = experiments.experiment_report(
        step=step, variants=specs, start=T0, end=T0 + timedelta(hours=1)
    )
    assert report.srm_warning is True
    assert report.srm_p_value == pytest.approx(stats.chi_square_sf(2 * 75**2 / 225, 1))
    assert report.srm_p_value < 1e-11
    assert report.guidance.startswith("Sample-ratio mismatch")
    assert report.verdict == ""


def test_no_srm_warning_when_the_split_matches_unequal_weights(funnel):
    """70/30 weights and 210 vs 90 visitors is exactly the expected split."""
    step = funnel.s[0]
    _views(funnel, step, {1: (210, 21), 2: (90, 18)})
    specs = [VariantSpec(1, "A", 70), VariantSpec(2, "B", 30)]
    report = experiments.experiment_report(
        step=step, variants=specs, start=T0, end=T0 + timedelta(hours=1)
    )
    assert report.srm_warning is False
    assert report.srm_p_value == 1.0
    assert report.ready is False  # B has 90 < 100 visitors
    assert report.guidance == (
        "Keep running: need ~10 more visitors before calling a winner (at least "
        "100 per variant, and 5 conversions and 5 non-conversions each at the "
        "current rate)."
    )


def test_minimum_sample_guidance_counts_the_visitors_still_needed(funnel):
    """40 + 40 visitors at a pooled 12.5 %: each needs 100, so ~120 more."""
    step = funnel.s[0]
    _views(funnel, step, {1: (40, 4), 2: (40, 6)})
    specs = [VariantSpec(1, "A", 1), VariantSpec(2, "B", 1)]
    report = experiments.experiment_report(
        step=step, variants=specs, start=T0, end=T0 + timedelta(hours=1)
    )
    assert report.more_visitors_needed == 120
    assert "need ~120 more visitors" in report.guidance


def test_paused_and_removed_variants_are_shown_but_not_in_the_ratio_check(funnel):
    """A removed variant keeps its numbers (listed last, marked removed); the SRM
    check only compares the variants being served, against their weights."""
    step = funnel.s[0]
    _views(funnel, step, {1: (150, 30), 2: (150, 45), 3: (400, 10)})
    specs = [
        VariantSpec(1, "A", 50),
        VariantSpec(3, "C", 0, removed=True),
        VariantSpec(2, "B", 50),
    ]
    report = experiments.experiment_report(
        step=step, variants=specs, start=T0, end=T0 + timedelta(hours=1)
    )
    assert [(r.spec.label, r.visitors) for r in report.rows] == [
        ("A", 150),
        ("B", 150),
        ("C", 400),
    ]
    assert report.rows[2].spec.removed
    assert report.srm_warning is False
    assert report.ready is True
    assert report.rows[1].result.prob_beat_control > 0.95
    assert report.verdict.startswith("B is very likely better than A")
    snap = report.snapshot()
    assert [v["label"] for v in snap["variants"]] == ["A", "B", "C"]
    assert snap["variants"][2]["removed"] is True
