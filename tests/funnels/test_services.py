from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from funnels import selectors, services
from funnels.models import Funnel, Step
from tests.factories import FunnelFactory, StepFactory

pytestmark = pytest.mark.django_db


def _names(funnel):
    return list(funnel.steps.order_by("position").values_list("name", flat=True))


def test_funnel_create_suggests_slug_from_name(workspace):
    """A blank funnel gets a slug made from its name."""
    funnel = services.funnel_create(workspace=workspace, name="Free Guide: 7 Tips")
    assert (funnel.name, funnel.slug, funnel.workspace) == (
        "Free Guide: 7 Tips",
        "free-guide-7-tips",
        workspace,
    )


def test_funnel_slugs_are_per_workspace(workspace, other_workspace):
    """Each workspace has its own host, so another workspace's slug is free; a
    clash in the same workspace gets -2, then -3."""
    FunnelFactory(workspace=other_workspace, slug="guide")
    assert services.funnel_create(workspace=workspace, name="Guide").slug == "guide"
    assert services.funnel_create(workspace=workspace, name="Guide").slug == "guide-2"
    assert services.funnel_create(workspace=workspace, name="Guide").slug == "guide-3"


def test_funnel_create_explicit_taken_slug_is_refused_with_suggestion(workspace):
    """An explicit slug that is taken is refused with a suggestion; nothing saved."""
    FunnelFactory(workspace=workspace, slug="guide")
    with pytest.raises(ValidationError) as exc:
        services.funnel_create(workspace=workspace, name="X", slug="guide")
    assert exc.value.message_dict == {"slug": ["guide is taken — try guide-2."]}
    assert Funnel.objects.count() == 1


@pytest.mark.parametrize("slug", ["static", "media"])
def test_file_route_slug_is_refused(workspace, slug):
    """The public route table serves files at /static/ and /media/: refused."""
    with pytest.raises(ValidationError) as exc:
        services.funnel_create(workspace=workspace, name="X", slug=slug)
    assert exc.value.message_dict == {
        "slug": [f"“{slug}” is reserved for files — try {slug}-2."]
    }
    assert services.funnel_create(workspace=workspace, name=slug).slug == f"{slug}-2"


@pytest.mark.parametrize("slug", ["admin", "login", "funnels", "t", "api", "leads"])
def test_app_route_names_are_free_slugs(workspace, slug):
    """Funnels no longer share the app's origin, so app route names are fine."""
    assert services.funnel_create(workspace=workspace, name="X", slug=slug).slug == slug


def test_funnel_set_slug_and_rename(workspace):
    """Rename and slug change save; keeping the own slug is not a clash."""
    funnel = FunnelFactory(workspace=workspace, name="A", slug="a")
    services.funnel_rename(funnel=funnel, name="  Better  ")
    services.funnel_set_slug(funnel=funnel, slug="a")
    services.funnel_set_slug(funnel=funnel, slug="Better Name")
    funnel.refresh_from_db()
    assert (funnel.name, funnel.slug) == ("Better", "better-name")
    with pytest.raises(ValidationError):
        services.funnel_rename(funnel=funnel, name="   ")
    with pytest.raises(ValidationError):
        services.funnel_set_slug(funnel=funnel, slug="!!!")


def test_funnel_duplicate_copies_steps_and_remaps_targets(workspace):
    """Duplicating copies steps in order, remaps branch targets, returns an id map."""
    funnel = FunnelFactory(workspace=workspace, name="Trip", slug="trip")
    optin = services.step_create(funnel=funnel, kind="optin", name="Opt")
    up = services.step_create(funnel=funnel, kind="upsell", name="Up")
    down = services.step_create(funnel=funnel, kind="downsell", name="Down")
    services.step_update(step=up, decline_target=down)
    copy, mapping = services.funnel_duplicate(funnel=funnel)
    assert (copy.name, copy.slug, copy.workspace) == (
        "Trip (copy)",
        "trip-copy",
        workspace,
    )
    assert _names(copy) == ["Opt", "Up", "Down"]
    new = {s.name: s for s in copy.steps.all()}
    assert mapping == {
        optin.pk: new["Opt"].pk,
        up.pk: new["Up"].pk,
        down.pk: new["Down"].pk,
    }
    assert new["Up"].decline_target_id == new["Down"].pk
    assert Step.objects.get(pk=up.pk).decline_target_id == down.pk


def test_archive_unarchive_and_delete_with_confirmation(workspace):
    """Archive hides, unarchive restores; delete needs the exact name."""
    funnel = FunnelFactory(workspace=workspace, name="Old")
    services.funnel_archive(funnel=funnel)
    assert list(selectors.funnel_list(workspace=workspace, archived=True)) == [funnel]
    assert list(selectors.funnel_list(workspace=workspace)) == []
    services.funnel_unarchive(funnel=funnel)
    assert list(selectors.funnel_list(workspace=workspace)) == [funnel]
    with pytest.raises(ValidationError):
        services.funnel_delete(funnel=funnel, confirm_name="old")
    assert Funnel.objects.filter(pk=funnel.pk).exists()
    services.funnel_delete(funnel=funnel, confirm_name="Old")
    assert not Funnel.objects.filter(pk=funnel.pk).exists()


def test_step_create_positions_and_slug_suggestion(workspace):
    """Steps append at the end; a clashing slug gets -2 within the funnel only."""
    funnel = FunnelFactory(workspace=workspace)
    other = FunnelFactory(workspace=workspace)
    StepFactory(funnel=other, slug="offer")
    a = services.step_create(funnel=funnel, kind="sales", name="Offer")
    b = services.step_create(funnel=funnel, kind="sales", name="Offer")
    c = services.step_create(funnel=funnel, kind="thankyou")
    assert [(s.slug, s.position, s.name) for s in (a, b, c)] == [
        ("offer", 0, "Offer"),
        ("offer-2", 1, "Offer"),
        ("thank-you", 2, "Thank-you"),
    ]
    with pytest.raises(ValidationError) as exc:
        services.step_update(step=c, slug="offer")
    assert exc.value.message_dict == {
        "slug": ["offer is taken in this funnel — try offer-3."]
    }


def test_step_move_and_reorder(workspace):
    """Moving swaps neighbours; reorder needs every step exactly once."""
    funnel = FunnelFactory(workspace=workspace)
    a, b, c = (services.step_create(funnel=funnel, kind="page", name=n) for n in "ABC")
    services.step_move(step=c, direction="up")
    assert _names(funnel) == ["A", "C", "B"]
    services.step_move(step=a, direction="up")  # already first: stays
    assert _names(funnel) == ["A", "C", "B"]
    services.step_reorder(funnel=funnel, step_ids=[b.pk, a.pk, c.pk])
    assert _names(funnel) == ["B", "A", "C"]
    foreign = StepFactory(funnel=FunnelFactory(workspace=workspace))
    for bad in ([b.pk, a.pk], [b.pk, a.pk, foreign.pk], [a.pk, a.pk, b.pk, c.pk]):
        with pytest.raises(ValidationError):
            services.step_reorder(funnel=funnel, step_ids=bad)
    assert _names(funnel) == ["B", "A", "C"]


def test_step_delete_refused_while_referenced(workspace):
    """A step an upsell leads to cannot be deleted; the message names the upsell."""
    funnel = FunnelFactory(workspace=workspace)
    up = services.step_create(funnel=funnel, kind="upsell", name="Pro")
    down = services.step_create(funnel=funnel, kind="downsell", name="Lite")
    thanks = services.step_create(funnel=funnel, kind="thankyou", name="Thanks")
    services.step_update(step=up, decline_target=down)
    with pytest.raises(ValidationError) as exc:
        services.step_delete(step=down)
    assert exc.value.messages == [
        "“Lite” cannot be deleted: “Pro” leads to it. "
        "Point those steps somewhere else first."
    ]
    services.step_update(step=up, decline_target=None)
    services.step_delete(step=down)
    assert _names(funnel) == ["Pro", "Thanks"]
    assert Step.objects.get(pk=thanks.pk).position == 1


def test_step_targets_must_be_in_same_funnel(workspace):
    """A branch target from another funnel or the step itself is refused."""
    funnel = FunnelFactory(workspace=workspace)
    up = services.step_create(funnel=funnel, kind="upsell", name="Pro")
    foreign = StepFactory(funnel=FunnelFactory(workspace=workspace))
    with pytest.raises(ValidationError):
        services.step_update(step=up, accept_target=foreign)
    with pytest.raises(ValidationError):
        services.step_update(step=up, decline_target=up)


def test_step_next_follows_position_and_branches(workspace):
    """Next step: by position, or an upsell's target; decline-only downsells skipped."""
    funnel = FunnelFactory(workspace=workspace)
    optin = services.step_create(funnel=funnel, kind="optin", name="Opt")
    order = services.step_create(funnel=funnel, kind="order", name="Order")
    up = services.step_create(funnel=funnel, kind="upsell", name="Up")
    down = services.step_create(funnel=funnel, kind="downsell", name="Down")
    thanks = services.step_create(funnel=funnel, kind="thankyou", name="Thanks")
    services.step_update(step=up, decline_target=down)
    assert selectors.step_next(step=optin) == optin.funnel.steps.get(pk=order.pk)
    assert selectors.step_next(step=up, outcome="decline") == down
    assert selectors.step_next(step=up, outcome="accept") == thanks
    assert selectors.step_next(step=down, outcome="accept") == thanks
    assert selectors.step_next(step=down, outcome="decline") == thanks
    assert selectors.step_next(step=thanks) is None
    graph = selectors.funnel_graph(steps=selectors.step_list(funnel=funnel))
    assert [(n.step.name, n.branch) for n in graph.nodes] == [
        ("Opt", False),
        ("Order", False),
        ("Up", False),
        ("Down", True),
        ("Thanks", False),
    ]
    assert sorted(e.kind for e in graph.edges) == [
        "decline",
        "next",
        "next",
        "next",
        "next",
    ]
