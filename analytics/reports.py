"""Dashboard reads: funnel and workspace reports from the rollup tables only.

Definitions follow docs/metrics.md. Distinct-visitor numbers (unique views,
opt-ins, buyers, conversion, bounce, EPC) are per cohort: the visitors who entered the
funnel in the period, and everything they did. Event numbers (all views, orders,
revenue, bumps) count events that happened in the period.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TypeVar

from django.db import connection
from django.db.models import Manager, Model, QuerySet, Sum, Value

from accounts.models import Workspace
from funnels import paths
from funnels.models import Funnel, Step

from .models import CohortFunnelRollup, CohortStepRollup, StepDailyRollup

MAX_RANGE_DAYS = 3 * 366


@dataclass(frozen=True)
class ReportFilters:
    date_from: date
    date_to: date
    source: str = ""
    medium: str = ""
    campaign: str = ""

    @property
    def days(self) -> int:
        return (self.date_to - self.date_from).days + 1

    def previous(self) -> ReportFilters:
        span = timedelta(days=self.days)
        return ReportFilters(
            self.date_from - span,
            self.date_to - span,
            self.source,
            self.medium,
            self.campaign,
        )


def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None


# Revenue rows folded before rollups kept currencies apart carry "": the dashboard
# showed them as USD then, and still does.
LEGACY_CURRENCY = "USD"


def money_add(into: dict[str, int], currency: str, amount: int) -> None:
    """Add an amount to its currency's total (never to another currency's)."""
    if amount:
        key = currency or LEGACY_CURRENCY
        into[key] = into.get(key, 0) + amount


def funnel_currencies(*, funnel_ids: list[int]) -> list[str]:
    """The currencies the funnels have ever had revenue in (from the daily rollup:
    one short index range per funnel)."""
    found = (
        StepDailyRollup.objects.filter(funnel_id__in=funnel_ids)
        .exclude(currency="")
        .values_list("currency", flat=True)
        .distinct()
    )
    return sorted(set(found))


def _per_currency(
    amounts: dict[str, int], den: float
) -> list[tuple[str, float | None]]:
    return [(cur, _ratio(amt, den)) for cur, amt in sorted(amounts.items())]


@dataclass
class StepReport:
    step: Step
    all_views: int = 0
    unique_views: int = 0
    optins: int = 0
    buyers: int = 0
    orders: int = 0
    bumps: int = 0
    upsell_accepts: int = 0
    upsell_declines: int = 0
    revenue_minor: int = 0
    # Revenue per currency (never summed across currencies).
    revenue_by_currency: dict[str, int] = field(default_factory=dict)
    previous_unique: int | None = None  # unique views of the comparison parent
    parent: Step | None = None  # the step this one is compared with (funnels.paths)

    @property
    def conversion_from_previous(self) -> float | None:
        if self.previous_unique is None:
            return None
        return _ratio(self.unique_views, self.previous_unique)

    @property
    def drop_off_count(self) -> int | None:
        if self.previous_unique is None:
            return None
        return max(self.previous_unique - self.unique_views, 0)

    @property
    def drop_off_rate(self) -> float | None:
        conv = self.conversion_from_previous
        return None if conv is None else 1 - conv

    @property
    def optin_rate(self) -> float | None:
        return _ratio(self.optins, self.unique_views)

    @property
    def sales_rate(self) -> float | None:
        return _ratio(self.buyers, self.unique_views)

    @property
    def upsell_take_rate(self) -> float | None:
        return _ratio(self.upsell_accepts, self.unique_views)

    @property
    def earnings_per_view(self) -> float | None:
        return _ratio(self.revenue_minor, self.all_views)

    @property
    def earnings_per_unique_view(self) -> float | None:
        return _ratio(self.revenue_minor, self.unique_views)


@dataclass
class FunnelTotals:
    entered: int = 0
    bounced: int = 0
    reached_goal: int = 0
    buyers: int = 0
    optins: int = 0
    orders: int = 0
    bumps: int = 0
    order_form_orders: int = 0
    revenue_minor: int = 0
    revenue_by_currency: dict[str, int] = field(default_factory=dict)
    seconds_to_goal: int = 0
    median_seconds_to_goal: float | None = None

    @property
    def currencies(self) -> list[str]:
        return sorted(self.revenue_by_currency)

    @property
    def mixed_currency(self) -> bool:
        """Revenue in more than one currency: amounts are shown per currency."""
        return len(self.revenue_by_currency) > 1

    @property
    def currency(self) -> str:
        """The one currency revenue is in (USD when there is none yet)."""
        return self.currencies[0] if self.currencies else LEGACY_CURRENCY

    @property
    def revenue_list(self) -> list[tuple[str, int]]:
        return sorted(self.revenue_by_currency.items())

    def comparable(self, other: FunnelTotals | None) -> bool:
        """Whether money can be compared with ``other`` (a previous period): both
        in the same one currency, or the other had no revenue."""
        if other is None or not other.revenue_by_currency:
            return True
        return self.currencies == other.currencies and not self.mixed_currency

    @property
    def epc_list(self) -> list[tuple[str, float | None]]:
        return _per_currency(self.revenue_by_currency, self.entered)

    @property
    def aov_list(self) -> list[tuple[str, float | None]]:
        return _per_currency(self.revenue_by_currency, self.orders)

    @property
    def cart_list(self) -> list[tuple[str, float | None]]:
        return _per_currency(self.revenue_by_currency, self.buyers)

    @property
    def overall_conversion(self) -> float | None:
        return _ratio(self.reached_goal, self.entered)

    @property
    def epc(self) -> float | None:
        return _ratio(self.revenue_minor, self.entered)

    @property
    def aov(self) -> float | None:
        return _ratio(self.revenue_minor, self.orders)

    @property
    def average_cart_value(self) -> float | None:
        return _ratio(self.revenue_minor, self.buyers)

    @property
    def bump_take_rate(self) -> float | None:
        return _ratio(self.bumps, self.order_form_orders)

    @property
    def bounce_rate(self) -> float | None:
        return _ratio(self.bounced, self.entered)

    @property
    def mean_seconds_to_goal(self) -> float | None:
        return _ratio(self.seconds_to_goal, self.reached_goal)


@dataclass
class FunnelReport:
    funnel: Funnel
    filters: ReportFilters
    steps: list[StepReport]
    totals: FunnelTotals
    trend_days: list[date] = field(default_factory=list)
    trend: dict[str, list[int]] = field(default_factory=dict)
    trend_revenue: dict[str, list[int]] = field(default_factory=dict)
    sources: list[tuple[str, int]] = field(default_factory=list)


_Rollup = TypeVar("_Rollup", bound=Model)


def _filtered(
    rows: Manager[_Rollup] | QuerySet[_Rollup],
    funnel_ids: list[int],
    filters: ReportFilters,
) -> QuerySet[_Rollup]:
    qs = rows.filter(
        funnel_id__in=funnel_ids, day__gte=filters.date_from, day__lte=filters.date_to
    )
    for name in ("source", "medium", "campaign"):
        value = getattr(filters, name)
        if value:
            qs = qs.filter(**{name: "" if value == "(direct)" else value})
    return qs


def _median_seconds_to_goal(funnel_id: int, filters: ReportFilters) -> float | None:
    """Median time from entering the funnel to its goal, over the period's
    converters (docs/metrics.md). A median cannot be summed from buckets, so it
    reads the per-visitor facts the rollup keeps, through a converters-only index."""
    where = ["funnel_id = %s", "entry_day BETWEEN %s AND %s", "reached_goal"]
    params: list[int | date | str] = [funnel_id, filters.date_from, filters.date_to]
    for name in ("source", "medium", "campaign"):
        value = getattr(filters, name)
        if value:
            where.append(f"{name} = %s")
            params.append("" if value == "(direct)" else value)
    sql = (
        "SELECT percentile_cont(0.5) WITHIN GROUP "
        "(ORDER BY floor(extract(epoch FROM goal_at - entered_at))) "
        f"FROM analytics_funnelvisitor WHERE {' AND '.join(where)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        value = cursor.fetchone()[0]
    return float(value) if value is not None else None


def funnel_report(
    *,
    workspace: Workspace,
    funnel: Funnel,
    filters: ReportFilters,
    detail: bool = True,
    steps: list[Step] | None = None,
) -> FunnelReport:
    """The funnel's numbers for the period; ``detail=False`` leaves out the trend and
    the sources (a comparison period needs only the numbers)."""
    if funnel.workspace_id != workspace.pk:
        raise ValueError("funnel of another workspace")
    if steps is None:
        steps = list(Step.objects.filter(funnel=funnel).order_by("position", "id"))
    by_step = {s.pk: StepReport(step=s) for s in steps}
    cohort = (
        _filtered(CohortStepRollup.objects, [funnel.pk], filters)
        .values("step_id")
        .annotate(
            v=Sum("visitors"), o=Sum("optins"), b=Sum("buyers"), u=Sum("upsell_accepts")
        )
    )
    for row in cohort:
        step_report = by_step.get(row["step_id"])
        if step_report:
            step_report.unique_views = row["v"] or 0
            step_report.optins = row["o"] or 0
            step_report.buyers = row["b"] or 0
    daily = (
        _filtered(StepDailyRollup.objects, [funnel.pk], filters)
        .values("step_id", "currency")
        .annotate(
            views=Sum("views"),
            orders=Sum("orders"),
            bumps=Sum("bumps"),
            acc=Sum("upsell_accepts"),
            dec=Sum("upsell_declines"),
            revenue=Sum("revenue_minor"),
        )
    )
    totals = FunnelTotals()
    for daily_row in daily:  # one daily_row per step and currency ("" for counts only)
        step_report = by_step.get(daily_row["step_id"])
        if step_report is None:
            continue
        step_report.all_views += daily_row["views"] or 0
        step_report.orders += daily_row["orders"] or 0
        step_report.bumps += daily_row["bumps"] or 0
        step_report.upsell_accepts += daily_row["acc"] or 0
        step_report.upsell_declines += daily_row["dec"] or 0
        step_report.revenue_minor += daily_row["revenue"] or 0
        money_add(
            step_report.revenue_by_currency,
            daily_row["currency"],
            daily_row["revenue"] or 0,
        )
        money_add(
            totals.revenue_by_currency, daily_row["currency"], daily_row["revenue"] or 0
        )
        totals.orders += daily_row["orders"] or 0
        totals.bumps += daily_row["bumps"] or 0
        totals.revenue_minor += daily_row["revenue"] or 0
        if step_report.step.kind == "order":
            totals.order_form_orders += daily_row["orders"] or 0
    # Each step is compared with its parent in the funnel's graph (funnels.paths):
    # a downsell with its upsell, the step where branches rejoin with where they split.
    answers = paths.funnel_paths(funnel_id=funnel.pk, steps=steps)
    for step in steps:
        parent = answers.parent(step)
        if parent is not None and parent.pk in by_step:
            by_step[step.pk].previous_unique = by_step[parent.pk].unique_views
            by_step[step.pk].parent = parent
    agg = _filtered(CohortFunnelRollup.objects, [funnel.pk], filters).aggregate(
        entered=Sum("entered"),
        bounced=Sum("bounced"),
        goal=Sum("reached_goal"),
        buyers=Sum("buyers"),
        optins=Sum("optins"),
        secs=Sum("seconds_to_goal"),
    )
    totals.entered = agg["entered"] or 0
    totals.bounced = agg["bounced"] or 0
    totals.reached_goal = agg["goal"] or 0
    totals.buyers = agg["buyers"] or 0
    totals.optins = agg["optins"] or 0
    totals.seconds_to_goal = agg["secs"] or 0
    report = FunnelReport(funnel, filters, [by_step[s.pk] for s in steps], totals)
    if not detail:
        return report
    if totals.reached_goal:  # not compared with the previous period: detail only
        totals.median_seconds_to_goal = _median_seconds_to_goal(funnel.pk, filters)
    _trend(report)
    report.sources = [
        (row["source"] or "(direct)", row["n"])
        for row in _filtered(CohortFunnelRollup.objects, [funnel.pk], filters)
        .values("source")
        .annotate(n=Sum("entered"))
        .order_by("-n")[:8]
    ]
    return report


def _trend(report: FunnelReport) -> None:
    filters = report.filters
    days = [filters.date_from + timedelta(days=i) for i in range(filters.days)]
    counts: dict[date, dict[str, int]] = {}
    money: dict[str, dict[date, int]] = {}
    for r in (
        _filtered(StepDailyRollup.objects, [report.funnel.pk], filters)
        .values("day", "currency")
        .annotate(
            views=Sum("views"),
            optins=Sum("optins"),
            orders=Sum("orders"),
            revenue=Sum("revenue_minor"),
        )
    ):
        day = counts.setdefault(r["day"], {"views": 0, "optins": 0, "orders": 0})
        day["views"] += r["views"] or 0
        day["optins"] += r["optins"] or 0
        day["orders"] += r["orders"] or 0
        if r["revenue"]:
            by_day = money.setdefault(r["currency"] or LEGACY_CURRENCY, {})
            by_day[r["day"]] = by_day.get(r["day"], 0) + r["revenue"]
    report.trend_days = days
    report.trend = {
        key: [(counts.get(d) or {}).get(key) or 0 for d in days]
        for key in ("views", "optins", "orders")
    }
    # Revenue per day, per currency (never added across currencies).
    report.trend_revenue = {
        cur: [by_day.get(d, 0) for d in days] for cur, by_day in sorted(money.items())
    }


@dataclass
class FunnelSummary:
    funnel: Funnel
    visitors: int
    optins: int
    orders: int
    revenue_minor: int
    daily_visitors: list[int]
    revenue_by_currency: dict[str, int] = field(default_factory=dict)

    @property
    def epc(self) -> float | None:
        return _ratio(self.revenue_minor, self.visitors)


def workspace_overview(
    *, workspace: Workspace, filters: ReportFilters
) -> list[FunnelSummary]:
    funnels = list(
        Funnel.objects.filter(workspace=workspace, archived_at__isnull=True).order_by(
            "name"
        )
    )
    ids = [f.pk for f in funnels]
    days = [filters.date_from + timedelta(days=i) for i in range(filters.days)]
    cohort: dict[int, dict[str, int]] = {}
    daily_visitors: dict[int, dict[date, int]] = {}
    for row in (
        _filtered(CohortFunnelRollup.objects, ids, filters)
        .values("funnel_id", "day")
        .annotate(n=Sum("entered"), o=Sum("optins"))
    ):
        c = cohort.setdefault(row["funnel_id"], {"n": 0, "o": 0})
        c["n"] += row["n"] or 0
        c["o"] += row["o"] or 0
        daily_visitors.setdefault(row["funnel_id"], {})[row["day"]] = row["n"] or 0
    events: dict[int, dict[str, int]] = {}
    money: dict[int, dict[str, int]] = {}
    for daily_row in (
        _filtered(StepDailyRollup.objects, ids, filters)
        .values("funnel_id", "currency")
        .annotate(orders=Sum("orders"), revenue=Sum("revenue_minor"))
    ):
        e = events.setdefault(daily_row["funnel_id"], {"orders": 0, "revenue": 0})
        e["orders"] += daily_row["orders"] or 0
        e["revenue"] += daily_row["revenue"] or 0
        money_add(
            money.setdefault(daily_row["funnel_id"], {}),
            daily_row["currency"],
            daily_row["revenue"] or 0,
        )
    return [
        FunnelSummary(
            funnel=f,
            visitors=cohort.get(f.pk, {}).get("n", 0),
            optins=cohort.get(f.pk, {}).get("o", 0),
            orders=(events.get(f.pk) or {}).get("orders") or 0,
            revenue_minor=(events.get(f.pk) or {}).get("revenue") or 0,
            daily_visitors=[daily_visitors.get(f.pk, {}).get(d, 0) for d in days],
            revenue_by_currency=money.get(f.pk, {}),
        )
        for f in funnels
    ]


def filter_choices(
    *, workspace: Workspace, funnel: Funnel | None = None
) -> dict[str, list[str]]:
    qs = CohortFunnelRollup.objects.filter(workspace_id=workspace.pk)
    if funnel is not None:
        qs = qs.filter(funnel_id=funnel.pk)
    names = ("source", "medium", "campaign")
    # One round trip: the three lists as one UNION ALL.
    parts = [
        qs.annotate(field=Value(name)).values_list("field", name).distinct()[:200]
        for name in names
    ]
    found: dict[str, set[str]] = {name: set() for name in names}
    for name, value in parts[0].union(*parts[1:], all=True):
        found[name].add(value or "(direct)")
    return {name: sorted(found[name]) for name in names}


def source_breakdown(
    *, workspace: Workspace, funnel: Funnel, filters: ReportFilters
) -> dict[str, SourceNumbers]:
    """New customers (cohort buyers) and revenue per currency per first-touch
    source."""
    out: dict[str, SourceNumbers] = {}
    for row in (
        _filtered(CohortFunnelRollup.objects, [funnel.pk], filters)
        .values("source")
        .annotate(b=Sum("buyers"))
    ):
        out.setdefault(row["source"], SourceNumbers()).buyers = row["b"] or 0
    for daily_row in (
        _filtered(StepDailyRollup.objects, [funnel.pk], filters)
        .values("source", "currency")
        .annotate(r=Sum("revenue_minor"))
    ):
        numbers = out.setdefault(daily_row["source"], SourceNumbers())
        money_add(numbers.revenue, daily_row["currency"], daily_row["r"] or 0)
    return out


@dataclass
class SourceNumbers:
    buyers: int = 0
    revenue: dict[str, int] = field(default_factory=dict)  # per currency
