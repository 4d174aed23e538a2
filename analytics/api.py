"""API v1: a funnel's dashboard numbers (KPIs and the per-step table) and its
journey map's paths, for a period.

Definitions: docs/metrics.md. Money is in minor units, per currency (never added up).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Literal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from ninja import Field, Query, Router, Schema

from accounts.apikit import workspace_of
from accounts.services import audit_record
from funnels.api import ERRORS, funnel_or_404

from . import journeys, reports, rollups, selectors

router = Router(tags=["Stats"])
TAIL_INLINE_LIMIT = 20_000


class StatsQuery(Schema):
    date_from: date | None = Field(None, description="First day (default: 29 days ago)")
    date_to: date | None = Field(
        None, description="Last day, inclusive (default: today)"
    )
    source: str = Field("", max_length=200, description="First-touch utm_source")
    medium: str = Field("", max_length=200)
    campaign: str = Field("", max_length=200)
    variant: int | None = Field(
        None,
        ge=1,
        description="Journey paths of the visitors who saw this page variant of a "
        "split-tested step only (a page id), as the journey map's variant filter; "
        "the KPIs and per-step table cover every variant",
    )


class KpisOut(Schema):
    entered: int = Field(description="Visitors who entered the funnel")
    bounced: int
    bounce_rate: float | None
    reached_goal: int
    overall_conversion: float | None
    optins: int
    buyers: int
    orders: int
    revenue_minor: int | None = Field(
        description="Revenue in the one currency; null when it is in several "
        "(see revenue_by_currency)"
    )
    revenue_by_currency: dict[str, int] = Field(
        description="Revenue per currency (ISO 4217), never added across currencies"
    )
    epc_minor: float | None = Field(
        description="Earnings per click (null when revenue is in several currencies)"
    )
    aov_minor: float | None = Field(description="Average order value (likewise)")
    average_cart_value_minor: float | None
    bump_take_rate: float | None
    median_seconds_to_goal: float | None
    mean_seconds_to_goal: float | None


class StepStatsOut(Schema):
    step: int
    name: str
    kind: str
    all_views: int
    unique_views: int
    optins: int
    optin_rate: float | None
    orders: int
    buyers: int
    sales_rate: float | None
    conversion_from_previous: float | None
    drop_off_count: int | None
    drop_off_rate: float | None
    bumps: int
    upsell_accepts: int
    upsell_declines: int
    upsell_take_rate: float | None
    revenue_minor: int | None = Field(
        description="In the one currency; null when the funnel's revenue is in "
        "several (see revenue_by_currency)"
    )
    revenue_by_currency: dict[str, int]
    earnings_per_view_minor: float | None
    earnings_per_unique_view_minor: float | None


Action = Literal["opted_in", "ordered", "accepted", "declined"]
ACTIONS: dict[str, Action] = {
    "i": "opted_in",
    "o": "ordered",
    "a": "accepted",
    "d": "declined",
}


class JourneyStopOut(Schema):
    step: int
    did: list[Action] = Field(description="What the visitor did on the step")


class JourneyPathOut(Schema):
    """One way through the funnel, and how many of the period's visitors took it."""

    key: str = Field(description="The path's id, e.g. 12i>13o>14a")
    label: str = Field(description="As the journey map names it")
    steps: list[JourneyStopOut] = Field(description="In the order visited")
    truncated: bool = Field(description="Longer than the map keeps (ends in …)")
    visitors: int
    share: float | None = Field(description="Of the visitors who entered")
    buyers: int
    revenue_minor: int | None = Field(
        description="In the one currency; null when the funnel sells in several "
        "(see revenue_by_currency)"
    )
    revenue_by_currency: dict[str, int]
    revenue_per_visitor_minor: float | None


class JourneyOut(Schema):
    """The journey map: the cohort of visitors who entered the funnel in the
    period, and the paths they took, most taken first (definitions: docs/metrics.md)."""

    variant: int | None
    entered: int
    buyers: int
    revenue_minor: int | None = Field(
        description="In the one currency; null when the funnel sells in several "
        "(see revenue_by_currency)"
    )
    revenue_by_currency: dict[str, int] = Field(
        description="Revenue per currency, never added across currencies"
    )
    paths: list[JourneyPathOut]


class StatsOut(Schema):
    funnel: int
    date_from: date
    date_to: date
    currency: str | None = Field(
        description="The currency of every amount; null when revenue is in several "
        "(then only the *_by_currency figures are given)"
    )
    currencies: list[str] = Field(description="The currencies revenue is in")
    kpis: KpisOut
    previous_period: KpisOut = Field(description="The same span just before")
    steps: list[StepStatsOut]
    journey: JourneyOut
    rolled_up_to: datetime | None = Field(description="Events folded in up to here")


def _kpis(totals: reports.FunnelTotals) -> KpisOut:
    one = not totals.mixed_currency
    return KpisOut(
        entered=totals.entered,
        bounced=totals.bounced,
        bounce_rate=totals.bounce_rate,
        reached_goal=totals.reached_goal,
        overall_conversion=totals.overall_conversion,
        optins=totals.optins,
        buyers=totals.buyers,
        orders=totals.orders,
        revenue_minor=totals.revenue_minor if one else None,
        revenue_by_currency=dict(totals.revenue_list),
        epc_minor=totals.epc if one else None,
        aov_minor=totals.aov if one else None,
        average_cart_value_minor=totals.average_cart_value if one else None,
        bump_take_rate=totals.bump_take_rate,
        median_seconds_to_goal=totals.median_seconds_to_goal,
        mean_seconds_to_goal=totals.mean_seconds_to_goal,
    )


def _period(query: StatsQuery) -> reports.ReportFilters:
    today = timezone.localdate()
    end = query.date_to or today
    start = query.date_from or end - timedelta(days=29)
    if start > end:
        raise ValidationError({"date_to": "The end date is before the start date."})
    if (end - start).days + 1 > reports.MAX_RANGE_DAYS:
        raise ValidationError({"date_from": "Ask for at most three years at a time."})
    if start.year < 2000 or end > today + timedelta(days=366):
        raise ValidationError(
            {"date_from": "Use dates from 2000 up to a year from now."}
        )
    return reports.ReportFilters(
        start, end, source=query.source, medium=query.medium, campaign=query.campaign
    )


@router.get(
    "/funnels/{funnel_id}/stats",
    response={200: StatsOut, **ERRORS},
    summary="The funnel dashboard's KPIs and per-step table, and its journey "
    "map's paths, for a period",
)
def funnel_stats(
    request: HttpRequest, funnel_id: int, query: Query[StatsQuery]
) -> StatsOut:
    workspace = workspace_of(request)
    funnel = funnel_or_404(request, funnel_id)
    filters = _period(query)
    variants = {pk for pk, _label in selectors.funnel_variant_choices(funnel=funnel)}
    if query.variant is not None and query.variant not in variants:
        raise ValidationError(
            {
                "variant": f"{query.variant} is not a page variant of a split-tested "
                f"step of this funnel (they are: {sorted(variants) or 'none'})."
            }
        )
    # Fold a small not-yet-rolled-up tail in first, as the dashboard does.
    if 0 < rollups.rollup_tail_size() <= TAIL_INLINE_LIMIT:
        rollups.rollups_update(wait=False)
    report = reports.funnel_report(workspace=workspace, funnel=funnel, filters=filters)
    previous = reports.funnel_report(
        workspace=workspace,
        funnel=funnel,
        filters=filters.previous(),
        detail=False,
        steps=[s.step for s in report.steps],
    )
    jmap = journeys.journey_map(
        workspace=workspace, funnel=funnel, filters=filters, variant=query.variant
    )
    with transaction.atomic():
        # Reading numbers out through the API is a data export: it is audited.
        audit_record(
            workspace=workspace,
            action="stats.read",
            target=funnel,
            after={
                "date_from": filters.date_from.isoformat(),
                "date_to": filters.date_to.isoformat(),
            },
        )
    mixed = report.totals.mixed_currency
    return StatsOut(
        funnel=funnel.pk,
        date_from=filters.date_from,
        date_to=filters.date_to,
        currency=None if mixed else report.totals.currency,
        currencies=report.totals.currencies,
        kpis=_kpis(report.totals),
        previous_period=_kpis(previous.totals),
        steps=[
            StepStatsOut(
                step=s.step.pk,
                name=s.step.name,
                kind=s.step.kind,
                all_views=s.all_views,
                unique_views=s.unique_views,
                optins=s.optins,
                optin_rate=s.optin_rate,
                orders=s.orders,
                buyers=s.buyers,
                sales_rate=s.sales_rate,
                conversion_from_previous=s.conversion_from_previous,
                drop_off_count=s.drop_off_count,
                drop_off_rate=s.drop_off_rate,
                bumps=s.bumps,
                upsell_accepts=s.upsell_accepts,
                upsell_declines=s.upsell_declines,
                upsell_take_rate=s.upsell_take_rate,
                revenue_minor=None if mixed else s.revenue_minor,
                revenue_by_currency=dict(sorted(s.revenue_by_currency.items())),
                earnings_per_view_minor=None if mixed else s.earnings_per_view,
                earnings_per_unique_view_minor=None
                if mixed
                else s.earnings_per_unique_view,
            )
            for s in report.steps
        ],
        journey=_journey(jmap),
        rolled_up_to=rollups.rollup_watermark(),
    )


def _journey(jmap: journeys.JourneyMap) -> JourneyOut:
    one = not jmap.mixed_currency
    return JourneyOut(
        variant=jmap.variant,
        entered=jmap.entered,
        buyers=jmap.buyers,
        revenue_minor=jmap.revenue_minor if one else None,
        revenue_by_currency=dict(sorted(jmap.revenue_by_currency.items())),
        paths=[
            JourneyPathOut(
                key=p.key,
                label=p.label,
                steps=[
                    JourneyStopOut(step=e.step_id, did=[ACTIONS[m] for m in e.marks])
                    for e in p.elements
                ],
                truncated=p.truncated,
                visitors=p.visitors,
                share=p.share,
                buyers=p.buyers,
                revenue_minor=p.revenue_minor if one else None,
                revenue_by_currency=dict(sorted(p.revenue_by_currency.items())),
                revenue_per_visitor_minor=p.revenue_per_visitor if one else None,
            )
            for p in jmap.paths
        ],
    )
