from __future__ import annotations

import pytest
from django.urls import reverse

from funnels import services
from funnels.models import Funnel, Step
from tests.factories import FunnelFactory, StepFactory

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def funnel(workspace):
    funnel = FunnelFactory(workspace=workspace, name="Trip", slug="trip")
    up = services.step_create(funnel=funnel, kind="upsell", name="Pro")
    down = services.step_create(funnel=funnel, kind="downsell", name="Lite")
    services.step_create(funnel=funnel, kind="thankyou", name="Thanks")
    services.step_update(step=up, decline_target=down)
    return funnel


def _steps(funnel):
    return list(funnel.steps.order_by("position").values_list("name", flat=True))


def _urls(funnel):
    step = funnel.steps.get(name="Thanks")
    f, s = funnel.pk, step.pk
    return {
        "get": [
            reverse("funnels:detail", args=[f]),
            reverse("funnels:delete", args=[f]),
        ],
        "post": [
            (reverse("funnels:update", args=[f]), {"name": "X", "slug": "x"}),
            (reverse("funnels:duplicate", args=[f]), {}),
            (reverse("funnels:archive", args=[f]), {}),
            (reverse("funnels:unarchive", args=[f]), {}),
            (reverse("funnels:delete", args=[f]), {"confirm_name": "Trip"}),
            (reverse("funnels:step_create", args=[f]), {"kind": "page"}),
            (reverse("funnels:step_reorder", args=[f]), {"order": ""}),
            (reverse("funnels:step_update", args=[f, s]), {"name": "Y", "slug": "y"}),
            (reverse("funnels:step_move", args=[f, s]), {"direction": "up"}),
            (reverse("funnels:step_delete", args=[f, s]), {}),
        ],
    }


def test_list_shows_cards_and_archived_tab(client, owner, workspace, funnel):
    """The list shows active funnels as cards; archived ones under their own tab."""
    FunnelFactory(workspace=workspace, name="Old one", archived_at="2026-01-01T00:00Z")
    client.force_login(owner)
    page = client.get(reverse("funnels:list")).content.decode()
    assert "Trip" in page and "<dd>3</dd>" in page and "/trip/" in page
    assert "Old one" not in page
    archived = client.get(reverse("funnels:list") + "?archived=1").content.decode()
    assert "Old one" in archived and "/trip/" not in archived


def test_empty_list_has_call_to_action(client, owner):
    """With no funnels the list invites to create one."""
    client.force_login(owner)
    page = client.get(reverse("funnels:list")).content.decode()
    assert "No funnels yet" in page
    assert reverse("funnels:create") in page


def test_root_redirects_members_to_funnel_list(client, owner):
    """/ sends a signed-in member to /funnels/."""
    client.force_login(owner)
    response = client.get("/")
    assert (response.status_code, response["Location"]) == (302, "/funnels/")


def test_create_funnel_and_slug_clash_suggestion(client, owner, workspace, funnel):
    """Creating redirects to the editor; a taken slug shows a suggestion."""
    client.force_login(owner)
    response = client.post(reverse("funnels:create"), {"name": "Guide", "slug": ""})
    created = Funnel.objects.get(name="Guide")
    assert response["Location"] == reverse("funnels:detail", args=[created.pk])
    assert created.slug == "guide"
    response = client.post(reverse("funnels:create"), {"name": "Other", "slug": "trip"})
    assert response.status_code == 200
    assert "trip is taken — try trip-2." in response.content.decode()
    response = client.post(reverse("funnels:create"), {"name": "A", "slug": "media"})
    assert "“media” is reserved for files — try media-2." in response.content.decode()
    assert Funnel.objects.count() == 2


def test_detail_full_page_and_step_create_fragment(client, owner, funnel):
    """The editor renders fully; adding a step over htmx returns the steps region."""
    client.force_login(owner)
    page = client.get(reverse("funnels:detail", args=[funnel.pk])).content.decode()
    assert "<html" in page and 'id="steps"' in page and "edge-decline" in page
    response = client.post(
        reverse("funnels:step_create", args=[funnel.pk]),
        {"kind": "optin", "name": "Join"},
        **HX,
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith('<section id="steps"') and "<html" not in body
    assert "Added “Join”." in body
    assert _steps(funnel) == ["Pro", "Lite", "Thanks", "Join"]


def test_step_create_plain_form_redirects(client, owner, funnel):
    """Without htmx the add-step form redirects back to the editor."""
    client.force_login(owner)
    response = client.post(
        reverse("funnels:step_create", args=[funnel.pk]), {"kind": "sales"}
    )
    assert response["Location"] == reverse("funnels:detail", args=[funnel.pk])
    assert _steps(funnel) == ["Pro", "Lite", "Thanks", "Sales page"]


def test_settings_fragment_shows_slug_suggestion(client, owner, workspace, funnel):
    """Changing the funnel slug to a taken one re-renders the settings with a hint."""
    FunnelFactory(workspace=workspace, slug="guide")
    client.force_login(owner)
    response = client.post(
        reverse("funnels:update", args=[funnel.pk]),
        {"name": "Trip 2", "slug": "guide"},
        **HX,
    )
    body = response.content.decode()
    assert response.status_code == 422
    assert body.lstrip().startswith('<form id="funnel-settings"')
    assert "guide is taken — try guide-2." in body
    funnel.refresh_from_db()
    assert (funnel.name, funnel.slug) == ("Trip", "trip")


def test_delete_referenced_step_refused(client, owner, funnel):
    """Deleting a downsell an upsell leads to is refused with an explanation."""
    client.force_login(owner)
    lite = funnel.steps.get(name="Lite")
    url = reverse("funnels:step_delete", args=[funnel.pk, lite.pk])
    response = client.post(url, **HX)
    assert response.status_code == 409
    assert "“Lite” cannot be deleted: “Pro” leads to it." in response.content.decode()
    response = client.post(url, follow=True)
    assert "“Pro” leads to it." in response.content.decode()
    assert _steps(funnel) == ["Pro", "Lite", "Thanks"]


def test_reorder_with_foreign_ids_is_refused(client, owner, workspace, funnel):
    """A reorder naming a step of another funnel gets 400 and changes nothing."""
    client.force_login(owner)
    foreign = StepFactory(funnel=FunnelFactory(workspace=workspace))
    ids = list(funnel.steps.order_by("position").values_list("pk", flat=True))
    url = reverse("funnels:step_reorder", args=[funnel.pk])
    for order in (
        f"{ids[2]},{ids[1]},{foreign.pk}",
        f"{ids[2]},{ids[1]}",
        "1,abc",
        "",
    ):
        assert client.post(url, {"order": order}, **HX).status_code == 400
    assert _steps(funnel) == ["Pro", "Lite", "Thanks"]
    response = client.post(url, {"order": f"{ids[2]},{ids[0]},{ids[1]}"}, **HX)
    assert response.status_code == 200
    assert _steps(funnel) == ["Thanks", "Pro", "Lite"]


def test_step_update_sets_targets_and_refuses_foreign_target(client, owner, funnel):
    """An upsell's accept target is saved; a foreign target id is refused."""
    client.force_login(owner)
    pro = funnel.steps.get(name="Pro")
    thanks = funnel.steps.get(name="Thanks")
    foreign = StepFactory(funnel=FunnelFactory(workspace=funnel.workspace))
    url = reverse("funnels:step_update", args=[funnel.pk, pro.pk])
    data = {
        "name": "Pro",
        "slug": "pro",
        "accept_target": thanks.pk,
        "decline_target": "",
    }
    assert client.post(url, data, **HX).status_code == 200
    pro.refresh_from_db()
    assert (pro.accept_target_id, pro.decline_target_id) == (thanks.pk, None)
    data["accept_target"] = foreign.pk
    assert client.post(url, data, **HX).status_code == 422
    pro.refresh_from_db()
    assert pro.accept_target_id == thanks.pk


def test_move_step_keyboard(client, owner, funnel):
    """The move buttons swap neighbours (fragment) and keep focus on the button."""
    client.force_login(owner)
    thanks = funnel.steps.get(name="Thanks")
    response = client.post(
        reverse("funnels:step_move", args=[funnel.pk, thanks.pk]),
        {"direction": "up"},
        **HX,
    )
    assert f'data-focus="move-up-{thanks.pk}"' in response.content.decode()
    assert _steps(funnel) == ["Pro", "Thanks", "Lite"]


def test_duplicate_archive_delete_flow(client, owner, funnel):
    """Duplicate opens the copy; archive and a confirmed delete work."""
    client.force_login(owner)
    response = client.post(reverse("funnels:duplicate", args=[funnel.pk]))
    copy = Funnel.objects.get(name="Trip (copy)")
    assert response["Location"] == reverse("funnels:detail", args=[copy.pk])
    assert _steps(copy) == ["Pro", "Lite", "Thanks"]
    client.post(reverse("funnels:archive", args=[copy.pk]))
    copy.refresh_from_db()
    assert copy.archived_at is not None
    page = client.get(reverse("funnels:delete", args=[funnel.pk]))
    assert "Type <strong>Trip</strong> to confirm" in page.content.decode()
    client.post(reverse("funnels:delete", args=[funnel.pk]), {"confirm_name": "nope"})
    assert Funnel.objects.filter(pk=funnel.pk).exists()
    client.post(reverse("funnels:delete", args=[funnel.pk]), {"confirm_name": "Trip"})
    assert not Funnel.objects.filter(pk=funnel.pk).exists()
    assert Step.objects.filter(funnel=copy).count() == 3


def test_stranger_gets_404_everywhere(client, stranger, funnel):
    """Another workspace's member gets 404 on every funnel and step URL."""
    client.force_login(stranger)
    urls = _urls(funnel)
    for url in urls["get"]:
        assert client.get(url).status_code == 404, url
    for url, data in urls["post"]:
        assert client.post(url, data).status_code == 404, url
    assert _steps(funnel) == ["Pro", "Lite", "Thanks"]


def test_viewer_gets_403_on_every_write(client, viewer, funnel):
    """A viewer can look but gets 403 on every write."""
    client.force_login(viewer)
    urls = _urls(funnel)
    for url in urls["get"]:
        assert client.get(url).status_code == 200, url
    for url, data in urls["post"]:
        assert client.post(url, data).status_code == 403, url
    assert client.post(reverse("funnels:create"), {"name": "X"}).status_code == 403
    assert Funnel.objects.count() == 1
    assert _steps(funnel) == ["Pro", "Lite", "Thanks"]
