"""Funnel paths: where a visitor goes next, and which offers follow an order.

One module answers questions about the funnel's graph (serving, checkout, reports
ask it): ``step_next`` for the step after a submit / accept / decline, and
``offer_follows`` for whether an upsell or downsell is part of an order's own path.
"""

from __future__ import annotations

from collections import deque

from .models import BRANCHING_KINDS, Step, StepKind

OUTCOMES = (None, "accept", "decline")


def _steps(funnel_id: int) -> list[Step]:
    return list(Step.objects.filter(funnel_id=funnel_id).order_by("position", "id"))


def _branch_only_ids(steps: list[Step]) -> set[int]:
    """Downsells reached only as a decline target are off the main path."""
    declines = {s.decline_target_id for s in steps if s.decline_target_id}
    accepts = {s.accept_target_id for s in steps if s.accept_target_id}
    return {
        s.pk
        for s in steps
        if s.pk in declines and s.pk not in accepts and s.kind == StepKind.DOWNSELL
    }


def _next_in(steps: list[Step], step: Step, outcome: str | None) -> Step | None:
    """``step_next`` over an already loaded list of the funnel's steps."""
    by_id = {s.pk: s for s in steps}
    if step.kind in BRANCHING_KINDS:
        target_id = {
            "accept": step.accept_target_id,
            "decline": step.decline_target_id,
        }.get(outcome or "")
        if target_id and target_id in by_id:
            return by_id[target_id]
    branch_only = _branch_only_ids(steps)
    ids = [s.pk for s in steps]
    if step.pk not in ids:
        return None
    for candidate in steps[ids.index(step.pk) + 1 :]:
        if candidate.pk not in branch_only:
            return candidate
    return None


def step_next(*, step: Step, outcome: str | None = None) -> Step | None:
    """Where a visitor goes after ``step``.

    For an upsell/downsell, ``outcome="accept"`` or ``"decline"`` follows that
    branch's target when one is set. Otherwise (or when no target is set) it is the
    next step by position, skipping downsells that are only reached by a decline
    branch. ``None`` means the funnel ends here.
    """
    if outcome not in OUTCOMES:
        raise ValueError(f"Unknown outcome {outcome!r}")
    return _next_in(_steps(step.funnel_id), step, outcome)


def offer_steps_after(*, order_step: Step) -> set[int]:
    """The upsell/downsell steps a buyer on ``order_step`` can reach.

    Walks the funnel's graph from the order form along every way on (submit,
    accept, decline), never through another order form: what follows that one
    belongs to its own orders.
    """
    steps = _steps(order_step.funnel_id)
    by_id = {s.pk: s for s in steps}
    if order_step.pk not in by_id:
        return set()
    seen: set[int] = set()
    queue = deque([order_step])
    while queue:
        step = queue.popleft()
        outcomes = OUTCOMES if step.kind in BRANCHING_KINDS else (None,)
        for outcome in outcomes:
            target = _next_in(steps, step, outcome)
            if target is None or target.pk in seen or target.pk == order_step.pk:
                continue
            seen.add(target.pk)
            if target.kind != StepKind.ORDER:
                queue.append(target)
    return {pk for pk in seen if by_id[pk].kind in BRANCHING_KINDS}


def offer_follows(*, order_step: Step | None, step: Step) -> bool:
    """Whether ``step`` is an upsell or downsell on the path of an order placed on
    ``order_step``, in the same funnel. Accept and decline work only there."""
    if order_step is None or step.kind not in BRANCHING_KINDS:
        return False
    if step.funnel_id != order_step.funnel_id:
        return False
    return step.pk in offer_steps_after(order_step=order_step)
