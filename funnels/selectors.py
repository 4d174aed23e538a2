"""Reads for funnels and steps, always scoped to a workspace first."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from django.db.models import Count, QuerySet
from django.shortcuts import get_object_or_404

from accounts.models import Workspace

from .models import BRANCHING_KINDS, Funnel, Step
from .paths import FunnelPaths
from .paths import step_next as step_next  # funnels.paths owns it


def funnel_list(*, workspace: Workspace, archived: bool = False) -> QuerySet[Funnel]:
    qs = Funnel.objects.for_workspace(workspace).annotate(step_count=Count("steps"))
    return qs.filter(archived_at__isnull=not archived)


def funnel_counts(*, workspace: Workspace) -> dict[str, int]:
    qs = Funnel.objects.for_workspace(workspace)
    return {
        "active": qs.filter(archived_at__isnull=True).count(),
        "archived": qs.filter(archived_at__isnull=False).count(),
    }


def funnel_get(*, workspace: Workspace, pk: int) -> Funnel:
    """The workspace's funnel or 404 (a foreign funnel is "not found" too)."""
    return get_object_or_404(Funnel.objects.for_workspace(workspace), pk=pk)


def step_get(*, workspace: Workspace, funnel: Funnel, pk: int) -> Step:
    return get_object_or_404(
        Step.objects.select_related("funnel"),
        workspace=workspace,
        funnel=funnel,
        pk=pk,
    )


def step_list(*, funnel: Funnel) -> list[Step]:
    """The funnel's steps in visitor order, with their branch targets loaded."""
    return list(
        funnel.steps.select_related("accept_target", "decline_target").order_by(
            "position", "id"
        )
    )


def step_referrers(*, step: Step) -> list[Step]:
    """Steps whose accept/decline target is ``step``."""
    from django.db.models import Q

    return list(
        Step.objects.filter(funnel_id=step.funnel_id)
        .filter(Q(accept_target=step) | Q(decline_target=step))
        .exclude(pk=step.pk)
        .order_by("position", "id")
    )


@dataclass
class GraphNode:
    step: Step
    x: int
    y: int
    branch: bool = False


@dataclass
class GraphEdge:
    x1: int
    y1: int
    x2: int
    y2: int
    kind: str  # "next", "accept", "decline"
    path: str = ""


@dataclass
class FunnelGraph:
    nodes: list[GraphNode] = field(default_factory=list)
    edges: list[GraphEdge] = field(default_factory=list)
    width: int = 0
    height: int = 0


NODE_W, NODE_H, GAP_X, ROW_Y, BRANCH_Y = 150, 54, 48, 24, 124


def funnel_graph(*, steps: list[Step]) -> FunnelGraph:
    """Lay the funnel out for an SVG: main path left→right, decline branches below."""
    answers = FunnelPaths(steps)
    branch_only = answers.branch_only
    graph = FunnelGraph()
    pos: dict[int, GraphNode] = {}
    col = 0
    for step in steps:
        branch = step.pk in branch_only
        if branch:
            # Sit under the step that declines to it (or the last main-path column).
            parent = next(
                (n for n in graph.nodes if n.step.decline_target_id == step.pk), None
            )
            x = parent.x if parent else 16 + max(col - 1, 0) * (NODE_W + GAP_X)
            taken = {(n.x, n.y) for n in graph.nodes}
            while (x, BRANCH_Y) in taken:
                x += NODE_W + GAP_X
            node = GraphNode(step=step, x=x, y=BRANCH_Y, branch=True)
        else:
            node = GraphNode(step=step, x=16 + col * (NODE_W + GAP_X), y=ROW_Y)
            col += 1
        graph.nodes.append(node)
        pos[step.pk] = node
    main = [n for n in graph.nodes if not n.branch]
    for a, b in itertools.pairwise(main):
        if a.step.kind in BRANCHING_KINDS and a.step.accept_target_id:
            continue
        graph.edges.append(_edge(a, b, "next"))
    for node in graph.nodes:
        s = node.step
        if s.kind not in BRANCHING_KINDS:
            continue
        if s.accept_target_id in pos:
            graph.edges.append(_edge(node, pos[s.accept_target_id], "accept"))
        if s.decline_target_id in pos:
            graph.edges.append(_edge(node, pos[s.decline_target_id], "decline"))
        elif node.branch:
            # A downsell with no explicit targets continues to the next main step.
            nxt = answers.next(s)
            if nxt is not None and nxt.pk in pos:
                graph.edges.append(_edge(node, pos[nxt.pk], "next"))
    xs = [n.x for n in graph.nodes] or [0]
    graph.width = max(xs) + NODE_W + 16
    graph.height = (BRANCH_Y + NODE_H + 16) if branch_only else (ROW_Y + NODE_H + 24)
    return graph


def _edge(a: GraphNode, b: GraphNode, kind: str) -> GraphEdge:
    if a.y == b.y:
        if b.x > a.x:
            x1, y1, x2, y2 = a.x + NODE_W, a.y + NODE_H // 2, b.x, b.y + NODE_H // 2
            path = f"M{x1},{y1} L{x2 - 4},{y2}"
        else:
            # Backwards on the same row: arc over the top.
            x1, y1 = a.x + NODE_W // 2, a.y
            x2, y2 = b.x + NODE_W // 2, b.y
            path = f"M{x1},{y1} C{x1},{y1 - 22} {x2},{y2 - 22} {x2},{y2 - 4}"
    elif b.y > a.y:
        x1, y1 = a.x + NODE_W // 2, a.y + NODE_H
        x2, y2 = b.x + NODE_W // 2, b.y
        my = (y1 + y2) // 2
        path = f"M{x1},{y1} C{x1},{my} {x2},{my} {x2},{y2 - 4}"
    else:
        x1, y1 = a.x + NODE_W, a.y + NODE_H // 2
        x2, y2 = b.x + NODE_W // 2, b.y + NODE_H
        path = f"M{x1},{y1} C{x2},{y1} {x2},{y1} {x2},{y2 + 4}"
    return GraphEdge(x1=x1, y1=y1, x2=x2, y2=y2, kind=kind, path=path)
