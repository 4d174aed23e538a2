"""funnels.paths: which upsells and downsells follow an order form."""

from __future__ import annotations

import pytest

from funnels import paths
from tests.factories import FunnelFactory, StepFactory

pytestmark = pytest.mark.django_db


def _funnel(workspace, *kinds: str):
    funnel = FunnelFactory(workspace=workspace)
    return [
        StepFactory(funnel=funnel, kind=kind, slug=f"s{i}", position=i)
        for i, kind in enumerate(kinds)
    ]


def test_offers_after_an_order_follow_its_branches(workspace):
    """Order → upsell (decline → downsell) → thank-you: both offers follow."""
    optin, order, up, down, thanks = _funnel(
        workspace, "optin", "order", "upsell", "downsell", "thankyou"
    )
    up.decline_target = down
    up.accept_target = thanks
    up.save()
    assert paths.offer_steps_after(order_step=order) == {up.pk, down.pk}
    assert paths.offer_follows(order_step=order, step=down)
    assert not paths.offer_follows(order_step=order, step=order)
    assert not paths.offer_follows(order_step=order, step=optin)
    assert not paths.offer_follows(order_step=None, step=up)


def test_an_offer_before_the_order_or_after_another_order_does_not_follow(workspace):
    """Offers belong to the nearest order form before them, in one funnel."""
    early, first, up1, second, up2 = _funnel(
        workspace, "upsell", "order", "upsell", "order", "upsell"
    )
    assert paths.offer_steps_after(order_step=first) == {up1.pk}
    assert paths.offer_steps_after(order_step=second) == {up2.pk}
    assert not paths.offer_follows(order_step=first, step=early)
    (other_order, other_up) = _funnel(workspace, "order", "upsell")
    assert not paths.offer_follows(order_step=first, step=other_up)
    assert paths.offer_follows(order_step=other_order, step=other_up)


def test_a_branch_back_does_not_loop(workspace):
    order, up, down = _funnel(workspace, "order", "upsell", "downsell")
    down.decline_target = up
    down.save()
    up.decline_target = down
    up.save()
    assert paths.offer_steps_after(order_step=order) == {up.pk, down.pk}


# ---------------------------------------------------------------- the rules, as a table
# Each funnel: its steps (name: kind), branch targets {name: (accept, decline)}, then
# what funnels.paths answers. Names stand for the steps; "-" is "the funnel ends".
LINEAR = ("optin:optin sales:sales order:order thanks:thankyou", {})
BRANCHED = (
    "optin:optin order:order up:upsell down:downsell thanks:thankyou",
    {"up": ("thanks", "down")},
)
# A downsell positioned after the thank-you (off the main path by its position too).
DOWN_LAST = (
    "order:order up:upsell thanks:thankyou down:downsell",
    {"up": ("thanks", "down")},
)
# Decline the downsell too: a second downsell.
TWO_DOWNS = (
    "order:order up:upsell down1:downsell down2:downsell thanks:thankyou",
    {"up": ("thanks", "down1"), "down1": ("thanks", "down2")},
)
PAGES_ONLY = ("a:page b:page c:thankyou", {})
# A decline that goes back to the order form (back-and-forth).
BACK = ("order:order up:upsell thanks:thankyou", {"up": ("thanks", "order")})

RULES = [
    (
        LINEAR,
        {
            "entry": "optin",
            "next": {
                ("optin", None): "sales",
                ("sales", None): "order",
                ("order", None): "thanks",
                ("thanks", None): "-",
            },
            "goal": ("order", "order", True),
            "parents": {
                "optin": "-",
                "sales": "optin",
                "order": "sales",
                "thanks": "order",
            },
            "paths": ["optin > sales > order > thanks > -"],
        },
    ),
    (
        BRANCHED,
        {
            "entry": "optin",
            "next": {
                ("order", None): "up",
                ("up", "accept"): "thanks",
                ("up", "decline"): "down",
                ("up", None): "thanks",
                ("down", "accept"): "thanks",
                ("down", "decline"): "thanks",
                ("thanks", None): "-",
            },
            "goal": ("order", "order", True),
            "parents": {
                "optin": "-",
                "order": "optin",
                "up": "order",
                "down": "up",
                "thanks": "up",
            },
            "paths": [
                "optin > order > up accept > thanks > -",
                "optin > order > up decline > down accept > thanks > -",
                "optin > order > up decline > down decline > thanks > -",
            ],
        },
    ),
    (
        DOWN_LAST,
        {
            "entry": "order",
            "next": {
                ("up", "decline"): "down",
                ("thanks", None): "-",
                ("down", "accept"): "-",
                ("down", "decline"): "-",
            },
            "goal": ("order", "order", True),
            "parents": {"order": "-", "up": "order", "thanks": "up", "down": "up"},
            "paths": [
                "order > up accept > thanks > -",
                "order > up decline > down accept > -",
                "order > up decline > down decline > -",
            ],
        },
    ),
    (
        TWO_DOWNS,
        {
            "entry": "order",
            "next": {
                ("down1", "decline"): "down2",
                ("down1", "accept"): "thanks",
                ("down2", None): "thanks",
                ("down2", "decline"): "thanks",
            },
            "goal": ("order", "order", True),
            "parents": {"up": "order", "down1": "up", "down2": "down1", "thanks": "up"},
            "paths": [
                "order > up accept > thanks > -",
                "order > up decline > down1 accept > thanks > -",
                "order > up decline > down1 decline > down2 accept > thanks > -",
                "order > up decline > down1 decline > down2 decline > thanks > -",
            ],
        },
    ),
    (
        PAGES_ONLY,
        {
            "entry": "a",
            "next": {("a", None): "b", ("c", None): "-"},
            "goal": ("view", "c", False),
            "parents": {"a": "-", "b": "a", "c": "b"},
            "paths": ["a > b > c > -"],
        },
    ),
    (
        BACK,
        {
            "entry": "order",
            "next": {("up", "decline"): "order", ("up", "accept"): "thanks"},
            "goal": ("order", "order", True),
            "parents": {"order": "-", "up": "order", "thanks": "up"},
            "paths": ["order > up accept > thanks > -", "order > up decline > order"],
        },
    ),
]


def _build(workspace, spec):
    layout, branches = spec
    funnel = FunnelFactory(workspace=workspace)
    steps = {}
    for i, item in enumerate(layout.split()):
        name, kind = item.split(":")
        steps[name] = StepFactory(
            funnel=funnel, kind=kind, slug=name, name=name, position=i
        )
    for name, (accept, decline) in branches.items():
        steps[name].accept_target = steps[accept]
        steps[name].decline_target = steps[decline]
        steps[name].save()
    return funnel, steps


def _name(step) -> str:
    return "-" if step is None else step.name


@pytest.mark.parametrize(
    ("spec", "expected"),
    RULES,
    ids=["linear", "branched", "down-last", "two-downs", "pages-only", "back"],
)
def test_the_rules(workspace, spec, expected):
    """Entry, next step per outcome, goal, comparison parents and possible paths."""
    funnel, steps = _build(workspace, spec)
    answers = paths.funnel_paths(funnel_id=funnel.pk)
    assert _name(answers.entry) == expected["entry"]
    for (name, outcome), target in expected["next"].items():
        assert _name(answers.next(steps[name], outcome)) == target, (name, outcome)
        assert _name(paths.step_next(step=steps[name], outcome=outcome)) == target
    goal = answers.goal
    assert (goal.kind, _name(goal.step), goal.any_step) == expected["goal"]
    for name, parent in expected["parents"].items():
        assert _name(answers.parent(steps[name])) == parent, name
    shown = [
        " > ".join(
            [f"{w.step.name} {w.outcome}" if w.outcome else w.step.name for w in path]
            + [_name(path[-1].target)]
        )
        for path in answers.paths()
    ]
    assert sorted(shown) == sorted(expected["paths"])


def test_unknown_outcome_is_refused(workspace):
    _, steps = _build(workspace, LINEAR)
    with pytest.raises(ValueError, match="Unknown outcome"):
        paths.step_next(step=steps["order"], outcome="maybe")


def test_rollup_params_name_entry_and_goal(workspace):
    linear, l_steps = _build(workspace, LINEAR)
    pages_only, p_steps = _build(workspace, PAGES_ONLY)
    empty = FunnelFactory(workspace=workspace)
    params = paths.rollup_params(funnel_ids=[pages_only.pk, linear.pk, empty.pk])
    rows = list(zip(*params.values(), strict=True))
    assert sorted(rows) == sorted(
        [
            (linear.pk, l_steps["optin"].pk, "order", None),
            (pages_only.pk, p_steps["a"].pk, "view", p_steps["c"].pk),
            (empty.pk, None, "view", None),
        ]
    )
