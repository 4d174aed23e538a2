"""API: a funnel's dashboard numbers, exact, for a period."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import AuditEntry
from tests.analytics.conftest import _clean_stream  # noqa: F401  (autouse)
from tests.analytics.test_dashboard_views import tracked_funnel  # noqa: F401
from tests.analytics.test_journey import _journeys, branched  # noqa: F401
from tests.analytics.test_rollups import _clean
from tests.api.conftest import error_of
from tests.funnels.test_paths import BRANCHED, _build

pytestmark = pytest.mark.django_db


def test_stats_are_the_dashboards_numbers(api, tracked_funnel, workspace):  # noqa: F811
    """Three visitors view the opt-in, two opt in and view the order form, one buys
    for $27 (docs/metrics.md definitions), and the read is audited."""
    today = timezone.localdate()
    response = api.get(
        f"/funnels/{tracked_funnel.pk}/stats",
        date_from=(today - timedelta(days=6)).isoformat(),
        date_to=today.isoformat(),
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["date_from"], body["date_to"]) == (
        (today - timedelta(days=6)).isoformat(),
        today.isoformat(),
    )
    kpis = body["kpis"]
    assert (kpis["entered"], kpis["optins"], kpis["buyers"], kpis["orders"]) == (
        3,
        2,
        1,
        1,
    )
    assert kpis["revenue_minor"] == 2700
    assert kpis["epc_minor"] == 900.0
    assert kpis["bounce_rate"] == pytest.approx(1 / 3)
    optin, order = body["steps"]
    assert (optin["unique_views"], optin["optins"], optin["optin_rate"]) == (
        3,
        2,
        pytest.approx(2 / 3),
    )
    assert optin["conversion_from_previous"] is None
    assert (order["unique_views"], order["orders"], order["revenue_minor"]) == (
        2,
        1,
        2700,
    )
    assert order["conversion_from_previous"] == pytest.approx(2 / 3)
    assert order["drop_off_count"] == 1
    assert body["previous_period"]["entered"] == 0
    entry = AuditEntry.objects.get(workspace=workspace, action="stats.read")
    assert entry.target_id == str(tracked_funnel.pk)
    assert entry.changes["after"]["date_to"] == today.isoformat()
    sourced = api.get(f"/funnels/{tracked_funnel.pk}/stats", source="facebook")
    assert sourced.json()["kpis"]["entered"] == 2


def test_stats_bad_input(api, tracked_funnel):  # noqa: F811
    path = f"/funnels/{tracked_funnel.pk}/stats"
    for query, field in (
        ({"date_from": "2026-02-30"}, "date_from"),
        ({"date_from": "2026-05-02", "date_to": "2026-05-01"}, "date_to"),
        ({"date_from": "1990-01-01", "date_to": "1990-01-02"}, "date_from"),
        ({"date_from": "2010-01-01", "date_to": "2020-01-01"}, "date_from"),
        ({"source": "x" * 201}, "source"),
    ):
        response = api.get(path, **query)
        assert response.status_code == 400, query
        assert field in error_of(response)["fields"], query
    assert not AuditEntry.objects.filter(action="stats.read").exists()


def _world_funnel(workspace, sales):
    from analytics import ingest
    from tests.analytics.test_currency import _sales
    from tests.factories import FunnelFactory, StepFactory

    ingest.partitions_forget()
    funnel = FunnelFactory(workspace=workspace, name="World funnel")
    step = StepFactory(funnel=funnel, name="Order", kind="order", position=0)
    _sales(workspace, funnel, step, sales)
    return funnel


def test_stats_keep_currencies_apart(api, workspace):
    """€10 + $5 sold, €2 refunded: revenue per currency, never 1300 "USD"; the
    one-currency figures (revenue_minor, EPC, AOV) are null when there are two."""
    funnel = _world_funnel(
        workspace,
        [("order", 1000, "EUR"), ("order", 500, "USD"), ("refund", 200, "EUR")],
    )
    body = api.get(f"/funnels/{funnel.pk}/stats").json()
    assert (body["currency"], body["currencies"]) == (None, ["EUR", "USD"])
    kpis = body["kpis"]
    assert kpis["revenue_by_currency"] == {"EUR": 800, "USD": 500}
    assert (kpis["revenue_minor"], kpis["epc_minor"], kpis["aov_minor"]) == (
        None,
        None,
        None,
    )
    (step,) = body["steps"]
    assert step["revenue_by_currency"] == {"EUR": 800, "USD": 500}
    assert step["revenue_minor"] is None
    journey = body["journey"]
    assert journey["revenue_by_currency"] == {"EUR": 800, "USD": 500}
    assert journey["revenue_minor"] is None
    by_path = {p["key"]: p["revenue_by_currency"] for p in journey["paths"]}
    assert by_path[f"{step['step']}o"] == {"EUR": 1000, "USD": 500}


def test_stats_in_one_currency_name_it(api, workspace):
    """A euro shop's numbers are in EUR (the API said USD for every workspace)."""
    funnel = _world_funnel(workspace, [("order", 2700, "EUR")])
    body = api.get(f"/funnels/{funnel.pk}/stats").json()
    assert (body["currency"], body["currencies"]) == ("EUR", ["EUR"])
    assert body["kpis"]["revenue_minor"] == 2700
    assert body["kpis"]["revenue_by_currency"] == {"EUR": 2700}


JOURNEY_PERIOD = {"date_from": "2026-03-01", "date_to": "2026-03-31"}


def test_stats_include_the_journey_maps_paths(api, workspace, branched):  # noqa: F811
    """The journey map's paths, as the journey page's selector counts them: exact
    visitors, share, buyers and revenue per path, most taken first."""
    funnel, s = branched
    response = api.get(f"/funnels/{funnel.pk}/stats", **JOURNEY_PERIOD)
    assert response.status_code == 200
    journey = response.json()["journey"]
    assert (journey["entered"], journey["buyers"], journey["variant"]) == (11, 6, None)
    assert journey["revenue_minor"] == 5 * 12400 + 2700
    rows = [
        (p["label"], p["visitors"], p["buyers"], p["revenue_minor"])
        for p in journey["paths"]
    ]
    assert rows == [
        ("optin", 4, 0, 0),
        ("optin opted in → order ordered → up accepted → thanks", 3, 3, 3 * 12400),
        (
            "optin opted in → order ordered → up declined → down accepted → thanks",
            2,
            2,
            2 * 12400,
        ),
        ("optin → order → optin", 1, 0, 0),
        (
            "optin opted in → order ordered → up declined → down declined → thanks",
            1,
            1,
            2700,
        ),
    ]
    top, bought = journey["paths"][:2]
    assert top["share"] == pytest.approx(4 / 11)
    assert top["steps"] == [{"step": s["optin"].pk, "did": []}]
    assert bought["steps"] == [
        {"step": s["optin"].pk, "did": ["opted_in"]},
        {"step": s["order"].pk, "did": ["ordered"]},
        {"step": s["up"].pk, "did": ["accepted"]},
        {"step": s["thanks"].pk, "did": []},
    ]
    assert bought["revenue_per_visitor_minor"] == 12400.0
    assert bought["key"] == (
        f"{s['optin'].pk}i>{s['order'].pk}o>{s['up'].pk}a>{s['thanks'].pk}"
    )
    # The same filters as the page: a source nobody came from leaves no path.
    sourced = api.get(f"/funnels/{funnel.pk}/stats", source="x", **JOURNEY_PERIOD)
    assert sourced.json()["journey"] == {
        "variant": None,
        "entered": 0,
        "buyers": 0,
        "revenue_minor": 0,
        "revenue_by_currency": {},
        "paths": [],
    }


def test_stats_journey_by_variant(api, workspace):
    """`variant` narrows the paths to the visitors shown that page of a split
    test, as the journey map's filter does; a page that is not a variant of this
    funnel is a 400 naming the field."""
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
    path = f"/funnels/{funnel.pk}/stats"
    response = api.get(path, variant=b.pk, **JOURNEY_PERIOD)
    assert response.status_code == 200, response.json()
    journey = response.json()["journey"]
    assert journey["variant"] == b.pk
    assert [(p["label"], p["visitors"]) for p in journey["paths"]] == [("optin", 3)]
    journey = api.get(path, variant=a.pk, **JOURNEY_PERIOD).json()["journey"]
    assert [(p["label"], p["visitors"]) for p in journey["paths"]] == [
        ("optin → order", 2)
    ]
    other = page_create_blank(step=s["order"])  # one page only: not a split test
    for bad in (other.pk, 99999999, 0, "b"):
        response = api.get(path, variant=bad, **JOURNEY_PERIOD)
        assert response.status_code == 400, bad
        assert "variant" in error_of(response)["fields"], bad
    assert not AuditEntry.objects.filter(action="stats.read", target_id=funnel.pk)[
        2:
    ].exists()
