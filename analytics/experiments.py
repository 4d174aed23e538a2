"""Split-test results per step, from the per-visitor rollup facts (see docs/metrics.md).

A visitor is assigned to the variant of their first view of the step
(`FunnelVisitorStep.variant_id`, kept by `analytics.rollups`). Per variant:

- visitors: assigned visitors whose first view of the step falls in the window;
- conversions of the step's goal: opt-in step → opted in on it; order form → ordered
  on it; upsell / downsell → accepted; any other step → reached the next step (the
  funnel's goal for the last step);
- revenue to the end of the funnel: everything those visitors paid on this step and
  every later step (orders, bumps, upsells, minus refunds), per currency (amounts
  in different currencies are never added up).

The facts are rollups, so a read touches one row per assigned visitor; only the
money events of the visitors who paid (a few per cent) are read, to split their
revenue by currency. Like the dashboards, a small not-yet-rolled-up tail is folded
in first so the numbers are exact up to the last event. Variants are passed in by
the caller (analytics does not read page internals).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection
from django.utils import timezone
from django.utils.safestring import SafeString

from funnels import paths
from funnels.models import Step, StepKind

from . import charts, reports, rollups, stats
from .templatetags.report import chance_text

TAIL_INLINE_LIMIT = 20_000


@dataclass(frozen=True)
class VariantSpec:
    """One variant of the tested step, as the caller knows it."""

    page_id: int
    label: str
    weight: int
    removed: bool = False


@dataclass(frozen=True)
class Goal:
    key: str  # optin | order | accept | next_step | funnel_goal
    label: str
    next_step: Step | None = None


@dataclass
class VariantRow:
    spec: VariantSpec
    visitors: int
    conversions: int
    # In the report's one currency (0 when the revenue is in several).
    revenue_minor: int
    result: stats.VariantResult
    expected_share: float | None  # normalised weight among the served variants
    total: int | None = None
    revenue_by_currency: dict[str, int] = field(default_factory=dict)

    @property
    def observed_share(self) -> float | None:
        return self.visitors / self.total if self.total else None

    @property
    def revenue_per_visitor(self) -> list[tuple[str, float]]:
        """(currency, revenue per visitor) for each currency paid in."""
        return [
            (cur, amount / self.visitors if self.visitors else 0.0)
            for cur, amount in sorted(self.revenue_by_currency.items())
        ]


@dataclass
class ExperimentReport:
    step: Step
    goal: Goal
    start: datetime
    end: datetime
    rows: list[VariantRow]
    srm_p_value: float | None
    srm_warning: bool
    ready: bool
    guidance: str
    verdict: str
    more_visitors_needed: int | None
    unattributed: int = 0
    chart: SafeString = field(default_factory=lambda: SafeString(""))

    @property
    def control(self) -> VariantRow | None:
        return self.rows[0] if self.rows else None

    @property
    def currencies(self) -> list[str]:
        return sorted({c for r in self.rows for c in r.revenue_by_currency})

    @property
    def mixed_currency(self) -> bool:
        """Revenue in several currencies: shown per currency, never added up."""
        return len(self.currencies) > 1

    @property
    def currency(self) -> str:
        """The one currency revenue is in (USD when there is none yet)."""
        found = self.currencies
        return found[0] if len(found) == 1 else reports.LEGACY_CURRENCY

    def snapshot(self) -> dict[str, Any]:
        """JSON kept with an ended test: what the marketer saw when it ended."""
        return {
            "computed_at": timezone.now().isoformat(),
            "currency": self.currency,
            "mixed_currency": self.mixed_currency,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "goal": self.goal.label,
            "srm_p_value": self.srm_p_value,
            "srm_warning": self.srm_warning,
            "guidance": self.guidance,
            "verdict": self.verdict,
            "variants": [
                {
                    "page_id": r.spec.page_id,
                    "label": r.spec.label,
                    "weight": r.spec.weight,
                    "removed": r.spec.removed,
                    "control": r.result.is_control,
                    "visitors": r.visitors,
                    "conversions": r.conversions,
                    "rate": r.result.rate,
                    "interval": list(r.result.interval),
                    "revenue_minor": r.revenue_minor,
                    "revenue_per_visitor_minor": r.result.revenue_per_visitor_minor,
                    "revenue_by_currency": dict(sorted(r.revenue_by_currency.items())),
                    "revenue_per_visitor": [list(x) for x in r.revenue_per_visitor],
                    "prob_beat_control": r.result.prob_beat_control,
                    "expected_loss": r.result.expected_loss,
                    "p_value": r.result.p_value,
                }
                for r in self.rows
            ],
        }


def catch_up() -> None:
    """Fold a small not-yet-rolled-up tail in now (as the dashboards do); a large
    tail is the worker's job."""
    if rollups.rollup_tail_size() <= TAIL_INLINE_LIMIT:
        rollups.rollups_update(wait=False)


def step_goal(*, step: Step, steps: list[Step]) -> Goal:
    """The conversion a split test of ``step`` measures (next step and funnel goal
    from funnels.paths)."""
    if step.kind == StepKind.OPTIN:
        return Goal("optin", "Opt-in")
    if step.kind == StepKind.ORDER:
        return Goal("order", "Order")
    if step.kind in (StepKind.UPSELL, StepKind.DOWNSELL):
        return Goal("accept", "Offer accepted")
    nxt = paths.funnel_paths(funnel_id=step.funnel_id, steps=steps).next(step)
    if nxt is not None:
        return Goal("next_step", f"Reached “{nxt.name}”", nxt)
    return Goal("funnel_goal", "Reached the funnel's goal")


_GOAL_SQL = {
    "optin": "bool_or(step_id = %(step)s AND opted_in)",
    "order": "bool_or(step_id = %(step)s AND ordered)",
    "accept": "bool_or(step_id = %(step)s AND upsell_accepted)",
    "next_step": "bool_or(step_id = %(next_step)s AND first_view_at IS NOT NULL)",
    "funnel_goal": "bool_or(false)",
}

# One pass over the funnel's facts from the tested step on, grouped per visitor
# (the facts' unique index is (funnel, visitor, step), so no sort is needed).
_COUNT_SQL = (
    """
WITH v AS (
  SELECT visitor_id,
         min(variant_id) FILTER (WHERE step_id = %(step)s) AS variant_id,
         bool_or(step_id = %(step)s AND first_view_at >= %(start)s
                 AND first_view_at < %(end)s) AS assigned,
         {goal} AS converted,
         bool_or(revenue_minor <> 0 OR ordered OR upsell_accepted) AS paid
  FROM analytics_funnelvisitorstep
  WHERE workspace_id = %(workspace)s AND funnel_id = %(funnel)s
    AND step_id = ANY(%(later)s)
  GROUP BY visitor_id
), counts AS (
  SELECT v.variant_id, count(*) AS n, count(*) FILTER (WHERE v.converted) AS c
  FROM v
  {funnel_join}
  WHERE v.assigned
  GROUP BY v.variant_id
), money AS (
  -- Revenue per currency: the money events of the assigned visitors who paid.
  SELECT v.variant_id, coalesce(e.currency, '') AS currency, """
    + rollups.REVENUE_SQL.format(p="e.")
    + """ AS revenue
  FROM v
  JOIN analytics_event e
    ON e.workspace_id = %(workspace)s AND e.visitor_id = v.visitor_id
   AND e.funnel_id = %(funnel)s AND e.step_id = ANY(%(later)s)
   AND e.kind IN ('order', 'bump', 'upsell_accept', 'downsell_accept', 'refund')
  WHERE v.assigned AND v.paid
  GROUP BY 1, 2
)
SELECT c.variant_id, c.n, c.c, m.currency, m.revenue
FROM counts c LEFT JOIN money m ON m.variant_id IS NOT DISTINCT FROM c.variant_id
"""
)


@dataclass
class VariantCount:
    visitors: int = 0
    conversions: int = 0
    revenue_by_currency: dict[str, int] = field(default_factory=dict)


def variant_counts(
    *, step: Step, steps: list[Step], goal: Goal, start: datetime, end: datetime
) -> dict[int, VariantCount]:
    """variant id → visitors, conversions and revenue to the end of the funnel
    per currency."""
    # Revenue to the end of the funnel: on the steps a visitor can reach from here.
    answers = paths.funnel_paths(funnel_id=step.funnel_id, steps=steps)
    later = [s.pk for s in answers.reachable_from(step)]
    sql = _COUNT_SQL
    if goal.key == "funnel_goal":
        sql = sql.replace(
            "count(*) FILTER (WHERE v.converted)",
            "count(*) FILTER (WHERE fv.reached_goal)",
        )
        funnel_join = (
            "LEFT JOIN analytics_funnelvisitor fv "
            "ON fv.funnel_id = %(funnel)s AND fv.visitor_id = v.visitor_id"
        )
    else:
        funnel_join = ""
    sql = sql.format(goal=_GOAL_SQL[goal.key], funnel_join=funnel_join)
    params = {
        "workspace": step.workspace_id,
        "funnel": step.funnel_id,
        "step": step.pk,
        "start": start,
        "end": end,
        "next_step": goal.next_step.pk if goal.next_step else -1,
        "later": later,
    }
    out: dict[int, VariantCount] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for variant_id, visitors, conversions, currency, revenue in cursor:
            count = out.setdefault(variant_id, VariantCount(visitors, conversions))
            if currency is not None:
                reports.money_add(count.revenue_by_currency, currency, int(revenue))
    return out


def _needed(rows: list[VariantRow]) -> int | None:
    """Visitors still to come before every served variant meets the minimum sample
    (>= 100 visitors, >= 5 conversions and >= 5 non-conversions at the pooled rate);
    None when there is no conversion yet to estimate the rate from."""
    visitors = sum(r.visitors for r in rows)
    conversions = sum(r.conversions for r in rows)
    if not rows:
        return None
    if visitors == 0 or conversions == 0 or conversions == visitors:
        return None
    p = conversions / visitors
    target = max(stats.MIN_VISITORS, math.ceil(5 / p), math.ceil(5 / (1 - p)))
    return sum(max(0, target - r.visitors) for r in rows)


def experiment_report(
    *,
    step: Step,
    variants: list[VariantSpec],
    start: datetime,
    end: datetime,
) -> ExperimentReport:
    """Results of the step's variants for visitors who first saw it in [start, end).

    ``variants`` in the caller's order; the first served (not removed) one is the
    control. Removed variants keep their numbers and are listed last.
    """
    steps = list(
        Step.objects.filter(funnel_id=step.funnel_id).order_by("position", "id")
    )
    goal = step_goal(step=step, steps=steps)
    counts = variant_counts(step=step, steps=steps, goal=goal, start=start, end=end)
    known = {v.page_id for v in variants}
    unattributed = sum(c.visitors for vid, c in counts.items() if vid not in known)
    ordered = [v for v in variants if not v.removed] + [
        v for v in variants if v.removed
    ]
    found = {v.page_id: counts.get(v.page_id, VariantCount()) for v in ordered}
    currencies = {c for n in found.values() for c in n.revenue_by_currency}

    def revenue(count: VariantCount) -> int:
        # Revenue per visitor in stats is for one currency only: several are
        # shown per currency (VariantRow.revenue_per_visitor), never added up.
        return sum(count.revenue_by_currency.values()) if len(currencies) == 1 else 0

    analysed = stats.analyse(
        [
            stats.VariantInput(
                key=str(v.page_id),
                label=v.label,
                visitors=found[v.page_id].visitors,
                conversions=found[v.page_id].conversions,
                revenue_minor=revenue(found[v.page_id]),
                weight=v.weight,
            )
            for v in ordered
        ]
    )
    served_weight = sum(v.weight for v in ordered if not v.removed and v.weight > 0)
    rows = [
        VariantRow(
            spec=v,
            visitors=result.visitors,
            conversions=result.conversions,
            revenue_minor=revenue(found[v.page_id]),
            result=result,
            expected_share=v.weight / served_weight
            if served_weight and not v.removed and v.weight > 0
            else None,
            revenue_by_currency=found[v.page_id].revenue_by_currency,
        )
        for v, result in zip(ordered, analysed.variants, strict=True)
    ]
    total = sum(r.visitors for r in rows)
    for r in rows:
        r.total = total
    # Sample ratio and readiness: only the variants being served now, against the
    # weights they are served with (a paused or removed variant has no target).
    served = [r for r in rows if r.expected_share is not None]
    srm = stats.sample_ratio_p_value(
        [r.visitors for r in served], [r.spec.weight for r in served]
    )
    srm_warning = srm is not None and srm < stats.SRM_ALPHA
    ready = len(served) >= 2 and all(r.result.enough_data for r in served)
    needed = None if ready else _needed(served)
    if srm_warning:
        guidance = (
            "Sample-ratio mismatch: the visitors per variant do not match the "
            f"weights (chi-square p = {srm:.1e}). Something is breaking the split "
            "(a redirect, a cached page, bots): fix it before trusting any result."
        )
    elif len(served) < 2:
        guidance = (
            "Fewer than two variants are being served: there is nothing to compare."
        )
    elif ready:
        guidance = "Every variant has enough visitors and conversions for a verdict."
    elif needed is None:
        guidance = (
            "Keep running: no conversions yet. Every variant needs at least "
            f"{stats.MIN_VISITORS} visitors, 5 conversions and 5 non-conversions."
        )
    else:
        guidance = (
            f"Keep running: need ~{needed:,} more visitors before calling a winner "
            f"(at least {stats.MIN_VISITORS} per variant, and 5 conversions and 5 "
            "non-conversions each at the current rate)."
        )
    verdict = _verdict(rows, ready and not srm_warning)
    return ExperimentReport(
        step=step,
        goal=goal,
        start=start,
        end=end,
        rows=rows,
        srm_p_value=srm,
        srm_warning=srm_warning,
        ready=ready,
        guidance=guidance,
        verdict=verdict,
        more_visitors_needed=needed,
        unattributed=unattributed,
        chart=charts.interval_svg(
            [
                (r.spec.label, r.result.rate, *r.result.interval)
                for r in rows
                if r.visitors
            ]
        ),
    )


def _verdict(rows: list[VariantRow], ready: bool) -> str:
    if not ready or len(rows) < 2:
        return ""
    challengers = [
        r for r in rows[1:] if not r.spec.removed and r.result.prob_beat_control
    ]
    if not challengers:
        return ""
    best = max(challengers, key=lambda r: r.result.prob_beat_control or 0)
    prob = best.result.prob_beat_control or 0
    control = rows[0].spec.label
    if prob >= 0.95:
        return (
            f"{best.spec.label} is very likely better than {control} "
            f"({chance_text(prob)} chance to beat it)."
        )
    if all((r.result.prob_beat_control or 0) <= 0.05 for r in challengers):
        return f"{control} (the control) is very likely the best variant."
    return (
        "No clear winner yet: keep running, or stop if the expected loss shown is "
        "small enough for you."
    )
