"""The journey map: exact paths, flows and exits over the funnel's graph."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from analytics import ingest, journeys, reports, rollups
from analytics.models import Visitor
from tests.analytics.test_rollups import AMOUNTS, _clean
from tests.funnels.test_paths import BRANCHED, _build

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
QUERY = "?range=custom&date_from=2026-03-01&date_to=2026-03-31"


def _journeys(funnel, scripts: list[tuple[int, list[tuple]]]) -> None:
    """``(visitors, [(step, kind[, variant]), ...])``: that many visitors doing
    exactly that, a minute apart."""
    lines = []
    for count, script in scripts:
        for _ in range(count):
            visitor = uuid.uuid4()
            for i, (step, kind, *variant) in enumerate(script):
                at = T0 + timedelta(minutes=i)
                lines.append(
                    ingest.event_line(
                        event_id=uuid.uuid4(),
                        workspace_id=funnel.workspace_id,
                        funnel_id=funnel.pk,
                        step_id=step.pk,
                        visitor_id=visitor,
                        kind=kind,
                        page_version_id=None,
                        variant_id=variant[0] if variant else None,
                        amount_minor=AMOUNTS.get(kind),
                        currency="USD",
                        properties=None,
                        occurred_at=at,
                        received_at=at,
                    )
                )
    ingest.partitions_forget()
    ingest.lines_write(lines, [])
    rollups.rollups_update()


@pytest.fixture
def branched(workspace):
    _clean()
    funnel, s = _build(workspace, BRANCHED)
    optin, order, up, down, thanks = (
        s[k] for k in ("optin", "order", "up", "down", "thanks")
    )
    bought = [(optin, "view"), (optin, "optin"), (order, "view"), (order, "order")]
    _journeys(
        funnel,
        [
            (3, [*bought, (up, "view"), (up, "upsell_accept"), (thanks, "view")]),
            (
                2,
                [
                    *bought,
                    (up, "view"),
                    (up, "upsell_decline"),
                    (down, "view"),
                    (down, "upsell_accept"),
                    (thanks, "view"),
                ],
            ),
            (
                1,
                [
                    *bought,
                    (up, "view"),
                    (up, "upsell_decline"),
                    (down, "view"),
                    (down, "upsell_decline"),
                    (thanks, "view"),
                ],
            ),
            (4, [(optin, "view")]),
            (1, [(optin, "view"), (order, "view"), (optin, "view")]),
        ],
    )
    return funnel, s


def test_paths_counts_and_revenue_are_exact(workspace, branched):
    funnel, s = branched
    jmap = journeys.journey_map(
        workspace=workspace,
        funnel=funnel,
        filters=reports.ReportFilters(T0.date(), T0.date()),
    )
    rows = {p.label: (p.visitors, p.buyers, p.revenue_minor) for p in jmap.paths}
    assert rows == {
        "optin opted in → order ordered → up accepted → thanks": (3, 3, 3 * 12400),
        "optin opted in → order ordered → up declined → down accepted → thanks": (
            2,
            2,
            2 * 12400,
        ),
        "optin opted in → order ordered → up declined → down declined → thanks": (
            1,
            1,
            2700,
        ),
        "optin": (4, 0, 0),
        "optin → order → optin": (1, 0, 0),
    }
    assert jmap.entered == 11 and jmap.buyers == 6
    assert jmap.paths[0].visitors == 4 and jmap.paths[0].share == 4 / 11
    nodes = {n.step.name: (n.visitors, n.visits, n.exits) for n in jmap.nodes}
    assert nodes == {
        "optin": (11, 12, 5),
        "order": (7, 7, 0),
        "up": (6, 6, 0),
        "down": (3, 3, 0),
        "thanks": (6, 6, 6),
    }
    links = {
        (lk.source, lk.target, lk.outcome): (lk.moves, lk.kind) for lk in jmap.links
    }
    assert links[(s["up"].pk, s["thanks"].pk, "accept")] == (3, "next")
    assert links[(s["up"].pk, s["down"].pk, "decline")] == (3, "next")
    assert links[(s["down"].pk, s["thanks"].pk, "accept")] == (2, "next")
    assert links[(s["order"].pk, s["optin"].pk, "")] == (1, "back")
    assert links[(s["optin"].pk, journeys.EXIT, "")] == (5, "exit")
    assert links[(journeys.ENTRY, s["optin"].pk, "")] == (11, "entry")


def test_journey_page_shows_the_map_and_the_same_numbers_as_a_table(
    owner_client, branched
):
    funnel, _s = branched
    url = reverse("analytics:journey", args=[funnel.pk]) + QUERY
    response = owner_client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'role="img" aria-label="Journey map of' in html
    assert (
        "optin opted in → order ordered → up declined → down accepted → thanks" in html
    )
    assert "$124.00" in html  # two paths' revenue per visitor
    assert "<caption" in html and "(left the funnel)" in html
    fragment = owner_client.get(
        url, headers={"HX-Request": "true", "HX-Target": "journey-live"}
    )
    assert fragment.status_code == 200
    assert b"<html" not in fragment.content and b'id="journey-live"' in fragment.content


def test_a_stranger_gets_404(client, stranger, branched):
    funnel, _s = branched
    client.force_login(stranger)
    response = client.get(reverse("analytics:journey", args=[funnel.pk]))
    assert response.status_code == 404


def test_variant_filter_and_a_bad_variant(owner_client, workspace):
    """Only visitors who saw the variant count; a foreign or malformed variant is
    named and ignored."""
    from pages.services import page_create_blank, variant_add

    _clean()
    funnel, s = _build(workspace, BRANCHED)
    a = page_create_blank(step=s["optin"])
    b = variant_add(page=a)
    _journeys(
        funnel,
        [
            (2, [(s["optin"], "view", a.pk), (s["order"], "view")]),
            (3, [(s["optin"], "view", b.pk)]),
        ],
    )
    jmap = journeys.journey_map(
        workspace=workspace,
        funnel=funnel,
        filters=reports.ReportFilters(T0.date(), T0.date()),
        variant=b.pk,
    )
    assert [(p.label, p.visitors) for p in jmap.paths] == [("optin", 3)]
    url = reverse("analytics:journey", args=[funnel.pk]) + QUERY
    html = owner_client.get(url + f"&variant={a.pk}").content.decode()
    assert "is not a variant" not in html
    assert "optin → order" in html
    # Visitors: only the two who saw A (the page lists A and B in its filter).
    assert '<div class="kpi"><dt>Visitors</dt><dd><strong>2</strong>' in html
    assert f'<option value="{b.pk}">optin · {b.name}</option>' in html
    bad = owner_client.get(url + "&variant=99999999")
    assert bad.status_code == 200
    assert "“99999999” is not a variant of this funnel" in bad.content.decode()


def test_dashboard_funnel_chart_follows_the_graph(owner_client, branched):
    """The downsell reads as a share of the upsell; the thank-you, where the
    branches rejoin, shows where its visitors came from, never "100 %" after the
    downsell (before: every bar was a share of the bar to its left)."""
    funnel, _s = branched
    url = reverse("analytics:funnel", args=[funnel.pk]) + QUERY
    html = owner_client.get(url).content.decode()
    chart = html[html.index('class="chart chart-funnel"') :]
    chart = chart[: chart.index("</svg>")]
    assert "85.7 % of order" in chart  # 6 of the 7 who saw the order form
    assert "50.0 % of up" in chart  # the downsell: 3 of the 6 who saw the upsell
    assert "50 % via up" in chart and "50 % via down" in chart
    assert "100.0 %" not in chart
    assert 'class="parent-link"' in chart  # the thank-you's arc from the upsell


def test_stages_default_by_kind_and_can_be_changed(owner_client, branched):
    """Each step carries a journey stage (default by kind, changeable in the step's
    settings); the map counts the visitors who reached each stage."""
    from funnels import services

    funnel, s = branched
    assert [st.journey_stage for st in s.values()] == [
        "awareness",
        "purchase",
        "purchase",
        "purchase",
        "retention",
    ]
    jmap = journeys.journey_map(
        workspace=funnel.workspace,
        funnel=funnel,
        filters=reports.ReportFilters(T0.date(), T0.date()),
    )
    assert jmap.stages == [("Awareness", 11), ("Purchase", 7), ("Retention", 6)]
    response = owner_client.post(
        reverse("funnels:step_update", args=[funnel.pk, s["thanks"].pk]),
        {"name": "thanks", "slug": "thanks", "stage": "advocacy"},
    )
    assert response.status_code == 302
    s["thanks"].refresh_from_db()
    assert s["thanks"].journey_stage == "advocacy"
    html = owner_client.get(
        reverse("analytics:journey", args=[funnel.pk]) + QUERY
    ).content.decode()
    assert "<td>Advocacy</td>" in html and "<span>Advocacy</span>" in html
    bad = owner_client.post(
        reverse("funnels:step_update", args=[funnel.pk, s["thanks"].pk]),
        {"name": "thanks", "slug": "thanks", "stage": "fame"},
    )
    assert bad.status_code == 422
    assert "Pick a journey stage from the list." in bad.content.decode()
    s["thanks"].refresh_from_db()
    assert s["thanks"].stage == "advocacy"
    services.step_update(step=s["thanks"], stage="")
    assert s["thanks"].journey_stage == "retention"


def _grow(workspace, funnel, s, n: int) -> list[int]:
    """``n`` more visitors, each from a source, medium and campaign of its own and
    taking a path of its own, seeing one of ``n`` page variants of the order step;
    returns the variants."""
    from pages.services import page_create_blank

    variants = [
        page_create_blank(step=s["order"], name=f"Variant {i}").pk for i in range(n)
    ]
    lines = []
    for i in range(n):
        visitor = uuid.uuid4()
        Visitor.objects.create(
            workspace=workspace,
            public_id=visitor,
            utm_source=f"source{i}",
            utm_medium=f"medium{i}",
            utm_campaign=f"campaign{i}",
        )
        script = [(s["optin"], None), *[(s["order"], variants[i]), (s["up"], None)]]
        script += [(s["down"], None), (s["up"], None)] * (i % 6)
        for minute, (step, variant) in enumerate(script):
            at = T0 + timedelta(days=i % 20, minutes=minute)
            lines.append(
                ingest.event_line(
                    event_id=uuid.uuid4(),
                    workspace_id=workspace.pk,
                    funnel_id=funnel.pk,
                    step_id=step.pk,
                    visitor_id=visitor,
                    kind="view",
                    page_version_id=None,
                    variant_id=variant,
                    amount_minor=None,
                    currency="USD",
                    properties=None,
                    occurred_at=at,
                    received_at=at,
                )
            )
    ingest.partitions_forget()
    ingest.lines_write(lines, [])
    rollups.rollups_update()
    return variants


def test_journey_page_queries_stay_flat_as_the_data_grows(
    owner_client, workspace, branched
):
    """No query per path, step, source or variant: the page asks the same number of
    queries for 11 visitors on 5 paths as for 41 on 30 paths from 30 sources with
    30 variants, with and without filters."""
    funnel, s = branched
    url = reverse("analytics:journey", args=[funnel.pk]) + QUERY

    def queries(query: str = "") -> int:
        with CaptureQueriesContext(connection) as ctx:
            response = owner_client.get(url + query)
        assert response.status_code == 200
        return len(ctx.captured_queries)

    owner_client.get(url)  # the first request also saves the session
    small = queries(), queries("&source=google")
    variants = _grow(workspace, funnel, s, 30)
    filtered = f"&source=source3&medium=medium3&variant={variants[3]}"
    assert (queries(), queries("&source=google")) == small
    assert queries(filtered) == small[0]
    # User, membership, funnel, variants, steps, paths, the funnel's currencies,
    # filter choices (one query for the three lists), rollup watermark, the menu's
    # workspaces; no tail is folded.
    assert small[0] == 10
    html = owner_client.get(url + filtered).content.decode()
    assert "<strong>1</strong>" in html  # one visitor took variant 3


def test_the_map_reads_the_rollups_only_and_says_how_fresh_they_are(
    owner_client, branched
):
    """A request folds nothing (the worker does, every 30 s): events stored since
    the last run stay in the tail, and the page says up to when it counted; when
    that is long ago it says the worker is behind."""
    from django.utils import timezone

    from analytics.models import RollupState

    funnel, s = branched
    url = reverse("analytics:journey", args=[funnel.pk]) + QUERY
    lines = [
        ingest.event_line(
            event_id=uuid.uuid4(),
            workspace_id=funnel.workspace_id,
            funnel_id=funnel.pk,
            step_id=s["optin"].pk,
            visitor_id=uuid.uuid4(),
            kind="view",
            page_version_id=None,
            variant_id=None,
            amount_minor=None,
            currency="USD",
            properties=None,
            occurred_at=T0,
            received_at=T0,
        )
    ]
    ingest.lines_write(lines, [])
    html = owner_client.get(url).content.decode()
    assert rollups.rollup_tail_size() == 1
    assert '<div class="kpi"><dt>Visitors</dt><dd><strong>11</strong>' in html
    assert "Counted up to <time" in html and "worker is behind" not in html
    RollupState.objects.update(watermark=timezone.now() - timedelta(minutes=6))
    html = owner_client.get(url).content.decode()
    assert "the rollup worker is behind" in html
