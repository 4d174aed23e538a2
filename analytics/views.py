from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts.tenancy import workspace_view
from config import csvsafe
from funnels import paths
from funnels.models import Funnel, Step
from funnels.money import format_money, parse_money

from . import charts, customers, journeys, reports, rollups, selectors, services
from .forms import PRESETS, AdSpendForm, RangeForm, range_filters
from .models import AdSpend

TAIL_INLINE_LIMIT = 20_000
STALE_AFTER = timedelta(minutes=5)


def _catch_up() -> None:
    """Fold a small not-yet-rolled-up tail in now, so numbers are exact to the last
    event; a large tail is the worker's job (it runs every minute)."""
    if 0 < rollups.rollup_tail_size() <= TAIL_INLINE_LIMIT:
        rollups.rollups_update(wait=False)


def _filters(request: HttpRequest) -> tuple[RangeForm, reports.ReportFilters, list]:
    return range_filters(request.GET)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f} %"


def _amounts(by_currency: dict[str, int]) -> str:
    """Money per currency, never summed across currencies ($0.00 when none)."""
    if not by_currency:
        return format_money(0, reports.LEGACY_CURRENCY)
    return " · ".join(format_money(a, c) for c, a in sorted(by_currency.items()))


@workspace_view
def overview(request: HttpRequest) -> HttpResponse:
    _catch_up()
    form, filters, notes = _filters(request)
    rows = reports.workspace_overview(workspace=request.workspace, filters=filters)
    context = {
        "form": form,
        "filters": filters,
        "notes": notes,
        "presets": PRESETS,
        "rows": [
            {
                "summary": r,
                "spark": charts.sparkline_svg(r.daily_visitors),
                "revenue": _amounts(r.revenue_by_currency),
                "epc": _amounts(
                    {
                        cur: round(amount / r.visitors)
                        for cur, amount in r.revenue_by_currency.items()
                    }
                )
                if r.visitors
                else "—",
            }
            for r in rows
        ],
        "updated": rollups.rollup_watermark(),
    }
    return render(request, "analytics/overview.html", context)


def _funnel_bars(
    request: HttpRequest,
    funnel: Funnel,
    report: reports.FunnelReport,
    filters: reports.ReportFilters,
) -> list[charts.FunnelBar]:
    """The funnel chart over the funnel's graph: each bar's share is of its
    comparison parent (funnels.paths), named; a step that branches rejoin shows
    where its visitors came from instead (from the journey map)."""
    steps = [r.step for r in report.steps]
    answers = paths.funnel_paths(funnel_id=funnel.pk, steps=steps)
    index = {st.pk: i for i, st in enumerate(steps)}
    names = {st.pk: st.name for st in steps}
    preds: dict[int, set[int]] = {st.pk: set() for st in steps}
    for st in steps:
        for nxt in answers.successors(st):
            preds[nxt.pk].add(st.pk)
    rejoins = {pk for pk, p in preds.items() if len(p) > 1 and pk != steps[0].pk}
    flow = {}
    if rejoins:
        flow = journeys.step_flow(
            journeys.journey_map(
                workspace=request.workspace, funnel=funnel, filters=filters, steps=steps
            )
        )
    bars = []
    for r in report.steps:
        note, notes = "", ()
        if r.parent is not None:
            note = f"{_pct(r.conversion_from_previous)} of {r.parent.name}"
        arrivals = flow.get(r.step.pk, {})
        total = sum(arrivals.values())
        if r.step.pk in rejoins and total:
            note = ""
            notes = tuple(
                f"{n / total * 100:.0f} % via {names.get(int(src), '?')}"
                if src != journeys.ENTRY
                else f"{n / total * 100:.0f} % entered here"
                for src, n in sorted(arrivals.items(), key=lambda kv: -kv[1])[:3]
            )
        bars.append(
            charts.FunnelBar(
                r.step.name,
                r.unique_views,
                note,
                parent=index[r.parent.pk] if r.parent is not None else None,
                branch=r.step.pk in answers.branch_only,
                notes=notes,
            )
        )
    return bars


def _funnel_context(request: HttpRequest, funnel: Funnel) -> dict:
    form, filters, notes = _filters(request)
    report = reports.funnel_report(
        workspace=request.workspace, funnel=funnel, filters=filters
    )
    previous = reports.funnel_report(
        workspace=request.workspace,
        funnel=funnel,
        filters=filters.previous(),
        detail=False,
        steps=[s.step for s in report.steps],
    )
    bars = _funnel_bars(request, funnel, report, filters)
    labels = [d.strftime("%b %-d") for d in report.trend_days]
    # Steps with page variants link to their split-test results.
    split_steps = set(
        Step.objects.filter(funnel=funnel)
        .annotate(n=Count("pages"))
        .filter(n__gt=1)
        .values_list("pk", flat=True)
    )
    spend = _spend_rows(request, funnel, filters)
    # Drill-downs: the lead list filters by dates and first-touch source, the order
    # list by dates only; no link where the list cannot apply the same filters.
    period = {
        "date_from": filters.date_from.isoformat(),
        "date_to": filters.date_to.isoformat(),
    }
    drill_leads = drill_orders = None
    if not (filters.medium or filters.campaign or filters.source == "(direct)"):
        source = {"source": filters.source} if filters.source else {}
        drill_leads = urlencode({**period, **source})
        if not filters.source:
            drill_orders = urlencode(period)
    return {
        "funnel": funnel,
        "split_steps": split_steps,
        "form": form,
        "filters": filters,
        "notes": notes,
        "presets": PRESETS,
        "report": report,
        "previous": previous,
        "funnel_chart": charts.funnel_svg(bars),
        "trend_chart": charts.line_svg(
            [
                ("Views", report.trend["views"]),
                ("Opt-ins", report.trend["optins"]),
                ("Orders", report.trend["orders"]),
            ],
            labels,
        ),
        "sources_chart": charts.hbar_svg(report.sources),
        "choices": reports.filter_choices(workspace=request.workspace, funnel=funnel),
        "spend": spend,
        "updated": rollups.rollup_watermark(),
        "drill_leads": drill_leads,
        "drill_orders": drill_orders,
        "pct": _pct,
        # Amounts are shown in their currency; several currencies are listed apart,
        # and no change is shown between periods in different currencies.
        "currency": report.totals.currency,
        "money_comparable": report.totals.comparable(previous.totals),
    }


def _spend_rows(request: HttpRequest, funnel: Funnel, filters) -> list[dict]:
    """Per source: ad spend, new customers, revenue, CAC and ROAS, money per
    currency (a ROAS only from revenue and spend in the same currency)."""
    rows: list[dict] = []
    spends = AdSpend.objects.filter(
        workspace=request.workspace,
        date_to__gte=filters.date_from,
        date_from__lte=filters.date_to,
    )
    totals: dict[str, dict[str, int]] = {}
    for s in spends:
        reports.money_add(totals.setdefault(s.source, {}), s.currency, s.amount_minor)
    if not totals:
        return rows
    by_source = reports.source_breakdown(
        workspace=request.workspace, funnel=funnel, filters=filters
    )
    for source, spent in sorted(totals.items()):
        numbers = by_source.get(source, reports.SourceNumbers())
        rows.append(
            {
                "source": source,
                "spend": spent,
                "buyers": numbers.buyers,
                "revenue": numbers.revenue,
                "cac": {cur: amount / numbers.buyers for cur, amount in spent.items()}
                if numbers.buyers
                else {},
                "roas": {
                    cur: numbers.revenue.get(cur, 0) / amount
                    for cur, amount in spent.items()
                    if amount
                },
            }
        )
    return rows


def _funnel_or_404(request: HttpRequest, pk: int) -> Funnel:
    funnel = Funnel.objects.filter(workspace=request.workspace, pk=pk).first()
    if funnel is None:
        raise Http404("No such funnel")
    return funnel


@workspace_view
def funnel_dashboard(request: HttpRequest, pk: int) -> HttpResponse:
    funnel = _funnel_or_404(request, pk)
    _catch_up()
    context = _funnel_context(request, funnel)
    template = "analytics/funnel_dashboard.html"
    if request.htmx and request.htmx.target == "dashboard-live":
        template += "#dashboard-live"
    return render(request, template, context)


@workspace_view
def funnel_export(request: HttpRequest, pk: int, table: str) -> HttpResponse:
    funnel = _funnel_or_404(request, pk)
    # Only the numbers: no previous period and no charts for a CSV.
    _form, filters, _notes = _filters(request)
    report = reports.funnel_report(
        workspace=request.workspace, funnel=funnel, filters=filters
    )
    out = io.StringIO()
    writer = csvsafe.writer(out)
    # Every amount names its currency: one set of money columns per currency the
    # period has revenue in (the report's one currency when there is none).
    currencies = report.totals.currencies or [report.totals.currency]
    if table == "steps":
        writer.writerow(
            [
                "Step",
                "Kind",
                "All views",
                "Unique views",
                "Conversion from previous",
                "Drop-off",
                "Drop-off %",
                "Opt-ins",
                "Opt-in rate",
                "Orders",
                "Sales rate",
                "Upsell take rate",
                *(
                    label.format(cur)
                    for cur in currencies
                    for label in (
                        "Revenue {} (minor units)",
                        "Earnings per view {} (minor)",
                        "Earnings per unique view {} (minor)",
                    )
                ),
            ]
        )
        for s in report.steps:
            money = []
            for cur in currencies:
                revenue = s.revenue_by_currency.get(cur, 0)
                money += [
                    revenue,
                    _ratio_csv(revenue / s.all_views if s.all_views else None),
                    _ratio_csv(revenue / s.unique_views if s.unique_views else None),
                ]
            writer.writerow(
                [
                    s.step.name,
                    s.step.kind,
                    s.all_views,
                    s.unique_views,
                    _ratio_csv(s.conversion_from_previous),
                    s.drop_off_count or "",
                    _ratio_csv(s.drop_off_rate),
                    s.optins,
                    _ratio_csv(s.optin_rate),
                    s.orders,
                    _ratio_csv(s.sales_rate),
                    _ratio_csv(s.upsell_take_rate)
                    if s.step.kind in ("upsell", "downsell")
                    else "",
                    *money,
                ]
            )
    elif table == "trend":
        writer.writerow(
            [
                "Day",
                "Views",
                "Opt-ins",
                "Orders",
                *(f"Revenue {cur} (minor units)" for cur in currencies),
            ]
        )
        zeros = [0] * len(report.trend_days)
        for i, day in enumerate(report.trend_days):
            writer.writerow(
                [
                    day.isoformat(),
                    report.trend["views"][i],
                    report.trend["optins"][i],
                    report.trend["orders"][i],
                    *(report.trend_revenue.get(cur, zeros)[i] for cur in currencies),
                ]
            )
    elif table == "sources":
        writer.writerow(["Source", "Visitors"])
        writer.writerows(report.sources)
    elif table == "spend":
        writer.writerow(
            [
                "Source",
                "Currency",
                "Spend (minor units)",
                "New customers",
                "Revenue (minor units)",
                "CAC (minor units)",
                "ROAS",
            ]
        )
        for r in _spend_rows(request, funnel, filters):
            # One row per currency the source has spend or revenue in.
            for cur in sorted({*r["spend"], *r["revenue"]}):
                cac, roas = r["cac"].get(cur), r["roas"].get(cur)
                writer.writerow(
                    [
                        r["source"],
                        cur,
                        r["spend"].get(cur, 0),
                        r["buyers"],
                        r["revenue"].get(cur, 0),
                        "" if cac is None else round(cac),
                        "" if roas is None else f"{roas:.2f}",
                    ]
                )
    else:
        raise Http404("No such table")
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    name = f"{funnel.slug}-{table}-{filters_stamp(filters)}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _ratio_csv(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def filters_stamp(filters) -> str:
    return f"{filters.date_from:%Y%m%d}-{filters.date_to:%Y%m%d}"


@workspace_view
def ad_spend(request: HttpRequest) -> HttpResponse:
    form = AdSpendForm(request.POST or None, request.FILES or None)
    if request.method == "POST":
        upload = request.FILES.get("csv_file")
        if upload is not None:
            try:
                count = _import_spend_csv(request, upload)
            except ValidationError as exc:
                messages.error(request, " ".join(exc.messages))
            else:
                messages.success(request, f"Imported {count} ad spend rows.")
                return redirect("analytics:ad_spend")
        elif form.is_valid():
            d = form.cleaned_data
            try:
                amount = parse_money(d["amount"], d["currency"])
            except ValueError as exc:
                form.add_error("amount", str(exc))
            else:
                AdSpend.objects.create(
                    workspace=request.workspace,
                    source=d["source"].strip(),
                    date_from=d["date_from"],
                    date_to=d["date_to"],
                    amount_minor=amount,
                    currency=d["currency"].upper()[:3],
                )
                messages.success(request, "Ad spend added.")
                return redirect("analytics:ad_spend")
    rows = AdSpend.objects.filter(workspace=request.workspace)[:200]
    return render(
        request,
        "analytics/ad_spend.html",
        {"form": form, "rows": rows, "fmt": format_money},
        status=422 if form.errors else 200,
    )


def _import_spend_csv(request: HttpRequest, upload) -> int:
    """CSV with columns source,date_from,date_to,amount[,currency]: all or nothing."""
    if upload.size > 2 * 1024 * 1024:
        raise ValidationError("The file is larger than 2 MB.")
    try:
        text = upload.read().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationError("The file is not UTF-8 text.") from None
    rows = []
    for n, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        try:
            start = date.fromisoformat((row.get("date_from") or "").strip())
            end = date.fromisoformat((row.get("date_to") or "").strip())
            currency = (row.get("currency") or "USD").strip().upper()[:3]
            amount = parse_money(row.get("amount") or "", currency)
            source = (row.get("source") or "").strip()
        except (ValueError, AttributeError) as exc:
            raise ValidationError(f"Line {n}: {exc}") from None
        if not source or start > end:
            raise ValidationError(f"Line {n}: needs a source and from ≤ to.")
        rows.append(
            AdSpend(
                workspace=request.workspace,
                source=source,
                date_from=start,
                date_to=end,
                amount_minor=amount,
                currency=currency,
            )
        )
    if not rows:
        raise ValidationError(
            "No rows found. Columns: source,date_from,date_to,amount,currency"
        )
    with transaction.atomic():
        AdSpend.objects.bulk_create(rows)
    return len(rows)


@workspace_view
@require_POST
def ad_spend_delete(request: HttpRequest, pk: int) -> HttpResponse:
    row = get_object_or_404(AdSpend, pk=pk, workspace=request.workspace)
    services.ad_spend_delete(spend=row)
    messages.success(request, "Ad spend removed.")
    return redirect("analytics:ad_spend")


def _variant(request: HttpRequest, choices: list[tuple[int, str]], notes: list):
    raw = request.GET.get("variant", "")
    if not raw:
        return None
    if raw.isdigit() and int(raw) in {pk for pk, _ in choices}:
        return int(raw)
    notes.append(f"“{raw[:40]}” is not a variant of this funnel; it was ignored.")
    return None


def _journey_context(request: HttpRequest, funnel: Funnel) -> dict:
    form, filters, notes = _filters(request)
    variants = selectors.funnel_variant_choices(funnel=funnel)
    variant = _variant(request, variants, notes)
    jmap = journeys.journey_map(
        workspace=request.workspace, funnel=funnel, filters=filters, variant=variant
    )
    names = {s.pk: s.name for s in jmap.steps}
    off_path = paths.funnel_paths(funnel_id=funnel.pk, steps=jmap.steps).branch_only

    def name(key) -> str:
        if key == journeys.ENTRY:
            return "(entered)"
        if key == journeys.EXIT:
            return "(left the funnel)"
        if key == journeys.MORE:
            return "(more steps)"
        return names.get(key, "(removed step)")

    link_rows = []
    for lk in jmap.links:
        what = {"accept": "accepted", "decline": "declined"}.get(lk.outcome, "")
        kind = {"next": "", "skip": "skipped ahead", "back": "went back"}.get(
            lk.kind, ""
        )
        link_rows.append(
            {
                "source": name(lk.source),
                "target": name(lk.target),
                "what": ", ".join(x for x in (what, kind) if x),
                "moves": lk.moves,
                "kind": lk.outcome or lk.kind,
                "share": lk.moves / jmap.entered if jmap.entered else None,
            }
        )
    sankey = charts.sankey_svg(
        [
            charts.SankeyNode(
                key=n.step.pk,
                label=n.step.name,
                value=n.visits,
                exits=n.exits,
                lane=1 if n.step.pk in off_path else 0,
            )
            for n in jmap.nodes
        ],
        [
            charts.SankeyLink(
                source=None if lk.source == journeys.ENTRY else lk.source,
                target=lk.target if isinstance(lk.target, int) else None,
                value=lk.moves,
                kind=lk.outcome or lk.kind,
                title=f"{r['source']} → {r['target']}"
                + (f" ({r['what']})" if r["what"] else "")
                + f": {lk.moves:,}",
            )
            for lk, r in zip(jmap.links, link_rows, strict=True)
        ],
        label=f"Journey map of {funnel.name}: visitors' moves between steps",
    )
    return {
        "funnel": funnel,
        "form": form,
        "filters": filters,
        "notes": notes,
        "presets": PRESETS,
        "choices": reports.filter_choices(workspace=request.workspace, funnel=funnel),
        "variants": variants,
        "variant": variant,
        "jmap": jmap,
        "sankey": sankey,
        "link_rows": link_rows,
        # The same cohort filters for "dropped here" (the leads app reads them).
        "filter_query": urlencode(
            {
                k: v
                for k, v in request.GET.items()
                if k
                in (
                    "range",
                    "date_from",
                    "date_to",
                    "source",
                    "medium",
                    "campaign",
                    "variant",
                )
                and v
            }
        ),
        **_freshness(rollups.rollup_watermark()),
        "currency": "USD",
    }


def _freshness(watermark: datetime | None) -> dict:
    """Up to when the rollups have counted, and whether the worker is behind (it
    folds every 30 s; a watermark much older than that means it is not running)."""
    return {
        "updated": watermark,
        "stale": watermark is None or timezone.now() - watermark > STALE_AFTER,
    }


@workspace_view
def funnel_journey(request: HttpRequest, pk: int) -> HttpResponse:
    """The journey map: the funnel's graph with the real flow of the period."""
    funnel = _funnel_or_404(request, pk)
    # No inline fold: the map reads the rollups the worker keeps (every 30 s) and
    # says how fresh they are, so a request costs the same whatever the traffic.
    context = _journey_context(request, funnel)
    template = "analytics/journey.html"
    if request.htmx and request.htmx.target == "journey-live":
        template += "#journey-live"
    return render(request, template, context)


@workspace_view
def customer_value(request: HttpRequest) -> HttpResponse:
    """Repeat purchases and lifetime value by first-touch source (next to ad spend
    and CAC) and by cohort; the dashboard loads it as a fragment."""
    form, filters, notes = _filters(request)
    value = customers.customer_value(workspace=request.workspace, filters=filters)
    spends: dict[str, dict[str, int]] = {}  # per source, per currency
    for s in AdSpend.objects.filter(
        workspace=request.workspace,
        date_to__gte=filters.date_from,
        date_from__lte=filters.date_to,
    ):
        reports.money_add(spends.setdefault(s.source, {}), s.currency, s.amount_minor)
    rows = [
        {
            "row": r,
            "source": r.key or "(direct)",
            "spend": spends.get(r.key, {}),
            "cac": {cur: amount / r.customers for cur, amount in spends[r.key].items()}
            if r.key in spends and r.customers
            else {},
        }
        for r in value.by_source
    ]
    context = {
        "form": form,
        "filters": filters,
        "notes": notes,
        "presets": PRESETS,
        "value": value,
        "rows": rows,
        "windows": customers.WINDOWS,
        "currency": "USD",
    }
    template = "analytics/customers.html"
    if request.htmx:
        template += "#customer-value"
    return render(request, template, context)
