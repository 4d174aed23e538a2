"""Funnel paths: the one place that knows how a visitor moves through a funnel.

Serving (next-step links), checkout (accept / decline), experiments (a step's goal),
reports and the journey map (comparison parents, possible paths) and the rollups
(entry step and goal, passed to their SQL as parameters) all ask this module.

The rules, over the funnel's steps in position order:

* **Entry step**: the first step.
* **Next step**: an upsell or downsell follows its accept / decline target when one
  is set; otherwise (and for every other step, on submit) the next step by position,
  skipping downsells that are only reached as some step's decline target (they sit
  off the main path). ``None``: the funnel ends there.
* **Ways on** from a step: ``accept`` and ``decline`` for upsells and downsells,
  one ``submit`` (``None``) for every other step.
* **Goal**: an order on any order form when the funnel has one; else an opt-in on
  any opt-in step when it has one; else a view of the last step of the main path.
* **Comparison parent** of a step: the step every way from the entry to it passes
  through last (its immediate dominator in the graph of ways on). For an upsell's
  decline branch that is the upsell, and so it is for the step both branches rejoin.
  ``None`` for the entry step and for steps no way reaches.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

from .models import BRANCHING_KINDS, Step, StepKind

OUTCOMES = (None, "accept", "decline")
BRANCH_OUTCOMES = ("accept", "decline")
# Enough for any funnel a person builds; a guard against pathological graphs.
MAX_PATHS = 500

# One of rollup_params' parallel arrays (one value per funnel).
RollupArray = list[int] | list[int | None] | list[str]


@dataclass(frozen=True)
class Goal:
    """What counts as reaching the funnel's goal.

    ``kind`` is the event kind (``order``, ``optin`` or ``view``); ``step`` the goal
    step (the first order form / opt-in step, or the last main-path step).
    ``any_step`` says that the event on any step counts (orders and opt-ins),
    not only on ``step``.
    """

    kind: str
    step: Step | None
    any_step: bool

    @property
    def step_id(self) -> int | None:
        """The step the goal event must happen on, None when any step counts."""
        if self.any_step or self.step is None:
            return None
        return self.step.pk

    def label(self) -> str:
        if self.kind == "order":
            return "Order placed"
        if self.kind == "optin":
            return "Opted in"
        return f"Reached “{self.step.name}”" if self.step else "—"


@dataclass(frozen=True)
class Way:
    """One move: from ``step`` by ``outcome`` (None = submit) to ``target``."""

    step: Step
    outcome: str | None
    target: Step | None


class FunnelPaths:
    """The answers for one funnel, over its already loaded steps."""

    def __init__(self, steps: Iterable[Step]) -> None:
        self.steps: list[Step] = sorted(steps, key=lambda s: (s.position, s.pk))
        self.by_id: dict[int, Step] = {s.pk: s for s in self.steps}
        self._index = {s.pk: i for i, s in enumerate(self.steps)}

    # ---------------------------------------------------------------- structure
    @cached_property
    def branch_only(self) -> set[int]:
        """Downsells reached only as a decline target: off the main path."""
        declines = {s.decline_target_id for s in self.steps if s.decline_target_id}
        accepts = {s.accept_target_id for s in self.steps if s.accept_target_id}
        return {
            s.pk
            for s in self.steps
            if s.pk in declines and s.pk not in accepts and s.kind == StepKind.DOWNSELL
        }

    @property
    def entry(self) -> Step | None:
        return self.steps[0] if self.steps else None

    def outcomes(self, step: Step) -> tuple[str | None, ...]:
        """The ways on from ``step`` a visitor can take."""
        return BRANCH_OUTCOMES if step.kind in BRANCHING_KINDS else (None,)

    def next(self, step: Step, outcome: str | None = None) -> Step | None:
        if outcome not in OUTCOMES:
            raise ValueError(f"Unknown outcome {outcome!r}")
        if step.pk not in self.by_id:
            return None
        step = self.by_id[step.pk]  # the loaded one: its targets match the rest
        if step.kind in BRANCHING_KINDS and outcome:
            target_id = (
                step.accept_target_id if outcome == "accept" else step.decline_target_id
            )
            if target_id and target_id in self.by_id:
                return self.by_id[target_id]
        for candidate in self.steps[self._index[step.pk] + 1 :]:
            if candidate.pk not in self.branch_only:
                return candidate
        return None

    def ways(self, step: Step) -> list[Way]:
        return [Way(step, o, self.next(step, o)) for o in self.outcomes(step)]

    def successors(self, step: Step) -> list[Step]:
        out: list[Step] = []
        for way in self.ways(step):
            if way.target is not None and way.target not in out:
                out.append(way.target)
        return out

    def reachable_from(self, step: Step) -> list[Step]:
        """``step`` and every step a visitor can reach from it, in position order."""
        if step.pk not in self.by_id:
            return []
        seen = {step.pk}
        queue = deque([step])
        while queue:
            for nxt in self.successors(queue.popleft()):
                if nxt.pk not in seen:
                    seen.add(nxt.pk)
                    queue.append(nxt)
        return [s for s in self.steps if s.pk in seen]

    # ---------------------------------------------------------------- goal
    @cached_property
    def goal(self) -> Goal:
        for kind in (StepKind.ORDER, StepKind.OPTIN):
            step = next((s for s in self.steps if s.kind == kind), None)
            if step is not None:
                return Goal(str(kind), step, any_step=True)
        last = None
        step = self.entry
        seen: set[int] = set()
        while step is not None and step.pk not in seen:
            seen.add(step.pk)
            last = step
            step = self.next(step)
        return Goal("view", last, any_step=False)

    # ---------------------------------------------------------------- parents
    @cached_property
    def _dominators(self) -> dict[int, int | None]:
        """Immediate dominators from the entry (Cooper, Harvey & Kennedy)."""
        entry = self.entry
        if entry is None:
            return {}
        order: list[Step] = []  # reverse post-order
        seen: set[int] = set()

        def visit(step: Step) -> None:
            stack = [(step, iter(self.successors(step)))]
            seen.add(step.pk)
            while stack:
                node, children = stack[-1]
                child = next(children, None)
                if child is None:
                    stack.pop()
                    order.append(node)
                elif child.pk not in seen:
                    seen.add(child.pk)
                    stack.append((child, iter(self.successors(child))))

        visit(entry)
        order.reverse()
        rank = {s.pk: i for i, s in enumerate(order)}
        preds: dict[int, list[int]] = {s.pk: [] for s in order}
        for s in order:
            for nxt in self.successors(s):
                preds[nxt.pk].append(s.pk)
        idom: dict[int, int] = {entry.pk: entry.pk}

        def intersect(a: int, b: int) -> int:
            while a != b:
                while rank[a] > rank[b]:
                    a = idom[a]
                while rank[b] > rank[a]:
                    b = idom[b]
            return a

        changed = True
        while changed:
            changed = False
            for s in order[1:]:
                done = [p for p in preds[s.pk] if p in idom]
                new = done[0]
                for p in done[1:]:
                    new = intersect(p, new)
                if idom.get(s.pk) != new:
                    idom[s.pk] = new
                    changed = True
        return {pk: (None if pk == entry.pk else dom) for pk, dom in idom.items()}

    def parent(self, step: Step) -> Step | None:
        """The step ``step``'s conversion is measured against (see module doc)."""
        dom = self._dominators.get(step.pk)
        return self.by_id[dom] if dom is not None else None

    def parents(self) -> dict[int, int | None]:
        return {s.pk: self._dominators.get(s.pk) for s in self.steps}

    # ---------------------------------------------------------------- paths
    def paths(self) -> list[tuple[Way, ...]]:
        """Every way through the funnel from the entry without repeating a step,
        ending where the funnel ends (the last way's target is None) or where the
        next step was already on the path (a loop back)."""
        entry = self.entry
        if entry is None:
            return []
        out: list[tuple[Way, ...]] = []
        stack: list[tuple[Step, tuple[Way, ...], frozenset[int]]] = [
            (entry, (), frozenset({entry.pk}))
        ]
        while stack and len(out) < MAX_PATHS:
            step, sofar, on_path = stack.pop()
            for way in reversed(self.ways(step)):
                path = (*sofar, way)
                if way.target is None or way.target.pk in on_path:
                    out.append(path)
                else:
                    stack.append((way.target, path, on_path | {way.target.pk}))
        return out

    def offer_steps_after(self, order_step: Step) -> set[int]:
        """The upsell/downsell steps a buyer on ``order_step`` can reach, never
        through another order form (what follows that one is its orders')."""
        if order_step.pk not in self.by_id:
            return set()
        seen: set[int] = set()
        queue = deque([order_step])
        while queue:
            step = queue.popleft()
            outcomes = OUTCOMES if step.kind in BRANCHING_KINDS else (None,)
            for outcome in outcomes:
                target = self.next(step, outcome)
                if target is None or target.pk in seen or target.pk == order_step.pk:
                    continue
                seen.add(target.pk)
                if target.kind != StepKind.ORDER:
                    queue.append(target)
        return {pk for pk in seen if self.by_id[pk].kind in BRANCHING_KINDS}


def _steps(funnel_id: int) -> list[Step]:
    return list(Step.objects.filter(funnel_id=funnel_id).order_by("position", "id"))


def funnel_paths(*, funnel_id: int, steps: list[Step] | None = None) -> FunnelPaths:
    """The funnel's paths (pass ``steps`` when they are already loaded)."""
    return FunnelPaths(steps if steps is not None else _steps(funnel_id))


def funnels_paths(*, funnel_ids: Iterable[int]) -> dict[int, FunnelPaths]:
    """Paths of several funnels from one query (funnels without steps included)."""
    ids = set(funnel_ids)
    by_funnel: dict[int, list[Step]] = {pk: [] for pk in ids}
    for step in Step.objects.filter(funnel_id__in=ids).order_by("position", "id"):
        by_funnel[step.funnel_id].append(step)
    return {pk: FunnelPaths(steps) for pk, steps in by_funnel.items()}


def rollup_params(*, funnel_ids: Iterable[int]) -> dict[str, RollupArray]:
    """Entry step and goal per funnel, as parallel arrays for the rollups' SQL."""
    answers = funnels_paths(funnel_ids=funnel_ids)
    ids = sorted(answers)
    return {
        "p_funnel": ids,
        "p_entry": [entry.pk if (entry := answers[pk].entry) else None for pk in ids],
        "p_goal_kind": [answers[pk].goal.kind for pk in ids],
        "p_goal_step": [answers[pk].goal.step_id for pk in ids],
    }


def step_next(*, step: Step, outcome: str | None = None) -> Step | None:
    """Where a visitor goes after ``step`` (see the module doc)."""
    if outcome not in OUTCOMES:
        raise ValueError(f"Unknown outcome {outcome!r}")
    return funnel_paths(funnel_id=step.funnel_id).next(step, outcome)


def offer_steps_after(*, order_step: Step) -> set[int]:
    return funnel_paths(funnel_id=order_step.funnel_id).offer_steps_after(order_step)


def offer_follows(*, order_step: Step | None, step: Step) -> bool:
    """Whether ``step`` is an upsell or downsell on the path of an order placed on
    ``order_step``, in the same funnel. Accept and decline work only there."""
    if order_step is None or step.kind not in BRANCHING_KINDS:
        return False
    if step.funnel_id != order_step.funnel_id:
        return False
    return step.pk in offer_steps_after(order_step=order_step)
