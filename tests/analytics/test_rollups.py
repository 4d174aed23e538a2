"""Dashboard numbers equal a direct recount from raw events, however rollups run."""

from __future__ import annotations

import statistics
import threading
import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics import ingest, journeys, reports, rollups
from analytics.models import RollupState, Visitor
from tests.factories import FunnelFactory, StepFactory

BASE = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
KINDS = [
    "view",
    "view",
    "view",
    "optin",
    "order",
    "bump",
    "upsell_accept",
    "upsell_decline",
    "refund",
]
AMOUNTS = {"order": 2700, "bump": 900, "upsell_accept": 9700, "refund": 500}


def _write(events, workspace_id):
    lines = [
        ingest.event_line(
            event_id=e.get("id") or uuid.uuid4(),
            workspace_id=workspace_id,
            funnel_id=e["funnel"],
            step_id=e["step"],
            visitor_id=e["visitor"],
            kind=e["kind"],
            page_version_id=None,
            variant_id=e.get("variant"),
            amount_minor=AMOUNTS.get(e["kind"]),
            currency="USD",
            properties=None,
            occurred_at=e["at"],
            received_at=e["at"],
        )
        for e in events
    ]
    ingest.partitions_forget()  # partitions made in a rolled-back test are gone
    ingest.lines_write(lines, [])


def _clean():
    with connection.cursor() as c:
        for table in (
            "analytics_event",
            "analytics_funnelvisitor",
            "analytics_funnelvisitorstep",
            "analytics_cohortfunnelrollup",
            "analytics_cohortsteprollup",
            "analytics_stepdailyrollup",
            "analytics_funnelvisitorpath",
            "analytics_journeyrollup",
            "analytics_rollupstate",
        ):
            c.execute(f"DELETE FROM {table}")


def _recount(events, steps, entry_step, goal_kind, filters, sources):
    """docs/metrics.md, computed straight from the raw events."""
    per_visitor = defaultdict(list)
    for e in events:
        per_visitor[e["visitor"]].append(e)
    cohort = {}
    for v, evs in per_visitor.items():
        entered = min(e["at"] for e in evs).date()
        if not (filters.date_from <= entered <= filters.date_to):
            continue
        if filters.source and sources[v] != filters.source:
            continue
        cohort[v] = evs
    in_period = [
        e
        for e in events
        if filters.date_from <= e["at"].date() <= filters.date_to
        and (not filters.source or sources[e["visitor"]] == filters.source)
    ]
    out = {"entered": len(cohort)}
    out["bounced"] = sum(
        1
        for evs in cohort.values()
        if len(evs) == 1 and evs[0]["kind"] == "view" and evs[0]["step"] == entry_step
    )
    out["goal"] = sum(
        1 for evs in cohort.values() if any(e["kind"] == goal_kind for e in evs)
    )
    out["buyers"] = sum(
        1 for evs in cohort.values() if any(e["kind"] == "order" for e in evs)
    )
    revenue = sum(
        AMOUNTS.get(e["kind"], 0) * (-1 if e["kind"] == "refund" else 1)
        for e in in_period
        if e["kind"] in AMOUNTS
    )
    out["revenue"] = revenue
    out["orders"] = sum(1 for e in in_period if e["kind"] == "order")
    out["bumps"] = sum(1 for e in in_period if e["kind"] == "bump")
    out["optins"] = sum(
        1 for evs in cohort.values() if any(e["kind"] == "optin" for e in evs)
    )
    to_goal = [
        int(
            (
                min(e["at"] for e in evs if e["kind"] == goal_kind)
                - min(e["at"] for e in evs)
            ).total_seconds()
        )
        for evs in cohort.values()
        if any(e["kind"] == goal_kind for e in evs)
    ]
    out["seconds_to_goal"] = sum(to_goal)
    out["median_seconds_to_goal"] = (
        float(statistics.median(to_goal)) if to_goal else None
    )
    for s in steps:
        out[f"unique_{s}"] = sum(
            1
            for evs in cohort.values()
            if any(e["step"] == s and e["kind"] == "view" for e in evs)
        )
        out[f"optins_{s}"] = sum(
            1
            for evs in cohort.values()
            if any(e["step"] == s and e["kind"] == "optin" for e in evs)
        )
        out[f"views_{s}"] = sum(
            1 for e in in_period if e["step"] == s and e["kind"] == "view"
        )
    return out


RANK = {
    "view": 0,
    "optin": 1,
    "order": 2,
    "bump": 3,
    "upsell_accept": 4,
    "upsell_decline": 5,
    "refund": 6,
}
MARKS = (
    ("i", "optin"),
    ("o", "order"),
    ("a", "upsell_accept"),
    ("d", "upsell_decline"),
)


def _path_of(evs) -> str:
    """A visitor's path (FunnelVisitorPath's definition), from their raw events."""
    runs: list[tuple[int, set]] = []
    for e in sorted(evs, key=lambda e: (e["at"], e["step"], RANK[e["kind"]])):
        if not runs or runs[-1][0] != e["step"]:
            runs.append((e["step"], set()))
        runs[-1][1].add(e["kind"])
    tokens = [
        f"{step}" + "".join(m for m, kind in MARKS if kind in kinds)
        for step, kinds in runs
    ]
    if len(tokens) > 16:
        tokens = [*tokens[:15], "+"]
    return ">".join(tokens)


def _journey_recount(events, filters, sources, variant_of=None, variant=None):
    """path → (visitors, buyers, revenue) over the period's cohort, from raw events."""
    per_visitor = defaultdict(list)
    for e in events:
        per_visitor[e["visitor"]].append(e)
    out: dict[str, list[int]] = {}
    for v, evs in per_visitor.items():
        entered = min(e["at"] for e in evs).date()
        if not (filters.date_from <= entered <= filters.date_to):
            continue
        if filters.source and sources[v] != filters.source:
            continue
        if variant is not None and variant not in variant_of(evs):
            continue
        row = out.setdefault(_path_of(evs), [0, 0, 0])
        row[0] += 1
        row[1] += any(e["kind"] == "order" for e in evs)
        row[2] += sum(
            AMOUNTS.get(e["kind"], 0) * (-1 if e["kind"] == "refund" else 1)
            for e in evs
        )
    return {k: tuple(v) for k, v in out.items()}


def _variants_of(evs) -> set[int]:
    """The page variants a visitor saw: the variant of their first view of each
    step (FunnelVisitorPath.variants)."""
    first: dict[int, int] = {}
    for e in sorted(evs, key=lambda e: e["at"]):
        if e["kind"] == "view":
            first.setdefault(e["step"], e.get("variant") or 0)
    return {v for v in first.values() if v}


def _from_journey(jmap):
    return {p.key: (p.visitors, p.buyers, p.revenue_minor) for p in jmap.paths}


def _from_report(report, steps):
    t = report.totals
    out = {
        "entered": t.entered,
        "bounced": t.bounced,
        "goal": t.reached_goal,
        "buyers": t.buyers,
        "revenue": t.revenue_minor,
        "orders": t.orders,
        "bumps": t.bumps,
        "optins": t.optins,
        "seconds_to_goal": t.seconds_to_goal,
        "median_seconds_to_goal": t.median_seconds_to_goal,
    }
    by_id = {r.step.pk: r for r in report.steps}
    for s in steps:
        out[f"unique_{s}"] = by_id[s].unique_views
        out[f"optins_{s}"] = by_id[s].optins
        out[f"views_{s}"] = by_id[s].all_views
    return out


event_strategy = st.lists(
    st.tuples(
        st.integers(0, 7),
        st.integers(0, 2),
        st.sampled_from(KINDS),
        st.integers(0, 5 * 24 * 60),
    ),
    min_size=1,
    max_size=40,
)


@pytest.mark.django_db
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    raw=event_strategy,
    split=st.integers(0, 40),
    twice=st.booleans(),
    rebuild=st.booleans(),
    restart=st.booleans(),
    span=st.tuples(st.integers(0, 4), st.integers(0, 4)),
    source=st.sampled_from(["", "google", "(none)"]),
    variant=st.sampled_from([None, 1, 2]),
)
def test_report_equals_recount(
    workspace, monkeypatch, raw, split, twice, rebuild, restart, span, source, variant
):
    """For random streams (late events included), rolled up in two rounds, maybe
    twice, maybe with a range rebuild over events not folded yet, maybe starting over
    without a watermark: exact numbers. The journey map also for one page variant
    (views of the middle step are split-tested: variant 1 or 2 by visitor)."""
    # Every row here carries the test transaction's start as inserted_at; a long
    # run of examples outlasts MARGIN (how long rollups assume a writing
    # transaction stays open), which production transactions never do.
    monkeypatch.setattr(rollups, "MARGIN", timedelta(days=1))
    # Each example in its own savepoint, rolled back after, so the locks the
    # rollups' temporary tables take are released instead of piling up in the
    # test's one transaction ("out of shared memory" after enough examples).
    with transaction.atomic():
        _clean()
        funnel = FunnelFactory(workspace=workspace)
        steps = [
            StepFactory(funnel=funnel, kind=k, position=i).pk
            for i, k in enumerate(["optin", "order", "upsell"])
        ]
        visitors = [uuid.uuid4() for _ in range(8)]
        sources = {v: ("google" if i % 2 else "") for i, v in enumerate(visitors)}
        for v in visitors:
            Visitor.objects.create(
                workspace=workspace, public_id=v, utm_source=sources[v]
            )
        events = [
            {
                "visitor": visitors[v],
                "step": steps[s],
                "kind": k,
                "funnel": funnel.pk,
                "at": BASE + timedelta(minutes=m),
                # Sticky per visitor, as a split test assigns it.
                "variant": 1 + v % 2 if s == 1 and k == "view" else None,
            }
            for v, s, k, m in raw
        ]
        split %= len(events) + 1  # any cut, both rounds often non-empty
        _write(events[:split], workspace.pk)
        rollups.rollups_update()
        _write(events[split:], workspace.pk)
        if rebuild:  # recomputes buckets holding events the next run has not folded
            rollups.rollups_rebuild(
                date_from=date(2026, 3, 2), date_to=date(2026, 3, 5)
            )
        rollups.rollups_update()
        if twice:
            rollups.rollups_update()
        if restart:  # no watermark: everything is folded again from empty rollups
            RollupState.objects.all().delete()
            rollups.rollups_update()
        lo, hi = sorted(span)
        filters = reports.ReportFilters(
            date(2026, 3, 2) + timedelta(days=lo),
            date(2026, 3, 2) + timedelta(days=hi),
            source="" if source == "(none)" else source,
        )
        report = reports.funnel_report(
            workspace=workspace, funnel=funnel, filters=filters
        )
        expected = _recount(events, steps, steps[0], "order", filters, sources)
        assert _from_report(report, steps) == expected
        jmap = journeys.journey_map(workspace=workspace, funnel=funnel, filters=filters)
        assert _from_journey(jmap) == _journey_recount(events, filters, sources)
        assert jmap.entered == expected["entered"]
        if variant:
            jmap = journeys.journey_map(
                workspace=workspace, funnel=funnel, filters=filters, variant=variant
            )
            assert _from_journey(jmap) == _journey_recount(
                events, filters, sources, _variants_of, variant
            )
        transaction.set_rollback(True)


@pytest.mark.django_db
def test_thousand_hundred_fifty_ten_is_one_percent(workspace):
    """The docs/metrics.md example: 1000 → 100 → 50 → 10 buy reads 1 % exactly."""
    funnel = FunnelFactory(workspace=workspace)
    optin, sales, order = (
        StepFactory(funnel=funnel, kind=k, position=i).pk
        for i, k in enumerate(["optin", "sales", "order"])
    )
    events = []
    for i in range(1000):
        v = uuid.uuid4()
        at = BASE + timedelta(seconds=i)
        events.append(
            {"visitor": v, "step": optin, "kind": "view", "funnel": funnel.pk, "at": at}
        )
        if i < 100:
            events.append(
                {
                    "visitor": v,
                    "step": sales,
                    "kind": "view",
                    "funnel": funnel.pk,
                    "at": at,
                }
            )
        if i < 50:
            events.append(
                {
                    "visitor": v,
                    "step": order,
                    "kind": "view",
                    "funnel": funnel.pk,
                    "at": at,
                }
            )
        if i < 10:
            events.append(
                {
                    "visitor": v,
                    "step": order,
                    "kind": "order",
                    "funnel": funnel.pk,
                    "at": at,
                }
            )
    _write(events, workspace.pk)
    rollups.rollups_update()
    report = reports.funnel_report(
        workspace=workspace,
        funnel=funnel,
        filters=reports.ReportFilters(date(2026, 3, 1), date(2026, 3, 31)),
    )
    assert [s.unique_views for s in report.steps] == [1000, 100, 50]
    assert [s.conversion_from_previous for s in report.steps] == [None, 0.1, 0.5]
    assert report.totals.overall_conversion == 0.01
    assert report.totals.revenue_minor == 27000
    assert report.totals.epc == 27.0
    assert report.steps[1].drop_off_count == 900


@pytest.mark.django_db(transaction=True)
def test_concurrent_rollups_do_not_double_count(workspace):
    """Two workers running the rollup at once still give exact numbers."""
    funnel = FunnelFactory(workspace=workspace)
    step = StepFactory(funnel=funnel, kind="optin", position=0).pk
    events = [
        {
            "visitor": uuid.uuid4(),
            "step": step,
            "kind": k,
            "funnel": funnel.pk,
            "at": BASE + timedelta(minutes=i),
        }
        for i, k in enumerate(["view", "optin"] * 50)
    ]
    _write(events, workspace.pk)
    errors = []

    def run():
        try:
            rollups.rollups_update()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    report = reports.funnel_report(
        workspace=workspace,
        funnel=funnel,
        filters=reports.ReportFilters(date(2026, 3, 1), date(2026, 3, 31)),
    )
    assert report.totals.entered == 100
    assert report.steps[0].all_views == 50
    assert report.steps[0].optins == 50


@pytest.mark.django_db
def test_rebuild_command_recomputes_a_range(workspace):
    """Wiping the rollups and rebuilding the range gives the same report."""
    from django.core.management import call_command

    from analytics.models import CohortStepRollup, StepDailyRollup

    funnel = FunnelFactory(workspace=workspace)
    step = StepFactory(funnel=funnel, kind="optin", position=0).pk
    _write(
        [
            {
                "visitor": uuid.uuid4(),
                "step": step,
                "kind": "view",
                "funnel": funnel.pk,
                "at": BASE,
            }
        ],
        workspace.pk,
    )
    rollups.rollups_update()
    StepDailyRollup.objects.all().delete()
    CohortStepRollup.objects.all().delete()
    call_command("rollups_rebuild", "2026-03-01", "2026-03-05")
    report = reports.funnel_report(
        workspace=workspace,
        funnel=funnel,
        filters=reports.ReportFilters(date(2026, 3, 1), date(2026, 3, 31)),
    )
    assert (report.steps[0].all_views, report.steps[0].unique_views) == (1, 1)
