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
