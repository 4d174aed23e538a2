"""The journey map: the ways visitors really went through a funnel, in a period.

Reads only the journey rollup (``JourneyRollup``: visitors, buyers and revenue per
path and cohort bucket, kept by the rollup task), so a request sums
O(days x paths x sources) rows whatever the number of events. The period is a
cohort, as for the dashboard's unique counts: visitors who entered the funnel in
it (by their entry day), with everything they did in the funnel.

A path (see ``FunnelVisitorPath``) is the steps of a visitor's events in time order,
each with what they did there; from the paths this module derives the flow between
steps (links, counted per move: a visitor going back and forth moves more than
once), the exits after each step, and each step's visitors.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from django.db import connection

from accounts.models import Workspace
from funnels import paths
from funnels.models import Funnel, Stage, Step

from .reports import LEGACY_CURRENCY, ReportFilters, funnel_currencies, money_add
from .rollups import REVENUE_SQL

MARKS = {"i": "opted in", "o": "ordered", "a": "accepted", "d": "declined"}
ENTRY = "entry"
EXIT = "exit"
MORE = "more"


@dataclass(frozen=True)
class Element:
    """One stop on a path: a step and what the visitor did there."""

    step_id: int
    marks: str

    @classmethod
    def parse(cls, token: str) -> Element:
        digits = token.rstrip("ioad")
        return cls(int(digits), token[len(digits) :])

    @property
    def outcome(self) -> str:
        """accept / decline when the visitor answered an offer here."""
        if "a" in self.marks:
            return "accept"
        if "d" in self.marks:
            return "decline"
        return ""


def path_elements(path: str) -> tuple[tuple[Element, ...], bool]:
    """The elements of a stored path and whether it was cut short."""
    if not path:
        return (), False
    tokens = path.split(">")
    truncated = tokens[-1] == "+"
    if truncated:
        tokens = tokens[:-1]
    return tuple(Element.parse(t) for t in tokens), truncated


@dataclass
class JourneyPath:
    key: str
    elements: tuple[Element, ...]
    truncated: bool
    visitors: int
    buyers: int
    revenue_minor: int
    label: str = ""
    share: float | None = None
    revenue_by_currency: dict[str, int] = field(default_factory=dict)

    @property
    def revenue_per_visitor(self) -> float | None:
        return self.revenue_minor / self.visitors if self.visitors else None

    @property
    def revenue_per_visitor_by_currency(self) -> dict[str, float]:
        n = self.visitors
        return {c: a / n for c, a in self.revenue_by_currency.items()} if n else {}

    @property
    def last_step_id(self) -> int | None:
        return self.elements[-1].step_id if self.elements else None


@dataclass
class JourneyLink:
    source: int | str  # a step id or ENTRY
    target: int | str  # a step id, EXIT or MORE
    outcome: str  # accept / decline / "" (what the visitor did on the source)
    moves: int = 0
    revenue_minor: int = 0
    kind: str = "next"  # next (as the funnel leads) / skip / back / exit / entry


@dataclass
class JourneyNode:
    step: Step
    visitors: int = 0  # distinct visitors who got there
    visits: int = 0  # arrivals (a visitor coming back arrives again)
    exits: int = 0  # visitors whose path ends here


@dataclass
class JourneyMap:
    funnel: Funnel
    filters: ReportFilters
    variant: int | None
    steps: list[Step]
    entered: int = 0
    buyers: int = 0
    # Summed across currencies: meaningful only with one (see revenue_by_currency).
    revenue_minor: int = 0
    revenue_by_currency: dict[str, int] = field(default_factory=dict)
    paths: list[JourneyPath] = field(default_factory=list)
    links: list[JourneyLink] = field(default_factory=list)
    nodes: list[JourneyNode] = field(default_factory=list)
    # (stage label, visitors who reached a step of that stage), in journey order.
    stages: list[tuple[str, int]] = field(default_factory=list)

    @property
    def revenue_per_visitor(self) -> float | None:
        return self.revenue_minor / self.entered if self.entered else None

    @property
    def revenue_per_visitor_by_currency(self) -> dict[str, float]:
        n = self.entered
        return {c: a / n for c, a in self.revenue_by_currency.items()} if n else {}

    @property
    def mixed_currency(self) -> bool:
        return len(self.revenue_by_currency) > 1

    @property
    def currency(self) -> str:
        """The one currency revenue is in (USD when there is none yet)."""
        found = sorted(self.revenue_by_currency)
        return found[0] if len(found) == 1 else LEGACY_CURRENCY

    def node(self, step_id: int) -> JourneyNode | None:
        return next((n for n in self.nodes if n.step.pk == step_id), None)


def _where(filters: ReportFilters, variant: int | None) -> tuple[str, list]:
    where = ["day BETWEEN %s AND %s"]
    params: list[object] = [filters.date_from, filters.date_to]
    for name in ("source", "medium", "campaign"):
        value = getattr(filters, name)
        if value:
            where.append(f"{name} = %s")
            params.append("" if value == "(direct)" else value)
    if variant:
        where.append("%s = ANY(variants)")
        params.append(variant)
    return " AND ".join(where), params


def path_counts(
    *,
    workspace: Workspace,
    funnel: Funnel,
    filters: ReportFilters,
    variant: int | None = None,
) -> dict[str, tuple[int, int, int]]:
    """path → (visitors, buyers, revenue) for the period's cohort."""
    where, params = _where(filters, variant)
    sql = (
        "SELECT path, sum(visitors), sum(buyers), sum(revenue_minor) "
        "FROM analytics_journeyrollup "
        f"WHERE workspace_id = %s AND funnel_id = %s AND {where} "
        "GROUP BY path"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [workspace.pk, funnel.pk, *params])
        return {
            row[0]: (int(row[1]), int(row[2]), int(row[3]))
            for row in cursor.fetchall()
            if row[1]
        }


def path_money(
    *,
    workspace: Workspace,
    funnel: Funnel,
    filters: ReportFilters,
    variant: int | None = None,
) -> dict[str, dict[str, int]]:
    """path → revenue per currency for the period's cohort, from the money events
    of the visitors who paid (read only for a funnel that sells in several
    currencies: the journey rollup keeps one sum per path)."""
    where, params = _where(filters, variant)
    where = where.replace("day BETWEEN", "p.day BETWEEN")
    for name in ("source", "medium", "campaign"):
        where = where.replace(f"{name} = %s", f"p.{name} = %s")
    where = where.replace("ANY(variants)", "ANY(p.variants)")
    sql = (
        "SELECT p.path, coalesce(e.currency, ''), "
        + REVENUE_SQL.format(p="e.")
        + " FROM analytics_funnelvisitorpath p "
        "JOIN analytics_event e ON e.workspace_id = p.workspace_id "
        "AND e.visitor_id = p.visitor_id AND e.funnel_id = p.funnel_id "
        "AND e.kind IN ('order', 'bump', 'upsell_accept', 'downsell_accept', "
        "'refund') "
        f"WHERE p.workspace_id = %s AND p.funnel_id = %s AND {where} "
        "AND (p.bought OR p.revenue_minor <> 0) "
        "GROUP BY 1, 2"
    )
    out: dict[str, dict[str, int]] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, [workspace.pk, funnel.pk, *params])
        for path, currency, revenue in cursor.fetchall():
            money_add(out.setdefault(path, {}), currency, int(revenue))
    return out


def element_label(element: Element, names: dict[int, str]) -> str:
    name = names.get(element.step_id, "(removed step)")
    done = [MARKS[m] for m in element.marks]
    return f"{name} {' and '.join(done)}" if done else name


def path_label(jp: JourneyPath, names: dict[int, str]) -> str:
    if not jp.elements:
        return "(no step)"
    text = " → ".join(element_label(e, names) for e in jp.elements)
    return f"{text} → …" if jp.truncated else text


def journey_map(
    *,
    workspace: Workspace,
    funnel: Funnel,
    filters: ReportFilters,
    variant: int | None = None,
    steps: list[Step] | None = None,
) -> JourneyMap:
    if funnel.workspace_id != workspace.pk:
        raise ValueError("funnel of another workspace")
    if steps is None:
        steps = list(Step.objects.filter(funnel=funnel).order_by("position", "id"))
    answers = paths.funnel_paths(funnel_id=funnel.pk, steps=steps)
    names = {s.pk: s.name for s in steps}
    position = {s.pk: i for i, s in enumerate(steps)}
    jmap = JourneyMap(funnel, filters, variant, steps)
    nodes = {s.pk: JourneyNode(step=s) for s in steps}
    links: dict[tuple, JourneyLink] = {}

    def link(source, target, outcome, n, revenue, kind) -> None:
        key = (source, target, outcome)
        if key not in links:
            links[key] = JourneyLink(source, target, outcome, kind=kind)
        links[key].moves += n
        links[key].revenue_minor += revenue

    counts = path_counts(
        workspace=workspace, funnel=funnel, filters=filters, variant=variant
    )
    # Revenue per currency: with one currency the rollup's sums are in it.
    currencies = funnel_currencies(funnel_ids=[funnel.pk])
    money = (
        path_money(workspace=workspace, funnel=funnel, filters=filters, variant=variant)
        if len(currencies) > 1
        else {}
    )
    for key, (n, buyers, revenue) in counts.items():
        elements, truncated = path_elements(key)
        jp = JourneyPath(key, elements, truncated, n, buyers, revenue)
        if len(currencies) > 1:
            jp.revenue_by_currency = money.get(key, {})
        elif currencies:
            money_add(jp.revenue_by_currency, currencies[0], revenue)
        for cur, amount in jp.revenue_by_currency.items():
            money_add(jmap.revenue_by_currency, cur, amount)
        jp.label = path_label(jp, names)
        jmap.paths.append(jp)
        jmap.entered += n
        jmap.buyers += buyers
        jmap.revenue_minor += revenue
        previous: Element | None = None
        for element in elements:
            node = nodes.get(element.step_id)
            if previous is None:
                link(ENTRY, element.step_id, "", n, revenue, "entry")
            else:
                link(
                    previous.step_id,
                    element.step_id,
                    previous.outcome,
                    n,
                    revenue,
                    _move_kind(answers, position, previous, element),
                )
            if node is not None:
                node.visits += n
            previous = element
        for step_id in {e.step_id for e in elements}:
            if step_id in nodes:
                nodes[step_id].visitors += n
        if previous is not None:
            if truncated:
                link(previous.step_id, MORE, previous.outcome, n, revenue, "more")
            else:
                link(previous.step_id, EXIT, previous.outcome, n, revenue, "exit")
                if previous.step_id in nodes:
                    nodes[previous.step_id].exits += n
    for jp in jmap.paths:
        jp.share = jp.visitors / jmap.entered if jmap.entered else None
    jmap.paths.sort(key=lambda p: (-p.visitors, p.key))
    jmap.links = sorted(
        links.values(),
        key=lambda lk: (
            position.get(lk.source, -1) if isinstance(lk.source, int) else -1,
            -lk.moves,
        ),
    )
    jmap.nodes = [nodes[s.pk] for s in steps]
    stage_of = {s.pk: s.journey_stage for s in steps}
    reached: dict[str, int] = defaultdict(int)
    for jp in jmap.paths:
        for stage in {
            stage_of[e.step_id] for e in jp.elements if e.step_id in stage_of
        }:
            reached[stage] += jp.visitors
    jmap.stages = [
        (label, reached[value]) for value, label in Stage.choices if value in reached
    ]
    return jmap


def _move_kind(
    answers: paths.FunnelPaths,
    position: dict[int, int],
    previous: Element,
    element: Element,
) -> str:
    """next: where the funnel sends the visitor; back: to an earlier step; skip:
    to a later step the funnel does not lead to from there."""
    source = answers.by_id.get(previous.step_id)
    target = answers.by_id.get(element.step_id)
    if source is None or target is None:
        return "skip"
    outcomes = [previous.outcome] if previous.outcome else answers.outcomes(source)
    if any(answers.next(source, o or None) == target for o in outcomes):
        return "next"
    if position[target.pk] <= position[source.pk]:
        return "back"
    return "skip"


def step_flow(jmap: JourneyMap) -> dict[int, dict[str, int]]:
    """Per step: visitors arriving from each other step (first arrival per path)."""
    out: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for jp in jmap.paths:
        seen: set[int] = set()
        previous = None
        for element in jp.elements:
            if element.step_id not in seen:
                seen.add(element.step_id)
                source = str(previous.step_id) if previous else ENTRY
                out[element.step_id][source] += jp.visitors
            previous = element
    return out


PATH_KEY_CHARS = frozenset("0123456789ioad>+")


def path_key_valid(key: str) -> bool:
    return 0 < len(key) <= 400 and set(key) <= PATH_KEY_CHARS


def dropped_visitors_sql(
    *,
    workspace: Workspace,
    funnel: Funnel,
    filters: ReportFilters,
    step_id: int | None = None,
    path: str | None = None,
    variant: int | None = None,
) -> tuple[str, list]:
    """SQL (and its parameters) for the visitors of the period's cohort who went no
    further than ``step_id`` (their path ends there), or who took exactly ``path``:
    ``workspace_id, visitor_id, last_at, last_step_id, source, medium, campaign,
    path``. The same visitors the map counts as "left here" / on that path."""
    where, params = _where(filters, variant)
    sql = (
        "SELECT workspace_id, visitor_id, last_at, last_step_id, source, medium, "
        "campaign, path FROM analytics_funnelvisitorpath "
        f"WHERE workspace_id = %s AND funnel_id = %s AND {where}"
    )
    params = [workspace.pk, funnel.pk, *params]
    if path:
        sql += " AND path = %s"
        params.append(path)
    elif step_id:
        # A path cut short has no known end: the map counts no exit for it.
        sql += " AND last_step_id = %s AND right(path, 1) <> '+'"
        params.append(step_id)
    else:
        raise ValueError("a step or a path")
    return sql, params
